"""Your own recordings as the study's corpus (``data.source: folder``; docs/study.md, Data).

``data.folder.root`` is any tree of ``.wav``, ``.flac``, ``.mp3`` or ``.ogg`` files (a speech archive, a music
collection, field recordings). Optionally ``data.folder.meta`` is a CSV with a ``path`` column (relative to the
root, or absolute) and any attribute columns. ``data.folder.group`` names the CSV column that groups the files
(a speaker, an artist); without it, or without a CSV, a file's group is the folder that holds it.

What happens to each file (in sorted path order):

1. it is opened and checked as the VoxCeleb1 loader checks files: unreadable, empty, shorter than 1 s, silent or
   non-finite files become rows ``(path, reason)`` of ``rejected.csv`` and the run goes on;
2. it is mixed down to mono and resampled to the study rate ``sr``;
3. a file longer than ``max_s`` is cut into consecutive pieces of ``max_s`` seconds (a last piece shorter than
   ``min_s`` is dropped); each piece keeps its recording and its offset in it (``recording``,
   ``offset_s``) and is written as 16-bit PCM WAV under ``<out_dir>/wav/<group>/``. A silent piece of a long file is
   rejected on its own (``path@offset``).

The metadata then has the study's columns: ``speaker_id`` is the group, ``gender`` and ``nationality`` come from
CSV columns of those names when present (else empty, and those attribute tasks do not run), every other CSV column
becomes ``attr_<name>`` (an attribute task of its own, e.g. ``attr_genre``), and ``group_by`` says where the groups
came from (``folder`` or the column's name; no speaker task runs on folder groups). The splits keep the pieces of a
recording together (:func:`samaf_lib.corpus.splits.assign_splits`); ``data.split_by: speaker`` makes them
disjoint by group as well.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np
import pandas as pd
import soundfile as sf

from ..audio import AudioError, check_audio, resample, write_audio
from ..io import write_csv
from .splits import COLUMNS

ROOT_KEY = "data.folder.root"
META_KEY = "data.folder.meta"
GROUP_KEY = "data.folder.group"
SOURCE = "folder"
EXTENSIONS = (".wav", ".flac", ".mp3", ".ogg")
MIN_DURATION_S = 1.0
EXTRA_COLUMNS = ("recording", "offset_s", "group_by")
_SAFE = re.compile(r"[^A-Za-z0-9._-]+")


def _safe(text: str) -> str:
    return _SAFE.sub("-", text).strip("-") or "x"


def list_audio(root: str | os.PathLike) -> list[Path]:
    """The audio files under ``root`` (any depth, by extension, case-insensitive), sorted.

    Raises
    ------
    FileNotFoundError
        ``root`` is empty or not a folder (names ``data.folder.root``).
    """
    hint = ("set it in params.yaml to a folder of .wav/.flac/.mp3/.ogg files (any depth), or use "
            "data.source: synthvox")
    if root is None or str(root).strip() == "":
        raise FileNotFoundError(f"{ROOT_KEY} is empty: {hint}")
    r = Path(root).expanduser()
    if not r.is_dir():
        raise FileNotFoundError(f"{ROOT_KEY}: {r} is not a folder; {hint}")
    return sorted(p for p in r.rglob("*") if p.is_file() and p.suffix.lower() in EXTENSIONS)


def read_folder_meta(meta: str | os.PathLike, root: Path, group: str = "") -> pd.DataFrame:
    """Read ``data.folder.meta``: one row per file, ``path`` resolved (absolute), the other columns as text.

    Raises
    ------
    ValueError
        The file is missing or unreadable, has no ``path`` column, lists a path twice, or lacks the column
        ``data.folder.group`` names. The message names the key.
    """
    p = Path(meta).expanduser()
    if not p.is_file():
        raise ValueError(f"{META_KEY}: {p} does not exist; give a CSV with a 'path' column (relative to "
                         f"{ROOT_KEY}) and any attribute columns, or leave it empty")
    try:
        df = pd.read_csv(p, dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as e:
        raise ValueError(f"{META_KEY}: cannot read {p} as CSV ({e})") from e
    df.columns = [str(c).strip() for c in df.columns]
    if "path" not in df.columns:
        raise ValueError(f"{META_KEY}: {p} has no 'path' column (found {', '.join(map(repr, df.columns))}); "
                         "give one path per row, relative to the folder")
    if group and group not in df.columns:
        raise ValueError(f"{GROUP_KEY}: {group!r} is not a column of {p} (found {', '.join(map(repr, df.columns))})")
    df["path"] = [str((root / s.strip()).resolve()) if not Path(s.strip()).is_absolute() else str(Path(s.strip()))
                  for s in df["path"]]
    dup = df["path"][df["path"].duplicated()]
    if len(dup):
        raise ValueError(f"{META_KEY}: {p} lists {dup.iloc[0]} more than once")
    return df


def _read(path: Path) -> tuple[np.ndarray, int]:
    """The whole file as float32 mono (channels averaged) and its rate."""
    try:
        audio, sr = sf.read(str(path), dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, OSError, ValueError) as e:
        raise AudioError(f"{path}: cannot be read as audio ({e})") from e
    if audio.size == 0:
        raise AudioError(f"{path}: holds no samples")
    return audio.mean(axis=1), int(sr)


def load_folder(root: str | os.PathLike, out_dir: str | os.PathLike, sr: int = 16000, meta: str | os.PathLike = "",
                group: str = "", min_s: float = 4.0, max_s: float = 10.0,
                rejected: str | os.PathLike | None = None) -> pd.DataFrame:
    """Check, resample and cut a folder of recordings into the study's corpus (see the module docstring).

    Parameters
    ----------
    root : path-like
        ``data.folder.root``.
    out_dir : path-like
        The corpus folder: pieces go to ``wav/<group>/<utterance_id>.wav`` under it, paths in the table are
        relative to it.
    sr : int
        The study rate.
    meta, group : str
        ``data.folder.meta`` (empty: none) and ``data.folder.group`` (empty: the folder holding each file).
    min_s, max_s : float
        Piece length ``max_s``; last pieces shorter than ``min_s`` are dropped (a whole file shorter than
        ``max_s`` is one piece if it lasts at least 1 s).
    rejected : path-like, optional
        Also write the rejected table there.

    Returns
    -------
    DataFrame
        The schema columns (``split`` empty, ``source = "folder"``) followed by :data:`EXTRA_COLUMNS` and the
        ``attr_*`` columns; ``df.attrs["rejected"]`` the rejected ``(path, reason)`` table.

    Raises
    ------
    FileNotFoundError, ValueError
        A missing root, a bad CSV (names the key), bad lengths, or no usable file at all.
    """
    if not (0 < float(min_s) <= float(max_s)):
        raise ValueError(f"data.min_utterance_s / data.max_utterance_s: need 0 < min <= max, got {min_s!r}, "
                         f"{max_s!r}")
    files = list_audio(root)
    r = Path(root).expanduser().resolve()
    info = None
    if meta is not None and str(meta).strip():
        info = read_folder_meta(meta, r, group.strip() if group else "")
        listed = set(info["path"])
        files = [f for f in (Path(p) for p in info["path"])]
        unlisted = len([p for p in list_audio(r) if str(p.resolve()) not in listed])  # kept in df.attrs
    elif group and str(group).strip():
        raise ValueError(f"{GROUP_KEY}: {group!r} names a column, but {META_KEY} is empty; give the CSV or "
                         "leave the group empty (a file's folder is then its group)")
    out_dir = Path(out_dir)
    attr_cols = ([c for c in info.columns if c not in ("path", group, "gender", "nationality")]
                 if info is not None else [])
    rows, bad = [], []
    used_ids: set[str] = set()
    for path in files:
        shown = str(path.relative_to(r)) if path.is_relative_to(r) else str(path)
        row = info.loc[info["path"] == str(path)].iloc[0] if info is not None else None
        if not path.is_file():
            bad.append({"path": shown, "reason": f"{path}: listed in {META_KEY} but no such file"})
            continue
        try:
            audio, file_sr = _read(path)
            check_audio(audio, file_sr, name=shown, min_duration_s=MIN_DURATION_S)
        except AudioError as e:
            bad.append({"path": shown, "reason": str(e)})
            continue
        audio = resample(audio, file_sr, int(sr))
        grp = (str(row[group]).strip() if row is not None and group else "") or (
            path.parent.name if path.parent != r else r.name)
        piece, step = int(round(float(max_s) * sr)), int(round(float(max_s) * sr))
        starts = [0] if audio.size <= piece else list(range(0, audio.size, step))
        rec = _safe(str(Path(shown).with_suffix("")).replace(os.sep, "__"))
        for k, start in enumerate(starts):
            seg = audio[start: start + piece]
            if k and seg.size < float(min_s) * sr:
                break
            where = f"{shown}@{start / sr:.2f}s" if len(starts) > 1 else shown
            try:
                check_audio(seg, int(sr), name=where, min_duration_s=MIN_DURATION_S)
            except AudioError as e:
                bad.append({"path": where, "reason": str(e)})
                continue
            uid = f"{rec}_p{k:03d}" if len(starts) > 1 else rec
            while uid in used_ids:
                uid += "_"
            used_ids.add(uid)
            rel = f"wav/{_safe(grp)}/{uid}.wav"
            write_audio(out_dir / rel, seg, int(sr))
            entry = {"utterance_id": uid, "speaker_id": _safe(grp),
                     "gender": str(row["gender"]).strip().lower() if row is not None and "gender" in row else "",
                     "nationality": str(row["nationality"]).strip() if row is not None and "nationality" in row
                     else "", "split": "", "path": rel, "duration_s": seg.size / sr, "source": SOURCE,
                     "recording": rec, "offset_s": round(start / sr, 4), "group_by": group or "folder"}
            for c in attr_cols:
                entry[f"attr_{c}"] = str(row[c]).strip()
            rows.append(entry)
    if not rows:
        raise ValueError(f"{ROOT_KEY}: no usable recording under {r} ({len(files)} file(s) found, {len(bad)} "
                         "rejected; see rejected.csv)")
    df = pd.DataFrame(rows, columns=list(COLUMNS) + list(EXTRA_COLUMNS) + [f"attr_{c}" for c in attr_cols])
    df = df.sort_values("utterance_id", kind="stable").reset_index(drop=True)
    rej = pd.DataFrame(bad, columns=["path", "reason"])
    df.attrs["rejected"] = rej
    df.attrs["unlisted"] = unlisted if info is not None else 0
    if rejected is not None:
        write_csv(rejected, rej)
    return df
