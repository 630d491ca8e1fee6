"""No credentials in the repository: every tracked file (and every file about to be committed) is
scanned for the shapes real secrets take, and files that hold secrets are never tracked.

Connections and credentials come from the environment (``.env``, ignored) or Airflow Connections;
the repo carries only their names (``.env.example``).
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

SECRET_SHAPES = {
    "AWS access key id": re.compile(r"(?<![A-Z0-9])(AKIA|ASIA)[A-Z0-9]{16}(?![A-Z0-9])"),
    "AWS secret access key": re.compile(r"(?i)aws_secret_access_key\s*[=:]\s*['\"]?[A-Za-z0-9/+=]{40}"),
    "private key": re.compile(r"-----BEGIN ([A-Z]+ )?PRIVATE KEY-----"),
    "GitHub token": re.compile(r"\bgh[pousr]_[A-Za-z0-9]{36}\b"),
    "Slack token": re.compile(r"\bxox[baprs]-[A-Za-z0-9-]{10,}"),
    # user:password@ in a URL, when the password looks generated (long, letters and digits)
    "password in a URL": re.compile(r"://[^/\s:@'\"]+:(?=[^@/\s'\"]*\d)(?=[^@/\s'\"]*[A-Za-z])[^@/\s'\"$*<{]{12,}@"),
    # password = "<long random string>"
    "assigned secret": re.compile(
        r"(?i)\b(password|passwd|secret|secret_key|token|api_key|fernet_key|jwt_secret)\b['\"]?\s*[:=]\s*"
        r"['\"](?=[A-Za-z0-9+/=_\-]*\d)[A-Za-z0-9+/=_\-]{20,}['\"]"
    ),
}
NEVER_TRACKED = re.compile(
    r"(^|/)(\.env|airflow\.cfg|simple_auth_manager_passwords\.json(\.generated)?|id_[rd]sa|[^/]+\.pem|[^/]+\.key)$"
)


def tracked_files() -> list[str]:
    """Tracked plus staged-but-new files (what the next commit would contain)."""
    out = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return [line for line in out.splitlines() if line and (ROOT / line).is_file()]


def scan(text: str) -> list[str]:
    return [name for name, shape in SECRET_SHAPES.items() if shape.search(text)]


def test_no_file_that_holds_secrets_is_tracked() -> None:
    assert [f for f in tracked_files() if NEVER_TRACKED.search(f)] == []


def test_no_tracked_file_contains_a_credential() -> None:
    found = {}
    for name in tracked_files():
        path = ROOT / name
        if path.stat().st_size > 2_000_000:
            continue
        try:
            text = path.read_text()
        except UnicodeDecodeError:
            continue
        if hits := scan(text):
            found[name] = hits
    assert found == {}


@pytest.mark.parametrize(
    "leak",
    [  # assembled here so that this file does not trip its own scan
        "aws_access_key_id = " + "AKIA" + "Q3EGRFOKXX7JVAXB",
        "-----BEGIN OPENSSH " + "PRIVATE KEY-----",
        "MLFLOW_TRACKING_URI=https://mlflow:" + "Zq81xTbV2mKwp9" + "@mlflow.example.com",
        'password: "' + "k3Jd9x0QpLm2Zr7Vt5Ny" + '"',
    ],
)
def test_the_scanner_recognises_a_leak(leak: str) -> None:
    assert scan(leak)


@pytest.mark.parametrize(
    "harmless",
    [
        "postgresql+psycopg2://airflow:airflow@postgres/airflow",  # a local compose default, not a secret
        "MLFLOW_TRACKING_URI=http://${MLFLOW_USER}:${MLFLOW_PASSWORD}@mlflow:5000",
        "http://ml:s3cr3t@mlflow.internal:5000",  # a test's fake
    ],
)
def test_the_scanner_leaves_placeholders_alone(harmless: str) -> None:
    assert scan(harmless) == []
