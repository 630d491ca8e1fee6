"""B4: point-in-time training-set build (Feast, the project's as-of DuckDB offline store) vs pandas ``merge_asof``.

Label events (key, timestamp, label) are joined with 30 daily feature rows per customer. Both
sides read the same parquet partitions; the result must have the same rows and values. The child
preloads what a task process gets preloaded (``mlloop_airflow.preload``), so Feast's lazy imports on
its first query are not timed, as in the training task.
"""

from __future__ import annotations

from bench.common import Result, run_python, scratch_home

CHILD = """
import datetime as dt, json, os, time
import numpy as np, pandas as pd
from bench.common import preload_like_a_task
preload_like_a_task()
from bench.data import START, write_feature_days
from mlloop.synthetic import entity_keys
from mlloop.feature_store import apply_registry, open_store
from mlloop.settings import get_settings
from mlloop.spec import get_spec
from mlloop.storage import Storage
from mlloop.training_set import point_in_time_join

labels_n = {labels}
days = 30
customers = max(1_000, labels_n // 10)
spec = get_spec("credit_risk")
storage = Storage.from_url(get_settings().storage_root)
write_feature_days(storage, spec, customers, days)
apply_registry()
store = open_store()
rng = np.random.default_rng(1)
key, ts = spec.entity.join_key, spec.raw.timestamp_column
labels = pd.DataFrame({{
    key: entity_keys(spec, customers)[rng.integers(0, customers, labels_n)],
    ts: pd.Timestamp(START, tz="UTC") + pd.to_timedelta(rng.integers(0, days * 86_400, labels_n), unit="s"),
    spec.labels.column: rng.integers(0, 2, labels_n),
}})
features = spec.model.features

from bench.common import profiled
t0 = time.perf_counter()
with profiled(f"B4-training-set-{{labels_n}}"):
    ours, stats = point_in_time_join(store, spec, labels, spec.model.feature_service)
t_ours = time.perf_counter() - t0

t0 = time.perf_counter()
glob = storage.path("features", spec.name, spec.features.feature_view, "date=*", "data.parquet")
feature_rows = pd.concat([pd.read_parquet(p) for p in storage.glob(glob)], ignore_index=True)
left = labels.assign(_row=np.arange(labels_n)).sort_values(ts, kind="stable")
right = feature_rows.sort_values(ts, kind="stable")
ttl = pd.Timedelta(days=spec.features.ttl_days)
limit = pd.merge_asof(left, right, on=ts, by=key, direction="backward", tolerance=ttl)
limit = limit.dropna(subset=features, how="all").sort_values("_row").reset_index(drop=True)
t_limit = time.perf_counter() - t0

mine = ours.sort_values("_label_row").reset_index(drop=True)
same_rows = len(mine) == len(limit) and (mine["_label_row"].to_numpy() == limit["_row"].to_numpy()).all()
same_values = same_rows and all(
    np.allclose(mine[c].astype(float), limit[c].astype(float), equal_nan=True) if mine[c].dtype.kind in "fiu"
    else (mine[c].astype(str).to_numpy() == limit[c].astype(str).to_numpy()).all()
    for c in features
)
print(json.dumps({{"ours": t_ours, "limit": t_limit, "rows": len(mine), "limit_rows": len(limit),
                  "same_rows": bool(same_rows), "same_values": bool(same_values),
                  "feature_rows": len(feature_rows)}}))
"""


def run(size: str, label_sizes: list[int]) -> list[Result]:
    results = []
    for labels in label_sizes:
        with scratch_home("pit") as home:
            out = run_python(CHILD.format(labels=labels), env={"MLLOOP_HOME": str(home)})
        ratio = out["ours"] / out["limit"]
        results.append(
            Result(
                "B4",
                f"point-in-time training set, {labels:,} labels x {out['feature_rows']:,} feature rows",
                size,
                out["ours"],
                out["limit"],
                "s",
                ratio,
                "<= 1.0x, same rows and values",
                ratio <= 1.0 and out["same_rows"] and out["same_values"],
                notes=(
                    f"rows {out['rows']:,} vs {out['limit_rows']:,}; same rows {out['same_rows']}, "
                    f"same values {out['same_values']}; peak RSS {out['peak_rss_mb']} MB"
                ),
                extra=out,
            )
        )
    return results
