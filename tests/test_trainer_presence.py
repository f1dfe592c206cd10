"""A trainer on another host (another container) is seen dead within seconds of its queue job going
away, through the job's key in Redis, not only after its stats heartbeat counts as stalled."""

from __future__ import annotations

import time

import pytest

from seghw.monitor import collect, store
from seghw.monitor.health import HealthConfig

# The default thresholds: a silent run counts as stalled after 30 s, so only the job key can say
# "dead" within the few seconds these tests wait.
CFG = HealthConfig(interval=10)
RUN = "logs_11270745"


@pytest.mark.parametrize(
    ("present", "age", "expected"),
    [
        (None, 60.0, None),   # no queue job started it: nothing to tell
        (True, 60.0, None),   # its job answers
        (False, 60.0, False),  # its job stopped answering and the stats are old: gone
        (False, 1.0, None),   # stats fresher than the key's TTL: Redis may just have restarted
        (False, None, None),
    ],
)
def test_trainer_alive_on_another_host(present, age, expected):
    stats = {"status": "running", "host": "another-container", "pid": 7}
    assert collect.trainer_alive(stats, age, present) is expected


def test_only_running_runs_can_be_dead():
    assert collect.trainer_alive({"status": "finished", "host": "x"}, 60.0, False) is None


def _write_other_host_run(write_run, updated_ago: float):
    return write_run(RUN, host="another-container", updated_ago=updated_ago)


def test_collect_calls_a_run_dead_once_its_job_key_expired(conn, write_run):
    _write_other_host_run(write_run, updated_ago=8.0)
    store.mark_trainer_alive(conn, RUN, "another-container", first=True)
    collect.collect_once(conn, write_run.root, CFG)
    assert conn.hget(store.run_key(RUN), "health") == "ok"

    conn.delete(store.trainer_key(RUN))  # as when the key's TTL runs out after the job died
    collect.collect_once(conn, write_run.root, CFG, now=time.time() + 2)  # the stats just seen: no verdict
    assert conn.hget(store.run_key(RUN), "health") == "ok"
    collect.collect_once(conn, write_run.root, CFG, now=time.time() + store.TRAINER_TTL_S + 1)
    h = conn.hgetall(store.run_key(RUN))
    assert h["health"] == "dead", h
    assert "another-container" in h["message"]


def test_the_job_key_expires_by_itself(conn, write_run):
    store.mark_trainer_alive(conn, RUN, "h", first=True)
    assert 0 < conn.pttl(store.trainer_key(RUN)) <= store.TRAINER_TTL_S * 1000
    assert conn.ttl(store.supervised_key(RUN)) > 24 * 3600


def test_a_run_no_job_started_is_judged_by_its_heartbeat_only(conn, write_run):
    _write_other_host_run(write_run, updated_ago=8.0)
    collect.collect_once(conn, write_run.root, CFG)
    collect.collect_once(conn, write_run.root, CFG, now=time.time() + store.TRAINER_TTL_S + 1)
    assert conn.hget(store.run_key(RUN), "health") == "ok"


def test_a_removed_run_takes_its_job_keys_along(conn, write_run):
    import shutil

    run_dir, _ = _write_other_host_run(write_run, updated_ago=0.0)
    store.mark_trainer_alive(conn, RUN, "h", first=True)
    collect.collect_once(conn, write_run.root, CFG)
    shutil.rmtree(run_dir)
    collect.collect_once(conn, write_run.root, CFG, now=time.time())
    assert not conn.exists(store.trainer_key(RUN), store.supervised_key(RUN))
