"""``seghw train``, ``synth``, ``eval`` and ``infer``."""

from __future__ import annotations

from pathlib import Path

import typer

from seghw.errors import UserError


def train(
    preset: str = typer.Option(
        None, help="gpu (512 crops, AMP), cpu-demo (tiny, minutes on 2 cores) or cpu-long (cpu-demo, 3x the epochs)"),
    data: Path = typer.Option(None, help="dataset folder: images/NAME.jpg + gts/NAME.png [+ masks/, val/]"),
    synthetic: int = typer.Option(None, help="train on N generated pairs (cached by their parameters)"),
    synthetic_size: int = typer.Option(None, help="page size of generated pairs (crops are cut from them)"),
    image_size: int = typer.Option(None, help="training crop size (multiple of the model stride)"),
    epochs: int = typer.Option(None, help="number of epochs"),
    batch_size: int = typer.Option(None, help="images per step"),
    lr: float = typer.Option(None, help="peak learning rate"),
    log_root: Path = typer.Option(None, help="where run folders go (env SEGHW_LOG_ROOT, default ./models)"),
    device: str = typer.Option(None, help="auto | cpu | gpu"),
    resume: str = typer.Option(None, help="'latest' or a run folder: continue from its last checkpoint"),
    seed: int = typer.Option(None, help="random seed (data order, augmentation, init)"),
    num_workers: int = typer.Option(None, help="data loader threads"),
    checkpoint_minutes: float = typer.Option(None, help="also checkpoint every N minutes within an epoch"),
    config: Path = typer.Option(None, "--config", help="JSON or TOML file of settings (flags win)"),
    run_dir: Path = typer.Option(None, help="use this (already created) run folder"),
    threads: int = typer.Option(None, help="CPU threads (default 1, env SEGHW_THREADS; see docs/BENCHMARKS.md)"),
    max_steps_per_epoch: int = typer.Option(None, help="cap steps per epoch (quick trials)"),
    log_every_steps: int = typer.Option(None, help="per-step VisualDL points every N steps"),
    val_fraction: float = typer.Option(None, help="held-out share when DIR/val/ is absent"),
    max_bad_steps: int = typer.Option(None, help="non-finite steps to skip before stopping as diverged"),
    gpus: str = typer.Option(None, help="data-parallel training on these cards, e.g. 0,1 (one process per card)"),
    nproc: int = typer.Option(None, help="data-parallel training in N CPU processes (gloo), as --gpus on GPUs"),
    static_graph: bool = typer.Option(None, "--static-graph/--eager", help="static graph (default) or eager model"),
    no_observers: bool = typer.Option(False, "--no-observers", help="no VisualDL/stats/checkpoints (benchmarks)"),
) -> None:
    """Train the handwriting-erasure model; the first line printed names the run folder."""
    import sys

    from seghw.config import build_config, load_config_file
    from seghw.device import import_paddle

    overrides = dict(
        data=str(data) if data else None, synthetic=synthetic, synthetic_size=synthetic_size,
        image_size=image_size, epochs=epochs, batch_size=batch_size, lr=lr,
        log_root=str(log_root) if log_root else None, device=device, seed=seed, num_workers=num_workers,
        checkpoint_minutes=checkpoint_minutes,
        threads=threads, max_steps_per_epoch=max_steps_per_epoch, log_every_steps=log_every_steps,
        val_fraction=val_fraction, max_bad_steps=max_bad_steps, static_graph=static_graph,
        observers=False if no_observers else None,
    )
    resume_dir = None
    if resume:
        from seghw import paths
        from seghw.train.runner import resolve_resume

        resume_dir = resolve_resume(resume, paths.log_root(log_root))
        if run_dir and Path(run_dir).resolve() != resume_dir.resolve():
            raise UserError(f"--run-dir {run_dir} and --resume {resume_dir} name different runs")
        saved = _saved_config(resume_dir)
        base = {k: v for k, v in saved.items() if k not in ("preset",)}
        if config:
            base.update(load_config_file(config))
        base.update({k: v for k, v in overrides.items() if v is not None})
        base.setdefault("log_root", str(resume_dir.parent))
        cfg = build_config(preset or saved.get("preset"), None, **base)
    else:
        cfg = build_config(preset, config, **overrides)
    from seghw.train import distributed

    if (gpus or nproc) and not distributed.is_worker():
        _launch(cfg, gpus, nproc, resume_dir or run_dir)
    import_paddle(cfg.threads)
    from seghw.train.runner import run

    sys.exit(run(cfg, run_dir=run_dir, resume_from=resume_dir))


def _launch(cfg, gpus: str | None, nproc: int | None, run_dir: Path | None) -> None:
    """Run this command once per device under Paddle's launcher and exit as the run ended."""
    import os
    import sys

    from seghw import paths
    from seghw.device import import_paddle
    from seghw.flops import PEAK_ENV, machine_peak_gflops
    from seghw.train import distributed
    from seghw.train.runner import prepare_data

    devices = distributed.device_args(gpus, nproc)
    if gpus:
        cards = distributed.parse_gpus(gpus)
        paddle = import_paddle()
        visible = paddle.device.cuda.device_count() if paddle.device.is_compiled_with_cuda() else 0
        if max(cards) >= visible:
            raise UserError(f"invalid --gpus {gpus!r}: Paddle sees {visible} CUDA card(s) here (use --nproc N on CPU)")
    root = paths.log_root(cfg.log_root)
    run_dir = Path(run_dir) if run_dir else paths.new_run_dir(root)
    run_dir.mkdir(parents=True, exist_ok=True)
    # Data errors surface here, once, and a synthetic set is generated once rather than per process.
    prepare_data(cfg, root)
    if not gpus and not os.environ.get(PEAK_ENV):
        os.environ[PEAK_ENV] = f"{machine_peak_gflops(repeats=2):.3f}"  # while the cores are still free
    sys.stdout.flush()
    sys.exit(distributed.supervise(distributed.launch_command(sys.argv[1:], run_dir, devices), run_dir))


def _saved_config(run_dir: Path) -> dict:
    """The config a run was started with: from its checkpoint, else from its stats file."""
    from seghw import checkpoint, stats
    from seghw.config import complete_saved_config

    ckpt = checkpoint.latest_checkpoint(run_dir)
    if ckpt is not None:
        return complete_saved_config(checkpoint.load(ckpt)["config"])
    try:
        saved = stats.read_stats(run_dir).get("config") or {}
    except (OSError, ValueError):
        saved = {}
    if "argv" in saved or not saved:
        raise UserError(f"{run_dir} has no checkpoint and no saved config to resume from")
    return complete_saved_config(saved)


def register(app: typer.Typer) -> None:
    app.command("train")(train)
