"""Per-interval ingestion steps: landing -> validated (+ quarantine) -> features partition.

Each step reads and writes whole partitions of one day through :class:`~mlloop.storage.Storage`,
atomically, so rerunning a day replaces its outputs and never appends duplicates.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from dataclasses import dataclass
from typing import Any, Literal

from mlloop.features import build_features
from mlloop.spec import UseCaseSpec
from mlloop.storage import Storage, StorageError
from mlloop.validation import (
    BatchRejected,
    ValidationReport,
    labels_contract,
    observations_contract,
    validate_table,
)

log = logging.getLogger(__name__)

Dataset = Literal["observations", "labels"]
DATASETS: tuple[Dataset, ...] = ("observations", "labels")
FEATURES_DATASET_LABELS = "labels"
BATCH_FILE = "batch.parquet"
DATA_FILE = "data.parquet"


def day_bounds(day: dt.date) -> tuple[dt.datetime, dt.datetime]:
    """``[day 00:00 UTC, next day 00:00 UTC)``: the data interval of a daily run."""
    start = dt.datetime.combine(day, dt.time(), tzinfo=dt.UTC)
    return start, start + dt.timedelta(days=1)


def landing_path(storage: Storage, spec: UseCaseSpec, dataset: Dataset, day: dt.date) -> str:
    return storage.partition("landing", spec.name, dataset, day, BATCH_FILE)


def validated_path(storage: Storage, spec: UseCaseSpec, dataset: Dataset, day: dt.date) -> str:
    """Where the valid rows of a batch go: observations to staging, labels straight to the offline store."""
    if dataset == "labels":
        return storage.partition("features", spec.name, FEATURES_DATASET_LABELS, day, DATA_FILE)
    return storage.partition("staging", spec.name, dataset, day, DATA_FILE)


def features_path(storage: Storage, spec: UseCaseSpec, day: dt.date) -> str:
    return storage.partition("features", spec.name, spec.features.feature_view, day, DATA_FILE)


def quarantine_paths(storage: Storage, spec: UseCaseSpec, dataset: Dataset, day: dt.date) -> tuple[str, str]:
    """(quarantined rows, validation report) of one batch."""
    return (
        storage.partition("quarantine", spec.name, dataset, day, "rows.parquet"),
        storage.partition("quarantine", spec.name, dataset, day, "report.json"),
    )


@dataclass(frozen=True)
class ValidationOutcome:
    report: ValidationReport
    valid_path: str
    quarantine_path: str | None

    def as_dict(self) -> dict[str, Any]:
        return {**self.report.as_dict(), "valid_path": self.valid_path, "quarantine_path": self.quarantine_path}


def validate_landed_batch(storage: Storage, spec: UseCaseSpec, dataset: Dataset, day: dt.date) -> ValidationOutcome:
    """Validate the batch that landed for ``day``; write valid rows, quarantine and the report.

    On rejection the report and any per-row reasons are still written to quarantine (on-call needs
    them), the day's staging output is removed so no stale rows flow on, and :class:`BatchRejected`
    propagates. Existing downstream partitions are left as they were: a bad re-delivery does not
    destroy good data that was already ingested.
    """
    source = landing_path(storage, spec, dataset, day)
    contract = observations_contract(spec) if dataset == "observations" else labels_contract(spec)
    rows_path, report_path = quarantine_paths(storage, spec, dataset, day)
    valid_path = validated_path(storage, spec, dataset, day)
    interval = day_bounds(day) if dataset == "observations" else None
    try:
        try:
            table = storage.read_table(source)
        except StorageError as exc:
            report = ValidationReport(contract=contract.name, source=source, rejected=True, reason=str(exc))
            report.schema_errors.append(str(exc))
            raise BatchRejected(report) from exc
        result = validate_table(table, contract, source=source, interval=interval)
    except BatchRejected as exc:
        if exc.quarantined is not None and len(exc.quarantined):
            storage.write_frame(exc.quarantined, rows_path)
        else:
            storage.delete(rows_path)
        storage.write_bytes(json.dumps(exc.report.as_dict(), indent=2, default=str).encode(), report_path)
        if dataset == "observations":
            storage.delete(valid_path)
        raise

    if len(result.quarantined):
        storage.write_frame(result.quarantined, rows_path)
    else:
        storage.delete(rows_path)  # a rerun with a corrected batch must not leave stale quarantine
    storage.write_bytes(json.dumps(result.report.as_dict(), indent=2, default=str).encode(), report_path)
    storage.write_frame(result.valid, valid_path)
    return ValidationOutcome(result.report, valid_path, rows_path if len(result.quarantined) else None)


def write_feature_partition(storage: Storage, spec: UseCaseSpec, day: dt.date) -> tuple[str, int]:
    """Turn the day's validated observations into its feature-view partition (atomic replace)."""
    staged = storage.read_frame(validated_path(storage, spec, "observations", day))
    features = build_features(staged, spec)
    target = features_path(storage, spec, day)
    storage.write_frame(features, target)
    return target, len(features)
