"""A bundled use case with a few settings changed, as the use-case folder a test runs with.

Tests that need a looser floor, a shorter cooldown or an end date write a copy of the bundled spec
into a folder of their own and point ``MLLOOP_USE_CASES_DIR`` at it (the folder then holds that one
use case, so a ``DagBag`` builds only its DAGs). Written once here, so every such copy is read from
the same bundled file and merged the same way.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from mlloop.spec import UseCaseSpec, get_spec

BUNDLED = Path(__file__).resolve().parents[1] / "include" / "use_cases"


def write_spec_variant(folder: Path, name: str = "credit_risk", **sections: dict[str, Any]) -> Path:
    """Write ``folder/<name>.yaml``: the bundled spec with each of ``sections`` merged into the spec's
    section of that name (``promotion={"min_primary_metric": 0.6}`` changes that key, keeps the rest).
    Returns ``folder`` (created if missing)."""
    raw = yaml.safe_load((BUNDLED / f"{name}.yaml").read_text())
    for section, values in sections.items():
        raw[section].update(values)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}.yaml").write_text(yaml.safe_dump(raw))
    return folder


def use_spec_variant(
    monkeypatch: pytest.MonkeyPatch, folder: Path, name: str = "credit_risk", **sections: dict[str, Any]
) -> UseCaseSpec:
    """:func:`write_spec_variant`, made the use-case folder of this test (``MLLOOP_USE_CASES_DIR``);
    returns the spec as tasks will load it."""
    monkeypatch.setenv("MLLOOP_USE_CASES_DIR", str(write_spec_variant(folder, name, **sections)))
    return get_spec(name)
