"""The column-wise Redis write (``mlloop.feast_online_write``) writes exactly Feast's bytes.

Each check compares with Feast's own code on the same input: its value conversion, its entity-key
serialization, and a whole materialization through Feast's local engine into another Redis
database of the same real ``redis-server`` (started here on a free port).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pytest

from local_servers import free_port, redis_server
from mlloop.feature_store import apply_registry, online_features, open_store
from mlloop.ingestion import day_bounds, validate_landed_batch, write_feature_partition
from mlloop.landing import land_days

DAYS = [dt.date(2026, 3, 10), dt.date(2026, 3, 11)]


def feast_value_bytes(column: pa.Array, value_type: Any) -> list[bytes]:
    from feast.type_map import python_values_to_proto_values

    protos = python_values_to_proto_values(column.to_numpy(zero_copy_only=False), value_type)
    return [v.SerializeToString() for v in protos]


@pytest.mark.parametrize(
    ("column", "type_name"),
    [
        (pa.array([1.5, None, -0.0, float("inf"), float("nan"), 1e-310, -2.25e300, 0.0]), "DOUBLE"),
        (pa.array([1, None, -5, 2**62, 0, 1, 1]), "INT64"),
        (pa.array([3, 0, -1, 3], type=pa.int64()), "INT64"),
        (pa.array(["north", None, "south", "north", "", "é"]), "STRING"),
        (pa.array([True, None, False, True]), "BOOL"),
        (pa.array([None, None], type=pa.float64()), "DOUBLE"),
        (pa.array([None, None], type=pa.string()), "STRING"),
        (pa.array([dt.datetime(2026, 3, 1, 12, 0, 1, 5), None], type=pa.timestamp("us", tz="UTC")), "UNIX_TIMESTAMP"),
    ],
)
def test_each_value_is_the_bytes_feast_makes_of_it(column: pa.Array, type_name: str) -> None:
    from feast.value_type import ValueType

    from mlloop.feast_online_write import value_bytes

    value_type = ValueType[type_name]
    assert value_bytes(column, value_type) == feast_value_bytes(column, value_type)


@pytest.mark.parametrize(
    ("entities", "columns"),
    [
        ({"customer_id": "INT64"}, {"customer_id": pa.array([1, -7, 2**40], type=pa.int64())}),
        ({"meter_id": "STRING"}, {"meter_id": pa.array(["MTR-000001", "é-2", ""])}),
        (
            {"region": "STRING", "hour": "INT64"},
            {"region": pa.array(["north", "south", "north"]), "hour": pa.array([0, 23, 5], type=pa.int64())},
        ),
    ],
)
def test_each_key_is_the_redis_key_feast_makes(entities: dict[str, str], columns: dict[str, pa.Array]) -> None:
    from types import SimpleNamespace

    from feast.infra.online_stores.helpers import _redis_key
    from feast.protos.feast.types.EntityKey_pb2 import EntityKey
    from feast.type_map import python_values_to_proto_values
    from feast.value_type import ValueType

    from mlloop.feast_online_write import redis_keys

    batch = pa.RecordBatch.from_pydict(columns)
    entity_columns = [
        SimpleNamespace(name=name, dtype=SimpleNamespace(to_value_type=lambda t=t: ValueType[t]))
        for name, t in entities.items()
    ]
    view = SimpleNamespace(entity_columns=entity_columns)
    config = SimpleNamespace(project="mlloop", entity_key_serialization_version=3)
    ours = redis_keys(batch, view, config)  # type: ignore[arg-type]
    values = {
        name: python_values_to_proto_values(columns[name].to_numpy(zero_copy_only=False), ValueType[t])
        for name, t in entities.items()
    }
    names = list(entities)
    feast = [
        _redis_key("mlloop", EntityKey(join_keys=names, entity_values=[values[n][i] for n in names]), 3)
        for i in range(batch.num_rows)
    ]
    assert ours == feast


@pytest.fixture
def redis_port(tmp_path: Path) -> Iterator[int]:
    port = free_port()
    with redis_server(tmp_path, port):
        yield port


def test_stored_event_times_read_by_script_or_pipeline_agree(redis_port: int) -> None:
    """Feast's newer-wins rule needs each key's stored event time: a Lua script reads them 1,000 keys
    a call; on a Redis Cluster (keys in different slots) a pipeline does. Both give b"" for a key or
    field that is not there."""
    import redis

    from mlloop.feast_online_write import _stored_times

    client = redis.Redis(host="127.0.0.1", port=redis_port)
    keys = [f"k{i}".encode() for i in range(2500)]
    with client.pipeline(transaction=False) as pipe:
        for i, key in enumerate(keys):
            if i % 3:
                pipe.hset(key, mapping={b"_ts:v": f"t{i}".encode()} if i % 5 else {b"other": b"x"})
        pipe.execute()
    expected = [f"t{i}".encode() if i % 3 and i % 5 else b"" for i in range(2500)]
    assert _stored_times(client, keys, b"_ts:v", cluster=False) == expected
    assert _stored_times(client, keys, b"_ts:v", cluster=True) == expected


def _hashes(port: int, db: int) -> dict[bytes, dict[bytes, bytes]]:
    import redis

    client = redis.Redis(host="127.0.0.1", port=port, db=db)
    return {key: client.hgetall(key) for key in client.keys("*")}


def _store_on(port: int, db: int, monkeypatch: pytest.MonkeyPatch, feast_engine: bool) -> Any:
    monkeypatch.setenv(
        "MLLOOP_FEAST_ONLINE_STORE", json.dumps({"type": "redis", "connection_string": f"127.0.0.1:{port},db={db}"})
    )
    store = open_store()
    if feast_engine:  # Feast's own local engine, as without this project's batch_engine setting
        store.config.batch_engine_config = "local"
    return store


@pytest.mark.parametrize(
    "use_case",
    # generated: int64 keys; string keys and nullable floats. hourly_temps: a real data set (vega_datasets'
    # 2010 temperatures, landed by mlloop.land_dataset), string keys, missing hours.
    ["credit_risk", "energy_demand", "hourly_temps"],
)
def test_a_materialization_writes_the_same_keys_fields_and_bytes_as_feasts_engine(
    use_case: str, storage: Any, mlloop_home: Path, redis_port: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Both engines materialize the same two days, then the older day again (its rows must not
    overwrite newer ones): after each step the two Redis databases hold the same bytes. Online reads
    through Feast return the newest day's values."""
    from mlloop.spec import get_spec

    spec = get_spec(use_case)
    days = DAYS
    if use_case == "hourly_temps":
        from mlloop.land_dataset import land

        days = [dt.date(2010, 3, 10), dt.date(2010, 3, 11)]
        land(storage, spec, days[0], days[1])
    else:
        overrides = {"rows_per_day": 300, "n_customers": 400, "bad_row_share": 0.0} if use_case == "credit_risk" else {}
        land_days(storage, spec, days, **overrides)
    frames = {}
    for day in days:
        validate_landed_batch(storage, spec, "observations", day)
        path, _ = write_feature_partition(storage, spec, day)
        frames[day] = storage.read_frame(path)
    apply_registry()
    view = spec.features.feature_view
    stores = {
        db: _store_on(redis_port, db, monkeypatch, feast_engine=(db == 0)) for db in (0, 1)
    }  # 0: Feast's engine, 1: ours
    for step in (days[0], days[1], days[0]):
        for store in stores.values():
            store.materialize(start_date=day_bounds(step)[0], end_date=day_bounds(step)[1], feature_views=[view])
        feast, ours = _hashes(redis_port, 0), _hashes(redis_port, 1)
        assert len(ours) > 0
        assert ours == feast, f"after materializing {step}"

    key = spec.entity.join_key
    column = next(name for name, c in spec.features.columns.items() if c.dtype == "float64")
    newest = frames[days[1]].drop_duplicates(key, keep="last").head(20)
    online = online_features(stores[1], spec.model.feature_service, key, newest[key].tolist())
    np.testing.assert_array_equal(online[column].to_numpy(float), newest[column].to_numpy(float))
