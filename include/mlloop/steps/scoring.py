"""Batch scoring steps: pin the model of the run, plan the parts, score one part, publish the day.

The model version is pinned once, at the start of a run, and every later step loads exactly that
version, so a promotion while the run is in progress never mixes two models in one day.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mlloop.steps import LOG, StepFailed, StepLog, StepSkipped, is_set

if TYPE_CHECKING:
    from mlloop.registry import ModelRef
    from mlloop.scoring import CommitResult, FeatureFetcher, PartResult, ShadowScorer
    from mlloop.services import Services
    from mlloop.shadow_sample import ShadowSample
    from mlloop.spec import UseCaseSpec


def pin_champion(
    services: Services,
    spec: UseCaseSpec,
    day: Callable[[], dt.date],
    policy: Any,
    purpose: str,
    log: StepLog = LOG,
) -> dict[str, str]:
    """The version this run uses (``name``, ``version``, ``run_id``, ``feature_service``, ``uri``,
    ``model_policy``, ``chosen_because``): the champion now (policy ``current``), or the version that
    was champion at the end of ``day`` in data time (``champion_at_day``). No champion yet: skipped."""
    from mlloop.champion import CHAMPION_AT_DAY, CURRENT, MODEL_POLICIES, champion_history, model_for_day
    from mlloop.registry import CHAMPION, get_alias, get_version
    from mlloop.scoring import feature_service_for

    name, client = spec.registered_model_name, services.mlflow
    log.info("Resolving alias '%s' of registered model '%s'", CHAMPION, name)
    ref = get_alias(client, name, CHAMPION)
    if ref is None:
        raise StepSkipped(
            f"No champion yet: model '{name}' has no '{CHAMPION}' alias, so there is no model to "
            f"{purpose} with. Expected until {spec.dag_id('promotion')} promotes a first "
            "version; this run is skipped, not failed."
        )
    policy = str(policy or CURRENT)
    if policy not in MODEL_POLICIES:
        raise StepFailed(f"model_policy must be one of {list(MODEL_POLICIES)}, got {policy!r}")
    because = "the current champion"
    if policy == CHAMPION_AT_DAY:
        at = day()
        version, because = model_for_day(champion_history(client, name), at, ref.version)
        if "precedes" in because:
            log.warning("No version was champion at the end of %s: %s", at, because)
        ref = ref if version == ref.version else get_version(client, name, version)
    pinned = {
        "name": ref.name,
        "version": ref.version,
        "run_id": ref.run_id,
        "feature_service": feature_service_for(ref, spec),
        "uri": ref.uri,
        "model_policy": policy,
        "chosen_because": because,
    }
    log.info(
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


def pinned_ref(services: Services, pinned: dict[str, Any]) -> ModelRef:
    """The version pinned at the start of the run, as the registry has it now."""
    from mlloop.registry import ModelNotFound, get_version

    try:
        return get_version(services.mlflow, pinned["name"], pinned["version"])
    except ModelNotFound as exc:
        raise StepFailed(
            f"{exc}: the version pinned at the start of this run was deleted. Rerun the whole DAG run "
            "(clear resolve_champion) to pin the current champion."
        ) from None


def plan(spec: UseCaseSpec, day: dt.date, partitions: Any, log: StepLog = LOG) -> list[dict[str, int]]:
    """``[{"partition": i, "partitions": n}, ...]``: the run's ``partitions`` when set, else the spec's."""
    from mlloop.scoring import plan_parts

    try:
        parts = plan_parts(spec, partitions)
    except ValueError as exc:
        raise StepFailed(f"Cannot split the day: {exc}") from None
    source = "this run's 'partitions' parameter" if is_set(partitions) else "the spec"
    log.info(
        "Scoring %s for %s in %d part(s) (from %s, %d row(s) per chunk)",
        spec.name,
        day,
        len(parts),
        source,
        spec.scoring.chunk_rows,
    )
    return parts


@dataclass(frozen=True)
class LoadedModel:
    """The pinned version, its model loaded (files checked against their recorded checksum)."""

    ref: ModelRef
    model: Any
    feature_service: str


def load_pinned(services: Services, spec: UseCaseSpec, pinned: dict[str, Any]) -> LoadedModel:
    from mlloop.registry import ModelIntegrityError, load_model
    from mlloop.scoring import feature_service_for

    ref = pinned_ref(services, pinned)
    try:
        model = load_model(ref, services.mlflow)
    except ModelIntegrityError as exc:
        raise StepFailed(f"Refusing to score with {ref.name} v{ref.version}: {exc}") from None
    return LoadedModel(ref, model, feature_service_for(ref, spec))


def score_part(
    services: Services,
    spec: UseCaseSpec,
    day: dt.date,
    loaded: LoadedModel,
    run_id: str,
    partition: int = 0,
    partitions: int = 1,
    chunk_rows: int | None = None,
    fetch_features: FeatureFetcher | None = None,
    shadow: ShadowScorer | None = None,
    log: StepLog = LOG,
) -> PartResult:
    """Score part ``partition`` of ``partitions`` of the day's entities with the pinned version,
    features from Feast (point-in-time, the version's feature service; ``fetch_features`` replaces
    it in bench), into a staging part file; with ``shadow`` (:func:`load_shadow`) each chunk's rows of
    the day's shadow sample are also scored by the shadow challenger, from the same features, into a
    shadow part."""
    from mlloop.scoring import Lineage, ScoringError, feast_fetcher, score_partition

    ref = loaded.ref
    chunk_rows = chunk_rows or spec.scoring.chunk_rows
    log.info(
        "Scoring part %d/%d of %s for %s with %s v%s, features from Feast service '%s', %d rows per chunk",
        partition,
        partitions,
        spec.name,
        day,
        ref.name,
        ref.version,
        loaded.feature_service,
        chunk_rows,
    )
    try:
        result = score_partition(
            services.storage,
            spec,
            day,
            model=loaded.model,
            fetch_features=fetch_features or feast_fetcher(services.feature_store, loaded.feature_service),
            lineage=Lineage.of(ref, run_id),
            partition=partition,
            partitions=partitions,
            chunk_rows=chunk_rows,
            shadow=shadow,
        )
    except ScoringError as exc:
        raise StepFailed(str(exc)) from None
    rate = result.rows_out / result.seconds if result.seconds else 0.0
    log.info(
        "Scored %d rows in %d chunk(s) in %.1f s (%.0f rows/s) into staging %s",
        result.rows_out,
        result.chunks,
        result.seconds,
        rate,
        result.path,
    )
    if result.shadow_path:
        log.info("Shadow-scored %d of those rows (its sample) into staging %s", result.shadow_rows, result.shadow_path)
    return result


def commit(
    services: Services,
    spec: UseCaseSpec,
    day: dt.date,
    pinned: dict[str, Any],
    parts: list[PartResult],
    run_id: str,
    chunk_rows: int | None = None,
    log: StepLog = LOG,
) -> tuple[CommitResult, dict[str, str]]:
    """Validate every scored part and publish them as the day's prediction partition, all or none;
    write beside it which version scored the day and why. Returns the result and that model choice."""
    from mlloop.scoring import Lineage, PredictionValidationError, commit_predictions, model_choice_path

    lineage = Lineage(model_name=pinned["name"], model_version=str(pinned["version"]), airflow_run_id=run_id)
    log.info("Validating %d scored part(s) of %s for %s before publishing", len(parts), spec.name, day)
    storage = services.storage
    try:
        result = commit_predictions(storage, spec, day, parts, lineage=lineage, chunk_rows=chunk_rows)
    except PredictionValidationError as exc:
        raise StepFailed(
            f"Scored output for {day} failed validation, nothing was published: {exc}. The scored parts "
            "are kept under staging/ for inspection; fix the cause, then clear this DAG run."
        ) from None
    log.info("Published %s", result.describe())
    policy = {
        "model_name": lineage.model_name,
        "model_version": lineage.model_version,
        "model_policy": pinned.get("model_policy", "current"),
        "chosen_because": pinned.get("chosen_because", ""),
        "airflow_run_id": lineage.airflow_run_id,
    }
    storage.write_bytes(json.dumps(policy, indent=2).encode(), model_choice_path(storage, spec, day))
    log.info("Model choice: %s v%s by policy %s (%s)", *[policy[k] for k in list(policy)[:4]])
    return result, policy


# ------------------------------------------------------------------------------ shadow scoring
def resolve_shadow(
    services: Services, spec: UseCaseSpec, day: dt.date, pinned: dict[str, Any], log: StepLog = LOG
) -> dict[str, Any] | None:
    """The version to shadow-score ``day`` with and the day's sample of rows (``{"name", "version",
    "sample"}``: the pending version, else the challenger), or None with the reason in the log
    (:func:`mlloop.shadow.shadow_candidate`). The sample (:func:`mlloop.shadow_sample.day_sample`) is
    drawn once here, so every part keeps the same rows. Shadow scoring never fails a scoring run: it is
    evidence, not output."""
    from mlloop.shadow import shadow_candidate
    from mlloop.shadow_sample import day_sample

    champion = pinned_ref(services, pinned)
    ref, why = shadow_candidate(services.mlflow, spec, champion, day)
    if ref is None:
        log.info("No shadow scoring for %s: %s", day, why)
        return None
    sample = day_sample(services.storage, spec, day)
    log.info("Shadow-scoring %s with %s beside champion v%s, on %s", day, why, champion.version, sample.describe())
    return {"name": ref.name, "version": ref.version, "sample": sample.as_dict()}


def _shadow_sample_of(services: Services, spec: UseCaseSpec, day: dt.date, shadow: dict[str, Any]) -> ShadowSample:
    """The sample :func:`resolve_shadow` drew; drawn again if the run's pin predates samples."""
    from mlloop.shadow_sample import ShadowSample, day_sample

    sample = shadow.get("sample")
    return ShadowSample.from_dict(sample) if isinstance(sample, dict) else day_sample(services.storage, spec, day)


def load_shadow(
    services: Services, spec: UseCaseSpec, day: dt.date, shadow: Any, run_id: str, log: StepLog = LOG
) -> ShadowScorer | None:
    """The shadow challenger pinned by :func:`resolve_shadow`, loaded, with the day's sample, or None
    (none pinned, or it cannot be loaded: a warning, the day is scored anyway)."""
    from mlloop.registry import ModelIntegrityError, ModelNotFound, get_version, load_model
    from mlloop.scoring import Lineage, ShadowScorer

    if not isinstance(shadow, dict) or not shadow.get("version"):
        return None
    try:
        ref = get_version(services.mlflow, shadow["name"], shadow["version"])
        model = load_model(ref, services.mlflow)
    except (ModelNotFound, ModelIntegrityError) as exc:  # evidence, not output: the day is scored anyway
        log.warning("No shadow scoring of this part: %s", exc)
        return None
    sample = _shadow_sample_of(services, spec, day, shadow)
    log.info(
        "Also scoring %s with shadow challenger %s v%s (not published as predictions)",
        sample.describe(),
        ref.name,
        ref.version,
    )
    return ShadowScorer(model, Lineage.of(ref, run_id), sample)


def commit_shadow(
    services: Services,
    spec: UseCaseSpec,
    day: dt.date,
    shadow: Any,
    parts: list[PartResult],
    run_id: str,
    log: StepLog = LOG,
) -> None:
    """Publish the shadow parts into the shadow area (never as predictions), checked against the
    day's shadow sample. A shadow that fails its checks is a warning: it must never cost the day's
    predictions."""
    from mlloop.scoring import Lineage, PredictionValidationError
    from mlloop.shadow import commit_shadow as publish_shadow

    if not isinstance(shadow, dict) or not shadow.get("version"):
        return
    lineage = Lineage(str(shadow["name"]), str(shadow["version"]), run_id)
    sample = _shadow_sample_of(services, spec, day, shadow)
    try:
        result = publish_shadow(services.storage, spec, day, parts, lineage=lineage, expected_rows=sample.rows)
    except PredictionValidationError as exc:
        log.warning("Shadow scoring of %s not published (the predictions are): %s", day, exc)
        return
    log.info("Published shadow (not predictions), %s: %s", sample.describe(), result.describe())
