"""What the command modules share."""

from __future__ import annotations

# What the model-running commands (eval, infer) say about their shared options.
ENGINE_HELP = "fast: Paddle Inference (oneDNN on CPU); eager: the training model, for comparison"
THREADS_HELP = "CPU threads (default: every core, or SEGHW_THREADS)"
SCALE_HELP = ("page scale the model sees, auto (pages with print larger than the training pages' are "
              "scaled down to it) or a factor in (0, 4]")

# A command that hands its arguments on as they are (seghw submit, seghw stack status).
EXTRA_ARGS = {"allow_extra_args": True, "ignore_unknown_options": True}


def exit_with(code: int) -> None:
    """End the command with ``code``. SystemExit, not typer.Exit: the app runs in non-standalone
    mode, which turns typer.Exit into a return value that ``main`` does not pass on."""
    if code:
        raise SystemExit(code)

