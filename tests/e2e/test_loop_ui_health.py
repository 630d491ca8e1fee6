"""The model health view in a real browser, after the e2e loops (``conftest.py``; runs right after
``test_loop_ui.py`` and shares its Airflow): headless Chromium logs in, opens the view from the UI's
navigation and directly, and checks that Plotly drew each chart from the locally served bundle (no
request leaves the Airflow server) with the numbers of the storage root. Screenshots go to
``test-artifacts/ui/health_*.png``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from e2e.test_loop_ui import CHROMIUM_ARGS, SHOTS, WAIT_MS, ensure_chromium
from mlloop_cli.demo import Loop

pytestmark = [pytest.mark.browser, pytest.mark.timeout(2400)]

USE_CASE = "energy_demand"  # the shipped use case with promotion.shadow_days
CHARTS = ("quality", "drift", "volumes")


@pytest.fixture(scope="module")
def airflow_ui(loops: dict[str, Loop]) -> Any:
    return loops[USE_CASE].airflow


@pytest.fixture(scope="module")
def page(airflow_ui: Any) -> Iterator[Any]:
    """A logged-in page; every request it makes is recorded in ``page.requested``."""
    from playwright.sync_api import sync_playwright

    SHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(ensure_chromium()), args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": 1440, "height": 1400})
        context.set_default_timeout(WAIT_MS)
        requested: list[str] = []
        context.on("request", lambda request: requested.append(request.url))
        page = context.new_page()
        user, password = airflow_ui.login()
        page.goto(airflow_ui.url)
        page.get_by_label("Username").fill(user)
        page.get_by_label("Password").fill(password)
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_url(lambda url: "login" not in url)
        page.requested = requested
        yield page
        browser.close()


def drawn(frame: Any) -> dict[str, int]:
    """Chart id -> number of traces Plotly drew (an SVG with its data bound to the div)."""
    return {
        name: frame.evaluate(
            f"() => {{ const d = document.getElementById('fig-{name}'); "
            "return d && d.querySelector('svg.main-svg') && d.data ? d.data.length : 0; }"
        )
        for name in CHARTS
    }


def test_the_health_view_draws_its_charts_from_the_storage_root(
    page: Any, airflow_ui: Any, loops: dict[str, Loop]
) -> None:
    loop = loops[USE_CASE]
    page.requested.clear()
    page.goto(f"{airflow_ui.url}/mlloop-health/{USE_CASE}")
    page.wait_for_function("() => document.querySelectorAll('svg.main-svg').length >= 3")
    page.wait_for_load_state("networkidle")
    page.screenshot(path=str(SHOTS / "health_01_energy_demand.png"), full_page=True, animations="disabled")

    traces = drawn(page)
    assert all(traces[name] >= 1 for name in CHARTS), traces
    storage = loop.storage()
    shadowed = storage.glob(storage.path("shadow", USE_CASE, "date=*", "data.parquet"))
    assert traces["quality"] == (2 if shadowed else 1)  # served, and the shadow challenger's if it was scored
    days = sorted(
        p.split("date=")[1][:10] for p in storage.glob(storage.path("predictions", USE_CASE, "date=*", "data.parquet"))
    )
    by_day = dict(
        zip(
            *page.evaluate("() => { const t = document.getElementById('fig-volumes').data[0]; return [t.x, t.y]; }"),
            strict=True,
        )
    )
    assert {d: by_day[d] for d in days} == {
        d: storage.row_count(storage.path("predictions", USE_CASE, f"date={d}", "data.parquet")) for d in days
    }
    page.get_by_text("Versions: promotions, rejections, rollbacks").wait_for()
    assert page.locator("#history tr").count() >= 2  # the header and the first promotion at least
    # blob: URLs are objects Plotly makes inside the page, not requests to a network.
    outside = [url for url in page.requested if not url.startswith((airflow_ui.url, "blob:", "data:"))]
    assert outside == [], outside  # no CDN: Plotly comes from the API server


def test_the_health_view_is_reachable_from_the_airflow_ui(page: Any, airflow_ui: Any, loops: dict[str, Loop]) -> None:
    """On-call clicks "Model health" in the UI's navigation, then the use case: the charts draw in the frame.

    The click happens in the index, inside Airflow's frame; it carries the login only because the
    index is not sandboxed (``health_app.INDEX_HEADERS``; a sandboxed index gave a 401 here).
    """
    page.goto(f"{airflow_ui.url}/plugin/model-health")
    frame = page.frame_locator("iframe").first
    frame.get_by_role("link", name=USE_CASE).click()
    frame.locator("svg.main-svg").first.wait_for()
    inner = next(f for f in page.frames if f.url.endswith(f"/mlloop-health/{USE_CASE}"))
    inner.wait_for_function("() => document.querySelectorAll('svg.main-svg').length >= 3")
    page.wait_for_timeout(500)
    page.screenshot(path=str(SHOTS / "health_02_in_the_airflow_ui.png"), full_page=False, animations="disabled")
    assert all(count >= 1 for count in drawn(inner).values())
