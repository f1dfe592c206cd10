"""Model quality: cpu-demo trained for a fixed wall-clock budget, then scored on held-out pages."""

from __future__ import annotations

import contextlib
import io
import time
from typing import Any

from ..core import Bench, Goal, Option, Row, verdict
from ..training import demo_config

NAME = "quality"
OPTIONS = (
    Option("quality_minutes", float, 10.0, 1.0, "cpu-demo training time for quality"),
    Option("quality_synthetic", int, 2048, 64, "synthetic pairs for the quality run"),
    Option("quality_epoch_steps", int, 230, 4, "steps per epoch of the quality run"),
)
HELD_OUT_SEED, HELD_OUT_COUNT, HELD_OUT_SIZE = 999, 12, 256
GAIN_OVER_IDENTITY = Goal("≥ 10 dB", lambda v: v >= 10.0)
GAIN_OVER_CLASSICAL = Goal("> 0 dB", lambda v: v > 0.0)


def measure(b: Bench) -> dict[str, Any]:
    """Train the cpu-demo preset for a fixed wall-clock budget, then evaluate it on a held-out synthetic
    set of another seed against the identity and the classical baseline (``seghw eval``'s table)."""
    import paddle

    from seghw import paths
    from seghw.data.dataset import val_count
    from seghw.data.synth import write_dataset
    from seghw.evaluate import evaluate_dataset
    from seghw.train.callbacks import Callback
    from seghw.train.loop import fit
    from seghw.train.runner import observers as make_observers
    from seghw.train.runner import prepare

    a = b.args
    budget = a.quality_minutes * 60
    # Epochs are capped at a number of steps (a fresh shuffle each) so that a larger --quality-synthetic
    # still gives the learning curve a point every ~35 s; with the default 2048 pairs an epoch is 230 steps.
    overrides = dict(synthetic=a.quality_synthetic, max_steps_per_epoch=a.quality_epoch_steps)
    probe = demo_config(False, b.tmp / "quality", **overrides)
    # Epochs sized so the schedule (warm-up, cosine decay) ends near the budget at ~55 img/s, the
    # cpu-demo rate on one thread here, validation included; the budget stops the run if it is slower.
    train_pairs = a.quality_synthetic - val_count(a.quality_synthetic, probe.val_fraction)
    steps = min(a.quality_epoch_steps, train_pairs // probe.batch_size)
    epochs = max(2, round(budget * 55 / (steps * probe.batch_size)))
    cfg = demo_config(True, b.tmp / "quality", epochs=epochs, **overrides)
    curve: list[tuple[float, float]] = []
    t0 = time.perf_counter()

    class Curve(Callback):
        def on_epoch_end(self, state, result):
            if result.quality.get("psnr") is not None:
                curve.append(((time.perf_counter() - t0) / 60, result.quality["psnr"]))

    b.say(f"quality: cpu-demo, {a.quality_synthetic} synthetic pairs, {epochs} epochs of {steps} steps or "
          f"{a.quality_minutes:g} min")
    run_dir = paths.new_run_dir(b.tmp / "quality")
    with contextlib.redirect_stdout(io.StringIO()):
        state, train_batches, val_batches = prepare(cfg, run_dir)
        callbacks = make_observers(state, cfg)
        callbacks.callbacks.append(Curve())
        t0 = time.perf_counter()
        fit(state, train_batches, val_batches, callbacks, lambda: time.perf_counter() - t0 > budget)
    minutes = (time.perf_counter() - t0) / 60
    held_out = write_dataset(b.tmp / "held_out", HELD_OUT_COUNT, HELD_OUT_SIZE, HELD_OUT_SEED, progress=False)
    model = state.model
    model.eval()

    @paddle.no_grad()
    def predict(batch):
        out, _pred, mask_logits = model(paddle.to_tensor(batch))
        return out.numpy(), paddle.nn.functional.sigmoid(mask_logits).numpy()

    rows = evaluate_dataset(held_out, predict, window=HELD_OUT_SIZE, multiple=2**cfg.depth)
    by = {r["method"].split(" ")[0]: r for r in rows}
    q = {"rows": rows, "curve": curve, "minutes": minutes, "epochs_done": state.epoch,
         "pairs": a.quality_synthetic, "epoch_steps": steps, "val_images": state.data_info["val_images"],
         "epochs": epochs, "images": state.global_step * cfg.batch_size,
         "gain_identity": by["model"]["psnr"] - by["identity"]["psnr"],
         "gain_classical": by["model"]["psnr"] - by["classical"]["psnr"]}
    b.say(f"  model {by['model']['psnr']:.2f} dB, identity {by['identity']['psnr']:.2f} dB, classical "
          f"{by['classical']['psnr']:.2f} dB after {minutes:.1f} min ({state.epoch} epochs); "
          f"gain over identity {q['gain_identity']:+.2f} dB")
    return q


def summary(b: Bench, q: dict[str, Any]) -> list[Row]:
    return [Row(f"cpu-demo after {q['minutes']:.0f} min, PSNR gain over identity (held-out seed)",
                f"{q['gain_identity']:+.2f} dB", GAIN_OVER_IDENTITY, q["gain_identity"]),
            Row("same, PSNR gain over the classical baseline", f"{q['gain_classical']:+.2f} dB", GAIN_OVER_CLASSICAL,
                q["gain_classical"])]


def render(b: Bench, q: dict[str, Any]) -> list[str]:
    fmt = lambda v, spec: "n/a" if v is None else format(v, spec)  # noqa: E731
    lines = ["", "## 7. Model quality", "",
             f"The `cpu-demo` preset trained for {q['minutes']:.1f} min of wall time on {q['pairs']:,} synthetic "
             f"pairs ({q['val_images']} of them held back for the validation curve; {q['epochs_done']} of "
             f"{q['epochs']} epochs of {q['epoch_steps']} steps, {q['images']:,} images, every observer on), then "
             "evaluated on "
             f"{HELD_OUT_COUNT} held-out synthetic {HELD_OUT_SIZE}-px pages of another seed ({HELD_OUT_SEED}) "
             "that it never trained on, as `seghw eval` does:", "",
             "| method | PSNR dB | SSIM | MS-SSIM | score | s/image |", "|---|---|---|---|---|---|"]
    for r in q["rows"]:
        lines.append(f"| {r['method']} | {fmt(r['psnr'], '.2f')} | {fmt(r['ssim'], '.4f')} | "
                     f"{fmt(r['ms_ssim'], '.4f')} | {fmt(r['score'], '.4f')} | {fmt(r['seconds_per_image'], '.3f')} |")
    lines += ["", f"Gain over identity: {q['gain_identity']:+.2f} dB (goal {GAIN_OVER_IDENTITY.text}: "
              f"{verdict(GAIN_OVER_IDENTITY, q['gain_identity'])}); over the classical baseline: "
              f"{q['gain_classical']:+.2f} dB ({verdict(GAIN_OVER_CLASSICAL, q['gain_classical'])}).", "",
              "Learning curve (validation PSNR on the training seed's held-out crops, against wall-clock minutes):",
              "", "| minutes | val PSNR dB |", "|---|---|"]
    n = len(q["curve"])
    for i in sorted(set(range(0, n, max(1, n // 20))) | ({n - 1} if n else set())):  # about 20 rows
        minute, psnr = q["curve"][i]
        lines.append(f"| {minute:.1f} | {psnr:.2f} |")
    lines += ["", f"Reproduce: `{b.command(NAME)}`."]
    return lines
