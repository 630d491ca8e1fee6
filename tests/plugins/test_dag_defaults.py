"""``mlloop_dag``: Airflow's rule for a scheduled DAG's Params, checked once per distinct Param.

Real Airflow DAGs and Params; nothing is mocked (the count uses a spy that calls through).
"""

from __future__ import annotations

import datetime as dt
from unittest import mock

import pytest
from airflow.providers.standard.operators.empty import EmptyOperator
from airflow.sdk import Param
from airflow.sdk.definitions.param import ParamsDict

from mlloop_airflow.dag_defaults import mlloop_dag

START = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def day(default: str | None) -> Param:
    return Param(default, type=["null", "string"], pattern=r"^\d{4}-\d{2}-\d{2}$", title="Day")


def test_a_scheduled_dag_whose_param_default_breaks_its_schema_does_not_load() -> None:
    mlloop_dag(dag_id="good", schedule="@daily", start_date=START, params={"day": day(None)})
    # The same schema was accepted a moment ago, with another default: this one is still checked.
    with pytest.raises(ValueError, match="'bad' is not allowed to define a Schedule"):
        mlloop_dag(dag_id="bad", schedule="@daily", start_date=START, params={"day": day("yesterday")})


def test_an_unscheduled_dag_may_have_a_param_without_a_valid_default_as_in_airflow() -> None:
    dag = mlloop_dag(dag_id="manual", schedule=None, start_date=START, params={"day": day("yesterday")})
    assert dag.params.get_param("day").value == "yesterday"


def test_the_dag_and_its_tasks_get_the_params() -> None:
    with mlloop_dag(dag_id="with_task", schedule="@daily", start_date=START, params={"day": day(None)}) as dag:
        task = EmptyOperator(task_id="t")
    assert dag.params.get_param("day").schema["pattern"] == r"^\d{4}-\d{2}-\d{2}$"
    assert "day" in task.params


def test_each_distinct_param_is_checked_once_per_process_not_once_per_dag() -> None:
    """At 50 use cases the per-DAG check was half of a DAG file's parse time (bench B11)."""
    schema = {"type": ["null", "integer"], "minimum": 1, "title": "Checked once"}
    checked: list[list[str]] = []
    validate = ParamsDict.validate

    def spy(self: ParamsDict) -> dict[str, object]:
        checked.append(list(self))
        return validate(self)

    with mock.patch.object(ParamsDict, "validate", spy):
        for i in range(5):
            mlloop_dag(dag_id=f"uc_{i}", schedule="@daily", start_date=START, params={"n": Param(None, **schema)})
    assert checked.count(["n"]) == 1  # (DAG() itself checks its empty Params: nothing to check)
