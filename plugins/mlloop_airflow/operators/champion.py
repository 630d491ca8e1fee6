"""Pin the champion model version once, at the start of a run that uses it."""

from __future__ import annotations

from collections.abc import Sequence
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

from mlloop_airflow.links import LinkedOperatorMixin, ModelVersionLink
from mlloop_airflow.operators.base import UseCaseOperator

if TYPE_CHECKING:
    from airflow.sdk import Context
    from mlflow import MlflowClient

    from mlloop.registry import ModelRef


class ResolveChampionOperator(LinkedOperatorMixin, UseCaseOperator):
    """Look up the version alias ``champion`` points at and hand it to the rest of the run.

    Downstream tasks receive the exact version through XCom (``name``, ``version``, ``run_id``,
    ``feature_service``, ``uri``) and load that version, so a promotion or rollback while the run is
    in progress does not mix two models in one run. With no champion yet (before the first
    promotion) there is nothing to use: the task is skipped with the reason in its log, and so is
    everything downstream; the run stays green.

    With ``model_policy`` ``champion_at_day`` it pins instead the version that was champion at the
    end of the run's day, in data time (:func:`mlloop.champion.champion_at`); a day before the first
    recorded champion serves (or with no recorded history) falls back to the earliest recorded
    champion (else the current one) and says so. The choice and why travel with the XCom
    (``model_policy``, ``chosen_because``).

    :param purpose: what the run would do with the model, for the skip message (e.g. ``score the day``).
    :param model_policy: ``current`` (default) or ``champion_at_day``. (templated)
    """

    template_fields: Sequence[str] = (*UseCaseOperator.template_fields, "purpose", "model_policy")
    operator_extra_links = (ModelVersionLink(),)
    ui_color = "#e6dcf5"

    def __init__(self, *, purpose: str = "use", model_policy: str = "current", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.purpose = purpose
        self.model_policy = model_policy

    @cached_property
    def mlflow_client(self) -> MlflowClient:
        from mlloop.registry import mlflow_client

        return mlflow_client()

    def execute(self, context: Context) -> dict[str, str]:
        from mlloop.champion import CHAMPION_AT_DAY, CURRENT, MODEL_POLICIES
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
        policy = str(self.model_policy or CURRENT)
        if policy not in MODEL_POLICIES:
            raise AirflowFailException(f"model_policy must be one of {list(MODEL_POLICIES)}, got {policy!r}")
        because = "the current champion"
        if policy == CHAMPION_AT_DAY:
            ref, because = self.champion_at_day(context, ref)
        self.link_to_model_version(ref.name, ref.version)
        pinned = {
            "name": ref.name,
            "version": ref.version,
            "run_id": ref.run_id,
            "feature_service": feature_service_for(ref, self.spec),
            "uri": ref.uri,
            "model_policy": policy,
            "chosen_because": because,
        }
        self.log.info(
            "Pinned %s v%s (%s: %s; training run %s, feature service %s) for this whole run; "
            "a promotion from now on applies to the next run.",
            ref.name,
            ref.version,
            policy,
            because,
            ref.run_id,
            pinned["feature_service"],
        )
        return pinned

    def champion_at_day(self, context: Context, current: ModelRef) -> tuple[ModelRef, str]:
        """(the version champion at the end of the run's day, why it was chosen)."""
        from mlloop.champion import champion_history, model_for_day
        from mlloop.registry import get_version

        day = self.resolve_day(context)
        name = self.spec.registered_model_name
        version, because = model_for_day(champion_history(self.mlflow_client, name), day, current.version)
        if "precedes" in because:
            self.log.warning("No version was champion at the end of %s: %s", day, because)
        ref = current if version == current.version else get_version(self.mlflow_client, name, version)
        return ref, because
