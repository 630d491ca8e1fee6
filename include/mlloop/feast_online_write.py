"""Materialization into Redis column by column: the bytes Feast writes, without a proto per value.

Feast's local engine turns every materialized row into protobuf objects first
(``_convert_arrow_to_proto``: an ``EntityKeyProto`` and one ``ValueProto`` per feature, with pandas'
``isna`` called on each value), then ``RedisOnlineStore.online_write_batch`` hashes each field name
again for every row and serializes each proto. For 20,000 customers that took 2.1 s against 0.2 s
for redis-py writing the same bytes (bench B5: 0.09x), and it is the ``feature_ingestion`` DAG's
materialize task on the scaled deployment.

:class:`ColumnarComputeEngine` is Feast's local engine with one node replaced: when the online store
is Redis, a batch is written by :func:`write_redis_batch`, which computes what Feast computes a
column at a time:

- the Redis key of each row (Feast's entity-key serialization, version 3, + the project);
- each feature's value bytes: a float64 column is packed with numpy (the ``double_val`` field's
  tag and 8 bytes); any other column is factorized and only its distinct values go through Feast's
  own conversion (``python_values_to_proto_values``), so a category or a small integer is
  converted once, not once per row;
- each field's name hash once per batch (Feast hashes it once per row and feature);
- the same newer-wins rule: a row whose entity holds an event time as new or newer (stored, or
  earlier in the batch) is skipped; the stored times are read by a Lua script 1,000 keys at a time
  (a Redis Cluster: by a pipeline, as Feast reads them); ``skip_dedup`` and ``key_ttl_seconds``
  act as in Feast.

Any other online store (SQLite, the embedded default), and any feature view this cannot write
(on-demand views, list or struct features, a join key that is neither int64 nor string), goes
through Feast's own node unchanged. ``tests/include/test_feast_online_write.py`` materializes the
same days through both engines into two Redis databases and compares every key, field and byte.

Configured in ``feature_repo/feature_store.yaml``::

    batch_engine:
      type: mlloop.feast_online_write.ColumnarComputeEngine
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import pyarrow as pa
from feast.infra.common.materialization_job import MaterializationJobStatus, MaterializationTask
from feast.infra.compute_engines.dag.context import ExecutionContext
from feast.infra.compute_engines.local.arrow_table_value import ArrowTableValue
from feast.infra.compute_engines.local.compute import LocalComputeEngine
from feast.infra.compute_engines.local.feature_builder import LocalFeatureBuilder
from feast.infra.compute_engines.local.job import LocalMaterializationJob
from feast.infra.compute_engines.local.nodes import LocalOutputNode
from feast.infra.online_stores.helpers import _mmh3
from feast.infra.online_stores.redis import RedisOnlineStore, RedisType, _versioned_fv_name
from feast.repo_config import FeastConfigBaseModel
from feast.type_map import python_values_to_proto_values
from feast.value_type import ValueType
from google.protobuf.timestamp_pb2 import Timestamp

if TYPE_CHECKING:
    from feast import FeatureView
    from feast.infra.registry.base_registry import BaseRegistry
    from feast.repo_config import RepoConfig

_SCALAR_TYPES = frozenset(
    {
        ValueType.INT32,
        ValueType.INT64,
        ValueType.FLOAT,
        ValueType.DOUBLE,
        ValueType.STRING,
        ValueType.BYTES,
        ValueType.BOOL,
        ValueType.UNIX_TIMESTAMP,
    }
)
_DOUBLE_TAG = 0x29  # ValueProto.double_val: field 5, wire type 1 (64-bit)


class ColumnarComputeEngineConfig(FeastConfigBaseModel):
    """``batch_engine`` settings: those of Feast's local engine."""

    type: str = "mlloop.feast_online_write.ColumnarComputeEngine"
    backend: str | None = None


class ColumnarComputeEngine(LocalComputeEngine):
    """Feast's local compute engine, whose output node writes Redis column by column."""

    def _materialize_one(
        self, registry: BaseRegistry, task: MaterializationTask, **kwargs: Any
    ) -> LocalMaterializationJob:
        # As LocalComputeEngine._materialize_one, with the builder below.
        job_id = f"{task.feature_view.name}-{task.start_time}-{task.end_time}"
        context = self.get_execution_context(registry, task)
        try:
            builder = _ColumnarFeatureBuilder(registry, task, backend=self._get_backend(context))
            builder.build().execute(context)
            return LocalMaterializationJob(job_id=job_id, status=MaterializationJobStatus.SUCCEEDED)
        except Exception as e:
            return LocalMaterializationJob(job_id=job_id, status=MaterializationJobStatus.ERROR, error=e)


class _ColumnarFeatureBuilder(LocalFeatureBuilder):
    def build_output_nodes(self, view: Any, input_node: Any) -> Any:
        node = ColumnarOutputNode("output", self.dag_root.view, inputs=[input_node])  # type: ignore[arg-type]
        self.nodes.append(node)
        return node


class ColumnarOutputNode(LocalOutputNode):
    """Writes Redis with :func:`write_redis_batch`; anything else as Feast's ``LocalOutputNode``."""

    def execute(self, context: ExecutionContext) -> ArrowTableValue:
        view = self.feature_view
        store = context.online_store
        if not (view.online and isinstance(store, RedisOnlineStore) and writable(view)):
            return super().execute(context)
        table = self.get_single_table(context).data
        output = ArrowTableValue(data=table)
        context.node_outputs[self.name] = output
        if table.num_rows == 0:
            return output
        batch_size = context.repo_config.materialization_config.online_write_batch_size
        for batch in [table] if batch_size is None else table.to_batches(max_chunksize=batch_size):
            write_redis_batch(store, context.repo_config, view, batch)
        if view.offline:
            context.offline_store.offline_write_batch(
                config=context.repo_config, feature_view=view, table=table, progress=lambda x: None
            )
        return output


def writable(view: FeatureView) -> bool:
    """Whether :func:`write_redis_batch` writes this view (scalar features, int64/string keys)."""
    if getattr(view, "batch_source", None) is None or not hasattr(view, "entity_columns"):
        return False
    keys = [e.dtype.to_value_type() for e in view.entity_columns]
    features = [f.dtype.to_value_type() for f in view.features]
    return bool(keys) and all(k in (ValueType.INT64, ValueType.STRING) for k in keys) and set(features) <= _SCALAR_TYPES


def write_redis_batch(
    store: RedisOnlineStore, config: RepoConfig, view: FeatureView, batch: pa.RecordBatch | pa.Table
) -> int:
    """Write one batch of a view's rows (newest per entity, as materialization selects them) into
    Redis as Feast's ``online_write_batch`` would; returns the number of rows written."""
    online_config = config.online_store
    fv_name = _versioned_fv_name(view, config)
    ts_field = f"_ts:{fv_name}".encode()
    fields = [_mmh3(f"{fv_name}:{f.name}") for f in view.features]
    columns = [value_bytes(batch.column(f.name), f.dtype.to_value_type()) for f in view.features]
    keys = redis_keys(batch, view, config)
    assert view.batch_source is not None  # writable() checked it
    nanos = event_nanos(batch.column(view.batch_source.timestamp_field))

    client = store._get_client(online_config)
    rows: Iterable[int] = range(batch.num_rows)
    if not online_config.skip_dedup:
        cluster = online_config.redis_type == RedisType.redis_cluster
        rows = _newer_rows(client, keys, nanos, ts_field, cluster)
    names = [ts_field, *fields]  # Feast's order: the event time, then the features
    hashes = list(zip(map(_timestamp_bytes, nanos.tolist()), *columns, strict=True))
    written = 0
    with client.pipeline(transaction=False) as pipe:
        for i in rows:
            pipe.hset(keys[i], mapping=dict(zip(names, hashes[i], strict=True)))
            if online_config.key_ttl_seconds:
                pipe.expire(name=keys[i], time=online_config.key_ttl_seconds)
            written += 1
        pipe.execute()
    return written


def _newer_rows(client: Any, keys: Sequence[bytes], nanos: np.ndarray, ts_field: bytes, cluster: bool) -> Iterator[int]:
    """The rows whose event time is newer than the one stored for their key and than any earlier row
    of the batch with that key (Feast's rule: an equal time is not written again)."""
    stored = _stored_times(client, keys, ts_field, cluster)
    latest: dict[bytes, int] = {}
    for i, (key, previous) in enumerate(zip(keys, stored, strict=True)):
        seen = latest.get(key, 0)
        if previous:
            ts = Timestamp()
            ts.ParseFromString(previous)
            seen = max(seen, ts.seconds * 1_000_000_000 + ts.nanos)
        new = int(nanos[i])
        if seen and new <= seen:
            continue
        latest[key] = new
        yield i


_READ_TIMES = """
local out = {}
for i, key in ipairs(KEYS) do out[i] = redis.call('HGET', key, ARGV[1]) or '' end
return out
"""
_READ_CHUNK = 1000


def _stored_times(client: Any, keys: Sequence[bytes], ts_field: bytes, cluster: bool) -> list[bytes]:
    """The event-time field stored under each key (b"" if none). Read by a Lua script, 1,000 keys
    a call: a pipeline of one HMGET per key, as Feast sends, cost more than the writes themselves
    (0.3-0.9 s for 20,000 keys). A cluster's keys live in different slots, which one script call
    cannot read: there, the pipeline."""
    if cluster:
        with client.pipeline(transaction=False) as pipe:
            for key in keys:
                pipe.hget(key, ts_field)
            return [reply or b"" for reply in pipe.execute()]
    script = client.register_script(_READ_TIMES)
    stored: list[bytes] = []
    for start in range(0, len(keys), _READ_CHUNK):
        stored.extend(script(keys=keys[start : start + _READ_CHUNK], args=[ts_field]))
    return stored


def value_bytes(column: pa.Array | pa.ChunkedArray, value_type: ValueType) -> list[bytes]:
    """Each value of a feature column as the bytes of the ``ValueProto`` Feast makes of it."""
    values = column.to_numpy(zero_copy_only=False)
    if value_type == ValueType.DOUBLE and column.type == pa.float64():
        # Feast: NaN or null -> an empty ValueProto (b""), else double_val=value.
        packed = np.empty(len(values), dtype=[("tag", "u1"), ("value", "<f8")])
        packed["tag"] = _DOUBLE_TAG
        packed["value"] = values
        raw = packed.tobytes()
        out = [raw[i : i + 9] for i in range(0, len(raw), 9)]
        for i in np.flatnonzero(np.isnan(values)).tolist():
            out[i] = b""
        return out
    # Feast converts value by value; only the distinct values are handed to it (in order of first
    # appearance, so the first non-null value it checks the type of is the same one).
    codes, uniques = pd.factorize(values, use_na_sentinel=False)
    protos = python_values_to_proto_values(np.asarray(uniques), value_type)  # type: ignore[arg-type]
    converted = [v.SerializeToString() for v in protos]
    return [converted[c] for c in codes.tolist()]


def redis_keys(batch: pa.RecordBatch | pa.Table, view: FeatureView, config: RepoConfig) -> list[bytes]:
    """Each row's Redis key: Feast's ``serialize_entity_key`` (version 3) + the project's name."""
    project = config.project.encode()
    entities = sorted((e.name, e.dtype.to_value_type()) for e in view.entity_columns)
    if config.entity_key_serialization_version < 3:
        raise ValueError("entity_key_serialization_version < 3 is not written column-wise (Feast removed it)")
    head = struct.pack("<I", len(entities))
    for name, _ in entities:
        encoded = name.encode("utf8")
        head += struct.pack("<II", ValueType.STRING.value, len(encoded)) + encoded
    parts = [_key_part_bytes(batch.column(name), value_type) for name, value_type in entities]
    return [b"".join((head, *row, project)) for row in zip(*parts, strict=True)]


def _key_part_bytes(column: pa.Array | pa.ChunkedArray, value_type: ValueType) -> list[bytes]:
    if column.null_count:
        raise ValueError("an entity key column holds nulls: materialization cannot key those rows")
    if value_type == ValueType.INT64:
        packed = np.empty(len(column), dtype=[("type", "<u4"), ("size", "<u4"), ("value", "<i8")])
        packed["type"] = ValueType.INT64.value
        packed["size"] = 8
        packed["value"] = column.to_numpy(zero_copy_only=False).astype(np.int64)
        raw = packed.tobytes()
        return [raw[i : i + 16] for i in range(0, len(raw), 16)]
    header = struct.Struct("<II")
    out = []
    for value in column.to_pylist():
        encoded = str(value).encode("utf8")
        out.append(header.pack(ValueType.STRING.value, len(encoded)) + encoded)
    return out


def event_nanos(column: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """Event times as UTC nanoseconds, truncated to the microsecond as Feast's conversion through
    Python datetimes does."""
    ns = column.cast(pa.timestamp("ns", tz="UTC")).to_numpy(zero_copy_only=False).astype("datetime64[ns]")
    return (ns.astype(np.int64) // 1000) * 1000


def _timestamp_bytes(nanos: int) -> bytes:
    seconds, rest = divmod(nanos, 1_000_000_000)
    return Timestamp(seconds=seconds, nanos=rest).SerializeToString()
