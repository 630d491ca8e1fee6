"""Test seams do not ship: the core imports no fault module, and runs its seam points as no-ops.

The fault injection (``tests/seams/fault_injection.py``) can SIGKILL its parent; only a test
deployment installs it (``MLLOOP_TEST_HOOKS``, see ``mlloop.seams``).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from mlloop.seams import SeamError, on_atomic_write

ROOT = Path(__file__).resolve().parents[2]

_IMPORT_THE_CORE = """
import json, pkgutil, importlib, sys
import pandas as pd
import mlloop
for module in pkgutil.walk_packages(mlloop.__path__, "mlloop."):
    importlib.import_module(module.name)
from mlloop.storage import local_storage
storage = local_storage(sys.argv[1])
url = storage.path("features", "uc", "date=2026-01-01", "data.parquet")
storage.write_frame(pd.DataFrame({"a": [1]}), url)  # passes the seam point of every atomic write
print(json.dumps(sorted(name for name in sys.modules if "fault_injection" in name)))
"""


def test_the_shipped_core_imports_no_fault_module(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("MLLOOP_TEST_HOOKS", "MLLOOP_FAULTS_DIR")}
    out = subprocess.run(
        [sys.executable, "-c", _IMPORT_THE_CORE, str(tmp_path / "root")],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=600,
    )
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []
    shipped = [*(ROOT / "include").rglob("*.py"), *(ROOT / "plugins").rglob("*.py"), *(ROOT / "dags").rglob("*.py")]
    importing = re.compile(r"^\s*(from|import)\s+[\w.]*fault_injection|import_module\([^)]*fault", re.MULTILINE)
    assert [str(p.relative_to(ROOT)) for p in shipped if importing.search(p.read_text())] == []


def test_a_hook_module_that_cannot_be_imported_is_named_in_the_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLLOOP_TEST_HOOKS", "no_such_hooks_module")
    with pytest.raises(SeamError, match=r"MLLOOP_TEST_HOOKS='no_such_hooks_module' cannot be imported"):
        on_atomic_write("file:///x", None)
