"""Commands: ``seghw monitor`` (the guide's status straight from the stats files) and ``seghw health``
(the monitor role's liveness, for container health checks).

Everything beyond typer is imported inside the commands."""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from seghw.cli.common import exit_with


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
    exit_with(0 if ok else 1)


def monitor(
    monitor: bool = typer.Option(False, "--monitor", help="Keep printing every --interval seconds (Ctrl-C stops)."),
    interval: float = typer.Option(30.0, "--interval", min=0.1, help="Seconds between two prints."),
    log_dir: Path = typer.Option(None, "--log_dir", "--log-dir", help="A run folder, or a log root (its newest run)."),
    log_root: Path = typer.Option(None, "--log-root", help="Folder holding the logs_* runs (default ./models)."),
) -> None:
    """Training status straight from the stats files (works without Redis)."""
    from seghw.monitor import file_status

    exit_with(file_status.run(log_dir, log_root, monitor, interval))


def register(app: typer.Typer) -> None:
    app.command("health")(health)
    app.command("monitor")(monitor)


def guide_app() -> typer.Typer:
    """``seghw monitor`` alone, for the guide's services/monitor/monitor_training.py."""
    app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
    app.command()(monitor)
    return app
