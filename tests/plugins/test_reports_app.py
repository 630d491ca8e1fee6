"""The reports app serves files of the reports area over HTTP, to logged-in readers, and nothing else."""

from __future__ import annotations

import os
from typing import Any

import pytest

from mlloop.storage import Storage, local_storage
from mlloop_airflow import reports_app
from mlloop_airflow.reports_app import LazyApp, ReportPathError, create_app, resolve_report

REPORT = "credit_risk/drift/date=2026-11-25/report.html"


@pytest.fixture
def storage(tmp_path: Any) -> Storage:
    root = local_storage(str(tmp_path / "storage"))
    root.write_bytes(b"<html>drift report</html>", root.path("reports", REPORT))
    root.write_bytes(b'{"drift": true}', root.path("reports", "credit_risk/drift/date=2026-11-25/report.json"))
    root.write_bytes(b"secret", root.path("landing", "credit_risk/observations/date=2026-11-25/batch.parquet"))
    root.write_bytes(b"outside", str(tmp_path / "outside.html"))
    return root


@pytest.fixture
def client(storage: Storage, monkeypatch: pytest.MonkeyPatch) -> Any:
    from airflow.api_fastapi.core_api.security import get_user
    from fastapi.testclient import TestClient

    app = create_app(lambda: storage)
    app.dependency_overrides[get_user] = lambda: "someone"
    monkeypatch.setattr(reports_app, "may_read_reports", lambda request, user: None)
    return TestClient(app)


def test_a_report_is_streamed_with_its_media_type(client: Any) -> None:
    html = client.get(f"/reports/{REPORT}")
    assert html.status_code == 200
    assert html.text == "<html>drift report</html>"
    assert html.headers["content-type"].startswith("text/html")
    summary = client.get("/reports/credit_risk/drift/date=2026-11-25/report.json")
    assert summary.json() == {"drift": True}


@pytest.mark.parametrize(
    "path",
    [
        "../landing/credit_risk/observations/date=2026-11-25/batch.parquet",
        "credit_risk/../../outside.html",
        "credit_risk/drift/../../../outside.html",
        "%2e%2e/landing/credit_risk/observations/date=2026-11-25/batch.parquet",
        "credit_risk/drift/date=2026-11-24/report.html",
        "credit_risk/drift",
    ],
)
def test_anything_but_a_file_of_the_reports_area_is_refused(client: Any, path: str) -> None:
    response = client.get(f"/reports/{path}")
    assert response.status_code == 404, response.text
    assert "secret" not in response.text and response.text != "outside"


@pytest.mark.parametrize("path", ["../x", "/etc/passwd", "a/../../x", "", ".", "a\\..\\b"])
def test_resolve_refuses_paths_leaving_the_area(storage: Storage, path: str) -> None:
    with pytest.raises(ReportPathError):
        resolve_report(storage, path)


def test_resolve_maps_into_the_reports_area(storage: Storage) -> None:
    resolved = resolve_report(storage, REPORT)
    assert os.path.realpath(resolved) == os.path.realpath(storage._strip(storage.path("reports", REPORT)))


def test_a_report_is_isolated_from_the_readers_session(client: Any) -> None:
    """Script in a report (Evidently writes categorical values raw into a <script> block) runs in an
    opaque origin: no cookies, no same-origin API calls (tests/e2e/test_report_isolation.py shows it
    in a browser)."""
    response = client.get(f"/reports/{REPORT}")
    assert response.status_code == 200
    assert response.headers["content-security-policy"] == "sandbox allow-scripts"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "no-referrer"
    refused = client.get("/reports/credit_risk/drift/date=2026-11-24/report.html")
    assert refused.status_code == 404 and refused.headers["x-content-type-options"] == "nosniff"


@pytest.mark.parametrize(
    ("link", "target"),
    [
        ("credit_risk/drift/date=2026-11-26/report.html", "outside.html"),  # a file outside storage
        ("credit_risk/escape", "."),  # a folder: reports/credit_risk/escape/outside.html
        ("credit_risk/drift/date=2026-11-27/report.html", "storage/landing/credit_risk/secret.html"),
        ("fraud/report.html", "storage/reports/credit_risk/drift/date=2026-11-25/report.html"),  # another use case
    ],
)
def test_a_symlink_leading_out_of_the_use_cases_reports_is_refused(
    storage: Storage, client: Any, tmp_path: Any, link: str, target: str
) -> None:
    (tmp_path / "storage" / "landing" / "credit_risk").mkdir(parents=True, exist_ok=True)
    (tmp_path / "storage" / "landing" / "credit_risk" / "secret.html").write_text("secret")
    path = tmp_path / "storage" / "reports" / link
    path.parent.mkdir(parents=True, exist_ok=True)
    path.symlink_to(tmp_path / target)
    served = f"{link}/outside.html" if link.endswith("escape") else link

    response = client.get(f"/reports/{served}")

    assert response.status_code in (403, 404), response.text
    assert response.text not in ("outside", "secret", "<html>drift report</html>")


def test_a_symlink_inside_the_use_cases_reports_is_served(storage: Storage, client: Any, tmp_path: Any) -> None:
    latest = tmp_path / "storage" / "reports" / "credit_risk" / "drift" / "latest.html"
    latest.symlink_to(tmp_path / "storage" / "reports" / REPORT)
    assert client.get("/reports/credit_risk/drift/latest.html").text == "<html>drift report</html>"


def test_a_reader_must_be_logged_in(storage: Storage) -> None:
    from fastapi.testclient import TestClient

    response = TestClient(create_app(lambda: storage)).get(f"/reports/{REPORT}")
    assert response.status_code == 401


def test_a_reader_without_access_to_the_use_case_is_refused(storage: Storage) -> None:
    from airflow.api_fastapi.core_api.security import get_user
    from fastapi.testclient import TestClient

    class Denying:
        def is_authorized_dag(self, **kwargs: Any) -> bool:
            assert kwargs["details"].id == "credit_risk__drift_monitoring"
            return False

    app = create_app(lambda: storage)
    app.dependency_overrides[get_user] = lambda: "someone"
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("airflow.api_fastapi.app.get_auth_manager", lambda: Denying())
        response = TestClient(app).get(f"/reports/{REPORT}")
    assert response.status_code == 403
    assert "credit_risk__drift_monitoring" in response.text


def test_the_plugin_mounts_the_app_lazily() -> None:
    import sys

    import mlloop_plugin

    apps = {app["url_prefix"]: app for app in mlloop_plugin.MlloopPlugin.fastapi_apps}
    assert set(apps) == {"/mlloop", "/mlloop-health"}  # the reports app and the model health view
    for app in apps.values():
        assert isinstance(app["app"], LazyApp) and app["app"]._app is None
    assert "mlloop_plugin" in sys.modules
