"""``seghw serve visualdl``: one VisualDL server over the whole log root (runs are subfolders)."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

from seghw.stack.settings import DEFAULT_VISUALDL_PORT, StackError, env_port, visualdl_host


def visualdl_executable() -> str:
    beside = Path(sys.executable).parent / "visualdl"
    if beside.exists():
        return str(beside)
    found = shutil.which("visualdl")
    if not found:
        raise StackError("the visualdl command is not installed (pip install visualdl==2.5.3)")
    return found


def visualdl_command(log_root: Path) -> list[str]:
    host = visualdl_host()
    port = env_port("VISUALDL_PORT", DEFAULT_VISUALDL_PORT)
    # --disable-telemetry: otherwise it POSTs to a remote server at start and may rewrite its own
    # record_pb2.py from the reply. -L: /app/index answers 500 without Accept-Language.
    return [visualdl_executable(), "--logdir", str(log_root), "--host", host, "--port", str(port),
            "--disable-telemetry", "-L", os.environ.get("VISUALDL_LANGUAGE", "en")]


def serve_visualdl(log_root: Path) -> None:
    log_root.mkdir(parents=True, exist_ok=True)
    cmd = visualdl_command(log_root)
    print("seghw visualdl: " + " ".join(cmd), flush=True)
    # exec: the server takes this process's pid, so SIGTERM/SIGINT reach it directly.
    os.execv(cmd[0], cmd)
