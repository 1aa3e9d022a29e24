"""The query distortions of the study (docs/study.md, Distortions): one registry of pure, seeded functions.

Every entry of :data:`DISTORTIONS` is a :class:`Distortion`: a name, a description, its default levels (the docs/study.md, Distortions
table), the levels it accepts, and a pure function ``(audio, sr, level, rng) -> audio``. Callers go through
:func:`distort`, which validates the audio and the level, seeds the generator and checks the result::

    >>> y = distort(audio, 16000, "noise_white", 10, seed=7)      # white noise at 10 dB SNR
    >>> conditions("pitch,mp3")                                    # the default (name, level) pairs
    [('pitch', 0.9), ('pitch', 0.95), ('pitch', 1.05), ('pitch', 1.1), ('mp3', 128), ('mp3', 64), ('mp3', 32)]

Conventions
-----------
* Audio is float32 mono at any rate ``sr``; the output has the same rate, is finite float32 and is as long as the
  input, except ``speed`` and ``tempo``, whose output lasts ``1/f`` of the input (``round(n / f)`` samples).
* Levels are numbers (factors, dB, Hz, kbit/s) or strings (``reverb``: ``"small" | "medium" | "large"``).
  Distortions with one setting (``echo``, ``chorus``, ``flanger``, ``tremolo``, ``bandpass``, ``telephone``) take the
  single level ``"default"`` (:data:`DEFAULT`).
* Same audio, rate, name, level and seed give bit-identical output. Only ``noise_*``, ``babble`` and ``reverb`` use
  the random generator; the others are deterministic functions of the audio.
* Only ``gain`` and ``telephone`` clip to [-1, 1]; additive noise is not clipped, so its SNR stays exact.
* Filters that stand for a channel (``lowpass``, ``highpass``, ``telephone``) are zero-phase (forward-backward),
  so the output stays aligned with the input; ``mp3`` removes the codec delay for the same reason.

What each one does (the SoX command it stands for, where there is one)
---------------------------------------------------------------------
* ``pitch f``: pitch and spectrum scaled by ``f`` (``12 log2 f`` semitones), duration kept (Rubber Band through
  ``pedalboard.time_stretch``, formants not preserved, as SoX ``pitch`` shifts the whole spectrum).
* ``tempo f``: duration ``1/f``, pitch kept (Rubber Band, high quality); SoX ``tempo f``.
* ``speed f``: band-limited resampling: duration ``1/f`` and every frequency times ``f``; SoX ``speed f``.
* ``noise_white s``, ``noise_pink s``: Gaussian white / 1/f-power noise scaled so that signal power over added
  noise power is exactly ``s`` dB.
* ``babble s``: 3-5 other eSpeak NG talkers (seeded voices, sentences, rates, pitches, offsets) summed at
  equal RMS and mixed in at ``s`` dB.
* ``reverb``: convolution with a seeded exponentially decaying noise impulse response (RT60 0.3 / 0.6 / 1.2 s,
  direct-to-reverberant ratio +3 / 0 / -3 dB), output scaled back to the input's RMS.
* ``echo``: SoX ``echo 0.8 0.9 500 0.3``: ``y = 0.9 (0.8 x[n] + 0.3 x[n - 500 ms])``.
* ``chorus``: SoX ``chorus 0.6 0.9 50 0.4 0.25 2 -t 60 0.32 0.4 1.3 -s`` (two modulated delays).
* ``flanger``: SoX ``flanger`` defaults: 0-2 ms delay swept by a 0.5 Hz sine, width 71 %, no regeneration.
* ``tremolo``: 8 Hz sinusoidal amplitude modulation, depth 0.5 (gain swings between 0.5 and 1).
* ``bandpass``: SoX ``band 2000``: two-pole resonator at 2 kHz, bandwidth 1 kHz (SoX's default ``fc/2``).
* ``lowpass c``, ``highpass c``: 8th-order Butterworth, applied forward and backward (zero phase).
* ``mp3 b``: MP3 (LAME through libsndfile) at constant bit rate ``b`` kbit/s, decoded again in memory.
* ``telephone``: to 8 kHz, 300-3400 Hz band-pass, 8-bit mu-law (mu = 255), back to ``sr``.
* ``gain g``: times ``10^(g/20)``, clipped to [-1, 1].

MP3 bit rate
------------
soundfile 0.14 (libsndfile 1.2.2) has no bit-rate argument; with ``bitrate_mode="CONSTANT"`` the
``compression_level`` c in [0, 1) maps linearly onto the MPEG version's bit-rate range:
``kbps = max - c (max - min)``, with (min, max) = (32, 320) for MPEG-1 rates (32, 44.1, 48 kHz), (8, 160) for MPEG-2
(16, 22.05, 24 kHz) and (8, 64) for MPEG-2.5 (8, 11.025, 12 kHz). :func:`mp3_compression_level` inverts that map
(16 kHz: 128 -> 0.2105, 64 -> 0.6316, 32 -> 0.8421; the measured stream sizes match to within 3 %, the rest is
frame headers); libsndfile refuses exactly 1.0, so the lowest bit rate uses 0.9999, which rounds to the same value.
On 16 kHz generated speech the decoded signal is at about 25 / 24 / 18 dB SNR for 128 / 64 / 32 kbit/s.
A rate that is not an MPEG rate, or one whose range lacks the bit rate, is resampled to 16 kHz
(bit rates up to 160) or 44.1 kHz for the codec and back. When the encoder writes its gapless-playback (LAME/Info)
tag the decoder returns exactly the input's samples; when it cannot (frames too small for the tag, 32 kbit/s and
below at most rates) the decoded audio lags by the LAME encoder delay plus the mpg123 decoder delay, 576 + 529 =
1105 samples, which :func:`_mp3` removes.
"""

from __future__ import annotations

import io
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from fractions import Fraction
from typing import Union

import numpy as np

from .audio import check_audio, resample

#: The level of the distortions that have a single setting.
DEFAULT = "default"
#: Shortest clip :func:`distort` accepts (seconds).
MIN_DURATION_S = 0.05

Level = Union[float, int, str]
DistortFn = Callable[[np.ndarray, int, Level, np.random.Generator], np.ndarray]


# --------------------------------------------------------------------------------------------------------------
# Allowed levels
# --------------------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Range:
    """A closed interval of numeric levels ``[lo, hi]``.

    ``integer`` asks for whole numbers; ``below_nyquist`` also requires ``level < sr / 2`` (cut-off frequencies).
    """

    lo: float
    hi: float
    unit: str = ""
    integer: bool = False
    below_nyquist: bool = False

    def describe(self, sr: int | None = None) -> str:
        text = f"[{self.lo:g}, {self.hi:g}]"
        if self.integer:
            text = "whole numbers in " + text
        if self.unit:
            text += f" {self.unit}"
        if self.below_nyquist:
            text += " and below sr/2" + (f" = {sr / 2:g} Hz" if sr else "")
        return text

    def normalise(self, level: object, sr: int | None = None) -> float | int | None:
        """Return the level as a float (or int) when it is allowed, else None."""
        if isinstance(level, (bool, np.bool_)) or not isinstance(level, (int, float, np.integer, np.floating)):
            return None
        value = float(level)
        if not math.isfinite(value) or not (self.lo <= value <= self.hi):
            return None
        if self.below_nyquist and sr is not None and value >= sr / 2:
            return None
        if self.integer:
            return int(value) if value.is_integer() else None
        return value


@dataclass(frozen=True)
class Choice:
    """A finite set of allowed levels (strings or whole numbers)."""

    values: tuple
    unit: str = ""

    def describe(self, sr: int | None = None) -> str:
        text = "one of " + ", ".join(repr(v) for v in self.values)
        return text + (f" ({self.unit})" if self.unit else "")

    def normalise(self, level: object, sr: int | None = None) -> Level | None:
        if isinstance(level, (bool, np.bool_)):
            return None
        if isinstance(level, str):
            return level if level in self.values else None
        if isinstance(level, (int, float, np.integer, np.floating)) and math.isfinite(float(level)):
            for v in self.values:
                if not isinstance(v, str) and float(level) == float(v):
                    return v
        return None


@dataclass(frozen=True)
class Distortion:
    """One entry of the registry.

    Attributes
    ----------
    name : str
        Registry key.
    description : str
        One line for tables and reports (states the SoX equivalent where there is one).
    levels : tuple
        Default levels (docs/study.md, Distortions).
    allowed : Range or Choice
        The levels :meth:`validate` accepts.
    fn : callable
        ``fn(audio float32 (n,), sr, level, rng) -> float array (m,)``; pure: never modifies ``audio``.
    changes_length : bool
        True for ``speed`` and ``tempo`` (output ``round(n / f)`` samples); all others keep ``n``.
    """

    name: str
    description: str
    levels: tuple
    allowed: Range | Choice
    fn: DistortFn
    changes_length: bool = False

    def validate(self, level: object, sr: int | None = None) -> Level:
        """Return the normalised level, or raise ValueError naming the distortion, the level and the range."""
        value = self.allowed.normalise(level, sr)
        if value is None:
            raise ValueError(f"distortion {self.name!r}: level {level!r} ({type(level).__name__}) is not allowed; "
                             f"allowed: {self.allowed.describe(sr)}; defaults: {list(self.levels)}")
        return value

    def output_length(self, n: int, level: Level) -> int:
        """Number of output samples for ``n`` input samples."""
        return max(1, int(round(n / float(level)))) if self.changes_length else n


# --------------------------------------------------------------------------------------------------------------
# Small helpers
# --------------------------------------------------------------------------------------------------------------

def _fit_length(y: np.ndarray, n: int) -> np.ndarray:
    """Crop or zero-pad ``y`` to ``n`` samples."""
    if y.size >= n:
        return y[:n]
    return np.concatenate([y, np.zeros(n - y.size, dtype=y.dtype)])


def _power(x: np.ndarray) -> float:
    x = np.asarray(x, dtype=np.float64)
    return float(np.mean(x * x)) if x.size else 0.0


def _mix_at_snr(x: np.ndarray, noise: np.ndarray, snr_db: float) -> np.ndarray:
    """``x + a * noise`` with ``a`` chosen so that power(x) / power(a * noise) = 10^(snr/10) exactly.

    Silence (or an all-zero noise) gets nothing added: an SNR relative to zero signal power adds zero noise.
    """
    ps, pn = _power(x), _power(noise)
    if ps == 0.0 or pn == 0.0:
        return np.asarray(x, dtype=np.float64).copy()
    a = math.sqrt(ps / (pn * 10.0 ** (snr_db / 10.0)))
    return np.asarray(x, dtype=np.float64) + a * np.asarray(noise, dtype=np.float64)


def _delayed(x: np.ndarray, delay_samples: np.ndarray) -> np.ndarray:
    """``x[n - d[n]]`` for fractional, time-varying delays ``d`` (linear interpolation; zero before the start)."""
    n = np.arange(x.size, dtype=np.float64)
    return np.interp(n - delay_samples, n, x, left=0.0, right=0.0)


def _triangle(phase: np.ndarray) -> np.ndarray:
    """Triangle wave in [-1, 1] with period 1 in ``phase`` (cycles)."""
    return 4.0 * np.abs(phase - np.floor(phase + 0.5)) - 1.0


# --------------------------------------------------------------------------------------------------------------
# The distortions: fn(audio, sr, level, rng) -> audio
# --------------------------------------------------------------------------------------------------------------

def _time_stretch(x: np.ndarray, sr: int, stretch: float, semitones: float) -> np.ndarray:
    import pedalboard

    y = pedalboard.time_stretch(np.ascontiguousarray(x, dtype=np.float32)[None, :], float(sr),
                                stretch_factor=float(stretch), pitch_shift_in_semitones=float(semitones),
                                high_quality=True, preserve_formants=False)
    return np.asarray(y[0], dtype=np.float32)


def _pitch(x: np.ndarray, sr: int, factor: float, rng: np.random.Generator) -> np.ndarray:
    return _fit_length(_time_stretch(x, sr, 1.0, 12.0 * math.log2(factor)), x.size)


def _tempo(x: np.ndarray, sr: int, factor: float, rng: np.random.Generator) -> np.ndarray:
    return _fit_length(_time_stretch(x, sr, factor, 0.0), max(1, int(round(x.size / factor))))


def _speed(x: np.ndarray, sr: int, factor: float, rng: np.random.Generator) -> np.ndarray:
    from scipy.signal import resample_poly

    ratio = Fraction(factor).limit_denominator(1000)  # factor = p / q: play the clip back at sr * p / q
    y = resample_poly(np.asarray(x, dtype=np.float64), ratio.denominator, ratio.numerator)
    return _fit_length(y, max(1, int(round(x.size / factor))))


def _white(n: int, rng: np.random.Generator) -> np.ndarray:
    return rng.standard_normal(n)


def _pink(n: int, rng: np.random.Generator) -> np.ndarray:
    """Gaussian noise with power spectral density proportional to 1/f (DC removed)."""
    spec = np.fft.rfft(rng.standard_normal(n))
    f = np.arange(spec.size, dtype=np.float64)
    f[0] = np.inf  # no DC
    return np.fft.irfft(spec / np.sqrt(f), n)


def _noise_white(x: np.ndarray, sr: int, snr: float, rng: np.random.Generator) -> np.ndarray:
    return _mix_at_snr(x, _white(x.size, rng), snr)


def _noise_pink(x: np.ndarray, sr: int, snr: float, rng: np.random.Generator) -> np.ndarray:
    return _mix_at_snr(x, _pink(x.size, rng), snr)


#: eSpeak NG (language, variant) pairs the babble talkers are drawn from.
BABBLE_VOICES: tuple[tuple[str, str], ...] = (
    ("en-us", "m1"), ("en", "f2"), ("fr", "m3"), ("de", "f1"), ("es", "m4"), ("it", "f3"), ("pt", "m5"),
    ("nl", "f4"), ("sv", "m6"), ("pl", "f5"), ("en-us", "m7"), ("es-419", "f2"), ("de", "m2"), ("fr", "f1"),
    ("en", "m8"), ("it", "m3"),
)


def babble_noise(n: int, sr: int, rng: np.random.Generator, min_voices: int = 3, max_voices: int = 5) -> np.ndarray:
    """Seeded speech babble: ``min_voices``-``max_voices`` eSpeak NG talkers, each at unit RMS, summed.

    Every talker is a different entry of :data:`BABBLE_VOICES` with its own rate, pitch, seeded sentences
    (:func:`samaf_lib.corpus.text.sentence`) and start offset, spoken with :func:`samaf_lib.corpus.espeak.synthesize`
    (whose output depends on its arguments alone) and resampled to ``sr``.

    Parameters
    ----------
    n : int
        Number of samples wanted.
    sr : int
        Their rate.
    rng : np.random.Generator
        Draws everything above.

    Returns
    -------
    np.ndarray, float64, shape (n,)
    """
    from .corpus.espeak import synthesize
    from .corpus.text import sentence

    k = int(rng.integers(min_voices, max_voices + 1))
    picks = rng.choice(len(BABBLE_VOICES), size=k, replace=False)
    total = np.zeros(n, dtype=np.float64)
    for i in picks:
        lang, variant = BABBLE_VOICES[int(i)]
        rate, pitch = int(rng.integers(140, 200)), int(rng.integers(25, 75))
        pieces: list[np.ndarray] = []
        have, native, need = 0, 0, 1
        while have < need:
            a, native = synthesize(sentence(rng), lang, variant, rate=rate, pitch=pitch,
                                   noise_seed=int(rng.integers(0, 2**31 - 1)))
            pieces.append(a)
            have += a.size
            need = int(math.ceil(n * native / sr)) + native // 20  # 50 ms spare for the resampler's edges
        speech = np.concatenate(pieces)
        start = int(rng.integers(0, speech.size - need + 1))
        voice = _fit_length(np.asarray(resample(speech[start:start + need], native, sr), dtype=np.float64), n)
        p = _power(voice)
        if p > 0.0:
            total += voice / math.sqrt(p)
    return total


def _babble(x: np.ndarray, sr: int, snr: float, rng: np.random.Generator) -> np.ndarray:
    return _mix_at_snr(x, babble_noise(x.size, sr, rng), snr)


#: Reverb rooms: (RT60 s, pre-delay s, reverberant-to-direct energy ratio).
REVERB_ROOMS: dict[str, tuple[float, float, float]] = {
    "small": (0.3, 0.005, 0.5),
    "medium": (0.6, 0.010, 1.0),
    "large": (1.2, 0.020, 2.0),
}


def reverb_ir(sr: int, room: str, rng: np.random.Generator) -> np.ndarray:
    """Impulse response of a reverb room: a unit direct path, then Gaussian noise decaying 60 dB in RT60.

    Returns
    -------
    np.ndarray, float64, shape (round(1.2 * RT60 * sr),)
    """
    rt60, predelay, ratio = REVERB_ROOMS[room]
    n = int(round(1.2 * rt60 * sr))
    d = max(1, int(round(predelay * sr)))
    t = np.arange(n - d, dtype=np.float64) / sr
    tail = rng.standard_normal(n - d) * 10.0 ** (-3.0 * t / rt60)  # amplitude: -60 dB of energy at RT60
    tail *= math.sqrt(ratio / np.sum(tail * tail))
    h = np.zeros(n, dtype=np.float64)
    h[0] = 1.0
    h[d:] = tail
    return h


def _reverb(x: np.ndarray, sr: int, room: str, rng: np.random.Generator) -> np.ndarray:
    from scipy.signal import fftconvolve

    y = fftconvolve(np.asarray(x, dtype=np.float64), reverb_ir(sr, room, rng))[: x.size]
    py, px = _power(y), _power(x)
    return y * math.sqrt(px / py) if py > 0.0 else y


def _echo(x: np.ndarray, sr: int, level: str, rng: np.random.Generator) -> np.ndarray:
    gain_in, gain_out, delay_s, decay = 0.8, 0.9, 0.5, 0.3  # SoX: echo 0.8 0.9 500 0.3
    x = np.asarray(x, dtype=np.float64)
    d = int(round(delay_s * sr))
    y = gain_in * x
    if d < x.size:
        y[d:] += decay * x[: x.size - d]
    return gain_out * y


def _modulated_delays(x: np.ndarray, sr: int, voices: Iterable[tuple[float, float, float, float, str]]
                      ) -> np.ndarray:
    """Sum of ``decay * x[n - d(n)]`` over voices (delay_ms, decay, speed_hz, depth_ms, "sine" | "triangle").

    The delay sweeps from ``delay_ms`` to ``delay_ms + depth_ms`` and back at ``speed_hz``.
    """
    t = np.arange(x.size, dtype=np.float64) / sr
    out = np.zeros(x.size, dtype=np.float64)
    for delay_ms, decay, speed_hz, depth_ms, shape in voices:
        phase = speed_hz * t
        m = np.sin(2.0 * np.pi * phase) if shape == "sine" else _triangle(phase)
        d = (delay_ms + depth_ms * (1.0 + m) / 2.0) * 1e-3 * sr
        out += decay * _delayed(x, d)
    return out


def _chorus(x: np.ndarray, sr: int, level: str, rng: np.random.Generator) -> np.ndarray:
    # SoX: chorus 0.6 0.9 50 0.4 0.25 2 -t 60 0.32 0.4 1.3 -s
    gain_in, gain_out = 0.6, 0.9
    voices = [(50.0, 0.4, 0.25, 2.0, "triangle"), (60.0, 0.32, 0.4, 1.3, "sine")]
    x = np.asarray(x, dtype=np.float64)
    return gain_out * (gain_in * x + _modulated_delays(x, sr, voices))


def _flanger(x: np.ndarray, sr: int, level: str, rng: np.random.Generator) -> np.ndarray:
    # SoX flanger defaults: delay 0 ms, depth 2 ms, regen 0 %, width 71 %, speed 0.5 Hz, sine, linear interpolation
    width = 0.71
    x = np.asarray(x, dtype=np.float64)
    return (x + _modulated_delays(x, sr, [(0.0, width, 0.5, 2.0, "sine")])) / (1.0 + width)


#: Tremolo rate (Hz) and depth (the gain swings between 1 - depth and 1).
TREMOLO_HZ, TREMOLO_DEPTH = 8.0, 0.5


def _tremolo(x: np.ndarray, sr: int, level: str, rng: np.random.Generator) -> np.ndarray:
    t = np.arange(x.size, dtype=np.float64) / sr
    g = 1.0 - TREMOLO_DEPTH * (1.0 + np.sin(2.0 * np.pi * TREMOLO_HZ * t)) / 2.0
    return np.asarray(x, dtype=np.float64) * g


def resonator(sr: int, centre_hz: float, bandwidth_hz: float) -> tuple[np.ndarray, np.ndarray]:
    """Two-pole resonator (SoX ``band``): poles at radius exp(-pi bw / sr) and angle 2 pi fc / sr, gain 1 at fc.

    Returns
    -------
    b, a : np.ndarray, float64, shapes (1,) and (3,)
    """
    r = math.exp(-math.pi * bandwidth_hz / sr)
    w0 = 2.0 * math.pi * centre_hz / sr
    a = np.array([1.0, -2.0 * r * math.cos(w0), r * r])
    z = np.exp(-1j * w0)
    gain_at_fc = 1.0 / abs(a[0] + a[1] * z + a[2] * z * z)
    return np.array([1.0 / gain_at_fc]), a


def _bandpass(x: np.ndarray, sr: int, level: str, rng: np.random.Generator) -> np.ndarray:
    from scipy.signal import lfilter

    centre = 2000.0  # SoX: band 2000 (width defaults to centre / 2)
    if centre >= sr / 2:
        raise ValueError(f"distortion 'bandpass': centre {centre:g} Hz needs sr > {2 * centre:g} Hz, got {sr}")
    b, a = resonator(sr, centre, centre / 2.0)
    return lfilter(b, a, np.asarray(x, dtype=np.float64))


def _butter(x: np.ndarray, sr: int, cutoff: float | list[float], btype: str, order: int = 8) -> np.ndarray:
    from scipy.signal import butter, sosfiltfilt

    sos = butter(order, cutoff, btype=btype, fs=sr, output="sos")
    x = np.asarray(x, dtype=np.float64)
    padlen = min(x.size - 1, int(round(0.02 * sr)))  # 20 ms of odd extension at each end tames edge transients
    return sosfiltfilt(sos, x, padlen=max(0, padlen))


def _lowpass(x: np.ndarray, sr: int, cutoff: float, rng: np.random.Generator) -> np.ndarray:
    return _butter(x, sr, cutoff, "lowpass")


def _highpass(x: np.ndarray, sr: int, cutoff: float, rng: np.random.Generator) -> np.ndarray:
    return _butter(x, sr, cutoff, "highpass")


#: Sample rates an MP3 (MPEG-1/2/2.5 layer III) stream can have, with the (min, max) constant bit rate in kbit/s.
MP3_RATES: dict[int, tuple[int, int]] = {
    **{r: (32, 320) for r in (32000, 44100, 48000)},
    **{r: (8, 160) for r in (16000, 22050, 24000)},
    **{r: (8, 64) for r in (8000, 11025, 12000)},
}
#: Bit rates MPEG layer III defines (kbit/s); the ``mp3`` levels.
MP3_BITRATES = (8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160, 192, 224, 256, 320)
#: LAME's encoder delay plus mpg123's decoder delay, in samples at the codec's rate (see the module docstring).
MP3_CODEC_DELAY = 576 + 529


def mp3_codec_rate(sr: int, kbps: int) -> int:
    """The rate the codec runs at: ``sr`` when it is an MPEG rate that allows ``kbps``, else 16 or 44.1 kHz."""
    lo, hi = MP3_RATES.get(sr, (0, -1))
    if lo <= kbps <= hi:
        return sr
    return 16000 if kbps <= 160 else 44100


def mp3_compression_level(sr: int, kbps: int) -> float:
    """soundfile's ``compression_level`` that gives a constant ``kbps`` at MPEG rate ``sr`` (module docstring)."""
    lo, hi = MP3_RATES[sr]
    return min((hi - kbps) / (hi - lo), 0.9999)  # libsndfile refuses exactly 1.0; 0.9999 still rounds to ``lo``


def _mp3(x: np.ndarray, sr: int, kbps: int, rng: np.random.Generator) -> np.ndarray:
    import soundfile as sf

    rate = mp3_codec_rate(sr, kbps)
    a = resample(np.asarray(x, dtype=np.float32), sr, rate)
    buf = io.BytesIO()
    sf.write(buf, a, rate, format="MP3", compression_level=mp3_compression_level(rate, kbps),
             bitrate_mode="CONSTANT")
    buf.seek(0)
    y, _ = sf.read(buf, dtype="float32")
    if y.ndim > 1:
        y = y.mean(axis=1)
    if y.size != a.size:  # no gapless tag: the decoded stream starts with the codec delay
        y = y[MP3_CODEC_DELAY:]
    y = _fit_length(y, a.size)
    return _fit_length(resample(y, rate, sr), x.size)


MU_LAW_MU = 255.0


def mu_law(x: np.ndarray, bits: int = 8) -> np.ndarray:
    """Compand with mu-law (mu = 255), quantise to ``2**bits`` levels, expand. Input clipped to [-1, 1]."""
    x = np.clip(np.asarray(x, dtype=np.float64), -1.0, 1.0)
    c = np.sign(x) * np.log1p(MU_LAW_MU * np.abs(x)) / math.log1p(MU_LAW_MU)
    steps = 2 ** bits - 1
    c = np.round((c + 1.0) / 2.0 * steps) / steps * 2.0 - 1.0
    return np.sign(c) * np.expm1(np.abs(c) * math.log1p(MU_LAW_MU)) / MU_LAW_MU


def _telephone(x: np.ndarray, sr: int, level: str, rng: np.random.Generator) -> np.ndarray:
    narrow = np.asarray(resample(np.asarray(x, dtype=np.float32), sr, 8000), dtype=np.float64)
    narrow = _butter(narrow, 8000, [300.0, 3400.0], "bandpass", order=4)
    narrow = mu_law(narrow)
    y = resample(narrow.astype(np.float32), 8000, sr)
    return np.clip(_fit_length(y, x.size), -1.0, 1.0)


def _gain(x: np.ndarray, sr: int, db: float, rng: np.random.Generator) -> np.ndarray:
    return np.clip(np.asarray(x, dtype=np.float64) * 10.0 ** (db / 20.0), -1.0, 1.0)


# --------------------------------------------------------------------------------------------------------------
# The registry
# --------------------------------------------------------------------------------------------------------------

_FACTORS = (0.90, 0.95, 1.05, 1.10)
_FACTOR_RANGE = Range(0.5, 2.0, "(factor)")
_SNR_RANGE = Range(-20.0, 60.0, "dB SNR")
_SINGLE = Choice((DEFAULT,))


def _registry() -> dict[str, Distortion]:
    entries = [
        Distortion("pitch", "pitch shift by factor f (12 log2 f semitones), duration kept; SoX pitch",
                   _FACTORS, _FACTOR_RANGE, _pitch),
        Distortion("tempo", "time stretch to duration 1/f, pitch kept; SoX tempo",
                   _FACTORS, _FACTOR_RANGE, _tempo, changes_length=True),
        Distortion("speed", "resampled playback: duration 1/f, frequencies times f; SoX speed",
                   _FACTORS, _FACTOR_RANGE, _speed, changes_length=True),
        Distortion("noise_white", "additive white Gaussian noise at an SNR (dB)",
                   (20, 10, 5, 0), _SNR_RANGE, _noise_white),
        Distortion("noise_pink", "additive pink (1/f) Gaussian noise at an SNR (dB)",
                   (20, 10, 5, 0), _SNR_RANGE, _noise_pink),
        Distortion("babble", "3-5 other eSpeak NG voices mixed in at an SNR (dB)",
                   (20, 10, 5), _SNR_RANGE, _babble),
        Distortion("reverb", "room reverberation, RT60 0.3 / 0.6 / 1.2 s",
                   ("small", "medium", "large"), Choice(tuple(REVERB_ROOMS), "room"), _reverb),
        Distortion("echo", "one echo; SoX echo 0.8 0.9 500 0.3", (DEFAULT,), _SINGLE, _echo),
        Distortion("chorus", "two modulated delays; SoX chorus 0.6 0.9 50 0.4 0.25 2 -t 60 0.32 0.4 1.3 -s",
                   (DEFAULT,), _SINGLE, _chorus),
        Distortion("flanger", "0-2 ms delay swept at 0.5 Hz, width 71 %; SoX flanger defaults",
                   (DEFAULT,), _SINGLE, _flanger),
        Distortion("tremolo", "8 Hz amplitude modulation, depth 0.5; SoX tremolo 8 50",
                   (DEFAULT,), _SINGLE, _tremolo),
        Distortion("bandpass", "two-pole resonator at 2 kHz, 1 kHz wide; SoX band 2000",
                   (DEFAULT,), _SINGLE, _bandpass),
        Distortion("lowpass", "8th-order zero-phase Butterworth low-pass at a cut-off (Hz)",
                   (2000,), Range(20.0, 48000.0, "Hz", below_nyquist=True), _lowpass),
        Distortion("highpass", "8th-order zero-phase Butterworth high-pass at a cut-off (Hz)",
                   (500,), Range(20.0, 48000.0, "Hz", below_nyquist=True), _highpass),
        Distortion("mp3", "MP3 encode and decode at a constant bit rate (kbit/s)",
                   (128, 64, 32), Choice(MP3_BITRATES, "kbit/s"), _mp3),
        Distortion("telephone", "8 kHz, 300-3400 Hz band, 8-bit mu-law",
                   (DEFAULT,), _SINGLE, _telephone),
        Distortion("gain", "gain in dB, clipped to [-1, 1]",
                   (-20, 10), Range(-60.0, 40.0, "dB"), _gain),
    ]
    return {d.name: d for d in entries}


#: Every distortion of the study by name, in docs/study.md, Distortions order.
DISTORTIONS: dict[str, Distortion] = _registry()


# --------------------------------------------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------------------------------------------

def _unknown(names: Iterable[str]) -> ValueError:
    bad = ", ".join(repr(n) for n in names)
    return ValueError(f"unknown distortion {bad}; valid names: {', '.join(DISTORTIONS)} (or 'all')")


def parse_names(names: str | Iterable[str] = "all") -> list[str]:
    """Turn ``"all"``, ``"pitch,tempo"`` or a list of names into registry names (order kept, duplicates dropped).

    Raises
    ------
    ValueError
        An unknown name (the message lists the valid ones) or an empty selection.
    """
    if isinstance(names, str):
        items = [s.strip() for s in names.split(",")]
    else:
        items = [str(s).strip() for s in names]
    items = [s for s in items if s]
    if not items:
        raise ValueError(f"no distortion named in {names!r}; give 'all' or a comma list of: {', '.join(DISTORTIONS)}")
    if "all" in items:
        if len(items) > 1:
            raise ValueError(f"'all' cannot be combined with other names in {names!r}")
        return list(DISTORTIONS)
    bad = [s for s in items if s not in DISTORTIONS]
    if bad:
        raise _unknown(bad)
    return list(dict.fromkeys(items))


def conditions(names: str | Iterable[str] = "all") -> list[tuple[str, Level]]:
    """Every default (name, level) pair of the selected distortions, in registry then level order."""
    return [(n, level) for n in parse_names(names) for level in DISTORTIONS[n].levels]


def get(name: str) -> Distortion:
    """The registry entry ``name``; an unknown name raises ValueError listing the valid ones."""
    if not isinstance(name, str) or name not in DISTORTIONS:
        raise _unknown([name])
    return DISTORTIONS[name]


def distort(audio: np.ndarray, sr: int, name: str, level: Level, seed: int) -> np.ndarray:
    """Apply one distortion at one level.

    Parameters
    ----------
    audio : np.ndarray, shape (n,)
        Mono samples, finite, at least :data:`MIN_DURATION_S` long (silence allowed).
    sr : int
        Sample rate of ``audio`` (and of the output).
    name : str
        A key of :data:`DISTORTIONS`.
    level : float, int or str
        A level the distortion allows (see ``DISTORTIONS[name].allowed``).
    seed : int
        Seeds the random generator (noise, babble, reverb); same inputs and seed give identical output.

    Returns
    -------
    np.ndarray, float32, shape (n,) or, for ``speed``/``tempo`` at factor f, (round(n / f),)

    Raises
    ------
    ValueError
        Unknown name (lists the valid ones), level not allowed (names the distortion, level and range), bad seed.
    AudioError
        Audio that is not mono, empty, non-finite or shorter than :data:`MIN_DURATION_S`.
    """
    d = get(name)
    x = check_audio(audio, sr, name=f"input of distortion {name!r}", min_duration_s=MIN_DURATION_S,
                    allow_silence=True)
    value = d.validate(level, int(sr))
    if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"distortion {name!r}: seed must be a non-negative integer, got {seed!r}")
    rng = np.random.default_rng(int(seed))
    y = np.asarray(d.fn(x, int(sr), value, rng), dtype=np.float32)
    n_out = d.output_length(x.size, value)
    if y.shape != (n_out,):  # every function fits its own length; this guards the contract
        raise RuntimeError(f"distortion {name!r} at {value!r} returned shape {y.shape}, expected ({n_out},)")
    if not np.all(np.isfinite(y)):
        raise RuntimeError(f"distortion {name!r} at {value!r} produced non-finite samples")
    return y
