"""``seghw serve ROLE``: each role of the stack in the foreground, what each service's container
runs. One command per role, each one hop from its module in ``seghw.roles``."""

from __future__ import annotations

from pathlib import Path

import typer

from seghw.cli.common import exit_with


def trainer(
    burst: bool = typer.Option(False, help="Run the queued jobs, then exit."),
    check: bool = typer.Option(False, "--check", help="Health check: exit 0 if this host's worker "
                               "is registered with a fresh heartbeat, else 1."),
) -> None:
    """rq worker on queue 'train': runs one training job at a time (seghw train as a child)."""
    from seghw.roles.trainer import check_trainer, serve_trainer

    if check:
        from seghw.errors import UserError

        try:
            ok, message = check_trainer()
        except UserError as exc:  # Redis unreachable; Docker reads exit 2 as "reserved": unhealthy is 1
            ok, message = False, str(exc)
        print(message)
        exit_with(0 if ok else 1)
        return
    exit_with(serve_trainer(burst=burst))


def visualdl(
    log_root: Path = typer.Option(None, help="Folder of the runs (default SEGHW_LOG_ROOT or ./models)."),
) -> None:
    """VisualDL over the whole log root on $VISUALDL_HOST:$VISUALDL_PORT (127.0.0.1:8040)."""
    from seghw.paths import log_root as default_root
    from seghw.roles.visualdl import serve_visualdl

    serve_visualdl(default_root(log_root).absolute())


def monitor(
    log_root: Path = typer.Option(None, "--log-root", help="Folder holding the logs_* runs (default ./models)."),
    interval: float = typer.Option(
        None, "--interval", min=0.2, help="Seconds between collects (default: env MONITOR_INTERVAL, else 10)."
    ),
) -> None:
    """The monitor role: an rq worker on queue 'monitor' plus one collect scheduler, in the foreground."""
    from seghw.monitor.health import HealthConfig
    from seghw.paths import log_root as default_root
    from seghw.roles.monitor import serve_monitor

    cfg = HealthConfig.from_env(interval=interval)  # also checks the MONITOR_* thresholds now
    exit_with(serve_monitor(Path(log_root or default_root()).resolve(), cfg.interval))


def proxy(
    check: bool = typer.Option(False, "--check", help="Health check: exit 0 if the proxy answers and "
                               "VisualDL answers behind it, else 1."),
) -> None:
    """nginx in front of VisualDL on $PROXY_HOST:$PROXY_PORT: password (VISUALDL_PASSWORD), gzip, TLS."""
    from seghw.roles import proxy as role
    from seghw.stack.settings import StackError

    if check:
        try:
            ok, message = role.check(role.settings_from_env())
        except StackError as exc:  # Docker reads exit 2 as "reserved": unhealthy is 1
            ok, message = False, str(exc)
        print(message)
        exit_with(0 if ok else 1)
        return
    role.serve(role.settings_from_env())


def register(serve: typer.Typer) -> None:
    for role in (trainer, visualdl, monitor, proxy):
        serve.command(role.__name__)(role)
