"""The point-in-time-correct training set: label events joined "as of" their time with Feast features.

Labels are the events ingestion wrote to ``features/<use_case>/labels/date=<landing day>/data.parquet``
(join key, the observation's event timestamp, the label). Each label row gets the feature values
Feast knew at that timestamp (the newest feature row at or before it, within the view's ttl), never a
value written afterwards: that is what makes offline metrics honest.

Feast does not promise one output row per entity row in input order (the file offline store drops
entity rows older than the entity's first feature row, and every store reorders). Each label row
therefore carries a row id through the join; rows are matched back by that id, and labels that got
no feature values are counted and dropped, so the log says exactly where rows went.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mlloop import layout
from mlloop.spec import ColumnSpec, UseCaseSpec
from mlloop.validation import BatchRejected, Contract, ExpectationFailure, ValidationReport

if TYPE_CHECKING:
    import pandas as pd
    from feast import FeatureStore

    from mlloop.storage import Storage

log = logging.getLogger(__name__)

LABEL_ROW = "_label_row"


class TrainingSetError(ValueError):
    """The training set cannot be built as asked (no labels, features the service does not serve)."""


# ------------------------------------------------------------------------------------------ labels
def label_partitions(storage: Storage, spec: UseCaseSpec) -> dict[dt.date, str]:
    """Landing day -> URL of every label partition ingestion has written, oldest first."""
    found = {day: url for url in storage.glob(layout.LABELS.pattern(storage, spec)) if (day := layout.day_of(url))}
    return dict(sorted(found.items()))


def training_window(spec: UseCaseSpec, cutoff_day: dt.date) -> tuple[dt.date | None, dt.date]:
    """The label partitions (by landing day) a training run with this cutoff reads: ``(first, last)``."""
    days = spec.model.training_window_days
    first = cutoff_day - dt.timedelta(days=days - 1) if days else None
    return first, cutoff_day


def _in_window(day: dt.date, first: dt.date | None, last: dt.date) -> bool:
    return (first is None or day >= first) and day <= last


def feature_days(storage: Storage, spec: UseCaseSpec) -> set[dt.date]:
    """Days that have a partition of the use case's feature view (observations were ingested)."""
    return {day for url in storage.glob(layout.FEATURES.pattern(storage, spec)) if (day := layout.day_of(url))}


@dataclass(frozen=True)
class LabelCount:
    """Labels in a window, and how many of them label an observation whose day was ingested."""

    total: int
    with_features: int


def count_labels(storage: Storage, spec: UseCaseSpec, first_day: dt.date | None, last_day: dt.date) -> LabelCount:
    """Labelled observations in the partitions of ``[first_day, last_day]`` (reads key and timestamp).

    A label delivered again (a correction) counts once, as in a training set. Labels of observations
    made before ingestion began have no features and never reach a training set; counting them
    would start a training run that validation must then reject.
    """
    import pandas as pd
    import pyarrow as pa
    import pyarrow.compute as pc

    key, ts = spec.entity.join_key, spec.raw.timestamp_column
    tables = [
        storage.read_table(url, columns=[key, ts])
        for day, url in label_partitions(storage, spec).items()
        if _in_window(day, first_day, last_day)
    ]
    if not tables:
        return LabelCount(total=0, with_features=0)
    times = [pc.cast(t.column(ts), pa.timestamp("us", tz="UTC")) for t in tables]
    keys = pd.concat([t.column(key).to_pandas().astype(str) for t in tables], ignore_index=True)
    instants = pd.concat([pd.Series(c.to_pandas()) for c in times], ignore_index=True)
    labels = pd.DataFrame({key: keys, ts: instants}).drop_duplicates()
    ingested = feature_days(storage, spec)
    usable = int(labels[ts].dt.date.isin(ingested).sum())
    return LabelCount(total=len(labels), with_features=usable)


def read_labels(storage: Storage, spec: UseCaseSpec, first_day: dt.date | None, last_day: dt.date) -> pd.DataFrame:
    """Label events of the partitions in ``[first_day, last_day]``: join key, event timestamp, label;
    the latest delivery of each label (see :func:`read_latest_labels`)."""
    return read_latest_labels(storage, spec, first_day, last_day)[0]


def read_latest_labels(
    storage: Storage, spec: UseCaseSpec, first_day: dt.date | None, last_day: dt.date
) -> tuple[pd.DataFrame, int]:
    """Label events of the partitions in ``[first_day, last_day]``, and how many were superseded.

    Each label partition is one delivery, ordered by its landing day. An upstream correction is the
    same key and timestamp delivered again later: the latest delivery wins, so a training set or an
    evaluation holds one label per observation (the training set's uniqueness rule), the corrected
    one. Sorted by time then key.
    """
    import pandas as pd

    key, ts, label = spec.entity.join_key, spec.raw.timestamp_column, spec.labels.column
    frames = [
        storage.read_frame(url, columns=[key, ts, label])
        for day, url in label_partitions(storage, spec).items()  # oldest delivery first
        if _in_window(day, first_day, last_day)
    ]
    if not frames:
        empty = pd.DataFrame({key: pd.Series(dtype="Int64"), ts: pd.Series(dtype="datetime64[ns, UTC]"), label: []})
        return empty, 0
    labels = pd.concat(frames, ignore_index=True)
    labels[ts] = pd.to_datetime(labels[ts], utc=True)
    delivered = len(labels)
    labels = labels.drop_duplicates(subset=[key, ts], keep="last")
    superseded = delivered - len(labels)
    if superseded:
        log.info("%d label(s) superseded by a later delivery of the same %s+%s (the latest wins)", superseded, key, ts)
    return labels.sort_values([ts, key], kind="stable").reset_index(drop=True), superseded


# --------------------------------------------------------------------------- point-in-time join
@dataclass(frozen=True)
class JoinStats:
    """Where the label rows went in the point-in-time join."""

    labels_in: int
    dropped_by_feast: int
    without_features: int
    rows_out: int

    def describe(self) -> str:
        return (
            f"{self.labels_in} label rows in -> {self.rows_out} rows with features "
            f"({self.dropped_by_feast} dropped by Feast as older than the entity's first feature row, "
            f"{self.without_features} with no feature value at or before the label time within the view's ttl)"
        )


def point_in_time_join(
    store: FeatureStore, spec: UseCaseSpec, labels: pd.DataFrame, feature_service: str | None = None
) -> tuple[pd.DataFrame, JoinStats]:
    """Label rows joined with the service's features as of each row's timestamp.

    The result keeps the label columns, ``_label_row`` (the row's position in ``labels``) and every
    feature the service serves, in the order of ``labels``. Rows that got no feature value at all
    are dropped and counted.
    """
    import numpy as np
    import pandas as pd

    from mlloop.feature_store import historical_features

    key = spec.entity.join_key
    service = feature_service or spec.model.feature_service
    entity_df = labels.reset_index(drop=True).copy()
    entity_df[key] = entity_df[key].astype("int64") if spec.entity.dtype == "int64" else entity_df[key].astype(str)
    entity_df[LABEL_ROW] = range(len(entity_df))
    if entity_df.empty:
        return entity_df, JoinStats(0, 0, 0, 0)

    joined = historical_features(store, entity_df, service)
    feature_columns = [c for c in joined.columns if c not in entity_df.columns]
    missing = [c for c in spec.model.features if c not in feature_columns]
    if missing and service == spec.model.feature_service:
        raise TrainingSetError(
            f"Feast feature service '{service}' does not serve model feature(s) {missing}; "
            f"it serves {sorted(feature_columns)}. The registry is older than the spec: deploy it again "
            "('make feast-apply'; the service is generated from the spec, or checked against it)."
        )
    if not joined[LABEL_ROW].is_unique:
        joined = joined.drop_duplicates(subset=[LABEL_ROW])
    dropped = len(entity_df) - len(joined)
    columns = feature_columns or [LABEL_ROW]
    no_values = np.logical_and.reduce([joined[c].isna().to_numpy() for c in columns])  # no frame copy
    # Positions in Feast's output of the rows with features, in label order; their label rows.
    kept = np.flatnonzero(~no_values)
    label_rows = joined[LABEL_ROW].to_numpy()[kept].astype(np.int64)
    order = np.argsort(label_rows, kind="stable")
    kept, label_rows = kept[order], label_rows[order]
    # Labels, key and timestamp come from our frame, not Feast's output: types and values stay exact.
    # (Positional takes, not a merge on the row id: a third of the time of a 1M-label join.)
    frame = pd.concat(
        [
            entity_df.take(label_rows).reset_index(drop=True),
            joined[feature_columns].take(kept).reset_index(drop=True),
        ],
        axis=1,
    )
    frame = _conform_features(frame, spec)
    return frame, JoinStats(len(entity_df), dropped, int(no_values.sum()), len(frame))


def _conform_features(frame: pd.DataFrame, spec: UseCaseSpec) -> pd.DataFrame:
    """Integer features come back from the join as floats (a missing value makes them so): make them
    integers again where every value is whole, so validation checks the declared type."""
    import numpy as np
    import pandas as pd

    for name, col in spec.features.columns.items():
        if name not in frame or col.dtype != "int64" or frame[name].dtype.kind != "f":
            continue
        values = frame[name].to_numpy(dtype=np.float64)
        missing = np.isnan(values)
        present = values[~missing]
        if (present == np.round(present)).all() and (np.abs(present) < 2.0**63).all():
            # what astype("Int64") does, built directly: 10x faster on a million rows
            frame[name] = pd.arrays.IntegerArray(np.where(missing, 0, values).astype(np.int64), missing)
    return frame


@dataclass(frozen=True)
class TrainingSet:
    """A training set and the account of how it was built."""

    frame: pd.DataFrame
    stats: JoinStats
    first_day: dt.date | None
    last_day: dt.date
    partitions: int
    superseded_labels: int = 0  # labels replaced by a later delivery (an upstream correction)

    def describe(self) -> str:
        window = f"{self.first_day or 'the beginning'} .. {self.last_day}"
        corrected = (
            f"; {self.superseded_labels} label(s) superseded by a later delivery (the latest wins)"
            if self.superseded_labels
            else ""
        )
        return f"label partitions {window} ({self.partitions} partitions): {self.stats.describe()}{corrected}"


def build_training_set(
    storage: Storage, store: FeatureStore, spec: UseCaseSpec, cutoff_day: dt.date, feature_service: str | None = None
) -> TrainingSet:
    """Labels of the training window up to ``cutoff_day`` joined point-in-time with the model's features.

    The frame has exactly: join key, event timestamp, label, the model features; sorted by time.
    """
    first, last = training_window(spec, cutoff_day)
    partitions = [d for d in label_partitions(storage, spec) if _in_window(d, first, last)]
    labels, superseded = read_latest_labels(storage, spec, first, last)
    if labels.empty:
        raise TrainingSetError(
            f"no label partitions under {layout.LABELS.folder(storage, spec)} "
            f"for landing days {first or 'the beginning'} .. {last}: has feature ingestion run for these days?"
        )
    joined, stats = point_in_time_join(store, spec, labels, feature_service)
    key, ts, label = spec.entity.join_key, spec.raw.timestamp_column, spec.labels.column
    frame = joined[[key, ts, label, *spec.model.features]]
    frame = frame.sort_values([ts, key], kind="stable").reset_index(drop=True)
    return TrainingSet(frame, stats, first, last, len(partitions), superseded_labels=superseded)


# -------------------------------------------------------------------------------------- validation
def training_set_contract(spec: UseCaseSpec) -> Contract:
    """Schema and row rules of a training set: every row must pass (features were validated already,
    so a failure here means the spec, the feature repo and the data disagree)."""
    columns: dict[str, ColumnSpec] = {
        spec.entity.join_key: ColumnSpec(dtype=spec.entity.dtype),
        spec.raw.timestamp_column: ColumnSpec(dtype="datetime"),
        spec.labels.column: ColumnSpec(dtype=spec.labels.dtype, min=spec.labels.min, max=spec.labels.max),
    }
    columns.update({name: spec.features.columns[name] for name in spec.model.features})
    return Contract(
        name=f"{spec.name}.training_set",
        columns=columns,
        unique=(spec.entity.join_key, spec.raw.timestamp_column),
        timestamp_column=None,
        max_bad_row_share=0.0,
        min_rows=spec.model.min_training_rows,
    )


def _label_expectations(spec: UseCaseSpec) -> list[Any]:
    import great_expectations.expectations as gxe

    label = spec.labels.column
    if spec.model.task == "classification":
        share = spec.labels.min_class_share
        return [
            gxe.ExpectColumnDistinctValuesToBeInSet(column=label, value_set=[0, 1]),
            # For a 0/1 label the mean is the positive share; both classes need min_class_share.
            gxe.ExpectColumnMeanToBeBetween(column=label, min_value=share, max_value=1.0 - share),
        ]
    return [gxe.ExpectColumnStdevToBeBetween(column=label, min_value=0.0, strict_min=True)]


def _label_failure(spec: UseCaseSpec, res: Any) -> ExpectationFailure:
    label, observed = spec.labels.column, res.result.get("observed_value")
    kind = res.expectation_config.type
    if kind == "expect_column_mean_to_be_between":
        share = spec.labels.min_class_share
        detail = (
            f"label '{label}' is too unbalanced: positive share {float(observed):.2%}, each class needs at "
            f"least {share:.2%} (labels.min_class_share)"
        )
    elif kind == "expect_column_distinct_values_to_be_in_set":
        detail = f"label '{label}' has values {observed}, a classification label must be 0 or 1"
    else:
        detail = f"label '{label}' does not vary (standard deviation {observed}): nothing to learn"
    return ExpectationFailure(kind, label, 0, detail)


def validate_training_set(frame: pd.DataFrame, spec: UseCaseSpec, *, source: str) -> ValidationReport:
    """Validate with Great Expectations: schema and types, row count floor, label present and
    balanced enough, feature values inside the spec's ranges and allowed sets.

    Raises :class:`~mlloop.validation.BatchRejected` (with the report) if anything fails.
    """
    import pyarrow as pa

    from mlloop.validation import run_expectations, validate_table

    contract = training_set_contract(spec)
    try:
        report = validate_table(pa.Table.from_pandas(frame, preserve_index=False), contract, source=source).report
    except BatchRejected as exc:
        report = exc.report
    label = spec.labels.column
    if label in frame and frame[label].notna().any():
        values = frame[[label]].dropna().astype({label: "float64"})
        for res in run_expectations(values, f"{contract.name}.label", _label_expectations(spec)):
            if not res.success:
                failure = _label_failure(spec, res)
                report.failures.append(failure)
                report.rejected = True
                report.reason = "; ".join(filter(None, [report.reason, failure.detail]))
    if report.rejected:
        raise BatchRejected(report)
    return report


# ------------------------------------------------------------------------------------ fingerprint
def fingerprint(frame: pd.DataFrame, spec: UseCaseSpec) -> dict[str, Any]:
    """Content hash, size and time range of a training set: two runs on the same rows share a hash."""
    import pandas as pd

    ts, key, label = spec.raw.timestamp_column, spec.entity.join_key, spec.labels.column
    ordered = frame.sort_values([ts, key], kind="stable").reset_index(drop=True)
    digest = hashlib.sha256("|".join(map(str, ordered.columns)).encode())
    digest.update(pd.util.hash_pandas_object(ordered, index=False).to_numpy().tobytes())
    times = pd.to_datetime(ordered[ts], utc=True)
    return {
        "sha256": digest.hexdigest(),
        "rows": len(ordered),
        "start": times.min().isoformat() if len(ordered) else None,
        "end": times.max().isoformat() if len(ordered) else None,
        "label_mean": float(ordered[label].astype("float64").mean()) if len(ordered) else None,
    }
