"""Seeded trials of degraded challengers against a real champion: the champion never moves to a worse
version.

Everything is real: feature partitions, the Feast point-in-time training set, and the steps the
training and promotion DAGs' tasks call (:mod:`mlloop.steps.training`: train and register;
:mod:`mlloop.steps.promotion`: re-score both versions on the same fresh window, decide, then promote
with compare-and-set or reject). The challengers are
degraded three ways, each with several seeds:

* **shuffled labels**: the training labels permuted (no signal left);
* **dropped key feature**: income and the ratios derived from it missing from the training set;
* **drifted window**: trained on the same days under the generator's income shock, then judged on
  the calm present.

"Worse" is what the gate measures: a lower primary metric than the champion's on the same fresh rows,
by more than ``promotion.max_regression`` (the tolerance the spec grants a fresher model). A sound
challenger trained on more data is the control: the gate must still promote good models.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import numpy as np
import pandas as pd
import pytest

from loop_fixtures import write_clean_features
from mlloop import tags as tag_keys
from mlloop.champion import current_champion
from mlloop.features import build_features
from mlloop.landing import date_range, generate
from mlloop.registry import get_version
from mlloop.services import Services
from mlloop.steps import RunInfo, StepSkipped, promotion, training
from mlloop.tags import GateRecord
from mlloop.training_set import build_training_set

pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]

DAYS = date_range(dt.date(2026, 3, 1), dt.date(2026, 3, 18))
CUTOFF = DAYS[11]
SEEDS = (0, 1)
KEY_FEATURES = ("annual_income", "debt_to_income", "loan_to_income")


def shuffled_labels(frame: pd.DataFrame, spec: Any, seed: int) -> pd.DataFrame:
    out = frame.copy()
    out[spec.labels.column] = np.random.default_rng(seed).permutation(out[spec.labels.column].to_numpy())
    return out


def dropped_key_feature(frame: pd.DataFrame, spec: Any, seed: int) -> pd.DataFrame:
    out = frame.sample(frac=0.9, random_state=seed).sort_values(spec.raw.timestamp_column, kind="stable")
    return out.assign(**dict.fromkeys(KEY_FEATURES, np.nan)).reset_index(drop=True)


def drifted_window(drifted: pd.DataFrame, spec: Any, seed: int) -> pd.DataFrame:
    out = drifted.sample(frac=0.9, random_state=seed).sort_values(spec.raw.timestamp_column, kind="stable")
    return out.reset_index(drop=True)


def shocked_training_set(spec: Any, like: pd.DataFrame) -> pd.DataFrame:
    """The training window's days as they would have been under the income shock (generator drift)."""
    key, ts = spec.entity.join_key, spec.raw.timestamp_column
    features, labels = [], []
    for day in DAYS[: DAYS.index(CUTOFF) + 1]:
        batch = generate(spec, day, bad_row_share=0.0, income_shock_from=DAYS[0])
        features.append(build_features(batch.observations, spec))
        labels.append(batch.labels)
    feats, labs = pd.concat(features), pd.concat(labels)
    for frame in (feats, labs):
        frame[key] = frame[key].astype("int64")
        frame[ts] = pd.to_datetime(frame[ts], utc=True)
    return labs.merge(feats, on=[key, ts])[list(like.columns)]


def test_degraded_challengers_never_replace_the_champion(storage, spec, feast_registry) -> None:  # type: ignore[no-untyped-def]
    from mlloop.feature_store import open_store

    write_clean_features(storage, spec, DAYS)
    services = Services.of(storage=storage, feature_store=open_store())
    store, client = services.feature_store, services.mlflow
    model = spec.registered_model_name
    tolerance = spec.promotion.max_regression
    run = RunInfo(dag_id="test_promotion_trials", run_id="trials")

    def register(frame: pd.DataFrame, why: str, cutoff: dt.date = CUTOFF) -> Any:
        """What the training DAG's train task does, on a (degraded) training set written to staging."""
        path = storage.write_frame(frame, training.training_set_path(storage, spec, cutoff))
        # Each its own training run: a run id already registered is a retry, which returns that version.
        trained_by = RunInfo(dag_id="test_promotion_trials", run_id=why)
        registered = training.train_and_register(services, spec, training.TrainInputs(path, cutoff, why), trained_by)
        return get_version(client, model, registered.version)

    def gate(challenger: Any) -> tuple[Any, str | None]:
        """What the promotion DAG's tasks do: evaluate, then promote (compare-and-set) or reject."""
        outcome, _ = promotion.run_promotion(services, spec, run, challenger.version, serialized_by="this test")
        return outcome.evaluation, outcome.champion

    training_set = build_training_set(storage, store, spec, CUTOFF).frame
    first, _ = gate(register(training_set, "the first model"))
    assert first.decision.passed and current_champion(client, model) == "1"

    drifted = shocked_training_set(spec, training_set)
    trials = [
        (kind, seed, degrade)
        for kind, degrade in (
            ("shuffled labels", lambda seed: shuffled_labels(training_set, spec, seed)),
            ("dropped key feature", lambda seed: dropped_key_feature(training_set, spec, seed)),
            ("drifted window", lambda seed: drifted_window(drifted, spec, seed)),
        )
        for seed in SEEDS
    ]
    outcomes = []
    for kind, seed, degrade in trials:
        challenger = register(degrade(seed), f"test: {kind}, seed {seed}")
        evaluation, before = gate(challenger)
        after = current_champion(client, model)
        mine, theirs = evaluation.cards[challenger.version].primary, evaluation.cards[before].primary
        outcomes.append((kind, seed, round(mine, 4), round(theirs, 4), evaluation.decision.passed, after))
        # The invariant: the champion only ever moves to a version at least as good, within the tolerance.
        if after != before:
            assert mine >= theirs - tolerance, outcomes[-1]
        if mine < theirs - tolerance:  # measurably worse on the same fresh rows
            assert not evaluation.decision.passed and after == before, outcomes[-1]
    # Every degradation was caught on every seed: none was promoted.
    assert current_champion(client, model) == "1", outcomes
    assert all(not passed for *_, passed, _ in outcomes), outcomes
    tags = {str(mv.version): mv.tags for mv in client.search_model_versions(f"name = '{model}'")}
    assert [tags[str(v)][tag_keys.DECISION] for v in range(2, 2 + len(trials))] == ["rejected"] * len(trials)

    # The control: a sound model on more recent data still passes the gate.
    control, before = gate(register(build_training_set(storage, store, spec, DAYS[14]).frame, "control", DAYS[14]))
    assert control.decision.passed, control.table(spec)
    assert current_champion(client, model) == control.decision.challenger_version != before
    control_version = control.decision.challenger_version

    # The race rule: a promotion evaluated against v1 finds the control champion in place (another
    # promotion moved the alias meanwhile), so it re-runs the gate against the control, which the
    # degraded challenger does not beat: recorded as rejected, skipped, the champion untouched.
    late = register(shuffled_labels(training_set, spec, 9), "test: late promotion", DAYS[14])
    stale = {"version": late.version, "champion": "1"}
    with pytest.raises(StepSkipped, match=f"REJECTED on re-evaluation.*current champion v{control_version}"):
        promotion.promote_challenger(services, spec, run, stale, "this test")
    assert current_champion(client, model) == control_version
    assert get_version(client, model, late.version).tags[tag_keys.DECISION] == "rejected"
    recorded = GateRecord.from_tags(get_version(client, model, late.version).tags)
    assert recorded is not None and recorded.champion_version == control_version and not recorded.passed
