"""docker-compose.yaml: valid against the Compose specification, and the topology the README promises.

There is no Docker engine where these tests run, so the file is checked the way ``docker compose
config`` starts: variables are interpolated from ``.env.example`` (keys a user must generate get
stand-ins), and the result is validated against the Compose specification's JSON schema, vendored
by check-jsonschema (a dev dependency: nothing is downloaded). The rest checks what the schema
cannot: start order, health checks, credentials only from .env, and that compose configures the
loop with the same variables as the process topology the services test runs (mlloop_cli.scaled_local).
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yaml"
AIRFLOW_COMPONENTS = {
    "airflow-apiserver": "api-server",
    "airflow-scheduler": "scheduler",
    "airflow-dag-processor": "dag-processor",
    "airflow-triggerer": "triggerer",
    "airflow-worker": "celery",
}
ONE_SHOT = {"airflow-init", "minio-init", "mlflow-init"}
LOOPBACK = {"127.0.0.1", "::1", "[::1]", "localhost"}


class InterpolationError(ValueError):
    pass


def interpolate(text: str, env: dict[str, str]) -> str:
    """Compose's variable syntax: $$, $VAR, ${VAR}, ${VAR:-default}, ${VAR-default}, ${VAR:?error},
    ${VAR?error}, ${VAR:+alternative}; defaults may hold variables themselves."""
    out, i = [], 0
    while i < len(text):
        if not text.startswith("$", i):
            out.append(text[i])
            i += 1
        elif text.startswith("$$", i):
            out.append("$")
            i += 2
        elif text.startswith("${", i):
            depth, j = 1, i + 2
            while j < len(text) and depth:
                depth += {"{": 1, "}": -1}.get(text[j], 0) if text[j - 1] == "$" or text[j] == "}" else 0
                j += 1
            if depth:
                raise InterpolationError(f"unclosed ${{ at {text[i : i + 40]!r}")
            out.append(_expand(text[i + 2 : j - 1], env))
            i = j
        else:
            name = re.match(r"[A-Za-z_][A-Za-z0-9_]*", text[i + 1 :])
            out.append(env.get(name.group(0), "") if name else "$")
            i += 1 + (len(name.group(0)) if name else 0)
    return "".join(out)


def _expand(expression: str, env: dict[str, str]) -> str:
    found = re.match(r"^([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?+])(.*))?$", expression, re.S)
    if not found:
        raise InterpolationError(f"invalid interpolation ${{{expression}}}")
    name, operator, argument = found.group(1), found.group(2), interpolate(found.group(3) or "", env)
    value = env.get(name)
    unset_or_empty = value is None or (value == "" and operator is not None and operator.startswith(":"))
    if operator in (":-", "-"):
        return argument if unset_or_empty else str(value)
    if operator in (":?", "?"):
        if unset_or_empty:
            raise InterpolationError(f"required variable {name} is missing: {argument}")
        return str(value)
    if operator in (":+", "+"):
        return "" if unset_or_empty else argument
    return value or ""


def example_env() -> dict[str, str]:
    """``.env.example``'s uncommented assignments; keys left empty for the user to generate get
    stand-ins, as a user's .env would have them."""
    env = {}
    for line in (ROOT / ".env.example").read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#") and "=" in line:
            name, _, value = line.partition("=")
            env[name.strip()] = value.strip() or f"generated-{name.strip().lower()}"
    return env


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("compose") / "docker-compose.rendered.yaml"
    path.write_text(interpolate(COMPOSE.read_text(), example_env()))
    return path


@pytest.fixture(scope="module")
def compose(rendered: Path) -> dict[str, Any]:
    return yaml.safe_load(rendered.read_text())  # type: ignore[no-any-return]


def test_interpolation_follows_compose_rules() -> None:
    env = {"A": "a", "EMPTY": ""}
    assert interpolate("$$A ${A} $A ${B:-x} ${EMPTY:-y} ${EMPTY-z} ${A:+w} ${B:-${A}}", env) == "$A a a x y  w a"
    with pytest.raises(InterpolationError, match="B is missing: set B"):
        interpolate("${B:?set B}", env)


def test_the_file_validates_against_the_compose_specification(rendered: Path) -> None:
    checker = Path(sys.executable).parent / "check-jsonschema"
    result = subprocess.run(
        [str(checker), "--builtin-schema", "vendor.compose-spec", str(rendered)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_schema_check_does_reject_an_invalid_file(tmp_path: Path) -> None:
    bad = tmp_path / "docker-compose.yaml"
    bad.write_text("services:\n  web:\n    image: nginx\n    healthcheck: {test: 1, intervall: 5s}\n")
    checker = Path(sys.executable).parent / "check-jsonschema"
    result = subprocess.run(
        [str(checker), "--builtin-schema", "vendor.compose-spec", str(bad)], capture_output=True, text=True, check=False
    )
    assert result.returncode != 0


def test_a_missing_credential_stops_compose_before_anything_starts() -> None:
    env = example_env()
    env.pop("POSTGRES_PASSWORD")
    with pytest.raises(InterpolationError, match="POSTGRES_PASSWORD"):
        interpolate(COMPOSE.read_text(), env)


def test_credentials_only_come_from_the_env_file() -> None:
    raw = yaml.safe_load(COMPOSE.read_text())
    secret_names = re.compile(r"(PASSWORD|SECRET|FERNET|TOKEN)", re.I)
    for name, service in raw["services"].items():
        environment = service.get("environment") or {}
        for key, value in environment.items():
            if secret_names.search(key) and not key.endswith("_FILE"):
                assert "${" in str(value), f"{name}.{key} is hard-coded; take it from .env"
    for key in ("POSTGRES_PASSWORD", "MINIO_ROOT_PASSWORD", "AIRFLOW_FERNET_KEY", "AIRFLOW_JWT_SECRET"):
        assert key in example_env(), f".env.example does not document {key}"


def test_every_component_is_its_own_service_with_the_celery_executor(compose: dict[str, Any]) -> None:
    services = compose["services"]
    for service, command in AIRFLOW_COMPONENTS.items():
        assert services[service]["command"][0] == command, service
        assert services[service]["environment"]["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
        assert services[service]["image"] == services["airflow-init"]["image"]
    assert {"postgres", "redis", "minio", "mlflow"} <= set(services)
    worker = services["airflow-worker"]
    assert "container_name" not in worker and "ports" not in worker, "workers must scale with --scale"


def test_start_order_and_health_checks_are_declared(compose: dict[str, Any]) -> None:
    services = compose["services"]
    for name, service in services.items():
        if name not in ONE_SHOT:
            assert "healthcheck" in service, f"{name} has no health check"
        for dependency, how in (service.get("depends_on") or {}).items():
            assert dependency in services, f"{name} depends on unknown {dependency}"
            expected = "service_completed_successfully" if dependency in ONE_SHOT else "service_healthy"
            assert how["condition"] == expected, (name, dependency)
    for name in AIRFLOW_COMPONENTS:
        assert services[name]["depends_on"]["postgres"]["condition"] == "service_healthy"
        needs = services[name]["depends_on"]
        assert "airflow-init" in needs or "airflow-apiserver" in needs, f"{name} may start before migration"
    assert services["mlflow"]["depends_on"]["minio-init"]["condition"] == "service_completed_successfully"


def test_init_migrates_creates_the_connection_and_pools_and_deploys_feast(compose: dict[str, Any]) -> None:
    script = compose["services"]["airflow-init"]["command"][0]
    assert "airflow db migrate" in script
    assert "airflow connections add mlloop_s3" in script
    assert "airflow pools import" in script and "mlloop_airflow.pools import POOLS" in script
    assert "feast apply" in script
    assert "s3.create_bucket(Bucket=bucket)" in compose["services"]["minio-init"]["command"][0]


def test_mlflow_keeps_runs_in_postgres_and_artifacts_in_the_bucket(compose: dict[str, Any]) -> None:
    command = compose["services"]["mlflow"]["command"]
    backend = command[command.index("--backend-store-uri") + 1]
    artifacts = command[command.index("--artifacts-destination") + 1]
    assert backend.startswith("postgresql") and backend.endswith("@postgres:5432/mlflow")
    assert artifacts.startswith("s3://")
    assert "CREATE DATABASE mlflow" in compose["configs"]["postgres-init"]["content"]


def test_compose_configures_the_loop_like_the_process_topology(compose: dict[str, Any], tmp_path: Path) -> None:
    """Embedded vs scaled is configuration only, and both scaled topologies use the same knobs."""
    from mlloop_cli.scaled_local import ScaledLocalAirflow

    topology = ScaledLocalAirflow(tmp_path / "scaled")  # configured, not started
    topology.state.redis_dbs = {"broker": 1, "feast": 2}
    local = topology.deployment_env()
    env = compose["services"]["airflow-worker"]["environment"]
    knobs = {k for k in local if k.startswith(("MLLOOP_", "AWS_", "MLFLOW_", "AIRFLOW__CORE__EXECUTOR"))}
    assert knobs <= set(env), sorted(knobs - set(env))
    for key in ("MLLOOP_FEAST_OFFLINE_STORE", "MLLOOP_STORAGE_CONN_ID", "AIRFLOW__CORE__EXECUTOR"):
        assert env[key] == local[key], key
    assert yaml.safe_load(env["MLLOOP_FEAST_ONLINE_STORE"])["type"] == "redis"
    assert env["MLLOOP_STORAGE_ROOT"].startswith("s3://")


def test_workers_preload_the_same_libraries_as_the_process_topologies(compose: dict[str, Any]) -> None:
    """The compose file cannot import the list, so it repeats it; a library missing there costs each
    task on a worker its import again (0.5-2 s, bench B8)."""
    from mlloop_airflow.preload import DEFAULT_MODULES

    env = compose["services"]["airflow-worker"]["environment"]
    assert env["MLLOOP_PRELOAD_MODULES"].split(",") == DEFAULT_MODULES.split(",")


def published_to_every_interface(compose: dict[str, Any]) -> list[str]:
    """Each published port not bound to a loopback address (``"8080:8080"``, ``0.0.0.0``, a long
    syntax entry without ``host_ip``): reachable by anyone who reaches the host."""
    found = []
    for name, service in compose["services"].items():
        for port in service.get("ports") or []:
            if isinstance(port, dict):
                host_ip = str(port.get("host_ip", "")) if port.get("published") is not None else "127.0.0.1"
            else:
                spec = str(port).rsplit("/", 1)[0]
                parts = (
                    spec.rsplit(":", 2)
                    if not spec.startswith("[")
                    else [spec[: spec.index("]") + 1], *spec[spec.index("]") + 2 :].split(":")]
                )
                host_ip = parts[0] if len(parts) == 3 else ""
            if host_ip not in LOOPBACK:
                found.append(f"{name}: {port}")
    return found


def test_nothing_is_published_to_every_interface(compose: dict[str, Any]) -> None:
    assert published_to_every_interface(compose) == []


def test_the_port_check_does_catch_ports_published_to_every_interface() -> None:
    bad = {
        "services": {
            "a": {"ports": ["8080:8080"]},
            "b": {"ports": ["0.0.0.0:5000:5000/tcp"]},
            "c": {"ports": [{"target": 9001, "published": 9001}]},
            "d": {
                "ports": [
                    "127.0.0.1:8080:8080",
                    "[::1]:5000:5000",
                    {"target": 1, "published": 1, "host_ip": "127.0.0.1"},
                ]
            },
            "e": {"ports": ["9000"]},
        }
    }
    assert published_to_every_interface(bad) == [
        "a: 8080:8080",
        "b: 0.0.0.0:5000:5000/tcp",
        "c: {'target': 9001, 'published': 9001}",
        "e: 9000",
    ]


def test_only_the_uis_are_published_and_the_minio_console_is_opt_in(compose: dict[str, Any]) -> None:
    services = compose["services"]
    published = {name for name, service in services.items() if service.get("ports") and not service.get("profiles")}
    assert published == {"airflow-apiserver", "mlflow"}
    assert "ports" not in services["minio"]
    assert services["minio-console"]["profiles"] == ["minio-console"]


def password_check(compose: dict[str, Any]) -> tuple[list[str], dict[str, str]]:
    """airflow-init's password check, as a command for this Python, and the environment compose gives it."""
    script = compose["services"]["airflow-init"]["command"][0]
    line = next(line for line in script.splitlines() if "mlloop.deployment check-passwords" in line)
    assert script.strip().splitlines()[0] == line, "the check must run before anything else"
    command = line.split()
    assert command[0] == "python"
    environment = {k: str(v) for k, v in compose["services"]["airflow-init"]["environment"].items()}
    return [sys.executable, *command[1:]], environment


def run_check(command: list[str], environment: dict[str, str]) -> subprocess.CompletedProcess[str]:
    import os

    env = {**os.environ, "PYTHONPATH": str(ROOT / "include"), **environment}
    return subprocess.run(command, env=env, capture_output=True, text=True, check=False)


def strong(name: str) -> str:
    return f"Qx7vT2mK9pLw-{len(name)}-{name[:2]}"


def test_airflow_init_refuses_the_example_passwords_and_names_each(compose: dict[str, Any]) -> None:
    command, environment = password_check(compose)
    result = run_check(command, environment)  # .env.example's values, as `cp .env.example .env` leaves them
    assert result.returncode == 1
    for name in ("POSTGRES_PASSWORD", "MINIO_ROOT_PASSWORD", "AIRFLOW_ADMIN_PASSWORD", "MLFLOW_ADMIN_PASSWORD"):
        assert f"{name} is a placeholder" in result.stderr, result.stderr
    assert "change-me-postgres" not in result.stderr + result.stdout, "a password was printed"


@pytest.mark.parametrize(
    "name",
    [
        "POSTGRES_PASSWORD",
        "MINIO_ROOT_PASSWORD",
        "AIRFLOW_ADMIN_PASSWORD",
        "MLFLOW_ADMIN_PASSWORD",
        "MLFLOW_AIRFLOW_PASSWORD",
        "MLFLOW_READER_PASSWORD",
    ],
)
def test_airflow_init_refuses_each_placeholder_or_short_password(compose: dict[str, Any], name: str) -> None:
    command, environment = password_check(compose)
    assert name in command
    good = {n: strong(n) for n in command[command.index("check-passwords") + 1 :]}
    assert run_check(command, {**environment, **good}).returncode == 0

    placeholder = run_check(command, {**environment, **good, name: "change-me-please-now"})
    short = run_check(command, {**environment, **good, name: "Sh0rt-pw"})

    assert placeholder.returncode == 1 and f"{name} is a placeholder" in placeholder.stderr
    assert short.returncode == 1 and f"{name} is too short (8 characters" in short.stderr
    assert "Sh0rt-pw" not in short.stderr


def test_mlflow_asks_for_a_login_and_the_tasks_have_theirs(compose: dict[str, Any]) -> None:
    services = compose["services"]
    command = services["mlflow"]["command"]
    assert command[command.index("--app-name") + 1] == "basic-auth"
    assert services["mlflow"]["environment"]["MLFLOW_AUTH_ADMIN_PASSWORD"] == example_env()["MLFLOW_ADMIN_PASSWORD"]
    assert services["mlflow"]["depends_on"]["airflow-init"]["condition"] == "service_completed_successfully"
    worker = services["airflow-worker"]
    assert worker["environment"]["MLFLOW_TRACKING_PASSWORD"] == example_env()["MLFLOW_AIRFLOW_PASSWORD"]
    assert worker["depends_on"]["mlflow-init"]["condition"] == "service_completed_successfully"
    assert services["mlflow-init"]["entrypoint"][:4] == ["python", "-m", "mlloop.deployment", "mlflow-accounts"]
    assert "default_permission = READ" in compose["configs"]["mlflow-auth"]["content"]
