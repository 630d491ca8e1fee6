"""Training operators: decide, build the point-in-time training set, validate it, train and register.

Each step is its own task so the log of each says one thing, a failure points at one step, and a
retry repeats only that step. The training set travels between tasks as a staging partition
(``staging/<use_case>/training_set/date=<cutoff>/data.parquet``), not through XCom.
"""

from __future__ import annotations

import ast
import dataclasses
import datetime as dt
import json
import math
from collections.abc import Sequence
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.sdk.exceptions import AirflowFailException

from mlloop import layout
from mlloop_airflow.hooks.feature_store import FeastHook
from mlloop_airflow.hooks.mlflow import MlflowHook
from mlloop_airflow.intervals import check_day_in_range
from mlloop_airflow.links import LinkedOperatorMixin, MlflowRunLink, ModelVersionLink
from mlloop_airflow.operators.base import UseCaseOperator
from mlloop_airflow.operators.branching import BranchWithResultMixIn

if TYPE_CHECKING:
    from airflow.sdk import Context

    from mlloop.spec import UseCaseSpec
    from mlloop.storage import Storage


def _is_set(value: Any) -> bool:
    return value not in (None, "", "None", "null")


def _as_bool(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes", "on")
    return bool(value)


def _parse_day(value: Any, what: str) -> dt.date:
    try:
        return dt.date.fromisoformat(str(value))
    except ValueError:
        raise AirflowFailException(f"'{what}' must be a date like 2026-11-25, got {value!r}") from None


def training_set_path(storage: Storage, spec: UseCaseSpec, cutoff_day: dt.date) -> str:
    return layout.TRAINING_SET.path(storage, spec, cutoff_day)


class TrainingDecisionOperator(UseCaseOperator, BranchWithResultMixIn):
    """Decide whether this run trains; if not, skip the rest of the run, which stays green.

    Trains when a ``reason`` is given (a parameter, or the training request in the triggering
    features event: ingestion already decided in data time that a training is due) or ``force`` is
    set, when the model has no version yet, or
    when the newest version's training cutoff is ``model.retrain_after_days`` older than this run's
    cutoff; and only with at least ``model.min_training_rows`` labelled rows in the training window.
    Returns the decision (keys ``train``, ``cutoff_day``, ``reason``, ``explanation``, ...).

    :param cutoff_day: the newest label partition (landing day) to train on; empty means the newest
        ``cutoff_day`` in the triggering asset events' extra (ingestion's training request), else
        the newest ingested features day. (templated)
    :param reason: why training was asked for (the drift monitor says which drift). (templated)
    :param force: train even if the newest version is recent. (templated)
    :param drift_report: the drift report named by the trigger, checked here. (templated)

    Being the run's first task, it also checks the trigger input a Param schema cannot: the
    ``drift_report`` path must lie under this deployment's storage root, in this use case's drift
    reports. Bad input fails the run here, without retries, before any work.
    """

    template_fields: Sequence[str] = (
        *UseCaseOperator.template_fields,
        "cutoff_day",
        "reason",
        "force",
        "drift_report",
    )
    inherits_from_skipmixin = True
    ui_color = "#fdf3d8"

    def __init__(
        self,
        *,
        cutoff_day: str | None = None,
        reason: str | None = None,
        force: bool | str = False,
        drift_report: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**{"multiple_outputs": True, **kwargs})
        self.cutoff_day = cutoff_day
        self.reason = reason
        self.force = force
        self.drift_report = drift_report

    def check_trigger_input(self) -> None:
        """Refuse a ``drift_report`` outside the storage root's drift reports of this use case."""
        if not _is_set(self.drift_report):
            return
        storage = self.storage_hook.storage
        path = str(self.drift_report)
        reports = layout.DRIFT_REPORT.folder(storage, self.spec)
        if not storage.contains(path) or not path.startswith(reports + "/"):
            raise AirflowFailException(
                f"'drift_report' must be a drift report of {self.spec.name} under {reports}/, got {path!r}. "
                "Nothing was done; trigger again with the path the drift monitor wrote (or leave it empty)."
            )

    @cached_property
    def mlflow_hook(self) -> MlflowHook:
        return MlflowHook()

    def resolve_cutoff(self, context: Context) -> tuple[dt.date, str]:
        """(cutoff day, where it came from): the parameter, else the triggering events' newest
        ``cutoff_day`` (ingestion's training request), else the newest ingested features day.
        Never the wall clock: a run started by hand during a replay of 2011 trains on 2011."""
        if _is_set(self.cutoff_day):
            cutoff = check_day_in_range(self.spec, _parse_day(self.cutoff_day, "cutoff_day"), "cutoff_day")
            return cutoff, "the cutoff_day parameter"
        events = self.triggering_asset_extras(context)
        days = [str(e.get("cutoff_day") or e["day"]) for e in events if _is_set(e.get("cutoff_day") or e.get("day"))]
        if days:
            return max(_parse_day(d, "day in the asset event") for d in days), "the training request (features event)"
        from mlloop.training_set import feature_days

        ingested = feature_days(self.storage_hook.storage, self.spec)
        if not ingested:
            raise AirflowFailException(
                f"no cutoff_day given and no features of {self.spec.name} ingested yet: nothing to train on. "
                "Ingest some days first (or give the Cutoff day)."
            )
        return max(ingested), "the newest ingested features day (no cutoff_day, no triggering event)"

    def requested_reason(self, context: Context) -> str | None:
        """The reason to train: the parameter, else the training request that started the run."""
        if _is_set(self.reason):
            return str(self.reason)
        reasons = [str(e["reason"]) for e in self.triggering_asset_extras(context) if _is_set(e.get("reason"))]
        return reasons[-1] if reasons else None

    def execute(self, context: Context) -> dict[str, Any]:
        from mlloop.registry import CHAMPION, get_alias
        from mlloop.training import decide_training, latest_version
        from mlloop.training_requests import TrainingRequest, record_request
        from mlloop.training_set import count_labels, training_window

        self.check_trigger_input()
        cutoff, source = self.resolve_cutoff(context)
        first, last = training_window(self.spec, cutoff)
        self.log.info("Cutoff day %s (from %s); counting labels of landing days %s .. %s", cutoff, source, first, last)
        storage = self.storage_hook.storage
        labels = count_labels(storage, self.spec, first, last)
        self.log.info(
            "%d labels in the window, %d of them for observations whose features were ingested",
            labels.total,
            labels.with_features,
        )
        client = self.mlflow_hook.client
        newest, newest_cutoff = latest_version(client, self.spec)
        champion = get_alias(client, self.spec.registered_model_name, CHAMPION)
        reason = self.requested_reason(context)
        decision = decide_training(
            self.spec,
            cutoff_day=cutoff,
            labelled_rows=labels.with_features,
            reason=reason,
            force=_as_bool(self.force),
            latest_version=newest,
            latest_cutoff=newest_cutoff,
            has_champion=champion is not None,
        )
        if decision.train:
            if not self.triggering_asset_extras(context):
                # Drift and manual trainings count in the ledger too: the next scheduled one is due
                # retrain_after_days data days after this cutoff.
                kind = "drift" if _is_set(self.drift_report) else "manual"
                record_request(storage, self.spec, TrainingRequest(cutoff, kind, decision.reason))
            self.log.info("TRAIN: %s", decision.explanation)
            return self.branch_with_result(context, sorted(self.downstream_task_ids), decision.as_dict())
        self.log.info("NO TRAINING (this is a decision, not a failure): %s", decision.explanation)
        return self.branch_with_result(context, None, decision.as_dict())


class BuildTrainingSetOperator(UseCaseOperator):
    """Join the training window's label events with Feast features as of each label's time.

    Writes the training set to staging and returns ``path``, ``rows``, ``fingerprint`` and ``join``
    (where label rows went: dropped by Feast, no feature values in the ttl, kept).

    :param cutoff_day: the newest label partition (landing day) to read. (templated)
    """

    template_fields: Sequence[str] = (*UseCaseOperator.template_fields, "cutoff_day")
    ui_color = "#d9ecf4"

    def __init__(self, *, cutoff_day: str, **kwargs: Any) -> None:
        super().__init__(**{"multiple_outputs": True, **kwargs})
        self.cutoff_day = cutoff_day

    @cached_property
    def feast_hook(self) -> FeastHook:
        return FeastHook()

    def execute(self, context: Context) -> dict[str, Any]:
        from mlloop.training_set import TrainingSetError, build_training_set, fingerprint

        cutoff = _parse_day(self.cutoff_day, "cutoff_day")
        storage = self.storage_hook.storage
        self.log.info("Building the point-in-time training set of %s up to %s", self.spec.name, cutoff)
        try:
            training_set = build_training_set(storage, self.feast_hook.store, self.spec, cutoff)
        except TrainingSetError as exc:
            raise AirflowFailException(f"{exc}. No model was trained.") from None
        self.log.info("%s", training_set.describe())
        path = storage.write_frame(training_set.frame, training_set_path(storage, self.spec, cutoff))
        prints = fingerprint(training_set.frame, self.spec)
        self.log.info(
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


class ValidateTrainingSetOperator(UseCaseOperator):
    """Validate the training set with Great Expectations before anything is trained on it.

    Checks schema and types, the row-count floor (``model.min_training_rows``), the label (present,
    0/1 and balanced to ``labels.min_class_share`` for classification), and every feature against its
    range and allowed values from ``features.columns``. A failure stops the run without retries
    (the data will not change by retrying); the report is written beside the training set.

    :param training_set: URL of the training set partition. (templated)
    """

    template_fields: Sequence[str] = (*UseCaseOperator.template_fields, "training_set")
    ui_color = "#e8f4d9"

    def __init__(self, *, training_set: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.training_set = training_set

    def execute(self, context: Context) -> dict[str, Any]:
        from mlloop.training_set import validate_training_set
        from mlloop.validation import BatchRejected

        storage = self.storage_hook.storage
        report_path = layout.validation_report_of(self.training_set)
        self.log.info("Validating training set %s", self.training_set)
        frame = storage.read_frame(self.training_set)
        try:
            report = validate_training_set(frame, self.spec, source=self.training_set)
        except BatchRejected as exc:
            storage.write_bytes(json.dumps(exc.report.as_dict(), indent=2, default=str).encode(), report_path)
            self.log.error("\n%s", exc.report.summary())
            raise AirflowFailException(
                f"training set rejected: {exc.report.reason}. No model was trained or registered. "
                f"Report: {report_path}. Check the label and feature partitions of the window (and "
                "ingestion's quarantine) or the spec's rules; then clear build_training_set to rerun."
            ) from None
        storage.write_bytes(json.dumps(report.as_dict(), indent=2, default=str).encode(), report_path)
        self.log.info("\n%s", report.summary())
        return {**report.as_dict(), "report_path": report_path}


class TrainModelOperator(LinkedOperatorMixin, UseCaseOperator):
    """Train the spec's estimator, evaluate it on the newest days, log it all to MLflow, register a
    version and point alias ``challenger`` at it; the outlet Asset event carries ``{"version": ...}``.

    :param training_set: URL of the validated training set partition. (templated)
    :param cutoff_day: the data cutoff of this run, for lineage. (templated)
    :param trigger_reason: why this run trains, for lineage. (templated)
    :param validation: the validation report (dict) to log as an artifact. (templated)
    :param training_set_info: facts about the training set build (dict) to log beside it. (templated)
    :param drift: numbers from the drift monitor that triggered this run, if any. (templated)
    :param drift_report: where the drift report that triggered this run is. (templated)
    """

    template_fields: Sequence[str] = (
        *UseCaseOperator.template_fields,
        "training_set",
        "cutoff_day",
        "trigger_reason",
        "validation",
        "training_set_info",
        "drift",
        "drift_report",
    )
    operator_extra_links = (MlflowRunLink(), ModelVersionLink())
    ui_color = "#e6d9f4"

    def __init__(
        self,
        *,
        training_set: str,
        cutoff_day: str,
        trigger_reason: str | None = None,
        validation: dict[str, Any] | None = None,
        training_set_info: dict[str, Any] | None = None,
        drift: dict[str, Any] | str | None = None,
        drift_report: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.training_set = training_set
        self.cutoff_day = cutoff_day
        self.trigger_reason = trigger_reason
        self.validation = validation
        self.training_set_info = training_set_info
        self.drift = drift
        self.drift_report = drift_report

    @cached_property
    def mlflow_hook(self) -> MlflowHook:
        return MlflowHook()

    def lineage(self, context: Context) -> Any:
        from mlloop.training import Lineage, git_commit

        extra = {}
        drift: Any = self.drift
        if isinstance(drift, str) and _is_set(drift):
            try:
                drift = ast.literal_eval(drift)
            except (ValueError, SyntaxError):
                drift = {"value": drift}
        if isinstance(drift, dict):
            extra.update({f"drift.{k}": str(v) for k, v in drift.items()})
        if _is_set(self.drift_report):
            extra["drift_report"] = str(self.drift_report)
        start, end = context.get("data_interval_start"), context.get("data_interval_end")
        return Lineage(
            cutoff_day=_parse_day(self.cutoff_day, "cutoff_day"),
            trigger_reason=str(self.trigger_reason) if _is_set(self.trigger_reason) else "unspecified",
            dag_id=context["dag"].dag_id,
            dag_run_id=context["run_id"],
            data_interval_start=start.isoformat() if start else None,
            data_interval_end=end.isoformat() if end else None,
            git_commit=git_commit(),
            extra=extra,
        )

    def execute(self, context: Context) -> dict[str, Any]:
        from mlloop.training import TrainingDataError, fit_and_evaluate, log_and_register

        frame = self.storage_hook.storage.read_frame(self.training_set)
        self.log.info("Training %s on %d rows from %s", self.spec.model.estimator, len(frame), self.training_set)
        try:
            trained = fit_and_evaluate(self.spec, frame)
        except TrainingDataError as exc:
            raise AirflowFailException(f"cannot train on {self.training_set}: {exc}. Nothing was registered.") from None
        self.log.info("%s", trained.describe(self.spec))
        lineage = self.lineage(context)
        ref = log_and_register(
            self.mlflow_hook.client,
            self.spec,
            trained,
            frame,
            lineage=lineage,
            validation=self.validation if isinstance(self.validation, dict) else None,
            training_set=self.training_set_info if isinstance(self.training_set_info, dict) else None,
        )
        self.link_to_model_version(ref.name, ref.version)
        self.link_to_mlflow_run(self.mlflow_hook.client.get_run(ref.run_id).info.experiment_id, ref.run_id)
        self.log.info(
            "Registered %s v%s (training run %s) with alias challenger; lineage: %s",
            ref.name,
            ref.version,
            ref.run_id,
            lineage.tags(),
        )
        result = {
            "version": ref.version,
            "run_id": ref.run_id,
            "cutoff_day": lineage.cutoff_day.isoformat(),
            "metrics": {f"holdout_{k}": None if math.isnan(v) else v for k, v in trained.metrics.items()},
        }
        self.set_outlet_extra(
            context, {"version": ref.version, "run_id": ref.run_id, "cutoff_day": result["cutoff_day"]}
        )
        return result
