"""Trigger input is user input: every DAG Param has a schema that Airflow enforces when a run is
created (the REST API answers 400, the UI's form shows the error), and what a schema cannot know
is checked by the run's first task, which fails at once, without retries, before any work.

(The REST answers themselves are checked against a real API server in tests/e2e/test_reliability.py.)
"""

from __future__ import annotations

import copy
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
REPORT = "/srv/mlloop/storage/reports/credit_risk/drift/date=2026-11-20/report.html"


@pytest.fixture(scope="module")
def dags() -> dict[str, Any]:
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(ROOT / "dags"))
    assert bag.import_errors == {}
    return bag.dags


def validate(dag: Any, conf: dict[str, Any]) -> None:
    """What Airflow does with a trigger's conf before it creates the run (raises ParamValidationError)."""
    params = copy.deepcopy(dag.params)
    for key, value in conf.items():
        params[key] = value
    params.validate()


def test_every_param_has_a_schema_that_constrains_it(dags: dict[str, Any]) -> None:
    loose = []
    for dag_id, dag in dags.items():
        for name in dag.params:
            schema = dag.params.get_param(name).schema
            types = {schema.get("type")} if isinstance(schema.get("type"), str) else set(schema.get("type") or [])
            constrained = (
                ("string" not in types or {"pattern", "enum", "maxLength", "format"} & set(schema))
                and (("integer" not in types and "number" not in types) or {"minimum", "enum"} & set(schema))
                and ("object" not in types or "properties" in schema)
            )
            if not types or not constrained:
                loose.append(f"{dag_id}.{name}: {schema}")
    assert loose == []


GOOD = [
    ("feature_ingestion", {"day": "2026-11-20"}),
    ("batch_scoring", {"day": "2026-11-20"}),
    ("drift_monitoring", {"day": None}),
    ("promotion", {"version": 3}),
    ("rollback", {"version": None, "reason": "scores look off"}),
    ("training", {"cutoff_day": "2026-11-20", "force": True, "reason": "drift: income", "drift_report": REPORT}),
    ("training", {"drift": {"drifted_share": 0.4, "drifted_features": {"annual_income": 0.3, "age": None}}}),
]

BAD = [
    ("feature_ingestion", {"day": "2026-13-01"}, "is not a 'date'"),
    ("batch_scoring", {"day": "20261120"}, "does not match"),
    ("drift_monitoring", {"day": "yesterday"}, "does not match"),
    ("promotion", {"version": 0}, "less than the minimum of 1"),
    ("promotion", {"version": "latest"}, "is not of type"),
    ("rollback", {"version": -2}, "less than the minimum of 1"),
    ("rollback", {"reason": "x" * 1001}, "is too long"),
    ("training", {"cutoff_day": "2026-02-30"}, "is not a 'date'"),
    ("training", {"force": "yes"}, "is not of type 'boolean'"),
    ("training", {"drift_report": "/etc/passwd"}, "does not match"),
    ("training", {"drift_report": "/srv/x/../../etc/reports/credit_risk/drift/date=2026-11-20/report.html"}, "match"),
    ("training", {"drift_report": REPORT.replace("report.html", "report.json")}, "does not match"),
    ("training", {"drift": {"drifted_share": 3}}, "greater than the maximum of 1"),
    ("training", {"drift": {"command": "rm -rf /"}}, "Additional properties are not allowed"),
    # bounded: what the registry can store, days the use case can have, a conf of sane size
    ("promotion", {"version": 10**30}, "greater than the maximum of 2147483647"),
    ("rollback", {"version": 2**31}, "greater than the maximum of 2147483647"),
    ("feature_ingestion", {"day": "9999-12-31"}, "does not match"),
    ("batch_scoring", {"day": "1970-01-01"}, "does not match"),
    ("training", {"cutoff_day": "9999-12-31"}, "does not match"),
    ("training", {"drift": {"drifted_features": {f"f{i}": 0.5 for i in range(200_000)}}}, "too many properties"),
    ("training", {"drift": {"drifted_features": {"x" * 10_000_000: 0.5}}}, "is too long"),
    ("training", {"drift": {"key_features_drifted": ["age"] * 200_000}}, "is too long"),
]


@pytest.mark.parametrize(("stage", "conf"), GOOD, ids=[f"{s}-{sorted(c)}" for s, c in GOOD])
def test_good_trigger_input_is_accepted(dags: dict[str, Any], stage: str, conf: dict[str, Any]) -> None:
    validate(dags[f"credit_risk__{stage}"], conf)


@pytest.mark.parametrize(
    ("stage", "conf", "says"), BAD, ids=[f"{s}-{sorted(c)}-{i}" for i, (s, c, _) in enumerate(BAD)]
)
def test_bad_trigger_input_is_refused_before_the_run_exists(
    dags: dict[str, Any], stage: str, conf: dict[str, Any], says: str
) -> None:
    from airflow.exceptions import ParamValidationError

    with pytest.raises(ParamValidationError, match="Invalid input for param") as err:
        validate(dags[f"credit_risk__{stage}"], conf)
    assert says in str(err.value)


def test_a_drift_report_outside_the_storage_root_fails_the_first_task_before_any_work(  # type: ignore[no-untyped-def]
    mlloop_home, monkeypatch
) -> None:
    """The path matches the schema, but this deployment's reports are elsewhere. MLflow points at a
    closed port: had the task done anything before the check, it would fail with an outage instead."""
    from airflow.sdk.exceptions import AirflowFailException

    from mlloop.settings import get_settings
    from mlloop_airflow.operators.training import TrainingDecisionOperator

    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:9")
    get_settings().prepare_local_paths()
    op = TrainingDecisionOperator(task_id="decide_training", use_case="credit_risk", drift_report=REPORT)
    with pytest.raises(AirflowFailException, match=r"'drift_report' must be a drift report of credit_risk under"):
        op.execute({})  # type: ignore[arg-type]
    inside = get_settings().storage_root + "/reports/other_use_case/drift/date=2026-11-20/report.html"
    op = TrainingDecisionOperator(task_id="decide_training", use_case="credit_risk", drift_report=inside)
    with pytest.raises(AirflowFailException, match="Nothing was done"):
        op.execute({})  # type: ignore[arg-type]


@pytest.mark.parametrize("ahead", [None, 400])
def test_a_day_the_pattern_lets_through_but_outside_the_use_case_range_fails_the_first_task(ahead: int | None) -> None:
    """The schema bounds the year; the exact range (start date .. a year ahead) is the first task's."""
    import datetime as dt

    from airflow.sdk.exceptions import AirflowFailException

    from mlloop_airflow.operators.validation import ValidateBatchOperator

    today = dt.datetime.now(dt.UTC).date()
    day = "2024-12-31" if ahead is None else (today + dt.timedelta(days=ahead)).isoformat()
    op = ValidateBatchOperator(task_id="validate_observations", use_case="credit_risk", dataset="observations", day=day)
    with pytest.raises(AirflowFailException, match=rf"'day' {day} is outside 2025-01-01 .*Nothing was done"):
        op.resolve_day({})  # type: ignore[arg-type]


def test_a_model_version_that_does_not_exist_fails_the_first_task(mlloop_home) -> None:  # type: ignore[no-untyped-def]
    from airflow.sdk.exceptions import AirflowFailException

    from mlloop_airflow.operators.promotion import EvaluateChallengerOperator, RollbackChampionOperator

    evaluate = EvaluateChallengerOperator(task_id="evaluate_challenger", use_case="credit_risk", version=41)
    with pytest.raises(AirflowFailException, match="model 'credit_risk' has no version 41"):
        evaluate.execute({"triggering_asset_events": {}})  # type: ignore[arg-type]
    rollback = RollbackChampionOperator(task_id="rollback_champion", use_case="credit_risk", version=41)
    with pytest.raises(AirflowFailException, match="rollback refused: model 'credit_risk' has no version 41"):
        rollback.execute({"dag": SimpleNamespace(dag_id="credit_risk__rollback"), "run_id": "manual__x"})  # type: ignore[arg-type]


def test_the_training_params_are_the_training_conf_schema(dags: dict[str, Any]) -> None:
    """One definition: each Param of the training DAG is the JSON schema of TrainingConf's field."""
    from mlloop.training_conf import TrainingConf, param_schemas

    params = dags["credit_risk__training"].params
    assert set(params) == set(TrainingConf.model_fields)
    for name, schema in param_schemas().items():
        param = params.get_param(name)
        declared = {**param.schema, "description": param.description}  # Airflow keeps the description apart
        if name == "cutoff_day":  # bounded to the use case's years (dag_defaults.day_pattern)
            assert declared.pop("pattern").startswith("^(?:2")
            schema.pop("pattern")
        assert declared == {k: v for k, v in schema.items() if k != "default"}, name


def test_the_day_pattern_comes_from_the_data_not_from_the_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    """Parsed on Dec 31 and again on Jan 1, the Day param is the same (a pattern that followed the
    calendar year made a new DAG version at every new year); it lets through every day the first
    task accepts (start date .. a year ahead) and refuses the years before the data, or after its end."""
    import datetime as real
    import re

    from mlloop.spec import get_spec
    from mlloop.steps import MAX_DAYS_AHEAD
    from mlloop_airflow import dag_defaults

    spec = get_spec("credit_risk")

    def parsed_at(moment: real.datetime) -> str:
        class Clock(real.datetime):
            @classmethod
            def now(cls, tz: Any = None) -> Any:
                return moment

        clock = SimpleNamespace(datetime=Clock, date=real.date, time=real.time, timedelta=real.timedelta, UTC=real.UTC)
        monkeypatch.setattr(dag_defaults, "dt", clock)
        return dag_defaults.day_pattern(spec)

    new_years_eve = parsed_at(real.datetime(2026, 12, 31, 23, 59, tzinfo=real.UTC))
    assert parsed_at(real.datetime(2027, 1, 1, 0, 1, tzinfo=real.UTC)) == new_years_eve
    monkeypatch.undo()

    ahead = real.datetime.now(real.UTC).date() + real.timedelta(days=MAX_DAYS_AHEAD)
    for day in (spec.schedule.start_date, ahead):
        assert re.match(new_years_eve, day.isoformat()), day
    assert not re.match(new_years_eve, "2024-12-31")
    assert not re.match(new_years_eve, f"{spec.schedule.start_date.year + dag_defaults.OPEN_ENDED_YEARS + 1}-01-01")
    for first, last in ((1999, 2099), (2010, 2012), (2011, 2011), (2025, 2125), (2090, 2190), (1000, 9999)):
        pattern = re.compile(rf"^(?:{dag_defaults.year_range(first, last)})$")
        assert [year for year in range(1000, 10000) if pattern.match(str(year))] == list(range(first, last + 1))

    ended = spec.model_copy(update={"schedule": spec.schedule.model_copy(update={"end_date": real.date(2026, 6, 30)})})
    assert re.match(dag_defaults.day_pattern(ended), "2026-06-30")
    assert not re.match(dag_defaults.day_pattern(ended), "2027-01-01")
