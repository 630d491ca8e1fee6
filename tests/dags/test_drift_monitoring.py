"""The drift monitoring DAG through Airflow (dag.test): reports, the retrain trigger and its debounce."""

from __future__ import annotations

import datetime as dt
import json
import math

import pytest

from loop_fixtures import (
    SMALL,
    dag_runs,
    delete_dag_runs,
    ensure_dag_in_db,
    feature_frame,
    labelled_frame,
    lookup_fetcher,
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
from spec_variants import use_spec_variant

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
    fetch = lookup_fetcher(feature_frame(storage, spec, DAYS), spec)
    for day in DAYS[4:]:
        score_day(storage, spec, day, model=model, fetch_features=fetch, lineage=Lineage.of(champion, "t"))
    ensure_dag_in_db(TRAINING)
    delete_dag_runs(TRAINING)
    return champion


def test_calm_data_is_a_green_run_without_retrain(airflow_db, storage, spec, capfd) -> None:  # type: ignore[no-untyped-def]
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
    # On call: one summary in decide_retrain's log, and links from the tasks to the report and MLflow.
    summary_line = f"Drift check of credit_risk for {DAY} against credit_risk v{champion.version}: no drift"
    assert summary_line in capfd.readouterr().out
    report_link = xcom_value(dag_run, "compute_drift", "_link_DriftReportLink")
    assert report_link.endswith(f"/mlloop/reports/credit_risk/drift/date={DAY}/report.html")
    assert xcom_value(dag_run, "decide_retrain", "_link_DriftReportLink") == report_link
    assert f"/#/models/credit_risk/versions/{champion.version}" in xcom_value(
        dag_run, "compute_drift", "_link_ModelVersionLink"
    )
    assert "/runs/" in xcom_value(dag_run, "compute_drift", "_link_MlflowRunLink")


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

    # The cooldown is data time: a retrain triggered for this very day, however long ago on the wall
    # clock (a replay of history), still debounces it.
    long_ago = {**marker.__dict__, "triggered_at": _hours_ago(spec.drift.cooldown_hours * 10)}
    write_marker(storage, spec, marker.__class__(**long_ago))
    replayed = run_dag(DAG_ID, DAY)
    assert task_states(replayed)["trigger_training"] == "skipped"
    assert "cooldown" in xcom_value(replayed, "decide_retrain", "decision")["reason"]

    # After the cooldown in data days (the last trigger was for an earlier day), drift retrains again.
    days = math.ceil(spec.drift.cooldown_hours / 24)
    earlier = {**marker.__dict__, "day": (DAY - dt.timedelta(days=days)).isoformat()}
    write_marker(storage, spec, marker.__class__(**earlier))
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


def test_a_burst_of_drift_starts_one_retrain_and_a_failed_retrain_leaves_the_champion(  # type: ignore[no-untyped-def]
    airflow_db, storage, spec, feast_registry, tmp_path, monkeypatch
) -> None:
    """Drift found on three days running (a backfill, or a storm of alerts): one training run. That run
    fails (an upstream bug left every label 0: its training set is refused): no version is registered,
    the champion stays, and the cooldown still holds for the next drift."""

    from mlloop.registry import CHAMPION, aliases

    # Enough labels for this small data to train on (the point is how the retrain fails, not size),
    # and a cooldown longer than the burst, in data time: the check of the burst's last day is still in it.
    use_spec_variant(monkeypatch, tmp_path, model={"min_training_rows": 500}, drift={"cooldown_hours": 24 * len(DAYS)})
    champion = prepare(storage, spec, shock=True)
    client = mlflow_client()
    registered = {str(mv.version) for mv in client.search_model_versions("name = 'credit_risk'")}

    burst = [run_dag(DAG_ID, day) for day in DAYS[-3:]]

    assert [task_states(run)["trigger_training"] for run in burst] == ["success", "skipped", "skipped"]
    [training] = dag_runs(TRAINING)
    for later in burst[1:]:
        assert "already queued or running" in xcom_value(later, "decide_retrain", "decision")["reason"]

    for path in storage.glob(storage.path("features", spec.name, "labels", "date=*", "data.parquet")):
        frame = storage.read_frame(path)
        storage.write_frame(frame.assign(**{spec.labels.column: 0}), path)
    from pathlib import Path

    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(Path(__file__).resolve().parents[2] / "dags" / "training.py"))
    retrain = bag.dags[TRAINING].test(run_conf=training.conf)

    assert retrain.state == "failed"
    assert task_states(retrain)["validate_training_set"] == "failed"
    assert task_states(retrain)["train_and_register"] == "upstream_failed"
    assert {str(mv.version) for mv in client.search_model_versions("name = 'credit_risk'")} == registered
    assert aliases(client, "credit_risk").get(CHAMPION) == champion.version

    _finish(training)
    after = run_dag(DAG_ID, DAY)
    assert task_states(after)["trigger_training"] == "skipped"
    assert "cooldown" in xcom_value(after, "decide_retrain", "decision")["reason"]
