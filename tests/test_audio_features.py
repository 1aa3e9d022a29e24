"""Audio reading and checks, atomic writes, MFCC features."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from samaf_lib.audio import AudioError, check_audio, load_audio, write_audio
from samaf_lib.features import MFCCConfig, Standardiser, mfcc, window_starts
from samaf_lib.io import atomic_path, write_json

SR = 16000


def tone(seconds=2.0, f=440.0, sr=SR):
    t = np.arange(int(seconds * sr)) / sr
    return (0.5 * np.sin(2 * np.pi * f * t)).astype(np.float32)


def test_wav_round_trip_is_byte_identical(tmp_path):
    a = tone()
    write_audio(tmp_path / "a.wav", a, SR)
    write_audio(tmp_path / "b.wav", a, SR)
    assert (tmp_path / "a.wav").read_bytes() == (tmp_path / "b.wav").read_bytes()
    back = load_audio(tmp_path / "a.wav", SR)
    assert back.shape == a.shape and np.max(np.abs(back - a)) < 1e-4


@pytest.mark.parametrize("content,match", [(b"", "empty"), (b"RIFF\x00\x00garbage" * 10, "cannot be read")])
def test_bad_files_name_the_file(tmp_path, content, match):
    p = tmp_path / "bad.wav"
    p.write_bytes(content)
    with pytest.raises(AudioError, match=match) as e:
        load_audio(p)
    assert "bad.wav" in str(e.value)


def _wav_declaring(path, rate: int, channels: int = 1, seconds: float = 1.0) -> None:
    """A PCM-16 WAV whose header declares ``rate`` and ``channels``, with 16,000 frames of a tone in it."""
    import struct

    samples = (tone(seconds) * 32767).astype("<i2")
    data = np.repeat(samples[:, None], channels, axis=1).tobytes()
    fmt = struct.pack("<HHIIHH", 1, channels, rate, (rate * 2 * channels) & 0xFFFFFFFF, 2 * channels, 16)
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"data" + struct.pack("<I", len(data)) + data
    path.write_bytes(b"RIFF" + struct.pack("<I", len(body)) + body)


@pytest.mark.parametrize("rate", [1, 100, 125_000_003, 2**31 - 1])
def test_absurd_sample_rate_is_refused_before_any_conversion(tmp_path, rate):
    """A header's rate far outside real recordings would make resampling take gigabytes or minutes."""
    p = tmp_path / "bomb.wav"
    _wav_declaring(p, rate)
    with pytest.raises(AudioError, match="sample rate") as e:
        load_audio(p)
    assert "bomb.wav" in str(e.value) and "re-export" in str(e.value)


def test_usual_rates_still_read(tmp_path):
    for rate in (8000, 22050, 44100, 48000, 96000):
        p = tmp_path / f"r{rate}.wav"
        _wav_declaring(p, rate)
        assert abs(len(load_audio(p, SR)) - 16000 * SR / rate) <= 1


def test_missing_file(tmp_path):
    with pytest.raises(AudioError, match="no such file"):
        load_audio(tmp_path / "nope.wav")


def test_stereo_44k_is_converted_or_refused(tmp_path):
    st = np.stack([tone(1.5, sr=44100), tone(1.5, 220, sr=44100)], axis=1)
    sf.write(tmp_path / "st.wav", st, 44100)
    a = load_audio(tmp_path / "st.wav", SR)
    assert a.ndim == 1 and abs(a.size - 1.5 * SR) <= 1
    with pytest.raises(AudioError, match="2 channels"):
        load_audio(tmp_path / "st.wav", SR, strict=True)
    sf.write(tmp_path / "mono44.wav", st[:, 0], 44100)
    with pytest.raises(AudioError, match="44100 Hz"):
        load_audio(tmp_path / "mono44.wav", SR, strict=True)


@pytest.mark.parametrize("audio,match", [
    (np.zeros(0, np.float32), "empty"),
    (np.full(SR * 2, np.nan, np.float32), "NaN"),
    (tone(0.5), "shorter than"),
    (np.zeros(SR * 2, np.float32), "silent"),
    (np.zeros((SR * 2, 2), np.float32), "mono"),
])
def test_check_audio_rejects(audio, match):
    with pytest.raises(AudioError, match=match):
        check_audio(audio, SR, name="clip-7")


def test_check_audio_expected_rate():
    with pytest.raises(AudioError, match="44100"):
        check_audio(tone(), 44100, expected_sr=SR)


def test_atomic_write_leaves_nothing_on_error(tmp_path):
    target = tmp_path / "out.json"
    write_json(target, {"a": 1})
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("interrupted")
    assert target.read_text().strip().startswith("{") and '"a": 1' in target.read_text()
    assert [p.name for p in tmp_path.iterdir()] == ["out.json"]


def test_mfcc_shapes():
    x = tone(3.0)
    assert mfcc(x, SR, hop_s=0.5).shape == (5, 100, 13)
    assert mfcc(x, SR, hop_s=0.1).shape == (21, 100, 13)
    assert mfcc(x[:SR], SR, hop_s=0.5).shape == (1, 100, 13)
    assert mfcc(tone(3.0, sr=22050), 22050, hop_s=1.0).shape == (3, 100, 13)


def test_mfcc_windows_share_frames():
    x = np.random.default_rng(0).normal(0, 0.1, 3 * SR).astype(np.float32)
    w = mfcc(x, SR, hop_s=0.5)
    # window 1 starts 0.5 s (50 frames) after window 0: its first 50 frames are window 0's last 50
    np.testing.assert_allclose(w[1, :50], w[0, 50:], rtol=1e-5, atol=1e-5)


def test_mfcc_too_short():
    with pytest.raises(AudioError, match="shorter than"):
        mfcc(tone(0.9), SR)


def test_window_starts():
    np.testing.assert_allclose(window_starts(int(2.2 * SR), SR, 0.5), [0.0, 0.5, 1.0])
    assert window_starts(SR // 2, SR, 0.5).size == 0


def test_standardiser_round_trip(tmp_path):
    w = mfcc(np.random.default_rng(1).normal(0, 0.1, 4 * SR).astype(np.float32), SR)
    st = Standardiser.fit(w)
    z = st(w).reshape(-1, 13)
    np.testing.assert_allclose(z.mean(0), 0, atol=1e-4)
    np.testing.assert_allclose(z.std(0), 1, atol=1e-3)
    st.save(tmp_path / "s.npz")
    st2 = Standardiser.load(tmp_path / "s.npz")
    np.testing.assert_array_equal(st.mean, st2.mean)


def test_mfcc_config_rejects_unknown_key():
    with pytest.raises(KeyError, match="n_mfc"):
        MFCCConfig.from_params({"n_mfc": 13})
