"""Measure training speed and write docs/BENCHMARKS.md (``make bench``).

Comparisons are ratios taken in the same run, alternating the configurations, because the
machine is shared and noisy.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "BENCHMARKS.md"


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def train_rate(observers: bool, epochs: int, synthetic: int, workdir: Path) -> float:
    """Images per second over whole epochs, every observer's cost included."""
    from seghw import paths
    from seghw.config import build_config
    from seghw.train.loop import fit
    from seghw.train.runner import observers as make_observers
    from seghw.train.runner import prepare

    cfg = build_config("cpu-demo", synthetic=synthetic, epochs=epochs, log_root=str(workdir),
                       observers=observers)
    run_dir = paths.new_run_dir(workdir)
    state, train_batches, val_batches = prepare(cfg, run_dir)
    callbacks = make_observers(state, cfg)
    t0 = time.perf_counter()
    fit(state, train_batches, val_batches, callbacks, lambda: False)
    seconds = time.perf_counter() - t0
    return state.global_step * cfg.batch_size / seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds per configuration")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--synthetic", type=int, default=128)
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args()

    from seghw.device import import_paddle

    import_paddle()
    import io
    from contextlib import redirect_stdout

    rates: dict[bool, list[float]] = {True: [], False: []}
    with tempfile.TemporaryDirectory() as tmp:
        os.environ.setdefault("SEGHW_CACHE_DIR", str(Path(tmp) / "cache"))
        train_rate(False, 1, args.synthetic, Path(tmp) / "warmup")  # data cache and kernels warm
        for r in range(args.rounds):
            for observers in (True, False) if r % 2 == 0 else (False, True):
                with redirect_stdout(io.StringIO()):
                    rate = train_rate(observers, args.epochs, args.synthetic, Path(tmp) / f"r{r}{observers}")
                rates[observers].append(rate)
                print(f"round {r + 1}: observers {'on ' if observers else 'off'} {rate:6.1f} img/s", flush=True)
    on, off = statistics.median(rates[True]), statistics.median(rates[False])
    ratio = on / off
    print(f"cpu-demo training: observers on {on:.1f} img/s, off {off:.1f} img/s, ratio {ratio:.3f}")
    if args.no_write:
        return 0
    cmd = f"python scripts/bench.py --rounds {args.rounds} --epochs {args.epochs} --synthetic {args.synthetic}"
    DOC.parent.mkdir(exist_ok=True)
    DOC.write_text(f"""# Benchmarks

Written by `make bench` on {datetime.now(timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}.
Machine: {cpu_model()}, {os.cpu_count()} cores, Python {platform.python_version()}.
Each figure is the median of {args.rounds} alternating rounds in one run; compare ratios, not
absolute numbers, across runs (the machine is shared).

## Training rate, `cpu-demo` preset

| configuration | images/s | reproduce |
|---|---|---|
| all observers on (VisualDL scalars, images, histograms; stats file; checkpoints; progress) | {on:.1f} | `{cmd}` |
| all observers off | {off:.1f} | same run |
| **ratio on / off** | **{ratio:.3f}** | |

Rounds (img/s): on {', '.join(f'{x:.1f}' for x in rates[True])}; off {', '.join(f'{x:.1f}' for x in rates[False])}.
""", encoding="utf-8")
    print(f"wrote {DOC.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
