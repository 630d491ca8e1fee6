"""Tell a person when an mlloop task fails: DAG, task, interval, the one-line cause, a link to the log.

Every mlloop DAG sets :class:`FailureNotifier` as ``on_failure_callback`` (``dag_defaults``); it runs in
the task's own process once the task has failed for good (retries exhausted, or a data fault that
is not retried). It is **off** unless ``MLLOOP_ALERT_CONN_ID`` names an Airflow HTTP connection::

    MLLOOP_ALERT_CONN_ID=mlloop_alerts
    AIRFLOW_CONN_MLLOOP_ALERTS='{"conn_type": "http", "host": "https://hooks.slack.com/services/T0/B0/XYZ"}'
    MLLOOP_ALERT_FORMAT=slack          # or "json" (default): every field plus "text"

The message is POSTed as JSON to the connection's URL (its ``host``; headers and auth from the
connection as Airflow's ``HttpHook`` applies them). Other transports (email through an SMTP
connection, a pager API) plug in as another :class:`Transport`. A failing alert never hides the
task's own failure: it is logged as a warning with what to check.

A webhook URL is a credential (whoever has it may post): when the connection is read, the URL, its
path and its token are registered with Airflow's secrets masker, so no task log line shows them
(the HTTP hook's retry warning and the notifier's own quote the error, which quotes the URL). The
alert's cause goes through the same redaction as the outage messages (:func:`mlloop.outages.redact`):
a ``postgresql://user:password@...`` in an exception is sent as ``postgresql://***@...``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlsplit

from airflow.sdk import BaseNotifier

from mlloop.settings import get_settings

if TYPE_CHECKING:
    from airflow.sdk import Context

CONN_ID_ENV = "MLLOOP_ALERT_CONN_ID"
FORMAT_ENV = "MLLOOP_ALERT_FORMAT"
MAX_CAUSE_CHARS = 300
MIN_TOKEN_CHARS = 6


@dataclass(frozen=True)
class FailureAlert:
    """What the on-call needs to start: where it failed, for which data, why, and where to read more."""

    dag_id: str
    task_id: str
    run_id: str
    interval: str
    cause: str
    log_url: str
    try_number: int | None = None
    map_index: int | None = None

    @property
    def text(self) -> str:
        task = self.task_id + (f"[{self.map_index}]" if self.map_index not in (None, -1) else "")
        attempt = f", try {self.try_number}" if self.try_number else ""
        return (
            f"mlloop: {self.dag_id}.{task} FAILED (interval {self.interval}{attempt})\n"
            f"Cause: {self.cause}\n"
            f"Log: {self.log_url}"
        )

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "text": self.text}

    @classmethod
    def from_context(cls, context: Context | dict[str, Any]) -> FailureAlert:
        ti: Any = context.get("ti") or context.get("task_instance")
        dag = context.get("dag")
        return cls(
            dag_id=str(getattr(ti, "dag_id", None) or getattr(dag, "dag_id", "?")),
            task_id=str(getattr(ti, "task_id", "?")),
            run_id=str(context.get("run_id") or getattr(ti, "run_id", "?")),
            interval=describe_interval(context),
            cause=one_line_cause(context.get("exception")),
            log_url=str(getattr(ti, "log_url", "") or ""),
            try_number=getattr(ti, "try_number", None),
            map_index=getattr(ti, "map_index", None),
        )


def describe_interval(context: Context | dict[str, Any]) -> str:
    """The data interval of the run, else its ``day`` Param, else that it had none (a manual run)."""
    start, end = context.get("data_interval_start"), context.get("data_interval_end")
    if start is not None and end is not None and start != end:
        return f"{start.isoformat()} .. {end.isoformat()}"
    params: Any = context.get("params") or {}
    day = params.get("day") if hasattr(params, "get") else None
    if day not in (None, "", "None"):
        return f"day {day}"
    run: Any = context.get("dag_run")
    after = getattr(run, "run_after", None)
    return f"no data interval (run after {after.isoformat()})" if after else "no data interval"


def one_line_cause(error: BaseException | str | None) -> str:
    """``ExceptionType: first line of the message``, credentials redacted, shortened; the full text
    is in the log."""
    from mlloop.outages import redact

    if error is None:
        return "unknown (no exception was recorded; see the log)"
    if isinstance(error, BaseException):
        message = str(error).strip()
        first = message.splitlines()[0] if message else ""
        text = f"{type(error).__name__}: {first}" if first else type(error).__name__
    else:
        text = str(error).strip().splitlines()[0] if str(error).strip() else "unknown"
    text = redact(text)
    return text if len(text) <= MAX_CAUSE_CHARS else text[: MAX_CAUSE_CHARS - 1] + "…"


Transport = Callable[[FailureAlert, str], None]
"""Sends an alert through the connection with the given id."""


def webhook_secrets(url: str) -> list[str]:
    """What of a webhook URL lets whoever reads it post: the URL, its path (what ``requests`` quotes
    in a connection error), its last path segment (Slack's and most receivers' token), query values
    and a password in it."""
    parts = urlsplit(url.strip())
    found = [url.strip()]
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    if len(path) >= MIN_TOKEN_CHARS:
        found.append(path)
    last = parts.path.rstrip("/").rsplit("/", 1)[-1]
    if len(last) >= MIN_TOKEN_CHARS:
        found.append(last)
    found += [value for _, value in parse_qsl(parts.query) if len(value) >= MIN_TOKEN_CHARS]
    if parts.password:
        found.append(parts.password)
    return found


def mask_webhook(conn_id: str) -> list[str]:
    """Read the connection and register its URL's secrets (:func:`webhook_secrets`) with Airflow's
    secrets masker before anything may log them (the masker hides them in every later log line of
    the task, the HTTP hook's and the notifier's own)."""
    from airflow.sdk import BaseHook
    from airflow.sdk.log import mask_secret

    connection = BaseHook.get_connection(conn_id)
    secrets = webhook_secrets(str(connection.host or ""))
    for secret in secrets:
        mask_secret(secret)
    return secrets


def _post(conn_id: str, payload: dict[str, Any]) -> None:
    from airflow.providers.http.hooks.http import HttpHook

    mask_webhook(conn_id)
    HttpHook(method="POST", http_conn_id=conn_id).run(
        endpoint=None, json=payload, headers={"Content-Type": "application/json"}, extra_options={"timeout": 10}
    )


def webhook_json(alert: FailureAlert, conn_id: str) -> None:
    """Every field of the alert plus ``text`` (Slack-compatible, readable by any webhook receiver)."""
    _post(conn_id, alert.as_dict())


def slack(alert: FailureAlert, conn_id: str) -> None:
    """A Slack incoming webhook: the text only."""
    _post(conn_id, {"text": alert.text})


TRANSPORTS: dict[str, Transport] = {"json": webhook_json, "slack": slack}


class FailureNotifier(BaseNotifier):
    """Send a :class:`FailureAlert` when a task fails (off unless a connection is configured).

    :param conn_id: Airflow connection to send through; default ``$MLLOOP_ALERT_CONN_ID``; unset: off.
    :param message_format: ``json`` or ``slack``; default ``$MLLOOP_ALERT_FORMAT``, else ``json``.
    """

    def __init__(self, *, conn_id: str | None = None, message_format: str | None = None) -> None:
        super().__init__()
        self.conn_id = conn_id
        self.message_format = message_format

    def notify(self, context: Context) -> None:
        conn_id = self.conn_id or get_settings().alert_conn_id
        if not conn_id:
            return
        fmt = (self.message_format or get_settings().alert_format or "json").strip().lower()
        alert = FailureAlert.from_context(context)
        transport = TRANSPORTS.get(fmt)
        if transport is None:
            self.log.warning("mlloop alert not sent: %s=%r is not one of %s", FORMAT_ENV, fmt, sorted(TRANSPORTS))
            return
        try:
            transport(alert, conn_id)
        except Exception as exc:
            from mlloop.outages import redact

            self.log.warning(
                "mlloop alert not sent through connection %r (%s: %s); check the connection's host URL and "
                "that the receiver is reachable from the workers. The alert was:\n%s",
                conn_id,
                type(exc).__name__,
                redact(str(exc)),
                alert.text,
            )
            return
        self.log.info("mlloop alert sent through connection %r: %s", conn_id, alert.text.splitlines()[0])
