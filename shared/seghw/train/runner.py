"""Sets a run up (folder, data, model, optimizer, resume), wires the observers, runs the loop,
and turns the way it ended into an exit code."""

from __future__ import annotations

import itertools
import random
import signal
import sys
import traceback
from pathlib import Path

import numpy as np

from seghw import checkpoint, paths
from seghw.config import TrainConfig
from seghw.errors import UserError
from seghw.stats import empty_stats, now_iso, write_stats
from seghw.train import distributed

EXIT_OK, EXIT_FAILED, EXIT_USER, EXIT_DIVERGED = 0, 1, 2, 3


class StopFlag:
    """Set by SIGTERM/SIGINT: the loop finishes its step, checkpoints and ends ``stopped``."""

    def __init__(self) -> None:
        self.requested = False

    def install(self) -> None:
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, self._handle)

    def _handle(self, signum, frame) -> None:
        if self.requested and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.requested = True
        print(f"\n{signal.Signals(signum).name}: stopping after this step and saving a checkpoint",
              file=sys.stderr, flush=True)

    def __call__(self) -> bool:
        return self.requested


def resolve_resume(resume: str, root: Path) -> Path:
    if resume == "latest":
        candidates = [r for r in paths.list_runs(root) if checkpoint.latest_checkpoint(r)]
        if not candidates:
            raise UserError(f"--resume latest: no run with a checkpoint under {root}")
        return candidates[-1]
    run_dir = Path(resume)
    if not run_dir.is_dir():
        raise UserError(f"--resume {resume}: no such run folder")
    return run_dir


def prepare_data(cfg: TrainConfig, root: Path):
    from seghw.data.dataset import load_split
    from seghw.data.synth import cached_dataset

    if cfg.synthetic:
        data_dir = cached_dataset(paths.cache_dir(root), cfg.synthetic, cfg.synthetic_size or cfg.image_size,
                                  cfg.synthetic_seed)
    elif cfg.data:
        data_dir = Path(cfg.data)
    else:
        raise UserError("no training data: pass --data DIR (images/ + gts/) or --synthetic N")
    return load_split(data_dir, val_fraction=cfg.val_fraction, seed=cfg.seed, min_size=cfg.image_size)


def build(cfg: TrainConfig, run_dir: Path, device: str, steps_per_epoch: int):
    """Model, optimizer, schedule and AMP scaler in a fresh RunState."""
    import paddle

    from seghw.model import build_model, count_parameters, model_settings
    from seghw.train.schedule import build_scheduler
    from seghw.train.state import RunState

    paddle.seed(cfg.seed)
    np.random.seed(cfg.seed)
    random.seed(cfg.seed)
    model = build_model(**model_settings(cfg))
    if cfg.static_graph:
        # One static program per mode (train/eval) for any batch and page size; the parameters,
        # their gradients and the state dict stay those of the eager layer.
        spec = [paddle.static.InputSpec([None, 3, None, None], "float32", "image")]
        model = paddle.jit.to_static(model, input_spec=spec, full_graph=True)
    model = distributed.wrap_model(model)
    total_steps = steps_per_epoch * cfg.epochs
    scheduler = build_scheduler(cfg.lr, cfg.warmup_steps, total_steps, cfg.min_lr_ratio)
    opt_cls = paddle.optimizer.AdamW if cfg.optimizer == "adamw" else paddle.optimizer.Adam
    clip = paddle.nn.ClipGradByGlobalNorm(cfg.grad_clip) if cfg.grad_clip else None
    optimizer = opt_cls(learning_rate=scheduler, parameters=model.parameters(),
                        weight_decay=cfg.weight_decay or None, grad_clip=clip)
    # Same calls on CPU and GPU; the scaler is a no-op unless AMP runs on a GPU.
    scaler = paddle.amp.GradScaler(enable=cfg.amp and device.startswith("gpu"), init_loss_scaling=2.0**14)
    state = RunState(config=cfg, run_dir=run_dir, device=device, steps_per_epoch=steps_per_epoch,
                     total_parameters=count_parameters(model), model=model, optimizer=optimizer,
                     scheduler=scheduler, scaler=scaler)
    return state


def restore(state, ckpt_path: Path) -> None:
    from seghw.train.state import EpochAccumulator

    payload = checkpoint.load(ckpt_path)
    state.model.set_state_dict(payload["model"])
    state.optimizer.set_state_dict(payload["optimizer"])
    state.scheduler.set_state_dict(payload["scheduler"])
    state.scaler.load_state_dict(payload["scaler"])
    state.epoch = int(payload["epoch"])
    state.global_step = int(payload["global_step"])
    state.step_in_epoch = int(payload["step_in_epoch"])
    state.acc = EpochAccumulator(**payload["accumulator"])
    state.history = list(payload["history"])
    state.latest = dict(payload["latest"])
    state.best_checkpoint = payload["best_checkpoint"]
    state.bad_steps = int(payload["bad_steps"])
    state.faults.restore(payload.get("display_faults"))  # absent in checkpoints saved before the count
    state.last_checkpoint = {"path": str(ckpt_path), "epoch": state.epoch, "global_step": state.global_step,
                             "psnr": state.latest.get("psnr")}
    state.resumed_from = dict(state.last_checkpoint)
    rng = payload.get("rng") or {}
    if "numpy" in rng:
        np.random.set_state(rng["numpy"])
    if "python" in rng:
        random.setstate(tuple(rng["python"]) if isinstance(rng["python"], list) else rng["python"])


def observers(state, cfg: TrainConfig):
    from seghw.flops import run_peak_gflops, train_step_flops
    from seghw.train.observers.base import ObserverList
    from seghw.train.observers.checkpointer import Checkpointer
    from seghw.train.observers.progress import ProgressReporter
    from seghw.train.observers.recorder import MetricsRecorder
    from seghw.train.observers.stats_writer import StatsWriter
    from seghw.train.observers.visualdl_logger import VisualDLLogger

    writes = cfg.observers and distributed.rank() == 0  # one process writes for all of them
    per_sample = train_step_flops(cfg.base_channels, cfg.depth, cfg.image_size, cfg.patch_stem, cfg.context)
    # The CPU ceiling costs ~0.5 s to measure; a GPU's is not numpy's.
    peak = run_peak_gflops() * 1e9 if state.device == "cpu" and writes else None
    recorder = MetricsRecorder(flops_per_sample=per_sample, peak_flops=peak)
    if not writes:
        return ObserverList([recorder])
    vdl = VisualDLLogger(state.run_dir, cfg.log_every_steps)
    # Order matters: history first, then VisualDL queues its records and the checkpointer queues
    # its write behind them. At the end VisualDL drains its queue (every pending checkpoint is then
    # on disk), a stopped run's checkpoint is written, and the stats file reports it.
    return ObserverList([recorder, vdl, Checkpointer(after_records=vdl.after_records), StatsWriter(),
                         ProgressReporter()])


def prepare(cfg: TrainConfig, run_dir: Path, resume: bool = False):
    """Device, data, model and optimizer, restored from the run's last checkpoint when resuming.

    Returns (state, train_batches, val_batches) ready for ``loop.fit``.
    """
    from seghw.device import select_device

    device = select_device(cfg.device)
    split = prepare_data(cfg, paths.log_root(cfg.log_root))
    state, train_batches, val_batches = _assemble(cfg, run_dir, device, split)
    ckpt = checkpoint.latest_checkpoint(run_dir) if resume else None
    if ckpt is not None:
        restore(state, ckpt)
        print(f"resumed from {ckpt} (epoch {state.epoch}, step {state.global_step})", flush=True)
    return state, train_batches, val_batches


def run(cfg: TrainConfig, run_dir: Path | None = None, resume_from: Path | None = None,
        stop: StopFlag | None = None) -> int:
    """Train with ``cfg``; returns the process exit code. ``resume_from`` is a run folder."""
    root = paths.log_root(cfg.log_root)
    if resume_from is not None:
        run_dir = resume_from
    elif run_dir is None:
        run_dir = paths.new_run_dir(root)
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    print(f"run folder: {run_dir}", flush=True)
    if stop is None:
        stop = StopFlag()
        stop.install()
    state = None
    try:
        from paddle.utils import unique_name

        from seghw.train.loop import Diverged, fit

        # Parameter and optimizer-state names key the checkpoint: a fresh name space gives them the
        # names of a fresh process, so a run started in a process that trained before still resumes.
        with unique_name.guard():
            state, train_batches, val_batches = prepare(cfg, run_dir, resume=resume_from is not None)
            try:
                fit(state, train_batches, val_batches, observers(state, cfg), distributed.AgreedStop(stop))
            except Diverged as exc:
                print(f"seghw: training diverged: {exc}", file=sys.stderr)
                return EXIT_DIVERGED
    except UserError as exc:
        _record_failure(run_dir, cfg, state, exc)
        print(f"seghw: error: {exc}", file=sys.stderr)
        return EXIT_USER
    except KeyboardInterrupt:
        _record_failure(run_dir, cfg, state, RuntimeError("interrupted twice; no checkpoint written"))
        return 130
    except Exception as exc:
        log = run_dir / "error.log"
        log.write_text(traceback.format_exc(), encoding="utf-8")
        _record_failure(run_dir, cfg, state, exc)
        print(f"seghw: training failed: {type(exc).__name__}: {exc} (traceback in {log})", file=sys.stderr)
        return EXIT_FAILED
    if state.status == "stopped":
        print(f"stopped at epoch {state.epoch}, step {state.global_step}; resume with: "
              f"seghw train --resume {run_dir}", flush=True)
    else:
        print(f"finished: {state.epoch} epochs, {state.global_step} steps; run folder {run_dir}", flush=True)
    return EXIT_OK


def _assemble(cfg: TrainConfig, run_dir: Path, device: str, split):
    from seghw.data.batches import EvalBatches, TrainBatches
    from seghw.errors import DataError

    world = distributed.world_size()
    if len(split.train) // world < cfg.batch_size:
        per = f" ({len(split.train) // world} per process)" if world > 1 else ""
        raise DataError(f"{len(split.train)} training images{per} but --batch-size {cfg.batch_size}: "
                        f"lower --batch-size or add images")
    # Every process takes the same number of steps: a rank that ran one more would wait forever.
    steps = len(split.train) // world // cfg.batch_size
    if cfg.max_steps_per_epoch:
        steps = min(steps, cfg.max_steps_per_epoch)
    state = build(cfg, run_dir, device, steps)
    state.data_info = {"source": split.source, "train_images": len(split.train), "val_images": len(split.val),
                       "skipped": len(split.skipped), "skipped_files": list(split.skipped)[:50],
                       "processes": world}
    train_pairs = distributed.shard(split.train)

    def train_batches(epoch: int, skip: int):
        batches = TrainBatches(train_pairs, cfg.batch_size, crop=cfg.image_size, seed=cfg.seed, epoch=epoch,
                               skip_batches=skip, num_workers=cfg.num_workers,
                               ink_crop_fraction=cfg.ink_crop_fraction)
        return _limit(batches, steps - skip)

    val_batches = (lambda: EvalBatches(split.val, cfg.batch_size, crop=cfg.image_size)) if len(split.val) else None
    return state, train_batches, val_batches


def _limit(iterable, n: int):
    """At most ``n`` items; the source (and its loader threads) is closed however the loop ends."""
    try:
        yield from itertools.islice(iterable, max(0, n))
    finally:
        close = getattr(iterable, "close", None)
        if close:
            close()


def _record_failure(run_dir: Path, cfg: TrainConfig, state, exc: BaseException) -> None:
    """The loop's observers already wrote the final stats; this covers failures before it started."""
    if distributed.rank() != 0:
        return
    if state is not None and state.status in ("failed", "diverged", "stopped", "finished"):
        return
    doc = empty_stats(run_dir, "failed", cfg.model_dump())
    doc["error"] = {"type": type(exc).__name__, "message": str(exc), "at": now_iso()}
    write_stats(run_dir, doc)
