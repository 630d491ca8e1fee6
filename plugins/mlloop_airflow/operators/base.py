"""What every use-case operator shares: the spec lookup, the day to work on, the storage hook."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator

from mlloop_airflow.hooks.storage import StorageHook
from mlloop_airflow.intervals import resolve_day

if TYPE_CHECKING:
    from airflow.sdk import Context

    from mlloop.spec import UseCaseSpec


class UseCaseOperator(BaseOperator):
    """Base for operators that act on one use case (and usually one day).

    :param use_case: name of the use-case spec (``include/use_cases/<name>.yaml``). (templated)
    :param day: ISO date to process; empty means the run's data interval. (templated)
    """

    template_fields: Sequence[str] = ("use_case", "day")

    def __init__(self, *, use_case: str, day: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.use_case = use_case
        self.day = day

    @cached_property
    def spec(self) -> UseCaseSpec:
        from mlloop.spec import get_spec

        return get_spec(self.use_case)

    @cached_property
    def storage_hook(self) -> StorageHook:
        return StorageHook()

    def resolve_day(self, context: Context) -> dt.date:
        return resolve_day(context, self.day)

    def set_outlet_extra(self, context: Context, extra: dict[str, Any]) -> None:
        """Attach ``extra`` to the asset events this task emits (consumers read it)."""
        for outlet in self.outlets:
            context["outlet_events"][outlet].extra = extra

    def triggering_asset_extras(self, context: Context) -> list[dict[str, Any]]:
        """The ``extra`` of every asset event that triggered this run (none for manual runs)."""
        events = context.get("triggering_asset_events") or {}
        return [dict(event.extra or {}) for asset_events in events.values() for event in asset_events]
