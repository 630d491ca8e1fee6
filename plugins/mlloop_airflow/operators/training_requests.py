"""Ingestion's last step: ask for a training only on the data days a training is due."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow.sdk.exceptions import AirflowSkipException

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
    backfill run in day order decides the same whatever the scheduler's timing.
    """

    ui_color = "#fdf3d8"

    def execute(self, context: Context) -> dict[str, Any]:
        from mlloop.training_requests import TrainingRequest, decide_training_due, record_request

        day = self.resolve_day(context)
        storage = self.storage_hook.storage
        decision = decide_training_due(storage, self.spec, day)
        if not decision.train:
            raise AirflowSkipException(f"NO TRAINING due at {day} (a decision, not a failure): {decision.explanation}")
        path = record_request(storage, self.spec, TrainingRequest(day, "features", decision.reason))
        extra = {"day": day.isoformat(), "cutoff_day": day.isoformat(), "reason": f"due: {decision.reason}"}
        self.set_outlet_extra(context, extra)
        self.log.info("TRAINING DUE at %s: %s (ledger entry %s)", day, decision.explanation, path)
        return {**decision.as_dict(), "request": path}
