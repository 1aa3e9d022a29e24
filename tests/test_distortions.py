"""Tests of samaf_lib.distortions: the registry, validation, determinism and what each distortion does."""

from __future__ import annotations

import io

import numpy as np
import pytest
import soundfile as sf
from scipy.signal import hilbert, stft, welch

from samaf_lib.audio import AudioError
from samaf_lib.distortions import (
    DEFAULT,
    DISTORTIONS,
    MP3_CODEC_DELAY,
    conditions,
    distort,
    mp3_compression_level,
    mu_law,
    parse_names,
)

SR = 16000
STUDY_NAMES = ["pitch", "tempo", "speed", "noise_white", "noise_pink", "babble", "reverb", "echo", "chorus",
               "flanger", "tremolo", "bandpass", "lowpass", "highpass", "mp3", "telephone", "gain"]
FACTORS = [0.9, 0.95, 1.05, 1.1]


# ---------------------------------------------------------------------------------------------------- helpers

def tone(freq: float, seconds: float = 2.0, sr: int = SR, harmonics: int = 1, amp: float = 0.5) -> np.ndarray:
    """A (harmonic) tone: partials k * freq at amplitude 1/k, peak-scaled to ``amp``."""
    t = np.arange(int(seconds * sr)) / sr
    x = sum(np.sin(2 * np.pi * k * freq * t) / k for k in range(1, harmonics + 1))
    return (amp * x / np.max(np.abs(x))).astype(np.float32)


def white(seconds: float = 2.0, seed: int = 0, amp: float = 0.1) -> np.ndarray:
    return (amp * np.random.default_rng(seed).standard_normal(int(seconds * SR))).astype(np.float32)


def peak_freq(x: np.ndarray, lo: float, hi: float, sr: int = SR) -> float:
    """Frequency of the largest spectral peak in [lo, hi] Hz (middle of the clip, Hann window, 16x zero-padding,
    parabolic interpolation)."""
    x = np.asarray(x, np.float64)
    x = x[len(x) // 4: 3 * len(x) // 4]
    nfft = 16 * len(x)
    mag = np.abs(np.fft.rfft(x * np.hanning(len(x)), nfft))
    freqs = np.fft.rfftfreq(nfft, 1 / sr)
    idx = np.nonzero((freqs >= lo) & (freqs <= hi))[0]
    k = idx[np.argmax(mag[idx])]
    a, b, c = np.log(mag[k - 1: k + 2] + 1e-30)
    return float(freqs[k] + 0.5 * (a - c) / (a - 2 * b + c) * sr / nfft)


def band_fraction(x: np.ndarray, lo: float, hi: float, sr: int = SR) -> float:
    """Share of the energy of ``x`` between ``lo`` and ``hi`` Hz."""
    p = np.abs(np.fft.rfft(np.asarray(x, np.float64))) ** 2
    f = np.fft.rfftfreq(len(x), 1 / sr)
    return float(p[(f >= lo) & (f < hi)].sum() / p.sum())


def snr_db(clean: np.ndarray, out: np.ndarray) -> float:
    clean = np.asarray(clean, np.float64)
    return float(10 * np.log10(np.sum(clean ** 2) / np.sum((np.asarray(out, np.float64) - clean) ** 2)))


def impulse(seconds: float = 2.0, at_s: float = 0.1) -> np.ndarray:
    x = np.zeros(int(seconds * SR), np.float32)
    x[int(at_s * SR)] = 1.0
    return x


@pytest.fixture(scope="module")
def speech(speech_bank) -> np.ndarray:
    """2 s of generated speech (a crop keeps the whole file fast)."""
    return speech_bank["ref03"][SR: 3 * SR].copy()


# ---------------------------------------------------------------------------------------------------- registry

def test_registry_holds_the_study_table():
    assert list(DISTORTIONS) == STUDY_NAMES
    assert DISTORTIONS["pitch"].levels == (0.9, 0.95, 1.05, 1.1)
    assert DISTORTIONS["noise_pink"].levels == (20, 10, 5, 0)
    assert DISTORTIONS["babble"].levels == (20, 10, 5)
    assert DISTORTIONS["reverb"].levels == ("small", "medium", "large")
    assert DISTORTIONS["mp3"].levels == (128, 64, 32)
    assert DISTORTIONS["gain"].levels == (-20, 10)
    assert DISTORTIONS["lowpass"].levels == (2000,) and DISTORTIONS["highpass"].levels == (500,)
    for name in ("echo", "chorus", "flanger", "tremolo", "bandpass", "telephone"):
        assert DISTORTIONS[name].levels == (DEFAULT,)
    for d in DISTORTIONS.values():
        assert d.description
        for level in d.levels:
            assert d.validate(level, SR) == level


def test_conditions_lists_every_default_pair():
    pairs = conditions()
    assert len(pairs) == sum(len(d.levels) for d in DISTORTIONS.values())
    assert len(set(pairs)) == len(pairs)
    assert conditions("mp3, gain") == [("mp3", 128), ("mp3", 64), ("mp3", 32), ("gain", -20), ("gain", 10)]
    assert conditions(["echo"]) == [("echo", DEFAULT)]


def test_parse_names():
    assert parse_names("all") == STUDY_NAMES
    assert parse_names(" pitch , tempo,pitch") == ["pitch", "tempo"]
    with pytest.raises(ValueError, match=r"'pitchh'.*valid names: pitch, tempo"):
        parse_names("pitchh,tempo")
    with pytest.raises(ValueError, match="no distortion"):
        parse_names(" , ")
    with pytest.raises(ValueError, match="all"):
        parse_names("all,pitch")


# ---------------------------------------------------------------------------------------------------- errors

def test_unknown_name_lists_valid_names(speech):
    with pytest.raises(ValueError, match=r"unknown distortion 'wobble'.*noise_white.*telephone"):
        distort(speech, SR, "wobble", 1, seed=0)


@pytest.mark.parametrize("name, level", [
    ("pitch", 3.0), ("pitch", "high"), ("speed", float("nan")), ("tempo", None), ("noise_white", 100),
    ("babble", "10"), ("reverb", "huge"), ("reverb", 1), ("mp3", 100), ("mp3", 1000), ("mp3", 64.5),
    ("echo", 1), ("tremolo", "sox"), ("gain", True), ("gain", -90), ("lowpass", 8000), ("highpass", 0),
])
def test_bad_level_names_distortion_level_and_range(speech, name, level):
    with pytest.raises(ValueError) as err:
        distort(speech, SR, name, level, seed=0)
    msg = str(err.value)
    assert repr(name) in msg and repr(level) in msg and "allowed" in msg


def test_cutoff_must_be_below_nyquist():
    x = white(1.0)
    assert distort(x, SR, "lowpass", 7000, seed=0).shape == x.shape
    with pytest.raises(ValueError, match="below sr/2 = 8000 Hz"):
        distort(x, SR, "lowpass", 8000, seed=0)


@pytest.mark.parametrize("audio", [np.zeros((SR, 2), np.float32), np.array([np.nan] * SR, np.float32),
                                   np.zeros(100, np.float32), np.zeros(0, np.float32)])
def test_bad_audio_raises_audio_error(audio):
    with pytest.raises(AudioError, match="distortion 'gain'"):
        distort(audio, SR, "gain", -20, seed=0)


@pytest.mark.parametrize("seed", [-1, 1.5, "7", None])
def test_bad_seed(speech, seed):
    with pytest.raises(ValueError, match="seed"):
        distort(speech, SR, "noise_white", 10, seed=seed)


# ---------------------------------------------------------------------------------------------------- contract

@pytest.mark.parametrize("name, level", conditions())
def test_every_condition_is_deterministic_float32_and_right_length(speech, name, level):
    before = speech.copy()
    y1 = distort(speech, SR, name, level, seed=11)
    y2 = distort(speech, SR, name, level, seed=11)
    np.testing.assert_array_equal(speech, before)  # the input is never modified
    assert y1.dtype == np.float32 and np.all(np.isfinite(y1))
    np.testing.assert_array_equal(y1, y2)
    n = len(speech) if name not in ("speed", "tempo") else round(len(speech) / level)
    assert y1.shape == (n,)
    if n == len(speech):
        assert not np.array_equal(y1, speech)


@pytest.mark.parametrize("name", ["noise_white", "noise_pink", "babble", "reverb"])
def test_seed_changes_the_random_distortions(speech, name):
    level = DISTORTIONS[name].levels[0]
    assert not np.array_equal(distort(speech, SR, name, level, seed=1), distort(speech, SR, name, level, seed=2))


@pytest.mark.parametrize("name, level", conditions())
def test_shortest_and_silent_clips(name, level):
    rng = np.random.default_rng(3)
    short = (0.1 * rng.standard_normal(int(0.05 * SR))).astype(np.float32)
    silent = np.zeros(SR // 2, np.float32)
    for x in (short, silent):
        y = distort(x, SR, name, level, seed=0)
        assert y.dtype == np.float32 and np.all(np.isfinite(y))
        assert y.shape == ((len(x),) if name not in ("speed", "tempo") else (round(len(x) / level),))


@pytest.mark.parametrize("sr", [8000, 22050, 44100])
def test_other_sample_rates(sr):
    x = tone(440, 1.0, sr=sr, harmonics=3)
    for name, level in conditions("noise_white,reverb,telephone,mp3,speed"):
        y = distort(x, sr, name, level, seed=0)
        assert np.all(np.isfinite(y))
        assert len(y) == (len(x) if name != "speed" else round(len(x) / level))


# ---------------------------------------------------------------------------------------------------- semantics

@pytest.mark.parametrize("f", FACTORS)
def test_speed_shortens_and_raises_pitch(f):
    x = tone(440.0)
    y = distort(x, SR, "speed", f, seed=0)
    assert len(y) == round(len(x) / f)
    assert peak_freq(y, 300, 600) == pytest.approx(440.0 * f, rel=0.003)


@pytest.mark.parametrize("f", FACTORS)
def test_tempo_shortens_and_keeps_pitch(f):
    x = tone(220.0, harmonics=4)
    y = distort(x, SR, "tempo", f, seed=0)
    assert len(y) == round(len(x) / f)
    assert peak_freq(y, 150, 300) == pytest.approx(220.0, rel=0.005)


@pytest.mark.parametrize("f", FACTORS)
def test_pitch_keeps_length_and_scales_frequency(f):
    x = tone(220.0, harmonics=4)
    y = distort(x, SR, "pitch", f, seed=0)
    assert len(y) == len(x)
    assert peak_freq(y, 150, 300) == pytest.approx(220.0 * f, rel=0.005)


@pytest.mark.parametrize("name, snr", conditions("noise_white,noise_pink,babble"))
def test_noise_snr(speech, name, snr):
    assert snr_db(speech, distort(speech, SR, name, snr, seed=5)) == pytest.approx(snr, abs=0.5)


def test_noise_colours(speech):
    added = {name: distort(speech, SR, name, 10, seed=5).astype(np.float64) - speech
             for name in ("noise_white", "noise_pink", "babble")}
    octave_low, octave_high = (250, 500), (2000, 4000)
    w = band_fraction(added["noise_white"], *octave_high) / band_fraction(added["noise_white"], *octave_low)
    p = band_fraction(added["noise_pink"], *octave_high) / band_fraction(added["noise_pink"], *octave_low)
    assert w == pytest.approx(8.0, rel=0.25)  # white: power per octave doubles with frequency
    assert p == pytest.approx(1.0, rel=0.25)  # pink: equal power per octave
    # babble is speech: energy mostly below 4 kHz and an envelope that comes and goes
    assert band_fraction(added["babble"], 0, 4000) > 0.8
    env = np.sqrt(np.convolve(added["babble"] ** 2, np.ones(800) / 800, mode="valid"))[::400]
    assert env.std() / env.mean() > 0.2


def test_babble_does_not_depend_on_what_the_process_spoke_before(speech):
    """Babble is a function of its arguments: speaking something else in between changes nothing."""
    from samaf_lib.corpus.espeak import synthesize

    y1 = distort(speech[:SR // 2], SR, "babble", 5, seed=9)
    synthesize("Something else in between.", "de", "f3", noise_seed=77)
    np.testing.assert_array_equal(y1, distort(speech[:SR // 2], SR, "babble", 5, seed=9))


def schroeder_rt60(h: np.ndarray, sr: int = SR) -> float:
    """RT60 from the Schroeder backward integral of an impulse response, fitted between -10 and -30 dB."""
    edc = np.cumsum((np.asarray(h, np.float64) ** 2)[::-1])[::-1]
    edc_db = 10 * np.log10(edc / edc[0] + 1e-300)
    idx = np.nonzero((edc_db <= -10) & (edc_db >= -30))[0]
    slope = np.polyfit(idx / sr, edc_db[idx], 1)[0]
    return -60.0 / slope


@pytest.mark.parametrize("room, rt60", [("small", 0.3), ("medium", 0.6), ("large", 1.2)])
def test_reverb_rt60(room, rt60):
    x = impulse(seconds=2.5, at_s=0.0)
    h = distort(x, SR, "reverb", room, seed=4)
    assert schroeder_rt60(h) == pytest.approx(rt60, rel=0.2)
    assert np.sqrt(np.mean(h.astype(np.float64) ** 2)) == pytest.approx(np.sqrt(np.mean(x ** 2.0)), rel=1e-4)


def test_echo_is_sox_echo_08_09_500_03():
    y = distort(impulse(), SR, "echo", DEFAULT, seed=0)
    at, later = int(0.1 * SR), int(0.6 * SR)
    assert y[at] == pytest.approx(0.9 * 0.8) and y[later] == pytest.approx(0.9 * 0.3)
    y[[at, later]] = 0
    assert np.all(y == 0)


def _taps(y: np.ndarray, start: int) -> np.ndarray:
    """Sample offsets (after ``start``) where the response is non-zero."""
    return np.nonzero(np.abs(y[start:]) > 1e-9)[0]


def test_chorus_two_modulated_delays():
    starts = (int(0.1 * SR), int(2.1 * SR))
    x = np.zeros(4 * SR, np.float32)
    x[list(starts)] = 1.0
    y = distort(x, SR, "chorus", DEFAULT, seed=0)
    assert y[starts[0]] == pytest.approx(0.9 * 0.6)
    responses = []
    for s in starts:
        taps = _taps(y[: s + int(0.08 * SR)], s)[1:] / SR * 1000  # ms, without the direct path
        assert np.all(((taps >= 49.9) & (taps <= 52.1)) | ((taps >= 59.9) & (taps <= 61.4)))
        responses.append(y[s: s + int(0.08 * SR)])
    assert not np.allclose(*responses)  # the delays move with time


def test_flanger_short_swept_delay():
    starts = (int(0.1 * SR), int(1.1 * SR))  # half a period of the 0.5 Hz sweep apart
    x = np.zeros(3 * SR, np.float32)
    x[list(starts)] = 1.0
    y = distort(x, SR, "flanger", DEFAULT, seed=0)
    for s in starts:
        assert _taps(y[: s + SR // 2], s).max() <= 0.002 * SR + 1  # everything within 2 ms
        assert y[s: s + 34].sum() == pytest.approx(1.0, abs=0.01)  # (1 + 0.71) / 1.71
    assert not np.allclose(y[starts[0]: starts[0] + 34], y[starts[1]: starts[1] + 34])


def test_tremolo_8hz_depth_half():
    x = tone(1000.0, seconds=2.0)
    env = np.abs(hilbert(distort(x, SR, "tremolo", DEFAULT, seed=0).astype(np.float64)))[SR // 4: -SR // 4]
    assert peak_freq(env - env.mean(), 2, 30) == pytest.approx(8.0, abs=0.2)
    assert env.min() / env.max() == pytest.approx(0.5, abs=0.03)


def test_bandpass_centred_at_2khz():
    def gain_db(freq: float) -> float:
        x = tone(freq, 1.0)
        y = distort(x, SR, "bandpass", DEFAULT, seed=0)[SR // 2:]
        return 20 * np.log10(np.std(y) / np.std(x[SR // 2:]))

    assert gain_db(2000) == pytest.approx(0.0, abs=0.5)
    assert gain_db(1500) < -1 and gain_db(2500) < -1
    assert gain_db(200) < -5 and gain_db(6000) < -15
    f, p = welch(distort(white(4.0), SR, "bandpass", DEFAULT, seed=0), SR, nperseg=1024)
    assert 1800 <= f[np.argmax(p)] <= 2200


def test_lowpass_2khz():
    x = white(4.0)
    y = distort(x, SR, "lowpass", 2000, seed=0)
    assert band_fraction(y, 2500, SR / 2) < 0.01
    assert band_fraction(y, 3000, SR / 2) < 1e-4
    low = band_fraction(y, 0, 1500) * np.sum(y.astype(float) ** 2)
    assert low / (band_fraction(x, 0, 1500) * np.sum(x.astype(float) ** 2)) > 0.95


def test_highpass_500hz():
    x = white(4.0)
    y = distort(x, SR, "highpass", 500, seed=0)
    assert band_fraction(y, 0, 400) < 0.01
    high = band_fraction(y, 700, SR / 2) * np.sum(y.astype(float) ** 2)
    assert high / (band_fraction(x, 700, SR / 2) * np.sum(x.astype(float) ** 2)) > 0.95


def _log_spectral_distance(x: np.ndarray, y: np.ndarray) -> float:
    _, _, a = stft(x, nperseg=512)
    _, _, b = stft(y, nperseg=512)
    d = 10 * np.log10(np.abs(a) ** 2 + 1e-10) - 10 * np.log10(np.abs(b) ** 2 + 1e-10)
    return float(np.mean(np.sqrt(np.mean(d ** 2, axis=0))))


def test_mp3_close_aligned_and_worse_at_lower_bitrate(speech):
    outs = {b: distort(speech, SR, "mp3", b, seed=0) for b in (128, 64, 32)}
    for b, y in outs.items():
        assert not np.array_equal(y, speech)
        assert snr_db(speech, y) > 10, b
        lags = np.arange(-50, 51)
        xc = [np.dot(speech[100:-100], y[100 + k: len(y) - 100 + k]) for k in lags]
        assert lags[int(np.argmax(xc))] == 0, b  # the codec delay is removed
    snrs = {b: snr_db(speech, y) for b, y in outs.items()}
    lsd = {b: _log_spectral_distance(speech, y) for b, y in outs.items()}
    assert snrs[128] > snrs[64] > snrs[32] and snrs[128] > snrs[32] + 3
    assert lsd[128] < lsd[64] < lsd[32]


@pytest.mark.parametrize("sr, kbps", [(16000, 128), (16000, 64), (16000, 32), (44100, 128), (44100, 32), (8000, 8)])
def test_mp3_bitrate_mapping(sr, kbps):
    x = tone(440, 4.0, sr=sr, harmonics=5) + 0.01 * np.random.default_rng(0).standard_normal(4 * sr)
    buf = io.BytesIO()
    sf.write(buf, x.astype(np.float32), sr, format="MP3", compression_level=mp3_compression_level(sr, kbps),
             bitrate_mode="CONSTANT")
    assert len(buf.getvalue()) * 8 / 4.0 / 1000 == pytest.approx(kbps, rel=0.05)


def test_mp3_codec_delay_constant_is_lame_plus_mpg123():
    assert MP3_CODEC_DELAY == 1105


def test_telephone_band_and_mu_law():
    x = white(4.0, amp=0.2)
    y = distort(x, SR, "telephone", DEFAULT, seed=0)
    assert band_fraction(y, 3600, SR / 2) < 0.01
    assert band_fraction(y, 4200, SR / 2) < 1e-3
    assert band_fraction(y, 0, 200) < 0.01
    assert np.max(np.abs(y)) <= 1.0
    v = np.linspace(-1, 1, 10001)
    q = mu_law(v)
    assert len(np.unique(q)) <= 256
    mid = np.abs(v) > 0.01
    assert np.max(np.abs(q[mid] - v[mid]) / np.abs(v[mid])) < 0.05  # companding keeps relative error small


def test_gain(speech):
    y = distort(speech, SR, "gain", -20, seed=0)
    np.testing.assert_allclose(y, speech * 0.1, rtol=1e-5, atol=1e-8)
    y = distort(speech, SR, "gain", 10, seed=0)
    loud = np.abs(speech) * 10 ** 0.5 > 1
    assert loud.any() and np.max(np.abs(y)) <= 1.0
    np.testing.assert_array_equal(np.abs(y[loud]), 1.0)
    np.testing.assert_allclose(y[~loud], speech[~loud] * 10 ** 0.5, rtol=1e-5)
