"""The local stack's processes: finding them again (pid and start time, so a reused pid is not
taken for a role), telling which role each is, and stopping them."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from seghw.stack.state import State


def find_process(pid: int | None, create_time: float | None):
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
    return find_process(state.pid, state.create_time)


def tree(root) -> list:
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


def role_of(p) -> str | None:
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
    for p in tree(supervisor(state))[1:]:
        role = role_of(p)
        if role and role not in found:
            found[role] = p
    return found


def recorded(state: State) -> list:
    procs = []
    for rec in state.processes:
        p = find_process(rec.get("pid"), rec.get("create_time"))
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


def merge(*groups: Iterable) -> list:
    seen: dict[tuple[int, float], Any] = {}
    for group in groups:
        for p in group:
            try:
                seen.setdefault((p.pid, p.create_time()), p)
            except Exception:  # noqa: BLE001 - a process that just ended
                pass
    return list(seen.values())


def kill(procs: list) -> None:
    import psutil

    for p in alive_processes(procs):
        try:
            p.kill()
        except psutil.Error:
            pass
    psutil.wait_procs(procs, timeout=5)


def wait_gone(roots: list, timeout: float) -> list:
    """Wait until ``roots`` and all their descendants have exited; return every process seen."""
    seen = list(roots)
    deadline = time.monotonic() + timeout
    while True:
        now = []
        for r in alive_processes(roots):
            now += tree(r)
        seen = merge(seen, now)
        live = alive_processes(seen)
        if not live or time.monotonic() > deadline:
            return seen
        time.sleep(0.2)


def terminate_groups(procs: list) -> None:
    for p in procs:
        try:
            os.killpg(p.pid, signal.SIGTERM)  # a role leads its own process group
        except OSError:
            pass
