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


# ------------------------------------------------------------------ crash mid-write, outages
_WRITER = """
import sys
import pandas as pd
from mlloop.storage import local_storage
storage = local_storage(sys.argv[1])
storage.write_frame(pd.DataFrame({"a": list(range(int(sys.argv[3])))}), sys.argv[2])
"""


def _write_in_a_process(root, url, rows: int, faults=None) -> int:  # type: ignore[no-untyped-def]
    import os
    import subprocess
    import sys

    from seams.fault_injection import deployment_env

    env = {k: v for k, v in os.environ.items() if k not in ("MLLOOP_FAULTS_DIR", "MLLOOP_TEST_HOOKS")}
    if faults is not None:
        env.update(deployment_env(faults, env))
    return subprocess.run([sys.executable, "-c", _WRITER, str(root), url, str(rows)], env=env).returncode


def test_a_writer_killed_mid_write_leaves_no_partial_partition_and_the_retry_completes(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """SIGKILL between writing the bytes and publishing them (the fault injection's kill-on-write):
    readers keep seeing the previous partition, never half a file; the rerun publishes and tidies up."""
    import signal

    storage = local_storage(str(tmp_path / "root"))
    url = storage.partition("features", "uc", "fv", dt.date(2026, 1, 1), "data.parquet")
    storage.write_frame(pd.DataFrame({"a": [7]}), url)
    faults = tmp_path / "faults"
    faults.mkdir()
    (faults / "kill-on-write").write_text("features/uc/fv/date=2026-01-01\n")

    code = _write_in_a_process(tmp_path / "root", url, 50_000, faults)

    assert code == -signal.SIGKILL
    assert (faults / "killed-on-write").exists() and not (faults / "kill-on-write").exists()
    folder = tmp_path / "root/features/uc/fv/date=2026-01-01"
    leftovers = [p for p in folder.iterdir() if p.name != "data.parquet"]
    assert len(leftovers) == 1 and leftovers[0].name.startswith(".data.parquet.tmp-")  # the torn temporary
    assert storage.glob(storage.path("features", "uc", "*", "date=*", "*.parquet")) == [url]
    assert storage.read_frame(url)["a"].tolist() == [7]  # the previous partition, whole

    assert _write_in_a_process(tmp_path / "root", url, 50_000, faults) == 0  # the retry (fault disarmed)
    assert storage.read_frame(url)["a"].tolist() == list(range(50_000))
    assert [p.name for p in folder.iterdir()] == ["data.parquet"]  # leftovers of the killed try removed


def test_fault_injection_is_inert_without_its_variable(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.delenv("MLLOOP_FAULTS_DIR", raising=False)
    (tmp_path / "kill-on-write").write_text("date=\n")  # armed, but nobody points at this folder
    storage = local_storage(str(tmp_path / "root"))
    url = storage.partition("features", "uc", "fv", dt.date(2026, 1, 1), "data.parquet")
    storage.write_frame(pd.DataFrame({"a": [1]}), url)
    assert storage.read_frame(url)["a"].tolist() == [1]


def test_an_unreachable_root_is_an_outage_not_a_missing_file(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from mlloop.storage import StorageUnavailable

    root = tmp_path / "root"
    root.mkdir()
    local_storage(str(root)).check_available()
    root.rename(tmp_path / "unmounted")
    with pytest.raises(StorageUnavailable, match=r"storage root .*root does not exist.*Is the volume mounted"):
        local_storage(str(root)).check_available()
