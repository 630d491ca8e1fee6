"""The ingestion DAG run by Airflow (dag.test) on a real storage root, Feast registry and online store."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from mlloop.feature_store import online_features, open_store
from mlloop.ingestion import features_path, landing_path, quarantine_paths
from mlloop.landing import land_days
from spec_variants import use_spec_variant

pytestmark = pytest.mark.integration

GOOD_DAYS = [dt.date(2026, 4, 1), dt.date(2026, 4, 2)]
DAG_ID = "credit_risk__feature_ingestion"


@pytest.fixture(scope="module")
def dag(airflow_db):  # type: ignore[no-untyped-def]
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(Path(__file__).resolve().parents[2] / "dags")).dags[DAG_ID]


def run_day(dag, day: dt.date):  # type: ignore[no-untyped-def]
    from airflow.utils.session import create_session

    # The day goes through the `day` Param, as in a manual trigger; backfills (data intervals)
    # are exercised by the end-to-end test against a real scheduler.
    run = dag.test(run_conf={"day": day.isoformat()})
    with create_session() as session:
        states = {ti.task_id: ti.state for ti in run.get_task_instances(session=session)}
    return run.state, states


def test_good_days_reach_the_online_store_and_bad_rows_the_quarantine(dag, storage, spec, feast_registry) -> None:  # type: ignore[no-untyped-def]
    landed = land_days(storage, spec, GOOD_DAYS, rows_per_day=300, n_customers=500, bad_row_share=0.03)
    for day in GOOD_DAYS:
        state, tasks = run_day(dag, day)
        assert state == "success", tasks

    last = GOOD_DAYS[-1]
    features = storage.read_frame(features_path(storage, spec, last))
    known = features.sample(10, random_state=0)
    online = online_features(open_store(), spec.model.feature_service, "customer_id", known["customer_id"].tolist())
    merged = known.merge(online, on="customer_id", suffixes=("", "_online"))
    assert len(merged) == 10
    for column in ("annual_income", "debt_to_income", "employment_type", "age"):
        np.testing.assert_array_equal(merged[f"{column}_online"], merged[column])

    for day in GOOD_DAYS:
        quarantined = storage.read_frame(quarantine_paths(storage, spec, "observations", day)[0])
        injected = landed[day].injected_bad_rows
        assert sorted(quarantined["_row_number"]) == sorted(injected)
        assert quarantined["_reasons"].str.len().min() > 0
        good = storage.read_frame(features_path(storage, spec, day))
        assert len(good) + len(quarantined) == 300


def _drop_age(path: Path) -> None:
    pq.write_table(pq.read_table(path).drop(["age"]), path)


def _age_as_text(path: Path) -> None:
    table = pq.read_table(path)
    index = table.schema.get_field_index("age")
    pq.write_table(table.set_column(index, "age", pa.array([str(v) for v in table["age"].to_pylist()])), path)


def _garbage(path: Path) -> None:
    table = pq.read_table(path)
    index = table.schema.get_field_index("age")
    pq.write_table(table.set_column(index, "age", pa.array([-1] * table.num_rows, pa.int64())), path)


@pytest.mark.parametrize(
    ("day", "corrupt", "message"),
    [
        (dt.date(2026, 4, 10), _drop_age, "missing column(s) ['age']"),
        (dt.date(2026, 4, 11), _age_as_text, "column 'age' has type string, the contract says int64"),
        (dt.date(2026, 4, 12), _garbage, "above the limit of 20.0%"),
    ],
    ids=["missing-column", "wrong-type", "all-garbage"],
)
def test_bad_batch_fails_clearly_and_writes_nothing_downstream(  # type: ignore[no-untyped-def]
    dag, storage, spec, feast_registry, capfd, day, corrupt, message
) -> None:
    landed = land_days(storage, spec, [day], rows_per_day=200, n_customers=300, bad_row_share=0.0)[day]
    corrupt(Path(landing_path(storage, spec, "observations", day)))
    state, tasks = run_day(dag, day)
    assert state == "failed"
    assert tasks["validate_observations"] == "failed"
    assert tasks["build_features"] == "upstream_failed" and tasks["materialize_online"] == "upstream_failed"
    captured = capfd.readouterr()
    task_log = captured.out + captured.err  # dag.test() prints task logs (structlog) to the console
    assert message in task_log
    assert "Fix or re-deliver the batch upstream" in task_log
    assert not storage.exists(features_path(storage, spec, day))
    some_customers = landed.observations["customer_id"].head(5).tolist()
    online = online_features(open_store(), spec.model.feature_service, "customer_id", some_customers)
    assert online["annual_income"].isna().all(), "nothing of a rejected batch may reach the online store"


def test_only_a_day_due_a_training_emits_the_features_asset(  # type: ignore[no-untyped-def]
    airflow_db, storage, spec, feast_registry, tmp_path, monkeypatch
) -> None:
    """Ingestion decides, day by day in data time, whether a training is due; only then does the
    features Asset (which starts training) get an event, carrying the cutoff. The other days are
    green with request_training skipped: the training DAG does not start a run to decide nothing."""
    from airflow.dag_processing.dagbag import DagBag
    from airflow.models.asset import AssetEvent, AssetModel
    from airflow.utils.session import create_session

    from mlloop.training_requests import requests

    # small data: labels of day 1 (landing on day 4) suffice
    use_spec_variant(monkeypatch, tmp_path, model={"min_training_rows": 200})
    days = [dt.date(2026, 5, 1) + dt.timedelta(days=n) for n in range(6)]
    land_days(storage, spec, days, rows_per_day=300, n_customers=500, bad_row_share=0.0)
    dag = DagBag(dag_folder=str(Path(__file__).resolve().parents[2] / "dags" / "feature_ingestion.py")).dags[DAG_ID]

    def events() -> list[dict]:
        with create_session() as session:
            rows = (
                session.query(AssetEvent)
                .join(AssetModel, AssetEvent.asset_id == AssetModel.id)
                .filter(AssetModel.name == "credit_risk.features")
                .all()
            )
            return [dict(e.extra or {}) for e in rows]

    before = len(events())
    states = {}
    for day in days:
        state, tasks = run_day(dag, day)
        assert state == "success", tasks
        states[day] = tasks["request_training"]
    due = days[spec.labels.delay_days]  # the first day whose window holds the first labels
    assert states == {day: "success" if day == due else "skipped" for day in days}
    new = events()[before:]
    assert [e["cutoff_day"] for e in new] == [due.isoformat()]
    assert new[0]["reason"].startswith("due: ")
    assert [r.cutoff_day for r in requests(storage, spec)] == [due]


@pytest.mark.timeout(300, method="thread")  # without the fix, dag.test() of the next day never returns
def test_a_day_that_never_lands_does_not_hold_the_later_days_decisions(  # type: ignore[no-untyped-def]
    airflow_db, storage, spec, feast_registry, tmp_path, monkeypatch
) -> None:
    """Decisions run in day order, but a day whose ingestion failed for good (its batch rejected by
    validation, or never delivered: the sensor timed out) is a day with no new labels: its run is
    failed (red, alerted), and the next days still decide. Before, `depends_on_past` held every later
    day's training decision until someone fixed the dead day."""
    from airflow.dag_processing.dagbag import DagBag

    from mlloop.training_requests import requests

    use_spec_variant(monkeypatch, tmp_path, model={"min_training_rows": 200})
    days = [dt.date(2026, 6, 1) + dt.timedelta(days=n) for n in range(6)]
    rejected, missing = days[1], days[2]
    land_days(storage, spec, days, rows_per_day=300, n_customers=500, bad_row_share=0.0)
    _garbage(Path(landing_path(storage, spec, "observations", rejected)))
    Path(landing_path(storage, spec, "observations", missing)).unlink()
    dag = DagBag(dag_folder=str(Path(__file__).resolve().parents[2] / "dags" / "feature_ingestion.py")).dags[DAG_ID]
    monkeypatch.setattr(dag.get_task("wait_for_raw_batch"), "timeout", 2)  # "never delivered", in 2 s

    outcome = {day: run_day(dag, day) for day in days}

    assert outcome[rejected][0] == "failed" and outcome[rejected][1]["validate_observations"] == "failed"
    assert outcome[missing][0] == "failed" and outcome[missing][1]["wait_for_raw_batch"] == "failed"
    for day in (rejected, missing):  # no decision to make, and none pending: the later days go on
        assert outcome[day][1]["request_training"] == "skipped", outcome[day][1]
    for day in (days[0], *days[3:]):
        assert outcome[day][0] == "success", (day, outcome[day][1])
    due = days[spec.labels.delay_days]  # labels of the first day land with this day's batch
    assert due > missing
    assert outcome[due][1]["request_training"] == "success"
    assert [r.cutoff_day for r in requests(storage, spec)] == [due]


@pytest.mark.timeout(900, method="thread")
def test_a_dead_day_cleared_after_later_days_decided_adds_no_training_out_of_order(  # type: ignore[no-untyped-def]
    airflow_db, storage, spec, feast_registry, tmp_path, monkeypatch
) -> None:
    """Row 24's other edge: the day that would have been due never arrives (its sensor timed out), so
    the next day decides the first training; weeks later the batch is delivered and the dead run is
    cleared. A data engineer expects the day's features and labels to be ingested (they count for the
    next training), the decisions already made to stand, and no training with a cutoff before one
    already trained: the late day decides "not due", saying why."""
    from airflow.dag_processing.dagbag import DagBag

    from mlloop.training_requests import requests

    use_spec_variant(monkeypatch, tmp_path, model={"min_training_rows": 200})
    days = [dt.date(2026, 7, 1) + dt.timedelta(days=n) for n in range(5)]
    dead = days[spec.labels.delay_days]  # the day a complete history is first due a training
    land_days(storage, spec, days, rows_per_day=300, n_customers=500, bad_row_share=0.0)
    batch = Path(landing_path(storage, spec, "observations", dead))
    held_back = batch.with_name("held_back.parquet")
    batch.rename(held_back)
    dag = DagBag(dag_folder=str(Path(__file__).resolve().parents[2] / "dags" / "feature_ingestion.py")).dags[DAG_ID]
    monkeypatch.setattr(dag.get_task("wait_for_raw_batch"), "timeout", 2)

    outcome = {day: run_day(dag, day) for day in days}
    assert outcome[dead][0] == "failed", outcome[dead][1]
    after = days[days.index(dead) + 1]
    assert outcome[after][1]["request_training"] == "success"  # the first training, decided without the dead day
    assert [r.cutoff_day for r in requests(storage, spec)] == [after]

    held_back.rename(batch)  # delivered late; the dead day's run is cleared (a new run of the day)
    monkeypatch.setattr(dag.get_task("wait_for_raw_batch"), "timeout", 60)
    state, tasks = run_day(dag, dead)

    assert state == "success", tasks
    assert tasks["build_features"] == "success" and tasks["materialize_online"] == "success"
    assert storage.exists(features_path(storage, spec, dead))  # its labels count for the next training
    assert tasks["request_training"] == "skipped", tasks  # no decision re-made out of order
    assert [r.cutoff_day for r in requests(storage, spec)] == [after]
