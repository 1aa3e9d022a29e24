"""``synthvox``: a VoxCeleb-like corpus generated from a seed with eSpeak NG (docs/study.md, Data).

Every speaker is one distinct voice: a (language or accent, voice variant, pitch, rate, pitch range) combination,
with VoxCeleb1's speaker attributes ``gender`` (from the variant: ``m1``-``m8`` male, ``f1``-``f5`` female) and
``nationality`` (from the language or accent, :data:`NATIONALITY_VOICES`). Nationalities are dealt round-robin
(in a seeded order) with alternating genders, so that both are balanced: 48 speakers give 12
nationalities x (2 male + 2 female), the study's 96 (``data.n_speakers``) 12 x (4 + 4). Every voice reads English-vocabulary sentences from
:func:`samaf_lib.corpus.text.varied_sentence` (about 900 words, new proper names and numbers, a dozen sentence
shapes) with its own language's letter-to-sound rules, i.e. with a strong accent.

Every utterance varies its voice (:func:`utterance_style`): rate, pitch and pitch range drawn around the voice's
own, a small pitch and rate movement from sentence to sentence, and a vocal-tract warp that scales every frequency
by about 0.94-1.06. Without this (``varied=False``, the corpus as first generated) the engine spoke every
utterance of a voice with the same settings, reusing its recorded consonant bursts sample for sample, and from a
vocabulary of about 150 words: different utterances of one voice then shared identical spectral landmarks, which
no two real recordings do (docs/study.md, Data).

Each utterance: sentences synthesised and joined with short pauses until the utterance reaches a length drawn
uniformly in ``[min_s, max_s]``; cut there, at a pause between words when one lies in the last 0.3 s, hard
otherwise (10-ms fade-out); resampled from the engine's 22,050 Hz to ``sr``. Then a random "in the wild" channel:

1. room reverberation (probability 0.6): an impulse response of exponentially decaying Gaussian noise,
   RT60 uniform in 0.2-0.9 s, direct-to-reverberant ratio uniform in 0-10 dB;
2. background noise (always): white, pink or brown noise, or babble of 2-4 other synthesised voices, mixed at an
   SNR uniform in 10-30 dB (against the RMS of the whole utterance);
3. a channel filter (probability 0.2 each): none, low-pass (2.5-6.5 kHz), high-pass (150-500 Hz), band-pass
   (200-400 Hz to 3-4 kHz, order-4 Butterworth) or a peaking EQ (300-4000 Hz, +-3-12 dB, Q 0.7-3);
4. a recording gain uniform in -6..+6 dB applied to the signal at peak 0.9 and clipped at full scale (positive
   gains clip the loudest peaks, negative ones leave no trace after the next step);
5. peak normalisation to 0.9; 16-bit PCM WAV.

Determinism. Every random draw comes from ``np.random.SeedSequence(seed, spawn_key=...)``: speaker design
``(0,)``, an utterance's text and length ``(1, speaker, utterance)``, its channel ``(2, speaker, utterance)``, its
voice variation ``(3, speaker, utterance)``, so an
utterance does not depend on the order in which utterances are generated nor on how many there are. The speech
engine is made a pure function of its input by :func:`samaf_lib.corpus.espeak.synthesize` (a fresh engine per
sentence, its noise generator seeded from the utterance's seed), so same arguments give byte-identical WAV files,
whatever ran before in the process and whenever it runs.
"""

from __future__ import annotations

import math
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import fft as sp_fft
from scipy import signal

from ..audio import AudioError, check_audio, peak_normalise, resample, rms, write_audio
from ..progress import bar
from .espeak import FEMALE_VARIANTS, MALE_VARIANTS, EspeakError, synthesize
from .splits import COLUMNS
from .text import sentence, varied_sentence

#: Nationality (VoxCeleb1's ``Nationality`` values) -> eSpeak NG languages/accents spoken by its speakers.
#: Every one of these loads in the eSpeak NG shipped by ``espeakng-loader`` (checked by the tests).
NATIONALITY_VOICES: dict[str, tuple[str, ...]] = {
    "USA": ("en-us",),
    "UK": ("en", "en-GB-x-rp", "en-GB-scotland"),
    "France": ("fr",),
    "Germany": ("de",),
    "Spain": ("es",),
    "Mexico": ("es-419",),
    "Italy": ("it",),
    "Brazil": ("pt-BR",),
    "Portugal": ("pt",),
    "Netherlands": ("nl",),
    "Sweden": ("sv",),
    "Poland": ("pl",),
}
#: Extra columns of the generated corpus, after :data:`samaf_lib.corpus.splits.COLUMNS`.
EXTRA_COLUMNS = ("language", "variant", "pitch", "rate", "pitch_range", "utt_rate", "utt_pitch", "utt_pitch_range",
                 "warp", "channel", "rt60_s", "noise", "snr_db", "filter", "gain_db", "cut", "text")
SOURCE = "synthvox"
PEAK = 0.9
_PITCH = (30, 70)        # eSpeak pitch parameter range (0-100 scale, 50 = the variant's own pitch)
_RATE = (140, 200)       # words per minute
_PITCH_RANGE = (30, 80)  # intonation range (0-100)
_PAUSE_S = (0.15, 0.5)   # silence between sentences
_CUT_SEARCH_S = 0.3      # look this far back from the target length for a pause


@dataclass(frozen=True)
class Voice:
    """One synthetic speaker: who it is (id, gender, nationality) and how eSpeak NG speaks for it."""

    speaker_id: str
    gender: str
    nationality: str
    language: str
    variant: str
    pitch: int
    rate: int
    pitch_range: int


# --------------------------------------------------------------------------------------------------- speakers
def design_speakers(n_speakers: int, seed: int,
                    voices: dict[str, tuple[str, ...]] | None = None) -> list[Voice]:
    """The corpus's speakers, each a distinct voice.

    Speaker ``i`` (0-based) belongs to nationality ``i mod P`` of a seeded permutation of the ``P`` nationalities,
    with the gender alternating within a round and from round to round (balanced genders overall and per
    nationality), the nationality's accents taken in turn (a male and a female speaker each before the next
    accent), variants dealt per gender from a seeded permutation,
    and pitch, rate and pitch range drawn at random. Two speakers with the same language and variant differ by at
    least 8 in pitch or 20 words per minute in rate. Speaker ``i`` does not depend on ``n_speakers``.

    Parameters
    ----------
    n_speakers : int
        How many speakers (>= 1).
    seed : int
        Non-negative seed.
    voices : dict of str to tuple of str, optional
        Nationality -> eSpeak NG languages; default :data:`NATIONALITY_VOICES`.

    Returns
    -------
    list of Voice, ids ``sv0001``, ``sv0002``, ...
    """
    _check_count("data.n_speakers", n_speakers)
    pool = list((voices or NATIONALITY_VOICES).items())
    if not pool or any(not langs for _, langs in pool):
        raise ValueError("voices: give at least one nationality, each with at least one eSpeak NG language")
    rng = np.random.default_rng(np.random.SeedSequence(_check_seed(seed), spawn_key=(0,)))
    order = rng.permutation(len(pool))
    variants = {"m": [str(v) for v in rng.permutation(MALE_VARIANTS)],
                "f": [str(v) for v in rng.permutation(FEMALE_VARIANTS)]}
    dealt = {"m": 0, "f": 0}
    out: list[Voice] = []
    for i in range(n_speakers):
        rnd, k = divmod(i, len(pool))
        nationality, languages = pool[int(order[k])]
        gender = "mf"[(k + rnd) % 2]
        language = languages[(rnd // 2) % len(languages)] if len(languages) > 1 else languages[0]
        variant = variants[gender][dealt[gender] % len(variants[gender])]
        dealt[gender] += 1
        same = [v for v in out if v.language == language and v.variant == variant]
        for _ in range(10_000):
            pitch = int(rng.integers(_PITCH[0], _PITCH[1] + 1))
            rate = int(rng.integers(_RATE[0], _RATE[1] + 1))
            prange = int(rng.integers(_PITCH_RANGE[0], _PITCH_RANGE[1] + 1))
            if all(abs(pitch - v.pitch) >= 8 or abs(rate - v.rate) >= 20 for v in same):
                break
        else:
            raise ValueError(f"data.n_speakers: {n_speakers} speakers is more than the voice pool can keep "
                             "distinct; add nationalities/languages to the pool")
        out.append(Voice(f"sv{i + 1:04d}", gender, nationality, language, variant, pitch, rate, prange))
    return out


def voice_loads(language: str, variant: str | None = None) -> bool:
    """Whether eSpeak NG accepts ``language+variant`` (it speaks a short word with it)."""
    try:
        audio, _ = synthesize("hello", language, variant)
    except EspeakError:
        return False
    return audio.size > 0


# ------------------------------------------------------------------------------------------------ the channel
def room_reverb(audio: np.ndarray, sr: int, rt60_s: float, drr_db: float, rng: np.random.Generator) -> np.ndarray:
    """Convolve with a synthetic room response: a unit direct path plus exponentially decaying Gaussian noise.

    The tail decays by 60 dB in ``rt60_s`` seconds, starts 2.5 ms after the direct path and carries
    ``-drr_db`` dB of the direct path's energy. Returns float32 (n,), same length as ``audio``.
    """
    n = max(int(rt60_s * sr), 2)
    t = np.arange(n) / sr
    tail = rng.standard_normal(n) * np.exp(-3.0 * math.log(10.0) * t / rt60_s)
    tail[: max(1, int(0.0025 * sr))] = 0.0
    tail *= math.sqrt(10.0 ** (-drr_db / 10.0) / float(np.sum(tail * tail)))
    tail[0] = 1.0
    return signal.fftconvolve(np.asarray(audio, np.float64), tail)[: len(audio)].astype(np.float32)


def coloured_noise(n: int, sr: int, colour: str, rng: np.random.Generator) -> np.ndarray:
    """Unit-RMS noise whose power falls as 1/f^k: ``white`` k=0, ``pink`` k=1, ``brown`` k=2 (below 20 Hz flat).

    Returns float32 (n,).
    """
    exponent = {"white": 0.0, "pink": 1.0, "brown": 2.0}[colour]
    m = sp_fft.next_fast_len(n, real=True)  # shaped at a fast FFT length, then cut to n
    white = rng.standard_normal(m)
    if exponent > 0:
        spectrum = sp_fft.rfft(white)
        f = np.maximum(sp_fft.rfftfreq(m, 1.0 / sr), 20.0)
        white = sp_fft.irfft(spectrum * f ** (-exponent / 2.0), m)
    white = white[:n]
    return (white / max(rms(white), 1e-12)).astype(np.float32)


def babble(n: int, sr: int, n_voices: int, rng: np.random.Generator,
           voices: dict[str, tuple[str, ...]] | None = None) -> np.ndarray:
    """Unit-RMS babble: ``n_voices`` random voices, each reading sentences for ``n`` samples at a random offset.

    Returns float32 (n,).
    """
    languages = [lang for langs in (voices or NATIONALITY_VOICES).values() for lang in langs]
    mix = np.zeros(n, np.float64)
    for _ in range(n_voices):
        language = str(rng.choice(languages))
        variant = str(rng.choice(MALE_VARIANTS + FEMALE_VARIANTS))
        rate, pitch = int(rng.integers(*_RATE)), int(rng.integers(*_PITCH))
        pieces, total = [], 0
        while total < n:
            a, native = synthesize(sentence(rng), language, variant, rate, pitch, noise_seed=int(rng.integers(2**31)))
            a = resample(a, native, sr)
            pieces.append(a)
            total += a.size
        v = np.roll(np.concatenate(pieces), -int(rng.integers(0, total - n + 1)))[:n].astype(np.float64)
        mix += v / max(rms(v), 1e-12)
    return (mix / max(rms(mix), 1e-12)).astype(np.float32)


def mix_at_snr(speech: np.ndarray, noise: np.ndarray, snr_db: float) -> np.ndarray:
    """``speech + g * noise`` with ``g`` chosen so that 10 log10(P_speech / P_noise) = ``snr_db``. float32 (n,)."""
    g = rms(speech) / max(rms(noise), 1e-12) / 10.0 ** (snr_db / 20.0)
    return (np.asarray(speech, np.float64) + g * np.asarray(noise, np.float64)).astype(np.float32)


def peaking_eq(audio: np.ndarray, sr: int, f0: float, gain_db: float, q: float) -> np.ndarray:
    """A peaking-EQ biquad (the audio-EQ cookbook's bell filter): ``gain_db`` at ``f0`` Hz, bandwidth from ``q``."""
    a_lin = 10.0 ** (gain_db / 40.0)
    w0 = 2.0 * math.pi * f0 / sr
    alpha = math.sin(w0) / (2.0 * q)
    b = np.array([1.0 + alpha * a_lin, -2.0 * math.cos(w0), 1.0 - alpha * a_lin])
    a = np.array([1.0 + alpha / a_lin, -2.0 * math.cos(w0), 1.0 - alpha / a_lin])
    return signal.lfilter(b / a[0], a / a[0], np.asarray(audio, np.float64)).astype(np.float32)


def band_filter(audio: np.ndarray, sr: int, low_hz: float | None, high_hz: float | None,
                order: int = 4) -> np.ndarray:
    """Butterworth high-pass (``low_hz``), low-pass (``high_hz``) or band-pass (both). float32 (n,)."""
    if low_hz and high_hz:
        sos = signal.butter(order, [low_hz, high_hz], btype="bandpass", fs=sr, output="sos")
    elif high_hz:
        sos = signal.butter(order, high_hz, btype="lowpass", fs=sr, output="sos")
    elif low_hz:
        sos = signal.butter(order, low_hz, btype="highpass", fs=sr, output="sos")
    else:
        return np.asarray(audio, np.float32)
    return signal.sosfilt(sos, np.asarray(audio, np.float64)).astype(np.float32)


def wild_channel(audio: np.ndarray, sr: int, rng: np.random.Generator,
                 voices: dict[str, tuple[str, ...]] | None = None) -> tuple[np.ndarray, dict]:
    """Pass clean speech through a random "in the wild" channel (see the module docstring for the draws).

    Parameters
    ----------
    audio : np.ndarray, float32, shape (n,)
    sr : int
    rng : np.random.Generator
        The only source of randomness.

    Returns
    -------
    audio : np.ndarray, float32, shape (n,), peak 0.9
    info : dict
        ``rt60_s`` (0 = no reverb), ``noise``, ``snr_db``, ``filter``, ``gain_db`` and ``channel``, a readable
        one-line description.
    """
    y = np.asarray(audio, np.float32)
    parts = []
    rt60 = 0.0
    if rng.random() < 0.6:
        rt60, drr = float(rng.uniform(0.2, 0.9)), float(rng.uniform(0.0, 10.0))
        y = room_reverb(y, sr, rt60, drr, rng)
        parts.append(f"reverb(rt60={rt60:.2f}s,drr={drr:.1f}dB)")
    noise_kind = str(rng.choice(["white", "pink", "brown", "babble"]))
    snr = float(rng.uniform(10.0, 30.0))
    if noise_kind == "babble":
        k = int(rng.integers(2, 5))
        noise = babble(len(y), sr, k, rng, voices)
        parts.append(f"babble{k}(snr={snr:.1f}dB)")
    else:
        noise = coloured_noise(len(y), sr, noise_kind, rng)
        parts.append(f"{noise_kind}(snr={snr:.1f}dB)")
    y = mix_at_snr(y, noise, snr)
    filt = str(rng.choice(["none", "lowpass", "highpass", "bandpass", "peaking"]))
    if filt == "lowpass":
        hi = float(rng.uniform(2500.0, min(6500.0, 0.45 * sr)))
        y = band_filter(y, sr, None, hi)
        parts.append(f"lowpass({hi:.0f}Hz)")
    elif filt == "highpass":
        lo = float(rng.uniform(150.0, 500.0))
        y = band_filter(y, sr, lo, None)
        parts.append(f"highpass({lo:.0f}Hz)")
    elif filt == "bandpass":
        lo, hi = float(rng.uniform(200.0, 400.0)), float(rng.uniform(3000.0, min(4000.0, 0.45 * sr)))
        y = band_filter(y, sr, lo, hi)
        parts.append(f"bandpass({lo:.0f}-{hi:.0f}Hz)")
    elif filt == "peaking":
        f0, g, q = float(rng.uniform(300.0, 4000.0)), float(rng.uniform(3.0, 12.0)), float(rng.uniform(0.7, 3.0))
        g = g if rng.random() < 0.5 else -g
        y = peaking_eq(y, sr, f0, g, q)
        parts.append(f"peaking({f0:.0f}Hz,{g:+.1f}dB,Q={q:.1f})")
    gain = float(rng.uniform(-6.0, 6.0))
    y = np.clip(peak_normalise(y, PEAK) * 10.0 ** (gain / 20.0), -1.0, 1.0)
    parts.append(f"gain({gain:+.1f}dB)")
    y = peak_normalise(y, PEAK)
    info = {"channel": "+".join(parts), "rt60_s": round(rt60, 3), "noise": noise_kind, "snr_db": round(snr, 2),
            "filter": filt, "gain_db": round(gain, 2)}
    return y, info


# ------------------------------------------------------------------------------------------------ utterances
def utterance_style(voice: Voice, rng: np.random.Generator, sr: int) -> dict:
    """How ``voice`` speaks one utterance: the voice's settings varied as one person varies from day to day.

    The speaking rate is the voice's times a factor uniform in 0.85-1.15, the pitch the voice's plus -8..+8, the
    pitch range the voice's plus -15..+15 (within eSpeak NG's 0-100), and the vocal tract is warped by a factor
    uniform in about 0.94-1.06: the speech is synthesised, resampled to ``warp_rate`` Hz and then read as ``sr`` Hz,
    which scales every frequency (formants, pitch, the engine's recorded consonant bursts) by ``sr / warp_rate``
    and every duration by its inverse. ``warp_rate`` is a multiple of 50 Hz so that the resampling ratio stays small.

    Returns
    -------
    dict
        ``rate``, ``pitch``, ``pitch_range`` (what eSpeak NG is given for the utterance's first sentence; each later
        sentence moves pitch by -4..+4 and rate by -5..+5 %, a sentence-level contour) and ``warp`` (the frequency
        factor) with ``warp_rate``.
    """
    rate = int(np.clip(round(voice.rate * rng.uniform(0.85, 1.15)), 80, 400))
    pitch = int(np.clip(voice.pitch + int(rng.integers(-8, 9)), 0, 100))
    prange = int(np.clip(voice.pitch_range + int(rng.integers(-15, 16)), 0, 100))
    warp_rate = int(50 * round(sr / float(rng.uniform(0.94, 1.06)) / 50))
    return {"rate": rate, "pitch": pitch, "pitch_range": prange, "warp_rate": warp_rate,
            "warp": round(sr / warp_rate, 4)}


def utterance_speech(voice: Voice, rng: np.random.Generator, target_s: float, min_s: float,
                     sr: int, style: dict | None = None) -> tuple[np.ndarray, str, str]:
    """Clean speech of ``voice`` lasting ``target_s`` (cut at a pause when one is near, never below ``min_s``).

    ``style`` (:func:`utterance_style`) varies the voice for this utterance and gives each sentence its own small
    pitch and rate movement; without it every sentence has the voice's own settings and the plain vocabulary of
    :func:`samaf_lib.corpus.text.sentence`, as the corpus was first generated.

    Returns
    -------
    audio : np.ndarray, float32, shape (n,) at ``sr``
    text : str
        What was said (sentences cut at the end are kept whole here).
    cut : str
        ``"pause"`` or ``"hard"``.
    """
    pieces: list[np.ndarray] = []
    texts: list[str] = []
    native = 22050  # eSpeak NG's rate; replaced by the rate the engine reports
    need = target_s * native * (style["warp"] if style else 1.0)
    total = 0
    while total < need:
        if pieces:
            pause = np.zeros(int(rng.uniform(*_PAUSE_S) * native), np.float32)
            pieces.append(pause)
            total += pause.size
        if style:
            text = varied_sentence(rng)
            first = not texts
            rate = style["rate"] if first else int(np.clip(round(style["rate"] * rng.uniform(0.95, 1.05)), 80, 400))
            pitch = style["pitch"] if first else int(np.clip(style["pitch"] + int(rng.integers(-4, 5)), 0, 100))
            prange = style["pitch_range"]
        else:
            text, rate, pitch, prange = sentence(rng), voice.rate, voice.pitch, voice.pitch_range
        a, native = synthesize(text, voice.language, voice.variant, rate, pitch, prange,
                               noise_seed=int(rng.integers(2**31)))
        if a.size == 0:
            raise EspeakError(f"eSpeak NG produced no audio for voice {voice.language}+{voice.variant}")
        pieces.append(a)
        texts.append(text)
        total += a.size
        need = target_s * native * (style["warp"] if style else 1.0)
        if len(texts) > 100:  # pragma: no cover - a safety net, a sentence lasts seconds
            raise EspeakError(f"voice {voice.language}+{voice.variant} speaks too little audio per sentence")
    audio = resample(np.concatenate(pieces), native, style["warp_rate"] if style else sr)
    audio, cut = _cut(audio, sr, target_s, min_s)
    return audio, " ".join(texts), cut


def _cut(audio: np.ndarray, sr: int, target_s: float, min_s: float) -> tuple[np.ndarray, str]:
    """Cut to ``target_s``: at the end of the latest quiet 10-ms frame in the last 0.3 s, else hard (with a fade)."""
    n = min(int(round(target_s * sr)), audio.size)
    lo = max(int(math.ceil(min_s * sr)), n - int(_CUT_SEARCH_S * sr))
    frame = max(1, sr // 100)
    k = (n - lo) // frame
    cut = "hard"
    end = n
    if k > 0:
        whole = audio[: (audio.size // frame) * frame].reshape(-1, frame)
        loudest = float(np.max(np.mean(whole.astype(np.float64) ** 2, axis=1)))
        seg = audio[lo: lo + k * frame].reshape(k, frame).astype(np.float64)
        quiet = np.nonzero(np.mean(seg**2, axis=1) < 1e-4 * loudest)[0]  # 40 dB below the loudest frame
        if quiet.size:
            end, cut = lo + (int(quiet[-1]) + 1) * frame, "pause"
    out = audio[:end].astype(np.float32, copy=True)
    fade = min(frame, out.size)
    out[out.size - fade:] *= np.linspace(1.0, 0.0, fade, dtype=np.float32)
    return out, cut


# --------------------------------------------------------------------------------------------------- corpus
def build_synthvox(out_dir: str | os.PathLike, n_speakers: int, utterances_per_speaker: int, seed: int,
                   min_s: float = 4.0, max_s: float = 10.0, sr: int = 16000, progress: bool = False,
                   voices: dict[str, tuple[str, ...]] | None = None, varied: bool = True) -> pd.DataFrame:
    """Generate the ``synthvox`` corpus into ``out_dir`` and return its metadata.

    Parameters
    ----------
    out_dir : path-like
        Where ``wav/<speaker_id>/<utterance_id>.wav`` go (16-bit PCM, ``sr``, written atomically);
        ``metadata.csv`` belongs beside ``wav/`` (write it with :func:`samaf_lib.corpus.write_metadata`).
    n_speakers, utterances_per_speaker : int
        Corpus size (each >= 1).
    seed : int
        Non-negative seed; same arguments give byte-identical files.
    min_s, max_s : float
        Utterance lengths are drawn uniformly in ``[min_s, max_s]`` seconds (0 < min_s <= max_s).
    sr : int
        Output sample rate.
    progress : bool
        Show a progress bar.
    voices : dict, optional
        Nationality -> eSpeak NG languages; default :data:`NATIONALITY_VOICES`.
    varied : bool
        Vary each utterance's voice and words (:func:`utterance_style`, :func:`samaf_lib.corpus.text.varied_sentence`;
        ``data.varied``). False gives the corpus as first generated: every utterance of a voice with the same
        settings and the small plain vocabulary, whose utterances share identical spectral landmarks (docs/study.md,
        Data).

    Returns
    -------
    DataFrame
        One row per utterance: the schema columns (``split`` empty, ``path`` relative to ``out_dir``,
        ``source = "synthvox"``) followed by :data:`EXTRA_COLUMNS`. ``df.attrs["rejected"]`` is a DataFrame
        (``path, reason``) of utterances that failed :func:`samaf_lib.audio.check_audio` and were not written
        (normally empty).
    """
    _check_count("data.utterances_per_speaker", utterances_per_speaker)
    if not (isinstance(sr, (int, np.integer)) and sr >= 8000):
        raise ValueError(f"audio.sr: expected an integer sample rate >= 8000 Hz, got {sr!r}")
    if not (0 < float(min_s) <= float(max_s)):
        raise ValueError(f"data.min_utterance_s / data.max_utterance_s: need 0 < min <= max, got {min_s!r}, "
                         f"{max_s!r}")
    seed = _check_seed(seed)
    speakers = design_speakers(n_speakers, seed, voices)
    out_dir = Path(out_dir)
    rows, rejected = [], []
    jobs = [(s, u) for s in range(n_speakers) for u in range(utterances_per_speaker)]
    for s, u in bar(jobs, desc="synthvox", unit="utt", enabled=progress):
        voice = speakers[s]
        uid = f"{voice.speaker_id}_{u + 1:03d}"
        rel = f"wav/{voice.speaker_id}/{uid}.wav"
        text_rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(1, s, u)))
        chan_rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(2, s, u)))
        target = float(text_rng.uniform(min_s, max_s))
        style = (utterance_style(voice, np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(3, s, u))),
                                 int(sr)) if varied else None)
        clean, text, cut = utterance_speech(voice, text_rng, target, float(min_s), int(sr), style)
        audio, info = wild_channel(clean, int(sr), chan_rng, voices)
        try:
            check_audio(audio, int(sr), name=rel, min_duration_s=1.0)
        except AudioError as e:
            rejected.append({"path": rel, "reason": str(e)})
            continue
        write_audio(out_dir / rel, audio, int(sr))
        v = asdict(voice)
        rows.append({
            "utterance_id": uid, "speaker_id": voice.speaker_id, "gender": voice.gender,
            "nationality": voice.nationality, "split": "", "path": rel, "duration_s": audio.size / sr,
            "source": SOURCE, **{k: v[k] for k in ("language", "variant", "pitch", "rate", "pitch_range")},
            "utt_rate": style["rate"] if style else voice.rate, "utt_pitch": style["pitch"] if style else voice.pitch,
            "utt_pitch_range": style["pitch_range"] if style else voice.pitch_range,
            "warp": style["warp"] if style else 1.0,
            "channel": info["channel"], "rt60_s": info["rt60_s"], "noise": info["noise"],
            "snr_db": info["snr_db"], "filter": info["filter"], "gain_db": info["gain_db"], "cut": cut,
            "text": text,
        })
    df = pd.DataFrame(rows, columns=list(COLUMNS) + list(EXTRA_COLUMNS))
    df.attrs["rejected"] = pd.DataFrame(rejected, columns=["path", "reason"])
    return df


def _check_count(key: str, value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{key}: expected a positive integer, got {value!r}")
    return int(value)


def _check_seed(seed: int) -> int:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed: expected a non-negative integer, got {seed!r}")
    return int(seed)
