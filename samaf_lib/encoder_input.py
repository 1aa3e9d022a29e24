"""What SAMAF's encoder takes in, checked and standardised the same way by the torch model
(:class:`samaf_lib.model.SAMAF`) and by its numpy twin (:class:`samaf_lib.numpy_encoder.NumpyEncoder`).

Torch-free, so that the numpy encoder, which answers queries without importing torch, shares it.
"""

from __future__ import annotations

import numpy as np


def check_windows(windows: np.ndarray, frames: int, n_mfcc: int) -> None:
    """``ValueError`` unless ``windows`` is shaped ``(batch, frames, n_mfcc)``."""
    if windows.ndim != 3 or windows.shape[1:] != (frames, n_mfcc):
        raise ValueError(f"SAMAF input must be MFCC windows shaped (batch, {frames}, {n_mfcc}), "
                         f"got shape {tuple(windows.shape)}")


def standardise(x: np.ndarray, mean: np.ndarray, std: np.ndarray, cmn: bool) -> np.ndarray:
    """``(x - mean) / std`` per coefficient (last axis) as float32, after subtracting each window's mean over its
    frames (axis -2) when ``cmn``; ``x`` is shaped ``(..., frames, n_mfcc)``."""
    if cmn:
        x = x - x.mean(axis=-2, keepdims=True)
    return ((x - mean) / std).astype(np.float32)
