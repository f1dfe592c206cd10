"""The GPU estimate's arithmetic on plain inputs against hand-computed numbers, and docs/gpu.md
against what the script prints for its defaults."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("gpu_estimate", REPO / "scripts" / "gpu_estimate.py")
ge = sys.modules["gpu_estimate"] = importlib.util.module_from_spec(_spec)  # dataclasses look their module up
_spec.loader.exec_module(ge)

GiB = 2**30
# A made-up model measured at 64 px: 250,000 kept elements (concat + conv + ReLU), the image, 100,000
# BatchNorm outputs and a largest tensor of 20,000 elements; one million parameters.
CENSUS = ge.Census(size=64, input=3 * 64 * 64, concat=50_000, conv=100_000, bn=100_000, relu=100_000, largest=20_000,
                   largest_kind="concat", largest_channels=12, largest_side=64)
ARGS = ["--base-channels", "4", "--depth", "1", "--image-size", "128", "--batch-size", "2", "--gpu-memory-gb", "1",
        "--gpu-tflops", "10", "--gpu-bandwidth", "100", "--efficiency", "0.5", "--efficiency-range", "0.25", "1",
        "--bandwidth-efficiency", "0.5", "--overhead-gb", "0.5", "--pairs", "11", "--epochs", "4", "--cards", "1", "2",
        "--interconnect-gbs", "1", "--probe-size", "32"]


def made_up(*extra: str, alloc: dict[str, int] | None = None) -> ge.Estimate:
    return ge.estimate(ge.parse_args([*ARGS, *extra]), ge.Probe(params=1_000_000, census=CENSUS, alloc_small=alloc,
                                                                alloc=alloc))


def test_memory_by_hand():
    e = made_up()
    assert e.scale == 4  # 128² / 64²
    assert e.tail_fp32 == 20 * 4 * 64 * 64  # no allocator figures: 20 fp32 planes at the probe size
    # AMP, 2 bytes per element, x4 pixels: kept (2·250,000 + the fp16 image 2·12,288), BatchNorm 2·100,000,
    # the fp32 tail, image + gt + mask 7 planes of 4 bytes at 128², working 2 · 2 · 20,000.
    assert (e.amp.kept, e.amp.bn, e.amp.tail, e.amp.batch, e.amp.working) == (
        2_098_304, 800_000, 1_310_720, 458_752, 320_000)
    assert (e.amp.upper, e.amp.lower) == (4_987_776, 4_187_776)
    # fp32: 4 bytes per element and no fp16 image.
    assert (e.f32.kept, e.f32.bn, e.f32.working) == (4_000_000, 1_600_000, 640_000)
    assert (e.f32.upper, e.f32.lower) == (8_009_472, 6_409_472)
    # Fixed: 16 bytes per parameter + 0.5 GiB; AMP adds a 2-byte copy of every weight.
    assert e.static_f32 == 16_000_000 + GiB / 2
    assert e.static_amp == 18_000_000 + GiB / 2
    assert e.need_amp == 554_870_912 + 2 * 4_987_776
    assert e.need_f32 == 552_870_912 + 2 * 8_009_472
    # (1 GiB − fixed) // per image, upper bound and without BatchNorm outputs.
    assert e.max_batch_amp == (104, 123)
    assert e.max_batch_f32 == (65, 81)
    assert e.largest_side == 128


def test_speed_by_hand():
    e = made_up()
    assert e.forward_flops == 64 * 837_632  # test_flops' 16-px figure for build_model(4, 1), at 128 px
    assert e.train_flops == 3 * e.forward_flops
    assert (e.n_val, e.n_train) == (1, 10)
    # Element-wise bytes per image: x4 (13 passes · 2 B · conv + 8 · 2 B · concat + 3 · the fp32 tail).
    assert e.traffic == 17_532_160
    assert e.optimizer_traffic == 50_000_000
    (card,) = e.speeds
    assert card.name == "custom card" and (card.tflops16, card.tflops32, card.bandwidth) == (10, 10, 100)
    # 2 · 160,825,344 FLOP at 10 TFLOP/s · 0.5, plus (2 · traffic + optimizer) bytes at 100 GB/s · 0.5.
    assert card.step_seconds == pytest.approx(6.43301376e-5 + 1.7012864e-3)
    assert card.rate == pytest.approx(1132.7488)
    assert (card.rate_low, card.rate_high) == (pytest.approx(1092.9280), pytest.approx(1153.7675))
    assert card.epoch_seconds == pytest.approx(5 * card.step_seconds)  # 10 training images, batch 2
    assert card.total_hours == pytest.approx(4 * card.epoch_seconds / 3600)
    one, two = e.scaling
    assert (one.cards, one.global_batch, one.steps_per_epoch, one.allreduce_bytes) == (1, 2, 5, 0)
    assert one.rates == (pytest.approx(card.rate),)
    # Two cards: a ring sends 2·(2−1)/2 of the 4 MB of fp32 gradients, 4 ms at 1 GB/s, not overlapped.
    assert (two.cards, two.global_batch, two.steps_per_epoch, two.allreduce_bytes) == (2, 4, 2, 4_000_000)
    assert two.rates == (pytest.approx(4 / (card.step_seconds + 4e-3)),)


def test_fp32_speed_uses_4_byte_activations():
    e = made_up("--no-amp")
    assert e.traffic == 4 * (13 * 4 * 100_000 + 8 * 4 * 50_000 + 3 * 20 * 4 * 64 * 64)
    assert e.speeds[0].step_seconds > made_up().speeds[0].step_seconds


def test_allocator_figures_set_the_tail_and_the_cross_check():
    held = 4 * 250_000 + 40_000  # 40,000 bytes beyond the hooked kept tensors
    e = made_up(alloc={"forward": 900_000, "held": held, "peak": 2_000_000})
    assert e.tail_fp32 == 40_000
    assert e.amp.tail == 160_000
    # fp32 at the probe size, without the batch tensors, plus the parameters' gradients.
    assert e.cross_check_peak == 4 * 250_000 + 4 * 100_000 + 40_000 + 2 * 4 * 20_000 + 4 * 1_000_000
    text = ge.render(e)
    assert "Cross-check on CPU" in text and "held after forward + loss 1.0 MiB at 32 px" in text
    assert "Cross-check" not in ge.render(made_up())


def test_render_shapes():
    text = ge.render(made_up())
    assert text.startswith("## Estimate: 128×128 crops, batch 2 per card, base_channels 4, depth 1, "
                           "float16 autocast (AMP)\n")
    lines = text.splitlines()
    assert "| largest batch that fits (upper bound; without BatchNorm outputs) | **104** (123) | 65 (81) |" in lines
    assert "| custom card | 10 | 10 | 100 | **1133** | 1093–1154 | 0.00 | 0 | 0.0 |" in lines
    assert "| 2 | 4 | 2 | 4 | 694 |" in lines
    assert "## Estimate: 128×128 crops, batch 2 per card, base_channels 4, depth 1, float32 (AMP off)" in ge.render(
        made_up("--no-amp"))


def test_docs_carry_what_the_script_prints_for_its_defaults():
    """docs/gpu.md's figures: regenerate them with `.venv/bin/python scripts/gpu_estimate.py`."""
    doc = (REPO / "docs" / "gpu.md").read_text(encoding="utf-8")
    start, end = doc.index("## Estimate: "), doc.index("## Assumptions")
    args = ge.parse_args([])
    assert ge.render(ge.estimate(args, ge.probe(args))) == doc[start:end].rstrip("\n") + "\n"
