"""VoxCeleb1, brought by the user (docs/study.md, Data): pick a seeded subset and check every file before the study uses it.

Layout: ``<root>/wav/idNNNNN/<video>/<nnnnn>.wav`` (``root`` may also be the ``wav`` folder itself) and
``vox1_meta.csv``, tab-separated with the header ``VoxCeleb1 ID, VGGFace1 ID, Gender, Nationality, Set``.

Subset. Speakers are visited in a seeded order and taken when they have at least ``utterances_per_speaker`` files
(and a row in the metadata) until ``n_speakers`` are taken. If fewer speakers qualify, the rest are filled with the
speakers that have the most files, all of whose files are used, and a warning says so. Each taken speaker's files
are checked in a seeded order until ``utterances_per_speaker`` good ones are kept: readable, non-empty, mono,
at ``sr`` Hz, at least 1 s long, not silent. A bad file becomes a row ``(path, reason)`` of the rejected table
(``df.attrs["rejected"]``) and the next file of that speaker takes its place; it never stops the run.

Paths in the returned table are absolute (the data lives outside the project); ``base / path`` therefore
still gives the file for any ``base``.
"""

from __future__ import annotations

import os
import warnings
import zlib
from pathlib import Path

import numpy as np
import pandas as pd
import soundfile as sf

from ..audio import AudioError, check_audio, load_audio_native
from ..io import write_csv
from .splits import COLUMNS

#: The keys of ``params.yaml`` named in errors.
ROOT_KEY = "data.voxceleb1_root"
META_KEY = "data.voxceleb1_meta"
#: ``vox1_meta.csv``'s header (tab-separated).
META_HEADER = ("VoxCeleb1 ID", "VGGFace1 ID", "Gender", "Nationality", "Set")
_NEEDED = ("VoxCeleb1 ID", "Gender", "Nationality")
SOURCE = "voxceleb1"
MIN_DURATION_S = 1.0


class MetaFileNotFoundError(FileNotFoundError, ValueError):
    """``vox1_meta.csv`` is missing (a FileNotFoundError, and a ValueError like every other metadata problem)."""


def read_vox1_meta(meta: str | os.PathLike) -> pd.DataFrame:
    """Read ``vox1_meta.csv``.

    Returns
    -------
    DataFrame
        Columns ``speaker_id, gender, nationality, set`` (text, stripped; gender lower-case ``m``/``f``).

    Raises
    ------
    ValueError
        (:class:`MetaFileNotFoundError` when the file is missing.) The path is empty or missing, the file is not
        tab-separated, or a column of :data:`META_HEADER` that the study needs is absent. The message names
        ``data.voxceleb1_meta`` and the expected header.
    """
    expected = "\\t".join(META_HEADER)
    if meta is None or str(meta).strip() == "":
        raise MetaFileNotFoundError(f"{META_KEY} is empty: set it in params.yaml to your vox1_meta.csv "
                                    f"(tab-separated, header '{expected}')")
    p = Path(meta).expanduser()
    if not p.is_file():
        raise MetaFileNotFoundError(f"{META_KEY}: {p} does not exist; point it at VoxCeleb1's vox1_meta.csv "
                                    f"(tab-separated, header '{expected}')")
    try:
        df = pd.read_csv(p, sep="\t", dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as e:
        raise ValueError(f"{META_KEY}: cannot read {p} as tab-separated text ({e}); expected the header "
                         f"'{expected}'") from e
    df.columns = [str(c).strip() for c in df.columns]
    if len(df.columns) == 1:
        raise ValueError(f"{META_KEY}: {p} is not tab-separated (its header reads {df.columns[0]!r}); expected "
                         f"the header '{expected}'")
    missing = [c for c in _NEEDED if c not in df.columns]
    if missing:
        raise ValueError(f"{META_KEY}: {p} lacks the column(s) {', '.join(missing)} (found "
                         f"{', '.join(map(repr, df.columns))}); expected the header '{expected}'")
    out = pd.DataFrame({
        "speaker_id": df["VoxCeleb1 ID"].str.strip(),
        "gender": df["Gender"].str.strip().str.lower(),
        "nationality": df["Nationality"].str.strip(),
        "set": df["Set"].str.strip() if "Set" in df.columns else "",
    })
    out = out[out["speaker_id"] != ""].drop_duplicates("speaker_id").reset_index(drop=True)
    if out.empty:
        raise ValueError(f"{META_KEY}: {p} has no speaker rows; expected the header '{expected}' and one row per "
                         "speaker")
    return out


def wav_root(root: str | os.PathLike) -> Path:
    """The folder holding the ``idNNNNN`` speaker folders: ``root/wav`` or ``root`` itself.

    Raises
    ------
    FileNotFoundError
        ``root`` is empty or missing, or holds neither ``wav/`` nor speaker folders; the message names
        ``data.voxceleb1_root`` and says what to do.
    """
    hint = ("set it in params.yaml to the folder holding wav/idNNNNN/<video>/<nnnnn>.wav (VoxCeleb1 needs a "
            "licence agreement, see README), or use data.source: synthvox")
    if root is None or str(root).strip() == "":
        raise FileNotFoundError(f"{ROOT_KEY} is empty: {hint}")
    r = Path(root).expanduser()
    if not r.is_dir():
        raise FileNotFoundError(f"{ROOT_KEY}: {r} does not exist; {hint}")
    if (r / "wav").is_dir():
        return r / "wav"
    if any(d.is_dir() and d.name.startswith("id") for d in r.iterdir()):
        return r
    raise FileNotFoundError(f"{ROOT_KEY}: {r} holds no wav/ folder and no idNNNNN speaker folders; {hint}")


def _speaker_files(folder: Path) -> list[Path]:
    """The speaker's ``<video>/<nnnnn>.wav`` files, sorted."""
    return sorted(p for p in folder.glob("*/*.wav") if p.is_file())


def check_file(path: str | os.PathLike, sr: int = 16000, min_duration_s: float = MIN_DURATION_S) -> float:
    """Check one corpus file; return its duration in seconds.

    Raises
    ------
    AudioError
        Unreadable, empty, more than one channel, another sample rate, shorter than ``min_duration_s``,
        non-finite or silent. The message says which.
    """
    audio, file_sr = load_audio_native(path)
    if audio.ndim > 1:
        raise AudioError(f"{path}: has {audio.shape[1]} channels, the study expects mono")
    if file_sr != sr:
        raise AudioError(f"{path}: sample rate {file_sr} Hz, the study expects {sr} Hz")
    check_audio(audio, file_sr, name=str(path), min_duration_s=min_duration_s)
    return audio.size / file_sr


def load_voxceleb1(root: str | os.PathLike, meta: str | os.PathLike, n_speakers: int, utterances_per_speaker: int,
                   seed: int, sr: int = 16000, rejected: str | os.PathLike | None = None) -> pd.DataFrame:
    """Choose and check a seeded subset of VoxCeleb1.

    Parameters
    ----------
    root : path-like
        The folder holding ``wav/idNNNNN/<video>/<nnnnn>.wav`` (or the ``wav`` folder itself).
    meta : path-like
        ``vox1_meta.csv``.
    n_speakers, utterances_per_speaker : int
        Subset size (each >= 1); see the module docstring for what happens when there are too few.
    seed : int
        Non-negative seed of the choice.
    sr : int
        The rate every file must have (VoxCeleb1 is 16 kHz); files at other rates are rejected, not converted.
    rejected : path-like, optional
        Also write the rejected table there as CSV (atomically).

    Returns
    -------
    DataFrame
        The schema columns (``split`` empty, ``path`` absolute, ``source = "voxceleb1"``) plus ``video`` and
        ``set`` (VoxCeleb1's own dev/test). Utterance ids are ``<speaker>_<video>_<nnnnn>``.
        ``df.attrs["rejected"]``: DataFrame ``path, reason`` of the files that failed the checks.

    Raises
    ------
    FileNotFoundError
        ``root`` is missing (names ``data.voxceleb1_root``).
    ValueError
        ``meta`` is missing or malformed (names ``data.voxceleb1_meta`` and the expected header), a bad size or
        seed, or no speaker of the metadata has any file under ``root``.
    """
    for key, value in (("data.n_speakers", n_speakers), ("data.utterances_per_speaker", utterances_per_speaker)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"{key}: expected a positive integer, got {value!r}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed: expected a non-negative integer, got {seed!r}")
    wavs = wav_root(root)
    info = read_vox1_meta(meta).set_index("speaker_id")
    folders = sorted(d for d in wavs.iterdir() if d.is_dir() and d.name in info.index)
    if not folders:
        raise ValueError(f"{ROOT_KEY}: no speaker folder under {wavs} matches a VoxCeleb1 ID of {META_KEY} "
                         f"({len(info)} speakers listed there)")
    rng = np.random.default_rng(np.random.SeedSequence(int(seed), spawn_key=(11,)))
    chosen = _choose_speakers([folders[i] for i in rng.permutation(len(folders))], n_speakers,
                              utterances_per_speaker)
    rows, bad, short = [], [], []
    for folder, files in chosen:
        order = np.random.default_rng(
            np.random.SeedSequence(int(seed), spawn_key=(12, zlib.crc32(folder.name.encode())))
        ).permutation(len(files))
        kept = 0
        for i in order:
            if kept == utterances_per_speaker:
                break
            path = files[int(i)]
            try:
                duration = check_file(path, sr)
            except (AudioError, sf.LibsndfileError, RuntimeError, OSError) as e:
                bad.append({"path": str(path.resolve()), "reason": str(e)})
                continue
            kept += 1
            who = info.loc[folder.name]
            rows.append({
                "utterance_id": f"{folder.name}_{path.parent.name}_{path.stem}", "speaker_id": folder.name,
                "gender": who["gender"], "nationality": who["nationality"], "split": "",
                "path": str(path.resolve()), "duration_s": duration, "source": SOURCE,
                "video": path.parent.name, "set": who["set"],
            })
        if kept < utterances_per_speaker:
            short.append(f"{folder.name} ({kept} good files)")
    if short:
        warnings.warn(f"load_voxceleb1: fewer than {utterances_per_speaker} usable files for: "
                      f"{', '.join(short)}; all of their usable files are used", stacklevel=2)
    df = pd.DataFrame(rows, columns=list(COLUMNS) + ["video", "set"])
    df = df.sort_values("utterance_id", kind="stable").reset_index(drop=True)
    rej = pd.DataFrame(bad, columns=["path", "reason"])
    df.attrs["rejected"] = rej
    if rejected is not None:
        write_csv(rejected, rej)
    return df


def _choose_speakers(folders: list[Path], n_speakers: int, per_speaker: int) -> list[tuple[Path, list[Path]]]:
    """Walk speakers in the given (seeded) order and take those with enough files; fill up with the largest rest.

    Returns the chosen ``(folder, files)`` pairs.
    """
    taken: list[tuple[Path, list[Path]]] = []
    others: list[tuple[Path, list[Path]]] = []
    for folder in folders:
        if len(taken) == n_speakers:
            break
        files = _speaker_files(folder)
        if len(files) >= per_speaker:
            taken.append((folder, files))
        elif files:
            others.append((folder, files))
    if len(taken) < n_speakers:
        fill = sorted(others, key=lambda fp: -len(fp[1]))[: n_speakers - len(taken)]  # stable: seeded order
        if fill:
            warnings.warn(f"load_voxceleb1: only {len(taken)} speakers have {per_speaker} files; adding "
                          f"{len(fill)} with fewer", stacklevel=3)
        taken += fill
        if len(taken) < n_speakers:
            warnings.warn(f"load_voxceleb1: asked for {n_speakers} speakers, only {len(taken)} have files",
                          stacklevel=3)
    return taken
