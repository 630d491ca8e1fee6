"""Training steps: decide, build the point-in-time training set, validate it, train and register.

Each is its own task so the log of each says one thing, a failure points at one step, and a retry
repeats only that step. The training set travels between them as a staging partition
(``staging/<use_case>/training_set/date=<cutoff>/data.parquet``), not through XCom.
"""

from __future__ import annotations

import ast
import dataclasses
import datetime as dt
import json
import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from mlloop import layout
from mlloop import tags as tag_keys
from mlloop.steps import LOG, RunInfo, StepFailed, StepLog, check_day_in_range, is_set, parse_day

if TYPE_CHECKING:
    from mlloop.services import Services
    from mlloop.spec import UseCaseSpec
    from mlloop.storage import Storage
    from mlloop.training import TrainingDecision


def training_set_path(storage: Storage, spec: UseCaseSpec, cutoff_day: dt.date) -> str:
    return layout.TRAINING_SET.path(storage, spec, cutoff_day)


def as_bool(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes", "on")
    return bool(value)


@dataclass(frozen=True)
class TrainingAsk:
    """What a training run was asked to do: its inputs as triggered, and the triggering events'
    extras (ingestion's training requests: ``day``, ``cutoff_day``, ``reason``)."""

    cutoff_day: Any = None
    reason: Any = None
    force: Any = False
    drift_report: Any = None
    events: list[dict[str, Any]] = field(default_factory=list)


def check_drift_report(services: Services, spec: UseCaseSpec, drift_report: Any) -> None:
    """Refuse a ``drift_report`` outside the storage root's drift reports of this use case."""
    if not is_set(drift_report):
        return
    storage = services.storage
    path = str(drift_report)
    reports = layout.DRIFT_REPORT.folder(storage, spec)
    if not storage.contains(path) or not path.startswith(reports + "/"):
        raise StepFailed(
            f"'drift_report' must be a drift report of {spec.name} under {reports}/, got {path!r}. "
            "Nothing was done; trigger again with the path the drift monitor wrote (or leave it empty)."
        )


def resolve_cutoff(services: Services, spec: UseCaseSpec, ask: TrainingAsk) -> tuple[dt.date, str]:
    """(cutoff day, where it came from): the parameter, else the triggering events' newest
    ``cutoff_day`` (ingestion's training request), else the newest ingested features day.
    Never the wall clock: a run started by hand during a replay of 2011 trains on 2011."""
    from mlloop.training_set import feature_days

    if is_set(ask.cutoff_day):
        cutoff = check_day_in_range(spec, parse_day(ask.cutoff_day, "cutoff_day"), "cutoff_day")
        return cutoff, "the cutoff_day parameter"
    days = [str(e.get("cutoff_day") or e["day"]) for e in ask.events if is_set(e.get("cutoff_day") or e.get("day"))]
    if days:
        return max(parse_day(d, "day in the asset event") for d in days), "the training request (features event)"
    ingested = feature_days(services.storage, spec)
    if not ingested:
        raise StepFailed(
            f"no cutoff_day given and no features of {spec.name} ingested yet: nothing to train on. "
            "Ingest some days first (or give the Cutoff day)."
        )
    return max(ingested), "the newest ingested features day (no cutoff_day, no triggering event)"


def decide(services: Services, spec: UseCaseSpec, ask: TrainingAsk, log: StepLog = LOG) -> TrainingDecision:
    """Whether this run trains (:func:`mlloop.training.decide_training`), on which cutoff and why.

    A drift or manual training (one no features event asked for) is written to the training
    ledger too: the next scheduled one is due ``retrain_after_days`` data days after its cutoff.
    """
    from mlloop.registry import CHAMPION, get_alias
    from mlloop.training import decide_training, latest_version
    from mlloop.training_requests import TrainingRequest, record_request
    from mlloop.training_set import count_labels, training_window

    check_drift_report(services, spec, ask.drift_report)
    cutoff, source = resolve_cutoff(services, spec, ask)
    first, last = training_window(spec, cutoff)
    log.info("Cutoff day %s (from %s); counting labels of landing days %s .. %s", cutoff, source, first, last)
    storage = services.storage
    labels = count_labels(storage, spec, first, last)
    log.info(
        "%d labels in the window, %d of them for observations whose features were ingested",
        labels.total,
        labels.with_features,
    )
    client = services.mlflow
    newest, newest_cutoff = latest_version(client, spec)
    champion = get_alias(client, spec.registered_model_name, CHAMPION)
    reasons = [str(e["reason"]) for e in ask.events if is_set(e.get("reason"))]
    reason = str(ask.reason) if is_set(ask.reason) else (reasons[-1] if reasons else None)
    decision = decide_training(
        spec,
        cutoff_day=cutoff,
        labelled_rows=labels.with_features,
        reason=reason,
        force=as_bool(ask.force),
        latest_version=newest,
        latest_cutoff=newest_cutoff,
        has_champion=champion is not None,
    )
    if decision.train and not ask.events:
        kind = "drift" if is_set(ask.drift_report) else "manual"
        record_request(storage, spec, TrainingRequest(cutoff, kind, decision.reason))
    if decision.train:
        log.info("TRAIN: %s", decision.explanation)
    else:
        log.info("NO TRAINING (this is a decision, not a failure): %s", decision.explanation)
    return decision


def build_set(services: Services, spec: UseCaseSpec, cutoff_day: Any, log: StepLog = LOG) -> dict[str, Any]:
    """Join the window's label events with Feast features as of each label's time; write the set to
    staging. Returns ``path``, ``rows``, ``cutoff_day``, ``fingerprint``, ``join``, ``labels_superseded``."""
    from mlloop.training_set import TrainingSetError, build_training_set, fingerprint

    cutoff = parse_day(cutoff_day, "cutoff_day")
    storage = services.storage
    log.info("Building the point-in-time training set of %s up to %s", spec.name, cutoff)
    try:
        training_set = build_training_set(storage, services.feature_store, spec, cutoff)
    except TrainingSetError as exc:
        raise StepFailed(f"{exc}. No model was trained.") from None
    log.info("%s", training_set.describe())
    path = storage.write_frame(training_set.frame, training_set_path(storage, spec, cutoff))
    prints = fingerprint(training_set.frame, spec)
    log.info(
        "Wrote %d rows (sha256 %s, %s .. %s) to %s",
        prints["rows"],
        prints["sha256"][:12],
        prints["start"],
        prints["end"],
        path,
    )
    return {
        "path": path,
        "rows": prints["rows"],
        "cutoff_day": cutoff.isoformat(),
        "fingerprint": prints,
        "join": dataclasses.asdict(training_set.stats),
        "labels_superseded": training_set.superseded_labels,
    }


def validate_set(services: Services, spec: UseCaseSpec, training_set: str, log: StepLog = LOG) -> dict[str, Any]:
    """Validate the training set with Great Expectations; the report goes beside it either way."""
    from mlloop.training_set import validate_training_set
    from mlloop.validation import BatchRejected

    storage = services.storage
    report_path = layout.validation_report_of(training_set)
    log.info("Validating training set %s", training_set)
    frame = storage.read_frame(training_set)
    try:
        report = validate_training_set(frame, spec, source=training_set)
    except BatchRejected as exc:
        storage.write_bytes(json.dumps(exc.report.as_dict(), indent=2, default=str).encode(), report_path)
        log.error("\n%s", exc.report.summary())
        raise StepFailed(
            f"training set rejected: {exc.report.reason}. No model was trained or registered. "
            f"Report: {report_path}. Check the label and feature partitions of the window (and "
            "ingestion's quarantine) or the spec's rules; then clear build_training_set to rerun."
        ) from None
    storage.write_bytes(json.dumps(report.as_dict(), indent=2, default=str).encode(), report_path)
    log.info("\n%s", report.summary())
    return {**report.as_dict(), "report_path": report_path}


@dataclass(frozen=True)
class TrainInputs:
    """What training registers beside the model: where the set is, why it trains, and the reports."""

    training_set: str
    cutoff_day: Any
    trigger_reason: Any = None
    validation: dict[str, Any] | None = None
    training_set_info: dict[str, Any] | None = None
    drift: Any = None
    drift_report: Any = None


@dataclass(frozen=True)
class RegisteredVersion:
    name: str
    version: str
    run_id: str
    cutoff_day: str
    metrics: dict[str, float | None]

    def as_dict(self) -> dict[str, Any]:
        return {"version": self.version, "run_id": self.run_id, "cutoff_day": self.cutoff_day, "metrics": self.metrics}


def lineage(inputs: TrainInputs, run: RunInfo) -> Any:
    """The training's lineage: cutoff, why, which run, which commit, and the drift that asked for it."""
    from mlloop.training import Lineage, git_commit

    extra = {}
    drift: Any = inputs.drift
    if isinstance(drift, str) and is_set(drift):
        try:
            drift = ast.literal_eval(drift)
        except (ValueError, SyntaxError):
            drift = {"value": drift}
    if isinstance(drift, dict):
        extra.update({f"{tag_keys.DRIFT_PREFIX}{k}": str(v) for k, v in drift.items()})
    if is_set(inputs.drift_report):
        extra[tag_keys.DRIFT_REPORT] = str(inputs.drift_report)
    return Lineage(
        cutoff_day=parse_day(inputs.cutoff_day, "cutoff_day"),
        trigger_reason=str(inputs.trigger_reason) if is_set(inputs.trigger_reason) else "unspecified",
        dag_id=run.dag_id,
        dag_run_id=run.run_id,
        data_interval_start=run.data_interval_start,
        data_interval_end=run.data_interval_end,
        git_commit=git_commit(),
        extra=extra,
    )


def train_and_register(
    services: Services, spec: UseCaseSpec, inputs: TrainInputs, run: RunInfo, log: StepLog = LOG
) -> RegisteredVersion:
    """Train the spec's estimator, evaluate it on the newest days, log it all to MLflow, register a
    version and point alias ``challenger`` at it."""
    from mlloop.training import TrainingDataError, fit_and_evaluate, log_and_register

    frame = services.storage.read_frame(inputs.training_set)
    log.info("Training %s on %d rows from %s", spec.model.estimator, len(frame), inputs.training_set)
    try:
        trained = fit_and_evaluate(spec, frame)
    except TrainingDataError as exc:
        raise StepFailed(f"cannot train on {inputs.training_set}: {exc}. Nothing was registered.") from None
    log.info("%s", trained.describe(spec))
    lineage_ = lineage(inputs, run)
    ref = log_and_register(
        services.mlflow,
        spec,
        trained,
        frame,
        lineage=lineage_,
        validation=inputs.validation if isinstance(inputs.validation, dict) else None,
        training_set=inputs.training_set_info if isinstance(inputs.training_set_info, dict) else None,
    )
    log.info(
        "Registered %s v%s (training run %s) with alias challenger; lineage: %s",
        ref.name,
        ref.version,
        ref.run_id,
        lineage_.tags(),
    )
    return RegisteredVersion(
        name=ref.name,
        version=ref.version,
        run_id=ref.run_id,
        cutoff_day=lineage_.cutoff_day.isoformat(),
        metrics={f"holdout_{k}": None if math.isnan(v) else v for k, v in trained.metrics.items()},
    )
