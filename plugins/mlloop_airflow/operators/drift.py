"""Drift monitoring operators: measure drift, decide (debounced) whether to retrain, remember triggers."""

from __future__ import annotations

from collections.abc import Sequence
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.providers.standard.operators.branch import BranchMixIn
from airflow.sdk.exceptions import AirflowFailException

from mlloop_airflow.links import DriftReportLink, LinkedOperatorMixin, MlflowRunLink, ModelVersionLink
from mlloop_airflow.operators.base import UseCaseOperator

if TYPE_CHECKING:
    from airflow.sdk import Context
    from mlflow import MlflowClient

ACTIVE_RUN_STATES = ["queued", "running"]
TOP_FEATURES = 3


def _num(value: Any) -> str:
    return "n/a" if value is None else f"{value:.4g}"


def _worse_or_better(drop: float | None) -> str:
    if drop is None:
        return "no comparison"
    return f"worse by {_num(drop)}" if drop >= 0 else f"better by {_num(-drop)}"


def drift_summary(report: dict[str, Any], decision: str, report_link: str = "") -> str:
    """The drift check on one screen: verdict, why, the features nearest to (or past) their threshold,
    prediction drift, quality, rows compared, the retrain decision and where the report is.

    :param report: the summary :class:`DriftReportOperator` returns.
    :param decision: what the debounce decided (trigger, or why not).
    """
    from mlloop.drift import ColumnDrift

    verdict, quality, rows = report["verdict"], report["quality"], report["rows"]
    features = [
        ColumnDrift(name, item["score"], item["drifted"], item["method"], item["threshold"])
        for name, item in report["features"].items()
    ]
    drifted = [f for f in features if f.drifted]
    top = sorted(features, key=lambda f: (f.drifted, f.severity), reverse=True)[:TOP_FEATURES]
    policy = verdict.get("policy", {})
    model = report["model"]

    def column(c: ColumnDrift) -> str:
        return f"{c.column} {_num(c.score)}{' DRIFTED' if c.drifted else ''}"

    lines = [
        f"Drift check of {report['use_case']} for {report['day']} against {model['name']} v{model['version']}: "
        + ("DRIFT" if verdict["drift"] else "no drift"),
    ]
    if verdict["reasons"]:
        lines.append("  why:        " + "; ".join(verdict["reasons"]))
    lines.append(
        f"  features:   {len(drifted)}/{len(features)} drifted ({verdict['drifted_share']:.0%}, drift at "
        f">= {policy.get('drifted_share', 0):.0%}; {policy.get('method') or 'auto'} threshold "
        f"{policy.get('threshold', 'default')}); top: " + ", ".join(column(c) for c in top)
    )
    prediction = report.get("prediction")
    if prediction:
        state = "drifted" if prediction["drifted"] else "stable"
        lines.append(f"  prediction: {state} (score {_num(prediction['score'])})")
    if quality.get("current") is not None:
        lines.append(
            f"  quality:    {quality['metric']} {_num(quality['current'])} vs holdout {_num(quality['reference'])} "
            f"({_worse_or_better(quality['drop'])}, drift if worse by more than {policy.get('max_quality_drop')}) "
            f"on {quality['labelled_rows']} labelled predictions"
        )
    else:
        lines.append(f"  quality:    not measured ({quality.get('note') or 'no labels yet'})")
    lines.append(
        f"  rows:       {rows['reference_sampled']} reference vs {rows['current_sampled']} current "
        f"(of {rows['current']} scored in {', '.join(report['window']['found'])})"
    )
    lines.append(f"  decision:   {decision}")
    lines.append(f"  report:     {report_link or report['report_html']}")
    return "\n".join(lines)


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
        self.link_to_model_version(ref.name, ref.version)
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
        self.link_to_report(report.html_path)
        if report.mlflow_run_id:
            experiment = self.mlflow_client.get_run(report.mlflow_run_id).info.experiment_id
            self.link_to_mlflow_run(experiment, report.mlflow_run_id)
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
        import datetime as dt

        from mlloop.drift import read_marker, retrain_conf, retrain_gate
        from mlloop.training_requests import latest_request_before

        day = self.resolve_day(context)
        verdict = self.report["verdict"]
        html = self.report["report_html"]
        active = 0
        last_trigger = latest = None
        if verdict["drift"]:
            request = latest_request_before(self.storage_hook.storage, self.spec, day + dt.timedelta(days=1))
            latest = request.cutoff_day if request else None
            active = context["ti"].get_dr_count(dag_id=self.training_dag_id, states=ACTIVE_RUN_STATES)
            marker = read_marker(self.storage_hook.storage, self.spec)
            last_trigger = dt.date.fromisoformat(marker.day) if marker and marker.day else None
        gate = retrain_gate(
            verdict["drift"],
            active_training_runs=active,
            last_trigger_day=last_trigger,
            day=day,
            cooldown_hours=self.spec.drift.cooldown_hours,
            latest_training_cutoff=latest,
        )
        conf = retrain_conf(verdict, day, html) if gate.trigger else None
        context["ti"].xcom_push(key="retrain_conf", value=conf)
        context["ti"].xcom_push(key="decision", value={"trigger": gate.trigger, "reason": gate.reason})
        self.link_to_report(html)
        links = getattr(self, "_mlloop_links", {})
        self.log.info("%s", drift_summary(self.report, gate.reason, links.get("drift_report", "")))
        # Last: skipping the trigger raises, by design of the Task SDK, to tell the supervisor.
        self.do_branch(context, self.trigger_task_id if gate.trigger else None)


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
            "Triggered %s run %s; no other drift-triggered retrain of %s for %g h of data time after %s (marker %s)",
            self.training_dag_id,
            marker.training_run_id,
            self.spec.name,
            self.spec.drift.cooldown_hours,
            day,
            marker_path(storage, self.spec),
        )
        return marker.as_dict()
