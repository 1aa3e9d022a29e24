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

from samaf_lib import numerics, numerics_check

ROOT = Path(__file__).resolve().parents[1]

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
    # a caller's own thread counts are overridden by the pins' (OpenBLAS on one thread sums a product in another
    # order than on two)
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


def test_the_pinned_probe_ignores_the_callers_thread_counts_and_load():
    """Two pinned processes, one started with one thread per library and one with seven while another process keeps
    a core busy, compute the same digests: the pins fix the thread counts, and load changes nothing. Without the
    pins one thread gives other MFCC bytes than two (OpenBLAS splits its products by thread)."""
    one = {k: v for k, v in os.environ.items() if k not in numerics.PINS and k != numerics.SWITCH}
    one.update({"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"})
    seven = {**one, "OMP_NUM_THREADS": "7", "OPENBLAS_NUM_THREADS": "7", "MKL_NUM_THREADS": "7"}
    quiet = numerics_check.probe(one)
    busy = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        loaded = numerics_check.probe(seven)
    finally:
        busy.kill()
        busy.wait()
    assert set(quiet) == set(numerics_check.COMMITTED)
    assert quiet == loaded


def test_the_check_reports_every_part_and_its_exit_status_follows():
    out = subprocess.run([sys.executable, "-m", "samaf_lib.numerics_check"], cwd=ROOT, capture_output=True,
                         text=True, timeout=300)
    assert out.returncode in (0, 1), out.stderr
    lines = out.stdout.splitlines()
    marks = {line.split()[0]: ("DIFFERS" not in line) for line in lines[:len(numerics_check.COMMITTED)]}
    assert set(marks) == set(numerics_check.COMMITTED)
    assert out.returncode == (0 if all(marks.values()) else 1)
    assert numerics_check.compare(numerics_check.COMMITTED) == dict.fromkeys(numerics_check.COMMITTED, True)
    assert not all(numerics_check.compare({**numerics_check.COMMITTED, "torch": "0" * 32}).values())
    bad = subprocess.run([sys.executable, "-m", "samaf_lib.numerics_check"], cwd=ROOT, capture_output=True,
                         text=True, env={**os.environ, numerics.SWITCH: "fast"})
    assert bad.returncode == 2 and "SAMAF_NUMERICS" in bad.stderr


def test_every_stage_runs_its_notebook_through_the_pins_and_depends_on_them():
    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    assert stages
    for name, stage in stages.items():
        body = stage.get("do", stage)
        cmd = " ".join(body["cmd"]) if isinstance(body["cmd"], list) else body["cmd"]
        assert "papermill" in cmd, name
        assert cmd.count("papermill ") == cmd.count("python -m samaf_lib.numerics papermill "), name
        assert "samaf_lib/numerics.py" in body["deps"], name
