"""One numeric path on every x86-64 CPU: the pipeline's processes run the AVX2 kernels of numpy, OpenBLAS and torch.

numpy, OpenBLAS, torch (ATen), MKL and oneDNN each pick their vector kernels for the CPU they find, at the moment
they load. Kernels for AVX2 and for AVX-512 round differently, so the same commit and seed gave other training
clusters and another trained model on a machine with AVX-512 than on one with AVX2 only (docs/study.md,
"Reproducible means identical"). Each library has a switch that caps its choice; :data:`PINS` sets every one of
them at AVX2, the widest set that every x86-64 machine of the last decade has, so that the AVX2 and the AVX-512
machines of this project's runs gave the same bytes for every stage. The same switches fix the thread count of
OpenBLAS, MKL and OpenMP at two (the count of the committed run; torch's own is ``train.threads``): OpenBLAS on
one thread gives other MFCC bytes than on two.

The switches are read when a library loads, so they must be in a process's environment before it starts. Every
stage of ``dvc.yaml`` therefore runs its notebook through this module:

    python -m samaf_lib.numerics papermill notebooks/01_data.ipynb ...

which sets :data:`PINS` and replaces itself with the command (the kernel papermill starts inherits them).
``SAMAF_NUMERICS=native`` in the environment leaves every library to its own choice (faster on AVX-512, other
bytes). On a CPU without AVX2, or not x86-64, the switches cap nothing and the results may differ in the last
digits; a GPU (``train.device: auto``) has its own kernels.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping

#: Environment switches that cap each library at AVX2 kernels and fix its thread count.
PINS: dict[str, str] = {
    # numpy's runtime-dispatched loops (its float32/float64 exp, log, sin, ... differ between AVX2 and AVX-512)
    "NPY_DISABLE_CPU_FEATURES": "X86_V4 AVX512_ICL AVX512_SPR",
    # OpenBLAS bundled with numpy and scipy (matrix products: mel filter banks, DCTs)
    "OPENBLAS_CORETYPE": "Haswell",
    # torch's own vectorised CPU kernels
    "ATEN_CPU_CAPABILITY": "avx2",
    # MKL (torch's matrix products on x86): conditional numerical reproducibility at the AVX2 code path
    "MKL_CBWR": "AVX2",
    # oneDNN (torch's CPU convolutions and recurrent layers where it takes them)
    "ONEDNN_MAX_CPU_ISA": "AVX2",
    # thread counts: OpenBLAS splits a product differently on one thread than on several (other MFCC bytes),
    # so every stage runs the thread count of the committed results, whatever the machine's cores
    "OMP_NUM_THREADS": "2",
    "OPENBLAS_NUM_THREADS": "2",
    "MKL_NUM_THREADS": "2",
}
#: Set to "native" to run without the pins.
SWITCH = "SAMAF_NUMERICS"


def pinned_environment(env: Mapping[str, str] | None = None) -> dict[str, str]:
    """``env`` (default: this process's environment) with :data:`PINS` set, unless ``SAMAF_NUMERICS=native``."""
    out = dict(os.environ if env is None else env)
    mode = out.get(SWITCH, "pinned")
    if mode == "native":
        return out
    if mode != "pinned":
        raise ValueError(f"{SWITCH}={mode!r}: use 'pinned' (the default) or 'native'")
    out.update(PINS)
    return out


def in_effect() -> dict[str, object]:
    """What this process runs: the switches as set, the SIMD targets numpy dispatches to, torch's CPU capability.

    Importing numpy and torch here is the point: they report the capability they loaded with.
    """
    import numpy as np
    import torch

    from numpy._core._multiarray_umath import __cpu_dispatch__, __cpu_features__  # type: ignore[attr-defined]

    targets = [t for t in __cpu_dispatch__ if __cpu_features__.get(t)]
    return {"switches": {k: os.environ.get(k) for k in PINS}, "numpy_dispatch": targets,
            "numpy": np.__version__, "torch": torch.__version__,
            "torch_cpu_capability": torch.backends.cpu.get_cpu_capability()}


def main(argv: list[str] | None = None) -> int:
    """Run ``argv`` with the pins set (the process is replaced); with no command, print the usage and the pins.

    Returns 2 for no command or a bad ``SAMAF_NUMERICS``, 127 when the command cannot be started.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        env = pinned_environment()
    except ValueError as e:
        print(f"samaf_lib.numerics: {e}", file=sys.stderr)
        return 2
    if not argv or argv[0] in {"-h", "--help"}:
        print(__doc__.strip().splitlines()[0])
        print("usage: python -m samaf_lib.numerics COMMAND [ARG ...]   (COMMAND runs with: "
              + " ".join(f"{k}={v!r}" for k, v in PINS.items()) + ")")
        return 0 if argv else 2
    try:
        os.execvpe(argv[0], argv, env)
    except OSError as e:
        print(f"samaf_lib.numerics: cannot run {argv[0]!r}: {e}", file=sys.stderr)
        return 127
    return 0  # pragma: no cover (execvpe does not return)


if __name__ == "__main__":
    raise SystemExit(main())
