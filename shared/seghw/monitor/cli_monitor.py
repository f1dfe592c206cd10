"""Commands: ``seghw status``, ``seghw health``, ``seghw monitor`` and ``seghw serve monitor``.

Everything beyond typer is imported inside the commands: ``seghw status`` must answer fast."""

from __future__ import annotations

import sys
from pathlib import Path

import typer


def _finish(code: int) -> None:
    # SystemExit carries the code through any caller (typer's non-standalone mode drops it).
    if code:
        raise SystemExit(code)


def status(
    run: str = typer.Option(None, "--run", help="One run: its id (logs_MMDDHHMM) or 'latest'."),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output (stable keys)."),
    watch: bool = typer.Option(False, "--watch", help="Refresh in place until Ctrl-C."),
    every: float = typer.Option(2.0, "--every", min=0.2, help="Seconds between refreshes with --watch."),
) -> None:
    """Health of every run, from Redis (exit 0 healthy, 1 warning or unhealthy, 2 no data)."""
    from seghw.monitor import status_cmd

    _finish(status_cmd.run(run, as_json, watch, every))


def health(
    this_host: bool = typer.Option(False, "--this-host", help="Only count a worker running on this host."),
) -> None:
    """Liveness of the monitor role, for container health checks (exit 0 alive, 1 not)."""
    import redis

    from seghw.connection import unreachable_message
    from seghw.roles.monitor import liveness

    try:
        ok, message = liveness(this_host=this_host)
    except (redis.RedisError, OSError) as exc:
        ok, message = False, unreachable_message(exc)
    print(message, file=sys.stdout if ok else sys.stderr)
    _finish(0 if ok else 1)


def monitor(
    monitor: bool = typer.Option(False, "--monitor", help="Keep printing every --interval seconds (Ctrl-C stops)."),
    interval: float = typer.Option(30.0, "--interval", min=0.1, help="Seconds between two prints."),
    log_dir: Path = typer.Option(None, "--log_dir", "--log-dir", help="A run folder, or a log root (its newest run)."),
    log_root: Path = typer.Option(None, "--log-root", help="Folder holding the logs_* runs (default ./models)."),
) -> None:
    """Training status straight from the stats files (works without Redis)."""
    from seghw.monitor import file_status

    _finish(file_status.run(log_dir, log_root, monitor, interval))


def serve_monitor(
    log_root: Path = typer.Option(None, "--log-root", help="Folder holding the logs_* runs (default ./models)."),
    interval: float = typer.Option(
        None, "--interval", min=0.2, help="Seconds between collects (default: env MONITOR_INTERVAL, else 10)."
    ),
) -> None:
    """The monitor role: an rq worker on queue 'monitor' plus one collect scheduler, in the foreground."""
    from seghw.monitor.health import HealthConfig
    from seghw.roles.monitor import serve_monitor as run_role
    from seghw.paths import log_root as default_root

    cfg = HealthConfig.from_env(interval=interval)  # also checks the MONITOR_* thresholds now
    _finish(run_role(Path(log_root or default_root()).resolve(), cfg.interval))


def register(app: typer.Typer, serve: typer.Typer) -> None:
    app.command("status")(status)
    app.command("health")(health)
    app.command("monitor")(monitor)
    serve.command("monitor")(serve_monitor)


def guide_app() -> typer.Typer:
    """``seghw monitor`` alone, for the guide's services/monitor/monitor_training.py."""
    app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
    app.command()(monitor)
    return app
