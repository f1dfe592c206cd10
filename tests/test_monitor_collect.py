"""The collect job against a real redis-server: key layout, transitions, and the faults it survives
(corrupt, half-written and concurrently written stats files, deleted runs, skewed clocks)."""

from __future__ import annotations

import json
import threading
import time

import pytest

from seghw import connection
from seghw.atomic import write_json_atomic
from seghw.monitor import collect, store
from seghw.monitor.health import HealthConfig

CFG = HealthConfig(interval=1, stall_min_s=1.5, stall_intervals=1, stall_steps=1)




def events(conn) -> list[dict]:
    return [fields for _id, fields in conn.xrange(store.EVENTS)]


def test_layout_hash_index_heartbeat_latest_and_event(conn, write_run):
    write_run("logs_11270700", status="finished", epochs_done=10)
    write_run("logs_11270745", now=time.time() + 60)  # started a minute later: the newest
    summary = collect.collect_once(conn, write_run.root, CFG)
    assert summary["runs"] == 2 and summary["events"] == 2 and summary["read_errors"] == 0

    h = conn.hgetall(store.run_key("logs_11270745"))
    assert (h["state"], h["health"], h["level"]) == ("running", "ok", "ok")
    assert (h["epoch"], h["total_epochs"], h["global_step"], h["total_steps"]) == ("2", "10", "20", "100")
    assert float(h["train_loss"]) == pytest.approx(0.5) and float(h["val_loss"]) == pytest.approx(0.55)
    assert json.loads(h["loss_history"]) == [[1, 1.0, 1.1], [2, 0.5, 0.55]]
    assert float(h["eta_s"]) == pytest.approx(80 * 0.5)
    assert conn.zrange(store.RUNS, 0, -1) and set(conn.zrange(store.RUNS, 0, -1)) == {
        "logs_11270700", "logs_11270745"}
    assert conn.get(store.LATEST) == "logs_11270745"
    # The heartbeat key lives while the run is fresh; a finished run has none.
    assert 0 < conn.pttl(store.heartbeat_key("logs_11270745")) <= CFG.stall_min_s * 1000
    assert not conn.exists(store.heartbeat_key("logs_11270700"))
    assert [(e["run_id"], e["kind"], e["state"]) for e in events(conn)] == [
        ("logs_11270700", "discovered", "finished"), ("logs_11270745", "discovered", "running")]
    assert conn.hget(store.COLLECT, "runs") == "2" and conn.pttl(store.COLLECT) > 0


def test_collect_is_idempotent(conn, write_run):
    write_run()
    for _ in range(3):
        collect.collect_once(conn, write_run.root, CFG)
    assert len(events(conn)) == 1
    assert conn.zcard(store.RUNS) == 1


def test_overlapping_collects_record_a_transition_once(conn, write_run):
    """Two monitors by mistake: another collect lands between this one's read and its write."""
    run_dir, _ = write_run()
    collect.collect_once(conn, write_run.root, CFG)
    write_run(status="finished", epochs_done=10)
    snap = collect.read_snapshot(run_dir)
    seen = []

    def build(previous):
        seen.append(previous.get("state"))
        if len(seen) == 1:
            collect.collect_once(connection.connect(), write_run.root, CFG)  # the other monitor
        return collect.build_update(snap, previous, CFG, time.time(), 120)

    store.update_run(conn, "logs_11270745", build, is_latest=True)
    assert seen == ["running", "finished"]  # the write was retried on the other collect's result
    kinds = [(e["kind"], e["from_state"], e["state"]) for e in events(conn)]
    assert kinds == [("discovered", "", "running"), ("transition", "running", "finished")]


def test_stalled_when_updates_stop(conn, write_run):
    write_run()
    collect.collect_once(conn, write_run.root, CFG)
    assert conn.hget(store.run_key("logs_11270745"), "health") == "ok"
    assert conn.exists(store.heartbeat_key("logs_11270745"))
    time.sleep(CFG.stall_min_s + 0.3)  # the trainer writes nothing meanwhile
    collect.collect_once(conn, write_run.root, CFG)
    h = conn.hgetall(store.run_key("logs_11270745"))
    assert (h["health"], h["level"]) == ("stalled", "error")
    assert not conn.exists(store.heartbeat_key("logs_11270745"))
    # The trainer writes again: healthy again, and both changes are events.
    write_run()
    collect.collect_once(conn, write_run.root, CFG)
    assert conn.hget(store.run_key("logs_11270745"), "health") == "ok"
    assert [e["health"] for e in events(conn)] == ["ok", "stalled", "ok"]


def test_corrupt_file_keeps_last_good_status_and_marks_the_error(conn, write_run):
    run_dir, _ = write_run(epochs_done=3)
    collect.collect_once(conn, write_run.root, CFG)
    (run_dir / "training_stats.json").write_text('{"schema_version": 1, "status": "runn')  # half-written
    summary = collect.collect_once(conn, write_run.root, CFG)
    assert summary["read_errors"] == 1
    h = conn.hgetall(store.run_key("logs_11270745"))
    assert (h["state"], h["health"], h["epoch"]) == ("running", "ok", "3")  # the last good status
    assert "corrupt JSON" in h["read_error"] and float(h["read_error_at"]) > 0
    assert len(events(conn)) == 1  # a read error is not a health transition (no alert flapping)

    (run_dir / "training_stats.json").write_bytes(b"\xff\xfe garbage")
    collect.collect_once(conn, write_run.root, CFG)
    assert "not UTF-8" in conn.hget(store.run_key("logs_11270745"), "read_error")
    (run_dir / "training_stats.json").unlink()  # between a delete and a rename
    collect.collect_once(conn, write_run.root, CFG)
    assert "missing" in conn.hget(store.run_key("logs_11270745"), "read_error")

    write_run(epochs_done=4)
    collect.collect_once(conn, write_run.root, CFG)
    h = conn.hgetall(store.run_key("logs_11270745"))
    assert h["read_error"] == "" and h["epoch"] == "4"


def test_persistent_read_error_turns_stalled(conn, write_run):
    run_dir, _ = write_run()
    collect.collect_once(conn, write_run.root, CFG)
    (run_dir / "training_stats.json").write_text("not json")
    time.sleep(CFG.stall_min_s + 0.3)
    collect.collect_once(conn, write_run.root, CFG)
    h = conn.hgetall(store.run_key("logs_11270745"))
    assert h["health"] == "stalled" and h["read_error"]


def test_unreadable_new_run_is_shown_as_unreadable_and_empty_folder_is_skipped(conn, write_run):
    bad = write_run.root / "logs_11270801"
    bad.mkdir()
    (bad / "training_stats.json").write_text("{")
    (write_run.root / "logs_11270802").mkdir()  # the trainer has not written anything yet
    collect.collect_once(conn, write_run.root, CFG)
    assert conn.zrange(store.RUNS, 0, -1) == ["logs_11270801"]
    h = conn.hgetall(store.run_key("logs_11270801"))
    assert (h["state"], h["health"], h["level"]) == ("unknown", "unreadable", "warning")


def test_deleted_run_folder_is_forgotten_once(conn, write_run):
    import shutil

    old, _ = write_run("logs_11270700", status="finished", epochs_done=10)
    write_run("logs_11270745", now=time.time() + 60)
    collect.collect_once(conn, write_run.root, CFG)
    shutil.rmtree(old)
    collect.collect_once(conn, write_run.root, CFG)
    collect.collect_once(conn, write_run.root, CFG)
    assert conn.zrange(store.RUNS, 0, -1) == ["logs_11270745"]
    assert not conn.exists(store.run_key("logs_11270700"))
    assert [e["kind"] for e in events(conn) if e["run_id"] == "logs_11270700"] == ["discovered", "removed"]
    # Deleting the newest run moves the pointer.
    shutil.rmtree(write_run.root / "logs_11270745")
    collect.collect_once(conn, write_run.root, CFG)
    assert conn.get(store.LATEST) is None and conn.zcard(store.RUNS) == 0


def test_missing_log_root_does_not_wipe_the_runs(conn, write_run, tmp_path):
    write_run()
    collect.collect_once(conn, write_run.root, CFG)
    summary = collect.collect_once(conn, tmp_path / "not-mounted", CFG)
    assert "not found" in summary["error"]
    assert conn.zrange(store.RUNS, 0, -1) == ["logs_11270745"]


def test_clock_skewed_updated_at(conn, write_run):
    # The trainer's clock runs an hour behind: not dead, not stalled, and the skew is reported.
    write_run(updated_ago=3600)
    collect.collect_once(conn, write_run.root, CFG)
    h = conn.hgetall(store.run_key("logs_11270745"))
    assert h["health"] == "ok"
    assert float(h["clock_skew_s"]) == pytest.approx(-3600, abs=5)
    # An hour ahead: the run is not "fresh forever" either; it stalls once the file stops changing.
    write_run(updated_ago=-3600)
    collect.collect_once(conn, write_run.root, CFG)
    assert conn.hget(store.run_key("logs_11270745"), "health") == "ok"
    time.sleep(CFG.stall_min_s + 0.3)
    collect.collect_once(conn, write_run.root, CFG)
    assert conn.hget(store.run_key("logs_11270745"), "health") == "stalled"


def test_stats_written_concurrently(conn, write_run):
    """A writer rewriting the file as fast as it can, atomically and not: collects never fail, and
    every atomic snapshot is read whole."""
    run_dir, doc = write_run()
    path = run_dir / "training_stats.json"
    stop = threading.Event()

    def writer(atomic: bool) -> None:
        step = 0
        while not stop.is_set():
            step += 1
            doc["global_step"] = step
            if atomic:
                write_json_atomic(path, doc)
            else:
                with open(path, "w") as fh:  # truncate, then write: readers can see a torn file
                    fh.write(json.dumps(doc)[: 50 + step % 400])
                    fh.flush()
                    fh.write(json.dumps(doc)[50 + step % 400:])

    t = threading.Thread(target=writer, args=(True,))
    t.start()
    try:
        summaries = [collect.collect_once(conn, write_run.root, CFG) for _ in range(30)]
    finally:
        stop.set()
        t.join()
    assert sum(s["read_errors"] for s in summaries) == 0
    assert int(conn.hget(store.run_key("logs_11270745"), "global_step")) > 0

    stop.clear()
    t = threading.Thread(target=writer, args=(False,))
    t.start()
    try:
        for _ in range(30):
            collect.collect_once(conn, write_run.root, CFG)
    finally:
        stop.set()
        t.join()
    write_run()
    collect.collect_once(conn, write_run.root, CFG)
    h = conn.hgetall(store.run_key("logs_11270745"))
    assert (h["state"], h["health"], h["read_error"]) == ("running", "ok", "")


def test_views_not_written_make_status_a_warning(conn, write_run, capsys):
    from seghw.cli import status as status_cmd

    faults = {"count": 2, "items": [{"kind": "histogram", "tag": "Weights/bn.weight", "count": 2,
                                     "message": "ValueError: Too many bins", "at": "2026-11-27T07:45:00.000+00:00"}]}
    write_run("logs_11270800", status="finished", epochs_done=10, display_faults=faults)
    write_run("logs_11270900", status="finished", epochs_done=10)  # a document from before the field
    collect.collect_once(conn, write_run.root, CFG)
    assert status_cmd.status_once(None, as_json=True) == 1
    runs = {r["run_id"]: r for r in json.loads(capsys.readouterr().out)["runs"]}
    lost = runs["logs_11270800"]
    assert (lost["state"], lost["health"], lost["level"]) == ("finished", "display_faults", "warning")
    assert lost["message"].startswith("2 views not written, training went on: histogram Weights/bn.weight")
    assert (runs["logs_11270900"]["health"], runs["logs_11270900"]["level"]) == ("finished", "ok")
