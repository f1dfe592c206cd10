"""A trainer on another host (another container) is seen dead within seconds of its queue job going
away, through the job's key in Redis, not only after its stats heartbeat counts as stalled."""

from __future__ import annotations

import shutil
import time

import pytest

from seghw.monitor import collect, store
from seghw.monitor.health import HealthConfig

# The default thresholds: a silent run counts as stalled after 30 s, so only the job key can say
# "dead" within the few seconds these tests take.
CFG = HealthConfig(interval=10)
RUN = "logs_11270745"
OTHER_HOST = {"status": "running", "host": "another-container", "pid": 7}


@pytest.mark.parametrize(("present", "expected"), [(None, None), (True, None), (False, False)])
def test_trainer_alive_on_another_host(present, expected):
    assert collect.trainer_alive(OTHER_HOST, present) is expected


def test_only_running_runs_can_be_dead():
    assert collect.trainer_alive({**OTHER_HOST, "status": "finished"}, False) is None


def _write_other_host_run(write_run):
    return write_run(RUN, host="another-container")


def _redis_up_longer_than_the_key_ttl(conn) -> None:
    while float(conn.info("server")["uptime_in_seconds"]) <= store.TRAINER_TTL_S + 1:
        time.sleep(0.25)


def test_collect_calls_a_run_dead_once_its_job_key_is_gone(conn, write_run):
    _write_other_host_run(write_run)
    _redis_up_longer_than_the_key_ttl(conn)
    store.mark_trainer_alive(conn, RUN, "another-container", first=True)
    collect.collect_once(conn, write_run.root, CFG)
    assert conn.hget(store.run_key(RUN), "health") == "ok"

    conn.delete(store.trainer_key(RUN))  # as when the key's TTL runs out after the job died
    collect.collect_once(conn, write_run.root, CFG)
    h = conn.hgetall(store.run_key(RUN))
    assert (h["health"], h["level"]) == ("dead", "error"), h
    assert "another-container" in h["message"]


def test_no_verdict_while_redis_has_just_restarted(conn, write_run):
    """After a restart Redis may have let the key expire while it was down; the job refreshes it
    within a second of reconnecting, so a young Redis says nothing about the trainer."""
    assert float(conn.info("server")["uptime_in_seconds"]) <= store.TRAINER_TTL_S + 1  # a fresh server
    _write_other_host_run(write_run)
    conn.set(store.supervised_key(RUN), "another-container")
    collect.collect_once(conn, write_run.root, CFG)
    assert conn.hget(store.run_key(RUN), "health") == "ok"


def test_the_job_key_expires_by_itself(conn):
    store.mark_trainer_alive(conn, RUN, "h", first=True)
    assert 0 < conn.pttl(store.trainer_key(RUN)) <= store.TRAINER_TTL_S * 1000
    assert conn.ttl(store.supervised_key(RUN)) > 24 * 3600


def test_a_run_no_job_started_is_judged_by_its_heartbeat_only(conn, write_run):
    _write_other_host_run(write_run)
    _redis_up_longer_than_the_key_ttl(conn)
    collect.collect_once(conn, write_run.root, CFG)
    assert conn.hget(store.run_key(RUN), "health") == "ok"


def test_a_removed_run_takes_its_job_keys_along(conn, write_run):
    run_dir, _ = _write_other_host_run(write_run)
    store.mark_trainer_alive(conn, RUN, "h", first=True)
    collect.collect_once(conn, write_run.root, CFG)
    shutil.rmtree(run_dir)
    collect.collect_once(conn, write_run.root, CFG)
    assert not conn.exists(store.trainer_key(RUN), store.supervised_key(RUN))
