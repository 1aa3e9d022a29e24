"""The protocol every system goes through (docs/study.md, Protocol), shared by the ``hash`` and ``baselines`` stages: index the
clean ``test`` utterances, answer every query of the shared query set, write one results table in one format.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import pandas as pd

from .audio import AudioError, load_audio
from .io import write_csv
from .progress import bar
from .systems.base import Fingerprinter

#: Columns of ``results/<system>.csv``: the answers only, so that the same run writes the same bytes on any machine.
RESULT_COLUMNS = ["query_id", "ref_id", "offset_s", "score", "status"]
#: What :func:`run_queries` adds in memory: the wall time of each answer, shown by the notebooks, never stored.
TIMING_COLUMNS = ["seconds"]
#: Keys of :func:`index_references` and :func:`run_speed` that measure this machine's speed (never stored).
TIMING_KEYS = ("fingerprint_seconds", "x_realtime", "query_ms_median", "query_ms_p95")


def index_references(system: Fingerprinter, meta: pd.DataFrame, corpus_dir: str | os.PathLike, sr: int,
                     split: str = "test", progress: bool = True) -> dict:
    """Fingerprint every utterance of ``split`` into ``system``; the reference id is the utterance id.

    Returns
    -------
    dict
        ``references``, ``audio_seconds``, ``fingerprint_seconds`` (wall time inside ``add``) and
        ``x_realtime`` (audio seconds per wall second, on however many threads the system used).
    """
    refs = meta[meta["split"] == split]
    if refs.empty:
        raise ValueError(f"no '{split}' utterances to index")
    audio_s = wall = 0.0
    for row in bar(refs.itertuples(index=False), total=len(refs), enabled=progress, desc=f"index {system.name}"):
        audio = load_audio(Path(corpus_dir) / row.path, sr)
        t0 = time.perf_counter()
        system.add(row.utterance_id, audio, sr)
        wall += time.perf_counter() - t0
        audio_s += audio.size / sr
    return {"references": int(len(refs)), "audio_seconds": audio_s, "fingerprint_seconds": wall,
            "x_realtime": audio_s / wall if wall > 0 else float("nan")}


def run_queries(system: Fingerprinter, manifest: pd.DataFrame, query_dir: str | os.PathLike, sr: int,
                progress: bool = True, min_score: float | None = 0.0) -> pd.DataFrame:
    """Answer every query of ``manifest``; the time of ``identify`` alone is recorded (not the file read).

    ``min_score`` replaces the system's rejection threshold for the run (restored afterwards): the protocol runs
    with 0 so that every query gets the best candidate and its score, and the evaluation applies a threshold
    calibrated on the calibration queries. ``None`` keeps the system's own threshold.

    A query the system cannot take (shorter than its window after a tempo change, say) gets ``ref_id`` empty and
    ``status`` ``"too_short"``/``"error: ..."``: a recorded answer, never a crash of the stage.
    """
    saved = system.params.get("min_score")
    if min_score is not None:
        system.params["min_score"] = float(min_score)
    try:
        return _answer_all(system, manifest, query_dir, sr, progress)
    finally:
        system.params["min_score"] = saved


def _answer_all(system: Fingerprinter, manifest: pd.DataFrame, query_dir: str | os.PathLike, sr: int,
                progress: bool) -> pd.DataFrame:
    rows = []
    for q in bar(manifest.itertuples(index=False), total=len(manifest), enabled=progress,
                  desc=f"query {system.name}"):
        audio = load_audio(Path(query_dir) / q.path, sr)
        t0 = time.perf_counter()
        try:
            m = system.identify(audio, sr)
            status = "ok" if m.ref_id is not None or audio.size >= sr else "too_short"
        except AudioError as e:
            m, status = None, f"error: {e}"
        dt = time.perf_counter() - t0
        rows.append({"query_id": q.query_id, "ref_id": (m.ref_id if m else None) or "",
                     "offset_s": round(float(m.offset_s), 4) if m else 0.0,
                     "score": float(m.score) if m else 0.0, "seconds": round(dt, 6), "status": status})
    return pd.DataFrame(rows, columns=RESULT_COLUMNS + TIMING_COLUMNS)


def write_results(path: str | os.PathLike, results: pd.DataFrame) -> None:
    """Write a results table atomically after checking its columns (:data:`RESULT_COLUMNS`; timings are left out)."""
    missing = [c for c in RESULT_COLUMNS if c not in results.columns]
    if missing:
        raise ValueError(f"results for {path} lack columns {missing}")
    write_csv(path, results[RESULT_COLUMNS])


def read_results(path: str | os.PathLike) -> pd.DataFrame:
    """Read a results table (``ref_id`` empty -> NaN)."""
    df = pd.read_csv(path, dtype={"query_id": str, "ref_id": str, "status": str})
    missing = [c for c in RESULT_COLUMNS if c not in df.columns]
    if missing:
        raise ValueError(f"{path}: not a results table, missing columns {missing}")
    return df


def summarise_run(results: pd.DataFrame, index_info: dict, stats: dict) -> dict:
    """One JSON-able record of a system's run: what it indexed, what it stores, how many queries it answered.

    It holds no timing (:data:`TIMING_KEYS` are dropped), so a rerun of the same commit writes the same record;
    :func:`run_speed` gives this run's speed for display, and ``make bench`` measures speed properly.
    """
    info = {k: v for k, v in index_info.items() if k not in TIMING_KEYS}
    return {**info, **{k: v for k, v in stats.items() if k != "params"}, "params": stats.get("params", {}),
            "queries": int(len(results))}


def run_speed(results: pd.DataFrame, index_info: dict) -> dict:
    """This run's speed on this machine: ``x_realtime`` and ``fingerprint_seconds`` of indexing, and the median
    and 95th percentile of the query times (ms). For display only: it changes with the machine and its load."""
    secs = results["seconds"].to_numpy(dtype=float) if "seconds" in results.columns else np.zeros(0)
    return {"x_realtime": index_info.get("x_realtime"), "fingerprint_seconds": index_info.get("fingerprint_seconds"),
            "query_ms_median": float(np.median(secs) * 1000) if secs.size else None,
            "query_ms_p95": float(np.percentile(secs, 95) * 1000) if secs.size else None}
