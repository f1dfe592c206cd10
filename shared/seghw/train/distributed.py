"""Data-parallel training: one process per GPU (or per CPU process), started by Paddle's launcher.

``seghw train --gpus 0,1 ...`` re-runs the same command under ``python -m paddle.distributed.launch``.
Every process trains the same model on its own share of each epoch's pairs; gradients are averaged
across processes in ``backward`` (``paddle.DataParallel``: NCCL on GPU, gloo on CPU). Rank 0 alone
writes VisualDL records, the stats file and checkpoints; every rank validates, so all of them stay in
step. The CPU path (``--nproc N``) runs exactly this code, which is how it is tested.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from seghw.errors import ConfigError

# Flags that choose the processes: the launcher consumes them, the workers must not see them again.
LAUNCH_FLAGS = ("--gpus", "--nproc")
LOG_DIR = "dist_logs"


def rank() -> int:
    return int(os.environ.get("PADDLE_TRAINER_ID", 0))


def world_size() -> int:
    return int(os.environ.get("PADDLE_TRAINERS_NUM", 1))


def is_worker() -> bool:
    """True inside a process started by ``paddle.distributed.launch``."""
    return "PADDLE_TRAINER_ID" in os.environ


def parse_gpus(gpus: str) -> list[int]:
    try:
        ids = [int(g) for g in gpus.split(",") if g.strip() != ""]
    except ValueError:
        ids = []
    if not ids or any(i < 0 for i in ids) or len(set(ids)) != len(ids):
        raise ConfigError(f"invalid --gpus {gpus!r}: give distinct card numbers, e.g. --gpus 0,1")
    return ids


def strip_launch_flags(argv: list[str]) -> list[str]:
    out, skip = [], False
    for arg in argv:
        if skip:
            skip = False
            continue
        if arg in LAUNCH_FLAGS:
            skip = True
            continue
        if any(arg.startswith(flag + "=") for flag in LAUNCH_FLAGS):
            continue
        out.append(arg)
    return out


def device_args(gpus: str | None, nproc: int | None) -> list[str]:
    """The launcher's flags for ``--gpus`` or ``--nproc``, checked."""
    if gpus:
        return ["--gpus", ",".join(str(g) for g in parse_gpus(gpus))]
    if not nproc or nproc < 1:
        raise ConfigError(f"invalid --nproc {nproc!r}: give the number of processes, e.g. --nproc 2")
    return ["--nproc_per_node", str(nproc)]


def launch_command(argv: list[str], run_dir: Path, devices: list[str]) -> list[str]:
    """The launcher command that runs ``seghw <argv>`` once per device (``device_args``), all in ``run_dir``."""
    worker_args = strip_launch_flags(argv)
    if "--run-dir" not in worker_args and not any(a.startswith("--run-dir=") for a in worker_args):
        worker_args += ["--run-dir", str(run_dir)]
    # A non-.py "script" is run as a command: the workers run ``python -m seghw.cli train ...``.
    return [sys.executable, "-m", "paddle.distributed.launch", *devices, "--log_dir", str(run_dir / LOG_DIR),
            "--log_overwrite", "True", sys.executable, "-m", "seghw.cli", *worker_args]


def supervise(cmd: list[str], run_dir: Path) -> int:
    """Run the launcher, pass SIGTERM/SIGINT on to it, and exit as rank 0's run ended.

    The launcher's own exit code says little (15 after a clean stop, 250 after a worker error);
    rank 0's stats file says how the run ended, as in a single process.
    """
    import signal
    import subprocess

    from seghw.stats import read_stats, stats_path

    def written() -> float | None:
        try:
            return stats_path(run_dir).stat().st_mtime_ns
        except OSError:
            return None

    before = written()
    proc = subprocess.Popen(cmd)

    def forward(signum, frame):
        proc.send_signal(signum)

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, forward)
    code = proc.wait()
    if written() in (None, before):  # rank 0 never got to write (a resumed run's old file says nothing)
        return code or 1
    try:
        status = read_stats(run_dir).get("status")
    except (OSError, ValueError):
        return code or 1
    return {"finished": 0, "stopped": 0, "diverged": 3, "failed": 1}.get(status, code or 1)


def wrap_model(model):
    """Join the process group and wrap the model; a no-op in a single process."""
    if world_size() <= 1:
        return model
    import paddle
    import paddle.distributed as dist

    dist.init_parallel_env()
    # DataParallel outside to_static (the other order fails); it also copies rank 0's weights to all.
    return paddle.DataParallel(model)


def shard(pairs, index: int | None = None, count: int | None = None):
    """This rank's share of the training pairs: every ``count``-th pair from ``index``."""
    from seghw.data.dataset import PairSet

    index = rank() if index is None else index
    count = world_size() if count is None else count
    if count <= 1:
        return pairs
    return PairSet(pairs.names[index::count], pairs.images[index::count], pairs.gts[index::count],
                   pairs.masks[index::count])


class AgreedStop:
    """A stop request seen by any rank stops every rank at the same step (else they would deadlock)."""

    def __init__(self, local) -> None:
        self.local = local

    def __call__(self) -> bool:
        if world_size() <= 1:
            return bool(self.local())
        import paddle
        import paddle.distributed as dist

        flag = paddle.to_tensor([1 if self.local() else 0], dtype="int32")
        dist.all_reduce(flag, op=dist.ReduceOp.MAX)
        return bool(int(flag.numpy()[0]))
