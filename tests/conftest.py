"""Shared fixtures: generated speech, so every test runs offline on the CPU."""

from __future__ import annotations

import numpy as np
import pytest

from samaf_lib.corpus.samples import make_speech

SR = 16000
__all__ = ["make_speech", "SR"]


@pytest.fixture(scope="session")
def speech_bank() -> dict[str, np.ndarray]:
    """24 references of 8 s generated speech at 16 kHz, ids ``ref00``..``ref23``."""
    return {f"ref{i:02d}": make_speech(i) for i in range(24)}


@pytest.fixture(scope="session")
def outside_speech() -> np.ndarray:
    """8 s of generated speech that is in no reference (another seed, another text)."""
    return make_speech(1000)
