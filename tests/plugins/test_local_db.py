"""The embedded Airflow waits for SQLite's write lock instead of failing after 5 s; other DBs are untouched."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from mlloop_airflow.local_db import SQLITE_BUSY_TIMEOUT_SECONDS, connect_args


def test_sqlite_waits_for_the_lock(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", "sqlite:////tmp/airflow.db")
    assert connect_args() == {"timeout": SQLITE_BUSY_TIMEOUT_SECONDS}


def test_other_databases_get_no_sqlite_arguments(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", "postgresql+psycopg2://airflow@localhost/airflow")
    assert connect_args() == {}


def test_a_savepoint_outside_a_transaction_commits_only_with_the_session(tmp_path: Path) -> None:
    """Airflow creates each backfill run in ``session.begin_nested()``. On Python's sqlite3 the
    savepoint's RELEASE committed each run at once, so the scheduler scheduled runs that Airflow then
    deleted on a lock error, and died. Now nothing is visible to another connection before the commit,
    and a rollback takes the savepoints' rows with it."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.orm import Session

    from mlloop_airflow.local_db import begin_before_savepoints

    url = f"sqlite:///{tmp_path / 'airflow.db'}"
    begin_before_savepoints(url)
    engine = create_engine(url, connect_args={"timeout": 5})
    with engine.begin() as conn:
        conn.exec_driver_sql("PRAGMA journal_mode=wal")
        conn.exec_driver_sql("CREATE TABLE dag_run (run_id TEXT)")
    observer = sqlite3.connect(tmp_path / "airflow.db")

    def visible() -> list[str]:
        return [row[0] for row in observer.execute("SELECT run_id FROM dag_run ORDER BY run_id")]

    with Session(engine) as session:
        for run_id in ("backfill__1", "backfill__2"):
            with session.begin_nested():
                session.execute(text("INSERT INTO dag_run VALUES (:r)"), {"r": run_id})
        assert visible() == []  # the scheduler cannot see half a backfill
        session.rollback()
    assert visible() == []
    with Session(engine) as session:
        with session.begin_nested():
            session.execute(text("INSERT INTO dag_run VALUES ('backfill__3')"))
        session.commit()
    assert visible() == ["backfill__3"]


def test_other_sqlite_files_keep_their_transactions(tmp_path: Path) -> None:
    """Only Airflow's DB is changed: MLflow's embedded SQLite store runs in the same task processes."""
    from sqlalchemy import create_engine, text

    from mlloop_airflow.local_db import begin_before_savepoints

    begin_before_savepoints(f"sqlite:///{tmp_path / 'airflow.db'}")
    engine = create_engine(f"sqlite:///{tmp_path / 'mlflow.db'}")
    with engine.connect() as conn:
        conn.exec_driver_sql("CREATE TABLE t (x INTEGER)")
        with conn.begin_nested():
            conn.execute(text("INSERT INTO t VALUES (1)"))
        assert not conn.connection.dbapi_connection.in_transaction  # type: ignore[union-attr]
