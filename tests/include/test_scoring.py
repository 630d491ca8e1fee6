"""Batch scoring core: chunking, parts and commit, join-back, validation, lineage, bounded memory."""

from __future__ import annotations

import datetime as dt
import gc
import tracemalloc
from typing import Any

import numpy as np
import pandas as pd
import pytest

from loop_fixtures import (
    SMALL,
    feature_frame,
    lookup_fetcher,
    model_input,
    synthetic_features,
    train_small_model,
    write_clean_features,
)
from mlloop.ingestion import features_path
from mlloop.scoring import (
    CLASS_COLUMN,
    LINEAGE_COLUMNS,
    SCORE_COLUMN,
    Lineage,
    PredictionValidationError,
    ScoringError,
    commit_predictions,
    part_path,
    plan_parts,
    predictions_path,
    score_day,
    score_partition,
)

DAY = dt.date(2026, 11, 5)
LINEAGE = Lineage(model_name="credit_risk", model_version="3", airflow_run_id="scheduled__2026-11-05")


class ScoresAbove1:
    """A broken model: 'probabilities' outside [0, 1]."""

    def predict_proba(self, frame: pd.DataFrame) -> np.ndarray:
        return np.column_stack([np.zeros(len(frame)), np.full(len(frame), 1.5)])


class Logistic:
    """A model with no per-call overhead: the memory test measures the scoring code, not sklearn."""

    def __init__(self, column: str) -> None:
        self.column = column

    def predict_proba(self, frame: pd.DataFrame) -> np.ndarray:
        p = 1.0 / (1.0 + np.exp(-frame[self.column].to_numpy(dtype="float64") / 50.0))
        return np.column_stack([1.0 - p, p])


class NanScores:
    def predict_proba(self, frame: pd.DataFrame) -> np.ndarray:
        return np.column_stack([np.zeros(len(frame)), np.full(len(frame), np.nan)])


@pytest.fixture
def day_features(storage, spec):  # type: ignore[no-untyped-def]
    days = [DAY - dt.timedelta(days=2), DAY - dt.timedelta(days=1), DAY]
    write_clean_features(storage, spec, days, **SMALL)
    return feature_frame(storage, spec, [DAY])


@pytest.fixture
def model(storage, spec, day_features):  # type: ignore[no-untyped-def]
    frame = feature_frame(storage, spec, [DAY - dt.timedelta(days=2)])
    rng = np.random.default_rng(0)
    frame[spec.labels.column] = (rng.random(len(frame)) < 0.3).astype("int64")
    return train_small_model(spec, frame)


def test_chunked_scoring_equals_one_pass(storage, spec, day_features, model) -> None:
    fetch = lookup_fetcher(day_features, spec)
    one_pass = score_day(storage, spec, DAY, model=model, fetch_features=fetch, lineage=LINEAGE, chunk_rows=10_000)
    whole = storage.read_frame(one_pass.path)
    chunked = score_day(storage, spec, DAY, model=model, fetch_features=fetch, lineage=LINEAGE, chunk_rows=100)
    pd.testing.assert_frame_equal(storage.read_frame(chunked.path), whole)
    assert len(whole) == len(day_features)


def test_rows_keep_input_order_features_and_lineage(storage, spec, day_features, model) -> None:
    key, ts = spec.entity.join_key, spec.raw.timestamp_column
    score_day(storage, spec, DAY, model=model, fetch_features=lookup_fetcher(day_features, spec), lineage=LINEAGE)
    out = storage.read_frame(predictions_path(storage, spec, DAY))

    expected = [key, ts, *spec.model.features, SCORE_COLUMN, CLASS_COLUMN, *LINEAGE_COLUMNS]
    assert list(out.columns) == expected  # nothing else, in particular no wall-clock column
    assert (out[key].to_numpy() == day_features[key].to_numpy()).all()
    pd.testing.assert_frame_equal(
        out[spec.model.features].reset_index(drop=True), day_features[spec.model.features], check_dtype=False
    )
    assert set(out["model_name"]) == {"credit_risk"}
    assert set(out["model_version"]) == {"3"}
    assert set(out["airflow_run_id"]) == {"scheduled__2026-11-05"}
    direct = model.predict_proba(model_input(day_features, spec))[:, 1]
    np.testing.assert_allclose(out[SCORE_COLUMN].to_numpy(), direct)
    assert (out[CLASS_COLUMN] == (out[SCORE_COLUMN] >= 0.5).astype(int)).all()


def test_feast_duplicates_are_harmless(storage, spec, day_features, model) -> None:
    fetch = lookup_fetcher(day_features, spec, duplicate=True)
    result = score_day(storage, spec, DAY, model=model, fetch_features=fetch, lineage=LINEAGE)
    assert result.rows == len(day_features)


def test_rows_feast_dropped_fail_the_part_and_nothing_is_left(storage, spec, day_features, model) -> None:
    fetch = lookup_fetcher(day_features, spec, drop=4)
    with pytest.raises(ScoringError, match=r"no features for 4 of \d+ entity rows"):
        score_day(storage, spec, DAY, model=model, fetch_features=fetch, lineage=LINEAGE)
    assert not storage.exists(predictions_path(storage, spec, DAY))
    assert not storage.exists(part_path(storage, spec, DAY, 0, 1))
    assert storage.glob(storage.path("staging", spec.name, "predictions", "date=*", "*")) == []


def test_parts_split_the_day_and_publish_together(storage, spec, day_features, model) -> None:
    key = spec.entity.join_key
    fetch = lookup_fetcher(day_features, spec)
    parts = [
        score_partition(
            storage, spec, DAY, model=model, fetch_features=fetch, lineage=LINEAGE, partition=i, partitions=3
        )
        for i in range(3)
    ]
    assert all(p.rows_out > 0 for p in parts)
    assert sum(p.rows_out for p in parts) == len(day_features)
    assert not storage.exists(predictions_path(storage, spec, DAY)), "parts must not be visible before the commit"
    keys = [set(storage.read_frame(p.path)[key]) for p in parts]
    assert not (keys[0] & keys[1] or keys[0] & keys[2] or keys[1] & keys[2])

    result = commit_predictions(storage, spec, DAY, list(reversed(parts)), lineage=LINEAGE)
    out = storage.read_frame(result.path)
    assert result.rows == len(out) == len(day_features)
    assert set(out[key]) == set(day_features[key])
    assert not any(storage.exists(p.path) for p in parts)


def test_commit_refuses_an_incomplete_split(storage, spec, day_features, model) -> None:
    fetch = lookup_fetcher(day_features, spec)
    parts = [
        score_partition(
            storage, spec, DAY, model=model, fetch_features=fetch, lineage=LINEAGE, partition=i, partitions=3
        )
        for i in (0, 2)
    ]
    with pytest.raises(PredictionValidationError, match="not exactly parts"):
        commit_predictions(storage, spec, DAY, parts, lineage=LINEAGE)
    assert not storage.exists(predictions_path(storage, spec, DAY))


@pytest.mark.parametrize(
    ("bad_model", "message"),
    [(ScoresAbove1(), r"score\(s\) outside \[0, 1\]"), (NanScores(), r"row\(s\) without a score")],
)
def test_invalid_output_is_not_published_and_the_old_partition_stays(
    storage, spec, day_features, model, bad_model, message
) -> None:
    fetch = lookup_fetcher(day_features, spec)
    good = score_day(storage, spec, DAY, model=model, fetch_features=fetch, lineage=LINEAGE)
    before = storage.read_bytes(good.path)

    rerun = Lineage("credit_risk", "4", "manual__rerun")
    part = score_partition(storage, spec, DAY, model=bad_model, fetch_features=fetch, lineage=rerun)
    with pytest.raises(PredictionValidationError, match=message):
        commit_predictions(storage, spec, DAY, [part], lineage=rerun)
    assert storage.read_bytes(good.path) == before
    assert storage.exists(part.path), "the rejected part stays in staging for inspection"


def test_row_count_and_lineage_are_checked(storage, spec, day_features, model) -> None:
    fetch = lookup_fetcher(day_features, spec)
    part = score_partition(storage, spec, DAY, model=model, fetch_features=fetch, lineage=LINEAGE)
    with pytest.raises(PredictionValidationError, match=r"rows scored but the day has \d+ entity rows"):
        commit_predictions(storage, spec, DAY, [part], lineage=LINEAGE, expected_rows=len(day_features) + 1)
    other_run = Lineage("credit_risk", "3", "manual__other")
    with pytest.raises(PredictionValidationError, match="not from model version 3 of run manual__other"):
        commit_predictions(storage, spec, DAY, [part], lineage=other_run)
    assert not storage.exists(predictions_path(storage, spec, DAY))


def test_rerun_replaces_the_partition(storage, spec, day_features, model) -> None:
    fetch = lookup_fetcher(day_features, spec)
    score_day(storage, spec, DAY, model=model, fetch_features=fetch, lineage=LINEAGE)
    rerun = Lineage("credit_risk", "4", "manual__rerun")
    score_day(storage, spec, DAY, model=model, fetch_features=fetch, lineage=rerun)
    out = storage.read_frame(predictions_path(storage, spec, DAY))
    assert len(out) == len(day_features)
    assert set(out["model_version"]) == {"4"}
    assert set(out["airflow_run_id"]) == {"manual__rerun"}


def test_a_day_without_entities_gives_an_empty_partition(storage, spec, model) -> None:
    empty_day = DAY + dt.timedelta(days=1)
    frame = synthetic_features(spec, 0, empty_day)
    storage.write_frame(frame, features_path(storage, spec, empty_day))
    result = score_day(storage, spec, empty_day, model=model, fetch_features=lambda e: e, lineage=LINEAGE)
    assert result.rows == 0
    assert len(storage.read_frame(result.path)) == 0


def _derived_features(spec: Any) -> Any:
    """A Feast stand-in that holds nothing: features are a function of the key, so memory measured
    is the scoring code's own."""
    key = spec.entity.join_key
    allowed = {c: spec.features.columns[c].allowed for c in spec.model.categorical_features}

    def fetch(entities: pd.DataFrame) -> pd.DataFrame:
        out = entities.copy()
        k = out[key].to_numpy()
        for i, name in enumerate(spec.model.numeric_features):
            values = (k * (i + 7)) % 97
            out[name] = values if spec.features.columns[name].dtype == "int64" else values / 10.0
        for name, options in allowed.items():
            out[name] = np.asarray(options, dtype=object)[k % len(options)]
        return out.iloc[::-1]

    return fetch


def _peak_scoring_bytes(
    storage: Any, spec: Any, day: dt.date, rows: int, chunk_rows: int, part: tuple[int, int] | None = None
) -> int:
    """Peak traced memory of scoring a synthetic day (the whole day, or ``part`` = (i, N) of it), with
    Feast queries of two chunks each."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    # Parquet is read a row group at a time: give the input row groups of one chunk, as a large
    # feature partition would have, so that what is measured is the scoring code's own memory.
    table = pa.Table.from_pandas(synthetic_features(spec, rows, day), preserve_index=False)
    path = features_path(storage, spec, day)
    storage.fs.makedirs(path.rpartition("/")[0], exist_ok=True)
    pq.write_table(table, path, row_group_size=chunk_rows)
    fetch, model = _derived_features(spec), Logistic(spec.model.numeric_features[0])
    gc.collect()
    tracemalloc.start()
    try:
        if part is None:
            score_day(
                storage,
                spec,
                day,
                model=model,
                fetch_features=fetch,
                lineage=LINEAGE,
                chunk_rows=chunk_rows,
                fetch_rows=2 * chunk_rows,
            )
        else:
            score_partition(
                storage,
                spec,
                day,
                model=model,
                fetch_features=fetch,
                lineage=LINEAGE,
                partition=part[0],
                partitions=part[1],
                chunk_rows=chunk_rows,
                fetch_rows=2 * chunk_rows,
            )
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_peak_memory_does_not_grow_with_the_day(storage, spec) -> None:
    """10x the rows at the same chunk size must not need more memory to speak of.

    The smaller day has two fetch windows, what scoring holds at most (one being scored while the
    next one's features are fetched); a one-window day needs about half. Measured with tracemalloc
    (pandas/numpy buffers, Python objects, bytes read through the storage filesystem; the Arrow
    pool is measured by bench/batch_scoring.py in a subprocess). What may grow is parquet metadata
    (one row group per chunk) and the garbage collector's lag: a few hundred kB, while holding the
    10x day would take megabytes.
    """
    chunk = 2_000
    _peak_scoring_bytes(storage, spec, DAY + dt.timedelta(days=10), chunk, chunk)  # warm-up: lazy imports
    small = _peak_scoring_bytes(storage, spec, DAY + dt.timedelta(days=11), 4 * chunk, chunk)
    large = _peak_scoring_bytes(storage, spec, DAY + dt.timedelta(days=12), 40 * chunk, chunk)
    whole_day = storage.read_frame(predictions_path(storage, spec, DAY + dt.timedelta(days=12)))
    whole_day_bytes = int(whole_day.memory_usage(deep=True).sum())
    print(f"peak {small / 1e6:.2f} MB at {4 * chunk} rows, {large / 1e6:.2f} MB at {40 * chunk} rows")
    assert large < small * 1.5 + 500_000, f"peak {large / 1e6:.2f} MB at 10x rows vs {small / 1e6:.2f} MB"
    assert large < whole_day_bytes / 5, f"peak {large / 1e6:.2f} MB vs {whole_day_bytes / 1e6:.1f} MB for the day"


def test_plan_parts_takes_the_request_else_the_spec(spec) -> None:  # type: ignore[no-untyped-def]
    assert plan_parts(spec) == [{"partition": 0, "partitions": spec.scoring.partitions}]
    assert plan_parts(spec, "None") == plan_parts(spec, None) == plan_parts(spec)  # an empty Param renders "None"
    assert plan_parts(spec, "3") == [{"partition": i, "partitions": 3} for i in range(3)]


@pytest.mark.parametrize("bad", [0, 65, "two", -1])
def test_plan_parts_refuses_impossible_splits(spec, bad) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValueError, match="partitions must be"):
        plan_parts(spec, bad)


def test_a_mapped_part_needs_no_more_memory_for_a_larger_day(storage, spec) -> None:  # type: ignore[no-untyped-def]
    """Part 1 of 4 reads the day's keys batch by batch and keeps its own share, re-chunked: 10x the
    day at the same chunk size must not grow its peak to speak of (the parts run on other workers).
    As above, the smaller day already gives the part two fetch windows."""
    chunk, parts = 2_000, 4
    _peak_scoring_bytes(storage, spec, DAY + dt.timedelta(days=20), chunk * parts, chunk, (1, parts))  # warm-up
    small = _peak_scoring_bytes(storage, spec, DAY + dt.timedelta(days=21), 4 * chunk * parts, chunk, (1, parts))
    large = _peak_scoring_bytes(storage, spec, DAY + dt.timedelta(days=22), 40 * chunk * parts, chunk, (1, parts))
    print(f"part 1/{parts}: peak {small / 1e6:.2f} MB at {4 * chunk * parts} rows, {large / 1e6:.2f} MB at 10x")
    assert large < small * 1.5 + 500_000, f"peak {large / 1e6:.2f} MB at 10x rows vs {small / 1e6:.2f} MB"


def test_feast_is_queried_once_per_window_not_per_chunk(storage, spec) -> None:  # type: ignore[no-untyped-def]
    """Every point-in-time query re-reads the feature view's TTL window: querying per scoring chunk made
    a large day quadratic (B2 in bench/). A window of ``fetch_rows`` is one query, scored in chunks."""
    day = DAY + dt.timedelta(days=30)
    features = synthetic_features(spec, 2_500, day)
    storage.write_frame(features, features_path(storage, spec, day))
    derived = _derived_features(spec)
    windows: list[int] = []

    def fetch(entities: Any) -> Any:
        windows.append(len(entities))
        return derived(entities)

    model = Logistic(spec.model.numeric_features[0])
    part = score_partition(
        storage, spec, day, model=model, fetch_features=fetch, lineage=LINEAGE, chunk_rows=200, fetch_rows=1_000
    )
    assert windows == [1_000, 1_000, 500]
    assert part.rows_out == 2_500 and part.chunks == 5 + 5 + 3  # chunks of 200 within each window
