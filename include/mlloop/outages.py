"""Outages of the services the loop depends on, told apart from other errors and explained.

When MLflow, the Feast online store or the storage root is down, the libraries raise their own
errors (an ``MlflowException`` quoting a urllib3 retry, a redis ``ConnectionError``, a botocore
endpoint error) from deep inside a task. :func:`explain_outage` recognises them and says, in one
message, which service is down, where it was expected (credentials redacted) and what to do. The
Airflow layer raises that as :class:`ServiceUnavailable`: a transient fault, retried with backoff.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator

from mlloop.settings import Settings, get_settings
from mlloop.storage import StorageUnavailable

RETRY_ADVICE = (
    "The task retries with backoff by itself; if every try fails, clear it once the service is back "
    "(rerunning is safe: every write replaces its partition)."
)


class ServiceUnavailable(RuntimeError):
    """A service the loop depends on is down or unreachable (transient: the task retries)."""


def redact(url: str) -> str:
    """``scheme://user:secret@host`` -> ``scheme://***@host``; ``password=...`` -> ``password=***``."""
    url = re.sub(r"(?<=://)[^/@\s]+@", "***@", url)
    return re.sub(r"(?i)(password|passwd|secret|token)=[^,;&\s]+", r"\1=***", url)


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def _type_name(exc: BaseException) -> str:
    return f"{type(exc).__module__}.{type(exc).__qualname__}"


_UNREACHABLE = (
    "Max retries exceeded",
    "Connection refused",
    "Failed to establish a new connection",
    "Read timed out",
    "timed out",
    "RemoteDisconnected",
    "Connection aborted",
)


def _is_mlflow_outage(exc: BaseException) -> bool:
    text = str(exc)
    if _type_name(exc).startswith("mlflow.") and text.startswith("API request to"):
        return any(marker in text for marker in _UNREACHABLE) or bool(re.search(r"error code 5\d\d", text))
    return False


def _online_store(settings: Settings) -> str:
    try:
        config = json.loads(settings.feast_online_store)
    except ValueError:
        return "the configured one"
    where = config.get("connection_string") or config.get("path") or config.get("host") or ""
    return f"{config.get('type', '?')} at {redact(str(where))}" if where else str(config.get("type", "?"))


def explain_outage(exc: BaseException, settings: Settings | None = None) -> str | None:
    """An actionable message if ``exc`` (or an exception it was raised from) is an outage, else None."""
    settings = settings or get_settings()
    for error in _chain(exc):
        name = _type_name(error)
        if isinstance(error, StorageUnavailable):
            return str(error)
        if _is_mlflow_outage(error):
            return (
                f"MLflow is unreachable at {redact(settings.mlflow_tracking_uri)} ({_short(error)}). Check that "
                "the tracking server runs and that MLFLOW_TRACKING_URI points at it. " + RETRY_ADVICE
            )
        if name.startswith("redis.") and ("ConnectionError" in name or "TimeoutError" in name):
            return (
                f"The Feast online store ({_online_store(settings)}) is unreachable ({_short(error)}). Check that "
                "Redis runs and that MLLOOP_FEAST_ONLINE_STORE points at it. " + RETRY_ADVICE
            )
        if name.startswith(("botocore.", "aiobotocore.", "aiohttp.")) and (
            "Endpoint" in name or "Connect" in name or "Credential" in name
        ):
            return (
                f"The storage root {redact(settings.storage_root)} is unreachable ({_short(error)}). Check the "
                "object store endpoint and the credentials of MLLOOP_STORAGE_CONN_ID. " + RETRY_ADVICE
            )
    return None


def _short(exc: BaseException) -> str:
    text = redact(" ".join(str(exc).split()))
    for marker in ("Connection refused", "timed out", "Name or service not known"):
        if marker in text:
            return f"{type(exc).__name__}: {marker}"
    return f"{type(exc).__name__}: {text[:200]}"
