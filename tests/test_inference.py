"""The exported model (Paddle Inference, oneDNN) computes what the training model computes."""

from __future__ import annotations

import numpy as np
import pytest

from seghw.device import import_paddle

paddle = import_paddle()

from seghw.inference import make_predictor  # noqa: E402
from seghw.model import build_model, upsample2x  # noqa: E402


@pytest.fixture(scope="module")
def scrambled_model():
    """Random weights everywhere (a fresh model is the identity, which would hide export errors)."""
    paddle.seed(3)
    model = build_model(8, 2)
    for p in model.parameters():
        p.set_value(paddle.randn(p.shape) * 0.3)
    return model


def test_upsampling_is_nearest_neighbour():
    x = paddle.rand([2, 3, 5, 7])
    expected = paddle.nn.functional.interpolate(x, scale_factor=2, mode="nearest")
    np.testing.assert_array_equal(upsample2x(x).numpy(), expected.numpy())


@pytest.mark.parametrize("shape", [(1, 3, 32, 32), (3, 3, 48, 40)])
def test_fast_engine_matches_eager(scrambled_model, shape):
    batch = np.random.default_rng(0).random(shape, dtype=np.float32)
    fast = make_predictor(scrambled_model, "cpu", engine="fast", threads=1)
    eager = make_predictor(scrambled_model, "cpu", engine="eager")
    (fast_clean, fast_mask), (eager_clean, eager_mask) = fast(batch), eager(batch)
    assert fast_clean.shape == shape and fast_mask.shape == (shape[0], 1) + shape[2:]
    np.testing.assert_allclose(fast_clean, eager_clean, atol=2e-4)
    np.testing.assert_allclose(fast_mask, eager_mask, atol=2e-4)
    assert np.abs(eager_clean - batch).mean() > 0.01  # the scrambled model does change the page
    assert 0.05 < eager_mask.mean() < 0.95


def test_export_leaves_the_model_in_its_mode(scrambled_model):
    scrambled_model.train()
    make_predictor(scrambled_model, "cpu", engine="fast", threads=1)
    assert scrambled_model.training
