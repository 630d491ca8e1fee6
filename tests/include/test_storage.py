"""The storage root: atomic replace, hidden temporaries, containment."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

from mlloop.storage import Storage, StorageError, local_storage


def test_write_is_atomic_and_replaces(tmp_path) -> None:  # type: ignore[no-untyped-def]
    storage = local_storage(str(tmp_path))
    url = storage.partition("features", "uc", "fv", dt.date(2026, 1, 1), "data.parquet")
    storage.write_frame(pd.DataFrame({"a": [1, 2]}), url)
    storage.write_frame(pd.DataFrame({"a": [3]}), url)
    assert storage.read_frame(url)["a"].tolist() == [3]
    assert [p.name for p in (tmp_path / "features/uc/fv/date=2026-01-01").iterdir()] == ["data.parquet"]


def test_failed_write_leaves_the_old_partition(tmp_path) -> None:  # type: ignore[no-untyped-def]
    storage = local_storage(str(tmp_path))
    url = storage.path("predictions", "uc", "date=2026-01-01", "data.parquet")
    storage.write_frame(pd.DataFrame({"a": [1]}), url)
    with pytest.raises(RuntimeError), storage.atomic_path(url) as tmp:
        with open(tmp, "wb") as handle:
            handle.write(b"PAR1 half a file")
        raise RuntimeError("killed mid-write")
    assert storage.read_frame(url)["a"].tolist() == [1]
    assert len(list((tmp_path / "predictions/uc/date=2026-01-01").iterdir())) == 1


def test_temporary_files_are_invisible_to_parquet_globs(tmp_path) -> None:  # type: ignore[no-untyped-def]
    storage = local_storage(str(tmp_path))
    url = storage.path("features", "x", "date=2026-01-01", "data.parquet")
    with storage.atomic_path(url) as tmp:
        with open(tmp, "wb") as handle:
            handle.write(b"partial")
        assert storage.glob(storage.path("features", "x", "date=*", "*.parquet")) == []


def test_unreadable_files_raise_a_clear_error(tmp_path) -> None:  # type: ignore[no-untyped-def]
    storage = local_storage(str(tmp_path))
    csv = tmp_path / "batch.parquet"
    csv.write_text("a,b\n1,2\n")
    with pytest.raises(StorageError, match="not a readable parquet file"):
        storage.read_table(str(csv))
    with pytest.raises(StorageError, match="does not exist"):
        storage.read_table(str(tmp_path / "missing.parquet"))


def test_contains_refuses_paths_outside_the_root(tmp_path) -> None:  # type: ignore[no-untyped-def]
    storage = Storage.from_url(str(tmp_path / "root"))
    assert storage.contains(str(tmp_path / "root" / "landing" / "x.parquet"))
    assert not storage.contains(str(tmp_path / "elsewhere" / "x.parquet"))
    assert not storage.contains(str(tmp_path / "root" / ".." / "etc" / "passwd"))
