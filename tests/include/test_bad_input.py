"""The bad-input catalogue: every way a landed batch can be wrong, and what ingestion does about it.

Each case lands a clean generated batch, breaks it one way, and runs the ingestion step
(:func:`mlloop.ingestion.validate_landed_batch`: the GX validation the DAG's ``validate_*`` task runs).
A batch that cannot be used at all is rejected with a specific message, and nothing of it is written
downstream; a batch with some bad rows has exactly those rows quarantined, each with its reason, and
every good row goes on unchanged. The last tests follow a mixed batch further: none of its bad rows
reaches the online store, a training set or a prediction.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from mlloop.ingestion import (
    features_path,
    landing_path,
    quarantine_paths,
    validate_landed_batch,
    validated_path,
)
from mlloop.landing import land_days
from mlloop.validation import REASONS, ROW_NUMBER, BatchRejected

DAY = dt.date(2026, 3, 10)
ROWS = 300
BAD = [3, 50, 151, 299]  # rows a row-level case breaks


@dataclass(frozen=True)
class Case:
    """Break the landed file; expect a rejection naming ``says`` or ``bad_rows`` quarantined for ``says``."""

    name: str
    dataset: str
    corrupt: Callable[[Path], Any]
    says: str
    bad_rows: int | None = None  # None: the whole batch is rejected


def frame_of(path: Path) -> pd.DataFrame:
    return pq.read_table(path).to_pandas()


def at_rows(column: str, value: Any, rows: list[int] = BAD) -> Callable[[Path], None]:
    def corrupt(path: Path) -> None:
        frame = frame_of(path)
        if value is None and frame[column].dtype.kind in "iu":
            frame[column] = frame[column].astype("Int64")
        frame.loc[rows, column] = value
        pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), path)

    return corrupt


def duplicate_keys(path: Path) -> None:
    """Rows 3 and 50 get the keys of rows 151 and 299: four rows share two keys."""
    frame = frame_of(path)
    frame.loc[[3, 50], "customer_id"] = frame.loc[[151, 299], "customer_id"].to_numpy()
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), path)


def shift_time(days: int) -> Callable[[Path], None]:
    def corrupt(path: Path) -> None:
        frame = frame_of(path)
        frame.loc[BAD, "event_timestamp"] = frame.loc[BAD, "event_timestamp"] + pd.Timedelta(days=days)
        pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), path)

    return corrupt


def with_table(edit: Callable[[pa.Table], pa.Table]) -> Callable[[Path], None]:
    return lambda path: pq.write_table(edit(pq.read_table(path)), path)


def as_text(column: str) -> Callable[[pa.Table], pa.Table]:
    def edit(table: pa.Table) -> pa.Table:
        index = table.schema.get_field_index(column)
        return table.set_column(index, column, pa.array([str(v) for v in table[column].to_pylist()]))

    return edit


def garbage(path: Path) -> None:
    frame = frame_of(path)
    frame["age"] = 999
    frame["employment_type"] = "astronaut"
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), path)


CASES = [
    # the batch as a whole is unusable: rejected, nothing goes on
    Case("missing column", "observations", with_table(lambda t: t.drop(["age"])), "missing column(s) ['age']"),
    Case(
        "extra column",
        "observations",
        with_table(lambda t: t.append_column("shoe_size", pa.array([42] * t.num_rows))),
        "unexpected column(s) ['shoe_size']",
    ),
    Case(
        "wrong dtype",
        "observations",
        with_table(as_text("age")),
        "column 'age' has type string, the contract says int64",
    ),
    Case("empty file (0 bytes)", "observations", lambda p: p.write_bytes(b""), "not a readable parquet file"),
    Case("parquet with no rows", "observations", with_table(lambda t: t.slice(0, 0)), "0 row(s); the contract needs"),
    Case(
        "truncated parquet",
        "observations",
        lambda p: p.write_bytes(p.read_bytes()[: p.stat().st_size // 2]),
        "not a readable parquet file",
    ),
    Case(
        "CSV named .parquet",
        "observations",
        lambda p: p.write_text(frame_of(p).to_csv(index=False)),
        "not a readable parquet file",
    ),
    Case("100% garbage", "observations", garbage, f"{ROWS} of {ROWS} rows (100.0%) failed validation"),
    # some rows are bad: exactly those are quarantined, with the reason
    Case("nulls in the key", "observations", at_rows("customer_id", None), "customer_id is null", bad_rows=4),
    Case("duplicate keys", "observations", duplicate_keys, "customer_id duplicated in the batch", bad_rows=4),
    Case("out-of-range value", "observations", at_rows("age", 150), "age outside [18, 110]", bad_rows=4),
    Case("infinite value", "observations", at_rows("total_debt", np.inf), "total_debt outside", bad_rows=4),
    Case("unknown category", "observations", at_rows("region", "mars"), "region not one of", bad_rows=4),
    Case("null timestamp", "observations", at_rows("event_timestamp", None), "event_timestamp is null", bad_rows=4),
    Case("timestamp after the interval", "observations", shift_time(1), "event_timestamp outside", bad_rows=4),
    Case("timestamp before the interval", "observations", shift_time(-1), "event_timestamp outside", bad_rows=4),
    Case("label out of range", "labels", at_rows("defaulted", 2, [0, 1]), "defaulted outside [0, 1]", bad_rows=2),
    Case("label without key", "labels", at_rows("customer_id", None, [0, 1]), "customer_id is null", bad_rows=2),
]


@pytest.fixture
def landed(storage, spec):  # type: ignore[no-untyped-def]
    return land_days(storage, spec, [DAY - dt.timedelta(days=3), DAY], rows_per_day=ROWS, bad_row_share=0.0)[DAY]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_bad_input_catalogue(storage, spec, landed, case: Case) -> None:  # type: ignore[no-untyped-def]
    source = Path(landing_path(storage, spec, case.dataset, DAY))
    rows_in = len(frame_of(source))
    case.corrupt(source)
    rows_path, report_path = quarantine_paths(storage, spec, case.dataset, DAY)
    valid_path = validated_path(storage, spec, case.dataset, DAY)

    if case.bad_rows is None:
        with pytest.raises(BatchRejected) as err:
            validate_landed_batch(storage, spec, case.dataset, DAY)
        assert case.says in str(err.value)
        assert not storage.exists(valid_path) and not storage.exists(features_path(storage, spec, DAY))
        report = json.loads(storage.read_bytes(report_path))
        assert report["rejected"] and case.says in report["reason"]
        return

    outcome = validate_landed_batch(storage, spec, case.dataset, DAY)
    quarantined = storage.read_frame(rows_path)
    assert len(quarantined) == outcome.report.rows_quarantined == case.bad_rows
    assert quarantined[REASONS].str.contains(case.says, regex=False).all(), quarantined[REASONS].tolist()
    valid = storage.read_frame(valid_path)
    assert len(valid) + case.bad_rows == rows_in  # no good row lost
    assert json.loads(storage.read_bytes(report_path))["rows_quarantined"] == case.bad_rows


def test_a_mixed_batch_loses_no_good_row_and_keeps_their_values(storage, spec, landed) -> None:  # type: ignore[no-untyped-def]
    """Several kinds of fault in one batch, under the bad-row limit: each faulty row quarantined once,
    with all of its reasons; every other row goes on with its values untouched."""
    source = Path(landing_path(storage, spec, "observations", DAY))
    original = frame_of(source)
    frame = original.copy()
    frame["customer_id"] = frame["customer_id"].astype("Int64")
    frame.loc[[1, 2], "customer_id"] = None
    frame.loc[[5], "age"] = 7
    frame.loc[[5], "region"] = "mars"  # two faults, one row
    frame.loc[[8], "event_timestamp"] = frame.loc[8, "event_timestamp"] + pd.Timedelta(days=2)
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), source)

    validate_landed_batch(storage, spec, "observations", DAY)

    quarantined = storage.read_frame(quarantine_paths(storage, spec, "observations", DAY)[0])
    assert sorted(quarantined[ROW_NUMBER]) == [1, 2, 5, 8]
    reasons = dict(zip(quarantined[ROW_NUMBER], quarantined[REASONS], strict=True))
    assert "age outside" in reasons[5] and "region not one of" in reasons[5]
    valid = storage.read_frame(validated_path(storage, spec, "observations", DAY))
    good = original.drop(index=[1, 2, 5, 8]).reset_index(drop=True)
    pd.testing.assert_series_equal(valid["annual_income"], good["annual_income"], check_names=False)
    assert valid["customer_id"].astype("int64").tolist() == good["customer_id"].tolist()


# --------------------------------------------------------------------- nothing bad goes downstream
INGESTED = [dt.date(2026, 3, 1) + dt.timedelta(days=n) for n in range(12)]


@pytest.fixture
def ingested(storage, spec, feast_registry):  # type: ignore[no-untyped-def]
    """Twelve days with 5% faulty rows, ingested as the DAG does: validate, build features, materialize."""
    from loop_fixtures import ingest_days
    from mlloop.feature_store import materialize_interval, open_store
    from mlloop.ingestion import day_bounds

    ingest_days(storage, spec, INGESTED, rows_per_day=400, n_customers=1500, bad_row_share=0.05)
    store = open_store()
    start, end = day_bounds(INGESTED[0])[0], day_bounds(INGESTED[-1])[1]
    materialize_interval(store, [spec.features.feature_view], start, end)
    quarantined = pd.concat(
        [storage.read_frame(quarantine_paths(storage, spec, "observations", d)[0]) for d in INGESTED],
        ignore_index=True,
    )
    assert len(quarantined) >= 0.04 * 400 * len(INGESTED)
    return store, quarantined


def _keys_and_times(frame: pd.DataFrame, spec: Any) -> set[tuple[int, pd.Timestamp]]:
    key, ts = spec.entity.join_key, spec.raw.timestamp_column
    frame = frame[frame[key].notna()]
    return set(zip(frame[key].astype("int64"), pd.to_datetime(frame[ts], utc=True), strict=True))


def test_no_quarantined_row_reaches_the_online_store_a_training_set_or_a_prediction(storage, spec, ingested) -> None:  # type: ignore[no-untyped-def]
    from loop_fixtures import feature_frame, labelled_frame, train_small_model
    from mlloop.feature_store import online_features
    from mlloop.scoring import Lineage, feast_fetcher, predictions_path, score_day
    from mlloop.training_set import build_training_set, validate_training_set

    store, quarantined = ingested
    key, ts = spec.entity.join_key, spec.raw.timestamp_column
    features = feature_frame(storage, spec, INGESTED)
    features[key] = features[key].astype("int64")

    # Online: a customer with a quarantined row serves its newest *valid* row, not the bad one.
    newest_valid = features.sort_values(ts).groupby(key).tail(1).set_index(key)
    keys = sorted({int(k) for k in quarantined[key].dropna()} & set(newest_valid.index))
    assert len(keys) > 10
    online = online_features(store, spec.model.feature_service, key, keys).set_index(key)
    for column in ("age", "annual_income", "credit_utilization", "employment_type", "region"):
        expected = newest_valid.loc[keys, column].to_numpy()
        np.testing.assert_array_equal(online.loc[keys, column].to_numpy(), expected, err_msg=column)

    # Training set: no quarantined observation, and every value inside the spec's rules.
    training = build_training_set(storage, store, spec, INGESTED[-1]).frame
    assert len(training) > 1000
    assert not _keys_and_times(training, spec) & _keys_and_times(quarantined, spec)
    validate_training_set(training, spec, source="test")

    # Predictions: exactly the day's valid rows.
    day = INGESTED[-1]
    model = train_small_model(spec, labelled_frame(storage, spec, INGESTED[:6]))
    fetch = feast_fetcher(store, spec.model.feature_service)  # the real Feast point-in-time fetch
    score_day(storage, spec, day, model=model, fetch_features=fetch, lineage=Lineage("m", "1", "t"))
    scored = storage.read_frame(predictions_path(storage, spec, day))
    bad_today = quarantined[pd.to_datetime(quarantined[ts], utc=True).dt.date == day]
    assert len(bad_today) > 0
    assert not _keys_and_times(scored, spec) & _keys_and_times(bad_today, spec)
    assert _keys_and_times(scored, spec) == _keys_and_times(storage.read_frame(features_path(storage, spec, day)), spec)
