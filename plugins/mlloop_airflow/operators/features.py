"""Build one interval's feature partition from its validated rows."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mlloop_airflow.operators.base import UseCaseOperator

if TYPE_CHECKING:
    from airflow.sdk import Context


class BuildFeaturesOperator(UseCaseOperator):
    """Derive the use case's features from the interval's validated observations.

    Writes ``features/<use_case>/<feature_view>/date=<day>/data.parquet`` (the Feast offline
    source) atomically: a rerun replaces the partition, readers never see half of it.
    """

    ui_color = "#d9ecf4"

    def execute(self, context: Context) -> dict[str, Any]:
        from mlloop.steps import ingestion

        return ingestion.build_features(self.services, self.spec, self.resolve_day(context), self.log)
