"""The training ledger: "is a training due at day D?" in data time, on real partitions."""

from __future__ import annotations

import datetime as dt

from loop_fixtures import write_clean_features
from mlloop.landing import date_range
from mlloop.training_requests import TrainingRequest, decide_training_due, record_request, requests

START = dt.date(2026, 3, 1)


def replay(storage, spec, days):  # type: ignore[no-untyped-def]
    """Decide each day in order, recording the due ones, as ingestion's request_training does."""
    due = []
    for day in days:
        decision = decide_training_due(storage, spec, day)
        if decision.train:
            record_request(storage, spec, TrainingRequest(day, "features", decision.reason))
            due.append(day)
    return due


def test_due_days_are_the_first_with_enough_labels_then_every_retrain_after_days(storage, spec) -> None:  # type: ignore[no-untyped-def]
    days = list(date_range(START, START + dt.timedelta(days=24)))
    write_clean_features(storage, spec, days, rows_per_day=1500, n_customers=3000)
    due = replay(storage, spec, days)

    # Labels land delay_days after their observation; the first day whose training window holds
    # min_training_rows labelled rows is due, then one every retrain_after_days data days, whatever
    # the model registry holds (nothing is registered here: a slow or not yet started training
    # cannot cause a second one).
    first = due[0]
    assert first > START + dt.timedelta(days=spec.labels.delay_days)
    step = dt.timedelta(days=spec.model.retrain_after_days)
    assert due == [first + n * step for n in range(len(due))]
    assert len(due) >= 2
    assert [r.cutoff_day for r in requests(storage, spec)] == due

    # Deciding a day again (a rerun) gives the same answer: its own entry is not an earlier request.
    assert decide_training_due(storage, spec, due[1]).train
    assert not decide_training_due(storage, spec, due[1] + dt.timedelta(days=1)).train


def test_a_drift_training_in_the_ledger_restarts_the_clock(storage, spec) -> None:  # type: ignore[no-untyped-def]
    days = list(date_range(START, START + dt.timedelta(days=20)))
    write_clean_features(storage, spec, days, rows_per_day=1500, n_customers=3000)
    first = replay(storage, spec, days[:10])[0]
    drift_day = first + dt.timedelta(days=3)
    record_request(storage, spec, TrainingRequest(drift_day, "drift", "drift detected"))
    later = [d for d in days if d > drift_day]
    for day in later:
        for entry in requests(storage, spec):
            if entry.cutoff_day >= day and entry.source == "features":
                raise AssertionError("only earlier days' requests may exist here")
        decision = decide_training_due(storage, spec, day)
        assert decision.train is ((day - drift_day).days >= spec.model.retrain_after_days), (day, decision)
        if decision.train:
            assert "requested at" in decision.explanation and "(drift)" in decision.explanation
            break
