"""The drift sample written at commit: used when it matches the partition, else the partition is streamed."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

from loop_fixtures import SMALL, feature_frame, labelled_frame, lookup_fetcher, train_small_model, write_clean_features
from mlloop.drift_report import load_current_window
from mlloop.landing import date_range
from mlloop.prediction_sample import sample_path
from mlloop.scoring import Lineage, predictions_path, score_day
from mlloop.storage import Storage

TRAIN_DAYS = date_range(dt.date(2026, 11, 1), dt.date(2026, 11, 3))
DAYS = date_range(dt.date(2026, 11, 10), dt.date(2026, 11, 12))
SAMPLE = 120  # below a day's 300 rows, so a day's sample is a true sample


@pytest.fixture
def small(spec):  # type: ignore[no-untyped-def]
    return spec.model_copy(update={"drift": spec.drift.model_copy(update={"sample_size": SAMPLE, "window_days": 3})})


@pytest.fixture
def scored(storage, small):  # type: ignore[no-untyped-def]
    """Three days scored and committed the way the scoring DAG does (Feast replaced by a lookup)."""
    write_clean_features(storage, small, date_range(TRAIN_DAYS[0], DAYS[-1]), **SMALL)
    model = train_small_model(small, labelled_frame(storage, small, TRAIN_DAYS))
    fetch = lookup_fetcher(feature_frame(storage, small, DAYS), small)
    for d in DAYS:
        score_day(storage, small, d, model=model, fetch_features=fetch, lineage=Lineage("credit_risk", "1", "r1"))
    return model


def streamed_paths(monkeypatch) -> list[str]:  # type: ignore[no-untyped-def]
    """Record every file the check streams batch by batch (a spy: the real read still happens)."""
    seen: list[str] = []
    real = Storage.iter_batches

    def spy(self, url, *args, **kwargs):  # type: ignore[no-untyped-def]
        seen.append(url)
        return real(self, url, *args, **kwargs)

    monkeypatch.setattr(Storage, "iter_batches", spy)
    return seen


def test_commit_writes_a_fixed_size_seeded_sample_and_the_check_reads_only_it(
    storage, small, scored, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    for d in DAYS:
        sample = storage.read_frame(sample_path(storage, small, d))
        assert len(sample) == SAMPLE
        data = storage.read_frame(predictions_path(storage, small, d))
        # every sampled row is one of the day's committed rows
        key_cols = [*small.model.features, "score"]
        assert len(sample.merge(data[key_cols].drop_duplicates(), on=key_cols)) == SAMPLE

    seen = streamed_paths(monkeypatch)
    window = load_current_window(storage, small, DAYS[-1])
    assert len(window.frame) == SAMPLE
    assert window.rows_total == 3 * SMALL["rows_per_day"]
    assert not [p for p in seen if p.endswith("data.parquet")], f"the check streamed {seen}"
    pd.testing.assert_frame_equal(window.frame, load_current_window(storage, small, DAYS[-1]).frame)


def test_partitions_written_before_samples_existed_are_streamed(storage, small, scored, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    for d in DAYS:
        storage.delete(sample_path(storage, small, d))
    seen = streamed_paths(monkeypatch)
    window = load_current_window(storage, small, DAYS[-1])
    assert len(window.frame) == SAMPLE
    assert sorted(p for p in seen if p.endswith("data.parquet")) == [predictions_path(storage, small, d) for d in DAYS]


def test_a_sample_of_other_rows_is_never_used(storage, small, scored, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """The partition replaced after its sample was written (by hand, or a crash between the two
    writes of a rescore): the sample names another file, so the check streams the partition."""
    day = DAYS[-1]
    path = predictions_path(storage, small, day)
    replaced = storage.read_frame(path).assign(model_version="9")
    storage.write_frame(replaced, path)

    seen = streamed_paths(monkeypatch)
    window = load_current_window(storage, small, day)
    assert seen.count(path) == 1
    mine = window.frame[window.frame["model_version"] == "9"]
    assert len(mine) == round(SAMPLE / 3)  # the day's share, all from the partition as it is now
