"""Is a process that a record names still the one that wrote it? For rq workers and trainers that a
killed container, a crashed host or ``kill -9`` left registered as running.

A restarted container reuses pids (its worker is pid 7 again), so a pid that exists proves nothing:
the process must also be older than the record it is checked against.
"""

from __future__ import annotations

import socket
from datetime import datetime, timedelta, timezone

# A process born this long after the record's own time is another one (clock resolution, slow start).
BIRTH_SLACK_S = 2.0


def process_is(pid: int | None, born_by: datetime | None) -> bool | None:
    """Whether ``pid`` runs here and was started by ``born_by``; None when this cannot tell."""
    import psutil

    if not isinstance(pid, int) or pid <= 0:
        return None
    try:
        proc = psutil.Process(pid)
        if proc.status() == psutil.STATUS_ZOMBIE:
            return False
        created = proc.create_time()
    except psutil.NoSuchProcess:
        return False
    except psutil.Error:
        return None
    if born_by is None:
        return True
    return created <= _utc(born_by).timestamp() + BIRTH_SLACK_S


def _utc(ts: datetime) -> datetime:
    return ts.replace(tzinfo=timezone.utc) if ts.tzinfo is None else ts


def worker_is_gone(conn, worker_name: str | None, ttl_s: float) -> bool:
    """Whether the rq worker named ``worker_name`` no longer runs: its registration expired, its
    heartbeat is older than ``ttl_s``, or it ran on this host and its process is not there."""
    from rq import Worker

    if not worker_name:
        return True
    worker = Worker.find_by_key(Worker.redis_worker_namespace_prefix + worker_name, connection=conn)
    if worker is None:
        return True
    if worker.hostname == socket.gethostname():
        return process_is(worker.pid, worker.birth_date) is False
    beat = worker.last_heartbeat
    return beat is None or datetime.now(timezone.utc) - _utc(beat) > timedelta(seconds=ttl_s)
