"""Footprint: one real training process followed for its peak memory, and the size of what it
leaves behind (VisualDL records by epoch and kind, the stats file, a checkpoint)."""

from __future__ import annotations

import json
import math
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from ..core import Bench, Option, listed, median, plural
from ..training import run_folder

NAME = "footprint"
OPTIONS = (
    Option("footprint_synthetic", int, 64, 48, "synthetic pairs, training subprocess"),
    Option("footprint_epochs", int, 3, 1, "epochs of the training subprocess"),
)


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


def measure(b: Bench) -> dict[str, Any]:
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
    run_dir = run_folder(out)
    stats = json.loads((run_dir / "training_stats.json").read_text())
    from seghw.vdl_records import newest_records_file

    records = newest_records_file(run_dir)
    vdl = vdl_bytes(records, stats["steps_per_epoch"])
    ckpts = sorted((run_dir / "checkpoints").glob("*.pdckpt"))
    per = list(vdl["per_epoch"].values())
    b.say(f"  peak RSS {maxrss_mb:.0f} MB (import paddle alone {import_rss:.0f} MB); {seconds:.1f} s end to end; "
          f"VisualDL {vdl['total']:,} B "
          f"({vdl['one_off']:,} one-off, {median(per):,.0f} B per epoch)")
    return {
        "argv": argv, "seconds": seconds, "maxrss_mb": maxrss_mb, "run_id": run_dir.name,
        "import_rss_mb": import_rss,
        "epochs": stats["epoch"], "steps_per_epoch": stats["steps_per_epoch"], "vdl": vdl,
        "stats_bytes": (run_dir / "training_stats.json").stat().st_size,
        "checkpoint_bytes": ckpts[-1].stat().st_size if ckpts else 0,
    }


def render(b: Bench, f: dict[str, Any]) -> list[str]:
    vdl = f["vdl"]
    per = list(vdl["per_epoch"].values())
    lines = ["", "## 6. Footprint", "",
             f"A real training process: `{' '.join(['seghw', *f['argv'][1:-2]])}` "
             f"({plural(f['epochs'], 'epoch')} of "
             f"{f['steps_per_epoch']} steps, {f['seconds']:.1f} s end to end).", "",
             f"- Trainer peak memory (peak resident set, `VmHWM` of the process followed every 0.1 s): "
             f"**{f['maxrss_mb']:.0f} MB**; a process that only imports Paddle peaks at "
             f"{f['import_rss_mb']:.0f} MB.",
             f"- VisualDL records: {vdl['total']:,} B for {plural(f['epochs'], 'epoch')} = "
             f"**{vdl['total'] / f['epochs']:,.0f} B per epoch** on average; of which {vdl['one_off']:,} B "
             "once per run (model graph, hparams) and "
             f"{median(per):,.0f} B per further epoch (per epoch: {listed(per, ',')}). By "
             "kind, whole run: " + ", ".join(f"{k} {v:,} B" for k, v in vdl["kinds"].items()) + ".",
             f"- training_stats.json: {f['stats_bytes']:,} B; one checkpoint: {f['checkpoint_bytes']:,} B."]
    redis_bytes = (b.results.get("status") or {}).get("footprint_run_memory")
    if redis_bytes:
        lines.append(f"- Redis: this run's keys take {redis_bytes:,} B (see below).")
    return [*lines, "", f"Reproduce: `{b.command(NAME)}`."]


def sinks(b: Bench, f: dict[str, Any]) -> list[str]:
    return [f"Memory: the trainer peaks at {f['maxrss_mb']:.0f} MB resident; importing Paddle alone takes "
            f"{f['import_rss_mb']:.0f} MB."]
