"""Batch scoring operators: score one part of a day, then publish all parts at once.

The work is :mod:`mlloop.steps.scoring`; these operators read their inputs and set the outlet.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from mlloop_airflow.operators.base import UseCaseOperator

if TYPE_CHECKING:
    from airflow.sdk import Context


class PlanScoringPartsOperator(UseCaseOperator):
    """Decide how many parts the day is scored in, and list them for the mapped scoring tasks.

    The number is the run's ``partitions`` Param when set (the Trigger form), else the spec's
    ``scoring.partitions``. Returns ``[{"partition": i, "partitions": n}, ...]``: map
    :class:`ScorePartitionOperator` over it with ``expand_kwargs``. On Celery or Kubernetes the
    parts run on whichever workers are free; each scores its share in bounded memory.

    :param partitions: requested number of parts; empty means the spec's. (templated)
    """

    template_fields: Sequence[str] = (*UseCaseOperator.template_fields, "partitions")
    ui_color = "#eef5ec"

    def __init__(self, *, partitions: Any = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.partitions = partitions

    def execute(self, context: Context) -> list[dict[str, int]]:
        from mlloop.steps import scoring

        return scoring.plan(self.spec, self.resolve_day(context), self.partitions, self.log)


class ScorePartitionOperator(UseCaseOperator):
    """Score part ``partition`` of ``partitions`` of the day's entities with the pinned model version.

    Entity rows (join key + event timestamp of the day's feature partition) are split by a stable
    hash of the key, streamed in chunks of ``scoring.chunk_rows``, given their features by Feast
    (point-in-time, with the version's feature service), scored, and appended to a staging part
    file. Nothing is visible to consumers until :class:`CommitPredictionsOperator` publishes it.
    Map this operator (``expand_kwargs``) over :class:`PlanScoringPartsOperator`'s output to spread a
    day over workers.

    :param champion: the pinned version, as returned by ``ResolveChampionOperator``. (templated)
    :param partition: which part to score, ``0 <= partition < partitions``. (templated)
    :param partitions: how many parts the day is split into. (templated)
    :param chunk_rows: rows per chunk; default the spec's ``scoring.chunk_rows``.
    :param shadow: the shadow challenger pinned by ``ResolveShadowOperator``, or None. (templated)
    """

    template_fields: Sequence[str] = (
        *UseCaseOperator.template_fields,
        "champion",
        "partition",
        "partitions",
        "shadow",
    )
    ui_color = "#dcecd9"

    def __init__(
        self,
        *,
        champion: Any,
        partition: Any = 0,
        partitions: Any = 1,
        chunk_rows: int | None = None,
        shadow: Any = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.champion = champion
        self.shadow = shadow
        self.partition = partition
        self.partitions = partitions
        self.chunk_rows = chunk_rows

    def execute(self, context: Context) -> dict[str, Any]:
        from mlloop.steps import scoring

        day = self.resolve_day(context)
        result = scoring.score_part(
            self.services,
            self.spec,
            day,
            scoring.load_pinned(self.services, self.spec, self.champion),
            context["run_id"],
            partition=int(self.partition),
            partitions=int(self.partitions),
            chunk_rows=self.chunk_rows,
            shadow=scoring.load_shadow(self.services, self.spec, day, self.shadow, context["run_id"], self.log),
            log=self.log,
        )
        return result.as_dict()


class CommitPredictionsOperator(UseCaseOperator):
    """Validate every scored part and publish them as the day's prediction partition, all or none.

    Checks before anything is visible: all parts 0..N-1 present, row count equals the day's entity
    count, no missing key or score, scores in range, every row from the pinned version and this
    run. Then ``predictions/<use_case>/date=<day>/data.parquet`` is replaced in one move (a rerun
    replaces it too) and the predictions Asset is updated with ``day``, ``model_version``, ``rows``.
    A failed check publishes nothing and fails the task without retries; the parts stay in
    ``staging/`` for inspection.

    :param champion: the pinned version, as returned by ``ResolveChampionOperator``. (templated)
    :param parts: the results of the scoring tasks (their XCom). (templated)
    :param shadow: the shadow challenger pinned by ``ResolveShadowOperator``, or None: its parts are
        published to the shadow area, never as predictions. (templated)
    """

    template_fields: Sequence[str] = (*UseCaseOperator.template_fields, "champion", "parts", "shadow")
    ui_color = "#c9e4c5"

    def __init__(self, *, champion: Any, parts: Any, shadow: Any = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.champion = champion
        self.parts = parts
        self.shadow = shadow

    def execute(self, context: Context) -> dict[str, Any]:
        from mlloop.scoring import PartResult
        from mlloop.steps import scoring

        day = self.resolve_day(context)
        # One slice fetches every mapped result at once; iterating would probe past the end and
        # log an "XCom not found" error that is not one.
        parts = [PartResult.from_dict(dict(p)) for p in self.parts[:]]
        run_id = context["run_id"]
        result, choice = scoring.commit(self.services, self.spec, day, self.champion, parts, run_id, log=self.log)
        extra = {"day": day.isoformat(), "model_version": result.model_version, "rows": result.rows}
        self.set_outlet_extra(context, {**extra, "model_policy": choice["model_policy"]})
        scoring.commit_shadow(self.services, self.spec, day, self.shadow, parts, run_id, self.log)
        return result.as_dict()
