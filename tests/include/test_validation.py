"""Validation with Great Expectations: bad rows quarantined with reasons, bad batches rejected."""

from __future__ import annotations

import datetime as dt

import pyarrow as pa
import pytest

from mlloop.generators.credit_risk import generate_day
from mlloop.ingestion import day_bounds
from mlloop.validation import REASONS, ROW_NUMBER, BatchRejected, observations_contract, validate_table

DAY = dt.date(2026, 3, 10)


def table_of(frame) -> pa.Table:  # type: ignore[no-untyped-def]
    return pa.Table.from_pandas(frame, preserve_index=False)


@pytest.fixture(scope="module")
def batch():  # type: ignore[no-untyped-def]
    return generate_day(DAY, rows_per_day=600, bad_row_share=0.03)


def test_quarantine_is_exactly_the_injected_rows_with_reasons(spec, batch) -> None:  # type: ignore[no-untyped-def]
    result = validate_table(
        table_of(batch.observations), observations_contract(spec), source="t", interval=day_bounds(DAY)
    )
    assert sorted(result.quarantined[ROW_NUMBER]) == sorted(batch.injected_bad_rows)
    assert len(result.valid) + len(result.quarantined) == len(batch.observations)
    reasons = dict(zip(result.quarantined[ROW_NUMBER], result.quarantined[REASONS], strict=True))
    expected_words = {
        "null_key": "customer_id is null",
        "age_out_of_range": "age outside [18, 110]",
        "negative_income": "annual_income outside",
        "unknown_employment_type": "employment_type not one of",
        "utilization_out_of_range": "credit_utilization outside",
        "timestamp_outside_interval": "event_timestamp outside",
        "duplicate_key": "customer_id duplicated in the batch",
    }
    for row, kinds in batch.injected_bad_rows.items():
        for kind in kinds:
            assert expected_words[kind] in reasons[row], (kind, reasons[row])
    assert result.report.rows_quarantined == len(batch.injected_bad_rows)
    assert "quarantined" in result.report.summary()


def test_good_rows_keep_their_values(spec, batch) -> None:  # type: ignore[no-untyped-def]
    result = validate_table(
        table_of(batch.observations), observations_contract(spec), source="t", interval=day_bounds(DAY)
    )
    good = batch.observations.drop(index=list(batch.injected_bad_rows)).reset_index(drop=True)
    assert result.valid["annual_income"].equals(good["annual_income"])
    assert list(result.valid["customer_id"]) == list(good["customer_id"])


def test_missing_column_rejects_the_batch(spec, batch) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(BatchRejected, match=r"missing column\(s\) \['age'\]"):
        validate_table(table_of(batch.observations.drop(columns=["age"])), observations_contract(spec), source="t")


def test_extra_column_rejects_the_batch(spec, batch) -> None:  # type: ignore[no-untyped-def]
    frame = batch.observations.assign(shoe_size=42)
    with pytest.raises(BatchRejected, match=r"unexpected column\(s\) \['shoe_size'\]"):
        validate_table(table_of(frame), observations_contract(spec), source="t")


def test_wrong_type_rejects_the_batch(spec, batch) -> None:  # type: ignore[no-untyped-def]
    frame = batch.observations.assign(age=batch.observations["age"].astype(str))
    with pytest.raises(BatchRejected, match="column 'age' has type string, the contract says int64"):
        validate_table(table_of(frame), observations_contract(spec), source="t")


def test_empty_batch_is_rejected(spec, batch) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(BatchRejected, match="the file is empty"):
        validate_table(table_of(batch.observations.head(0)), observations_contract(spec), source="t")


def test_garbage_batch_is_rejected_with_the_share(spec, batch) -> None:  # type: ignore[no-untyped-def]
    frame = batch.observations.copy()
    frame["age"] = 999
    with pytest.raises(BatchRejected) as err:
        validate_table(table_of(frame), observations_contract(spec), source="t", interval=day_bounds(DAY))
    assert "600 of 600 rows (100.0%) failed validation, above the limit of 20.0%" in str(err.value)
    assert err.value.quarantined is not None and len(err.value.quarantined) == 600


def test_null_key_is_quarantined_not_a_type_error(spec, batch) -> None:  # type: ignore[no-untyped-def]
    frame = batch.observations.copy()
    frame["customer_id"] = frame["customer_id"].astype("Int64")
    frame.loc[0, "customer_id"] = None
    result = validate_table(table_of(frame), observations_contract(spec), source="t", interval=day_bounds(DAY))
    assert 0 in set(result.quarantined[ROW_NUMBER])
