"""Model artifact integrity: a version's files are fingerprinted at registration and verified before
any load (scoring and promotion), because loading an MLflow model deserializes it and can run code."""

from __future__ import annotations

import datetime as dt
import pickle
from pathlib import Path
from typing import Any

import pytest

from loop_fixtures import SMALL, labelled_frame, register_champion, write_clean_features
from mlloop.landing import date_range
from mlloop.registry import (
    ModelIntegrityError,
    get_version,
    load_model,
    mlflow_client,
)
from mlloop.tags import MODEL_SHA256

DAYS = date_range(dt.date(2026, 11, 1), dt.date(2026, 11, 4))


class _Payload:
    """Unpickling this creates a file: the stand-in for whatever an attacker's pickle would do."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self) -> Any:
        return (Path(self.marker).touch, ())


@pytest.fixture
def version(storage, spec):  # type: ignore[no-untyped-def]
    write_clean_features(storage, spec, DAYS, **SMALL)
    return register_champion(spec, labelled_frame(storage, spec, DAYS[:3]))


def artifact_folder(ref: Any) -> Path:
    uri = mlflow_client().get_model_version_download_uri(ref.name, ref.version)
    return Path(uri.removeprefix("file://"))


def test_a_registered_version_carries_its_checksum_and_loads(version) -> None:  # type: ignore[no-untyped-def]
    assert len(version.tags[MODEL_SHA256]) == 64
    model = load_model(version)
    assert hasattr(model, "predict_proba")


def test_changed_bytes_are_refused_naming_the_file(version) -> None:  # type: ignore[no-untyped-def]
    skops = artifact_folder(version) / "model.skops"
    skops.write_bytes(skops.read_bytes() + b"\0")
    with pytest.raises(ModelIntegrityError, match=r"do not match the checksum.*model\.skops.*NOT loaded"):
        load_model(version)


def test_a_swapped_in_pickle_is_refused_before_it_runs(version, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """The attack the check exists for: the artifact store's files are replaced by a pickle-format
    model. Without the check, mlflow.sklearn.load_model would unpickle it and run its code."""
    marker = tmp_path / "pwned"
    folder = artifact_folder(version)
    mlmodel = (folder / "MLmodel").read_text()
    (folder / "MLmodel").write_text(
        mlmodel.replace("pickled_model: model.skops", "pickled_model: model.pkl").replace(
            "serialization_format: skops", "serialization_format: cloudpickle"
        )
    )
    (folder / "model.pkl").write_bytes(pickle.dumps(_Payload(str(marker))))
    try:
        load_model(version)
        refused = ""
    except ModelIntegrityError as exc:
        refused = str(exc)
    assert not marker.exists(), "the tampered model was deserialized: its code ran"
    assert "MLmodel, model.pkl" in refused


def test_a_version_without_a_checksum_is_not_loaded(version) -> None:  # type: ignore[no-untyped-def]
    client = mlflow_client()
    client.delete_model_version_tag(version.name, version.version, MODEL_SHA256)
    with pytest.raises(ModelIntegrityError, match="never fingerprinted"):
        load_model(get_version(client, version.name, version.version))


def test_scoring_refuses_a_tampered_champion_and_publishes_nothing(version, storage, spec, feast_registry) -> None:  # type: ignore[no-untyped-def]
    from airflow.sdk.exceptions import AirflowFailException

    from mlloop.scoring import predictions_path
    from mlloop_airflow.operators.scoring import ScorePartitionOperator

    skops = artifact_folder(version) / "model.skops"
    skops.write_bytes(skops.read_bytes()[:-10])
    pinned = {"name": version.name, "version": version.version}
    op = ScorePartitionOperator(task_id="score", use_case=spec.name, day=DAYS[-1].isoformat(), champion=pinned)
    with pytest.raises(AirflowFailException, match=r"Refusing to score with credit_risk v1: .*model\.skops"):
        op.execute({"run_id": "manual__integrity"})  # type: ignore[arg-type]
    assert not storage.exists(predictions_path(storage, spec, DAYS[-1]))


def test_promotion_refuses_to_evaluate_a_tampered_challenger(version, storage, spec, feast_registry) -> None:  # type: ignore[no-untyped-def]
    from mlloop.evaluation import evaluate_for_promotion
    from mlloop.feature_store import open_store

    challenger = register_champion(spec, labelled_frame(storage, spec, DAYS[:3]), alias="challenger", seed=1)
    (artifact_folder(challenger) / "MLmodel").write_text("tampered")
    with pytest.raises(ModelIntegrityError, match=f"credit_risk v{challenger.version}: .*MLmodel"):
        evaluate_for_promotion(storage, open_store(), spec, challenger, version)
