"""Which day a run processes: the Day param, else the data interval, else a clear refusal."""

from __future__ import annotations

import datetime as dt

import pendulum
import pytest
from airflow.sdk.exceptions import AirflowFailException

from mlloop_airflow.intervals import resolve_day


def test_explicit_day_wins() -> None:
    context = {"data_interval_start": pendulum.datetime(2026, 1, 1, tz="UTC")}
    assert resolve_day(context, "2026-02-03") == dt.date(2026, 2, 3)  # type: ignore[arg-type]


@pytest.mark.parametrize("empty", [None, "", "None"])
def test_data_interval_is_used_when_no_day_is_given(empty) -> None:  # type: ignore[no-untyped-def]
    context = {"data_interval_start": pendulum.datetime(2026, 1, 1, 23, tz="America/New_York")}
    assert resolve_day(context, empty) == dt.date(2026, 1, 2)  # type: ignore[arg-type]  # UTC day


def test_malformed_day_is_refused() -> None:
    with pytest.raises(AirflowFailException, match="'day' must be a date like 2026-11-25, got '2026-13-01'"):
        resolve_day({}, "2026-13-01")  # type: ignore[arg-type]


def test_manual_run_without_day_says_what_to_do() -> None:
    with pytest.raises(AirflowFailException, match="set the 'day' parameter in the trigger form"):
        resolve_day({"data_interval_start": None}, None)  # type: ignore[arg-type]
