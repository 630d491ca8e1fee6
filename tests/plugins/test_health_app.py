"""The health view's app: pages for logged-in readers, with the sandbox headers; Plotly served locally."""

from __future__ import annotations

from typing import Any

import pytest

from mlloop.storage import Storage, local_storage
from mlloop_airflow import health_app
from mlloop_airflow.health_app import HEALTH_URL_PREFIX, INDEX_HEADERS, PLOTLY_JS, create_app
from mlloop_airflow.reports_app import SECURITY_HEADERS


@pytest.fixture
def client(tmp_path: Any, mlloop_home: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    from airflow.api_fastapi.core_api.security import get_user
    from fastapi.testclient import TestClient

    from mlloop.registry import mlflow_client

    storage: Storage = local_storage(str(tmp_path / "storage"))
    app = create_app(lambda: storage, mlflow_client)
    app.dependency_overrides[get_user] = lambda: "someone"

    monkeypatch.setattr(health_app, "may_read_use_case", lambda use_case, user: use_case != "energy_demand")
    return TestClient(app)


def test_a_use_case_page_draws_its_charts_with_the_local_plotly(client: Any) -> None:
    page = client.get("/credit_risk")
    assert page.status_code == 200, page.text
    assert f'<script src="{HEALTH_URL_PREFIX}/{PLOTLY_JS}">' in page.text
    assert page.text.count("Plotly.newPlot") == 3  # quality, drift, volumes (empty before any run)
    for name, value in SECURITY_HEADERS.items():
        assert page.headers[name] == value
    assert client.get("/dag/credit_risk__promotion").text == page.text

    js = client.get(f"/{PLOTLY_JS}")
    assert js.status_code == 200 and js.headers["content-type"].startswith("text/javascript")
    assert len(js.content) > 1_000_000 and b"plotly" in js.content[:2000].lower()


def test_an_unknown_use_case_is_a_404_and_the_index_lists_the_use_cases(client: Any) -> None:
    assert client.get("/no_such_case").status_code == 404
    index = client.get("/")
    assert index.status_code == 200 and f"{HEALTH_URL_PREFIX}/credit_risk" in index.text
    assert "energy_demand" not in index.text  # not allowed to read its promotion DAG: not listed, refused
    assert client.get("/energy_demand").status_code == 403


def test_the_index_keeps_airflows_origin_so_a_click_in_the_ui_frame_carries_the_login(client: Any) -> None:
    """The UI's navigation frame opens the index; a click there must reach the use case's page logged in.

    A sandboxed index is an opaque origin: Chromium drops Airflow's ``SameSite=Lax`` cookie from the
    click's navigation and the page answers 401 in the frame (the e2e browser test sees the charts).
    """
    index = client.get("/")
    policy = index.headers["Content-Security-Policy"]
    assert "sandbox" not in policy  # Airflow's origin: the click carries the login cookie
    assert "default-src 'none'" in policy and "<script" not in index.text  # and still no script runs there
    assert {name: index.headers[name] for name in INDEX_HEADERS} == INDEX_HEADERS  # nosniff, no referrer...
