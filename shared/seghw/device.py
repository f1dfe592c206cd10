"""Device and CPU thread selection. Threads must be set before Paddle is imported."""

from __future__ import annotations

import os

from seghw.errors import ConfigError


def set_cpu_threads(threads: int | None) -> int:
    """``import paddle`` pins OMP_NUM_THREADS to 1 when unset; default to every core instead."""
    n = threads or int(os.environ.get("SEGHW_THREADS", 0)) or (os.cpu_count() or 1)
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[var] = str(n)
    return n


def select_device(requested: str) -> str:
    import paddle

    has_gpu = paddle.device.is_compiled_with_cuda() and paddle.device.cuda.device_count() > 0
    if requested == "gpu" and not has_gpu:
        raise ConfigError("invalid config value device='gpu': no CUDA GPU is visible to Paddle "
                          "(use --device cpu or --device auto)")
    device = "gpu:0" if has_gpu and requested in ("gpu", "auto") else "cpu"
    paddle.set_device(device)
    return device


def import_paddle(threads: int | None = None):
    """Import Paddle with all CPU cores and without its import-time chatter on stderr.

    Paddle prints a multi-line OMP_NUM_THREADS warning and a ccache note at import, and warns on
    every BatchNorm call in training; none of it is actionable for users of this stack.
    """
    import contextlib
    import io
    import warnings

    set_cpu_threads(threads)
    os.environ.setdefault("GLOG_minloglevel", "2")
    warnings.filterwarnings("ignore", category=UserWarning, module=r"paddle(\..*)?")
    with contextlib.redirect_stderr(io.StringIO()):
        import paddle
    return paddle
