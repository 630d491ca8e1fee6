"""Pin the champion model version once, at the start of a run that uses it."""

from __future__ import annotations

from collections.abc import Sequence
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.sdk.exceptions import AirflowSkipException

from mlloop_airflow.links import LinkedOperatorMixin, ModelVersionLink
from mlloop_airflow.operators.base import UseCaseOperator

if TYPE_CHECKING:
    from airflow.sdk import Context
    from mlflow import MlflowClient


class ResolveChampionOperator(LinkedOperatorMixin, UseCaseOperator):
    """Look up the version alias ``champion`` points at and hand it to the rest of the run.

    Downstream tasks receive the exact version through XCom (``name``, ``version``, ``run_id``,
    ``feature_service``, ``uri``) and load that version, so a promotion or rollback while the run is
    in progress does not mix two models in one run. With no champion yet (before the first
    promotion) there is nothing to use: the task is skipped with the reason in its log, and so is
    everything downstream; the run stays green.

    :param purpose: what the run would do with the model, for the skip message (e.g. ``score the day``).
    """

    template_fields: Sequence[str] = (*UseCaseOperator.template_fields, "purpose")
    operator_extra_links = (ModelVersionLink(),)
    ui_color = "#e6dcf5"

    def __init__(self, *, purpose: str = "use", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.purpose = purpose

    @cached_property
    def mlflow_client(self) -> MlflowClient:
        from mlloop.registry import mlflow_client

        return mlflow_client()

    def execute(self, context: Context) -> dict[str, str]:
        from mlloop.registry import CHAMPION, get_alias
        from mlloop.scoring import feature_service_for

        name = self.spec.registered_model_name
        self.log.info("Resolving alias '%s' of registered model '%s'", CHAMPION, name)
        ref = get_alias(self.mlflow_client, name, CHAMPION)
        if ref is None:
            raise AirflowSkipException(
                f"No champion yet: model '{name}' has no '{CHAMPION}' alias, so there is no model to "
                f"{self.purpose} with. Expected until {self.spec.dag_id('promotion')} promotes a first "
                "version; this run is skipped, not failed."
            )
        self.link_to_model_version(ref.name, ref.version)
        pinned = {
            "name": ref.name,
            "version": ref.version,
            "run_id": ref.run_id,
            "feature_service": feature_service_for(ref, self.spec),
            "uri": ref.uri,
        }
        self.log.info(
            "Pinned %s v%s (training run %s, feature service %s) for this whole run; "
            "a promotion from now on applies to the next run.",
            ref.name,
            ref.version,
            ref.run_id,
            pinned["feature_service"],
        )
        return pinned
