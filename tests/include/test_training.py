"""Training core: the decision to train, the time split, fitting, and what reaches MLflow."""

from __future__ import annotations

import datetime as dt
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml

from mlloop import tags as tag_keys
from mlloop.features import build_features
from mlloop.landing import generate
from mlloop.spec import UseCaseSpec
from mlloop.training import (
    TrainingDataError,
    decide_training,
    fit_and_evaluate,
    git_commit,
    model_input,
    split_by_time,
)

ROOT = Path(__file__).resolve().parents[2]
D1 = dt.date(2026, 2, 1)


def labelled(spec: UseCaseSpec, days: int, rows_per_day: int = 400) -> pd.DataFrame:
    """Features + labels of ``days`` observation days, joined exactly (no Feast: not under test here)."""
    key, ts, label = spec.entity.join_key, spec.raw.timestamp_column, spec.labels.column
    frames = []
    for n in range(days):
        day = D1 + dt.timedelta(days=n)
        params = {"bad_row_share": 0.0, "rows_per_day": rows_per_day}
        features = build_features(generate(spec, day, **params).observations, spec)
        labels = generate(spec, day + dt.timedelta(days=spec.labels.delay_days), **params).labels
        frames.append(features.merge(labels, on=[key, ts]))
    frame = pd.concat(frames, ignore_index=True)
    return frame[[key, ts, label, *spec.model.features]].sort_values(ts).reset_index(drop=True)


def regression_spec() -> UseCaseSpec:
    """The bundled use case turned into a regression on a float label: no code may need to change."""
    raw = yaml.safe_load((ROOT / "include" / "use_cases" / "credit_risk.yaml").read_text())
    raw["labels"] = {"column": "loss", "dtype": "float64", "delay_days": 3}
    raw["model"].update(
        task="regression",
        estimator="sklearn.ensemble.HistGradientBoostingRegressor",
        params={"max_iter": 50, "random_state": 0},
        primary_metric="rmse",
        metrics=["rmse", "mae", "r2"],
        min_training_rows=100,
        reference_sample_size=200,
    )
    raw["promotion"]["min_primary_metric"] = 100.0
    return UseCaseSpec.model_validate(raw)


def with_loss(frame: pd.DataFrame, seed: int = 0) -> pd.DataFrame:
    """A float target that depends on the features (so a model can learn it)."""
    rng = np.random.default_rng(seed)
    out = frame.drop(columns=["defaulted"]).copy()
    out["loss"] = (
        20 * out["loan_to_income"].fillna(0.3) + 5 * out["credit_utilization"].fillna(0.5) + rng.normal(0, 1, len(out))
    )
    return out


# ---------------------------------------------------------------------------------------- decision
DECISIONS = [
    # id, kwargs, train?, words the explanation must contain
    ("no version yet", {}, True, "no version yet"),
    ("too few labels, even forced", {"labelled_rows": 2999, "force": True}, False, "2999 < 3000"),
    ("reason given", {"reason": "drift: income shock", "latest_version": "3", "latest_cutoff": D1}, True, "drift"),
    ("forced", {"force": True, "latest_version": "3", "latest_cutoff": D1}, True, "forced"),
    ("recent model", {"latest_version": "3", "latest_cutoff": D1 - dt.timedelta(days=6)}, False, "only 6 day(s)"),
    ("stale model", {"latest_version": "3", "latest_cutoff": D1 - dt.timedelta(days=7)}, True, "7 day(s) before"),
    ("version without cutoff tag", {"latest_version": "3", "latest_cutoff": None}, True, "no 'training_cutoff'"),
    (
        "no champion yet, newer data",
        {"latest_version": "3", "latest_cutoff": D1 - dt.timedelta(days=1), "has_champion": False},
        True,
        "no champion yet",
    ),
    (
        "no champion yet, no newer data",
        {"latest_version": "3", "latest_cutoff": D1, "has_champion": False},
        False,
        "only 0 day(s)",
    ),
]


@pytest.mark.parametrize(("kwargs", "train", "words"), [pytest.param(*c[1:], id=c[0]) for c in DECISIONS])
def test_decide_training(spec: UseCaseSpec, kwargs: dict[str, Any], train: bool, words: str) -> None:
    args = {"cutoff_day": D1, "labelled_rows": 5000, **kwargs}
    decision = decide_training(spec, **args)
    assert decision.train is train
    assert words in decision.explanation
    if not train:
        assert decision.reason in ("not enough labelled data", "model is recent")


# -------------------------------------------------------------------------------------- split, fit
def test_split_holds_out_the_newest_days(spec: UseCaseSpec) -> None:
    frame = labelled(spec, days=5, rows_per_day=50)
    train, holdout = split_by_time(frame, spec)
    assert len(train) + len(holdout) == len(frame)
    ts = spec.raw.timestamp_column
    assert sorted(holdout[ts].dt.date.unique()) == [D1 + dt.timedelta(days=3), D1 + dt.timedelta(days=4)]
    assert train[ts].max() < holdout[ts].min()


def test_split_refuses_a_set_that_is_all_holdout(spec: UseCaseSpec) -> None:
    with pytest.raises(TrainingDataError, match=r"more days than model\.holdout_days"):
        split_by_time(labelled(spec, days=2, rows_per_day=50), spec)


def test_fit_learns_and_evaluates_on_the_holdout(spec: UseCaseSpec) -> None:
    frame = labelled(spec, days=8, rows_per_day=800)
    trained = fit_and_evaluate(spec, frame)
    assert set(trained.metrics) == set(spec.model.metrics)
    assert trained.train_end < trained.holdout_start
    assert trained.train_rows + trained.holdout_rows == len(frame)
    shuffled = frame.assign(defaulted=np.random.default_rng(0).permutation(frame["defaulted"].to_numpy()))
    chance = fit_and_evaluate(spec, shuffled)
    # The generator's risk drivers are learnable; labels that do not belong to their rows are not.
    assert trained.metrics["roc_auc"] > 0.62
    assert chance.metrics["roc_auc"] < 0.56


def test_model_input_and_pipeline_tolerate_missing_and_unknown_values(spec: UseCaseSpec) -> None:
    frame = labelled(spec, days=5, rows_per_day=200)
    trained = fit_and_evaluate(spec, frame)
    odd = frame.head(4).copy()
    odd["employment_type"] = [None, np.nan, "astronaut", "salaried"]  # what scoring may see
    odd["annual_income"] = pd.array([None, 1.0, 2.0, None], dtype="Float64")
    scores = trained.pipeline.predict_proba(model_input(odd, spec))[:, 1]
    assert np.isfinite(scores).all()
    raw = trained.pipeline.predict_proba(odd[spec.model.features])[:, 1]  # raw values, as the registry says
    assert np.isfinite(raw).all()


def test_one_class_is_a_data_fault(spec: UseCaseSpec) -> None:
    frame = labelled(spec, days=4, rows_per_day=50)
    frame["defaulted"] = 0
    with pytest.raises(TrainingDataError, match="only one class"):
        fit_and_evaluate(spec, frame)


def test_git_commit_override_and_fallback(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLLOOP_GIT_COMMIT", "abc123")
    assert git_commit() == "abc123"
    monkeypatch.delenv("MLLOOP_GIT_COMMIT")
    commit = git_commit()
    assert commit == "unknown" or len(commit) == 40


# ------------------------------------------------------------------------------------ MLflow logging
def test_log_and_register_follows_the_registry_conventions(mlloop_home: Path, spec: UseCaseSpec) -> None:
    from mlflow import MlflowClient

    from mlloop.registry import REFERENCE_ARTIFACT, load_model, load_reference_sample, mlflow_client
    from mlloop.settings import get_settings
    from mlloop.training import Lineage, log_and_register

    frame = labelled(spec, days=5, rows_per_day=300)
    trained = fit_and_evaluate(spec, frame)
    lineage = Lineage(cutoff_day=D1, trigger_reason="unit test", dag_id="d", dag_run_id="r", git_commit="c0ffee")
    ref = log_and_register(mlflow_client(), spec, trained, frame, lineage=lineage, validation={"rejected": False})

    uri = get_settings().mlflow_tracking_uri
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    assert client.get_registered_model(spec.registered_model_name).aliases == {"challenger": int(ref.version)}
    version = client.get_model_version(spec.registered_model_name, ref.version)
    assert version.tags[tag_keys.TRAINING_CUTOFF] == D1.isoformat()
    assert version.tags[tag_keys.FEATURE_SERVICE] == spec.model.feature_service
    run = client.get_run(version.run_id)
    assert run.data.tags[tag_keys.LINEAGE_GIT_COMMIT] == "c0ffee" == run.data.tags["mlflow.source.git.commit"]
    assert run.data.tags[tag_keys.TRIGGER_REASON] == "unit test"
    assert run.data.metrics["holdout_roc_auc"] == pytest.approx(trained.metrics["roc_auc"])
    assert run.data.params["training_set.rows"] == str(len(frame))

    reference = load_reference_sample(client, ref)
    assert list(reference.columns) == [*spec.model.features, spec.labels.column, "prediction"]
    assert len(reference) == min(spec.model.reference_sample_size, len(frame))
    with open(client.download_artifacts(version.run_id, "training_set/fingerprint.json")) as fh:
        fingerprint = json.load(fh)
    assert fingerprint["rows"] == len(frame) and len(fingerprint["sha256"]) == 64
    assert REFERENCE_ARTIFACT.startswith("reference/")

    model = load_model(ref)  # skops-serialized, loads back with the trusted stock types
    sample = frame.head(20)
    np.testing.assert_allclose(
        model.predict_proba(model_input(sample, spec))[:, 1],
        trained.pipeline.predict_proba(model_input(sample, spec))[:, 1],
    )


def test_a_retry_after_a_fault_past_registration_registers_no_duplicate(
    mlloop_home: Path, spec: UseCaseSpec, monkeypatch: pytest.MonkeyPatch
) -> None:
    """MLflow fails right after the version was created (its checksum could not be recorded): the
    retried task of the same Airflow run finishes that version instead of registering another."""
    import mlloop.training
    from mlloop.registry import load_model, mlflow_client
    from mlloop.tags import MODEL_SHA256
    from mlloop.training import Lineage, log_and_register

    frame = labelled(spec, days=5, rows_per_day=300)
    trained = fit_and_evaluate(spec, frame)
    lineage = Lineage(cutoff_day=D1, trigger_reason="unit test", dag_id="d", dag_run_id="scheduled__2026-03-01")
    client = mlflow_client()

    def outage(*args: object) -> None:
        raise ConnectionError("MLflow went away")

    with monkeypatch.context() as patch, pytest.raises(ConnectionError):
        patch.setattr(mlloop.training, "record_model_checksum", outage)
        log_and_register(client, spec, trained, frame, lineage=lineage)

    retried = log_and_register(client, spec, trained, frame, lineage=lineage)

    versions = client.search_model_versions(f"name = '{spec.registered_model_name}'")
    assert [str(v.version) for v in versions] == [retried.version] == ["1"]
    assert client.get_registered_model(spec.registered_model_name).aliases == {"challenger": 1}
    assert len(retried.tags[MODEL_SHA256]) == 64
    load_model(retried)
    other_run = Lineage(cutoff_day=D1, trigger_reason="unit test", dag_id="d", dag_run_id="scheduled__2026-03-02")
    assert log_and_register(client, spec, trained, frame, lineage=other_run).version == "2"


def test_a_regression_use_case_trains_and_registers_without_code_changes(mlloop_home: Path, spec: UseCaseSpec) -> None:
    from mlloop.registry import CHALLENGER, get_alias, mlflow_client
    from mlloop.training import Lineage, log_and_register
    from mlloop.training_set import validate_training_set

    reg = regression_spec()
    frame = with_loss(labelled(spec, days=5, rows_per_day=100))
    validate_training_set(frame, reg, source="test")
    trained = fit_and_evaluate(reg, frame)
    assert set(trained.metrics) == {"rmse", "mae", "r2"}
    assert all(math.isfinite(v) for v in trained.metrics.values())
    assert trained.metrics["r2"] > 0.3
    client = mlflow_client()
    ref = log_and_register(client, reg, trained, frame, lineage=Lineage(cutoff_day=D1, trigger_reason="t"))
    assert get_alias(client, reg.registered_model_name, CHALLENGER) == ref
    assert client.get_run(ref.run_id).data.metrics["holdout_rmse"] == pytest.approx(trained.metrics["rmse"])
