"""Per-interval ingestion steps on a real storage root: outputs, quarantine, reruns, rejections."""

from __future__ import annotations

import datetime as dt
import json

import pyarrow.parquet as pq
import pytest

from mlloop.ingestion import (
    features_path,
    landing_path,
    quarantine_paths,
    validate_landed_batch,
    validated_path,
    write_feature_partition,
)
from mlloop.landing import land_days
from mlloop.validation import BatchRejected

DAY = dt.date(2026, 3, 10)


@pytest.fixture
def landed(storage, spec):  # type: ignore[no-untyped-def]
    return land_days(storage, spec, [DAY], rows_per_day=400, bad_row_share=0.03)[DAY]


def read_bytes(storage, url) -> bytes:  # type: ignore[no-untyped-def]
    return storage.read_bytes(url)


def test_validated_rows_features_and_quarantine_are_written(storage, spec, landed) -> None:  # type: ignore[no-untyped-def]
    outcome = validate_landed_batch(storage, spec, "observations", DAY)
    rows_path, report_path = quarantine_paths(storage, spec, "observations", DAY)
    quarantined = storage.read_frame(rows_path)
    assert sorted(quarantined["_row_number"]) == sorted(landed.injected_bad_rows)
    report = json.loads(storage.read_bytes(report_path))
    assert report["rows_quarantined"] == len(landed.injected_bad_rows) and not report["rejected"]
    path, rows = write_feature_partition(storage, spec, DAY)
    assert rows == outcome.report.rows_valid == 400 - len(landed.injected_bad_rows)
    features = storage.read_frame(path)
    assert {"debt_to_income", "loan_to_income"} <= set(features.columns)
    assert features["customer_id"].is_unique


def test_rerun_is_byte_identical(storage, spec, landed) -> None:  # type: ignore[no-untyped-def]
    validate_landed_batch(storage, spec, "observations", DAY)
    first = write_feature_partition(storage, spec, DAY)[0]
    before = read_bytes(storage, first)
    validate_landed_batch(storage, spec, "observations", DAY)
    write_feature_partition(storage, spec, DAY)
    assert read_bytes(storage, first) == before
    assert len(storage.glob(storage.path("features", spec.name, "*", "date=*", "*"))) == 1


def test_labels_go_to_the_offline_label_store(storage, spec, landed) -> None:  # type: ignore[no-untyped-def]
    outcome = validate_landed_batch(storage, spec, "labels", DAY)
    labels = storage.read_frame(outcome.valid_path)
    assert len(labels) == len(landed.labels)
    assert set(labels.columns) == {"customer_id", "event_timestamp", "defaulted"}


@pytest.mark.parametrize(
    ("corrupt", "message"),
    [
        (lambda p: p.write_bytes(p.read_bytes()[: len(p.read_bytes()) // 2]), "not a readable parquet file"),
        (lambda p: p.write_text("customer_id,age\n1,30\n"), "not a readable parquet file"),
        (lambda p: pq.write_table(pq.read_table(p).drop(["age"]), p), "missing column(s) ['age']"),
    ],
    ids=["truncated-parquet", "csv-named-parquet", "missing-column"],
)
def test_rejected_batch_writes_nothing_downstream(storage, spec, landed, corrupt, message) -> None:  # type: ignore[no-untyped-def]
    corrupt(__import__("pathlib").Path(landing_path(storage, spec, "observations", DAY)))
    with pytest.raises(BatchRejected) as err:
        validate_landed_batch(storage, spec, "observations", DAY)
    assert message in str(err.value)
    assert not storage.exists(validated_path(storage, spec, "observations", DAY))
    assert not storage.exists(features_path(storage, spec, DAY))
    report = json.loads(storage.read_bytes(quarantine_paths(storage, spec, "observations", DAY)[1]))
    assert report["rejected"] and message in report["reason"]


def test_rejection_after_a_good_run_keeps_the_good_partition_but_drops_staging(storage, spec, landed) -> None:  # type: ignore[no-untyped-def]
    validate_landed_batch(storage, spec, "observations", DAY)
    good = write_feature_partition(storage, spec, DAY)[0]
    before = storage.read_bytes(good)
    path = __import__("pathlib").Path(landing_path(storage, spec, "observations", DAY))
    path.write_text("garbage")
    with pytest.raises(BatchRejected):
        validate_landed_batch(storage, spec, "observations", DAY)
    assert storage.read_bytes(good) == before
    assert not storage.exists(validated_path(storage, spec, "observations", DAY))
