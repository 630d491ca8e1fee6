"""Task instances record the worker's own name when a deployment sets one (mlloop_cli.scaled_local)."""

from __future__ import annotations

import socket

import pytest

from mlloop_airflow.hostname import worker_hostname


def test_the_worker_name_wins_when_set(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLLOOP_WORKER_HOSTNAME", "worker-b")
    assert worker_hostname() == "worker-b"


def test_airflows_default_otherwise(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MLLOOP_WORKER_HOSTNAME", raising=False)
    assert worker_hostname() == socket.getfqdn()


def test_airflow_accepts_it_as_hostname_callable(monkeypatch: pytest.MonkeyPatch) -> None:
    from airflow.sdk.api.client import get_hostname

    monkeypatch.setenv("AIRFLOW__CORE__HOSTNAME_CALLABLE", "mlloop_airflow.hostname.worker_hostname")
    monkeypatch.setenv("MLLOOP_WORKER_HOSTNAME", "worker-a")
    assert get_hostname() == "worker-a"
