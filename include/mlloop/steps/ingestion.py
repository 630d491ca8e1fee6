"""Ingestion steps: validate a landed batch, build the day's features, materialize them online,
and ask for a training on the data days one is due."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from mlloop import layout
from mlloop.steps import LOG, StepFailed, StepLog, StepSkipped

if TYPE_CHECKING:
    from mlloop.services import Services
    from mlloop.spec import UseCaseSpec


def validate_batch(
    services: Services, spec: UseCaseSpec, dataset: str, day: dt.date, optional: bool, log: StepLog = LOG
) -> dict[str, Any]:
    """Validate the batch that landed for ``day``: valid rows go on, bad rows to ``quarantine/``.

    A missing ``optional`` batch is not an error (labels do not arrive every day). A batch that
    cannot be accepted is a :class:`StepFailed` naming where the report and the bad rows are.
    """
    from mlloop.ingestion import DATASETS, landing_path, validate_landed_batch
    from mlloop.validation import BatchRejected

    if dataset not in DATASETS:
        raise StepFailed(f"dataset must be one of {DATASETS}, got {dataset!r}")
    storage = services.storage
    source = landing_path(storage, spec, dataset, day)
    if optional and not storage.exists(source):
        log.info("No %s batch landed for %s (%s); nothing to validate.", dataset, day, source)
        return {"landed": False, "source": source, "rows_in": 0, "rows_valid": 0, "rows_quarantined": 0}
    log.info("Validating %s batch %s for %s", dataset, source, day)
    try:
        outcome = validate_landed_batch(storage, spec, dataset, day)
    except BatchRejected as exc:
        log.error("\n%s", exc.report.summary())
        cause = " ".join(str(exc).split())  # one line, whatever a library put in the reason
        raise StepFailed(
            f"{cause}. Nothing was written downstream; bad rows and the report are under "
            f"{layout.QUARANTINE.day_folder(storage, spec, day, dataset=dataset)}. "
            "Fix or re-deliver the batch upstream, then clear this task to rerun the interval."
        ) from None
    log.info("\n%s", outcome.report.summary())
    if outcome.quarantine_path:
        log.warning("%d row(s) quarantined to %s", outcome.report.rows_quarantined, outcome.quarantine_path)
    return {"landed": True, **outcome.as_dict()}


def build_features(services: Services, spec: UseCaseSpec, day: dt.date, log: StepLog = LOG) -> dict[str, Any]:
    """Derive the day's feature partition (the Feast offline source) from its validated observations."""
    from mlloop.ingestion import write_feature_partition

    path, rows = write_feature_partition(services.storage, spec, day)
    log.info("Wrote %d feature rows for %s to %s", rows, day, path)
    return {"path": path, "rows": rows, "day": day.isoformat()}


def materialize(
    services: Services, spec: UseCaseSpec, day: dt.date, feature_views: list[str] | None, log: StepLog = LOG
) -> dict[str, Any]:
    """Materialize exactly ``day`` (extended to a later watermark) of the views into the online store."""
    from mlloop.feature_store import materialize_interval
    from mlloop.ingestion import day_bounds

    # The offline partitions live under the storage root: if it is unreachable, say so, rather
    # than let Feast materialize "no rows" from a folder that is not there.
    services.storage.check_available()
    views = list(feature_views or [spec.features.feature_view])
    start, end = day_bounds(day)
    log.info("Materializing %s for %s into the online store", views, day)
    window = materialize_interval(services.feature_store, views, start, end)
    log.info("%s", window.describe())
    return {
        "day": day.isoformat(),
        "feature_views": views,
        "start": window.start.isoformat(),
        "end": window.end.isoformat(),
    }


def request_training(
    services: Services, spec: UseCaseSpec, day: dt.date, log: StepLog = LOG
) -> tuple[dict[str, Any], dict[str, str]]:
    """Decide, in data time, whether ``day`` is due a training; if so, record the request in the
    ledger and return (the decision, the features Asset event's extra); if not, StepSkipped."""
    from mlloop.training_requests import TrainingRequest, decide_training_due, record_request

    storage = services.storage
    decision = decide_training_due(storage, spec, day)
    if not decision.train:
        raise StepSkipped(f"NO TRAINING due at {day} (a decision, not a failure): {decision.explanation}")
    path = record_request(storage, spec, TrainingRequest(day, "features", decision.reason))
    log.info("TRAINING DUE at %s: %s (ledger entry %s)", day, decision.explanation, path)
    extra = {"day": day.isoformat(), "cutoff_day": day.isoformat(), "reason": f"due: {decision.reason}"}
    return {**decision.as_dict(), "request": path}, extra
