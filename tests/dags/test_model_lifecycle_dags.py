"""Wiring of the training, promotion and rollback DAGs: schedules, Assets, Params, approval switch."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from spec_variants import use_spec_variant

ROOT = Path(__file__).resolve().parents[2]


def load_dags(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, **promotion: Any) -> dict[str, Any]:
    """The DAGs of the bundled use case, with ``promotion`` settings overridden in a copy of its spec."""
    from airflow.dag_processing.dagbag import DagBag

    use_spec_variant(monkeypatch, tmp_path, promotion=promotion)
    bag = DagBag(dag_folder=str(ROOT / "dags"))
    assert bag.import_errors == {}
    return bag.dags


@pytest.fixture
def dags(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> dict[str, Any]:
    return load_dags(monkeypatch, tmp_path)


def assets(timetable: Any) -> list[str]:
    return [a.name for a in timetable.asset_condition.objects]


def test_training_runs_on_new_features_and_announces_a_challenger(dags: dict[str, Any]) -> None:
    dag = dags["credit_risk__training"]
    assert assets(dag.timetable) == ["credit_risk.features"]
    assert dag.max_active_runs == 1
    assert [t.task_id for t in dag.topological_sort()] == [
        "decide_training",
        "build_training_set",
        "validate_training_set",
        "train_and_register",
    ]
    assert [a.name for a in dag.task_dict["train_and_register"].outlets] == ["credit_risk.challenger"]
    params = {name: dag.params.get_param(name).schema for name in dag.params}
    assert set(params) == {"reason", "cutoff_day", "force", "drift", "drift_report"}
    assert params["force"]["type"] == "boolean"
    assert params["drift"]["type"] == ["null", "object"]
    assert params["cutoff_day"]["pattern"]


def test_promotion_runs_on_a_challenger_and_only_promotion_moves_the_champion(dags: dict[str, Any]) -> None:
    dag = dags["credit_risk__promotion"]
    assert assets(dag.timetable) == ["credit_risk.challenger"]
    # Runs may overlap; what must not overlap is moving the alias (next test).
    assert dag.max_active_runs > 1
    assert set(dag.task_dict) == {"evaluate_challenger", "promote_challenger", "reject_challenger"}
    assert dag.task_dict["evaluate_challenger"].downstream_task_ids == {"promote_challenger", "reject_challenger"}
    assert [a.name for a in dag.task_dict["promote_challenger"].outlets] == ["credit_risk.champion"]
    assert dag.task_dict["reject_challenger"].outlets == []
    assert dag.params.get_param("version").schema["type"] == ["null", "integer"]


def test_every_alias_moving_task_shares_the_one_slot_pool(dags: dict[str, Any]) -> None:
    """MLflow aliases have no compare-and-set: promotion and rollback re-read the champion and move
    it inside pool CHAMPION_POOL, whose single slot makes that a critical section."""
    from mlloop_airflow.operators.promotion import PromoteChallengerOperator, RollbackChampionOperator
    from mlloop_airflow.pools import CHAMPION_POOL, POOLS

    movers = [
        (dag_id, task)
        for dag_id, dag in dags.items()
        for task in dag.tasks
        if isinstance(task, PromoteChallengerOperator | RollbackChampionOperator)
    ]
    assert {task.task_id for _, task in movers} == {"promote_challenger", "rollback_champion"}
    assert {(dag_id, task.pool) for dag_id, task in movers} == {
        ("credit_risk__promotion", CHAMPION_POOL),
        ("credit_risk__rollback", CHAMPION_POOL),
    }
    assert POOLS[CHAMPION_POOL][0] == 1


def test_approval_is_added_only_when_the_spec_asks(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from airflow.providers.standard.operators.hitl import ApprovalOperator

    dag = load_dags(monkeypatch, tmp_path, require_approval=True)["credit_risk__promotion"]
    approve = dag.task_dict["approve_promotion"]
    assert isinstance(approve, ApprovalOperator)
    assert dag.task_dict["evaluate_challenger"].downstream_task_ids == {"approve_promotion", "reject_challenger"}
    assert dag.task_dict["promote_challenger"].upstream_task_ids == {"approve_promotion"}
    assert dag.task_dict["evaluate_challenger"].promote_task_id == "approve_promotion"
    assert "approve_promotion" in (dag.doc_md or "")


def test_rollback_is_manual_and_announces_the_champion(dags: dict[str, Any]) -> None:
    dag = dags["credit_risk__rollback"]
    assert type(dag.timetable).__name__ == "NullTimetable"
    (task,) = dag.tasks
    assert [a.name for a in task.outlets] == ["credit_risk.champion"]
    assert dag.params.get_param("version").schema["type"] == ["null", "integer"]


def test_drift_runs_never_overlap(dags: dict[str, Any]) -> None:
    """The debounce reads 'is a retrain running? when was the last?' and then triggers: one drift run at a
    time makes that read-then-trigger atomic, so a burst of drift cannot start two retrains."""
    dag = dags["credit_risk__drift_monitoring"]
    assert dag.max_active_runs == 1
    assert "trigger_training" in dag.task_dict["decide_retrain"].downstream_task_ids
    assert "trigger_training" in dag.task_dict["record_trigger"].upstream_task_ids


def test_every_materialization_runs_in_the_feast_registry_pool(dags: dict[str, Any]) -> None:
    """Each materialization rewrites the whole Feast registry: two at once lose an interval."""
    from mlloop_airflow.operators.materialize import FeastMaterializeOperator
    from mlloop_airflow.pools import FEAST_REGISTRY_POOL, POOLS

    materializers = [
        (dag_id, task)
        for dag_id, dag in dags.items()
        for task in dag.tasks
        if isinstance(task, FeastMaterializeOperator)
    ]
    assert {(dag_id, task.pool) for dag_id, task in materializers} == {
        ("credit_risk__feature_ingestion", FEAST_REGISTRY_POOL)
    }
    assert POOLS[FEAST_REGISTRY_POOL][0] == 1
