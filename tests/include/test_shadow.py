"""Shadow scoring and the shadow gate (core, no Airflow): real scoring code, real storage, real labels.

The champion is a real scikit-learn pipeline trained on the generator's labelled rows; the other
model is a deterministic coin (AUC ~0.5). Which one is the challenger decides the shadow gate's
verdict, whatever the holdout said: the gate reads only the predictions each model made.
"""

from __future__ import annotations

import datetime as dt
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from loop_fixtures import feature_frame, labelled_frame, lookup_fetcher, train_small_model, write_clean_features
from mlloop import tags as tag_keys
from mlloop.registry import ModelRef
from mlloop.scoring import (
    MODEL_VERSION_COLUMN,
    Lineage,
    ShadowScorer,
    commit_predictions,
    plan_parts,
    predictions_path,
    score_partition,
)
from mlloop.shadow import commit_shadow, shadow_days, shadow_gate, shadow_path
from mlloop.shadow_sample import day_sample

D1 = dt.date(2026, 5, 1)
RUN = "scheduled__test"


def day(n: int) -> dt.date:
    return D1 + dt.timedelta(days=n - 1)


SHADOW_DAYS = [day(5), day(6), day(7)]


class Coin:
    """A model that knows nothing: a fixed pseudo-random score per row (AUC about 0.5)."""

    def predict_proba(self, frame: pd.DataFrame) -> np.ndarray:
        codes = pd.util.hash_pandas_object(frame.reset_index(drop=True), index=False).to_numpy()
        p = (codes % 10_000) / 10_000.0
        return np.column_stack([1.0 - p, p])


@pytest.fixture
def shadow_spec(spec):  # type: ignore[no-untyped-def]
    """credit_risk with two shadow days and a floor the small test model reaches."""
    promotion = spec.promotion.model_copy(update={"shadow_days": 2, "min_primary_metric": 0.55})
    return spec.model_copy(update={"promotion": promotion})


@pytest.fixture
def loop(storage, shadow_spec):  # type: ignore[no-untyped-def]
    """Features of days 1..7, labels landed up to day 10 (delay 3): every shadow day is labelled."""
    write_clean_features(storage, shadow_spec, [day(n) for n in range(1, 11)], rows_per_day=400, n_customers=2000)
    trained = train_small_model(shadow_spec, labelled_frame(storage, shadow_spec, [day(n) for n in range(1, 5)]))
    frame = labelled_frame(storage, shadow_spec, [day(n) for n in range(1, 5)])
    shuffled = frame.assign(
        **{shadow_spec.labels.column: np.random.default_rng(0).permutation(frame[shadow_spec.labels.column])}
    )
    return {"good": trained, "coin": Coin(), "coin_sk": train_small_model(shadow_spec, shuffled)}


def ref(version: str, cutoff: dt.date) -> ModelRef:
    return ModelRef("credit_risk", version, "run", "src", tags={tag_keys.TRAINING_CUTOFF: cutoff.isoformat()})


def score_with_shadow(
    storage: Any, spec: Any, d: dt.date, champion: tuple[str, Any], shadow: tuple[str, Any], partitions: int = 1
) -> None:
    """What the batch scoring DAG does for one day with a shadow model: the day's shadow sample drawn
    once (``resolve_shadow``), one fetch per part, two outputs."""
    fetch = lookup_fetcher(feature_frame(storage, spec, [d]), spec)
    lineage = Lineage("credit_risk", champion[0], RUN)
    shadow_lineage = Lineage("credit_risk", shadow[0], RUN)
    scorer = ShadowScorer(shadow[1], shadow_lineage, day_sample(storage, spec, d))
    parts = [
        score_partition(storage, spec, d, model=champion[1], fetch_features=fetch, lineage=lineage, shadow=scorer, **p)
        for p in plan_parts(spec, partitions)
    ]
    commit_predictions(storage, spec, d, parts, lineage=lineage)
    commit_shadow(storage, spec, d, parts, lineage=shadow_lineage, expected_rows=scorer.sample.rows)


@pytest.mark.parametrize(("champion", "challenger", "promoted"), [("good", "coin", False), ("coin", "good", True)])
def test_the_shadow_gate_decides_on_the_predictions_each_model_made(
    storage, shadow_spec, loop, champion, challenger, promoted
) -> None:  # type: ignore[no-untyped-def]
    for d in SHADOW_DAYS:
        score_with_shadow(storage, shadow_spec, d, ("1", loop[champion]), ("2", loop[challenger]))

    evidence = shadow_gate(storage, shadow_spec, ref("2", day(4)), ref("1", day(3)))

    assert evidence.decision is not None
    assert evidence.decision.passed is promoted
    assert evidence.days == (day(5), day(6))  # the first shadow_days labelled days decide
    served = pd.concat([storage.read_frame(predictions_path(storage, shadow_spec, d)) for d in SHADOW_DAYS[:2]])
    assert 0 < evidence.rows <= len(served)
    table = evidence.table(shadow_spec)
    assert "Shadow gate" in table and ("PASSED" in table) is promoted
    if not promoted:
        assert any("worse than champion" in r or "floor" in r for r in evidence.decision.reasons)
    tags = evidence.tags()
    assert tags[tag_keys.SHADOW_DAYS_LABELLED] == "2"
    assert tags[tag_keys.SHADOW_RESULT].startswith("passed" if promoted else "failed")


def test_the_shadow_gate_waits_until_enough_shadow_days_are_labelled(storage, shadow_spec, loop) -> None:  # type: ignore[no-untyped-def]
    score_with_shadow(storage, shadow_spec, day(5), ("1", loop["good"]), ("2", loop["coin"]))

    evidence = shadow_gate(storage, shadow_spec, ref("2", day(4)), ref("1", day(3)))

    assert evidence.decision is None and evidence.days == (day(5),)
    assert "waiting" in evidence.table(shadow_spec) and "1 of 2 required" in evidence.describe()


def test_days_the_challenger_learned_from_are_not_evidence(storage, shadow_spec, loop) -> None:  # type: ignore[no-untyped-def]
    for d in SHADOW_DAYS:
        score_with_shadow(storage, shadow_spec, d, ("1", loop["good"]), ("2", loop["coin"]))

    evidence = shadow_gate(storage, shadow_spec, ref("2", day(6)), ref("1", day(3)))  # trained on data up to day 6

    assert evidence.days == (day(7),) and evidence.decision is None


def test_a_shadow_partition_is_never_read_as_predictions(storage, shadow_spec, loop) -> None:  # type: ignore[no-untyped-def]
    from mlloop.drift_report import labelled_predictions, load_current_window

    for d in SHADOW_DAYS:
        score_with_shadow(storage, shadow_spec, d, ("1", loop["good"]), ("2", loop["coin"]))

    assert shadow_days(storage, shadow_spec) == SHADOW_DAYS
    shadow = storage.read_frame(shadow_path(storage, shadow_spec, day(7)))
    assert set(shadow[MODEL_VERSION_COLUMN]) == {"2"}
    # Consumers: the partition itself, the predictions glob, the drift window and the quality check.
    served = storage.read_frame(predictions_path(storage, shadow_spec, day(7)))
    assert set(served[MODEL_VERSION_COLUMN]) == {"1"} and len(served) == len(shadow)
    listed = storage.glob(storage.path("predictions", shadow_spec.name, "**", "*.parquet"))
    assert listed and all("/shadow/" not in p for p in listed)
    window = load_current_window(storage, shadow_spec, day(7))
    assert window.rows_total == sum(
        len(storage.read_frame(predictions_path(storage, shadow_spec, d)))
        for d in SHADOW_DAYS
        if d > day(7) - dt.timedelta(days=shadow_spec.drift.window_days)
    )
    labelled = labelled_predictions(storage, shadow_spec, day(10))
    assert len(labelled) and set(labelled[MODEL_VERSION_COLUMN].astype(str)) == {"1"}


@pytest.fixture
def sampled_spec(shadow_spec):  # type: ignore[no-untyped-def]
    """The shadow spec with a shadow sample smaller than a day (400 rows a day)."""
    promotion = shadow_spec.promotion.model_copy(update={"shadow_max_rows": SAMPLE})
    return shadow_spec.model_copy(update={"promotion": promotion})


SAMPLE = 150


def shadow_row_keys(storage: Any, spec: Any, d: dt.date) -> list[tuple[Any, Any]]:
    frame = storage.read_frame(shadow_path(storage, spec, d), columns=[spec.entity.join_key, spec.raw.timestamp_column])
    return sorted(zip(frame[spec.entity.join_key], frame[spec.raw.timestamp_column], strict=True))


def test_a_day_above_shadow_max_rows_shadow_scores_the_same_sample_in_every_run_split_and_model(
    storage, sampled_spec, loop
) -> None:  # type: ignore[no-untyped-def]
    d = day(5)
    score_with_shadow(storage, sampled_spec, d, ("1", loop["good"]), ("2", loop["coin"]))
    first = shadow_row_keys(storage, sampled_spec, d)
    score_with_shadow(storage, sampled_spec, d, ("1", loop["good"]), ("2", loop["coin"]), partitions=3)
    split = shadow_row_keys(storage, sampled_spec, d)
    score_with_shadow(storage, sampled_spec, d, ("1", loop["good"]), ("3", loop["coin_sk"]), partitions=2)
    other_model = shadow_row_keys(storage, sampled_spec, d)

    served = storage.read_frame(predictions_path(storage, sampled_spec, d))
    assert len(served) == 400  # the day's predictions are whole: only the shadow is a sample
    assert len(first) == SAMPLE and len(set(first)) == SAMPLE
    assert first == split == other_model
    key, ts = sampled_spec.entity.join_key, sampled_spec.raw.timestamp_column
    assert set(first) <= set(zip(served[key], served[ts], strict=True))
    assert set(storage.read_frame(shadow_path(storage, sampled_spec, d))[MODEL_VERSION_COLUMN]) == {"3"}


def test_the_shadow_gate_judges_both_models_on_the_sampled_rows_only(storage, sampled_spec, loop) -> None:  # type: ignore[no-untyped-def]
    from mlloop.shadow import labelled_shadow_rows

    for d in SHADOW_DAYS:
        score_with_shadow(storage, sampled_spec, d, ("1", loop["good"]), ("2", loop["coin"]))

    evidence = shadow_gate(storage, sampled_spec, ref("2", day(4)), ref("1", day(3)))

    assert evidence.decision is not None and evidence.days == (day(5), day(6))
    key, ts = sampled_spec.entity.join_key, sampled_spec.raw.timestamp_column
    sampled = {row for d in evidence.days for row in shadow_row_keys(storage, sampled_spec, d)}
    judged = labelled_shadow_rows(storage, sampled_spec, "2", day(5))
    judged = judged[judged[ts].dt.date.isin(evidence.days)]
    assert set(zip(judged[key], judged[ts], strict=True)) <= sampled  # no served row outside the sample
    assert 0 < evidence.rows == len(judged) <= 2 * SAMPLE
    assert {card.rows for card in evidence.cards.values()} == {evidence.rows}  # both models, the same rows
    served = pd.concat([storage.read_frame(predictions_path(storage, sampled_spec, d)) for d in evidence.days])
    champion = judged.merge(served[[key, ts, "score"]], on=[key, ts])
    assert len(champion) == len(judged) and (champion["champion_score"] == champion["score"]).all()
    assert (evidence.served_rows, evidence.shadow_rows) == (800, 2 * SAMPLE)
    assert f"{evidence.rows} labelled rows scored by both models (the shadow samples: 300 of the 800 rows" in (
        evidence.table(sampled_spec)
    )


_COMMITTER = """
import datetime as dt, pickle, sys
from mlloop.shadow import commit_shadow
from mlloop.scoring import Lineage
from mlloop.storage import local_storage
spec, parts = pickle.load(open(sys.argv[2], "rb"))
commit_shadow(local_storage(sys.argv[1]), spec, dt.date.fromisoformat(sys.argv[3]), parts,
              lineage=Lineage("credit_risk", "2", "scheduled__test"))
"""


def test_a_shadow_commit_killed_mid_write_leaves_nothing_partial(storage, shadow_spec, loop, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """SIGKILL between writing the shadow partition's bytes and publishing them (kill-on-write):
    no shadow partition is visible, the day's predictions are whole; the retry publishes it."""
    import os
    import pickle

    d = day(5)
    fetch = lookup_fetcher(feature_frame(storage, shadow_spec, [d]), shadow_spec)
    lineage, shadow_lineage = Lineage("credit_risk", "1", RUN), Lineage("credit_risk", "2", RUN)
    parts = [
        score_partition(
            storage, shadow_spec, d, model=loop["good"], fetch_features=fetch, lineage=lineage,
            shadow=ShadowScorer(loop["coin"], shadow_lineage, day_sample(storage, shadow_spec, d)), **p,
        )
        for p in plan_parts(shadow_spec, 2)
    ]  # fmt: skip
    predictions = commit_predictions(storage, shadow_spec, d, parts, lineage=lineage)
    pickled = tmp_path / "parts.pkl"
    pickled.write_bytes(pickle.dumps((shadow_spec, parts)))
    faults = tmp_path / "faults"
    faults.mkdir()
    (faults / "kill-on-write").write_text(f"shadow/credit_risk/date={d.isoformat()}\n")
    from seams.fault_injection import deployment_env  # the test deployment installs the fault hooks

    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    env.update(deployment_env(faults, env))
    root = storage.path()

    def commit() -> int:
        return subprocess.run([sys.executable, "-c", _COMMITTER, root, str(pickled), d.isoformat()], env=env).returncode

    assert commit() == -signal.SIGKILL
    assert (faults / "killed-on-write").exists()
    assert shadow_days(storage, shadow_spec) == []  # nothing partial is visible
    assert not storage.exists(shadow_path(storage, shadow_spec, d))
    folder = Path(shadow_path(storage, shadow_spec, d)).parent
    assert all(p.name.startswith(".data.parquet.tmp-") for p in folder.iterdir())  # only the torn temporary
    assert len(storage.read_frame(predictions_path(storage, shadow_spec, d))) == predictions.rows

    assert commit() == 0  # the retry (fault claimed)
    assert len(storage.read_frame(shadow_path(storage, shadow_spec, d))) == predictions.rows
    assert [p.name for p in folder.iterdir()] == ["data.parquet"]


def test_shadow_parts_that_fail_validation_publish_nothing(storage, shadow_spec, loop) -> None:  # type: ignore[no-untyped-def]
    from mlloop.scoring import PredictionValidationError

    d = day(5)
    fetch = lookup_fetcher(feature_frame(storage, shadow_spec, [d]), shadow_spec)
    lineage = Lineage("credit_risk", "1", RUN)
    part = score_partition(storage, shadow_spec, d, model=loop["good"], fetch_features=fetch, lineage=lineage)

    with pytest.raises(PredictionValidationError, match="without the shadow model"):
        commit_shadow(storage, shadow_spec, d, [part], lineage=Lineage("credit_risk", "2", RUN))
    assert shadow_days(storage, shadow_spec) == []
