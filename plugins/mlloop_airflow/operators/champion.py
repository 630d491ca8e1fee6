"""Pin the champion model version once, at the start of a run that uses it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from mlloop_airflow.links import LinkedOperatorMixin, ModelVersionLink
from mlloop_airflow.operators.base import UseCaseOperator

if TYPE_CHECKING:
    from airflow.sdk import Context


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
    (``model_policy``, ``chosen_because``). The work is :func:`mlloop.steps.scoring.pin_champion`.

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

    def execute(self, context: Context) -> dict[str, str]:
        from mlloop.steps import scoring

        pinned = scoring.pin_champion(
            self.services, self.spec, lambda: self.resolve_day(context), self.model_policy, self.purpose, self.log
        )
        self.link_to_model_version(pinned["name"], pinned["version"])
        return pinned
