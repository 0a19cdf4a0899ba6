"""infra/compose.yaml and infra/Dockerfile, checked without a container engine: the file
parses, every service has a pinned image or the mdh build, start order follows health checks
and completed one-shot jobs without a cycle, the commands run exist (`mdh` sub-commands and
their options in `mdh --help`, scripts in the checkout), every environment variable is one
its image or mdh reads, and the image installs mdh the way the README does."""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any

import pytest
import typer.main
import yaml
from connect_reference import (
    CONNECT_IMAGE_ENV,
    CONNECT_WORKER,
    KAFKA_BROKER,
    is_known,
    reference_lines,
)

from mdh.cli import app
from mdh.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
INFRA = ROOT / "infra"
COMPOSE_FILE = INFRA / "compose.yaml"
IMAGE_ROOT = "/opt/mdh"
"""Where infra/Dockerfile copies the checkout."""

# The official postgres image's variables (https://hub.docker.com/_/postgres, "Environment
# Variables").
POSTGRES_IMAGE_ENV = {
    "POSTGRES_PASSWORD",
    "POSTGRES_USER",
    "POSTGRES_DB",
    "POSTGRES_INITDB_ARGS",
    "POSTGRES_INITDB_WALDIR",
    "POSTGRES_HOST_AUTH_METHOD",
    "PGDATA",
}
# Variables the apache/kafka image reads besides KAFKA_<property> (docker/examples/README.md).
KAFKA_IMAGE_ENV = {"CLUSTER_ID"}
SOURCE_DATABASES = ("crm-db", "billing-db", "erp-db")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    document = yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))
    assert isinstance(document, dict)
    return document


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return dict(compose["services"])


def _built(service: dict[str, Any]) -> bool:
    return "build" in service


def _command(service: dict[str, Any]) -> list[str]:
    command = service.get("command") or []
    return shlex.split(command) if isinstance(command, str) else [str(c) for c in command]


def _environment(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {str(k): str(v) for k, v in env.items()}


def test_every_service_has_a_pinned_image_or_the_mdh_build(
    services: dict[str, dict[str, Any]],
) -> None:
    for name, service in services.items():
        if _built(service):
            build = service["build"]
            context = (INFRA / build["context"]).resolve()
            assert context == ROOT, name
            assert (context / build["dockerfile"]).is_file(), name
            continue
        image = service.get("image", "")
        assert re.match(r"^[a-z0-9./_-]+:[A-Za-z0-9._-]+$", image), f"{name}: {image!r}"
        assert not image.endswith((":latest", ":main")), f"{name}: pin a version, not {image}"


def test_the_parts_of_the_deployment_are_the_official_images(
    services: dict[str, dict[str, Any]],
) -> None:
    assert services["kafka"]["image"].startswith("apache/kafka:")
    connect = services["connect"]["image"]
    assert re.match(r"^quay\.io/debezium/connect:3\.\d+\.\d+\.Final$", connect), connect
    for name in ("hub-db", *SOURCE_DATABASES):
        assert services[name]["image"].startswith("postgres:")
    for name in ("worker", "relay", "api", "migrate", "connectors"):
        assert _built(services[name]), name


def test_kafka_runs_in_kraft_mode(services: dict[str, dict[str, Any]]) -> None:
    env = _environment(services["kafka"])
    assert set(env["KAFKA_PROCESS_ROLES"].split(",")) == {"broker", "controller"}
    assert env["KAFKA_CONTROLLER_LISTENER_NAMES"] in env["KAFKA_LISTENERS"]
    assert "KAFKA_ZOOKEEPER_CONNECT" not in env
    assert env["CLUSTER_ID"]


def test_source_databases_have_logical_replication(
    services: dict[str, dict[str, Any]],
) -> None:
    for name in SOURCE_DATABASES:
        command = _command(services[name])
        settings = {command[i + 1] for i, part in enumerate(command) if part == "-c"}
        assert "wal_level=logical" in settings, name
        assert any(s.startswith("max_replication_slots=") for s in settings), name


def test_start_order_waits_for_health_and_for_one_shot_jobs(
    services: dict[str, dict[str, Any]],
) -> None:
    for name, service in services.items():
        for dependency, condition in (service.get("depends_on") or {}).items():
            assert dependency in services, f"{name} depends on unknown {dependency}"
            kind = condition["condition"]
            target = services[dependency]
            if kind == "service_healthy":
                assert "healthcheck" in target, f"{name} waits for {dependency}'s health"
            elif kind == "service_completed_successfully":
                assert target.get("restart") == "no", f"{dependency} is a one-shot job"
            else:
                pytest.fail(f"{name} -> {dependency}: use a condition, not {kind}")
    # long-running services report their health
    for name in ("hub-db", *SOURCE_DATABASES, "kafka", "connect", "worker", "api"):
        assert "healthcheck" in services[name], name


def test_start_order_has_no_cycle(services: dict[str, dict[str, Any]]) -> None:
    order: list[str] = []
    visiting: set[str] = set()

    def visit(name: str) -> None:
        if name in order:
            return
        assert name not in visiting, f"dependency cycle through {name}"
        visiting.add(name)
        for dependency in services[name].get("depends_on") or {}:
            visit(dependency)
        visiting.discard(name)
        order.append(name)

    for name in services:
        visit(name)
    assert order.index("migrate") < order.index("worker")
    assert order.index("connectors") < order.index("worker")
    assert order.index("kafka-topics") < order.index("relay")


def test_workers_scale_with_replicas(services: dict[str, dict[str, Any]]) -> None:
    worker = services["worker"]
    replicas = str(worker["deploy"]["replicas"])
    assert re.fullmatch(r"\d+|\$\{MDH_WORKERS:-\d+\}", replicas)
    assert "container_name" not in worker  # a fixed name would forbid a second replica
    assert "ports" not in worker
    assert _command(worker) == ["mdh", "cdc", "run"]
    assert _command(services["relay"]) == ["mdh", "publish", "run"]
    assert _command(services["api"])[:2] == ["mdh", "serve"]


def _mdh_command(args: list[str]) -> tuple[Any, list[str]]:
    """The command an `mdh ...` argument list runs (a click command as typer builds it), and
    the arguments left for it."""
    command: Any = typer.main.get_command(app)
    rest = list(args)
    while hasattr(command, "commands") and rest and not rest[0].startswith("-"):
        name = rest.pop(0)
        assert name in command.commands, f"`mdh {' '.join(args)}`: no sub-command {name!r}"
        command = command.commands[name]
    assert not hasattr(command, "commands"), f"`mdh {' '.join(args)}` names a group"
    return command, rest


def test_mdh_commands_and_options_exist(services: dict[str, dict[str, Any]]) -> None:
    checked = 0
    for name, service in services.items():
        args = _command(service)
        if not args or args[0] != "mdh":
            continue
        command, rest = _mdh_command(args[1:])
        options = {opt for param in command.params for opt in param.opts}
        for part in rest:
            if part.startswith("-"):
                assert part.split("=", 1)[0] in options, f"{name}: `{part}` is not an option"
        checked += 1
    assert checked >= 5


def test_scripts_and_mounted_files_exist(services: dict[str, dict[str, Any]]) -> None:
    for name, service in services.items():
        for part in _command(service):
            if part.startswith(IMAGE_ROOT + "/"):
                assert (ROOT / part.removeprefix(IMAGE_ROOT + "/")).exists(), f"{name}: {part}"
        for volume in service.get("volumes") or []:
            source = str(volume).split(":", 1)[0]
            if source.startswith("."):
                assert (INFRA / source).exists(), f"{name}: {source}"


def _mdh_variables() -> set[str]:
    """Variables an mdh process reads: its settings, and ${NAME} in the files it loads."""
    names = {f"MDH_{field.upper()}" for field in Settings.model_fields}
    texts = [
        INFRA / "mdh.yaml",
        INFRA / "seed_sources.py",
        *sorted((INFRA / "connectors").glob("*.json")),
    ]
    for path in texts:
        names |= set(re.findall(r"\$\{([A-Za-z_][A-Za-z0-9_]*)", path.read_text()))
        names |= set(re.findall(r'"(MDH_DEMO_[A-Z_]+_URL)"', path.read_text()))
    return names


def test_every_environment_variable_is_read_by_its_image(
    services: dict[str, dict[str, Any]],
) -> None:
    mdh_reads = _mdh_variables()
    image_env = {
        line.split("=", 1)[0]: line.split("=", 1)[1] if "=" in line else None
        for line in reference_lines(CONNECT_IMAGE_ENV)
    }
    for name, service in services.items():
        env = _environment(service)
        image = service.get("image", "")
        for variable in env:
            where = f"{name}: {variable}"
            if _built(service):
                assert variable in mdh_reads, f"{where}: mdh reads no such variable"
            elif image.startswith("postgres:"):
                assert variable in POSTGRES_IMAGE_ENV, where
            elif image.startswith("apache/kafka:"):
                if variable in KAFKA_IMAGE_ENV:
                    continue
                assert variable.startswith("KAFKA_"), where
                prop = _kafka_property(variable)
                assert is_known(prop, KAFKA_BROKER), f"{where}: no broker property {prop}"
            elif image.startswith("quay.io/debezium/connect:"):
                if variable.startswith("CONNECT_"):
                    prop = variable.removeprefix("CONNECT_").lower().replace("_", ".")
                    assert is_known(prop, CONNECT_WORKER), f"{where}: no worker property {prop}"
                else:
                    assert variable in image_env, f"{where}: the image reads no such variable"
                    if image_env[variable]:
                        assert is_known(image_env[variable], CONNECT_WORKER), where
            else:
                pytest.fail(f"{where}: unknown image {image}")


def _kafka_property(variable: str) -> str:
    # apache/kafka: . is _, _ is __, - is ___ (docker/examples/README.md)
    name = variable.removeprefix("KAFKA_").lower()
    return (
        name.replace("___", "\0")
        .replace("__", "\1")
        .replace("_", ".")
        .replace("\0", "-")
        .replace("\1", "_")
    )


def test_mdh_services_get_every_variable_their_config_requires(
    compose: dict[str, Any], services: dict[str, dict[str, Any]]
) -> None:
    text = (INFRA / "mdh.yaml").read_text()
    required = set(re.findall(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}", text))  # no :-default
    for name in ("worker", "relay", "api", "migrate"):
        env = _environment(services[name])
        assert required <= set(env), f"{name} lacks {required - set(env)}"
        assert env["MDH_CONFIG_FILE"] == f"{IMAGE_ROOT}/infra/mdh.yaml"
        assert env["MDH_DATABASE_URL"].startswith("postgresql://")
        assert "@hub-db:5432/" in env["MDH_DATABASE_URL"]
    connectors = _environment(services["connectors"])
    for path in (INFRA / "connectors").glob("*.json"):
        needed = set(re.findall(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}", path.read_text()))
        assert needed <= set(connectors), f"connectors lacks {needed - set(connectors)}"


def test_the_golden_topic_is_created_compacted(services: dict[str, dict[str, Any]]) -> None:
    command = _command(services["kafka-topics"])
    assert command[0] == "/opt/kafka/bin/kafka-topics.sh"
    topic = command[command.index("--topic") + 1]
    configs = {command[i + 1] for i, part in enumerate(command) if part == "--config"}
    assert "cleanup.policy=compact" in configs
    env = _environment(services["relay"])
    assert env["MDH_GOLDEN_TOPIC"] == topic
    assert "${MDH_GOLDEN_TOPIC:-" in (INFRA / "mdh.yaml").read_text()


def _readme_install() -> list[str]:
    """The README's install: the steps of its first command line up to the pip install."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    line = next(line for line in readme.splitlines() if "pip install" in line)
    steps = [part.strip() for part in line.split("&&")]
    last = next(i for i, step in enumerate(steps) if "pip install" in step)
    return steps[: last + 1]


def test_the_image_installs_mdh_the_way_the_readme_does() -> None:
    dockerfile = (INFRA / "Dockerfile").read_text(encoding="utf-8")
    instructions = [
        line.strip() for line in re.sub(r"\\\n", " ", dockerfile).splitlines() if line.strip()
    ]
    instructions = [line for line in instructions if not line.startswith("#")]
    install = _readme_install()
    assert install == ["python3 -m venv .venv", ".venv/bin/pip install -e ."]
    runs = [line.removeprefix("RUN ").strip() for line in instructions if line.startswith("RUN ")]
    assert " && ".join(install) in runs
    workdir = [line.split()[1] for line in instructions if line.startswith("WORKDIR ")]
    assert workdir[-1] == IMAGE_ROOT
    copy_all = [i for i, line in enumerate(instructions) if re.match(r"COPY (--\S+ )*\. \.$", line)]
    run_install = instructions.index("RUN " + " && ".join(install))
    assert copy_all, "the checkout is copied into the image"
    assert copy_all[0] < run_install, "the checkout is copied before the install"
    assert f"PATH={IMAGE_ROOT}/.venv/bin:$PATH" in dockerfile
    assert re.search(r"^FROM python:3\.1[1-9]", dockerfile, re.MULTILINE)
    assert re.search(r"^USER (?!root)\S+", dockerfile, re.MULTILINE), "not as root"
