"""Diagnoses of two baselines on labelled queries: why Dejavu's 2019 defaults do poorly on 16-kHz speech, and what
RAFS gains from toggling more unreliable bits in its lookup.

Both take their data as arguments (references as arrays, queries as a table with their audio), so the pipeline can
run them on the calibration queries; they refuse test queries, since thresholds are chosen on the queries given.

:func:`dejavu_diagnosis`
    For the 2019 defaults (``n_fft`` 4096 with overlap 0.5: a 2048-sample hop, 128 ms at 16 kHz; a diamond peak
    neighbourhood of radius 20, i.e. +-20 frames (+-2.56 s) and +-20 bins; ``min_hash_time_delta`` 0, so pairs
    of two peaks in the same frame are hashed; ``fan_value`` 15) and then for one change at a time, it measures the
    structure of the database (spectral peaks per second of reference audio, stored fingerprints per second, the
    fraction of stored fingerprints that pair two peaks of the same frame, distinct hash values per second) and
    the identification of the queries (aligned-hash scores of positives and negatives, top-1 at the threshold
    that gives the target false-positive rate on the negatives given, query time).
:func:`rafs_flip_diagnosis`
    RAFS with several ``flip_bits`` (the paper allows up to 10): top-1 at the same kind of threshold, and the
    query time, which grows with the ``2 ** flip_bits`` lookups per sub-fingerprint.

Thresholds follow the evaluation of the study (:mod:`samaf_lib.identification`): the smallest score whose
false-positive rate on the negatives given is at most the target (:func:`~samaf_lib.identification.choose_threshold`,
``rule="fpr"``), one per query length (count scores grow with the query's length) and one pooled over all lengths.
Top-1 is :func:`~samaf_lib.identification.identification_metrics`: a positive counts when its predicted reference
is the expected one and its score reaches the threshold (no offset tolerance unless one is given). Thresholds and
top-1 are computed on the same queries, so they are in-sample figures meant to compare settings with one another,
not estimates of test performance.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from . import identification as ident
from .audio import AudioError, load_audio
from .systems import dejavu as dj
from .systems.dejavu import Dejavu
from .systems.rafs import RAFS

#: The changes of :func:`dejavu_diagnosis`, one at a time and then together (on top of the base parameters).
DEJAVU_VARIANTS: dict[str, dict[str, Any]] = {
    "defaults (2019)": {},
    "min_hash_time_delta=1": {"min_hash_time_delta": 1},
    "neighborhood_size=5": {"neighborhood_size": 5},
    "n_fft=1024": {"n_fft": 1024},
    "all three": {"min_hash_time_delta": 1, "neighborhood_size": 5, "n_fft": 1024},
}
#: The ``flip_bits`` values of :func:`rafs_flip_diagnosis`.
RAFS_FLIP_BITS: tuple[int, ...] = (3, 5, 8, 10)
#: Columns every query table needs besides the manifest columns of the evaluation.
QUERY_COLUMNS = ["audio"]


# ----------------------------------------------------------------------------------------------------------------
# Data


def load_references(meta: pd.DataFrame, corpus_dir: str | os.PathLike, sr: int,
                    split: str = "test") -> dict[str, np.ndarray]:
    """The reference audio of one corpus split, keyed by utterance id (as the protocol indexes it).

    Parameters
    ----------
    meta : DataFrame
        Corpus metadata (``utterance_id, split, path, ...``), e.g. from :func:`samaf_lib.corpus.read_metadata`.
    corpus_dir : path-like
        The folder the ``path`` column is relative to.
    sr : int
        Sample rate to load at.
    split : str
        The split to load (``"test"``: the reference database of the protocol).

    Returns
    -------
    dict of str to np.ndarray (float32, shape (n,))
    """
    rows = meta[meta["split"] == split]
    if rows.empty:
        raise ValueError(f"no '{split}' utterances in the metadata")
    return {str(r.utterance_id): load_audio(Path(corpus_dir) / r.path, sr) for r in rows.itertuples(index=False)}


def load_queries(manifest: pd.DataFrame, query_dir: str | os.PathLike, sr: int,
                 query_set: str = "calib") -> pd.DataFrame:
    """The rows of one query set with their audio in an ``audio`` column.

    Parameters
    ----------
    manifest : DataFrame
        The query manifest (:func:`samaf_lib.queries.read_manifest`).
    query_dir : path-like
        The folder the ``path`` column is relative to.
    sr : int
        Sample rate to load at.
    query_set : str
        The value of ``set`` to keep; ``"test"`` is refused (these diagnoses choose thresholds on their queries).

    Returns
    -------
    DataFrame
        The manifest rows of ``query_set`` (index reset) plus ``audio`` (float32 arrays).
    """
    if query_set == "test":
        raise ValueError("the diagnoses choose thresholds on their queries: use the calibration set, never 'test'")
    rows = manifest[manifest["set"].astype(str) == query_set].reset_index(drop=True).copy()
    if rows.empty:
        raise ValueError(f"no queries with set == {query_set!r} in the manifest")
    rows["audio"] = [load_audio(Path(query_dir) / p, sr) for p in rows["path"]]
    return rows


def subsample_queries(queries: pd.DataFrame, max_queries: int | None, seed: int = 0) -> pd.DataFrame:
    """At most ``max_queries`` rows, drawn without replacement with the positives' share kept (seeded).

    Parameters
    ----------
    queries : DataFrame
        With a ``positive`` column (1/0).
    max_queries : int or None
        ``None`` (or at least ``len(queries)``) keeps every row.
    seed : int
        Seed of the draw.

    Returns
    -------
    DataFrame
        The rows kept, in their original order.
    """
    if max_queries is None or max_queries >= len(queries):
        return queries
    if max_queries < 2:
        raise ValueError(f"max_queries must be >= 2 (a positive and a negative), got {max_queries}")
    rng = np.random.default_rng(seed)
    pos = np.flatnonzero(queries["positive"].to_numpy().astype(int) == 1)
    neg = np.flatnonzero(queries["positive"].to_numpy().astype(int) != 1)
    n_pos = round(max_queries * pos.size / len(queries))
    n_pos = min(max(n_pos, 1 if pos.size else 0), pos.size, max_queries - (1 if neg.size else 0))
    keep = np.concatenate([rng.choice(pos, n_pos, replace=False),
                           rng.choice(neg, min(max_queries - n_pos, neg.size), replace=False)])
    return queries.iloc[np.sort(keep)]


def _check_queries(queries: pd.DataFrame) -> None:
    missing = [c for c in ident.MANIFEST_REQUIRED + QUERY_COLUMNS if c not in queries.columns]
    if missing:
        raise ValueError(f"queries lack columns {missing}; load them with load_queries()")
    sets = queries["set"].astype(str)
    if (sets == "test").any():
        raise ValueError(f"{int((sets == 'test').sum())} test queries given: the diagnoses choose thresholds on "
                         "their queries, so pass the calibration set only")
    pos = queries["positive"].to_numpy().astype(int) == 1
    if not pos.any() or pos.all():
        raise ValueError("the queries need positives and negatives")


# ----------------------------------------------------------------------------------------------------------------
# Shared measurement


def answer_queries(system: Any, queries: pd.DataFrame, sr: int) -> pd.DataFrame:
    """Every query's best candidate with the system's threshold lifted (``min_score`` 0, restored afterwards).

    Parameters
    ----------
    system : Fingerprinter
        With a ``params`` dict holding ``min_score``.
    queries : DataFrame
        ``query_id`` and ``audio`` columns.
    sr : int
        The audio's sample rate.

    Returns
    -------
    DataFrame
        ``query_id, ref_id, offset_s, score, seconds`` (``ref_id`` None when no candidate; ``seconds`` the time of
        ``identify`` alone), as :func:`samaf_lib.protocol.run_queries` records them.
    """
    saved = system.params["min_score"]
    system.params["min_score"] = 0.0
    rows = []
    try:
        for qid, audio in zip(queries["query_id"], queries["audio"]):
            t0 = time.perf_counter()
            try:
                m = system.identify(audio, sr)
                ref, off, score = m.ref_id, float(m.offset_s), float(m.score)
            except AudioError:
                ref, off, score = None, 0.0, 0.0
            rows.append({"query_id": qid, "ref_id": ref, "offset_s": off, "score": score,
                         "seconds": time.perf_counter() - t0})
    finally:
        system.params["min_score"] = saved
    return pd.DataFrame(rows, columns=["query_id", "ref_id", "offset_s", "score", "seconds"])


def identification_summary(queries: pd.DataFrame, results: pd.DataFrame, name: str, target_fpr: float = 0.05,
                           offset_tolerance_s: float | None = None) -> dict[str, float]:
    """Scores of positives and negatives, thresholds at ``target_fpr`` on the negatives, and top-1 there.

    Parameters
    ----------
    queries : DataFrame
        Manifest columns of the evaluation (``set`` must be ``"calib"``).
    results : DataFrame
        From :func:`answer_queries`.
    name : str
        System name written to the joined table.
    target_fpr : float
        Largest false-positive rate on the negatives allowed by a threshold.
    offset_tolerance_s : float, optional
        Also require a hit's offset to be within this many seconds.

    Returns
    -------
    dict
        ``pos_score_median``, ``neg_score_median``, ``neg_score_p95`` (best-candidate scores, 0 where there was
        none); ``top1_raw`` (correct reference, threshold ignored); ``top1`` and ``fpr`` with one threshold per
        query length, ``top1_<L>s`` the top-1 of the ``L``-s queries at their threshold ``thr_<L>s``;
        ``top1_pooled``, ``fpr_pooled`` and ``thr_pooled`` with one threshold for all lengths; ``query_ms_median``
        and ``query_ms_p95``.
    """
    df = ident.join_results(queries.drop(columns=[c for c in QUERY_COLUMNS if c in queries.columns]), results, name)
    pooled = ident.choose_threshold(df, target_fpr=target_fpr, rule="fpr", offset_tolerance_s=offset_tolerance_s)
    per_length = ident.choose_thresholds(df, target_fpr=target_fpr, by_length=True)
    row_thr = ident.row_thresholds(df, per_length)
    met = ident.identification_metrics(df, row_thr, offset_tolerance_s)
    met_pooled = ident.identification_metrics(df, pooled, offset_tolerance_s)
    pos = df["positive"].to_numpy() == 1
    score = df["score"].fillna(0.0).to_numpy(dtype=float)
    ms = df["seconds"].to_numpy(dtype=float) * 1000.0
    out = {"pos_score_median": float(np.median(score[pos])), "neg_score_median": float(np.median(score[~pos])),
           "neg_score_p95": float(np.percentile(score[~pos], 95)), "top1_raw": float(met["top1_raw"]),
           "top1": float(met["top1"]), "fpr": float(met["fpr"])}
    lengths = df["length_s"].to_numpy(dtype=float)
    for length in sorted(np.unique(lengths[np.isfinite(lengths)])):
        part = lengths == length
        if (pos & part).any():
            part_met = ident.identification_metrics(df[part], row_thr[part], offset_tolerance_s)
            out[f"top1_{length:g}s"] = float(part_met["top1"])
            out[f"thr_{length:g}s"] = float(row_thr[part][0])
    out.update({"top1_pooled": float(met_pooled["top1"]), "fpr_pooled": float(met_pooled["fpr"]),
                "thr_pooled": float(pooled), "query_ms_median": float(np.median(ms)),
                "query_ms_p95": float(np.percentile(ms, 95))})
    return out


# ----------------------------------------------------------------------------------------------------------------
# Dejavu


def dejavu_structure(params: Mapping[str, Any], refs: Mapping[str, np.ndarray], sr: int) -> dict[str, float]:
    """Peaks and pairs of the references under one set of Dejavu parameters.

    Peaks and hashes come from the module functions the system itself uses (:func:`~samaf_lib.systems.dejavu.
    spectrogram_db`, :func:`~samaf_lib.systems.dejavu.find_peaks`, :func:`~samaf_lib.systems.dejavu.pair_hashes`)
    on each whole reference; the stored fingerprints are the distinct ``(hash, anchor frame)`` rows of a reference,
    as the database keeps them. The same-frame rows are those :func:`~samaf_lib.systems.dejavu.pair_hashes`
    returns with the frame-distance bounds narrowed to ``[0, 0]`` (a subset of the stored rows whenever
    ``min_hash_time_delta`` is 0, and none otherwise).

    Parameters
    ----------
    params : mapping
        Dejavu constructor parameters (missing ones take the defaults).
    refs : mapping of str to np.ndarray
        Reference audio at ``sr``.
    sr : int
        Sample rate.

    Returns
    -------
    dict
        ``peaks_per_s``, ``fingerprints_per_s`` (stored rows per second), ``same_frame_frac`` (same-frame rows /
        stored rows), ``distinct_hashes_per_s`` (distinct hash values of the whole database per second) and
        ``fingerprints`` (stored rows in all).
    """
    p = Dejavu(**dict(params)).params
    hop = p["n_fft"] - int(p["n_fft"] * p["overlap_ratio"])
    n_peaks = n_rows = n_same = 0
    seconds = 0.0
    distinct: set[str] = set()
    for audio in refs.values():
        spec = dj.spectrogram_db(dj.to_int16_scale(audio), sr, p["n_fft"], hop)
        peaks = dj.find_peaks(spec, p["neighborhood_size"], p["amp_min"])
        hashes, anchors = dj.pair_hashes(peaks, p["fan_value"], p["min_hash_time_delta"], p["max_hash_time_delta"],
                                         p["fingerprint_reduction"])
        rows = set(zip(hashes, anchors.tolist()))
        if p["min_hash_time_delta"] == 0:
            same_h, same_t = dj.pair_hashes(peaks, p["fan_value"], 0, 0, p["fingerprint_reduction"])
            n_same += len(set(zip(same_h, same_t.tolist())))
        n_peaks += len(peaks)
        n_rows += len(rows)
        distinct.update(hashes)
        seconds += audio.size / sr
    return {"peaks_per_s": n_peaks / seconds, "fingerprints_per_s": n_rows / seconds,
            "same_frame_frac": n_same / n_rows if n_rows else 0.0, "distinct_hashes_per_s": len(distinct) / seconds,
            "fingerprints": float(n_rows)}


def _build(factory: Callable[[], Any], refs: Mapping[str, np.ndarray], sr: int) -> tuple[Any, float]:
    system = factory()
    t0 = time.perf_counter()
    for ref_id, audio in refs.items():
        system.add(ref_id, audio, sr)
    return system, time.perf_counter() - t0


def dejavu_diagnosis(refs: Mapping[str, np.ndarray], queries: pd.DataFrame, sr: int,
                     variants: Mapping[str, Mapping[str, Any]] | None = None,
                     base_params: Mapping[str, Any] | None = None, target_fpr: float = 0.05,
                     max_queries: int | None = None, seed: int = 0,
                     offset_tolerance_s: float | None = None) -> pd.DataFrame:
    """Database structure and identification of Dejavu under its 2019 defaults and one change at a time.

    Parameters
    ----------
    refs : mapping of str to np.ndarray
        Reference id -> mono audio at ``sr`` (e.g. :func:`load_references`); the ids are those of the queries'
        ``ref_id``.
    queries : DataFrame
        Labelled queries with the manifest columns of the evaluation (``query_id, set, ref_id, positive, offset_s,
        length_s, distortion, level``) and ``audio`` (e.g. :func:`load_queries`); positives name their reference,
        negatives have none. ``set`` must not be ``"test"``.
    sr : int
        Sample rate of all audio.
    variants : mapping of str to dict, optional
        Name -> parameter changes on top of ``base_params`` (default :data:`DEJAVU_VARIANTS`).
    base_params : mapping, optional
        Parameters every variant starts from (default: the constructor defaults, which are the 2019 defaults;
        ``params.yaml`` ``systems.dejavu`` holds the same values).
    target_fpr : float
        False-positive rate on the negatives that fixes each variant's threshold.
    max_queries : int, optional
        Answer a seeded subsample of at most this many queries (positives' share kept). The cost is dominated by
        the dense-peak variants (``neighborhood_size`` 5: about 45 ms a query and 15 s of indexing for 115
        references of 4-10 s); the five default variants over 1280 queries take about 3.5 minutes on one core,
        ``max_queries=600`` about half of that.
    seed : int
        Seed of that subsample.
    offset_tolerance_s : float, optional
        Also require a hit's offset to be within this many seconds.

    Returns
    -------
    DataFrame, one row per variant
        ``variant``, ``n_fft``, ``hop_ms``, ``neighborhood_size``, ``neighborhood_s`` (the time radius of the peak
        neighbourhood), ``min_hash_time_delta``, ``fan_value``; the structure of :func:`dejavu_structure`; the
        identification of :func:`identification_summary`; ``queries`` answered and ``build_s`` (indexing time).
    """
    _check_queries(queries)
    qs = subsample_queries(queries, max_queries, seed)
    variants = DEJAVU_VARIANTS if variants is None else variants
    base = dict(base_params or {})
    rows = []
    for name, change in variants.items():
        params = {**base, **dict(change)}
        system, build_s = _build(lambda params=params: Dejavu(**params), refs, sr)
        p = system.params
        row: dict[str, Any] = {"variant": name, "n_fft": p["n_fft"], "hop_ms": 1000.0 * system.hop / sr,
                               "neighborhood_size": p["neighborhood_size"],
                               "neighborhood_s": p["neighborhood_size"] * system.hop / sr,
                               "min_hash_time_delta": p["min_hash_time_delta"], "fan_value": p["fan_value"]}
        row.update(dejavu_structure(p, refs, sr))
        row.update(identification_summary(qs, answer_queries(system, qs, sr), "dejavu", target_fpr,
                                          offset_tolerance_s))
        row.update({"queries": len(qs), "build_s": build_s})
        rows.append(row)
    return pd.DataFrame(rows)


# ----------------------------------------------------------------------------------------------------------------
# RAFS


def rafs_flip_diagnosis(refs: Mapping[str, np.ndarray], queries: pd.DataFrame, sr: int,
                        flip_bits: Sequence[int] = RAFS_FLIP_BITS, base_params: Mapping[str, Any] | None = None,
                        target_fpr: float = 0.05, max_queries: int | None = None, seed: int = 0,
                        offset_tolerance_s: float | None = None) -> pd.DataFrame:
    """Identification and query time of RAFS for several numbers of toggled unreliable bits.

    One database is built (extraction does not depend on ``flip_bits``) and searched with each value in turn.

    Parameters
    ----------
    refs, queries, sr, target_fpr, max_queries, seed, offset_tolerance_s
        As in :func:`dejavu_diagnosis`.
    flip_bits : sequence of int
        The values to compare (0 to 12; the paper allows up to 10).
    base_params : mapping, optional
        Other RAFS parameters (default: the constructor defaults, the paper's).

    Returns
    -------
    DataFrame, one row per ``flip_bits``
        ``flip_bits``, ``lookups_per_subfingerprint`` (``2 ** flip_bits``), the identification of
        :func:`identification_summary` and ``queries``.
    """
    _check_queries(queries)
    qs = subsample_queries(queries, max_queries, seed)
    base = {k: v for k, v in dict(base_params or {}).items() if k != "flip_bits"}
    system, _ = _build(lambda: RAFS(**base), refs, sr)
    rows = []
    for k in flip_bits:
        RAFS(**{**base, "flip_bits": k})  # validates k
        system.params["flip_bits"] = int(k)
        row: dict[str, Any] = {"flip_bits": int(k), "lookups_per_subfingerprint": 2 ** int(k)}
        row.update(identification_summary(qs, answer_queries(system, qs, sr), "rafs", target_fpr,
                                          offset_tolerance_s))
        row["queries"] = len(qs)
        rows.append(row)
    return pd.DataFrame(rows)
