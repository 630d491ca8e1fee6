"""Drift policy: what the drift monitor measured, whether that is drift, and whether to retrain now.

Everything here is a pure function of its inputs (no I/O, no clock) except the small trigger-marker
helpers at the end, so the policy can be tested with a table of cases and explained in one line:

* :func:`decide` turns the measurements into a :class:`DriftVerdict` with the spec's policy: drift
  if the share of drifted model features reaches ``drift.drifted_share``, or any of
  ``drift.key_features`` drifted, or the model's quality dropped by more than ``drift.max_quality_drop``
  against its training holdout;
* :func:`retrain_gate` debounces the reaction: no retrain while one is queued or running, and none
  within ``drift.cooldown_hours`` of data time (checked day vs the day of the last drift-triggered
  retrain) after it.

Measuring (Evidently, labels, files, MLflow) lives in :mod:`mlloop.drift_report`.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from mlloop import layout
from mlloop.spec import DriftSpec, UseCaseSpec
from mlloop.storage import Storage
from mlloop.training_conf import DRIFT_NUMBER_KEYS, DriftNumbers, TrainingConf

HIGHER_IS_BETTER = frozenset({"roc_auc", "average_precision", "accuracy", "f1", "r2"})
LOWER_IS_BETTER = frozenset({"log_loss", "brier", "rmse", "mae"})
P_VALUE_METHODS = frozenset(
    {"ks", "chisquare", "z", "fisher_exact", "g_test", "mannw", "t_test", "cramer_von_mises", "anderson", "es"}
)
"""Evidently methods whose score is a p-value (drift when it is *below* the threshold)."""

MARKER_FILE = layout.DRIFT_MARKER


@dataclass(frozen=True)
class ColumnDrift:
    """One column's drift test: Evidently's raw score and its pass/fail under method + threshold."""

    column: str
    score: float | None
    drifted: bool
    method: str | None = None
    threshold: float | None = None

    @property
    def severity(self) -> float:
        """How far past the threshold, comparable across methods (> 1 means drifted)."""
        if self.score is None or self.threshold is None or not math.isfinite(self.score):
            return math.inf if self.drifted else 0.0
        if is_p_value(self.method):
            return self.threshold / self.score if self.score > 0 else math.inf
        return self.score / self.threshold if self.threshold > 0 else math.inf


def is_p_value(method: str | None) -> bool:
    name = (method or "").lower()
    return name in P_VALUE_METHODS or "p_value" in name


def higher_is_better(metric: str) -> bool:
    if metric in HIGHER_IS_BETTER:
        return True
    if metric in LOWER_IS_BETTER:
        return False
    raise ValueError(f"unknown metric '{metric}'")


@dataclass(frozen=True)
class QualityCheck:
    """The champion's quality on labelled recent predictions vs its training holdout."""

    metric: str
    current: float | None
    reference: float | None
    labelled_rows: int
    note: str = ""

    @property
    def drop(self) -> float | None:
        """How much worse than the holdout, in the metric's units (positive = worse)."""
        if self.current is None or self.reference is None:
            return None
        gap = self.reference - self.current
        return gap if higher_is_better(self.metric) else -gap


@dataclass(frozen=True)
class DriftVerdict:
    drift: bool
    reasons: list[str]
    drifted_share: float
    drifted_features: list[ColumnDrift]
    key_features_drifted: list[str]
    quality_drop: float | None
    prediction: ColumnDrift | None = None
    quality: QualityCheck | None = None
    policy: dict[str, Any] = field(default_factory=dict)

    def headline(self, top: int = 3) -> str:
        """One line: the decision, the numbers that made it."""
        parts = [f"drifted share {self.drifted_share:.0%} (limit {self.policy.get('drifted_share', 0):.0%})"]
        if self.drifted_features:
            tops = ", ".join(f"{c.column}={_fmt(c.score)}" for c in self.drifted_features[:top])
            parts.append(f"top drifted: {tops}")
        if self.prediction is not None:
            state = "drifted" if self.prediction.drifted else "stable"
            parts.append(f"prediction {state} ({_fmt(self.prediction.score)})")
        if self.quality is not None and self.quality.current is not None:
            q = self.quality
            drop = f", worse by {q.drop:+.4f}" if q.drop is not None else ""
            parts.append(f"{q.metric} {q.current:.4f} vs holdout {_fmt(q.reference)}{drop} on {q.labelled_rows} labels")
        elif self.quality is not None:
            parts.append(f"quality not measured: {self.quality.note}")
        verdict = "DRIFT: " + "; ".join(self.reasons) if self.drift else "no drift"
        return f"{verdict} | " + " | ".join(parts)

    def numbers(self) -> dict[str, Any]:
        """The measurements as plain JSON numbers (the training trigger's ``drift`` conf)."""
        return {
            "drifted_share": round(self.drifted_share, 6),
            "drifted_features": {c.column: json_number(c.score) for c in self.drifted_features},
            "key_features_drifted": list(self.key_features_drifted),
            "prediction_drift": json_number(self.prediction.score) if self.prediction else None,
            "prediction_drifted": self.prediction.drifted if self.prediction else None,
            "quality_metric": self.quality.metric if self.quality else None,
            "quality_current": json_number(self.quality.current) if self.quality else None,
            "quality_reference": json_number(self.quality.reference) if self.quality else None,
            "quality_drop": json_number(self.quality_drop),
            "labelled_rows": self.quality.labelled_rows if self.quality else 0,
        }

    def as_dict(self) -> dict[str, Any]:
        return {
            "drift": self.drift,
            "reasons": list(self.reasons),
            "headline": self.headline(),
            "policy": dict(self.policy),
            **self.numbers(),
        }


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4g}"


def json_number(value: float | None) -> float | None:
    """None for missing or non-finite values: conf and JSON files must not carry NaN."""
    if value is None or not math.isfinite(value):
        return None
    return round(float(value), 6)


def decide(
    features: Mapping[str, ColumnDrift],
    policy: DriftSpec,
    *,
    quality: QualityCheck | None = None,
    prediction: ColumnDrift | None = None,
) -> DriftVerdict:
    """Apply the use case's drift policy to the measurements (pure).

    Drift when any holds: share of drifted model features >= ``drifted_share``; a key feature
    drifted; quality dropped by more than ``max_quality_drop``. Prediction drift is reported but
    is not a reason on its own: it follows from feature drift or a model change, and a retrain
    is justified by the inputs or the outcomes, not by the score distribution alone.
    """
    if not features:
        raise ValueError("no feature drift results to decide on")
    drifted = sorted((c for c in features.values() if c.drifted), key=lambda c: c.severity, reverse=True)
    share = len(drifted) / len(features)
    keys_drifted = [name for name in policy.key_features if name in features and features[name].drifted]
    reasons: list[str] = []
    if share >= policy.drifted_share:
        reasons.append(f"{len(drifted)}/{len(features)} features drifted ({share:.0%} >= {policy.drifted_share:.0%})")
    if keys_drifted:
        reasons.append(f"key feature(s) drifted: {', '.join(keys_drifted)}")
    drop = quality.drop if quality is not None else None
    if drop is not None and drop > policy.max_quality_drop:
        assert quality is not None
        reasons.append(
            f"{quality.metric} is {drop:.4f} worse than on its holdout (> {policy.max_quality_drop:.4f} allowed)"
        )
    return DriftVerdict(
        drift=bool(reasons),
        reasons=reasons,
        drifted_share=share,
        drifted_features=drifted,
        key_features_drifted=keys_drifted,
        quality_drop=drop,
        prediction=prediction,
        quality=quality,
        policy={
            "drifted_share": policy.drifted_share,
            "key_features": list(policy.key_features),
            "max_quality_drop": policy.max_quality_drop,
            "method": policy.method,
            "threshold": policy.threshold,
        },
    )


# ---------------------------------------------------------------------------- retrain gate
@dataclass(frozen=True)
class GateDecision:
    trigger: bool
    reason: str


def retrain_gate(
    drift: bool,
    *,
    active_training_runs: int,
    last_trigger_day: dt.date | None,
    day: dt.date,
    cooldown_hours: float,
    latest_training_cutoff: dt.date | None = None,
) -> GateDecision:
    """Whether drift at data day ``day`` should start a retrain (pure).

    No drift -> no. A training run already queued or running will see the same data -> no. The
    last drift-triggered retrain less than ``cooldown_hours`` of DATA time before ``day`` (the day
    checked vs the day whose check triggered it, in whole days) -> no: its model may not even be
    promoted yet, and drift measured against the old champion's reference persists until it is.
    Data time, not the wall clock: a replay of weeks inside an hour debounces exactly as the same
    days did live, and a check of a day before the last trigger (a rerun of history) never
    triggers a second retrain for data the last one already saw. A training already asked for
    on data up to ``day`` or later (``latest_training_cutoff``, from the training ledger: the
    scheduled one of that very day, say) -> no: a retrain would see the same data.
    """
    if not drift:
        return GateDecision(False, "no drift: nothing to retrain")
    if active_training_runs > 0:
        return GateDecision(
            False, f"debounced: {active_training_runs} training run(s) already queued or running will retrain"
        )
    if latest_training_cutoff is not None and latest_training_cutoff >= day:
        return GateDecision(
            False,
            f"debounced: a training on data up to {latest_training_cutoff.isoformat()} is already asked for "
            f"(the training ledger); its model is the answer to drift found on {day.isoformat()}",
        )
    if last_trigger_day is not None:
        ready_on = last_trigger_day + dt.timedelta(days=math.ceil(cooldown_hours / 24))
        if day < ready_on:
            return GateDecision(
                False,
                f"debounced: cooldown of {cooldown_hours:g} h of data time after the retrain triggered by the check "
                f"of {last_trigger_day.isoformat()} lasts until the check of {ready_on.isoformat()}",
            )
    return GateDecision(True, "drift detected and no retrain is pending or cooling down: triggering training")


def retrain_conf(verdict: Mapping[str, Any], day: dt.date, report_html: str) -> dict[str, Any]:
    """The conf of a drift-triggered training run (:class:`mlloop.training_conf.TrainingConf`, the
    training DAG's Params).

    :param verdict: :meth:`DriftVerdict.as_dict` (it travels between tasks as a dict).
    """
    conf = TrainingConf(
        reason=f"drift detected on {day.isoformat()}: " + "; ".join(verdict["reasons"]),
        cutoff_day=day.isoformat(),
        drift=DriftNumbers(**{key: verdict[key] for key in DRIFT_NUMBER_KEYS}),
        drift_report=report_html,
    )
    return conf.as_conf()


# ---------------------------------------------------------------------------- trigger marker
@dataclass(frozen=True)
class TriggerMarker:
    """The last drift-triggered retrain, kept under the reports area so the cooldown survives
    restarts, DB resets and clears of the drift DAG's runs."""

    triggered_at: dt.datetime
    day: str
    training_dag_id: str
    training_run_id: str
    drift_run_id: str
    reason: str
    report: str

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "triggered_at": self.triggered_at.isoformat()}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TriggerMarker:
        values = {name: data.get(name, "") for name in cls.__dataclass_fields__}
        values["triggered_at"] = dt.datetime.fromisoformat(str(data["triggered_at"]))
        return cls(**values)


def marker_path(storage: Storage, spec: UseCaseSpec) -> str:
    return layout.DRIFT_REPORT.folder(storage, spec) + "/" + MARKER_FILE


def read_marker(storage: Storage, spec: UseCaseSpec) -> TriggerMarker | None:
    """The last trigger, or None if there was none (an unreadable marker is a fault, not 'none')."""
    path = marker_path(storage, spec)
    if not storage.exists(path):
        return None
    try:
        return TriggerMarker.from_dict(json.loads(storage.read_bytes(path)))
    except (ValueError, KeyError, TypeError) as exc:
        raise ValueError(
            f"{path} is not a valid retrain-trigger marker ({exc}); delete it to reset the cooldown"
        ) from exc


def write_marker(storage: Storage, spec: UseCaseSpec, marker: TriggerMarker) -> str:
    return storage.write_bytes(json.dumps(marker.as_dict(), indent=2).encode(), marker_path(storage, spec))
