"""A report page cannot act as the person reading it, shown in a real browser.

Evidently 0.7 writes categorical values raw inside a ``<script>`` block: a value
``</script><script>...`` in the data becomes script in the drift report, and the report is served
by Airflow's API server, which accepts the reader's ``_token`` cookie. Here one drift report is
built (``mlloop.drift_report.run_evidently``, as the drift check builds it) from a frame whose
categorical feature carries such a value; the script tries to read ``document.cookie`` and to call
``/api/v2/dags`` with the reader's credentials. The report is put under the reports folder of a
local Airflow (``mlloop_cli.airflow_local``), opened by a logged-in reader in headless Chromium, and
the script's findings are read back: it ran (``sandbox allow-scripts``), it could read no cookie and
the API gave it no answer (an opaque origin), while the same call from the UI's own page succeeds.
A symlink under ``reports/`` pointing at the generated password file is refused.

Needs no loop: only the API server and the reports app (``pytest -m browser -k isolation``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest

from e2e.test_loop_ui import CHROMIUM_ARGS, WAIT_MS, ensure_chromium

pytestmark = [pytest.mark.browser, pytest.mark.timeout(900)]

USE_CASE = "credit_risk"
DAY = dt.date(2026, 11, 2)
# No double quotes or backslashes: the value sits inside a JSON string in the report's script block.
PROBE = (
    "</script><script>window.__probe = window.__probe || {};"
    "try { window.__probe.cookie = 'read: ' + document.cookie }"
    " catch (e) { window.__probe.cookie = 'blocked: ' + e.name }"
    "fetch('/api/v2/dags', {credentials: 'include'}).then(function (r) {"
    " return r.text().then(function (t) { window.__probe.api = r.status + ' ' + t.slice(0, 60) }) })"
    ".catch(function (e) { window.__probe.api = 'blocked: ' + e.name });</script>"
)
READ_PROBE = "window.__probe && window.__probe.api !== undefined"


def drift_report_html(probe: str) -> bytes:
    """The drift check's Evidently report for a day whose ``employment_type`` carries ``probe``."""
    from mlloop.drift_report import run_evidently
    from mlloop.features import build_features
    from mlloop.landing import generate
    from mlloop.spec import get_spec

    spec = get_spec(USE_CASE)
    size = {"n_customers": 300, "rows_per_day": 300, "bad_row_share": 0.0}
    reference = build_features(generate(spec, DAY - dt.timedelta(days=1), **size).observations, spec)
    current = build_features(generate(spec, DAY, **size).observations, spec)
    column = spec.model.categorical_features[0]
    current[column] = current[column].astype(object)
    current.loc[current.index[: len(current) // 2], column] = probe
    html = run_evidently(reference, current, spec).snapshot.get_html_str(as_iframe=False)
    assert probe in html, "Evidently no longer writes the value raw: the probe would not run"
    return html.encode()


@pytest.fixture(scope="module")
def airflow(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    from mlloop_cli.airflow_local import LocalAirflow, free_port

    airflow = LocalAirflow(tmp_path_factory.mktemp("isolation") / "mlloop", port=free_port())
    airflow.start()
    try:
        yield airflow
    finally:
        airflow.stop()


@pytest.fixture(scope="module")
def report_url(airflow: Any) -> str:
    storage = airflow.storage()
    relative = f"{USE_CASE}/drift/date={DAY}/report.html"
    storage.write_bytes(drift_report_html(PROBE), storage.path("reports", relative))
    return f"{airflow.url}/mlloop/reports/{relative}"


@pytest.fixture(scope="module")
def page(airflow: Any) -> Iterator[Any]:
    """A reader logged in to the Airflow UI, with one more cookie that script could read."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(ensure_chromium()), args=CHROMIUM_ARGS)
        context = browser.new_context()
        context.set_default_timeout(WAIT_MS)
        context.add_cookies([{"name": "readable", "value": "by-script", "url": airflow.url}])
        page = context.new_page()
        user, password = airflow.login()
        page.goto(airflow.url)
        page.get_by_label("Username").fill(user)
        page.get_by_label("Password").fill(password)
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_url(lambda url: "login" not in url)
        assert any(cookie["name"] == "_token" for cookie in context.cookies())
        yield page
        browser.close()


def test_the_ui_page_itself_can_read_its_cookie_and_call_the_api(page: Any, airflow: Any) -> None:
    """The control: what the report's script would get without isolation."""
    page.goto(airflow.url)
    page.evaluate(PROBE.removeprefix("</script><script>").removesuffix("</script>"))
    page.wait_for_function(READ_PROBE)
    probe = page.evaluate("window.__probe")
    assert "readable=by-script" in probe["cookie"]
    assert probe["api"].startswith("200 "), probe


def test_script_in_a_report_runs_but_reads_no_cookie_and_gets_no_api_answer(page: Any, report_url: str) -> None:
    response = page.goto(report_url)
    assert response.status == 200 and response.headers["content-type"].startswith("text/html")
    page.wait_for_function(READ_PROBE)  # the report's (injected) script ran
    probe = page.evaluate("window.__probe")
    assert probe["cookie"].startswith("blocked: ") and probe["api"].startswith("blocked: "), probe
    assert response.headers["content-security-policy"] == "sandbox allow-scripts"
    assert page.evaluate("document.documentElement.outerHTML.length") > 10_000  # the report's page, rendered


def test_a_symlink_under_reports_to_a_file_outside_is_refused(page: Any, airflow: Any, report_url: str) -> None:
    from pathlib import Path

    link = Path(airflow.home) / "storage" / "reports" / USE_CASE / "drift" / "passwords.json"
    link.symlink_to(airflow.password_file)
    response = page.context.request.get(f"{airflow.url}/mlloop/reports/{USE_CASE}/drift/passwords.json")
    assert response.status in (403, 404)
    assert airflow.login()[1] not in response.text()


def test_the_password_file_and_the_log_are_private_from_creation(airflow: Any) -> None:
    """Every component runs under umask 077 (read from /proc), so what Airflow creates, its generated
    password file first, is 0600 from its creation; the log holding the printed login too."""
    import stat
    from pathlib import Path

    pids = [airflow.running_pid(), *(c["pid"] for c in airflow.components().values())]
    umasks = {pid: _umask(pid) for pid in pids if pid}
    assert len(umasks) == 5 and set(umasks.values()) == {0o077}, umasks
    files = (airflow.password_file, airflow.log_path, airflow.components_path, airflow.pid_path)
    folders = (Path(airflow.home), airflow.airflow_home, airflow.log_path.parent)
    assert {str(f): oct(stat.S_IMODE(f.stat().st_mode)) for f in files} == {str(f): "0o600" for f in files}
    assert {str(f): oct(stat.S_IMODE(f.stat().st_mode)) for f in folders} == {str(f): "0o700" for f in folders}


def _umask(pid: int) -> int | None:
    from pathlib import Path

    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Umask:"):
            return int(line.split()[1], 8)
    return None
