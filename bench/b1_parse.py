"""B1: DAG parse time through Airflow's own parser, vs an empty DAG that imports only airflow.sdk.

Each file is parsed by ``DagBag`` in a fresh interpreter that has already imported Airflow (as the
DAG processor's parsing processes have), so the number is what the file itself costs: its imports,
reading the specs, building the DAGs. Repeated, median taken. Measured with 1 and with N use-case
specs (copies of the bundled one under other names).
"""

from __future__ import annotations

import json
import os
import statistics
import tempfile
from pathlib import Path

import yaml

from bench.common import ROOT, Result, run_python

EMPTY_DAG = """
import pendulum
from airflow.sdk import DAG

with DAG("empty_dag", schedule=None, start_date=pendulum.datetime(2025, 1, 1, tz="UTC")):
    pass
"""

PARSE = """
import json, time
from contextlib import nullcontext
import airflow.sdk  # noqa: F401  (the parsing process has Airflow loaded already)
from airflow.dag_processing.dagbag import DagBag
if {profile!r}:  # only then: the timed parse imports nothing the DAG processor would not have
    from bench.common import profiled
path = {path!r}
started = time.perf_counter()
with profiled({profile!r}) if {profile!r} else nullcontext():
    bag = DagBag(dag_folder=path)
wall = time.perf_counter() - started
assert not bag.import_errors, bag.import_errors
stats = {{str(s.file): s.duration.total_seconds() for s in bag.dagbag_stats}}
print(json.dumps({{"wall": wall, "files": stats, "dags": len(bag.dags)}}))
"""


def _spec_folder(tmp: Path, copies: int) -> Path:
    """The bundled specs plus ``copies - 1`` renamed copies of credit_risk."""
    folder = tmp / f"use_cases_{copies}"
    folder.mkdir()
    source = ROOT / "include" / "use_cases" / "credit_risk.yaml"
    for i in range(copies):
        name = "credit_risk" if i == 0 else f"credit_risk_{i}"
        data = yaml.safe_load(source.read_text())
        data["name"] = name
        (folder / f"{name}.yaml").write_text(yaml.safe_dump(data))
    return folder


def _parse(path: Path, env: dict[str, str], repeats: int, profile: str = "") -> tuple[float, dict[str, float], int]:
    runs = [run_python(PARSE.format(path=str(path), profile=profile), env=env) for _ in range(repeats)]
    wall = statistics.median(r["wall"] for r in runs)
    files = {f: statistics.median(r["files"][f] for r in runs) for f in runs[0]["files"]}
    return wall, files, runs[0]["dags"]


def run(size: str, spec_counts: list[int], repeats: int = 3) -> list[Result]:
    repeats = 1 if size == "smoke" else repeats
    results: list[Result] = []
    base_env = {"AIRFLOW__CORE__LOAD_EXAMPLES": "False", "AIRFLOW__CORE__PLUGINS_FOLDER": str(ROOT / "plugins")}
    with tempfile.TemporaryDirectory(prefix="mlloop-bench-parse-") as tmp_name:
        tmp = Path(tmp_name)
        empty = tmp / "empty_dag.py"
        empty.write_text(EMPTY_DAG)
        empty_wall, _, _ = _parse(empty, base_env, repeats)
        per_file_by_count: dict[int, dict[str, float]] = {}
        folder_by_count: dict[int, float] = {}
        for count in spec_counts:
            env = {**base_env, "MLLOOP_USE_CASES_DIR": str(_spec_folder(tmp, count))}
            per_file: dict[str, float] = {}
            for dag_file in sorted((ROOT / "dags").glob("*.py")):
                per_file[dag_file.name], _, _ = _parse(dag_file, env, repeats)
            per_file_by_count[count] = per_file
            folder_by_count[count], _, dags = _parse(ROOT / "dags", env, repeats)
            worst = max(per_file, key=lambda name: per_file[name])
            if os.environ.get("MLLOOP_BENCH_PROFILE_DIR") and count == max(spec_counts):
                _parse(ROOT / "dags" / worst, env, 1, profile=f"B1-parse-{Path(worst).stem}-{count}-use-cases")
            results.append(
                Result(
                    "B1",
                    f"parse, slowest DAG file ({worst}), {count} use case(s)",
                    size,
                    per_file[worst],
                    empty_wall,
                    "s",
                    per_file[worst] / empty_wall,
                    "<= empty DAG + 0.2 s",
                    per_file[worst] <= empty_wall + 0.2,
                    notes=f"empty DAG {empty_wall:.3f} s; all files: "
                    + ", ".join(f"{k} {v:.3f}" for k, v in per_file.items()),
                )
            )
            results.append(
                Result(
                    "B1",
                    f"parse, whole dags/ folder ({dags} DAGs), {count} use case(s)",
                    size,
                    folder_by_count[count],
                    empty_wall,
                    "s",
                    folder_by_count[count] / empty_wall,
                    "report",
                    None,
                )
            )
        if len(spec_counts) > 1:
            low, high = min(spec_counts), max(spec_counts)
            growth = (folder_by_count[high] - folder_by_count[low]) / (high - low)
            results.append(
                Result(
                    "B1",
                    f"parse growth per extra use case (whole folder, {low} -> {high})",
                    size,
                    growth,
                    folder_by_count[low],
                    "s",
                    growth / folder_by_count[low],
                    "small and linear",
                    None,
                    notes=json.dumps({k: round(v, 3) for k, v in folder_by_count.items()}),
                )
            )
    return results
