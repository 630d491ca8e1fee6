"""Extra links: the URLs they build, what operators record, and that the DAGs declare them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from mlloop_airflow.links import (
    DriftReportLink,
    LinkedOperatorMixin,
    MlflowRunLink,
    ModelVersionLink,
    mlflow_run_url,
    model_version_url,
    report_url,
)

DAGS = Path(__file__).resolve().parents[2] / "dags"


def test_mlflow_urls() -> None:
    assert mlflow_run_url("3", "abc", "http://mlflow:5000") == "http://mlflow:5000/#/experiments/3/runs/abc"
    assert model_version_url("credit risk", "7", "http://m") == "http://m/#/models/credit%20risk/versions/7"
    assert model_version_url("m", "7", "") == "", "no MLflow UI configured: no link"


def test_mlflow_ui_url_defaults_to_the_tracking_server_or_make_mlflow_ui(monkeypatch: pytest.MonkeyPatch) -> None:
    from mlloop.settings import get_settings

    monkeypatch.delenv("MLLOOP_MLFLOW_UI_URL", raising=False)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://mlflow:5000/")
    assert get_settings().mlflow_ui_url == "http://mlflow:5000"
    monkeypatch.delenv("MLFLOW_TRACKING_URI")
    assert get_settings().mlflow_ui_url == "http://127.0.0.1:5000"
    monkeypatch.setenv("MLLOOP_MLFLOW_UI_URL", "https://mlflow.example.com/")
    assert get_settings().mlflow_ui_url == "https://mlflow.example.com"


@pytest.mark.parametrize("root", ["/data/storage", "s3://bucket/storage"])
def test_report_urls_point_at_the_api_servers_reports_app(root: str) -> None:
    html = f"{root}/reports/credit_risk/drift/date=2026-11-25/report.html"
    assert report_url(html, root, "http://airflow:8080/") == (
        "http://airflow:8080/mlloop/reports/credit_risk/drift/date=2026-11-25/report.html"
    )
    assert report_url(html, root, "").startswith("/mlloop/reports/"), "no base URL: relative to the UI"
    assert report_url(f"{root}/landing/x.parquet", root, "http://a") == ""
    assert report_url(f"{root}/reports/../landing/x.parquet", root, "http://a") == ""


def test_an_operator_links_what_it_recorded_and_nothing_else() -> None:
    class Recorder(LinkedOperatorMixin):
        pass

    op: Any = Recorder()
    assert MlflowRunLink().get_link(op, ti_key=None) == ""  # type: ignore[arg-type]
    op.link_to_model_version("credit_risk", 4)
    op.link_to("drift_report", "http://a/mlloop/reports/x.html")
    assert ModelVersionLink().get_link(op, ti_key=None).endswith("/#/models/credit_risk/versions/4")  # type: ignore[arg-type]
    assert DriftReportLink().get_link(op, ti_key=None) == "http://a/mlloop/reports/x.html"  # type: ignore[arg-type]
    assert MlflowRunLink().get_link(op, ti_key=None) == ""  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("dag_file", "task_id", "links"),
    [
        ("training.py", "train_and_register", {"MLflow run", "MLflow model version"}),
        ("promotion.py", "evaluate_challenger", {"MLflow model version"}),
        ("promotion.py", "promote_challenger", {"MLflow model version"}),
        ("rollback.py", "rollback_champion", {"MLflow model version"}),
        ("batch_scoring.py", "resolve_champion", {"MLflow model version"}),
        ("drift_monitoring.py", "compute_drift", {"Drift report", "MLflow run", "MLflow model version"}),
        ("drift_monitoring.py", "decide_retrain", {"Drift report"}),
    ],
)
def test_the_dags_serialize_their_links_for_the_ui(dag_file: str, task_id: str, links: set[str]) -> None:
    """The API server knows a task's links only from the serialized DAG (name -> XCom key)."""
    from airflow.dag_processing.dagbag import DagBag
    from airflow.serialization.serialized_objects import DagSerialization

    bag = DagBag(dag_folder=str(DAGS / dag_file))
    for dag in bag.dags.values():
        serialized = DagSerialization.to_dict(dag)["dag"]
        (task,) = [t["__var"] for t in serialized["tasks"] if t["__var"]["task_id"] == task_id]
        assert set(task["_operator_extra_links"]) == links, dag.dag_id
