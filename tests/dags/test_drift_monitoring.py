"""The drift monitoring DAG through Airflow (dag.test): reports, the retrain trigger and its debounce."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from loop_fixtures import (
    SMALL,
    dag_runs,
    delete_dag_runs,
    ensure_dag_in_db,
    feature_frame,
    labelled_frame,
    register_champion,
    run_dag,
    task_states,
    write_clean_features,
    xcom_value,
)
from mlloop.drift import marker_path, read_marker, write_marker
from mlloop.drift_report import check_quality, labelled_predictions, report_paths
from mlloop.landing import date_range
from mlloop.registry import load_model, mlflow_client
from mlloop.scoring import Lineage, score_day

pytestmark = pytest.mark.integration

DAG_ID = "credit_risk__drift_monitoring"
TRAINING = "credit_risk__training"
DAYS = date_range(dt.date(2026, 11, 1), dt.date(2026, 11, 12))
DAY = DAYS[-1]
SHOCK = dt.date(2026, 11, 7)


def prepare(storage, spec, *, shock: bool):  # type: ignore[no-untyped-def]
    """Features of every day, a champion trained on the first days, and the days it scored since."""
    overrides = {**SMALL, **({"income_shock_from": SHOCK} if shock else {})}
    write_clean_features(storage, spec, DAYS, **overrides)
    champion = register_champion(spec, labelled_frame(storage, spec, DAYS[:4]))
    model = load_model(champion)
    everything = feature_frame(storage, spec, DAYS)
    everything[spec.entity.join_key] = everything[spec.entity.join_key].astype("int64")
    for day in DAYS[4:]:
        score_day(
            storage, spec, day, model=model, fetch_features=lambda e: everything, lineage=Lineage.of(champion, "t")
        )
    ensure_dag_in_db(TRAINING)
    delete_dag_runs(TRAINING)
    return champion


def test_calm_data_is_a_green_run_without_retrain(airflow_db, storage, spec) -> None:  # type: ignore[no-untyped-def]
    champion = prepare(storage, spec, shock=False)
    # The champion performs on recent labels as it did on its holdout.
    measured = check_quality(labelled_predictions(storage, spec, DAY), spec, champion.version, None).current
    mlflow_client().log_metric(champion.run_id, f"holdout_{spec.model.primary_metric}", measured)

    dag_run = run_dag(DAG_ID, DAY)

    assert dag_run.state == "success"
    states = task_states(dag_run)
    assert states["compute_drift"] == "success"
    assert states["decide_retrain"] == "success"
    assert states["trigger_training"] == "skipped"
    assert states["record_trigger"] == "skipped"
    assert dag_runs(TRAINING) == []
    html, summary_path = report_paths(storage, spec, DAY)
    summary = json.loads(storage.read_bytes(summary_path))
    assert summary["verdict"]["drift"] is False, summary["verdict"]["headline"]
    assert storage.exists(html)
    assert xcom_value(dag_run, "decide_retrain", "decision") == {
        "trigger": False,
        "reason": "no drift: nothing to retrain",
    }
    assert read_marker(storage, spec) is None


def test_drift_triggers_training_once_then_debounces(airflow_db, storage, spec) -> None:  # type: ignore[no-untyped-def]
    prepare(storage, spec, shock=True)

    first = run_dag(DAG_ID, DAY)

    assert first.state == "success", task_states(first)
    assert task_states(first)["trigger_training"] == "success"
    [training] = dag_runs(TRAINING)
    assert training.state == "queued"
    conf = training.conf
    assert set(conf) == {"reason", "cutoff_day", "drift", "drift_report"}
    assert conf["cutoff_day"] == DAY.isoformat()
    assert conf["reason"].startswith(f"drift detected on {DAY.isoformat()}: ")
    assert "annual_income" in conf["drift"]["key_features_drifted"]
    assert conf["drift"]["drifted_share"] >= spec.drift.drifted_share
    html, summary_path = report_paths(storage, spec, DAY)
    assert conf["drift_report"] == html
    assert storage.exists(html)
    assert json.loads(storage.read_bytes(summary_path))["verdict"]["drift"] is True
    marker = read_marker(storage, spec)
    assert marker is not None and marker.training_run_id == training.run_id

    # The retrain is still queued: a second drift run must not start another one.
    second = run_dag(DAG_ID, DAY)
    assert second.state == "success"
    assert task_states(second)["trigger_training"] == "skipped"
    assert "already queued or running" in xcom_value(second, "decide_retrain", "decision")["reason"]
    assert len(dag_runs(TRAINING)) == 1

    # It finished, but the cooldown since the last drift-triggered retrain has not passed.
    _finish(training)
    third = run_dag(DAG_ID, DAY)
    assert task_states(third)["trigger_training"] == "skipped"
    assert "cooldown" in xcom_value(third, "decide_retrain", "decision")["reason"]
    assert len(dag_runs(TRAINING)) == 1

    # After the cooldown, persisting drift retrains again.
    hours = spec.drift.cooldown_hours + 1
    write_marker(storage, spec, marker.__class__(**{**marker.__dict__, "triggered_at": _hours_ago(hours)}))
    fourth = run_dag(DAG_ID, DAY)
    assert task_states(fourth)["trigger_training"] == "success"
    assert len(dag_runs(TRAINING)) == 2
    assert storage.exists(marker_path(storage, spec))


def _hours_ago(hours: float) -> dt.datetime:
    return dt.datetime.now(dt.UTC) - dt.timedelta(hours=hours)


def _finish(dag_run) -> None:  # type: ignore[no-untyped-def]
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session

    with create_session() as session:
        session.query(DagRun).filter_by(id=dag_run.id).update({"state": "success"})
