"""The bundled synthetic generator: deterministic, realistic structure, switchable drift."""

from __future__ import annotations

import datetime as dt

import pandas as pd

from mlloop.generators.credit_risk import BAD_ROW_KINDS, generate_day

DAY = dt.date(2026, 3, 10)


def test_same_day_same_data() -> None:
    pd.testing.assert_frame_equal(generate_day(DAY).observations, generate_day(DAY).observations)
    pd.testing.assert_frame_equal(generate_day(DAY).labels, generate_day(DAY).labels)


def test_customers_recur_across_days() -> None:
    ids = [set(generate_day(DAY + dt.timedelta(days=i)).observations["customer_id"].dropna()) for i in range(3)]
    assert len(ids[0] & ids[1]) > 50
    assert len(ids[0] & ids[2]) > 50


def test_labels_arrive_after_the_delay_for_that_days_applications() -> None:
    batch = generate_day(DAY, label_delay_days=3)
    labeled_days = set(batch.labels["event_timestamp"].dt.date)
    assert labeled_days == {DAY - dt.timedelta(days=3)}
    applications = generate_day(DAY - dt.timedelta(days=3), label_delay_days=3).observations
    # every label refers to a real application of that day
    keys = set(zip(applications["customer_id"].astype("Int64"), applications["event_timestamp"], strict=True))
    assert all(k in keys for k in zip(batch.labels["customer_id"], batch.labels["event_timestamp"], strict=True))
    assert 0.02 < batch.labels["defaulted"].mean() < 0.2


def test_faults_and_missing_values_are_injected() -> None:
    batch = generate_day(DAY, rows_per_day=1000, bad_row_share=0.02)
    kinds = {k for kinds in batch.injected_bad_rows.values() for k in kinds}
    assert kinds == set(BAD_ROW_KINDS)
    assert batch.observations["annual_income"].isna().sum() > 5
    assert generate_day(DAY, bad_row_share=0.0).injected_bad_rows == {}


def test_income_shock_shifts_income_from_its_date_on() -> None:
    before = generate_day(DAY - dt.timedelta(days=1), income_shock_from=DAY).observations
    after = generate_day(DAY, income_shock_from=DAY).observations
    baseline = generate_day(DAY).observations
    assert after["annual_income"].median() < 0.8 * baseline["annual_income"].median()
    unshocked = generate_day(DAY - dt.timedelta(days=1)).observations
    pd.testing.assert_frame_equal(before, unshocked)
