"""Test harness: every test session gets its own AIRFLOW_HOME and MLLOOP_HOME.

The environment is set here, at import, because Airflow reads its configuration when it is first
imported. Nothing in a developer's own Airflow or mlloop installation is touched.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SESSION_DIR = Path(tempfile.mkdtemp(prefix="mlloop-tests-"))

os.environ.update(
    {
        "AIRFLOW_HOME": str(SESSION_DIR / "airflow"),
        "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(ROOT / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
        "MLLOOP_HOME": str(SESSION_DIR / "mlloop"),
        "MLLOOP_SENSOR_POKE_SECONDS": "1",
        "MLLOOP_SENSOR_CHECK_SECONDS": "0.5",  # a deferred sensor's trigger runs inline in dag.test()
        "MLLOOP_RETRY_DELAY_SECONDS": "1",
        "GIT_PYTHON_REFRESH": "quiet",
    }
)
for name in (
    "MLLOOP_STORAGE_ROOT",
    "MLLOOP_STORAGE_CONN_ID",
    "MLFLOW_TRACKING_URI",
    "MLLOOP_MLFLOW_ARTIFACT_ROOT",
    "MLLOOP_FEAST_REGISTRY",
    "MLLOOP_FEAST_ONLINE_STORE",
    "MLLOOP_FEAST_OFFLINE_STORE",
    "MLLOOP_USE_CASES_DIR",
    "MLLOOP_FEAST_REPO",
):
    os.environ.pop(name, None)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if not os.environ.get("MLLOOP_KEEP_TEST_DIRS"):
        shutil.rmtree(SESSION_DIR, ignore_errors=True)


@pytest.fixture(scope="session")
def airflow_db() -> Path:
    """A migrated Airflow metadata DB (file SQLite: dag.test() cannot use an in-memory one)."""
    subprocess.run([sys.executable, "-m", "airflow", "db", "migrate"], check=True, capture_output=True)
    return Path(os.environ["AIRFLOW_HOME"])


@pytest.fixture
def mlloop_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty, private MLLOOP_HOME for one test (storage root, Feast, MLflow live under it)."""
    home = tmp_path / "mlloop"
    monkeypatch.setenv("MLLOOP_HOME", str(home))
    for name in ("MLLOOP_STORAGE_ROOT", "MLLOOP_FEAST_REGISTRY", "MLLOOP_FEAST_ONLINE_STORE", "MLFLOW_TRACKING_URI"):
        monkeypatch.delenv(name, raising=False)
    return home


@pytest.fixture
def storage(mlloop_home: Path):  # type: ignore[no-untyped-def]
    from mlloop.settings import get_settings
    from mlloop.storage import Storage

    return Storage.from_url(get_settings().storage_root)


@pytest.fixture
def spec():  # type: ignore[no-untyped-def]
    from mlloop.spec import get_spec

    return get_spec("credit_risk")


@pytest.fixture
def feast_registry(mlloop_home: Path) -> Iterator[Path]:
    """The project's feature repo applied to this test's private registry and online store."""
    from mlloop.feature_store import apply_registry

    apply_registry()
    yield mlloop_home / "feast"


@pytest.fixture
def moto_bucket(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A moto S3 server on loopback with one empty bucket (its name is yielded); the standard AWS
    variables point at it, as they point every S3 client of the loop at MinIO when scaled."""
    import boto3
    import s3fs
    from moto.server import ThreadedMotoServer

    bucket = "mlloop-test"
    s3fs.S3FileSystem.clear_instance_cache()  # a cached filesystem would still reach an earlier server
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        for name, value in {
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_ENDPOINT_URL_S3": f"http://{host}:{port}",
        }.items():
            monkeypatch.setenv(name, value)
        boto3.client("s3").create_bucket(Bucket=bucket)
        yield bucket
    finally:
        server.stop()
        s3fs.S3FileSystem.clear_instance_cache()  # nor may a later test get one pointing at this server
