"""Webhook alerts: every state/health transition in the events stream is POSTed once.

The stream is the outbox. A cursor in Redis marks the last event handled; it moves past an event
only after the webhook accepted it (2xx), so nothing is sent twice. A refused POST is retried on
later collects with exponential backoff, in order, and given up after ``max_attempts``."""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from seghw.monitor import store

if TYPE_CHECKING:
    import redis

log = logging.getLogger("seghw.monitor")


def _pair(state: str, health: str) -> str:
    return state if not health or health in ("ok", state) else f"{state}/{health}"


def event_text(event: Mapping[str, str]) -> str:
    """One plain line, the ``text`` that chat webhooks (Slack, Mattermost, ...) display."""
    run = event.get("run_id", "?")
    now = _pair(event.get("state", ""), event.get("health", ""))
    if event.get("kind") == "discovered":
        head = f"run {run} is {now}"
    else:
        head = f"run {run}: {_pair(event.get('from_state', ''), event.get('from_health', ''))} -> {now}"
    mark = {"error": "[ERROR] ", "warning": "[WARNING] "}.get(event.get("level", ""), "")
    message = event.get("message")
    return f"{mark}{head}" + (f" ({message})" if message else "")


def payload(event_id: str, event: Mapping[str, str]) -> dict[str, Any]:
    try:
        at = datetime.fromtimestamp(float(event.get("at", "")), timezone.utc).isoformat(timespec="seconds")
    except ValueError:
        at = None
    return {
        "text": event.get("text") or event_text(event),
        "event_id": event_id,
        "run_id": event.get("run_id"),
        "kind": event.get("kind"),
        "state": event.get("state"),
        "health": event.get("health"),
        "previous_state": event.get("from_state") or None,
        "previous_health": event.get("from_health") or None,
        "level": event.get("level"),
        "message": event.get("message") or None,
        "at": at,
        "source": f"seghw monitor on {socket.gethostname()}",
    }


def post(url: str, body: Mapping[str, Any], event_id: str, timeout: float) -> str | None:
    """POST once; None on success, else the reason."""
    import requests

    try:
        resp = requests.post(url, json=body, timeout=timeout, headers={"Idempotency-Key": event_id})
    except requests.RequestException as exc:
        return f"{type(exc).__name__}: {str(exc).splitlines()[0][:200] if str(exc) else ''}"
    if 200 <= resp.status_code < 300:
        return None
    return f"HTTP {resp.status_code}"


def _advance(conn, event_id: str) -> None:
    """Move the delivery cursor past ``event_id`` and forget its retry state, atomically."""
    with conn.pipeline() as pipe:
        pipe.set(store.ALERT_CURSOR, event_id)
        pipe.delete(store.ALERT_RETRY)
        pipe.execute()


def deliver_pending(
    conn: redis.Redis,
    url: str,
    *,
    now: float | None = None,
    timeout: float = 5.0,
    max_attempts: int = 8,
    backoff_base: float = 1.0,
    backoff_cap: float = 300.0,
    max_age: float = 3600.0,
    batch: int = 50,
) -> dict[str, int]:
    """Send the alerts that are due. Safe to call from several collects at once (a lock)."""
    now = time.time() if now is None else now
    counts = {"sent": 0, "skipped": 0, "given_up": 0, "waiting": 0}
    lock = conn.lock(store.ALERT_LOCK, timeout=max(60.0, timeout * batch), blocking=False)
    if not lock.acquire(blocking=False):
        return counts
    try:
        # No cursor yet: start a little in the past, not at the dawn of the stream.
        cursor = conn.get(store.ALERT_CURSOR) or f"{int((now - max_age) * 1000)}-0"
        for event_id, event in conn.xrange(store.EVENTS, min=f"({cursor}", count=batch):
            if event.get("alert") != "1":
                conn.set(store.ALERT_CURSOR, event_id)
                counts["skipped"] += 1
                continue
            retry = conn.hgetall(store.ALERT_RETRY)
            attempts = int(retry.get("attempts", 0)) if retry.get("event_id") == event_id else 0
            if attempts and float(retry.get("next_at", 0)) > now:
                counts["waiting"] += 1
                break
            error = post(url, payload(event_id, event), event_id, timeout)
            if error is None:
                _advance(conn, event_id)
                counts["sent"] += 1
                continue
            attempts += 1
            if attempts >= max_attempts:
                log.error("alert %s given up after %d attempts: %s", event_id, attempts, error)
                _advance(conn, event_id)
                counts["given_up"] += 1
                continue
            delay = min(backoff_cap, backoff_base * 2 ** (attempts - 1))
            log.warning("alert %s not delivered (%s); attempt %d, next in %.0f s", event_id, error, attempts, delay)
            conn.hset(store.ALERT_RETRY, mapping={
                "event_id": event_id, "attempts": attempts, "next_at": now + delay, "last_error": error,
            })
            counts["waiting"] += 1
            break
    finally:
        try:
            lock.release()
        except Exception:  # the lock expired meanwhile; nothing to undo
            pass
    return counts
