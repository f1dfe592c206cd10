"""The ``seghw`` typer app: each command module registers its own commands; heavy imports stay
inside the commands, so that ``seghw --help`` answers without loading Paddle."""

from __future__ import annotations

import sys

import typer

from seghw.errors import UserError

app = typer.Typer(
    name="seghw",
    help="Handwriting-erasure training stack: train, evaluate, serve VisualDL, watch run health.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
serve = typer.Typer(help="Run one role of the stack in the foreground.", no_args_is_help=True)
app.add_typer(serve, name="serve")


def _register() -> None:
    from seghw.cli import evaluate, infer, monitor, queue, stack, status, synth, train
    from seghw.cli import serve as serve_commands

    for module in (train, synth, evaluate, infer):
        module.register(app)
    status.register(app)
    monitor.register(app)
    queue.register(app)
    stack.register(app)
    serve_commands.register(serve)


_register()


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        rc = app(args=argv, prog_name="seghw", standalone_mode=False)
    except UserError as exc:
        print(f"seghw: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except typer.Exit as exc:
        return exc.exit_code
    except typer.Abort:
        print("seghw: aborted", file=sys.stderr)
        return 130
    except KeyboardInterrupt:
        return 130
    except OSError as exc:
        # A folder that cannot be written, a full disk: the message names the file.
        print(f"seghw: error: {exc}", file=sys.stderr)
        return 1
    except Exception as exc:
        # Usage errors from the command-line parser (typer ships its own click).
        if hasattr(exc, "show") and hasattr(exc, "exit_code"):
            exc.show()
            return exc.exit_code
        raise
    return rc if isinstance(rc, int) else 0
