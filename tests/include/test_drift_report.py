"""Drift measurement: Evidently on generated data, the current window, labels, report files, MLflow."""

from __future__ import annotations

import datetime as dt
import json

import numpy as np
import pandas as pd
import pytest

from loop_fixtures import (
    SMALL,
    feature_frame,
    labelled_frame,
    lookup_fetcher,
    model_input,
    register_champion,
    train_small_model,
    write_clean_features,
)
from mlloop import tags as tag_keys
from mlloop.drift import decide
from mlloop.drift_report import (
    MONITORING,
    DriftInputError,
    build_drift_report,
    check_quality,
    labelled_predictions,
    load_current_window,
    run_evidently,
)
from mlloop.features import build_features
from mlloop.landing import date_range, generate
from mlloop.registry import PREDICTION_COLUMN, mlflow_client
from mlloop.scoring import Lineage, predictions_path, score_day
from mlloop.spec import get_spec

SHOCK = dt.date(2026, 11, 9)
TRAIN_DAYS = date_range(dt.date(2026, 11, 1), dt.date(2026, 11, 5))
RECENT_DAYS = date_range(dt.date(2026, 11, 10), dt.date(2026, 11, 12))


def features_of(spec, days, **overrides) -> pd.DataFrame:  # type: ignore[no-untyped-def]
    frames = [
        build_features(generate(spec, d, bad_row_share=0.0, **SMALL, **overrides).observations, spec) for d in days
    ]
    return pd.concat(frames, ignore_index=True)


def as_predictions(frame: pd.DataFrame, model, spec, version: str = "1") -> pd.DataFrame:  # type: ignore[no-untyped-def]
    out = frame.copy()
    out["score"] = model.predict_proba(model_input(frame, spec))[:, 1]
    out["predicted_class"] = (out["score"] >= 0.5).astype("int64")
    out["model_version"] = version
    return out


@pytest.fixture(scope="module")
def scenario():  # type: ignore[no-untyped-def]
    """Reference from the training days; current windows with and without the income shock."""
    spec = get_spec("credit_risk")
    train = features_of(spec, TRAIN_DAYS)
    rng = np.random.default_rng(0)
    train[spec.labels.column] = (rng.random(len(train)) < 0.1).astype("int64")
    model = train_small_model(spec, train)
    reference = model_input(train, spec)
    reference[PREDICTION_COLUMN] = model.predict_proba(reference)[:, 1]
    calm = as_predictions(features_of(spec, RECENT_DAYS), model, spec)
    shocked = as_predictions(features_of(spec, RECENT_DAYS, income_shock_from=SHOCK), model, spec)
    return reference, calm, shocked


def test_income_shock_flips_the_verdict(spec, scenario) -> None:  # type: ignore[no-untyped-def]
    reference, calm, shocked = scenario
    calm_result = run_evidently(reference, calm, spec, champion_version="1")
    shocked_result = run_evidently(reference, shocked, spec, champion_version="1")

    calm_verdict = decide(calm_result.features, spec.drift, prediction=calm_result.prediction)
    shocked_verdict = decide(shocked_result.features, spec.drift, prediction=shocked_result.prediction)
    assert not calm_verdict.drift, calm_verdict.headline()
    assert shocked_verdict.drift, shocked_verdict.headline()
    assert {"annual_income", "debt_to_income"} <= {c.column for c in shocked_verdict.drifted_features}
    assert shocked_verdict.key_features_drifted == ["annual_income", "debt_to_income"]
    assert set(shocked_result.features) == set(spec.model.features)
    assert all(c.method == "psi" and c.threshold == 0.1 for c in shocked_result.features.values())
    assert shocked_result.prediction is not None and shocked_result.prediction.drifted
    assert calm_result.prediction is not None and not calm_result.prediction.drifted


def test_prediction_drift_only_counts_the_champions_rows(spec, scenario) -> None:  # type: ignore[no-untyped-def]
    reference, calm, _ = scenario
    older = calm.assign(model_version="0")
    assert run_evidently(reference, older, spec, champion_version="1").prediction is None
    mixed = pd.concat([calm, older.assign(score=0.99)], ignore_index=True)
    result = run_evidently(reference, mixed, spec, champion_version="1")
    assert result.prediction is not None and not result.prediction.drifted


def test_prediction_drift_needs_the_spec_s_minimum_of_champion_rows(spec, scenario) -> None:  # type: ignore[no-untyped-def]
    reference, calm, _ = scenario
    few = calm.head(30)
    assert spec.drift.min_prediction_rows == 50
    assert run_evidently(reference, few, spec, champion_version="1").prediction is None
    small = spec.model_copy(update={"drift": spec.drift.model_copy(update={"min_prediction_rows": 24})})
    assert run_evidently(reference, few, small, champion_version="1").prediction is not None


def test_hard_class_reference_is_compared_with_predicted_classes(spec, scenario) -> None:  # type: ignore[no-untyped-def]
    reference, calm, _ = scenario
    classes = reference.assign(**{PREDICTION_COLUMN: (reference[PREDICTION_COLUMN] >= 0.5).astype("int64")})
    result = run_evidently(classes, calm, spec, champion_version="1")
    assert result.prediction is not None and not result.prediction.drifted


def write_predictions(storage, spec, frame: pd.DataFrame, days) -> None:  # type: ignore[no-untyped-def]
    ts = spec.raw.timestamp_column
    for day in days:
        rows = frame[frame[ts].dt.date == day]
        storage.write_frame(rows, predictions_path(storage, spec, day))


def test_current_window_is_a_seeded_sample_and_reports_missing_days(storage, spec, scenario) -> None:  # type: ignore[no-untyped-def]
    _, calm, _ = scenario
    day = RECENT_DAYS[-1]
    write_predictions(storage, spec, calm, [RECENT_DAYS[0], day])  # the middle day was never scored
    small = spec.model_copy(update={"drift": spec.drift.model_copy(update={"sample_size": 400})})

    window = load_current_window(storage, small, day)
    assert window.days_found == [RECENT_DAYS[0], day]
    assert window.days_missing == [RECENT_DAYS[1]]
    assert window.rows_total == 2 * SMALL["rows_per_day"]
    assert len(window.frame) == 400
    again = load_current_window(storage, small, day)
    pd.testing.assert_frame_equal(window.frame, again.frame)

    with pytest.raises(DriftInputError, match="the day was not scored"):
        load_current_window(storage, small, day + dt.timedelta(days=1))


def test_quality_uses_labels_that_arrived_in_the_window(storage, spec) -> None:  # type: ignore[no-untyped-def]
    """Labels landing in the window belong to predictions made delay_days earlier; only rows the
    champion scored count."""
    days = date_range(dt.date(2026, 11, 1), RECENT_DAYS[-1])
    write_clean_features(storage, spec, days, **SMALL)
    model = train_small_model(spec, labelled_frame(storage, spec, TRAIN_DAYS))
    scored_days = [d - dt.timedelta(days=spec.labels.delay_days) for d in RECENT_DAYS]
    for d in scored_days:
        version = "2" if d == scored_days[0] else "1"  # the oldest day was scored by another version
        frame = as_predictions(feature_frame(storage, spec, [d]), model, spec, version=version)
        storage.write_frame(frame, predictions_path(storage, spec, d))

    labelled = labelled_predictions(storage, spec, RECENT_DAYS[-1])
    assert set(labelled[spec.raw.timestamp_column].dt.date) == set(scored_days)
    quality = check_quality(labelled, spec, "1", reference_value=0.9)
    assert quality.labelled_rows == len(labelled[labelled["model_version"] == "1"]) > 0
    assert quality.current is not None and 0.5 < quality.current < 1.0
    assert quality.drop == pytest.approx(0.9 - quality.current)

    mine = labelled[labelled["model_version"] == "1"]
    few = pd.concat([mine[mine[spec.labels.column] == c].head(12) for c in (0, 1)])  # 24 rows, both classes
    too_few = check_quality(few, spec, "1", reference_value=0.9)
    assert too_few.current is None and "24 labelled prediction(s) of v1 (< drift.min_labelled_rows 100)" in too_few.note
    # A use case with 24 rows a day sets its own minimum (drift.min_labelled_rows) and is measured.
    daily = spec.model_copy(update={"drift": spec.drift.model_copy(update={"min_labelled_rows": 24})})
    assert check_quality(few, daily, "1", reference_value=0.9).current is not None
    assert labelled_predictions(storage, spec, dt.date(2026, 10, 1)).empty


def test_report_files_and_monitoring_run(storage, spec) -> None:  # type: ignore[no-untyped-def]
    days = date_range(dt.date(2026, 11, 1), RECENT_DAYS[-1])
    write_clean_features(storage, spec, days, **SMALL, income_shock_from=SHOCK)
    champion = register_champion(spec, labelled_frame(storage, spec, TRAIN_DAYS))
    from mlloop.registry import load_model

    model = load_model(champion)
    fetch = lookup_fetcher(feature_frame(storage, spec, days), spec)
    for d in days[-3:]:
        score_day(storage, spec, d, model=model, fetch_features=fetch, lineage=Lineage.of(champion, "t"))
    day = days[-1]
    client = mlflow_client()

    report = build_drift_report(storage, spec, day, client=client, champion=champion, airflow_run_id="scheduled__1")
    assert report.verdict.drift
    assert report.html_path.endswith("reports/credit_risk/drift/date=2026-11-12/report.html")
    assert b"<html" in storage.read_bytes(report.html_path)[:200]
    summary = json.loads(storage.read_bytes(report.json_path))
    assert summary["drift"] is True
    assert summary["reasons"] == report.verdict.reasons
    assert summary["verdict"]["drift"] is True
    assert summary["verdict"]["headline"].startswith("DRIFT")
    assert summary["model"] == {"name": "credit_risk", "version": champion.version, "run_id": champion.run_id}
    assert summary["window"]["missing"] == []
    assert summary["mlflow_run_id"] == report.mlflow_run_id
    assert summary["features"]["annual_income"]["drifted"] is True

    run = client.get_run(report.mlflow_run_id)
    assert run.data.tags[tag_keys.RUN_KIND] == MONITORING
    assert run.data.tags["model_version"] == champion.version
    assert run.data.metrics["drift_detected"] == 1.0
    assert run.data.metrics["drift_score.annual_income"] > 0.1

    rerun = build_drift_report(storage, spec, day, client=client, champion=champion, airflow_run_id="manual__2")
    experiment = client.get_experiment_by_name(spec.experiment_name)
    active = client.search_runs([experiment.experiment_id], filter_string="tags.run_kind = 'monitoring'")
    assert [r.info.run_id for r in active] == [rerun.mlflow_run_id], "a rerun replaces the day's monitoring run"
