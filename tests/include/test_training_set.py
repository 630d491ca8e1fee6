"""The training set: label windows, the point-in-time join through real Feast, validation."""

from __future__ import annotations

import datetime as dt
import functools
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from mlloop.spec import UseCaseSpec, get_spec
from mlloop.storage import Storage
from mlloop.synthetic import entity_keys, feature_rows
from mlloop.training_set import (
    LABEL_ROW,
    LabelCount,
    build_training_set,
    count_labels,
    fingerprint,
    label_partitions,
    point_in_time_join,
    read_labels,
    training_window,
    validate_training_set,
)
from mlloop.validation import BatchRejected

DAY1 = dt.date(2026, 1, 1)


def at(day: int, hour: int, minute: int = 0) -> pd.Timestamp:
    return pd.Timestamp(DAY1, tz="UTC") + pd.Timedelta(days=day - 1, hours=hour, minutes=minute)


@functools.cache
def _template_row() -> dict[str, Any]:
    """Every column of the bundled use case's feature view, from its spec (``mlloop.synthetic``)."""
    spec = get_spec("credit_risk")
    return dict(feature_rows(spec, entity_keys(spec, 1), DAY1, np.random.default_rng(0)).iloc[0])


def feature_row(key: int, ts: pd.Timestamp, income: float, employment: str) -> dict[str, Any]:
    """One row of the customer_profile view; income and employment type are what changes over time."""
    changing = {"annual_income": income, "loan_to_income": 10_000.0 / income, "employment_type": employment}
    return {**_template_row(), "customer_id": key, "event_timestamp": ts, "loan_amount": 10_000.0, **changing}


def write_features(storage: Storage, spec: UseCaseSpec, rows: list[dict[str, Any]]) -> pd.DataFrame:
    from mlloop.ingestion import features_path

    frame = pd.DataFrame(rows)
    for day, part in frame.groupby(frame["event_timestamp"].dt.date):
        storage.write_frame(part.reset_index(drop=True), features_path(storage, spec, day))
    return frame


def write_labels(
    storage: Storage, spec: UseCaseSpec, landing_day: dt.date, rows: list[tuple[int, pd.Timestamp, int]]
) -> pd.DataFrame:
    from mlloop.ingestion import validated_path

    frame = pd.DataFrame(rows, columns=[spec.entity.join_key, spec.raw.timestamp_column, spec.labels.column])
    storage.write_frame(frame, validated_path(storage, spec, "labels", landing_day))
    return frame


def as_of_join(features: pd.DataFrame, labels: pd.DataFrame, spec: UseCaseSpec, ttl: pd.Timedelta) -> pd.DataFrame:
    """Brute force: for every label, the newest feature row of its entity at or before the label time,
    no older than the view's ttl. Labels with no such row are dropped."""
    key, ts = spec.entity.join_key, spec.raw.timestamp_column
    rows = []
    for _, label in labels.iterrows():
        mine = features[(features[key] == label[key]) & (features[ts] <= label[ts]) & (features[ts] > label[ts] - ttl)]
        if len(mine):
            newest = mine.sort_values(ts).iloc[-1]
            rows.append({**label.to_dict(), **{f: newest[f] for f in spec.model.features}})
    return pd.DataFrame(rows)


@pytest.mark.parametrize(
    "offline_store",
    [None, '{"type": "duckdb"}'],
    ids=["as-of store (default)", "Feast's DuckDB store (its own row order)"],
)
def test_point_in_time_join_matches_a_brute_force_as_of_join(
    feast_registry: Path,
    storage: Storage,
    spec: UseCaseSpec,
    offline_store: str | None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from mlloop.feature_store import open_store

    if offline_store:
        monkeypatch.setenv("MLLOOP_FEAST_OFFLINE_STORE", offline_store)

    features = write_features(
        storage,
        spec,
        [
            feature_row(1, at(1, 10), 1000.0, "salaried"),
            feature_row(1, at(1, 14), 2000.0, "self_employed"),
            feature_row(1, at(2, 9), 3000.0, "retired"),
            feature_row(2, at(2, 12), 500.0, "unemployed"),
            feature_row(3, at(1, 0, 30), 700.0, "salaried"),
        ],
    )
    cutoff = DAY1 + dt.timedelta(days=32)
    labels = write_labels(
        storage,
        spec,
        cutoff,
        [
            (1, at(1, 12), 0),  # between two updates: a leak would see 2000
            (1, at(1, 14), 1),  # the same instant as an update: it is visible
            (1, at(2, 8, 59), 0),  # a minute before the next update: a leak would see 3000
            (1, at(3, 0), 1),
            (2, at(1, 12), 1),  # before customer 2's first feature row: no features
            (2, at(2, 12, 30), 0),
            (3, at(32, 0), 1),  # 31 days after customer 3's only row: beyond the 30-day ttl
            (4, at(2, 0), 0),  # an entity Feast never saw
        ],
    )

    store = open_store()
    built = build_training_set(storage, store, spec, cutoff)

    key, ts = spec.entity.join_key, spec.raw.timestamp_column
    expected = as_of_join(features, labels, spec, ttl=pd.Timedelta(days=30))
    got = built.frame
    assert list(got.columns) == [key, ts, spec.labels.column, *spec.model.features]
    order = [ts, key]
    pd.testing.assert_frame_equal(
        got.sort_values(order).reset_index(drop=True),
        expected.sort_values(order).reset_index(drop=True),
        check_dtype=False,
    )
    assert got["annual_income"].tolist() == [1000.0, 2000.0, 2000.0, 500.0, 3000.0]
    stats = built.stats
    assert (stats.labels_in, stats.rows_out, stats.dropped_by_feast + stats.without_features) == (8, 5, 3)
    # The join itself hands rows back in label order, whatever order the store returns them in.
    joined, _ = point_in_time_join(store, spec, labels)
    assert joined[LABEL_ROW].tolist() == sorted(joined[LABEL_ROW]) and len(joined) == 5

    # The test can tell a leak from a correct join: joining each label with its entity's newest row
    # regardless of time gives different answers.
    latest = features.sort_values(ts).groupby(key).tail(1).set_index(key)["annual_income"]
    leaky = got[key].map(latest)
    assert (leaky != got["annual_income"]).sum() >= 2


def test_label_window_by_landing_day(storage: Storage, spec: UseCaseSpec) -> None:
    for n in range(1, 6):
        write_labels(storage, spec, DAY1 + dt.timedelta(days=n), [(n, at(n, 1), n % 2), (100 + n, at(n, 2), 0)])
    assert list(label_partitions(storage, spec)) == [DAY1 + dt.timedelta(days=n) for n in range(1, 6)]
    first, last = DAY1 + dt.timedelta(days=2), DAY1 + dt.timedelta(days=4)
    assert count_labels(storage, spec, first, last) == LabelCount(total=6, with_features=0)
    write_features(storage, spec, [feature_row(3, at(3, 1), 900.0, "salaried")])  # observations of day 3 ingested
    assert count_labels(storage, spec, first, last) == LabelCount(total=6, with_features=2)
    labels = read_labels(storage, spec, first, last)
    assert sorted(labels[spec.entity.join_key].tolist()) == [2, 3, 4, 102, 103, 104]
    assert training_window(spec, last) == (last - dt.timedelta(days=spec.model.training_window_days - 1), last)


# ---------------------------------------------------------------------------------------- validation
def valid_frame(spec: UseCaseSpec, rows: int = 3200) -> pd.DataFrame:
    start = pd.Timestamp(DAY1, tz="UTC")
    rows_ = [feature_row(10_000 + i, start + pd.Timedelta(minutes=i), 1000.0 + i, "salaried") for i in range(rows)]
    frame = pd.DataFrame(rows_)
    frame[spec.labels.column] = [1 if i % 10 == 0 else 0 for i in range(rows)]
    frame["age"] = frame["age"].astype("Int64")
    return frame[[spec.entity.join_key, spec.raw.timestamp_column, spec.labels.column, *spec.model.features]]


def test_a_sound_training_set_passes(spec: UseCaseSpec) -> None:
    report = validate_training_set(valid_frame(spec), spec, source="test")
    assert not report.rejected and report.rows_valid == 3200


@pytest.mark.parametrize(
    ("breakage", "message"),
    [
        (lambda f: f.head(2999), "2999 row(s); the contract needs at least 3000"),
        (lambda f: f.assign(defaulted=[1 if i < 30 else 0 for i in range(len(f))]), "too unbalanced"),
        (lambda f: f.assign(defaulted=1), "too unbalanced"),
        (lambda f: f.assign(age=pd.array([250] + [40] * (len(f) - 1), dtype="Int64")), "age outside [18, 110]"),
        (lambda f: f.drop(columns=["region"]), "missing column(s) ['region']"),
        (lambda f: f.assign(employment_type="astronaut"), "employment_type not one of"),
    ],
    ids=["too few rows", "rare positives", "one class", "feature out of range", "missing feature", "unknown category"],
)
def test_a_broken_training_set_is_rejected_with_a_readable_reason(
    spec: UseCaseSpec, breakage: Any, message: str
) -> None:
    with pytest.raises(BatchRejected) as info:
        validate_training_set(breakage(valid_frame(spec)), spec, source="test")
    report = info.value.report
    assert report.rejected
    assert message in report.reason or message in report.summary()


def test_fingerprint_is_a_content_hash(spec: UseCaseSpec) -> None:
    frame = valid_frame(spec, rows=50)
    first = fingerprint(frame, spec)
    assert fingerprint(frame.sample(frac=1.0, random_state=1), spec)["sha256"] == first["sha256"]  # order-free
    changed = frame.copy()
    changed.loc[3, "annual_income"] += 1
    assert fingerprint(changed, spec)["sha256"] != first["sha256"]
    assert first["rows"] == 50 and first["start"] < first["end"]
