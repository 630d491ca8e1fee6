"""Tell a person when the promotion gate finds the serving champion itself below the floor.

That is news whatever the gate decides (the champion decays on fresh data), but not a fault: the
evaluate task stays green. The alert goes through the same channel as failure alerts
(:mod:`mlloop_airflow.notifiers.failure`: the webhook connection named by ``MLLOOP_ALERT_CONN_ID``,
format ``MLLOOP_ALERT_FORMAT``), and its sending code is reused from there. Off when no connection
is configured; a failing send is a warning, never a task failure.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from mlloop.settings import get_settings
from mlloop_airflow.notifiers.failure import CONN_ID_ENV, FORMAT_ENV, _post


@dataclass(frozen=True)
class GateAlert:
    """One gate decision that a person should hear about, with what the gate did about it."""

    dag_id: str
    task_id: str
    run_id: str
    model: str
    champion_version: str | None
    challenger_version: str
    outcome: str
    alerts: tuple[str, ...]
    log_url: str = ""
    kind: str = "champion_fails_floor"

    @property
    def text(self) -> str:
        return (
            f"mlloop: {self.model} champion v{self.champion_version} fails the promotion floor "
            f"({self.dag_id}.{self.task_id}, run {self.run_id})\n"
            + "\n".join(f"Alert: {alert}" for alert in self.alerts)
            + f"\nDecision: {self.outcome}"
            + (f"\nLog: {self.log_url}" if self.log_url else "")
        )

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "alerts": list(self.alerts), "text": self.text}


def send_gate_alert(alert: GateAlert, log: Any) -> bool:
    """POST ``alert`` to the failure-alert webhook; False (and a log line saying why) if not sent."""
    conn_id = get_settings().alert_conn_id
    if not conn_id:
        log.info("mlloop alert not sent: no alert connection configured (%s is unset)", CONN_ID_ENV)
        return False
    fmt = (get_settings().alert_format or "json").strip().lower()
    if fmt not in ("json", "slack"):
        log.warning("mlloop alert not sent: %s=%r is not one of ['json', 'slack']", FORMAT_ENV, fmt)
        return False
    try:
        _post(conn_id, {"text": alert.text} if fmt == "slack" else alert.as_dict())
    except Exception as exc:
        log.warning(
            "mlloop alert not sent through connection %r (%s: %s); check the connection's host URL and that the "
            "receiver is reachable from the workers. The alert was:\n%s",
            conn_id,
            type(exc).__name__,
            exc,
            alert.text,
        )
        return False
    log.info("mlloop alert sent through connection %r: %s", conn_id, alert.text.splitlines()[0])
    return True
