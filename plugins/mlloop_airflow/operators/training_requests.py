"""Ingestion's last step: ask for a training only on the data days a training is due."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator
from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

from mlloop_airflow.operators.base import UseCaseOperator

if TYPE_CHECKING:
    from airflow.sdk import Context


class RequestTrainingOperator(UseCaseOperator):
    """Decide, in data time, whether the ingested day is due a training; if so, record the request
    in the training ledger (:mod:`mlloop.training_requests`) and emit the outlet Asset with extra
    ``{"day", "cutoff_day", "reason"}``, which starts the training DAG. If not, the task is skipped
    (green, the reason in its log) and no Asset event is emitted, so the training DAG's runs list
    shows trainings, not "no training" decisions.

    The decision reads only the ledger of earlier days and the labels ingested up to the day, so a
    backfill run in day order decides the same whatever the scheduler's timing. Day order is the
    DAG's ``depends_on_past``; so that a day whose ingestion failed for good (batch rejected, or never
    delivered) does not hold every later day's decision, this task runs once its upstream is *done*
    (``trigger_rule="all_done"``) and, when that upstream did not all succeed, skips: a failed day is a
    day with no new labels. The run still shows failed through :class:`FailRunIfIngestionFailed`.
    """

    ui_color = "#fdf3d8"

    def execute(self, context: Context) -> dict[str, Any]:
        from mlloop.steps import ingestion

        day = self.resolve_day(context)
        unfinished = self._upstream_not_succeeded(context)
        if unfinished:
            raise AirflowSkipException(
                f"NO DECISION at {day}: the day's ingestion did not complete ({unfinished}); it counts as a "
                "day with no new labels, and the next days decide without it. Fix the day, then clear its run."
            )
        result, extra = ingestion.request_training(self.services, self.spec, day, self.log)
        self.set_outlet_extra(context, extra)
        return result

    def _upstream_not_succeeded(self, context: Context) -> str:
        """The upstream tasks of this run that did not succeed, as ``task=state`` (empty: all did)."""
        ti = context["ti"]
        upstream = sorted(self.upstream_task_ids)
        by_run = ti.get_task_states(dag_id=ti.dag_id, run_ids=[ti.run_id], task_ids=upstream)
        states = by_run.get(ti.run_id, {})
        return ", ".join(f"{task}={state}" for task in upstream if (state := states.get(task)) != "success")


class FailRunIfIngestionFailed(BaseOperator):
    """The watcher of an ingestion run (``trigger_rule="one_failed"``): fails when a task of the day
    failed, so the run stays failed (red) although its leaf ``request_training`` ends skipped to let
    the next days decide. Skipped (not run) on a good day. It does not alert: the failed task did."""

    ui_color = "#f6d5d5"
    is_run_verdict = True  # work tasks retry and alert (test_dag_integrity); this one only reports theirs

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(trigger_rule="one_failed", retries=0, on_failure_callback=[], **kwargs)

    def execute(self, context: Context) -> None:
        raise AirflowFailException(
            "this day's ingestion failed (see the red task before this one): the run is failed; the next "
            "days' training decisions go on without this day's labels"
        )
