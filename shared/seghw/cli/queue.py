"""``seghw submit`` and ``seghw stop``: the training queue, on whichever Redis this process reaches
(``seghw stack submit|stop`` first points it at the running stack)."""

from __future__ import annotations

import typer

from seghw.cli.common import EXTRA_ARGS


def submit(ctx: typer.Context) -> None:
    """Queue a training run: seghw submit TRAIN-FLAGS... (--resume RUN continues a run)."""
    from seghw.queue.submit import describe
    from seghw.queue.submit import submit as enqueue

    print(describe(enqueue(list(ctx.args))))


def stop(run: str = typer.Argument("latest", help="Run id, run folder or 'latest'.")) -> None:
    """Ask a run to stop: it checkpoints and ends 'stopped'."""
    from seghw.queue.submit import describe_stop
    from seghw.queue.submit import stop as ask_to_stop

    print(describe_stop(ask_to_stop(run)))


def register(app: typer.Typer) -> None:
    app.command("submit", context_settings=EXTRA_ARGS)(submit)
    app.command("stop")(stop)
