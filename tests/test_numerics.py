"""The pipeline's numeric pins (samaf_lib.numerics): set, in effect in the processes it starts, on every stage."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from samaf_lib import numerics

ROOT = Path(__file__).resolve().parents[1]

# A fixed computation through numpy's vector loops, librosa's MFCCs (OpenBLAS) and a torch LSTM with its backward
# pass (ATen, MKL); its digest under the pins, as an AVX2 machine computes it natively.
GOLDEN = r"""
import hashlib, numpy as np, torch, librosa
torch.set_num_threads(1)
rng = np.random.default_rng(7)
x = rng.standard_normal(16000).astype(np.float32)
h = hashlib.md5()
h.update(np.log1p(np.exp(x)).tobytes()); h.update(np.log10(np.abs(x) + 1e-3).tobytes())
m = librosa.feature.mfcc(y=x, sr=16000, n_mfcc=13, n_fft=512, win_length=400, hop_length=160, n_mels=40)
h.update(m.astype(np.float32).tobytes())
torch.manual_seed(7)
lstm, lin = torch.nn.LSTM(13, 64, batch_first=True), torch.nn.Linear(64, 128)
inp = torch.from_numpy(np.ascontiguousarray(m.T[None, :100]))
z = torch.tanh(lin(lstm(inp)[0]))
z.square().mean().backward()
h.update(z.detach().numpy().tobytes()); h.update(lstm.weight_ih_l0.grad.numpy().tobytes())
print(h.hexdigest())
"""
GOLDEN_MD5 = "f6570ae13578b2a92915eb4d14358de0"


def _cpu_flags() -> set[str]:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return set()
    for line in text.splitlines():
        if line.startswith("flags"):
            return set(line.split(":", 1)[1].split())
    return set()


def _x86_avx2() -> bool:
    return platform.machine() in {"x86_64", "AMD64"} and {"avx2", "fma"} <= _cpu_flags()


def _run_pinned(code: str) -> str:
    env = {k: v for k, v in os.environ.items() if k not in numerics.PINS and k != numerics.SWITCH}
    # a caller's own thread counts are overridden: OpenBLAS on one thread sums a matrix product in another order
    # than on two, and the golden digest is that of two, the count the pins set
    env.update({"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"})
    out = subprocess.run([sys.executable, "-m", "samaf_lib.numerics", sys.executable, "-c", code], env=env,
                         cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip().splitlines()[-1]


def test_pinned_environment_sets_every_switch_and_native_sets_none():
    env = numerics.pinned_environment({"PATH": "/bin", "MKL_CBWR": "AUTO"})
    assert env["PATH"] == "/bin"
    for key, value in numerics.PINS.items():
        assert env[key] == value  # a value already in the environment is overridden
    native = numerics.pinned_environment({"PATH": "/bin", numerics.SWITCH: "native"})
    assert not set(numerics.PINS) & set(native)
    with pytest.raises(ValueError, match="SAMAF_NUMERICS"):
        numerics.pinned_environment({numerics.SWITCH: "fast"})


def test_command_line_errors_name_the_problem():
    bad = subprocess.run([sys.executable, "-m", "samaf_lib.numerics", "no-such-command-here"], cwd=ROOT,
                         capture_output=True, text=True)
    assert bad.returncode == 127 and "no-such-command-here" in bad.stderr
    usage = subprocess.run([sys.executable, "-m", "samaf_lib.numerics"], cwd=ROOT, capture_output=True, text=True)
    assert usage.returncode == 2 and "usage" in usage.stdout


@pytest.mark.skipif(not _x86_avx2(), reason="the pins cap x86-64 machines with AVX2; this CPU has no AVX2")
def test_a_pinned_process_runs_the_avx2_kernels():
    seen = json.loads(_run_pinned("import json; from samaf_lib.numerics import in_effect; "
                                  "print(json.dumps(in_effect()))"))
    assert seen["switches"] == numerics.PINS
    assert seen["torch_cpu_capability"] == "AVX2"
    assert not [t for t in seen["numpy_dispatch"] if t == "X86_V4" or t.startswith("AVX512")]


@pytest.mark.skipif(not _x86_avx2(), reason="the golden digest is that of the AVX2 kernels")
def test_a_pinned_process_computes_the_avx2_bytes():
    """On an AVX-512 machine the same code gives another digest without the pins (21c67238... on the one the
    golden digest was taken on); with them it gives what an AVX2 machine gives."""
    assert _run_pinned(GOLDEN) == GOLDEN_MD5


def test_every_stage_runs_its_notebook_through_the_pins_and_depends_on_them():
    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    assert stages
    for name, stage in stages.items():
        body = stage.get("do", stage)
        cmd = " ".join(body["cmd"]) if isinstance(body["cmd"], list) else body["cmd"]
        assert "papermill" in cmd, name
        assert cmd.count("papermill ") == cmd.count("python -m samaf_lib.numerics papermill "), name
        assert "samaf_lib/numerics.py" in body["deps"], name
