"""Batch scoring: one day's entities, their features through Feast, one pinned model, one partition.

A scoring run works in two steps so that it can be spread over workers:

1. **Score a part** (:func:`score_partition`; :func:`plan_parts` lists the ``N`` parts, from the
   run's request or the spec): part ``i`` of ``N`` takes the day's entity rows (join
   key + event timestamp of the day's feature partition) whose key hashes to ``i``, streams them in
   windows of ``scoring.fetch_rows``, fetches each window's features point-in-time from Feast in
   one query (the next window's while the current one is scored), puts them back in the window's
   order by a row id Feast carries through (Feast may drop and reorder rows), scores with the
   pinned model chunk by chunk (``scoring.chunk_rows``) and appends each chunk to a staging part
   file with a ``ParquetWriter``. Memory holds at most two windows, not the day.
2. **Commit** (:func:`commit_predictions`): once every part is written, validate all of them (row
   count equals the day's entity count, no missing key or score, scores in range, one model
   version) and only then publish ``predictions/<uc>/date=<day>/data.parquet`` in one move. Readers
   see the previous partition or the complete new one, never some parts; a rerun replaces it.

Every output row carries the entity key, the event timestamp, the model's input features (the
drift monitor compares them with the training reference), the score (and the predicted class for
classification) and its lineage: model name, model version, Airflow run id. Nothing in it depends
on the wall clock, so rescoring a day with the same model gives the same rows.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from mlloop import layout
from mlloop import tags as tag_keys
from mlloop.compute import compute_threads
from mlloop.ingestion import features_path
from mlloop.registry import ModelRef, predict_scores
from mlloop.spec import UseCaseSpec
from mlloop.storage import Storage, StorageError

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd
    import pyarrow as pa
    import pyarrow.parquet as pq
    from feast import FeatureStore

    from mlloop.shadow_sample import ShadowSample

log = logging.getLogger(__name__)

SCORE_COLUMN = "score"
CLASS_COLUMN = "predicted_class"
MODEL_NAME_COLUMN = "model_name"
MODEL_VERSION_COLUMN = "model_version"
RUN_ID_COLUMN = "airflow_run_id"
LINEAGE_COLUMNS = (MODEL_NAME_COLUMN, MODEL_VERSION_COLUMN, RUN_ID_COLUMN)
AUDIT_COLUMNS = (RUN_ID_COLUMN,)
"""The only columns that may differ between two scorings of the same day with the same model: which
Airflow run wrote the rows (a manual run's id embeds its trigger time). Everything else is a
function of the day's features and the model version, never of the wall clock."""
CLASS_THRESHOLD = 0.5
"""A binary classifier's ``predict`` is ``P(positive) >= 0.5``; the predicted class uses the same cut."""

FeatureFetcher = Callable[["pd.DataFrame"], "pd.DataFrame"]
"""entity rows (join key, event timestamp, :data:`ENTITY_ROW`) -> those rows with their features, in
any order, each still carrying its :data:`ENTITY_ROW` (Feast passes extra entity columns through)."""

ENTITY_ROW = "_entity_row"
"""Each entity row's position in its fetch window. The join back is a positional take on it: matching
on key + timestamp instead cost as much as a fifth of a scoring run (a hash merge and a dedup)."""


class ScoringError(RuntimeError):
    """The day's rows cannot be scored as they are (a data fault: retrying will not help)."""


class PredictionValidationError(ValueError):
    """Scored output failed validation; nothing was published."""


@dataclass(frozen=True)
class Lineage:
    """What every prediction row records about where it came from."""

    model_name: str
    model_version: str
    airflow_run_id: str

    @classmethod
    def of(cls, ref: ModelRef, airflow_run_id: str) -> Lineage:
        return cls(model_name=ref.name, model_version=str(ref.version), airflow_run_id=airflow_run_id)


@dataclass(frozen=True)
class PartResult:
    """One scored part in staging, as the commit step needs it (travels through XCom as a dict)."""

    partition: int
    partitions: int
    path: str
    rows_in: int
    rows_out: int
    chunks: int
    model_name: str
    model_version: str
    airflow_run_id: str
    seconds: float
    shadow_path: str | None = None
    """The shadow challenger's part file, when the part was also scored with it (:mod:`mlloop.shadow`)."""
    shadow_version: str | None = None
    shadow_rows: int = 0
    """Rows the shadow challenger scored: the part's share of the day's shadow sample."""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PartResult:
        return cls(**{name: data[name] for name in cls.__dataclass_fields__ if name in data})


@dataclass(frozen=True)
class ShadowScorer:
    """The shadow challenger of a scoring run (:mod:`mlloop.shadow`): its loaded model, its lineage,
    and the day's sample of rows it scores (:mod:`mlloop.shadow_sample`)."""

    model: Any
    lineage: Lineage
    sample: ShadowSample


@dataclass(frozen=True)
class CommitResult:
    path: str
    rows: int
    parts: int
    model_name: str
    model_version: str
    score_min: float | None
    score_mean: float | None
    score_max: float | None
    positive_share: float | None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def describe(self) -> str:
        if not self.rows:
            return f"{self.path}: 0 rows (the day had no entities) scored by {self.model_name} v{self.model_version}"
        text = (
            f"{self.path}: {self.rows} rows from {self.parts} part(s), {self.model_name} v{self.model_version}, "
            f"score min/mean/max {self.score_min:.4f}/{self.score_mean:.4f}/{self.score_max:.4f}"
        )
        if self.positive_share is not None:
            text += f", predicted positive {self.positive_share:.2%}"
        return text


# --------------------------------------------------------------------------------------- paths
def predictions_path(storage: Storage, spec: UseCaseSpec, day: dt.date) -> str:
    return layout.PREDICTIONS.path(storage, spec, day)


def model_choice_path(storage: Storage, spec: UseCaseSpec, day: dt.date) -> str:
    """``model.json`` beside a day's predictions: which version scored it, by which policy, and why."""
    return layout.PREDICTIONS.path(storage, spec, day, layout.MODEL_CHOICE)


def part_path(storage: Storage, spec: UseCaseSpec, day: dt.date, partition: int, partitions: int) -> str:
    """Where part ``partition`` of ``partitions`` waits for the commit (never read by consumers)."""
    return layout.PREDICTION_PARTS.path(storage, spec, day, f"part-{partition:05d}-of-{partitions:05d}.parquet")


def feature_service_for(ref: ModelRef, spec: UseCaseSpec) -> str:
    """The Feast service the version was trained on (its tag), else the spec's current one."""
    return ref.tags.get(tag_keys.FEATURE_SERVICE) or spec.model.feature_service


# ------------------------------------------------------------------------------------ entities
def day_entity_count(storage: Storage, spec: UseCaseSpec, day: dt.date) -> int:
    """Rows in the day's feature partition, from the parquet footer (no data is read)."""
    return storage.row_count(features_path(storage, spec, day))


def partition_of(keys: pd.Series, partitions: int) -> np.ndarray:
    """Stable part number of each entity key: the same key always lands in the same part.

    pandas' ``hash_array`` uses a fixed hash key, so every worker and every rerun agrees.
    """
    import pandas as pd

    return pd.util.hash_array(keys.to_numpy()) % partitions


def _normalize_keys(frame: pd.DataFrame, spec: UseCaseSpec) -> pd.DataFrame:
    """One dtype per entity column, whatever the parquet holds: int64/str key, ns UTC timestamp."""
    import pandas as pd

    key, ts = spec.entity.join_key, spec.raw.timestamp_column
    out = frame.copy(deep=False)
    out[key] = out[key].astype("int64") if spec.entity.dtype == "int64" else out[key].astype(str)
    stamps = out[ts]
    if isinstance(stamps.dtype, pd.DatetimeTZDtype):
        stamps = stamps.dt.tz_convert("UTC")  # pd.to_datetime would walk every value (1 s per 200k rows)
    elif pd.api.types.is_datetime64_dtype(stamps.dtype):
        stamps = stamps.dt.tz_localize("UTC")
    else:
        stamps = pd.to_datetime(stamps, utc=True)
    out[ts] = stamps.astype("datetime64[ns, UTC]")
    return out


def iter_entities(
    storage: Storage,
    spec: UseCaseSpec,
    day: dt.date,
    chunk_rows: int,
    partition: int = 0,
    partitions: int = 1,
) -> Iterator[pd.DataFrame]:
    """The day's entity rows of one part, in chunks of at most ``chunk_rows``, in file order.

    Only the join key and event timestamp are read; rows of other parts are dropped batch by batch,
    and what is kept is re-chunked, so a part's chunks stay full however many parts there are.
    """
    import pandas as pd

    if not 0 <= partition < partitions:
        raise ValueError(f"partition must be in [0, {partitions}), got {partition}")
    key, ts = spec.entity.join_key, spec.raw.timestamp_column
    source = features_path(storage, spec, day)
    if not storage.exists(source):
        raise StorageError(f"{source} does not exist: the day's features were not ingested")
    pending: list[pd.DataFrame] = []
    pending_rows = 0
    for batch in storage.iter_batches(source, chunk_rows, columns=[key, ts]):
        frame = _normalize_keys(batch.to_pandas(), spec)
        if partitions > 1:
            frame = frame[partition_of(frame[key], partitions) == partition]
        pending.append(frame)
        pending_rows += len(frame)
        while pending_rows >= chunk_rows:
            merged = pd.concat(pending, ignore_index=True)
            yield merged.iloc[:chunk_rows].reset_index(drop=True)
            rest = merged.iloc[chunk_rows:]
            pending, pending_rows = [rest], len(rest)
    if pending_rows:
        yield pd.concat(pending, ignore_index=True)


# -------------------------------------------------------------------------------- one chunk
def join_features(entities: pd.DataFrame, features: pd.DataFrame, spec: UseCaseSpec) -> pd.DataFrame:
    """``entities`` in their own order with their model features; every entity row must be found.

    ``entities`` carry :data:`ENTITY_ROW` = ``0..n-1``; Feast returns the rows it found, in another
    order, with that column. An entity row without a match is a fault (the day's own feature rows
    are the entities, so Feast must find each one); it is reported with examples, not scored.
    Key and timestamp come from ``entities``, so their types never depend on what Feast returns.
    """
    import numpy as np
    import pandas as pd

    key, ts = spec.entity.join_key, spec.raw.timestamp_column
    absent = [col for col in (ENTITY_ROW, *spec.model.features) if col not in features.columns]
    if absent:
        raise ScoringError(
            f"{spec.name}: the feature service returned no column(s) {absent}; the model needs "
            f"{spec.model.features}. Check the feature service the model version is tagged with."
        )
    rows = features[ENTITY_ROW].to_numpy()
    if len(rows) and (rows.min() < 0 or rows.max() >= len(entities)):
        raise ScoringError(f"{spec.name}: the feature fetcher returned {ENTITY_ROW} values outside the window")
    source = np.full(len(entities), -1, dtype=np.int64)
    source[rows.astype(np.int64)] = np.arange(len(rows))  # a duplicate row: the last one wins
    missing = source < 0
    if missing.any():
        examples = entities.loc[missing, [key, ts]].head(5).to_dict("records")
        raise ScoringError(
            f"{spec.name}: Feast returned no features for {int(missing.sum())} of {len(entities)} entity rows "
            f"(e.g. {examples}). Every row of the day's feature partition must be retrievable: check that "
            "the Feast registry is deployed ('make feast-apply') and that the partition was not rewritten "
            "while scoring, then rerun the day."
        )
    found = features[list(spec.model.features)].take(source).reset_index(drop=True)
    return pd.concat([entities[[key, ts]].reset_index(drop=True), found], axis=1)


def score_table(model: Any, spec: UseCaseSpec, rows: pd.DataFrame, lineage: Lineage, schema: pa.Schema) -> pa.Table:
    """Scored output rows as an Arrow table of ``schema`` (:func:`output_schema`): key, timestamp and
    model features from ``rows``, score (+ class), lineage columns.

    Built column by column straight into Arrow: no scored pandas copy of the chunk, and each lineage
    column is one value repeated, not a million Python strings to convert (bench B2: together ~10% of
    the scoring path at 1M rows). Each feature column is converted on its own, so an integer feature
    that came back as float (a null made it so) is stored as a nullable integer again instead of
    failing the whole conversion.
    """
    import numpy as np
    import pyarrow as pa

    if len(rows):
        with compute_threads():
            scores = np.asarray(predict_scores(model, rows[spec.model.features], spec.model.task), dtype="float64")
    else:
        scores = np.empty(0, dtype="float64")
    computed: dict[str, pa.Array] = {SCORE_COLUMN: pa.array(scores, type=pa.float64())}
    if spec.model.task == "classification":
        computed[CLASS_COLUMN] = pa.array((scores >= CLASS_THRESHOLD).astype("int64"), type=pa.int64())
    values = {
        MODEL_NAME_COLUMN: lineage.model_name,
        MODEL_VERSION_COLUMN: lineage.model_version,
        RUN_ID_COLUMN: lineage.airflow_run_id,
    }
    for name, value in values.items():
        computed[name] = pa.repeat(pa.scalar(value, type=pa.string()), len(rows))
    arrays = [
        computed[f.name] if f.name in computed else pa.array(rows[f.name], type=f.type, from_pandas=True)
        for f in schema
    ]
    return pa.Table.from_arrays(arrays, schema=schema)


def output_schema(spec: UseCaseSpec, source_schema: pa.Schema) -> pa.Schema:
    """The prediction partition's schema: key, timestamp and features typed as in the feature
    partition they came from, then score, class and lineage."""
    import pyarrow as pa

    key, ts = spec.entity.join_key, spec.raw.timestamp_column
    fields = [source_schema.field(name) for name in (key, ts, *spec.model.features)]
    fields = [pa.field(f.name, f.type.value_type if pa.types.is_dictionary(f.type) else f.type) for f in fields]
    fields.append(pa.field(SCORE_COLUMN, pa.float64()))
    if spec.model.task == "classification":
        fields.append(pa.field(CLASS_COLUMN, pa.int64()))
    fields += [pa.field(name, pa.string()) for name in LINEAGE_COLUMNS]
    return pa.schema(fields)


def writer_options(schema: pa.Schema) -> dict[str, Any]:
    """Parquet writer options of prediction files: dictionary encoding for text columns only.

    pyarrow's default tries a dictionary for every column; for the float features and scores
    (nearly all values distinct) it builds one, then falls back to plain. That was two thirds of
    writing a scored day (bench B2: 1.6 s vs 0.5 s per 1M rows) and made the file larger. The
    values written, and how every reader reads them, are unchanged.
    """
    import pyarrow as pa

    text = [f.name for f in schema if pa.types.is_string(f.type) or pa.types.is_large_string(f.type)]
    return {"use_dictionary": text}


# ------------------------------------------------------------------------------- the split
MAX_PARTITIONS = 64
"""The most parts a day may be split into (the spec's ``scoring.partitions`` has the same bound)."""


def plan_parts(spec: UseCaseSpec, partitions: int | str | None = None) -> list[dict[str, int]]:
    """The parts of one scoring run, as keyword arguments of the mapped scoring tasks.

    ``partitions`` is what the run asked for (the DAG's ``partitions`` Param); empty means the
    spec's ``scoring.partitions``. Every part reads the day's entity keys in chunks and keeps the
    keys that hash to it, so more parts mean more, smaller tasks, never more memory per task.
    """
    requested = spec.scoring.partitions if partitions in (None, "", "None") else partitions
    try:
        count = int(requested)
    except (TypeError, ValueError):
        raise ValueError(f"partitions must be a whole number, got {partitions!r}") from None
    if not 1 <= count <= MAX_PARTITIONS:
        raise ValueError(f"partitions must be between 1 and {MAX_PARTITIONS}, got {count}")
    return [{"partition": index, "partitions": count} for index in range(count)]


# -------------------------------------------------------------------------------- one part
def score_partition(
    storage: Storage,
    spec: UseCaseSpec,
    day: dt.date,
    *,
    model: Any,
    fetch_features: FeatureFetcher,
    lineage: Lineage,
    partition: int = 0,
    partitions: int = 1,
    chunk_rows: int | None = None,
    fetch_rows: int | None = None,
    shadow: ShadowScorer | None = None,
) -> PartResult:
    """Score part ``partition`` of ``partitions`` of the day into its staging part file.

    ``shadow``: also score each chunk's rows of the day's shadow sample with that model, from the same
    features, into a second part file (:func:`mlloop.shadow.shadow_part_path`), written the same way.

    Window by window (``scoring.fetch_rows`` entity rows, one Feast query each): entity rows ->
    features (``fetch_features``, Feast in production) -> back in window order; then chunk by chunk
    (``scoring.chunk_rows``): score -> append to the part file. The next window's features are
    fetched while the current one is scored (:func:`prefetched`). The part file is written under a
    temporary name and moved into place when complete, so the commit never sees half a part.
    """
    import numpy as np
    import pyarrow.parquet as pq

    chunk_rows = chunk_rows or spec.scoring.chunk_rows
    fetch_rows = max(fetch_rows or spec.scoring.fetch_rows, chunk_rows)
    started = time.perf_counter()
    schema = output_schema(spec, storage.read_schema(features_path(storage, spec, day)))
    target = part_path(storage, spec, day, partition, partitions)
    from mlloop.shadow import shadow_part_path

    rows_in = rows_out = chunks = shadow_rows = 0
    shadow_target = shadow_part_path(storage, spec, day, partition, partitions) if shadow else None
    with (
        storage.atomic_path(target) as tmp,
        storage.fs.open(tmp, "wb") as handle,
        pq.ParquetWriter(handle, schema, **writer_options(schema)) as writer,
        _optional_writer(storage, shadow_target, schema) as shadow_writer,
    ):

        def with_features(entities: pd.DataFrame) -> pd.DataFrame:
            entities = entities.assign(**{ENTITY_ROW: np.arange(len(entities))})
            return join_features(entities, fetch_features(entities), spec)

        windows = iter_entities(storage, spec, day, fetch_rows, partition, partitions)
        for window in prefetched(windows, with_features):
            rows_in += len(window)
            for start in range(0, len(window), chunk_rows):
                rows = window.iloc[start : start + chunk_rows]
                table = score_table(model, spec, rows, lineage, schema)
                writer.write_table(table)
                if shadow is not None and shadow_writer is not None:
                    sampled = shadow.sample.select(rows, spec)
                    shadow_writer.write_table(score_table(shadow.model, spec, sampled, shadow.lineage, schema))
                    shadow_rows += len(sampled)
                rows_out += table.num_rows
                chunks += 1
                log.info("part %d/%d chunk %d: scored %d rows", partition, partitions, chunks, table.num_rows)
            del window
    return PartResult(
        partition=partition,
        partitions=partitions,
        path=target,
        rows_in=rows_in,
        rows_out=rows_out,
        chunks=chunks,
        model_name=lineage.model_name,
        model_version=lineage.model_version,
        airflow_run_id=lineage.airflow_run_id,
        seconds=round(time.perf_counter() - started, 3),
        shadow_path=shadow_target,
        shadow_version=shadow.lineage.model_version if shadow else None,
        shadow_rows=shadow_rows,
    )


@contextmanager
def _optional_writer(storage: Storage, target: str | None, schema: pa.Schema) -> Iterator[pq.ParquetWriter | None]:
    """A parquet writer publishing ``target`` atomically when the block succeeds; None without a target."""
    import pyarrow.parquet as pq

    if target is None:
        yield None
        return
    with (
        storage.atomic_path(target) as tmp,
        storage.fs.open(tmp, "wb") as handle,
        pq.ParquetWriter(handle, schema, **writer_options(schema)) as writer,
    ):
        yield writer


def prefetched(windows: Iterator[pd.DataFrame], load: Callable[[pd.DataFrame], pd.DataFrame]) -> Iterator[pd.DataFrame]:
    """``load(window)`` of each window, in order, the next one loading while the caller works on
    the current one.

    Scoring loads a window's features through Feast, whose point-in-time query runs in DuckDB (which
    releases the GIL), and predicts on one thread (``compute_threads``): on two cores the query of
    window N+1 overlaps the scoring of window N (bench B2). One load runs at a time, in one thread,
    so Feast's connection is never used concurrently; memory holds at most two loaded windows. An
    error in a load is raised here, when that window's turn comes.
    """
    from concurrent.futures import Future, ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="window-load") as pool:
        pending: Future[pd.DataFrame] | None = None
        for window in windows:
            submitted = pool.submit(load, window)
            if pending is not None:
                yield pending.result()
            pending = submitted
        if pending is not None:
            yield pending.result()


def feast_fetcher(store: FeatureStore, feature_service: str) -> FeatureFetcher:
    """Features of entity rows through Feast's point-in-time retrieval with the given service."""
    from mlloop.feature_store import historical_features

    def fetch(entities: pd.DataFrame) -> pd.DataFrame:
        return historical_features(store, entities, feature_service)

    return fetch


# ---------------------------------------------------------------------------- validate, commit
@dataclass
class _Stats:
    rows: int = 0
    score_sum: float = 0.0
    score_min: float | None = None
    score_max: float | None = None
    positives: int = 0


def validate_parts(
    storage: Storage,
    spec: UseCaseSpec,
    paths: Sequence[str],
    *,
    expected_rows: int,
    lineage: Lineage,
    batch_rows: int | None = None,
) -> _Stats:
    """Check the scored parts as they will be published; raise listing every problem found.

    Reads only the key, score and lineage columns, batch by batch. Rules: the columns a consumer
    relies on are present; the row count equals the day's entity count; no row lacks its key or
    score; scores are in [0, 1] for classification (finite for regression); every row names the
    pinned model version and this run. Batches are ``batch_rows`` (default ``scoring.chunk_rows``)
    long, so checking needs no more memory than scoring.
    """
    import numpy as np
    import pyarrow.compute as pc

    key = spec.entity.join_key
    required = [key, spec.raw.timestamp_column, *spec.model.features, SCORE_COLUMN, *LINEAGE_COLUMNS]
    problems: list[str] = []
    stats = _Stats()
    null_keys = null_scores = out_of_range = wrong_lineage = 0
    for path in paths:
        try:
            names = storage.read_schema(path).names
        except (StorageError, OSError) as exc:
            raise PredictionValidationError(f"scored part {path} is missing or unreadable: {exc}") from exc
        absent = [col for col in required if col not in names]
        if absent:
            problems.append(f"{path} lacks column(s) {absent}")
            continue
        columns = [key, SCORE_COLUMN, MODEL_VERSION_COLUMN, RUN_ID_COLUMN]
        for batch in storage.iter_batches(path, batch_rows or spec.scoring.chunk_rows, columns=columns):
            scores = batch.column(SCORE_COLUMN).to_numpy(zero_copy_only=False).astype("float64")
            present = ~np.isnan(scores)
            stats.rows += batch.num_rows
            null_keys += batch.column(key).null_count
            null_scores += int((~present).sum())
            valid = scores[present]
            if spec.model.task == "classification":
                out_of_range += int(((valid < 0.0) | (valid > 1.0)).sum())
                stats.positives += int((valid >= CLASS_THRESHOLD).sum())
            else:
                out_of_range += int((~np.isfinite(valid)).sum())
            if len(valid):
                stats.score_sum += float(valid.sum())
                low, high = float(valid.min()), float(valid.max())
                stats.score_min = low if stats.score_min is None else min(stats.score_min, low)
                stats.score_max = high if stats.score_max is None else max(stats.score_max, high)
            same_version = pc.equal(batch.column(MODEL_VERSION_COLUMN), lineage.model_version)
            same_run = pc.equal(batch.column(RUN_ID_COLUMN), lineage.airflow_run_id)
            consistent = pc.and_(same_version, same_run)
            wrong_lineage += batch.num_rows - pc.sum(pc.fill_null(consistent, False).cast("int64")).as_py()
    if stats.rows != expected_rows:
        problems.append(f"{stats.rows} rows scored but the day has {expected_rows} entity rows")
    if null_keys:
        problems.append(f"{null_keys} row(s) without {key}")
    if null_scores:
        problems.append(f"{null_scores} row(s) without a score")
    if out_of_range:
        allowed = "outside [0, 1]" if spec.model.task == "classification" else "not finite"
        problems.append(f"{out_of_range} score(s) {allowed}")
    if wrong_lineage:
        problems.append(
            f"{wrong_lineage} row(s) not from model version {lineage.model_version} of run {lineage.airflow_run_id}"
        )
    if problems:
        raise PredictionValidationError("; ".join(problems))
    return stats


def commit_predictions(
    storage: Storage,
    spec: UseCaseSpec,
    day: dt.date,
    parts: Sequence[PartResult],
    *,
    lineage: Lineage,
    expected_rows: int | None = None,
    chunk_rows: int | None = None,
) -> CommitResult:
    """Validate every part, then publish them as the day's prediction partition, all or nothing.

    One part is moved into place; several are streamed into one file under a temporary name that
    is then moved into place. Either way readers see the old partition or the whole new one. Then the
    day's drift sample is written (:mod:`mlloop.prediction_sample`): it names the partition it was
    drawn from, so a reader never pairs it with other rows. On a validation failure nothing is
    published and the parts stay in staging for inspection.
    """
    result = publish_parts(
        storage,
        spec,
        day,
        parts,
        lineage=lineage,
        target=predictions_path(storage, spec, day),
        expected_rows=expected_rows,
        chunk_rows=chunk_rows,
    )
    # The drift check's fixed-size sample of exactly these rows (bench B7: its cost stays flat).
    # Predictions only: the shadow partition is never read as predictions, so it has no sample.
    from mlloop.prediction_sample import write_day_sample

    write_day_sample(storage, spec, day)
    return result


def publish_parts(
    storage: Storage,
    spec: UseCaseSpec,
    day: dt.date,
    parts: Sequence[PartResult],
    *,
    lineage: Lineage,
    target: str,
    expected_rows: int | None = None,
    chunk_rows: int | None = None,
) -> CommitResult:
    """:func:`commit_predictions` into any ``target`` (the shadow partition uses it too)."""
    if not parts:
        raise PredictionValidationError("no scored parts to commit")
    ordered = sorted(parts, key=lambda p: p.partition)
    counts = {p.partitions for p in ordered}
    expected_parts = list(range(ordered[0].partitions))
    if len(counts) != 1 or [p.partition for p in ordered] != expected_parts:
        got = [f"{p.partition}/{p.partitions}" for p in ordered]
        raise PredictionValidationError(f"scored parts {got} are not exactly parts 0..N-1 of one split")
    if expected_rows is None:
        expected_rows = day_entity_count(storage, spec, day)
    chunk_rows = chunk_rows or spec.scoring.chunk_rows
    stats = validate_parts(
        storage, spec, [p.path for p in ordered], expected_rows=expected_rows, lineage=lineage, batch_rows=chunk_rows
    )
    _publish(storage, ordered, target, chunk_rows)
    classification = spec.model.task == "classification"
    return CommitResult(
        path=target,
        rows=stats.rows,
        parts=len(ordered),
        model_name=lineage.model_name,
        model_version=lineage.model_version,
        score_min=stats.score_min,
        score_mean=stats.score_sum / stats.rows if stats.rows else None,
        score_max=stats.score_max,
        positive_share=(stats.positives / stats.rows if stats.rows else None) if classification else None,
    )


def _publish(storage: Storage, ordered: Sequence[PartResult], target: str, chunk_rows: int) -> None:
    """Move one part, or stream several into one file, over ``target`` in one step; drop the parts."""
    import pyarrow.parquet as pq

    if len(ordered) == 1:
        storage.move(ordered[0].path, target)
    else:
        schema = storage.read_schema(ordered[0].path)
        with (
            storage.atomic_path(target) as tmp,
            storage.fs.open(tmp, "wb") as handle,
            pq.ParquetWriter(handle, schema, **writer_options(schema)) as writer,
        ):
            for part in ordered:
                for batch in storage.iter_batches(part.path, chunk_rows):
                    writer.write_batch(batch)
        for part in ordered:
            storage.delete(part.path)


def score_day(
    storage: Storage,
    spec: UseCaseSpec,
    day: dt.date,
    *,
    model: Any,
    fetch_features: FeatureFetcher,
    lineage: Lineage,
    chunk_rows: int | None = None,
    fetch_rows: int | None = None,
) -> CommitResult:
    """Score and commit the whole day in one process (one part): the single-worker path."""
    part = score_partition(
        storage,
        spec,
        day,
        model=model,
        fetch_features=fetch_features,
        lineage=lineage,
        chunk_rows=chunk_rows,
        fetch_rows=fetch_rows,
    )
    return commit_predictions(storage, spec, day, [part], lineage=lineage, chunk_rows=chunk_rows)
