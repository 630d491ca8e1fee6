"""A new use case is one YAML file: written into an empty use-case folder (MLLOOP_USE_CASES_DIR), it
gets its DAGs, its Feast objects (``feast apply`` of the unchanged feature repo), its ingestion and
its training, run by Airflow with ``dag.test()`` against a real storage root, Feast registry and
online store, and MLflow store. No Python file is added anywhere.

The spec below is the authoring guide's ``meter_baseline`` (a ridge regression on the household
energy data), with small sizes so the test is quick: labels land one day after the observations,
the holdout is one day.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest

from mlloop import tags as tag_keys

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.integration

SPEC = """
name: meter_baseline
description: A linear baseline for household electricity use (kWh per day).
owner: grid-analytics
entity: {name: household, join_key: meter_id, dtype: string, description: A household's meter.}
raw:
  unique: [meter_id]
  max_bad_row_share: 0.2
  columns:
    meter_id:        {dtype: string}
    event_timestamp: {dtype: datetime}
    region:          {dtype: string, allowed: [coastal, inland, mountain]}
    heating_type:    {dtype: string, allowed: [gas, electric, heat_pump, district]}
    tariff:          {dtype: string, allowed: [flat, time_of_use, prepaid]}
    household_size:  {dtype: int64, min: 1, max: 12}
    floor_area_m2:   {dtype: float64, min: 10, max: 1000}
    ev_chargers:     {dtype: int64, min: 0, max: 4}
    outdoor_temp_c:  {dtype: float64, nullable: true, min: -45, max: 50}
    kwh_prev_7d:     {dtype: float64, nullable: true, min: 0, max: 2000}
labels: {column: kwh, dtype: float64, delay_days: 1, min: 0, max: 1000}
features:
  feature_view: household_profile
  ttl_days: 3
  columns:
    heating_type:    {dtype: string, allowed: [gas, electric, heat_pump, district]}
    household_size:  {dtype: int64, min: 1, max: 12}
    floor_area_m2:   {dtype: float64, min: 10}
    outdoor_temp_c:  {dtype: float64, nullable: true, min: -45, max: 50}
    kwh_prev_7d:     {dtype: float64, nullable: true, min: 0}
model:
  task: regression
  feature_service: meter_baseline_v1
  numeric_features: [household_size, floor_area_m2, outdoor_temp_c, kwh_prev_7d]
  categorical_features: [heating_type]
  estimator: sklearn.linear_model.Ridge
  params: {alpha: 1.0}
  primary_metric: mae
  metrics: [mae, rmse, r2]
  holdout_days: 1
  min_training_rows: 100
  reference_sample_size: 100
promotion: {min_primary_metric: 5.0, max_regression: 0.15, segment_column: heating_type, evaluation_days: 1}
drift: {window_days: 1, sample_size: 100, drifted_share: 0.5, max_quality_drop: 1.0}
schedule: {start_date: 2026-01-01}
generator:
  callable: mlloop.generators.energy_demand:generate_day
  params: {seed: 23, n_meters: 300, report_share: 0.9, bad_row_share: 0.02}
"""

DAYS = [dt.date(2026, 5, 1) + dt.timedelta(days=i) for i in range(4)]


def run_dag(dag: Any, **conf: Any) -> dict[str, str]:
    run = dag.test(run_conf=conf)
    states = {ti.task_id: str(ti.state) for ti in run.get_task_instances()}
    states["__run__"] = str(run.state)
    return states


def test_a_use_case_from_one_yaml_file_is_ingested_and_trained_by_its_dags(
    airflow_db: Path, mlloop_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from airflow.dag_processing.dagbag import DagBag
    from mlflow import MlflowClient

    from mlloop.feature_store import apply_registry, online_features, open_store
    from mlloop.ingestion import features_path, quarantine_paths
    from mlloop.landing import land_days
    from mlloop.settings import get_settings
    from mlloop.spec import get_spec
    from mlloop.storage import Storage

    folder = tmp_path / "use_cases"
    folder.mkdir()
    (folder / "meter_baseline.yaml").write_text(SPEC)
    monkeypatch.setenv("MLLOOP_USE_CASES_DIR", str(folder))
    spec = get_spec("meter_baseline")

    apply_registry()  # what `make feast-apply` does, in-process: the feature repo is not touched
    store = open_store()
    assert store.get_feature_view("household_profile").ttl == dt.timedelta(days=3)
    assert store.get_entity("household").join_key == "meter_id"

    bag = DagBag(dag_folder=str(ROOT / "dags"))
    assert bag.import_errors == {}
    assert {dag_id.split("__")[0] for dag_id in bag.dags} == {"meter_baseline"}

    storage = Storage.from_url(get_settings().storage_root)
    landed = land_days(storage, spec, DAYS)
    ingestion = bag.get_dag(spec.dag_id("feature_ingestion"))
    for day in DAYS:
        states = run_dag(ingestion, day=day.isoformat())
        assert states["__run__"] == "success", (day, states)
        quarantined = storage.read_frame(quarantine_paths(storage, spec, "observations", day)[0])
        assert sorted(quarantined["_row_number"]) == sorted(landed[day].injected_bad_rows)

    newest = storage.read_frame(features_path(storage, spec, DAYS[-1]))
    keys = newest["meter_id"].head(5).tolist()
    online = online_features(store, spec.model.feature_service, "meter_id", keys).set_index("meter_id")
    expected = newest.set_index("meter_id").loc[keys, "floor_area_m2"]
    assert online.loc[keys, "floor_area_m2"].tolist() == pytest.approx(expected.tolist())

    states = run_dag(bag.get_dag(spec.dag_id("training")), cutoff_day=DAYS[-1].isoformat(), reason="test")
    assert states["__run__"] == "success" and states["train_and_register"] == "success", states

    uri = get_settings().mlflow_tracking_uri
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    (version,) = client.search_model_versions("name = 'meter_baseline'")
    assert version.tags[tag_keys.FEATURE_SERVICE] == "meter_baseline_v1"
    assert client.get_registered_model("meter_baseline").aliases == {"challenger": version.version}
