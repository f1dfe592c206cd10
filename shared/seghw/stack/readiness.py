"""Waiting for the local stack's roles to come up, and what to show when one does not."""

from __future__ import annotations

import re
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from seghw.stack.settings import QUEUE, StackError
from seghw.stack.state import State


def _visualdl_alive(url: str) -> bool:
    try:
        with urllib.request.urlopen(url + "/alive", timeout=2) as resp:
            return resp.status == 204
    except (urllib.error.URLError, OSError, ValueError):
        return False


def _proxy_up(url: str) -> bool:
    from seghw.roles.proxy import health

    return health(url, timeout=2)[0] == "up"


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


def wait_ready(proc: subprocess.Popen, state: State, timeout: float, log_offset: int) -> None:
    """Until Redis answers, the trainer's worker is registered, VisualDL's /alive gives 204 (and
    the proxy answers, when there is one); a role that exits, or the timeout, is a one-line error."""
    import redis

    from seghw.connection import RedisUnavailable, connect

    log = state.log_file
    deadline = time.monotonic() + timeout
    pending = {"Redis": True, "the trainer worker": True, "VisualDL": True}
    if state.proxy:
        pending["the proxy"] = True
    conn = None
    while True:
        if proc.poll() is not None:
            exited = _first_exit(log, log_offset)
            why = (f"{exited[0]} exited with code {exited[1]}" if exited
                   else f"the supervisor exited with code {proc.returncode}")
            print_tail(log, log_offset, role=exited[0] if exited else None)
            raise StackError(f"the local stack stopped while starting ({why}); see {log}")
        if pending["Redis"]:
            try:
                conn = connect(state.redis_url, decode=False, wait=0, socket_timeout=5)
                pending["Redis"] = False
            except RedisUnavailable:
                pass
        if conn is not None and pending["the trainer worker"]:
            try:
                pending["the trainer worker"] = not _trainer_registered(conn)
            except (redis.RedisError, OSError):
                pass
        if pending["VisualDL"]:
            pending["VisualDL"] = not _visualdl_alive(state.visualdl_probe)
        if pending.get("the proxy") and not pending["VisualDL"]:
            # Asked once VisualDL answers: each "down" is a line in the proxy's error log.
            pending["the proxy"] = not _proxy_up(state.proxy["url"])
        if not any(pending.values()):
            return
        if time.monotonic() > deadline:
            what = ", ".join(k for k, v in pending.items() if v)
            print_tail(log, log_offset)
            raise StackError(
                f"{what} did not come up within {timeout:.0f} s (SEGHW_START_TIMEOUT); see {log}"
            )
        time.sleep(0.25)


def print_tail(log: Path, offset: int, role: str | None = None) -> None:
    tail = _tail(log, offset, role=role)
    if tail:
        print(f"--- last lines of {log} ---\n{tail}\n---", file=sys.stderr)
