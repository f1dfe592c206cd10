"""``seghw status``: run health read from Redis, nothing else (no rq, no Paddle, no stats files).

Its options are defined once, in ``parser()``: the console script (``seghw.cli.main``) answers ``seghw status`` with
``main(argv)`` before typer is even imported (typer pulls in pydantic), and the typer app's
``status`` command (what ``seghw --help`` lists) hands its arguments to the same ``main``."""

from __future__ import annotations

import argparse
import json
import sys
import time

from seghw import connection
from seghw.monitor import store
from seghw.monitor.status_view import JSON_SCHEMA, StatusView


def read_view(run: str | None) -> StatusView:
    """Every run's health from Redis (``run``: one id, or 'latest'). Raises redis errors."""
    url = connection.redis_url()
    conn = connection.connect(url, fast=True)
    try:
        runs, latest, collect = store.load_runs(conn)
    finally:
        conn.close()
    view = StatusView(runs=runs, now=time.time(), source=connection.describe_url(url), latest=latest,
                      monitor_at=float(collect["at"]) if collect.get("at") else None)
    if run:
        wanted = latest if run == "latest" else run
        view.runs = [r for r in runs if r.get("run_id") == wanted]
        if not view.runs:
            known = ", ".join(r["run_id"] for r in runs[:5]) or "none"
            view.notes.append(f"no run {run!r} in Redis (known: {known})")
    return view


def _redis_errors() -> tuple[type[BaseException], ...]:
    import redis

    return (redis.RedisError, OSError)


DESCRIPTION = ("Health of every run, from Redis (exit 0 healthy, 1 warning or unhealthy, "
               "2 no data or Redis unreachable).")
NO_DATA = ("no run health in Redis at {source}: start the monitor (`seghw serve monitor`), "
           "or read the stats files directly with `seghw monitor`")


def status_once(run: str | None, as_json: bool) -> int:
    try:
        view = read_view(run)
    except _redis_errors() as exc:
        message = connection.unreachable_message(exc)
        print(f"seghw status: {message}", file=sys.stderr)
        if as_json:
            print(json.dumps({"schema": JSON_SCHEMA, "exit_code": 2, "error": message, "runs": []}))
        return 2
    if as_json:
        print(json.dumps(view.to_json(), indent=2))
    elif not view.runs and not view.notes:
        print("seghw status: " + NO_DATA.format(source=view.source), file=sys.stderr)
    else:
        from rich.console import Console

        Console().print(view.renderable())
    return view.exit_code()


def status_watch(run: str | None, every: float) -> int:
    """Redraw in place every ``every`` seconds until Ctrl-C; Redis going away is shown, not fatal."""
    from rich.console import Console
    from rich.live import Live
    from rich.text import Text

    from seghw.interrupts import one_interrupt_stops

    code = 2
    with one_interrupt_stops(), Live(Text("reading Redis..."), console=Console(), auto_refresh=False) as live:
        try:
            while True:
                try:
                    view = read_view(run)
                    code = view.exit_code()
                    if view.runs or view.notes:
                        body = view.renderable()
                    else:
                        body = Text(NO_DATA.format(source=view.source), style="yellow")
                except _redis_errors() as exc:
                    code, body = 2, Text(connection.unreachable_message(exc), style="bold red")
                live.update(body, refresh=True)
                time.sleep(every)
        except KeyboardInterrupt:
            pass
    return code


def run(run: str | None = None, as_json: bool = False, watch: bool = False, every: float = 2.0) -> int:
    if watch and not as_json:
        return status_watch(run, every)
    return status_once(run, as_json)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="seghw status", description=DESCRIPTION)
    p.add_argument("--run", help="one run: its id (logs_MMDDHHMM) or 'latest'")
    p.add_argument("--json", action="store_true", help="machine-readable output (stable keys)")
    p.add_argument("--watch", action="store_true", help="refresh in place until Ctrl-C")
    p.add_argument("--every", type=float, default=2.0, help="seconds between refreshes with --watch")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    return run(args.run, args.json, args.watch, max(0.2, args.every))


def register(app) -> None:
    """``status`` in the typer app: the arguments go to ``main`` as they are (``--help`` too)."""
    import typer

    from seghw.cli.common import exit_with

    def status(ctx) -> None:
        exit_with(main(list(ctx.args)))

    status.__annotations__ = {"ctx": typer.Context, "return": None}  # typer is not this module's import
    app.command("status", help=DESCRIPTION, add_help_option=False,
                context_settings={"allow_extra_args": True, "ignore_unknown_options": True})(status)


if __name__ == "__main__":
    sys.exit(main())
