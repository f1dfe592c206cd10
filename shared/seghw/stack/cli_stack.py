"""Commands of the stack: ``seghw serve trainer|visualdl``, ``seghw submit``, ``seghw stop`` and
``seghw stack up|down|status|logs|demo|submit|stop`` (Docker Compose when an engine answers, else
the local stack; env ``STACK=local|compose`` decides)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import typer

EXTRA_ARGS = {"allow_extra_args": True, "ignore_unknown_options": True}


def _local_env(state) -> None:
    """Point this process at the running local stack (its Redis, log root and VisualDL)."""
    os.environ["REDIS_URL"] = state.redis_url
    os.environ["SEGHW_LOG_ROOT"] = str(state.log_root)
    os.environ["SEGHW_VISUALDL_URL"] = state.visualdl_url


def _require_local():
    from seghw.stack import local
    from seghw.stack.settings import StackError, stack_dir

    state = local.running_state()
    if state is None:
        raise StackError(f"the local stack is not running (state in {stack_dir()}): start it with make up")
    return state


def _require_compose(service: str) -> None:
    from seghw.stack import compose
    from seghw.stack.settings import StackError

    if service not in compose.running_services():
        raise StackError(f"the compose stack's {service} is not running: start the stack with make up")


def _exit(code: int) -> None:
    # SystemExit, not typer.Exit: seghw.cli runs the app in non-standalone mode, which turns
    # typer.Exit into a return value that main() does not pass on.
    if code:
        raise SystemExit(code)


def _seghw(args: list[str]) -> int:
    return subprocess.run([sys.executable, "-m", "seghw.cli", *args], check=False).returncode


def register(app: typer.Typer, serve: typer.Typer) -> None:
    stack = typer.Typer(help="Drive the whole stack: Docker Compose when an engine answers, else local "
                        "processes (STACK=local|compose decides).", no_args_is_help=True)
    app.add_typer(stack, name="stack")

    # ------------------------------------------------------------------ roles

    @serve.command("trainer")
    def serve_trainer(
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
            _exit(0 if ok else 1)
            return
        _exit(serve_trainer(burst=burst))

    @serve.command("visualdl")
    def serve_visualdl(
        log_root: Path = typer.Option(None, help="Folder of the runs (default SEGHW_LOG_ROOT or ./models)."),
    ) -> None:
        """VisualDL over the whole log root on $VISUALDL_HOST:$VISUALDL_PORT (127.0.0.1:8040)."""
        from seghw.paths import log_root as default_root
        from seghw.roles.visualdl import serve_visualdl

        serve_visualdl(default_root(log_root).absolute())

    @serve.command("proxy")
    def serve_proxy(
        check: bool = typer.Option(False, "--check", help="Health check: exit 0 if the proxy answers and "
                                   "VisualDL answers behind it, else 1."),
    ) -> None:
        """nginx in front of VisualDL on $PROXY_HOST:$PROXY_PORT: password (VISUALDL_PASSWORD), gzip, TLS."""
        from seghw.roles import proxy
        from seghw.stack.settings import StackError

        if check:
            try:
                ok, message = proxy.check(proxy.settings_from_env())
            except StackError as exc:  # Docker reads exit 2 as "reserved": unhealthy is 1
                ok, message = False, str(exc)
            print(message)
            _exit(0 if ok else 1)
            return
        proxy.serve(proxy.settings_from_env())

    # ------------------------------------------------------------------ queue

    @app.command("submit", context_settings=EXTRA_ARGS)
    def submit_cmd(ctx: typer.Context) -> None:
        """Queue a training run: seghw submit TRAIN-FLAGS... (--resume RUN continues a run)."""
        from seghw.queue.submit import describe, submit

        print(describe(submit(list(ctx.args))))

    @app.command("stop")
    def stop_cmd(run: str = typer.Argument("latest", help="Run id, run folder or 'latest'.")) -> None:
        """Ask a run to stop: it checkpoints and ends 'stopped'."""
        from seghw.queue.submit import stop

        run_id = stop(run)
        print(f"asked {run_id} to stop: it checkpoints, then ends 'stopped' (watch it: make status)")

    # ------------------------------------------------------------------ stack

    @stack.command("up")
    def stack_up(
        timeout: float = typer.Option(None, help="Seconds to wait for the roles (SEGHW_START_TIMEOUT, 120)."),
    ) -> None:
        """Start the stack (compose: docker compose up -d)."""
        from seghw.stack import compose, local

        if compose.mode() == "compose":
            created = compose.ensure_env_file(compose.project_dir())
            if created:
                print(f"created {created} with a random REDIS_PASSWORD (edit it to change the settings)")
            code = compose.up()
            if code == 0:
                print(f"stack up: {compose.ports_note()} (make status, make logs, make down)")
                hint = compose.open_hint()
                if hint:
                    print(hint)
            _exit(code)
            return
        state, started = local.up(timeout=timeout)
        if not started:
            print(f"the local stack is already up: VisualDL {state.visualdl_url}; logs {state.log_file}; "
                  "make down stops it")
            return
        proxy = state.data.get("proxy")
        guard = f", password required (user {proxy['user']})" if proxy else ""
        print(f"local stack up: VisualDL {state.visualdl_url}{guard} (runs in {state.log_root})")
        if not proxy:
            print("  this machine only; to open it to the network safely: "
                  "VISUALDL_PASSWORD=<a password> VISUALDL_HOST=0.0.0.0 make up")
        print(f"  logs: {state.log_file}   (make logs)")
        print("  next: make train ARGS=\"--preset cpu-demo --synthetic 64\"   then make status")

    @stack.command("down")
    def stack_down() -> None:
        """Stop the stack and every process it started (the trainer checkpoints first)."""
        from seghw.stack import compose, local

        if compose.mode() == "compose":
            _exit(compose.run(["down"]))
            return
        print(local.down())

    @stack.command("status", context_settings=EXTRA_ARGS)
    def stack_status(ctx: typer.Context) -> None:
        """Health of every run (seghw status; exit 0 healthy, 1 warning, 2 no data)."""
        from seghw.stack import compose, local

        if compose.mode() == "compose":
            _require_compose("monitor")
            print(compose.proxy_line(), file=sys.stderr)
            _exit(compose.run([*compose.exec_args("monitor"), "seghw", "status", *ctx.args]))
            return
        state = local.running_state()
        print(local.describe(state or local.read_state()), file=sys.stderr)
        if state is not None:
            _local_env(state)
        _exit(_seghw(["status", *ctx.args]))

    @stack.command("logs")
    def stack_logs(
        follow: bool = typer.Option(True, help="Keep printing new lines."),
        lines: int = typer.Option(50, "--lines", "-n", help="Lines of history to show first."),
    ) -> None:
        """Follow the stack's logs (compose: docker compose logs -f)."""
        from seghw.stack import compose, local

        if compose.mode() == "compose":
            _exit(compose.run(["logs", f"--tail={lines}", *(["-f"] if follow else [])]))
            return
        local.follow_logs(lines=lines, follow=follow)

    @stack.command("submit", context_settings=EXTRA_ARGS)
    def stack_submit(ctx: typer.Context) -> None:
        """Queue a training run on the stack's trainer: seghw stack submit TRAIN-FLAGS... (those of seghw train)."""
        from seghw.queue.submit import describe, submit
        from seghw.stack import compose

        if compose.mode() == "compose":
            _require_compose("trainer")
            _exit(compose.run([*compose.exec_args("trainer"), "seghw", "submit", *ctx.args]))
            return
        _local_env(_require_local())
        print(describe(submit(list(ctx.args))))

    @stack.command("stop")
    def stack_stop(run: str = typer.Argument("latest", help="Run id, run folder or 'latest'.")) -> None:
        """Ask a run to stop gracefully (it checkpoints and ends 'stopped')."""
        from seghw.queue.submit import stop
        from seghw.stack import compose

        if compose.mode() == "compose":
            _require_compose("trainer")
            _exit(compose.run([*compose.exec_args("trainer"), "seghw", "stop", run]))
            return
        _local_env(_require_local())
        run_id = stop(run)
        print(f"asked {run_id} to stop: it checkpoints, then ends 'stopped' (watch it: make status)")

    @stack.command("demo", context_settings=EXTRA_ARGS)
    def stack_demo(
        ctx: typer.Context,
        epochs: int = typer.Option(3, help="Epochs of the demo run."),
        synthetic: int = typer.Option(64, help="Synthetic training pairs."),
    ) -> None:
        """Start the stack, train a short CPU demo with a progress bar, then show its status."""
        from seghw.errors import UserError
        from seghw.queue.submit import describe, submit
        from seghw.stack import compose, demo, local

        args = demo.demo_args(epochs, synthetic, list(ctx.args))
        if compose.mode() == "compose":
            created = compose.ensure_env_file(compose.project_dir())
            if created:
                print(f"created {created} with a random REDIS_PASSWORD")
            if compose.up(wait=True) != 0:
                _exit(1)
                return
            done = compose.capture(["exec", "-T", "trainer", "seghw", "submit", *args])
            print(done.stdout, end="")
            m = re.search(r"folder:\s+(\S+)", done.stdout)
            if done.returncode != 0 or not m:
                print(done.stderr, end="", file=sys.stderr)
                _exit(done.returncode or 1)
                return
            run_dir = m.group(1)
            doc = demo.follow(Path(run_dir).name, demo.compose_reader(run_dir), demo.timeout())
            code = compose.run(["exec", "-T", "monitor", "seghw", "status"])
            url = compose.visualdl_url()
        else:
            state, started = local.up()
            print(("started the local stack" if started else "the local stack is already up")
                  + f": VisualDL {state.visualdl_url}")
            _local_env(state)
            sub = submit(args)
            print(describe(sub))
            doc = demo.follow(sub.run_id, demo.file_reader(sub.run_dir), demo.timeout())
            demo.wait_for_monitor(sub.run_id, doc.get("status"))
            code = _seghw(["status"])
            url = state.visualdl_url
        status = doc.get("status")
        print(f"\nOpen {url} in a browser: scalars, images and histograms of run {doc.get('run_id')}.")
        print("make status shows the health again; make down stops the stack.")
        if status != "finished":
            raise UserError(f"the demo run ended {status}: see make logs")
        _exit(0 if code in (0, 1) else code)
