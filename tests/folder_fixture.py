"""A small folder of someone's recordings for the ``data.source: folder`` tests: mixed formats, sample rates and
channel counts; generated speech, chords and drums (numpy); a long file; a CSV of attributes; bad files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import soundfile as sf

from samaf_lib.corpus.samples import make_speech


def chords(seed: int, seconds: float, sr: int) -> np.ndarray:
    """A seeded progression of triads (a new chord every 0.5-1 s), each note a few decaying harmonics."""
    rng = np.random.default_rng(seed)
    n = int(seconds * sr)
    out = np.zeros(n)
    t0 = 0
    while t0 < n:
        dur = int(rng.uniform(0.5, 1.0) * sr)
        root = 48 + int(rng.integers(0, 24))
        t = np.arange(min(dur, n - t0)) / sr
        env = np.exp(-t * rng.uniform(1.0, 3.0))
        for step in (0, 4 if rng.random() < 0.5 else 3, 7):
            f = 440.0 * 2 ** ((root + step - 69) / 12)
            for h in range(1, 4):
                out[t0:t0 + t.size] += env * np.sin(2 * np.pi * f * h * t) / h
        t0 += dur
    return (0.8 * out / np.abs(out).max()).astype(np.float32)


def drums(seed: int, seconds: float, sr: int) -> np.ndarray:
    """A seeded drum pattern: kicks (a falling sine), snares (noise bursts) and hats on a 16th-note grid."""
    rng = np.random.default_rng(seed)
    n = int(seconds * sr)
    out = np.zeros(n)
    step = int(sr * 60 / rng.uniform(90, 140) / 4)
    pattern = rng.random((3, 16)) < np.array([[0.4], [0.25], [0.6]])
    pattern[0, 0] = pattern[1, 4] = True
    for k, start in enumerate(range(0, n, step)):
        m = min(int(0.25 * sr), n - start)
        t = np.arange(m) / sr
        if pattern[0, k % 16]:
            out[start:start + m] += np.sin(2 * np.pi * (50 + 100 * np.exp(-t * 30)) * t) * np.exp(-t * 12)
        if pattern[1, k % 16]:
            out[start:start + m] += 0.5 * rng.standard_normal(m) * np.exp(-t * 25)
        if pattern[2, k % 16]:
            hat = np.diff(rng.standard_normal(m + 1)) * np.exp(-t * 80)
            out[start:start + m] += 0.2 * hat
    return (0.8 * out / np.abs(out).max()).astype(np.float32)


#: group -> (kind of signal, genre, files); every group gets files of several formats and rates.
GROUPS = {"anna": ("speech", "speech", 4), "ben": ("speech", "speech", 4), "chorus": ("chords", "music", 4),
          "dmitri": ("speech", "speech", 4), "kit": ("drums", "music", 4), "lyre": ("chords", "music", 4)}
#: (extension, sample rate, channels, soundfile subtype or None) dealt to a group's files in turn.
FORMATS = [(".wav", 44100, 2, "PCM_16"), (".flac", 22050, 1, "PCM_16"), (".ogg", 48000, 2, "VORBIS"),
           (".mp3", 16000, 1, None)]


def write_test_folder(root: Path, with_bad: bool = True, seconds: float = 7.0) -> Path:
    """Write the folder under ``root/recordings`` and its CSV ``root/recordings.csv``; return the folder.

    Layout ``recordings/<group>/<group>_<k><ext>``; group ``anna`` also has one 23-s file (cut into pieces).
    With ``with_bad``: ``bad/corrupt.wav`` (not audio), ``bad/empty.flac`` (no samples), ``bad/short.wav`` (0.5 s)
    and ``bad/silent.ogg`` (zeros).
    """
    folder = root / "recordings"
    rows = []
    for g, (name, (kind, genre, count)) in enumerate(GROUPS.items()):
        for k in range(count):
            ext, sr, ch, subtype = FORMATS[(g + k) % len(FORMATS)]
            seed = 100 * g + k
            if kind == "speech":
                audio = make_speech(seed, seconds, sr)
            elif kind == "chords":
                audio = chords(seed, seconds, sr)
            else:
                audio = drums(seed, seconds, sr)
            if ch == 2:
                audio = np.stack([audio, 0.7 * audio], axis=1)
            path = folder / name / f"{name}_{k}{ext}"
            path.parent.mkdir(parents=True, exist_ok=True)
            sf.write(str(path), audio, sr, subtype=subtype) if subtype else sf.write(str(path), audio, sr)
            rows.append({"path": f"{name}/{path.name}", "artist": name, "genre": genre,
                         "gender": "f" if name == "anna" else ("m" if name in ("ben", "dmitri") else "")})
    long = folder / "anna" / "anna_long.wav"
    sf.write(str(long), make_speech(77, 23.0, 16000), 16000)
    rows.append({"path": "anna/anna_long.wav", "artist": "anna", "genre": "speech", "gender": "f"})
    if with_bad:
        bad = folder / "bad"
        bad.mkdir(parents=True, exist_ok=True)
        (bad / "corrupt.wav").write_bytes(b"RIFF\x00\x00 this is not a wave file")
        sf.write(str(bad / "empty.flac"), np.zeros(0, np.float32), 16000)
        sf.write(str(bad / "short.wav"), make_speech(5, 0.5, 16000), 16000)
        sf.write(str(bad / "silent.ogg"), np.zeros(32000, np.float32), 16000, subtype="VORBIS")
        for f in ("corrupt.wav", "empty.flac", "short.wav", "silent.ogg"):
            rows.append({"path": f"bad/{f}", "artist": "bad", "genre": "speech", "gender": ""})
    pd.DataFrame(rows).to_csv(root / "recordings.csv", index=False)
    return folder
