"""``seghw stack up|down|status|logs|submit|stop|demo``: the whole stack, through the interface of
``seghw.stack.stacks`` (Docker Compose when an engine answers, else local processes; env
``STACK=local|compose`` decides). The Makefile's up, down, status, logs, train, stop and demo."""

from __future__ import annotations

import typer

from seghw.cli.common import EXTRA_ARGS, exit_with

stack = typer.Typer(help="Drive the whole stack: Docker Compose when an engine answers, else local "
                    "processes (STACK=local|compose decides).", no_args_is_help=True)


def _current():
    from seghw.stack.stacks import current

    return current()


@stack.command("up")
def up(
    timeout: float = typer.Option(None, help="Seconds to wait for the roles (SEGHW_START_TIMEOUT, 120)."),
) -> None:
    """Start the stack (compose: docker compose up -d)."""
    exit_with(_current().up(timeout=timeout))


@stack.command("down")
def down() -> None:
    """Stop the stack and every process it started (the trainer checkpoints first)."""
    exit_with(_current().down())


@stack.command("status", context_settings=EXTRA_ARGS)
def status(ctx: typer.Context) -> None:
    """Health of every run (seghw status; exit 0 healthy, 1 warning, 2 no data)."""
    exit_with(_current().status(list(ctx.args)))


@stack.command("logs")
def logs(
    follow: bool = typer.Option(True, help="Keep printing new lines."),
    lines: int = typer.Option(50, "--lines", "-n", help="Lines of history to show first."),
) -> None:
    """Follow the stack's logs (compose: docker compose logs -f)."""
    exit_with(_current().logs(lines=lines, follow=follow))


@stack.command("submit", context_settings=EXTRA_ARGS)
def submit(ctx: typer.Context) -> None:
    """Queue a training run on the stack's trainer: seghw stack submit TRAIN-FLAGS... (those of seghw train)."""
    exit_with(_current().submit(list(ctx.args)))


@stack.command("stop")
def stop(run: str = typer.Argument("latest", help="Run id, run folder or 'latest'.")) -> None:
    """Ask a run to stop gracefully (it checkpoints and ends 'stopped')."""
    exit_with(_current().stop(run))


@stack.command("demo", context_settings=EXTRA_ARGS)
def demo(
    ctx: typer.Context,
    epochs: int = typer.Option(3, help="Epochs of the demo run."),
    synthetic: int = typer.Option(64, help="Synthetic training pairs."),
) -> None:
    """Start the stack, train a short CPU demo with a progress bar, then show its status."""
    from seghw.stack.demo import demo_args

    exit_with(_current().demo(demo_args(epochs, synthetic, list(ctx.args))))


def register(app: typer.Typer) -> None:
    app.add_typer(stack, name="stack")
