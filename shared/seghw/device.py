"""Device and CPU thread selection. Threads and MKL's code path must be set before Paddle is imported."""

from __future__ import annotations

import os
from pathlib import Path

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


# MKL's internal CPU type for its AVX2 code path (MKL 2019 and older read MKL_DEBUG_CPU_TYPE).
MKL_AVX2 = "5"


def mkl_cpu_type(cpuinfo: str) -> str | None:
    """The MKL_DEBUG_CPU_TYPE that gives this CPU MKL's fast code path, or None to leave MKL's choice.

    The MKL that Paddle bundles (2019.0 Update 5) chooses its code path by CPU vendor, and on AMD CPUs
    runs one without AVX2: on an AMD EPYC, Paddle's 2048² matmul ran 37 GFLOP/s on one thread and
    96 with the AVX2 path, and a cpu-demo training step 1.5× faster (docs/performance.md). Intel CPUs
    get their best path without help: on an Intel Xeon with AVX-512, MKL's own choice ran the matmul
    at 148 GFLOP/s against 99 forced to AVX2, and cpu-demo training 1.14× faster.
    ``cpuinfo`` is the text of /proc/cpuinfo.
    """
    first = _first_core(cpuinfo)
    if first.get("vendor_id") == "AuthenticAMD" and _has_avx2(first):
        return MKL_AVX2
    return None


def runs_mkl_avx2_path(cpuinfo: str) -> bool:
    """Whether this CPU can run MKL's AVX2 path (AVX2 and FMA), so forcing it cannot fault."""
    return _has_avx2(_first_core(cpuinfo))


def _first_core(cpuinfo: str) -> dict[str, str]:
    first: dict[str, str] = {}  # every core repeats the fields; the first core's are enough
    for line in cpuinfo.splitlines():
        key, sep, value = line.partition(":")
        if sep:
            first.setdefault(key.strip(), value.strip())
    return first


def _has_avx2(fields: dict[str, str]) -> bool:
    return {"avx2", "fma"} <= set(fields.get("flags", "").split())


def select_mkl_code_path(cpuinfo: Path = Path("/proc/cpuinfo")) -> str | None:
    """Set MKL_DEBUG_CPU_TYPE for this CPU unless it is set already (even empty: ``MKL_DEBUG_CPU_TYPE=``
    keeps MKL's own choice). Returns the value in effect, None when MKL chooses."""
    if "MKL_DEBUG_CPU_TYPE" in os.environ:
        return os.environ["MKL_DEBUG_CPU_TYPE"] or None
    try:
        value = mkl_cpu_type(cpuinfo.read_text(encoding="utf-8", errors="replace"))
    except OSError:  # not Linux, or no /proc
        return None
    if value is not None:
        os.environ["MKL_DEBUG_CPU_TYPE"] = value
    return value


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
    """Import Paddle with its CPU threads and MKL code path set, and without its import-time chatter
    on stderr.

    Paddle prints a multi-line OMP_NUM_THREADS warning and a ccache note at import, and warns on
    every BatchNorm call in training; none of it is actionable for users of this stack.
    """
    import contextlib
    import io
    import warnings

    set_cpu_threads(threads)
    select_mkl_code_path()
    os.environ.setdefault("GLOG_minloglevel", "2")
    warnings.filterwarnings("ignore", category=UserWarning, module=r"paddle(\..*)?")
    with contextlib.redirect_stderr(io.StringIO()):
        import paddle
    return paddle
