"""The UI explains itself, driven in a real browser: headless Chromium (Debian's package, through
Playwright) against the Airflow the loop tests ran in (``conftest.py``; this module runs right after ``test_loop.py``).

Logs in, sees every DAG with its use-case and stage tags, reads a DAG's docs, opens the run of the
drift check that triggered a retrain and its graph, reads the decision task's log to find the
one-screen summary, and follows the task's "Drift report" link (the task's Details tab) to the
Evidently report served by the API server. Screenshots go to ``test-artifacts/ui/``, one per step.

Running only this module (``pytest -m browser``) still runs the loops first (~10 min on 2 cores):
it looks at what they left. In ``make test`` it shares them with ``test_loop.py``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from e2e.conftest import ROOT, USE_CASES
from mlloop_cli.demo import Loop

pytestmark = [pytest.mark.browser, pytest.mark.timeout(2400)]

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
]
SHOTS = ROOT / "test-artifacts" / "ui"
STAGES = ("feature_ingestion", "training", "promotion", "rollback", "batch_scoring", "drift_monitoring")
USE_CASE = "credit_risk"
WAIT_MS = 60_000


def ensure_chromium() -> Path:
    """Debian's chromium (and its driver), installed with apt-get if this machine lacks it."""
    if CHROMIUM.exists():
        return CHROMIUM
    apt = shutil.which("apt-get")
    if apt is None:
        pytest.fail(f"{CHROMIUM} is missing and there is no apt-get: install Debian's chromium package")
    sudo = [] if os.geteuid() == 0 else ["sudo", "-n"]
    install = [*sudo, apt, "install", "-y", "--no-install-recommends", "chromium", "chromium-driver"]
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    if subprocess.run(install, env=env, capture_output=True).returncode != 0:
        subprocess.run([*sudo, apt, "update"], env=env, capture_output=True, check=False)
        done = subprocess.run(install, env=env, capture_output=True, text=True)
        if done.returncode != 0:
            pytest.fail(f"could not install chromium with apt-get: {done.stderr[-1000:]}")
    return CHROMIUM


@pytest.fixture(scope="module")
def airflow_ui(loops: dict[str, Loop]) -> Any:
    return loops[USE_CASE].airflow


@pytest.fixture(scope="module")
def page(airflow_ui: Any) -> Iterator[Any]:
    """A logged-out browser page on the Airflow UI (one browser for every step of this module)."""
    from playwright.sync_api import sync_playwright

    executable = ensure_chromium()
    SHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(executable), args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": 1440, "height": 1000})
        context.set_default_timeout(WAIT_MS)
        yield context.new_page()
        browser.close()


def shot(page: Any, name: str) -> None:
    page.wait_for_load_state("networkidle")
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=False, animations="disabled")


def task_url(airflow_ui: Any, run: dict[str, Any], task_id: str, tab: str = "") -> str:
    dag_id, run_id = run["dag_id"], run["dag_run_id"]
    return f"{airflow_ui.url}/dags/{dag_id}/runs/{run_id}/tasks/{task_id}" + (f"/{tab}" if tab else "")


def drift_run(loop: Loop) -> dict[str, Any]:
    """The drift check that found drift and triggered the retrain (the last day of the loop)."""
    day = loop.result.phase2[-1].isoformat()
    (run,) = [r for r in loop.runs("drift_monitoring") if (r.get("logical_date") or "").startswith(day)]
    return run


def test_log_in(page: Any, airflow_ui: Any) -> None:
    user, password = airflow_ui.login()
    page.goto(airflow_ui.url)
    page.get_by_label("Username").fill(user)
    page.get_by_label("Password").fill(password)
    shot(page, "01_login")
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(lambda url: "login" not in url)
    assert any(cookie["name"] == "_token" for cookie in page.context.cookies())


def test_every_dag_is_listed_with_its_use_case_and_stage_tags(page: Any, airflow_ui: Any) -> None:
    from mlloop.spec import load_specs

    # Every shipped use case's DAGs are parsed, also those whose loop this Airflow did not run.
    page.goto(f"{airflow_ui.url}/dags?limit=50")
    page.get_by_text(f"{len(load_specs(ROOT / 'include' / 'use_cases')) * len(STAGES)} Dags").wait_for()
    for use_case in USE_CASES:
        for stage in STAGES:
            dag_id = f"{use_case}__{stage}"
            card = page.locator("div", has=page.get_by_role("link", name=dag_id, exact=True)).filter(
                has_text=f"stage:{stage}"
            )
            assert card.last.get_by_text(f"use_case:{use_case}").count() >= 1, dag_id
    shot(page, "02_dag_list")

    # Tags group the DAGs: one use case's six stages.
    page.goto(f"{airflow_ui.url}/dags?tags=use_case%3Aenergy_demand")
    page.get_by_text(f"{len(STAGES)} Dags").wait_for()
    shot(page, "03_dags_of_one_use_case")


def test_a_dags_docs_say_what_to_do(page: Any, airflow_ui: Any) -> None:
    page.goto(f"{airflow_ui.url}/dags/{USE_CASE}__drift_monitoring")
    page.get_by_role("button", name="Dag Docs").click()
    dialog = page.get_by_role("dialog")
    for section in ("What it does", "Triggered by", "Emits", "When it fails", "On call"):
        dialog.get_by_text(section, exact=True).first.wait_for()
    dialog.get_by_text("On call", exact=True).first.scroll_into_view_if_needed()
    shot(page, "04_dag_docs")
    page.keyboard.press("Escape")


def test_a_runs_graph_shows_the_drift_check_that_triggered_a_retrain(
    page: Any, airflow_ui: Any, loops: dict[str, Loop]
) -> None:
    run = drift_run(loops[USE_CASE])
    page.goto(f"{airflow_ui.url}/dags/{USE_CASE}__drift_monitoring/runs/{run['dag_run_id']}")
    page.get_by_role("button", name="Show Graph").first.click()
    for task_id in ("compute_drift", "decide_retrain", "trigger_training", "record_trigger"):
        page.get_by_text(task_id, exact=True).first.wait_for()
    shot(page, "05_run_graph")
    page.get_by_role("button", name="Show Grid").first.click()  # the UI remembers the view; logs read better


def test_the_decision_tasks_log_has_the_one_screen_summary(page: Any, airflow_ui: Any, loops: dict[str, Loop]) -> None:
    loop = loops[USE_CASE]
    run = drift_run(loop)
    day = loop.result.phase2[-1].isoformat()
    page.goto(task_url(airflow_ui, run, "decide_retrain"))
    summary = page.get_by_text(f"Drift check of {USE_CASE} for {day}").first
    summary.wait_for()
    text = summary.inner_text()
    for label in ("DRIFT", "why:", "features:", "top:", "quality:", "rows:", "decision:", "report:"):
        assert label in text, text
    shot(page, "06_task_log_summary")


def test_the_drift_report_link_opens_the_evidently_report(page: Any, airflow_ui: Any, loops: dict[str, Loop]) -> None:
    from mlloop.spec import get_spec

    loop = loops[USE_CASE]
    run = drift_run(loop)
    day = loop.result.phase2[-1].isoformat()
    page.goto(task_url(airflow_ui, run, "compute_drift", "details"))
    page.get_by_text("Extra Links").wait_for()
    link = page.get_by_role("link", name="Drift report")
    assert f"/#/models/{USE_CASE}/versions/" in (
        page.get_by_role("link", name="MLflow model version").get_attribute("href") or ""
    )
    assert "/runs/" in (page.get_by_role("link", name="MLflow run").get_attribute("href") or "")
    shot(page, "07_task_extra_links")

    link.click()  # served by the Airflow API server itself: same origin, same tab
    page.wait_for_url(f"**/mlloop/reports/{USE_CASE}/drift/date={day}/report.html")
    key_feature = get_spec(USE_CASE).drift.key_features[0]
    page.get_by_text(key_feature).first.wait_for()  # Evidently's report, rendered
    shot(page, "08_drift_report")

    # The report server answers logged-in users only.
    stranger = page.context.browser.new_context()
    assert stranger.request.get(page.url).status == 401
    stranger.close()
