"""Health rules on plain dicts: each rule on its own, then ``assess`` putting them together."""

from __future__ import annotations

import math
from datetime import datetime, timezone

import pytest

from seghw.errors import ConfigError
from seghw.monitor import health
from seghw.monitor.health import HealthConfig, assess

NOW = 1_800_000_000.0
CFG = HealthConfig(interval=10, stall_min_s=30, stall_intervals=3, stall_steps=5, dead_min_s=600,
                   dead_stall_factor=10, grad_high=1e3, grad_low=1e-7, grad_median_factor=20,
                   grad_median_window=10, grad_median_min=3, plateau_epochs=3, plateau_min_delta=1e-3,
                   overfit_epochs=3)


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, timezone.utc).isoformat()


def epochs(train: list[float], val: list[float] | None = None, grads: list[float] | None = None) -> list[dict]:
    out = []
    for i, t in enumerate(train):
        entry = {"epoch": i + 1, "global_step": (i + 1) * 10, "train_loss": t}
        if val is not None:
            entry["val_loss"] = val[i]
        if grads is not None:
            entry["grad_norm"] = grads[i]
        out.append(entry)
    return out


def run(status: str = "running", age: float = 1.0, **extra) -> dict:
    doc = {"status": status, "updated_at": iso(NOW - age), "started_at": iso(NOW - 3600), "epoch": 2,
           "total_epochs": 10, "global_step": 20, "total_steps": 100, "pid": 1234, "host": "trainer-1",
           "latest": {"train_loss": 0.5, "val_loss": 0.6, "step_time": 0.5, "grad_norm": 1.0},
           "history": epochs([1.0, 0.5], [1.1, 0.6], [1.0, 1.0])}
    doc.update(extra)
    return doc


# ---------------------------------------------------------------- states from the stats


@pytest.mark.parametrize("status,level", [("finished", "ok"), ("stopped", "ok"), ("failed", "error"),
                                          ("diverged", "error")])
def test_terminal_states_come_from_the_stats(status, level):
    a = assess(run(status, age=10_000), now=NOW, cfg=CFG)
    assert (a.state, a.level) == (status, level)
    assert a.health == status
    assert a.eta_s is None  # only running runs have an ETA


def test_failed_run_carries_its_error_message():
    a = assess(run("failed", error={"type": "DataError", "message": "no images in /data"}), now=NOW, cfg=CFG)
    assert a.problems == ("failed",) and "no images in /data" in a.message


def test_non_finite_loss_is_diverged_even_if_the_status_lags():
    stats = run(latest={"train_loss": math.nan})
    assert health.is_diverged(stats)
    assert assess(stats, now=NOW, cfg=CFG).health == "diverged"
    assert not health.is_diverged(run())


def test_terminal_runs_get_no_warnings():
    # A finished run whose losses plateaued is finished, not a warning forever after.
    stats = run("finished", age=10_000, history=epochs([1, 1, 1, 1, 1, 1], [1, 1, 1, 1, 1, 1]))
    a = assess(stats, now=NOW, cfg=CFG)
    assert (a.health, a.level, a.problems) == ("finished", "ok", ())


def test_queued_is_queued_not_stalled_however_old():
    a = assess(run("queued", age=100_000, pid=None), now=NOW, cfg=CFG)
    assert (a.state, a.health, a.level) == ("queued", "queued", "ok")


# ---------------------------------------------------------------- stalled


def test_stall_threshold_derives_from_interval_and_step_time():
    assert health.stall_after(run(), CFG) == 30  # stall_min_s wins
    assert health.stall_after(run(), HealthConfig(interval=60)) == 180  # 3 intervals
    slow = run(latest={"step_time": 40.0})
    assert health.stall_after(slow, CFG) == 200  # 5 of its own steps


def test_stalled_when_heartbeat_older_than_threshold():
    assert not health.is_stalled(run(), 29.0, CFG)
    assert health.is_stalled(run(), 31.0, CFG)
    a = assess(run(age=45), now=NOW, cfg=CFG)
    assert a.health == "stalled" and a.level == "error" and "no update for 45 s" in a.message


def test_a_slow_step_is_not_a_stall():
    stats = run(age=120, latest={"step_time": 40.0, "train_loss": 0.5})
    assert assess(stats, now=NOW, cfg=CFG).health == "ok"


def test_stalled_applies_to_running_runs_only():
    for status in ("finished", "failed", "stopped", "queued"):
        assert not health.is_stalled(run(status), 10_000, CFG)


def test_observed_time_beats_a_skewed_trainer_clock():
    # The trainer's clock is an hour behind: by updated_at it looks silent for an hour...
    behind = run(age=3600)
    assert assess(behind, now=NOW, cfg=CFG).health == "dead"
    # ...but the monitor saw the file change 2 s ago on its own clock.
    assert assess(behind, now=NOW, cfg=CFG, observed_at=NOW - 2).health == "ok"
    # An updated_at in the future counts as "just now", not as a negative age.
    ahead = run(age=-3600)
    assert health.heartbeat_age(ahead, NOW) == 0.0


# ---------------------------------------------------------------- dead


def test_dead_when_process_gone():
    a = assess(run(), now=NOW, cfg=CFG, pid_alive=False)
    assert a.health == "dead" and "process 1234 on trainer-1 is gone" in a.message
    assert assess(run(), now=NOW, cfg=CFG, pid_alive=True).health == "ok"
    assert assess(run(), now=NOW, cfg=CFG, pid_alive=None).health == "ok"  # other host: cannot tell


def test_dead_when_silent_for_long():
    assert health.dead_after(run(), CFG) == 600
    assert not health.is_dead(run(), 599, CFG, None)
    assert health.is_dead(run(), 601, CFG, None)
    a = assess(run(age=700), now=NOW, cfg=CFG)
    assert a.problems == ("dead",)  # dead, not also stalled


def test_dead_only_for_running_runs():
    assert not health.is_dead(run("finished"), 10_000, CFG, False)


# ---------------------------------------------------------------- gradients


def test_exploding_gradients_absolute_threshold():
    assert health.exploding_gradients(run(latest={"grad_norm": 5e3}), CFG)
    assert health.exploding_gradients(run(latest={"grad_norm": math.inf}), CFG)
    assert health.exploding_gradients(run(latest={"grad_norm": 5.0}), CFG) is None
    a = assess(run(latest={"grad_norm": 5e3}), now=NOW, cfg=CFG)
    assert a.health == "exploding_gradients" and a.level == "warning"


def test_exploding_gradients_far_above_running_median():
    hist = epochs([1, 0.9, 0.8, 0.7], grads=[2.0, 2.2, 1.8, 2.1])
    assert health.exploding_gradients(run(history=hist, latest={"grad_norm": 100.0}), CFG)
    assert health.exploding_gradients(run(history=hist, latest={"grad_norm": 10.0}), CFG) is None
    # Too little history for a median: only the absolute threshold applies.
    short = epochs([1, 0.9], grads=[2.0, 2.1])
    assert health.exploding_gradients(run(history=short, latest={"grad_norm": 100.0}), CFG) is None


def test_vanishing_gradients_absolute_and_relative():
    assert health.vanishing_gradients(run(latest={"grad_norm": 1e-9}), CFG)
    hist = epochs([1, 0.9, 0.8, 0.7], grads=[2.0, 2.2, 1.8, 2.1])
    assert health.vanishing_gradients(run(history=hist, latest={"grad_norm": 0.01}), CFG)
    assert health.vanishing_gradients(run(history=hist, latest={"grad_norm": 0.5}), CFG) is None
    assert assess(run(latest={"grad_norm": 0.0}), now=NOW, cfg=CFG).health == "vanishing_gradients"


# ---------------------------------------------------------------- plateau and overfitting


def test_plateau_after_n_epochs_without_validation_improvement():
    improving = epochs([1, 0.8, 0.6, 0.5, 0.4], [1, 0.8, 0.6, 0.5, 0.4])
    flat = epochs([1, 0.8, 0.7, 0.7, 0.7], [1, 0.5, 0.5, 0.5001, 0.5])
    assert health.plateau(improving, CFG) is None
    assert health.plateau(flat, CFG)
    assert health.plateau(flat[:3], CFG) is None  # not enough epochs to tell
    a = assess(run(history=flat), now=NOW, cfg=CFG)
    assert a.health == "plateau" and a.level == "warning"


def test_overfitting_when_val_rises_while_train_falls():
    over = epochs([1.0, 0.8, 0.6, 0.4], [1.0, 1.1, 1.2, 1.3])
    both_fall = epochs([1.0, 0.8, 0.6, 0.4], [1.0, 0.9, 0.8, 0.7])
    both_rise = epochs([1.0, 1.1, 1.2, 1.3], [1.0, 1.1, 1.2, 1.3])
    interrupted = epochs([1.0, 0.8, 0.6, 0.4], [1.0, 1.1, 1.05, 1.3])
    assert health.overfitting(over, CFG)
    assert health.overfitting(both_fall, CFG) is None
    assert health.overfitting(both_rise, CFG) is None
    assert health.overfitting(interrupted, CFG) is None
    assert health.overfitting(over[:3], CFG) is None
    a = assess(run(history=over), now=NOW, cfg=CFG)
    assert "overfitting" in a.problems and a.level == "warning"


def test_several_problems_are_all_reported():
    stats = run(age=45, history=epochs([1.0, 0.8, 0.6, 0.4], [1.0, 1.1, 1.2, 1.3]))
    a = assess(stats, now=NOW, cfg=CFG)
    assert a.problems == ("stalled", "plateau", "overfitting")
    assert a.health == "stalled,plateau,overfitting" and a.level == "error"


# ---------------------------------------------------------------- views not written

FAULTS = {"count": 3, "items": [
    {"kind": "histogram", "tag": "Weights/bn.weight", "count": 2, "message": "ValueError: Too many bins"},
    {"kind": "progress", "tag": "on_step_end", "count": 1, "message": "BrokenPipeError: [Errno 32] Broken pipe"}]}


def test_views_not_written_are_a_warning_naming_them():
    a = assess(run(display_faults=FAULTS), now=NOW, cfg=CFG)
    assert (a.state, a.health, a.level, a.problems) == ("running", "display_faults", "warning", ("display_faults",))
    assert a.message == ("3 views not written, training went on: histogram Weights/bn.weight, progress on_step_end "
                         "(first: ValueError: Too many bins)")


def test_views_not_written_stay_a_warning_after_the_run_ended():
    # Unlike a plateau, this does not go away: the finished run's views stay incomplete.
    for status, level in (("finished", "warning"), ("stopped", "warning"), ("failed", "error")):
        a = assess(run(status, age=10_000, display_faults=FAULTS), now=NOW, cfg=CFG)
        assert a.state == status and "display_faults" in a.problems and a.level == level, status
    assert assess(run("queued", display_faults=FAULTS), now=NOW, cfg=CFG).problems == ()


def test_no_views_lost_and_documents_from_before_the_field_are_healthy():
    assert health.display_faults(run(display_faults={"count": 0, "items": []})) is None
    assert health.display_faults(run()) is None  # written before the field existed
    assert health.display_faults(run(display_faults="garbage")) is None
    assert assess(run(display_faults={"count": 0, "items": []}), now=NOW, cfg=CFG).level == "ok"


def test_many_views_not_written_are_summed_up():
    items = [{"kind": "image", "tag": f"T/{i}", "count": 1, "message": "m"} for i in range(5)]
    reason = health.display_faults(run(display_faults={"count": 1, "items": items[:1]}))
    assert reason.startswith("1 view not written")
    reason = health.display_faults(run(display_faults={"count": 9, "items": items}))
    assert reason.startswith("9 views not written") and "image T/2 and 2 more" in reason


# ---------------------------------------------------------------- progress and ETA


def test_progress_and_eta_from_steps():
    a = assess(run(), now=NOW, cfg=CFG)
    assert a.progress == pytest.approx(0.2)
    assert a.eta_s == pytest.approx(80 * 0.5)


def test_eta_from_epoch_durations_without_step_time():
    hist = [{"epoch": 1, "global_step": 10, "epoch_duration": 30.0},
            {"epoch": 2, "global_step": 20, "epoch_duration": 50.0}]
    stats = run(latest={}, history=hist, total_steps=0)
    assert health.progress(stats) == pytest.approx(0.2)
    assert health.eta_seconds(stats) == pytest.approx(8 * 40.0)


# ---------------------------------------------------------------- config


def test_thresholds_come_from_the_environment():
    cfg = HealthConfig.from_env({"MONITOR_INTERVAL": "2", "MONITOR_STALL_MIN_S": "5",
                                 "MONITOR_PLATEAU_EPOCHS": "7"})
    assert (cfg.interval, cfg.stall_min_s, cfg.plateau_epochs) == (2.0, 5.0, 7)
    assert HealthConfig.from_env({"MONITOR_INTERVAL": "2"}, interval=3).interval == 3  # a flag wins
    with pytest.raises(ConfigError, match="MONITOR_STALL_MIN_S='soon'"):
        HealthConfig.from_env({"MONITOR_STALL_MIN_S": "soon"})
    with pytest.raises(ConfigError, match="MONITOR_INTERVAL"):
        HealthConfig.from_env({"MONITOR_INTERVAL": "0"})
