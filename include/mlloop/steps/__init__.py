"""The step layer: one function per task's unit of work, called alike by operators, bench and tests.

A step takes typed inputs, the use case's spec, one :class:`mlloop.services.Services` and, where it
records who acted, a :class:`RunInfo`; it returns a typed result. It owns the sequence of core
calls a task makes, so nothing else re-implements it. It never imports Airflow: a data or input
fault is a :class:`StepFailed` (the task fails without retries, the message says what to do), a
decision not to act is a :class:`StepSkipped` (the task is skipped, green); an outage is the
library's own error, which ``mlloop_airflow.operators.base`` explains and retries.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from mlloop.spec import UseCaseSpec


class StepLog(Protocol):
    """Where a step writes what it did: a :class:`logging.Logger`, or the task's own log in Airflow."""

    def info(self, msg: str, /, *args: Any) -> Any: ...
    def warning(self, msg: str, /, *args: Any) -> Any: ...
    def error(self, msg: str, /, *args: Any) -> Any: ...


LOG: StepLog = logging.getLogger("mlloop.steps")
# How far ahead a requested day may lie (a schema cannot know today's date; the first task checks).
MAX_DAYS_AHEAD = 366


class StepFailed(Exception):
    """Bad input or data: retrying cannot help. The message is the whole story, on one line."""


class StepSkipped(Exception):
    """A decision not to act (not a failure): the task is skipped and the run stays green."""


@dataclass(frozen=True)
class RunInfo:
    """Which run takes a step: recorded in tags and lineage (empty outside a scheduler)."""

    dag_id: str = ""
    run_id: str = ""
    data_interval_start: str | None = None
    data_interval_end: str | None = None


def is_set(value: Any) -> bool:
    """A templated value that says something (rendering turns None into text)."""
    return value not in (None, "", "None", "null")


def parse_day(value: Any, what: str) -> dt.date:
    try:
        return dt.date.fromisoformat(str(value))
    except ValueError:
        raise StepFailed(f"'{what}' must be a date like 2026-11-25, got {value!r}") from None


def parse_version(value: Any, what: str) -> str:
    try:
        number = int(str(value))
    except ValueError:
        raise StepFailed(f"'{what}' must be a model version number, got {value!r}") from None
    if number < 1:
        raise StepFailed(f"'{what}' must be a model version number >= 1, got {value!r}")
    return str(number)


def as_mapping(value: Any, what: str) -> dict[str, Any]:
    """A dict from a templated value: a dict with native rendering, else its rendered text."""
    import ast

    if isinstance(value, dict):
        return value
    try:
        parsed = ast.literal_eval(str(value))
    except (ValueError, SyntaxError):
        parsed = None
    if not isinstance(parsed, dict):
        raise StepFailed(f"'{what}' must be a mapping, got {str(value)[:200]!r}")
    return parsed


def check_day_in_range(spec: UseCaseSpec, day: dt.date, name: str = "day") -> dt.date:
    """Refuse a requested day before the use case's start date or more than a year ahead.

    The trigger form's pattern bounds the year only; this is the exact check, in the first task,
    before any work (and before a far-future day overflows date arithmetic somewhere downstream).
    """
    first = spec.schedule.start_date
    last = dt.datetime.now(dt.UTC).date() + dt.timedelta(days=MAX_DAYS_AHEAD)
    if not first <= day <= last:
        raise StepFailed(
            f"'{name}' {day} is outside {first} (the use case's schedule.start_date) .. {last} (a year "
            "ahead): trigger again with a day in that range. Nothing was done."
        )
    return day
