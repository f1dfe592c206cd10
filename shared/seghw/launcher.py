"""Entry point of the ``seghw`` console script.

``seghw status`` is what ``make status`` and health checks run, often: it is answered without
importing typer (which loads pydantic) or anything heavy. Every other command goes to the CLI.
"""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["status"]:
        from seghw.errors import UserError
        from seghw.monitor.status_cmd import main as status_main

        try:
            return status_main(argv[1:])
        except UserError as exc:
            print(f"seghw: error: {exc}", file=sys.stderr)
            return exc.exit_code
    from seghw.cli import main as cli_main

    return cli_main(argv)


if __name__ == "__main__":
    sys.exit(main())
