"""What the command modules share."""

from __future__ import annotations

# A command that hands its arguments on as they are (seghw submit, seghw stack status).
EXTRA_ARGS = {"allow_extra_args": True, "ignore_unknown_options": True}


def exit_with(code: int) -> None:
    """End the command with ``code``. SystemExit, not typer.Exit: the app runs in non-standalone
    mode, which turns typer.Exit into a return value that ``main`` does not pass on."""
    if code:
        raise SystemExit(code)

