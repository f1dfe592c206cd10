"""Webhook alerts: a real HTTP server thread receives the POSTs."""

from __future__ import annotations

import threading
import time

from seghw import connection
from seghw.monitor import alerts, collect, store
from seghw.monitor.health import HealthConfig

CFG = HealthConfig(interval=1, stall_min_s=1.5, stall_intervals=1, stall_steps=1)




def test_each_transition_is_posted_once_with_a_text_field(conn, write_run, webhook):
    write_run()
    for _ in range(3):
        collect.collect_once(conn, write_run.root, CFG)
        alerts.deliver_pending(conn, webhook.url)
    write_run(status="failed", error={"type": "RuntimeError", "message": "CUDA out of memory"})
    for _ in range(3):
        collect.collect_once(conn, write_run.root, CFG)
        alerts.deliver_pending(conn, webhook.url)

    assert [(m["kind"], m["previous_state"], m["state"]) for m in webhook.received] == [
        ("discovered", None, "running"), ("transition", "running", "failed")]
    failed = webhook.received[1]
    assert failed["text"] == ("[ERROR] run logs_11270745: running -> failed "
                              "(RuntimeError: CUDA out of memory)")
    assert failed["run_id"] == "logs_11270745" and failed["level"] == "error" and failed["health"] == "failed"
    assert failed["at"].endswith("+00:00")
    assert webhook.headers[1]["Idempotency-Key"] == failed["event_id"]


def test_refused_posts_are_retried_with_backoff_and_delivered_once(conn, write_run, webhook):
    write_run()
    collect.collect_once(conn, write_run.root, CFG)
    webhook.fail_next = 2
    t0 = time.time()
    first = alerts.deliver_pending(conn, webhook.url, now=t0, backoff_base=1.0)
    assert first["waiting"] == 1 and webhook.attempts == 1 and not webhook.received
    # Not due yet: no new attempt before the backoff has passed.
    alerts.deliver_pending(conn, webhook.url, now=t0 + 0.5, backoff_base=1.0)
    assert webhook.attempts == 1
    retry = conn.hgetall(store.ALERT_RETRY)
    assert retry["attempts"] == "1" and retry["last_error"] == "HTTP 500"
    alerts.deliver_pending(conn, webhook.url, now=t0 + 1.1, backoff_base=1.0)  # second failure
    assert webhook.attempts == 2
    # The backoff doubled: 2 s after the second failure.
    alerts.deliver_pending(conn, webhook.url, now=t0 + 2.5, backoff_base=1.0)
    assert webhook.attempts == 2
    sent = alerts.deliver_pending(conn, webhook.url, now=t0 + 3.2, backoff_base=1.0)
    assert sent["sent"] == 1 and len(webhook.received) == 1
    for _ in range(3):
        alerts.deliver_pending(conn, webhook.url)
    assert len(webhook.received) == 1 and not conn.exists(store.ALERT_RETRY)


def test_unreachable_webhook_is_given_up_after_max_attempts(conn, write_run, webhook):
    write_run()
    collect.collect_once(conn, write_run.root, CFG)
    dead_url = "http://127.0.0.1:9/nothing-listens-here"
    now = time.time()
    for i in range(3):
        alerts.deliver_pending(conn, dead_url, now=now + 1000 * i, max_attempts=3, timeout=1.0)
    assert conn.get(store.ALERT_CURSOR)  # moved past the event
    write_run(status="finished", epochs_done=10)
    collect.collect_once(conn, write_run.root, CFG)
    alerts.deliver_pending(conn, webhook.url)
    assert [m["state"] for m in webhook.received] == ["finished"]  # later alerts still go out


def test_concurrent_deliveries_never_duplicate(conn, write_run, webhook):
    for i in range(5):
        write_run(f"logs_1127070{i}")
    collect.collect_once(conn, write_run.root, CFG)
    threads = [threading.Thread(target=alerts.deliver_pending, args=(connection.connect(), webhook.url))
               for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    alerts.deliver_pending(conn, webhook.url)
    ids = [m["run_id"] for m in webhook.received]
    assert sorted(ids) == [f"logs_1127070{i}" for i in range(5)]


def test_old_runs_seen_for_the_first_time_are_not_announced(conn, write_run, webhook):
    """A fresh monitor (or a Redis that lost its data) catching up on runs that ended long ago."""
    import os

    run_dir, _ = write_run(status="finished", epochs_done=10, updated_ago=86400)
    old = time.time() - 86400
    os.utime(run_dir / "training_stats.json", (old, old))
    collect.collect_once(conn, write_run.root, CFG)
    alerts.deliver_pending(conn, webhook.url)
    assert [e["alert"] for _, e in conn.xrange(store.EVENTS)] == ["0"]
    assert webhook.received == []


def test_event_text_reads_well():
    assert alerts.event_text({"kind": "discovered", "run_id": "logs_1", "state": "running", "health": "ok",
                              "level": "ok"}) == "run logs_1 is running"
    assert alerts.event_text({"kind": "transition", "run_id": "logs_1", "from_state": "running",
                              "from_health": "ok", "state": "running", "health": "stalled",
                              "level": "error", "message": "no update for 45 s"}) == (
        "[ERROR] run logs_1: running -> running/stalled (no update for 45 s)")
