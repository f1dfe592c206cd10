"""Checkpoints: one atomic file per save, a pointer to the latest, the last K kept plus the best."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

from seghw.atomic import write_bytes_atomic, write_json_atomic
from seghw.errors import UserError
from seghw.paths import CHECKPOINT_DIR

LATEST = "latest.json"
BEST = "best.pdckpt"
SUFFIX = ".pdckpt"


def checkpoint_dir(run_dir: str | Path) -> Path:
    return Path(run_dir) / CHECKPOINT_DIR


def checkpoint_name(epoch: int, global_step: int) -> str:
    return f"ckpt_e{epoch:04d}_s{global_step:08d}{SUFFIX}"


def save(run_dir: str | Path, payload: dict[str, Any], keep_last: int, best: bool = False) -> Path:
    """Write ``payload`` (paddle state dicts and plain values) atomically; prune old checkpoints."""
    import paddle

    directory = checkpoint_dir(run_dir)
    directory.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    paddle.save(payload, buf)
    data = buf.getvalue()
    path = write_bytes_atomic(directory / checkpoint_name(payload["epoch"], payload["global_step"]), data)
    if best:
        write_bytes_atomic(directory / BEST, data)
    # The pointer moves only after the file it names is durable.
    write_json_atomic(
        directory / LATEST,
        {"file": path.name, "epoch": payload["epoch"], "global_step": payload["global_step"]},
    )
    _prune(directory, keep_last)
    return path


def _prune(directory: Path, keep_last: int) -> None:
    for old in sorted(directory.glob(f"ckpt_*{SUFFIX}"))[:-keep_last]:
        old.unlink(missing_ok=True)


def latest_checkpoint(run_dir: str | Path) -> Path | None:
    directory = checkpoint_dir(run_dir)
    try:
        pointer = json.loads((directory / LATEST).read_text(encoding="utf-8"))
        path = directory / pointer["file"]
        if path.is_file():
            return path
    except (OSError, ValueError, KeyError):
        pass
    # A missing or unreadable pointer: fall back to the newest file on disk.
    found = sorted(directory.glob(f"ckpt_*{SUFFIX}"))
    return found[-1] if found else None


def load(path: str | Path) -> dict[str, Any]:
    import paddle

    path = Path(path)
    if path.is_dir():
        found = latest_checkpoint(path)
        if found is None:
            raise UserError(f"no checkpoint in {path}")
        path = found
    if not path.is_file():
        raise UserError(f"checkpoint not found: {path}")
    try:
        return paddle.load(str(path))
    except Exception as exc:
        raise UserError(f"cannot read checkpoint {path}: {exc}") from None
