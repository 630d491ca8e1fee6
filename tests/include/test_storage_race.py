"""Two writers of one partition at once: a manual Day run racing the scheduled run, or a zombie try
and its retry. Both must finish, the last publish wins, and a reader polling the partition the
whole time never sees a torn file. Checked with threads and with processes, on a local root and on
S3 (moto's server on loopback, in this process: nothing reaches the network).
"""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest

from mlloop.storage import Storage, StorageError

ROWS = 20_000
WRITES = 25

_WRITER = """
import sys
import pandas as pd
from mlloop.storage import Storage
storage = Storage.from_url(sys.argv[1])
for _ in range(int(sys.argv[4])):
    storage.write_frame(pd.DataFrame({"writer": [sys.argv[3]] * int(sys.argv[5])}), sys.argv[2])
"""


def _root(where: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    if where == "local":
        return str(tmp_path / "root")
    return f"s3://{request.getfixturevalue('moto_bucket')}/storage"


def _write_with_threads(root: str, url: str) -> list[BaseException]:
    errors: list[BaseException] = []

    def write(tag: str) -> None:
        storage = Storage.from_url(root)
        try:
            for _ in range(WRITES):
                storage.write_frame(pd.DataFrame({"writer": [tag] * ROWS}), url)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(tag,)) for tag in ("scheduled", "manual")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return errors


def _write_with_processes(root: str, url: str) -> list[BaseException]:
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _WRITER, root, url, tag, str(WRITES), str(ROWS)],
            env=dict(os.environ),
            stderr=subprocess.PIPE,
            text=True,
        )
        for tag in ("scheduled", "manual")
    ]
    errors: list[BaseException] = []
    for proc in procs:
        _, err = proc.communicate(timeout=600)
        if proc.returncode != 0:
            errors.append(RuntimeError(err.strip().splitlines()[-1] if err.strip() else f"exit {proc.returncode}"))
    return errors


WRITERS: dict[str, Callable[[str, str], list[BaseException]]] = {
    "threads": _write_with_threads,
    "processes": _write_with_processes,
}


@pytest.mark.parametrize("where", ["local", "s3"])
@pytest.mark.parametrize("how", sorted(WRITERS))
def test_two_writers_of_one_partition_both_finish_and_no_reader_sees_a_torn_file(
    where: str, how: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    root = _root(where, tmp_path, request)
    storage = Storage.from_url(root)
    url = storage.partition("features", "uc", "fv", dt.date(2026, 1, 1), "data.parquet")
    storage.write_frame(pd.DataFrame({"writer": ["before"] * ROWS}), url)

    seen: list[str] = []
    torn: list[str] = []
    done = threading.Event()

    def poll() -> None:
        reader = Storage.from_url(root)
        while not done.is_set():
            try:
                frame = reader.read_frame(url)
            except StorageError as exc:
                torn.append(str(exc))
                continue
            writers = set(frame["writer"])
            if len(frame) != ROWS or len(writers) != 1:
                torn.append(f"{len(frame)} rows from {writers}")
            else:
                seen.append(writers.pop())
            time.sleep(0.005)

    reader = threading.Thread(target=poll)
    reader.start()
    try:
        errors = WRITERS[how](root, url)
    finally:
        done.set()
        reader.join()

    assert errors == []  # both writers finished: nobody's temporary was removed under it
    assert torn == []
    assert len(seen) > 0
    last = storage.read_frame(url)
    assert len(last) == ROWS and set(last["writer"]) <= {"scheduled", "manual"}  # the last publish won
    folder = root + "/features/uc/fv/date=2026-01-01"
    assert [p.rpartition("/")[2] for p in storage.glob(folder + "/*")] == ["data.parquet"]
    assert storage.glob(folder + "/.data.parquet.tmp-*") == []  # nothing left behind by either writer


def test_a_temporary_of_a_dead_writer_or_past_the_age_limit_is_tidied_and_a_live_one_is_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mlloop.storage import _HOST, local_storage

    storage = local_storage(str(tmp_path))
    url = storage.partition("features", "uc", "fv", dt.date(2026, 1, 1), "data.parquet")
    folder = tmp_path / "features/uc/fv/date=2026-01-01"
    folder.mkdir(parents=True)
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    mine = folder / f".data.parquet.tmp-{_HOST}-{os.getpid()}-live"
    killed = folder / f".data.parquet.tmp-{_HOST}-{dead.stdout.strip()}-dead"
    elsewhere = folder / ".data.parquet.tmp-otherhost-1-old"
    for path in (mine, killed, elsewhere):
        path.write_bytes(b"partial")
    day_ago = time.time() - 2 * 24 * 3600
    os.utime(elsewhere, (day_ago, day_ago))

    storage.write_frame(pd.DataFrame({"a": [1]}), url)

    assert sorted(p.name for p in folder.iterdir()) == sorted(["data.parquet", mine.name])
