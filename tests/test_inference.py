"""The exported model (Paddle Inference, oneDNN) computes what the training model computes."""

from __future__ import annotations

import numpy as np
import pytest

from seghw.device import import_paddle

paddle = import_paddle()

from seghw.inference import make_predictor  # noqa: E402
from seghw.model import BOUNDED_WINDOW, build_model, paper_estimate, upsample2x  # noqa: E402


@pytest.fixture(scope="module", params=[False, True], ids=["full-resolution stem", "patch stem"])
def scrambled_model(request):
    """Random weights everywhere (a fresh model is the identity, which would hide export errors)."""
    paddle.seed(3)
    model = build_model(8, 2, patch_stem=request.param)
    for p in model.parameters():
        p.set_value(paddle.randn(p.shape) * 0.3)
    return model


def test_upsampling_is_nearest_neighbour():
    x = paddle.rand([2, 3, 5, 7])
    expected = paddle.nn.functional.interpolate(x, scale_factor=2, mode="nearest")
    np.testing.assert_array_equal(upsample2x(x).numpy(), expected.numpy())


def test_paper_estimate_is_a_grey_closing_that_lifts_thin_strokes():
    import cv2

    rng = np.random.default_rng(1)
    page = rng.random((30, 41, 3), dtype=np.float32)
    kernel = np.ones((9, 9), np.uint8)
    expected = cv2.erode(cv2.dilate(page, kernel), kernel)  # borders: the image's own pixels only
    got = paper_estimate(paddle.to_tensor(page.transpose(2, 0, 1)[None]), 9).numpy()[0].transpose(1, 2, 0)
    np.testing.assert_allclose(got, expected, atol=1e-6)
    paper = np.full((1, 3, 40, 40), 0.9, np.float32)
    paper[..., 20:23, 5:35] = 0.1  # a 3-px pen stroke
    paper[..., 0:15, 0:15] = 0.3  # a large dark area (a photo, a filled box) is not paper
    lifted = paper_estimate(paddle.to_tensor(paper), 9).numpy()
    np.testing.assert_allclose(lifted[..., 20:23, 5:35], 0.9)
    np.testing.assert_allclose(lifted[..., 2:13, 2:13], 0.3)


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


def test_bounded_fill_stays_between_the_input_and_the_paper_estimate(scrambled_model):
    rng = np.random.default_rng(2)
    batch = rng.random((2, 3, 32, 32), dtype=np.float32)
    batch[..., 4:20, 4:20] = 0.05  # a large dark area: the paper estimate keeps it, so must the output
    scrambled_model.eval()
    out, pred, _logits = (t.numpy() for t in scrambled_model(paddle.to_tensor(batch)))
    paper = paper_estimate(paddle.to_tensor(batch), BOUNDED_WINDOW).numpy()
    assert scrambled_model.fill == "bounded"
    assert (pred >= batch - 1e-6).all() and (pred <= paper + 1e-6).all()
    assert (out >= batch - 1e-6).all() and (out <= paper + 1e-6).all()
    np.testing.assert_allclose(out[..., 8:16, 8:16], batch[..., 8:16, 8:16], atol=1e-6)
    unbounded = build_model(8, 2, patch_stem=scrambled_model.patch_stem, fill="paper")
    unbounded.set_state_dict(scrambled_model.state_dict())
    unbounded.eval()
    assert np.abs(unbounded(paddle.to_tensor(batch))[1].numpy() - paper).max() > 0.05


def test_context_branch_doubles_the_stride_and_exports():
    paddle.seed(4)
    model = build_model(8, 2, patch_stem=True, context=True)
    for p in model.parameters():
        p.set_value(paddle.randn(p.shape) * 0.3)
    assert model.stride == 8
    batch = np.random.default_rng(1).random((2, 3, 48, 32), dtype=np.float32)
    fast = make_predictor(model, "cpu", engine="fast", threads=1)
    eager = make_predictor(model, "cpu", engine="eager")
    np.testing.assert_allclose(fast(batch)[0], eager(batch)[0], atol=2e-4)
    plain = build_model(8, 2, patch_stem=True)
    assert len(model.state_dict()) > len(plain.state_dict())
