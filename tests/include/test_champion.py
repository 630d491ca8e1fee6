"""Alias moves against a real MLflow registry (SQLite): promotion, rejection, rollback, and races."""

from __future__ import annotations

import datetime as dt
import itertools
from pathlib import Path
from typing import Any

import pytest

from mlloop import tags as tag_keys
from mlloop.champion import (
    ChampionChanged,
    RollbackRefused,
    champion_at,
    champion_history,
    model_for_day,
    promote,
    record_gate,
    reject,
    rollback,
)
from mlloop.spec import UseCaseSpec

_names = itertools.count()


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, Path]:
    """One SQLite registry for the module (creating one costs ~1.5 s); each test gets its own model."""
    from mlflow import MlflowClient

    folder = tmp_path_factory.mktemp("registry")
    uri = f"sqlite:///{folder / 'mlflow.db'}"
    (folder / "model").mkdir()
    return MlflowClient(tracking_uri=uri, registry_uri=uri), folder / "model"


@pytest.fixture
def spec(spec: UseCaseSpec) -> UseCaseSpec:
    """The bundled spec with a registered-model name of this test's own."""
    return spec.model_copy(update={"model": spec.model.model_copy(update={"name": f"model_{next(_names)}"})})


@pytest.fixture
def registry(store: tuple[Any, Path], spec: UseCaseSpec) -> Any:
    """A registered model with three versions (the source is a plain folder: no artifacts needed)."""
    client, source = store
    client.create_registered_model(spec.registered_model_name)
    for _ in range(3):
        client.create_model_version(spec.registered_model_name, source=str(source))
    return client


def aliases(client: Any, spec: UseCaseSpec) -> dict[str, str]:
    return {k: str(v) for k, v in client.get_registered_model(spec.registered_model_name).aliases.items()}


def test_first_promotion_and_the_next_keep_the_previous_champion(registry: Any, spec: UseCaseSpec) -> None:
    move = promote(registry, spec, "1", expected_champion=None)
    assert (move.champion, move.previous_champion, move.moved) == ("1", None, True)
    assert aliases(registry, spec) == {"champion": "1"}
    promote(registry, spec, "2", expected_champion="1", tags=tag_keys.run_tags(tag_keys.PROMOTION, "d", "r"))
    assert aliases(registry, spec) == {"champion": "2", "previous-champion": "1"}
    tags = registry.get_model_version(spec.registered_model_name, "2").tags
    assert tags[tag_keys.DECISION] == "promoted" and tags[tag_keys.PREVIOUS_CHAMPION] == "1"
    assert tag_keys.run_tags(tag_keys.PROMOTION, "d", "r").items() <= tags.items()


def test_promotion_refuses_when_the_champion_moved_since_the_evaluation(registry: Any, spec: UseCaseSpec) -> None:
    promote(registry, spec, "1", expected_champion=None)
    promote(registry, spec, "2", expected_champion="1")  # someone else's promotion, after our evaluation
    with pytest.raises(ChampionChanged, match="points at v2, but this promotion was decided against v1"):
        promote(registry, spec, "3", expected_champion="1")
    assert aliases(registry, spec) == {"champion": "2", "previous-champion": "1"}
    assert tag_keys.DECISION not in registry.get_model_version(spec.registered_model_name, "3").tags


def test_rejection_is_recorded_and_moves_nothing(registry: Any, spec: UseCaseSpec) -> None:
    promote(registry, spec, "1", expected_champion=None)
    reject(registry, spec, "2", ["roc_auc 0.61 below the floor", "worse on salaried"])
    assert aliases(registry, spec) == {"champion": "1"}
    tags = registry.get_model_version(spec.registered_model_name, "2").tags
    assert tags[tag_keys.DECISION] == "rejected"
    assert tags[tag_keys.REASONS] == "roc_auc 0.61 below the floor; worse on salaried"


def test_rollback_to_the_previous_champion_and_back(registry: Any, spec: UseCaseSpec) -> None:
    promote(registry, spec, "1", expected_champion=None)
    promote(registry, spec, "2", expected_champion="1")
    move = rollback(registry, spec, None, tags={tag_keys.ROLLBACK_REASON: "bad scores"})
    assert (move.champion, move.previous_champion) == ("1", "2")
    assert aliases(registry, spec) == {"champion": "1", "previous-champion": "2"}
    assert registry.get_model_version(spec.registered_model_name, "1").tags[tag_keys.ROLLBACK_REASON] == "bad scores"
    rollback(registry, spec, None)  # undoes the rollback
    assert aliases(registry, spec) == {"champion": "2", "previous-champion": "1"}


def test_rollback_to_a_chosen_version(registry: Any, spec: UseCaseSpec) -> None:
    promote(registry, spec, "2", expected_champion=None)
    rollback(registry, spec, 1)
    assert aliases(registry, spec) == {"champion": "1", "previous-champion": "2"}
    assert not rollback(registry, spec, "1").moved  # already champion: nothing to do


@pytest.mark.parametrize(
    ("setup", "version", "message"),
    [
        ("nothing", None, "has no alias previous-champion"),
        ("nothing", 9, "has no version 9"),
        ("rejected", 3, "was rejected by the promotion gate (worse)"),
    ],
)
def test_rollback_refuses(registry: Any, spec: UseCaseSpec, setup: str, version: int | None, message: str) -> None:
    promote(registry, spec, "1", expected_champion=None)
    if setup == "rejected":
        reject(registry, spec, "3", ["worse"])
    with pytest.raises(RollbackRefused) as info:
        rollback(registry, spec, version)
    assert message in str(info.value)
    assert aliases(registry, spec) == {"champion": "1"}


def test_a_re_evaluation_replaces_the_gate_tags_of_the_last_one(registry: Any, spec: UseCaseSpec) -> None:
    name = spec.registered_model_name
    record_gate(
        registry,
        name,
        "2",
        {tag_keys.GATE_PASSED: "false", tag_keys.GATE_REASONS: "worse", tag_keys.GATE_FLOOR: "fail"},
    )
    record_gate(registry, name, "2", {tag_keys.GATE_PASSED: "true", tag_keys.GATE_FLOOR: "pass"})
    tags = registry.get_model_version(name, "2").tags
    assert {k: v for k, v in tags.items() if k.startswith(tag_keys.GATE_PREFIX)} == {
        tag_keys.GATE_PASSED: "true",
        tag_keys.GATE_FLOOR: "pass",
    }


def test_champion_at_a_day_follows_the_moves_in_data_time(registry: Any, spec: UseCaseSpec) -> None:
    """A backfilled scoring day uses the version that was champion at that day's end: a version
    trained with cutoff C serves from C+1; a rollback serves from the day it is given."""
    day = dt.date(2011, 3, 1)
    promote(registry, spec, "1", expected_champion=None, serves_from=day)
    promote(registry, spec, "2", expected_champion="1", serves_from=day + dt.timedelta(days=7))
    rollback(registry, spec, None, serves_from=day + dt.timedelta(days=10))
    history = champion_history(registry, spec.registered_model_name)
    assert history == [(day, "1"), (day + dt.timedelta(days=7), "2"), (day + dt.timedelta(days=10), "1")]
    assert champion_at(history, day - dt.timedelta(days=1)) is None
    assert champion_at(history, day) == "1"
    assert champion_at(history, day + dt.timedelta(days=6)) == "1"
    assert champion_at(history, day + dt.timedelta(days=7)) == "2"
    assert champion_at(history, day + dt.timedelta(days=9)) == "2"
    assert champion_at(history, day + dt.timedelta(days=30)) == "1"
    # Two moves serving from the same day: the later move wins.
    promote(registry, spec, "3", expected_champion="1", serves_from=day + dt.timedelta(days=10))
    history = champion_history(registry, spec.registered_model_name)
    assert champion_at(history, day + dt.timedelta(days=10)) == "3"
    assert registry.get_model_version(spec.registered_model_name, "3").tags[tag_keys.SERVES_FROM] == "2011-03-11"
    # The scoring policy: the champion of the day; before the first, the first (said so); no history: current.
    assert model_for_day(history, day + dt.timedelta(days=8), "3") == ("2", "champion at the end of 2011-03-09")
    version, because = model_for_day(history, day - dt.timedelta(days=2), "3")
    assert version == "1" and "precedes the first champion" in because
    assert model_for_day([], day, "3")[0] == "3"
