"""Every path shape under the storage root, defined once.

A partition is ``<root>/<area>/<use_case>[/<dataset>]/date=YYYY-MM-DD/<file>``; each *kind* of
partition below names its area, its dataset folder and the file that marks it complete::

    landing/<uc>/observations|labels/date=D/batch.parquet   raw batches as they land
    quarantine/<uc>/<dataset>/date=D/rows.parquet            rejected rows with reasons (+ report.json)
    staging/<uc>/observations/date=D/data.parquet            validated rows between tasks
    staging/<uc>/predictions/date=D/part-*.parquet           scoring parts waiting for their commit
    staging/<uc>/training_set/date=C/data.parquet            a training set (+ validation.json beside it)
    staging/<uc>/training_requests/date=C/<source>.json      the training ledger
    features/<uc>/<feature view>/date=D/data.parquet         Feast's offline source
    features/<uc>/labels/date=D/data.parquet                 label events
    predictions/<uc>/date=D/data.parquet                     one partition per day (+ model.json)
    reports/<uc>/drift/date=D/report.html|report.json        drift reports (+ reports/<uc>/drift/<marker>)

Code asks a kind for a path (``FEATURES.path(storage, spec, day)``) instead of joining strings, and
sensors take a kind's name (``kind="features"``), so a folder is renamed here or nowhere. The one
pattern a DAG's Param schema needs (:data:`DRIFT_REPORT_PATTERN`) is derived from the kinds too.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from mlloop.spec import NAME_PATTERN

if TYPE_CHECKING:
    from mlloop.spec import UseCaseSpec
    from mlloop.storage import Storage

AREAS = ("landing", "quarantine", "staging", "features", "predictions", "reports", "shadow")
FEATURE_VIEW = "<feature view>"
"""A kind's dataset that is the use case's feature view (``spec.features.feature_view``)."""
PARTITION_PREFIX = "date="
PARTITION_DAY = re.compile(r"(?:^|/)date=(\d{4}-\d{2}-\d{2})/")
"""The day of a partition's path (group 1)."""


def partition_name(day: dt.date) -> str:
    return f"{PARTITION_PREFIX}{day.isoformat()}"


def day_of(url: str) -> dt.date | None:
    """The day of the partition ``url`` lies in, or ``None`` if it is not in one."""
    match = PARTITION_DAY.search(url)
    return dt.date.fromisoformat(match.group(1)) if match else None


def beside(url: str, filename: str) -> str:
    """The file ``filename`` in the same partition as ``url`` (a report beside its data)."""
    return url.rsplit("/", 1)[0] + "/" + filename


def _name(spec: UseCaseSpec | str) -> str:
    return spec if isinstance(spec, str) else spec.name


@dataclass(frozen=True)
class PartitionKind:
    """One kind of daily partition: where it lives and the file that marks it complete.

    Its methods take the use case's spec, or only its name where the kind does not live in the
    feature view's folder (a driver outside the deployment knows the name, not the spec).
    """

    name: str
    area: str
    dataset: str | None
    """The folder between the use case and the day: ``None`` for none, :data:`FEATURE_VIEW` for the spec's."""
    filename: str

    def dataset_of(self, spec: UseCaseSpec | str, dataset: str | None = None) -> str | None:
        chosen = dataset if dataset is not None else self.dataset
        if chosen != FEATURE_VIEW:
            return chosen
        if isinstance(spec, str):
            raise ValueError(f"the {self.name!r} partitions are in the feature view's folder: pass {spec}'s spec")
        return spec.features.feature_view

    def path(
        self,
        storage: Storage,
        spec: UseCaseSpec | str,
        day: dt.date,
        filename: str | None = None,
        *,
        dataset: str | None = None,
    ) -> str:
        """The partition's file of ``day`` (``filename``: another file of the same partition)."""
        return storage.partition(self.area, _name(spec), self.dataset_of(spec, dataset), day, filename or self.filename)

    def day_folder(self, storage: Storage, spec: UseCaseSpec | str, day: dt.date, *, dataset: str | None = None) -> str:
        """The folder of ``day``'s partition."""
        return self.path(storage, spec, day, dataset=dataset).rsplit("/", 1)[0]

    def area_folder(self, storage: Storage, spec: UseCaseSpec | str) -> str:
        """The use case's folder of this kind's area (every dataset of it)."""
        return storage.path(self.area, _name(spec))

    def folder(self, storage: Storage, spec: UseCaseSpec | str, *, dataset: str | None = None) -> str:
        """The folder holding every day's partition."""
        return storage.path(self.area, _name(spec), self.dataset_of(spec, dataset) or "")

    def pattern(self, storage: Storage, spec: UseCaseSpec | str, filename: str | None = None) -> str:
        """A glob of every day's file (``filename``: another file name or glob, e.g. ``*.json``)."""
        return storage.path(
            self.area, _name(spec), self.dataset_of(spec) or "", f"{PARTITION_PREFIX}*", filename or self.filename
        )


LANDING_OBSERVATIONS = PartitionKind("landing_observations", "landing", "observations", "batch.parquet")
LANDING_LABELS = PartitionKind("landing_labels", "landing", "labels", "batch.parquet")
QUARANTINE = PartitionKind("quarantine", "quarantine", "observations", "rows.parquet")
"""Rows a validation rejected (``dataset``: the batch's), ``report.json`` beside them."""
QUARANTINE_REPORT = "report.json"
STAGING_OBSERVATIONS = PartitionKind("staging_observations", "staging", "observations", "data.parquet")
PREDICTION_PARTS = PartitionKind("prediction_parts", "staging", "predictions", "part-*.parquet")
TRAINING_SET = PartitionKind("training_set", "staging", "training_set", "data.parquet")
TRAINING_SET_VALIDATION = "validation.json"
"""The validation report beside a training set (:func:`validation_report_of`)."""
TRAINING_REQUESTS = PartitionKind("training_requests", "staging", "training_requests", "*.json")
FEATURES = PartitionKind("features", "features", FEATURE_VIEW, "data.parquet")
LABELS = PartitionKind("labels", "features", "labels", "data.parquet")
PREDICTIONS = PartitionKind("predictions", "predictions", None, "data.parquet")
MODEL_CHOICE = "model.json"
"""Beside a day's predictions: which version scored it, by which policy, and why."""
DRIFT_SAMPLE = "drift_sample.parquet"
"""Beside a day's predictions: the fixed-size sample the drift check reads (:mod:`mlloop.prediction_sample`)."""
SHADOW = PartitionKind("shadow", "shadow", None, "data.parquet")
"""The pending challenger's predictions of a day (:mod:`mlloop.shadow`): never read as predictions."""
SHADOW_PARTS = PartitionKind("shadow_parts", "staging", "shadow", "part-*.parquet")
DRIFT_REPORT = PartitionKind("drift_report", "reports", "drift", "report.html")
DRIFT_REPORT_JSON = "report.json"
DRIFT_MARKER = "last_trigger.json"
"""In the drift reports' folder (not a day's partition): the last drift-triggered retrain."""

KINDS = {
    kind.name: kind
    for kind in (
        LANDING_OBSERVATIONS,
        LANDING_LABELS,
        QUARANTINE,
        STAGING_OBSERVATIONS,
        PREDICTION_PARTS,
        TRAINING_SET,
        TRAINING_REQUESTS,
        FEATURES,
        LABELS,
        PREDICTIONS,
        SHADOW,
        SHADOW_PARTS,
        DRIFT_REPORT,
    )
}
LANDING = {"observations": LANDING_OBSERVATIONS, "labels": LANDING_LABELS}
"""The landing kind of each raw dataset."""


def kind(name: str) -> PartitionKind:
    """The kind called ``name``; a clear error for any other name (a sensor's argument, say)."""
    try:
        return KINDS[name]
    except KeyError:
        raise ValueError(f"unknown partition kind {name!r}; expected one of {sorted(KINDS)}") from None


def validation_report_of(training_set: str) -> str:
    return beside(training_set, TRAINING_SET_VALIDATION)


USE_CASE_NAME = NAME_PATTERN.removeprefix("^").removesuffix("$")
"""How a use case's name looks in a path (``mlloop.spec`` enforces it on the name itself)."""

DRIFT_REPORT_PATTERN = (
    r"^(?!.*(^|/)\.\.(/|$))\S*/"  # no ".." segment anywhere; the root is checked by the task
    + "/".join(
        [
            re.escape(DRIFT_REPORT.area),
            USE_CASE_NAME,
            re.escape(str(DRIFT_REPORT.dataset)),
            re.escape(PARTITION_PREFIX) + r"\d{4}-\d{2}-\d{2}",
            re.escape(DRIFT_REPORT.filename),
        ]
    )
    + "$"
)
"""What a drift report's path may look like (the training DAG's ``drift_report`` Param)."""
