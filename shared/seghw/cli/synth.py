"""``seghw synth``: write a synthetic dataset."""

from __future__ import annotations

from pathlib import Path

import typer


def synth(
    out: Path = typer.Option(..., help="output folder (images/, gts/, masks/)"),
    count: int = typer.Option(100, min=1, help="number of pairs"),
    size: int = typer.Option(256, min=16, help="page size in pixels"),
    seed: int = typer.Option(0, help="same seed, same bytes"),
    workers: int = typer.Option(None, min=1, help="processes (default: one per core from 256 pairs)"),
) -> None:
    """Write a synthetic dataset: printed pages with handwriting in blue, red, black and pencil."""
    from seghw.data.synth import write_dataset

    write_dataset(out, count=count, size=size, seed=seed, progress=True, workers=workers)
    typer.echo(f"wrote {count} pairs to {out}")


def register(app: typer.Typer) -> None:
    app.command("synth")(synth)
