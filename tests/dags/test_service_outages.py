"""Outages through Airflow (dag.test, retries included): MLflow's tracking server down, the Feast
online store (Redis) down, the storage root gone. Each task retries with backoff, then fails with a
message naming what is down and what to do; once the service is back a rerun completes and nothing
is written twice.

The services are real processes started here on 127.0.0.1 (never the machine's shared ones):
``mlflow server`` and ``redis-server``, stopped and started again by the test.
"""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path
from typing import Any

import pytest

from local_servers import free_port, mlflow_server, redis_server
from loop_fixtures import SMALL, labelled_frame, register_champion, run_dag, write_clean_features
from mlloop.ingestion import features_path
from mlloop.landing import date_range, land_days
from mlloop.scoring import predictions_path

pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]

DAYS = date_range(dt.date(2026, 11, 1), dt.date(2026, 11, 6))
DAY = DAYS[-1]


def states(dag_run: Any) -> dict[str, tuple[str, int]]:
    """task id -> (final state, tries)."""
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session

    with create_session() as session:
        tis = session.query(TaskInstance).filter_by(dag_id=dag_run.dag_id, run_id=dag_run.run_id).all()
        return {ti.task_id: (str(ti.state), ti.try_number) for ti in tis}


def retried_then_failed(dag_run: Any, task_id: str) -> None:
    from mlloop_airflow.dag_defaults import default_args

    retries = default_args(_spec())["retries"]
    assert dag_run.state == "failed"
    assert states(dag_run)[task_id] == ("failed", retries + 1), states(dag_run)


def _spec() -> Any:
    from mlloop.spec import get_spec

    return get_spec("credit_risk")


def test_mlflow_down_retries_then_explains_and_a_rerun_scores_once(  # type: ignore[no-untyped-def]
    airflow_db, mlloop_home, storage, spec, feast_registry, monkeypatch, capfd, tmp_path
) -> None:
    port = free_port()
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"http://127.0.0.1:{port}")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")  # Airflow's retries are the backoff here
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "20")
    write_clean_features(storage, spec, DAYS, **SMALL)
    with mlflow_server(tmp_path, port):
        champion = register_champion(spec, labelled_frame(storage, spec, DAYS[:3]))
    capfd.readouterr()

    down = run_dag(spec.dag_id("batch_scoring"), DAY)  # the server is stopped

    retried_then_failed(down, "resolve_champion")
    log = capfd.readouterr().out
    assert log.count(f"MLflow is unreachable at http://127.0.0.1:{port}") >= 3  # once per try
    assert "Check that the tracking server runs and that MLFLOW_TRACKING_URI points at it" in log
    assert not storage.exists(predictions_path(storage, spec, DAY))

    with mlflow_server(tmp_path, port):
        rerun = run_dag(spec.dag_id("batch_scoring"), DAY)
    assert rerun.state == "success", states(rerun)
    out = storage.read_frame(predictions_path(storage, spec, DAY))
    features = storage.read_frame(features_path(storage, spec, DAY))
    assert len(out) == len(features) and out[spec.entity.join_key].is_unique
    assert set(out["model_version"]) == {champion.version}
    assert storage.glob(storage.path("staging", spec.name, "predictions", "date=*", "*")) == []


def test_online_store_down_retries_then_explains_and_a_rerun_materializes(  # type: ignore[no-untyped-def]
    airflow_db, mlloop_home, storage, spec, monkeypatch, capfd, tmp_path
) -> None:
    import json

    from mlloop.feature_store import apply_registry, online_features, open_store

    port = free_port()
    monkeypatch.setenv(
        "MLLOOP_FEAST_ONLINE_STORE", json.dumps({"type": "redis", "connection_string": f"127.0.0.1:{port}"})
    )
    landed = land_days(storage, spec, [DAY], **SMALL, bad_row_share=0.0)[DAY]
    with redis_server(tmp_path, port):
        apply_registry()
    capfd.readouterr()

    down = run_dag(spec.dag_id("feature_ingestion"), DAY)  # Redis is stopped

    retried_then_failed(down, "materialize_online")
    assert states(down)["build_features"] == ("success", 1)
    log = capfd.readouterr().out
    assert log.count(f"The Feast online store (redis at 127.0.0.1:{port}) is unreachable") >= 3
    written = storage.read_bytes(features_path(storage, spec, DAY))

    with redis_server(tmp_path, port):
        rerun = run_dag(spec.dag_id("feature_ingestion"), DAY)
        assert rerun.state == "success", states(rerun)
        keys = landed.observations[spec.entity.join_key].head(5).tolist()
        online = online_features(open_store(), spec.model.feature_service, spec.entity.join_key, keys)
    assert online["annual_income"].notna().all()
    assert storage.read_bytes(features_path(storage, spec, DAY)) == written  # replaced, identical, not appended


def test_storage_root_gone_fails_the_sensor_with_the_cause_not_a_12h_wait(  # type: ignore[no-untyped-def]
    airflow_db, mlloop_home, storage, spec, feast_registry, capfd, monkeypatch
) -> None:
    monkeypatch.setenv("MLLOOP_STORAGE_ROOT", storage.url)  # a configured root: a mount that can go away
    land_days(storage, spec, [DAY], **SMALL)
    root = Path(storage.url)
    unmounted = root.with_name("storage-unmounted")
    root.rename(unmounted)  # the volume is gone
    capfd.readouterr()
    try:
        down = run_dag(spec.dag_id("feature_ingestion"), DAY)
    finally:
        if root.exists():  # nothing may have recreated it behind the outage
            shutil.rmtree(root)
            pytest.fail("a task wrote into a storage root that was not there")
        unmounted.rename(root)

    retried_then_failed(down, "wait_for_raw_batch")
    log = capfd.readouterr().out
    assert log.count(f"storage root {root} does not exist or is not a folder. Is the volume mounted") >= 3

    rerun = run_dag(spec.dag_id("feature_ingestion"), DAY)
    assert rerun.state == "success", states(rerun)
    assert storage.glob(storage.path("features", spec.name, spec.features.feature_view, "date=*", "*")) == [
        features_path(storage, spec, DAY)
    ]
