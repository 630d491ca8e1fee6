"""The model lifecycle through Airflow: training, gated promotion and rollback DAGs with ``dag.test()``.

Data is ingested with the real ingestion functions (no Airflow: that DAG is not under test here);
every training, promotion and rollback goes through its DAG, against a real MLflow store (SQLite +
local artifacts) and a real Feast registry in the test's MLLOOP_HOME. Assertions read MLflow's own
client, not anything this project records about itself.

The bundled spec is used as is, except for the promotion floor (0.70 -> 0.60): at this test's data
size (six days of training rows) the bundled generator's first model scores AUC 0.66-0.72 on fresh
days, so the real floor would make the first promotion depend on the draw, not on the code.

Timeline (landing days D1..D16; labels of observation day d land on d+3):

* training with cutoff D4: most labels of the window are for observations before D1, which have no
  features: not enough labelled data, a green run that trains nothing;
* training with cutoff D11 while every label reads "no default" (an upstream bug ingestion cannot
  see): the training set fails validation, the run is red, nothing is registered;
* training with cutoff D11 (no model yet): v1 -> challenger; promotion: no champion, the floor
  decides -> v1 champion;
* training with cutoff D12 and no reason: v1 is one day old -> skipped, green;
* v2 = the same training set with shuffled labels (the core training function, registered as
  challenger outside Airflow): promotion rejects it, champion stays v1;
* training with cutoff D16 and a reason: v3 learns from twice the data -> promoted, v1 is
  previous-champion;
* rollback with no version -> v1 champion again, v3 previous-champion.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from mlloop import tags as tag_keys
from mlloop.tags import GateRecord
from spec_variants import use_spec_variant

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.integration

D1 = dt.date(2026, 3, 1)


def day(n: int) -> dt.date:
    return D1 + dt.timedelta(days=n - 1)


@pytest.fixture
def use_case(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The bundled credit_risk spec with the promotion floor lowered (see the module docstring)."""
    return use_spec_variant(monkeypatch, tmp_path / "use_cases", promotion={"min_primary_metric": 0.60})


@pytest.fixture
def dagbag(use_case: Any) -> Any:
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(ROOT / "dags"))
    assert bag.import_errors == {}
    return bag


def run_dag(dagbag: Any, dag_id: str, **conf: Any) -> dict[str, str]:
    """Run one DAG with ``dag.test()``; return task id -> final state (and the run's state as '__run__')."""
    dag = dagbag.get_dag(dag_id)
    run = dag.test(run_conf=conf or None)
    states = {ti.task_id: str(ti.state) for ti in run.get_task_instances()}
    states["__run__"] = str(run.state)
    return states


def ingest(storage: Any, spec: Any, days: list[dt.date]) -> None:
    from mlloop.ingestion import validate_landed_batch, write_feature_partition
    from mlloop.landing import land_days

    land_days(storage, spec, days)
    for d in days:
        validate_landed_batch(storage, spec, "observations", d)
        validate_landed_batch(storage, spec, "labels", d)
        write_feature_partition(storage, spec, d)


@contextmanager
def labels_without_defaults(storage: Any, spec: Any) -> Iterator[None]:
    """Every label partition rewritten with label 0, then put back."""
    originals = {}
    for path in storage.glob(storage.path("features", spec.name, "labels", "date=*", "data.parquet")):
        originals[path] = storage.read_bytes(path)
        frame = storage.read_frame(path)
        storage.write_frame(frame.assign(**{spec.labels.column: 0}), path)
    try:
        yield
    finally:
        for path, data in originals.items():
            storage.write_bytes(data, path)


def register_shuffled_label_model(storage: Any, spec: Any, cutoff: dt.date) -> str:
    """An honestly degraded model: the real training code, fed labels that no longer match the rows."""
    from mlloop.feature_store import open_store
    from mlloop.registry import mlflow_client
    from mlloop.training import Lineage, fit_and_evaluate, log_and_register
    from mlloop.training_set import build_training_set

    frame = build_training_set(storage, open_store(), spec, cutoff).frame
    label = spec.labels.column
    frame[label] = np.random.default_rng(0).permutation(frame[label].to_numpy())
    trained = fit_and_evaluate(spec, frame)
    ref = log_and_register(
        mlflow_client(), spec, trained, frame, lineage=Lineage(cutoff_day=cutoff, trigger_reason="test: shuffled")
    )
    return ref.version


def test_train_promote_reject_promote_rollback(
    airflow_db: Path, mlloop_home: Path, feast_registry: Path, storage: Any, use_case: Any, dagbag: Any
) -> None:
    from mlflow import MlflowClient

    from mlloop.settings import get_settings

    spec = use_case
    ingest(storage, spec, [day(n) for n in range(1, 17)])
    uri = get_settings().mlflow_tracking_uri
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    name = spec.registered_model_name
    training, promotion, rollback = (spec.dag_id(s) for s in ("training", "promotion", "rollback"))

    def versions() -> list[str]:
        return sorted((str(mv.version) for mv in client.search_model_versions(f"name = '{name}'")), key=int)

    def aliases() -> dict[str, str]:
        return {k: str(v) for k, v in client.get_registered_model(name).aliases.items()}

    def tags(version: str) -> dict[str, str]:
        return dict(client.get_model_version(name, version).tags)

    def gate(version: str) -> GateRecord:
        record = GateRecord.from_tags(tags(version))
        assert record is not None, f"v{version} was never gated"
        return record

    # Too few labels with features yet (most labels of D1..D4 are for observations before D1): green, nothing.
    states = run_dag(dagbag, training, cutoff_day=day(4).isoformat())
    assert states["__run__"] == "success" and states["build_training_set"] == "skipped"

    # An upstream bug delivered every label as "no default": ingestion accepts 0s, the training set's
    # class-balance check does not. The run is red and nothing reaches the registry.
    with labels_without_defaults(storage, spec):
        states = run_dag(dagbag, training, cutoff_day=day(11).isoformat())
    assert states["validate_training_set"] == "failed"
    assert states["train_and_register"] == "upstream_failed"
    assert states["__run__"] == "failed"
    assert client.search_registered_models() == []

    # First model: no version yet -> trained and registered as challenger, with lineage.
    states = run_dag(dagbag, training, cutoff_day=day(11).isoformat())
    assert states["__run__"] == "success" and states["train_and_register"] == "success"
    assert versions() == ["1"]
    assert aliases() == {"challenger": "1"}
    v1 = client.get_model_version(name, "1")
    run = client.get_run(v1.run_id)
    assert run.data.tags[tag_keys.LINEAGE_DAG_ID] == training
    assert run.data.tags[tag_keys.LINEAGE_CUTOFF_DAY] == day(11).isoformat()
    assert run.data.tags[tag_keys.TRIGGER_REASON] == "no model version yet"
    assert run.data.tags[tag_keys.LINEAGE_GIT_COMMIT]
    assert {"holdout_roc_auc", "holdout_log_loss"} <= set(run.data.metrics)
    assert {"training_set.sha256", "training_set.rows", "train_end"} <= set(run.data.params)
    artifacts = {a.path for a in client.list_artifacts(v1.run_id)}
    assert {"reference", "validation", "training_set"} <= artifacts
    assert v1.tags[tag_keys.USE_CASE] == spec.name and v1.tags[tag_keys.TRAINING_RUN_ID] == v1.run_id

    # No champion: the floor alone decides.
    states = run_dag(dagbag, promotion)
    assert states["promote_challenger"] == "success" and states["reject_challenger"] == "skipped"
    assert aliases()["champion"] == "1"
    assert tags("1")[tag_keys.DECISION] == "promoted"
    assert gate("1").passed

    # The newest model is one day old and nobody asked: a green run that trains nothing.
    states = run_dag(dagbag, training, cutoff_day=day(12).isoformat())
    assert states["__run__"] == "success"
    assert states["decide_training"] == "success" and states["train_and_register"] == "skipped"
    assert versions() == ["1"]

    # A degraded challenger is rejected; the champion stays.
    degraded = register_shuffled_label_model(storage, spec, day(11))
    assert aliases() == {"champion": "1", "challenger": degraded}
    states = run_dag(dagbag, promotion)
    assert states["__run__"] == "success"
    assert states["reject_challenger"] == "success" and states["promote_challenger"] == "skipped"
    assert aliases()["champion"] == "1"
    assert tags(degraded)[tag_keys.DECISION] == "rejected"
    assert "roc_auc" in tags(degraded)[tag_keys.REASONS]
    assert gate(degraded).champion_version == "1"

    # A better model (more data), trained on request, is promoted; v1 stays addressable.
    states = run_dag(dagbag, training, cutoff_day=day(16).isoformat(), reason="test: more data")
    assert states["train_and_register"] == "success"
    better = versions()[-1]
    assert better == "3"
    assert client.get_run(client.get_model_version(name, better).run_id).data.tags[tag_keys.TRIGGER_REASON] == (
        "test: more data"
    )
    states = run_dag(dagbag, promotion)
    assert states["promote_challenger"] == "success", gate(better).reasons
    assert aliases() == {"champion": better, "previous-champion": "1", "challenger": better}
    assert gate(better).checks["vs_champion"].status == "pass"

    # Rollback to the previous champion, and the rejected version cannot be restored.
    states = run_dag(dagbag, rollback)
    assert states["rollback_champion"] == "success"
    assert aliases()["champion"] == "1" and aliases()["previous-champion"] == better
    states = run_dag(dagbag, rollback, version=int(degraded))
    assert states["rollback_champion"] == "failed"
    assert aliases()["champion"] == "1"
