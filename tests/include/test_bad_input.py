"""The bad-input catalogue: every way a landed batch can be wrong, and what ingestion does about it.

Each case lands a clean generated batch, breaks it one way, and runs the ingestion step
(:func:`mlloop.ingestion.validate_landed_batch`: the GX validation the DAG's ``validate_*`` task runs).
A batch that cannot be used at all is rejected with a specific message, and nothing of it is written
downstream; a batch with some bad rows has exactly those rows quarantined, each with its reason, and
every good row goes on unchanged. The last tests follow a mixed batch further: none of its bad rows
reaches the online store, a training set or a prediction.

Issue 14 adds batches as other teams' pandas and Spark jobs write them (docs/data_contracts.md): NaN
in int columns, uint64 keys, ``string_view``, a key stored as the pandas index, zones pandas does not
know, repeated column names; string join keys with the key rules and a spec ``pattern``; label
corrections (the latest delivery wins) and label time rules; a failed rerun leaving no stale
"accepted"; and a pandas producer followed end to end. (The race of two writers of one partition is
``test_storage_race.py``; bounded trigger Params are ``tests/dags/test_trigger_params.py``.)
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


# --- how real producers write batches (issue 14): plain pandas, Spark, Arrow
def pandas_nan(column: str, rows: list[int] = BAD) -> Callable[[Path], None]:
    """Plain pandas: an int column with missing values is written as float64 with NaN."""

    def corrupt(path: Path) -> None:
        frame = frame_of(path)
        frame[column] = frame[column].astype("float64")
        frame.loc[rows, column] = np.nan
        frame.to_parquet(path)

    return corrupt


def pandas_value(column: str, value: Any, rows: list[int] = BAD) -> Callable[[Path], None]:
    def corrupt(path: Path) -> None:
        frame = frame_of(path)
        frame[column] = frame[column].astype("float64")
        frame.loc[rows, column] = value
        frame.to_parquet(path)

    return corrupt


def uint64_keys(path: Path) -> None:
    """Keys as uint64, four of them above int64's maximum (``astype('int64')`` would wrap them)."""
    frame = frame_of(path)
    keys = frame["customer_id"].astype("uint64").to_numpy()
    keys[BAD] = [2**64 - 1, 2**64 - 2, 2**63, 2**63 + 5]
    frame["customer_id"] = keys
    frame.to_parquet(path)


def label_time(when: str, rows: list[int]) -> Callable[[Path], None]:
    return at_rows("event_timestamp", pd.Timestamp(when, tz="UTC"), rows)


def in_zone(zone: str) -> Callable[[pa.Table], pa.Table]:
    """The same instants, labelled with a zone (pyarrow accepts any string; pandas does not)."""

    def edit(table: pa.Table) -> pa.Table:
        index = table.schema.get_field_index("event_timestamp")
        column = table.column(index).cast(pa.timestamp("us", tz="UTC")).cast(pa.timestamp("us", tz=zone))
        return table.set_column(index, "event_timestamp", column)

    return edit


def twice(column: str) -> Callable[[pa.Table], pa.Table]:
    return lambda table: pa.table([*table.columns, table.column(column)], names=[*table.schema.names, column])


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
    # issue 14: batches as other teams' pandas and Spark jobs write them
    Case(
        "int key with NaN, written by plain pandas (float64)",
        "observations",
        pandas_nan("customer_id"),
        "customer_id is null (null in a non-nullable column)",
        bad_rows=4,
    ),
    Case(
        "label with NaN, written by plain pandas (float64)",
        "labels",
        pandas_nan("defaulted", [0, 1]),
        "defaulted is null (null in a non-nullable column)",
        bad_rows=2,
    ),
    Case(
        "fractional value in an int column",
        "observations",
        pandas_value("age", 30.5),
        "age: fractional value 30.5 in an int column",
        bad_rows=4,
    ),
    Case("uint64 key above int64's maximum", "observations", uint64_keys, "does not fit int64", bad_rows=4),
    Case(
        "label timestamped in 2099", "labels", label_time("2099-01-01", [0, 1]), "event_timestamp outside", bad_rows=2
    ),
    Case(
        "label timestamped in 1970", "labels", label_time("1970-01-01", [0, 1]), "event_timestamp outside", bad_rows=2
    ),
    Case(
        "label for an entity never observed",
        "labels",
        at_rows("customer_id", 987_654_321, [0, 1]),
        "customer_id never observed: no observation of this entity landed on",
        bad_rows=2,
    ),
    Case(
        "timestamps in a zone pandas does not know",
        "observations",
        with_table(in_zone("Eastern Standard Time")),
        "column 'event_timestamp' has time zone 'Eastern Standard Time', which is not a zone name pandas knows: "
        "write the timestamps in UTC or with an IANA zone name",
    ),
    Case(
        "two columns with one name", "observations", with_table(twice("age")), "column name(s) ['age'] more than once"
    ),
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


def _to_string_type(column: str, kind: pa.DataType) -> Callable[[pa.Table], pa.Table]:
    def edit(table: pa.Table) -> pa.Table:
        index = table.schema.get_field_index(column)
        return table.set_column(index, column, table.column(index).cast(kind))

    return edit


def _dictionary(column: str) -> Callable[[pa.Table], pa.Table]:
    def edit(table: pa.Table) -> pa.Table:
        index = table.schema.get_field_index(column)
        return table.set_column(index, column, table.column(index).dictionary_encode())

    return edit


def _key_as_index(named: bool) -> Callable[[Path], None]:
    def write(path: Path) -> None:
        frame = frame_of(path)
        if named:
            frame.set_index("customer_id").to_parquet(path)  # the key is stored as the pandas index
        else:
            frame.index = frame.index + 1000  # a non-range index: pandas writes __index_level_0__
            frame.to_parquet(path)

    return write


LOSSLESS = {
    "string_view": with_table(_to_string_type("region", pa.string_view())),
    "large_string": with_table(_to_string_type("employment_type", pa.large_string())),
    "dictionary strings": with_table(_dictionary("region")),
    "key as the pandas index": _key_as_index(named=True),
    "an unnamed pandas index": _key_as_index(named=False),
    "int key as whole floats": pandas_value("customer_id", 5.0, rows=[]),
    "uint32 and int8 columns": with_table(
        lambda t: t.set_column(2, "age", t.column("age").cast(pa.uint32())).set_column(
            t.schema.get_field_index("n_late_payments_12m"),
            "n_late_payments_12m",
            t.column("n_late_payments_12m").cast(pa.int8()),
        )
    ),
    "timestamps in ms, zone Europe/Berlin": with_table(
        lambda t: t.set_column(
            1,
            "event_timestamp",
            t.column(1).cast(pa.timestamp("ms", tz="UTC")).cast(pa.timestamp("ms", tz="Europe/Berlin")),
        )
    ),
}


@pytest.mark.parametrize("name", list(LOSSLESS))
def test_lossless_variants_of_a_batch_are_accepted_whole_with_their_values(storage, spec, landed, name: str) -> None:  # type: ignore[no-untyped-def]
    """Producers write the same values many ways; each is read without loss: every row goes on."""
    source = Path(landing_path(storage, spec, "observations", DAY))
    original = frame_of(source)
    LOSSLESS[name](source)

    outcome = validate_landed_batch(storage, spec, "observations", DAY)

    assert outcome.report.rows_quarantined == 0 and outcome.quarantine_path is None
    valid = storage.read_frame(validated_path(storage, spec, "observations", DAY))
    assert valid["customer_id"].astype("int64").tolist() == original["customer_id"].tolist()
    assert valid["age"].astype("int64").tolist() == original["age"].tolist()
    assert valid["region"].tolist() == original["region"].tolist()
    assert (pd.to_datetime(valid["event_timestamp"], utc=True) == original["event_timestamp"]).all()
    assert str(valid["event_timestamp"].dtype).endswith("UTC]")


def test_the_nullable_int_column_of_a_pandas_batch_keeps_its_missing_values(storage, spec, landed) -> None:  # type: ignore[no-untyped-def]
    """A nullable int column written by plain pandas (float64, NaN): accepted whole, nulls kept as nulls."""
    raw = spec.raw.model_copy(
        update={
            "columns": {
                **spec.raw.columns,
                "n_open_accounts": spec.raw.columns["n_open_accounts"].model_copy(update={"nullable": True}),
            }
        }
    )
    nullable = spec.model_copy(update={"raw": raw})
    source = Path(landing_path(storage, spec, "observations", DAY))
    original = frame_of(source)
    pandas_nan("n_open_accounts")(source)
    assert pq.read_schema(source).field("n_open_accounts").type == pa.float64()

    outcome = validate_landed_batch(storage, nullable, "observations", DAY)

    assert outcome.report.rows_quarantined == 0
    valid = storage.read_frame(validated_path(storage, spec, "observations", DAY))
    assert str(valid["n_open_accounts"].dtype) == "Int64"
    assert sorted(np.flatnonzero(valid["n_open_accounts"].isna())) == BAD
    kept = valid["n_open_accounts"].drop(index=BAD).astype("int64")
    assert kept.tolist() == original["n_open_accounts"].drop(index=BAD).tolist()


def test_a_failed_rerun_fails_once_with_one_line_and_leaves_no_stale_accepted_output(storage, spec, landed) -> None:  # type: ignore[no-untyped-def]
    """Day accepted, then re-delivered in a zone pandas does not know: the task fails without retries
    (AirflowFailException) on one line that names the column and the fix, and neither the earlier
    "accepted" report nor its staging file is left to claim the new batch was accepted."""
    from airflow.sdk.exceptions import AirflowFailException

    from mlloop_airflow.operators.validation import ValidateBatchOperator

    _, report_path = quarantine_paths(storage, spec, "observations", DAY)
    staging = validated_path(storage, spec, "observations", DAY)
    op = ValidateBatchOperator(
        task_id="validate_observations", use_case=spec.name, dataset="observations", day=DAY.isoformat()
    )
    op.execute({})  # type: ignore[arg-type]
    assert storage.exists(staging) and not json.loads(storage.read_bytes(report_path))["rejected"]

    with_table(in_zone("Eastern Standard Time"))(Path(landing_path(storage, spec, "observations", DAY)))
    with pytest.raises(AirflowFailException) as err:
        op.execute({})  # type: ignore[arg-type]

    message = str(err.value)
    assert "\n" not in message and "has time zone 'Eastern Standard Time'" in message and "re-deliver" in message
    assert not storage.exists(staging)
    assert json.loads(storage.read_bytes(report_path))["rejected"]


def test_an_unexpected_failure_removes_the_earlier_accepted_report_and_staging(
    storage, spec, landed, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    import mlloop.ingestion

    _, report_path = quarantine_paths(storage, spec, "observations", DAY)
    staging = validated_path(storage, spec, "observations", DAY)
    validate_landed_batch(storage, spec, "observations", DAY)
    assert storage.exists(report_path) and storage.exists(staging)

    def crash(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("a library failed half-way")

    monkeypatch.setattr(mlloop.ingestion, "validate_table", crash)
    with pytest.raises(RuntimeError):
        validate_landed_batch(storage, spec, "observations", DAY)
    assert not storage.exists(report_path) and not storage.exists(staging)


# ------------------------------------------------------------------------------------ string join keys
def _meter_batch(storage, spec):  # type: ignore[no-untyped-def]
    land_days(storage, spec, [DAY - dt.timedelta(days=2), DAY], bad_row_share=0.0)
    source = Path(landing_path(storage, spec, "observations", DAY))
    frame = frame_of(source)
    ids = frame["meter_id"].tolist()
    frame.loc[0, "meter_id"] = ""
    frame.loc[1, "meter_id"] = ids[1][:4] + "\x00" + ids[1][4:]
    frame.loc[2, "meter_id"] = "MTR-" + "9" * 2_000_000  # a 2 MB string
    frame.loc[3, "meter_id"] = ids[10] + " "  # the padded twin of row 10
    frame.loc[4, "meter_id"] = ids[11].lower()  # a case variant of row 11
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), source)
    return frame


KEY_REASONS = {
    0: "meter_id is empty, padded with whitespace or has control characters (key rules)",
    1: "meter_id is empty, padded with whitespace or has control characters (key rules)",
    2: "meter_id longer than 10 characters",
    3: "meter_id is empty, padded with whitespace or has control characters (key rules)",
    4: "meter_id does not match the pattern",
}


def test_string_join_keys_get_the_key_rules_and_the_spec_pattern(storage) -> None:  # type: ignore[no-untyped-def]
    from mlloop.spec import get_spec

    spec = get_spec("energy_demand")
    frame = _meter_batch(storage, spec)

    outcome = validate_landed_batch(storage, spec, "observations", DAY)

    quarantined = storage.read_frame(quarantine_paths(storage, spec, "observations", DAY)[0])
    assert sorted(quarantined[ROW_NUMBER]) == [0, 1, 2, 3, 4] == sorted(KEY_REASONS)
    reasons = dict(zip(quarantined[ROW_NUMBER], quarantined[REASONS], strict=True))
    for row, says in KEY_REASONS.items():
        assert says in reasons[row], (row, reasons[row][:200])
    valid = storage.read_frame(validated_path(storage, spec, "observations", DAY))
    assert len(valid) == len(frame) - 5 == outcome.report.rows_valid
    assert {frame.loc[10, "meter_id"], frame.loc[11, "meter_id"]} <= set(valid["meter_id"])  # the originals stay


def test_default_key_rules_hold_without_a_pattern(storage) -> None:  # type: ignore[no-untyped-def]
    """No ``pattern``/``max_length`` in the spec: empty, NUL, padded and over-long keys are still quarantined
    (256 characters at most); only the case variant, which needs the spec's pattern, is a valid key."""
    from mlloop.spec import get_spec

    spec = get_spec("energy_demand")
    plain_key = spec.raw.columns["meter_id"].model_copy(update={"pattern": None, "max_length": None})
    spec = spec.model_copy(
        update={"raw": spec.raw.model_copy(update={"columns": {**spec.raw.columns, "meter_id": plain_key}})}
    )
    _meter_batch(storage, spec)

    validate_landed_batch(storage, spec, "observations", DAY)

    quarantined = storage.read_frame(quarantine_paths(storage, spec, "observations", DAY)[0])
    assert sorted(quarantined[ROW_NUMBER]) == [0, 1, 2, 3]
    assert "meter_id longer than 256 characters" in quarantined.set_index(ROW_NUMBER).loc[2, REASONS]


# ------------------------------------------------------------------------------------ label corrections
def test_a_label_delivered_again_later_is_a_correction_and_the_latest_delivery_wins(storage, spec, landed) -> None:  # type: ignore[no-untyped-def]
    from mlloop.training_set import count_labels, read_latest_labels

    key, ts, label = spec.entity.join_key, spec.raw.timestamp_column, spec.labels.column
    validate_landed_batch(storage, spec, "labels", DAY)
    first = storage.read_frame(validated_path(storage, spec, "labels", DAY))
    later = DAY + dt.timedelta(days=1)
    corrections = first.head(3).copy()
    corrections[label] = 1 - corrections[label]
    storage.write_frame(corrections, landing_path(storage, spec, "labels", later))

    outcome = validate_landed_batch(storage, spec, "labels", later)

    assert outcome.report.rows_quarantined == 0 and outcome.report.labels_superseded == 3
    assert "corrections: 3 label(s) of earlier deliveries superseded" in outcome.report.summary()
    labels, superseded = read_latest_labels(storage, spec, None, later)
    assert superseded == 3 and len(labels) == len(first)
    assert not labels.duplicated([key, ts]).any()  # the training set's uniqueness rule holds
    assert count_labels(storage, spec, None, later).total == len(first)  # the training decision counts once
    latest = labels.set_index([key, ts])[label]
    for row in corrections.itertuples(index=False):
        assert latest.loc[(getattr(row, key), pd.Timestamp(getattr(row, ts)))] == getattr(row, label)


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
    store, quarantined = ingested
    assert_nothing_bad_downstream(storage, spec, store, quarantined)


def assert_nothing_bad_downstream(
    storage: Any, spec: Any, store: Any, quarantined: pd.DataFrame, *, keyed: bool = True
) -> None:
    """The loop's end-to-end check: no quarantined row in the online store, a training set or a prediction.

    ``keyed=False``: the quarantined rows have no key, so no customer of theirs can be looked up online.
    """
    from loop_fixtures import feature_frame, labelled_frame, train_small_model
    from mlloop.feature_store import online_features
    from mlloop.scoring import Lineage, feast_fetcher, predictions_path, score_day
    from mlloop.training_set import build_training_set, validate_training_set

    key, ts = spec.entity.join_key, spec.raw.timestamp_column
    features = feature_frame(storage, spec, INGESTED)
    features[key] = features[key].astype("int64")

    # Online: a customer with a quarantined row serves its newest *valid* row, not the bad one.
    newest_valid = features.sort_values(ts).groupby(key).tail(1).set_index(key)
    keys = sorted({int(k) for k in quarantined[key].dropna()} & set(newest_valid.index))
    assert len(keys) > 10 or not keyed
    if keys:
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


# ------------------------------------------------------------------------------------ a pandas producer
NAN_KEYS = [7, 70, 170]  # observation rows whose int key a pandas producer left missing
NAN_LABELS = [2, 5]  # label rows whose label it left missing
CORRECTED = 5  # labels of an earlier day delivered again, corrected, with the last day's labels


@pytest.fixture
def pandas_ingested(storage, spec, feast_registry):  # type: ignore[no-untyped-def]
    """Twelve days as a team's plain-pandas job writes them (``DataFrame.to_parquet()``: float64 with NaN
    for an int key and a label with missing values), the last label batch carrying corrections of
    earlier labels; ingested as the DAG does: validate, build features, materialize."""
    from mlloop.feature_store import materialize_interval, open_store
    from mlloop.ingestion import day_bounds, write_feature_partition

    land_days(storage, spec, INGESTED, rows_per_day=400, n_customers=1500, bad_row_share=0.0)
    key, label = spec.entity.join_key, spec.labels.column
    ts = spec.raw.timestamp_column
    lost = set()  # observations whose key the producer left missing: their labels label no observed entity
    for day in INGESTED:
        observations = Path(landing_path(storage, spec, "observations", day))
        lost |= set(frame_of(observations).loc[NAN_KEYS, [key, ts]].itertuples(index=False, name=None))
        pandas_nan(key, NAN_KEYS)(observations)
    earlier = frame_of(Path(landing_path(storage, spec, "labels", INGESTED[-4])))
    earlier = earlier[[k not in lost for k in earlier[[key, ts]].itertuples(index=False, name=None)]]
    earlier = earlier.iloc[max(NAN_LABELS) + 1 :]  # labels that are not missing in their first delivery
    corrections = earlier.head(CORRECTED).assign(**{label: 1 - earlier[label].head(CORRECTED)})
    expected = {}  # label rows to be quarantined, per day
    for day in INGESTED:
        labels_path = Path(landing_path(storage, spec, "labels", day))
        labels = frame_of(labels_path)
        if day == INGESTED[-1]:
            labels = pd.concat([labels, corrections], ignore_index=True)
        of_lost = {i for i, k in enumerate(labels[[key, ts]].itertuples(index=False, name=None)) if k in lost}
        expected[day] = of_lost | ({*NAN_LABELS} if len(labels) > max(NAN_LABELS) else set())
        if len(labels) > max(NAN_LABELS):
            labels[label] = labels[label].astype("float64")
            labels.loc[NAN_LABELS, label] = np.nan
        labels.to_parquet(labels_path)
    reports = {}
    for day in INGESTED:
        reports[day] = (
            validate_landed_batch(storage, spec, "observations", day).report,
            validate_landed_batch(storage, spec, "labels", day).report,
        )
        write_feature_partition(storage, spec, day)
    store = open_store()
    start, end = day_bounds(INGESTED[0])[0], day_bounds(INGESTED[-1])[1]
    materialize_interval(store, [spec.features.feature_view], start, end)
    quarantined = pd.concat(
        [storage.read_frame(quarantine_paths(storage, spec, "observations", d)[0]) for d in INGESTED],
        ignore_index=True,
    )
    return store, quarantined, reports, corrections, expected, lost


def test_a_pandas_producer_loses_exactly_its_missing_rows_and_nothing_bad_goes_downstream(  # type: ignore[no-untyped-def]
    storage, spec, pandas_ingested
) -> None:
    from loop_fixtures import feature_frame
    from mlloop.training_set import build_training_set, validate_training_set

    store, quarantined, reports, corrections, expected, lost = pandas_ingested
    key, ts, label = spec.entity.join_key, spec.raw.timestamp_column, spec.labels.column
    for day, (observations, _) in reports.items():
        assert observations.rows_quarantined == len(NAN_KEYS), day  # exactly the missing keys
        # exactly the missing labels, and the labels of the observations that lost their key
        rows = storage.read_frame(quarantine_paths(storage, spec, "labels", day)[0]) if expected[day] else None
        assert set(rows[ROW_NUMBER] if rows is not None else []) == expected[day], day
    assert sum(len(rows) for rows in expected.values()) > len(NAN_LABELS)
    assert reports[INGESTED[-1]][1].labels_superseded == CORRECTED
    assert quarantined[REASONS].str.fullmatch(r"customer_id is null \(null in a non-nullable column\)").all()

    assert_nothing_bad_downstream(storage, spec, store, quarantined, keyed=False)
    # The observations that lost their key come back under no key (no NaN filled in as 0, -1 or a wrap),
    # and every other observation goes on.
    features = feature_frame(storage, spec, INGESTED)
    assert len(features) == len(INGESTED) * (400 - len(NAN_KEYS)) and features[key].notna().all()
    assert not _keys_and_times(features, spec) & lost

    # The corrections: training goes on (one label per observation), with the corrected labels.
    training = build_training_set(storage, store, spec, INGESTED[-1])
    assert training.superseded_labels == CORRECTED
    validate_training_set(training.frame, spec, source="test")
    assert not _keys_and_times(training.frame, spec) & lost
    got = training.frame.set_index([key, ts])[label]
    fixed = [(int(r[key]), pd.Timestamp(r[ts])) for _, r in corrections.iterrows()]
    fixed = [k for k in fixed if k in got.index]
    assert fixed, "no corrected label reached the training set"
    wanted = corrections.set_index([key, ts])[label]
    assert all(got.loc[k] == wanted.loc[k] for k in fixed)
