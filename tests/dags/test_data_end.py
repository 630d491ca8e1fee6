"""History that lies in the past: no scheduled run for a day that cannot come, and no 12-hour wait.

A use case on a data set of 2011. With ``schedule.end_date`` the per-interval DAGs carry Airflow's own
``end_date``, so the scheduler plans no run at all (what it computes when the DAG is unpaused:
``next_dagrun_info`` of the serialized DAG, as the scheduler uses it). Without it, unpausing with
``catchup=False`` still plans a run for yesterday (Airflow's behaviour, the issue's stray run); its
sensor then finds the newest landed day years older and skips at once, saying why, instead of waiting
``raw_batch_timeout_hours``.
"""

from __future__ import annotations

import copy
import datetime as dt
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pandas as pd
import pytest
from airflow.sdk.exceptions import AirflowSkipException

from spec_variants import use_spec_variant

ROOT = Path(__file__).resolve().parents[2]
PER_INTERVAL = {
    "feature_ingestion": ("wait_for_raw_batch", "landing", "observations", "batch.parquet"),
    "batch_scoring": ("wait_for_features", "features", "customer_profile", "data.parquet"),
    "drift_monitoring": ("wait_for_predictions", "predictions", None, "data.parquet"),
}
HISTORY = [dt.date(2011, 12, 29), dt.date(2011, 12, 30), dt.date(2011, 12, 31)]


def load_dags(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, **schedule: Any) -> dict[str, Any]:
    """The bundled use case's DAGs, its spec's schedule moved to 2011 (plus ``schedule``)."""
    from airflow.dag_processing.dagbag import DagBag

    use_spec_variant(monkeypatch, tmp_path / "use_cases", schedule={"start_date": dt.date(2011, 1, 1), **schedule})
    bag = DagBag(dag_folder=str(ROOT / "dags"))
    assert bag.import_errors == {}
    return bag.dags


def planned_run(dag: Any) -> Any:
    """The first run the scheduler creates once the DAG is unpaused (no automated run yet)."""
    from airflow.serialization.serialized_objects import DagSerialization

    return DagSerialization.from_dict(DagSerialization.to_dict(dag)).next_dagrun_info(last_automated_run_info=None)


@pytest.mark.parametrize("stage", sorted(PER_INTERVAL))
def test_a_data_set_that_ended_gets_no_scheduled_run(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, stage: str
) -> None:
    dags = load_dags(monkeypatch, tmp_path, end_date=dt.date(2011, 12, 31))
    dag = dags[f"credit_risk__{stage}"]
    assert dag.end_date == dt.datetime(2011, 12, 31, tzinfo=dt.UTC)
    assert planned_run(dag) is None


def test_unpausing_the_bundled_real_history_plans_no_run() -> None:
    """The shipped ``hourly_temps`` (vega_datasets' 2010) as it is: unpausing it creates no run for
    yesterday, whose sensor would wait for a day the data set never has."""
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(ROOT / "dags"))
    assert bag.import_errors == {}
    for stage in sorted(PER_INTERVAL):
        assert planned_run(bag.dags[f"hourly_temps__{stage}"]) is None, stage


def scheduled_context(info: Any) -> dict[str, Any]:
    """What the sensor of the scheduled run planned by ``info`` sees (its day comes from the interval)."""
    return {
        "dag_run": SimpleNamespace(run_type="scheduled"),
        "data_interval_start": info.data_interval.start,
        "data_interval_end": info.data_interval.end,
    }


def sensor_of(dag: Any, task_id: str) -> Any:
    sensor = copy.copy(dag.task_dict[task_id])
    sensor.day = None  # what "{{ params.day }}" renders to in a scheduled run
    return sensor


def land_history(storage: Any, area: str, dataset: str | None, filename: str) -> None:
    for day in HISTORY:
        storage.write_frame(pd.DataFrame({"a": [1]}), storage.partition(area, "credit_risk", dataset, day, filename))


@pytest.mark.parametrize("stage", sorted(PER_INTERVAL))
def test_the_stray_run_of_a_history_far_in_the_past_skips_at_once_and_says_why(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, storage: Any, stage: str
) -> None:
    task_id, area, dataset, filename = PER_INTERVAL[stage]
    dag = load_dags(monkeypatch, tmp_path)[f"credit_risk__{stage}"]
    stray = planned_run(dag)
    # Airflow plans the latest complete interval (catchup=False): the run for yesterday.
    assert stray is not None
    assert stray.data_interval.start.date() >= dt.datetime.now(dt.UTC).date() - dt.timedelta(days=2)
    land_history(storage, area, dataset, filename)

    with pytest.raises(AirflowSkipException) as skipped:
        sensor_of(dag, task_id).poke(scheduled_context(stray))

    message = str(skipped.value)
    assert f"is 2011-12-31, {(stray.data_interval.start.date() - HISTORY[-1]).days} days before" in message
    assert "set schedule.end_date: 2011-12-31 in the spec" in message


def test_a_recent_gap_a_backfill_and_a_manual_run_still_wait(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, storage: Any
) -> None:
    dag = load_dags(monkeypatch, tmp_path)["credit_risk__feature_ingestion"]
    land_history(storage, "landing", "observations", "batch.parquet")
    sensor = sensor_of(dag, "wait_for_raw_batch")
    within = dt.datetime(2012, 1, 7, tzinfo=dt.UTC)  # 7 days after the newest landed day: a late feed
    info = SimpleNamespace(data_interval=SimpleNamespace(start=within, end=within + dt.timedelta(days=1)))
    assert sensor.poke(scheduled_context(info)) is False
    far = dt.datetime(2026, 11, 29, tzinfo=dt.UTC)
    for run_type in ("backfill", "manual"):
        context = {"dag_run": SimpleNamespace(run_type=run_type), "data_interval_start": far}
        assert sensor.poke(context) is False  # someone asked for that day: wait for it


def test_a_scheduled_run_waits_while_a_backfill_is_still_building_the_days_before_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, storage: Any
) -> None:
    """The demo's race: unpausing creates scoring's run for yesterday while the backfill has built only
    the first of the landed days' features. The landed batches are the data on its way: wait."""
    dag = load_dags(monkeypatch, tmp_path)["credit_risk__batch_scoring"]
    land_history(storage, "features", "customer_profile", "data.parquet")  # built so far: up to 12-31
    recent = dt.date(2012, 1, 9)
    storage.write_frame(
        pd.DataFrame({"a": [1]}), storage.partition("landing", "credit_risk", "observations", recent, "batch.parquet")
    )
    day = dt.datetime(2012, 1, 10, tzinfo=dt.UTC)  # 10 days after the newest features, 1 after the newest batch
    info = SimpleNamespace(data_interval=SimpleNamespace(start=day, end=day + dt.timedelta(days=1)))
    assert sensor_of(dag, "wait_for_features").poke(scheduled_context(info)) is False


def test_a_day_after_the_end_date_is_not_waited_for_even_by_hand(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, storage: Any
) -> None:
    dag = load_dags(monkeypatch, tmp_path, end_date=dt.date(2011, 12, 31))["credit_risk__feature_ingestion"]
    sensor = sensor_of(dag, "wait_for_raw_batch")
    sensor.day = "2012-01-01"
    with pytest.raises(AirflowSkipException, match=r"2012-01-01 is after credit_risk.s schedule\.end_date 2011-12-31"):
        sensor.poke({"dag_run": SimpleNamespace(run_type="manual")})
