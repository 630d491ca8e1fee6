"""Drift monitoring steps: measure drift against the champion's reference, decide (debounced)
whether to retrain, remember a triggered retrain for the cooldown."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mlloop.drift import ColumnDrift
from mlloop.steps import LOG, StepFailed, StepLog

if TYPE_CHECKING:
    from mlloop.drift import TriggerMarker
    from mlloop.drift_report import DriftReport
    from mlloop.services import Services
    from mlloop.spec import UseCaseSpec

TOP_FEATURES = 3


def _num(value: Any) -> str:
    return "n/a" if value is None else f"{value:.4g}"


def _worse_or_better(drop: float | None) -> str:
    if drop is None:
        return "no comparison"
    return f"worse by {_num(drop)}" if drop >= 0 else f"better by {_num(-drop)}"


def drift_summary(report: dict[str, Any], decision: str, report_link: str = "") -> str:
    """The drift check on one screen: verdict, why, the features nearest to (or past) their threshold,
    prediction drift, quality, rows compared, the retrain decision and where the report is.

    :param report: the summary :func:`measure` returns.
    :param decision: what the debounce decided (trigger, or why not).
    """
    verdict, quality, rows = report["verdict"], report["quality"], report["rows"]
    features = [
        ColumnDrift(name, item["score"], item["drifted"], item["method"], item["threshold"])
        for name, item in report["features"].items()
    ]
    drifted = [f for f in features if f.drifted]
    top = sorted(features, key=lambda f: (f.drifted, f.severity), reverse=True)[:TOP_FEATURES]
    policy = verdict.get("policy", {})
    model = report["model"]

    def column(c: ColumnDrift) -> str:
        return f"{c.column} {_num(c.score)}{' DRIFTED' if c.drifted else ''}"

    lines = [
        f"Drift check of {report['use_case']} for {report['day']} against {model['name']} v{model['version']}: "
        + ("DRIFT" if verdict["drift"] else "no drift"),
    ]
    if verdict["reasons"]:
        lines.append("  why:        " + "; ".join(verdict["reasons"]))
    lines.append(
        f"  features:   {len(drifted)}/{len(features)} drifted ({verdict['drifted_share']:.0%}, drift at "
        f">= {policy.get('drifted_share', 0):.0%}; {policy.get('method') or 'auto'} threshold "
        f"{policy.get('threshold', 'default')}); top: " + ", ".join(column(c) for c in top)
    )
    prediction = report.get("prediction")
    if prediction:
        state = "drifted" if prediction["drifted"] else "stable"
        lines.append(f"  prediction: {state} (score {_num(prediction['score'])})")
    if quality.get("current") is not None:
        lines.append(
            f"  quality:    {quality['metric']} {_num(quality['current'])} vs holdout {_num(quality['reference'])} "
            f"({_worse_or_better(quality['drop'])}, drift if worse by more than {policy.get('max_quality_drop')}) "
            f"on {quality['labelled_rows']} labelled predictions"
        )
    else:
        lines.append(f"  quality:    not measured ({quality.get('note') or 'no labels yet'})")
    lines.append(
        f"  rows:       {rows['reference_sampled']} reference vs {rows['current_sampled']} current "
        f"(of {rows['current']} scored in {', '.join(report['window']['found'])})"
    )
    lines.append(f"  decision:   {decision}")
    lines.append(f"  report:     {report_link or report['report_html']}")
    return "\n".join(lines)


def measure(
    services: Services,
    spec: UseCaseSpec,
    day: dt.date,
    pinned: dict[str, Any],
    run_id: str,
    log: StepLog = LOG,
) -> DriftReport:
    """Compare the day's recent scoring with the pinned champion's training reference; write the
    report (HTML + JSON) and log a ``monitoring`` run to MLflow. ``summary`` is the verdict and numbers."""
    from mlloop.drift_report import DriftInputError, build_drift_report
    from mlloop.registry import ModelNotFound, get_version

    try:
        ref = get_version(services.mlflow, pinned["name"], pinned["version"])
    except ModelNotFound as exc:
        raise StepFailed(f"{exc}: the pinned champion was deleted; rerun the DAG run") from None
    log.info(
        "Drift of %s for %s: window of %d day(s) vs the training reference of %s v%s "
        "(method %s, threshold %s, sample %d, seed %d)",
        spec.name,
        day,
        spec.drift.window_days,
        ref.name,
        ref.version,
        spec.drift.method or "auto",
        spec.drift.threshold if spec.drift.threshold is not None else "default",
        spec.drift.sample_size,
        spec.drift.seed,
    )
    try:
        report = build_drift_report(
            services.storage, spec, day, client=services.mlflow, champion=ref, airflow_run_id=run_id
        )
    except (DriftInputError, ModelNotFound) as exc:
        raise StepFailed(f"Cannot measure drift for {day}: {exc}") from None
    summary = report.summary
    if summary["window"]["missing"]:
        log.warning(
            "No predictions for %s (inside the %d-day window): compared the days that exist, %s",
            ", ".join(summary["window"]["missing"]),
            spec.drift.window_days,
            ", ".join(summary["window"]["found"]),
        )
    log.info(
        "Compared %d reference rows with %d of %d current rows; report %s, summary %s, MLflow run %s",
        summary["rows"]["reference_sampled"],
        summary["rows"]["current_sampled"],
        summary["rows"]["current"],
        report.html_path,
        report.json_path,
        report.mlflow_run_id,
    )
    return report


@dataclass(frozen=True)
class RetrainDecision:
    trigger: bool
    reason: str
    conf: dict[str, Any] | None


def decide_retrain(
    services: Services,
    spec: UseCaseSpec,
    day: dt.date,
    report: dict[str, Any],
    active_training_runs: Callable[[], int],
) -> RetrainDecision:
    """Whether the drift verdict starts a retrain now (:func:`mlloop.drift.retrain_gate`): not while a
    training run is active, not within the cooldown of the last drift trigger (data time), not when
    the ledger already holds a training on data up to ``day``. With the training conf if it does."""
    from mlloop.drift import read_marker, retrain_conf, retrain_gate
    from mlloop.training_requests import latest_request_before

    verdict = report["verdict"]
    active = 0
    last_trigger = latest = None
    if verdict["drift"]:
        request = latest_request_before(services.storage, spec, day + dt.timedelta(days=1))
        latest = request.cutoff_day if request else None
        active = active_training_runs()
        marker = read_marker(services.storage, spec)
        last_trigger = dt.date.fromisoformat(marker.day) if marker and marker.day else None
    gate = retrain_gate(
        verdict["drift"],
        active_training_runs=active,
        last_trigger_day=last_trigger,
        day=day,
        cooldown_hours=spec.drift.cooldown_hours,
        latest_training_cutoff=latest,
    )
    conf = retrain_conf(verdict, day, report["report_html"]) if gate.trigger else None
    return RetrainDecision(gate.trigger, gate.reason, conf)


def record_trigger(
    services: Services,
    spec: UseCaseSpec,
    day: dt.date,
    conf: dict[str, Any],
    training_dag_id: str,
    training_run_id: str,
    drift_run_id: str,
    log: StepLog = LOG,
) -> TriggerMarker:
    """Remember the retrain just triggered (and its data day) for ``drift.cooldown_hours`` of data time."""
    from mlloop.drift import TriggerMarker, marker_path, write_marker

    marker = TriggerMarker(
        triggered_at=dt.datetime.now(dt.UTC),
        day=day.isoformat(),
        training_dag_id=training_dag_id,
        training_run_id=training_run_id,
        drift_run_id=drift_run_id,
        reason=conf["reason"],
        report=conf["drift_report"],
    )
    storage = services.storage
    write_marker(storage, spec, marker)
    log.info(
        "Triggered %s run %s; no other drift-triggered retrain of %s for %g h of data time after %s (marker %s)",
        training_dag_id,
        marker.training_run_id,
        spec.name,
        spec.drift.cooldown_hours,
        day,
        marker_path(storage, spec),
    )
    return marker
