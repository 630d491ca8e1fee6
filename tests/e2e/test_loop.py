"""The whole loop on a real Airflow 3 (the embedded one: scheduler, DAG processor, triggerer, API
server) on a temporary MLLOOP_HOME, driven like a user drives it: backfills and the REST API.
Every bundled use case runs, in the same Airflow and at the same time (``conftest.py``): the
classification on integer customer ids and the regression on string meter ids go through the same
DAGs, operators and core.

Assertions go through Airflow's REST API (run states, confs), MLflow's own client (aliases, tags)
and the storage root (prediction partitions, drift reports). Nothing is mocked.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from e2e.conftest import USE_CASES
from mlloop import tags as tag_keys
from mlloop.spec import UseCaseSpec, get_spec
from mlloop_cli.demo import Loop

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(2400)]


@pytest.fixture(scope="module", params=USE_CASES)
def use_case(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="module")
def loop(loops: dict[str, Loop], use_case: str) -> Loop:
    return loops[use_case]


@pytest.fixture(scope="module")
def spec(use_case: str) -> UseCaseSpec:
    return get_spec(use_case)


@pytest.fixture(scope="module")
def mlflow(loops: dict[str, Loop]) -> Iterator[Any]:
    """MLflow's client on the loops' tracking store (the settings read MLLOOP_HOME)."""
    home = next(iter(loops.values())).airflow.home
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLLOOP_HOME", str(home))
        from mlloop import registry

        yield registry.mlflow_client()


def runs_by_day(loop: Loop, stage: str) -> dict[str, dict[str, Any]]:
    return {r["logical_date"][:10]: r for r in loop.runs(stage) if r.get("logical_date")}


def test_every_interval_run_is_green(loop: Loop) -> None:
    days = [d.isoformat() for d in loop.result.phase1 + loop.result.phase2]
    ingestion = runs_by_day(loop, "feature_ingestion")
    assert {d: ingestion[d]["state"] for d in days} == dict.fromkeys(days, "success")
    scored_days = [d.isoformat() for d in loop.result.phase1[-3:] + loop.result.phase2]
    scoring = runs_by_day(loop, "batch_scoring")
    assert {d: scoring[d]["state"] for d in scored_days} == dict.fromkeys(scored_days, "success")
    for stage in ("training", "promotion", "drift_monitoring"):
        states = [r["state"] for r in loop.runs(stage)]
        assert states and set(states) == {"success"}, (stage, states)


def test_drift_triggered_exactly_one_retraining(loop: Loop, spec: UseCaseSpec) -> None:
    calm, shocked = loop.result.phase1[-1], loop.result.phase2[-1]
    assert loop.drift_report(calm)["drift"] is False, loop.drift_report(calm)["verdict"]["headline"]
    report = loop.drift_report(shocked)
    assert report["drift"] is True
    # The generator's drift scenario (income shock, cold snap) moves the spec's key features.
    assert set(report["verdict"]["key_features_drifted"]) & set(spec.drift.key_features)
    assert len(loop.storage().read_bytes(report["report_html"])) > 100_000  # Evidently's self-contained HTML

    by_drift = [r for r in loop.runs("training") if str((r.get("conf") or {}).get("reason", "")).startswith("drift")]
    if not by_drift:
        # Data time: the day's scheduled training (retrain_after_days after the first) already asked
        # for a model on the shocked day's data; the drift check says so instead of training twice.
        from mlloop.training_requests import requests

        due = [r for r in requests(loop.storage(), spec) if r.cutoff_day == shocked]
        assert due and due[0].source == "features", [r["conf"] for r in loop.runs("training")]
        return
    assert len(by_drift) == 1, [r["conf"] for r in loop.runs("training")]
    conf = by_drift[0]["conf"]
    assert conf["cutoff_day"] == shocked.isoformat()
    assert conf["drift_report"] == report["report_html"]
    assert conf["drift"]["key_features_drifted"] == report["verdict"]["key_features_drifted"]
    assert conf["drift"]["drifted_share"] == pytest.approx(report["verdict"]["drifted_share"])


def test_registry_aliases_follow_the_gate(loop: Loop, spec: UseCaseSpec, mlflow: Any) -> None:
    from mlloop import registry

    model = spec.registered_model_name
    aliases = registry.aliases(mlflow, model)
    assert "champion" in aliases
    versions = mlflow.search_model_versions(f"name='{model}'")
    assert len(versions) >= 2, "the first training and the drift-triggered retraining each register a version"
    decided = {str(v.version): v.tags.get(tag_keys.DECISION) or v.tags.get(tag_keys.SHADOW_STATE) for v in versions}
    # With promotion.shadow_days a challenger that passed the gate may still wait for its shadow days.
    assert set(decided.values()) <= {"promoted", "rejected", "pending", "superseded"}
    if "pending" in aliases:
        assert decided[aliases["pending"]] == "pending" and aliases["pending"] != aliases["champion"]
    assert decided[aliases["champion"]] == "promoted"
    newest = max(versions, key=lambda v: int(v.version))
    run = mlflow.get_run(newest.run_id)
    # The drift retrain, or the scheduled training of the shocked day that made it unnecessary.
    assert run.data.tags[tag_keys.TRIGGER_REASON].startswith(("drift", "due:"))
    assert run.data.tags[tag_keys.LINEAGE_CUTOFF_DAY] == loop.result.phase2[-1].isoformat()
    assert run.data.tags[tag_keys.LINEAGE_DAG_ID] == spec.dag_id("training")
    if decided[str(newest.version)] == "promoted":
        assert aliases["champion"] == str(newest.version)
        assert aliases["previous-champion"] != aliases["champion"]
    else:
        assert aliases["champion"] != str(newest.version)


def test_prediction_partitions_match_their_features_and_runs(loop: Loop, spec: UseCaseSpec) -> None:
    storage = loop.storage()
    scoring = runs_by_day(loop, "batch_scoring")
    key = spec.entity.join_key
    for day in loop.result.phase1[-3:] + loop.result.phase2:
        predictions = storage.read_frame(storage.path("predictions", spec.name, f"date={day}", "data.parquet"))
        features = storage.read_frame(
            storage.path("features", spec.name, spec.features.feature_view, f"date={day}", "data.parquet")
        )
        assert len(predictions) == len(features) > 0
        assert sorted(predictions[key]) == sorted(features[key])
        assert predictions["score"].notna().all()
        if spec.model.task == "classification":
            assert predictions["score"].between(0, 1).all()
        else:
            assert predictions["score"].between(spec.labels.min or 0, spec.labels.max or float("inf")).all()
        assert predictions["model_version"].nunique() == 1
        assert set(predictions["airflow_run_id"]) == {scoring[day.isoformat()]["dag_run_id"]}
