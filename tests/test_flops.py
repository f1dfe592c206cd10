"""The analytic FLOP count against a hand calculation and against the real Paddle model's layers."""

from __future__ import annotations

import pytest

from seghw.errors import ConfigError
from seghw.flops import PEAK_ENV, conv_flops, machine_peak_gflops, model_flops, run_peak_gflops, train_step_flops


def test_tiny_model_by_hand():
    # build_model(4, 1): widths [4, 8]; decoders: image at width 4, mask at max(4, 4 // 2) = 4.
    hw16, hw8 = 16 * 16, 8 * 8
    by_hand = [
        2 * 9 * 3 * 4 * hw16,  # stem conv 3 -> 4
        2 * 9 * 4 * 4 * hw16,  # stem conv 4 -> 4
        2 * 9 * 4 * 8 * hw8,  # down: stride-2 conv 4 -> 8, 8x8 output
        2 * 9 * 8 * 8 * hw8,  # down: conv 8 -> 8
        2 * 9 * (8 + 4) * 4 * hw16,  # image decoder: upsampled 8 + skip 4 -> 4
        2 * 9 * 4 * 4 * hw16,  # image decoder: conv 4 -> 4
        2 * 1 * 4 * 3 * hw16,  # image head 1x1, 4 -> 3
        2 * 9 * (8 + 4) * 4 * hw16,  # mask decoder: same shapes as the image decoder
        2 * 9 * 4 * 4 * hw16,
        2 * 1 * 4 * 1 * hw16,  # mask head 1x1, 4 -> 1
    ]
    assert sum(by_hand) == 837_632
    assert model_flops(4, 1, 16) == 837_632
    assert model_flops(4, 1, (16, 16)) == 837_632
    assert train_step_flops(4, 1, 16) == 3 * 837_632


def test_tiny_patch_stem_model_by_hand():
    # build_model(4, 2, patch_stem=True): the levels below full resolution, widths [8, 16] at 8x8 and
    # 4x4; decoders: image at width 8, mask at 4; heads predict 2x2 patches (4 values per channel).
    hw8, hw4 = 8 * 8, 4 * 4
    by_hand = [
        2 * 4 * 3 * 8 * hw8,  # stem: 2x2 stride-2 conv 3 -> 8
        2 * 9 * 8 * 8 * hw8,  # stem conv 8 -> 8
        2 * 9 * 8 * 16 * hw4,  # down: stride-2 conv 8 -> 16, 4x4 output
        2 * 9 * 16 * 16 * hw4,  # down: conv 16 -> 16
        2 * 9 * (16 + 8) * 8 * hw8,  # image decoder: upsampled 16 + skip 8 -> 8
        2 * 9 * 8 * 8 * hw8,
        2 * 1 * 8 * 12 * hw8,  # image head 1x1, 8 -> 3 x 4
        2 * 9 * (16 + 8) * 4 * hw8,  # mask decoder at half width
        2 * 9 * 4 * 4 * hw8,
        2 * 1 * 4 * 4 * hw8,  # mask head 1x1, 4 -> 1 x 4
    ]
    assert model_flops(4, 2, 16, patch_stem=True) == sum(by_hand) == 634_880
    assert train_step_flops(4, 2, 16, patch_stem=True) == 3 * sum(by_hand)


def test_scaling_and_bad_sizes():
    assert conv_flops(3, 2, 5, 7, 11) == 2 * 9 * 2 * 5 * 7 * 11
    # Every layer's cost is proportional to the pixel count.
    assert model_flops(12, 3, 128) == 4 * model_flops(12, 3, 64)
    assert model_flops(12, 3, (64, 128)) == 2 * model_flops(12, 3, 64)
    with pytest.raises(ValueError, match="multiple of the model stride 8"):
        model_flops(12, 3, 60)


def _measured_conv_flops(model, height: int, width: int) -> tuple[int, int]:
    """FLOPs of every Conv2D from the shapes it really sees in a forward pass, and their count."""
    import paddle

    seen: list[int] = []

    def hook(layer, inputs, output):
        cin = int(inputs[0].shape[1])
        assert cin == layer._in_channels
        kh, kw = layer._kernel_size
        n, cout, oh, ow = (int(v) for v in output.shape)
        seen.append(2 * kh * kw * (cin // layer._groups) * cout * oh * ow)

    handles = [layer.register_forward_post_hook(hook) for layer in model.sublayers()
               if isinstance(layer, paddle.nn.Conv2D)]
    model.eval()
    with paddle.no_grad():
        model(paddle.rand([1, 3, height, width]))
    for h in handles:
        h.remove()
    return sum(seen), len(handles)


@pytest.mark.parametrize(("base", "depth", "height", "width", "patch_stem", "context"), [
    (4, 1, 16, 16, False, False), (12, 3, 64, 48, False, False), (8, 2, 32, 32, False, False),
    (4, 1, 16, 16, True, False), (16, 3, 64, 48, True, False), (8, 2, 32, 24, True, False),
    (4, 1, 16, 16, False, True), (16, 3, 64, 48, True, True),
])
def test_matches_the_real_model(base, depth, height, width, patch_stem, context):
    from seghw.device import import_paddle

    import_paddle()
    from seghw.model import build_model

    model = build_model(base, depth, patch_stem, context=context)
    measured, convs = _measured_conv_flops(model, height, width)
    # stem 2 + 2 per down stage + per decoder (2 per stage + head); the patch stem is the first stage;
    # the context branch 2
    stages = depth - 1 if patch_stem else depth
    assert convs == 2 + 2 * stages + 2 * (2 * stages + 1) + 2 * context
    assert model_flops(base, depth, (height, width), patch_stem, context) == measured


def test_the_context_branch_doubles_the_stride_the_size_must_meet():
    assert model_flops(4, 1, 4) > 0
    with pytest.raises(ValueError, match="stride 4 .*context branch"):
        model_flops(4, 1, 6, context=True)


def test_machine_peak_is_a_rate():
    gflops = machine_peak_gflops(n=256, repeats=2)
    assert 0.1 < gflops < 1e5
    with pytest.raises(ValueError):
        machine_peak_gflops(n=0)


def test_a_given_ceiling_is_used_and_a_bad_one_is_named(monkeypatch):
    monkeypatch.setenv(PEAK_ENV, "140.5")
    assert run_peak_gflops() == 140.5
    for bad in ("fast", "0", "-3", "nan"):
        monkeypatch.setenv(PEAK_ENV, bad)
        with pytest.raises(ConfigError, match=f"invalid {PEAK_ENV}='{bad}'"):
            run_peak_gflops()
