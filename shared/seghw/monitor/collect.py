"""The collect job: read every run's training_stats.json, apply the health rules, write Redis.

A stats file may be missing, half-written or corrupt at any moment (a writer that is not atomic,
a copy in progress, a disk hiccup): the run then keeps its last good status and shows the read
error; it turns stalled only if the problem lasts."""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
import socket
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from seghw import connection
from seghw.monitor import health, store
from seghw.monitor.alerts import event_text
from seghw.monitor.health import HealthConfig
from seghw.paths import STATS_FILE, list_runs
from seghw.stats import STATUSES

if TYPE_CHECKING:
    import redis

log = logging.getLogger("seghw.monitor")

HISTORY_POINTS = 40  # epochs kept for the sparkline
SKEW_REPORT_S = 30.0  # report a trainer clock this far from the file's timestamp


@dataclass
class Snapshot:
    """One read of a run folder's stats file."""

    run_dir: Path
    stats: dict[str, Any] | None
    error: str | None
    mtime: float | None
    sig: str | None  # changes whenever the file's content does

    @property
    def run_id(self) -> str:
        return self.run_dir.name


def read_snapshot(run_dir: Path) -> Snapshot:
    path = run_dir / STATS_FILE
    try:
        st = path.stat()
        raw = path.read_bytes()
    except FileNotFoundError:
        return Snapshot(run_dir, None, f"{STATS_FILE} missing", None, None)
    except OSError as exc:
        return Snapshot(run_dir, None, f"cannot read {STATS_FILE}: {exc.strerror or exc}", None, None)
    try:
        doc = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        return Snapshot(run_dir, None, f"{STATS_FILE} is not UTF-8 text", st.st_mtime, None)
    except json.JSONDecodeError as exc:
        what = "empty" if not raw.strip() else f"corrupt JSON (line {exc.lineno}: {exc.msg})"
        return Snapshot(run_dir, None, f"{STATS_FILE} {what}", st.st_mtime, None)
    if not isinstance(doc, dict):
        return Snapshot(run_dir, None, f"{STATS_FILE} is not a JSON object", st.st_mtime, None)
    if doc.get("status") not in STATUSES:
        return Snapshot(run_dir, None, f"{STATS_FILE} has unknown status {doc.get('status')!r}", st.st_mtime, None)
    sig = f"{st.st_mtime_ns}:{st.st_size}:{doc.get('updated_at')}:{doc.get('global_step')}"
    return Snapshot(run_dir, doc, None, st.st_mtime, sig)


def process_alive(stats: Mapping[str, Any]) -> bool | None:
    """Whether the trainer's process still exists; None when this host cannot tell (another host,
    no pid, no permission)."""
    pid = stats.get("pid")
    if stats.get("status") != "running" or not isinstance(pid, int) or stats.get("host") != socket.gethostname():
        return None
    import psutil

    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False
    except psutil.Error:
        return None


def _finite(value: Any) -> float | None:
    value = health.number(value)
    return value if value is not None and math.isfinite(value) else None


def _metric(stats: Mapping[str, Any], hist: list[Mapping[str, Any]], key: str) -> float | None:
    """The latest value of a metric, else the last epoch's (a non-finite one shows as unknown)."""
    value = health.latest(stats, key)
    if value is None and hist:
        value = health.number(hist[-1].get(key))
    return _finite(value)


def record_from_stats(
    stats: Mapping[str, Any], run_dir: Path, a: health.Assessment, *, observed_at: float | None, now: float
) -> dict[str, Any]:
    """The flat record that Redis stores and ``seghw status`` shows."""
    hist = health.history(stats)
    best = stats.get("best_checkpoint")
    record: dict[str, Any] = {
        "run_id": run_dir.name,
        "run_dir": str(stats.get("run_dir") or run_dir),
        "state": a.state,
        "health": a.health,
        "level": a.level,
        "problems": list(a.problems),
        "message": a.message,
        "progress": a.progress,
        "eta_s": a.eta_s,
        "stall_after_s": a.stall_after_s,
        "observed_at": observed_at,
        "collected_at": now,
        "updated_at": stats.get("updated_at"),
        "started_at": stats.get("started_at"),
        "host": stats.get("host"),
        "device": stats.get("device"),
        "pid": stats.get("pid") if isinstance(stats.get("pid"), int) else None,
        "best_psnr": health.number(best.get("psnr")) if isinstance(best, Mapping) else None,
        "loss_history": [[h.get("epoch"), _finite(h.get("train_loss")), _finite(h.get("val_loss"))]
                         for h in hist[-HISTORY_POINTS:]],
    }
    for key in ("epoch", "total_epochs", "global_step", "total_steps"):
        value = stats.get(key)
        record[key] = value if isinstance(value, int) and not isinstance(value, bool) else None
    for key in ("train_loss", "val_loss", "lr", "grad_norm", "param_norm", "epoch_duration",
                "samples_per_sec", "step_time", "psnr", "ssim"):
        record[key] = _metric(stats, hist, key)
    return record


def local_record(snap: Snapshot, cfg: HealthConfig, now: float) -> dict[str, Any] | None:
    """A record straight from a stats file, without Redis (``seghw monitor``): the file's
    modification time stands for the last update."""
    if snap.stats is None:
        return None
    observed = min(now, snap.mtime) if snap.mtime else None
    a = health.assess(snap.stats, now=now, cfg=cfg, observed_at=observed, pid_alive=process_alive(snap.stats))
    return record_from_stats(snap.stats, snap.run_dir, a, observed_at=observed, now=now)


def _float(value: str | None) -> float | None:
    try:
        return float(value) if value not in (None, "") else None
    except ValueError:
        return None


def _judged_stats(snap: Snapshot, previous: Mapping[str, str], now: float):
    """The stats to judge (this read, else the last good one), when the monitor last saw them
    change (its own clock), and what to remember for next time."""
    seen = _float(previous.get("observed_at"))
    if snap.stats is not None:
        if previous.get("sig") == snap.sig:
            return snap.stats, seen or now, {}
        # First sight: the file's own time; afterwards the moment a change was noticed.
        observed = now if previous else min(now, snap.mtime or now)
        return snap.stats, observed, {"sig": snap.sig or "", "stats": json.dumps(snap.stats, allow_nan=True)}
    if previous.get("stats"):
        return json.loads(previous["stats"]), seen or now, {}
    return None, seen or min(now, snap.mtime or now), {}


UNREADABLE = health.Assessment(state="unknown", health="unreadable", level="warning", problems=("unreadable",),
                               message="", age_s=None, stall_after_s=0.0, progress=None, eta_s=None)


def trainer_alive(stats: Mapping[str, Any], present: bool | None) -> bool | None:
    """Whether the run's trainer lives: its process when it runs on this host, else whether the queue
    job running it still answers in Redis (``present``; None when no queue job started it or when
    Redis has just restarted, see ``store.trainer_presence``)."""
    alive = process_alive(stats)
    if alive is None and present is False and stats.get("status") == "running":
        return False
    return alive


def build_update(
    snap: Snapshot, previous: Mapping[str, str], cfg: HealthConfig, now: float, fresh_alert_s: float,
    trainer_present: bool | None = None,
) -> store.RunUpdate | None:
    """The run's new hash from this read and its previous hash (the collector's only memory)."""
    stats, observed, memory = _judged_stats(snap, previous, now)
    if stats is None:
        if snap.mtime is None and not previous:
            return None  # a run folder the trainer has not written to yet
        a = dataclasses.replace(UNREADABLE, message=snap.error or "")
        stats = {}
    else:
        a = health.assess(stats, now=now, cfg=cfg, observed_at=observed,
                          pid_alive=trainer_alive(stats, trainer_present))
    fields = record_from_stats(stats, snap.run_dir, a, observed_at=observed, now=now)
    if snap.error:
        fields["read_error"] = snap.error
        fields["read_error_at"] = _float(previous.get("read_error_at")) if previous.get("read_error") else now
    else:
        fields["read_error"] = fields["read_error_at"] = None
        # Only a live run's clock matters (a copied or restored folder has new file times).
        updated = health.parse_time(stats.get("updated_at")) if a.state == "running" else None
        skew = None if updated is None or snap.mtime is None else updated - snap.mtime
        fields["clock_skew_s"] = round(skew, 1) if skew is not None and abs(skew) > SKEW_REPORT_S else None

    ttl = None
    if a.state == "running" and a.age_s is not None and not {"stalled", "dead"} & set(a.problems):
        ttl = a.stall_after_s - a.age_s
    return store.RunUpdate(fields, score=observed, event=_event(snap.run_id, previous, fields, observed, now,
                                                                fresh_alert_s),
                           heartbeat_ttl=ttl, memory=memory)


def _event(run_id: str, previous: Mapping[str, str], fields: Mapping[str, Any], observed: float, now: float,
           fresh_alert_s: float) -> dict[str, str] | None:
    before = (previous.get("state"), previous.get("health"))
    if before == (fields["state"], fields["health"]):
        return None
    kind = "transition" if before[0] else "discovered"
    # A run seen for the first time is news only if it moved recently; otherwise this is a fresh
    # monitor (or a Redis that lost its data) catching up on old runs.
    alert = kind == "transition" or now - observed <= fresh_alert_s
    event = {
        "run_id": run_id, "kind": kind, "from_state": before[0] or "", "from_health": before[1] or "",
        "state": fields["state"], "health": fields["health"], "level": fields["level"],
        "message": fields["message"] or "", "at": f"{now:.3f}", "alert": "1" if alert else "0",
    }
    event["text"] = event_text(event)
    return event


def _started(snap: Snapshot) -> tuple[float, str]:
    ts = health.parse_time(snap.stats.get("started_at")) if snap.stats else None
    if ts is None:
        try:
            ts = snap.run_dir.stat().st_mtime
        except OSError:
            ts = 0.0
    return ts, snap.run_id


def newest(snaps: list[Snapshot]) -> Snapshot | None:
    """The run started last (its stats' started_at; the folder's time when unreadable)."""
    return max(snaps, key=_started) if snaps else None


def collect_once(conn: redis.Redis, log_root: str | os.PathLike, cfg: HealthConfig, now: float | None = None) -> dict:
    """One pass over the log root. Returns a summary (also written to ``seghw:monitor:collect``)."""
    started = time.time()
    now = started if now is None else now
    root = Path(log_root)
    summary: dict[str, Any] = {"at": now, "log_root": str(root), "interval": cfg.interval,
                               "host": socket.gethostname(), "runs": 0, "read_errors": 0, "events": 0}
    if not root.is_dir():
        # A missing volume must not look like every run was deleted.
        summary["error"] = f"log root {root} not found"
        store.write_collect(conn, summary, ttl=collect_ttl(cfg))
        return summary
    snaps = [read_snapshot(d) for d in list_runs(root)]
    top = newest([s for s in snaps if s.stats is not None] or snaps)
    fresh_alert_s = max(120.0, 10 * cfg.interval)
    presence = store.trainer_presence(conn, [s.run_id for s in snaps if (s.stats or {}).get("status") == "running"])
    for snap in snaps:
        update = store.update_run(
            conn,
            snap.run_id,
            lambda prev, snap=snap: build_update(snap, prev, cfg, now, fresh_alert_s, presence.get(snap.run_id)),
            is_latest=top is not None and snap.run_id == top.run_id,
        )
        if update is not None:
            summary["runs"] += 1
            if update.event:
                summary["events"] += 1
                log.info("%s", update.event["text"])
        summary["read_errors"] += snap.error is not None
    present = {s.run_id for s in snaps}
    for run_id in store.known_runs(conn):
        if run_id not in present:
            gone = store.remove_run(conn, run_id, lambda prev, run_id=run_id: _removed_event(run_id, prev, now))
            summary["events"] += gone
    if top is None:
        conn.delete(store.LATEST)
    summary["duration_ms"] = round((time.time() - started) * 1000, 1)
    store.write_collect(conn, summary, ttl=collect_ttl(cfg))
    return summary


def _removed_event(run_id: str, previous: Mapping[str, str], now: float) -> dict[str, str]:
    return {
        "run_id": run_id, "kind": "removed", "from_state": previous.get("state", ""),
        "from_health": previous.get("health", ""), "state": "", "health": "", "level": "ok",
        "message": "run folder deleted", "at": f"{now:.3f}", "alert": "0",
        "text": f"run {run_id}: folder deleted, no longer watched",
    }


def collect_ttl(cfg: HealthConfig) -> float:
    """How long a collect summary counts as fresh."""
    return max(3 * cfg.interval, 10.0)


def collect_job(log_root: str, interval: float) -> dict:
    """The rq job the scheduler enqueues every interval."""
    cfg = HealthConfig.from_env(interval=interval)
    conn = connection.connect()
    try:
        summary = collect_once(conn, log_root, cfg)
        url = os.environ.get("ALERT_WEBHOOK_URL")
        if url:
            from seghw.monitor.alerts import deliver_pending

            summary["alerts"] = deliver_pending(conn, url)
        return summary
    finally:
        conn.close()
