"""B5: materialization rows/s and B6: online read latency, through Feast vs the store's own client.

For each online store (SQLite, the embedded default; Redis, the scaled one) Feast materializes one
day of N entities; then the store's own client writes exactly the bytes Feast wrote (read back from
the store) into an empty copy: the raw write limit for the same rows. Reads: Feast's
``get_online_features`` for 1 and 100 entities vs the client fetching the same keys.

Redis is the machine's server on 127.0.0.1:6379, in a database index of its own that is flushed
before and after; without a reachable Redis the Redis rows are reported as skipped.
"""

from __future__ import annotations

import json

from bench.common import Result, run_python, scratch_home

REDIS_DB = 14
ENGINE_NOTE = "; Feast's materialize through this project's batch engine (mlloop.feast_online_write)"

CHILD = """
import datetime as dt, json, sqlite3, statistics, time
from bench.common import preload_like_a_task
preload_like_a_task()
import numpy as np
from bench.data import START, write_feature_days
from mlloop.synthetic import entity_keys
from mlloop.feature_store import OnlineReader, apply_registry, materialize_interval, open_store
from mlloop.ingestion import day_bounds
from mlloop.settings import get_settings
from mlloop.spec import get_spec
from mlloop.storage import Storage

store_kind, rows, redis_db = {store_kind!r}, {rows}, {redis_db}
settings = get_settings()
spec = get_spec("credit_risk")
storage = Storage.from_url(settings.storage_root)
write_feature_days(storage, spec, rows, 1)
if store_kind == "redis":
    import redis
    client = redis.Redis(host="127.0.0.1", port=6379, db=redis_db)
    client.flushdb()
apply_registry()
store = open_store()
view = spec.features.feature_view
n_features = len(spec.features.columns)

from bench.common import profiled
t0 = time.perf_counter()
with profiled(f"B5-materialize-{{store_kind}}-{{rows}}"):
    materialize_interval(store, [view], *day_bounds(START))
feast_write = time.perf_counter() - t0

# The raw limit: the same bytes, written by the store's own client into an empty store.
if store_kind == "sqlite":
    path = json.loads(settings.feast_online_store)["path"]
    con = sqlite3.connect(path)
    table = "mlloop_" + view
    data = con.execute(f"SELECT * FROM {{table}}").fetchall()
    ddl = con.execute("SELECT sql FROM sqlite_master WHERE name = ?", (table,)).fetchone()[0]
    con.execute(f"DROP TABLE IF EXISTS raw_copy")
    con.execute(ddl.replace(table, "raw_copy", 1))
    marks = ",".join("?" * len(data[0]))
    t0 = time.perf_counter()
    with con:
        con.executemany(f"INSERT INTO raw_copy VALUES ({{marks}})", data)
    raw_write = time.perf_counter() - t0
else:
    keys = client.keys("*")
    hashes = {{k: client.hgetall(k) for k in keys}}
    client.flushdb()
    t0 = time.perf_counter()
    pipe = client.pipeline(transaction=False)
    for i, (k, h) in enumerate(hashes.items(), 1):
        pipe.hset(k, mapping=h)
        if i % 1000 == 0:
            pipe.execute()
    pipe.execute()
    raw_write = time.perf_counter() - t0

ids = entity_keys(spec, rows).tolist()
rng = np.random.default_rng(0)
latency = {{}}
reader = OnlineReader.open(store, spec.model.feature_service, spec.entity.join_key)
for batch in (1, 100):
    feast_times, raw_times = [], []
    for _ in range(300 if batch == 1 else 100):
        chosen = rng.choice(ids, size=batch, replace=False).tolist()
        t0 = time.perf_counter(); reader.read(chosen)
        feast_times.append(time.perf_counter() - t0)
        if store_kind == "sqlite":
            # Feast keys rows by the serialized entity key; fetch the same rows by it.
            sample = [data[i * n_features][0] for i in rng.integers(0, len(data) // n_features, batch)]
            t0 = time.perf_counter()
            con.execute(f"SELECT * FROM raw_copy WHERE entity_key IN ({{','.join('?' * batch)}})", sample).fetchall()
        else:
            sample = [keys[i] for i in rng.integers(0, len(keys), batch)]
            t0 = time.perf_counter()
            pipe = client.pipeline(transaction=False)
            for k in sample:
                pipe.hgetall(k)
            pipe.execute()
        raw_times.append(time.perf_counter() - t0)
    q = lambda xs, p: float(np.percentile(xs, p)) * 1000
    latency[batch] = {{"feast_p50": q(feast_times, 50), "feast_p99": q(feast_times, 99),
                      "raw_p50": q(raw_times, 50), "raw_p99": q(raw_times, 99)}}
if store_kind == "redis":
    client.flushdb()
print(json.dumps({{"feast_write": feast_write, "raw_write": raw_write, "latency": latency}}))
"""


def _redis_reachable() -> bool:
    import socket

    try:
        with socket.create_connection(("127.0.0.1", 6379), timeout=1):
            return True
    except OSError:
        return False


def run(size: str, rows: int) -> list[Result]:
    results: list[Result] = []
    for kind in ("sqlite", "redis"):
        if kind == "redis" and not _redis_reachable():
            print("[bench] B5/B6 Redis: 127.0.0.1:6379 unreachable, Redis rows skipped")
            continue
        with scratch_home(f"online-{kind}") as home:
            env = {"MLLOOP_HOME": str(home)}
            if kind == "redis":
                env["MLLOOP_FEAST_ONLINE_STORE"] = json.dumps(
                    {"type": "redis", "connection_string": f"127.0.0.1:6379,db={REDIS_DB}"}
                )
            out = run_python(CHILD.format(store_kind=kind, rows=rows, redis_db=REDIS_DB), env=env)
        feast_rate, raw_rate = rows / out["feast_write"], rows / out["raw_write"]
        results.append(
            Result(
                "B5",
                f"materialize {rows:,} entities into {kind} (entities/s)",
                size,
                feast_rate,
                raw_rate,
                "rows/s",
                feast_rate / raw_rate,
                ">= 0.3x" if kind == "redis" else "report",
                feast_rate / raw_rate >= 0.3 if kind == "redis" else None,
                notes=f"Feast {out['feast_write']:.2f} s vs {kind} client {out['raw_write']:.2f} s, same bytes"
                + (ENGINE_NOTE if kind == "redis" else ""),
            )
        )
        for batch, lat in out["latency"].items():
            target = "p99 <= 10 ms" if kind == "redis" and batch == "1" else "report"
            results.append(
                Result(
                    "B6",
                    f"online read, {batch} entit{'y' if batch == '1' else 'ies'}, {kind} (p99)",
                    size,
                    lat["feast_p99"],
                    lat["raw_p99"],
                    "ms",
                    lat["feast_p99"] / lat["raw_p99"],
                    target,
                    lat["feast_p99"] <= 10 if target != "report" else None,
                    notes=f"p50 Feast {lat['feast_p50']:.2f} ms vs client {lat['raw_p50']:.2f} ms",
                )
            )
    return results
