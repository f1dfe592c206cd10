"""CPU set-up before Paddle is imported: MKL's code path by CPU vendor."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from seghw.device import MKL_AVX2, mkl_cpu_type, runs_mkl_avx2_path, select_mkl_code_path

ZEN = "processor\t: 0\nvendor_id\t: AuthenticAMD\nflags\t\t: fpu sse2 avx fma avx2 avx512f\n\nprocessor\t: 1\n"
OLD_AMD = "vendor_id\t: AuthenticAMD\nflags\t\t: fpu sse2 sse4_2 avx\n"
INTEL = "vendor_id\t: GenuineIntel\nflags\t\t: fpu sse2 avx fma avx2 avx512f\n"


@pytest.mark.parametrize(("cpuinfo", "expected"), [
    (ZEN, MKL_AVX2),           # AMD with AVX2: MKL would otherwise run a path without it
    (OLD_AMD, None),           # no AVX2: forcing that path would crash
    (INTEL, None),             # MKL picks Intel's best path itself
    ("", None),
    ("vendor_id : AuthenticAMD\n", None),  # no flags line: nothing is known
])
def test_mkl_code_path_by_cpu(cpuinfo, expected):
    assert mkl_cpu_type(cpuinfo) == expected


@pytest.mark.parametrize(("cpuinfo", "expected"), [(ZEN, True), (INTEL, True), (OLD_AMD, False), ("", False)])
def test_the_avx2_path_can_be_forced_only_where_the_cpu_has_avx2(cpuinfo, expected):
    assert runs_mkl_avx2_path(cpuinfo) is expected


def test_a_value_the_user_set_wins_even_empty(tmp_path, monkeypatch):
    info = tmp_path / "cpuinfo"
    info.write_text(ZEN)
    monkeypatch.delenv("MKL_DEBUG_CPU_TYPE", raising=False)
    assert select_mkl_code_path(info) == MKL_AVX2
    assert os.environ["MKL_DEBUG_CPU_TYPE"] == MKL_AVX2
    monkeypatch.setenv("MKL_DEBUG_CPU_TYPE", "")
    assert select_mkl_code_path(info) is None
    assert os.environ["MKL_DEBUG_CPU_TYPE"] == ""
    monkeypatch.delenv("MKL_DEBUG_CPU_TYPE")
    assert select_mkl_code_path(tmp_path / "missing") is None
    assert "MKL_DEBUG_CPU_TYPE" not in os.environ


_CONV = """
import json, os, sys
import numpy as np
from seghw.device import import_paddle
paddle = import_paddle()
rng = np.random.default_rng(0)
x = paddle.to_tensor(rng.standard_normal((4, 16, 24, 24)).astype("float32"), stop_gradient=False)
w = paddle.to_tensor(rng.standard_normal((24, 16, 3, 3)).astype("float32"), stop_gradient=False)
y = paddle.nn.functional.conv2d(x, w, padding=1)
(y * y).mean().backward()
a = rng.standard_normal((300, 200)).astype("float32")
m = paddle.matmul(paddle.to_tensor(a), paddle.to_tensor(a.T))
np.savez(sys.argv[1], y=y.numpy(), dx=x.grad.numpy(), dw=w.grad.numpy(), m=m.numpy())
print(json.dumps(os.environ.get("MKL_DEBUG_CPU_TYPE")))
"""


def _conv_in_subprocess(out: Path, env_value: str | None):
    env = dict(os.environ)
    env.pop("MKL_DEBUG_CPU_TYPE", None)
    if env_value is not None:
        env["MKL_DEBUG_CPU_TYPE"] = env_value
    done = subprocess.run([sys.executable, "-c", _CONV, str(out)], env=env, capture_output=True, text=True,
                          check=True)
    return json.loads(done.stdout.strip().splitlines()[-1]), np.load(out)


def test_paddle_runs_the_chosen_path_with_the_numbers_of_mkls_own(tmp_path):
    chosen, fast = _conv_in_subprocess(tmp_path / "chosen.npz", None)
    expected = mkl_cpu_type(Path("/proc/cpuinfo").read_text()) if Path("/proc/cpuinfo").exists() else None
    assert chosen == expected
    own, default = _conv_in_subprocess(tmp_path / "own.npz", "")
    assert own == ""
    for key in ("y", "dx", "dw", "m"):
        scale = np.abs(default[key]).max()
        np.testing.assert_allclose(fast[key], default[key], rtol=0, atol=1e-5 * scale, err_msg=key)
