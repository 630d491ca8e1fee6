"""Ingestion's last step: ask for a training only on the data days a training is due."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

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
        from mlloop.steps import ingestion

        result, extra = ingestion.request_training(self.services, self.spec, self.resolve_day(context), self.log)
        self.set_outlet_extra(context, extra)
        return result
