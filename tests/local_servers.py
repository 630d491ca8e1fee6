"""Real service processes for tests, on 127.0.0.1 and free ports, stopped when the block ends:
``redis-server`` and ``mlflow server`` (never the machine's shared ones)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def service(cmd: list[str], ready: Any, log: Path, timeout: float = 300) -> Iterator[subprocess.Popen[bytes]]:
    """Run ``cmd`` in its own process group until the block ends; ``ready()`` says it serves."""
    with open(log, "ab") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + timeout
        while not ready():
            assert proc.poll() is None, f"{cmd[0]} exited with {proc.returncode}; see {log}"
            assert time.monotonic() < deadline, f"{cmd[0]} not ready after {timeout:.0f}s; see {log}"
            time.sleep(0.5)
        yield proc
    finally:
        with _suppress_lookup():
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            with _suppress_lookup():
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


@contextmanager
def _suppress_lookup() -> Iterator[None]:
    try:
        yield
    except ProcessLookupError:
        pass


def answers(url: str) -> Any:
    import requests

    def ready() -> bool:
        try:
            return requests.get(url, timeout=2).status_code == 200
        except requests.RequestException:
            return False

    return ready


def mlflow_server(folder: Path, port: int) -> Any:
    cmd = [str(BIN / "mlflow"), "server", "--host", "127.0.0.1", "--port", str(port), "--workers", "1"]
    cmd += ["--backend-store-uri", f"sqlite:///{folder / 'mlflow.db'}", "--artifacts-destination", str(folder / "art")]
    return service(cmd, answers(f"http://127.0.0.1:{port}/health"), folder / "mlflow-server.log")


def redis_server(folder: Path, port: int) -> Any:
    cmd = ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
    cmd += ["--dir", str(folder)]

    def ready() -> bool:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    return service(cmd, ready, folder / "redis.log", timeout=60)
