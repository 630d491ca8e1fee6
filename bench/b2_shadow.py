"""B2 shadow row: the cost of scoring a day with a shadow challenger (``promotion.shadow_days``) vs
without, target <= 1.3x.

Same setup as B2 (:mod:`bench.b2_b3_scoring`: one day of N entities, Feast, a registered champion).
Measurement in a fresh interpreter preloaded like a task: ``score_partition`` + ``commit_predictions``
through Feast, then the same with a second loaded model as the shadow: drawing the day's shadow
sample (``resolve_shadow``'s :func:`mlloop.shadow_sample.day_sample`, with the spec's default
``promotion.shadow_max_rows``), scoring, ``commit_predictions`` and ``commit_shadow``; alternated
three times, best of each (the shared machine's noise hits both sides alike). The shadow model is a
second load of the same version: its predict costs what a challenger's does.
"""

from __future__ import annotations

from bench.b2_b3_scoring import SETUP
from bench.common import Result, run_python, scratch_home

MEASURE = """
import json, time
from bench.common import preload_like_a_task, profiled
preload_like_a_task()
from bench.data import START
from mlloop.feature_store import open_store
from mlloop.registry import CHAMPION, get_alias, load_model, mlflow_client
from mlloop.scoring import (
    Lineage, ShadowScorer, commit_predictions, feast_fetcher, feature_service_for, score_partition
)
from mlloop.settings import get_settings
from mlloop.shadow import commit_shadow
from mlloop.shadow_sample import day_sample
from mlloop.spec import get_spec
from mlloop.storage import Storage

spec = get_spec("credit_risk")
storage = Storage.from_url(get_settings().storage_root)
ref = get_alias(mlflow_client(), spec.registered_model_name, CHAMPION)
model, shadow_model = load_model(ref), load_model(ref)
fetch = feast_fetcher(open_store(), feature_service_for(ref, spec))
lineage, shadow_lineage = Lineage.of(ref, "bench"), Lineage(ref.name, "shadow", "bench")

def plain():
    part = score_partition(storage, spec, START, model=model, fetch_features=fetch, lineage=lineage)
    commit_predictions(storage, spec, START, [part], lineage=lineage)

def with_shadow():
    sample = day_sample(storage, spec, START)
    part = score_partition(storage, spec, START, model=model, fetch_features=fetch, lineage=lineage,
                           shadow=ShadowScorer(shadow_model, shadow_lineage, sample))
    commit_predictions(storage, spec, START, [part], lineage=lineage)
    commit_shadow(storage, spec, START, [part], lineage=shadow_lineage, expected_rows=sample.rows)
    return sample

times = {{"plain": [], "shadow": []}}
plain()  # warm: Feast's first query, file caches
for _ in range(3):
    for name, step in (("plain", plain), ("shadow", with_shadow)):
        t0 = time.perf_counter()
        step()
        times[name].append(time.perf_counter() - t0)
with profiled("B2-shadow-{rows}"):  # after the timings (--profile): where the shadow's extra time goes
    sample = with_shadow()
print(json.dumps({{"plain": min(times["plain"]), "shadow": min(times["shadow"]), "all": times,
                  "shadow_rows": sample.rows, "shadow_max_rows": spec.promotion.shadow_max_rows}}))
"""


def run(size: str, rows: list[int]) -> list[Result]:
    results = []
    for n in rows:
        with scratch_home("scoring-shadow") as home:
            env = {"MLLOOP_HOME": str(home)}
            run_python(SETUP.format(rows=n), env=env)
            o = run_python(MEASURE.format(rows=n), env=env)
        ratio = o["shadow"] / o["plain"]
        # Each alternation's own ratio: a load burst on the shared machine hits one pair, not the median.
        paired = sorted(s / p for p, s in zip(o["all"]["plain"], o["all"]["shadow"], strict=True))
        results.append(
            Result(
                "B2",
                f"scoring with a shadow challenger, {n:,} rows (s, vs without)",
                size,
                o["shadow"],
                o["plain"],
                "s",
                ratio,
                "<= 1.3x",
                ratio <= 1.3,
                notes=(
                    f"best of 3 alternated: with shadow {o['shadow']:.2f} s, without {o['plain']:.2f} s "
                    f"(median of the 3 paired ratios {paired[len(paired) // 2]:.2f}x); "
                    f"shadow sample {o['shadow_rows']:,} of {n:,} rows (promotion.shadow_max_rows default "
                    f"{o['shadow_max_rows']:,})"
                ),
                extra=o,
            )
        )
    return results
