"""B2: the batch scoring path (features in -> predictions out, as the DAG's task runs it) vs the same
model's in-memory predict on the same rows; B3: the scoring step's peak memory at N and 4N rows.

Setup (its own interpreter): one day of N entities in the offline store, the Feast registry, and a
model of the spec's pipeline registered as champion. Measurement (a fresh interpreter with the
libraries a task process gets preloaded): pin and load the champion, then the steps the
``score_partition`` and ``commit_predictions`` tasks call (:mod:`mlloop.steps.scoring`), timed, with the process's peak
RSS above the post-load baseline; then, on the same rows already in memory, ``predict_proba`` alone.
"""

from __future__ import annotations

from bench.common import Result, run_python, scratch_home

SETUP = """
import json
from bench.data import register_champion, write_feature_days
from mlloop.feature_store import apply_registry
from mlloop.settings import get_settings
from mlloop.spec import get_spec
from mlloop.storage import Storage

rows = {rows}
spec = get_spec("credit_risk")
storage = Storage.from_url(get_settings().storage_root)
write_feature_days(storage, spec, rows, 1)
apply_registry()
print(json.dumps({{"version": register_champion(spec)}}))
"""

MEASURE = """
import json, resource, time
from bench.common import preload_like_a_task
preload_like_a_task()
from bench.data import START
from mlloop.compute import compute_threads
from mlloop.ingestion import features_path
from mlloop.registry import predict_scores
from mlloop.services import Services
from mlloop.spec import get_spec
from mlloop.steps import scoring

spec = get_spec("credit_risk")
services = Services()
storage = services.storage
# What resolve_champion and each score_partition task do before scoring: pin, load, open Feast.
pinned = scoring.pin_champion(services, spec, lambda: START, "current", "score the bench")
loaded = scoring.load_pinned(services, spec, pinned)
services.feature_store
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
from bench.common import profiled
t0 = time.perf_counter()
day_rows = storage.row_count(features_path(storage, spec, START))
with profiled(f"B2-scoring-{{day_rows}}"):
    # The steps the score_partition and commit_predictions tasks call.
    part = scoring.score_part(services, spec, START, loaded, "bench")
    scoring.commit(services, spec, START, pinned, [part], "bench")
t_path = time.perf_counter() - t0
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss

rows = storage.read_frame(features_path(storage, spec, START))[spec.model.features]
t0 = time.perf_counter()
with compute_threads():  # the same thread cap the scoring path uses
    predict_scores(loaded.model, rows, spec.model.task)
t_predict = time.perf_counter() - t0
print(json.dumps({{"path": t_path, "predict": t_predict, "rows": len(rows),
                  "rss_growth_mb": (peak - base) / 1024, "scoring_peak_mb": peak / 1024,
                  "rows_out": part.rows_out}}))
"""


def _measure(rows: int) -> dict[str, float]:
    with scratch_home("scoring") as home:
        env = {"MLLOOP_HOME": str(home)}
        run_python(SETUP.format(rows=rows), env=env)
        return run_python(MEASURE.format(), env=env)


def run(size: str, rows: list[int]) -> list[Result]:
    out = {n: _measure(n) for n in rows}
    results = []
    for n, o in out.items():
        ours, limit = n / o["path"], n / o["predict"]
        results.append(
            Result(
                "B2",
                f"scoring path, {n:,} rows (rows/s)",
                size,
                ours,
                limit,
                "rows/s",
                ours / limit,
                ">= 0.7x",
                ours / limit >= 0.7,
                notes=(
                    f"path {o['path']:.2f} s vs predict {o['predict']:.2f} s; "
                    f"peak RSS growth {o['rss_growth_mb']:.0f} MB"
                ),
                extra=o,
            )
        )
    small, large = out[min(rows)], out[max(rows)]
    ratio = large["rss_growth_mb"] / max(small["rss_growth_mb"], 1.0)
    # The process's peak when scoring ended: later the limit side loads every row into memory.
    total_ratio = large["scoring_peak_mb"] / small["scoring_peak_mb"]
    results.append(
        Result(
            "B3",
            f"scoring peak memory {max(rows):,} vs {min(rows):,} rows (process peak RSS)",
            size,
            large["scoring_peak_mb"],
            small["scoring_peak_mb"],
            "MB",
            total_ratio,
            "<= 1.2",
            total_ratio <= 1.2,
            notes=(
                f"growth above the loaded-model baseline: {large['rss_growth_mb']:.0f} MB vs "
                f"{small['rss_growth_mb']:.0f} MB ({ratio:.2f}x)"
            ),
        )
    )
    return results
