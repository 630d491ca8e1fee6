"""Branching that still hands its result to downstream tasks.

In Airflow 3 a branch that skips tasks ends ``execute()`` with an exception (the task SDK's
``DownstreamTasksSkipped``), so a value returned after ``do_branch`` is never pushed to XCom. The
decision is exactly what downstream tasks (and people reading the run) need, so it is pushed first.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from airflow.providers.standard.operators.branch import BranchMixIn

if TYPE_CHECKING:
    from airflow.sdk import Context

RETURN_KEY = "return_value"


class BranchWithResultMixIn(BranchMixIn):
    """For operators that decide which downstream tasks run and return why.

    The operator class itself must say ``inherits_from_skipmixin = True`` (as Airflow's
    ``BaseBranchOperator`` does): the mixin comes after ``BaseOperator`` in the MRO, whose property
    would otherwise tell the serializer that the task never skips anything.
    """

    def branch_with_result(
        self, context: Context, branches: str | Iterable[str] | None, result: dict[str, Any]
    ) -> dict[str, Any]:
        """Push ``result`` as this task's XCom (each key too, with ``multiple_outputs``), then follow ``branches``
        (None: skip every downstream task)."""
        ti = context["ti"]
        ti.xcom_push(key=RETURN_KEY, value=result)
        if getattr(self, "multiple_outputs", False):
            for key, value in result.items():
                ti.xcom_push(key=key, value=value)
        self.do_branch(context, branches)
        return result
