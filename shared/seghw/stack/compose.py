"""Docker Compose side of the stack: is there an engine, which compose command, which files, and the
checks that turn what would be a wall of build output into one line naming the setting at fault."""

from __future__ import annotations

import errno
import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
from collections import deque
from functools import lru_cache
from pathlib import Path

from seghw.stack import engine
from seghw.stack.settings import REDIS_PORT_OVERRIDE, StackError, env_value, project_dir

BUILD_CA_OVERRIDE = "compose.build-ca.yml"
TLS_OVERRIDE = "compose.tls.yml"
PROXY_UID = 10001
DEFAULT_FILES = "docker-compose.yml"
# The settings that name base images, and their defaults (those of the compose files).
BASE_IMAGES = {
    "PYTHON_IMAGE": "python:3.11-slim-bookworm",
    "PADDLE_IMAGE": "paddlepaddle/paddle:3.3.0-gpu-cuda12.6-cudnn9.5",
    "REDIS_IMAGE": "redis:7.4-alpine",
}
NO_ENGINE = ("no Docker engine answers (docker info failed): start Docker (systemctl start docker, or "
             "dockerd), or point DOCKER_HOST at an engine; without Docker, STACK=local make up runs the "
             "stack as local processes")


def mode() -> str:
    """``compose`` where a Docker engine answers, else ``local``; env ``STACK`` decides if set."""
    forced = (os.environ.get("STACK") or "").strip().lower()
    if forced == "local":
        return "local"
    if forced in ("compose", "docker"):
        if not engine_answers():
            raise StackError(f"STACK=compose but {NO_ENGINE}")
        return "compose"
    if forced:
        raise StackError(f"STACK={forced!r}: use STACK=local or STACK=compose (or leave it unset)")
    return "compose" if engine_answers() else "local"


@lru_cache(maxsize=1)
def engine_answers() -> bool:
    return engine.answers()


@lru_cache(maxsize=1)
def compose_command() -> list[str]:
    docker = shutil.which("docker")
    if docker:
        done = subprocess.run([docker, "compose", "version"], stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, check=False)
        if done.returncode == 0:
            return [docker, "compose"]
    legacy = shutil.which("docker-compose")
    if legacy:
        return [legacy]
    raise StackError("a Docker engine answers but neither 'docker compose' nor 'docker-compose' is installed "
                     "(Compose v2: make tools, or your distribution's docker-compose-plugin)")


def is_v2() -> bool:
    return compose_command()[-1] == "compose"


def ensure_env_file(directory: Path) -> Path | None:
    """Create ``.env`` from ``.env.example`` with a random REDIS_PASSWORD when it is missing (and the
    environment does not give one: then the settings come from there)."""
    env = directory / ".env"
    example = directory / ".env.example"
    if env.exists() or not example.exists() or os.environ.get("REDIS_PASSWORD"):
        return None
    text = example.read_text(encoding="utf-8")
    text = re.sub(r"(?m)^REDIS_PASSWORD=.*$", f"REDIS_PASSWORD={secrets.token_hex(24)}", text)
    fd = os.open(env, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)
    return env


def compose_files() -> list[str]:
    """The compose files in use: ``COMPOSE_FILE`` (environment, else .env), with the overrides that
    settings call for: the build CA when ``BUILD_CA_BUNDLE`` is set, TLS when ``PROXY_TLS_CERT`` is."""
    files = [f for f in env_value("COMPOSE_FILE", DEFAULT_FILES).replace(";", ":").split(":") if f]
    for setting, override in (("BUILD_CA_BUNDLE", BUILD_CA_OVERRIDE), ("PROXY_TLS_CERT", TLS_OVERRIDE)):
        if env_value(setting) and not any(Path(f).name == override for f in files):
            files.append(override)
    return files


@lru_cache(maxsize=1)
def _password_hash() -> str:
    """The proxy's password as the hash the container gets: the plain password never goes into a
    container's environment (``docker inspect`` would show it)."""
    from seghw.roles.proxy import hash_password

    given = env_value("VISUALDL_PASSWORD_HASH")
    password = env_value("VISUALDL_PASSWORD")
    context = f"{project_dir()}:{env_value('COMPOSE_PROJECT_NAME', project_dir().name)}"
    return given or (hash_password(password, salt_from=context) if password else "")


def compose_env() -> dict[str, str]:
    return {**os.environ, "COMPOSE_FILE": ":".join(compose_files()), "VISUALDL_PASSWORD": "",
            "VISUALDL_PASSWORD_HASH": _password_hash()}


def _cmd(args: list[str]) -> list[str]:
    return [*compose_command(), "--project-directory", str(project_dir()), *args]


def run(args: list[str], check: bool = False) -> int:
    try:
        return subprocess.run(_cmd(args), cwd=project_dir(), env=compose_env(), check=check).returncode
    except KeyboardInterrupt:
        return 130


def capture(args: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run(_cmd(args), cwd=project_dir(), env=compose_env(), capture_output=True, text=True,
                          check=False)


def exec_args(service: str) -> list[str]:
    # -T: no pseudo-terminal when our stdin is not one (make, CI, pipes)
    return ["exec", *([] if sys.stdin.isatty() else ["-T"]), service]


def visualdl_url() -> str:
    scheme = "https" if env_value("PROXY_TLS_CERT") else "http"
    host = env_value("VISUALDL_HOST", "127.0.0.1")
    from seghw.stack.settings import browse_host

    return f"{scheme}://{browse_host(host)}:{env_value('VISUALDL_PORT', '8040')}"


# ---------------------------------------------------------------- checks before `up`


def check_settings() -> None:
    """The settings `up` needs, each failure one line naming the setting."""
    if not env_value("REDIS_PASSWORD"):
        raise StackError("REDIS_PASSWORD is not set: put REDIS_PASSWORD=<letters and digits> in .env "
                         "(make up writes a random one when .env is missing)")
    if not re.fullmatch(r"[A-Za-z0-9]+", env_value("REDIS_PASSWORD")):
        raise StackError("REDIS_PASSWORD has characters other than letters and digits: it goes into "
                         "REDIS_URL inside the containers; choose one of letters and digits")
    check_proxy_settings()
    ca = env_value("BUILD_CA_BUNDLE")
    if ca:
        if not Path(ca).is_file():
            raise StackError(f"BUILD_CA_BUNDLE={ca}: no such file (the CA bundle the builds must trust, "
                             "e.g. /etc/ssl/certs/ca-certificates.crt)")
        if not is_v2():
            raise StackError("BUILD_CA_BUNDLE needs Compose v2 (docker compose): docker-compose 1.29 cannot "
                             "hand build secrets to the builds")


def has_password() -> bool:
    return bool(env_value("VISUALDL_PASSWORD") or env_value("VISUALDL_PASSWORD_HASH"))


def check_proxy_settings() -> None:
    """The published port opens to the network only with a password; TLS files the proxy can read."""
    from seghw.stack.settings import is_loopback

    host = env_value("VISUALDL_HOST", "127.0.0.1")
    if not has_password() and not is_loopback(host):
        raise StackError(f"VISUALDL_HOST={host} without VISUALDL_PASSWORD would show the training pages to "
                         "anyone who reaches the port: set VISUALDL_PASSWORD in .env as well, or leave "
                         "VISUALDL_HOST unset for this machine only")
    cert, key = env_value("PROXY_TLS_CERT"), env_value("PROXY_TLS_KEY")
    if bool(cert) != bool(key):
        given, missing = ("PROXY_TLS_CERT", "PROXY_TLS_KEY") if cert else ("PROXY_TLS_KEY", "PROXY_TLS_CERT")
        raise StackError(f"{given} is set but {missing} is not: TLS needs both (the certificate and its key)")
    for name, path in (("PROXY_TLS_CERT", cert), ("PROXY_TLS_KEY", key)):
        if not path:
            continue
        if not Path(path).is_file():
            raise StackError(f"{name}={path}: no such file (the proxy's certificate and key, on this machine)")
        st = Path(path).stat()
        if st.st_uid != PROXY_UID and not st.st_mode & 0o004:
            raise StackError(f"{name}={path} cannot be read by uid {PROXY_UID}, the proxy's user in its "
                             f"container: chown {PROXY_UID} {path}")


def resolved_config() -> dict:
    """The compose model after interpolation (``config --format json``; Compose v2)."""
    done = capture(["config", "--format", "json"])
    if done.returncode != 0:
        raise StackError(f"docker compose config failed: {first_line(done.stderr or done.stdout)}")
    return json.loads(done.stdout)


def base_images(config: dict) -> dict[str, str]:
    """Each base image the stack needs -> the setting that names it."""
    settings = {env_value(name, default): name for name, default in BASE_IMAGES.items()}
    needed: dict[str, str] = {}
    for name, service in (config.get("services") or {}).items():
        build = service.get("build")
        values = [v for k, v in ((build or {}).get("args") or {}).items() if k.endswith("_IMAGE") and v]
        if not build and name == "redis" and service.get("image"):
            values.append(service["image"])
        for value in values:
            needed.setdefault(value, settings.get(value, f"the {name} service's base image"))
    return needed


def check_base_images(config: dict) -> None:
    """Every base image is here or can be pulled; else one line naming its setting and the way out."""
    for image, setting in base_images(config).items():
        if subprocess.run(["docker", "image", "inspect", image], capture_output=True, check=False).returncode == 0:
            continue
        pulled = subprocess.run(["docker", "pull", "--quiet", image], capture_output=True, text=True, check=False)
        if pulled.returncode == 0:
            continue
        raise StackError(
            f"base image {image} ({setting}) is not here and cannot be pulled ({first_line(pulled.stderr)}): "
            f"without a registry, build stand-ins with `make base-images` and set {setting} in .env to the "
            f"one it prints; behind a mirror, set {setting} to the mirror's image")


# The setting that names each service's published port.
PORT_SETTINGS = {"proxy": "VISUALDL_PORT", "visualdl": "VISUALDL_PORT", "redis": "REDIS_PORT"}


def _published_ports(config: dict) -> list[tuple[str, int, str]]:
    """(host ip, host port, service) of every published port."""
    out = []
    for name, service in (config.get("services") or {}).items():
        for port in service.get("ports") or []:
            published = port.get("published") if isinstance(port, dict) else None
            if published:
                out.append((port.get("host_ip") or "0.0.0.0", int(published), name))
    return out


def running_services() -> set[str]:
    done = capture(["ps", "--services", "--status", "running"])
    return set(done.stdout.split()) if done.returncode == 0 else set()


def check_ports(config: dict) -> None:
    """A published port held by something other than this stack is one line naming its setting."""
    mine = running_services()
    for host, port, service in _published_ports(config):
        if service in mine:  # this stack's own, already up
            continue
        setting = PORT_SETTINGS.get(service, f"the {service} service's port")
        with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                s.bind((host, port))
            except OSError as exc:
                if exc.errno == errno.EADDRINUSE:
                    raise StackError(f"port {port} on this host is already in use: set {setting} in .env to a "
                                     f"free port (e.g. {setting}={port + 1})") from None


def preflight() -> None:
    check_settings()
    if not is_v2():
        return  # docker-compose 1.29 has no `config --format json`; its own errors stand
    config = resolved_config()
    check_base_images(config)
    check_ports(config)


# ---------------------------------------------------------------- build and up


# What a failed build or start says, and the line that names the setting to change.
KNOWN_FAILURES = (
    ("CERTIFICATE_VERIFY_FAILED",
     "a build could not reach PyPI: a TLS-intercepting proxy's certificate is not trusted "
     "(CERTIFICATE_VERIFY_FAILED); set BUILD_CA_BUNDLE in .env to the CA bundle that trusts it, "
     "e.g. BUILD_CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt"),
    ("port is already allocated", "a published port is already in use: set VISUALDL_PORT (or REDIS_PORT) in "
     ".env to a free port"),
    ("address already in use", "a published port is already in use: set VISUALDL_PORT (or REDIS_PORT) in "
     ".env to a free port"),
    ("required variable", None),  # compose's own line names the variable
)


def explain_failure(output: str) -> str | None:
    for needle, message in KNOWN_FAILURES:
        if needle in output:
            if message is None:
                return first_line(next(line for line in output.splitlines() if needle in line))
            return message
    return None


def first_line(text: str) -> str:
    lines = [ln.strip() for ln in (text or "").strip().splitlines() if ln.strip()]
    return lines[-1] if lines else "no output"


def up(wait: bool = False) -> int:
    """Checks, then ``up -d --build`` with the output shown as it comes; a known failure ends in one
    line naming the setting."""
    preflight()
    args = ["up", "-d", "--build"]
    if wait and is_v2():
        args += ["--wait"]
    tail: deque[str] = deque(maxlen=400)
    proc = subprocess.Popen(_cmd(args), cwd=project_dir(), env=compose_env(), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, errors="replace")
    assert proc.stdout is not None
    try:
        for line in proc.stdout:
            sys.stdout.write(line)
            tail.append(line)
        rc = proc.wait()
    except KeyboardInterrupt:
        proc.terminate()
        return 130
    if rc != 0:
        why = explain_failure("".join(tail))
        if why:
            raise StackError(why)
    return rc


def ports_note() -> str:
    files = compose_files()
    redis = f"; Redis on 127.0.0.1:{env_value('REDIS_PORT', '6379')}" if any(
        Path(f).name == REDIS_PORT_OVERRIDE for f in files) else ""
    guarded = f", password required (user {env_value('VISUALDL_USER', 'visualdl')})" if has_password() else ""
    return f"VisualDL {visualdl_url()}{guarded}{redis}"


def open_hint() -> str | None:
    """How to open VisualDL to the network safely, when it is this machine's only."""
    if has_password():
        return None
    return ("VisualDL is this machine's only; to open it to the network safely, set VISUALDL_PASSWORD and "
            "VISUALDL_HOST=0.0.0.0 in .env, then make up")


def proxy_line() -> str:
    """The proxy's health as Docker sees it: healthy means VisualDL answers behind it."""
    done = capture(["ps", "-q", "proxy"])
    ids = done.stdout.split()
    if done.returncode != 0 or not ids:
        return "proxy: not running (VisualDL is not published)"
    health = subprocess.run(["docker", "inspect", "--format", "{{if .State.Health}}{{.State.Health.Status}}{{end}}",
                             ids[0]], capture_output=True, text=True, check=False).stdout.strip() or "unknown"
    behind = {"healthy": "VisualDL answers behind it", "unhealthy": "VisualDL does NOT answer behind it",
              "starting": "starting"}.get(health, health)
    return f"proxy: {health} ({behind}); {ports_note()}"
