"""Shadow scoring and the pending state: pick the challenger to shadow-score, make one pending.

The rules are :mod:`mlloop.shadow`; these operators only wire them into the scoring and promotion DAGs.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cached_property
from typing import TYPE_CHECKING, Any

from mlloop_airflow.operators.base import UseCaseOperator
from mlloop_airflow.operators.promotion import _RegistryOperator, as_mapping

if TYPE_CHECKING:
    from airflow.sdk import Context
    from mlflow import MlflowClient


class ResolveShadowOperator(UseCaseOperator):
    """Pin the version to shadow-score the day with (the pending version, else the challenger), or none.

    Returns ``{"name", "version"}`` or None (with the reason in the log): no challenger, it is the
    champion, it was rejected, the day is one it learned from, or it needs another feature service.
    Shadow scoring never fails a scoring run: it is evidence, not output.

    :param champion: the pinned champion, as returned by ``ResolveChampionOperator``. (templated)
    """

    template_fields: Sequence[str] = (*UseCaseOperator.template_fields, "champion")
    ui_color = "#ece6f5"

    def __init__(self, *, champion: Any, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.champion = champion

    @cached_property
    def mlflow_client(self) -> MlflowClient:
        from mlloop.registry import mlflow_client

        return mlflow_client()

    def execute(self, context: Context) -> dict[str, str] | None:
        from mlloop.registry import get_version
        from mlloop.shadow import shadow_candidate

        day = self.resolve_day(context)
        champion = get_version(self.mlflow_client, self.champion["name"], self.champion["version"])
        ref, why = shadow_candidate(self.mlflow_client, self.spec, champion, day)
        if ref is None:
            self.log.info("No shadow scoring for %s: %s", day, why)
            return None
        self.log.info("Shadow-scoring %s with %s beside champion v%s", day, why, champion.version)
        return {"name": ref.name, "version": ref.version}


class MarkPendingOperator(_RegistryOperator):
    """The challenger passed the holdout gate; with ``promotion.shadow_days`` set it becomes pending
    (alias ``pending``, tag ``shadow.state=pending``) instead of champion. It does not serve: batch
    scoring shadow-scores it, and the promotion DAG decides once its shadow days are labelled.

    :param evaluation: the evaluate task's result (``version``). (templated)
    """

    template_fields: Sequence[str] = (*UseCaseOperator.template_fields, "evaluation")
    ui_color = "#efe3f7"

    def __init__(self, *, evaluation: dict[str, Any] | str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.evaluation = evaluation

    def execute(self, context: Context) -> dict[str, Any]:
        from mlloop.shadow import mark_pending

        version = str(as_mapping(self.evaluation, "evaluation")["version"])
        model = self.spec.registered_model_name
        superseded = mark_pending(self.mlflow_hook.client, self.spec, version, self.run_tags(context, "shadow"))
        self.link_to_model_version(model, version)
        self.log.info(
            "PENDING: %s v%s passed the holdout gate and waits for %d labelled shadow day(s) before the shadow "
            "gate decides (promotion.shadow_days); it does not serve meanwhile.%s",
            model,
            version,
            self.spec.promotion.shadow_days,
            f" It supersedes pending v{superseded}." if superseded else "",
        )
        return {"version": version, "superseded": superseded}
