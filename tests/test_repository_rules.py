"""Rules over the whole repository that no single module's test can see.

- The tooling is an installed command (``mlloop``, package ``mlloop_cli``), not scripts that tests and
  bench reach through ``sys.path`` insertion.
- ``MLLOOP_*`` variables are read in ``mlloop.settings`` only (tests may set them).
- MLflow tag keys are spelled in ``mlloop.tags`` only: everyone else, tests included, uses its constants.
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SKIPPED = {".venv", ".tools", ".git", "node_modules", ".mlloop", ".mlloop-scaled"}
SHIPPED = ("include", "plugins", "dags", "feature_repo", "cli")
# A read: environ.get("MLLOOP_..."), getenv("MLLOOP_..."), environ["MLLOOP_..."] not assigned to.
MLLOOP_READ = re.compile(r"""(environ\.get\(|getenv\()\s*["']MLLOOP_|environ\[\s*["']MLLOOP_\w*["']\s*\](?!\s*=[^=])""")


def python_files(*folders: str) -> list[Path]:
    roots = [ROOT / f for f in folders] if folders else [ROOT]
    return sorted(
        p for root in roots for p in root.rglob("*.py") if not SKIPPED.intersection(p.relative_to(ROOT).parts)
    )


def test_no_file_inserts_into_sys_path() -> None:
    needle = "sys.path." + "insert"  # split, so this file does not find itself
    assert [str(p.relative_to(ROOT)) for p in python_files() if needle in p.read_text()] == []


def test_the_mlloop_command_is_installed_and_dispatches() -> None:
    command = Path(sys.executable).parent / "mlloop"
    helped = subprocess.run([command, "--help"], capture_output=True, text=True, check=False, timeout=60)
    assert helped.returncode == 0
    for verb in ("up", "down", "status", "parse", "run", "demo", "replay", "land", "land-dataset", "scaled"):
        assert re.search(rf"mlloop [^#]*(?<![\w-]){verb}(?![\w-])", helped.stdout), verb
    wrong = subprocess.run([command, "deploy"], capture_output=True, text=True, check=False, timeout=60)
    assert wrong.returncode == 2
    assert "unknown command 'deploy'" in wrong.stderr


def test_mlloop_variables_are_read_only_in_settings() -> None:
    settings = ROOT / "include" / "mlloop" / "settings.py"
    readers = [
        f"{p.relative_to(ROOT)}:{n}"
        for p in python_files(*SHIPPED)
        if p != settings
        for n, line in enumerate(p.read_text().splitlines(), 1)
        if MLLOOP_READ.search(line)
    ]
    assert readers == []


def test_mlflow_tag_keys_are_spelled_only_in_the_tags_module() -> None:
    """A key re-typed elsewhere survives a rename in ``mlloop.tags`` and then reads nothing (issue 16).
    The dotted keys are checked (``gate.passed``, ``mlloop.cutoff_day``): a bare word such as
    ``use_case`` is also a parameter's or a column's name."""
    from mlloop import tags

    home = ROOT / "include" / "mlloop" / "tags.py"
    keys = {
        value
        for name, value in vars(tags).items()
        if name.isupper() and isinstance(value, str) and "." in value.strip(".") and not value.endswith(".")
    }
    retyped = [
        f"{p.relative_to(ROOT)}:{node.lineno} {node.value}"
        for p in python_files()
        if p != home
        for node in ast.walk(ast.parse(p.read_text()))
        if isinstance(node, ast.Constant) and node.value in keys
    ]
    assert retyped == []


def test_every_airflow_provider_imported_is_declared() -> None:
    """A provider that only arrives as another package's dependency can vanish with that package."""
    import tomllib

    declared = {
        re.split(r"[\[<>=~ ]", dep, maxsplit=1)[0]
        for dep in tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    }
    imported = {
        "apache-airflow-providers-" + name.replace("_", "-")
        for p in python_files(*SHIPPED)
        for name in re.findall(r"airflow\.providers\.(\w+)", p.read_text())
    }
    assert sorted(imported - declared) == []
