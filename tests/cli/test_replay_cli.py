"""The demo and replay commands, before any Airflow starts: errors say their cause, the replay's
chunks and drift days follow the data's calendar."""

from __future__ import annotations

import datetime as dt
import json
import sys

import pytest

from mlloop_cli import demo, replay
from mlloop_cli.rest import xcom_value


def test_the_demo_of_a_use_case_without_generator_says_why_and_what_to_run(mlloop_home, capsys) -> None:  # type: ignore[no-untyped-def]
    assert demo.main(["--use-case", "hourly_temps"]) == 2
    err = capsys.readouterr().err
    assert "no generator" in err and "mlloop replay --use-case hourly_temps" in err
    assert "still up" not in err
    assert not (mlloop_home / "airflow").exists(), "nothing was started or wiped"


def test_a_failing_helper_process_shows_its_own_error() -> None:
    with pytest.raises(RuntimeError, match=r"landing failed \(exit code 1\):\n.*the spec has no 'generator'"):
        demo.run_checked(
            [sys.executable, "-c", "raise SystemExit(\"hourly_temps: the spec has no 'generator' section\")"],
            {},
            "landing",
        )


def test_the_replay_without_landed_data_names_where_it_looked(mlloop_home, capsys) -> None:  # type: ignore[no-untyped-def]
    assert replay.main(["--use-case", "hourly_temps", "--from", "2010-01-01", "--to", "2010-01-31"]) == 1
    err = capsys.readouterr().err
    assert "nothing is landed for hourly_temps in 2010-01-01 .. 2010-01-31" in err
    assert "landing/hourly_temps/observations" in err
    assert "still up" not in err


def test_chunks_end_at_each_drift_check_and_hold_at_most_one_due_day() -> None:
    days = [dt.date(2010, 1, 1) + dt.timedelta(days=n) for n in range(31)]
    sundays = set(replay.schedule_days("@weekly", days[0], days[-1]))
    assert sorted(sundays) == [dt.date(2010, 1, d) for d in (3, 10, 17, 24, 31)]
    parts = replay.chunks(days, sundays, 5)
    assert [p[-1] for p in parts if p[-1] in sundays] == sorted(sundays)
    assert max(len(p) for p in parts) <= 5 and [d for p in parts for d in p] == days
    assert replay.schedule_days("@daily", days[0], days[2]) == days[:3]


def _run(run_id: str, day: str, queued: str, start: str, end: str) -> dict:
    return {
        "dag_run_id": run_id,
        "logical_date": f"{day}T00:00:00Z",
        "queued_at": queued,
        "start_date": start,
        "end_date": end,
    }


def _ti(start: str, end: str) -> dict:
    return {"start_date": start, "end_date": end}


def test_the_time_breakdown_separates_task_time_from_the_schedulers_time() -> None:
    """What a user replaying a year reads to know where a day goes: a run queued 5 s, then 2 tasks
    of 10 s with 4 s between them (the scheduler's gap), a third in parallel with the second (its
    time counts as task time, not as covered time twice)."""
    from mlloop_cli.replay_timing import breakdown, describe

    t = "2026-11-30T10:00:{:02d}+00:00".format
    runs = {"feature_ingestion": [_run("r1", "2010-01-01", t(0), t(5), t(30))]}
    tasks = {"feature_ingestion": {"r1": [_ti(t(6), t(16)), _ti(t(20), t(30)), _ti(t(22), t(28))]}}
    waits = [{"chunk": "2010-01-01..2010-01-01", "days": 1, "ingestion": 40.0}]
    timings = breakdown(runs, tasks, waits, total_seconds=100.0, days=1)
    ingestion = timings["stages"]["feature_ingestion"]
    assert ingestion == {"runs": 1, "run": 25.0, "queued": 5.0, "tasks": 26.0, "gaps": 5.0}
    assert timings["driver_wait"]["ingestion"] == 40.0 and timings["setup_seconds"] == 60.0
    assert timings["seconds_per_day"] == 100.0 and timings["loop_seconds_per_day"] == 40.0
    assert timings["per_day"] == {"2010-01-01": {"feature_ingestion": 25.0}}
    text = "\n".join(describe(timings))
    assert "100.0 s per replayed day" in text and "2010-01-01..2010-01-01 (1 d): ingestion 40" in text


def _xcom_entry(value: object) -> object:
    """A ``GET`` XCom entry answer parsed by Airflow's client, as ``AirflowClient.xcom`` receives it."""
    from airflow_client.client.models.response_get_xcom_entry import ResponseGetXcomEntry

    at = "2011-02-06T00:00:00Z"
    body = {"dag_id": "hourly_temps__drift_monitoring", "dag_display_name": "hourly_temps__drift_monitoring"}
    body |= {"task_id": "decide_retrain", "task_display_name": "decide_retrain", "key": "decision", "map_index": -1}
    body |= {"run_id": "backfill__2011-02-06", "run_after": at, "logical_date": at, "timestamp": at, "value": value}
    return ResponseGetXcomEntry.from_json(json.dumps(body))


@pytest.mark.parametrize("as_stored", [dict, json.dumps], ids=["json value", "json text"])
def test_the_summary_shows_why_a_drift_check_retrained(as_stored) -> None:  # type: ignore[no-untyped-def]
    """Issue 13: a drift check that triggered a retraining read "None" as its decision (the API's
    XCom answer is wrapped in a one-of model, and its value was read from the wrapper)."""
    reason = "drift detected and no retrain is pending or cooling down: triggering training"
    decision = {"trigger": True, "reason": reason}
    value = xcom_value(_xcom_entry(as_stored(decision)))
    check = {"verdict": "DRIFT: 3/5 features drifted", "drift": True, "decision": replay.decision_text(value)}
    result = {"trainings": [], "champion": "2", "rows_scored": 48, "days_scored": 2}
    result["drift_checks"] = {"2011-02-06": {**check, "retrained": True}}
    lines = replay.summary_lines(result, [], "predictions/")
    line = next(line for line in lines if line.startswith("  2011-02-06"))
    assert line == f"  2011-02-06: DRIFT: 3/5 features drifted; {reason} -> RETRAINED (cutoff 2011-02-06)"
    assert replay.decision_text(None) == "no decision recorded"
