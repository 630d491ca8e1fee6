"""Connection arguments for the embedded Airflow's SQLite metadata DB.

``mlloop_cli.airflow_local`` points ``[database] sql_alchemy_connect_args`` here. Python's sqlite3
gives up on a locked database after 5 s; on a busy machine the scheduler, the DAG processor and the
API server can hold the write lock longer than that, and the API then answers 503/500. For a
backfill that is worse than an error: Airflow 3.3 deletes the runs it had created while the
scheduler may already be scheduling them, and the scheduler dies (``ObjectDeletedError``). Waiting
longer for the lock avoids both. Any other database gets no extra arguments.

The scheduler could still see those runs at all because of how Python's ``sqlite3`` (before 3.12's
``autocommit``) handles transactions: it sends ``BEGIN`` only before an INSERT, UPDATE or DELETE,
so a SQLAlchemy savepoint (``session.begin_nested()``) taken before any write *starts* the
transaction and its ``RELEASE`` *commits* it. Airflow creates each backfill run in such a block:
every run was committed on its own, the scheduler started scheduling the first ones, a lock error
on a later one made Airflow delete them again, and the scheduler died (bench B8 and ``mlloop demo``
lost ~24 s to its restart). :func:`begin_before_savepoints` sends ``BEGIN IMMEDIATE`` before a
savepoint taken outside a transaction, so the block is part of the session's transaction and
nothing is visible before its commit, as on Postgres; ``IMMEDIATE`` takes the write lock up front
(waiting up to the busy timeout), so the reads in the block cannot go stale before its writes.
Registered when this module is imported, i.e. in every Airflow process that opens the SQLite DB.
"""

from __future__ import annotations

import sqlite3
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

SQLITE_BUSY_TIMEOUT_SECONDS = 60.0


def _sqlite_url() -> str | None:
    from airflow.configuration import conf

    url = str(conf.get("database", "sql_alchemy_conn", fallback="") or "")
    return url if url.startswith("sqlite") else None


def connect_args() -> dict[str, Any]:
    return {"timeout": SQLITE_BUSY_TIMEOUT_SECONDS} if _sqlite_url() else {}


_databases: set[str] = set()
"""The SQLite files whose savepoints get a ``BEGIN IMMEDIATE`` (Airflow's own; MLflow's embedded
SQLite store, in the same task processes, is left as it is)."""


def begin_before_savepoints(url: str) -> None:
    """Open a real transaction before a savepoint taken outside one on the SQLite DB at ``url``
    (see the module)."""
    from sqlalchemy import event
    from sqlalchemy.engine import Engine, make_url

    _databases.add(str(make_url(url).database))
    if not event.contains(Engine, "savepoint", _begin_immediate):
        event.listen(Engine, "savepoint", _begin_immediate)


def _begin_immediate(conn: Connection, name: str | None) -> None:
    if str(conn.engine.url.database) not in _databases:
        return
    dbapi = conn.connection.dbapi_connection
    if isinstance(dbapi, sqlite3.Connection) and not dbapi.in_transaction:
        dbapi.execute("BEGIN IMMEDIATE")


CONNECT_ARGS = connect_args()
if (_url := _sqlite_url()) is not None:
    begin_before_savepoints(_url)
