"""Training time and peak memory at the use case's default size and at 10x.

    python -m bench.training                         # 1x and 10x the generator's rows/day, 10 label days
    python -m bench.training --rows 1000 10000 --days 10 --threads 1

Each size gets its own MLLOOP_HOME with feature and label partitions straight from the use case's
generator (ingestion is not what is measured), and the Feast registry. The measurement runs in a
fresh subprocess and times each step of a training run with the functions the DAG's tasks call
(:mod:`mlloop.steps.training`): the point-in-time training set from Feast written to staging, its
Great Expectations validation, and fit + holdout evaluation + logging and registering in MLflow
(SQLite + local artifacts) as one step, as the train task runs them. Peak RSS is sampled every 5 ms (absolute, and
above the RSS before the step). Results are appended to ``bench/results/training.json``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import PeakRss

ROOT = Path(__file__).resolve().parents[1]

FIRST_DAY = dt.date(2026, 10, 1)


def prepare(home: Path, use_case: str, rows: int, days: int) -> dt.date:
    """Feature partitions of ``days`` observation days and the label partitions that cover them."""
    os.environ["MLLOOP_HOME"] = str(home)
    for derived in ("MLLOOP_STORAGE_ROOT", "MLLOOP_FEAST_REGISTRY", "MLLOOP_FEAST_ONLINE_STORE"):
        os.environ.pop(derived, None)  # exported by the previous size's Feast setup
    from mlloop.feature_store import apply_registry
    from mlloop.features import build_features
    from mlloop.ingestion import features_path, validated_path
    from mlloop.landing import date_range, generate
    from mlloop.settings import get_settings
    from mlloop.spec import get_spec
    from mlloop.storage import Storage

    spec = get_spec(use_case)
    storage = Storage.from_url(get_settings().storage_root)
    delay = spec.labels.delay_days
    params = {"rows_per_day": rows, "n_customers": max(5000, 2 * rows), "bad_row_share": 0.0}
    landing_days = date_range(FIRST_DAY, FIRST_DAY + dt.timedelta(days=days - 1 + delay))
    for day in landing_days:
        batch = generate(spec, day, **params)
        if day < FIRST_DAY + dt.timedelta(days=days):
            storage.write_frame(build_features(batch.observations, spec), features_path(storage, spec, day))
        storage.write_frame(batch.labels, validated_path(storage, spec, "labels", day))
    apply_registry()
    return landing_days[-1]


def measure(use_case: str, cutoff: dt.date) -> dict[str, Any]:
    """One training run, step by step, in this (fresh) process: the steps the DAG's tasks call."""
    from mlloop.registry import ensure_experiment
    from mlloop.services import Services
    from mlloop.spec import get_spec
    from mlloop.steps import RunInfo, training

    spec = get_spec(use_case)
    services = Services()
    services.feature_store  # noqa: B018  opening the store is not what is measured
    ensure_experiment(services.mlflow, spec)  # creating the SQLite store (~3 s) happens once per deployment
    import great_expectations  # noqa: F401  imports are not what is measured
    import mlflow.sklearn  # noqa: F401
    import sklearn.ensemble  # noqa: F401

    steps: dict[str, Any] = {}
    state: dict[str, Any] = {}

    def step(name: str, fn: Any) -> None:
        start = time.perf_counter()
        with PeakRss() as rss:
            state[name] = fn()
        steps[name] = {
            "seconds": round(time.perf_counter() - start, 2),
            "peak_rss_mb": round(rss.peak),
            "peak_above_start_mb": round(rss.peak - rss.before),
        }

    step("build_training_set", lambda: training.build_set(services, spec, cutoff.isoformat()))
    built = state["build_training_set"]
    step("validate_training_set", lambda: training.validate_set(services, spec, built["path"]))
    inputs = training.TrainInputs(built["path"], cutoff.isoformat(), "bench", validation=state["validate_training_set"])
    step("train_and_register", lambda: training.train_and_register(services, spec, inputs, RunInfo()))
    registered = state["train_and_register"]
    return {
        "training_rows": built["rows"],
        "holdout_metrics": {k: None if v is None else round(v, 4) for k, v in registered.metrics.items()},
        "steps": steps,
        "total_seconds": round(sum(s["seconds"] for s in steps.values()), 2),
        "peak_rss_mb": max(s["peak_rss_mb"] for s in steps.values()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--use-case", default="credit_risk")
    parser.add_argument("--rows", type=int, nargs="+", help="rows per day (default: 1x and 10x the spec's)")
    parser.add_argument("--days", type=int, default=10, help="observation days with labels")
    parser.add_argument("--threads", type=int, default=None, help="MLLOOP_TRAINING_THREADS for the run")
    parser.add_argument("--child", nargs=2, metavar=("HOME", "CUTOFF"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        os.environ["MLLOOP_HOME"] = args.child[0]
        print(json.dumps(measure(args.use_case, dt.date.fromisoformat(args.child[1]))))
        return

    from mlloop.spec import get_spec

    generator = get_spec(args.use_case).generator
    base = int(generator.params.get("rows_per_day", 1000)) if generator else 1000
    env = {**os.environ, **({"MLLOOP_TRAINING_THREADS": str(args.threads)} if args.threads else {})}
    results = []
    for rows in args.rows or [base, 10 * base]:
        with tempfile.TemporaryDirectory(prefix="mlloop-bench-") as tmp:
            cutoff = prepare(Path(tmp), args.use_case, rows, args.days)
            out = subprocess.run(
                [sys.executable, __file__, "--use-case", args.use_case, "--child", tmp, cutoff.isoformat()],
                env={**env, "MLLOOP_HOME": tmp},
                capture_output=True,
                text=True,
            )
        if out.returncode:
            sys.exit(f"measuring {rows} rows/day failed:\n{out.stderr[-3000:]}")
        result = {"rows_per_day": rows, "days": args.days, **json.loads(out.stdout.strip().splitlines()[-1])}
        results.append(result)
        print(json.dumps(result, indent=2))
    record = {"at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"), "use_case": args.use_case, "runs": results}
    target = ROOT / "bench" / "results" / "training.json"
    target.parent.mkdir(parents=True, exist_ok=True)
    history = json.loads(target.read_text()) if target.exists() else []
    target.write_text(json.dumps([*history, record], indent=2) + "\n")


if __name__ == "__main__":
    main()
