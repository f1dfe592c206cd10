"""``seghw eval``: score a checkpoint on datasets, beside the baselines."""

from __future__ import annotations

from pathlib import Path

import typer

from seghw.cli.common import ENGINE_HELP, SCALE_HELP, THREADS_HELP


def evaluate(
    checkpoint_path: Path = typer.Option(..., "--checkpoint", help="a .pdckpt file or a run folder (latest)"),
    data: Path = typer.Option(..., help="dataset folder (images/ + gts/), or a folder of them (build/realset: "
                                  "print/ and written/), each evaluated in turn"),
    window: int = typer.Option(512, help="tile size for pages larger than it"),
    json_out: bool = typer.Option(False, "--json", help="print JSON instead of a table (for a folder of sets, "
                                  "an object of them by name)"),
    engine: str = typer.Option("fast", help=ENGINE_HELP),
    threads: int | None = typer.Option(None, min=1, help=THREADS_HELP),
    scale: str = typer.Option("auto", help=SCALE_HELP),
) -> None:
    """Score a checkpoint: PSNR, SSIM, MS-SSIM, print kept, handwriting removed, beside two baselines."""
    from seghw.config import model_stride
    from seghw.evaluate import evaluate_dataset, evaluation_sets, render_table
    from seghw.inference import load_checkpoint_predictor
    from seghw.page_scale import parse_scale

    factor = parse_scale(scale)
    sets = evaluation_sets(data)
    predict, cfg = load_checkpoint_predictor(checkpoint_path, engine=engine, threads=threads)
    stride = model_stride(cfg["depth"], cfg["context"])
    results = {}
    for name, folder in sets.items():
        results[name] = evaluate_dataset(folder, predict, window=window, multiple=stride, scale=factor,
                                         progress=True)
        if not json_out:
            render_table(results[name], title=f"{folder}")
    if json_out:
        import json

        single = list(sets.values()) == [data]  # --data named one set: its rows, as before
        typer.echo(json.dumps(results[data.name] if single else results, indent=2))


def register(app: typer.Typer) -> None:
    app.command("eval")(evaluate)
