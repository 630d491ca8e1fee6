"""The hourly_temps use case: a real data set (vega_datasets' hourly temperatures of 2010) landed
by ``mlloop.land_dataset`` and run through the unchanged core: validation, features, the training
ledger and a regression model."""

from __future__ import annotations

import datetime as dt

import pytest

from mlloop.ingestion import landing_path, validate_landed_batch, write_feature_partition
from mlloop.land_dataset import land
from mlloop.landing import date_range
from mlloop.spec import UseCaseSpec, get_spec

START, END = dt.date(2010, 3, 1), dt.date(2010, 3, 21)


@pytest.fixture
def temps() -> UseCaseSpec:
    return get_spec("hourly_temps")


def test_landing_writes_48_hours_a_day_with_next_day_labels_and_the_missing_hour(storage, temps) -> None:  # type: ignore[no-untyped-def]
    lines = land(storage, temps, START, END)
    assert len(lines) == len(date_range(START, END))
    day = dt.date(2010, 3, 10)
    observations = storage.read_frame(landing_path(storage, temps, "observations", day))
    labels = storage.read_frame(landing_path(storage, temps, "labels", day))
    assert len(observations) == 48 and observations["station_hour"].is_unique
    assert {"seattle-07", "san_francisco-23"} <= set(observations["station_hour"])
    assert set(labels["event_timestamp"].dt.date) == {day - dt.timedelta(days=1)}
    assert observations["temp_prev_day"].notna().all()
    # 2010-03-14 03:00 is missing from the data in both cities: two fewer entities that day.
    dst = storage.read_frame(landing_path(storage, temps, "observations", dt.date(2010, 3, 14)))
    assert len(dst) == 46 and "seattle-03" not in set(dst["station_hour"])
    # Landing again replaces the same days and nothing else.
    assert land(storage, temps, day, day) == [lines[(day - START).days]]


def test_the_core_ingests_decides_and_trains_it(storage, temps) -> None:  # type: ignore[no-untyped-def]
    from mlloop.training import fit_and_evaluate
    from mlloop.training_requests import decide_training_due
    from mlloop.training_set import read_labels

    land(storage, temps, START, END)
    for day in date_range(START, END):
        for dataset in ("observations", "labels"):
            outcome = validate_landed_batch(storage, temps, dataset, day)
            assert outcome.quarantine_path is None, (day, dataset, outcome.report.summary())
        write_feature_partition(storage, temps, day)
    due = [d for d in date_range(START, END) if decide_training_due(storage, temps, d).train]
    # Nothing is recorded here, so every day from the first with enough labels is "due"; the first
    # is the day the 28-day window holds min_training_rows (400) labelled hours: ~9 days in.
    assert due and due[0] == START + dt.timedelta(days=9)

    import pandas as pd

    frames = []
    for day in date_range(START, END):
        features = storage.read_frame(
            storage.path("features", "hourly_temps", "city_hour_history", f"date={day}", "data.parquet")
        )
        frames.append(features)
    features = pd.concat(frames, ignore_index=True)
    labels = read_labels(storage, temps, START, END)
    frame = features.merge(labels, on=["station_hour", "event_timestamp"])
    trained = fit_and_evaluate(temps, frame)
    assert trained.metrics["rmse"] < temps.promotion.min_primary_metric


def test_the_spec_ends_on_the_last_day_the_data_set_lands(storage, temps) -> None:  # type: ignore[no-untyped-def]
    """Issue 13: the real history ends (2010-12-31), so ``schedule.end_date`` says so and unpausing the
    use case plans no run for a day that will never land."""
    end = temps.schedule.end_date
    assert end is not None, "hourly_temps.yaml has no schedule.end_date"
    lines = land(storage, temps, end - dt.timedelta(days=1), end + dt.timedelta(days=2))
    assert [line.split(":")[0] for line in lines] == [str(end - dt.timedelta(days=1)), str(end)]
