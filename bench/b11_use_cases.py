"""B11: many use cases: 50 generated use cases (300 DAGs), parsed and scheduled.

Use cases are copies of ``credit_risk`` under other names (``bench.b1_parse``'s spec folder).
Measured, as B1 measures it (Airflow's ``DagBag`` in a fresh interpreter that has imported Airflow):

* the whole ``dags/`` folder's parse time at each count (1, 10, 50): the DAG processor's work for
  one pass over the folder; target: linear per use case (the cost of one more use case at 50 no
  more than 1.5x the cost of one more at 10);
* each DAG file's parse time at the largest count; target: the slowest within 1 s;
* with ``asset_latency`` (default and full sizes): the embedded Airflow on the largest count's
  folder, the time the DAG processor takes until every DAG is visible through the API, then the
  time from a ``credit_risk.features`` Asset event (posted through the REST API) to the training
  run it schedules starting (both timestamps from Airflow's database), twice, median reported.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.b1_parse import EMPTY_DAG, _parse, _spec_folder
from bench.common import ROOT, Result, scratch_home

STAGES_PER_USE_CASE = 6
FEATURES_ASSET = "credit_risk.features"
TRAINING_DAG = "credit_risk__training"


def _seconds(start: str, end: str) -> float:
    import datetime as dt

    return (dt.datetime.fromisoformat(end) - dt.datetime.fromisoformat(start)).total_seconds()


def measure_asset_latency(spec_folder: Path, dag_count: int, events: int = 2) -> dict[str, Any]:
    """Boot Airflow on ``spec_folder``; time until all DAGs are listed; then Asset event -> run start."""
    from mlloop_cli.airflow_local import LocalAirflow, free_port

    with scratch_home("use-cases") as home:
        airflow = LocalAirflow(home, port=free_port(), extra_env={"MLLOOP_USE_CASES_DIR": str(spec_folder)})
        try:
            t0 = time.perf_counter()
            airflow.start(timeout=600)
            boot = time.perf_counter() - t0
            api = airflow.client()
            api.wait_until("every DAG parsed", lambda: len(api.dag_ids()) >= dag_count, timeout=1200, poll=2)
            all_listed = time.perf_counter() - t0
            api.set_paused(TRAINING_DAG, False)
            asset_id = api.asset_id(FEATURES_ASSET)
            latencies = []
            for _ in range(events):
                before = {r["dag_run_id"] for r in api.runs(TRAINING_DAG)}
                event = api.create_asset_event(asset_id)
                started: dict[str, Any] = {}

                def run_started(before: set[str] = before, started: dict[str, Any] = started) -> bool:
                    new = [r for r in api.runs(TRAINING_DAG) if r["dag_run_id"] not in before]
                    if new and new[0].get("start_date"):
                        started.update(new[0])
                        return True
                    return False

                api.wait_until("the Asset-triggered training run", run_started, timeout=600, poll=0.5)
                latencies.append(_seconds(event["timestamp"], started["start_date"]))
                run_id = started["dag_run_id"]
                api.wait_until(
                    "the training run's end",
                    lambda run_id=run_id: api.run(TRAINING_DAG, run_id)["state"] in ("success", "failed"),
                    timeout=600,
                    poll=2,
                )
            return {"boot_seconds": boot, "all_listed_seconds": all_listed, "latencies": latencies}
        finally:
            airflow.stop()


def run(size: str, counts: list[int], asset_latency: bool = False) -> list[Result]:
    repeats = 1
    base_env = {"AIRFLOW__CORE__LOAD_EXAMPLES": "False", "AIRFLOW__CORE__PLUGINS_FOLDER": str(ROOT / "plugins")}
    results: list[Result] = []
    with tempfile.TemporaryDirectory(prefix="mlloop-bench-use-cases-") as tmp_name:
        tmp = Path(tmp_name)
        empty = tmp / "empty_dag.py"
        empty.write_text(EMPTY_DAG)
        empty_wall, _, _ = _parse(empty, base_env, repeats)
        folder_seconds: dict[int, float] = {}
        folders: dict[int, Path] = {}
        for count in counts:
            folders[count] = _spec_folder(tmp, count)
            env = {**base_env, "MLLOOP_USE_CASES_DIR": str(folders[count])}
            folder_seconds[count], _, dags = _parse(ROOT / "dags", env, repeats)
            results.append(
                Result(
                    "B11",
                    f"parse, whole dags/ folder, {count} use case(s) ({dags} DAGs)",
                    size,
                    folder_seconds[count],
                    empty_wall,
                    "s",
                    folder_seconds[count] / empty_wall,
                    "report",
                    None,
                    notes=f"{folder_seconds[count] / count:.3f} s per use case",
                )
            )
        top = max(counts)
        env = {**base_env, "MLLOOP_USE_CASES_DIR": str(folders[top])}
        per_file = {f.name: _parse(f, env, repeats)[0] for f in sorted((ROOT / "dags").glob("*.py"))}
        worst = max(per_file, key=lambda name: per_file[name])
        results.append(
            Result(
                "B11",
                f"parse, slowest DAG file ({worst}), {top} use cases",
                size,
                per_file[worst],
                empty_wall,
                "s",
                per_file[worst] / empty_wall,
                "<= 1 s",
                per_file[worst] <= 1.0,
                notes="all files: " + ", ".join(f"{k} {v:.2f}" for k, v in per_file.items()),
            )
        )
        ordered = sorted(counts)
        if len(ordered) >= 3:
            low, mid, high = ordered[0], ordered[-2], ordered[-1]
            early = (folder_seconds[mid] - folder_seconds[low]) / (mid - low)
            late = (folder_seconds[high] - folder_seconds[mid]) / (high - mid)
            results.append(
                Result(
                    "B11",
                    f"parse cost of one more use case, {mid} -> {high} vs {low} -> {mid}",
                    size,
                    late,
                    early,
                    "s",
                    late / early,
                    "linear (<= 1.5x)",
                    late / early <= 1.5,
                )
            )
        if asset_latency:
            out = measure_asset_latency(folders[top], top * STAGES_PER_USE_CASE)
            median = statistics.median(out["latencies"])
            results.append(
                Result(
                    "B11",
                    f"features Asset event -> training run started, {top} use cases",
                    size,
                    median,
                    float(out["all_listed_seconds"]),
                    "s",
                    median / out["all_listed_seconds"],
                    "report",
                    None,
                    notes=(
                        f"each event: {', '.join(f'{x:.1f}' for x in out['latencies'])} s; limit column: the DAG "
                        f"processor's time from Airflow's start to all {top * STAGES_PER_USE_CASE} DAGs listed "
                        f"(boot to healthy {out['boot_seconds']:.0f} s)"
                    ),
                    extra=out,
                )
            )
        else:
            print(f"[bench] B11 Asset latency skipped at size {size!r}: it boots Airflow on every use case")
    return results
