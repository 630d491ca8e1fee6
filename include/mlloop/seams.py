"""Points where a *test deployment* may step into the core; empty (a no-op) in every real one.

The reliability tests need to crash a write half-way and to hold an alias move inside its critical
section, on a real scheduler. That code can SIGKILL its own parent, so it must not ship in the core
nor be imported by it: it lives with the tests (``tests/seams/fault_injection.py``), and a test
deployment installs it by naming its module in ``MLLOOP_TEST_HOOKS`` (and putting it on the task
processes' ``PYTHONPATH``). The core only calls the two points below; with the variable unset they
return at once and import nothing.

A hook module defines any of :func:`on_atomic_write` and :func:`before_alias_move` with the same
signatures; a point it does not define is skipped.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from mlloop.settings import get_settings


class SeamError(RuntimeError):
    """``MLLOOP_TEST_HOOKS`` names a module that cannot be imported."""


def installed_hooks() -> ModuleType | None:
    """The test deployment's hook module (``MLLOOP_TEST_HOOKS``), or ``None`` (every real deployment)."""
    name = get_settings().test_hooks
    if not name:
        return None
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        raise SeamError(
            f"MLLOOP_TEST_HOOKS={name!r} cannot be imported ({exc}); it is for test deployments only: "
            "unset it, or put the hook module on PYTHONPATH"
        ) from exc


def on_atomic_write(target: str, local_tmp: str | None) -> None:
    """Between writing a temporary file and publishing it over ``target`` (``Storage.atomic_path``)."""
    hooks = installed_hooks()
    if hooks is not None and hasattr(hooks, "on_atomic_write"):
        hooks.on_atomic_write(target, local_tmp)


def before_alias_move(model: str, version: str) -> None:
    """Inside the alias critical section, after the re-check and before the write (``champion``)."""
    hooks = installed_hooks()
    if hooks is not None and hasattr(hooks, "before_alias_move"):
        hooks.before_alias_move(model, version)
