"""Batch scoring operators: score one part of a day, then publish all parts at once."""

from __future__ import annotations

import json
from collections.abc import Sequence
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.sdk.exceptions import AirflowFailException

from mlloop_airflow.hooks.feature_store import FeastHook
from mlloop_airflow.operators.base import UseCaseOperator

if TYPE_CHECKING:
    from airflow.sdk import Context
    from mlflow import MlflowClient

    from mlloop.registry import ModelRef
    from mlloop.scoring import Lineage


class _PinnedModelMixin:
    """Shared by the scoring operators: the MLflow client and the pinned version from XCom."""

    champion: dict[str, Any]

    @cached_property
    def mlflow_client(self) -> MlflowClient:
        from mlloop.registry import mlflow_client

        return mlflow_client()

    def pinned_ref(self) -> ModelRef:
        from mlloop.registry import ModelNotFound, get_version

        try:
            return get_version(self.mlflow_client, self.champion["name"], self.champion["version"])
        except ModelNotFound as exc:
            raise AirflowFailException(
                f"{exc}: the version pinned at the start of this run was deleted. Rerun the whole DAG run "
                "(clear resolve_champion) to pin the current champion."
            ) from None


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
        from mlloop.scoring import plan_parts

        try:
            parts = plan_parts(self.spec, self.partitions)
        except ValueError as exc:
            raise AirflowFailException(f"Cannot split the day: {exc}") from None
        source = "this run's 'partitions' parameter" if self.partitions not in (None, "", "None") else "the spec"
        self.log.info(
            "Scoring %s for %s in %d part(s) (from %s, %d row(s) per chunk)",
            self.spec.name,
            self.resolve_day(context),
            len(parts),
            source,
            self.spec.scoring.chunk_rows,
        )
        return parts


class ScorePartitionOperator(_PinnedModelMixin, UseCaseOperator):
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

    @cached_property
    def feast_hook(self) -> FeastHook:
        return FeastHook()

    def execute(self, context: Context) -> dict[str, Any]:
        from mlloop.registry import ModelIntegrityError, load_model
        from mlloop.scoring import Lineage, ScoringError, feast_fetcher, feature_service_for, score_partition

        day = self.resolve_day(context)
        part, parts = int(self.partition), int(self.partitions)
        ref = self.pinned_ref()
        service = feature_service_for(ref, self.spec)
        chunk_rows = self.chunk_rows or self.spec.scoring.chunk_rows
        self.log.info(
            "Scoring part %d/%d of %s for %s with %s v%s, features from Feast service '%s', %d rows per chunk",
            part,
            parts,
            self.spec.name,
            day,
            ref.name,
            ref.version,
            service,
            chunk_rows,
        )
        try:
            model = load_model(ref, self.mlflow_client)
        except ModelIntegrityError as exc:
            raise AirflowFailException(f"Refusing to score with {ref.name} v{ref.version}: {exc}") from None
        try:
            result = score_partition(
                self.storage_hook.storage,
                self.spec,
                day,
                model=model,
                fetch_features=feast_fetcher(self.feast_hook.store, service),
                lineage=Lineage.of(ref, context["run_id"]),
                partition=part,
                partitions=parts,
                chunk_rows=chunk_rows,
                shadow=self.shadow_model(context),
            )
        except ScoringError as exc:
            raise AirflowFailException(str(exc)) from None
        rate = result.rows_out / result.seconds if result.seconds else 0.0
        self.log.info(
            "Scored %d rows in %d chunk(s) in %.1f s (%.0f rows/s) into staging %s",
            result.rows_out,
            result.chunks,
            result.seconds,
            rate,
            result.path,
        )
        return result.as_dict()

    def shadow_model(self, context: Context) -> tuple[Any, Lineage] | None:
        """The shadow challenger pinned by ``resolve_shadow`` (loaded), if any (:mod:`mlloop.shadow`)."""
        from mlloop.registry import ModelIntegrityError, ModelNotFound, get_version, load_model
        from mlloop.scoring import Lineage

        if not isinstance(self.shadow, dict) or not self.shadow.get("version"):
            return None
        try:
            ref = get_version(self.mlflow_client, self.shadow["name"], self.shadow["version"])
            model = load_model(ref, self.mlflow_client)
        except (ModelNotFound, ModelIntegrityError) as exc:  # evidence, not output: the day is scored anyway
            self.log.warning("No shadow scoring of this part: %s", exc)
            return None
        self.log.info(
            "Also scoring every chunk with shadow challenger %s v%s (not published as predictions)",
            ref.name,
            ref.version,
        )
        return model, Lineage.of(ref, context["run_id"])


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
    """

    template_fields: Sequence[str] = (*UseCaseOperator.template_fields, "champion", "parts", "shadow")
    ui_color = "#c9e4c5"

    def __init__(self, *, champion: Any, parts: Any, shadow: Any = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.champion = champion
        self.parts = parts
        self.shadow = shadow

    def execute(self, context: Context) -> dict[str, Any]:
        from mlloop.scoring import (
            Lineage,
            PartResult,
            PredictionValidationError,
            commit_predictions,
            model_choice_path,
        )

        day = self.resolve_day(context)
        # One slice fetches every mapped result at once; iterating would probe past the end and
        # log an "XCom not found" error that is not one.
        parts = [PartResult.from_dict(dict(p)) for p in self.parts[:]]
        lineage = Lineage(
            model_name=self.champion["name"],
            model_version=str(self.champion["version"]),
            airflow_run_id=context["run_id"],
        )
        self.log.info("Validating %d scored part(s) of %s for %s before publishing", len(parts), self.spec.name, day)
        try:
            result = commit_predictions(self.storage_hook.storage, self.spec, day, parts, lineage=lineage)
        except PredictionValidationError as exc:
            raise AirflowFailException(
                f"Scored output for {day} failed validation, nothing was published: {exc}. The scored parts "
                "are kept under staging/ for inspection; fix the cause, then clear this DAG run."
            ) from None
        self.log.info("Published %s", result.describe())
        policy = {
            "model_name": lineage.model_name,
            "model_version": lineage.model_version,
            "model_policy": self.champion.get("model_policy", "current"),
            "chosen_because": self.champion.get("chosen_because", ""),
            "airflow_run_id": lineage.airflow_run_id,
        }
        storage = self.storage_hook.storage
        storage.write_bytes(json.dumps(policy, indent=2).encode(), model_choice_path(storage, self.spec, day))
        self.log.info("Model choice: %s v%s by policy %s (%s)", *[policy[k] for k in list(policy)[:4]])
        self.set_outlet_extra(
            context,
            {
                "day": day.isoformat(),
                "model_version": result.model_version,
                "model_policy": policy["model_policy"],
                "rows": result.rows,
            },
        )
        self.commit_shadow(context, parts, result.rows)
        return result.as_dict()

    def commit_shadow(self, context: Context, parts: list[Any], rows: int) -> None:
        """Publish the shadow parts into the shadow area (never as predictions). A shadow that fails
        its checks is a warning: it must never cost the day's predictions."""
        from mlloop.scoring import Lineage, PredictionValidationError
        from mlloop.shadow import commit_shadow

        if not isinstance(self.shadow, dict) or not self.shadow.get("version"):
            return
        day = self.resolve_day(context)
        lineage = Lineage(str(self.shadow["name"]), str(self.shadow["version"]), context["run_id"])
        try:
            shadow = commit_shadow(
                self.storage_hook.storage, self.spec, day, parts, lineage=lineage, expected_rows=rows
            )
        except PredictionValidationError as exc:
            self.log.warning("Shadow scoring of %s not published (the predictions are): %s", day, exc)
            return
        self.log.info("Published shadow (not predictions): %s", shadow.describe())
