"""One real Airflow for every end-to-end test: the loop of every bundled use case runs in it once.

The embedded Airflow starts once; the credit_risk and energy_demand loops run in it at the same
time (``mlloop_cli.demo``'s ``run_loops``); the loop tests (``test_loop.py``) and the browser test
(``test_loop_ui.py``, named to run right after them) then look at what they left. The fixture is
package-scoped (this folder is a package for that reason) and its Airflow is stopped as soon as
the next test does not use it: the other modules here start their own Airflow, and an idle one
must not share the machine with them.
"""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest

from mlloop_cli.airflow_local import LocalAirflow, free_port
from mlloop_cli.demo import Loop, run_loops

ROOT = Path(__file__).resolve().parents[2]

USE_CASES = ("credit_risk", "energy_demand")
_STOP_WHEN_UNUSED: list[LocalAirflow] = []
# Secret-bearing configuration every task of the loop runs with (a connection and a variable, from
# the environment as a deployment would give them); test_secrets_in_logs.py greps the task logs for it.
# Their names avoid the words Airflow's masker hides by key ("secret", "password"...): a task that
# printed its environment would show them, so the test sees the leak.
PROBE_PASSWORD = secrets.token_urlsafe(24)
PROBE_TOKEN = secrets.token_urlsafe(24)
PROBE_ENV = {
    "AIRFLOW_CONN_MLLOOP_PROBE": f"postgresql://probe:{PROBE_PASSWORD}@127.0.0.1:9/probe",
    "AIRFLOW_VAR_MLLOOP_PROBE": PROBE_TOKEN,
}


@pytest.fixture(scope="package")
def loops(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Loop]]:
    home = tmp_path_factory.mktemp("e2e") / "mlloop"
    airflow = LocalAirflow(home, port=free_port(), extra_env={"MLLOOP_SENSOR_POKE_SECONDS": "30", **PROBE_ENV})
    today = dt.datetime.now(dt.UTC).date()
    by_name = {name: Loop(airflow, name, today) for name in USE_CASES}
    _STOP_WHEN_UNUSED.append(airflow)
    try:
        run_loops(list(by_name.values()))
        yield by_name
    finally:
        airflow.stop()


def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> None:
    """Stop the loops' Airflow once the next test does not need it (tests using ``loops`` are contiguous)."""
    if nextitem is not None and "loops" in getattr(nextitem, "fixturenames", ()):
        return
    while _STOP_WHEN_UNUSED:
        _STOP_WHEN_UNUSED.pop().stop()
