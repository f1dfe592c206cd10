"""Training rate, FLOP utilization and observer cost: cpu-demo at 64 and 128 px in this process,
observers on and off alternating, and the rate of Paddle's own kernels for scale."""

from __future__ import annotations

import os
import time
from typing import Any

from ..core import Bench, Goal, Option, Row, listed, median, pct, rates
from ..training import demo_config, forced_avx2_is_safe, train_once

NAME = "train"
OPTIONS = (
    Option("rounds", int, 7, 1, "alternating rounds, cpu-demo 64 px"),
    Option("epochs", int, 2, 1, "epochs per training round"),
    Option("synthetic", int, 256, 48, "synthetic pairs, cpu-demo 64 px"),
    Option("rounds_128", int, 3, 1, "alternating rounds, 128 px"),
    Option("synthetic_128", int, 64, 24, "synthetic pairs (160 px pages), 128 px"),
)
UTILIZATION = Goal("≥ 35 %", lambda v: v >= 0.35)
OBSERVER_RATIO = Goal("≥ 0.99", lambda v: v >= 0.99)
DATA_WAIT = Goal("≤ 2 %", lambda v: v <= 0.02)


def measure_config(b: Bench, label: str, rounds: int, overrides: dict[str, Any]) -> dict[str, Any]:
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
            flops = train_step_flops(cfg.base_channels, cfg.depth, cfg.image_size, cfg.patch_stem, cfg.context)
            res.update(peak=peak, gflops=res["step_rate"] * flops / 1e9)
            res["utilization"] = res["gflops"] / peak
            runs[obs].append(res)
            b.say(f"  {label} round {r + 1}: observers {'on ' if obs else 'off'} {res['wall_rate']:6.1f} img/s "
                  f"(steps {res['step_rate']:.1f} img/s, {res['gflops']:.1f} GFLOP/s of {peak:.0f}, "
                  f"data wait {pct(max(res['data_wait'] or [float('nan')]))})")
    summary = {"label": label, "runs": runs, "forward_flops": model_flops(cfg.base_channels, cfg.depth, cfg.image_size,
                                                                            cfg.patch_stem, cfg.context),
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


def measure(b: Bench) -> dict[str, Any]:
    a = b.args
    kernels = paddle_kernel_rates()
    b.say("Paddle kernels, GFLOP/s: " + ", ".join(f"{k} {v:.1f}" for k, v in kernels.items()))
    b.say(f"training: cpu-demo 64 px, {a.rounds} alternating rounds of {a.epochs} epochs on {a.synthetic} pairs")
    t64 = measure_config(b, "cpu-demo 64 px", a.rounds, dict(synthetic=a.synthetic, epochs=a.epochs))
    b.say(f"training: 128 px, {a.rounds_128} alternating rounds of {a.epochs} epochs on {a.synthetic_128} pairs")
    t128 = measure_config(b, "cpu-demo 128 px", a.rounds_128,
                          dict(synthetic=a.synthetic_128, image_size=128, epochs=a.epochs))
    for s in (t64, t128):
        b.say(f"  {s['label']}: on {s['on']['wall_rate']:.1f} img/s, off {s['off']['wall_rate']:.1f} img/s, "
              f"ratio {s['ratio']:.4f}; utilization {pct(s['off']['utilization'])}")
    return {"kernels": kernels, "train64": t64, "train128": t128}


def data_waits(t: dict[str, Any]) -> list[float]:
    """``data_wait_share`` of every epoch of every run of one configuration, observers on and off."""
    return t["on"]["data_wait"] + t["off"]["data_wait"]


def summary(b: Bench, r: dict[str, Any]) -> list[Row]:
    t64 = r["train64"]
    rows = [Row(f"training {t['label']}, FLOP/s ÷ matmul ceiling (observers off)",
                f"{pct(t['off']['utilization'])} ({t['off']['wall_rate']:.1f} img/s; {t['on']['wall_rate']:.1f} "
                "with observers)", UTILIZATION, t["off"]["utilization"]) for t in (t64, r["train128"])]
    worst = max(data_waits(t64))
    return [*rows,
            Row("observer cost, cpu-demo img/s on ÷ off", f"{t64['ratio']:.4f}", OBSERVER_RATIO, t64["ratio"]),
            Row("data wait, share of step time (cpu-demo, worst epoch)", pct(worst), DATA_WAIT, worst)]


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


def render(b: Bench, r: dict[str, Any]) -> list[str]:
    a = b.args
    t64, t128 = r["train64"], r["train128"]
    lines = ["", "## 1–2. Training rate, FLOP utilization and observer cost", "",
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
                     f"{listed(t['ratios'], '.3f')}); "
                     f"wall img/s per round: on {rates(t['runs'][True])}; off {rates(t['runs'][False])}.")
    if "kernels" in r:
        k = r["kernels"]
        lines += ["", "Paddle's own kernels in the same process, one thread as the trainer runs them (best of 5): "
                  + "; ".join(f"{name} **{v:.1f} GFLOP/s** ({pct(v / t64['off']['peak'])} of the "
                              "ceiling)" for name, v in k.items())
                  + f". {mkl_path_note()} A training step runs its convolutions near these rates and "
                    "adds the rest of the model (BatchNorm, activations, pooling, the loss, the optimizer) "
                    "at memory speed (*CPU threads and graph mode* compares a second thread)."]
    lines += ["", f"Reproduce: `{b.command(NAME)}`.",
              f"As users run it: `seghw train --preset cpu-demo --synthetic {a.synthetic} --epochs {a.epochs}` "
              "(add `--no-observers` for the off rows); 128 px: `seghw train --preset cpu-demo --image-size 128 "
              f"--synthetic {a.synthetic_128} --epochs {a.epochs}`."]
    return lines


def sinks(b: Bench, r: dict[str, Any]) -> list[str]:
    t64, t128, pr = r["train64"], r["train128"], b.results.get("profile")
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
    spread = ", ".join(f"{t['label']} {t['ratio']:.4f} (rounds {min(t['ratios']):.3f}–{max(t['ratios']):.3f})"
                       for t in (t64, t128))
    own = (f". In the profile the observers' own calls take {pct(pr['observer_time'] / pr['fit_time'])} of the "
           "training thread (the profiled epoch includes tracing the static graph)" if pr else "")
    off = t64["off"]
    return [
        f"Paddle's kernels: training reaches {pct(t64['off']['utilization'])} (64 px) and "
        f"{pct(t128['off']['utilization'])} (128 px) of the numpy matmul ceiling{kernels}. The model is "
        f"thin ({widths[0]} to {widths[-1]} channels): each convolution is a small product, far from the "
        "large square matmul that sets the ceiling.",
        f"Observers: img/s on ÷ off = {spread}{own}. Their work is mostly per epoch (checkpoint, "
        "histograms, two PNG image grids), so its share falls as epochs get longer than these benchmark "
        "epochs; the rest runs beside the training thread: VisualDL's writer, and the graph exporter the "
        "first time a model shape runs (the warm-up here; later runs copy the graph from the cache) "
        "([performance.md](performance.md), *Where the observer cost sits*).",
        f"Outside the steady optimizer steps (validation every epoch, epoch-end metrics, loader "
        f"start-up, tracing the static graph in the first epoch): "
        f"{pct(1 - off['wall_rate'] / off['step_rate'])} of the 64 px wall time with observers off, "
        f"{pct(1 - t128['off']['wall_rate'] / t128['off']['step_rate'])} at 128 px.",
    ]

