"""The embedded Airflow waits for SQLite's write lock instead of failing after 5 s; other DBs are untouched."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path
from typing import Any

import pytest

from mlloop_airflow.local_db import SQLITE_BUSY_TIMEOUT_SECONDS, connect_args


def test_sqlite_waits_for_the_lock(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", "sqlite:////tmp/airflow.db")
    assert connect_args() == {"timeout": SQLITE_BUSY_TIMEOUT_SECONDS}


def test_other_databases_get_no_sqlite_arguments(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", "postgresql+psycopg2://airflow@localhost/airflow")
    assert connect_args() == {}


def _airflow_like_db(path: Path) -> Any:
    """An engine on a WAL-mode SQLite file, as Airflow opens its metadata DB, with the listeners on."""
    from sqlalchemy import create_engine

    from mlloop_airflow.local_db import savepoints_take_the_write_lock

    url = f"sqlite:///{path}"
    savepoints_take_the_write_lock(url)
    engine = create_engine(url, connect_args={"timeout": 10})
    with engine.begin() as conn:
        conn.exec_driver_sql("PRAGMA journal_mode=wal")
        conn.exec_driver_sql("CREATE TABLE IF NOT EXISTS dag_run (run_id TEXT)")
    return engine


def test_a_savepoint_that_read_before_another_process_wrote_can_still_write(tmp_path: Path) -> None:
    """A backfill creates each run in a savepoint that reads (is there a run for this date?) and then
    writes. If the scheduler commits in between, the plain savepoint's read snapshot is stale and
    its write fails at once with "database is locked", whatever the busy timeout; Airflow then
    deletes the runs it had created and the scheduler, already scheduling them, dies. Here the
    savepoint holds the write lock from its start: the scheduler's write waits instead, and both
    land."""
    from sqlalchemy import text
    from sqlalchemy.orm import Session

    engine = _airflow_like_db(tmp_path / "airflow.db")
    scheduler_wrote = threading.Event()

    def scheduler_writes() -> None:
        con = sqlite3.connect(tmp_path / "airflow.db", timeout=10)
        with con:
            con.execute("INSERT INTO dag_run VALUES ('scheduled__1')")
        con.close()
        scheduler_wrote.set()

    with Session(engine) as session:
        with session.begin_nested():
            session.execute(text("SELECT count(*) FROM dag_run")).scalar()  # the snapshot is taken
            writer = threading.Thread(target=scheduler_writes)
            writer.start()
            scheduler_wrote.wait(timeout=1)  # it does not land while the savepoint is open
            session.execute(text("INSERT INTO dag_run VALUES ('backfill__1')"))
        writer.join(timeout=15)
        session.commit()
    observer = sqlite3.connect(tmp_path / "airflow.db")
    assert sorted(r[0] for r in observer.execute("SELECT run_id FROM dag_run")) == ["backfill__1", "scheduled__1"]


def test_a_released_savepoint_is_committed_as_before(tmp_path: Path) -> None:
    """Each backfill run is committed when its savepoint is released, as Python's sqlite3 did: the
    listeners change when the lock is taken, not what is visible when."""
    from sqlalchemy import text
    from sqlalchemy.orm import Session

    engine = _airflow_like_db(tmp_path / "airflow.db")
    observer = sqlite3.connect(tmp_path / "airflow.db")
    with Session(engine) as session:
        for run_id in ("backfill__1", "backfill__2"):
            with session.begin_nested():
                session.execute(text("INSERT INTO dag_run VALUES (:r)"), {"r": run_id})
            # released: another process sees it, and can write (the lock is not held on)
            assert run_id in [r[0] for r in observer.execute("SELECT run_id FROM dag_run")]
            with observer:
                observer.execute("INSERT INTO dag_run VALUES (:r)", {"r": "scheduled_after_" + run_id})
        session.commit()
    assert len(list(observer.execute("SELECT run_id FROM dag_run"))) == 4


def test_other_sqlite_files_keep_their_transactions(tmp_path: Path) -> None:
    """Only Airflow's DB is changed: MLflow's embedded SQLite store runs in the same task processes."""
    from sqlalchemy import create_engine, text

    _airflow_like_db(tmp_path / "airflow.db")
    engine = create_engine(f"sqlite:///{tmp_path / 'mlflow.db'}")
    with engine.connect() as conn:
        conn.exec_driver_sql("CREATE TABLE t (x INTEGER)")
        conn.commit()
        with conn.begin_nested():
            # no write lock is taken before the savepoint's first write: another writer gets in
            other = sqlite3.connect(tmp_path / "mlflow.db", timeout=0)
            with other:
                other.execute("INSERT INTO t VALUES (2)")
            conn.execute(text("INSERT INTO t VALUES (1)"))
