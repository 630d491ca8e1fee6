"""Run the benchmark suite: ``python -m bench [--size smoke|default|full] [--only B1 ...]``."""

from __future__ import annotations

import argparse
import importlib
import os
import shutil
import sys
import time
import traceback
from pathlib import Path

from bench.common import ROOT, SIZES, Result, write_results

BENCHES = {
    "B1": ("bench.b1_parse", lambda s: {"spec_counts": s["parse_specs"]}),
    "B2": ("bench.b2_b3_scoring", lambda s: {"rows": s["scoring_rows"]}),
    "B2S": ("bench.b2_shadow", lambda s: {"rows": s["scoring_rows"][-1:]}),
    "B4": ("bench.b4_training_set", lambda s: {"label_sizes": s["pit_labels"]}),
    "B5": ("bench.b5_b6_online", lambda s: {"rows": s["online_rows"]}),
    "B7": ("bench.b7_drift", lambda s: {"rows": s["drift_rows"]}),
    "B8": ("bench.b8_loop", lambda s: {"loop_days": s["loop_days"]}),
    "B9": ("bench.b9_validation", lambda s: {"rows": s["validation_rows"]}),
    "B10": ("bench.b10_backfill", lambda s: {"backfill_days": s["backfill_days"]}),
    "B11": ("bench.b11_use_cases", lambda s: {"counts": s["use_case_counts"], "asset_latency": s["asset_latency"]}),
    "B12": ("bench.b12_health", lambda s: {"days": s["health_days"]}),
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size", choices=sorted(SIZES), default="default")
    parser.add_argument("--only", nargs="*", default=None, help="benchmark ids, e.g. B1 B4")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    parser.add_argument("--publish", action="store_true", help="also copy the table to bench/RESULTS.md")
    parser.add_argument(
        "--profile",
        action="store_true",
        help=(
            "profile 'ours' of B1, B2, B4, B5 and B7 with pyinstrument, and B8's Airflow with py-spy, into "
            "<out>/profiles/ (timings run slower)"
        ),
    )
    args = parser.parse_args(argv)
    if args.profile:
        os.environ["MLLOOP_BENCH_PROFILE_DIR"] = str((args.out / "profiles").resolve())
    started = time.perf_counter()
    results: list[Result] = []
    failures = []
    for bench_id, (module_name, kwargs_of) in BENCHES.items():
        if args.only and bench_id not in args.only:
            continue
        print(f"[bench] {bench_id} ({args.size}) ...", flush=True)
        t0 = time.perf_counter()
        try:
            module = importlib.import_module(module_name)
            got = module.run(args.size, **kwargs_of(SIZES[args.size]))
        except Exception:
            failures.append(bench_id)
            traceback.print_exc()
            continue
        for r in got:
            print(f"[bench]   {r.what}: ours {r.ours:.4g} {r.unit} vs {r.limit:.4g} -> {r.ratio:.2f} ({r.target})")
        print(f"[bench] {bench_id} took {time.perf_counter() - t0:.0f} s", flush=True)
        results.extend(got)
    table = write_results(results, args.size, args.out, started)
    print(table.read_text())
    if args.publish:
        shutil.copy(table, ROOT / "bench" / "RESULTS.md")
    if failures:
        print(f"[bench] FAILED: {failures}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
