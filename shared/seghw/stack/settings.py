"""Environment-driven settings of the stack (the local stack's state file is ``seghw.stack.state``)."""

from __future__ import annotations

import os
from pathlib import Path

from seghw.errors import UserError

QUEUE = "train"
STOP_KEY = "seghw:stop:{run_id}"
DEFAULT_STACK_DIR = ".stack"
DEFAULT_REDIS_PORT = 6379
DEFAULT_VISUALDL_PORT = 8040
DEFAULT_VISUALDL_HOST = "127.0.0.1"
# The proxy in front of VisualDL (seghw serve proxy): see docs/stack.md.
DEFAULT_VISUALDL_USER = "visualdl"
DEFAULT_VISUALDL_UPSTREAM = "127.0.0.1:18040"
DEFAULT_PROXY_HOST = "127.0.0.1"
DEFAULT_PROXY_MAX_BODY = "8m"
PROXY_DIR = "proxy"  # under the stack folder, unless SEGHW_PROXY_DIR says otherwise
# The trainer's rq worker: idle workers heartbeat every worker_ttl - 15 s, so a short TTL lets a
# dead worker disappear from the registry within a minute.
WORKER_TTL = 60


class StackError(UserError):
    """The stack cannot start, stop or be reached."""


def stop_key(run_id: str) -> str:
    return STOP_KEY.format(run_id=run_id)


def env_port(name: str, default: int) -> int:
    return env_port_value(os.environ.get(name, ""), name, default)


def env_port_value(raw: str, name: str, default: int) -> int:
    raw = raw.strip()
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


def is_loopback(host: str) -> bool:
    """Whether a server bound to ``host`` is reachable from this machine only."""
    import ipaddress

    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def proxy_dir() -> Path:
    """The proxy's private runtime folder: ``SEGHW_PROXY_DIR``, else ``<stack dir>/proxy``."""
    explicit = os.environ.get("SEGHW_PROXY_DIR")
    return Path(explicit).absolute() if explicit else stack_dir() / PROXY_DIR


def browse_host(host: str) -> str:
    """The address a browser on this machine uses for a server bound to ``host``."""
    return "127.0.0.1" if host in ("0.0.0.0", "::", "") else host


def local_stack_redis() -> tuple[Path | None, str | None]:
    """The state file of the local stack started here and its Redis URL, if one is recorded: the
    stack folder (``SEGHW_STACK_DIR``, else ``./.stack``), else the project's ``.stack``."""
    candidates = [stack_dir()]
    if not os.environ.get("SEGHW_STACK_DIR"):
        try:
            candidates.append(project_dir() / DEFAULT_STACK_DIR)
        except StackError:
            pass
    from seghw.stack.state import read_state, state_path

    for directory in candidates:
        state = read_state(directory)
        if state is not None and state.redis_url:
            return state_path(directory), state.redis_url
    return None, None


# ---------------------------------------------------------------- the compose project

COMPOSE_FILE = "docker-compose.yml"
REDIS_PORT_OVERRIDE = "compose.redis-port.yml"


def project_dir() -> Path:
    """The folder of docker-compose.yml: the current folder or a parent, else the source checkout."""
    here = Path.cwd()
    for d in (here, *here.parents):
        if (d / COMPOSE_FILE).is_file():
            return d
    checkout = Path(__file__).resolve().parents[3]
    if (checkout / COMPOSE_FILE).is_file():
        return checkout
    raise StackError(f"no {COMPOSE_FILE} in {here} or its parents: run this from the project folder")


def project_env() -> dict[str, str]:
    """The project's ``.env`` as Compose reads it (empty when there is none)."""
    try:
        path = project_dir() / ".env"
    except StackError:
        return {}
    if not path.is_file():
        return {}
    from dotenv import dotenv_values

    return {k: v for k, v in dotenv_values(path).items() if v is not None}


def env_value(name: str, default: str = "") -> str:
    """A setting as Compose sees it: the environment, else the project's ``.env``, else ``default``."""
    return os.environ.get(name) or project_env().get(name) or default


def compose_published_redis() -> tuple[str, str] | None:
    """(URL, source) of the compose stack's Redis when the settings publish it on this host."""
    from seghw.connection import url_with_password

    files = env_value("COMPOSE_FILE").replace(";", ":").split(":")
    if not any(Path(f).name == REDIS_PORT_OVERRIDE for f in files):
        return None
    password = env_value("REDIS_PASSWORD")
    port = env_port_value(env_value("REDIS_PORT"), "REDIS_PORT", DEFAULT_REDIS_PORT)
    return url_with_password("127.0.0.1", port, password), f"the compose stack, {REDIS_PORT_OVERRIDE} in .env"


def visualdl_url() -> str:
    url = os.environ.get("SEGHW_VISUALDL_URL")
    if url:
        return url
    from seghw.stack.state import read_state

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
    from seghw.stack.state import read_state

    state = read_state()
    if state is not None:
        return state.log_root
    return log_root()
