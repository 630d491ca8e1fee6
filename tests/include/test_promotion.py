"""The promotion gate as a pure function: one row per situation a reviewer would ask about."""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import replace

import pytest

from mlloop import tags as tag_keys
from mlloop.promotion import ALERT, FAIL, NOT_GATED, PASS, GatePolicy, Scorecard, SegmentScore, decide

AUC = GatePolicy(
    primary_metric="roc_auc",
    min_primary_metric=0.70,
    max_regression=0.01,
    max_segment_regression=0.05,
    min_segment_rows=80,
    segment_column="employment_type",
)
RMSE = GatePolicy(
    primary_metric="rmse",
    min_primary_metric=12.0,  # lower is better: the floor is a ceiling
    max_regression=0.5,
    max_segment_regression=1.0,
    min_segment_rows=80,
    segment_column="region",
)
AUC_KEEP = replace(AUC, when_champion_fails_floor="keep")
# The numbers: an RMSE ceiling of 50, the champion at 60.7 on the fresh window, the challenger at 53.2.
CEILING_50 = GatePolicy(
    primary_metric="rmse", min_primary_metric=50.0, max_regression=5.0, max_segment_regression=10.0, min_segment_rows=50
)


def card(
    version: str,
    primary: float,
    segments: dict[str, tuple[int, float]] | None = None,
    trained_until: dt.date | None = None,
) -> Scorecard:
    segs = {k: SegmentScore(rows=n, value=v) for k, (n, v) in (segments or {}).items()}
    return Scorecard(version=version, rows=1000, primary=primary, segments=segs, trained_until=trained_until)


MAR_10, MAR_12 = dt.date(2026, 3, 10), dt.date(2026, 3, 12)


SEGMENTS = {"salaried": (600, 0.78), "self_employed": (300, 0.74), "unemployed": (40, 0.70)}


CASES = [
    # id, policy, challenger, champion, promote?, failed gates
    ("better", AUC, card("2", 0.80, SEGMENTS), card("1", 0.78, SEGMENTS), True, []),
    ("equal", AUC, card("2", 0.78, SEGMENTS), card("1", 0.78, SEGMENTS), True, []),
    ("worse within tolerance", AUC, card("2", 0.775, SEGMENTS), card("1", 0.78, SEGMENTS), True, []),
    ("worse by exactly the tolerance", AUC, card("2", 0.77, SEGMENTS), card("1", 0.78, SEGMENTS), True, []),
    ("worse", AUC, card("2", 0.765, SEGMENTS), card("1", 0.78, SEGMENTS), False, ["vs champion"]),
    # The tolerance buys freshness: a challenger trained on no newer data must be at least as good.
    ("fresher, worse within tolerance", AUC, card("2", 0.775, None, MAR_12), card("1", 0.78, None, MAR_10), True, []),
    (
        "same data, worse within tolerance",
        AUC,
        card("2", 0.775, None, MAR_10),
        card("1", 0.78, None, MAR_10),
        False,
        ["vs champion"],
    ),
    (
        "older data, worse within tolerance",
        AUC,
        card("2", 0.775, None, MAR_10),
        card("1", 0.78, None, MAR_12),
        False,
        ["vs champion"],
    ),
    ("same data, equal", AUC, card("2", 0.78, None, MAR_10), card("1", 0.78, None, MAR_10), True, []),
    (
        "worse on one slice only",
        AUC,
        card("2", 0.785, {**SEGMENTS, "self_employed": (300, 0.68)}),
        card("1", 0.78, SEGMENTS),
        False,
        ["segment employment_type=self_employed"],
    ),
    (
        "much worse on a slice too small to gate",
        AUC,
        card("2", 0.785, {**SEGMENTS, "unemployed": (40, 0.50)}),
        card("1", 0.78, SEGMENTS),
        True,
        [],
    ),
    ("no champion, above the floor", AUC, card("1", 0.72, SEGMENTS), None, True, []),
    ("no champion, below the floor", AUC, card("1", 0.69, SEGMENTS), None, False, ["floor"]),
    # The champion itself misses the floor: by default a challenger that beats it replaces it.
    ("both below the floor, challenger better", AUC, card("2", 0.69), card("1", 0.60), True, []),
    ("both below the floor, challenger worse", AUC, card("2", 0.59), card("1", 0.60), False, ["vs champion"]),
    # ... but with no tolerance: within max_regression of a failing champion is not better than it.
    (
        "both below the floor, fresher but worse",
        AUC,
        card("2", 0.595, None, MAR_12),
        card("1", 0.60, None, MAR_10),
        False,
        ["vs champion"],
    ),
    ("both below the floor, equal", AUC, card("2", 0.60), card("1", 0.60), False, ["vs champion"]),
    (
        "both below the floor, better but worse on a slice",
        AUC,
        card("2", 0.65, {"salaried": (600, 0.66), "self_employed": (300, 0.50)}),
        card("1", 0.60, {"salaried": (600, 0.60), "self_employed": (300, 0.60)}),
        False,
        ["segment employment_type=self_employed"],
    ),
    ("keep: better than champion but below the floor", AUC_KEEP, card("2", 0.69), card("1", 0.60), False, ["floor"]),
    ("issue 13: rmse 53.2 vs a champion at 60.7, ceiling 50", CEILING_50, card("2", 53.2), card("1", 60.7), True, []),
    ("issue 13, next week: rmse 97.3 vs 68.9", CEILING_50, card("3", 97.3), card("2", 68.9), False, ["vs champion"]),
    ("undefined metric", AUC, card("2", math.nan), card("1", 0.78), False, ["floor", "vs champion"]),
    ("lower is better: better", RMSE, card("2", 10.0), card("1", 10.4), True, []),
    ("lower is better: worse within tolerance", RMSE, card("2", 10.8), card("1", 10.4), True, []),
    ("lower is better: worse", RMSE, card("2", 11.0), card("1", 10.4), False, ["vs champion"]),
    ("lower is better: above the ceiling", RMSE, card("1", 12.5), None, False, ["floor"]),
    (
        "lower is better: worse on one slice",
        RMSE,
        card("2", 10.0, {"north": (200, 9.0), "south": (200, 13.0)}),
        card("1", 10.4, {"north": (200, 9.5), "south": (200, 11.0)}),
        False,
        ["segment region=south"],
    ),
]


@pytest.mark.parametrize(
    ("policy", "challenger", "champion", "promote", "failed"),
    [pytest.param(*case[1:], id=case[0]) for case in CASES],
)
def test_gate(
    policy: GatePolicy, challenger: Scorecard, champion: Scorecard | None, promote: bool, failed: list[str]
) -> None:
    decision = decide(policy, challenger, champion)
    assert decision.passed is promote
    assert [c.name for c in decision.checks if c.status == FAIL] == failed
    assert len(decision.reasons) == len(failed)


def test_small_and_undefined_slices_are_reported_not_gated() -> None:
    challenger = card("2", 0.79, {"unemployed": (40, 0.1), "retired": (300, math.nan)})
    champion = card("1", 0.78, {"unemployed": (40, 0.9), "retired": (300, 0.8)})
    checks = {c.name: c for c in decide(AUC, challenger, champion).checks}
    assert checks["segment employment_type=unemployed"].status == NOT_GATED
    assert "40 rows < promotion.min_segment_rows 80" in checks["segment employment_type=unemployed"].note
    assert checks["segment employment_type=retired"].status == NOT_GATED
    assert checks["vs champion"].status == PASS


def test_the_table_and_tags_carry_every_gate_with_its_numbers() -> None:
    decision = decide(AUC, card("2", 0.765, SEGMENTS), card("1", 0.78, SEGMENTS))
    table = decision.table()
    assert "challenger v2 vs champion v1" in table
    assert "0.7650" in table and "0.7800" in table and "-0.0150" in table
    assert table.splitlines()[-1].startswith("decision: FAILED")
    tags = decision.tags()
    assert tags[tag_keys.GATE_PASSED] == "false"
    assert tags[tag_keys.GATE_CHAMPION_VERSION] == "1"
    assert tags[tag_keys.GATE_VS_CHAMPION].startswith("fail; challenger=0.7650; champion=0.7800; better_by=-0.0150")
    assert {k for k in tags if k.startswith(tag_keys.GATE_SEGMENT_PREFIX)} == {
        tag_keys.gate_check_key(f"segment_employment_type.{value}")
        for value in ("salaried", "self_employed", "unemployed")
    }
    assert "worse than champion v1" in tags[tag_keys.GATE_REASONS]


def test_policy_from_the_bundled_spec() -> None:
    from mlloop.spec import get_spec

    policy = GatePolicy.from_spec(get_spec("credit_risk"))
    assert policy.primary_metric == "roc_auc" and policy.higher_is_better
    assert policy.segment_column == "employment_type"


def test_the_tolerance_is_refused_to_a_model_that_is_not_fresher_and_says_why() -> None:
    decision = decide(AUC, card("2", 0.775, None, MAR_10), card("1", 0.78, None, MAR_10))
    (reason,) = decision.reasons
    assert "no tolerance: it was trained on data up to 2026-03-10, not newer than the champion's 2026-03-10" in reason


@pytest.mark.parametrize("mode", ["promote_better", "keep", "alert_only"])
def test_a_champion_below_the_floor_is_always_reported(mode: str) -> None:
    policy = replace(CEILING_50, when_champion_fails_floor=mode)
    decision = decide(policy, card("2", 53.2), card("1", 60.7))
    assert decision.passed is (mode == "promote_better")
    checks = {c.name: c for c in decision.checks}
    assert checks["champion floor"].status == ALERT and checks["champion floor"].champion == 60.7
    (alert,) = decision.alerts
    assert "champion v1 itself fails the floor: rmse 60.7000 on this window does not reach <= 50.0000" in alert
    assert f"when_champion_fails_floor={mode}" in alert
    assert f"ALERT: {alert}" in decision.table()
    assert decision.tags()[tag_keys.GATE_ALERTS] == alert
    assert decision.as_dict()["alerts"] == [alert]
    if mode == "promote_better":
        assert checks["floor"].status == NOT_GATED and "it must beat champion v1 instead" in checks["floor"].note
        assert decision.table().splitlines()[-2] == "decision: PASSED: promote"
    else:
        assert checks["floor"].status == FAIL and decision.reasons == [checks["floor"].note]


def test_a_champion_above_the_floor_raises_no_alert() -> None:
    decision = decide(CEILING_50, card("2", 45.0), card("1", 48.0))
    assert decision.passed and decision.alerts == []
    assert {c.name: c.status for c in decision.checks}["champion floor"] == PASS
    assert tag_keys.GATE_ALERTS not in decision.tags()


def test_an_unknown_mode_is_refused() -> None:
    with pytest.raises(ValueError, match="when_champion_fails_floor must be one of"):
        replace(CEILING_50, when_champion_fails_floor="promote")


def test_the_recorded_gate_reads_back_as_a_typed_record() -> None:
    """What the demo summary and tests read: the tags a gate leaves, through :class:`mlloop.tags.GateRecord`."""
    from mlloop.evaluation import Evaluation, EvaluationWindow
    from mlloop.steps import RunInfo
    from mlloop.steps.promotion import gate_tags
    from mlloop.tags import GateRecord

    decision = decide(AUC, card("2", 0.765, SEGMENTS), card("1", 0.78, SEGMENTS))
    window = EvaluationWindow(dt.date(2026, 3, 1), dt.date(2026, 3, 2), 480, None)
    evaluation = Evaluation(window=window, decision=decision, cards={})
    record = GateRecord.from_tags(gate_tags(evaluation, RunInfo("credit_risk__promotion", "manual__1")))
    assert record is not None
    assert not record.passed and record.champion_version == "1" and record.primary_metric == "roc_auc"
    vs = record.checks["vs_champion"]
    assert vs.status == "fail"
    assert vs.numbers == {"challenger": "0.7650", "champion": "0.7800", "better_by": "-0.0150", "rows": "1000"}
    assert {name for name in record.checks if name.startswith("segment")} == {
        "segment_employment_type.salaried",
        "segment_employment_type.self_employed",
        "segment_employment_type.unemployed",
    }
    assert "worse than champion v1" in record.reasons
    assert record.window == window.describe()
    assert record.describe().startswith("roc_auc challenger=0.7650, champion=0.7800, better_by=-0.0150; ")
    assert GateRecord.from_tags({tag_keys.DECISION: "promoted"}) is None  # never gated (registered by hand)
