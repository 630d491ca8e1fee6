"""Training operators and their steps: how a run finds its cutoff, and what they accept from templates."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pandas as pd
import pytest
from airflow.sdk import Asset

from mlloop import tags as tag_keys
from mlloop.services import Services
from mlloop.steps import RunInfo, StepFailed, training
from mlloop_airflow.operators.training import (
    BuildTrainingSetOperator,
    TrainingDecisionOperator,
    TrainModelOperator,
)


def context(*extras: dict[str, Any]) -> dict[str, Any]:
    events = [SimpleNamespace(extra=e) for e in extras]
    return {"triggering_asset_events": {Asset("x-mlloop://credit_risk/features"): events} if events else {}}


def decide(cutoff_day: Any = None) -> TrainingDecisionOperator:
    return TrainingDecisionOperator(task_id="decide", use_case="credit_risk", cutoff_day=cutoff_day)


def resolve_cutoff(op: TrainingDecisionOperator, ctx: dict[str, Any]) -> tuple[dt.date, str]:
    """The cutoff the operator's step trains on, from its parameter and the run's trigger."""
    ask = training.TrainingAsk(op.cutoff_day, events=op.triggering_asset_extras(ctx))  # type: ignore[arg-type]
    return training.resolve_cutoff(Services(), op.spec, ask)


def test_explicit_cutoff_wins() -> None:
    assert resolve_cutoff(decide("2026-03-05"), context({"day": "2026-04-01"}))[0] == dt.date(2026, 3, 5)


def test_cutoff_is_the_newest_day_of_the_triggering_feature_events(mlloop_home: Path) -> None:
    cutoff, source = resolve_cutoff(decide(None), context({"day": "2026-03-02"}, {"day": "2026-03-04"}, {}))
    assert cutoff == dt.date(2026, 3, 4)
    assert "features event" in source


def test_the_cutoff_is_the_training_requests_day_even_when_later_days_are_ingested(storage: Any, spec: Any) -> None:
    """Data time: ingestion asked for a training at 03-03 (its request's cutoff); days ingested
    since must not move it, or two replays would train on different data."""
    for day in ("2026-03-02", "2026-03-03", "2026-03-06"):
        path = storage.path("features", spec.name, spec.features.feature_view, f"date={day}", "data.parquet")
        storage.write_frame(pd.DataFrame({"x": [1]}), path)
    cutoff, source = resolve_cutoff(decide(None), context({"day": "2026-03-03", "cutoff_day": "2026-03-03"}))
    assert cutoff == dt.date(2026, 3, 3)
    assert "training request" in source


def test_a_manual_run_without_cutoff_trains_up_to_the_newest_ingested_day_not_today(storage: Any, spec: Any) -> None:
    for day in ("2011-03-02", "2011-03-06"):
        path = storage.path("features", spec.name, spec.features.feature_view, f"date={day}", "data.parquet")
        storage.write_frame(pd.DataFrame({"x": [1]}), path)
    for empty in (None, "", "None"):
        cutoff, source = resolve_cutoff(decide(empty), context())
        assert cutoff == dt.date(2011, 3, 6)
        assert "newest ingested features day" in source


def test_a_manual_run_with_nothing_ingested_fails_clearly(mlloop_home: Path) -> None:
    with pytest.raises(StepFailed, match="no features of credit_risk ingested yet"):
        resolve_cutoff(decide(None), context())


def test_a_bad_cutoff_fails_without_retries() -> None:
    with pytest.raises(StepFailed, match="'cutoff_day' must be a date like"):
        resolve_cutoff(decide("05/03/2026"), context())


def test_decision_and_build_publish_their_keys_for_downstream_tasks() -> None:
    # Downstream tasks read decide.output["cutoff_day"] and build.output["path"].
    assert decide().multiple_outputs
    assert BuildTrainingSetOperator(task_id="b", use_case="credit_risk", cutoff_day="2026-03-05").multiple_outputs


def test_drift_numbers_from_the_trigger_become_lineage_tags() -> None:
    op = TrainModelOperator(
        task_id="t",
        use_case="credit_risk",
        training_set="x",
        cutoff_day="2026-03-05",
        trigger_reason="drift: income",
        drift="{'drifted_share': 0.4, 'quality_drop': 0.06}",  # rendered without native objects
        drift_report="s3://bucket/reports/x.html",
    )
    inputs = training.TrainInputs(
        op.training_set, op.cutoff_day, op.trigger_reason, drift=op.drift, drift_report=op.drift_report
    )
    tags = training.lineage(inputs, RunInfo(dag_id="credit_risk__training", run_id="manual__1")).tags()
    assert tags[tag_keys.LINEAGE_PREFIX + tag_keys.DRIFT_PREFIX + "drifted_share"] == "0.4"
    assert tags[tag_keys.LINEAGE_PREFIX + tag_keys.DRIFT_REPORT] == "s3://bucket/reports/x.html"
    assert tags[tag_keys.TRIGGER_REASON] == "drift: income"
    assert tags[tag_keys.DAG_RUN_ID] == "manual__1"
