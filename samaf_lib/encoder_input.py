"""What SAMAF's encoder takes in, checked and standardised the same way by the torch model
(:class:`samaf_lib.model.SAMAF`) and by its numpy twin (:class:`samaf_lib.numpy_encoder.NumpyEncoder`).

Torch-free, so that the numpy encoder, which answers queries without importing torch, shares it.
"""

from __future__ import annotations

import math

import numpy as np

from .features import MFCCConfig


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


def window_frames(window_s: float, key: str = "model.window_s") -> int:
    """MFCC frames in an encoder window of ``window_s`` seconds (100 for 1 s at the features' 10-ms hop).

    Raises
    ------
    ValueError
        Naming ``key``: not a number, not a whole number of frame hops, or under 0.1 s (10 frames).
    """
    cfg = MFCCConfig()
    try:
        frames = float(window_s) * cfg.sr / cfg.hop_length
    except (TypeError, ValueError):
        raise ValueError(f"{key} must be a number of seconds, e.g. 0.5; got {window_s!r}") from None
    if not math.isfinite(frames) or abs(frames - round(frames)) > 1e-6 or round(frames) < 10:
        raise ValueError(f"{key} must be a whole number of {cfg.hop_length / cfg.sr * 1000:g}-ms frames and at "
                         f"least 0.1 s, e.g. 0.5 or 1.0; got {window_s!r}")
    return int(round(frames))


def window_seconds(frames: int) -> float:
    """The length in seconds of an encoder window of ``frames`` MFCC frames (1.0 for 100)."""
    cfg = MFCCConfig()
    return round(int(frames) * cfg.hop_length / cfg.sr, 6)
