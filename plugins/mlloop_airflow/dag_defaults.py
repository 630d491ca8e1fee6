"""Defaults every mlloop DAG shares: ownership, retries, the ``day`` Param, tags.

Read at DAG-parse time, so only cheap things live here (no pandas, no ML libraries).
"""

from __future__ import annotations

import datetime as dt
import os
from typing import TYPE_CHECKING, Any

from airflow.sdk import Param

if TYPE_CHECKING:
    from mlloop.spec import UseCaseSpec

DAY_PATTERN = r"^\d{4}-\d{2}-\d{2}$"


def default_args(spec: UseCaseSpec) -> dict[str, Any]:
    """Owner from the spec; transient faults retry with exponential backoff, data faults do not
    (operators raise ``AirflowFailException`` for those)."""
    return {
        "owner": spec.owner,
        "retries": int(os.environ.get("MLLOOP_TASK_RETRIES", "2")),
        "retry_delay": dt.timedelta(seconds=float(os.environ.get("MLLOOP_RETRY_DELAY_SECONDS", "30"))),
        "retry_exponential_backoff": 2.0,
        "max_retry_delay": dt.timedelta(minutes=10),
    }


def sensor_poke_seconds() -> float:
    return float(os.environ.get("MLLOOP_SENSOR_POKE_SECONDS", "60"))


def day_param() -> Param:
    return Param(
        None,
        type=["null", "string"],
        pattern=DAY_PATTERN,
        format="date",
        title="Day",
        description=(
            "Day to process (YYYY-MM-DD, UTC). Leave empty for scheduled and backfill runs; "
            "a manual trigger has no data interval in Airflow 3, so set it there."
        ),
    )


def tags(spec: UseCaseSpec, stage: str) -> list[str]:
    return [f"use_case:{spec.name}", f"stage:{stage}", "mlloop"]


def start_date(spec: UseCaseSpec) -> dt.datetime:
    return dt.datetime.combine(spec.schedule.start_date, dt.time(), tzinfo=dt.UTC)
