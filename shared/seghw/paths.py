"""Where runs live: the log root, the run folders inside it, and the cache beside them."""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

RUN_PREFIX = "logs_"
RUN_NAME_RE = re.compile(r"^logs_\d{8}(_\d+)?$")
STATS_FILE = "training_stats.json"
CHECKPOINT_DIR = "checkpoints"
DEFAULT_LOG_ROOT = "./models"


def log_root(explicit: str | os.PathLike | None = None) -> Path:
    """``--log-root``, else ``SEGHW_LOG_ROOT``, else ``./models``."""
    return Path(explicit or os.environ.get("SEGHW_LOG_ROOT") or DEFAULT_LOG_ROOT)


def cache_dir(root: str | os.PathLike) -> Path:
    """``SEGHW_CACHE_DIR``, else ``<root>/.cache``: synthetic datasets and exported model graphs."""
    return Path(os.environ.get("SEGHW_CACHE_DIR") or Path(root) / ".cache")


def new_run_dir(root: str | os.PathLike, now: float | None = None) -> Path:
    """Create ``<root>/logs_MMDDHHMM`` (``_2``, ``_3``... when the name is taken) and return it."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    base = RUN_PREFIX + time.strftime("%m%d%H%M", time.localtime(now))
    candidate, n = root / base, 1
    while True:
        try:
            candidate.mkdir()
            return candidate
        except FileExistsError:
            n += 1
            candidate = root / f"{base}_{n}"


def list_runs(root: str | os.PathLike) -> list[Path]:
    """Run folders under ``root``, oldest first by modification time."""
    root = Path(root)
    if not root.is_dir():
        return []
    runs = [p for p in root.iterdir() if p.is_dir() and RUN_NAME_RE.match(p.name)]
    return sorted(runs, key=lambda p: (_mtime(p / STATS_FILE) or _mtime(p) or 0.0, p.name))


def latest_run(root: str | os.PathLike) -> Path | None:
    runs = list_runs(root)
    return runs[-1] if runs else None


def _mtime(p: Path) -> float | None:
    try:
        return p.stat().st_mtime
    except OSError:
        return None
