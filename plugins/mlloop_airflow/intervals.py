"""Which day a run works on.

Scheduled and backfill runs have a data interval; manual runs (UI, CLI, REST) in Airflow 3 have no
logical date, so every per-interval DAG takes a ``day`` Param that wins when set.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from airflow.sdk.exceptions import AirflowFailException

from mlloop import steps

if TYPE_CHECKING:
    from airflow.sdk import Context

    from mlloop.spec import UseCaseSpec

MAX_DAYS_AHEAD = steps.MAX_DAYS_AHEAD


def resolve_day(context: Context, day: str | None) -> dt.date:
    """The explicit ``day`` if given, else the start of the run's data interval (UTC)."""
    if day not in (None, "", "None"):
        try:
            return dt.date.fromisoformat(str(day))
        except ValueError:
            raise AirflowFailException(f"'day' must be a date like 2026-11-25, got {day!r}") from None
    start: Any = context.get("data_interval_start")
    if start is None:
        raise AirflowFailException(
            "this run has no data interval (a manual trigger without a logical date): "
            "set the 'day' parameter in the trigger form to the day to process"
        )
    if start.tzinfo is not None:
        start = start.astimezone(dt.UTC)
    return dt.date(start.year, start.month, start.day)


def check_day_in_range(spec: UseCaseSpec, day: dt.date, name: str = "day") -> dt.date:
    """:func:`mlloop.steps.check_day_in_range` (the rule), failing the task without retries."""
    try:
        return steps.check_day_in_range(spec, day, name)
    except steps.StepFailed as exc:
        raise AirflowFailException(str(exc)) from None
