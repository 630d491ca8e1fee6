"""Rerunning an interval through Airflow (dag.test) gives the same outputs and no duplicate rows.

Two runs of the same day are separate DAG runs, seconds apart: any wall-clock value written into an
output, any append instead of a replace, any unstable ordering shows up as a difference here.
Ingestion outputs must be byte-identical; predictions row-identical except the declared audit
columns (``mlloop.scoring.AUDIT_COLUMNS``: the Airflow run id).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from loop_fixtures import SMALL, labelled_frame, register_champion, run_dag, task_states
from mlloop.ingestion import features_path
from mlloop.landing import date_range, land_days
from mlloop.scoring import AUDIT_COLUMNS, predictions_path

pytestmark = pytest.mark.integration

DAYS = date_range(dt.date(2026, 11, 1), dt.date(2026, 11, 5))
DAY = DAYS[-1]


def snapshot(root: Path, *areas: str) -> dict[str, str]:
    """sha256 of every file under ``areas`` of the storage root (temporaries included: none may stay)."""
    files = sorted(p for area in areas for p in (root / area).rglob("*") if p.is_file())
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in files}


def online_rows(home: Path) -> list[tuple[Any, ...]]:
    """Every (view, entity, feature, value, event time) of the SQLite online store."""
    with sqlite3.connect(home / "feast" / "online_store.db") as db:
        tables = [r[0] for r in db.execute("select name from sqlite_master where type = 'table'")]
        return sorted(
            (table, *row)
            for table in tables
            for row in db.execute(f'select entity_key, feature_name, value, event_ts from "{table}"')
        )


def test_rerunning_ingestion_gives_byte_identical_outputs(
    airflow_db, mlloop_home, storage, spec, feast_registry
) -> None:  # type: ignore[no-untyped-def]
    land_days(storage, spec, [DAY], **SMALL, bad_row_share=0.05)  # quarantine, labels and features all written
    root = Path(storage.url)

    first = run_dag(spec.dag_id("feature_ingestion"), DAY)
    assert first.state == "success", task_states(first)
    outputs = snapshot(root, "staging", "quarantine", "features")
    online = online_rows(mlloop_home)
    second = run_dag(spec.dag_id("feature_ingestion"), DAY)
    assert second.state == "success", task_states(second)

    assert {Path(p).parts[0] for p in outputs} == {"staging", "quarantine", "features"}
    assert snapshot(root, "staging", "quarantine", "features") == outputs
    assert online_rows(mlloop_home) == online  # one row per entity and feature, not two
    features = storage.read_frame(features_path(storage, spec, DAY))
    assert features[spec.entity.join_key].is_unique


def test_rerunning_scoring_gives_the_same_rows_except_the_audit_column(  # type: ignore[no-untyped-def]
    airflow_db, mlloop_home, storage, spec, feast_registry
) -> None:
    from loop_fixtures import write_clean_features

    write_clean_features(storage, spec, DAYS, **SMALL)
    register_champion(spec, labelled_frame(storage, spec, DAYS[:3]))

    first = run_dag(spec.dag_id("batch_scoring"), DAY)
    assert first.state == "success", task_states(first)
    before = storage.read_frame(predictions_path(storage, spec, DAY))
    second = run_dag(spec.dag_id("batch_scoring"), DAY)
    assert second.state == "success", task_states(second)
    after = storage.read_frame(predictions_path(storage, spec, DAY))

    assert AUDIT_COLUMNS == ("airflow_run_id",)
    assert set(before["airflow_run_id"]) == {first.run_id} and set(after["airflow_run_id"]) == {second.run_id}
    key, ts = spec.entity.join_key, spec.raw.timestamp_column
    assert after[key].is_unique and len(after) == len(storage.read_frame(features_path(storage, spec, DAY)))

    def normalize(frame: Any) -> Any:
        return frame.drop(columns=list(AUDIT_COLUMNS)).sort_values([ts, key]).reset_index(drop=True)

    assert normalize(after).equals(normalize(before))
    # One partition, replaced: the predictions, the drift check's sample of them and the note of which
    # model scored them (model.json); no leftover temporaries.
    assert sorted(p.name for p in Path(predictions_path(storage, spec, DAY)).parent.iterdir()) == [
        "data.parquet",
        "drift_sample.parquet",
        "model.json",
    ]
