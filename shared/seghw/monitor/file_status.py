"""The guide's monitor script (``python monitor_training.py``, ``seghw monitor``): training status
read straight from the stats files, so it works without Redis or a running monitor."""

from __future__ import annotations

import time
from pathlib import Path

from seghw.errors import UserError
from seghw.monitor import collect
from seghw.monitor.health import HealthConfig
from seghw.monitor.status_view import StatusView
from seghw.paths import RUN_NAME_RE, STATS_FILE, list_runs


def run_dirs(target: Path, single: bool) -> list[Path]:
    """A run folder is itself; a log root gives its runs (only the newest with ``single``)."""
    if (target / STATS_FILE).exists() or RUN_NAME_RE.match(target.name):
        return [target]
    dirs = list_runs(target)
    if single and len(dirs) > 1:
        snaps = [collect.read_snapshot(d) for d in dirs]
        top = collect.newest([s for s in snaps if s.stats is not None] or snaps)
        return [top.run_dir] if top else []
    return dirs


def read_view(target: Path, single: bool, cfg: HealthConfig) -> tuple[StatusView, collect.Snapshot | None]:
    snaps = [collect.read_snapshot(d) for d in run_dirs(target, single)]
    now = time.time()
    records = [r for r in (collect.local_record(s, cfg, now) for s in snaps) if r]
    records.sort(key=lambda r: r.get("observed_at") or 0, reverse=True)
    top = collect.newest([s for s in snaps if s.stats is not None])
    view = StatusView(runs=records, now=now, source=str(target), latest=top.run_id if top else None,
                      monitor_expected=False, notes=[f"{s.run_id}: {s.error}" for s in snaps if s.stats is None])
    return view, top


def run(log_dir: Path | None, log_root: Path | None, monitor: bool, interval: float) -> int:
    """Print the status once, or every ``interval`` seconds with ``monitor`` until Ctrl-C.
    Exit code as ``seghw status``: 0 healthy, 1 warning or unhealthy, 2 nothing found."""
    from rich.console import Console

    from seghw.interrupts import one_interrupt_stops
    from seghw.monitor.status_view import history_table
    from seghw.paths import log_root as default_root

    target = Path(log_dir or log_root or default_root())
    if not target.is_dir():
        raise UserError(f"log directory {target} does not exist")
    cfg = HealthConfig.from_env()
    console = Console()
    code = 2
    with one_interrupt_stops():
        try:
            while True:
                view, top = read_view(target, log_dir is not None, cfg)
                code = view.exit_code()
                if monitor:
                    console.rule(time.strftime("%Y-%m-%d %H:%M:%S"))
                if view.runs:
                    console.print(view.renderable())
                    if top is not None and top.stats and top.stats.get("history"):
                        console.print(history_table(top.stats))
                else:
                    console.print(f"no {STATS_FILE} found under {target}", *view.notes, sep="\n")
                if not monitor:
                    return code
                time.sleep(interval)
        except KeyboardInterrupt:
            console.print("stopped")
            return code
