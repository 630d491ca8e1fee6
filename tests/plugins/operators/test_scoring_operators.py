"""Scoring operators outside a DAG run: champion pinning, the skip decision, a refused commit."""

from __future__ import annotations

import datetime as dt

import pytest
from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

from loop_fixtures import SMALL, labelled_frame, register_champion, write_clean_features
from mlloop.landing import date_range
from mlloop.registry import CHAMPION, mlflow_client
from mlloop.scoring import Lineage, predictions_path, score_partition
from mlloop_airflow.operators.champion import ResolveChampionOperator
from mlloop_airflow.operators.scoring import CommitPredictionsOperator, ScorePartitionOperator

DAYS = date_range(dt.date(2026, 11, 1), dt.date(2026, 11, 6))
DAY = DAYS[-1]
CONTEXT = {"run_id": "manual__operator_test"}


def test_resolve_champion_skips_until_there_is_one(mlloop_home, spec) -> None:  # type: ignore[no-untyped-def]
    op = ResolveChampionOperator(task_id="resolve_champion", use_case=spec.name, purpose="score the day")
    with pytest.raises(AirflowSkipException, match=r"No champion yet.*score the day.*skipped, not failed"):
        op.execute(CONTEXT)  # type: ignore[arg-type]


def test_scoring_uses_the_pinned_version_even_after_a_promotion(feast_registry, storage, spec) -> None:  # type: ignore[no-untyped-def]
    write_clean_features(storage, spec, DAYS, **SMALL)
    first = register_champion(spec, labelled_frame(storage, spec, DAYS[:3]))
    pinned = ResolveChampionOperator(task_id="resolve_champion", use_case=spec.name).execute(CONTEXT)  # type: ignore[arg-type]
    assert pinned == {
        "name": "credit_risk",
        "version": first.version,
        "run_id": first.run_id,
        "feature_service": spec.model.feature_service,
        "uri": f"models:/credit_risk/{first.version}",
        "model_policy": "current",
        "chosen_because": "the current champion",
    }
    second = register_champion(spec, labelled_frame(storage, spec, DAYS[:3]), seed=1)  # promoted meanwhile
    assert str(mlflow_client().get_model_version_by_alias("credit_risk", CHAMPION).version) == second.version

    common = {"use_case": spec.name, "day": DAY.isoformat(), "champion": pinned}
    part = ScorePartitionOperator(task_id="score_partition", **common).execute(CONTEXT)  # type: ignore[arg-type]
    result = CommitPredictionsOperator(task_id="commit", parts=[part], **common).execute(CONTEXT)  # type: ignore[arg-type]

    out = storage.read_frame(predictions_path(storage, spec, DAY))
    assert set(out["model_version"]) == {first.version} != {second.version}
    assert set(out["airflow_run_id"]) == {"manual__operator_test"}
    assert result["rows"] == len(out) > 0


def test_a_refused_commit_fails_without_retry_and_publishes_nothing(storage, spec) -> None:  # type: ignore[no-untyped-def]
    write_clean_features(storage, spec, [DAY], **SMALL)

    class Broken:
        def predict_proba(self, frame):  # type: ignore[no-untyped-def]
            import numpy as np

            return np.column_stack([np.zeros(len(frame)), np.full(len(frame), 2.0)])

    lineage = Lineage("credit_risk", "1", CONTEXT["run_id"])
    part = score_partition(
        storage, spec, DAY, model=Broken(), fetch_features=_features_from_partition(storage, spec), lineage=lineage
    )
    pinned = {"name": "credit_risk", "version": "1"}
    op = CommitPredictionsOperator(
        task_id="commit", use_case=spec.name, day=DAY.isoformat(), champion=pinned, parts=[part.as_dict()]
    )
    with pytest.raises(AirflowFailException, match=r"failed validation, nothing was published.*outside \[0, 1\]"):
        op.execute(CONTEXT)  # type: ignore[arg-type]
    assert not storage.exists(predictions_path(storage, spec, DAY))


def _features_from_partition(storage, spec):  # type: ignore[no-untyped-def]
    from loop_fixtures import feature_frame, lookup_fetcher

    return lookup_fetcher(feature_frame(storage, spec, [DAY]), spec)
