"""Arithmetic cost of the model, counted from its architecture, and the machine's matmul ceiling.

``paddle.flops`` fails on numpy 2, and a count from the layer list is exact anyway: every
convolution costs ``2 * k * k * cin * cout * H_out * W_out`` FLOPs (one multiply and one add per
weight and output pixel). Batch norm, ReLU, upsampling, the paper estimate's pooling, the sigmoid
and the compositing are left out: together they are a few percent of the convolutions. A training
step costs about three forward passes (forward, then gradients with respect to activations and to
weights).
"""

from __future__ import annotations

import os
import time

TRAIN_STEP_FACTOR = 3


def conv_flops(kernel: int, cin: int, cout: int, height: int, width: int) -> int:
    """FLOPs of one Conv2D (groups = 1) producing a ``height`` x ``width`` output."""
    return 2 * kernel * kernel * cin * cout * height * width


def _hw(image_size: int | tuple[int, int]) -> tuple[int, int]:
    if isinstance(image_size, int):
        return image_size, image_size
    h, w = image_size
    return int(h), int(w)


def model_flops(base_channels: int, depth: int, image_size: int | tuple[int, int], patch_stem: bool = False,
                context: bool = False) -> int:
    """Forward FLOPs of ``seghw.model.build_model(base_channels, depth, patch_stem, context=context)``
    for one image.

    ``image_size`` is a side or ``(height, width)``, each a multiple of the model's stride
    (``2 ** depth``, twice that with the context branch). The layer plan mirrors ``EraseNetLite``: a
    two-conv stem, ``depth`` downsampling stages (a stride-2 conv, then a conv), the context branch's
    two convs, and two decoders (image at full width, mask at half width, at least 4 channels) whose
    stages concatenate the upsampled input with the encoder's skip, followed by a 1x1 head.
    With ``patch_stem`` the full-resolution level is gone: a 2x2 stride-2 conv and a conv at half
    resolution stand for the stem and the first stage, and the heads predict 2x2 patches.
    """
    h, w = _hw(image_size)
    stride = 2 ** (depth + context)
    if h % stride or w % stride:
        raise ValueError(f"image size {h}x{w} is not a multiple of the model stride {stride} (depth {depth}"
                         f"{', context branch' if context else ''})")
    widths = [base_channels * 2**i for i in range(depth + 1)]
    top = 1 if patch_stem else 0  # the level the stem's output is at
    patch_pixels = 4 if patch_stem else 1

    def at(level: int) -> tuple[int, int]:
        return h // 2**level, w // 2**level

    if patch_stem:
        total = conv_flops(2, 3, widths[1], *at(1)) + conv_flops(3, widths[1], widths[1], *at(1))
    else:
        total = conv_flops(3, 3, widths[0], *at(0)) + conv_flops(3, widths[0], widths[0], *at(0))
    for i in range(top, depth):
        total += conv_flops(3, widths[i], widths[i + 1], *at(i + 1))
        total += conv_flops(3, widths[i + 1], widths[i + 1], *at(i + 1))
    if context:  # two convolutions at half the bottleneck's resolution
        total += 2 * conv_flops(3, widths[-1], widths[-1], *at(depth + 1))
    for out_channels, scale in ((3, 1.0), (1, 0.5)):
        dec = [max(4, int(wd * scale)) for wd in widths]
        cin = widths[-1]
        for level in range(depth - 1, top - 1, -1):
            total += conv_flops(3, cin + widths[level], dec[level], *at(level))
            total += conv_flops(3, dec[level], dec[level], *at(level))
            cin = dec[level]
        total += conv_flops(1, cin, out_channels * patch_pixels, *at(top))
    return total


def train_step_flops(base_channels: int, depth: int, image_size: int | tuple[int, int],
                     patch_stem: bool = False, context: bool = False) -> int:
    """Approximate FLOPs of one training step per image (forward and backward)."""
    return TRAIN_STEP_FACTOR * model_flops(base_channels, depth, image_size, patch_stem, context)


PEAK_ENV = "SEGHW_PEAK_GFLOPS"


def run_peak_gflops(repeats: int = 2) -> float:
    """The ceiling a run's utilization is divided by: ``SEGHW_PEAK_GFLOPS`` when set, else measured now.

    A data-parallel launcher measures it once before its processes start and hands it to them:
    measured inside one of them, the others would be competing for the cores and halve it.
    """
    given = os.environ.get(PEAK_ENV)
    if not given:
        return machine_peak_gflops(repeats=repeats)
    try:
        value = float(given)
    except ValueError:
        value = float("nan")
    if not value > 0:
        from seghw.errors import ConfigError

        raise ConfigError(f"invalid {PEAK_ENV}={given!r}: give the machine's float32 ceiling in GFLOP/s, e.g. 140")
    return value


def machine_peak_gflops(n: int = 2048, repeats: int = 3) -> float:
    """The machine's practical float32 ceiling: numpy's ``n`` x ``n`` matmul rate, best of ``repeats``.

    numpy's BLAS uses every core it is allowed (``OPENBLAS_NUM_THREADS`` at numpy's import).
    """
    import numpy as np

    if n < 1 or repeats < 1:
        raise ValueError(f"n and repeats must be >= 1 (got n={n}, repeats={repeats})")
    rng = np.random.default_rng(0)
    a = rng.standard_normal((n, n), dtype=np.float32)
    b = rng.standard_normal((n, n), dtype=np.float32)
    a @ b  # thread pool start-up and page faults stay out of the timing
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - t0)
    return 2.0 * n**3 / max(best, 1e-12) / 1e9
