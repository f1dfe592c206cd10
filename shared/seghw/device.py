"""Device and CPU thread selection. Threads must be set before Paddle is imported."""

from __future__ import annotations

import os

from seghw.errors import ConfigError


def set_cpu_threads(threads: int | None) -> int:
    """Set the CPU thread count before Paddle is imported (``--threads``, else ``SEGHW_THREADS``, else 1).

    One thread is the default: on two cores the eager cpu-demo training step ran 25.5 img/s with one
    OpenMP thread and 11.5 img/s with two (Paddle 3.3); with the static graph two threads gained
    ~14 % once running and lost it in start-up over short runs (docs/BENCHMARKS.md, ``make bench``).
    Larger models on more cores may gain from ``--threads N``.
    """
    n = threads or int(os.environ.get("SEGHW_THREADS", 0)) or 1
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(n)
    # numpy's OpenBLAS falls back to OMP_NUM_THREADS; it computes metrics and the FLOP ceiling,
    # which must stay the whole machine's.
    os.environ.setdefault("OPENBLAS_NUM_THREADS", str(os.cpu_count() or 1))
    return n


def select_device(requested: str) -> str:
    import paddle

    has_gpu = paddle.device.is_compiled_with_cuda() and paddle.device.cuda.device_count() > 0
    if requested == "gpu" and not has_gpu:
        raise ConfigError("invalid config value device='gpu': no CUDA GPU is visible to Paddle "
                          "(use --device cpu or --device auto)")
    if has_gpu and requested in ("gpu", "auto"):
        # "gpu" is the card Paddle's launcher gave this process (FLAGS_selected_gpus), else card 0.
        paddle.set_device("gpu")
        return paddle.get_device()
    paddle.set_device("cpu")
    return "cpu"


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
