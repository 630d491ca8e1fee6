"""Reliability on a real Airflow 3 (the embedded one: scheduler, LocalExecutor, API server under
``mlloop_cli.airflow_supervisor``), driven through the REST API: what only a scheduler can show.

* **Trigger input**: a conf that breaks a DAG's Param schema is answered 400 and no run exists;
  input the schema cannot judge (a report outside the storage root, a version that does not exist)
  fails the run's first task on its first try, and nothing after it runs.
* **Crash mid-write**: the test-only fault injection (``mlloop.fault_injection``) SIGKILLs a task
  while it writes a partition: once the task process alone (its supervisor reports it), once the
  task *and* its supervisor (only the scheduler's heartbeat timeout can notice). Either way the
  try ends failed, never stuck running; the retry completes; readers never see half a partition.
* **Overlapping promotions**: two promotion runs of challengers that both beat the champion, the
  worse one held inside the alias critical section while the better one arrives. The pool of one
  slot makes the second wait; it then re-runs the gate against the new champion and wins. One
  champion, the better one; aliases and tags tell one consistent story.
* **A dead scheduler**: killed with SIGKILL, it is restarted by the supervisor, and a run created
  afterwards completes.

The scenarios that do not interfere run at the same time, to keep the wall time down. This module
starts its own Airflow and stops it when its last test is done; it sorts before ``test_loop.py`` so
the two deployments never run at once on a small machine.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from mlloop import tags as tag_keys
from mlloop_cli.airflow_local import LocalAirflow, free_port
from mlloop_cli.rest import AirflowClient, AirflowError
from seams.fault_injection import deployment_env
from spec_variants import write_spec_variant

ROOT = Path(__file__).resolve().parents[2]

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(1500)]

UC = "credit_risk"
HISTORY = [dt.date(2026, 3, 1) + dt.timedelta(days=n) for n in range(12)]  # features + labels
INGEST_DAY = dt.date(2026, 3, 13)  # landed only: ingested by the crash test
SCORE_DAY = HISTORY[-1]  # has features: scored by the crash test
STAGES = ("feature_ingestion", "batch_scoring", "training", "promotion")
TERMINAL = {"success", "failed"}


def dag(stage: str) -> str:
    return f"{UC}__{stage}"


@dataclass
class Deployment:
    airflow: LocalAirflow
    api: AirflowClient
    home: Path
    faults: Path
    versions: dict[str, str]
    runs: dict[str, str] = field(default_factory=dict)

    @property
    def storage(self) -> Path:
        return self.home / "storage"

    def state(self, stage: str, run_id: str) -> str:
        return str(self.api.run(dag(stage), run_id)["state"])

    def tis(self, stage: str, run_id: str) -> dict[str, dict[str, Any]]:
        return {ti["task_id"]: ti for ti in self.api.task_instances(dag(stage), run_id)}

    def tries(self, stage: str, run_id: str, task_id: str, map_index: int = -1) -> list[dict[str, Any]]:
        return self.api.task_tries(dag(stage), run_id, task_id, map_index)

    def log(self, stage: str, run_id: str, task_id: str, try_number: int = 1) -> str:
        return self.api.task_log(dag(stage), run_id, task_id, try_number)

    def trigger(self, stage: str, **conf: Any) -> str:
        return str(self.api.trigger(dag(stage), conf)["dag_run_id"])

    def wait(self, what: str, done: Callable[[], bool], timeout: float = 600) -> None:
        self.api.wait_until(what, done, timeout, poll=2)


# --------------------------------------------------------------------------------------- setup
def prepare(home: Path) -> dict[str, str]:
    """Data, Feast registry and three registered models, written where the deployment will read them.

    ``weak`` (champion) learned from shuffled labels; ``fair`` never saw income or its ratios;
    ``good`` saw everything. Both challengers beat the champion; ``good`` beats ``fair``.
    """
    from loop_fixtures import labelled_frame, register_champion, small_pipeline, write_clean_features
    from loop_fixtures import model_input as features_of
    from mlloop.feature_store import apply_registry
    from mlloop.landing import land_days
    from mlloop.registry import CHALLENGER
    from mlloop.settings import get_settings
    from mlloop.spec import get_spec
    from mlloop.storage import Storage

    spec = get_spec(UC)
    storage = Storage.from_url(get_settings().storage_root)
    write_clean_features(storage, spec, HISTORY)
    land_days(storage, spec, [INGEST_DAY], bad_row_share=0.0)
    apply_registry()
    frame = labelled_frame(storage, spec, HISTORY[:5])
    label = frame[spec.labels.column].astype("int64")

    def fit(data: Any, y: Any) -> Any:
        return small_pipeline(spec).fit(features_of(data, spec), y)

    weak = fit(frame, np.random.default_rng(0).permutation(label.to_numpy()))
    blind = frame.assign(annual_income=np.nan, debt_to_income=np.nan, loan_to_income=np.nan)
    versions = {
        "weak": register_champion(spec, frame, model=weak).version,
        "fair": register_champion(spec, frame, model=fit(blind, label), alias=CHALLENGER, seed=1).version,
        "good": register_champion(spec, frame, model=fit(frame, label), alias=CHALLENGER, seed=2).version,
    }
    return versions


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    base = tmp_path_factory.mktemp("reliability")
    home, faults, use_cases = base / "mlloop", base / "faults", base / "use_cases"
    faults.mkdir()
    use_cases.mkdir()
    # the "fair" model (no income at all) must pass the floor
    write_spec_variant(use_cases, UC, promotion={"min_primary_metric": 0.55})
    env = {
        "MLLOOP_USE_CASES_DIR": str(use_cases),
        **deployment_env(faults),  # installs the fault injection (tests/seams) in every Airflow process
        "MLLOOP_SENSOR_POKE_SECONDS": "30",
        "MLLOOP_RETRY_DELAY_SECONDS": "2",
        # A try whose supervisor died is failed by the scheduler after this many seconds of silence.
        "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": "30",
        "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT_DETECTION_INTERVAL": "5",
    }
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLLOOP_HOME", str(home))
        patch.setenv("MLLOOP_USE_CASES_DIR", str(use_cases))
        versions = prepare(home)
        airflow = LocalAirflow(home, port=free_port(), extra_env=env)
        try:
            airflow.start()
            api = airflow.client()
            api.wait_for_dags([dag(s) for s in STAGES])
            yield Deployment(airflow, api, home, faults, versions)
        finally:
            airflow.stop()


# ------------------------------------------------------------------------------ trigger input
@pytest.mark.parametrize(
    ("stage", "conf", "says"),
    [
        ("training", {"drift_report": "/etc/passwd"}, "Invalid input for param drift_report"),
        ("training", {"cutoff_day": "2026-02-30"}, "is not a 'date'"),
        ("batch_scoring", {"day": "13/03/2026"}, "Invalid input for param day"),
        ("promotion", {"version": 0}, "less than the minimum of 1"),
        ("promotion", {"version": "latest"}, "Invalid input for param version"),
    ],
)
def test_a_trigger_breaking_a_param_schema_is_answered_400(
    deployment: Deployment, stage: str, conf: dict[str, Any], says: str
) -> None:
    before = len(deployment.api.runs(dag(stage)))
    with pytest.raises(AirflowError) as err:
        deployment.trigger(stage, **conf)
    assert err.value.status == 400
    assert says in str(err.value)
    assert len(deployment.api.runs(dag(stage))) == before


def test_input_a_schema_cannot_judge_fails_the_first_task_at_once(deployment: Deployment) -> None:
    d = deployment
    for stage in ("training", "promotion"):
        d.api.set_paused(dag(stage), False)
    outside = "/srv/elsewhere/reports/credit_risk/drift/date=2026-03-12/report.html"  # matches the schema
    training = d.trigger("training", drift_report=outside, reason="test: outside the root")
    promotion = d.trigger("promotion", version=999)
    d.wait("both runs to end", lambda: {d.state("training", training), d.state("promotion", promotion)} <= TERMINAL)
    # Only these two runs: no asset event may start training later in this module.
    d.api.set_paused(dag("training"), True)

    assert d.state("training", training) == "failed"
    tis = d.tis("training", training)
    assert (tis["decide_training"]["state"], tis["decide_training"]["try_number"]) == ("failed", 1)
    assert {tis[t]["state"] for t in ("build_training_set", "validate_training_set", "train_and_register")} == {
        "upstream_failed"
    }
    assert "'drift_report' must be a drift report of credit_risk under" in d.log(
        "training", training, "decide_training"
    )

    assert d.state("promotion", promotion) == "failed"
    tis = d.tis("promotion", promotion)
    assert (tis["evaluate_challenger"]["state"], tis["evaluate_challenger"]["try_number"]) == ("failed", 1)
    assert "model 'credit_risk' has no version 999" in d.log("promotion", promotion, "evaluate_challenger")


# ------------------------------------------------------ crash mid-write + overlapping promotion
@dataclass
class Phase:
    ingestion: str
    scoring: str
    promotions: list[str]
    blocked_by_pool: str
    torn_reads: list[str]


@pytest.fixture(scope="module")
def phase(deployment: Deployment) -> Phase:
    """Start the two crash runs and the first promotion at once; hold that promotion inside the
    alias critical section, start the second one, see it wait for the pool, then let both go."""
    import pyarrow.parquet as pq

    d = deployment
    features = d.storage / "features" / UC / "customer_profile" / f"date={INGEST_DAY}" / "data.parquet"
    predictions = d.storage / "predictions" / UC / f"date={SCORE_DAY}" / "data.parquet"
    (d.faults / "kill-on-write.features").write_text(f"features/{UC}/customer_profile/date={INGEST_DAY}\n")
    (d.faults / "kill-on-write.predictions").write_text(
        f"staging/{UC}/predictions/date={SCORE_DAY}\nscope=supervisor\n"
    )
    (d.faults / "pause-before-alias-move").write_text("")
    for stage in ("feature_ingestion", "batch_scoring"):
        d.api.set_paused(dag(stage), False)
    ingestion = d.trigger("feature_ingestion", day=INGEST_DAY.isoformat())
    scoring = d.trigger("batch_scoring", day=SCORE_DAY.isoformat())
    first = d.trigger("promotion", version=int(d.versions["fair"]))

    torn: list[str] = []

    def readers_see_whole_files() -> None:
        for path in (features, predictions):
            if path.exists():
                try:
                    pq.read_metadata(path)
                except Exception as exc:
                    torn.append(f"{path}: {exc}")

    def paused() -> bool:
        readers_see_whole_files()
        return (d.faults / "paused-before-alias-move.info").exists()

    d.wait("the first promotion to enter the alias critical section", paused)
    second = d.trigger("promotion", version=int(d.versions["good"]))
    blocked = ""

    def second_waits_or_ended() -> bool:
        nonlocal blocked
        readers_see_whole_files()
        ti = d.tis("promotion", second).get("promote_challenger", {})
        if ti.get("state") in ("success", "failed", "skipped"):
            return True  # it was not held back: the serialization is missing
        if ti.get("state") in ("scheduled", "queued"):
            dependencies = d.api.task_dependencies(dag("promotion"), second, "promote_challenger")
            reasons = " ".join(dep["reason"] for dep in dependencies)
            if "pool" in reasons.lower() and "slot" in reasons.lower():
                blocked = reasons
                return True
        return False

    d.wait("the second promotion to wait for the pool (or to run past it)", second_waits_or_ended)
    (d.faults / "paused-before-alias-move").unlink()  # release the first promotion

    def all_done() -> bool:
        readers_see_whole_files()
        states = [d.state("feature_ingestion", ingestion), d.state("batch_scoring", scoring)]
        states += [d.state("promotion", run) for run in (first, second)]
        return set(states) <= TERMINAL

    d.wait("every run to end", all_done, timeout=900)
    return Phase(ingestion, scoring, [first, second], blocked, torn)


def test_a_task_killed_while_writing_features_is_retried_and_readers_never_see_half(
    deployment: Deployment, phase: Phase
) -> None:
    import pyarrow.parquet as pq

    d = deployment
    assert (d.faults / "killed-on-write.features").exists(), "the fault never fired"
    assert d.state("feature_ingestion", phase.ingestion) == "success"
    tries = d.tries("feature_ingestion", phase.ingestion, "build_features")
    assert [t["state"] for t in tries] == ["failed", "success"]  # the kill ended the try; it did not hang
    folder = d.storage / "features" / UC / "customer_profile" / f"date={INGEST_DAY}"
    assert [p.name for p in folder.iterdir()] == ["data.parquet"]
    staged = d.storage / "staging" / UC / "observations" / f"date={INGEST_DAY}" / "data.parquet"
    assert pq.read_metadata(folder / "data.parquet").num_rows == pq.read_metadata(staged).num_rows > 0
    assert phase.torn_reads == []


def test_a_task_killed_with_its_supervisor_is_failed_by_the_heartbeat_timeout_and_retried(
    deployment: Deployment, phase: Phase
) -> None:
    import pyarrow.parquet as pq

    d = deployment
    assert (d.faults / "killed-on-write.predictions").exists(), "the fault never fired"
    assert d.state("batch_scoring", phase.scoring) == "success"
    tries = d.tries("batch_scoring", phase.scoring, "score_partition", map_index=0)
    assert [t["state"] for t in tries] == ["failed", "success"]
    log = d.airflow.log_path.read_text(errors="replace")
    assert "Detected a task instance without a heartbeat" in log  # the scheduler noticed, nobody else could
    predictions = d.storage / "predictions" / UC / f"date={SCORE_DAY}" / "data.parquet"
    features = d.storage / "features" / UC / "customer_profile" / f"date={SCORE_DAY}" / "data.parquet"
    assert pq.read_metadata(predictions).num_rows == pq.read_metadata(features).num_rows
    assert list((d.storage / "staging" / UC / "predictions" / f"date={SCORE_DAY}").iterdir()) == []
    assert phase.torn_reads == []


def test_overlapping_promotions_leave_one_champion_the_better_one(deployment: Deployment, phase: Phase) -> None:
    from mlflow import MlflowClient

    d = deployment
    first, second = phase.promotions
    assert phase.blocked_by_pool, "the second promotion's alias move was not held back by the pool"
    assert d.state("promotion", first) == d.state("promotion", second) == "success"
    assert "re-running the gate against the current champion" in d.log("promotion", second, "promote_challenger")

    uri = f"sqlite:///{d.home / 'mlflow' / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    weak, fair, good = (d.versions[k] for k in ("weak", "fair", "good"))
    aliases = {k: str(v) for k, v in client.get_registered_model(UC).aliases.items()}
    assert aliases["champion"] == good and aliases["previous-champion"] == fair
    tags = {v: client.get_model_version(UC, v).tags for v in (weak, fair, good)}
    # One chain of moves: weak -> fair -> good; no move was lost or made against a stale champion.
    assert tags[fair][tag_keys.PREVIOUS_CHAMPION] == weak
    assert tags[good][tag_keys.PREVIOUS_CHAMPION] == fair
    assert [v for v, t in tags.items() if t.get(tag_keys.PREVIOUS_CHAMPION) == weak] == [fair]
    assert json.loads(tags[good][tag_keys.MODEL_FILES])  # the artifacts verified before every load


# ------------------------------------------------------------------------------ a dead scheduler
def test_a_scheduler_that_dies_is_restarted_and_runs_go_on(deployment: Deployment, phase: Phase) -> None:
    """`airflow standalone` would leave a dead scheduler dead: the UI answers, runs queue forever.
    The embedded Airflow's supervisor starts it again (last in this module: it kills the scheduler)."""
    import os
    import signal

    d = deployment
    before = d.airflow.components()["scheduler"]
    os.kill(int(before["pid"]), signal.SIGKILL)
    d.wait("the supervisor to restart the scheduler", lambda: d.airflow.components()["scheduler"]["restarts"] == 1)
    # A run created after the crash is scheduled and run by the new scheduler.
    rescore = d.trigger("batch_scoring", day=SCORE_DAY.isoformat())
    d.wait("the re-scoring run to end", lambda: d.state("batch_scoring", rescore) in TERMINAL, timeout=600)

    assert d.state("batch_scoring", rescore) == "success"
    after = d.airflow.components()["scheduler"]
    assert after["pid"] != before["pid"]
    assert [e["code"] for e in after["exits"]] == [-signal.SIGKILL]
    assert "scheduler exited with code -9" in d.airflow.log_path.read_text(errors="replace")
