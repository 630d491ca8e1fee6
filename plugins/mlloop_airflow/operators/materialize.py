"""Feast operators: materialize one interval into the online store."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from mlloop_airflow.operators.base import UseCaseOperator
from mlloop_airflow.pools import FEAST_REGISTRY_POOL

if TYPE_CHECKING:
    from airflow.sdk import Context


class FeastMaterializeOperator(UseCaseOperator):
    """Materialize exactly the run's interval of the given feature views into the online store.

    If a later interval was materialized before (a backfill of an older day), the window extends
    to that watermark so the online store ends with the newest values, not the re-ingested ones.
    Deploying the registry (``feast apply``) is not done here: it resets materialization
    watermarks and belongs to deployment (``make feast-apply``), not to every interval.

    Runs in pool ``mlloop_feast_registry`` unless told otherwise: a materialization rewrites the
    registry, and two at once would lose one's interval (``mlloop_airflow.pools``).

    :param feature_views: names of the Feast feature views; default: the spec's feature view. (templated)
    """

    template_fields: Sequence[str] = (*UseCaseOperator.template_fields, "feature_views")
    ui_color = "#f4e3d9"

    def __init__(self, *, feature_views: list[str] | None = None, **kwargs: Any) -> None:
        kwargs.setdefault("pool", FEAST_REGISTRY_POOL)
        super().__init__(**kwargs)
        self.feature_views = feature_views

    def execute(self, context: Context) -> dict[str, Any]:
        from mlloop.steps import ingestion

        day = self.resolve_day(context)
        result = ingestion.materialize(self.services, self.spec, day, self.feature_views, self.log)
        self.set_outlet_extra(context, result)
        return result
