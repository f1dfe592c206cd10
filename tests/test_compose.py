"""The compose files and Dockerfiles, checked without a Docker engine: the contract of each service,
the compose-spec schema, hadolint, and docker-compose 1.29 ``config``."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from ruamel.yaml import YAML

from seghw.stack import lint

REPO = Path(__file__).resolve().parents[1]
GPU_RESERVATION = [{"driver": "nvidia", "count": 1, "capabilities": ["gpu"]}]


def load(name: str) -> dict:
    return YAML(typ="safe", pure=True).load((REPO / name).read_text())


@pytest.fixture(scope="module")
def compose() -> dict:
    return load("docker-compose.yml")


@pytest.fixture(scope="module")
def services(compose) -> dict:
    return compose["services"]


def _volume(service: dict, target: str) -> dict:
    mounts = [v for v in service.get("volumes", []) if isinstance(v, dict) and v.get("target") == target]
    assert len(mounts) == 1, f"one volume at {target}: {service.get('volumes')}"
    return mounts[0]


def _seconds(value: str) -> float:
    total = 0.0
    for amount, unit in re.findall(r"(\d+(?:\.\d+)?)(ms|h|m|s)", value):
        total += float(amount) * {"h": 3600, "m": 60, "s": 1, "ms": 0.001}[unit]
    return total


def _default(value: str) -> str:
    """``${SETTING:-default}`` -> default; anything else as it is."""
    m = re.fullmatch(r"\$\{\w+:-(.+)\}", value)
    return m.group(1) if m else value


def _pinned(image: str) -> bool:
    name, _, tag = _default(image).rpartition(":")
    return bool(name) and "/" not in tag and tag not in ("", "latest") and any(c.isdigit() for c in tag)


# ------------------------------------------------------------------ the contract


def test_five_services_and_named_volumes(compose, services):
    assert set(services) == {"redis", "trainer", "visualdl", "proxy", "monitor"}
    assert set(compose["volumes"]) == {"models", "redis-data"}


def test_redis_pinned_password_required_persistent_and_private(services):
    redis = services["redis"]
    assert _pinned(redis["image"]) and _default(redis["image"]).startswith("redis:7.")
    assert redis["image"].startswith("${REDIS_IMAGE:-")  # a mirror's or a stand-in instead
    command = redis["command"]
    assert command[0] == "redis-server"  # the image then drops to its redis user
    assert command[command.index("--appendonly") + 1] == "yes"
    password = command[command.index("--requirepass") + 1]
    assert password.startswith("${REDIS_PASSWORD:?"), password
    assert _volume(redis, "/data")["source"] == "redis-data"
    assert "ports" not in redis, "Redis is published only through compose.redis-port.yml"
    assert "redis-cli ping" in " ".join(redis["healthcheck"]["test"])


def test_trainer_gpu_models_volume_grace_and_health(services):
    trainer = services["trainer"]
    assert trainer["build"]["dockerfile"] == "services/trainer/Dockerfile"
    assert "${PADDLE_IMAGE" in trainer["build"]["args"]["PADDLE_IMAGE"]
    assert trainer["deploy"]["resources"]["reservations"]["devices"] == GPU_RESERVATION
    models = _volume(trainer, "/app/models")
    assert models["source"] == "models" and not models.get("read_only", False)
    assert trainer["environment"]["SEGHW_LOG_ROOT"] == "/app/models"
    assert trainer["environment"]["REDIS_URL"].startswith("redis://:${REDIS_PASSWORD:?")
    assert trainer["command"] == ["seghw", "serve", "trainer"]
    assert _seconds(trainer["stop_grace_period"]) >= 60
    assert trainer["init"] is True  # PID 1 that passes SIGTERM on
    assert trainer["depends_on"] == {"redis": {"condition": "service_healthy"}}
    assert trainer["healthcheck"]["test"][:4] == ["CMD", "seghw", "serve", "trainer"]
    # the guide: docker exec -it seghandwriting-app python train_demo.py
    assert _default(trainer["container_name"]) == "seghandwriting-app"


def test_visualdl_unpublished_read_only_logs_health_and_no_telemetry(services):
    vdl = services["visualdl"]
    assert "ports" not in vdl, "VisualDL has no password: only the proxy publishes it"
    models = _volume(vdl, "/app/models")
    assert models["source"] == "models" and models["read_only"] is True
    # The command line is the role's (one place): seghw serve visualdl with the container's settings.
    assert vdl["command"] == ["seghw", "serve", "visualdl"]
    assert vdl["environment"] == {"SEGHW_LOG_ROOT": "/app/models", "VISUALDL_HOST": "0.0.0.0",
                                  "VISUALDL_PORT": "8040"}
    cmd = _visualdl_command(vdl["environment"])
    assert cmd[cmd.index("--host") + 1] == "0.0.0.0"
    assert cmd[cmd.index("--port") + 1] == "8040"
    assert cmd[cmd.index("--logdir") + 1] == "/app/models"
    assert "--disable-telemetry" in cmd and "-L" in cmd
    health = vdl["healthcheck"]
    assert "/alive" in " ".join(health["test"]) and "204" in " ".join(health["test"])
    assert _seconds(health["start_period"]) >= 60


def _visualdl_command(environment: dict[str, str]) -> list[str]:
    """What ``seghw serve visualdl`` runs with these settings."""
    code = ("import json, os; from pathlib import Path; from seghw.roles.visualdl import visualdl_command; "
            "print(json.dumps(visualdl_command(Path(os.environ['SEGHW_LOG_ROOT']))))")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VISUALDL_", "SEGHW_"))}
    done = subprocess.run([sys.executable, "-c", code], env={**env, **environment}, capture_output=True,
                          text=True, check=True)
    return json.loads(done.stdout)


def test_the_proxy_holds_the_published_port_loopback_unless_told(services):
    proxy = services["proxy"]
    assert proxy["ports"] == ["${VISUALDL_HOST:-127.0.0.1}:${VISUALDL_PORT:-8040}:8040"]
    env = proxy["environment"]
    # The role refuses a port open to the network without a password: it is told where the host binds.
    assert env["PROXY_PUBLISHED_HOST"] == "${VISUALDL_HOST:-127.0.0.1}"
    assert (env["PROXY_HOST"], env["PROXY_PORT"], env["VISUALDL_UPSTREAM"]) == ("0.0.0.0", "8040", "visualdl:8040")
    assert {"VISUALDL_USER", "VISUALDL_PASSWORD", "VISUALDL_PASSWORD_HASH", "PROXY_MAX_BODY"} <= set(env)
    assert proxy["command"] == ["seghw", "serve", "proxy"]
    assert proxy["healthcheck"]["test"] == ["CMD", "seghw", "serve", "proxy", "--check"]
    assert _seconds(proxy["healthcheck"]["start_period"]) >= 60  # VisualDL's own first start
    assert "volumes" not in proxy  # it reads no run: VisualDL serves them
    tls = load("compose.tls.yml")
    assert tls["services"]["proxy"]["environment"] == {"PROXY_TLS_CERT": "/run/secrets/proxy_tls_cert",
                                                        "PROXY_TLS_KEY": "/run/secrets/proxy_tls_key"}
    assert set(tls["secrets"]) == {"proxy_tls_cert", "proxy_tls_key"}


def test_monitor_reads_models_read_only_and_talks_to_redis(services):
    mon = services["monitor"]
    models = _volume(mon, "/app/models")
    assert models["source"] == "models" and models["read_only"] is True
    assert mon["environment"]["REDIS_URL"].startswith("redis://:${REDIS_PASSWORD:?")
    assert mon["depends_on"] == {"redis": {"condition": "service_healthy"}}
    assert mon["healthcheck"]["test"][:3] == ["CMD", "seghw", "health"]
    assert mon["command"] == ["seghw", "serve", "monitor"]


def test_every_service_has_a_health_check_and_restarts(services):
    for name, svc in services.items():
        assert svc["healthcheck"]["test"], name
        assert svc.get("restart") == "unless-stopped", name


def test_nothing_docker_compose_129_rejects():
    for f in lint.compose_files(REPO):
        data = load(f.name)
        assert "name" not in data, f"{f.name}: top-level name"
        for svc_name, svc in (data.get("services") or {}).items():
            assert "gpus" not in svc, f"{f.name}: {svc_name}.gpus"
            assert "start_interval" not in svc.get("healthcheck", {}), f"{f.name}: {svc_name}"


def test_cpu_variant_drops_only_the_gpu(services):
    cpu = load("compose.cpu.yml")["services"]
    assert set(cpu) == set(services)
    trainer = dict(cpu["trainer"])
    assert "deploy" not in trainer
    assert trainer["build"]["args"]["PADDLE_PIP"] == "paddlepaddle==3.3.1"
    assert _pinned(trainer["build"]["args"]["PADDLE_IMAGE"])
    gpu = dict(services["trainer"])
    gpu.pop("deploy")
    for key in ("build", "image"):
        gpu.pop(key)
        trainer.pop(key)
    assert trainer == gpu
    assert cpu["monitor"] == services["monitor"]
    for name in ("redis", "visualdl", "proxy"):
        assert cpu[name] == {"extends": {"file": "docker-compose.yml", "service": name}}


def test_base_images_are_settings_with_the_official_defaults(services):
    cpu = load("compose.cpu.yml")["services"]
    assert services["trainer"]["build"]["args"]["PADDLE_IMAGE"] == \
        "${PADDLE_IMAGE:-paddlepaddle/paddle:3.3.0-gpu-cuda12.6-cudnn9.5}"
    assert cpu["trainer"]["build"]["args"]["PADDLE_IMAGE"] == "${PYTHON_IMAGE:-python:3.11-slim-bookworm}"
    for name in ("visualdl", "monitor", "proxy"):
        assert services[name]["build"]["args"] == {"PYTHON_IMAGE": "${PYTHON_IMAGE:-python:3.11-slim-bookworm}"}
    assert cpu["monitor"]["build"]["args"] == services["monitor"]["build"]["args"]
    assert services["redis"]["image"] == "${REDIS_IMAGE:-redis:7.4-alpine}"
    for role in ("visualdl", "monitor", "proxy"):
        text = _dockerfile(role)
        assert "ARG PYTHON_IMAGE=python:3.11-slim-bookworm" in text and "FROM ${PYTHON_IMAGE}" in text
    # BuildKit would fetch a `# syntax=` frontend image from a registry: the built-in one must do.
    for role in ("trainer", "visualdl", "monitor", "proxy"):
        assert "# syntax=" not in _dockerfile(role), role


def test_the_build_ca_is_a_secret_of_the_install_steps_only():
    override = load("compose.build-ca.yml")
    assert override["secrets"] == {"build_ca": {"file": "${BUILD_CA_BUNDLE:?set BUILD_CA_BUNDLE to the CA bundle "
                                                         "the builds must trust}"}}
    for name in ("trainer", "visualdl", "monitor", "proxy"):
        assert override["services"][name] == {"build": {"secrets": ["build_ca"]}}
        text = _dockerfile(name)
        pip_steps = [step for step in re.split(r"(?m)^(?=[A-Z]+ )", text) if "pip install" in step]
        assert pip_steps, name
        for step in pip_steps:
            assert step.startswith("RUN --mount=type=secret,id=build_ca"), (name, step[:80])
            assert "PIP_CERT=/run/secrets/build_ca" in step
        assert "build_ca" not in "".join(line for line in text.splitlines() if line.startswith(("COPY", "ADD",
                                                                                                   "ENV", "ARG")))


def test_redis_port_override_binds_loopback_only():
    redis = load("compose.redis-port.yml")["services"]["redis"]
    assert redis["ports"] == ["127.0.0.1:${REDIS_PORT:-6379}:6379"]


def test_env_example_documents_every_variable():
    example = (REPO / ".env.example").read_text()
    documented = set(re.findall(r"(?m)^#?\s*([A-Z][A-Z0-9_]*)=", example))
    used = set()
    for f in lint.compose_files(REPO):
        used |= set(re.findall(r"(?<!\$)\$\{([A-Z][A-Z0-9_]*)", f.read_text()))
    assert used, "compose files use variables"
    assert used <= documented, sorted(used - documented)
    # and the ones the stack commands read
    for name in ("STACK", "SEGHW_STACK_DIR", "SEGHW_LOG_ROOT", "VISUALDL_HOST", "REDIS_URL", "REDIS_PORT",
                 "VISUALDL_PORT", "COMPOSE_FILE", "SEGHW_START_TIMEOUT", "SEGHW_STOP_GRACE"):
        assert name in documented, name
    assert re.search(r"(?m)^REDIS_PASSWORD=\S+", example), "docker-compose config needs a value"


# ------------------------------------------------------------------ Dockerfiles


def _dockerfile(role: str) -> str:
    return (REPO / "services" / role / "Dockerfile").read_text()


def test_dockerfiles_pin_their_bases_and_run_as_a_user():
    for role in ("trainer", "visualdl", "monitor", "proxy"):
        text = _dockerfile(role)
        args = dict(re.findall(r"(?m)^ARG (\w+)=(\S+)", text))
        for base in re.findall(r"(?m)^FROM (\S+)", text):
            base = re.sub(r"\$\{(\w+)\}", lambda m: args[m.group(1)], base)  # noqa: B023
            assert _pinned(base), f"{role}: FROM {base}"
        user = re.findall(r"(?m)^USER (\S+)", text)
        assert user and user[-1].split(":")[0] not in ("root", "0"), role
    assert "paddlepaddle/paddle:3.3.0-gpu-cuda12.6-cudnn9.5" in _dockerfile("trainer")


def test_visualdl_image_runs_the_role_on_all_interfaces():
    text = _dockerfile("visualdl")
    assert re.search(r"(?m)^CMD \[\"seghw\", \"serve\", \"visualdl\"\]$", text)
    assert "VISUALDL_HOST=0.0.0.0" in text and "VISUALDL_PORT=8040" in text
    pyproject = (REPO / "pyproject.toml").read_text()
    for pin in ("visualdl==2.5.3", "protobuf==", "numpy=="):
        assert pin in pyproject, pin  # the image installs the project, with these pins


def test_the_monitor_and_visualdl_images_share_their_layers():
    def steps(role: str) -> list[str]:
        text = _dockerfile(role)
        body = text[text.index("\nARG "):text.index("\nWORKDIR ")]
        return [line for line in body.splitlines() if line and not line.startswith("#")]

    assert steps("monitor") == steps("visualdl") == steps("proxy")


def test_images_carry_the_guide_scripts():
    assert "train_demo.py" in _dockerfile("trainer")
    assert "monitor_training.py" in _dockerfile("monitor")
    ignore = (REPO / ".dockerignore").read_text().split()
    for private in (".env", ".venv", ".stack", "models"):
        assert private in ignore, private


# ------------------------------------------------------------------ the tools


def _results_ok(results: list[lint.Result]) -> None:
    bad = [r.line() for r in results if r.ok is False]
    assert not bad, "\n".join(bad)


def test_compose_files_match_the_compose_spec_schema():
    results = lint.check_schema(REPO)
    assert len(results) == len(lint.compose_files(REPO)) >= 3
    _results_ok(results)


def test_dockerfiles_pass_hadolint():
    results = lint.check_hadolint(REPO)
    assert len(results) == 4
    _results_ok(results)


def test_docker_compose_129_accepts_every_file_set():
    results = lint.check_legacy_compose(REPO)
    if all(r.ok is None for r in results):
        pytest.fail(f"{results[0].detail} (.ci/run installs Debian's docker-compose)")
    _results_ok(results + lint.check_sets_cover_files(REPO))


def test_compose_v2_accepts_every_file_set():
    results = lint.check_compose_v2(REPO)
    if all(r.ok is None for r in results):
        pytest.fail(f"{results[0].detail} (make tools installs Compose v2)")
    assert len(results) == len(lint.COMPOSE_SETS)
    _results_ok(results)


@pytest.fixture
def project_copy(tmp_path) -> Path:
    for name in ("docker-compose.yml", "compose.cpu.yml", "compose.redis-port.yml", "compose.build-ca.yml",
                 "compose.tls.yml",
                 ".env.example",
                 ".hadolint.yaml", ".dockerignore", "pyproject.toml"):
        shutil.copy(REPO / name, tmp_path / name)
    shutil.copytree(REPO / "services", tmp_path / "services", ignore=shutil.ignore_patterns("__pycache__"))
    return tmp_path


def test_lint_catches_what_it_is_for(project_copy: Path):
    """Each check fails on the mistake it guards against (so a green lint means something)."""
    compose = project_copy / "docker-compose.yml"
    compose.write_text(compose.read_text().replace("  redis:\n    image:", "  redis:\n    imag:", 1))
    assert [r.ok for r in lint.check_schema(project_copy) if r.target == "docker-compose.yml"] == [False]
    shutil.copy(REPO / "docker-compose.yml", compose)

    dockerfile = project_copy / "services" / "visualdl" / "Dockerfile"
    dockerfile.write_text(re.sub(r"(?m)^FROM .*$", "FROM python:latest", dockerfile.read_text()))
    assert [r.ok for r in lint.check_hadolint(project_copy) if "visualdl" in r.target] == [False]

    if lint.check_legacy_compose(project_copy)[0].ok is not None:
        compose.write_text(compose.read_text().replace("      start_period: 120s",
                                                       "      start_period: 120s\n      start_interval: 5s"))
        legacy = {r.target: r.ok for r in lint.check_legacy_compose(project_copy)}
        assert legacy["docker-compose.yml"] is False
    assert lint.main(["--root", str(project_copy)]) == 1
