"""What every use-case operator shares: the spec, the day to work on, the services its step uses,
and the translation of a step's outcome (failed, skipped, an outage) into Airflow's terms."""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Callable, Sequence
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator
from airflow.sdk.exceptions import AirflowException, AirflowFailException, AirflowSkipException

from mlloop_airflow.hooks.mlflow import apply_mlflow_credentials
from mlloop_airflow.hooks.storage import StorageHook
from mlloop_airflow.intervals import check_day_in_range, resolve_day

if TYPE_CHECKING:
    from airflow.sdk import Context

    from mlloop.services import Services
    from mlloop.spec import UseCaseSpec
    from mlloop.steps import RunInfo


def explaining_outages(execute: Callable[..., Any]) -> Callable[..., Any]:
    """Wrap ``execute`` so a step's :class:`mlloop.steps.StepFailed` fails the task without retries
    and its :class:`mlloop.steps.StepSkipped` skips it, both with the step's one-line message; and so
    an outage of MLflow, the online store or storage fails the try with one
    actionable message (:class:`mlloop.outages.ServiceUnavailable`: retried with backoff) instead of
    a library's stack of connection errors. Other exceptions pass unchanged. MLflow's login is applied
    (and its password masked) first: :func:`mlloop_airflow.hooks.mlflow.apply_mlflow_credentials`."""

    @functools.wraps(execute)
    def wrapper(self: BaseOperator, *args: Any, **kwargs: Any) -> Any:
        apply_mlflow_credentials()  # before anything may talk to MLflow, or log its password
        try:
            return execute(self, *args, **kwargs)
        except AirflowException:
            raise
        except Exception as exc:
            from mlloop.steps import StepFailed, StepSkipped

            if isinstance(exc, StepFailed):
                raise AirflowFailException(str(exc)) from None
            if isinstance(exc, StepSkipped):
                raise AirflowSkipException(str(exc)) from None
            from mlloop.outages import ServiceUnavailable, explain_outage

            message = explain_outage(exc)
            if message is None or isinstance(exc, ServiceUnavailable):
                raise
            self.log.error("%s", message)
            raise ServiceUnavailable(message) from exc

    wrapper.explains_outages = True  # type: ignore[attr-defined]
    return wrapper


class UseCaseOperator(BaseOperator):
    """Base for operators that act on one use case (and usually one day).

    Every subclass's ``execute`` is wrapped by :func:`explaining_outages`.

    :param use_case: name of the use-case spec (``include/use_cases/<name>.yaml``). (templated)
    :param day: ISO date to process; empty means the run's data interval. (templated)
    """

    template_fields: Sequence[str] = ("use_case", "day")

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        execute = cls.__dict__.get("execute")
        if execute is not None and not getattr(execute, "explains_outages", False):
            cls.execute = explaining_outages(execute)  # type: ignore[method-assign]

    def __init__(self, *, use_case: str, day: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.use_case = use_case
        self.day = day

    @cached_property
    def spec(self) -> UseCaseSpec:
        from mlloop.spec import get_spec

        return get_spec(self.use_case)

    @cached_property
    def services(self) -> Services:
        """Storage, MLflow and Feast for this task's step, each opened on first use (one I/O model:
        :mod:`mlloop.services`). Only the storage root comes through Airflow: its connection's
        filesystem (:class:`~mlloop_airflow.hooks.storage.StorageHook`)."""
        from mlloop.services import Services

        return Services(open_storage=lambda: StorageHook().storage)

    def run_info(self, context: Context) -> RunInfo:
        """Which DAG run takes the step, for the tags and lineage it records."""
        from mlloop.steps import RunInfo

        start, end = context.get("data_interval_start"), context.get("data_interval_end")
        return RunInfo(
            dag_id=str(getattr(context.get("dag"), "dag_id", "")),
            run_id=str(context.get("run_id") or ""),
            data_interval_start=start.isoformat() if start else None,
            data_interval_end=end.isoformat() if end else None,
        )

    def resolve_day(self, context: Context) -> dt.date:
        day = resolve_day(context, self.day)
        if self.day not in (None, "", "None"):  # a run's own interval is always in range
            check_day_in_range(self.spec, day)
        return day

    def set_outlet_extra(self, context: Context, extra: dict[str, Any]) -> None:
        """Attach ``extra`` to the asset events this task emits (consumers read it)."""
        for outlet in self.outlets:
            context["outlet_events"][outlet].extra = extra

    def triggering_asset_extras(self, context: Context) -> list[dict[str, Any]]:
        """The ``extra`` of every asset event that triggered this run (none for manual runs)."""
        events = context.get("triggering_asset_events") or {}
        return [dict(event.extra or {}) for asset_events in events.values() for event in asset_events]
