"""Drift monitoring operators: measure drift, decide (debounced) whether to retrain, remember triggers.

The work is :mod:`mlloop.steps.drift` (the one-screen summary too: :func:`mlloop.steps.drift.drift_summary`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from airflow.providers.standard.operators.branch import BranchMixIn

from mlloop_airflow.links import DriftReportLink, LinkedOperatorMixin, MlflowRunLink, ModelVersionLink
from mlloop_airflow.operators.base import UseCaseOperator

if TYPE_CHECKING:
    from airflow.sdk import Context

ACTIVE_RUN_STATES = ["queued", "running"]


class DriftReportOperator(LinkedOperatorMixin, UseCaseOperator):
    """Compare the day's recent scoring with the champion's training reference and write the report.

    Evidently data drift per model feature and for the set, prediction drift, and the champion's
    quality on labels that have arrived, with the spec's method, threshold, window, sample size
    and seed. Writes ``reports/<use_case>/drift/date=<day>/report.{html,json}`` (replaced on rerun),
    logs a ``monitoring`` run to MLflow tagged with the model version, and returns the JSON
    summary, verdict included, for the decision task.

    :param champion: the pinned version, as returned by ``ResolveChampionOperator``. (templated)
    """

    template_fields: Sequence[str] = (*UseCaseOperator.template_fields, "champion")
    operator_extra_links = (DriftReportLink(), MlflowRunLink(), ModelVersionLink())
    ui_color = "#f5e6cc"

    def __init__(self, *, champion: Any, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.champion = champion

    def execute(self, context: Context) -> dict[str, Any]:
        from mlloop.steps import drift

        day = self.resolve_day(context)
        report = drift.measure(self.services, self.spec, day, self.champion, context["run_id"], self.log)
        self.link_to_model_version(self.champion["name"], str(self.champion["version"]))
        self.link_to_report(report.html_path)
        if report.mlflow_run_id:
            experiment = self.services.mlflow.get_run(report.mlflow_run_id).info.experiment_id
            self.link_to_mlflow_run(experiment, report.mlflow_run_id)
        return report.summary


class RetrainDecisionOperator(LinkedOperatorMixin, UseCaseOperator, BranchMixIn):
    """Decide whether the drift verdict starts a retrain now, and branch to the trigger if so.

    The verdict comes from the report (the spec's policy, :func:`mlloop.drift.decide`); this task
    adds the debounce (:func:`mlloop.drift.retrain_gate`): no trigger while a run of the training
    DAG is queued or running (asked through the Task SDK, tasks cannot query the metadata DB), and
    none within ``drift.cooldown_hours`` of the last drift-triggered retrain (the marker
    ``reports/<use_case>/drift/last_trigger.json``), measured in data time: the day checked vs the
    day whose check triggered that retrain; and none when the training ledger already holds a
    training on data up to the day checked (the day's scheduled one). It logs one summary (:func:`drift_summary`: the
    verdict, the top features, quality, rows and the decision), pushes the training conf as XCom
    ``retrain_conf``, and skips the trigger task when there is nothing to do: no drift and debounced
    runs are green.

    :param report: the summary returned by :class:`DriftReportOperator`. (templated)
    :param training_dag_id: the DAG a retrain runs in. (templated)
    :param trigger_task_id: the task that triggers it (skipped unless a retrain starts).
    """

    template_fields: Sequence[str] = (*UseCaseOperator.template_fields, "report", "training_dag_id")
    operator_extra_links = (DriftReportLink(),)
    inherits_from_skipmixin = True
    ui_color = "#f5d6cc"

    def __init__(self, *, report: Any, training_dag_id: str, trigger_task_id: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.report = report
        self.training_dag_id = training_dag_id
        self.trigger_task_id = trigger_task_id

    def execute(self, context: Context) -> None:
        from mlloop.steps import drift

        ti = context["ti"]
        decision = drift.decide_retrain(
            self.services,
            self.spec,
            self.resolve_day(context),
            self.report,
            lambda: ti.get_dr_count(dag_id=self.training_dag_id, states=ACTIVE_RUN_STATES),
        )
        ti.xcom_push(key="retrain_conf", value=decision.conf)
        ti.xcom_push(key="decision", value={"trigger": decision.trigger, "reason": decision.reason})
        self.link_to_report(self.report["report_html"])
        links = getattr(self, "_mlloop_links", {})
        self.log.info("%s", drift.drift_summary(self.report, decision.reason, links.get("drift_report", "")))
        # Last: skipping the trigger raises, by design of the Task SDK, to tell the supervisor.
        self.do_branch(context, self.trigger_task_id if decision.trigger else None)


class RecordRetrainTriggerOperator(UseCaseOperator):
    """Remember the retrain just triggered (and its data day), so the cooldown holds for ``drift.cooldown_hours``
    of data time.

    Writes ``reports/<use_case>/drift/last_trigger.json`` atomically after the trigger succeeded
    (a failed trigger must not start a cooldown).

    :param conf: the conf the training run was triggered with. (templated)
    :param training_dag_id: the triggered DAG. (templated)
    :param training_run_id: the triggered run's id (the trigger task's XCom ``trigger_run_id``). (templated)
    """

    template_fields: Sequence[str] = (*UseCaseOperator.template_fields, "conf", "training_dag_id", "training_run_id")
    ui_color = "#f5d6cc"

    def __init__(self, *, conf: Any, training_dag_id: str, training_run_id: Any, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.conf = conf
        self.training_dag_id = training_dag_id
        self.training_run_id = training_run_id

    def execute(self, context: Context) -> dict[str, Any]:
        from mlloop.steps import drift

        marker = drift.record_trigger(
            self.services,
            self.spec,
            self.resolve_day(context),
            self.conf,
            self.training_dag_id,
            str(self.training_run_id),
            context["run_id"],
            self.log,
        )
        return marker.as_dict()
