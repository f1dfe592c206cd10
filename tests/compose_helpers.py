"""The compose tier's harness: a Docker Engine (the one that answers, else a private dockerd), base
images (the official ones where a registry answers, else the stand-ins of ``make base-images``),
and one compose project with its own name, ports, password and container name."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

from seghw.stack import engine as engines

from stack_helpers import free_port, wait_until

REPO = Path(__file__).resolve().parents[1]
ARTIFACTS = REPO / "test-artifacts"
ENGINE_DATA = REPO / "build" / "dockerd" / "data"
SYSTEM_CA = Path("/etc/ssl/certs/ca-certificates.crt")
# Health checks every few seconds instead of 30: the same checks, found healthy sooner.
FAST_CHECKS = "tests/compose.fast-checks.yml"
SERVICES = ("redis", "trainer", "visualdl", "proxy", "monitor")


def run(cmd: list[str], env: dict[str, str], timeout: float = 600, check: bool = True,
        input: str | None = None) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, env=env, cwd=REPO, capture_output=True, text=True, timeout=timeout, input=input)
    if check and proc.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} exited {proc.returncode}:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return proc


def base_images(env: dict[str, str]) -> dict[str, str]:
    """The settings that point the builds at usable bases: the official images where they can be had,
    else the stand-ins (built here when they are missing or stale). The Paddle stand-in stands in for
    the GPU image in any case: no test pulls gigabytes of CUDA."""
    t0 = time.monotonic()
    done = run([sys.executable, "-c", "import json, sys; from seghw.stack import base_images as b; "
                "print(json.dumps([b.official_available(), b.ensure(sys.argv[1] or None)]))",
                str(SYSTEM_CA) if SYSTEM_CA.is_file() else ""], env, timeout=900)
    note_timing("base images (make base-images)", time.monotonic() - t0)
    official, settings = json.loads(done.stdout.strip().splitlines()[-1])
    return {"PADDLE_IMAGE": settings["PADDLE_IMAGE"]} if official else settings


def note_timing(what: str, seconds: float) -> None:
    """Kept as a test artifact: what each step of the tier took on this machine."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with open(ARTIFACTS / "compose_timings.txt", "a", encoding="utf-8") as fh:
        fh.write(f"{time.strftime('%H:%M:%S')} {what}: {seconds:.1f} s\n")


class Project:
    """One compose project of the CPU stack, driven the way a user drives it."""

    def __init__(self, env: dict[str, str], bases: dict[str, str]):
        self.name = f"seghwtest{secrets.token_hex(3)}"
        self.visualdl_port = free_port()
        self.password = secrets.token_hex(16)
        taken = run(["docker", "ps", "-a", "--format", "{{.Names}}"], env).stdout.split()
        self.trainer = "seghandwriting-app" if "seghandwriting-app" not in taken else f"seghandwriting-app-{self.name}"
        files = ["compose.cpu.yml", FAST_CHECKS]
        if SYSTEM_CA.is_file():
            files.append("compose.build-ca.yml")
        self.env = {
            **env,
            **{k: v for k, v in bases.items() if v},
            "STACK": "compose",
            "COMPOSE_PROJECT_NAME": self.name,
            "COMPOSE_FILE": ":".join(files),
            "REDIS_PASSWORD": self.password,
            "VISUALDL_PORT": str(self.visualdl_port),
            "MONITOR_INTERVAL": "2",
            "TRAINER_CONTAINER_NAME": self.trainer,
            "SEGHW_IMAGE_TAG": "test",
            "PYTHONUNBUFFERED": "1",
            "COLUMNS": "200",
        }
        if SYSTEM_CA.is_file():
            self.env["BUILD_CA_BUNDLE"] = str(SYSTEM_CA)
        for name in ("REDIS_URL", "SEGHW_STACK_DIR"):
            self.env.pop(name, None)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.visualdl_port}"

    def compose(self, *args: str, timeout: float = 600, check: bool = True) -> subprocess.CompletedProcess:
        return run(["docker", "compose", *args], self.env, timeout=timeout, check=check)

    def make(self, target: str, args: str | None = None, timeout: float = 300,
             check: bool = True) -> subprocess.CompletedProcess:
        cmd = ["make", "--no-print-directory", target] + ([f"ARGS={args}"] if args is not None else [])
        return run(cmd, self.env, timeout=timeout, check=check)

    def docker(self, *args: str, timeout: float = 120, check: bool = True) -> subprocess.CompletedProcess:
        return run(["docker", *args], self.env, timeout=timeout, check=check)

    def container(self, service: str) -> str:
        ids = self.compose("ps", "-aq", service).stdout.split()
        assert len(ids) == 1, f"{service}: {ids}"
        return ids[0]

    def exec(self, service: str, *cmd: str, user: str | None = None, check: bool = True,
             timeout: float = 120) -> subprocess.CompletedProcess:
        return self.compose("exec", "-T", *(["--user", user] if user else []), service, *cmd,
                            check=check, timeout=timeout)

    def health(self) -> dict[str, str]:
        out = {}
        for service in SERVICES:
            ids = self.compose("ps", "-q", service, check=False).stdout.split()
            if not ids:
                out[service] = "absent"
                continue
            inspected = self.docker("inspect", "--format", "{{.State.Status}} {{if .State.Health}}"
                                    "{{.State.Health.Status}}{{end}}", ids[0], check=False).stdout.split()
            out[service] = inspected[-1] if inspected else "absent"
        return out

    def wait_healthy(self, timeout: float = 240) -> dict[str, str]:
        def all_healthy():
            h = self.health()
            return h if all(v == "healthy" for v in h.values()) else None

        return wait_until(all_healthy, timeout, every=1,
                          what=f"every service healthy ({self.health()})\n{self.logs_tail()}")

    def logs_tail(self, lines: int = 40) -> str:
        return self.compose("logs", "--no-color", f"--tail={lines}", check=False).stdout[-6000:]

    def status(self) -> tuple[int, dict]:
        proc = self.make("status", "--json", check=False)
        text = proc.stdout[proc.stdout.find("{"):] if "{" in proc.stdout else "{}"
        return proc.returncode, json.loads(text)

    def run_entry(self, run_id: str) -> tuple[int, dict | None]:
        code, doc = self.status()
        return code, next((r for r in doc.get("runs", []) if r["run_id"] == run_id), None)

    def wait_run(self, run_id: str, pred: Callable[[dict], bool], timeout: float, what: str) -> tuple[int, dict]:
        def check():
            code, entry = self.run_entry(run_id)
            return (code, entry) if entry and pred(entry) else None

        return wait_until(check, timeout, every=1, what=f"{run_id}: {what}\n{self.logs_tail()}")

    def get_json(self, path: str) -> dict:
        with urllib.request.urlopen(self.url + path, timeout=30) as resp:
            return json.loads(resp.read())

    def vdl_scalar_steps(self, run_id: str, tag: str) -> list[int]:
        """The steps of a scalar as VisualDL's API serves them (``[wall time, step, value]`` each)."""
        from urllib.parse import quote

        self.get_json("/app/api/component_tabs")  # makes VisualDL load new records
        runs = self.get_json("/app/api/runs")["data"]
        name = next((r for r in runs if r == run_id or r.endswith("/" + run_id)), None)
        if name is None:
            return []
        data = self.get_json(f"/app/api/scalar/list?run={quote(name)}&tag={quote(tag)}")["data"]
        return [int(p[1]) for p in data]

    def down(self, *flags: str) -> None:
        self.compose("down", *flags, "--timeout", "30", timeout=300, check=False)


def private_engine_env() -> tuple[dict[str, str], engines.PrivateEngine | None, str | None]:
    """(environment, the engine started here or None, why the tier cannot run or None)."""
    env = dict(os.environ)
    if engines.answers(env):
        return env, None, None
    reason = engines.why_not_private()
    if reason:
        return env, None, f"no Docker engine answers and {reason}"
    engine = engines.start_private(ENGINE_DATA)
    return engine.env(), engine, None
