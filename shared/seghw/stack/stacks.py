"""The two ways to run the whole stack behind one interface: ``ComposeStack`` (Docker Compose) and
``LocalStack`` (local processes under honcho). ``current()`` chooses once: Compose when an engine
answers, else local; env ``STACK=local|compose`` decides. ``seghw stack`` (and so ``make up``,
``make train``, ``make status``...) calls the chosen one's methods; each prints what it did and
returns the command's exit code."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Protocol

from seghw.stack.settings import StackError


class Stack(Protocol):
    def up(self, timeout: float | None = None) -> int: ...
    def down(self) -> int: ...
    def status(self, args: list[str]) -> int: ...
    def logs(self, lines: int, follow: bool) -> int: ...
    def submit(self, args: list[str]) -> int: ...
    def stop(self, run: str) -> int: ...
    def demo(self, args: list[str]) -> int: ...


def current() -> Stack:
    from seghw.stack import compose

    return ComposeStack() if compose.mode() == "compose" else LocalStack()


def _seghw(args: list[str]) -> int:
    """``seghw ARGS`` in a child process, after this one was pointed at the stack."""
    return subprocess.run([sys.executable, "-m", "seghw.cli", *args], check=False).returncode


def _demo_end(doc: dict, code: int, url: str) -> int:
    from seghw.errors import UserError

    print(f"\nOpen {url} in a browser: scalars, images and histograms of run {doc.get('run_id')}.")
    print("make status shows the health again; make down stops the stack.")
    status = doc.get("status")
    if status != "finished":
        raise UserError(f"the demo run ended {status}: see make logs")
    return 0 if code in (0, 1) else code


class ComposeStack:
    """``docker compose`` over the project's compose files; commands run inside the services."""

    def _require(self, service: str) -> None:
        from seghw.stack import compose

        if service not in compose.running_services():
            raise StackError(f"the compose stack's {service} is not running: start the stack with make up")

    def _env_file(self) -> None:
        from seghw.stack import compose

        created = compose.ensure_env_file(compose.project_dir())
        if created:
            print(f"created {created} with a random REDIS_PASSWORD (edit it to change the settings)")

    def up(self, timeout: float | None = None) -> int:
        from seghw.stack import compose

        self._env_file()
        code = compose.up()
        if code == 0:
            print(f"stack up: {compose.ports_note()} (make status, make logs, make down)")
            hint = compose.open_hint()
            if hint:
                print(hint)
        return code

    def down(self) -> int:
        from seghw.stack import compose

        return compose.run(["down"])

    def status(self, args: list[str]) -> int:
        from seghw.stack import compose

        self._require("monitor")
        print(compose.proxy_line(), file=sys.stderr)
        return compose.run([*compose.exec_args("monitor"), "seghw", "status", *args])

    def logs(self, lines: int, follow: bool) -> int:
        from seghw.stack import compose

        return compose.run(["logs", f"--tail={lines}", *(["-f"] if follow else [])])

    def submit(self, args: list[str]) -> int:
        from seghw.stack import compose

        self._require("trainer")
        return compose.run([*compose.exec_args("trainer"), "seghw", "submit", *args])

    def stop(self, run: str) -> int:
        from seghw.stack import compose

        self._require("trainer")
        return compose.run([*compose.exec_args("trainer"), "seghw", "stop", run])

    def demo(self, args: list[str]) -> int:
        from seghw.stack import compose, demo

        self._env_file()
        if compose.up(wait=True) != 0:
            return 1
        done = compose.capture(["exec", "-T", "trainer", "seghw", "submit", *args])
        print(done.stdout, end="")
        m = re.search(r"folder:\s+(\S+)", done.stdout)
        if done.returncode != 0 or not m:
            print(done.stderr, end="", file=sys.stderr)
            return done.returncode or 1
        run_dir = m.group(1)
        doc = demo.follow(Path(run_dir).name, demo.compose_reader(run_dir), demo.timeout())
        code = compose.run(["exec", "-T", "monitor", "seghw", "status"])
        return _demo_end(doc, code, compose.visualdl_url())


class LocalStack:
    """The roles as local processes (``seghw.stack.local``); commands run here, pointed at them."""

    @staticmethod
    def _point_at(state) -> None:
        """Point this process (and its children) at the running local stack's Redis, runs and VisualDL."""
        os.environ["REDIS_URL"] = state.redis_url
        os.environ["SEGHW_LOG_ROOT"] = str(state.log_root)
        os.environ["SEGHW_VISUALDL_URL"] = state.visualdl_url

    def _require(self):
        from seghw.stack import local
        from seghw.stack.settings import stack_dir

        state = local.running_state()
        if state is None:
            raise StackError(f"the local stack is not running (state in {stack_dir()}): start it with make up")
        self._point_at(state)
        return state

    def up(self, timeout: float | None = None) -> int:
        from seghw.stack import local

        state, started = local.up(timeout=timeout)
        if not started:
            print(f"the local stack is already up: VisualDL {state.visualdl_url}; logs {state.log_file}; "
                  "make down stops it")
            return 0
        proxy = state.proxy
        guard = f", password required (user {proxy['user']})" if proxy else ""
        print(f"local stack up: VisualDL {state.visualdl_url}{guard} (runs in {state.log_root})")
        if not proxy:
            print("  this machine only; to open it to the network safely: "
                  "VISUALDL_PASSWORD=<a password> VISUALDL_HOST=0.0.0.0 make up")
        print(f"  logs: {state.log_file}   (make logs)")
        print("  next: make train ARGS=\"--preset cpu-demo --synthetic 64\"   then make status")
        return 0

    def down(self) -> int:
        from seghw.stack import local

        print(local.down())
        return 0

    def status(self, args: list[str]) -> int:
        from seghw.stack import local
        from seghw.stack.state import read_state

        state = local.running_state()
        print(local.describe(state or read_state()), file=sys.stderr)
        if state is not None:
            self._point_at(state)
        return _seghw(["status", *args])

    def logs(self, lines: int, follow: bool) -> int:
        from seghw.stack import local

        local.follow_logs(lines=lines, follow=follow)
        return 0

    def submit(self, args: list[str]) -> int:
        from seghw.queue.submit import describe, submit

        self._require()
        print(describe(submit(args)))
        return 0

    def stop(self, run: str) -> int:
        from seghw.queue.submit import describe_stop, stop

        self._require()
        print(describe_stop(stop(run)))
        return 0

    def demo(self, args: list[str]) -> int:
        from seghw.queue.submit import describe, submit
        from seghw.stack import demo, local

        state, started = local.up()
        print(("started the local stack" if started else "the local stack is already up")
              + f": VisualDL {state.visualdl_url}")
        self._point_at(state)
        sub = submit(args)
        print(describe(sub))
        doc = demo.follow(sub.run_id, demo.file_reader(sub.run_dir), demo.timeout())
        demo.wait_for_monitor(sub.run_id, doc.get("status"))
        return _demo_end(doc, _seghw(["status"]), state.visualdl_url)
