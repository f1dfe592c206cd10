"""What every section uses: the ``Bench`` it measures with, the ``Section`` record, options, goals,
summary rows, number formatting and child-process helpers."""

from __future__ import annotations

import argparse
import math
import platform
import signal
import socket
import statistics
import subprocess
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "BENCHMARKS.md"
INVOCATION = "-m scripts.bench"  # after the interpreter, from the project root


@dataclass(frozen=True)
class Option:
    """A command-line option of a section: ``--NAME-WITH-DASHES``, its full and its ``--quick`` value."""

    name: str  # the attribute of ``bench.args``
    type: type
    default: Any
    quick: Any
    help: str

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")


@dataclass(frozen=True)
class Goal:
    text: str  # as the summary shows it, e.g. "≥ 35 %"
    check: Callable[[float], bool]


def verdict(goal: Goal, value: float | None) -> str:
    if value is None or math.isnan(value):
        return "not measured"
    return "met" if goal.check(value) else "**not met**"


@dataclass(frozen=True)
class Row:
    """One row of the summary table; without a goal it shows "(none)" and no verdict."""

    figure: str
    result: str
    goal: Goal | None = None
    value: float | None = None  # what the goal checks

    def markdown(self) -> str:
        if self.goal is None:
            return f"| {self.figure} | {self.result} | (none) | |"
        return f"| {self.figure} | {self.result} | {self.goal.text} | {verdict(self.goal, self.value)} |"


@dataclass(frozen=True)
class Section:
    """A section as the table in ``sections`` lists it, read from its module (see the package docstring)."""

    name: str
    measure: Callable[[Bench], dict[str, Any]]
    render: Callable[[Bench, dict[str, Any]], list[str]]
    options: tuple[Option, ...] = ()
    reproduce: tuple[str, ...] = ()
    summary: Callable[[Bench, dict[str, Any]], list[Row]] | None = None
    sinks: Callable[[Bench, dict[str, Any]], list[str]] | None = None

    @classmethod
    def of(cls, module: ModuleType) -> Section:
        options = tuple(getattr(module, "OPTIONS", ()))
        return cls(name=module.NAME, measure=module.measure, render=module.render, options=options,
                   reproduce=tuple(getattr(module, "REPRODUCE", (o.name for o in options))),
                   summary=getattr(module, "summary", None), sinks=getattr(module, "sinks", None))


@dataclass
class Bench:
    args: argparse.Namespace
    tmp: Path
    seghw: str
    env: dict[str, str]
    sections: Mapping[str, Section] = field(default_factory=dict)
    results: dict[str, dict[str, Any]] = field(default_factory=dict)  # by section name, as measured

    @property
    def runs_root(self) -> Path:
        """Runs with every observer on: the monitor watches this folder."""
        return self.tmp / "runs"

    def say(self, line: str) -> None:
        print(line, flush=True)

    def command(self, section: str) -> str:
        """The command that measures ``section`` again, with the options that shaped its figures."""
        opts = given_options(self.args, self.sections[section].reproduce)
        return f".venv/bin/python {INVOCATION} --only {section} {opts}".rstrip()


# ---------------------------------------------------------------------------------------- formatting


def given_options(args: Any, names: Iterable[str]) -> str:
    """``--name value`` for each of ``names`` that has a value: an unset option is not printed as ``None``."""
    return " ".join(f"--{name.replace('_', '-')} {getattr(args, name)}" for name in names
                    if getattr(args, name) is not None)


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def pct(x: float | None) -> str:
    return "n/a" if x is None or math.isnan(x) else f"{100 * x:.1f} %"


def rates(runs: list[dict[str, Any]], key: str = "wall_rate") -> str:
    return ", ".join(f"{x[key]:.1f}" for x in runs)


def listed(values: list[float], spec: str = ".2f") -> str:
    return ", ".join(format(x, spec) for x in values)


# ---------------------------------------------------------------------------------------- processes


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(predicate, timeout: float, what: str, every: float = 0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(every)
    raise RuntimeError(f"timed out after {timeout:.0f} s waiting for {what}")


def stop_process(proc: subprocess.Popen, timeout: float = 20.0) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
