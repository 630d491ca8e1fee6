"""A day's drift sample: a fixed-size, seeded sample of its predictions, written when they are committed.

The drift check compares a window of prediction partitions with the training reference, sampled
down to ``drift.sample_size`` rows. Streaming each partition to draw that sample costs time that
grows with the day's rows (bench B7). So the commit writes, beside ``data.parquet``, a
``drift_sample.parquet`` of ``drift.sample_size`` rows of the columns the check reads, drawn with a
seed of the day: the check then reads a fixed number of rows however large the days grow.

The sample names the partition it was drawn from: the SHA-256 of ``data.parquet``'s footer (row
groups, offsets, column statistics: a rescore by another model or another run gives another
footer) is stored in the sample's schema metadata. The sample is written right after the partition
is published; a reader uses it only when the fingerprint matches the partition it sees, and
otherwise (a partition written before samples existed, a crash between the two writes, a
partition replaced by hand) streams the partition as before (:func:`read_day_sample`). Readers so
see a day's predictions and a sample of exactly those predictions, or no sample, never a stale one.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import TYPE_CHECKING

from mlloop import layout
from mlloop.scoring import CLASS_COLUMN, MODEL_VERSION_COLUMN, SCORE_COLUMN, predictions_path
from mlloop.spec import UseCaseSpec
from mlloop.storage import Storage, StorageError

if TYPE_CHECKING:
    import pandas as pd

log = logging.getLogger(__name__)

SAMPLE_FILE = layout.DRIFT_SAMPLE
FINGERPRINT_KEY = b"mlloop.sample_of_footer_sha256"


def sample_path(storage: Storage, spec: UseCaseSpec, day: dt.date) -> str:
    return layout.PREDICTIONS.path(storage, spec, day, SAMPLE_FILE)


def sample_columns(spec: UseCaseSpec) -> list[str]:
    """What the drift check reads of a prediction row: model features, score, version (+ class)."""
    columns = [*spec.model.features, SCORE_COLUMN, MODEL_VERSION_COLUMN]
    if spec.model.task == "classification":
        columns.append(CLASS_COLUMN)
    return columns


def day_seed(spec: UseCaseSpec, day: dt.date) -> int:
    """The sample's seed: the spec's drift seed and the day, so a rescore draws the same rows."""
    return spec.drift.seed + day.toordinal()


def stream_sample(
    storage: Storage, path: str, rows: int, size: int, seed: int, columns: list[str], batch_rows: int = 65_536
) -> pd.DataFrame:
    """``size`` of the file's ``rows`` rows, chosen with ``seed``, read batch by batch.

    The row positions are drawn up front from the footer's row count, so memory holds one record
    batch plus the sample however large the partition is.
    """
    import numpy as np
    import pandas as pd
    import pyarrow as pa

    from mlloop.storage import arrow_to_pandas

    if size >= rows:
        return storage.read_frame(path, columns=columns)
    positions = np.sort(np.random.default_rng(seed).choice(rows, size=size, replace=False))
    kept, offset = [], 0
    for batch in storage.iter_batches(path, batch_rows, columns=columns):
        lo, hi = np.searchsorted(positions, [offset, offset + batch.num_rows])
        if hi > lo:
            kept.append(batch.take(positions[lo:hi] - offset))
        offset += batch.num_rows
    if not kept:
        return pd.DataFrame(columns=columns)
    return arrow_to_pandas(pa.Table.from_batches(kept))


def write_day_sample(storage: Storage, spec: UseCaseSpec, day: dt.date) -> str:
    """Draw the committed day's sample and write it, stamped with the partition's fingerprint.

    Called by :func:`mlloop.scoring.commit_predictions` right after the move that publishes the
    partition; the sample is itself written atomically (a temporary file moved into place).
    """
    import pyarrow as pa

    source = predictions_path(storage, spec, day)
    fingerprint = storage.footer_sha256(source)
    rows = storage.row_count(source)
    columns = sample_columns(spec)
    frame = stream_sample(storage, source, rows, spec.drift.sample_size, day_seed(spec, day), columns)
    table = pa.Table.from_pandas(frame, preserve_index=False)
    table = table.replace_schema_metadata({**(table.schema.metadata or {}), FINGERPRINT_KEY: fingerprint.encode()})
    return storage.write_table(table, sample_path(storage, spec, day))


def read_day_sample(storage: Storage, spec: UseCaseSpec, day: dt.date, rows: int, size: int) -> pd.DataFrame:
    """``size`` of the day's ``rows`` prediction rows (the drift check's columns), seeded by the day.

    From the day's drift sample when it was drawn from the partition as it is now (fingerprint
    match) and holds enough rows; otherwise by streaming the partition (partitions committed before
    samples existed, or whose sample is missing or stale). Either way the same function of the
    partition's rows and the day: a sample of the seeded sample is a seeded sample.
    """
    source, sample = predictions_path(storage, spec, day), sample_path(storage, spec, day)
    columns = sample_columns(spec)
    if storage.exists(sample):
        try:
            stamp = (storage.read_schema(sample).metadata or {}).get(FINGERPRINT_KEY, b"").decode()
            usable = stamp == storage.footer_sha256(source) and storage.row_count(sample) >= min(size, rows)
            frame = storage.read_frame(sample, columns=columns) if usable else None
        except (OSError, StorageError) as exc:
            log.warning("%s: drift sample unreadable (%s); streaming the partition", sample, exc)
            frame = None
        if frame is not None:
            if len(frame) <= size:
                return frame
            return frame.sample(n=size, random_state=day_seed(spec, day)).reset_index(drop=True)
        log.info("%s was not drawn from %s as it is now: streaming the partition", sample, source)
    return stream_sample(storage, source, rows, size, day_seed(spec, day), columns)
