"""``seghw serve monitor``: one foreground process that keeps two children alive.

- worker: an rq worker on queue ``monitor`` that runs the collect jobs;
- scheduler: rq's cron scheduler enqueueing a collect every interval, but only while it holds the
  leader key in Redis, so a second monitor started by mistake stands by instead of doubling the
  work (and the alerts).

A child that exits (Redis gone long enough for rq to give up, a crash) is restarted with backoff.
SIGTERM or Ctrl-C stops both children cleanly (the worker finishes its current job first)."""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from seghw import connection
from seghw.monitor import store

if TYPE_CHECKING:
    import redis

log = logging.getLogger("seghw.monitor")

STOP_GRACE_S = 20.0
# Compare-and-set: keep or take the lead; never steal it from a live holder.
LEADER_LUA = """
local holder = redis.call('GET', KEYS[1])
if holder == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
if not holder then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
return 0
"""
RELEASE_LUA = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


def worker_ttl(interval: float) -> int:
    """rq's worker TTL. An idle rq worker heartbeats every ttl - 15 s; collects arrive every
    interval and each one heartbeats too, so the heartbeat is never older than this."""
    return int(max(30, 3 * interval))


def leader_ttl(interval: float) -> float:
    """How long the lead survives a silent scheduler (crash, network split) before another takes it."""
    return max(5.0, 3 * interval)


def _setup_logging() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s",
                        datefmt="%H:%M:%S")


class Backoff:
    def __init__(self, cap: float, base: float = 0.5):
        self.cap, self.base, self.failures = cap, base, 0

    def next(self) -> float:
        self.failures += 1
        return min(self.cap, self.base * 2 ** (self.failures - 1))

    def reset(self) -> None:
        self.failures = 0


# ---------------------------------------------------------------- supervisor


@dataclass
class Child:
    role: str
    argv: list[str]
    proc: subprocess.Popen | None = None
    started_at: float = 0.0
    next_start: float = 0.0
    backoff: Backoff | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(self.argv, preexec_fn=_die_with_parent)
        self.started_at = time.monotonic()
        log.info("monitor %s started (pid %d)", self.role, self.proc.pid)


def _die_with_parent() -> None:
    # If the supervisor is killed outright, its children must not live on unwatched.
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def serve_monitor(log_root: Path, interval: float) -> int:
    """Run the role in the foreground until SIGTERM/SIGINT. Returns the exit code."""
    _setup_logging()
    url = connection.redis_url()
    connection.connect(url)  # a malformed REDIS_URL is a one-line error now, not a restart loop later
    base = [sys.executable, "-m", "seghw.roles.monitor"]
    args = ["--log-root", str(log_root), "--interval", str(interval)]
    children = [Child("worker", [*base, "worker", *args]), Child("scheduler", [*base, "scheduler", *args])]
    for c in children:
        c.backoff = Backoff(cap=max(2.0, interval), base=0.5)
    stopping: list[int] = []

    def request_stop(signum, _frame) -> None:
        stopping.append(signum)

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    log.info("monitor role: collecting %s every %g s into %s", log_root, interval, connection.describe_url(url))
    while not stopping:
        now = time.monotonic()
        for c in children:
            if c.proc is None:
                if now >= c.next_start:
                    c.start()
                continue
            rc = c.proc.poll()
            if rc is None:
                continue
            if now - c.started_at > 60:
                c.backoff.reset()
            delay = c.backoff.next()
            log.warning("monitor %s exited with code %s; restarting in %.1f s", c.role, rc, delay)
            c.proc, c.next_start = None, now + delay
        time.sleep(0.2)
    log.info("monitor role: stopping (signal %d)", stopping[0])
    for c in children:
        if c.proc and c.proc.poll() is None:
            c.proc.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + STOP_GRACE_S
    for c in children:
        if c.proc is None:
            continue
        try:
            c.proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            log.warning("monitor %s did not stop in %.0f s; killing it", c.role, STOP_GRACE_S)
            c.proc.kill()
            c.proc.wait()
    log.info("monitor role: stopped")
    return 0


# ---------------------------------------------------------------- children


def wait_for_redis(conn: redis.Redis, cap: float, stopped: Callable[[], bool]) -> bool:
    """Block until Redis answers (backoff capped at ``cap``). False if asked to stop meanwhile."""
    import redis as redis_lib

    backoff = Backoff(cap=cap)
    while not stopped():
        try:
            conn.ping()
            if backoff.failures:
                log.info("Redis at %s is back", connection.describe_url(connection.redis_url()))
            return True
        except (redis_lib.ConnectionError, redis_lib.TimeoutError) as exc:
            delay = backoff.next()
            if backoff.failures == 1 or delay >= cap:
                log.warning("%s; retrying in %.1f s", connection.unreachable_message(exc), delay)
            end = time.monotonic() + delay
            while time.monotonic() < end and not stopped():
                time.sleep(0.1)
    return False


def _monitor_worker_class():
    from rq import Worker, worker_registration

    from seghw.rq_teardown import SurvivesRedisGone

    class MonitorWorker(SurvivesRedisGone, Worker):
        """rq's worker, re-registering itself if Redis lost its data (a restart without
        persistence), so that ``rq info`` and ``seghw health`` see it again."""

        def heartbeat(self, timeout: int | None = None, pipeline: Any = None):
            super().heartbeat(timeout, pipeline)
            if pipeline is not None or self.connection.hexists(self.key, "birth"):
                return
            log.warning("monitor worker %s: its registration is gone (Redis restarted?); registering again",
                        self.name)
            with self.connection.pipeline() as p:
                p.hset(self.key, mapping={**self.serialize(), "state": self.get_state()})
                worker_registration.register(self, p)
                p.expire(self.key, timeout or self.worker_ttl + 60)
                p.execute()

    return MonitorWorker


def run_worker(interval: float) -> int:
    from rq import Queue

    from seghw.monitor import collect  # noqa: F401  (loaded once here, not in every forked job)

    _setup_logging()
    stop: list[int] = []
    signal.signal(signal.SIGTERM, lambda s, f: stop.append(s))
    signal.signal(signal.SIGINT, lambda s, f: stop.append(s))
    conn = connection.connect(decode=False)
    if not wait_for_redis(conn, max(1.0, interval), lambda: bool(stop)):
        return 0
    worker = _monitor_worker_class()(
        [Queue(store.QUEUE, connection=conn)],
        connection=conn,
        worker_ttl=worker_ttl(interval),
        job_monitoring_interval=max(5, int(interval)),
    )
    # rq retries a lost connection with backoff up to 60 s; keep it within one interval so that
    # the status recovers soon after Redis does.
    worker.max_connection_wait_time = max(1.0, interval)
    if stop:
        return 0
    log.info("monitor worker %s: listening on queue %r", worker.name, store.QUEUE)
    # rq logs four lines per job at INFO: too chatty for a job every few seconds.
    worker.work(logging_level="WARNING")
    return 0


def collect_job_options(interval: float) -> dict[str, Any]:
    return {
        "job_timeout": int(max(30, 5 * interval)),
        "ttl": int(max(10, 3 * interval)),  # a collect nobody picked up in time is dropped, not piled up
        "result_ttl": int(max(60, 10 * interval)),
        "failure_ttl": 86400,
    }


def run_scheduler(log_root: str, interval: float) -> int:
    import redis as redis_lib
    from rq.cron import CronScheduler

    from seghw.monitor.collect import collect_job

    _setup_logging()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda s, f: stop.set())
    signal.signal(signal.SIGINT, lambda s, f: stop.set())
    conn = connection.connect(decode=False)
    cron = CronScheduler(connection=conn)
    cron.register(collect_job, queue_name=store.QUEUE, kwargs={"log_root": log_root, "interval": interval},
                  interval=interval, **collect_job_options(interval))
    take_lead = conn.register_script(LEADER_LUA)
    release = conn.register_script(RELEASE_LUA)
    ttl = leader_ttl(interval)
    leader, backoff = False, Backoff(cap=max(1.0, interval))
    logging.getLogger("rq.cron").setLevel(logging.WARNING)  # one "Enqueued" line per interval otherwise
    log.info("monitor scheduler %s: collect every %g s when leading", cron.name, interval)
    while not stop.is_set():
        try:
            if take_lead(keys=[store.SCHEDULER_LEADER], args=[cron.name, int(ttl * 1000)]):
                if not leader:
                    log.info("monitor scheduler %s: leading", cron.name)
                    cron.register_birth()
                    leader = True
                if cron.enqueue_jobs():
                    cron.save()
                cron.heartbeat()
                conn.set(store.SCHEDULER_HEARTBEAT, json.dumps({
                    "name": cron.name, "host": socket.gethostname(), "pid": os.getpid(),
                    "interval": interval, "at": time.time(),
                }), px=int(ttl * 1000))
                sleep = min(cron.calculate_sleep_interval(), ttl / 3)
            else:
                if leader:
                    log.warning("monitor scheduler %s: lost the lead", cron.name)
                    cron.register_death()
                    leader = False
                sleep = ttl / 3
            if backoff.failures:
                log.info("monitor scheduler %s: Redis is back", cron.name)
            backoff.reset()
        except (redis_lib.ConnectionError, redis_lib.TimeoutError) as exc:
            sleep = backoff.next()
            if backoff.failures == 1:
                log.warning("%s; retrying every %.1f s at most", connection.unreachable_message(exc), backoff.cap)
        stop.wait(max(0.05, sleep))
    if leader:
        try:
            release(keys=[store.SCHEDULER_LEADER], args=[cron.name])
            conn.delete(store.SCHEDULER_HEARTBEAT)
            cron.register_death()
        except redis_lib.RedisError:
            pass
    log.info("monitor scheduler %s: stopped", cron.name)
    return 0


# ---------------------------------------------------------------- liveness


def liveness(this_host: bool = False) -> tuple[bool, str]:
    """Whether the monitor role is alive: a fresh worker on queue ``monitor`` (on this host with
    ``this_host``), a scheduler holding the lead and a collect within the last intervals."""
    from rq import Queue, Worker

    conn = connection.connect(decode=False, fast=True)
    try:
        beat = conn.get(store.SCHEDULER_HEARTBEAT)
        collect = conn.hgetall(store.COLLECT)
        workers = Worker.all(connection=conn, queue=Queue(store.QUEUE, connection=conn))
    finally:
        conn.close()
    problems: list[str] = []
    interval = None
    if beat:
        info = json.loads(beat)
        interval = float(info.get("interval") or 10)
        sched = f"scheduler {info.get('name')}"
    else:
        problems.append("no scheduler heartbeat")
        sched = "no scheduler"
    limit = worker_ttl(interval or 10)
    host = socket.gethostname()
    fresh = []
    for w in workers:
        if this_host and w.hostname != host:
            continue
        if w.last_heartbeat and time.time() - w.last_heartbeat.timestamp() <= limit:
            fresh.append(w)
    if not fresh:
        where = f" on {host}" if this_host else ""
        problems.append(f"no worker{where} on queue {store.QUEUE!r} with a heartbeat in the last {limit} s")
    if collect:
        at = float(collect.get(b"at", 0))
        coll = f"last collect {time.time() - at:.0f} s ago"
        if collect.get(b"error"):
            problems.append(collect[b"error"].decode())
    else:
        problems.append("no collect in the last intervals")
        coll = "no recent collect"
    summary = f"{len(fresh)} worker(s), {sched}, {coll}"
    if problems:
        return False, "monitor unhealthy: " + "; ".join(problems) + f" ({summary})"
    return True, f"monitor healthy: {summary}"


def _main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m seghw.roles.monitor")
    parser.add_argument("role", choices=("worker", "scheduler"))
    parser.add_argument("--log-root", required=True)
    parser.add_argument("--interval", type=float, required=True)
    args = parser.parse_args(argv)
    if args.role == "worker":
        return run_worker(args.interval)
    return run_scheduler(args.log_root, args.interval)


if __name__ == "__main__":
    sys.exit(_main())
