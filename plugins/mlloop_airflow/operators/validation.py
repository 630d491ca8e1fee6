"""Validate one interval's raw batch with Great Expectations and quarantine bad rows."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from airflow.sdk.exceptions import AirflowFailException

from mlloop import layout
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
        from mlloop.ingestion import DATASETS, landing_path, validate_landed_batch
        from mlloop.validation import BatchRejected

        if self.dataset not in DATASETS:
            raise AirflowFailException(f"dataset must be one of {DATASETS}, got {self.dataset!r}")
        day = self.resolve_day(context)
        storage = self.storage_hook.storage
        source = landing_path(storage, self.spec, self.dataset, day)
        if self.optional and not storage.exists(source):
            self.log.info("No %s batch landed for %s (%s); nothing to validate.", self.dataset, day, source)
            return {"landed": False, "source": source, "rows_in": 0, "rows_valid": 0, "rows_quarantined": 0}
        self.log.info("Validating %s batch %s for %s", self.dataset, source, day)
        try:
            outcome = validate_landed_batch(storage, self.spec, self.dataset, day)
        except BatchRejected as exc:
            self.log.error("\n%s", exc.report.summary())
            cause = " ".join(str(exc).split())  # one line, whatever a library put in the reason
            raise AirflowFailException(
                f"{cause}. Nothing was written downstream; bad rows and the report are under "
                f"{layout.QUARANTINE.day_folder(storage, self.spec, day, dataset=self.dataset)}. "
                "Fix or re-deliver the batch upstream, then clear this task to rerun the interval."
            ) from None
        self.log.info("\n%s", outcome.report.summary())
        if outcome.quarantine_path:
            self.log.warning("%d row(s) quarantined to %s", outcome.report.rows_quarantined, outcome.quarantine_path)
        return {"landed": True, **outcome.as_dict()}
