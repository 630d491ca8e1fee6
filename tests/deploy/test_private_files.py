"""Files that hold secrets are this user's only from their creation: 0600 files in 0700 folders.

The local topologies (mlloop_cli.airflow_local, mlloop_cli.scaled_local) write the printed login to
their logs, the deployment's keys and passwords to the scaled state file and MLflow's auth config,
and Airflow writes its generated password file. Each test below switches every later ``chmod``
off (as if the process died right after the write, or another user read in between): what is left
is the mode the file was created with. Under a umask of 022 a file made by ``write_text`` or
``open`` is 0644, readable by every user of the machine. (The processes the topologies start run
under umask 077, so what Airflow creates is private too: tests/e2e/test_report_isolation.py reads
their umask and the password file's mode on a running Airflow.)
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from mlloop_cli.airflow_local import open_private_log, private_dir, write_private
from mlloop_cli.scaled_local import ScaledLocalAirflow

ROOT = Path(__file__).resolve().parents[2]


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def no_later_chmod(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """A machine where files are world-readable by default, and no ``chmod`` after the fact."""
    calls: list[str] = []
    monkeypatch.setattr(os, "chmod", lambda path, *a, **k: calls.append(str(path)))
    monkeypatch.setattr(Path, "chmod", lambda self, *a, **k: calls.append(str(self)))
    previous = os.umask(0o022)
    try:
        yield calls
    finally:
        os.umask(previous)


def test_written_files_and_logs_are_private_from_creation(tmp_path: Path, no_later_chmod: list[str]) -> None:
    folder = private_dir(tmp_path / "home" / "logs")
    write_private(folder / "state.json", '{"key": "secret"}')
    with open_private_log(folder / "airflow.log") as log:
        log.write(b"login: admin / secret\n")

    assert mode(tmp_path / "home") == 0o700 and mode(folder) == 0o700
    assert mode(folder / "state.json") == 0o600
    assert mode(folder / "airflow.log") == 0o600
    assert sorted(p.name for p in folder.iterdir()) == ["airflow.log", "state.json"]  # no temporary file left


def test_a_leftover_world_readable_temporary_file_does_not_leak_the_new_content(tmp_path: Path) -> None:
    target = tmp_path / "state.json"
    leftover = tmp_path / ".state.json.tmp"
    leftover.write_text("old")
    leftover.chmod(0o644)
    write_private(target, "new secret")
    assert mode(target) == 0o600 and target.read_text() == "new secret"


def test_the_scaled_topologys_state_and_mlflow_auth_config_are_private_from_creation(
    tmp_path: Path, no_later_chmod: list[str]
) -> None:
    topology = ScaledLocalAirflow(tmp_path / "scaled")  # configured, not started
    topology._save_state()
    topology._write_mlflow_auth_config()

    assert mode(topology.state_path) == 0o600 and mode(topology.state_path.parent) == 0o700
    assert mode(topology.mlflow_auth_config) == 0o600 and mode(topology.mlflow_auth_config.parent) == 0o700
    assert topology.state.mlflow_passwords["service"] in topology.state_path.read_text()
