"""The ``seghw`` command, one module per command (each registers its own): ``train`` (train, synth,
eval, infer), ``status``, ``monitor`` (monitor, health), ``serve`` (one per role), ``queue`` (submit,
stop) and ``stack`` (up, down, status, logs, submit, stop, demo); ``app`` builds the typer app.

``seghw status`` is what ``make status`` and health checks run, often: ``main`` here answers it
without importing typer (which loads pydantic) or anything heavy. Every other command goes to the
typer app in ``seghw.cli.app``.
"""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    try:
        return _main(list(sys.argv[1:] if argv is None else argv))
    except KeyboardInterrupt:  # Ctrl-C while the command is still importing: no traceback
        return 130


def _main(argv: list[str]) -> int:
    if argv[:1] == ["status"]:
        from seghw.cli.status import main as status_main
        from seghw.errors import UserError

        try:
            return status_main(argv[1:])
        except UserError as exc:
            print(f"seghw: error: {exc}", file=sys.stderr)
            return exc.exit_code
    from seghw.cli.app import main as app_main

    return app_main(argv)
