"""``seghw submit`` and ``seghw stop``: put a training run on the queue, ask a run to stop."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from seghw.connection import connect
from seghw.errors import UserError
from seghw.paths import RUN_NAME_RE, latest_run
from seghw.stack.settings import QUEUE, WORKER_TTL, default_log_root, stop_key, visualdl_url

JOB_FUNC = "seghw.queue.jobs.run_training"
RESULT_TTL = 30 * 24 * 3600
STOP_KEY_TTL = 7 * 24 * 3600
ACTIVE = ("queued", "started", "deferred", "scheduled")


@dataclass(frozen=True)
class Submitted:
    run_id: str
    run_dir: Path
    argv: list[str]
    resumed: bool


def _pop_option(args: list[str], name: str) -> tuple[list[str], str | None]:
    """Remove ``--name VALUE`` / ``--name=VALUE`` from ``args``; return the rest and the value."""
    rest: list[str] = []
    value = None
    i = 0
    while i < len(args):
        a = args[i]
        if a == name:
            if i + 1 >= len(args):
                raise UserError(f"{name} needs a value")
            value = args[i + 1]
            i += 2
            continue
        if a.startswith(name + "="):
            value = a.split("=", 1)[1]
        else:
            rest.append(a)
        i += 1
    return rest, value


def resolve_run(root: Path, ref: str) -> Path:
    """A run folder from ``latest``, a run id under ``root``, or a path."""
    if ref == "latest":
        run = latest_run(root)
        if run is None:
            raise UserError(f"no runs under {root}")
        return run
    candidate = root / ref
    if RUN_NAME_RE.match(ref) and candidate.is_dir():
        return candidate.absolute()
    path = Path(ref)
    if path.is_dir() and RUN_NAME_RE.match(path.absolute().name):
        return path.absolute()
    raise UserError(f"no run {ref!r}: expected latest, a run id under {root} or a run folder")


def submit(train_args: list[str], log_root: Path | None = None) -> Submitted:
    """Create the run folder (or reuse it with ``--resume``), mark it queued, enqueue the job."""
    from rq import Queue
    from rq.job import Job

    from seghw.paths import new_run_dir
    from seghw.stats import write_queued

    args, explicit_root = _pop_option(list(train_args), "--log-root")
    if any(a == "--run-dir" or a.startswith("--run-dir=") for a in args):
        raise UserError("--run-dir is chosen by seghw submit; use --resume RUN to continue a run")
    root = Path(explicit_root).absolute() if explicit_root else (log_root or default_log_root()).absolute()
    args, resume = _pop_option(args, "--resume")

    conn = connect(decode=False, wait=0)
    queue = Queue(QUEUE, connection=conn)
    if resume is not None:
        run_dir = resolve_run(root, resume)
        args = [*args, "--resume", str(run_dir)]
    else:
        run_dir = new_run_dir(root).absolute()
    run_id = run_dir.name

    existing = Job.fetch(run_id, connection=conn) if Job.exists(run_id, connection=conn) else None
    if existing is not None:
        status = existing.get_status(refresh=True)
        state = getattr(status, "value", status)
        if state in ACTIVE and not (state == "started" and job_is_abandoned(conn, existing)):
            raise UserError(f"run {run_id} is already {state} on queue {QUEUE!r}")
        existing.delete()
    if resume is None:
        write_queued(run_dir, ["seghw", "train", *args])
    else:
        _mark_requeued(run_dir)
    conn.delete(stop_key(run_id))
    queue.enqueue(
        JOB_FUNC,
        args=(run_id, str(run_dir), args),
        job_id=run_id,
        job_timeout=-1,  # a training run takes as long as it takes; stop it with seghw stop
        result_ttl=RESULT_TTL,
        failure_ttl=RESULT_TTL,
        description=f"seghw train {' '.join(args)}".strip(),
    )
    return Submitted(run_id=run_id, run_dir=run_dir, argv=args, resumed=resume is not None)


def job_is_abandoned(conn, job) -> bool:
    """A started job whose worker died with it (a killed container, ``kill -9``): rq still lists it
    as started until its registration expires."""
    from seghw.queue.liveness import worker_is_gone

    return worker_is_gone(conn, job.worker_name, WORKER_TTL + 60)


def _mark_requeued(run_dir: Path) -> None:
    """Show a resubmitted run as queued (not as the failure it ended with) until its trainer starts;
    everything else in its stats stays, for the resumed trainer and the monitor."""
    import socket

    from seghw.monitor.health import parse_time
    from seghw.queue.liveness import process_is
    from seghw.stats import now_iso, read_stats, write_stats

    try:
        doc = read_stats(run_dir)
    except (OSError, ValueError):
        return
    pid = doc.get("pid")
    updated = parse_time(doc.get("updated_at"))
    born_by = datetime.fromtimestamp(updated, timezone.utc) if updated is not None else None
    if doc.get("status") == "running" and doc.get("host") == socket.gethostname() and process_is(pid, born_by):
        raise UserError(f"run {run_dir.name} is still running (pid {pid}); stop it first: seghw stop {run_dir.name}")
    doc.update(status="queued", error=None, updated_at=now_iso())
    write_stats(run_dir, doc)


def describe(sub: Submitted) -> str:
    verb = "resumed" if sub.resumed else "queued"
    return "\n".join(
        [
            f"{verb} {sub.run_id} on queue {QUEUE!r}",
            f"  folder:   {sub.run_dir}",
            f"  VisualDL: {visualdl_url()}  (run {sub.run_id})",
            "  follow:   make status   |   make logs",
            f"  stop:     make stop RUN={sub.run_id}   (checkpoints, then ends 'stopped')",
        ]
    )


def describe_stop(run_id: str) -> str:
    return f"asked {run_id} to stop: it checkpoints, then ends 'stopped' (watch it: make status)"


def stop(ref: str, log_root: Path | None = None) -> str:
    """Set ``seghw:stop:<run_id>``; the job sends SIGTERM to its trainer within a second."""
    root = (log_root or default_log_root()).absolute()
    run_id = ref if (RUN_NAME_RE.match(ref) and ref != "latest") else resolve_run(root, ref).name
    conn = connect(decode=False, wait=0)
    conn.set(stop_key(run_id), "1", ex=STOP_KEY_TTL)
    return run_id


def resume_abandoned() -> list[Submitted]:
    """Queue again, with ``--resume``, each run whose job was running when its worker died (a killed
    container, a crash): the trainer role calls this as it starts, so such a run goes on by itself
    from its last checkpoint."""
    from rq import Queue
    from rq.exceptions import NoSuchJobError
    from rq.job import Job, JobStatus
    from rq.registry import StartedJobRegistry

    conn = connect(decode=False, wait=0)
    resumed = []
    for job_id in StartedJobRegistry(queue=Queue(QUEUE, connection=conn)).get_job_ids(cleanup=False):
        try:
            job = Job.fetch(job_id, connection=conn)
        except NoSuchJobError:
            continue
        if job.func_name != JOB_FUNC or job.get_status(refresh=True) != JobStatus.STARTED:
            continue
        if not job_is_abandoned(conn, job):
            continue
        _run_id, run_dir, train_args = job.args
        args, _ = _pop_option(list(train_args), "--resume")
        resumed.append(submit([*args, "--resume", run_dir], log_root=Path(run_dir).parent))
    return resumed
