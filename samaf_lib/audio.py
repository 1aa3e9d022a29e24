"""Reading, checking and converting audio. Every system and stage goes through here.

Two levels of strictness:

* :func:`load_audio` reads any file soundfile can (wav, flac, ogg, mp3) and, by default, converts it to the
  study's format (mono, ``sr``), so that a user's own recordings just work;
* :func:`check_audio` is the gate in front of feature extraction and fingerprinting: it raises
  :class:`AudioError` naming the clip and what to do for empty, non-finite, too short or silent audio.
"""

from __future__ import annotations

import functools
import math
import os
import sys
from pathlib import Path
from typing import Any

import numpy as np

#: The study's sample rate (docs/study.md, ``audio.sr``).
DEFAULT_SR = 16000
#: RMS below this (about -80 dBFS) counts as silence.
SILENCE_RMS = 1e-4
#: Sample rates a file may declare (Hz). Real recordings lie far inside; a rate outside is a corrupt or crafted
#: header, and converting it would cost memory and time out of all proportion to the file (a 1-Hz file becomes
#: 16,000 times longer at 16 kHz; a prime rate of 10^8 Hz needs a resampling filter of billions of taps).
MIN_FILE_SR, MAX_FILE_SR = 4000, 384000
#: Channels a file may declare.
MAX_CHANNELS = 64
#: Largest sample magnitude accepted: float audio lies in [-1, 1]; far beyond is integer PCM read as float.
MAX_PEAK = 1000.0


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
    import soundfile as sf

    target: Any = str(p)
    try:
        target.encode(sys.getfilesystemencoding())
    except UnicodeEncodeError:  # a name that is not valid in the file system's encoding: read it through Python
        target = p
    try:
        info = sf.info(_open_binary(target))
    except Exception as e:  # soundfile raises LibsndfileError / RuntimeError / TypeError for bad files
        raise AudioError(f"{p}: cannot be read as audio ({e}); is it corrupt or in an unsupported format?") from e
    if not MIN_FILE_SR <= info.samplerate <= MAX_FILE_SR:
        raise AudioError(f"{p}: its header declares a sample rate of {info.samplerate:,} Hz, outside the "
                         f"{MIN_FILE_SR:,}-{MAX_FILE_SR:,} Hz this study reads; the header is probably corrupt: "
                         "re-export the file at a standard rate (for example 16, 44.1 or 48 kHz)")
    if not 1 <= info.channels <= MAX_CHANNELS:
        raise AudioError(f"{p}: its header declares {info.channels} channels (at most {MAX_CHANNELS} are read); "
                         "the header is probably corrupt: re-export the file")
    try:
        audio, file_sr = sf.read(_open_binary(target), dtype="float32", always_2d=False)
    except Exception as e:  # soundfile raises LibsndfileError / RuntimeError / TypeError for bad files
        raise AudioError(f"{p}: cannot be read as audio ({e}); is it corrupt or in an unsupported format?") from e
    if audio.size == 0:
        raise AudioError(f"{p}: holds no samples; re-export or remove it")
    if audio.ndim == 2 and audio.shape[1] == 1:
        audio = audio[:, 0]
    return np.ascontiguousarray(audio), int(file_sr)


def _open_binary(target: str | Path) -> Any:
    """What soundfile opens: a path string as it is, a :class:`Path` (undecodable name) as an open file object."""
    if isinstance(target, str):
        return target
    import io

    return io.BytesIO(target.read_bytes())


def to_mono(audio: np.ndarray) -> np.ndarray:
    """Average channels: (n,) stays, (n, ch) becomes (n,)."""
    audio = np.asarray(audio, dtype=np.float32)
    return audio if audio.ndim == 1 else audio.mean(axis=1).astype(np.float32)


def resample(audio: np.ndarray, sr_in: int, sr_out: int) -> np.ndarray:
    """Band-limited resampling (polyphase, exact for rational ratios). Returns float32 (m,).

    Along axis 0: ``(n, channels)`` input gives ``(m, channels)``. The result is, to the last bit,
    ``scipy.signal.resample_poly(audio.astype(float64), up, down, axis=0)`` with ``up / down = sr_out / sr_in`` in
    lowest terms (its default Kaiser window, beta 5). scipy computes it when ``scipy.signal`` is imported already
    or :func:`prefer_compiled_resampler` asked for it; otherwise :func:`_resample_poly` does, with the same
    floating-point operations in the same order in numpy, until this process has done
    :data:`NUMPY_RESAMPLE_BUDGET` of work that way, and scipy after that. Importing ``scipy.signal`` takes over a
    second, which identifying one clip never earns back; scipy's compiled filter is about four times faster than
    numpy's, which indexing a folder does earn back. Switching once numpy has cost about what the import costs
    keeps any job within twice its best time.
    """
    if sr_in == sr_out:
        return np.asarray(audio, dtype=np.float32)
    g = math.gcd(int(sr_in), int(sr_out))
    up, down = int(sr_out) // g, int(sr_in) // g
    x = np.asarray(audio, dtype=np.float64)
    return _resample_poly_any(x, up, down).astype(np.float32)


#: Filter work (output samples x filter taps per output) that :func:`resample` does in numpy before it imports
#: ``scipy.signal`` and uses scipy's compiled filter: about a second of numpy work on a 2020s CPU core, as much as
#: that import costs (numpy's filter takes about 2 ns more per tap than scipy's).
NUMPY_RESAMPLE_BUDGET = 5e8
_numpy_resample_work = 0.0
_prefer_compiled = False


def prefer_compiled_resampler(prefer: bool = True) -> bool:
    """Let :func:`resample` use scipy's compiled filter from its next call on (same samples, see there).

    For jobs known to resample much audio (indexing a large folder): the import of ``scipy.signal`` (over a
    second) then happens at the first resampling, if there is one, instead of after a budget of slower numpy work.
    ``prefer=False`` goes back to the default. Returns the previous setting.
    """
    global _prefer_compiled
    previous, _prefer_compiled = _prefer_compiled, bool(prefer)
    return previous


def _scipy_signal_imported() -> bool:
    """Whether this process has imported ``scipy.signal`` already (then its filter costs nothing more)."""
    return "scipy.signal" in sys.modules


def _resample_poly_any(x: np.ndarray, up: int, down: int) -> np.ndarray:
    """``resample_poly(x, up, down, axis=0)`` by scipy or by :func:`_resample_poly` (see :func:`resample`)."""
    global _numpy_resample_work
    if not (_prefer_compiled or _scipy_signal_imported()):
        work = 20.0 * x.shape[0] * max(up, down) / down * (x.size // max(1, x.shape[0]))  # outputs x taps
        if _numpy_resample_work + work <= NUMPY_RESAMPLE_BUDGET:
            _numpy_resample_work += work
            return _resample_poly(x, up, down)
    from scipy.signal import resample_poly

    return resample_poly(x, up, down, axis=0)


#: Chebyshev coefficients of ``exp(-x) I0(x)`` on [0, 8] (Cephes ``i0.c``, as in numpy and scipy.special).
_I0_A = (-4.4153416464793395e-18, 3.3307945188222384e-17, -2.431279846547955e-16, 1.715391285555133e-15,
         -1.1685332877993451e-14, 7.676185498604936e-14, -4.856446783111929e-13, 2.95505266312964e-12,
         -1.726826291441556e-11, 9.675809035373237e-11, -5.189795601635263e-10, 2.6598237246823866e-09,
         -1.300025009986248e-08, 6.046995022541919e-08, -2.670793853940612e-07, 1.1173875391201037e-06,
         -4.4167383584587505e-06, 1.6448448070728896e-05, -5.754195010082104e-05, 0.00018850288509584165,
         -0.0005763755745385824, 0.0016394756169413357, -0.004324309995050576, 0.010546460394594998,
         -0.02373741480589947, 0.04930528423967071, -0.09490109704804764, 0.17162090152220877,
         -0.3046826723431984, 0.6767952744094761)
#: Kaiser window parameter of ``resample_poly``'s default window ``("kaiser", 5.0)``.
_KAISER_BETA = 5.0
#: Output samples computed per block by :func:`_resample_poly` (rounded to a multiple of ``up``).
_RESAMPLE_BLOCK = 16384


def _i0(x: np.ndarray) -> np.ndarray:
    """Modified Bessel function of order 0 for ``0 <= x <= 8``, as Cephes computes it (``exp(x) * chbevl``).

    The exponential is the C library's (``math.exp``), like scipy.special's, rather than numpy's vectorised one,
    which may differ in the last bit.
    """
    x = np.asarray(x, dtype=np.float64)
    if x.size and (x.min() < 0 or x.max() > 8.0):
        raise ValueError("_i0 covers 0 <= x <= 8 only")
    y = x / 2.0 - 2.0
    b0, b1, b2 = np.full_like(y, _I0_A[0]), np.zeros_like(y), np.zeros_like(y)
    for c in _I0_A[1:]:
        b2 = b1
        b1 = b0
        b0 = y * b1 - b2 + c
    e = np.array([math.exp(v) for v in x.ravel().tolist()], dtype=np.float64).reshape(x.shape)
    return e * (0.5 * (b0 - b2))


@functools.lru_cache(maxsize=32)
def _polyphase_filter(up: int, down: int) -> tuple[np.ndarray, int]:
    """The anti-aliasing filter of ``resample_poly(x, up, down)`` split into its ``up`` phases.

    ``scipy.signal.firwin(2 L + 1, 1 / max(up, down), window=("kaiser", 5.0))`` with ``L = 10 max(up, down)``,
    times ``up``, zero-padded in front so that the output samples sit at its centre (``n_pre_pad``) and at the
    end to a multiple of ``up`` taps, computed with the same operations as scipy.

    Returns
    -------
    taps : np.ndarray, float64, shape (P, up), read-only
        ``taps[k, p]`` multiplies the ``k``-th oldest of the ``P`` input samples that reach an output of phase ``p``.
    n_pre_remove : int
        Leading samples of the full filtered output that ``resample_poly`` drops.
    """
    max_rate = max(up, down)
    cutoff = 1.0 / max_rate
    half_len = 10 * max_rate
    numtaps = 2 * half_len + 1
    m = np.arange(0, numtaps, dtype=np.float64) - 0.5 * (numtaps - 1)
    h = cutoff * np.sinc(cutoff * m)  # firwin: 0 + right * sinc(right m) - 0 * sinc(0 m)
    n = np.arange(0, numtaps, dtype=np.float64)
    alpha = (numtaps - 1) / 2.0
    window = _i0(_KAISER_BETA * np.sqrt(1 - ((n - alpha) / alpha) ** 2.0)) / _i0(np.asarray(_KAISER_BETA))
    h *= window
    h /= np.sum(h)  # firwin's scaling to unit gain at 0 Hz (its cos(pi m 0) factor is exactly 1)
    h *= up
    n_pre_pad = down - half_len % down
    n_pre_remove = (half_len + n_pre_pad) // down
    full = np.concatenate([np.zeros(n_pre_pad), h])
    phases = -(-full.size // up)
    padded = np.zeros(phases * up)
    padded[:full.size] = full
    # padded[(P - 1 - k) * up + p] is the tap of the k-th oldest input sample for an output of phase p
    taps = padded.reshape(phases, up)[::-1].copy()
    taps.setflags(write=False)
    return taps, n_pre_remove


def _resample_poly(x: np.ndarray, up: int, down: int) -> np.ndarray:
    """``scipy.signal.resample_poly(x, up, down, axis=0)`` for float64 ``x`` (coprime ``up``, ``down``), in numpy.

    Output ``y[j]`` is the filtered, upsampled signal at position ``T = (n_pre_remove + j) * down``: the sum over
    the ``P`` input samples ``c = T // up - P + 1 ... T // up`` of ``x[c] * h[(T // up - c) * up + T % up]``,
    accumulated from the oldest sample to the newest as scipy's ``upfirdn`` does (zeros outside the input), so
    that the rounding is the same. Outputs ``up`` apart share their phase, so a block of outputs is a 2-D array
    (rows ``up`` outputs apart, one column per phase) and each of the ``P`` steps is one gather, one multiply by
    a row of taps and one add.
    """
    if x.ndim != 1:
        flat = x.reshape(x.shape[0], -1)
        cols = [_resample_poly(np.ascontiguousarray(flat[:, i]), up, down) for i in range(flat.shape[1])]
        n = cols[0].size if cols else -(-x.shape[0] * up // down)
        return (np.stack(cols, axis=1) if cols else np.zeros((n, 0))).reshape((n,) + x.shape[1:])
    n_in = x.shape[0]
    n_out = -(-n_in * up // down)
    # (resample_poly also pads the filter's end with zeros so that its full output covers every kept sample;
    # zero taps add nothing, so the sums below need only the taps up to the filter's end)
    taps, n_pre_remove = _polyphase_filter(up, down)
    phases = taps.shape[0]
    if n_out == 0:
        return np.zeros(0)
    rows = max(1, _RESAMPLE_BLOCK // up)
    block = rows * up
    n_blocks = -(-n_out // block)
    pos = (n_pre_remove + np.arange(up, dtype=np.int64)) * down  # positions of the first row's outputs
    first, phase = pos // up, pos % up  # newest input sample and phase of each column
    coef = taps[:, phase]  # (P, up): tap k of each column
    index = first[None, :] + (np.arange(rows, dtype=np.int64) * down)[:, None]  # (rows, up), before the offset
    # input with P - 1 zeros in front (index c + P - 1 holds x[c]) and enough zeros behind for the last block
    last = int(first[-1]) + ((n_blocks - 1) * rows + rows - 1) * down + phases
    xpad = np.zeros(max(last + 1, n_in + phases))
    xpad[phases - 1: phases - 1 + n_in] = x
    y = np.empty((n_blocks * rows, up))
    acc = np.empty((rows, up))
    term = np.empty((rows, up))
    for b in range(n_blocks):
        shift = b * rows * down
        acc.fill(0.0)
        for k in range(phases):
            np.take(xpad[shift + k:], index, out=term, mode="clip")  # indices are in range
            np.multiply(term, coef[k], out=term)
            np.add(acc, term, out=acc)
        y[b * rows:(b + 1) * rows] = acc
    return y.reshape(-1)[:n_out]


def peak_normalise(audio: np.ndarray, peak: float = 0.99) -> np.ndarray:
    """Scale so that max |x| == ``peak``; silence is returned unchanged."""
    m = float(np.max(np.abs(audio))) if audio.size else 0.0
    return (audio * (peak / m)).astype(np.float32) if m > 0 else np.asarray(audio, np.float32)


def rms(audio: np.ndarray) -> float:
    """Root mean square of the samples."""
    a = np.asarray(audio, dtype=np.float64)
    return float(np.sqrt(np.mean(a * a))) if a.size else 0.0


def check_rate(sr: Any, name: str = "audio") -> int:
    """``sr`` if it is a sample rate this study can work with: an integer (not a bool) in
    [:data:`MIN_FILE_SR`, :data:`MAX_FILE_SR`]; else :class:`AudioError` naming ``name`` and the range."""
    if isinstance(sr, bool) or not isinstance(sr, (int, np.integer)):
        raise AudioError(f"{name}: sample rate must be an integer number of Hz, got {sr!r}")
    if not MIN_FILE_SR <= sr <= MAX_FILE_SR:
        raise AudioError(f"{name}: sample rate {sr} Hz is outside {MIN_FILE_SR}-{MAX_FILE_SR} Hz")
    return int(sr)


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
    check_rate(sr, name)
    if expected_sr is not None and sr != expected_sr:
        raise AudioError(f"{name}: sample rate {sr} Hz, expected {expected_sr} Hz; resample it first")
    if a.ndim != 1:
        raise AudioError(f"{name}: expected mono audio shaped (n,), got shape {a.shape}; downmix it first")
    if a.size == 0:
        raise AudioError(f"{name}: empty audio (0 samples)")
    if not np.all(np.isfinite(a)):
        raise AudioError(f"{name}: holds NaN or infinite samples; clean the signal first")
    peak = float(np.max(np.abs(a)))
    if peak > MAX_PEAK:
        raise AudioError(f"{name}: samples reach {peak:.3g}, where audio is expected in [-1, 1]; integer PCM "
                         "passed as float? Divide by the format's full scale (32768 for 16-bit) first")
    dur = a.size / sr
    if dur + 1e-9 < min_duration_s:
        raise AudioError(f"{name}: {dur:.3f} s long, shorter than the {min_duration_s:g} s needed; "
                         "use a longer clip")
    if not allow_silence and rms(a) < SILENCE_RMS:
        raise AudioError(f"{name}: is silent (RMS {rms(a):.2e}); nothing to fingerprint")
    if not allow_silence and rms(a - np.mean(a, dtype=np.float64)) < SILENCE_RMS:
        raise AudioError(f"{name}: is a constant signal (DC only, no sound); nothing to fingerprint")
    return a.astype(np.float32, copy=False)


def write_audio(path: str | os.PathLike, audio: np.ndarray, sr: int, subtype: str = "PCM_16") -> None:
    """Write audio atomically; the format comes from the extension (wav, flac, ogg).

    16-bit PCM WAV output is byte-identical for identical input, which keeps the corpus deterministic.
    """
    import soundfile as sf

    from .io import atomic_path

    path = Path(path)
    fmt = path.suffix.lstrip(".").upper() or "WAV"
    with atomic_path(path) as tmp:
        sf.write(str(tmp), np.clip(np.asarray(audio, np.float32), -1.0, 1.0), sr, format=fmt,
                 subtype=subtype if fmt in {"WAV", "FLAC"} else None)
