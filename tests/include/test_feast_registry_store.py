"""The local Feast registry is replaced in one step: a reader in another process never parses half
of it. Feast's own file store rewrites it in place; in the end-to-end loop a task then read a
registry that lacked the other use case's feature view."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from mlloop.feature_store import open_store
from mlloop.settings import default_registry_store, get_settings


@pytest.mark.parametrize(
    ("registry", "store"),
    [
        ("/data/feast/registry.db", "mlloop.feast_registry_store.AtomicFileRegistryStore"),
        ("file:///data/feast/registry.db", "mlloop.feast_registry_store.AtomicFileRegistryStore"),
        ("s3://bucket/feast/registry.db", "S3RegistryStore"),
        ("gs://bucket/feast/registry.db", "GCSRegistryStore"),
    ],
)
def test_the_store_follows_the_registry_path(registry: str, store: str) -> None:
    assert default_registry_store(registry) == store


def test_an_explicit_store_wins(monkeypatch: pytest.MonkeyPatch, mlloop_home: Path) -> None:
    monkeypatch.setenv("MLLOOP_FEAST_REGISTRY_STORE", "FileRegistryStore")
    assert get_settings().feast_environment()["MLLOOP_FEAST_REGISTRY_STORE"] == "FileRegistryStore"


def test_a_reader_sees_the_whole_old_registry_until_the_new_one_is_complete(
    feast_registry: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Materializing rewrites the registry (Feast's ``apply_materialization``, what ``materialize``
    calls when it is done); at the last moment before the new file takes its place, the file a
    reader would open is still the complete old registry."""
    import datetime as dt

    from feast.protos.feast.core.Registry_pb2 import Registry as RegistryProto

    import mlloop.feast_registry_store as module
    from mlloop.feast_registry_store import AtomicFileRegistryStore

    store = open_store()
    assert isinstance(store.registry._registry_store, AtomicFileRegistryStore)
    path = Path(get_settings().feast_registry)
    views_before = {fv.spec.name for fv in _parse(path, RegistryProto).feature_views}
    assert {"customer_profile", "meter_profile"} <= views_before

    seen: list[Any] = []
    real_replace = os.replace

    def replace_after_reading(src: str, dst: str | os.PathLike[str]) -> None:
        seen.append(_parse(path, RegistryProto))  # what a reader gets mid-write
        real_replace(src, dst)

    monkeypatch.setattr(module.os, "replace", replace_after_reading)
    day = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    view = store.get_feature_view("customer_profile")
    store.registry.apply_materialization(view, store.project, day, day + dt.timedelta(days=1))

    assert seen, "materialize did not write the registry through the atomic store"
    assert all({fv.spec.name for fv in proto.feature_views} == views_before for proto in seen)
    after = _parse(path, RegistryProto)
    assert {fv.spec.name for fv in after.feature_views} == views_before
    profile = next(fv for fv in after.feature_views if fv.spec.name == "customer_profile")
    assert len(profile.meta.materialization_intervals) == 1  # the write itself went through
    assert [p.name for p in path.parent.iterdir() if p.name.endswith(".tmp")] == []


def _parse(path: Path, proto_class: Any) -> Any:
    proto = proto_class()
    proto.ParseFromString(path.read_bytes())
    return proto
