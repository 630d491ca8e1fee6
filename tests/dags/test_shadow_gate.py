"""The shadow gate through Airflow (``dag.test()``): real Feast, real MLflow store, real storage.

credit_risk with ``promotion.shadow_days: 2`` (floor lowered to 0.55, as in test_model_lifecycle,
because six days of training rows make a weak model). ``good`` is the small pipeline trained on the
generator's labels; ``bad`` is the same pipeline trained on shuffled labels (AUC about 0.5).

* a challenger that passes the holdout gate becomes pending, not champion, and never serves: batch
  scoring publishes the champion's predictions and the pending version's rows only under shadow/;
* each day of ~300 rows is shadow-scored on its sample of ``promotion.shadow_max_rows: 200`` rows,
  whether the day is scored in one part or two;
* the promotion DAG waits (green) until two shadow days are labelled, then decides on the
  predictions each model made: the bad pending version is rejected even though its holdout record
  says it passed, the good one is promoted.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from loop_fixtures import SMALL, ingest_days, labelled_frame, register_champion, task_states, train_small_model
from mlloop import tags as tag_keys
from mlloop.landing import date_range
from spec_variants import use_spec_variant

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
DAYS = date_range(dt.date(2026, 6, 1), dt.date(2026, 6, 10))
SHADOW_DAYS = DAYS[5:7]  # labels of observation day d land on d+3: both are labelled by DAYS[-1]
SHADOW_SAMPLE = 200  # of a day's ~300 rows (SMALL, less the quarantined ones)


@pytest.fixture
def shadow_spec(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    return use_spec_variant(
        monkeypatch,
        tmp_path / "use_cases",
        promotion={"min_primary_metric": 0.55, "shadow_days": 2, "shadow_max_rows": SHADOW_SAMPLE},
    )


@pytest.fixture
def models(airflow_db, feast_registry, storage, shadow_spec):  # type: ignore[no-untyped-def]
    ingest_days(storage, shadow_spec, DAYS, **SMALL)
    frame = labelled_frame(storage, shadow_spec, DAYS[:5])
    shuffled = frame.assign(
        **{shadow_spec.labels.column: np.random.default_rng(0).permutation(frame[shadow_spec.labels.column])}
    )
    return {"good": train_small_model(shadow_spec, frame), "bad": train_small_model(shadow_spec, shuffled)}


def dag(dag_id: str) -> Any:
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(ROOT / "dags" / f"{dag_id.split('__', 1)[1]}.py"))
    assert not bag.import_errors, bag.import_errors
    return bag.dags[dag_id]


def register(spec: Any, storage: Any, model: Any, cutoff: dt.date, alias: str | None) -> str:
    from mlloop.registry import mlflow_client

    ref = register_champion(spec, labelled_frame(storage, spec, DAYS[:5]), model=model, alias=alias)
    name = spec.registered_model_name
    mlflow_client().set_model_version_tag(name, ref.version, tag_keys.TRAINING_CUTOFF, cutoff.isoformat())
    return ref.version


def score(day: dt.date, partitions: int = 1) -> Any:
    run = dag("credit_risk__batch_scoring").test(run_conf={"day": day.isoformat(), "partitions": partitions})
    assert run.state == "success", task_states(run)
    return run


@pytest.mark.parametrize(("champion", "challenger", "promoted"), [("good", "bad", False), ("bad", "good", True)])
def test_a_pending_challenger_is_decided_on_its_shadow_days(
    storage, shadow_spec, models, champion, challenger, promoted
) -> None:  # type: ignore[no-untyped-def]
    from mlloop.champion import current_champion
    from mlloop.registry import aliases, get_version, mlflow_client
    from mlloop.scoring import predictions_path
    from mlloop.shadow import PENDING, mark_pending, shadow_path

    client, name = mlflow_client(), shadow_spec.registered_model_name
    v1 = register(shadow_spec, storage, models[champion], DAYS[3], alias="champion")
    v2 = register(shadow_spec, storage, models[challenger], DAYS[4], alias="challenger")
    # The holdout gate passed (its record, as evaluate_challenger writes it; that path is tested in
    # test_model_lifecycle): with shadow_days the challenger becomes pending instead of champion.
    client.set_model_version_tag(name, v2, tag_keys.GATE_PASSED, "true")
    mark_pending(client, shadow_spec, v2)

    promotion = dag("credit_risk__promotion")
    waiting = promotion.test()
    assert task_states(waiting)["evaluate_challenger"] == "success"
    assert "promote_challenger" not in task_states(waiting) or task_states(waiting)["promote_challenger"] == "skipped"
    assert get_version(client, name, v2).tags[tag_keys.SHADOW_DAYS_LABELLED] == "0"

    for day, partitions in zip(SHADOW_DAYS, (2, 1), strict=True):
        run = score(day, partitions)
        assert task_states(run)["resolve_shadow"] == "success"
        served = storage.read_frame(predictions_path(storage, shadow_spec, day))
        shadow = storage.read_frame(shadow_path(storage, shadow_spec, day))
        assert set(served["model_version"]) == {v1}  # a pending challenger never serves
        assert set(shadow["model_version"]) == {v2} and len(shadow) == SHADOW_SAMPLE < len(served)
        key, ts = shadow_spec.entity.join_key, shadow_spec.raw.timestamp_column
        assert set(zip(shadow[key], shadow[ts], strict=True)) <= set(zip(served[key], served[ts], strict=True))
        assert current_champion(client, name) == v1

    decided = promotion.test()

    states = task_states(decided)
    assert decided.state == "success", states
    assert states["promote_challenger" if promoted else "reject_challenger"] == "success", states
    assert states["reject_challenger" if promoted else "promote_challenger"] == "skipped", states
    assert states["mark_pending"] == "skipped"
    tags = get_version(client, name, v2).tags
    assert current_champion(client, name) == (v2 if promoted else v1)
    assert tags[tag_keys.SHADOW_STATE] == ("promoted" if promoted else "rejected")
    assert tags[tag_keys.SHADOW_DAYS] == ",".join(d.isoformat() for d in SHADOW_DAYS)
    assert tags[tag_keys.SHADOW_RESULT].startswith("passed" if promoted else "failed")
    assert tags[tag_keys.DECISION] == ("promoted" if promoted else "rejected")
    assert PENDING not in aliases(client, name)


def test_a_challenger_passing_the_holdout_gate_becomes_pending_not_champion(storage, shadow_spec, models) -> None:  # type: ignore[no-untyped-def]
    from mlloop.champion import RollbackRefused, current_champion, rollback
    from mlloop.registry import aliases, get_version, mlflow_client

    client, name = mlflow_client(), shadow_spec.registered_model_name
    v1 = register(shadow_spec, storage, models["bad"], DAYS[3], alias="champion")
    v2 = register(shadow_spec, storage, models["good"], DAYS[8], alias="challenger")

    run = dag("credit_risk__promotion").test(run_conf={"version": int(v2)})

    states = task_states(run)
    assert run.state == "success", states
    assert states["mark_pending"] == "success" and states["promote_challenger"] == "skipped", states
    assert current_champion(client, name) == v1
    assert aliases(client, name)["pending"] == v2
    assert get_version(client, name, v2).tags[tag_keys.SHADOW_STATE] == "pending"
    with pytest.raises(RollbackRefused, match="pending its shadow days"):
        rollback(client, shadow_spec, v2)
    assert current_champion(client, name) == v1


@pytest.fixture
def approval_spec(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, shadow_spec: Any, models: Any) -> Any:
    """The shadow spec with ``promotion.require_approval``: a person answers before the champion moves."""
    promotion = {"min_primary_metric": 0.55, "shadow_days": 2, "require_approval": True}
    return use_spec_variant(monkeypatch, tmp_path / "use_cases_with_approval", promotion=promotion)


class _TaskInstance:
    """Only what ApprovalOperator's skip needs of the running task instance (its XCom of skipped ids):
    an approval answered in a ``dag.test()`` run cannot be given here, so the answer is handed to the
    real operator's ``execute_complete`` as the HITL trigger would."""

    map_index = -1

    def xcom_push(self, key: str, value: Any) -> None:
        self.pushed = (key, value)


def test_a_human_rejection_at_approval_is_final_for_that_version(storage, approval_spec, models) -> None:  # type: ignore[no-untyped-def]
    from airflow.providers.common.compat.sdk import DownstreamTasksSkipped

    from mlloop.champion import current_champion
    from mlloop.health import model_health
    from mlloop.registry import aliases, get_version, mlflow_client
    from mlloop.services import Services
    from mlloop.shadow import mark_pending, shadow_candidate
    from mlloop.steps import RunInfo
    from mlloop.steps.promotion import evaluate_challenger

    spec = approval_spec
    client, name = mlflow_client(), spec.registered_model_name
    v1 = register(spec, storage, models["bad"], DAYS[3], alias="champion")
    v2 = register(spec, storage, models["good"], DAYS[4], alias="challenger")
    client.set_model_version_tag(name, v2, tag_keys.GATE_PASSED, "true")
    mark_pending(client, spec, v2)
    for day in SHADOW_DAYS:
        score(day)

    promotion = dag("credit_risk__promotion")
    services = Services(open_storage=lambda: storage)
    run = RunInfo(dag_id=promotion.dag_id, run_id="scheduled__next_scored_day")

    def asked_about() -> str | None:
        """What each scored day's promotion run does (a predictions event, no version): the version
        whose shadow gate passed goes to the approval."""
        outcome = evaluate_challenger(services, spec, run, None, [None])
        approve.evaluation = outcome.as_dict(spec)
        return outcome.version if outcome.passed else None

    def answer(option: str, user: dict[str, str] | None) -> None:
        event = {
            "chosen_options": [option],
            "params_input": {},
            "responded_at": dt.datetime(2026, 6, 11, 9, tzinfo=dt.UTC),
            "responded_by_user": user,
        }
        with pytest.raises(DownstreamTasksSkipped):  # Reject: promote_challenger is skipped
            approve.execute_complete({"ti": _TaskInstance(), "task": approve, "dag": promotion}, event)

    approve = promotion.task_dict["approve_promotion"]
    assert asked_about() == v2

    answer("Reject", None)  # nobody answered before the timeout (Airflow picks the default, Reject)
    assert asked_about() == v2  # not a decision: asked about again the next scored day

    answer("Reject", {"id": "7", "name": "alice"})
    assert asked_about() is None  # a person's Reject is final: never proposed again
    assert current_champion(client, name) == v1
    assert "pending" not in aliases(client, name)
    assert shadow_candidate(client, spec, get_version(client, name, v1), DAYS[8])[0] is None  # no longer shadowed
    tags = get_version(client, name, v2).tags
    assert tags[tag_keys.DECISION] == "rejected" and "rejected at approval by alice" in tags[tag_keys.REASONS]
    assert tags[tag_keys.SHADOW_STATE] == "rejected"
    assert (tags[tag_keys.APPROVAL_ANSWER], tags[tag_keys.APPROVAL_BY]) == ("rejected", "alice")
    events = model_health(storage, client, spec).events
    assert any(e.version == v2 and e.kind == "rejected" and "alice" in e.detail for e in events), events
