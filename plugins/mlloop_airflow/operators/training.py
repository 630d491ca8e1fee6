"""Training operators: decide, build the point-in-time training set, validate it, train and register.

Each runs one step of :mod:`mlloop.steps.training` (where the sequences and the staging layout are).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from mlloop_airflow.links import LinkedOperatorMixin, MlflowRunLink, ModelVersionLink
from mlloop_airflow.operators.base import UseCaseOperator
from mlloop_airflow.operators.branching import BranchWithResultMixIn

if TYPE_CHECKING:
    from airflow.sdk import Context


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

    def execute(self, context: Context) -> dict[str, Any]:
        from mlloop.steps import training

        ask = training.TrainingAsk(
            self.cutoff_day, self.reason, self.force, self.drift_report, self.triggering_asset_extras(context)
        )
        decision = training.decide(self.services, self.spec, ask, self.log)
        branches = sorted(self.downstream_task_ids) if decision.train else None
        return self.branch_with_result(context, branches, decision.as_dict())


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

    def execute(self, context: Context) -> dict[str, Any]:
        from mlloop.steps import training

        return training.build_set(self.services, self.spec, self.cutoff_day, self.log)


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
        from mlloop.steps import training

        return training.validate_set(self.services, self.spec, self.training_set, self.log)


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

    def execute(self, context: Context) -> dict[str, Any]:
        from mlloop.steps import training

        inputs = training.TrainInputs(
            training_set=self.training_set,
            cutoff_day=self.cutoff_day,
            trigger_reason=self.trigger_reason,
            validation=self.validation,
            training_set_info=self.training_set_info,
            drift=self.drift,
            drift_report=self.drift_report,
        )
        ref = training.train_and_register(self.services, self.spec, inputs, self.run_info(context), self.log)
        self.link_to_model_version(ref.name, ref.version)
        self.link_to_mlflow_run(self.services.mlflow.get_run(ref.run_id).info.experiment_id, ref.run_id)
        self.set_outlet_extra(context, {"version": ref.version, "run_id": ref.run_id, "cutoff_day": ref.cutoff_day})
        return ref.as_dict()
