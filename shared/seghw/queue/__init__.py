"""The training queue: ``seghw submit`` and ``seghw stop`` (submit), the rq job that runs a training
(jobs), and whether a worker or trainer that a record names still runs (liveness)."""
