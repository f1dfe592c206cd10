"""The Redis side of run health: key layout, reads and writes (``seghw.connection`` says where Redis is).

Key layout (documented in docs/monitor.md):
  seghw:run:<run_id>              hash    the run's state, health and latest metrics
  seghw:run:<run_id>:heartbeat    string  the trainer's updated_at; its TTL runs out when the run stalls
  seghw:run:<run_id>:trainer      string  host of the queue job running it; refreshed every second, TTL 5 s
  seghw:run:<run_id>:supervised   string  set when a queue job starts the run: the key above must exist
  seghw:runs                      zset    run ids scored by their last update (monitor clock)
  seghw:latest                    string  id of the newest run (latest started_at)
  seghw:events                    stream  every change of a run's state or health (capped)
  seghw:monitor:collect           hash    summary of the last collect; expires after 3 intervals
  seghw:monitor:scheduler         string  name of the scheduler that holds the lead (with TTL)
  seghw:monitor:scheduler:heartbeat string JSON of the leading scheduler (with TTL)
  seghw:alerts:cursor / :retry / :lock    webhook delivery position, backoff state, lock
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import redis

QUEUE = "monitor"

RUNS = "seghw:runs"
LATEST = "seghw:latest"
EVENTS = "seghw:events"
EVENTS_MAXLEN = 1000
COLLECT = "seghw:monitor:collect"
SCHEDULER_LEADER = "seghw:monitor:scheduler"
SCHEDULER_HEARTBEAT = "seghw:monitor:scheduler:heartbeat"
ALERT_CURSOR = "seghw:alerts:cursor"
ALERT_RETRY = "seghw:alerts:retry"
ALERT_LOCK = "seghw:alerts:lock"


def run_key(run_id: str) -> str:
    return f"seghw:run:{run_id}"


def heartbeat_key(run_id: str) -> str:
    return f"seghw:run:{run_id}:heartbeat"


def trainer_key(run_id: str) -> str:
    return f"seghw:run:{run_id}:trainer"


def supervised_key(run_id: str) -> str:
    return f"seghw:run:{run_id}:supervised"


# The queue job that runs a training refreshes trainer_key every second with this TTL. A run whose
# job is gone (its container killed, its host down) loses the key within seconds, long before its
# stats heartbeat counts as stalled: the monitor on another host sees the death this way.
TRAINER_TTL_S = 5.0
SUPERVISED_TTL_S = 30 * 24 * 3600


def mark_trainer_alive(conn: redis.Redis, run_id: str, host: str, first: bool = False) -> None:
    with conn.pipeline(transaction=False) as pipe:
        if first:
            pipe.set(supervised_key(run_id), host, ex=SUPERVISED_TTL_S)
        pipe.set(trainer_key(run_id), host, px=int(TRAINER_TTL_S * 1000))
        pipe.execute()


def trainer_presence(conn: redis.Redis, run_ids: list[str]) -> dict[str, bool | None]:
    """Per run: True while its queue job answers, False once it stopped answering, None for a run
    no queue job started (``seghw train`` by hand) and for every run while Redis itself has been up
    for less than the key's TTL (after a restart the jobs have yet to reconnect and refresh it)."""
    if not run_ids:
        return {}
    with conn.pipeline(transaction=False) as pipe:
        pipe.info("server")
        for run_id in run_ids:
            pipe.exists(supervised_key(run_id))
            pipe.exists(trainer_key(run_id))
        server, *flags = pipe.execute()
    if float(server.get("uptime_in_seconds", 0)) <= TRAINER_TTL_S + 1:
        return dict.fromkeys(run_ids)
    return {run_id: (bool(flags[2 * i + 1]) if flags[2 * i] else None) for i, run_id in enumerate(run_ids)}


# The run hash, field by field. ``stats`` (the last good stats document) and ``sig`` (what the
# stats file looked like) are the collector's memory and are not shown by ``seghw status``.
TEXT_FIELDS = (
    "run_id", "run_dir", "state", "health", "level", "message", "updated_at", "started_at",
    "host", "device", "read_error",
)
INT_FIELDS = ("epoch", "total_epochs", "global_step", "total_steps", "pid")
FLOAT_FIELDS = (
    "progress", "eta_s", "train_loss", "val_loss", "lr", "grad_norm", "param_norm", "epoch_duration",
    "samples_per_sec", "step_time", "psnr", "ssim", "best_psnr", "observed_at", "stall_after_s",
    "collected_at", "read_error_at", "clock_skew_s",
)
JSON_FIELDS = ("problems", "loss_history")
RUN_FIELDS = TEXT_FIELDS + INT_FIELDS + FLOAT_FIELDS + JSON_FIELDS


def encode(record: Mapping[str, Any]) -> dict[str, str]:
    """A record as hash fields (None becomes an empty string, lists JSON)."""
    out: dict[str, str] = {}
    for key, value in record.items():
        if key in JSON_FIELDS:
            out[key] = json.dumps(value, allow_nan=False)
        elif value is None or (isinstance(value, float) and not math.isfinite(value)):
            out[key] = ""
        else:
            out[key] = str(value)
    return out


def decode(raw: Mapping[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key in RUN_FIELDS:
        value = raw.get(key)
        if value is None or value == "":
            out[key] = [] if key in JSON_FIELDS else None
        elif key in INT_FIELDS:
            out[key] = int(float(value))
        elif key in FLOAT_FIELDS:
            out[key] = float(value)
        elif key in JSON_FIELDS:
            out[key] = json.loads(value)
        else:
            out[key] = value
    return out


@dataclass
class RunUpdate:
    """What the collector writes for one run: the hash fields, the score in the runs index, an optional
    event, the heartbeat TTL (None: no fresh heartbeat) and the collector's memory fields."""

    fields: Mapping[str, Any]
    score: float
    event: Mapping[str, str] | None = None
    heartbeat_ttl: float | None = None
    memory: Mapping[str, str] = field(default_factory=dict)


def update_run(
    conn: redis.Redis,
    run_id: str,
    build: Callable[[dict[str, str]], RunUpdate | None],
    *,
    is_latest: bool,
) -> RunUpdate | None:
    """Read the run's previous hash and write its new state in one transaction.

    The hash is WATCHed: if another collect changed it meanwhile, the write is retried on the new
    state, so a transition is recorded once even when two collects overlap."""
    key = run_key(run_id)
    result: list[RunUpdate | None] = [None]

    def txn(pipe) -> None:
        previous = pipe.hgetall(key)
        update = build(previous)
        result[0] = update
        pipe.multi()
        if update is None:
            return
        pipe.hset(key, mapping={**encode(update.fields), **update.memory})
        pipe.zadd(RUNS, {run_id: update.score})
        hb = heartbeat_key(run_id)
        if update.heartbeat_ttl and update.heartbeat_ttl > 0:
            pipe.set(hb, str(update.fields.get("updated_at") or ""), px=max(1, int(update.heartbeat_ttl * 1000)))
        else:
            pipe.delete(hb)
        if is_latest:
            pipe.set(LATEST, run_id)
        if update.event:
            pipe.xadd(EVENTS, dict(update.event), maxlen=EVENTS_MAXLEN, approximate=True)

    conn.transaction(txn, key)
    return result[0]


def remove_run(conn: redis.Redis, run_id: str, event: Callable[[dict[str, str]], Mapping[str, str]]) -> bool:
    """Forget a run whose folder is gone; the removal is recorded once."""
    key = run_key(run_id)
    removed = [False]

    def txn(pipe) -> None:
        previous = pipe.hgetall(key)
        in_index = pipe.zscore(RUNS, run_id) is not None
        latest = pipe.get(LATEST)
        pipe.multi()
        if not previous and not in_index:
            return
        pipe.delete(key, heartbeat_key(run_id), trainer_key(run_id), supervised_key(run_id))
        pipe.zrem(RUNS, run_id)
        if latest == run_id:
            pipe.delete(LATEST)
        if previous:
            pipe.xadd(EVENTS, dict(event(previous)), maxlen=EVENTS_MAXLEN, approximate=True)
        removed[0] = True

    conn.transaction(txn, key, RUNS, LATEST)
    return removed[0]


def known_runs(conn: redis.Redis) -> list[str]:
    return list(conn.zrange(RUNS, 0, -1))


def write_collect(conn: redis.Redis, summary: Mapping[str, Any], ttl: float) -> None:
    with conn.pipeline() as pipe:
        pipe.delete(COLLECT)
        pipe.hset(COLLECT, mapping={k: json.dumps(v) if isinstance(v, (list, dict)) else str(v)
                                    for k, v in summary.items() if v is not None})
        pipe.pexpire(COLLECT, max(1, int(ttl * 1000)))
        pipe.execute()


def load_runs(conn: redis.Redis) -> tuple[list[dict[str, Any]], str | None, dict]:
    """Every run (newest update first), the latest pointer and the last collect summary, in two
    round trips."""
    with conn.pipeline(transaction=False) as pipe:
        pipe.zrevrange(RUNS, 0, -1)
        pipe.get(LATEST)
        pipe.hgetall(COLLECT)
        ids, latest, collect = pipe.execute()
    if not ids:
        return [], latest, collect
    with conn.pipeline(transaction=False) as pipe:
        for run_id in ids:
            pipe.hmget(run_key(run_id), RUN_FIELDS)
        rows = pipe.execute()
    runs = []
    for run_id, values in zip(ids, rows, strict=True):
        raw = {k: v for k, v in zip(RUN_FIELDS, values, strict=True) if v is not None}
        if raw:
            record = decode(raw)
            record["run_id"] = record["run_id"] or run_id
            runs.append(record)
    return runs, latest, collect
