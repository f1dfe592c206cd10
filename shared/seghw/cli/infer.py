"""``seghw infer``: erase the handwriting from pages of any size."""

from __future__ import annotations

from pathlib import Path

import typer

from seghw.cli.common import ENGINE_HELP, SCALE_HELP, THREADS_HELP


def infer(
    checkpoint_path: Path = typer.Option(..., "--checkpoint", help="a .pdckpt file or a run folder (latest)"),
    input_path: Path = typer.Option(..., "--input", help="an image file or a folder of images"),
    output: Path = typer.Option(..., help="output folder: NAME.png (clean page) and NAME_mask.png"),
    window: int = typer.Option(512, help="tile size"),
    overlap: int = typer.Option(64, help="overlap between tiles"),
    engine: str = typer.Option("fast", help=ENGINE_HELP),
    threads: int | None = typer.Option(None, min=1, help=THREADS_HELP),
    scale: str = typer.Option("auto", help=SCALE_HELP),
) -> None:
    """Erase handwriting from full pages of any size (tiled, with overlap)."""
    from seghw.config import model_stride
    from seghw.evaluate import infer_paths
    from seghw.inference import load_checkpoint_predictor
    from seghw.page_scale import parse_scale

    factor = parse_scale(scale)
    predict, cfg = load_checkpoint_predictor(checkpoint_path, engine=engine, threads=threads)
    n = infer_paths(input_path, output, predict, window=window, overlap=overlap,
                    multiple=model_stride(cfg["depth"], cfg["context"]), scale=factor,
                    on_page=lambda line: typer.echo(line, err=True))
    typer.echo(f"wrote {n} clean pages and masks to {output}")


def register(app: typer.Typer) -> None:
    app.command("infer")(infer)
