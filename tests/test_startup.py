"""Fast start-up: the library's own mel filters and resampler equal librosa's and scipy's; lazy imports hold.

``samaf_lib.features`` builds its mel filter bank without librosa and ``samaf_lib.audio.resample`` filters without
``scipy.signal`` (until a long job makes scipy's compiled filter pay for its import); both must give the very
numbers of the libraries they replace, so the study's features, corpus and fingerprints do not change.
"""

from __future__ import annotations

import math
import subprocess
import sys
import warnings

import numpy as np
import pytest

from samaf_lib import audio
from samaf_lib.features import MFCCConfig, _mel_basis, mel_filterbank

MEL_CASES = [(sr, n_fft, n_mels, fmin, fmax) for sr in (8000, 16000, 22050, 44100) for n_fft in (256, 512, 2048)
             for n_mels in (20, 40, 128) for fmin, fmax in ((0.0, None), (20.0, None), (300.0, 3800.0))]


@pytest.mark.parametrize("sr, n_fft, n_mels, fmin, fmax", MEL_CASES)
def test_mel_filterbank_is_librosas_to_the_bit(sr, n_fft, n_mels, fmin, fmax):
    librosa = pytest.importorskip("librosa")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # librosa warns about empty filters for some of these
        expected = librosa.filters.mel(sr=sr, n_fft=n_fft, n_mels=n_mels, fmin=fmin, fmax=fmax)
    got = mel_filterbank(sr, n_fft, n_mels, fmin, fmax)
    assert got.dtype == expected.dtype == np.float32 and got.shape == expected.shape
    assert np.array_equal(got.view(np.uint32), expected.view(np.uint32))


def test_the_study_mel_basis_is_cached_float32():
    cfg = MFCCConfig()
    basis = _mel_basis(cfg)
    assert basis.shape == (cfg.n_mels, cfg.n_fft // 2 + 1) and basis.dtype == np.float32
    assert _mel_basis(cfg) is basis


RATES = [(44100, 16000), (48000, 16000), (22050, 16000), (8000, 16000), (16000, 5512), (16000, 8000),
         (32000, 16000), (11025, 16000), (96000, 16000), (16000, 44100), (16000, 16320), (16000, 15680),
         (7, 3), (3, 7), (1, 2), (2, 1)]


@pytest.mark.parametrize("sr_in, sr_out", RATES)
def test_numpy_resampler_is_scipys_to_the_bit(sr_in, sr_out):
    from scipy.signal import resample_poly

    g = math.gcd(sr_in, sr_out)
    up, down = sr_out // g, sr_in // g
    rng = np.random.default_rng(sr_in + sr_out)
    for n in (1, 3, 100, 1234, 20000):
        x = rng.standard_normal(n)
        expected = resample_poly(x, up, down, axis=0)
        got = audio._resample_poly(x, up, down)
        assert got.shape == expected.shape and got.dtype == np.float64
        assert np.array_equal(got.view(np.int64), expected.view(np.int64)), (n, np.abs(got - expected).max())


def test_numpy_resampler_handles_channels_and_silence():
    from scipy.signal import resample_poly

    x = np.random.default_rng(1).standard_normal((3000, 2))
    assert np.array_equal(audio._resample_poly(x, 160, 441), resample_poly(x, 160, 441, axis=0))
    assert np.array_equal(audio._resample_poly(np.zeros(500), 2, 1), np.zeros(1000))


def test_resample_gives_the_same_samples_both_ways(monkeypatch):
    """``resample`` takes numpy's path below the work budget and scipy's above it: the same float32 samples."""
    x = (0.3 * np.random.default_rng(2).standard_normal(44100)).astype(np.float32)
    monkeypatch.setattr(audio, "_scipy_signal_imported", lambda: False)  # as in a process without scipy.signal
    monkeypatch.setattr(audio, "_numpy_resample_work", 0.0)
    by_numpy = audio.resample(x, 44100, 16000)
    assert audio._numpy_resample_work > 0
    monkeypatch.setattr(audio, "NUMPY_RESAMPLE_BUDGET", 0.0)
    by_scipy = audio.resample(x, 44100, 16000)
    assert by_numpy.dtype == by_scipy.dtype == np.float32 and by_numpy.shape == (16000,)
    assert np.array_equal(by_numpy.view(np.uint32), by_scipy.view(np.uint32))


def _modules_after(code: str) -> set[str]:
    """Top-level names of the modules a fresh interpreter has imported after running ``code``."""
    script = f"import sys\n{code}\nprint(' '.join(sorted(sys.modules)))"
    res = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=True)
    return set(res.stdout.split())


def test_the_command_imports_nothing_heavy_at_start():
    mods = _modules_after("import samaf_lib.cli; samaf_lib.cli.build_parser()")
    assert not {"numpy", "torch", "pandas", "scipy", "librosa", "faiss"} & mods


def test_samaf_features_need_neither_librosa_nor_scipy_signal():
    mods = _modules_after(
        "import numpy as np\n"
        "from samaf_lib.audio import resample\n"
        "from samaf_lib.features import mfcc_frames\n"
        "x = resample(np.sin(np.arange(44100) / 7.0).astype(np.float32), 44100, 16000)\n"
        "mfcc_frames(x, 16000)\n"
        "import samaf_lib.systems.samaf")
    assert "librosa" not in mods and "numba" not in mods and "scipy.signal" not in mods
    assert "torch" not in mods  # the SAMAF system module imports torch only to build or load a model


def test_a_samaf_store_opens_without_the_other_systems():
    mods = _modules_after("import samaf_lib.lmdb_store, samaf_lib.samaf_store")
    assert not {"scipy", "samaf_lib.systems.rafs", "samaf_lib.systems.panako", "samaf_lib.lmdb_systems"} & mods
    # the other systems' classes are still there, imported on first use
    mods = _modules_after("from samaf_lib.lmdb_store import RAFSOnDisk, disk_class\n"
                          "assert disk_class('rafs') is RAFSOnDisk\n"
                          "assert RAFSOnDisk.__module__ == 'samaf_lib.lmdb_systems'")
    assert "samaf_lib.systems.rafs" in mods
