"""Drift monitoring operators: measure drift, decide (debounced) whether to retrain, remember triggers."""

from __future__ import annotations

from collections.abc import Sequence
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.providers.standard.operators.branch import BranchMixIn
from airflow.sdk.exceptions import AirflowFailException

from mlloop_airflow.operators.base import UseCaseOperator

if TYPE_CHECKING:
    from airflow.sdk import Context
    from mlflow import MlflowClient

ACTIVE_RUN_STATES = ["queued", "running"]


class DriftReportOperator(UseCaseOperator):
    """Compare the day's recent scoring with the champion's training reference and write the report.

    Evidently data drift per model feature and for the set, prediction drift, and the champion's
    quality on labels that have arrived, with the spec's method, threshold, window, sample size
    and seed. Writes ``reports/<use_case>/drift/date=<day>/report.{html,json}`` (replaced on rerun),
    logs a ``monitoring`` run to MLflow tagged with the model version, and returns the JSON
    summary, verdict included, for the decision task.

    :param champion: the pinned version, as returned by ``ResolveChampionOperator``. (templated)
    """

    template_fields: Sequence[str] = (*UseCaseOperator.template_fields, "champion")
    ui_color = "#f5e6cc"

    def __init__(self, *, champion: Any, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.champion = champion

    @cached_property
    def mlflow_client(self) -> MlflowClient:
        from mlloop.registry import mlflow_client

        return mlflow_client()

    def execute(self, context: Context) -> dict[str, Any]:
        from mlloop.drift_report import DriftInputError, build_drift_report
        from mlloop.registry import ModelNotFound, get_version

        day = self.resolve_day(context)
        spec = self.spec
        try:
            ref = get_version(self.mlflow_client, self.champion["name"], self.champion["version"])
        except ModelNotFound as exc:
            raise AirflowFailException(f"{exc}: the pinned champion was deleted; rerun the DAG run") from None
        self.log.info(
            "Drift of %s for %s: window of %d day(s) vs the training reference of %s v%s "
            "(method %s, threshold %s, sample %d, seed %d)",
            spec.name,
            day,
            spec.drift.window_days,
            ref.name,
            ref.version,
            spec.drift.method or "auto",
            spec.drift.threshold if spec.drift.threshold is not None else "default",
            spec.drift.sample_size,
            spec.drift.seed,
        )
        try:
            report = build_drift_report(
                self.storage_hook.storage,
                spec,
                day,
                client=self.mlflow_client,
                champion=ref,
                airflow_run_id=context["run_id"],
            )
        except (DriftInputError, ModelNotFound) as exc:
            raise AirflowFailException(f"Cannot measure drift for {day}: {exc}") from None
        summary = report.summary
        if summary["window"]["missing"]:
            self.log.warning(
                "No predictions for %s (inside the %d-day window): compared the days that exist, %s",
                ", ".join(summary["window"]["missing"]),
                spec.drift.window_days,
                ", ".join(summary["window"]["found"]),
            )
        self.log.info(
            "Compared %d reference rows with %d of %d current rows; report %s, summary %s, MLflow run %s",
            summary["rows"]["reference_sampled"],
            summary["rows"]["current_sampled"],
            summary["rows"]["current"],
            report.html_path,
            report.json_path,
            report.mlflow_run_id,
        )
        return summary


class RetrainDecisionOperator(UseCaseOperator, BranchMixIn):
    """Decide whether the drift verdict starts a retrain now, and branch to the trigger if so.

    The verdict comes from the report (the spec's policy, :func:`mlloop.drift.decide`); this task
    adds the debounce (:func:`mlloop.drift.retrain_gate`): no trigger while a run of the training
    DAG is queued or running (asked through the Task SDK, tasks cannot query the metadata DB), and
    none within ``drift.cooldown_hours`` of the last drift-triggered retrain (the marker
    ``reports/<use_case>/drift/last_trigger.json``). It logs one line with the verdict, the numbers
    and the decision, pushes the training conf as XCom ``retrain_conf``, and skips the trigger
    task when there is nothing to do: no drift and debounced runs are green.

    :param report: the summary returned by :class:`DriftReportOperator`. (templated)
    :param training_dag_id: the DAG a retrain runs in. (templated)
    :param trigger_task_id: the task that triggers it (skipped unless a retrain starts).
    """

    template_fields: Sequence[str] = (*UseCaseOperator.template_fields, "report", "training_dag_id")
    inherits_from_skipmixin = True
    ui_color = "#f5d6cc"

    def __init__(self, *, report: Any, training_dag_id: str, trigger_task_id: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.report = report
        self.training_dag_id = training_dag_id
        self.trigger_task_id = trigger_task_id

    def execute(self, context: Context) -> None:
        import datetime as dt

        from mlloop.drift import read_marker, retrain_conf, retrain_gate

        day = self.resolve_day(context)
        verdict = self.report["verdict"]
        html = self.report["report_html"]
        active = 0
        last_trigger = None
        if verdict["drift"]:
            active = context["ti"].get_dr_count(dag_id=self.training_dag_id, states=ACTIVE_RUN_STATES)
            marker = read_marker(self.storage_hook.storage, self.spec)
            last_trigger = marker.triggered_at if marker else None
        gate = retrain_gate(
            verdict["drift"],
            active_training_runs=active,
            last_trigger_at=last_trigger,
            now=dt.datetime.now(dt.UTC),
            cooldown_hours=self.spec.drift.cooldown_hours,
        )
        conf = retrain_conf(verdict, day, html) if gate.trigger else None
        context["ti"].xcom_push(key="retrain_conf", value=conf)
        context["ti"].xcom_push(key="decision", value={"trigger": gate.trigger, "reason": gate.reason})
        self.log.info(
            "%s %s | %s | report %s | decision: %s", self.spec.name, day, verdict["headline"], html, gate.reason
        )
        # Last: skipping the trigger raises, by design of the Task SDK, to tell the supervisor.
        self.do_branch(context, self.trigger_task_id if gate.trigger else None)


class RecordRetrainTriggerOperator(UseCaseOperator):
    """Remember the retrain just triggered, so the cooldown holds until ``drift.cooldown_hours`` pass.

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
        import datetime as dt

        from mlloop.drift import TriggerMarker, marker_path, write_marker

        day = self.resolve_day(context)
        marker = TriggerMarker(
            triggered_at=dt.datetime.now(dt.UTC),
            day=day.isoformat(),
            training_dag_id=self.training_dag_id,
            training_run_id=str(self.training_run_id),
            drift_run_id=context["run_id"],
            reason=self.conf["reason"],
            report=self.conf["drift_report"],
        )
        storage = self.storage_hook.storage
        write_marker(storage, self.spec, marker)
        self.log.info(
            "Triggered %s run %s; no other drift-triggered retrain of %s before %s (marker %s)",
            self.training_dag_id,
            marker.training_run_id,
            self.spec.name,
            (marker.triggered_at + dt.timedelta(hours=self.spec.drift.cooldown_hours)).isoformat(timespec="seconds"),
            marker_path(storage, self.spec),
        )
        return marker.as_dict()
