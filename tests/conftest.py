"""Shared fixtures: generated speech, so every test runs offline on the CPU."""

from __future__ import annotations

import numpy as np
import pytest

from samaf_lib.audio import resample
from samaf_lib.corpus.espeak import synthesize
from samaf_lib.corpus.text import sentence

SR = 16000
_VOICES = [("en-us", "m1"), ("en-us", "f2"), ("fr", "m3"), ("de", "f1"), ("es", "m2"), ("it", "f3"),
           ("en", "m4"), ("pt", "f4"), ("nl", "m5"), ("sv", "f5"), ("pl", "m6"), ("en-us", "m7")]


def make_speech(seed: int, seconds: float = 8.0, sr: int = SR) -> np.ndarray:
    """Deterministic generated speech of about ``seconds`` (float32 mono at ``sr``), voice chosen by ``seed``."""
    rng = np.random.default_rng(seed)
    lang, variant = _VOICES[seed % len(_VOICES)]
    pieces, total = [], 0
    while total < seconds * sr:
        a, native = synthesize(sentence(rng), lang, variant, rate=int(rng.integers(140, 200)),
                               pitch=int(rng.integers(30, 70)))
        a = resample(a, native, sr)
        pieces.append(a)
        total += a.size
    out = np.concatenate(pieces)[: int(seconds * sr)]
    return (0.9 * out / np.max(np.abs(out))).astype(np.float32)


@pytest.fixture(scope="session")
def speech_bank() -> dict[str, np.ndarray]:
    """24 references of 8 s generated speech at 16 kHz, ids ``ref00``..``ref23``."""
    return {f"ref{i:02d}": make_speech(i) for i in range(24)}


@pytest.fixture(scope="session")
def outside_speech() -> np.ndarray:
    """8 s of generated speech that is in no reference (another seed, another text)."""
    return make_speech(1000)
