"""How run health looks: the rich table, the ``--json`` document and the exit code.

Works on plain run records (see store.RUN_FIELDS), whether they come from Redis (``seghw status``)
or straight from the stats files (``seghw monitor``)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

JSON_SCHEMA = "seghw.status/1"
# Keys of every run in ``seghw status --json``; always present, null when unknown.
JSON_RUN_KEYS = (
    "run_id", "state", "health", "level", "problems", "message", "epoch", "total_epochs",
    "global_step", "total_steps", "progress", "train_loss", "val_loss", "lr", "grad_norm",
    "param_norm", "epoch_duration", "samples_per_sec", "step_time", "psnr", "ssim", "best_psnr",
    "eta_s", "age_s", "stall_after_s", "updated_at", "started_at", "read_error", "clock_skew_s",
    "host", "pid", "device", "run_dir", "loss_history",
)
SPARK = "▁▂▃▄▅▆▇█"
STYLE = {"ok": "green", "warning": "yellow", "error": "bold red"}


@dataclass
class StatusView:
    runs: list[dict[str, Any]]
    now: float
    source: str  # where the data came from (a Redis URL without password, or a folder)
    latest: str | None = None
    monitor_at: float | None = None  # last collect; None when the monitor has gone quiet
    monitor_expected: bool = True  # False for a read straight from the files
    notes: list[str] = field(default_factory=list)

    @property
    def monitor_stale(self) -> bool:
        return self.monitor_expected and self.monitor_at is None

    def age(self, run: Mapping[str, Any]) -> float | None:
        seen = run.get("observed_at")
        return None if seen is None else max(0.0, self.now - seen)

    def exit_code(self) -> int:
        """0 all healthy or finished, 1 any warning or unhealthy run, 2 no data."""
        if not self.runs:
            return 2
        if any(r.get("level") != "ok" for r in self.runs):
            return 1
        if self.monitor_stale and any(r.get("state") in ("running", "queued") for r in self.runs):
            return 1  # nobody is watching these runs any more
        return 0

    def to_json(self) -> dict[str, Any]:
        runs = []
        for r in self.runs:
            item = {k: r.get(k) for k in JSON_RUN_KEYS}
            item["age_s"] = _round(self.age(r), 1)
            item["problems"] = list(r.get("problems") or [])
            item["loss_history"] = list(r.get("loss_history") or [])
            runs.append(item)
        return {
            "schema": JSON_SCHEMA,
            "exit_code": self.exit_code(),
            "generated_at": _iso(self.now),
            "source": self.source,
            "latest": self.latest,
            "monitor": {
                "last_collect_at": _iso(self.monitor_at) if self.monitor_at else None,
                "collect_age_s": _round(self.now - self.monitor_at, 1) if self.monitor_at else None,
                "stale": self.monitor_stale,
            },
            "notes": list(self.notes),
            "runs": runs,
        }

    def renderable(self):
        from rich.console import Group
        from rich.text import Text

        parts: list[Any] = [RunTable(self)] if self.runs else []
        for r in self.runs:
            details = [r.get("message") or ""]
            if r.get("read_error"):
                details.append(f"last read failed: {r['read_error']} (showing the last good status)")
            if r.get("clock_skew_s"):
                details.append(f"trainer clock differs from the file time by {r['clock_skew_s']:+.0f} s")
            text = "; ".join(d for d in details if d)
            if text:
                parts.append(Text(f"  {r.get('run_id')}: {text}", style=STYLE.get(r.get("level") or "", "")))
        footer = f"{len(self.runs)} run(s) from {self.source}"
        if self.monitor_expected:
            footer += (
                f"; last collect {fmt_duration(self.now - self.monitor_at)} ago"
                if self.monitor_at
                else "; the monitor is not collecting (is `seghw serve monitor` running?)"
            )
        parts.append(Text(footer, style="yellow" if self.monitor_stale else "dim"))
        parts.extend(Text(n, style="yellow") for n in self.notes)
        return Group(*parts)


# (header, justify, priority): the narrower the terminal, the more low-priority columns are left out.
COLUMNS = (
    ("run", "left", 0), ("state", "left", 0), ("health", "left", 0), ("epoch", "right", 1),
    ("step", "right", 3), ("train loss", "right", 2), ("val loss", "right", 2), ("lr", "right", 4),
    ("grad norm", "right", 4), ("epoch time", "right", 5), ("img/s", "right", 5), ("ETA", "right", 2),
    ("updated", "right", 1), ("loss", "left", 6),
)


def run_cells(view: StatusView, r: Mapping[str, Any]) -> list[str]:
    name = r.get("run_id") or "?"
    age = view.age(r)
    return [
        name + (" *" if name == view.latest else ""),
        r.get("state") or "?",
        (r.get("health") or "?").replace(",", ", "),
        f"{_int(r.get('epoch'))}/{_int(r.get('total_epochs'))}",
        _step(r),
        fmt_num(r.get("train_loss")),
        fmt_num(r.get("val_loss")),
        fmt_num(r.get("lr"), ".1e"),
        fmt_num(r.get("grad_norm"), ".3g"),
        fmt_duration(r.get("epoch_duration")),
        fmt_num(r.get("samples_per_sec"), ".1f"),
        fmt_duration(r.get("eta_s")),
        "-" if age is None else fmt_duration(age) + " ago",
        sparkline([p[1] for p in r.get("loss_history") or [] if len(p) > 1]),
    ]


class RunTable:
    """The runs table, fitted to the terminal width when it is drawn."""

    def __init__(self, view: StatusView):
        self.view = view

    def __rich_console__(self, console, options):
        from rich.table import Table

        rows = [(run_cells(self.view, r), STYLE.get(r.get("level") or "", "")) for r in self.view.runs]
        widths = [max([len(c[0])] + [len(cells[i]) for cells, _ in rows]) for i, c in enumerate(COLUMNS)]
        gap, keep = 2, list(range(len(COLUMNS)))
        if sum(widths) + gap * len(widths) > options.max_width:
            gap = 1
            for level in range(6, 0, -1):
                if sum(widths[i] + gap for i in keep) <= options.max_width:
                    break
                keep = [i for i in keep if COLUMNS[i][2] < level]
        table = Table(box=None, pad_edge=False, padding=(0, gap, 0, 0), header_style="bold")
        for i in keep:
            table.add_column(COLUMNS[i][0], justify=COLUMNS[i][1], no_wrap=i != 2, overflow="fold")
        for cells, style in rows:
            table.add_row(*[f"[{style}]{cells[i]}[/]" if i == 2 and style else cells[i] for i in keep])
        yield table


def history_table(stats: Mapping[str, Any], last: int = 10):
    """The last epochs of one run, for ``seghw monitor``."""
    from rich.table import Table

    table = Table(title=f"{stats.get('run_id', '?')}: last epochs", box=None, header_style="bold",
                  title_justify="left", pad_edge=False)
    for name in ("epoch", "train loss", "val loss", "PSNR", "SSIM", "lr", "grad norm", "time"):
        table.add_column(name, justify="right", no_wrap=True)
    hist = [h for h in stats.get("history") or [] if isinstance(h, Mapping)]
    for h in hist[-last:]:
        table.add_row(
            str(h.get("epoch", "")), fmt_num(h.get("train_loss")), fmt_num(h.get("val_loss")),
            fmt_num(h.get("psnr"), ".2f"), fmt_num(h.get("ssim"), ".4f"), fmt_num(h.get("lr"), ".1e"),
            fmt_num(h.get("grad_norm"), ".3g"), fmt_duration(h.get("epoch_duration")),
        )
    return table


def sparkline(values: Sequence[Any], width: int = 16) -> str:
    nums = [float(v) for v in values if isinstance(v, (int, float)) and math.isfinite(v)][-width:]
    if not nums:
        return ""
    lo, hi = min(nums), max(nums)
    if hi - lo < 1e-12:
        return SPARK[3] * len(nums)
    return "".join(SPARK[min(len(SPARK) - 1, int((v - lo) / (hi - lo) * (len(SPARK) - 1) + 0.5))] for v in nums)


def fmt_num(value: Any, spec: str = ".4g") -> str:
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return "-"
    return format(value, spec) if math.isfinite(value) else str(value)


def fmt_duration(seconds: Any) -> str:
    if not isinstance(seconds, (int, float)) or not math.isfinite(seconds):
        return "-"
    s = int(round(max(0.0, seconds)))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    if s < 86400:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    return f"{s // 86400}d{s % 86400 // 3600:02d}h"


def _step(r: Mapping[str, Any]) -> str:
    step, total = r.get("global_step"), r.get("total_steps")
    if step is None:
        return "-"
    return f"{step}/{total}" if total else str(step)


def _int(value: Any) -> str:
    return "-" if value is None else str(value)


def _round(value: float | None, ndigits: int) -> float | None:
    return None if value is None else round(value, ndigits)


def _iso(ts: float | None) -> str | None:
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, timezone.utc).isoformat(timespec="seconds")

