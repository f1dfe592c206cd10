"""A Docker Engine to talk to: the one that answers, or a private ``dockerd`` started for a while.

Machines without a running engine (a CI runner, a development box with Debian's ``docker.io``
installed but not started) can still run the containers: ``start_private`` runs ``dockerd`` as root
with its own data root, exec root and socket, so it touches no system engine, and ``stop`` ends it.
The data root is kept between runs (image layers stay cached); the exec root and socket live in
``/run``, whose short paths keep containerd's sockets under the length Unix allows.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from seghw.stack.settings import StackError

EXEC_ROOT = Path("/run/seghw-dockerd")


def answers(env: dict[str, str] | None = None, timeout: float = 20.0) -> bool:
    """Whether ``docker info`` succeeds with this environment (``DOCKER_HOST`` decides which engine)."""
    docker = shutil.which("docker")
    if not docker:
        return False
    try:
        done = subprocess.run([docker, "info"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              timeout=timeout, check=False, env=env)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0


@dataclass
class PrivateEngine:
    """A ``dockerd`` this process started (or found still running from an earlier start)."""

    data_root: Path
    pid: int
    started_here: bool
    proc: subprocess.Popen | None = None

    @property
    def socket(self) -> Path:
        return EXEC_ROOT / "docker.sock"

    @property
    def host(self) -> str:
        return f"unix://{self.socket}"

    def env(self) -> dict[str, str]:
        return {**os.environ, "DOCKER_HOST": self.host}

    def stop(self, timeout: float = 30.0) -> None:
        """Stop the daemon if this process started it; its containers stop with it."""
        if not self.started_here:
            return
        try:
            os.kill(self.pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        if self.proc is not None:
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            return
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and _alive(self.pid):
            time.sleep(0.2)
        if _alive(self.pid):
            os.kill(self.pid, signal.SIGKILL)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie child counts as gone
        with open(f"/proc/{pid}/stat", encoding="ascii") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def why_not_private() -> str | None:
    """Why a private engine cannot be started here, or None if it can."""
    if os.geteuid() != 0:
        return "dockerd needs root (run as root, or start Docker yourself and set DOCKER_HOST)"
    if not shutil.which("dockerd"):
        return "dockerd is not installed (Debian: apt-get install docker.io; make tools does it)"
    return None


def start_private(data_root: Path, timeout: float = 60.0) -> PrivateEngine:
    """Start ``dockerd`` on ``EXEC_ROOT/docker.sock`` with ``data_root``; reuse one already there."""
    reason = why_not_private()
    if reason:
        raise StackError(f"cannot start a Docker engine: {reason}")
    data_root = Path(data_root).absolute()
    data_root.mkdir(parents=True, exist_ok=True)
    EXEC_ROOT.mkdir(parents=True, exist_ok=True)
    pidfile = EXEC_ROOT / "dockerd.pid"
    engine = PrivateEngine(data_root, 0, started_here=False)
    try:
        old = int(pidfile.read_text().strip())
    except (OSError, ValueError):
        old = 0
    if old and _alive(old) and answers(engine.env(), timeout=10):
        engine.pid = old
        return engine
    log = open(data_root.parent / "dockerd.log", "ab")  # noqa: SIM115 (kept open for the daemon)
    proc = subprocess.Popen(
        ["dockerd", "--data-root", str(data_root), "--exec-root", str(EXEC_ROOT / "exec"),
         "--pidfile", str(pidfile), "-H", engine.host],
        stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )
    log.close()
    engine.pid, engine.started_here, engine.proc = proc.pid, True, proc
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = (data_root.parent / "dockerd.log").read_text(errors="replace").strip().splitlines()[-1:]
            raise StackError(f"dockerd exited with code {proc.returncode}: {tail[0] if tail else ''} "
                             f"(log: {data_root.parent / 'dockerd.log'})")
        if engine.socket.exists() and answers(engine.env(), timeout=5):
            return engine
        time.sleep(0.3)
    engine.stop()
    raise StackError(f"dockerd did not answer within {timeout:.0f} s (log: {data_root.parent / 'dockerd.log'})")
