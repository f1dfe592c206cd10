"""Run health: the monitor role (rq worker + one scheduler) reads every run's training_stats.json,
applies the health rules and keeps the result in Redis for ``seghw status``, ``seghw health`` and
webhook alerts."""
