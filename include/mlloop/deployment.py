"""What a deployment with servers checks and sets up before the loop runs on it.

Two deployments have servers other people can reach: ``docker-compose.yaml`` and its process twin
``mlloop_cli.scaled_local``. Both run these steps, so what the tests prove on the processes holds
for the containers:

* :func:`password_problems` refuses placeholder and short passwords before anything uses them
  (``python -m mlloop.deployment check-passwords NAME...``: ``airflow-init``'s first step). A
  ``.env`` copied from ``.env.example`` unchanged must not start a deployment whose passwords
  everybody knows.
* :func:`provision_mlflow_accounts` gives MLflow's basic-auth app (``mlflow server --app-name
  basic-auth``) the accounts the loop needs (``python -m mlloop.deployment mlflow-accounts``):
  a service account for Airflow's tasks that may create and change experiments, runs, models,
  versions and aliases, and a read-only account for people. The server's ``default_permission``
  is ``READ``, so the read-only account needs no grant; the admin is created by MLflow itself
  from ``MLFLOW_AUTH_ADMIN_USERNAME`` / ``MLFLOW_AUTH_ADMIN_PASSWORD``.

Passwords are never printed, logged or put in an error message: only the variables' names are.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

MIN_PASSWORD_CHARS = 16
PLACEHOLDER_MARKERS = ("change-me", "changeme", "change_me", "placeholder", "example", "password", "xxxx")
GENERATE_HINT = 'python -c "import secrets; print(secrets.token_urlsafe(24))"'

# MLflow basic-auth REST endpoints (mlflow/server/auth/routes.py).
CREATE_USER = "/api/2.0/mlflow/users/create"
UPDATE_PASSWORD = "/api/2.0/mlflow/users/update-password"
GRANT = "/api/3.0/mlflow/users/permissions/grant"
SERVICE_GRANTS = (("experiment", "MANAGE"), ("registered_model", "MANAGE"))
"""The service account's grants on every (``*``) resource of each type: the loop creates
experiments, runs, models and versions, sets and moves aliases, deletes superseded drift runs and
stale version tags (deleting needs MANAGE in MLflow's permission model)."""


def password_problems(env: Mapping[str, str], names: Iterable[str]) -> list[str]:
    """One line per variable whose password is missing, a placeholder or shorter than
    :data:`MIN_PASSWORD_CHARS`, naming the variable (never the value)."""
    problems = []
    for name in names:
        value = env.get(name, "")
        lowered = value.lower()
        marker = next((m for m in PLACEHOLDER_MARKERS if m in lowered), None)
        if not value:
            problems.append(f"{name} is not set")
        elif marker is not None:
            problems.append(f"{name} is a placeholder (it contains {marker!r})")
        elif len(value) < MIN_PASSWORD_CHARS:
            problems.append(f"{name} is too short ({len(value)} characters; at least {MIN_PASSWORD_CHARS})")
    return problems


@dataclass(frozen=True)
class Account:
    username: str
    password: str

    def __repr__(self) -> str:  # never the password, whoever prints this
        return f"Account({self.username!r}, password=***)"


class ProvisioningError(RuntimeError):
    """MLflow's auth app refused to set up an account (the message names the account and status)."""


def provision_mlflow_accounts(
    url: str, admin: Account, service: Account, reader: Account, timeout: float = 120
) -> None:
    """Create (or update the password of) the service and read-only accounts, and grant the service
    account :data:`SERVICE_GRANTS`. Idempotent: a re-run after a password change in ``.env`` applies it."""
    import requests

    session = requests.Session()
    session.auth = (admin.username, admin.password)
    base = url.rstrip("/")
    _wait_until_up(session, base, timeout)
    for account in (service, reader):
        created = session.post(
            f"{base}{CREATE_USER}", json={"username": account.username, "password": account.password}, timeout=30
        )
        if created.status_code in (400, 409) and "RESOURCE_ALREADY_EXISTS" in created.text:
            created = session.patch(
                f"{base}{UPDATE_PASSWORD}",
                json={"username": account.username, "password": account.password},
                timeout=30,
            )
        _check(created, f"creating MLflow account {account.username!r}")
    for resource_type, permission in SERVICE_GRANTS:
        granted = session.post(
            f"{base}{GRANT}",
            json={
                "username": service.username,
                "resource_type": resource_type,
                "resource_id": "*",
                "permission": permission,
            },
            timeout=30,
        )
        if granted.status_code in (400, 409) and "RESOURCE_ALREADY_EXISTS" in granted.text:
            continue
        _check(granted, f"granting {permission} on every {resource_type} to {service.username!r}")


def _wait_until_up(session: object, base: str, timeout: float) -> None:
    import requests

    deadline = time.monotonic() + timeout
    while True:
        try:
            if requests.get(f"{base}/health", timeout=5).status_code == 200:
                return
        except requests.RequestException:
            pass
        if time.monotonic() > deadline:
            raise ProvisioningError(f"MLflow did not answer at {base}/health within {timeout:.0f} s")
        time.sleep(1)


def _check(response: object, what: str) -> None:
    status = getattr(response, "status_code", 0)
    if status >= 300:
        text = str(getattr(response, "text", ""))[:300]
        raise ProvisioningError(f"{what}: MLflow answered {status}: {text}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mlloop.deployment", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    check = commands.add_parser("check-passwords", help="refuse placeholder or short passwords (by variable name)")
    check.add_argument("names", nargs="+")
    accounts = commands.add_parser(
        "mlflow-accounts",
        help="create MLflow's service and read-only accounts from MLFLOW_* variables (see docker-compose.yaml)",
    )
    accounts.add_argument("--url", default=os.environ.get("MLFLOW_TRACKING_URI", ""))
    args = parser.parse_args(argv)
    if args.command == "check-passwords":
        problems = password_problems(os.environ, args.names)
        if problems:
            print(
                "Refusing to start: " + "; ".join(problems) + f". Set each in .env (generate one: {GENERATE_HINT}).",
                file=sys.stderr,
            )
            return 1
        print(f"passwords checked: {', '.join(args.names)}")
        return 0
    env = os.environ
    provision_mlflow_accounts(
        args.url,
        admin=Account(env["MLFLOW_AUTH_ADMIN_USERNAME"], env["MLFLOW_AUTH_ADMIN_PASSWORD"]),
        service=Account(env["MLFLOW_TRACKING_USERNAME"], env["MLFLOW_TRACKING_PASSWORD"]),
        reader=Account(env["MLFLOW_READER_USERNAME"], env["MLFLOW_READER_PASSWORD"]),
    )
    print(f"MLflow accounts ready: {env['MLFLOW_TRACKING_USERNAME']} (service), {env['MLFLOW_READER_USERNAME']} (read)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
