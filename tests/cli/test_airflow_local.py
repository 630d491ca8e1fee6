"""The REST client pages: past Airflow's page cap (100) every run and every task instance comes back, in order.

A real Airflow API server (the only component the list calls need) on a free 127.0.0.1 port, over a
migrated SQLite metadata DB and a tiny DAG of 120 tasks serialized into it by ``airflow dags
reserialize``. The 130 runs are created through the REST API itself (the DAG stays paused and no
scheduler runs, so they stay queued: listing them is what is tested). Before the client paged,
``runs()`` returned the oldest 100 and ``task_instances()`` 100 of the 120.
"""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from mlloop_cli.airflow_local import LocalAirflow, free_port
from mlloop_cli.rest import PAGE_LIMIT, AirflowClient

ROOT = Path(__file__).resolve().parents[2]

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(900)]

DAG_ID = "paging_probe"
TASKS = 120
RUNS = 130
DAG_FILE = f'''
import datetime as dt
from airflow.sdk import DAG
from airflow.providers.standard.operators.empty import EmptyOperator

with DAG("{DAG_ID}", schedule=None, start_date=dt.datetime(2011, 1, 1), is_paused_upon_creation=True):
    for i in range({TASKS}):
        EmptyOperator(task_id=f"t{{i:03d}}")
'''


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AirflowClient]:
    home = tmp_path_factory.mktemp("paging") / "mlloop"
    dags = home / "dags"
    dags.mkdir(parents=True)
    (dags / "paging_probe.py").write_text(DAG_FILE)
    airflow = LocalAirflow(home, port=free_port(), extra_env={"AIRFLOW__CORE__DAGS_FOLDER": str(dags)})
    airflow.airflow_home.mkdir(parents=True, exist_ok=True)
    env = airflow.env()
    for command in (["db", "migrate"], ["dags", "reserialize"]):
        subprocess.run([sys.executable, "-m", "airflow", *command], env=env, check=True, capture_output=True)
    log = open(home / "api-server.log", "ab")  # noqa: SIM115  (closed below, after the server)
    server = subprocess.Popen(
        [sys.executable, "-m", "airflow", "api-server", "--port", str(airflow.port)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 240
        while not _serving(airflow):
            assert server.poll() is None, f"the API server exited with {server.returncode}; see {log.name}"
            assert time.monotonic() < deadline, f"the API server did not answer within 240 s; see {log.name}"
            time.sleep(1)
        yield airflow.client()
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()
        log.close()


def _serving(airflow: LocalAirflow) -> bool:
    try:
        ok = requests.get(f"{airflow.url}/api/v2/monitor/health", timeout=5).status_code == 200
    except requests.RequestException:
        return False
    return ok and airflow.password_file.exists()


def test_every_run_and_every_task_instance_past_the_page_cap(api: AirflowClient) -> None:
    first = dt.datetime(2011, 1, 1, tzinfo=dt.UTC)
    for i in range(RUNS):
        day = first + dt.timedelta(days=i)
        api.trigger(DAG_ID, run_id=f"replay__{day:%Y-%m-%d}", logical_date=day)
    # What Airflow does with a larger limit, and why the client pages: it answers at most 100.
    page = api.call("GET 500 runs", lambda: api.dag_runs_api.get_dag_runs(DAG_ID, limit=500))
    assert (len(page.dag_runs), page.total_entries) == (PAGE_LIMIT, RUNS)

    runs = api.runs(DAG_ID)

    assert [r["dag_run_id"] for r in runs] == [
        f"replay__{first + dt.timedelta(days=i):%Y-%m-%d}" for i in range(RUNS)
    ]  # all of them, the newest included, oldest first
    tis = api.task_instances(DAG_ID, runs[-1]["dag_run_id"])
    assert sorted(ti["task_id"] for ti in tis) == [f"t{i:03d}" for i in range(TASKS)]
    assert DAG_ID in api.dag_ids()
    assert api.import_errors() == []
    assert api.backfills(DAG_ID) == []
