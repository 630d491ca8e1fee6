"""B10: a year of history: ``airflow backfill create`` of ingestion and scoring for one use case.

The embedded Airflow (scheduler, DAG processor, API server; LocalExecutor on SQLite, as ``make demo``
runs it) on a scratch MLLOOP_HOME backfills ``credit_risk`` at the generator's 1,000 rows a day:
first ``small`` days (ingestion, then scoring of the same days), then the following ``large`` days.
Only the two DAGs are unpaused, and a champion is registered up front, so what is timed is the
history's own ingestion and scoring through the scheduler (no training or promotion runs).

Reported: the wall time of each backfill and its seconds per DAG run; the growth of the median DAG
run duration (start to end, from Airflow's database) from the small to the large backfill (the
second runs on top of the first's history: a database or a scheduler slowing down with history
shows as growth; linear is the target); the RSS of the scheduler and API server processes after
the first backfill and after the last (flat is the target; the RSS at boot is in the notes). The
limit of each row is the small backfill itself (seconds per run, RSS after it):
B10 asks whether Airflow slows down with history, not what a DAG run costs (B8 measures that).
"""

from __future__ import annotations

import datetime as dt
import statistics
import time
from typing import Any

from bench.common import Result, scratch_home

USE_CASE = "credit_risk"
STAGES = ("feature_ingestion", "batch_scoring")
SENSOR_POKE_SECONDS = "30"  # as the demo (B8) runs it


def _rss_mb(pid: int | None) -> float | None:
    if not pid:
        return None
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def component_rss(airflow: Any) -> dict[str, float | None]:
    """RSS of the scheduler and API server processes (their own, not their task children)."""
    components = airflow.components()
    return {name: _rss_mb((components.get(name) or {}).get("pid")) for name in ("scheduler", "api-server")}


def _seconds(start: str, end: str) -> float:
    return (dt.datetime.fromisoformat(end) - dt.datetime.fromisoformat(start)).total_seconds()


def _median(values: list[float]) -> float | None:
    return round(statistics.median(values), 2) if values else None


def run_breakdown(api: Any, dag_id: str, runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Where one DAG's runs of a phase spent their time, as medians over the runs: the run (start ->
    end), its wait for a first task to start, its tasks' own work (sensors apart), the gaps between
    one task's end and the next one's start (:func:`bench.b8_loop.idle_gaps`), and each task's
    duration; also the run duration over the phase's first and last 30 days (by logical date). A
    step between the two backfills with no trend inside the long one is the long queue's cost or
    the host's, not history's (bench/profiles/B10-history.md)."""
    from bench.b8_loop import RAN_STATES, duration, idle_gaps, is_sensor

    per_run: dict[str, list[float]] = {"run": [], "first_task_wait": [], "work": [], "sensors": [], "gaps": []}
    by_task: dict[str, list[float]] = {}
    ordered = sorted((r for r in runs if r.get("end_date")), key=lambda r: str(r.get("logical_date")))
    for run in ordered:
        tis = api.task_instances(dag_id, run["dag_run_id"])
        ran = [ti for ti in tis if ti.get("state") in RAN_STATES and ti.get("start_date") and ti.get("end_date")]
        if not ran:
            continue
        sensors = [ti for ti in ran if is_sensor(ti)]
        work = [ti for ti in ran if not is_sensor(ti)]
        per_run["run"].append(_seconds(run["start_date"], run["end_date"]))
        per_run["first_task_wait"].append(_seconds(run["start_date"], min(str(ti["start_date"]) for ti in ran)))
        per_run["work"].append(sum(duration(ti) for ti in work))
        per_run["sensors"].append(sum(duration(ti) for ti in sensors))
        per_run["gaps"].append(sum(idle_gaps(ran)))
        for ti in work:
            by_task.setdefault(str(ti["task_id"]), []).append(duration(ti))
    runs_s = per_run["run"]
    return {
        "runs": len(runs_s),
        **{f"median_{k}": _median(v) for k, v in per_run.items()},
        "median_run_first_30": _median(runs_s[:30]),
        "median_run_last_30": _median(runs_s[-30:]),
        "median_by_task": {task: _median(v) for task, v in sorted(by_task.items())},
    }


def _describe(small: dict[str, Any], large: dict[str, Any]) -> str:
    """Per DAG, small -> large: median run, work, gaps, and the long backfill's first vs last 30 days."""
    parts = []
    for dag_id, s in small.items():
        lg = large.get(dag_id, {})
        stage = dag_id.split("__", 1)[-1]
        pairs = ", ".join(
            f"{k} {s.get(f'median_{k}')} -> {lg.get(f'median_{k}')}"
            for k in ("run", "work", "sensors", "gaps", "first_task_wait")
        )
        trend = f"{lg.get('median_run_first_30')} -> {lg.get('median_run_last_30')}"
        parts.append(f"{stage}: {pairs} s; long backfill first -> last 30 days {trend} s")
    return "median per run, " + "; ".join(parts)


def _register_champion(env: dict[str, str]) -> None:
    from bench.common import run_python

    code = (
        "import json\nfrom bench.data import register_champion\nfrom mlloop.spec import get_spec\n"
        f"print(json.dumps({{'version': register_champion(get_spec({USE_CASE!r}))}}))\n"
    )
    run_python(code, env=env)


def measure(small: int, large: int) -> dict[str, Any]:
    from mlloop_cli.airflow_local import LocalAirflow, free_port
    from mlloop_cli.demo import Loop

    today = dt.datetime.now(dt.UTC).date()
    days = [today - dt.timedelta(days=n) for n in range(small + large, 0, -1)]
    phases = {"small": days[:small], "large": days[small:]}
    with scratch_home("backfill") as home:
        airflow = LocalAirflow(home, port=free_port(), extra_env={"MLLOOP_SENSOR_POKE_SECONDS": SENSOR_POKE_SECONDS})
        loop = Loop(airflow, USE_CASE, today)
        loop.prefix = "B10: "
        try:
            t0 = time.perf_counter()
            loop.land(days)
            loop.feast_apply()
            _register_champion(airflow.env())
            setup = time.perf_counter() - t0
            t0 = time.perf_counter()
            airflow.start()
            loop.client = airflow.client()
            dag_ids = [loop.dag_id(stage) for stage in STAGES]
            loop.api.wait_for_dags(dag_ids)
            for dag_id in dag_ids:
                loop.api.set_paused(dag_id, False)
            boot = time.perf_counter() - t0
            memory_start = component_rss(airflow)
            out: dict[str, Any] = {"setup_seconds": setup, "boot_seconds": boot, "memory_start": memory_start}
            for phase, phase_days in phases.items():
                t0 = time.perf_counter()
                runs = 0
                durations: list[float] = []
                done_by_dag = {}
                for stage in STAGES:
                    done = loop.backfill(stage, phase_days, timeout=600 + 60 * len(phase_days))
                    runs += len(done)
                    durations += [_seconds(r["start_date"], r["end_date"]) for r in done if r.get("end_date")]
                    done_by_dag[loop.dag_id(stage)] = done
                wall = time.perf_counter() - t0
                out[f"memory_after_{phase}"] = component_rss(airflow)
                # Read after the phase's clock stopped and its memory was read: these REST calls are
                # part of neither.
                breakdown = {dag_id: run_breakdown(loop.api, dag_id, done) for dag_id, done in done_by_dag.items()}
                out[phase] = {
                    "days": len(phase_days),
                    "runs": runs,
                    "seconds": wall,
                    "per_run": wall / runs,
                    "run_duration": statistics.median(durations),
                    "by_dag": breakdown,
                }
                print(f"[bench]   B10 {phase}: {len(phase_days)} days, {runs} runs, {wall:.0f} s", flush=True)
                for dag_id, numbers in breakdown.items():
                    print(f"[bench]   B10 {phase} {dag_id}: {numbers}", flush=True)
            return out
        finally:
            airflow.stop()


def run(size: str, backfill_days: list[int]) -> list[Result]:
    small, large = backfill_days
    out = measure(small, large)
    s, lg = out["small"], out["large"]
    growth = lg["run_duration"] / s["run_duration"]
    # The baseline is the RSS after the first backfill: before it, the API server and scheduler
    # have not yet imported what serving a backfill needs (a one-off, not growth with history).
    boot, start, end = out["memory_start"], out["memory_after_small"], out["memory_after_large"]
    memory = {name: (end[name] / start[name]) if start[name] and end[name] else None for name in start}
    flat = all(r is not None and r <= 1.2 for r in memory.values())
    year_hours = 365 * len(STAGES) * lg["per_run"] / 3600
    results = [
        Result(
            "B10",
            f"backfill of {n['days']} days, ingestion + scoring ({n['runs']} DAG runs, 1,000 rows/day)",
            size,
            n["per_run"],
            s["per_run"],
            "s/run",
            n["per_run"] / s["per_run"],
            "report",
            None,
            notes=f"wall {n['seconds']:.0f} s; median DAG run (start -> end) {n['run_duration']:.1f} s",
            extra=n,
        )
        for n in (s, lg)
    ]
    results.append(
        Result(
            "B10",
            f"backfill growth, median DAG run duration, {s['days']} -> {s['days'] + lg['days']} days of history",
            size,
            lg["run_duration"],
            s["run_duration"],
            "s/run",
            growth,
            "linear (per run <= 1.2x)",
            growth <= 1.2,
            notes=(
                f"wall per run {s['per_run']:.1f} -> {lg['per_run']:.1f} s; a year (365 days x 2 DAGs) at "
                f"{lg['per_run']:.1f} s per run: {year_hours:.1f} h; "
                f"Airflow boot {out['boot_seconds']:.0f} s not counted; " + _describe(s["by_dag"], lg["by_dag"])
            ),
        )
    )
    results.append(
        Result(
            "B10",
            "scheduler and API server RSS, after the last backfill vs after the first",
            size,
            sum(v or 0.0 for v in end.values()),
            sum(v or 0.0 for v in start.values()),
            "MB",
            sum(v or 0.0 for v in end.values()) / max(sum(v or 0.0 for v in start.values()), 1.0),
            "flat (each <= 1.2x)",
            flat,
            notes="; ".join(f"{name} {start[name] or 0:.0f} -> {end[name] or 0:.0f} MB" for name in start)
            + "; start = after the first backfill (at boot: "
            + ", ".join(f"{k} {v or 0:.0f} MB" for k, v in boot.items())
            + ")",
            extra=out,
        )
    )
    return results
