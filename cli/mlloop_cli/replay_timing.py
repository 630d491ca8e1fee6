"""Where a replay's time goes: per stage and per replayed day, from the driver's clock and Airflow's runs.

A user replaying a year wants to know what a day costs and what to tune, so the replay ends with a
breakdown that separates the three kinds of time a day spends:

- **driver wait**: wall-clock seconds the driver spent waiting on a phase of its chunks (ingestion's
  backfill, the training and promotion the chunk's due day started, scoring's backfill, the drift
  check and the retrain it triggered). Their sum plus setup (Feast, Airflow's boot) is the replay.
- **task time**: the task instances' own durations (the work, including each task process's start).
- **scheduler time**: the rest of a run's life: queued before it starts (``queued_at`` to
  ``start_date``) and the gaps inside it when none of its tasks runs (the scheduler's loop, the
  executor picking a task up, a sensor's reschedule).

Pure functions over the REST API's run and task-instance dicts, so they are tested without Airflow.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from typing import Any

PHASES = ("ingestion", "training+promotion", "scoring", "drift", "drift retrain")
STAGE_PHASE = {
    "feature_ingestion": "ingestion",
    "training": "training+promotion",
    "promotion": "training+promotion",
    "batch_scoring": "scoring",
    "drift_monitoring": "drift",
}
PER_DAY = ("feature_ingestion", "batch_scoring", "drift_monitoring")
"""The DAGs with one run per data day (the others are started by Assets or by the drift check)."""


def _time(value: str | None) -> dt.datetime | None:
    return dt.datetime.fromisoformat(value) if value else None


def _seconds(start: str | None, end: str | None) -> float:
    first, last = _time(start), _time(end)
    return max(0.0, (last - first).total_seconds()) if first and last else 0.0


def covered_seconds(intervals: list[tuple[dt.datetime, dt.datetime]]) -> float:
    """Seconds covered by the union of ``intervals`` (parallel tasks are not counted twice)."""
    total, reach = 0.0, None
    for start, end in sorted(intervals):
        if reach is None or start > reach:
            total += (end - start).total_seconds()
            reach = end
        elif end > reach:
            total += (end - reach).total_seconds()
            reach = end
    return total


def run_times(run: dict[str, Any], tasks: list[dict[str, Any]]) -> dict[str, float]:
    """One run's seconds: ``run`` (start to end), ``queued`` (before it started), ``tasks`` (the sum of
    its task instances' durations) and ``gaps`` (time inside the run when none of its tasks ran)."""
    spans = [
        (start, end)
        for ti in tasks
        if (start := _time(ti.get("start_date"))) and (end := _time(ti.get("end_date"))) and end >= start
    ]
    run_seconds = _seconds(run.get("start_date"), run.get("end_date"))
    return {
        "run": run_seconds,
        "queued": _seconds(run.get("queued_at"), run.get("start_date")),
        "tasks": sum((end - start).total_seconds() for start, end in spans),
        "gaps": max(0.0, run_seconds - covered_seconds(spans)),
    }


def breakdown(
    runs: dict[str, list[dict[str, Any]]],
    tasks: dict[str, dict[str, list[dict[str, Any]]]],
    waits: list[dict[str, Any]],
    total_seconds: float,
    days: int,
) -> dict[str, Any]:
    """The replay's time breakdown (the ``timings`` of ``--result``).

    ``runs`` maps a stage (``feature_ingestion``, ...) to its runs; ``tasks`` maps a stage and a run id
    to that run's task instances; ``waits`` holds one dict per chunk (``chunk``, ``days`` and the
    seconds the driver waited on each of :data:`PHASES`)."""
    stages: dict[str, dict[str, float]] = {}
    per_day: dict[str, dict[str, float]] = defaultdict(dict)
    for stage, stage_runs in runs.items():
        sums = {"runs": 0.0, "run": 0.0, "queued": 0.0, "tasks": 0.0, "gaps": 0.0}
        for run in stage_runs:
            times = run_times(run, tasks.get(stage, {}).get(run["dag_run_id"], []))
            sums["runs"] += 1
            for key in ("run", "queued", "tasks", "gaps"):
                sums[key] += times[key]
            day = (run.get("logical_date") or "")[:10]
            if day and stage in PER_DAY:
                per_day[day][stage] = round(times["run"], 1)
        stages[stage] = {key: round(value, 1) for key, value in sums.items()}
    driver = {phase: round(sum(w.get(phase, 0.0) for w in waits), 1) for phase in PHASES}
    setup = max(0.0, total_seconds - sum(driver.values()))
    return {
        "total_seconds": round(total_seconds, 1),
        "days": days,
        "seconds_per_day": round(total_seconds / days, 1) if days else None,
        "loop_seconds_per_day": round(sum(driver.values()) / days, 1) if days else None,
        "setup_seconds": round(setup, 1),
        "driver_wait": driver,
        "stages": stages,
        "chunks": waits,
        "per_day": dict(sorted(per_day.items())),
    }


def describe(timings: dict[str, Any]) -> list[str]:
    """The breakdown as the summary's lines: per stage, then per chunk (per-day seconds: ``--result``)."""
    lines = [
        f"Time: {timings['total_seconds']:.0f} s for {timings['days']} day(s), {timings['seconds_per_day']} s per "
        f"replayed day ({timings['loop_seconds_per_day']} s without setup: Feast, Airflow's boot, "
        f"{timings['setup_seconds']:.0f} s)",
        "  driver waited (s): " + ", ".join(f"{phase} {secs:.0f}" for phase, secs in timings["driver_wait"].items()),
        f"  {'DAG':<18} {'runs':>5} {'run s':>8} {'task s':>8} {'queued s':>9} {'gaps s':>8}",
    ]
    for stage, sums in timings["stages"].items():
        lines.append(
            f"  {stage:<18} {sums['runs']:>5.0f} {sums['run']:>8.0f} {sums['tasks']:>8.0f} "
            f"{sums['queued']:>9.0f} {sums['gaps']:>8.0f}"
        )
    lines.append("  per chunk (driver wait, s):")
    for chunk in timings["chunks"]:
        spent = sum(chunk.get(phase, 0.0) for phase in PHASES)
        parts = ", ".join(f"{phase} {chunk[phase]:.0f}" for phase in PHASES if chunk.get(phase))
        lines.append(
            f"    {chunk['chunk']} ({chunk['days']} d): {parts}; {spent:.0f} s, {spent / chunk['days']:.0f} s/day"
        )
    return lines
