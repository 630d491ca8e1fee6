"""Batch scoring throughput and peak memory at N and 10N rows per day.

    python -m bench.batch_scoring                      # spec defaults: 1x and 10x the generator's rows/day
    python -m bench.batch_scoring --rows 20000 200000 --chunk-rows 5000 --history-days 3
    python -m bench.batch_scoring --fetcher synthetic  # features computed from the key: no Feast

Each size gets its own MLLOOP_HOME with feature partitions from the use case's generator (no
validation), the Feast registry, and a model of the spec's estimator registered as champion. The
measurement runs in a fresh subprocess, after imports, Feast store and model loading: the wall time
of the steps the scoring tasks call (:func:`mlloop.steps.scoring.score_part` + ``commit``; median
of ``--repeats`` runs, as rows/s), the peak
RSS while scoring (sampled every 5 ms) above the RSS before it, Arrow's memory-pool peak, and in a
second pass the tracemalloc peak (Python and numpy allocations). Results are appended to
``bench/results/batch_scoring.json``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DAY = dt.date(2026, 11, 10)


def prepare(home: Path, use_case: str, rows: int, history_days: int) -> None:
    """Features of ``history_days`` days ending at DAY, the Feast registry, a registered champion."""
    os.environ["MLLOOP_HOME"] = str(home)
    from bench.data import register_champion
    from mlloop.feature_store import apply_registry
    from mlloop.features import build_features
    from mlloop.ingestion import features_path
    from mlloop.landing import date_range, generate
    from mlloop.settings import get_settings
    from mlloop.spec import get_spec
    from mlloop.storage import Storage

    spec = get_spec(use_case)
    storage = Storage.from_url(get_settings().storage_root)
    days = date_range(DAY - dt.timedelta(days=history_days - 1), DAY)
    customers = max(5000, 2 * rows)
    first = None
    for day in days:
        batch = generate(spec, day, rows_per_day=rows, n_customers=customers, bad_row_share=0.0)
        features = build_features(batch.observations, spec)
        storage.write_frame(features, features_path(storage, spec, day))
        first = features if first is None else first
    apply_registry()
    assert first is not None
    register_champion(spec, train=first.head(20_000), positives=0.1, seed=0)


def measure(home: Path, use_case: str, chunk_rows: int | None, fetcher: str, repeats: int) -> dict[str, Any]:
    """Runs in a fresh interpreter: everything is loaded first, then only scoring is measured."""
    os.environ["MLLOOP_HOME"] = str(home)
    import gc
    import tracemalloc

    import numpy as np
    import psutil
    import pyarrow as pa

    from mlloop.scoring import FeatureFetcher
    from mlloop.services import Services
    from mlloop.spec import get_spec
    from mlloop.steps import scoring

    spec = get_spec(use_case)
    services = Services()
    pinned = scoring.pin_champion(services, spec, lambda: DAY, "current", "score the bench")
    loaded = scoring.load_pinned(services, spec, pinned)
    fetch: FeatureFetcher | None = None  # the step's own: Feast, the version's feature service
    if fetcher == "feast":
        services.feature_store  # noqa: B018  opening the store is not what is measured
    else:
        import pandas as pd

        def synthetic(entities: pd.DataFrame) -> pd.DataFrame:
            out = entities.copy()
            k = out[spec.entity.join_key].to_numpy()
            for i, name in enumerate(spec.model.numeric_features):
                out[name] = ((k * (i + 7)) % 97).astype("float64")
            for name in spec.model.categorical_features:
                options = np.asarray(spec.features.columns[name].allowed or ["a"], dtype=object)
                out[name] = options[k % len(options)]
            return out

        fetch = synthetic

    def run() -> int:
        """The two steps the DAG's score_partition and commit_predictions tasks call."""
        part = scoring.score_part(services, spec, DAY, loaded, "bench", chunk_rows=chunk_rows, fetch_features=fetch)
        return scoring.commit(services, spec, DAY, pinned, [part], "bench", chunk_rows=chunk_rows)[0].rows

    run()  # warm-up: first-call imports and caches inside Feast, DuckDB, sklearn
    gc.collect()
    process = psutil.Process()
    baseline = process.memory_info().rss
    peak = [baseline]
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], process.memory_info().rss)
            time.sleep(0.005)

    sampler = threading.Thread(target=sample, daemon=True)
    pool_before = pa.default_memory_pool().max_memory()
    sampler.start()
    durations = []
    for _ in range(repeats):
        started = time.perf_counter()
        rows = run()
        durations.append(time.perf_counter() - started)
    done.set()
    sampler.join()
    pool_peak = pa.default_memory_pool().max_memory()

    gc.collect()
    tracemalloc.start()
    run()
    traced_peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    seconds = statistics.median(durations)
    return {
        "rows": rows,
        "repeats": repeats,
        "seconds_median": round(seconds, 3),
        "seconds_min": round(min(durations), 3),
        "rows_per_second": round(rows / seconds, 1),
        "rows_per_second_best": round(rows / min(durations), 1),
        "rss_before_mb": round(baseline / 1e6, 1),
        "rss_peak_mb": round(peak[0] / 1e6, 1),
        "rss_growth_mb": round((peak[0] - baseline) / 1e6, 1),
        "arrow_pool_peak_mb": round(max(pool_peak, pool_before) / 1e6, 1),
        "tracemalloc_peak_mb": round(traced_peak / 1e6, 2),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--use-case", default="credit_risk")
    parser.add_argument("--rows", type=int, nargs="+", help="rows per day; default: 1x and 10x the generator's")
    parser.add_argument("--chunk-rows", type=int, default=None, help="default: the spec's scoring.chunk_rows")
    parser.add_argument("--history-days", type=int, default=8, help="feature days Feast's point-in-time join sees")
    parser.add_argument("--fetcher", choices=["feast", "synthetic"], default="feast")
    parser.add_argument("--repeats", type=int, default=5, help="timed runs per size; the median is reported")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "batch_scoring.json")
    # internal: the two subprocess sides
    parser.add_argument("--prepare", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--measure", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.prepare:
        prepare(args.prepare, args.use_case, args.rows[0], args.history_days)
        return
    if args.measure:
        print(json.dumps(measure(args.measure, args.use_case, args.chunk_rows, args.fetcher, args.repeats)))
        return

    from mlloop.spec import get_spec

    spec = get_spec(args.use_case)
    base = int((spec.generator.params if spec.generator else {}).get("rows_per_day", 1000))
    sizes = args.rows or [base, 10 * base]
    chunk = args.chunk_rows or spec.scoring.chunk_rows
    results = []
    for rows in sizes:
        with tempfile.TemporaryDirectory(prefix="mlloop-bench-") as tmp:
            common = [sys.executable, "-m", "bench.batch_scoring", "--use-case", args.use_case]
            prepare_cmd = [*common, "--prepare", tmp, "--rows", str(rows), "--history-days", str(args.history_days)]
            subprocess.run(prepare_cmd, check=True, capture_output=True, cwd=ROOT)
            measure_cmd = [*common, "--fetcher", args.fetcher, "--repeats", str(args.repeats), "--measure", tmp]
            if args.chunk_rows:
                measure_cmd += ["--chunk-rows", str(args.chunk_rows)]
            proc = subprocess.run(measure_cmd, check=True, capture_output=True, text=True, cwd=ROOT)
            result = json.loads(proc.stdout.strip().splitlines()[-1])
        result.update(rows_per_day=rows, chunk_rows=chunk, history_days=args.history_days, fetcher=args.fetcher)
        results.append(result)
        print(
            f"{rows:>9,} rows/day  chunk {chunk:>7,}  {result['rows_per_second']:>10,.0f} rows/s "
            f"(best {result['rows_per_second_best']:,.0f})  "
            f"RSS {result['rss_before_mb']:.0f} -> {result['rss_peak_mb']:.0f} MB (+{result['rss_growth_mb']:.0f})  "
            f"arrow pool {result['arrow_pool_peak_mb']:.0f} MB  tracemalloc {result['tracemalloc_peak_mb']:.1f} MB",
            flush=True,
        )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    existing = json.loads(args.out.read_text()) if args.out.exists() else []
    args.out.write_text(json.dumps([*existing, *results], indent=2))
    print(f"results appended to {args.out}")


if __name__ == "__main__":
    main()
