"""Which day a run works on.

Scheduled and backfill runs have a data interval; manual runs (UI, CLI, REST) in Airflow 3 have no
logical date, so every per-interval DAG takes a ``day`` Param that wins when set.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from airflow.sdk.exceptions import AirflowFailException

if TYPE_CHECKING:
    from airflow.sdk import Context

    from mlloop.spec import UseCaseSpec

# How far ahead a requested day may lie (a schema cannot know today's date; the first task checks).
MAX_DAYS_AHEAD = 366


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
    """Refuse a requested day before the use case's start date or more than a year ahead.

    The trigger form's pattern bounds the year only; this is the exact check, in the first task,
    before any work (and before a far-future day overflows date arithmetic somewhere downstream).
    """
    first = spec.schedule.start_date
    last = dt.datetime.now(dt.UTC).date() + dt.timedelta(days=MAX_DAYS_AHEAD)
    if not first <= day <= last:
        raise AirflowFailException(
            f"'{name}' {day} is outside {first} (the use case's schedule.start_date) .. {last} (a year "
            "ahead): trigger again with a day in that range. Nothing was done."
        )
    return day
