"""Drift policy and retrain gate: pure functions, tested as tables of cases."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from mlloop.drift import (
    DRIFT_NUMBER_KEYS,
    ColumnDrift,
    QualityCheck,
    TriggerMarker,
    decide,
    read_marker,
    retrain_conf,
    retrain_gate,
    write_marker,
)
from mlloop.spec import DriftSpec

POLICY = DriftSpec(
    window_days=3,
    sample_size=1000,
    method="psi",
    threshold=0.1,
    drifted_share=0.3,
    key_features=["income"],
    max_quality_drop=0.05,
)
FEATURES = ["income", "age", "debt", "region", "utilization", "loan", "accounts", "late", "dti", "lti"]


def measured(drifted: dict[str, float]) -> dict[str, ColumnDrift]:
    """Ten features, PSI: the named ones drifted with the given score, the rest at 0.01."""
    return {name: ColumnDrift(name, drifted.get(name, 0.01), name in drifted, "psi", 0.1) for name in FEATURES}


@pytest.mark.parametrize(
    ("drifted", "quality", "expected", "reason"),
    [
        ({}, None, False, None),
        ({"age": 0.2, "debt": 0.3}, None, False, None),  # 20% < 30%, no key feature
        ({"age": 0.2, "debt": 0.3, "loan": 0.5}, None, True, "3/10 features drifted (30% >= 30%)"),
        ({"income": 0.15}, None, True, "key feature(s) drifted: income"),
        ({}, QualityCheck("roc_auc", 0.70, 0.80, 500), True, "roc_auc is 0.1000 worse than on its holdout"),
        ({}, QualityCheck("roc_auc", 0.77, 0.80, 500), False, None),  # 0.03 <= 0.05
        ({}, QualityCheck("roc_auc", 0.90, 0.80, 500), False, None),  # better than holdout
        ({}, QualityCheck("log_loss", 0.40, 0.30, 500), True, "log_loss is 0.1000 worse than on its holdout"),
        ({}, QualityCheck("rmse", 5.9, 1.9, 500), True, "rmse is 4.0000 worse than on its holdout"),  # regression
        ({}, QualityCheck("log_loss", 0.20, 0.30, 500), False, None),
        ({}, QualityCheck("roc_auc", None, 0.80, 20, "too few labels"), False, None),
        ({}, QualityCheck("roc_auc", 0.60, None, 500, "no holdout metric"), False, None),
    ],
)
def test_policy(drifted: dict[str, float], quality: QualityCheck | None, expected: bool, reason: str | None) -> None:
    verdict = decide(measured(drifted), POLICY, quality=quality)
    assert verdict.drift is expected
    if reason:
        assert any(reason in r for r in verdict.reasons), verdict.reasons
    else:
        assert verdict.reasons == []
    assert verdict.drifted_share == pytest.approx(len(drifted) / len(FEATURES))


def test_p_value_methods_rank_the_smallest_p_first() -> None:
    features = {
        "a": ColumnDrift("a", 0.04, True, "ks", 0.05),
        "b": ColumnDrift("b", 1e-9, True, "ks", 0.05),
        "c": ColumnDrift("c", 0.5, False, "ks", 0.05),
    }
    verdict = decide(features, POLICY)
    assert [c.column for c in verdict.drifted_features] == ["b", "a"]


def test_prediction_drift_alone_is_reported_not_acted_on() -> None:
    prediction = ColumnDrift("prediction", 0.9, True, "psi", 0.1)
    verdict = decide(measured({}), POLICY, prediction=prediction)
    assert not verdict.drift
    assert "prediction drifted (0.9)" in verdict.headline()


def test_headline_and_numbers_say_what_was_measured() -> None:
    quality = QualityCheck("roc_auc", 0.70, 0.80, 400)
    verdict = decide(measured({"income": 0.52, "dti": 0.68}), POLICY, quality=quality)
    line = verdict.headline()
    assert line.startswith("DRIFT: ")
    assert "top drifted: dti=0.68, income=0.52" in line
    assert "roc_auc 0.7000 vs holdout 0.8" in line
    numbers = verdict.numbers()
    assert set(numbers) == set(DRIFT_NUMBER_KEYS)
    assert numbers["drifted_features"] == {"dti": 0.68, "income": 0.52}
    assert numbers["quality_drop"] == pytest.approx(0.1)
    json.dumps(numbers, allow_nan=False)


def test_retrain_conf_carries_exactly_the_training_params() -> None:
    verdict = decide(measured({"income": 0.5}), POLICY).as_dict()
    conf = retrain_conf(verdict, dt.date(2026, 11, 12), "/root/reports/x/drift/date=2026-11-12/report.html")
    assert set(conf) == {"reason", "cutoff_day", "drift", "drift_report"}
    assert conf["cutoff_day"] == "2026-11-12"
    assert conf["reason"] == "drift detected on 2026-11-12: key feature(s) drifted: income"
    assert "\n" not in conf["reason"]
    assert conf["drift"]["drifted_features"] == {"income": 0.5}
    json.dumps(conf, allow_nan=False)


NOW = dt.datetime(2026, 11, 12, 6, 0, tzinfo=dt.UTC)


DAY = NOW.date()


def test_no_retrain_for_drift_when_a_training_on_that_data_is_already_asked_for() -> None:
    gate = retrain_gate(
        True, active_training_runs=0, last_trigger_day=None, day=DAY, cooldown_hours=24, latest_training_cutoff=DAY
    )
    assert not gate.trigger and "already asked for" in gate.reason
    earlier = DAY - dt.timedelta(days=1)
    gate = retrain_gate(
        True, active_training_runs=0, last_trigger_day=None, day=DAY, cooldown_hours=24, latest_training_cutoff=earlier
    )
    assert gate.trigger


@pytest.mark.parametrize(
    ("drift", "active", "last_trigger", "cooldown", "trigger", "says"),
    [
        (False, 0, None, 24, False, "no drift"),
        (False, 2, DAY, 24, False, "no drift"),
        (True, 0, None, 24, True, "triggering"),
        (True, 1, None, 24, False, "1 training run(s) already queued or running"),
        # Data time: the same day's check (a replay, however long ago on the wall clock) is debounced.
        (True, 0, DAY, 24, False, "cooldown of 24 h of data time"),
        (True, 0, DAY - dt.timedelta(days=1), 24, True, "triggering"),
        (True, 0, DAY - dt.timedelta(days=1), 48, False, "lasts until the check of 2026-11-13"),
        (True, 0, DAY - dt.timedelta(days=2), 36, True, "triggering"),
        (True, 0, DAY - dt.timedelta(days=3), 24, True, "triggering"),
        (True, 1, DAY - dt.timedelta(days=3), 24, False, "already queued or running"),
        # A check of a day before the last trigger (rerunning history) never retrains again.
        (True, 0, DAY + dt.timedelta(days=5), 24, False, "cooldown"),
    ],
)
def test_retrain_gate(
    drift: bool, active: int, last_trigger: dt.date | None, cooldown: float, trigger: bool, says: str
) -> None:
    decision = retrain_gate(
        drift, active_training_runs=active, last_trigger_day=last_trigger, day=DAY, cooldown_hours=cooldown
    )
    assert decision.trigger is trigger
    assert says in decision.reason


def test_trigger_marker_round_trip(storage, spec) -> None:  # type: ignore[no-untyped-def]
    assert read_marker(storage, spec) is None
    marker = TriggerMarker(NOW, "2026-11-12", "credit_risk__training", "manual__1", "scheduled__x", "drift", "r.html")
    path = write_marker(storage, spec, marker)
    assert path.endswith("reports/credit_risk/drift/last_trigger.json")
    assert read_marker(storage, spec) == marker
    storage.write_bytes(b"{not json", path)
    with pytest.raises(ValueError, match="delete it to reset the cooldown"):
        read_marker(storage, spec)


def test_a_retrain_conf_the_training_dag_would_refuse_fails_where_it_is_made() -> None:
    """The conf is a TrainingConf: a report path the training DAG's schema refuses (a trigger answered
    400, the drift monitor's task failing after the report was written) is refused by the monitor."""
    from pydantic import ValidationError

    verdict = decide(measured({"income": 0.5}), POLICY).as_dict()
    with pytest.raises(ValidationError, match=r"drift_report\n.*String should match pattern"):
        retrain_conf(verdict, dt.date(2026, 11, 12), "/root/reports/x/report.html")
