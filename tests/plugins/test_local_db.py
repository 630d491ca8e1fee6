"""The embedded Airflow waits for SQLite's write lock instead of failing after 5 s; other DBs are untouched."""

from __future__ import annotations

import pytest

from mlloop_airflow.local_db import SQLITE_BUSY_TIMEOUT_SECONDS, connect_args


def test_sqlite_waits_for_the_lock(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", "sqlite:////tmp/airflow.db")
    assert connect_args() == {"timeout": SQLITE_BUSY_TIMEOUT_SECONDS}


def test_other_databases_get_no_sqlite_arguments(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", "postgresql+psycopg2://airflow@localhost/airflow")
    assert connect_args() == {}
