"""The whole loop on a real Airflow 3 (``airflow standalone``: scheduler, DAG processor, triggerer,
API server) on a temporary MLLOOP_HOME, driven like a user drives it: backfills and the REST API.

Assertions go through Airflow's REST API (run states, confs), MLflow's own client (aliases, tags)
and the storage root (prediction partitions, drift reports). Nothing is mocked.
"""

from __future__ import annotations

import datetime as dt
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts"))

from airflow_local import LocalAirflow, free_port  # noqa: E402
from demo import Loop  # noqa: E402

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(1800)]
USE_CASE = "credit_risk"


@pytest.fixture(scope="module")
def loop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Loop]:
    home = tmp_path_factory.mktemp("e2e") / "mlloop"
    airflow = LocalAirflow(home, port=free_port(), extra_env={"MLLOOP_SENSOR_POKE_SECONDS": "30"})
    loop = Loop(airflow, USE_CASE, dt.datetime.now(dt.UTC).date())
    try:
        loop.run()
        yield loop
    finally:
        airflow.stop()


@pytest.fixture(scope="module")
def mlflow(loop: Loop, tmp_path_factory: pytest.TempPathFactory) -> Any:
    """MLflow's client on the loop's tracking store (the settings read MLLOOP_HOME)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLLOOP_HOME", str(loop.airflow.home))
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


def test_drift_triggered_exactly_one_retraining(loop: Loop) -> None:
    calm, shocked = loop.result.phase1[-1], loop.result.phase2[-1]
    assert loop.drift_report(calm)["drift"] is False
    report = loop.drift_report(shocked)
    assert report["drift"] is True
    assert "annual_income" in report["verdict"]["key_features_drifted"]
    assert Path(report["report_html"]).stat().st_size > 100_000  # Evidently's self-contained HTML

    by_drift = [r for r in loop.runs("training") if str((r.get("conf") or {}).get("reason", "")).startswith("drift")]
    assert len(by_drift) == 1, [r["conf"] for r in loop.runs("training")]
    conf = by_drift[0]["conf"]
    assert conf["cutoff_day"] == shocked.isoformat()
    assert conf["drift_report"] == report["report_html"]
    assert conf["drift"]["drifted_share"] >= 0.3


def test_registry_aliases_follow_the_gate(loop: Loop, mlflow: Any) -> None:
    from mlloop import registry

    aliases = registry.aliases(mlflow, USE_CASE)
    assert "champion" in aliases
    versions = mlflow.search_model_versions(f"name='{USE_CASE}'")
    assert len(versions) >= 2, "the first training and the drift-triggered retraining each register a version"
    decided = {str(v.version): v.tags.get("promotion.decision") for v in versions}
    assert set(decided.values()) <= {"promoted", "rejected"}
    assert decided[aliases["champion"]] == "promoted"
    newest = max(versions, key=lambda v: int(v.version))
    run = mlflow.get_run(newest.run_id)
    assert run.data.tags["mlloop.trigger_reason"].startswith("drift")
    assert run.data.tags["mlloop.dag_id"] == f"{USE_CASE}__training"
    if decided[str(newest.version)] == "promoted":
        assert aliases["champion"] == str(newest.version)
        assert aliases["previous-champion"] != aliases["champion"]
    else:
        assert aliases["champion"] != str(newest.version)


def test_prediction_partitions_match_their_features_and_runs(loop: Loop) -> None:
    import pandas as pd

    root = loop.storage_root()
    scoring = runs_by_day(loop, "batch_scoring")
    for day in loop.result.phase1[-3:] + loop.result.phase2:
        predictions = pd.read_parquet(root / "predictions" / USE_CASE / f"date={day}" / "data.parquet")
        features = pd.read_parquet(root / "features" / USE_CASE / "customer_profile" / f"date={day}" / "data.parquet")
        assert len(predictions) == len(features) > 0
        assert sorted(predictions["customer_id"]) == sorted(features["customer_id"])
        assert predictions["score"].between(0, 1).all() and predictions["score"].notna().all()
        assert predictions["model_version"].nunique() == 1
        assert set(predictions["airflow_run_id"]) == {scoring[day.isoformat()]["dag_run_id"]}
