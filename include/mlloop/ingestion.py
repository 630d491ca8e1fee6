"""Per-interval ingestion steps: landing -> validated (+ quarantine) -> features partition.

Each step reads and writes whole partitions of one day through :class:`~mlloop.storage.Storage`,
atomically, so rerunning a day replaces its outputs and never appends duplicates.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from mlloop import layout
from mlloop.features import build_features
from mlloop.spec import UseCaseSpec
from mlloop.storage import Storage, StorageError
from mlloop.validation import (
    ROW_NUMBER,
    BatchRejected,
    RowRule,
    ValidationReport,
    labels_contract,
    observations_contract,
    validate_table,
)

if TYPE_CHECKING:
    import pandas as pd

log = logging.getLogger(__name__)

Dataset = Literal["observations", "labels"]
DATASETS: tuple[Dataset, ...] = ("observations", "labels")


def day_bounds(day: dt.date) -> tuple[dt.datetime, dt.datetime]:
    """``[day 00:00 UTC, next day 00:00 UTC)``: the data interval of a daily run."""
    start = dt.datetime.combine(day, dt.time(), tzinfo=dt.UTC)
    return start, start + dt.timedelta(days=1)


def landing_path(storage: Storage, spec: UseCaseSpec, dataset: Dataset, day: dt.date) -> str:
    return layout.LANDING[dataset].path(storage, spec, day)


def validated_path(storage: Storage, spec: UseCaseSpec, dataset: Dataset, day: dt.date) -> str:
    """Where the valid rows of a batch go: observations to staging, labels straight to the offline store."""
    if dataset == "labels":
        return layout.LABELS.path(storage, spec, day)
    return layout.STAGING_OBSERVATIONS.path(storage, spec, day, dataset=dataset)


def features_path(storage: Storage, spec: UseCaseSpec, day: dt.date) -> str:
    return layout.FEATURES.path(storage, spec, day)


def quarantine_paths(storage: Storage, spec: UseCaseSpec, dataset: Dataset, day: dt.date) -> tuple[str, str]:
    """(quarantined rows, validation report) of one batch."""
    return (
        layout.QUARANTINE.path(storage, spec, day, dataset=dataset),
        layout.QUARANTINE.path(storage, spec, day, layout.QUARANTINE_REPORT, dataset=dataset),
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
    destroy good data that was already ingested. Any other failure removes the day's report and
    staging output before it propagates: an earlier run's "accepted" must not describe this batch.

    A label batch is one delivery: its labels supersede those of earlier deliveries (landing days)
    for the same key and timestamp; the report counts them (see :func:`count_superseded_labels`).
    """
    source = landing_path(storage, spec, dataset, day)
    contract = observations_contract(spec) if dataset == "observations" else labels_contract(spec)
    rows_path, report_path = quarantine_paths(storage, spec, dataset, day)
    valid_path = validated_path(storage, spec, dataset, day)
    try:
        try:
            table = storage.read_table(source)
        except StorageError as exc:
            report = ValidationReport(contract=contract.name, source=source, rejected=True, reason=str(exc))
            report.schema_errors.append(str(exc))
            raise BatchRejected(report) from exc
        rules = [observed_entity_rule(storage, spec, day)] if dataset == "labels" else []
        result = validate_table(table, contract, source=source, interval=day_bounds(day), row_rules=rules)
    except BatchRejected as exc:
        if exc.quarantined is not None and len(exc.quarantined):
            storage.write_frame(exc.quarantined, rows_path)
        else:
            storage.delete(rows_path)
        storage.write_bytes(json.dumps(exc.report.as_dict(), indent=2, default=str).encode(), report_path)
        if dataset == "observations":
            storage.delete(valid_path)
        raise
    except Exception:
        storage.delete(report_path)
        if dataset == "observations":
            storage.delete(valid_path)
        raise

    if dataset == "labels":
        result.report.labels_superseded = count_superseded_labels(storage, spec, day, result.valid)
    if len(result.quarantined):
        storage.write_frame(result.quarantined, rows_path)
    else:
        storage.delete(rows_path)  # a rerun with a corrected batch must not leave stale quarantine
    storage.write_bytes(json.dumps(result.report.as_dict(), indent=2, default=str).encode(), report_path)
    storage.write_frame(result.valid, valid_path)
    return ValidationOutcome(result.report, valid_path, rows_path if len(result.quarantined) else None)


def observed_entity_rule(storage: Storage, spec: UseCaseSpec, day: dt.date) -> RowRule:
    """Labels must label an entity that was observed: its key is in the observation batch that
    landed for the label's observation day. Days whose batch has not landed (or was never
    delivered) cannot be judged, and their labels are kept; days outside the horizon are left to the
    time rule. Judged against what landed, not what was ingested, so the outcome does not depend on
    the order in which days are ingested."""
    import pandas as pd

    from mlloop.coercion import coerce_table
    from mlloop.spec import ColumnSpec

    key, ts = spec.entity.join_key, spec.raw.timestamp_column
    first = day - dt.timedelta(days=spec.labels.horizon_days)

    def check(frame: pd.DataFrame) -> dict[int, str]:
        days = pd.to_datetime(frame[ts], utc=True).dt.date
        failed: dict[int, str] = {}
        for observed in sorted(d for d in days.dropna().unique() if first <= d <= day):
            try:
                table = storage.read_table(landing_path(storage, spec, "observations", observed), columns=[key])
            except StorageError:
                log.info("No readable observation batch landed for %s: its labels' entities are not checked", observed)
                continue
            known = coerce_table(table, {key: ColumnSpec(dtype=spec.entity.dtype)}).frame[key].dropna()
            that_day = (days == observed).to_numpy() & frame[key].notna().to_numpy()
            unknown = frame[that_day & ~frame[key].isin(set(known)).to_numpy()]
            for row in unknown[ROW_NUMBER]:
                failed[int(row)] = f"{key} never observed: no observation of this entity landed on {observed}"
        return failed

    return RowRule("label_of_an_observed_entity", key, check)


def count_superseded_labels(storage: Storage, spec: UseCaseSpec, day: dt.date, labels: pd.DataFrame) -> int:
    """How many of ``labels`` correct a label of an earlier delivery (a label partition of an
    earlier landing day) for the same key and timestamp. Training and evaluation read the latest delivery of each
    (:func:`mlloop.training_set.read_labels`); this count is what the validation summary reports.

    Only partitions inside the label horizon can hold the same observation: older ones are not read.
    """
    import pandas as pd

    from mlloop.training_set import label_partitions

    key, ts = spec.entity.join_key, spec.raw.timestamp_column
    first = day - dt.timedelta(days=spec.labels.horizon_days)
    earlier = [url for landed, url in label_partitions(storage, spec).items() if first <= landed < day]
    if not earlier or labels.empty:
        return 0
    seen = pd.concat([storage.read_frame(url, columns=[key, ts]) for url in earlier], ignore_index=True)
    mine = labels[[key, ts]].copy()
    for frame in (seen, mine):
        frame[ts] = pd.to_datetime(frame[ts], utc=True)
        frame[key] = frame[key].astype(str)
    return int(mine.drop_duplicates().merge(seen.drop_duplicates(), on=[key, ts], how="inner").shape[0])


def write_feature_partition(storage: Storage, spec: UseCaseSpec, day: dt.date) -> tuple[str, int]:
    """Turn the day's validated observations into its feature-view partition (atomic replace)."""
    staged = storage.read_frame(validated_path(storage, spec, "observations", day))
    features = build_features(staged, spec)
    target = features_path(storage, spec, day)
    storage.write_frame(features, target)
    return target, len(features)
