#!/usr/bin/env python3
"""The guide's monitor script: training status straight from the stats files (no Redis needed).

    python monitor_training.py                          # one quick look at every run
    python monitor_training.py --monitor --interval 30  # keep printing until Ctrl-C
    python monitor_training.py --log_dir /app/models/logs_07031940

Same as ``seghw monitor``; the log root defaults to $SEGHW_LOG_ROOT, else ./models.
"""

from __future__ import annotations

import sys
from pathlib import Path


def _guide_app():
    try:
        from seghw.cli.monitor import guide_app
    except ModuleNotFoundError as exc:
        if exc.name != "seghw":
            raise
        # A source checkout run with a Python that has the dependencies but not the package.
        sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "shared"))
        from seghw.cli.monitor import guide_app
    return guide_app()


def main() -> int:
    try:
        return _main()
    except KeyboardInterrupt:  # Ctrl-C before the watch loop has started: no traceback
        return 130


def _main() -> int:
    try:
        app = _guide_app()
    except ModuleNotFoundError as exc:
        print(f"monitor_training.py: {exc}: run it with the project's Python (.venv/bin/python, or in the "
              "monitor image), or install the project first (pip install -e .)", file=sys.stderr)
        return 2
    from seghw.errors import UserError

    try:
        # Standalone mode: typer prints usage errors itself and exits with the command's code.
        app(prog_name="monitor_training.py")
    except UserError as exc:
        print(f"monitor_training.py: error: {exc}", file=sys.stderr)
        return exc.exit_code
    return 0


if __name__ == "__main__":
    sys.exit(main())
