"""Shadow scoring: pin the challenger that batch scoring also scores, beside the champion.

The rules are :mod:`mlloop.shadow`, the step :func:`mlloop.steps.scoring.resolve_shadow`; the
pending state is set by :class:`mlloop_airflow.operators.promotion.MarkPendingOperator`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from mlloop_airflow.operators.base import UseCaseOperator

if TYPE_CHECKING:
    from airflow.sdk import Context


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

    def execute(self, context: Context) -> dict[str, str] | None:
        from mlloop.steps import scoring

        return scoring.resolve_shadow(self.services, self.spec, self.resolve_day(context), self.champion, self.log)
