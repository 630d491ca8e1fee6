"""No secret reaches a task log: after the whole loop ran (``conftest.py``), every task log of every
try is searched for every secret the deployment was configured with.

The secrets: a connection and a variable given to every task process through the environment (as a
deployment passes them), the simple auth manager's admin password, and Airflow's own keys from the
generated ``airflow.cfg`` (Fernet key, API secret key, JWT secret).
"""

from __future__ import annotations

import configparser
import json
from pathlib import Path

import pytest

from e2e.conftest import PROBE_PASSWORD, PROBE_TOKEN
from mlloop_cli.demo import Loop

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(2400)]


def configured_secrets(airflow_home: Path) -> dict[str, str]:
    found = {"connection password": PROBE_PASSWORD, "variable value": PROBE_TOKEN}
    passwords = json.loads((airflow_home / "simple_auth_manager_passwords.json.generated").read_text())
    found.update({f"UI password of {user}": password for user, password in passwords.items()})
    config = configparser.ConfigParser(interpolation=None)
    config.read(airflow_home / "airflow.cfg")
    for section, key in (("core", "fernet_key"), ("api", "secret_key"), ("api_auth", "jwt_secret")):
        value = config.get(section, key, fallback="").strip()
        if len(value) >= 8:
            found[f"[{section}] {key}"] = value
    return found


def test_no_task_log_contains_a_configured_secret(loops: dict[str, Loop]) -> None:
    airflow_home = next(iter(loops.values())).airflow.airflow_home
    secrets = configured_secrets(airflow_home)
    assert {"connection password", "variable value", "UI password of admin"} <= set(secrets)
    logs = sorted((airflow_home / "logs").glob("dag_id=*/**/*.log"))
    dags = {path.relative_to(airflow_home / "logs").parts[0] for path in logs}
    assert len(logs) > 100 and len(dags) >= 10, (len(logs), dags)  # the whole loop, every stage
    leaks = {
        f"{path.relative_to(airflow_home / 'logs')}: {what}"
        for path in logs
        for what, value in secrets.items()
        if value in path.read_text(errors="replace")
    }
    assert leaks == set()
