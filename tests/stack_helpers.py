"""Helpers for the stack tests: the real ``seghw`` command against a local stack in a temp folder."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import psutil

# Re-exported for the tests: the stack's own view of which processes still run.
from seghw.stack.processes import alive_processes as alive  # noqa: F401
from seghw.stack.processes import cmdline  # noqa: F401

SEGHW = str(Path(sys.executable).parent / "seghw")


def ctrl_c_works() -> None:
    """``preexec_fn`` for a child that a test stops with SIGINT. A runner started in the background of
    a shell ignores SIGINT and a child inherits that, so Python would never raise KeyboardInterrupt."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_free(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
            return True
        except OSError:
            return False


def wait_until(pred: Callable[[], object], timeout: float, every: float = 0.5, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while True:
        value = pred()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(every)


class LocalStack:
    """One local stack in ``root``: its own stack folder, log root, cache and free ports."""

    def __init__(self, root: Path, **env: str):
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        self.dir = root / "stack"
        self.log_root = root / "models"
        self.redis_port = free_port()
        self.visualdl_port = free_port()
        self.env = {k: v for k, v in os.environ.items()
                    if k not in ("REDIS_URL", "VISUALDL_HOST", "SEGHW_VISUALDL_URL", "STACK")}
        self.env.update(
            STACK="local",
            SEGHW_STACK_DIR=str(self.dir),
            SEGHW_LOG_ROOT=str(self.log_root),
            SEGHW_CACHE_DIR=str(root / "cache"),
            REDIS_PORT=str(self.redis_port),
            VISUALDL_PORT=str(self.visualdl_port),
            PYTHONUNBUFFERED="1",
            COLUMNS="200",
            **env,
        )

    def seghw(self, *args: str, timeout: float = 180, env: dict[str, str] | None = None,
              check: bool = False) -> subprocess.CompletedProcess:
        proc = subprocess.run([SEGHW, *args], capture_output=True, text=True, timeout=timeout,
                              env={**self.env, **(env or {})}, cwd=self.root)
        if check and proc.returncode != 0:
            raise AssertionError(f"seghw {' '.join(args)} exited {proc.returncode}:\n{proc.stdout}\n"
                                 f"{proc.stderr}\n--- stack log ---\n{self.log_tail()}")
        return proc

    @property
    def state_file(self) -> Path:
        return self.dir / "state.json"

    def state(self) -> dict:
        return json.loads(self.state_file.read_text())

    def processes(self) -> list[psutil.Process]:
        """The supervisor and everything under it (every process the stack started)."""
        sup = psutil.Process(self.state()["pid"])
        return [sup, *sup.children(recursive=True)]

    def log_tail(self, lines: int = 60) -> str:
        log = self.dir / "stack.log"
        if not log.exists():
            return "(no stack log)"
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])

    def visualdl_url(self) -> str:
        return f"http://127.0.0.1:{self.visualdl_port}"

    def cleanup(self) -> None:
        """Take the stack down whatever happened in the test; kill what is left."""
        if not self.state_file.exists():
            return
        try:
            procs = self.processes()
        except (psutil.Error, OSError, ValueError):
            procs = []
        try:
            self.seghw("stack", "down", timeout=90, env={"SEGHW_STOP_GRACE": "20"})
        except subprocess.TimeoutExpired:
            pass
        for p in procs:
            try:
                p.kill()
            except psutil.Error:
                pass




def read_stats(run_dir: Path) -> dict | None:
    try:
        return json.loads((run_dir / "training_stats.json").read_text())
    except (OSError, ValueError):
        return None
