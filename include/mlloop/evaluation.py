"""Score the challenger and the champion on the same fresh labelled rows, for the promotion gate.

Metrics logged at training time are not comparable across versions (each had its own holdout), so
promotion re-scores both models now, on one window: the newest ``promotion.evaluation_days`` days of
labelled observations that are newer than what either model was trained on (its ``train_end`` tag).
Features come from Feast as of each label's time, exactly as in training.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mlloop import tags as tag_keys
from mlloop.promotion import GateDecision, GatePolicy, Scorecard, SegmentScore, decide
from mlloop.spec import UseCaseSpec

if TYPE_CHECKING:
    import pandas as pd
    from feast import FeatureStore

    from mlloop.registry import ModelRef
    from mlloop.storage import Storage

log = logging.getLogger(__name__)

MISSING_SEGMENT = "(missing)"


class NotEvaluable(RuntimeError):
    """There are no fresh labelled rows both models could be fairly compared on."""


@dataclass(frozen=True)
class EvaluationWindow:
    first_day: dt.date
    last_day: dt.date
    rows: int
    not_before: dt.datetime | None

    def describe(self) -> str:
        fresh = f", all after {self.not_before.isoformat()}" if self.not_before else ""
        return f"observations {self.first_day} .. {self.last_day} ({self.rows} labelled rows{fresh})"

    def as_dict(self) -> dict[str, Any]:
        return {
            "first_day": self.first_day.isoformat(),
            "last_day": self.last_day.isoformat(),
            "rows": self.rows,
            "not_before": self.not_before.isoformat() if self.not_before else None,
        }


def training_cutoff(ref: ModelRef) -> dt.date | None:
    """The newest label partition a version was trained on (its ``training_cutoff`` tag), if it says."""
    try:
        return dt.date.fromisoformat(ref.tags.get(tag_keys.TRAINING_CUTOFF, ""))
    except ValueError:
        return None


def train_end(ref: ModelRef) -> dt.datetime | None:
    """The newest observation a version was trained on (its ``train_end`` tag), if it says."""
    value = ref.tags.get(tag_keys.TRAIN_END)
    if not value:
        return None
    try:
        parsed = dt.datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


def fresh_labels(
    storage: Storage, spec: UseCaseSpec, not_before: dt.datetime | None, up_to: dt.date | None = None
) -> tuple[pd.DataFrame, EvaluationWindow]:
    """Labels of the newest ``promotion.evaluation_days`` observation days after ``not_before``, in the
    label partitions up to ``up_to`` (the challenger's training cutoff: in data time the gate decides
    on the day the challenger was trained for, not on whatever was ingested by the time it runs)."""
    import pandas as pd

    from mlloop.training_set import label_partitions, read_latest_labels

    partitions = [day for day in label_partitions(storage, spec) if up_to is None or day <= up_to]
    if not partitions:
        raise NotEvaluable(f"no label partitions exist yet{f' up to {up_to}' if up_to else ''}")
    newest = max(partitions)
    # Labels of an observation day land delay_days later: read enough landing days to cover the window.
    lookback = spec.promotion.evaluation_days + spec.labels.delay_days
    labels, superseded = read_latest_labels(storage, spec, newest - dt.timedelta(days=lookback), newest)
    if superseded:
        log.info("Evaluation labels: %d superseded by a later delivery (the latest wins)", superseded)
    ts = spec.raw.timestamp_column
    if not_before is not None:
        labels = labels[labels[ts] > pd.Timestamp(not_before)]
    if labels.empty:
        raise NotEvaluable(
            f"no labels of observations after {not_before.isoformat() if not_before else '-'} in the label partitions "
            f"up to {newest}: both models may have been trained on every labelled row there is"
        )
    days = labels[ts].dt.date
    window_days = sorted(days.unique())[-spec.promotion.evaluation_days :]
    labels = labels[days.isin(window_days)].reset_index(drop=True)
    return labels, EvaluationWindow(window_days[0], window_days[-1], len(labels), not_before)


def scorecards(
    store: FeatureStore, spec: UseCaseSpec, labels: pd.DataFrame, models: dict[str, tuple[ModelRef, Any]]
) -> dict[str, Scorecard]:
    """Score each ``version -> (ref, loaded model)`` on the label rows every model has features for."""
    from mlloop.registry import predict_scores
    from mlloop.training import compute_threads, model_input, target
    from mlloop.training_set import LABEL_ROW, point_in_time_join

    services = {ref.tags.get(tag_keys.FEATURE_SERVICE) or spec.model.feature_service for ref, _ in models.values()}
    joined: dict[str, pd.DataFrame] = {}
    for service in sorted(services):
        frame, stats = point_in_time_join(store, spec, labels, service)
        log.info("Evaluation rows from feature service %s: %s", service, stats.describe())
        joined[service] = frame
    common = set.intersection(*(set(f[LABEL_ROW]) for f in joined.values()))
    if not common:
        raise NotEvaluable("none of the fresh labelled rows has feature values in Feast")

    cards = {}
    for version, (ref, model) in models.items():
        frame = joined[ref.tags.get(tag_keys.FEATURE_SERVICE) or spec.model.feature_service]
        frame = frame[frame[LABEL_ROW].isin(common)].sort_values(LABEL_ROW).reset_index(drop=True)
        columns = list(getattr(model, "feature_names_in_", spec.model.features))
        with compute_threads():
            scores = predict_scores(model, model_input(frame, spec, columns), spec.model.task)
        cards[version] = scorecard_of(spec, version, target(frame, spec), scores, frame, training_cutoff(ref))
    return cards


def scorecard_of(
    spec: UseCaseSpec, version: str, y: Any, scores: Any, frame: pd.DataFrame, trained_until: dt.date | None
) -> Scorecard:
    """A version's scorecard from its scores of labelled rows: the spec's metrics overall, and the
    primary metric per slice of ``promotion.segment_column`` (when ``frame`` has it; the shadow gate
    uses this too, on the predictions each model made)."""
    from mlloop.metrics import compute_metrics, get_metric

    primary = get_metric(spec.model.primary_metric)
    values = compute_metrics(list(dict.fromkeys([primary.name, *spec.model.metrics])), y, scores)
    segments = {}
    segment = spec.promotion.segment_column
    if segment is not None and segment in frame.columns:
        keys = frame[segment].astype(object).where(frame[segment].notna(), MISSING_SEGMENT).astype(str)
        for key in sorted(keys.unique()):
            mask = (keys == key).to_numpy()
            value = compute_metrics([primary.name], y[mask], scores[mask])[primary.name]
            segments[key] = SegmentScore(rows=int(mask.sum()), value=value)
    return Scorecard(version, len(frame), values[primary.name], values, segments, trained_until)


@dataclass(frozen=True)
class Evaluation:
    """The gate's decision, the window it was made on and both models' scorecards."""

    window: EvaluationWindow
    decision: GateDecision
    cards: dict[str, Scorecard]

    def table(self, spec: UseCaseSpec) -> str:
        d = self.decision
        champion = f"champion v{d.champion_version}" if d.champion_version else "no champion"
        lines = [
            d.table(
                f"Promotion gate of {spec.registered_model_name}: challenger v{d.challenger_version} vs {champion}"
            ),
            f"evaluated on {self.window.describe()}",
        ]
        versions = [d.challenger_version, *([d.champion_version] if d.champion_version else [])]
        for name in self.cards[d.challenger_version].metrics:
            values = "  ".join(f"v{v} {self.cards[v].metrics.get(name, float('nan')):.4f}" for v in versions)
            lines.append(f"  {name:<20} {values}")
        return "\n".join(lines)

    def as_dict(self) -> dict[str, Any]:
        return {
            "window": self.window.as_dict(),
            "decision": self.decision.as_dict(),
            "metrics": {v: card.metrics for v, card in self.cards.items()},
        }


def evaluate_for_promotion(
    storage: Storage,
    store: FeatureStore,
    spec: UseCaseSpec,
    challenger: ModelRef,
    champion: ModelRef | None,
    load: Callable[[ModelRef], Any] | None = None,
) -> Evaluation:
    """Re-score challenger and champion on the same fresh window and apply the spec's gate policy.

    Raises :class:`NotEvaluable` when there are no fresh labelled rows, or the primary metric is
    undefined on them: a gate that cannot measure must not decide.
    """
    from mlloop.registry import load_model

    load = load or load_model
    refs = [challenger, *([champion] if champion else [])]
    ends = [end for end in (train_end(ref) for ref in refs) if end is not None]
    for ref in refs:
        if train_end(ref) is None:
            log.warning("v%s has no '%s' tag: cannot prove the window is unseen by it", ref.version, tag_keys.TRAIN_END)
    labels, window = fresh_labels(storage, spec, max(ends) if ends else None, training_cutoff(challenger))
    cards = scorecards(store, spec, labels, {ref.version: (ref, load(ref)) for ref in refs})
    mine = cards[challenger.version]
    if math.isnan(mine.primary):
        raise NotEvaluable(
            f"{spec.model.primary_metric} is undefined on the {mine.rows} fresh rows of {window.describe()} "
            "(e.g. only one class): the gate cannot measure"
        )
    policy = GatePolicy.from_spec(spec)
    decision = decide(policy, mine, cards[champion.version] if champion else None)
    window = EvaluationWindow(window.first_day, window.last_day, mine.rows, window.not_before)
    return Evaluation(window=window, decision=decision, cards=cards)
