"""MFCC features for SAMAF (docs/samaf.md): 13 coefficients, 25 ms windows, 10 ms hop, 100 frames per second.

Frames are computed once per clip and then cut into 1-s windows at any hop, so overlapping windows share work
(this is what makes reference hashing fast).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from .audio import AudioError, check_audio, resample


@dataclass(frozen=True)
class MFCCConfig:
    """The ``features`` section of ``params.yaml``."""

    sr: int = 16000
    n_mfcc: int = 13
    n_fft: int = 512
    win_length: int = 400
    hop_length: int = 160
    n_mels: int = 40
    fmin: float = 20.0
    fmax: float | None = None
    window_s: float = 1.0

    @property
    def frames_per_window(self) -> int:
        """Frames in one window: 100 for 1 s at a 10 ms hop."""
        return int(round(self.window_s * self.sr / self.hop_length))

    @classmethod
    def from_params(cls, section: dict | None) -> "MFCCConfig":
        """Build from a ``features`` dict; unknown keys are an error naming the key."""
        section = dict(section or {})
        known = set(cls.__dataclass_fields__)
        bad = sorted(set(section) - known)
        if bad:
            raise KeyError(f"features: unknown key(s) {bad}; known keys are {sorted(known)}")
        return cls(**section)


_MEL_CACHE: dict = {}


def _mel_basis(cfg: MFCCConfig) -> np.ndarray:
    key = (cfg.sr, cfg.n_fft, cfg.n_mels, cfg.fmin, cfg.fmax)
    if key not in _MEL_CACHE:
        _MEL_CACHE[key] = mel_filterbank(cfg.sr, cfg.n_fft, cfg.n_mels, cfg.fmin, cfg.fmax)
    return _MEL_CACHE[key]


# Slaney's mel scale (the Auditory Toolbox's, librosa's default): linear below 1 kHz, logarithmic above.
_MEL_F_SP = 200.0 / 3  # Hz per mel in the linear part
_MEL_MIN_LOG_HZ = 1000.0  # where the logarithmic part begins (Hz)
_MEL_MIN_LOG_MEL = _MEL_MIN_LOG_HZ / _MEL_F_SP  # the same in mels
_MEL_LOGSTEP = np.log(6.4) / 27.0  # log(Hz) per mel in the logarithmic part


def _hz_to_mel(hz: np.ndarray) -> np.ndarray:
    """Slaney mels of frequencies ``hz`` (float64 array of any shape)."""
    hz = np.asanyarray(hz, dtype=np.float64)
    mels = hz / _MEL_F_SP
    if hz.ndim:
        log = hz >= _MEL_MIN_LOG_HZ
        mels[log] = _MEL_MIN_LOG_MEL + np.log(hz[log] / _MEL_MIN_LOG_HZ) / _MEL_LOGSTEP
    elif hz >= _MEL_MIN_LOG_HZ:
        mels = _MEL_MIN_LOG_MEL + np.log(hz / _MEL_MIN_LOG_HZ) / _MEL_LOGSTEP
    return mels


def _mel_to_hz(mels: np.ndarray) -> np.ndarray:
    """Frequencies (Hz) of Slaney mels ``mels`` (float64 array); the inverse of :func:`_hz_to_mel`."""
    mels = np.asanyarray(mels, dtype=np.float64)
    hz = _MEL_F_SP * mels
    if mels.ndim:
        log = mels >= _MEL_MIN_LOG_MEL
        hz[log] = _MEL_MIN_LOG_HZ * np.exp(_MEL_LOGSTEP * (mels[log] - _MEL_MIN_LOG_MEL))
    elif mels >= _MEL_MIN_LOG_MEL:
        hz = _MEL_MIN_LOG_HZ * np.exp(_MEL_LOGSTEP * (mels - _MEL_MIN_LOG_MEL))
    return hz


def mel_filterbank(sr: int, n_fft: int, n_mels: int, fmin: float = 0.0, fmax: float | None = None) -> np.ndarray:
    """Triangular mel filters on the Slaney scale with Slaney (constant-area) normalisation.

    The same matrix as ``librosa.filters.mel(sr=sr, n_fft=n_fft, n_mels=n_mels, fmin=fmin, fmax=fmax)`` (its
    defaults ``htk=False, norm="slaney", dtype=float32``), computed the same way so that the values agree to the
    last bit, without importing librosa (which pulls in numba and scipy.signal: seconds of start-up).

    Parameters
    ----------
    sr : int
        Sample rate (Hz).
    n_fft : int
        FFT length; the filters cover its ``1 + n_fft // 2`` bins.
    n_mels : int
        Number of filters.
    fmin, fmax : float
        Lowest and highest frequency (Hz) of the filter bank; ``fmax=None`` is ``sr / 2``.

    Returns
    -------
    np.ndarray, float32, shape (n_mels, 1 + n_fft // 2)
        Row ``i`` rises linearly from mel edge ``i`` to ``i + 1`` and falls to ``i + 2``, scaled by
        ``2 / (f[i + 2] - f[i])`` (Hz) so that every filter has the same area.
    """
    fmax = float(sr) / 2 if fmax is None else fmax
    n_mels = int(n_mels)
    weights = np.zeros((n_mels, int(1 + n_fft // 2)), dtype=np.float32)
    fft_hz = np.fft.rfftfreq(n=n_fft, d=1.0 / sr)
    edges = _mel_to_hz(np.linspace(_hz_to_mel(fmin), _hz_to_mel(fmax), n_mels + 2))
    width = np.diff(edges)
    ramps = np.subtract.outer(edges, fft_hz)
    for i in range(n_mels):
        rise = -ramps[i] / width[i]
        fall = ramps[i + 2] / width[i + 1]
        weights[i] = np.maximum(0, np.minimum(rise, fall))
    weights *= (2.0 / (edges[2: n_mels + 2] - edges[:n_mels]))[:, np.newaxis]
    return weights


def _dct_matrix(n_mels: int, n_mfcc: int) -> np.ndarray:
    """Orthonormal DCT-II matrix ``(n_mfcc, n_mels)``: ``C[k, n] = s_k cos(pi k (2n + 1) / (2 n_mels))`` with
    ``s_0 = sqrt(1 / n_mels)`` and ``s_k = sqrt(2 / n_mels)`` (scipy's ``dct(type=2, norm="ortho")``, without its
    import cost)."""
    k = np.arange(n_mfcc, dtype=np.float64)[:, None]
    n = np.arange(n_mels, dtype=np.float64)[None, :]
    c = np.cos(np.pi * k * (2 * n + 1) / (2 * n_mels)) * np.sqrt(2.0 / n_mels)
    c[0] *= np.sqrt(0.5)
    return c.astype(np.float32)


def mfcc_frames(audio: np.ndarray, sr: int, cfg: MFCCConfig = MFCCConfig(), name: str = "audio") -> np.ndarray:
    """Frame-level MFCCs of a whole clip.

    Parameters
    ----------
    audio : np.ndarray, shape (n,)
        Mono samples; resampled to ``cfg.sr`` when ``sr`` differs.
    sr : int
        Sample rate of ``audio``.
    cfg : MFCCConfig
        Feature settings.
    name : str
        Names the clip in errors.

    Returns
    -------
    np.ndarray, float32, shape (n_frames, n_mfcc)
        Frame ``i`` covers samples ``[i * hop, i * hop + win_length)``; the clip is zero-padded at the end so
        that ``n_frames = ceil(n / hop)``.
    """
    a = check_audio(audio, sr, name=name, min_duration_s=0.0, allow_silence=True)
    if sr != cfg.sr:
        a = resample(a, sr, cfg.sr)
    hop, win, nfft = cfg.hop_length, cfg.win_length, cfg.n_fft
    n_frames = int(np.ceil(a.size / hop))
    padded = np.zeros((n_frames - 1) * hop + nfft, dtype=np.float32)
    padded[: a.size] = a
    frames = np.lib.stride_tricks.sliding_window_view(padded, nfft)[::hop][:n_frames]
    window = np.zeros(nfft, dtype=np.float32)
    window[:win] = np.hanning(win + 1)[:-1].astype(np.float32)  # periodic Hann over the 25 ms window
    spec = np.abs(np.fft.rfft(frames * window, axis=1)) ** 2
    mel = spec.astype(np.float32) @ _mel_basis(cfg).T
    logmel = np.log(mel + 1e-10, dtype=np.float32)
    return (logmel @ _dct_matrix(cfg.n_mels, cfg.n_mfcc).T).astype(np.float32)


def window_starts(n_samples: int, sr: int, hop_s: float, window_s: float = 1.0) -> np.ndarray:
    """Start times (s) of the full windows of ``window_s`` at ``hop_s`` inside a clip of ``n_samples``."""
    if hop_s <= 0:
        raise ValueError(f"hop_s must be > 0, got {hop_s}")
    dur = n_samples / sr
    n = int(np.floor((dur - window_s) / hop_s + 1e-9)) + 1 if dur + 1e-9 >= window_s else 0
    return np.round(np.arange(n) * hop_s, 6)


def mfcc(audio: np.ndarray, sr: int, hop_s: float = 0.5, cfg: MFCCConfig = MFCCConfig(),
         name: str = "audio") -> np.ndarray:
    """MFCC windows: one ``(frames_per_window, n_mfcc)`` matrix per window of ``cfg.window_s`` at ``hop_s``.

    Parameters
    ----------
    audio : np.ndarray, shape (n,)
        Mono samples, at least one window long.
    sr : int
        Sample rate.
    hop_s : float
        Window hop in seconds; rounded to whole frames (10 ms).
    cfg : MFCCConfig
        Feature settings.

    Returns
    -------
    np.ndarray, float32, shape (n_windows, 100, 13) with the defaults

    Raises
    ------
    AudioError
        The clip is shorter than one window, empty or not finite.
    """
    check_audio(audio, sr, name=name, min_duration_s=cfg.window_s, allow_silence=True)
    frames = mfcc_frames(audio, sr, cfg, name=name)
    return windows_from_frames(frames, len(audio) * cfg.sr // sr, hop_s, cfg)


def windows_from_frames(frames: np.ndarray, n_samples: int, hop_s: float,
                        cfg: MFCCConfig = MFCCConfig()) -> np.ndarray:
    """Cut frame-level MFCCs of a clip of ``n_samples`` (at ``cfg.sr``) into windows at ``hop_s``."""
    fpw = cfg.frames_per_window
    step = max(1, int(round(hop_s * cfg.sr / cfg.hop_length)))
    starts = window_starts(n_samples, cfg.sr, step * cfg.hop_length / cfg.sr, cfg.window_s)
    idx = (np.round(starts * cfg.sr / cfg.hop_length)).astype(int)
    if idx.size == 0:
        raise AudioError(f"clip of {n_samples / cfg.sr:.3f} s is shorter than one {cfg.window_s:g} s window")
    return np.stack([frames[i : i + fpw] for i in idx]).astype(np.float32)


@dataclass(frozen=True)
class Standardiser:
    """Per-coefficient standardisation with statistics from the training split (docs/samaf.md)."""

    mean: np.ndarray  # (n_mfcc,)
    std: np.ndarray  # (n_mfcc,)

    @classmethod
    def fit(cls, windows: np.ndarray, cmn: bool = False) -> "Standardiser":
        """Statistics over every frame of ``windows`` shaped (n, frames, n_mfcc).

        With ``cmn``, each window's mean over its frames is subtracted first (the model's per-window cepstral mean
        normalisation), so the statistics describe what the model will standardise.
        """
        w = np.asarray(windows, np.float64)
        if cmn:
            w = w - w.mean(axis=-2, keepdims=True)
        flat = w.reshape(-1, windows.shape[-1])
        return cls(flat.mean(0).astype(np.float32), np.maximum(flat.std(0), 1e-6).astype(np.float32))

    def __call__(self, windows: np.ndarray) -> np.ndarray:
        return ((windows - self.mean) / self.std).astype(np.float32)

    def save(self, path: str | os.PathLike) -> None:
        from .io import write_npz

        write_npz(path, mean=self.mean, std=self.std)

    @classmethod
    def load(cls, path: str | os.PathLike) -> "Standardiser":
        with np.load(path) as z:
            return cls(z["mean"].astype(np.float32), z["std"].astype(np.float32))
