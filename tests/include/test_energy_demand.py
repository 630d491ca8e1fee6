"""The energy_demand use case: a regression keyed by a string meter id, added as a spec, Feast
definitions and a generator only. Its generator is deterministic and realistic, and its data goes
through the unchanged core: validation with quarantine, features, Feast (offline and online by a
string key), a point-in-time training set and a regression model."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from mlloop.generators.energy_demand import BAD_ROW_KINDS, generate_day
from mlloop.spec import UseCaseSpec, get_spec

DAY = dt.date(2026, 3, 10)


@pytest.fixture
def energy() -> UseCaseSpec:
    return get_spec("energy_demand")


def test_the_spec_is_a_regression_on_a_string_key(energy: UseCaseSpec) -> None:
    assert (energy.model.task, energy.entity.dtype, energy.labels.dtype) == ("regression", "string", "float64")
    assert energy.dag_id("training") == "energy_demand__training"
    assert energy.generator is not None and energy.generator.drift_param == "cold_snap_from"


def test_same_day_same_data() -> None:
    pd.testing.assert_frame_equal(generate_day(DAY).observations, generate_day(DAY).observations)
    pd.testing.assert_frame_equal(generate_day(DAY).labels, generate_day(DAY).labels)


def test_meters_report_most_days_under_string_ids() -> None:
    days = [generate_day(DAY + dt.timedelta(days=i), bad_row_share=0.0).observations for i in range(3)]
    ids = [set(frame["meter_id"]) for frame in days]
    assert all(isinstance(key, str) and key.startswith("MTR-") for key in ids[0])
    assert len(ids[0] & ids[1]) > 0.75 * len(ids[0])
    assert len(ids[0] & ids[2]) > 0.75 * len(ids[0])


def test_consumption_labels_arrive_after_the_delay_for_that_days_readings() -> None:
    batch = generate_day(DAY, label_delay_days=2)
    assert set(batch.labels["event_timestamp"].dt.date) == {DAY - dt.timedelta(days=2)}
    readings = generate_day(DAY - dt.timedelta(days=2), label_delay_days=2)
    keys = set(zip(readings.observations["meter_id"], readings.observations["event_timestamp"], strict=True))
    assert all(k in keys for k in zip(batch.labels["meter_id"], batch.labels["event_timestamp"], strict=True))
    assert len(batch.labels) == len(readings.observations) - len(readings.injected_bad_rows)
    assert 5 < batch.labels["kwh"].mean() < 40 and (batch.labels["kwh"] > 0).all()


def test_faults_and_missing_values_are_injected() -> None:
    batch = generate_day(DAY, bad_row_share=0.02)
    assert {k for kinds in batch.injected_bad_rows.values() for k in kinds} == set(BAD_ROW_KINDS)
    assert batch.observations["outdoor_temp_c"].isna().sum() > 3
    assert generate_day(DAY, bad_row_share=0.0).injected_bad_rows == {}


def test_a_cold_snap_lowers_temperatures_and_raises_consumption_from_its_date_on() -> None:
    calm = generate_day(DAY, bad_row_share=0.0, label_delay_days=0)
    snap = generate_day(DAY, bad_row_share=0.0, label_delay_days=0, cold_snap_from=DAY)
    before = generate_day(DAY - dt.timedelta(days=1), bad_row_share=0.0, cold_snap_from=DAY)
    assert snap.observations["outdoor_temp_c"].mean() < calm.observations["outdoor_temp_c"].mean() - 10
    assert snap.labels["kwh"].mean() > 1.2 * calm.labels["kwh"].mean()
    pd.testing.assert_frame_equal(
        before.observations, generate_day(DAY - dt.timedelta(days=1), bad_row_share=0.0).observations
    )


@pytest.mark.integration
def test_the_unchanged_core_ingests_joins_and_trains_it(
    storage: Any, energy: UseCaseSpec, feast_registry: Path
) -> None:
    """Land -> GX validation (exactly the injected rows quarantined) -> features -> Feast online by a
    string key -> point-in-time training set -> a regression model with sane holdout metrics."""
    from mlloop.feature_store import materialize_interval, online_features, open_store
    from mlloop.ingestion import (
        day_bounds,
        features_path,
        quarantine_paths,
        validate_landed_batch,
        write_feature_partition,
    )
    from mlloop.landing import date_range, land_days
    from mlloop.training import fit_and_evaluate
    from mlloop.training_set import build_training_set, validate_training_set

    days = date_range(DAY, DAY + dt.timedelta(days=5))
    landed = land_days(storage, energy, days)
    store = open_store()
    for day in days:
        validate_landed_batch(storage, energy, "observations", day)
        validate_landed_batch(storage, energy, "labels", day)
        write_feature_partition(storage, energy, day)
        materialize_interval(store, [energy.features.feature_view], *day_bounds(day))
        quarantined = storage.read_frame(quarantine_paths(storage, energy, "observations", day)[0])
        assert sorted(quarantined["_row_number"]) == sorted(landed[day].injected_bad_rows)

    last = storage.read_frame(features_path(storage, energy, days[-1]))
    assert last["meter_id"].map(type).eq(str).all()
    known = last.sample(5, random_state=0)
    online = online_features(store, energy.model.feature_service, "meter_id", known["meter_id"].tolist())
    merged = known.merge(online, on="meter_id", suffixes=("", "_online"))
    assert len(merged) == 5
    np.testing.assert_allclose(merged["kwh_prev_7d_online"], merged["kwh_prev_7d"])

    training_set = build_training_set(storage, store, energy, days[-1])
    assert len(training_set.frame) >= energy.model.min_training_rows
    validate_training_set(training_set.frame, energy, source="test")
    trained = fit_and_evaluate(energy, training_set.frame)
    assert trained.metrics["rmse"] < energy.promotion.min_primary_metric
    assert trained.metrics["r2"] > 0.8
