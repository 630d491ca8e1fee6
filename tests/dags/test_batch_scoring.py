"""The batch scoring DAG end to end through Airflow (dag.test), Feast, MLflow and storage."""

from __future__ import annotations

import datetime as dt

import pytest

from loop_fixtures import SMALL, ingest_days, labelled_frame, register_champion, run_dag, task_states
from mlloop.ingestion import features_path
from mlloop.landing import date_range
from mlloop.scoring import predictions_path
from spec_variants import use_spec_variant

pytestmark = pytest.mark.integration

DAG_ID = "credit_risk__batch_scoring"
DAYS = date_range(dt.date(2026, 11, 1), dt.date(2026, 11, 8))
DAY = DAYS[-1]


@pytest.fixture
def ingested(airflow_db, feast_registry, storage, spec):  # type: ignore[no-untyped-def]
    ingest_days(storage, spec, DAYS, **SMALL)
    return storage


def test_no_champion_yet_skips_the_run(ingested, spec) -> None:  # type: ignore[no-untyped-def]
    dag_run = run_dag(DAG_ID, DAY)

    assert dag_run.state == "success"
    assert task_states(dag_run) == {
        "wait_for_features": "success",
        "resolve_champion": "skipped",
        "plan_parts": "skipped",
        "score_partition": "skipped",
        "commit_predictions": "skipped",
    }
    assert not ingested.exists(predictions_path(ingested, spec, DAY))


def test_scores_the_day_with_the_pinned_champion(ingested, spec) -> None:  # type: ignore[no-untyped-def]
    from airflow.models.asset import AssetEvent, AssetModel
    from airflow.utils.session import create_session

    champion = register_champion(spec, labelled_frame(ingested, spec, DAYS[:5]))

    dag_run = run_dag(DAG_ID, DAY)

    assert dag_run.state == "success", task_states(dag_run)
    out = ingested.read_frame(predictions_path(ingested, spec, DAY))
    features = ingested.read_frame(features_path(ingested, spec, DAY))
    key = spec.entity.join_key
    assert len(out) == len(features) > 0
    assert sorted(out[key]) == sorted(features[key])
    assert set(out["model_name"]) == {"credit_risk"}
    assert set(out["model_version"]) == {champion.version}
    assert set(out["airflow_run_id"]) == {dag_run.run_id}
    assert out["score"].between(0, 1).all()
    assert set(spec.model.features) <= set(out.columns)
    with create_session() as session:
        event = (
            session.query(AssetEvent)
            .join(AssetModel, AssetEvent.asset_id == AssetModel.id)
            .filter(AssetModel.name == "credit_risk.predictions")
            .order_by(AssetEvent.id.desc())
            .first()
        )
        assert event is not None
        assert event.extra == {
            "day": DAY.isoformat(),
            "model_version": champion.version,
            "model_policy": "champion_at_day",
            "rows": len(out),
        }


def test_mapped_parts_are_published_together(ingested, spec, tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """With scoring.partitions = 3 the DAG maps three scoring tasks and commits them as one partition."""

    use_spec_variant(monkeypatch, tmp_path, scoring={"chunk_rows": 100, "partitions": 3})
    champion = register_champion(spec, labelled_frame(ingested, spec, DAYS[:5]))

    dag_run = run_dag(DAG_ID, DAY)

    states = task_states(dag_run)
    assert dag_run.state == "success", states
    assert states["score_partition"] == "success,success,success"
    out = ingested.read_frame(predictions_path(ingested, spec, DAY))
    assert len(out) == len(ingested.read_frame(features_path(ingested, spec, DAY)))
    assert out[spec.entity.join_key].is_unique
    assert set(out["model_version"]) == {champion.version}
    assert ingested.glob(ingested.path("staging", "credit_risk", "predictions", "date=*", "*.parquet")) == []


def test_the_parts_param_overrides_the_spec(ingested, spec) -> None:  # type: ignore[no-untyped-def]
    """A manual trigger's Parts parameter splits the day into that many mapped tasks."""
    from pathlib import Path

    from airflow.dag_processing.dagbag import DagBag

    register_champion(spec, labelled_frame(ingested, spec, DAYS[:5]))
    dags = Path(__file__).resolve().parents[2] / "dags"
    dag = DagBag(dag_folder=str(dags / "batch_scoring.py")).dags[DAG_ID]

    dag_run = dag.test(run_conf={"day": DAY.isoformat(), "partitions": 2})

    states = task_states(dag_run)
    assert dag_run.state == "success", states
    assert states["score_partition"] == "success,success"
    out = ingested.read_frame(predictions_path(ingested, spec, DAY))
    assert len(out) == len(ingested.read_frame(features_path(ingested, spec, DAY)))
    assert out[spec.entity.join_key].is_unique


def test_a_backfilled_day_uses_the_champion_of_that_day_unless_told_otherwise(ingested, spec) -> None:  # type: ignore[no-untyped-def]
    """Data time: v1 served DAY (from DAY-3 on), v2 was promoted later (serves from DAY+1) and is the
    champion now. Scoring DAY again (a backfill) uses v1 by default, v2 with model_policy=current;
    the choice is in the predictions' model.json."""
    import json
    from pathlib import Path

    from airflow.dag_processing.dagbag import DagBag

    from mlloop.champion import promote
    from mlloop.registry import mlflow_client
    from mlloop.scoring import model_choice_path

    frame = labelled_frame(ingested, spec, DAYS[:5])
    first = register_champion(spec, frame, alias=None)
    second = register_champion(spec, frame, alias=None, seed=1)
    client = mlflow_client()
    promote(client, spec, first.version, expected_champion=None, serves_from=DAY - dt.timedelta(days=3))
    promote(client, spec, second.version, expected_champion=first.version, serves_from=DAY + dt.timedelta(days=1))

    dag = DagBag(dag_folder=str(Path(__file__).resolve().parents[2] / "dags" / "batch_scoring.py")).dags[DAG_ID]
    for conf, expected in (({}, first.version), ({"model_policy": "current"}, second.version)):
        dag_run = dag.test(run_conf={"day": DAY.isoformat(), **conf})
        assert dag_run.state == "success", task_states(dag_run)
        out = ingested.read_frame(predictions_path(ingested, spec, DAY))
        assert set(out["model_version"]) == {expected}, conf
        choice = json.loads(ingested.read_bytes(model_choice_path(ingested, spec, DAY)))
        assert choice["model_version"] == expected
        assert choice["model_policy"] == conf.get("model_policy", "champion_at_day")
