"""The health view inside a frame as Airflow's UI embeds a navigation view, in headless Chromium.

No Airflow server here (the e2e test ``e2e/test_loop_ui_health.py`` opens the real UI after the
loops): the real health app is mounted as the API server mounts it, and two things stand in for
Airflow, copied from it: its login cookie (``_token``, ``SameSite=Lax``, read by ``get_user``) and
the ``<iframe sandbox="allow-scripts allow-same-origin allow-forms allow-downloads">`` its UI
(``airflow/ui/dist``, the plugin page) puts a navigation view in. The user's path: the index in
the frame, a click on the use case, the charts drawn in the frame. (No ``from __future__ import
annotations``: FastAPI reads the stand-in routes' annotations at run time.)
"""

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from mlloop.storage import local_storage
from mlloop_airflow import health_app
from mlloop_airflow.health_app import HEALTH_URL_PREFIX, create_app

pytestmark = [pytest.mark.browser, pytest.mark.timeout(300)]

AIRFLOW_NAV_SANDBOX = "allow-scripts allow-same-origin allow-forms allow-downloads"  # Airflow 3 UI, plugin page
COOKIE = "_token"  # airflow.api_fastapi.auth.managers.base_auth_manager.COOKIE_NAME_JWT_TOKEN


@pytest.fixture
def server(tmp_path: Any, mlloop_home: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    import uvicorn
    from airflow.api_fastapi.core_api.security import get_user
    from fastapi import FastAPI, HTTPException, Request
    from fastapi.responses import HTMLResponse, PlainTextResponse

    from mlloop.registry import mlflow_client
    from mlloop_cli.airflow_local import free_port

    storage = local_storage(str(tmp_path / "storage"))
    health = create_app(lambda: storage, mlflow_client)

    def user_from_cookie(request: Request) -> str:  # Airflow's get_user reads the same cookie
        if not request.cookies.get(COOKIE):
            raise HTTPException(401, "Not authenticated")
        return "someone"

    health.dependency_overrides[get_user] = user_from_cookie
    monkeypatch.setattr(health_app, "may_read_use_case", lambda use_case, user: True)
    app = FastAPI()

    @app.get("/login")
    def login() -> PlainTextResponse:
        response = PlainTextResponse("signed in")
        response.set_cookie(COOKIE, "jwt", samesite="lax", httponly=True)
        return response

    @app.get("/plugin/model-health")
    def nav_view() -> HTMLResponse:
        frame = f'<iframe sandbox="{AIRFLOW_NAV_SANDBOX}" src="{HEALTH_URL_PREFIX}/" style="width:100%;height:1300px">'
        return HTMLResponse(f"<!doctype html><html><body>{frame}</iframe></body></html>")

    app.mount(HEALTH_URL_PREFIX, health)
    port = free_port()
    uvi = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=uvi.run, daemon=True)
    thread.start()
    while not uvi.started:
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    uvi.should_exit = True
    thread.join(10)


def test_a_click_in_the_navigation_frame_opens_the_use_case_with_its_charts(server: str) -> None:
    from playwright.sync_api import sync_playwright

    from e2e.test_loop_ui import CHROMIUM_ARGS, SHOTS, ensure_chromium

    SHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(ensure_chromium()), args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1440, "height": 1400})
        page.set_default_timeout(30_000)
        page.goto(f"{server}/login")
        page.goto(f"{server}/plugin/model-health")
        target = f"{HEALTH_URL_PREFIX}/credit_risk"
        with page.expect_event("framenavigated", lambda f: f.url.endswith(target), timeout=120_000) as navigated:
            page.frame_locator("iframe").get_by_role("link", name="credit_risk").click()
        inner = navigated.value
        inner.wait_for_load_state()
        assert "Not authenticated" not in inner.content()  # the click carried the login
        inner.wait_for_function("() => document.querySelectorAll('svg.main-svg').length >= 3", timeout=60_000)
        page.screenshot(path=str(SHOTS / "health_00_in_a_frame.png"), full_page=False, animations="disabled")
        browser.close()
