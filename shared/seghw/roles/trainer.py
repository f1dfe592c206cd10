"""``seghw serve trainer``: an rq worker on queue ``train`` that runs one training job at a time."""

from __future__ import annotations

import os
import signal
import socket
from datetime import datetime, timedelta, timezone

from seghw.connection import connect, describe_url, redis_url
from seghw.stack.settings import QUEUE, WORKER_TTL


def _worker_class():
    from rq import Worker

    from seghw.queue import jobs
    from seghw.rq_teardown import SurvivesRedisGone

    class TrainerWorker(SurvivesRedisGone, Worker):
        """rq's first SIGTERM waits for the job, and the job's process never sees the signal.
        This worker passes it on: the horse's handler sends SIGTERM to ``seghw train``, which
        checkpoints and ends ``stopped``; then the job returns and the worker exits."""

        def setup_work_horse_signals(self) -> None:
            super().setup_work_horse_signals()
            signal.signal(signal.SIGTERM, jobs.on_sigterm)

        def handle_warm_shutdown_request(self) -> None:
            super().handle_warm_shutdown_request()
            if self.horse_pid:
                self.log.info("Worker %s: asking the running training to checkpoint and stop", self.name)
                try:
                    os.kill(self.horse_pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass

    return TrainerWorker


def serve_trainer(burst: bool = False, wait: float = 60.0) -> int:
    from rq import Queue

    from seghw.queue.submit import resume_abandoned

    url = redis_url()
    conn = connect(url, decode=False, wait=wait)
    worker = _worker_class()([Queue(QUEUE, connection=conn)], connection=conn, worker_ttl=WORKER_TTL)
    print(f"seghw trainer: rq worker {worker.name} on queue {QUEUE!r} at {describe_url(url)}", flush=True)
    for sub in resume_abandoned():
        print(f"seghw trainer: {sub.run_id} was running when its trainer died: queued again to resume from "
              "its last checkpoint", flush=True)
    worker.work(burst=burst, logging_level="INFO")
    return 0


def check_trainer(hostname: str | None = None) -> tuple[bool, str]:
    """Healthy when an rq worker of this host listens on queue ``train`` with a fresh heartbeat."""
    from rq import Queue, Worker

    hostname = hostname or socket.gethostname()
    conn = connect(decode=False, fast=True, wait=0)
    workers = [w for w in Worker.all(queue=Queue(QUEUE, connection=conn)) if w.hostname == hostname]
    if not workers:
        return False, f"no trainer worker of host {hostname} is registered on queue {QUEUE!r}"
    now = datetime.now(timezone.utc)
    # Busy workers heartbeat every job_monitoring_interval (30 s); idle ones every worker_ttl - 15 s.
    limit = timedelta(seconds=WORKER_TTL + 60)
    for w in workers:
        beat = w.last_heartbeat
        if beat is not None and beat.tzinfo is None:
            beat = beat.replace(tzinfo=timezone.utc)
        if beat is not None and now - beat <= limit:
            job = w.get_current_job_id()
            doing = f"running {job}" if job else "idle"
            age = int((now - beat).total_seconds())
            return True, f"trainer worker {w.name} is {doing} (heartbeat {age} s ago)"
    return False, f"trainer worker of host {hostname} has not sent a heartbeat for over {limit.seconds} s"
