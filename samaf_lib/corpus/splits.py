"""The corpus metadata table (docs/study.md, Data): its schema, the train/val/test/unseen splits, reading and writing.

One schema for every source: ``utterance_id, speaker_id, gender, nationality, split, path, duration_s, source``
(a source may add columns after these). ``path`` is resolved against the folder that holds ``metadata.csv``:
the generated corpus stores paths relative to it (``wav/sv0001/sv0001_001.wav``), VoxCeleb1 stores absolute paths
(the data lives outside the project), and ``base / path`` gives the file in both cases (:func:`resolve_paths`).

Splits (:func:`assign_splits`): ``train`` and ``val`` utterances train the autoencoder, ``test`` utterances are the
reference database and ``unseen`` utterances (never indexed) give one kind of negative query: unindexed speech of
speakers the database holds. They are always disjoint by utterance; ``by="speaker"`` makes them disjoint by speaker
as well. With ``outside`` > 0, a share of the speakers is held out of everything first: none of their utterances
is trained on or indexed, and they give the negatives that are really out of the database (``outside_test`` for
the test queries, ``outside_calib`` for the calibration queries, each from its own speakers; docs/study.md, Data).
"""

from __future__ import annotations

import math
import os
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from ..io import write_csv

#: Columns every metadata table has, in this order.
COLUMNS = ("utterance_id", "speaker_id", "gender", "nationality", "split", "path", "duration_s", "source")
#: Split names dealt by fraction, in the order fractions are dealt.
SPLITS = ("train", "val", "test", "unseen")
#: Splits of the speakers held out of everything (:func:`assign_splits` with ``outside`` > 0).
OUTSIDE_SPLITS = ("outside_calib", "outside_test")
#: The columns read as text (an empty ``split`` stays ``""``, a nationality ``NA`` stays ``"NA"``).
_TEXT_COLUMNS = tuple(c for c in COLUMNS if c != "duration_s")


def empty_metadata() -> pd.DataFrame:
    """An empty table with the schema's columns."""
    return pd.DataFrame({c: pd.Series(dtype=float if c == "duration_s" else object) for c in COLUMNS})


def check_fractions(fractions: dict[str, float], key: str = "data.frac") -> dict[str, float]:
    """Validate split fractions and return them for every split name (missing names count 0).

    Parameters
    ----------
    fractions : dict of str to float
        ``{"train": 0.45, "val": 0.1, "test": 0.3, "unseen": 0.15}``; each in [0, 1], summing to 1.
    key : str
        Prefix of the parameter keys named in errors (``data.frac_train`` ...).

    Raises
    ------
    ValueError
        An unknown split name, a value that is not a number in [0, 1], or a sum other than 1 (within 1e-6).
    """
    if not isinstance(fractions, dict) or not fractions:
        raise ValueError(f"{key}_*: split fractions must be a non-empty dict like "
                         f"{{'train': 0.45, 'val': 0.1, 'test': 0.3, 'unseen': 0.15}}, got {fractions!r}")
    out = {s: 0.0 for s in SPLITS}
    for name, value in fractions.items():
        if name not in SPLITS:
            raise ValueError(f"{key}_{name}: unknown split {name!r}; the splits are {', '.join(SPLITS)}")
        try:
            v = float(value)
        except (TypeError, ValueError):
            raise ValueError(f"{key}_{name}: split fraction must be a number in [0, 1], got {value!r}") from None
        if not (0.0 <= v <= 1.0) or math.isnan(v):
            raise ValueError(f"{key}_{name}: split fraction {v:g} is outside [0, 1]")
        out[name] = v
    total = sum(out.values())
    if abs(total - 1.0) > 1e-6:
        listed = ", ".join(f"{key}_{s}={v:g}" for s, v in out.items())
        raise ValueError(f"{key}_*: split fractions must sum to 1, got {total:g} ({listed})")
    return out


def split_counts(n: int, fractions: dict[str, float]) -> dict[str, int]:
    """How many of ``n`` items each split gets.

    Largest-remainder rounding of ``n * fraction``; when ``n`` is at least the number of splits with a positive
    fraction, each of those gets at least one item (taken from the largest split). Splits with fraction 0 get none.

    Returns
    -------
    dict of str to int, summing to ``n``, in :data:`SPLITS` order.
    """
    fr = check_fractions(fractions)
    names = list(SPLITS)
    exact = np.array([n * fr[s] for s in names])
    counts = np.floor(exact + 1e-9).astype(int)
    remainder = exact - counts
    # hand out the items lost to flooring, largest remainder first (ties: split order)
    for i in sorted(range(len(names)), key=lambda j: (-remainder[j], j))[: n - int(counts.sum())]:
        counts[i] += 1
    positive = [i for i, s in enumerate(names) if fr[s] > 0]
    if n >= len(positive):
        for i in positive:
            if counts[i] == 0:
                counts[int(np.argmax(counts))] -= 1
                counts[i] = 1
    return {s: int(c) for s, c in zip(names, counts)}


def assign_splits(df: pd.DataFrame, fractions: dict[str, float], by: str = "utterance",
                  seed: int = 0, outside: float = 0.0) -> pd.DataFrame:
    """Fill the ``split`` column with ``train`` / ``val`` / ``test`` / ``unseen`` (and the outside splits).

    Parameters
    ----------
    df : DataFrame
        Metadata with at least ``utterance_id`` and ``speaker_id``.
    fractions : dict of str to float
        Share of each split (see :func:`check_fractions`). ``by="utterance"``: share of the utterances;
        ``by="speaker"``: share of the speakers.
    by : {"utterance", "speaker"}
        ``"utterance"``: every speaker's utterances are spread over the splits in proportion to the fractions
        (so test speakers are also heard in training; splits disjoint by utterance). ``"speaker"``: whole speakers
        go to one split (disjoint by speaker too).
    seed : int
        Seed of the assignment; the result does not depend on the row order of ``df``.

        Where ``df`` has a ``recording`` column shared by several rows (the pieces a folder's long files are cut
        into), the recordings are assigned and each piece follows its recording: the fractions are then shares of
        the recordings, and no recording is both trained on and indexed, or both indexed and a negative.
    outside : float
        Share of the speakers (in [0, 0.5]) held out of every split above, rounded to an even number of at least
        2 when positive: half of them (in a seeded order) go to ``outside_calib``, half to ``outside_test``. The
        fractions then apply to the remaining speakers' utterances.

    Returns
    -------
    DataFrame
        A copy of ``df`` (same rows, same order) with ``split`` filled. Every split with a positive fraction gets
        at least one utterance when there are at least as many items (utterances, or speakers for
        ``by="speaker"``) as such splits; otherwise a warning says which split is empty.

    Raises
    ------
    ValueError
        Bad fractions, an unknown ``by``, missing columns, or duplicate utterance ids.
    """
    if "recording" in df.columns and len(df) and df["recording"].notna().all() and df["recording"].duplicated().any():
        # pieces of one recording (a folder's long files) go to one split together: assign the recordings
        recs = (df.drop_duplicates("recording")[["recording", "speaker_id"]]
                .rename(columns={"recording": "utterance_id"}))
        split = assign_splits(recs, fractions, by=by, seed=seed, outside=outside)
        out = df.copy()
        out["split"] = df["recording"].map(dict(zip(split["utterance_id"], split["split"])))
        return out
    fr = check_fractions(fractions)
    if by not in ("utterance", "speaker"):
        raise ValueError(f"data.split_by: must be 'utterance' or 'speaker', got {by!r}")
    for col in ("utterance_id", "speaker_id"):
        if col not in df.columns:
            raise ValueError(f"assign_splits: the metadata has no {col!r} column")
    if df["utterance_id"].duplicated().any():
        dup = df.loc[df["utterance_id"].duplicated(), "utterance_id"].iloc[0]
        raise ValueError(f"assign_splits: utterance id {dup!r} appears more than once")
    try:
        outside = float(outside)
    except (TypeError, ValueError):
        raise ValueError(f"data.frac_outside: must be a number in [0, 0.5], got {outside!r}") from None
    if not 0.0 <= outside <= 0.5:
        raise ValueError(f"data.frac_outside: must be in [0, 0.5] (a share of the speakers), got {outside:g}")
    out = df.copy()
    if len(out) == 0:
        out["split"] = pd.Series(dtype=object)
        return out
    out["split"] = ""
    held = np.zeros(len(out), bool)
    if outside > 0:
        speakers = np.array(sorted(out["speaker_id"].astype(str).unique()))
        n_out = 2 * max(1, int(round(outside * len(speakers) / 2)))
        if n_out >= len(speakers):
            raise ValueError(f"data.frac_outside: {outside:g} of {len(speakers)} speakers leaves none for the "
                             "database; lower it or add speakers")
        orng = np.random.default_rng(np.random.SeedSequence(int(seed), spawn_key=(11,)))
        chosen = speakers[orng.permutation(len(speakers))[:n_out]]
        label = {spk: OUTSIDE_SPLITS[i % 2] for i, spk in enumerate(chosen)}
        spk_col = out["speaker_id"].astype(str)
        held = spk_col.isin(label).to_numpy()
        out.loc[held, "split"] = spk_col[held].map(label).to_numpy()
    rest = out[~held]
    rng = np.random.default_rng(np.random.SeedSequence(int(seed), spawn_key=(7,)))
    if by == "speaker":
        speakers = np.array(sorted(rest["speaker_id"].astype(str).unique()))
        speakers = speakers[rng.permutation(len(speakers))]
        labels = _deal(split_counts(len(speakers), fr))
        out.loc[~held, "split"] = rest["speaker_id"].astype(str).map(dict(zip(speakers, labels))).to_numpy()
    else:
        out.loc[~held, "split"] = _spread_by_speaker(rest, fr, rng)
    empty = [s for s in SPLITS if fr[s] > 0 and not (out["split"] == s).any()]
    if empty:
        unit = "speakers" if by == "speaker" else "utterances"
        warnings.warn(f"assign_splits: too few {unit} for every split; empty: {', '.join(empty)}", stacklevel=2)
    return out


def _deal(counts: dict[str, int]) -> list[str]:
    """``{"train": 2, "val": 1, ...}`` -> ``["train", "train", "val", ...]``."""
    return [s for s in SPLITS for _ in range(counts[s])]


def _spread_by_speaker(df: pd.DataFrame, fr: dict[str, float], rng: np.random.Generator) -> np.ndarray:
    """Split labels for ``by="utterance"``, aligned with ``df``'s rows.

    Systematic sampling: each speaker's utterances, in a random order, are placed at evenly spaced positions
    ``(rank + u) / n_speaker`` in [0, 1) (``u`` one random phase per speaker); all utterances are sorted by position
    and dealt to the splits in order with the exact global counts. A speaker's utterances thus cover the splits in
    proportion to the fractions, and the global counts match :func:`split_counts`.
    """
    ids = df["utterance_id"].astype(str).to_numpy()
    spk = df["speaker_id"].astype(str).to_numpy()
    order = np.lexsort((ids, spk))  # canonical order: independent of the row order of df
    position = np.empty(len(df))
    tiebreak = rng.random(len(df))
    for speaker in sorted(set(spk)):
        rows = order[spk[order] == speaker]
        n = len(rows)
        phase = rng.random()
        ranks = rng.permutation(n)
        position[rows] = (ranks + phase) / n
    dealt = np.lexsort((tiebreak, position))  # rows sorted by position
    labels = np.empty(len(df), dtype=object)
    labels[dealt] = _deal(split_counts(len(df), fr))
    return labels


def write_metadata(df: pd.DataFrame, path: str | os.PathLike) -> None:
    """Write the metadata table as CSV, atomically; schema columns first, then any others.

    Raises
    ------
    ValueError
        A schema column is missing (see :func:`validate_metadata`).
    """
    validate_metadata(df, name="write_metadata")
    extra = [c for c in df.columns if c not in COLUMNS]
    write_csv(path, df[list(COLUMNS) + extra])


def read_metadata(path: str | os.PathLike) -> pd.DataFrame:
    """Read ``metadata.csv`` and check its schema.

    Returns
    -------
    DataFrame
        Text columns as ``str`` (an unassigned split is ``""``), ``duration_s`` as float64.
        ``df.attrs["base"]`` is the folder of ``path``, the base that ``path`` entries are relative to.

    Raises
    ------
    FileNotFoundError
        No file at ``path``.
    ValueError
        A schema column is missing, a duration is not a positive number, or an utterance id repeats.
    """
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"{p}: no metadata file; run the data stage (`dvc repro data`) first")
    try:
        df = pd.read_csv(p, dtype={c: str for c in _TEXT_COLUMNS}, keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as e:
        raise ValueError(f"{p}: not a readable metadata CSV ({e}); expected the columns {', '.join(COLUMNS)}") \
            from e
    validate_metadata(df, name=str(p))
    dur = pd.to_numeric(df["duration_s"], errors="coerce")
    if dur.isna().any() or (dur <= 0).any():
        bad = df.loc[dur.isna() | (dur <= 0), "utterance_id"].iloc[0]
        raise ValueError(f"{p}: utterance {bad!r} has no positive duration_s; regenerate the metadata")
    df["duration_s"] = dur.astype(float)
    df.attrs["base"] = str(p.parent)
    return df


def validate_metadata(df: pd.DataFrame, name: str = "metadata") -> None:
    """Raise ValueError naming the first missing schema column or a repeated utterance id."""
    missing = [c for c in COLUMNS if c not in df.columns]
    if missing:
        raise ValueError(f"{name}: metadata is missing the column(s) {', '.join(missing)}; "
                         f"expected at least {', '.join(COLUMNS)}")
    if df["utterance_id"].duplicated().any():
        dup = df.loc[df["utterance_id"].duplicated(), "utterance_id"].iloc[0]
        raise ValueError(f"{name}: utterance id {dup!r} appears more than once")


def resolve_paths(df: pd.DataFrame, base: str | os.PathLike | None = None) -> pd.Series:
    """Absolute audio paths: ``base / path`` (an absolute ``path`` stays as it is).

    ``base`` defaults to ``df.attrs["base"]`` (set by :func:`read_metadata`, the folder of ``metadata.csv``).
    """
    if base is None:
        base = df.attrs.get("base")
        if base is None:
            raise ValueError("resolve_paths: give base (the folder holding metadata.csv)")
    b = Path(base)
    return df["path"].map(lambda p: str(b / p))
