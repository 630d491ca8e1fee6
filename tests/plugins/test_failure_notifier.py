"""The failure notifier: off by default; when configured, one message per failed task with DAG, task,
interval, the one-line cause and the log link, POSTed to a local HTTP receiver started here."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from mlloop_airflow.notifiers.failure import CONN_ID_ENV, FORMAT_ENV, FailureAlert, FailureNotifier, one_line_cause
from webhook_receiver import CONN_ID, Receiver


@pytest.fixture
def receiver(monkeypatch: pytest.MonkeyPatch) -> Iterator[Receiver]:
    with Receiver() as server:
        connection = {"conn_type": "http", "host": server.url}
        monkeypatch.setenv(f"AIRFLOW_CONN_{CONN_ID.upper()}", json.dumps(connection))
        yield server


def failed_context(error: BaseException) -> dict[str, Any]:
    ti = SimpleNamespace(
        dag_id="credit_risk__feature_ingestion",
        task_id="validate_observations",
        run_id="scheduled__2026-11-25T00:00:00+00:00",
        try_number=3,
        map_index=-1,
        log_url="http://127.0.0.1:8080/dags/credit_risk__feature_ingestion/runs/r/tasks/validate_observations",
    )
    return {
        "ti": ti,
        "run_id": ti.run_id,
        "data_interval_start": dt.datetime(2026, 11, 25, tzinfo=dt.UTC),
        "data_interval_end": dt.datetime(2026, 11, 26, tzinfo=dt.UTC),
        "exception": error,
        "params": {},
    }


def test_off_by_default(receiver: Receiver, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(CONN_ID_ENV, raising=False)
    FailureNotifier().notify(failed_context(RuntimeError("boom")))  # type: ignore[arg-type]
    assert receiver.messages == []


def test_a_failure_posts_dag_task_interval_cause_and_log_link(
    receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(CONN_ID_ENV, CONN_ID)
    error = ValueError("credit_risk.observations: batch rejected: 40 of 300 rows failed\nmore detail below")
    FailureNotifier().notify(failed_context(error))  # type: ignore[arg-type]

    assert receiver.paths == ["/hooks/oncall"]
    (message,) = receiver.messages
    assert message["dag_id"] == "credit_risk__feature_ingestion"
    assert message["task_id"] == "validate_observations"
    assert message["interval"] == "2026-11-25T00:00:00+00:00 .. 2026-11-26T00:00:00+00:00"
    assert message["cause"] == "ValueError: credit_risk.observations: batch rejected: 40 of 300 rows failed"
    assert message["log_url"].endswith("/tasks/validate_observations")
    assert message["try_number"] == 3
    first, cause, log = message["text"].splitlines()
    assert first.startswith("mlloop: credit_risk__feature_ingestion.validate_observations FAILED (interval 2026-11-25")
    assert cause.startswith("Cause: ValueError: credit_risk.observations")
    assert log == f"Log: {message['log_url']}"


def test_slack_format_sends_the_text_only(receiver: Receiver, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(CONN_ID_ENV, CONN_ID)
    monkeypatch.setenv(FORMAT_ENV, "slack")
    FailureNotifier().notify(failed_context(RuntimeError("boom")))  # type: ignore[arg-type]
    (message,) = receiver.messages
    assert list(message) == ["text"] and "Cause: RuntimeError: boom" in message["text"]


def test_an_unreachable_receiver_is_a_warning_not_a_second_failure(
    monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    with Receiver() as closed:
        url = closed.url
    monkeypatch.setenv(f"AIRFLOW_CONN_{CONN_ID.upper()}", json.dumps({"conn_type": "http", "host": url}))
    monkeypatch.setenv(CONN_ID_ENV, CONN_ID)
    FailureNotifier().notify(failed_context(RuntimeError("boom")))  # type: ignore[arg-type]
    out, err = capfd.readouterr()
    assert "mlloop alert not sent through connection 'mlloop_alerts_test'" in out + err


def task_log(notify: Any) -> str:
    """What the task log holds for the log events ``notify()`` emits: each event goes through Airflow's
    secrets masker as it is emitted (``airflow.sdk.log.mask_logs``, the processor that writes task
    logs), so only what was masked by then is hidden."""
    import structlog
    from airflow.sdk.log import mask_logs

    with structlog.testing.capture_logs(processors=[mask_logs]) as events:
        notify()
    assert events, "nothing was logged"
    return "\n".join(" ".join(str(value) for value in event.values()) for event in events)


def test_a_failed_delivery_leaves_no_webhook_token_in_the_task_log(monkeypatch: pytest.MonkeyPatch) -> None:
    """The HTTP hook's retry warning and the notifier's own quote the URL; a webhook URL is a credential."""
    token = f"tok{uuid.uuid4().hex}"
    with Receiver() as closed:
        url = closed.url.replace("/hooks/oncall", f"/services/T0000/B0000/{token}")
    monkeypatch.setenv(f"AIRFLOW_CONN_{CONN_ID.upper()}", json.dumps({"conn_type": "http", "host": url}))
    monkeypatch.setenv(CONN_ID_ENV, CONN_ID)

    log = task_log(lambda: FailureNotifier().notify(failed_context(RuntimeError("boom"))))  # type: ignore[arg-type]

    assert "mlloop alert not sent through connection 'mlloop_alerts_test'" in log
    assert token not in log and "/services/T0000/B0000" not in log, log


def test_the_alert_and_its_log_carry_no_credential(receiver: Receiver, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(CONN_ID_ENV, CONN_ID)
    password = "hunter2-db-pass"
    error = ConnectionError(f"could not connect to postgresql://mlloop:{password}@postgres:5432/airflow?sslmode=x")
    log = task_log(lambda: FailureNotifier().notify(failed_context(error)))  # type: ignore[arg-type]

    (message,) = receiver.messages
    assert password not in json.dumps(message) and password not in log
    assert message["cause"] == "ConnectionError: could not connect to postgresql://***@postgres:5432/airflow?sslmode=x"


def test_manual_runs_name_their_day_and_long_causes_are_cut() -> None:
    context = failed_context(RuntimeError("x" * 1000))
    context.update(data_interval_start=None, data_interval_end=None, params={"day": "2026-11-20"})
    alert = FailureAlert.from_context(context)
    assert alert.interval == "day 2026-11-20"
    assert len(alert.cause) == 300 and alert.cause.endswith("…")
    assert one_line_cause(None).startswith("unknown")


@pytest.mark.integration
def test_a_task_failing_in_a_dag_run_alerts_through_the_connection(
    airflow_db: Any, mlloop_home: Any, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The rollback DAG with nothing to roll back to fails (a refused rollback is a fault): the
    notifier that every mlloop DAG carries sends exactly one alert for it."""
    from airflow.dag_processing.dagbag import DagBag

    monkeypatch.setenv(CONN_ID_ENV, CONN_ID)
    bag = DagBag(dag_folder=str(Path(__file__).resolve().parents[2] / "dags" / "rollback.py"))
    run = bag.dags["credit_risk__rollback"].test(run_conf={"reason": "test"})
    assert run.state == "failed"

    (message,) = receiver.messages
    assert (message["dag_id"], message["task_id"]) == ("credit_risk__rollback", "rollback_champion")
    assert message["cause"].startswith("AirflowFailException: rollback refused")
    assert "/dags/credit_risk__rollback/runs/" in message["log_url"]
    assert message["interval"].startswith("no data interval")
