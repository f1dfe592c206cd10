"""Where the time goes: one cpu-demo epoch under pyinstrument, with every thread's CPU time."""

from __future__ import annotations

import re
import threading
from pathlib import Path
from typing import Any

from ..core import Bench, pct
from ..training import demo_config, train_once

NAME = "profile"
REPRODUCE = ("synthetic",)  # the training section's option: the profiled epoch is its 64 px run
TOP = 8


class ThreadCPU:
    """CPU seconds used by each thread of this process while the block runs, by thread name.

    pyinstrument samples the main thread only; the data loader, the VisualDL writer and Paddle's
    OpenMP workers share the same two cores, so their CPU time is read here (psutil, every 0.1 s).
    """

    def __init__(self, every: float = 0.1):
        import psutil

        self.process, self.every = psutil.Process(), every
        self.start: dict[int, float] = {}
        self.last: dict[int, float] = {}
        self.names: dict[int, str] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="bench-sampler", daemon=True)

    def _sample(self) -> None:
        names = {t.native_id: t.name for t in threading.enumerate()}
        for t in self.process.threads():
            self.last[t.id] = t.user_time + t.system_time
            if t.id in names:
                self.names[t.id] = re.sub(r"_\d+$", "", names[t.id])

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            self._sample()

    def __enter__(self) -> ThreadCPU:
        self._sample()
        self.start = dict(self.last)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self._sample()

    def by_name(self) -> dict[str, float]:
        out: dict[str, float] = {}
        for tid, cpu in self.last.items():
            name = self.names.get(tid, "native threads (Paddle's graph executor and kernels)")
            if name != "bench-sampler":
                out[name] = out.get(name, 0.0) + cpu - self.start.get(tid, 0.0)
        return dict(sorted(out.items(), key=lambda kv: -kv[1]))


Key = tuple[str, str]  # (function, "seghw/.../file.py:line") as pyinstrument names a frame


def frame_times(root) -> tuple[dict[Key, float], dict[Key, float]]:
    """Self time of every function, and the inclusive time of the project's functions (a recursive
    call counted once), from a pyinstrument session's root frame."""
    self_time: dict[Key, float] = {}
    inclusive: dict[Key, float] = {}

    def walk(frame, ancestors: frozenset) -> None:
        if frame.is_synthetic:
            return
        where = frame.file_path_short or ""
        key = (frame.function, f"{where}:{frame.line_no}" if frame.line_no else where)
        self_time[key] = self_time.get(key, 0.0) + frame.total_self_time
        if "seghw" in (frame.file_path or "") and key not in ancestors:
            inclusive[key] = inclusive.get(key, 0.0) + frame.time
        for child in frame.children:
            walk(child, ancestors | {key})

    walk(root, frozenset())
    return self_time, inclusive


def observer_hooks() -> set[Key]:
    """The hooks through which the loop calls its observers (``ObserverList``'s), named as in a profile."""
    import inspect

    import seghw
    from seghw.train.observers.base import ObserverList

    package_root = Path(seghw.__file__).resolve().parents[1]
    hooks = set()
    for name in ("on_train_start", "on_epoch_start", "on_step_end", "on_epoch_end", "on_train_end"):
        fn = getattr(ObserverList, name)
        where = Path(inspect.getsourcefile(fn)).resolve().relative_to(package_root).as_posix()
        hooks.add((name, f"{where}:{inspect.getsourcelines(fn)[1]}"))
    return hooks


def observer_time(inclusive: dict[Key, float]) -> float:
    """Everything the observers do on the training thread."""
    hooks = observer_hooks()
    return sum(t for key, t in inclusive.items() if key in hooks)


def measure(b: Bench) -> dict[str, Any]:
    """One cpu-demo epoch (observers on) under pyinstrument; flat self time and the loop's breakdown."""
    from pyinstrument import Profiler

    b.say("profile: one cpu-demo epoch under pyinstrument")
    cfg = demo_config(True, b.runs_root, synthetic=b.args.synthetic, epochs=1)
    profiler = Profiler(interval=0.002)
    threads = ThreadCPU()
    res = train_once(cfg, b.runs_root, around=(threads, profiler))
    root = profiler.last_session.root_frame()
    self_time, inclusive = frame_times(root)
    total = root.time
    fit_key = next((k for k in inclusive if k[0] == "fit"), None)
    fit_time = inclusive.get(fit_key, total) if fit_key else total
    result = {
        "seconds": res["seconds"],
        "fit_time": fit_time,
        "self": sorted(self_time.items(), key=lambda kv: -kv[1])[:TOP],
        "inclusive": sorted(inclusive.items(), key=lambda kv: -kv[1])[:TOP + 4],
        "threads": threads.by_name(),
        "observer_time": observer_time(inclusive),
    }
    for (fn, where), t in result["self"][:5]:
        b.say(f"  {100 * t / fit_time:5.1f} % self  {fn}  ({where})")
    b.say("  CPU by thread: " + ", ".join(f"{k} {v:.2f} s" for k, v in result["threads"].items()))
    b.say(f"  observers' calls: {pct(result['observer_time'] / fit_time)} of the training thread")
    return result


def render(b: Bench, pr: dict[str, Any]) -> list[str]:
    ft = pr["fit_time"]
    lines = ["", "## Where the time goes", "",
             f"One cpu-demo epoch with every observer on, under pyinstrument (main thread; {ft:.1f} s in `fit`). "
             "Self time by function (C++ kernels are charged to the Python call that enters them):", "",
             "| self time | function | where |", "|---|---|---|"]
    for (fn, where), t in pr["self"]:
        lines.append(f"| {100 * t / ft:.1f} % | `{fn}` | {where} |")
    lines += ["", "Inclusive time of the project's own functions:", "", "| total time | function | where |",
              "|---|---|---|"]
    for (fn, where), t in pr["inclusive"]:
        lines.append(f"| {100 * t / ft:.1f} % | `{fn}` | {where} |")
    cpu = pr["threads"]
    lines += ["", f"CPU time by thread over the same epoch ({pr['seconds']:.1f} s of wall time, 2 cores): "
              + ", ".join(f"{name} {sec:.2f} s" for name, sec in cpu.items()) + ".",
              "", f"Reproduce: `{b.command(NAME)}`."]
    return lines


def sinks(b: Bench, pr: dict[str, Any]) -> list[str]:
    others = {k: v for k, v in pr["threads"].items() if k not in ("MainThread",) and not k.startswith("native")}
    if not others:
        return []
    busy = sum(others.values()) / pr["seconds"]
    return [f"Background threads (data loader, VisualDL writer) used {pct(busy)} of one core during the "
            f"profiled epoch ({', '.join(f'{k} {v:.2f} s' for k, v in others.items())}): "
            + ("they take a noticeable share of the two cores." if busy > 0.05 else
               "they barely compete with Paddle for the cores.")]
