"""Connection arguments for the embedded Airflow's SQLite metadata DB.

``mlloop_cli.airflow_local`` points ``[database] sql_alchemy_connect_args`` here. Python's sqlite3
gives up on a locked database after 5 s; on a busy machine the scheduler, the DAG processor and the
API server can hold the write lock longer than that, and the API then answers 503/500. For a
backfill that is worse than an error: Airflow 3.3 deletes the runs it had created while the
scheduler may already be scheduling them, and the scheduler dies (``ObjectDeletedError``). Waiting
longer for the lock avoids both. Any other database gets no extra arguments.
"""

from __future__ import annotations

from typing import Any

SQLITE_BUSY_TIMEOUT_SECONDS = 60.0


def connect_args() -> dict[str, Any]:
    from airflow.configuration import conf

    url = str(conf.get("database", "sql_alchemy_conn", fallback="") or "")
    return {"timeout": SQLITE_BUSY_TIMEOUT_SECONDS} if url.startswith("sqlite") else {}


CONNECT_ARGS = connect_args()
