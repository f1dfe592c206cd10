"""Where runs queued by an earlier version find their job: rq stores the function's dotted path with
each job, and a persistent Redis keeps jobs across an upgrade. The job lives in ``seghw.queue.jobs``."""

from seghw.queue.jobs import run_training  # noqa: F401
