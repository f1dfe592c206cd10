"""Environment-driven settings of the stack, and the local stack's state file."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from seghw.atomic import write_json_atomic
from seghw.errors import UserError

QUEUE = "train"
STOP_KEY = "seghw:stop:{run_id}"
DEFAULT_STACK_DIR = ".stack"
DEFAULT_REDIS_PORT = 6379
DEFAULT_VISUALDL_PORT = 8040
DEFAULT_VISUALDL_HOST = "127.0.0.1"
STATE_FILE = "state.json"
# The trainer's rq worker: idle workers heartbeat every worker_ttl - 15 s, so a short TTL lets a
# dead worker disappear from the registry within a minute.
WORKER_TTL = 60


class StackError(UserError):
    """The stack cannot start, stop or be reached."""


def stop_key(run_id: str) -> str:
    return STOP_KEY.format(run_id=run_id)


def env_port(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        port = int(raw)
    except ValueError:
        raise StackError(f"{name}={raw!r} is not a port number (1-65535)") from None
    if not 1 <= port <= 65535:
        raise StackError(f"{name}={raw!r} is not a port number (1-65535)")
    return port


def stack_dir() -> Path:
    return Path(os.environ.get("SEGHW_STACK_DIR") or DEFAULT_STACK_DIR).absolute()


def visualdl_host() -> str:
    return os.environ.get("VISUALDL_HOST") or DEFAULT_VISUALDL_HOST


def browse_host(host: str) -> str:
    """The address a browser on this machine uses for a server bound to ``host``."""
    return "127.0.0.1" if host in ("0.0.0.0", "::", "") else host


@dataclass(frozen=True)
class State:
    """What ``stack up`` started: read by ``down``, ``status``, ``submit``, ``stop``, ``logs``."""

    data: dict[str, Any]

    @property
    def redis_url(self) -> str:
        return self.data["redis_url"]

    @property
    def log_root(self) -> Path:
        return Path(self.data["log_root"])

    @property
    def visualdl_url(self) -> str:
        return self.data["visualdl_url"]

    @property
    def log_file(self) -> Path:
        return Path(self.data["log_file"])


def state_path(directory: Path | None = None) -> Path:
    return (directory or stack_dir()) / STATE_FILE


def read_state(directory: Path | None = None) -> State | None:
    path = state_path(directory)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise StackError(f"cannot read the stack state {path}: {exc}; remove it if no stack runs") from None
    return State(data)


def write_state(data: dict[str, Any], directory: Path | None = None) -> Path:
    # The state holds the local Redis password: the atomic writer's temp file is created 0600.
    return write_json_atomic(state_path(directory), data)


def remove_state(directory: Path | None = None) -> None:
    state_path(directory).unlink(missing_ok=True)


def redis_url(required: bool = True) -> str | None:
    """``REDIS_URL``, else the URL of the running local stack."""
    url = os.environ.get("REDIS_URL")
    if url:
        return url
    state = read_state()
    if state is not None:
        return state.redis_url
    if required:
        raise StackError("no Redis to talk to: start the stack (make up) or set REDIS_URL")
    return None


def visualdl_url() -> str:
    url = os.environ.get("SEGHW_VISUALDL_URL")
    if url:
        return url
    state = read_state()
    if state is not None:
        return state.visualdl_url
    port = env_port("VISUALDL_PORT", DEFAULT_VISUALDL_PORT)
    return f"http://{browse_host(visualdl_host())}:{port}"


def default_log_root() -> Path:
    """``SEGHW_LOG_ROOT``, else the running local stack's, else ``./models``."""
    from seghw.paths import log_root

    if os.environ.get("SEGHW_LOG_ROOT"):
        return log_root()
    state = read_state()
    if state is not None:
        return state.log_root
    return log_root()
