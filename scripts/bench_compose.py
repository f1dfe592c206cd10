"""The compose stack's start-up, as a user meets it: ``docker compose up`` until every service is
healthy, and ``make train`` until VisualDL serves the run's first point.

The CPU stack (``compose.cpu.yml``) with the product's own health-check intervals, on the engine that
answers (else a private ``dockerd``, stopped afterwards) and the stand-in base images where no
registry answers. ``measure(tmp)`` returns the figures, ``render(result)`` their markdown; run alone,
``python scripts/bench_compose.py`` prints it.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CA = Path("/etc/ssl/certs/ca-certificates.crt")
SERVICES = ("redis", "trainer", "visualdl", "monitor")
TRAIN = "--preset cpu-demo --synthetic 64 --epochs 3"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait(pred, timeout: float, what: str, every: float = 0.5):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = pred()
        if value:
            return value
        time.sleep(every)
    raise RuntimeError(f"timed out after {timeout:.0f} s waiting for {what}")


class _Stack:
    def __init__(self, env: dict[str, str]):
        self.port = _free_port()
        files = ["compose.cpu.yml"] + (["compose.build-ca.yml"] if CA.is_file() else [])
        self.env = {**env, "STACK": "compose", "COMPOSE_PROJECT_NAME": f"seghwbench{secrets.token_hex(3)}",
                    "COMPOSE_FILE": ":".join(files), "REDIS_PASSWORD": secrets.token_hex(16),
                    "VISUALDL_PORT": str(self.port), "SEGHW_IMAGE_TAG": "bench",
                    "TRAINER_CONTAINER_NAME": f"seghandwriting-app-bench-{secrets.token_hex(3)}"}
        if CA.is_file():
            self.env["BUILD_CA_BUNDLE"] = str(CA)

    def run(self, *cmd: str, timeout: float = 1200) -> subprocess.CompletedProcess:
        done = subprocess.run(cmd, cwd=ROOT, env=self.env, capture_output=True, text=True, timeout=timeout)
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)} exited {done.returncode}: {(done.stderr or done.stdout)[-800:]}")
        return done

    def healthy(self) -> bool:
        ids = self.run("docker", "compose", "ps", "-q").stdout.split()
        if len(ids) < len(SERVICES):
            return False
        states = self.run("docker", "inspect", "--format", "{{if .State.Health}}{{.State.Health.Status}}{{end}}",
                          *ids).stdout.split()
        return states == ["healthy"] * len(ids)

    def points(self, run_id: str, tag: str) -> int:
        base = f"http://127.0.0.1:{self.port}/app/api"
        try:
            with urllib.request.urlopen(base + "/runs", timeout=10) as resp:
                runs = json.loads(resp.read())["data"]
            name = next((r for r in runs if r == run_id or r.endswith("/" + run_id)), None)
            if name is None:
                return 0
            query = urllib.parse.urlencode({"run": name, "tag": tag})
            with urllib.request.urlopen(f"{base}/scalar/list?{query}", timeout=10) as resp:
                return len(json.loads(resp.read())["data"] or [])
        except (OSError, ValueError, KeyError):
            return 0


def measure(tmp: Path) -> dict:
    from seghw.stack import engine

    started = None
    if not engine.answers():
        started = engine.start_private(ROOT / "build" / "dockerd" / "data")
        os.environ["DOCKER_HOST"] = started.host  # for every docker command below, base_images' too
    try:
        return _measure()
    finally:
        if started is not None:
            started.stop()


def _measure() -> dict:
    from seghw.stack import base_images

    official = base_images.official_available()
    bases = {} if official else base_images.ensure(str(CA) if CA.is_file() else None)
    stack = _Stack({**os.environ, **{k: v for k, v in bases.items() if k != "PADDLE_IMAGE"}})
    try:
        t0 = time.monotonic()
        stack.run("docker", "compose", "build")
        build_s = time.monotonic() - t0
        t0 = time.monotonic()
        stack.run("docker", "compose", "up", "-d")
        _wait(stack.healthy, 300, "every service healthy", every=0.5)
        up_s = time.monotonic() - t0
        t0 = time.monotonic()
        sub = stack.run("make", "--no-print-directory", "train", f"ARGS={TRAIN}", timeout=300)
        submit_s = time.monotonic() - t0
        run_id = re.search(r"queued (logs_\S+)", sub.stdout).group(1)
        _wait(lambda: stack.points(run_id, "Iter/Loss"), 300, "the first per-step point in VisualDL")
        first_point_s = time.monotonic() - t0
        _wait(lambda: stack.points(run_id, "Loss/Train"), 300, "the first Loss/Train point in VisualDL")
        first_epoch_s = time.monotonic() - t0
    finally:
        subprocess.run(["docker", "compose", "down", "-v", "--timeout", "30"], cwd=ROOT, env=stack.env,
                       capture_output=True, check=False)
    return {"build_s": build_s, "up_healthy_s": up_s, "submit_s": submit_s, "first_point_s": first_point_s,
            "first_epoch_s": first_epoch_s, "engine": "a private dockerd" if "seghw-dockerd" in
            os.environ.get("DOCKER_HOST", "") else "the running engine",
            "bases": "official" if official else "stand-in"}


def render(r: dict) -> list[str]:
    return [
        "", "## Compose stack start-up", "",
        f"The CPU stack (`compose.cpu.yml`) on {r['engine']}, {r['bases']} base images, the product's own "
        "health checks (every 30 s: Docker runs the first one a full interval after the start).", "",
        "| step | seconds |", "|---|---|",
        f"| `docker compose build` (layers cached from earlier builds when there are any) | {r['build_s']:.1f} |",
        f"| `docker compose up -d` → all four services healthy | {r['up_healthy_s']:.1f} |",
        f"| `make train ARGS=\"{TRAIN}\"` returns (queued) | {r['submit_s']:.1f} |",
        f"| `make train` → first point (`Iter/Loss`) served by VisualDL | {r['first_point_s']:.1f} |",
        f"| `make train` → first `Loss/Train` point (end of epoch 1) | {r['first_epoch_s']:.1f} |",
        "",
        "VisualDL lists a new run only when its run cache (20 s) expires, which bounds the first point from "
        "below; up → healthy is bounded by the first health check, 30 s after the start.",
    ]


if __name__ == "__main__":
    import tempfile

    sys.path.insert(0, str(ROOT / "shared"))
    with tempfile.TemporaryDirectory() as tmp:
        print("\n".join(render(measure(Path(tmp)))))
