"""Data: how fast the synthetic generator makes pairs, beside the training runs' data wait."""

from __future__ import annotations

import time
from typing import Any

from ..core import Bench, Option, median, pct
from .train import DATA_WAIT, data_waits

NAME = "data"
OPTIONS = (Option("synth_seconds", float, 3.0, 1.0, "time spent generating pairs per size"),)


def measure(b: Bench) -> dict[str, Any]:
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
    return {"pairs_per_second": rates}


def render(b: Bench, r: dict[str, Any]) -> list[str]:
    """The generator's rate, and the data wait of the training section when it ran too."""
    train = b.results.get("train")
    lines = ["", "## 3. Data", ""]
    if train:
        for t in (train["train64"], train["train128"]):
            w = data_waits(t)
            lines.append(f"- Data wait ({t['label']}, `data_wait_share` of every epoch of every run above): "
                         f"median {pct(median(w))}, worst {pct(max(w))} (goal {DATA_WAIT.text}).")
    lines.append("- Synthetic pairs generated per second (`seghw.data.synth.generate_pair`, one thread): "
                 + ", ".join(f"{v:.1f} at {k} px" for k, v in r["pairs_per_second"].items())
                 + ". The trainer reads pairs from an on-disk cache, so this cost is paid once per "
                   "(count, size, seed).")
    lines.append(f"  Reproduce: `{b.command(NAME)}`.")
    if train:
        lines.append(f"  Data wait reproduces with the training command above (`{b.command('train')}`).")
    return lines
