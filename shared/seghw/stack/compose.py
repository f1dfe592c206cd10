"""Docker Compose side of the stack: is there an engine, which compose command, where is the project."""

from __future__ import annotations

import os
import re
import secrets
import shutil
import subprocess
import sys
from functools import lru_cache
from pathlib import Path

from seghw.stack.settings import StackError, env_value, project_dir


def mode() -> str:
    """``compose`` where a Docker engine answers, else ``local``; env ``STACK`` decides if set."""
    forced = (os.environ.get("STACK") or "").strip().lower()
    if forced == "local":
        return "local"
    if forced in ("compose", "docker"):
        if not engine_answers():
            raise StackError("STACK=compose but no Docker engine answers (docker info failed)")
        return "compose"
    if forced:
        raise StackError(f"STACK={forced!r}: use STACK=local or STACK=compose (or leave it unset)")
    return "compose" if engine_answers() else "local"


@lru_cache(maxsize=1)
def engine_answers() -> bool:
    docker = shutil.which("docker")
    if not docker:
        return False
    try:
        done = subprocess.run([docker, "info"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              timeout=20, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0


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
    raise StackError("a Docker engine answers but neither 'docker compose' nor 'docker-compose' is installed")


def ensure_env_file(directory: Path) -> Path | None:
    """Create ``.env`` from ``.env.example`` with a random REDIS_PASSWORD when it is missing."""
    env = directory / ".env"
    example = directory / ".env.example"
    if env.exists() or not example.exists():
        return None
    text = example.read_text(encoding="utf-8")
    text = re.sub(r"(?m)^REDIS_PASSWORD=.*$", f"REDIS_PASSWORD={secrets.token_hex(24)}", text)
    fd = os.open(env, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)
    return env


def is_v2() -> bool:
    return compose_command()[-1] == "compose"


def up_args(wait: bool = False) -> list[str]:
    # --wait (until every health check passes) exists in Compose v2 only.
    return ["up", "-d", *(["--wait"] if wait and is_v2() else [])]


def visualdl_url() -> str:
    return f"http://127.0.0.1:{env_value('VISUALDL_PORT', '8040')}"


def run(args: list[str], check: bool = False) -> int:
    directory = project_dir()
    cmd = [*compose_command(), "--project-directory", str(directory), *args]
    try:
        return subprocess.run(cmd, cwd=directory, check=check).returncode
    except KeyboardInterrupt:
        return 130


def exec_args(service: str) -> list[str]:
    # -T: no pseudo-terminal when our stdin is not one (make, CI, pipes)
    return ["exec", *([] if sys.stdin.isatty() else ["-T"]), service]


def capture(args: list[str]) -> subprocess.CompletedProcess:
    directory = project_dir()
    cmd = [*compose_command(), "--project-directory", str(directory), *args]
    return subprocess.run(cmd, cwd=directory, capture_output=True, text=True, check=False)
