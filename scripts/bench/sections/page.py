"""Full page: a synthetic A4 page tiled through both inference engines, then `seghw infer` end to end."""

from __future__ import annotations

import subprocess
import time
from typing import Any

from ..core import Bench, Goal, Option, Row, listed, median, pct, verdict
from ..training import tiny_run

NAME = "page"
OPTIONS = (Option("page_repeats", int, 3, 1, "tiled inference runs of the full page"),)
PAGE_HW = (1754, 1240)  # A4 at 150 dpi, height x width
PAGE_WINDOW, PAGE_OVERLAP = 512, 64
PAGE_SECONDS = Goal("≤ 10 s", lambda v: v <= 10.0)


def measure(b: Bench) -> dict[str, Any]:
    import paddle
    from PIL import Image

    from seghw.config import build_config
    from seghw.data.synth import generate_pair
    from seghw.flops import machine_peak_gflops, model_flops
    from seghw.inference import inference_threads, make_predictor
    from seghw.model import build_model, model_settings
    from seghw.tiling import count_windows, tile_predict

    demo = build_config("cpu-demo")
    t0 = time.perf_counter()
    image, _gt, _mask = generate_pair(20240, PAGE_HW)
    gen_seconds = time.perf_counter() - t0
    paddle.seed(0)
    model = build_model(**model_settings(demo))
    windows = count_windows(*PAGE_HW, window=PAGE_WINDOW, overlap=PAGE_OVERLAP, multiple=demo.stride)
    flops = windows * model_flops(demo.base_channels, demo.depth, PAGE_WINDOW, demo.patch_stem, demo.context)
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
    Image.fromarray(image).save(page_png)
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
    return {**fast, "engines": engines, "windows": windows, "gen_seconds": gen_seconds,
            "cli": cli, "cli_seconds": cli["fast"], "threads": inference_threads(), "checkpoint_run": run.name}


def summary(b: Bench, p: dict[str, Any]) -> list[Row]:
    return [Row("full page 1240×1754, tiled inference", f"{p['seconds']:.1f} s", PAGE_SECONDS, p["seconds"])]


def render(b: Bench, p: dict[str, Any]) -> list[str]:
    fast, eager = p["engines"]["fast"], p["engines"]["eager"]

    def engine_line(name, e, how):
        return (f"- {name} ({how}): **{e['seconds']:.2f} s per page** (median of {len(e['times'])}: "
                f"{listed(e['times'])}), {e['gflops']:.1f} GFLOP/s = "
                f"{pct(e['gflops'] / e['peak'])} of the {e['peak']:.0f} GFLOP/s ceiling; the model's forward "
                f"passes are {pct(e['model_share'])} of it, cutting and blending the windows the rest.")

    return ["", "## 4. Full page", "",
            f"One synthetic 1240×1754 page (`generate_pair(20240, (1754, 1240))`, {p['gen_seconds']:.1f} s to "
            f"generate) through `seghw.tiling.tile_predict` (window {PAGE_WINDOW}, overlap {PAGE_OVERLAP}, "
            f"{p['windows']} windows, batch 4) with a cpu-demo model (random init; the time does not depend on "
            "the weights), with both engines of `seghw infer`, alternating:", "",
            engine_line("`--engine fast` (default)", fast,
                        f"the model exported with `paddle.jit.save`, run by Paddle Inference with oneDNN, "
                        f"{p['threads']} threads"),
            engine_line("`--engine eager`", eager, "the training model in Paddle's eager mode, 1 thread"),
            f"- fast ÷ eager time: {fast['seconds'] / eager['seconds']:.2f}; goal "
            f"{PAGE_SECONDS.text}: {verdict(PAGE_SECONDS, fast['seconds'])}.",
            f"- `seghw infer --checkpoint RUN --input page.png --output OUT` end to end (process start, Paddle "
            f"import, checkpoint load, export, PNG read and two PNG writes included): "
            f"**{p['cli']['fast']:.1f} s**; with `--engine eager`, right after: {p['cli']['eager']:.1f} s.",
            "", f"Reproduce: `{b.command(NAME)}`."]


def sinks(b: Bench, p: dict[str, Any]) -> list[str]:
    return [f"Full pages: {p['windows']} windows of 512² ({p['windows'] * 512 * 512 / (1240 * 1754):.1f}× the "
            f"page's pixels, from the overlap and the last window's alignment) at {pct(p['gflops'] / p['peak'])}"
            f" of the ceiling with the fast engine; the forward passes are {pct(p['model_share'])} of the "
            f"{p['seconds']:.1f} s. `seghw infer` took {p['cli_seconds']:.1f} s end to end."]
