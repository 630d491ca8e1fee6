"""The promotion gate: may a challenger replace the champion? A pure function of two scorecards.

Both models are scored on the same fresh rows (:mod:`mlloop.evaluation`); this module only compares.
The gates, from the spec's ``promotion`` section:

* **floor**: the challenger's primary metric must reach ``min_primary_metric`` (for a metric where
  lower is better, such as rmse, the value is a ceiling instead);
* **vs champion**: it may be worse than the champion by at most ``max_regression``, and only if it
  was trained on newer data than the champion (a later training cutoff): the tolerance buys
  freshness, so a challenger trained on the same or older data must be at least as good;
* **segments**: on no slice of ``segment_column`` may it be worse than the champion by more than
  ``max_segment_regression``. Slices with fewer than ``min_segment_rows`` rows, or where the metric is
  undefined (one class only), are reported but not gated.

With no champion the floor alone decides. Limits are inclusive: a challenger exactly
``max_regression`` worse passes.

The floor protects what serves, so the champion is held to it too, on the same window. A champion
below the floor is always reported (a ``champion floor`` line with status ``alert``, and
:attr:`GateDecision.alerts`); what happens then is ``promotion.when_champion_fails_floor``:

* ``promote_better`` (default): a challenger below the floor as well may still replace it, if it
  *beats* it (strictly better on the primary metric, no tolerance) and passes the segment gate: a
  better model that is still not good enough is better than the worse one that serves now;
* ``keep`` / ``alert_only``: the challenger must reach the floor as before, so the champion stays.
  Both report the champion's failure; ``alert_only`` also sends the alert (the operator's job), ``keep``
  only writes it in the table and the log.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from dataclasses import asdict, dataclass, field, replace
from typing import TYPE_CHECKING, Any

from mlloop import tags as tag_keys
from mlloop.metrics import get_metric

if TYPE_CHECKING:
    from mlloop.spec import UseCaseSpec

PASS = "pass"
FAIL = "fail"
NOT_GATED = "not gated"
ALERT = "alert"  # a finding that does not gate the challenger: the champion itself fails the floor
PROMOTE_BETTER, KEEP, ALERT_ONLY = "promote_better", "keep", "alert_only"
WHEN_CHAMPION_FAILS_FLOOR = (PROMOTE_BETTER, KEEP, ALERT_ONLY)
# Metrics are averages of floats: without this, "exactly max_regression worse" fails by 1e-17.
TOLERANCE = 1e-9


@dataclass(frozen=True)
class GatePolicy:
    primary_metric: str
    min_primary_metric: float
    max_regression: float
    max_segment_regression: float
    min_segment_rows: int
    segment_column: str | None = None
    when_champion_fails_floor: str = PROMOTE_BETTER

    def __post_init__(self) -> None:
        if self.when_champion_fails_floor not in WHEN_CHAMPION_FAILS_FLOOR:
            raise ValueError(
                f"when_champion_fails_floor must be one of {list(WHEN_CHAMPION_FAILS_FLOOR)}, "
                f"got {self.when_champion_fails_floor!r}"
            )

    @classmethod
    def from_spec(cls, spec: UseCaseSpec) -> GatePolicy:
        p = spec.promotion
        return cls(
            primary_metric=spec.model.primary_metric,
            min_primary_metric=p.min_primary_metric,
            max_regression=p.max_regression,
            max_segment_regression=p.max_segment_regression,
            min_segment_rows=p.min_segment_rows,
            segment_column=p.segment_column,
            when_champion_fails_floor=p.when_champion_fails_floor,
        )

    @property
    def higher_is_better(self) -> bool:
        return get_metric(self.primary_metric).higher_is_better


@dataclass(frozen=True)
class SegmentScore:
    rows: int
    value: float


@dataclass(frozen=True)
class Scorecard:
    """One model's primary metric on the evaluation rows, overall and per segment.

    ``trained_until`` is the version's training cutoff (None: unknown, e.g. registered by hand).
    """

    version: str
    rows: int
    primary: float
    metrics: dict[str, float] = field(default_factory=dict)
    segments: dict[str, SegmentScore] = field(default_factory=dict)
    trained_until: dt.date | None = None


@dataclass(frozen=True)
class GateCheck:
    """One line of the gate table. ``delta`` is how much better the challenger is (negative: worse)."""

    name: str
    status: str
    challenger: float | None
    champion: float | None = None
    delta: float | None = None
    limit: str = ""
    rows: int | None = None
    note: str = ""


@dataclass(frozen=True)
class GateDecision:
    passed: bool
    challenger_version: str
    champion_version: str | None
    primary_metric: str
    higher_is_better: bool
    checks: tuple[GateCheck, ...]

    @property
    def reasons(self) -> list[str]:
        """Why the challenger failed, one sentence per failed gate (empty if it passed)."""
        return [c.note for c in self.checks if c.status == FAIL]

    @property
    def alerts(self) -> list[str]:
        """What a person must hear whatever the outcome: today, that the champion fails the floor."""
        return [c.note for c in self.checks if c.status == ALERT]

    def table(self, title: str = "") -> str:
        """The whole decision on one screen: every gate with both models' numbers."""
        direction = "higher" if self.higher_is_better else "lower"
        champion = f"v{self.champion_version}" if self.champion_version else "none"
        lines = [
            title or f"Promotion gate: challenger v{self.challenger_version} vs champion {champion}",
            f"primary metric: {self.primary_metric} ({direction} is better)",
            f"{'gate':<40} {'rows':>7} {'challenger':>10} {'champion':>10} {'better by':>10} {'limit':>12}  result",
        ]
        for c in self.checks:
            lines.append(
                f"{c.name:<40} {_num(c.rows, 'd'):>7} {_num(c.challenger):>10} {_num(c.champion):>10} "
                f"{_num(c.delta, '+.4f'):>10} {c.limit:>12}  {c.status}{f' ({c.note})' if c.status != PASS else ''}"
            )
        verdict = "PASSED: promote" if self.passed else "FAILED: keep the champion; " + "; ".join(self.reasons)
        lines.append(f"decision: {verdict}")
        lines += [f"ALERT: {alert}" for alert in self.alerts]
        return "\n".join(lines)

    def tags(self) -> dict[str, str]:
        """Model-version tags recording the gate: the decision and every gate's numbers."""
        tags = {
            tag_keys.GATE_PASSED: str(self.passed).lower(),
            tag_keys.GATE_PRIMARY_METRIC: self.primary_metric,
            tag_keys.GATE_CHAMPION_VERSION: self.champion_version or "none",
        }
        for check in self.checks:
            parts = [check.status, f"challenger={_num(check.challenger)}"]
            if check.champion is not None:
                parts += [f"champion={_num(check.champion)}", f"better_by={_num(check.delta, '+.4f')}"]
            if check.limit:
                parts.append(f"limit {check.limit}")
            if check.rows is not None:
                parts.append(f"rows={check.rows}")
            if check.note and check.status != PASS:
                parts.append(check.note)
            tags[tag_keys.gate_check_key(_slug(check.name))] = tag_keys.GATE_CHECK_SEPARATOR.join(parts)
        if self.reasons:
            tags[tag_keys.GATE_REASONS] = "; ".join(self.reasons)[: tag_keys.MAX_TEXT]
        if self.alerts:
            tags[tag_keys.GATE_ALERTS] = "; ".join(self.alerts)[: tag_keys.MAX_TEXT]
        return tags

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "reasons": self.reasons, "alerts": self.alerts}


def _num(value: float | int | None, fmt: str = ".4f") -> str:
    if value is None:
        return "-"
    if isinstance(value, float) and math.isnan(value):
        return "n/a"
    return format(value, fmt)


def _slug(name: str) -> str:
    """A tag key from a gate name (MLflow keys allow letters, digits, ``_ - . /`` and spaces)."""
    return re.sub(r"[^A-Za-z0-9_.\-/]+", "_", name.replace("=", "."))


def _defined(value: float | None) -> bool:
    return value is not None and not math.isnan(value)


def decide(policy: GatePolicy, challenger: Scorecard, champion: Scorecard | None) -> GateDecision:
    """Apply the gate policy to two scorecards computed on the same rows."""
    metric = get_metric(policy.primary_metric)
    floor = _floor(policy, challenger)
    checks = [floor]
    must_beat = False
    if champion is not None:
        champion_floor = _champion_floor(policy, champion)
        checks.append(champion_floor)
        if (
            floor.status == FAIL
            and champion_floor.status == ALERT
            and policy.when_champion_fails_floor == PROMOTE_BETTER
        ):
            # Both miss the floor: the comparison decides, and only a strictly better model replaces the champion.
            must_beat = _defined(challenger.primary)
            if must_beat:
                checks[0] = replace(
                    floor,
                    status=NOT_GATED,
                    note=f"below the floor, as the champion is: it must beat champion v{champion.version} instead "
                    f"(promotion.when_champion_fails_floor={PROMOTE_BETTER})",
                )
        checks.append(_versus(policy, challenger, champion, must_beat=must_beat))
    checks += _segments(policy, challenger, champion)
    return GateDecision(
        passed=all(c.status != FAIL for c in checks),
        challenger_version=challenger.version,
        champion_version=champion.version if champion else None,
        primary_metric=policy.primary_metric,
        higher_is_better=metric.higher_is_better,
        checks=tuple(checks),
    )


def _floor_limit(policy: GatePolicy) -> str:
    floor = policy.min_primary_metric
    return f">= {floor:.4f}" if policy.higher_is_better else f"<= {floor:.4f}"


def _misses_floor(policy: GatePolicy, value: float) -> bool:
    floor = policy.min_primary_metric
    margin = value - floor if policy.higher_is_better else floor - value
    return margin < -TOLERANCE


def _champion_floor(policy: GatePolicy, champion: Scorecard) -> GateCheck:
    """The champion held to the same floor on the same rows: a finding (alert), never a gate."""
    value, limit = champion.primary, _floor_limit(policy)
    if not _defined(value) or not _misses_floor(policy, value):
        status = PASS if _defined(value) else NOT_GATED
        note = "" if _defined(value) else f"{policy.primary_metric} undefined"
        return GateCheck("champion floor", status, None, value, limit=limit, rows=champion.rows, note=note)
    action = {
        PROMOTE_BETTER: "a challenger that beats it replaces it even below the floor",
        KEEP: "it is kept until a challenger reaches the floor",
        ALERT_ONLY: "it is kept until a challenger reaches the floor",
    }[policy.when_champion_fails_floor]
    return GateCheck(
        "champion floor",
        ALERT,
        None,
        value,
        limit=limit,
        rows=champion.rows,
        note=(
            f"champion v{champion.version} itself fails the floor: {policy.primary_metric} {value:.4f} on this "
            f"window does not reach {limit} (promotion.min_primary_metric); {action} "
            f"(promotion.when_champion_fails_floor={policy.when_champion_fails_floor})"
        ),
    )


def _floor(policy: GatePolicy, challenger: Scorecard) -> GateCheck:
    value, limit = challenger.primary, _floor_limit(policy)
    if not _defined(value):
        return GateCheck(
            "floor", FAIL, value, limit=limit, rows=challenger.rows, note=f"{policy.primary_metric} undefined"
        )
    if not _misses_floor(policy, value):
        return GateCheck("floor", PASS, value, limit=limit, rows=challenger.rows)
    return GateCheck(
        "floor",
        FAIL,
        value,
        limit=limit,
        rows=challenger.rows,
        note=f"{policy.primary_metric} {value:.4f} does not reach the floor {limit} (promotion.min_primary_metric)",
    )


def _fresher(challenger: Scorecard, champion: Scorecard) -> bool:
    """Whether the challenger learned from newer data than the champion (unknown counts as newer)."""
    if challenger.trained_until is None or champion.trained_until is None:
        return True
    return challenger.trained_until > champion.trained_until


def _versus(policy: GatePolicy, challenger: Scorecard, champion: Scorecard, must_beat: bool = False) -> GateCheck:
    """``must_beat``: both models miss the floor, so the challenger must be strictly better (no tolerance)."""
    metric = get_metric(policy.primary_metric)
    fresher = _fresher(challenger, champion)
    allowed = policy.max_regression if fresher and not must_beat else 0.0
    limit = "> +0.0000" if must_beat else f">= {-allowed:+.4f}"
    if not (_defined(challenger.primary) and _defined(champion.primary)):
        return GateCheck(
            "vs champion",
            FAIL,
            challenger.primary,
            champion.primary,
            limit=limit,
            rows=challenger.rows,
            note=f"{policy.primary_metric} undefined, the models cannot be compared",
        )
    delta = metric.better_by(challenger.primary, champion.primary)
    if must_beat:
        passed = delta > TOLERANCE
        note = (
            f"{policy.primary_metric} {challenger.primary:.4f} misses the floor {_floor_limit(policy)} and does "
            f"not beat champion v{champion.version}'s {champion.primary:.4f}, which misses it too "
            "(promotion.min_primary_metric, promotion.when_champion_fails_floor)"
        )
    else:
        passed = delta >= -allowed - TOLERANCE
        tolerance = (
            f"promotion.max_regression {policy.max_regression}"
            if fresher
            else f"no tolerance: it was trained on data up to {challenger.trained_until}, not newer than the "
            f"champion's {champion.trained_until}; promotion.max_regression only applies to fresher models"
        )
        note = (
            f"{policy.primary_metric} {challenger.primary:.4f} is {-delta:.4f} worse than champion "
            f"v{champion.version}'s {champion.primary:.4f} ({tolerance})"
        )
    return GateCheck(
        "vs champion",
        PASS if passed else FAIL,
        challenger.primary,
        champion.primary,
        delta,
        limit,
        challenger.rows,
        note="" if passed else note,
    )


def _segments(policy: GatePolicy, challenger: Scorecard, champion: Scorecard | None) -> list[GateCheck]:
    if policy.segment_column is None:
        return []
    metric = get_metric(policy.primary_metric)
    limit = f">= {-policy.max_segment_regression:+.4f}"
    checks = []
    for segment in sorted(challenger.segments):
        mine = challenger.segments[segment]
        theirs = champion.segments.get(segment) if champion else None
        name = f"segment {policy.segment_column}={segment}"
        champion_value = theirs.value if theirs else None
        status, delta, note = NOT_GATED, None, ""
        if theirs is None:
            note = "no champion to compare with"
        elif mine.rows < policy.min_segment_rows:
            note = f"{mine.rows} rows < promotion.min_segment_rows {policy.min_segment_rows}"
        elif not (_defined(mine.value) and _defined(theirs.value)):
            note = f"{policy.primary_metric} undefined on this slice"
        else:
            delta = metric.better_by(mine.value, theirs.value)
            status = PASS if delta >= -policy.max_segment_regression - TOLERANCE else FAIL
            if status == FAIL:
                note = (
                    f"on {policy.segment_column}={segment} ({mine.rows} rows) {policy.primary_metric} "
                    f"{mine.value:.4f} is {-delta:.4f} worse than the champion's {theirs.value:.4f} "
                    f"(promotion.max_segment_regression {policy.max_segment_regression})"
                )
        checks.append(GateCheck(name, status, mine.value, champion_value, delta, limit, mine.rows, note))
    return checks
