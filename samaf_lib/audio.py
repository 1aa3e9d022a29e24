"""Reading, checking and converting audio. Every system and stage goes through here.

Two levels of strictness:

* :func:`load_audio` reads any file soundfile can (wav, flac, ogg, mp3) and, by default, converts it to the
  study's format (mono, ``sr``), so that a user's own recordings just work;
* :func:`check_audio` is the gate in front of feature extraction and fingerprinting: it raises
  :class:`AudioError` naming the clip and what to do for empty, non-finite, too short or silent audio.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import soundfile as sf

from .io import atomic_path

#: The study's sample rate (STUDY §2, ``audio.sr``).
DEFAULT_SR = 16000
#: RMS below this (about -80 dBFS) counts as silence.
SILENCE_RMS = 1e-4


class AudioError(ValueError):
    """Audio that the study cannot use; the message names the clip and says what to do."""


def load_audio(path: str | os.PathLike, sr: int | None = DEFAULT_SR, mono: bool = True,
               strict: bool = False) -> np.ndarray:
    """Read an audio file as float32.

    Parameters
    ----------
    path : path-like
        A file soundfile can read: wav, flac, ogg or mp3.
    sr : int or None
        Target sample rate; ``None`` keeps the file's own rate (then use :func:`load_audio_native`).
    mono : bool
        Average the channels to one.
    strict : bool
        Refuse (rather than convert) a file whose rate differs from ``sr`` or that has more than one channel.

    Returns
    -------
    np.ndarray, float32, shape (n,) when ``mono`` else (n, channels)

    Raises
    ------
    AudioError
        The file is missing, unreadable (corrupt, unknown format), empty, or (``strict``) in the wrong format.
    """
    audio, file_sr = load_audio_native(path)
    if strict:
        if audio.ndim > 1 and audio.shape[1] != 1:
            raise AudioError(f"{path}: has {audio.shape[1]} channels, the study expects mono; downmix it first "
                             "(or load with strict=False to average the channels)")
        if sr is not None and file_sr != sr:
            raise AudioError(f"{path}: sample rate {file_sr} Hz, the study expects {sr} Hz; resample it first "
                             "(or load with strict=False to resample)")
    if mono:
        audio = to_mono(audio)
    if sr is not None and file_sr != sr:
        audio = resample(audio, file_sr, sr)
    return audio


def load_audio_native(path: str | os.PathLike) -> tuple[np.ndarray, int]:
    """Read an audio file at its own rate and channel count. Returns ``(audio float32 (n,) or (n, ch), sr)``."""
    p = Path(path)
    if not p.exists():
        raise AudioError(f"{p}: no such file")
    if p.stat().st_size == 0:
        raise AudioError(f"{p}: the file is empty (0 bytes); re-export or remove it")
    try:
        audio, file_sr = sf.read(str(p), dtype="float32", always_2d=False)
    except Exception as e:  # soundfile raises LibsndfileError / RuntimeError / TypeError for bad files
        raise AudioError(f"{p}: cannot be read as audio ({e}); is it corrupt or in an unsupported format?") from e
    if audio.size == 0:
        raise AudioError(f"{p}: holds no samples; re-export or remove it")
    if audio.ndim == 2 and audio.shape[1] == 1:
        audio = audio[:, 0]
    return np.ascontiguousarray(audio), int(file_sr)


def to_mono(audio: np.ndarray) -> np.ndarray:
    """Average channels: (n,) stays, (n, ch) becomes (n,)."""
    audio = np.asarray(audio, dtype=np.float32)
    return audio if audio.ndim == 1 else audio.mean(axis=1).astype(np.float32)


def resample(audio: np.ndarray, sr_in: int, sr_out: int) -> np.ndarray:
    """Band-limited resampling (polyphase, exact for rational ratios). Returns float32 (m,)."""
    if sr_in == sr_out:
        return np.asarray(audio, dtype=np.float32)
    from math import gcd

    from scipy.signal import resample_poly

    g = gcd(int(sr_in), int(sr_out))
    return resample_poly(np.asarray(audio, dtype=np.float64), sr_out // g, sr_in // g, axis=0).astype(np.float32)


def peak_normalise(audio: np.ndarray, peak: float = 0.99) -> np.ndarray:
    """Scale so that max |x| == ``peak``; silence is returned unchanged."""
    m = float(np.max(np.abs(audio))) if audio.size else 0.0
    return (audio * (peak / m)).astype(np.float32) if m > 0 else np.asarray(audio, np.float32)


def rms(audio: np.ndarray) -> float:
    """Root mean square of the samples."""
    a = np.asarray(audio, dtype=np.float64)
    return float(np.sqrt(np.mean(a * a))) if a.size else 0.0


def check_audio(audio: np.ndarray, sr: int, name: str = "audio", min_duration_s: float = 1.0,
                allow_silence: bool = False, expected_sr: int | None = None) -> np.ndarray:
    """Validate a clip before features or fingerprints are computed from it.

    Parameters
    ----------
    audio : np.ndarray, shape (n,)
        Mono samples.
    sr : int
        Their sample rate.
    name : str
        How to name the clip in an error (a file path, a query id).
    min_duration_s : float
        Shortest usable clip.
    allow_silence : bool
        Let an all-silent clip through.
    expected_sr : int or None
        When set, a different ``sr`` is an error.

    Returns
    -------
    np.ndarray, float32, shape (n,)

    Raises
    ------
    AudioError
        Not 1-D (stereo), empty, NaN or infinite samples, wrong rate, shorter than ``min_duration_s``, or silent.
    """
    a = np.asarray(audio)
    if not isinstance(sr, (int, np.integer)) or sr <= 0:
        raise AudioError(f"{name}: sample rate must be a positive integer, got {sr!r}")
    if expected_sr is not None and sr != expected_sr:
        raise AudioError(f"{name}: sample rate {sr} Hz, expected {expected_sr} Hz; resample it first")
    if a.ndim != 1:
        raise AudioError(f"{name}: expected mono audio shaped (n,), got shape {a.shape}; downmix it first")
    if a.size == 0:
        raise AudioError(f"{name}: empty audio (0 samples)")
    if not np.all(np.isfinite(a)):
        raise AudioError(f"{name}: holds NaN or infinite samples; clean the signal first")
    dur = a.size / sr
    if dur + 1e-9 < min_duration_s:
        raise AudioError(f"{name}: {dur:.3f} s long, shorter than the {min_duration_s:g} s needed; "
                         "use a longer clip")
    if not allow_silence and rms(a) < SILENCE_RMS:
        raise AudioError(f"{name}: is silent (RMS {rms(a):.2e}); nothing to fingerprint")
    return a.astype(np.float32, copy=False)


def write_audio(path: str | os.PathLike, audio: np.ndarray, sr: int, subtype: str = "PCM_16") -> None:
    """Write audio atomically; the format comes from the extension (wav, flac, ogg).

    16-bit PCM WAV output is byte-identical for identical input, which keeps the corpus deterministic.
    """
    path = Path(path)
    fmt = path.suffix.lstrip(".").upper() or "WAV"
    with atomic_path(path) as tmp:
        sf.write(str(tmp), np.clip(np.asarray(audio, np.float32), -1.0, 1.0), sr, format=fmt,
                 subtype=subtype if fmt in {"WAV", "FLAC"} else None)
