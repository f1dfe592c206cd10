"""Health rules: pure functions of a training_stats document, the time and thresholds.

No I/O here: the caller measures the heartbeat age and whether the trainer's process still
exists, so each rule can be checked on plain dicts."""

from __future__ import annotations

import dataclasses
import math
import os
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from seghw.errors import ConfigError
from seghw.stats import FINAL_STATUSES

# Health words that are errors (the rest of the problems are warnings).
ERRORS = ("failed", "diverged", "stalled", "dead")


@dataclass(frozen=True)
class HealthConfig:
    """Thresholds. Each field can be set from the environment as ``MONITOR_<FIELD>`` (upper case)."""

    interval: float = 10.0  # seconds between two collects
    stall_min_s: float = 30.0  # a running run never counts as stalled sooner than this
    stall_intervals: float = 3.0  # ... nor sooner than this many collect intervals
    stall_steps: float = 5.0  # ... nor sooner than this many of its own optimizer steps
    dead_min_s: float = 600.0  # no update for this long (and 10x the stall limit): dead
    dead_stall_factor: float = 10.0
    grad_high: float = 1e3  # gradient norm above: exploding
    grad_low: float = 1e-7  # gradient norm below: vanishing
    grad_median_factor: float = 20.0  # or this many times away from its own running median
    grad_median_window: int = 10  # epochs in that median
    grad_median_min: int = 3  # fewer epochs than this: no median comparison yet
    plateau_epochs: int = 5  # no validation improvement for this many epochs: plateau
    plateau_min_delta: float = 1e-3  # relative improvement that counts
    overfit_epochs: int = 3  # validation loss up and training loss down this many epochs in a row

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: Any) -> HealthConfig:
        env = os.environ if env is None else env
        values: dict[str, Any] = {}
        for field in dataclasses.fields(cls):
            name = f"MONITOR_{field.name.upper()}"
            raw = env.get(name)
            if raw is None or raw == "":
                continue
            kind = int if field.type in ("int", int) else float
            try:
                value = kind(raw)
            except ValueError:
                raise ConfigError(f"{name}={raw!r} is not a valid {kind.__name__}") from None
            if not math.isfinite(value) or value < 0:
                raise ConfigError(f"{name}={raw!r} must be a finite number >= 0")
            values[field.name] = value
        values.update({k: v for k, v in overrides.items() if v is not None})
        if values.get("interval", cls.interval) <= 0:
            raise ConfigError(f"the monitor interval (--interval, MONITOR_INTERVAL) must be > 0, "
                              f"got {values.get('interval')}")
        return cls(**values)


@dataclass(frozen=True)
class Assessment:
    state: str  # the run's status as its stats say
    health: str  # ok, queued, finished, stopped, or the problems joined by ","
    level: str  # ok | warning | error
    problems: tuple[str, ...]
    message: str
    age_s: float | None  # seconds since the run's last update
    stall_after_s: float
    progress: float | None  # 0..1
    eta_s: float | None


def parse_time(value: Any) -> float | None:
    """ISO 8601 (with offset, or ``Z``) to a POSIX timestamp; None if absent or unreadable."""
    if not isinstance(value, str) or not value:
        return None
    text = value[:-1] + "+00:00" if value.endswith(("Z", "z")) else value
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    if parsed.tzinfo is None:  # a naive time would be read in the monitor's zone: treat as UTC
        parsed = parsed.replace(tzinfo=timezone.utc)
    return parsed.timestamp()


def number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


def latest(stats: Mapping[str, Any], key: str) -> float | None:
    metrics = stats.get("latest")
    return number(metrics.get(key)) if isinstance(metrics, Mapping) else None


def history(stats: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    hist = stats.get("history")
    return [h for h in hist if isinstance(h, Mapping)] if isinstance(hist, list) else []


def series(hist: Sequence[Mapping[str, Any]], key: str) -> list[float]:
    return [v for v in (number(h.get(key)) for h in hist) if v is not None]


def heartbeat_age(stats: Mapping[str, Any], now: float, observed_at: float | None = None) -> float | None:
    """Seconds since the run's last update.

    ``observed_at`` is when the monitor itself last saw the stats change (its own clock), so a
    trainer whose clock is skewed neither looks stalled nor hides a stall. Without it, the
    trainer's ``updated_at``; a time in the future counts as now."""
    if observed_at is not None:
        return max(0.0, now - observed_at)
    ts = parse_time(stats.get("updated_at"))
    return None if ts is None else max(0.0, now - ts)


def stall_after(stats: Mapping[str, Any], cfg: HealthConfig) -> float:
    """Heartbeat age beyond which a running run is stalled: scales with the collect interval and
    with the run's own step time (a slow step is not a stall)."""
    step_time = latest(stats, "step_time") or 0.0
    return max(cfg.stall_min_s, cfg.stall_intervals * cfg.interval, cfg.stall_steps * step_time)


def dead_after(stats: Mapping[str, Any], cfg: HealthConfig) -> float:
    return max(cfg.dead_min_s, cfg.dead_stall_factor * stall_after(stats, cfg))


def is_diverged(stats: Mapping[str, Any]) -> bool:
    if stats.get("status") == "diverged":
        return True
    loss = latest(stats, "train_loss")
    return loss is not None and not math.isfinite(loss)


def is_stalled(stats: Mapping[str, Any], age: float | None, cfg: HealthConfig) -> bool:
    return stats.get("status") == "running" and age is not None and age > stall_after(stats, cfg)


def is_dead(stats: Mapping[str, Any], age: float | None, cfg: HealthConfig, pid_alive: bool | None) -> bool:
    """Running by its stats, but its process is gone (when the monitor can tell), or silent for long."""
    if stats.get("status") != "running":
        return False
    return pid_alive is False or (age is not None and age > dead_after(stats, cfg))


def _grad_median(stats: Mapping[str, Any], cfg: HealthConfig) -> float | None:
    norms = [g for g in series(history(stats), "grad_norm") if math.isfinite(g)]
    norms = norms[-cfg.grad_median_window :]
    return statistics.median(norms) if len(norms) >= max(1, cfg.grad_median_min) else None


def exploding_gradients(stats: Mapping[str, Any], cfg: HealthConfig) -> str | None:
    """A reason if the latest gradient norm is too large (absolute or against its own median)."""
    g = latest(stats, "grad_norm")
    if g is None:
        return None
    if not math.isfinite(g) or g > cfg.grad_high:
        return f"gradient norm {g:.3g} above {cfg.grad_high:g}"
    median = _grad_median(stats, cfg)
    if median and median > 0 and g > cfg.grad_median_factor * median:
        return f"gradient norm {g:.3g} is {g / median:.0f}x its running median {median:.3g}"
    return None


def vanishing_gradients(stats: Mapping[str, Any], cfg: HealthConfig) -> str | None:
    g = latest(stats, "grad_norm")
    if g is None or not math.isfinite(g):
        return None
    if g < cfg.grad_low:
        return f"gradient norm {g:.3g} below {cfg.grad_low:g}"
    median = _grad_median(stats, cfg)
    if median and g * cfg.grad_median_factor < median:
        return f"gradient norm {g:.3g} is 1/{median / max(g, 1e-300):.0f} of its running median {median:.3g}"
    return None


def plateau(hist: Sequence[Mapping[str, Any]], cfg: HealthConfig) -> str | None:
    """No validation improvement (relative ``plateau_min_delta``) in the last N epochs."""
    n = cfg.plateau_epochs
    vals = [v for v in series(hist, "val_loss") if math.isfinite(v)]
    if n < 1 or len(vals) <= n:
        return None
    best_before, best_recent = min(vals[:-n]), min(vals[-n:])
    if best_recent < best_before - cfg.plateau_min_delta * abs(best_before):
        return None
    return f"validation loss has not improved for {n} epochs (best {best_before:.4g})"


def overfitting(hist: Sequence[Mapping[str, Any]], cfg: HealthConfig) -> str | None:
    """Validation loss rose while training loss fell, N epochs in a row."""
    n = cfg.overfit_epochs
    pairs = [
        (t, v)
        for t, v in ((number(h.get("train_loss")), number(h.get("val_loss"))) for h in hist)
        if t is not None and v is not None
    ]
    if n < 1 or len(pairs) <= n:
        return None
    recent = pairs[-(n + 1) :]
    for (t0, v0), (t1, v1) in zip(recent, recent[1:], strict=False):
        if not (v1 > v0 and t1 < t0):
            return None
    return f"validation loss rose for {n} epochs while training loss fell"


def display_faults(stats: Mapping[str, Any]) -> str | None:
    """A reason if views of the run (VisualDL scalars, images, histograms, graph, text, hparams,
    progress output) could not be written; training went on without them."""
    faults = stats.get("display_faults")
    count = number(faults.get("count")) if isinstance(faults, Mapping) else None
    if not count or count <= 0:
        return None
    items = [i for i in faults.get("items") or [] if isinstance(i, Mapping)]
    named = ", ".join(f"{i.get('kind')} {i.get('tag')}" for i in items[:3])
    if len(items) > 3:
        named += f" and {len(items) - 3} more"
    first = f" (first: {items[0].get('message')})" if items and items[0].get("message") else ""
    views = "view" if count == 1 else "views"
    return f"{count:.0f} {views} not written, training went on: {named or 'see display_faults in the stats'}{first}"


def progress(stats: Mapping[str, Any]) -> float | None:
    step, total = number(stats.get("global_step")), number(stats.get("total_steps"))
    if step is not None and total:
        return min(1.0, step / total)
    epoch, epochs = number(stats.get("epoch")), number(stats.get("total_epochs"))
    if epoch is not None and epochs:
        return min(1.0, epoch / epochs)
    return None


def eta_seconds(stats: Mapping[str, Any]) -> float | None:
    """Time left for a running run: remaining steps at its step time, else remaining epochs at the
    mean of its recent epoch durations."""
    if stats.get("status") != "running":
        return None
    step, total = number(stats.get("global_step")), number(stats.get("total_steps"))
    step_time = latest(stats, "step_time")
    if step is not None and total and step_time:
        return max(0.0, (total - step) * step_time)
    durations = series(history(stats), "epoch_duration")[-3:]
    epoch, epochs = number(stats.get("epoch")), number(stats.get("total_epochs"))
    if durations and epoch is not None and epochs:
        return max(0.0, (epochs - epoch) * statistics.fmean(durations))
    return None


def _fmt_age(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.0f} min"


def assess(
    stats: Mapping[str, Any],
    *,
    now: float,
    cfg: HealthConfig,
    observed_at: float | None = None,
    pid_alive: bool | None = None,
) -> Assessment:
    """Every rule applied to one run. Terminal and queued runs get no warnings about their numbers,
    which no longer move; views that were never written (``display_faults``) stay a warning."""
    state = str(stats.get("status") or "unknown")
    age = heartbeat_age(stats, now, observed_at)
    limit = stall_after(stats, cfg)
    problems: list[str] = []
    reasons: list[str] = []

    if is_diverged(stats):
        err = stats.get("error")
        problems.append("diverged")
        reasons.append(err["message"] if isinstance(err, Mapping) and err.get("message") else "loss is not finite")
    elif state == "failed":
        err = stats.get("error")
        problems.append("failed")
        if isinstance(err, Mapping):
            reasons.append(f"{err.get('type') or 'error'}: {err.get('message') or ''}".strip(": "))
    elif state == "running":
        if is_dead(stats, age, cfg, pid_alive):
            problems.append("dead")
            if pid_alive is False:
                reasons.append(f"process {stats.get('pid')} on {stats.get('host')} is gone")
            else:
                reasons.append(f"no update for {_fmt_age(age or 0)}")
        elif is_stalled(stats, age, cfg):
            problems.append("stalled")
            reasons.append(f"no update for {_fmt_age(age or 0)} (limit {_fmt_age(limit)})")
        hist = history(stats)
        for name, reason in (
            ("exploding_gradients", exploding_gradients(stats, cfg)),
            ("vanishing_gradients", vanishing_gradients(stats, cfg)),
            ("plateau", plateau(hist, cfg)),
            ("overfitting", overfitting(hist, cfg)),
        ):
            if reason:
                problems.append(name)
                reasons.append(reason)
    if state != "queued":
        # The one warning that outlives the run: its views stay incomplete once it has ended.
        reason = display_faults(stats)
        if reason:
            problems.append("display_faults")
            reasons.append(reason)

    if problems:
        health = ",".join(problems)
        level = "error" if any(p in ERRORS for p in problems) else "warning"
    else:
        health = state if state in ("queued", *FINAL_STATUSES) else "ok"
        level = "ok" if state in ("queued", "running", "finished", "stopped") else "warning"
        if state not in ("queued", "running", *FINAL_STATUSES):
            reasons.append(f"unknown status {state!r}")
    return Assessment(
        state=state,
        health=health,
        level=level,
        problems=tuple(problems),
        message="; ".join(r for r in reasons if r),
        age_s=age,
        stall_after_s=limit,
        progress=progress(stats),
        eta_s=eta_seconds(stats),
    )
