"""Shared benchmark plumbing: results, subprocess measurements, the markdown table."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]

SIZES: dict[str, dict[str, Any]] = {
    # rows are per benchmark; "full" matches the sizes the targets are stated at
    # smoke: every benchmark end to end at its smallest; its cost is mostly fresh interpreters
    # importing Airflow or the ML stack (~20 of them), not rows
    "smoke": {
        "parse_specs": [1],  # B1: 8 interpreters; B11 below measures the growth with use cases
        "health_days": [10],  # B12: days of partitions in the storage root (the page shows 60)
        "scoring_rows": [2_000],  # one size: each costs a model fit + two interpreters (~40 s)
        "pit_labels": [2_000],
        "online_rows": 2_000,
        "drift_rows": [20_000, 80_000],
        "validation_rows": 20_000,
        "loop": False,
        "loop_days": None,  # B8 (the whole loop on Airflow, minutes) is skipped
        "backfill_days": [1, 1],  # B10: Airflow's boot and four DAG runs (~1 min)
        "use_case_counts": [1, 2, 3],  # B11: three counts, so its linearity row runs too; the Asset
        # latency boots Airflow on 3 use cases (~1 min): the REST calls it makes must not rot unseen
        "asset_latency": True,
    },
    "default": {
        "parse_specs": [1, 10],
        "health_days": [60, 365],  # B12: days of partitions in the storage root (the page shows 60)
        "scoring_rows": [100_000, 400_000],
        "pit_labels": [100_000],
        "online_rows": 20_000,
        "drift_rows": [250_000, 1_000_000],
        "validation_rows": 250_000,
        "loop": True,
        "loop_days": [8, 4],  # B8: the demo's phases (8 days, then 4 drift days)
        "backfill_days": [7, 30],  # B10: 7 days, then 30 more on top of them
        "use_case_counts": [1, 10, 50],  # B11
        "asset_latency": True,
    },
    "full": {
        "parse_specs": [1, 10],
        "health_days": [60, 365],  # B12: days of partitions in the storage root (the page shows 60)
        "scoring_rows": [1_000_000, 4_000_000],
        "pit_labels": [100_000, 1_000_000],
        "online_rows": 100_000,
        "drift_rows": [1_000_000, 4_000_000],
        "validation_rows": 1_000_000,
        "loop": True,
        "loop_days": [8, 4],
        "backfill_days": [30, 335],  # B10: 30 days, then the rest of a year on top of them
        "use_case_counts": [1, 10, 50],
        "asset_latency": True,
    },
}


@dataclass
class Result:
    """One comparison: ours vs the limit, the ratio, and whether the target holds."""

    bench: str
    what: str
    size: str
    ours: float
    limit: float
    unit: str
    ratio: float
    target: str
    met: bool | None
    notes: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


def machine() -> dict[str, Any]:
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "memory_gb": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
        "cpu": _cpu_model(),
    }


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


PEAK_KEY = "__child_peak_rss_mb"
_REPORT_PEAK = f"""
import json as _json, resource as _resource
print(_json.dumps({{{PEAK_KEY!r}: _resource.getrusage(_resource.RUSAGE_SELF).ru_maxrss / 1024}}))
"""


def run_python(code: str, env: dict[str, str] | None = None, timeout: float = 3600) -> dict[str, Any]:
    """Run ``code`` in a fresh interpreter; it must print one JSON object as its last line.

    The child's own peak RSS is added as ``peak_rss_mb`` (reported by the child at its end).
    ``RUSAGE_CHILDREN`` would not do: it is the largest of every child this process ever waited
    for, so a big setup child (or an earlier benchmark's) showed up as every later peak.
    """
    full_env = {**os.environ, **(env or {})}
    proc = subprocess.run(
        [sys.executable, "-c", code + _REPORT_PEAK],
        env=full_env,
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"benchmark child failed ({proc.returncode}):\n{proc.stderr[-6000:]}")
    *_, result, peak = [line for line in proc.stdout.strip().splitlines() if line.startswith("{")]
    out: dict[str, Any] = json.loads(result)
    out.setdefault("peak_rss_mb", round(json.loads(peak)[PEAK_KEY], 1))
    return out


def preload_like_a_task() -> None:
    """Import what a task process gets preloaded (``mlloop_airflow.preload``), so Feast's one-off
    lazy imports on a first query are not timed as if every task paid them."""
    import importlib

    from mlloop_airflow.preload import DEFAULT_MODULES

    for name in DEFAULT_MODULES.split(","):
        importlib.import_module(name)


def _rss_mb() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


class PeakRss:
    """Samples this process's RSS every 5 ms in a thread while a block runs.

    Unlike differences of ``ru_maxrss`` (a high-water mark for the process's whole life), the peak
    above ``before`` is the block's own: an earlier, larger transient does not hide it.
    """

    def __enter__(self) -> PeakRss:
        self.before = self.peak = _rss_mb()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.wait(0.005):
            self.peak = max(self.peak, _rss_mb())

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, _rss_mb())

    @property
    def growth_mb(self) -> float:
        return self.peak - self.before


@contextmanager
def profiled(name: str) -> Iterator[None]:
    """Profile the block with pyinstrument when ``MLLOOP_BENCH_PROFILE_DIR`` is set (``--profile``),
    writing ``<dir>/<name>.txt``: where "ours" spends its time, for the misses' explanations.
    A sampling profiler (1 ms): its timings run a little slower than the unprofiled ones."""
    folder = os.environ.get("MLLOOP_BENCH_PROFILE_DIR")
    if not folder:
        yield
        return
    from pyinstrument import Profiler

    profiler = Profiler(interval=0.001)
    profiler.start()
    try:
        yield
    finally:
        profiler.stop()
        out = Path(folder) / f"{name}.txt"
        out.parent.mkdir(parents=True, exist_ok=True)
        # Library frames included (where inside Feast, DuckDB, scikit-learn the time goes); frames
        # under 2% of the total are pruned.
        out.write_text(
            profiler.output_text(
                unicode=False,
                color=False,
                processor_options={"filter_threshold": 0.02, "show_regex": ".*"},
            )
        )


@contextmanager
def scratch_home(prefix: str) -> Iterator[Path]:
    """A private MLLOOP_HOME for one benchmark (storage, Feast, MLflow), removed afterwards."""
    with tempfile.TemporaryDirectory(prefix=f"mlloop-bench-{prefix}-") as tmp:
        yield Path(tmp)


def timed() -> float:
    return time.perf_counter()


def write_results(results: list[Result], size: str, out_dir: Path, started: float) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    payload = {
        "machine": machine(),
        "size": size,
        "wall_seconds": round(time.perf_counter() - started, 1),
        "results": [asdict(r) for r in results],
    }
    (out_dir / "latest.json").write_text(json.dumps(payload, indent=2))
    markdown = render_markdown(payload)
    (out_dir / "latest.md").write_text(markdown)
    return out_dir / "latest.md"


def render_markdown(payload: dict[str, Any]) -> str:
    m = payload["machine"]
    lines = [
        f"Machine: {m['cpu']}, {m['cpus']} cores, {m['memory_gb']} GB, Python {m['python']}; "
        f"size `{payload['size']}`; suite wall time {payload['wall_seconds']} s.",
        "",
        "| # | what | size | ours | limit | ratio | target | met | notes |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in payload["results"]:
        met = {True: "yes", False: "**no**", None: "report"}[r["met"]]
        lines.append(
            f"| {r['bench']} | {r['what']} | {r['size']} | {_fmt(r['ours'])} {r['unit']} | "
            f"{_fmt(r['limit'])} {r['unit']} | {r['ratio']:.2f} | {r['target']} | {met} | {r['notes']} |"
        )
    return "\n".join(lines) + "\n"


def _fmt(value: float) -> str:
    if value >= 100:
        return f"{value:,.0f}"
    if value >= 1:
        return f"{value:.2f}"
    return f"{value:.4f}"
