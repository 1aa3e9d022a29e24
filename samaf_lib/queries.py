"""The shared query set of the protocol (docs/study.md, Protocol): one manifest and one folder of distorted excerpts that every
system answers.

Each condition is a (distortion, level) pair plus ``("clean", "-")``. For every condition and query length L,
``per_condition`` positives are cut from reference (``test``) utterances and ``per_condition`` negatives from
speakers with no utterance in the database (``outside_test``; ``outside_calib`` for the calibration set), the
``other_speaker`` kind. The test set also holds ``same_speaker`` negatives, unindexed utterances of database
speakers (``unseen``), so that the false-positive rate can be reported on both kinds (docs/study.md, Protocol).
Without outside speakers (``data.frac_outside: 0``) the negatives are all ``same_speaker`` (``unseen``; ``val``
for the calibration set). Excerpts start at random offsets
kept away from the reference window grid, are cut first and distorted after, so a tempo or speed change makes the
query shorter than L (a 1-s query at ``speed 1.1`` lasts 0.91 s and is legitimately "too short" for SAMAF).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

from .audio import load_audio, write_audio
from . import parallel
from .io import write_csv
from .progress import bar

#: Columns of ``queries.csv``.
MANIFEST_COLUMNS = ["query_id", "set", "utterance_id", "speaker_id", "ref_id", "positive", "offset_s",
                    "length_s", "distortion", "level", "seed", "path", "kind"]
#: Values of the ``kind`` column.
KINDS = ("positive", "other_speaker", "same_speaker")
CLEAN = ("clean", "-")


def parse_lengths(lengths: str | list) -> list[float]:
    """``"1,2,3,5"`` (or a list) -> ``[1.0, 2.0, 3.0, 5.0]``; every length must be positive."""
    vals = [float(x) for x in (lengths.split(",") if isinstance(lengths, str) else lengths)]
    if not vals or any(v <= 0 for v in vals):
        raise ValueError(f"queries.lengths: expected positive seconds like '1,2,3,5', got {lengths!r}")
    return vals


def off_grid_offset(rng: np.random.Generator, max_offset: float, grid_s: float = 0.5,
                    min_gap_s: float = 0.05) -> float:
    """A random offset in ``[0, max_offset]`` at least ``min_gap_s`` away from every multiple of ``grid_s``."""
    if max_offset <= 0:
        return 0.0
    for _ in range(100):
        off = float(rng.uniform(0.0, max_offset))
        r = off % grid_s
        if min_gap_s <= r <= grid_s - min_gap_s:
            return round(off, 4)
    return round(off, 4)


def _pools(meta: pd.DataFrame, query_set: str) -> tuple[str, list[tuple[str, str]]]:
    """The positives' split and the ``(split, kind)`` of each negative pool of a query set."""
    splits = set(meta["split"].astype(str))
    outside = {"test": "outside_test", "calib": "outside_calib"}.get(query_set)
    if query_set == "val":
        return "val", [("train", "same_speaker")]
    if outside in splits:
        negs = [(outside, "other_speaker")]
        if query_set == "test":
            negs.append(("unseen", "same_speaker"))
        return "test", negs
    return "test", [("unseen" if query_set == "test" else "val", "same_speaker")]


def plan_queries(meta: pd.DataFrame, conditions: list[tuple[str, object]], lengths: list[float],
                 per_condition: int, seed: int, query_set: str = "test",
                 same_speaker_per_condition: int | None = None) -> pd.DataFrame:
    """Decide every query (source, offset, length, condition) without touching audio.

    Parameters
    ----------
    meta : DataFrame
        Corpus metadata (``utterance_id, speaker_id, split, duration_s, ...``).
    conditions : list of (name, level)
        Distortion conditions; ``("clean", "-")`` is added when missing.
    lengths : list of float
        Query lengths in seconds.
    per_condition : int
        Positives per (condition, length); as many negatives of the main kind (``other_speaker`` when the corpus
        has outside speakers).
    seed : int
        Seed of the plan. The calibration set uses the same function with ``query_set="calib"``, which draws from
        an independent stream (other offsets, other seeds) and takes its negatives from ``outside_calib`` speakers
        (``val`` utterances without outside speakers). The validation set of training (``query_set="val"``) has
        its positives from ``val`` utterances (its own reference database) and its negatives from ``train``
        utterances, so it never reads a test, unseen or outside utterance.
    query_set : {"test", "calib", "val"}
    same_speaker_per_condition : int, optional
        ``same_speaker`` negatives per (condition, length) of the test set when it also has ``other_speaker``
        ones (default: ``per_condition``; 0 leaves them out).

    Returns
    -------
    DataFrame with :data:`MANIFEST_COLUMNS` (``path`` relative to the query folder).
    """
    if per_condition < 1:
        raise ValueError(f"queries.per_condition must be >= 1, got {per_condition}")
    if query_set not in ("test", "calib", "val"):
        raise ValueError(f"query_set must be one of test, calib, val, got {query_set!r}")
    n_same = per_condition if same_speaker_per_condition is None else int(same_speaker_per_condition)
    if n_same < 0:
        raise ValueError(f"queries.same_speaker_per_condition must be >= 0, got {same_speaker_per_condition}")
    conds = [CLEAN] + [c for c in conditions if c != CLEAN]
    pos_split, neg_pools = _pools(meta, query_set)
    pools = [(pos_split, "positive", per_condition)]
    for split, kind in neg_pools:
        n = n_same if (kind == "same_speaker" and len(neg_pools) > 1) else per_condition
        if n:
            pools.append((split, kind, n))
    frames = {}
    for split, _, _ in pools:
        frames[split] = meta[meta["split"] == split].reset_index(drop=True)
        if frames[split].empty:
            raise ValueError(f"no '{split}' utterances to draw {query_set} queries from; "
                             "check data.frac_* in params.yaml")
    stream = {"test": 0, "calib": 1, "val": 2}[query_set]
    rng = np.random.default_rng(np.random.SeedSequence([seed, 7919, stream]))
    tag = {"positive": "pos", "other_speaker": "neg", "same_speaker": "neg"}
    if len(pools) > 2:
        tag["same_speaker"] = "negsame"
    rows = []
    for name, level in conds:
        for length in lengths:
            for split, kind, count in pools:
                pool = frames[split]
                positive = int(kind == "positive")
                picks = rng.permutation(np.resize(np.arange(len(pool)), max(count, len(pool))))
                for i in range(count):
                    u = pool.iloc[int(picks[i])]
                    max_off = float(u["duration_s"]) - length
                    if max_off < 0:  # utterance shorter than the query: take it whole
                        max_off = 0.0
                    off = off_grid_offset(rng, max_off)
                    qid = f"{query_set}-{name}-{level}-{length:g}s-{tag[kind]}-{i:03d}"
                    rows.append({
                        "query_id": qid, "set": query_set, "utterance_id": u["utterance_id"],
                        "speaker_id": u["speaker_id"], "ref_id": u["utterance_id"] if positive else "",
                        "positive": positive, "offset_s": off, "length_s": float(length), "distortion": name,
                        "level": str(level), "seed": int(rng.integers(0, 2**31 - 1)),
                        "path": f"{query_set}/{qid}.wav", "kind": kind,
                    })
    return pd.DataFrame(rows, columns=MANIFEST_COLUMNS)


def _level_value(level: str):
    try:
        f = float(level)
        return int(f) if f.is_integer() and "." not in level else f
    except ValueError:
        return level


def _render_one(job) -> dict | None:
    """Cut, distort and write one query; returns a rejection record or None."""
    from .distortions import distort

    row, audio, target, sr = job
    a, b = int(round(row["offset_s"] * sr)), int(round((row["offset_s"] + row["length_s"]) * sr))
    excerpt = audio[a:b]
    try:
        if row["distortion"] != "clean":
            excerpt = distort(excerpt, sr, row["distortion"], _level_value(row["level"]), int(row["seed"]))
    except Exception as e:  # recorded, never half-written
        return {"path": str(target), "reason": f"{row['distortion']} {row['level']}: {e}"}
    write_audio(target, excerpt, sr)
    return None


def render_queries(plan: pd.DataFrame, corpus_dir: str | os.PathLike, meta: pd.DataFrame,
                   out_dir: str | os.PathLike, sr: int = 16000, progress: bool = True, jobs: int = 1,
                   dask: str = "") -> pd.DataFrame:
    """Cut, distort and write every planned query; returns the manifest of what was written.

    Files that already exist are kept (a re-run after an interruption finishes the set; every write is atomic).
    A query whose distortion fails is dropped from the manifest and reported in the returned frame's
    ``attrs["rejected"]``. ``jobs`` > 1 renders in that many processes, ``dask`` (``local:N`` or a scheduler's
address) in Dask workers (:func:`samaf_lib.parallel.map_ordered`); the result depends on neither.
    """
    out_dir = Path(out_dir)
    paths = dict(zip(meta["utterance_id"], meta["path"]))
    audio = {u: load_audio(Path(corpus_dir) / paths[u], sr) for u in sorted(set(plan["utterance_id"]))}
    records = plan.to_dict("records")
    todo = [(r, audio[r["utterance_id"]], out_dir / r["path"], sr) for r in records
            if not (out_dir / r["path"]).exists()]
    outcome = parallel.map_ordered(_render_one, todo, jobs=jobs, dask=dask, progress=progress, desc="queries")
    rejected = [r for r in outcome if r is not None]
    bad = {r["path"] for r in rejected}
    kept = [r for r in records if str(out_dir / r["path"]) not in bad]
    out = pd.DataFrame(kept, columns=MANIFEST_COLUMNS)
    out.attrs["rejected"] = pd.DataFrame(rejected, columns=["path", "reason"])
    return out


def write_manifest(path: str | os.PathLike, manifest: pd.DataFrame) -> None:
    """Write ``queries.csv`` atomically."""
    write_csv(path, manifest)


def read_manifest(path: str | os.PathLike) -> pd.DataFrame:
    """Read ``queries.csv`` with the right dtypes (``ref_id`` empty -> NaN for negatives)."""
    df = pd.read_csv(path, dtype={"query_id": str, "utterance_id": str, "speaker_id": str, "ref_id": str,
                                  "level": str, "distortion": str, "set": str, "path": str, "kind": str})
    if "kind" not in df.columns and "positive" in df.columns:  # manifests written before negatives had kinds
        df["kind"] = np.where(df["positive"].astype(int) == 1, "positive", "same_speaker")
    missing = [c for c in MANIFEST_COLUMNS if c not in df.columns]
    if missing:
        raise ValueError(f"{path}: not a query manifest, missing columns {missing}")
    return df
