"""Shared fixtures: generated speech, so every test runs offline on the CPU."""

from __future__ import annotations

import numpy as np
import pytest

from samaf_lib.corpus.samples import make_speech

SR = 16000
__all__ = ["make_music", "make_speech", "SR"]


def make_music(seed: int, seconds: float = 10.0, sr: int = SR) -> np.ndarray:
    """Deterministic music-like audio: a chord progression of harmonic tones with attack-decay envelopes over a
    drum pattern (a pitched kick, a noise snare, hi-hats), tempo, key, timbre and pattern drawn from ``seed``.

    Every drum hit is fresh noise of this seed, so two seeds share no sample-exact sound (real music of one band
    shares more)."""
    rng = np.random.default_rng(10_000 + seed)
    n = int(seconds * sr)
    t = np.arange(n) / sr
    out = np.zeros(n)
    beat = 60.0 / rng.uniform(80, 150)
    root = 110.0 * 2 ** (rng.integers(0, 12) / 12)
    partials = rng.uniform(0.2, 1.0, 6) / np.arange(1, 7)
    progression = rng.choice([0, 2, 3, 5, 7, 8, 10], size=64)
    for k, start in enumerate(np.arange(0.0, seconds, 2 * beat)):  # one chord every two beats
        i0, i1 = int(start * sr), min(n, int((start + 2 * beat) * sr))
        tt = t[i0:i1] - start
        env = np.minimum(1.0, tt / 0.02) * np.exp(-tt / rng.uniform(0.3, 1.2))
        for step in (0, 4, 7):  # a triad
            f = root * 2 ** ((progression[k % 64] + step) / 12)
            for h, a in enumerate(partials, start=1):
                out[i0:i1] += 0.08 * a * env * np.sin(2 * np.pi * f * h * tt + rng.uniform(0, 2 * np.pi))
    pattern = rng.random((3, 8)) < np.array([[0.5], [0.35], [0.7]])
    for j, start in enumerate(np.arange(0.0, seconds, beat / 2)):  # eighth notes
        i0 = int(start * sr)
        if pattern[0, j % 8]:  # kick: a falling sine
            m = min(n - i0, int(0.25 * sr))
            tt = np.arange(m) / sr
            out[i0:i0 + m] += 0.5 * np.exp(-tt / 0.08) * np.sin(2 * np.pi * (60 + 80 * np.exp(-tt / 0.03)) * tt)
        if pattern[1, j % 8]:  # snare: noise with a tone
            m = min(n - i0, int(0.18 * sr))
            tt = np.arange(m) / sr
            out[i0:i0 + m] += 0.25 * np.exp(-tt / 0.05) * (rng.normal(0, 1, m) + np.sin(2 * np.pi * 190 * tt))
        if pattern[2, j % 8]:  # hi-hat: high-passed noise
            m = min(n - i0, int(0.05 * sr))
            noise = rng.normal(0, 1, m + 1)
            out[i0:i0 + m] += 0.08 * np.exp(-np.arange(m) / sr / 0.015) * np.diff(noise)
    return (0.5 * out / np.max(np.abs(out))).astype(np.float32)


@pytest.fixture(scope="session")
def speech_bank() -> dict[str, np.ndarray]:
    """24 references of 8 s generated speech at 16 kHz, ids ``ref00``..``ref23``."""
    return {f"ref{i:02d}": make_speech(i) for i in range(24)}


@pytest.fixture(scope="session")
def outside_speech() -> np.ndarray:
    """8 s of generated speech that is in no reference (another seed, another text)."""
    return make_speech(1000)
