"""Model quality: a preset (cpu-demo) trained for a fixed wall-clock budget, then scored as ``seghw
eval`` scores, on held-out synthetic pages and on the real-source set (print-only pages: is the print
kept; written pages: is the handwriting removed and the print around it kept), with a learning curve
on the real pages too."""

from __future__ import annotations

import contextlib
import io
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from ..core import DOC, ROOT, Bench, Goal, Option, Row, pct, verdict

NAME = "quality"
OPTIONS = (
    Option("quality_minutes", float, 10.0, 1.0, "training time of the quality run"),
    Option("quality_synthetic", int, 2048, 64, "synthetic pairs for the quality run"),
    Option("quality_epoch_steps", int, 230, 4, "steps per epoch of the quality run"),
    Option("quality_preset", str, "cpu-demo", "cpu-demo", "preset of the quality run"),
    Option("quality_rate", float, 55.0, 55.0, "img/s the quality run's epochs are sized for (the preset's rate)"),
    Option("quality_epochs", int, None, None, "train this many epochs with no time limit, for a machine shared "
           "with other work (default: as many as --quality-minutes at --quality-rate)"),
    Option("quality_curve_every", int, 3, 1, "epochs between the learning curve's points on the real set"),
    Option("realset", str, "build/realset", "build/realset",
           "the real-source set, built if missing (a relative path is taken from the checkout)"),
    Option("quality_config", str, None, None, "a config file (JSON) of settings over the preset's, for variants"),
    Option("real_picture", Path, None, None, "also write the real pages' picture here (make bench: docs/images)"),
    Option("quality_keep", Path, None, None, "copy the quality run's folder (checkpoints, records) here"),
)
NOT_REPRODUCED = ("real_picture", "quality_keep", "quality_config")  # the config file is named when given
REPRODUCE = tuple(o.name for o in OPTIONS if o.name not in NOT_REPRODUCED)
HELD_OUT_SEED, HELD_OUT_COUNT, HELD_OUT_SIZE = 999, 12, 256
REAL_WINDOW = 512
# The learning curve measures the real set every few epochs on its first pages (the clock stops meanwhile).
CURVE_PRINT, CURVE_WRITTEN = 8, 12
GAIN_OVER_IDENTITY = Goal("≥ 10 dB", lambda v: v >= 10.0)
GAIN_OVER_CLASSICAL = Goal("> 0 dB", lambda v: v > 0.0)
REAL_GOALS = {
    "real_print_kept": Goal("≥ 99 %", lambda v: v >= 0.99),
    "real_print_psnr": Goal("≥ 35 dB", lambda v: v >= 35.0),
    "real_hw_removed": Goal("≥ 90 %", lambda v: v >= 0.90),
    "real_written_print_kept": Goal("≥ 98 %", lambda v: v >= 0.98),
    "real_gain_identity": Goal("≥ 6 dB", lambda v: v >= 6.0),
    "real_gain_classical": Goal("≥ 6 dB", lambda v: v >= 6.0),
}


def ensure_realset(path: Path) -> Path:
    """The real-source set, built by ``scripts/build_realset.py`` when it is missing."""
    if not (path / "realset.json").exists():
        subprocess.run([sys.executable, str(ROOT / "scripts" / "build_realset.py"), "--out", str(path)], check=True)
    return path


def subset(data: Path, out: Path, count: int) -> Path:
    """The first ``count`` pairs of ``data`` as a dataset folder of links (for the learning curve)."""
    from seghw.data.dataset import scan_pairs

    for pair in scan_pairs(data)[:count]:
        for sub, src in (("images", pair.image), ("gts", pair.gt), ("masks", pair.mask)):
            if src is not None:
                (out / sub).mkdir(parents=True, exist_ok=True)
                (out / sub / src.name).symlink_to(src)
    return out


def real_figures(print_rows: list[dict], written_rows: list[dict]) -> dict[str, float | None]:
    pm = {r["method"].split(" ")[0]: r for r in print_rows}
    wm = {r["method"].split(" ")[0]: r for r in written_rows}
    return {"real_print_kept": pm["model"]["print_kept"], "real_print_psnr": pm["model"]["psnr_input"],
            "real_hw_removed": wm["model"]["hw_removed"], "real_written_print_kept": wm["model"]["print_kept"],
            "real_gain_identity": wm["model"]["psnr"] - wm["identity"]["psnr"],
            "real_gain_classical": wm["model"]["psnr"] - wm["classical"]["psnr"]}


def real_picture(predict, realset: Path, out: Path, multiple: int,
                 names: tuple[str, ...] = ("print_003", "written_001")) -> Path:
    """input | output | mask rows of real pages, for BENCHMARKS.md."""
    from functools import partial

    import numpy as np
    from PIL import Image

    from seghw.evaluate import read_rgb
    from seghw.page_scale import predict_page
    from seghw.tiling import tile_predict

    tile = partial(tile_predict, predict=predict, window=REAL_WINDOW, overlap=REAL_WINDOW // 8, multiple=multiple)

    rows = []
    for name in names:
        folder = realset / ("print" if name.startswith("print") else "written")
        image = read_rgb(folder / "images" / f"{name}.png")
        clean, mask = predict_page(image, tile)  # as `seghw infer` runs it
        gap = np.full((image.shape[0], 6, 3), 255, np.uint8)
        rows.append(np.concatenate([image, gap, clean, gap, np.repeat(mask[..., None], 3, axis=2)], axis=1))
        rows.append(np.full((6, rows[-1].shape[1], 3), 255, np.uint8))
    Image.fromarray(np.concatenate(rows[:-1], axis=0)).save(out, optimize=True)
    return out


def predictor(model):
    import paddle

    @paddle.no_grad()
    def predict(batch):
        out, _pred, mask_logits = model(paddle.to_tensor(batch))
        return out.numpy(), paddle.nn.functional.sigmoid(mask_logits).numpy()

    return predict


def measure(b: Bench) -> dict[str, Any]:
    from seghw import paths
    from seghw.config import build_config
    from seghw.data.dataset import val_count
    from seghw.data.synth import write_dataset
    from seghw.evaluate import evaluate_dataset
    from seghw.train.loop import fit
    from seghw.train.observers.base import Observer
    from seghw.train.runner import observers as make_observers
    from seghw.train.runner import prepare

    a = b.args
    budget = a.quality_minutes * 60
    realset = ensure_realset(ROOT / a.realset)
    curve_sets = {k: subset(realset / k, b.tmp / "curve" / k, n)
                  for k, n in (("print", CURVE_PRINT), ("written", CURVE_WRITTEN))}
    # Epochs are capped at a number of steps (a fresh shuffle each) so that a larger --quality-synthetic
    # still gives the learning curve a point every ~35 s; with the default 2048 pairs an epoch is 230 steps.
    overrides = dict(synthetic=a.quality_synthetic, max_steps_per_epoch=a.quality_epoch_steps)

    def config(**more):
        return build_config(a.quality_preset, config_file=a.quality_config, log_root=str(b.tmp / "quality"),
                            **overrides, **more)

    probe = config(observers=False)
    # Epochs sized so the schedule (warm-up, cosine decay) ends near the budget at the preset's rate on
    # one thread here (validation included); the budget stops the run if it is slower.
    train_pairs = a.quality_synthetic - val_count(a.quality_synthetic, probe.val_fraction)
    steps = min(a.quality_epoch_steps, train_pairs // probe.batch_size)
    if a.quality_epochs:
        epochs, budget = a.quality_epochs, float("inf")
    else:
        epochs = max(2, round(budget * a.quality_rate / (steps * probe.batch_size)))
    cfg = config(observers=True, epochs=epochs)
    curve: list[dict] = []
    clock = {"t0": time.perf_counter(), "paused": 0.0}

    def elapsed() -> float:
        return time.perf_counter() - clock["t0"] - clock["paused"]

    class Curve(Observer):
        def on_epoch_end(self, state, result):
            if result.quality.get("psnr") is None:
                return
            point = {"minutes": elapsed() / 60, "val_psnr": result.quality["psnr"]}
            if state.epoch % a.quality_curve_every == 0 or state.epoch == epochs:
                t = time.perf_counter()
                model = state.model
                model.eval()
                try:
                    rows = {k: evaluate_dataset(v, predictor(model), window=REAL_WINDOW, multiple=cfg.stride)
                            for k, v in curve_sets.items()}
                finally:
                    model.train()
                point.update(real_figures(rows["print"], rows["written"]))
                clock["paused"] += time.perf_counter() - t
            curve.append(point)

    limit = "" if a.quality_epochs else f" or {a.quality_minutes:g} min"
    b.say(f"quality: {a.quality_preset}, {a.quality_synthetic} synthetic pairs, {epochs} epochs of {steps} steps"
          f"{limit}")
    run_dir = paths.new_run_dir(b.tmp / "quality")
    with contextlib.redirect_stdout(io.StringIO()):
        state, train_batches, val_batches = prepare(cfg, run_dir)
        observers = make_observers(state, cfg)
        observers.observers.append(Curve())
        clock["t0"] = time.perf_counter()
        fit(state, train_batches, val_batches, observers, lambda: elapsed() > budget)
    minutes = elapsed() / 60
    held_out = write_dataset(b.tmp / "held_out", HELD_OUT_COUNT, HELD_OUT_SIZE, HELD_OUT_SEED, progress=False)
    model = state.model
    model.eval()
    predict = predictor(model)
    rows = evaluate_dataset(held_out, predict, window=HELD_OUT_SIZE, multiple=cfg.stride)
    real_rows = {k: evaluate_dataset(realset / k, predict, window=REAL_WINDOW, multiple=cfg.stride)
                 for k in ("print", "written")}
    picture = real_picture(predict, realset, b.tmp / "real_pages.png", cfg.stride)
    by = {r["method"].split(" ")[0]: r for r in rows}
    q = {"rows": rows, "real_rows": real_rows, "curve": curve, "minutes": minutes,
         "epochs_done": state.epoch, "pairs": a.quality_synthetic, "epoch_steps": steps,
         "val_images": state.data_info["val_images"], "preset": a.quality_preset,
         "epochs": epochs, "images": state.global_step * cfg.batch_size,
         "gain_identity": by["model"]["psnr"] - by["identity"]["psnr"],
         "gain_classical": by["model"]["psnr"] - by["classical"]["psnr"],
         **real_figures(real_rows["print"], real_rows["written"])}
    b.say(f"  synthetic: model {by['model']['psnr']:.2f} dB, identity {by['identity']['psnr']:.2f} dB, classical "
          f"{by['classical']['psnr']:.2f} dB after {minutes:.1f} min ({state.epoch} epochs); "
          f"gain over identity {q['gain_identity']:+.2f} dB")
    b.say(f"  real: print-only pages {pct(q['real_print_kept'])} of the print kept, {q['real_print_psnr']:.2f} dB vs "
          f"input; written pages {pct(q['real_hw_removed'])} of the handwriting removed, "
          f"{pct(q['real_written_print_kept'])} of the print kept, {q['real_gain_identity']:+.2f} dB over identity, "
          f"{q['real_gain_classical']:+.2f} dB over the classical baseline")
    if a.quality_keep:
        shutil.copytree(run_dir, a.quality_keep, dirs_exist_ok=True)
        b.say(f"  kept the run in {a.quality_keep}")
    target = a.real_picture or (DOC.parent / "images" / "real_pages.png" if getattr(a, "writes_doc", False) else None)
    if target:
        shutil.copyfile(picture, target)
        b.say(f"  wrote {target}")
    return q


def summary(b: Bench, q: dict[str, Any]) -> list[Row]:
    m = f"{q['preset']} after {q['minutes']:.0f} min"
    real = REAL_GOALS
    return [
        Row(f"{m}, PSNR gain over identity (synthetic, held-out seed)", f"{q['gain_identity']:+.2f} dB",
            GAIN_OVER_IDENTITY, q["gain_identity"]),
        Row("same, PSNR gain over the classical baseline", f"{q['gain_classical']:+.2f} dB", GAIN_OVER_CLASSICAL,
            q["gain_classical"]),
        Row(f"{m}, real print-only pages: printed ink kept", pct(q["real_print_kept"]), real["real_print_kept"],
            q["real_print_kept"]),
        Row("same, PSNR(output, input)", f"{q['real_print_psnr']:.2f} dB", real["real_print_psnr"],
            q["real_print_psnr"]),
        Row(f"{m}, real written pages: handwriting ink removed", pct(q["real_hw_removed"]), real["real_hw_removed"],
            q["real_hw_removed"]),
        Row("same pages: printed ink kept", pct(q["real_written_print_kept"]), real["real_written_print_kept"],
            q["real_written_print_kept"]),
        Row("same pages (real strokes over real print, exact truth): PSNR gain over identity",
            f"{q['real_gain_identity']:+.2f} dB", real["real_gain_identity"], q["real_gain_identity"]),
        Row("same, PSNR gain over the classical baseline", f"{q['real_gain_classical']:+.2f} dB",
            real["real_gain_classical"], q["real_gain_classical"]),
    ]


def by_source_table(by: dict[str, dict[str, float]]) -> list[str]:
    """Handwriting removed per source (rows) and ink (columns), pooled by pixels, from a row's
    ``hw_removed_by`` (keys "SOURCE in INK")."""
    cells: dict[tuple[str, str], list[float]] = {}
    for key, c in by.items():
        src, _, ink = key.partition(" in ")
        for k in ((src, ink), (src, "all"), ("all", ink), ("all", "all")):
            got = cells.setdefault(k, [0.0, 0.0])
            got[0] += c["pixels"]
            got[1] += c["removed"] * c["pixels"]
    sources = sorted({k[0] for k in cells} - {"all"}) + ["all"]
    inks = [i for i in ("black", "blue", "red", "pencil") if (("all", i) in cells)] + ["all"]
    lines = ["| source | " + " | ".join(inks) + " |", "|---|" + "---|" * len(inks)]
    for src in sources:
        row = []
        for ink in inks:
            c = cells.get((src, ink))
            row.append(f"{pct(c[1] / c[0])} ({c[0]:,.0f})" if c and c[0] else "")
        lines.append(f"| {src} | " + " | ".join(row) + " |")
    return lines


def error_table(rows: list[dict]) -> list[str]:
    """Where each method's squared error sits (``error_shares`` of ``seghw.metrics.error_regions``)."""
    lines = ["| method | strokes missed (mask < 0.5) | strokes found, not painted back | beside strokes (2 px) "
             "| away from strokes (print, paper) |", "|---|---|---|---|---|"]
    for r in rows:
        e = r.get("error_shares") or {}
        shares = " | ".join(pct(e.get(k)) for k in ("missed", "unpainted", "beside", "away"))
        lines.append(f"| {r['method']} | {shares} |")
    return lines


def quality_table(rows: list[dict]) -> list[str]:
    fmt = lambda v, spec: "n/a" if v is None else format(v, spec)  # noqa: E731
    lines = ["| method | PSNR dB | SSIM | MS-SSIM | score | PSNR vs input | print kept | colour print kept "
             "| handwriting removed | s/image |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['method']} | {fmt(r['psnr'], '.2f')} | {fmt(r['ssim'], '.4f')} | "
                     f"{fmt(r['ms_ssim'], '.4f')} | {fmt(r['score'], '.4f')} | {fmt(r.get('psnr_input'), '.2f')} | "
                     f"{pct(r.get('print_kept'))} | {pct(r.get('colour_kept'))} | {pct(r.get('hw_removed'))} | "
                     f"{fmt(r['seconds_per_image'], '.3f')} |")
    return lines


def render(b: Bench, q: dict[str, Any]) -> list[str]:
    lines = ["", "## 7. Model quality", "",
             f"The `{q['preset']}` preset trained for {q['minutes']:.1f} min of wall time on {q['pairs']:,} synthetic "
             f"pairs ({q['val_images']} of them held back for the validation curve; {q['epochs_done']} of "
             f"{q['epochs']} epochs of {q['epoch_steps']} steps, {q['images']:,} images, every observer on), then "
             "evaluated as `seghw eval` does. Print kept: the share of the truth's printed-ink pixels whose output "
             "keeps at least half their darkness; colour print kept: the share of the truth's saturated pixels "
             "(photographs, charts, stamps; most of them lighter than print ink) whose output stays within 24 "
             "levels of the truth in every channel; handwriting removed: the share of the handwriting's ink pixels "
             "whose output is nearer the truth than half the input's difference (`seghw.metrics.ink_counts`).", "",
             f"**Synthetic**: {HELD_OUT_COUNT} held-out {HELD_OUT_SIZE}-px pages of another seed ({HELD_OUT_SEED}) "
             "that it never trained on:", ""]
    lines += quality_table(q["rows"])
    lines += ["", f"Gain over identity: {q['gain_identity']:+.2f} dB (goal {GAIN_OVER_IDENTITY.text}: "
              f"{verdict(GAIN_OVER_IDENTITY, q['gain_identity'])}); over the classical baseline: "
              f"{q['gain_classical']:+.2f} dB ({verdict(GAIN_OVER_CLASSICAL, q['gain_classical'])}).", "",
              "**Real print-only pages** (`build/realset/print`, [data.md](data.md): PDF manuals rendered at "
              "100–300 dpi, a photographed book page, printed photographs, white-on-black bands; the truth is "
              "the input, so PSNR vs the truth is the \"no harm\" figure):", ""]
    lines += quality_table(q["real_rows"]["print"])
    lines += ["", "**Real written pages** (`build/realset/written`: real handwriting — MNIST digits, LASA pen "
              "trajectories, strokes of scikit-image's `text.png`, a face traced from a real hand — over the same "
              "kind of real print, the truth exact):", ""]
    lines += quality_table(q["real_rows"]["written"])
    model_row = next((r for r in q["real_rows"]["written"] if r["method"].startswith("model")), {})
    if model_row.get("hw_removed_by"):
        lines += ["", "The model's handwriting removed on the written pages by source and ink (share of the "
                  "handwriting's ink pixels, their number in brackets):", ""]
        lines += by_source_table(model_row["hw_removed_by"])
    if model_row.get("hw_over_print") is not None:
        lines += ["", f"{pct(model_row['hw_over_print'])} of the handwriting's ink pixels lie over print (the truth "
                  "there is printed ink, so removing them means putting the print back): the model removed "
                  f"{pct(model_row.get('hw_removed_over_print'))} of those and "
                  f"{pct(model_row.get('hw_removed_over_paper'))} of the strokes over paper."]
    lines += ["", "Where the squared error of the written pages sits (`seghw.metrics.error_regions`; the predicted "
              "mask of the identity is empty):", ""]
    lines += error_table(q["real_rows"]["written"])
    lines += ["", "![real pages: input | output | mask](images/real_pages.png)", "",
              "A print-only page with a printed photograph and a written page (input | output | mask).", "",
              "Learning curve (validation PSNR on the training seed's held-out crops; every "
              f"{b.args.quality_curve_every} epochs also the first {CURVE_PRINT} print-only and {CURVE_WRITTEN} "
              "written real pages, with the clock stopped while they are measured):", "",
              "| minutes | val PSNR dB | real print kept | real print PSNR vs input | real handwriting removed | "
              "print kept beside it | gain over identity (written) |", "|---|---|---|---|---|---|---|"]
    for point in q["curve"]:
        if "real_print_kept" not in point:
            continue
        lines.append(f"| {point['minutes']:.1f} | {point['val_psnr']:.2f} | {pct(point['real_print_kept'])} | "
                     f"{point['real_print_psnr']:.2f} dB | {pct(point['real_hw_removed'])} | "
                     f"{pct(point['real_written_print_kept'])} | {point['real_gain_identity']:+.2f} dB |")
    variant = f" --quality-config {b.args.quality_config}" if b.args.quality_config else ""
    lines += ["", f"Reproduce: `{b.command(NAME)}{variant}` (the real set is built first if `{b.args.realset}` "
              "has none: `scripts/build_realset.py`)."]
    return lines
