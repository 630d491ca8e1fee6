"""The drift decision's one-screen summary: verdict, why, the features nearest their threshold, quality,
rows, decision and report, from the report summary the drift task returns."""

from __future__ import annotations

from typing import Any

from mlloop.steps.drift import drift_summary


def report(drift: bool, quality: float | None) -> dict[str, Any]:
    scores = {"income": 1.7, "debt": 0.02, "age": 0.31, "region": 0.05}
    return {
        "use_case": "credit_risk",
        "day": "2026-11-25",
        "model": {"name": "credit_risk", "version": "3", "run_id": "r"},
        "window": {"days": ["2026-11-23", "2026-11-24", "2026-11-25"], "found": ["2026-11-24", "2026-11-25"]},
        "rows": {"reference": 5000, "reference_sampled": 5000, "current": 2000, "current_sampled": 2000},
        "features": {
            name: {"score": score, "drifted": score > 0.1, "method": "psi", "threshold": 0.1}
            for name, score in scores.items()
        },
        "prediction": {"score": 0.21, "drifted": True, "method": "psi", "threshold": 0.1},
        "quality": {
            "metric": "roc_auc",
            "current": quality,
            "reference": 0.8,
            "drop": None if quality is None else 0.8 - quality,
            "labelled_rows": 0 if quality is None else 812,
            "note": "" if quality is not None else "12 labelled prediction(s) of v3 (< 100)",
        },
        "verdict": {
            "drift": drift,
            "reasons": ["key feature(s) drifted: income", "2/4 features drifted (50% >= 30%)"] if drift else [],
            "drifted_share": 0.5,
            "policy": {"drifted_share": 0.3, "method": "psi", "threshold": 0.1, "max_quality_drop": 0.05},
        },
        "report_html": "/data/reports/credit_risk/drift/date=2026-11-25/report.html",
    }


def test_drift_summary_names_the_top_features_quality_and_decision() -> None:
    text = drift_summary(report(True, 0.71), "triggering training", "http://a/mlloop/reports/x.html")
    lines = text.splitlines()
    assert lines[0] == "Drift check of credit_risk for 2026-11-25 against credit_risk v3: DRIFT"
    assert "why:        key feature(s) drifted: income; 2/4 features drifted" in lines[1]
    assert (
        "2/4 drifted (50%, drift at >= 30%; psi threshold 0.1); top: income 1.7 DRIFTED, age 0.31 DRIFTED, region 0.05"
        in text
    )
    assert "quality:    roc_auc 0.71 vs holdout 0.8 (worse by 0.09, drift if worse by more than 0.05) on 812" in text
    better = drift_summary(report(False, 0.85), "no drift: nothing to retrain")
    assert "roc_auc 0.85 vs holdout 0.8 (better by 0.05," in better
    assert "rows:       5000 reference vs 2000 current (of 2000 scored in 2026-11-24, 2026-11-25)" in text
    assert lines[-2:] == ["  decision:   triggering training", "  report:     http://a/mlloop/reports/x.html"]


def test_a_calm_day_still_shows_the_features_closest_to_their_threshold() -> None:
    calm = report(False, None)
    for item in calm["features"].values():
        item["drifted"] = False
    text = drift_summary(calm, "no drift: nothing to retrain")
    assert text.splitlines()[0].endswith(": no drift")
    assert "why:" not in text
    assert "top: income 1.7, age 0.31, region 0.05" in text
    assert "quality:    not measured (12 labelled prediction(s) of v3 (< 100))" in text
    assert text.endswith("report:     /data/reports/credit_risk/drift/date=2026-11-25/report.html")
