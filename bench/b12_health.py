"""B12: one request of the model health page (``mlloop.health.model_health``), target <= 1 s.

The page shows the newest 60 days; the storage root holds ``days`` days of partitions of one use
case (credit_risk, 1,000 rows a day like the demo's generator): labels, predictions and a drift
report per day. Measured in a fresh interpreter preloaded like the API server's request path: the
first request (cold: every served row read, joined once with the labels, scored) and the best of
three later ones (warm: the scored days' numbers are kept under their files' footer fingerprint,
so a request reads footers, row counts and the drift JSONs). The target is on the warm request;
the cold one is paid once per process after any of those files changes (a new label delivery).
"""

from __future__ import annotations

from bench.common import Result, run_python, scratch_home

SETUP = """
import datetime as dt, json
import numpy as np
from mlloop.drift_report import report_paths
from mlloop.ingestion import validated_path
from mlloop.landing import generate
from mlloop.scoring import predictions_path
from mlloop.settings import get_settings
from mlloop.spec import get_spec
from mlloop.storage import Storage

spec = get_spec("credit_risk")
storage = Storage.from_url(get_settings().storage_root)
key, ts = spec.entity.join_key, spec.raw.timestamp_column
rng = np.random.default_rng(0)
for i in range({days}):
    day = dt.date(2025, 1, 1) + dt.timedelta(days=i)
    batch = generate(spec, day, bad_row_share=0.0, rows_per_day=1000)
    storage.write_frame(batch.labels, validated_path(storage, spec, "labels", day))
    served = batch.observations[[key, ts]].assign(score=rng.random(len(batch.observations)), model_version="1")
    storage.write_frame(served, predictions_path(storage, spec, day))
    verdict = {{"drifted_share": 0.1, "drifted_features": {{"age": 0.01}}}}
    storage.write_bytes(json.dumps({{"verdict": verdict}}).encode(), report_paths(storage, spec, day)[1])
print(json.dumps({{"days": {days}}}))
"""

MEASURE = """
import json, time
from bench.common import profiled
from mlloop.health import model_health, render_html
from mlloop.registry import mlflow_client
from mlloop.settings import get_settings
from mlloop.spec import get_spec
from mlloop.storage import Storage

spec = get_spec("credit_risk")
storage = Storage.from_url(get_settings().storage_root)
client = mlflow_client()
client.search_registered_models()  # the MLflow store opened, as in a running API server
t0 = time.perf_counter()
with profiled("B12-health-cold-{days}"):
    render_html(model_health(storage, client, spec), "/plotly.min.js")
cold = time.perf_counter() - t0
warm = []
for _ in range(3):
    t0 = time.perf_counter()
    render_html(model_health(storage, client, spec), "/plotly.min.js")
    warm.append(time.perf_counter() - t0)
print(json.dumps({{"cold": cold, "warm": min(warm), "all": warm}}))
"""


def run(size: str, days: list[int]) -> list[Result]:
    results = []
    for n in days:
        with scratch_home("health") as home:
            env = {"MLLOOP_HOME": str(home)}
            run_python(SETUP.format(days=n), env=env)
            o = run_python(MEASURE.format(days=n), env=env)
        results.append(
            Result(
                "B12",
                f"model health page, {n} days of partitions, 60 shown (s, a request after the first)",
                size,
                o["warm"],
                1.0,
                "s",
                o["warm"] / 1.0,
                "<= 1 s",
                o["warm"] <= 1.0,
                notes=f"first request (cold) {o['cold']:.2f} s; later ones {o['warm']:.2f} s",
                extra=o,
            )
        )
    return results
