"""The embedded Airflow's SQLite metadata DB: a longer busy timeout, and savepoints that take the lock.

``mlloop_cli.airflow_local`` points ``[database] sql_alchemy_connect_args`` at :data:`CONNECT_ARGS`,
so Airflow imports this module in each of its processes before it opens the DB. Any other
database gets no extra arguments and no listeners.

**Busy timeout.** Python's sqlite3 gives up on a locked database after 5 s; on a busy machine the
scheduler, the DAG processor and the API server can hold the write lock longer than that, and the
API then answers 503/500. Airflow's connections wait up to 60 s instead.

**Savepoints.** Airflow 3.3 creates each backfill run in ``session.begin_nested()``. Python's
sqlite3 (before 3.12's ``autocommit``) sends ``BEGIN`` only before an INSERT, UPDATE or DELETE, so a
savepoint taken before any write *starts* a deferred transaction and its ``RELEASE`` commits it.
That transaction reads first (is there a run for this date?) and writes after. In WAL mode a read
snapshot that another process wrote past cannot become a write: SQLite answers "database is
locked" at once, without waiting the busy timeout (``SQLITE_BUSY_SNAPSHOT``). Airflow then deletes
the runs of that backfill it had committed already, while the scheduler is scheduling them, and
the scheduler dies (``StaleDataError`` / ``ObjectDeletedError``; bench B8 and ``mlloop demo`` lost
24-40 s to each restart, in about one run in two). Here such a savepoint is preceded by
``BEGIN IMMEDIATE``, which waits for the write lock *before* the reads, and its ``RELEASE`` is
followed by ``COMMIT``: each run is still committed on its own, exactly when it was before, but it
can no longer fail half way on a stale snapshot. (Holding one transaction over all of a backfill's
runs, as on Postgres, was tried and reverted: a backfill request then waited out the whole busy
timeout and failed; see ``bench/profiles/B8-scheduling.md``.)
"""

from __future__ import annotations

import sqlite3
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

SQLITE_BUSY_TIMEOUT_SECONDS = 60.0
_OUTER_SAVEPOINT = "mlloop_outer_savepoint"
_databases: set[str] = set()
"""The SQLite files whose outermost savepoints take the write lock (Airflow's own; MLflow's embedded
SQLite store, used in the same task processes, is left as it is)."""


def _sqlite_url() -> str | None:
    from airflow.configuration import conf

    url = str(conf.get("database", "sql_alchemy_conn", fallback="") or "")
    return url if url.startswith("sqlite") else None


def connect_args() -> dict[str, Any]:
    return {"timeout": SQLITE_BUSY_TIMEOUT_SECONDS} if _sqlite_url() else {}


def savepoints_take_the_write_lock(url: str) -> None:
    """On the SQLite DB at ``url``, a savepoint taken outside a transaction begins one with the
    write lock and is committed when released (see the module)."""
    from sqlalchemy import event
    from sqlalchemy.engine import Engine, make_url

    _databases.add(str(make_url(url).database))
    for name, listener in (
        ("savepoint", _begin_immediate),
        ("after_cursor_execute", _commit_after_release),
        ("commit", _forget_savepoint),
        ("rollback", _forget_savepoint),
    ):
        if not event.contains(Engine, name, listener):
            event.listen(Engine, name, listener)


def _dbapi(conn: Connection) -> sqlite3.Connection | None:
    if str(conn.engine.url.database) not in _databases:
        return None
    dbapi = conn.connection.dbapi_connection
    return dbapi if isinstance(dbapi, sqlite3.Connection) else None


def _begin_immediate(conn: Connection, name: str | None) -> None:
    dbapi = _dbapi(conn)
    if dbapi is not None and not dbapi.in_transaction:
        dbapi.execute("BEGIN IMMEDIATE")
        # SQLAlchemy names the savepoint after this event: the name is read from its statement.
        conn.info[_OUTER_SAVEPOINT] = name or ""


def _commit_after_release(conn: Connection, cursor: Any, statement: str, *_: Any) -> None:
    name = conn.info.get(_OUTER_SAVEPOINT)
    if name == "" and statement.startswith("SAVEPOINT "):
        conn.info[_OUTER_SAVEPOINT] = statement.removeprefix("SAVEPOINT ")
    elif name and statement == f"RELEASE SAVEPOINT {name}":
        del conn.info[_OUTER_SAVEPOINT]
        dbapi = _dbapi(conn)
        if dbapi is not None:
            dbapi.commit()


def _forget_savepoint(conn: Connection) -> None:
    conn.info.pop(_OUTER_SAVEPOINT, None)


CONNECT_ARGS = connect_args()
"""The embedded Airflow waits for SQLite's write lock instead of failing after 5 s; other DBs are untouched."""
if (_url := _sqlite_url()) is not None:
    savepoints_take_the_write_lock(_url)
