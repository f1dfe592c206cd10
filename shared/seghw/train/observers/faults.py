"""The fault policy of what only shows a run (VisualDL views, progress output).

Such a failure never ends training: it is noted once per (kind, tag) on stderr and counted, and the
count goes into the stats (``display_faults``), where the monitor turns it into a warning. A failure
that loses data (a checkpoint, the stats file, the records file itself) is not caught here: it
still stops the run.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from seghw.stats import now_iso

T = TypeVar("T")

# Distinct (kind, tag) pairs kept in the stats; the count goes on counting past them.
MAX_ITEMS = 50
MAX_MESSAGE = 300
LABELS = {"progress": "progress output"}


def label(kind: str) -> str:
    return LABELS.get(kind, f"VisualDL {kind}")


def describe(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    text = " ".join(text.split())  # one line, whatever the exception says
    return text if len(text) <= MAX_MESSAGE else text[: MAX_MESSAGE - 3] + "..."


class DisplayFaults:
    """Thread-safe: the VisualDL writer thread and the training thread both report here."""

    def __init__(self, stream=None) -> None:
        self.stream = stream
        self._lock = threading.Lock()
        self.count = 0
        self._items: dict[tuple[str, str], dict[str, Any]] = {}
        self._noted: set[tuple[str, str]] = set()

    def record(self, kind: str, tag: str, exc: BaseException) -> None:
        key = (kind, str(tag))
        message = describe(exc)
        with self._lock:
            self.count += 1
            item = self._items.get(key)
            if item is not None:
                item["count"] += 1
            elif len(self._items) < MAX_ITEMS:
                self._items[key] = {"kind": kind, "tag": key[1], "count": 1, "message": message, "at": now_iso()}
            first = key not in self._noted
            self._noted.add(key)
        if first:
            self._note(f"note: {label(kind)} {key[1]} not written: {message}; training goes on")

    def attempt(self, kind: str, tag: str, fn: Callable[..., T], *args: Any) -> T | None:
        """``fn(*args)``, or None once a failure of it is recorded."""
        try:
            return fn(*args)
        except Exception as exc:
            self.record(kind, tag, exc)
            return None

    def summary(self) -> dict[str, Any]:
        with self._lock:
            return {"count": self.count, "items": [dict(item) for item in self._items.values()]}

    def restore(self, summary: Mapping[str, Any] | None) -> None:
        """Continue the count of a resumed run (the notes are printed again, once, by this process)."""
        if not summary:
            return
        with self._lock:
            self.count = int(summary.get("count") or 0)
            for item in summary.get("items") or []:
                self._items[(item["kind"], item["tag"])] = dict(item)

    def _note(self, line: str) -> None:
        try:
            print(line, file=self.stream or sys.stderr, flush=True)
        except (OSError, ValueError):
            pass  # stderr itself is gone: the count in the stats still tells
