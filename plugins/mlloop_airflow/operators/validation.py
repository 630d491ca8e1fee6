"""Validate one interval's raw batch with Great Expectations and quarantine bad rows."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from mlloop_airflow.operators.base import UseCaseOperator

if TYPE_CHECKING:
    from airflow.sdk import Context


class ValidateBatchOperator(UseCaseOperator):
    """Validate the batch that landed for the interval against the use case's contract.

    Valid rows go on (staging for observations, the offline label store for labels); bad rows go to
    ``quarantine/`` with every expectation they failed; a summary table goes to the log. A batch
    with the wrong or repeated columns, a column that cannot be read without loss (see
    docs/data_contracts.md), too few rows, or too many bad rows fails the task on one line without
    retries (retrying cannot fix data) and writes nothing downstream.

    :param dataset: ``observations`` or ``labels``. (templated)
    :param optional: a missing batch is not an error (labels do not arrive every day).
    """

    template_fields: Sequence[str] = (*UseCaseOperator.template_fields, "dataset")
    ui_color = "#e8f4d9"

    def __init__(self, *, dataset: str, optional: bool = False, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.dataset = dataset
        self.optional = optional

    def execute(self, context: Context) -> dict[str, Any]:
        from mlloop.steps import ingestion

        day = self.resolve_day(context)
        return ingestion.validate_batch(self.services, self.spec, self.dataset, day, self.optional, self.log)
