"""One storage root, local folder or ``s3://``, behind one fsspec filesystem.

Code never branches on local vs S3: it asks a :class:`Storage` for paths and reads/writes through
it. Writes are atomic (a temporary sibling is written whole, then moved into place; a move is an
``os.replace`` locally and a single PUT-by-copy on S3), so readers see the old file or the new one,
never half of one; rerunning an interval replaces its partition instead of appending to it.

The layout under the root, partitioned by use case and interval::

    landing/<use_case>/<dataset>/date=YYYY-MM-DD/batch.parquet      raw batches as they land
    quarantine/<use_case>/<dataset>/date=YYYY-MM-DD/rows.parquet    rejected rows with reasons
    staging/<use_case>/<dataset>/date=YYYY-MM-DD/data.parquet       validated rows between tasks
    features/<use_case>/<dataset>/date=YYYY-MM-DD/data.parquet      Feast offline source partitions
    predictions/<use_case>/date=YYYY-MM-DD/data.parquet              one partition per interval
    reports/<use_case>/drift/date=YYYY-MM-DD/report.{html,json}
"""

from __future__ import annotations

import datetime as dt
import os
import socket
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import fsspec
from fsspec.core import url_to_fs

from mlloop import fault_injection

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa
    from fsspec import AbstractFileSystem

ROW_GROUP_ROWS = 131_072
# A temporary older than this belongs to a writer that is gone (killed, lost with its worker): no
# task runs this long, so no live writer can own it. Override with MLLOOP_TEMPORARY_MAX_AGE_SECONDS.
TEMPORARY_MAX_AGE_SECONDS = 24 * 3600.0
_HOST = socket.gethostname().replace("-", "_").replace("/", "_")
AREAS = ("landing", "quarantine", "staging", "features", "predictions", "reports", "shadow")


class StorageError(RuntimeError):
    """A storage read or write failed; the message names the path and what to check."""


class StorageUnavailable(StorageError):
    """The storage root itself cannot be reached: an outage or a misconfiguration, not missing data."""


def partition_name(day: dt.date) -> str:
    return f"date={day.isoformat()}"


@dataclass(frozen=True)
class Storage:
    """A storage root plus the filesystem that reaches it."""

    url: str
    fs: AbstractFileSystem

    @classmethod
    def from_url(cls, url: str, **storage_options: Any) -> Storage:
        fs, _ = url_to_fs(url, **storage_options)
        return cls(url=url.rstrip("/"), fs=fs)

    @classmethod
    def from_filesystem(cls, url: str, fs: AbstractFileSystem) -> Storage:
        return cls(url=url.rstrip("/"), fs=fs)

    # ----------------------------------------------------------------- paths
    def path(self, *parts: str) -> str:
        """Full URL of ``parts`` under the root (what users see in logs and UIs)."""
        return "/".join([self.url, *(p.strip("/") for p in parts if p)])

    def partition(self, area: str, use_case: str, dataset: str | None, day: dt.date, filename: str) -> str:
        if area not in AREAS:
            raise ValueError(f"unknown storage area {area!r}; expected one of {AREAS}")
        parts = [area, use_case, *([dataset] if dataset else []), partition_name(day), filename]
        return self.path(*parts)

    def contains(self, url: str) -> bool:
        """Whether ``url`` lies under this root (trigger input must not escape it)."""
        root = self._strip(self.url).rstrip("/") + "/"
        target = self._strip(url)
        return "/../" not in f"/{target}/" and target.startswith(root)

    def _strip(self, url: str) -> str:
        return str(self.fs._strip_protocol(url))

    @property
    def is_local(self) -> bool:
        return "file" in (self.fs.protocol if isinstance(self.fs.protocol, tuple) else (self.fs.protocol,))

    def check_available(self) -> None:
        """Raise :class:`StorageUnavailable` unless the root can be listed.

        A missing or unreachable root must not look like "the partition has not landed yet": a
        sensor would wait for hours and a reader would report a missing file instead of the outage.
        """
        root = self._strip(self.url)
        # A bucket's prefix exists only once something is written under it: check the bucket there.
        anchor = root if self.is_local else root.split("/", 1)[0]
        try:
            if self.fs.isdir(anchor):
                self.fs.ls(anchor, detail=False)
                return
            problem = "does not exist or is not a folder"
        except Exception as exc:  # any filesystem: PermissionError, ConnectionError, botocore errors...
            problem = f"cannot be listed ({type(exc).__name__}: {exc})"
        raise StorageUnavailable(
            f"storage root {self.url} {problem}. Is the volume mounted / the bucket reachable, and is "
            "MLLOOP_STORAGE_ROOT (and MLLOOP_STORAGE_CONN_ID for s3://) right? Transient outages retry "
            "by themselves; once storage is back, clear the failed task (every write is idempotent)."
        )

    # ------------------------------------------------------------ reading
    def exists(self, url: str) -> bool:
        return bool(self.fs.exists(self._strip(url)))

    def glob(self, pattern: str) -> list[str]:
        protocol = self.url.split("://", 1)[0] + "://" if "://" in self.url else ""
        return sorted(protocol + p for p in self.fs.glob(self._strip(pattern)))

    def read_bytes(self, url: str) -> bytes:
        try:
            return bytes(self.fs.cat_file(self._strip(url)))
        except FileNotFoundError as exc:
            raise StorageError(f"{url} does not exist") from exc

    def read_table(self, url: str, columns: list[str] | None = None) -> pa.Table:
        """Read one parquet file; a missing, truncated or non-parquet file raises StorageError."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        try:
            # One read of one version of the file: pyarrow given a path may stat and open it apart
            # (size, footer, column chunks), and a publish between them tears the read. Locally an
            # open file keeps its inode whatever os.replace does; on S3 one GET returns one version.
            if self.is_local:
                with pa.OSFile(self._strip(url), "rb") as handle:
                    return pq.read_table(handle, columns=columns)
            data = self.fs.cat_file(self._strip(url))
            return pq.read_table(pa.BufferReader(data), columns=columns)
        except FileNotFoundError as exc:
            raise StorageError(f"{url} does not exist") from exc
        except (pa.ArrowInvalid, OSError) as exc:
            twice = self._repeated_columns(url)
            if twice:
                raise StorageError(
                    f"{url} has column name(s) {twice} more than once: rename or drop the copies upstream "
                    "and re-deliver the file"
                ) from exc
            raise StorageError(
                f"{url} is not a readable parquet file ({exc}); it may be truncated, empty or "
                "another format named .parquet: re-deliver the file"
            ) from exc

    def _repeated_columns(self, url: str) -> list[str]:
        """Column names a parquet file holds twice (Arrow cannot select them), from its footer."""
        import pyarrow.parquet as pq

        try:
            with self.fs.open(self._strip(url), "rb") as handle:
                names = pq.ParquetFile(handle).schema_arrow.names
        except Exception:  # not parquet at all: the caller's message says so
            return []
        return sorted({name for name in names if names.count(name) > 1})

    def read_frame(self, url: str, columns: list[str] | None = None) -> pd.DataFrame:
        return arrow_to_pandas(self.read_table(url, columns=columns))

    def read_schema(self, url: str) -> pa.Schema:
        """The Arrow schema of one parquet file, from its footer (no data is read)."""
        import pyarrow.parquet as pq

        try:
            with self.fs.open(self._strip(url), "rb") as handle:
                return pq.read_schema(handle)
        except FileNotFoundError as exc:
            raise StorageError(f"{url} does not exist") from exc

    def row_count(self, url: str) -> int:
        """Rows of one parquet file, from its footer (no data is read)."""
        import pyarrow.parquet as pq

        try:
            with self.fs.open(self._strip(url), "rb") as handle:
                return int(pq.ParquetFile(handle).metadata.num_rows)
        except FileNotFoundError as exc:
            raise StorageError(f"{url} does not exist") from exc

    def iter_batches(self, url: str, batch_rows: int, columns: list[str] | None = None) -> Iterator[pa.RecordBatch]:
        """Stream a parquet file in record batches so memory does not grow with the file."""
        import pyarrow.parquet as pq

        # pre_buffer (pyarrow's default) caches every column chunk read so far until the file is
        # closed: memory would grow with the file after all. Off, one row group is held at a time.
        with self.fs.open(self._strip(url), "rb") as handle:
            yield from pq.ParquetFile(handle, pre_buffer=False).iter_batches(batch_size=batch_rows, columns=columns)

    # ------------------------------------------------------------ writing
    @contextmanager
    def atomic_path(self, url: str) -> Iterator[str]:
        """Yield a temporary sibling of ``url``; on success it is moved over ``url`` in one step.

        The temporary name starts with a dot and does not end in ``.parquet``, so readers that glob
        ``*.parquet`` (Feast's offline store, DuckDB) never pick up a half-written file. It names its
        writer (``.<name>.tmp-<host>-<pid>-<uuid>``): two writers of one partition at once (a manual
        run racing the scheduled one, a zombie try and its retry) each publish whole files and the
        last move wins, because a publisher only tidies up temporaries that provably have no live
        writer (:func:`_is_abandoned`), never another writer's file in progress.
        """
        final = self._strip(url)
        parent, _, name = final.rpartition("/")
        tmp = f"{parent}/.{name}.tmp-{_HOST}-{os.getpid()}-{uuid.uuid4().hex}"
        self.fs.makedirs(parent, exist_ok=True)
        try:
            yield tmp
            fault_injection.on_atomic_write(final, tmp if self.is_local else None)
            self.fs.mv(tmp, final)
        except BaseException:
            if self.fs.exists(tmp):
                self.fs.rm(tmp)
            raise
        # A process killed mid-write (SIGKILL, lost worker) leaves its temporary behind; once the
        # file is published, those leftovers are garbage (and already invisible to readers).
        for leftover in self.fs.glob(f"{parent}/.{name}.tmp-*"):
            if self._is_abandoned(leftover):
                try:
                    self.fs.rm(leftover)
                except FileNotFoundError:  # its writer published or tidied it meanwhile
                    pass

    def _is_abandoned(self, tmp: str) -> bool:
        """Whether no live writer can own the temporary ``tmp``.

        Its writer's process is gone (same host, pid not running), or it is older than
        ``MLLOOP_TEMPORARY_MAX_AGE_SECONDS`` (a writer on another host: only age can tell).
        """
        owner = tmp.rpartition(".tmp-")[2].split("-")
        if len(owner) == 3 and owner[0] == _HOST and owner[1].isdigit() and not _pid_alive(int(owner[1])):
            return True
        try:
            info = self.fs.info(tmp)
        except FileNotFoundError:
            return False
        written = info.get("mtime") or info.get("LastModified") or info.get("created")
        if isinstance(written, dt.datetime):
            written = written.timestamp()
        if not isinstance(written, int | float):
            return False
        max_age = float(os.environ.get("MLLOOP_TEMPORARY_MAX_AGE_SECONDS", TEMPORARY_MAX_AGE_SECONDS))
        return time.time() - float(written) > max_age

    def write_table(self, table: pa.Table, url: str) -> str:
        import pyarrow.parquet as pq

        with self.atomic_path(url) as tmp:
            # Bounded row groups: readers that stream (scoring, drift sampling) decode one row
            # group at a time, so its size, not the file's, bounds their memory.
            pq.write_table(table, tmp, filesystem=self.fs, row_group_size=ROW_GROUP_ROWS)
        return url

    def write_frame(self, frame: pd.DataFrame, url: str) -> str:
        import pyarrow as pa

        return self.write_table(pa.Table.from_pandas(frame, preserve_index=False), url)

    def write_bytes(self, data: bytes, url: str) -> str:
        with self.atomic_path(url) as tmp, self.fs.open(tmp, "wb") as handle:
            handle.write(data)
        return url

    def move(self, src: str, dst: str) -> str:
        """Move a complete file over ``dst`` in one step (``os.replace`` locally, one copy on S3)."""
        target = self._strip(dst)
        self.fs.makedirs(target.rpartition("/")[0], exist_ok=True)
        self.fs.mv(self._strip(src), target)
        return dst

    def delete(self, url: str) -> None:
        path = self._strip(url)
        if self.fs.exists(path):
            self.fs.rm(path, recursive=True)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, another user's
        return True
    return True


def arrow_to_pandas(table: pa.Table) -> pd.DataFrame:
    """Arrow -> pandas keeping integer columns with nulls as nullable ``Int64``, not float.

    A null in an integer key must stay a null in an integer column so validation can quarantine
    that row instead of rejecting the whole batch for a "float" key.
    """
    import pandas as pd
    import pyarrow as pa

    mapping = {pa.int64(): pd.Int64Dtype(), pa.int32(): pd.Int64Dtype()}
    return table.to_pandas(types_mapper=mapping.get)


def local_storage(root: str) -> Storage:
    """Storage on a local folder (tests and the embedded default)."""
    return Storage.from_filesystem(root, fsspec.filesystem("file"))
