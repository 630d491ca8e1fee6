"""The whole loop on the scaled topology, as processes on this machine (mlloop_cli.scaled_local).

PostgreSQL (Airflow metadata, Celery results, MLflow backend) and Redis (Celery broker, Feast online
store) are the machine's; S3 is moto's server on loopback; MLflow is a tracking server over HTTP;
Airflow runs api-server, scheduler, dag-processor and triggerer as separate processes with the
CeleryExecutor and two workers. The DAGs and their code are the embedded ones: only environment
variables differ (ScaledLocalAirflow.deployment_env).

The embedded end-to-end test's assertions run here unchanged (imported from test_loop), plus what
only a scaled deployment can show: tasks on both workers, a day's scoring parts spread over them,
the data in the bucket, features served from Redis through Feast.

Skipped only when PostgreSQL or Redis is unreachable; with MLLOOP_REQUIRE_SERVICES=1 (.ci/run sets
it) that fails instead.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import sys
from collections.abc import Iterator
from typing import Any

import pytest

# The embedded e2e test's assertions, collected again here against the scaled loop's fixtures.
from e2e.test_loop import (  # noqa: F401
    test_drift_triggered_exactly_one_retraining,
    test_every_interval_run_is_green,
    test_prediction_partitions_match_their_features_and_runs,
    test_registry_aliases_follow_the_gate,
)
from mlloop_cli.demo import Loop
from mlloop_cli.scaled_local import WORKERS, ScaledLocalAirflow, score_day_in_parts, unreachable_services

pytestmark = [pytest.mark.services, pytest.mark.timeout(1800)]
USE_CASE = "credit_risk"


def require_services() -> None:
    problems = unreachable_services()
    if not problems:
        return
    reason = (
        "SCALED TOPOLOGY NOT TESTED: the machine's services are unreachable: "
        + "; ".join(problems)
        + ". Start them (see README, 'Scaling out') or point MLLOOP_SERVICES_POSTGRES_URL / "
        "MLLOOP_SERVICES_REDIS_URL at running ones."
    )
    if os.environ.get("MLLOOP_REQUIRE_SERVICES") == "1":
        pytest.fail(reason + " MLLOOP_REQUIRE_SERVICES=1, so this is a failure, not a skip.", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="module")
def topology(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ScaledLocalAirflow]:
    require_services()
    home = tmp_path_factory.mktemp("scaled") / "mlloop"
    topology = ScaledLocalAirflow(home, extra_env={"MLLOOP_SENSOR_POKE_SECONDS": "30"})
    # A SIGTERM (a CI timeout, `kill`) must still stop the servers and drop the databases.
    previous = signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    try:
        topology.provision()
        yield topology
    finally:
        topology.stop()
        signal.signal(signal.SIGTERM, previous)


@pytest.fixture(scope="module")
def loop(topology: ScaledLocalAirflow) -> Loop:
    loop = Loop(topology, USE_CASE, dt.datetime.now(dt.UTC).date())
    loop.run()
    print(f"\nThe loop ran on the scaled topology in {loop.result.elapsed():.0f} s: {loop.result.step_times}")
    return loop


@pytest.fixture(scope="module")
def spec() -> Any:
    from mlloop.spec import get_spec

    return get_spec(USE_CASE)


@pytest.fixture(scope="module")
def mlflow(loop: Loop, topology: ScaledLocalAirflow) -> Iterator[Any]:
    """A client with the read-only account, as a person checking the registry would have."""
    from mlflow import MlflowClient

    user, password = topology.state.mlflow_account("reader")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLFLOW_TRACKING_USERNAME", user)
        patch.setenv("MLFLOW_TRACKING_PASSWORD", password)
        yield MlflowClient(tracking_uri=topology.mlflow_url, registry_uri=topology.mlflow_url)


@pytest.fixture
def deployment_environment(topology: ScaledLocalAirflow, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """This process configured like the workers (storage root, Feast, MLflow, S3 credentials)."""
    env = topology.deployment_env()
    for name, value in env.items():
        if name.startswith(("MLLOOP_", "AWS_", "MLFLOW_")):
            monkeypatch.setenv(name, value)
    return env


def test_mlflow_refuses_anonymous_clients_and_read_only_people_cannot_move_an_alias(
    topology: ScaledLocalAirflow,
) -> None:
    """The gate holds on the network: only the service account moves ``champion``. (Runs before the
    loop: it needs only the provisioned MLflow server; the loop then runs with the service account.)"""
    import requests

    url = f"{topology.mlflow_url}/api/2.0/mlflow"
    model = f"auth_probe_{topology.state.run_id}"
    service = requests.Session()
    service.auth = topology.state.mlflow_account("service")
    assert service.post(f"{url}/registered-models/create", json={"name": model}, timeout=30).status_code == 200
    for _ in range(2):
        source = f"s3://{topology.state.bucket}/mlflow/probe"
        created = service.post(f"{url}/model-versions/create", json={"name": model, "source": source}, timeout=30)
        assert created.status_code == 200, created.text
    alias = {"name": model, "alias": "champion", "version": "1"}
    assert service.post(f"{url}/registered-models/alias", json=alias, timeout=30).status_code == 200

    move = {**alias, "version": "2"}
    anonymous = requests.post(f"{url}/registered-models/alias", json=move, timeout=30)
    search = requests.get(f"{url}/experiments/search", params={"max_results": 1}, timeout=30)
    reader, password = topology.state.mlflow_account("reader")
    as_reader = requests.post(f"{url}/registered-models/alias", json=move, auth=(reader, password), timeout=30)
    guessed = requests.post(f"{url}/registered-models/alias", json=move, auth=(reader, "guessed-password"), timeout=30)
    champion = {"name": model, "alias": "champion"}
    read = requests.get(f"{url}/registered-models/alias", params=champion, auth=(reader, password), timeout=30)

    assert (anonymous.status_code, search.status_code, guessed.status_code) == (401, 401, 401)
    assert as_reader.status_code == 403, as_reader.text
    assert read.status_code == 200 and read.json()["model_version"]["version"] == "1"


def task_instances(loop: Loop, stage: str, run_id: str) -> list[dict[str, Any]]:
    return loop.api.task_instances(loop.dag_id(stage), run_id)


def test_tasks_ran_on_both_workers(loop: Loop) -> None:
    hosts: dict[str, int] = {}
    for stage in ("feature_ingestion", "training", "promotion", "batch_scoring", "drift_monitoring"):
        for run in loop.runs(stage):
            for ti in task_instances(loop, stage, run["dag_run_id"]):
                if ti["state"] == "success" and ti.get("hostname"):
                    hosts[ti["hostname"]] = hosts.get(ti["hostname"], 0) + 1
    print(f"\ntask instances per worker: {hosts}")
    assert set(WORKERS) <= set(hosts), hosts


def test_the_bucket_holds_storage_registry_and_model_artifacts(loop: Loop, topology: ScaledLocalAirflow) -> None:
    storage = topology.storage()
    bucket = topology.state.bucket
    for area in ("landing", "features", "predictions", "reports", "quarantine"):
        assert storage.glob(storage.path(area, USE_CASE, "**", "*.*")), f"nothing under {area}/ in s3://{bucket}"
    assert storage.fs.exists(f"{bucket}/feast/registry.db")
    artifacts = storage.fs.find(f"{bucket}/mlflow")
    assert any(path.endswith("reference/reference.parquet") for path in artifacts), artifacts[:20]
    assert any(path.endswith("MLmodel") for path in artifacts), artifacts[:20]


def test_online_features_are_served_from_redis(loop: Loop, deployment_environment: dict[str, str]) -> None:
    import redis

    from mlloop.feature_store import online_features, open_store
    from mlloop.spec import get_spec

    spec = get_spec(USE_CASE)
    store = open_store()
    assert store.config.online_store.type == "redis"
    online_store = json.loads(deployment_environment["MLLOOP_FEAST_ONLINE_STORE"])
    host_port, _, db = online_store["connection_string"].partition(",db=")
    host, _, port = host_port.partition(":")
    assert redis.Redis(host=host, port=int(port), db=int(db)).dbsize() > 0

    storage = loop.storage()
    last_day = loop.result.phase2[-1]
    day = storage.read_frame(
        storage.path("features", USE_CASE, spec.features.feature_view, f"date={last_day}", "data.parquet")
    )
    key = spec.entity.join_key
    sample = day.sort_values(key).drop_duplicates(key).head(5).set_index(key)
    got = online_features(store, spec.model.feature_service, key, sample.index.tolist()).set_index(key)
    for column in ("loan_amount", "n_open_accounts", "region"):
        assert got.loc[sample.index, column].tolist() == sample[column].tolist(), column


def test_scoring_parts_spread_over_both_workers(loop: Loop) -> None:
    """A manual trigger's Parts parameter maps the day over the Celery workers, and the parts are
    published as one partition (throughput, two workers vs one: `scaled_local.py measure-scoring`)."""
    day = loop.result.phase2[-1]
    features = loop.storage().row_count(
        loop.storage().path("features", USE_CASE, "customer_profile", f"date={day}", "data.parquet")
    )

    result = score_day_in_parts(loop, day, 4, "spread")

    print(f"\nscoring {day} in 4 parts: {result}")
    assert result["parts"] == [0, 1, 2, 3]
    assert result["hosts"] == sorted(WORKERS), result
    assert result["rows"] == features
