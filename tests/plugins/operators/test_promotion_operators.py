"""Promotion operators: which version is evaluated, and what they accept from templates."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from airflow.sdk import Asset
from airflow.sdk.exceptions import AirflowFailException

from mlloop_airflow.operators.promotion import EvaluateChallengerOperator, as_mapping


class FakeClient:
    """Answers alias lookups like MlflowClient does."""

    def __init__(self, aliases: dict[str, str]) -> None:
        self.aliases = aliases

    def get_model_version_by_alias(self, name: str, alias: str) -> Any:
        from mlflow.exceptions import MlflowException

        if alias not in self.aliases:
            raise MlflowException(f"alias {alias} not found", error_code="RESOURCE_DOES_NOT_EXIST")
        return SimpleNamespace(name=name, version=self.aliases[alias], run_id="r", source="s", tags={}, aliases=[alias])


def evaluate(version: Any, aliases: dict[str, str]) -> EvaluateChallengerOperator:
    op = EvaluateChallengerOperator(task_id="evaluate", use_case="credit_risk", version=version)
    op.mlflow_hook = SimpleNamespace(client=FakeClient(aliases))
    return op


def context(*versions: Any) -> dict[str, Any]:
    events = [SimpleNamespace(extra={"version": v}) for v in versions]
    return {"triggering_asset_events": {Asset("x-mlloop://credit_risk/challenger"): events} if events else {}}


def test_version_parameter_wins() -> None:
    assert evaluate(4, {"challenger": "7"}).resolve_version(context("6")) == ("4", "the version parameter")


def test_version_from_the_newest_triggering_challenger_event() -> None:
    assert evaluate(None, {"challenger": "7"}).resolve_version(context("5", "6")) == ("6", "the challenger event")


def test_version_from_the_challenger_alias_for_a_manual_run() -> None:
    assert evaluate("None", {"challenger": "7"}).resolve_version(context()) == ("7", "alias challenger")
    assert evaluate(None, {}).resolve_version(context())[0] is None


@pytest.mark.parametrize("bad", ["latest", "0", "-1"])
def test_a_bad_version_fails_without_retries(bad: str) -> None:
    with pytest.raises(AirflowFailException, match="model version number"):
        evaluate(bad, {}).resolve_version(context())


def test_templated_mappings_are_read_rendered_or_native() -> None:
    assert as_mapping({"version": "3"}, "evaluation") == {"version": "3"}
    assert as_mapping("{'version': '3', 'reasons': []}", "evaluation") == {"version": "3", "reasons": []}
    with pytest.raises(AirflowFailException, match="'evaluation' must be a mapping, got 'None'"):
        as_mapping(None, "evaluation")
