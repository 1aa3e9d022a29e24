"""Plain generated speech for tests, benchmarks and examples (no channel, no corpus metadata)."""

from __future__ import annotations

import numpy as np

from ..audio import resample
from .espeak import synthesize
from .text import sentence

#: Twelve eSpeak NG voices (language, variant), chosen by ``seed % 12``.
VOICES = [("en-us", "m1"), ("en-us", "f2"), ("fr", "m3"), ("de", "f1"), ("es", "m2"), ("it", "f3"),
          ("en", "m4"), ("pt", "f4"), ("nl", "m5"), ("sv", "f5"), ("pl", "m6"), ("en-us", "m7")]


def make_speech(seed: int, seconds: float = 8.0, sr: int = 16000) -> np.ndarray:
    """Deterministic generated speech.

    Parameters
    ----------
    seed : int
        Chooses the voice (``VOICES[seed % 12]``), the sentences, the rate and the pitch.
    seconds : float
        Length of the result.
    sr : int
        Output sample rate.

    Returns
    -------
    np.ndarray, float32, shape (round(seconds * sr),)
        Peak-normalised to 0.9.
    """
    rng = np.random.default_rng(seed)
    lang, variant = VOICES[seed % len(VOICES)]
    pieces, total = [], 0
    while total < seconds * sr:
        a, native = synthesize(sentence(rng), lang, variant, rate=int(rng.integers(140, 200)),
                               pitch=int(rng.integers(30, 70)))
        a = resample(a, native, sr)
        pieces.append(a)
        total += a.size
    out = np.concatenate(pieces)[: int(seconds * sr)]
    return (0.9 * out / np.max(np.abs(out))).astype(np.float32)
