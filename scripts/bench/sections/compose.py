"""Compose: the stack's start-up as a user meets it, ``docker compose up`` until every service is
healthy and ``make train`` until VisualDL serves the run's first point.

The CPU stack (``compose.cpu.yml``) with the product's own health-check intervals, on the engine that
answers (else a private ``dockerd``, stopped afterwards) and the stand-in base images where no
registry answers.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import subprocess
import time
import urllib.parse
import urllib.request
from pathlib import Path

from ..core import ROOT, Bench, Option, Row, free_port, wait_for

NAME = "compose"
OPTIONS = (Option("compose_epochs", int, 3, 1, "epochs of the run that make train queues on the compose stack"),)
CA = Path("/etc/ssl/certs/ca-certificates.crt")
SERVICES = ("redis", "trainer", "visualdl", "monitor")


class _Stack:
    def __init__(self, env: dict[str, str]):
        self.port = free_port()
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


def measure(b: Bench) -> dict:
    from seghw.stack import engine

    started = None
    if not engine.answers():
        started = engine.start_private(ROOT / "build" / "dockerd" / "data")
        os.environ["DOCKER_HOST"] = started.host  # for every docker command below, base_images' too
    try:
        return _measure(f"--preset cpu-demo --synthetic 64 --epochs {b.args.compose_epochs}")
    finally:
        if started is not None:
            started.stop()


def _measure(train: str) -> dict:
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
        wait_for(stack.healthy, 300, "every service healthy", every=0.5)
        up_s = time.monotonic() - t0
        t0 = time.monotonic()
        sub = stack.run("make", "--no-print-directory", "train", f"ARGS={train}", timeout=300)
        submit_s = time.monotonic() - t0
        run_id = re.search(r"queued (logs_\S+)", sub.stdout).group(1)
        wait_for(lambda: stack.points(run_id, "Iter/Loss"), 300, "the first per-step point in VisualDL", every=0.5)
        first_point_s = time.monotonic() - t0
        wait_for(lambda: stack.points(run_id, "Loss/Train"), 300, "the first Loss/Train point in VisualDL",
                 every=0.5)
        first_epoch_s = time.monotonic() - t0
    finally:
        subprocess.run(["docker", "compose", "down", "-v", "--timeout", "30"], cwd=ROOT, env=stack.env,
                       capture_output=True, check=False)
    return {"build_s": build_s, "up_healthy_s": up_s, "submit_s": submit_s, "first_point_s": first_point_s,
            "first_epoch_s": first_epoch_s, "engine": "a private dockerd" if "seghw-dockerd" in
            os.environ.get("DOCKER_HOST", "") else "the running engine",
            "bases": "official" if official else "stand-in", "train": train}


def summary(b: Bench, r: dict) -> list[Row]:
    return [Row("compose: `docker compose up -d` → all four services healthy", f"{r['up_healthy_s']:.0f} s"),
            Row("compose: `make train` → first point in VisualDL", f"{r['first_point_s']:.0f} s")]


def render(b: Bench, r: dict) -> list[str]:
    return [
        "", "## 8. Compose stack start-up", "",
        f"The CPU stack (`compose.cpu.yml`) on {r['engine']}, {r['bases']} base images, the product's own "
        "health checks (every 30 s: Docker runs the first one a full interval after the start).", "",
        "| step | seconds |", "|---|---|",
        f"| `docker compose build` (layers cached from earlier builds when there are any) | {r['build_s']:.1f} |",
        f"| `docker compose up -d` → all four services healthy | {r['up_healthy_s']:.1f} |",
        f"| `make train ARGS=\"{r['train']}\"` returns (queued) | {r['submit_s']:.1f} |",
        f"| `make train` → first point (`Iter/Loss`) served by VisualDL | {r['first_point_s']:.1f} |",
        f"| `make train` → first `Loss/Train` point (end of epoch 1) | {r['first_epoch_s']:.1f} |",
        "",
        "VisualDL lists a new run only when its run cache (20 s) expires, which bounds the first point from "
        "below; up → healthy is bounded by the first health check, 30 s after the start.",
        f"  Reproduce: `{b.command(NAME)}`.",
    ]
