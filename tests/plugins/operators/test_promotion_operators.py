"""Promotion operators: which version is evaluated, and what they accept from templates."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import pytest
from airflow.sdk import Asset
from airflow.sdk.exceptions import AirflowFailException

from mlloop.services import Services
from mlloop.steps import StepFailed, as_mapping
from mlloop.steps import promotion as promotion_steps
from mlloop_airflow.notifiers.failure import CONN_ID_ENV
from mlloop_airflow.operators.promotion import EvaluateChallengerOperator
from webhook_receiver import CONN_ID, Receiver


class FakeClient:
    """Answers alias lookups like MlflowClient does."""

    def __init__(self, aliases: dict[str, str]) -> None:
        self.aliases = aliases

    def get_model_version_by_alias(self, name: str, alias: str) -> Any:
        from mlflow.exceptions import MlflowException

        if alias not in self.aliases:
            raise MlflowException(f"alias {alias} not found", error_code="RESOURCE_DOES_NOT_EXIST")
        return SimpleNamespace(name=name, version=self.aliases[alias], run_id="r", source="s", tags={}, aliases=[alias])

    def get_model_version(self, name: str, version: str) -> Any:
        aliases = [alias for alias, v in self.aliases.items() if v == version]
        return SimpleNamespace(name=name, version=version, run_id="r", source="s", tags={}, aliases=aliases)


def evaluate(version: Any, aliases: dict[str, str]) -> EvaluateChallengerOperator:
    op = EvaluateChallengerOperator(task_id="evaluate", use_case="credit_risk", version=version)
    op.services = Services.of(mlflow=FakeClient(aliases))  # type: ignore[arg-type]
    return op


def resolve(op: EvaluateChallengerOperator, ctx: dict[str, Any]) -> tuple[str | None, str]:
    """The version the operator's step evaluates, from its parameter and the run's trigger."""
    events = [e.get("version") for e in op.triggering_asset_extras(ctx)]  # type: ignore[arg-type]
    return promotion_steps.resolve_challenger(op.services, op.spec, op.version, events)


def context(*versions: Any) -> dict[str, Any]:
    events = [SimpleNamespace(extra={"version": v}) for v in versions]
    return {"triggering_asset_events": {Asset("x-mlloop://credit_risk/challenger"): events} if events else {}}


def test_version_parameter_wins() -> None:
    assert resolve(evaluate(4, {"challenger": "7"}), context("6")) == ("4", "the version parameter")


def test_version_from_the_newest_triggering_challenger_event() -> None:
    assert resolve(evaluate(None, {"challenger": "7"}), context("5", "6")) == ("6", "the challenger event")


def test_version_from_the_challenger_alias_for_a_manual_run() -> None:
    assert resolve(evaluate("None", {"challenger": "7"}), context()) == ("7", "alias challenger")
    assert resolve(evaluate(None, {}), context())[0] is None


@pytest.mark.parametrize("bad", ["latest", "0", "-1"])
def test_a_bad_version_fails_without_retries(bad: str) -> None:
    with pytest.raises(AirflowFailException, match="model version number"):
        evaluate(bad, {}).execute(context())  # type: ignore[arg-type]


def test_templated_mappings_are_read_rendered_or_native() -> None:
    assert as_mapping({"version": "3"}, "evaluation") == {"version": "3"}
    assert as_mapping("{'version': '3', 'reasons': []}", "evaluation") == {"version": "3", "reasons": []}
    with pytest.raises(StepFailed, match="'evaluation' must be a mapping, got 'None'"):
        as_mapping(None, "evaluation")


# ---------------------------------------------------------------- a champion below the floor


@pytest.fixture
def webhook(monkeypatch: pytest.MonkeyPatch) -> Iterator[Receiver]:
    """The alert connection, pointing at a receiver on 127.0.0.1."""
    with Receiver() as server:
        monkeypatch.setenv(f"AIRFLOW_CONN_{CONN_ID.upper()}", json.dumps({"conn_type": "http", "host": server.url}))
        monkeypatch.setenv(CONN_ID_ENV, CONN_ID)
        yield server


def issue_13_evaluation(mode: str) -> Any:
    """The issue's numbers through the real gate: ceiling 50 RMSE, champion v1 at 60.7, challenger v2 at 53.2."""
    from mlloop.evaluation import Evaluation, EvaluationWindow
    from mlloop.promotion import GatePolicy, Scorecard, decide

    policy = GatePolicy("rmse", 50.0, 5.0, 10.0, 50, when_champion_fails_floor=mode)
    cards = {"2": Scorecard("2", 480, 53.2), "1": Scorecard("1", 480, 60.7)}
    window = EvaluationWindow(dt.date(2011, 3, 1), dt.date(2011, 3, 2), 480, None)
    return Evaluation(window=window, decision=decide(policy, cards["2"], cards["1"]), cards=cards)


@pytest.mark.parametrize(
    ("mode", "branch", "alerted"),
    [
        ("promote_better", "promote_challenger", True),
        ("alert_only", "reject_challenger", True),
        ("keep", "reject_challenger", False),
    ],
)
def test_a_champion_below_the_floor_is_a_warning_and_an_alert_and_the_mode_decides(
    mode: str,
    branch: str,
    alerted: bool,
    webhook: Receiver,
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
) -> None:
    """Mocked: the re-scoring of both models (needs MLflow models and Feast; tested in include/) and Airflow's
    branching (needs a DAG run); the gate, the operator's decision handling and the webhook POST are real."""
    op = evaluate(None, {"challenger": "2", "champion": "1"})
    spec = op.spec
    op.spec = spec.model_copy(
        update={"promotion": spec.promotion.model_copy(update={"when_champion_fails_floor": mode})}
    )
    monkeypatch.setattr(promotion_steps, "run_gate", lambda *args: issue_13_evaluation(mode))
    monkeypatch.setattr(op, "link_to_model_version", lambda model, version: None)
    branches: list[Any] = []
    monkeypatch.setattr(op, "branch_with_result", lambda context, to, result: branches.append(to) or result)
    ctx = {**context(), "dag": SimpleNamespace(dag_id="energy__promotion"), "run_id": "manual__1", "ti": None}

    result = op.execute(ctx)  # type: ignore[arg-type]

    assert branches == [branch]
    assert result["passed"] is (mode == "promote_better")
    (alert,) = result["alerts"]
    assert "champion v1 itself fails the floor: rmse 60.7000" in alert
    log = capfd.readouterr().out
    assert "[warning  ] ALERT: credit_risk: champion v1 itself fails the floor" in log, log
    if alerted:
        (message,) = webhook.messages
        assert message["kind"] == "champion_fails_floor" and message["champion_version"] == "1"
        assert message["alerts"] == [alert]
        first = message["text"].splitlines()[0]
        assert (
            first
            == "mlloop: credit_risk champion v1 fails the promotion floor (energy__promotion.evaluate, run manual__1)"
        )
        expected = "v2 is promoted over it" if mode == "promote_better" else "champion v1 stays; v2 is rejected"
        assert f"Decision: {expected}" in message["text"]
    else:
        assert webhook.messages == []
