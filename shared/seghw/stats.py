"""training_stats.json: the run's snapshot that the monitor reads (schema version 1)."""

from __future__ import annotations

import json
import math
import os
import socket
from datetime import datetime, timezone
from functools import lru_cache
from pathlib import Path
from typing import Any

from seghw.atomic import write_json_atomic
from seghw.paths import STATS_FILE

SCHEMA_VERSION = 1
SCHEMA_PATH = Path(__file__).parent / "schemas" / "training_stats.schema.json"
# How a run ends: once its stats say one of these, nothing writes them again but a resume.
FINAL_STATUSES = ("finished", "failed", "stopped", "diverged")
STATUSES = ("queued", "running", *FINAL_STATUSES)


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


def finite_or_none(value: Any) -> float | None:
    """JSON has no NaN/inf: a non-finite metric is reported as null."""
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def json_safe(value: Any) -> Any:
    """``value`` with every non-finite float (at any depth) as null and numpy scalars as plain
    numbers: the stats file is strict JSON, and one NaN must not cost the whole snapshot."""
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if hasattr(value, "item") and getattr(value, "shape", None) == ():  # a numpy scalar
        value = value.item()
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    return value


def clean_metrics(metrics: dict[str, Any]) -> dict[str, float | None]:
    return {k: finite_or_none(v) for k, v in metrics.items()}


def stats_path(run_dir: str | Path) -> Path:
    return Path(run_dir) / STATS_FILE


def write_stats(run_dir: str | Path, doc: dict[str, Any]) -> Path:
    return write_json_atomic(stats_path(run_dir), json_safe(doc))


def read_stats(run_dir: str | Path) -> dict[str, Any]:
    return json.loads(stats_path(run_dir).read_text(encoding="utf-8"))


def empty_stats(run_dir: str | Path, status: str, config: dict[str, Any]) -> dict[str, Any]:
    run_dir = Path(run_dir)
    stamp = now_iso()
    return {
        "schema_version": SCHEMA_VERSION,
        "run_id": run_dir.name,
        "run_dir": str(run_dir.resolve()),
        "status": status,
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "device": "unknown",
        "started_at": stamp,
        "updated_at": stamp,
        "epoch": 0,
        "total_epochs": int(config.get("epochs") or 1),
        "global_step": 0,
        "total_steps": 0,
        "steps_per_epoch": 0,
        "config": config,
        "total_parameters": None,
        "latest": {},
        "history": [],
        "best_checkpoint": None,
        "last_checkpoint": None,
        "data": {"train_images": 0, "val_images": 0, "skipped": 0, "skipped_files": []},
        "bad_steps": 0,
        "error": None,
    }


def write_queued(run_dir: Path, argv: list[str]) -> dict[str, Any]:
    """The snapshot of a run that waits in the queue: the monitor shows it as ``queued``."""
    doc = empty_stats(run_dir, "queued", {"argv": list(argv)})
    doc["pid"] = None
    write_stats(run_dir, doc)
    return doc


@lru_cache(maxsize=1)
def _validator():
    import jsonschema

    schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    return jsonschema.Draft202012Validator(schema, format_checker=jsonschema.FormatChecker())


def validation_errors(doc: dict[str, Any]) -> list[str]:
    """Schema violations of a stats document, as readable lines (empty when valid)."""
    return [
        f"{'/'.join(str(p) for p in err.absolute_path) or '<root>'}: {err.message}"
        for err in _validator().iter_errors(doc)
    ]
