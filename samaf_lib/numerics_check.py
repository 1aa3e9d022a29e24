"""Does this machine compute the committed run's numbers? ``python -m samaf_lib.numerics_check``.

The pins of :mod:`samaf_lib.numerics` put numpy, OpenBLAS, torch, MKL and oneDNN on their AVX2 kernels and fix
their thread counts; on the machines of the committed runs (x86-64, AVX2 only and AVX-512) that gave every stage's
outputs byte for byte. It is not a guarantee for every CPU: a library may still choose another code path on another
vendor's or generation's CPU (an x86-64 machine with AVX2 that runs this project's CI computed another digest of a
probe like this one, under the pins). This check runs three small fixed computations in a pinned process, one
per library family, and compares their digests with those of the committed runs:

* ``numpy``: float32 ``exp``, ``log1p``, ``log10`` (numpy's runtime-dispatched vector loops);
* ``mfcc``: librosa's MFCCs of one second of noise (FFT, mel filter bank and DCT products in OpenBLAS);
* ``torch``: an LSTM and a linear layer, forward and backward (ATen, MKL, oneDNN).

Every part that matches means ``make repro`` on this machine should rewrite the committed outputs byte for byte;
a part that differs says which stage's bytes will differ (``mfcc``: the data stage's clusters and everything after
them; ``torch``: the trained model and what it hashes; ``numpy``: both). Results then differ by the spread of a
training run, not by a bug. Exit status: 0 when every part matches, 1 otherwise.
"""

from __future__ import annotations

import json
import subprocess
import sys

from . import numerics

#: The computation, run in a pinned child process; prints one JSON object of part -> md5.
PROBE = r"""
import hashlib, json, numpy as np, torch, librosa
torch.set_num_threads(2)
rng = np.random.default_rng(7)
x = rng.standard_normal(16000).astype(np.float32)
out = {}
h = hashlib.md5()
h.update(np.log1p(np.exp(x)).tobytes()); h.update(np.log10(np.abs(x) + 1e-3).tobytes())
out["numpy"] = h.hexdigest()
m = librosa.feature.mfcc(y=x, sr=16000, n_mfcc=13, n_fft=512, win_length=400, hop_length=160, n_mels=40)
out["mfcc"] = hashlib.md5(m.astype(np.float32).tobytes()).hexdigest()
torch.manual_seed(7)
lstm, lin = torch.nn.LSTM(13, 64, batch_first=True), torch.nn.Linear(64, 128)
inp = torch.from_numpy(np.random.default_rng(8).standard_normal((4, 100, 13)).astype(np.float32))
z = torch.tanh(lin(lstm(inp)[0]))
z.square().mean().backward()
h = hashlib.md5()
h.update(z.detach().numpy().tobytes()); h.update(lstm.weight_ih_l0.grad.numpy().tobytes())
out["torch"] = h.hexdigest()
print(json.dumps(out))
"""

#: The digests of the committed runs' machines (x86-64; AVX2 only and AVX-512 gave the same under the pins).
COMMITTED = {
    "numpy": "911bb6bcbf1eb2a8d9e75446f47be3f3",
    "mfcc": "40ccb0ecc7b11008fbb558d04bdaadd6",
    "torch": "b823e914cc3bf7f2b5e00d6f7135cc51",
}


def probe(env: dict[str, str] | None = None, timeout: float = 300.0) -> dict[str, str]:
    """Run :data:`PROBE` in a child process with the pins (unless ``SAMAF_NUMERICS=native`` in ``env``).

    ``env`` defaults to this process's environment; the pins override its thread counts.

    Raises
    ------
    RuntimeError
        The child failed; its error output is in the message.
    """
    child = numerics.pinned_environment(env)
    out = subprocess.run([sys.executable, "-c", PROBE], env=child, capture_output=True, text=True, timeout=timeout)
    if out.returncode != 0:
        raise RuntimeError(f"the numerics probe failed (exit {out.returncode}): {out.stderr.strip()[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def compare(found: dict[str, str], expected: dict[str, str] | None = None) -> dict[str, bool]:
    """Part -> whether its digest equals the committed one."""
    expected = COMMITTED if expected is None else expected
    return {part: found.get(part) == digest for part, digest in expected.items()}


def main(argv: list[str] | None = None) -> int:
    """Print each part's digest and whether it matches; 0 when all match, 1 otherwise, 2 on a bad switch."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in {"-h", "--help"}:
        print(__doc__.strip().split("\n\n")[0])
        return 0
    try:
        found = probe()
    except ValueError as e:  # a bad SAMAF_NUMERICS
        print(f"samaf_lib.numerics_check: {e}", file=sys.stderr)
        return 2
    verdict = compare(found)
    for part, ok in verdict.items():
        print(f"{part:6s} {found.get(part, '?')}  {'matches the committed run' if ok else 'DIFFERS'}")
    if all(verdict.values()):
        print("this machine computes the committed run's numbers: make repro should rewrite its outputs byte for byte")
        return 0
    print("this machine computes other numbers than the committed run: make repro will give other bytes where the "
          "parts marked DIFFERS enter (README, 'Reproducing the study on another machine')")
    return 1


if __name__ == "__main__":
    raise SystemExit(main())
