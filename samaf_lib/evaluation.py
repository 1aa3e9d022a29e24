"""Evaluation of the study (docs/study.md, Protocol): identification metrics and attribute classification from fingerprints.

Two kinds of input, both tables written by other stages:

* the query manifest ``queries.csv`` (one row per query: ``query_id, set, utterance_id, speaker_id, ref_id,
  positive, offset_s, length_s, distortion, level, seed, path``), and
* one results table per system ``results/<system>.csv`` (``query_id, ref_id, offset_s, score, seconds``), the
  system's best candidate for every query with ``min_score=0``.

:func:`join_results` puts them side by side; the rejection threshold is then chosen on calibration queries only
(:func:`choose_threshold`) and applied here, so every system is compared at the same calibrated false-positive
rate. :func:`identification_metrics`, :func:`bootstrap_ci` and :func:`metrics_table` compute the numbers of the
report; :func:`headline` and :func:`paper_claims` condense them.

The second half turns fingerprints into fixed-length feature vectors (:func:`bag_of_hashes`, :func:`bit_features`,
:func:`mfcc_mean_features`) and cross-validates attribute classifiers on them (:func:`folds`,
:func:`classify_attributes`).
"""

from __future__ import annotations

import math
import os
import warnings
from typing import Any, Iterable, Sequence

import numpy as np
import pandas as pd

#: Columns every results table must hold (samaf_lib.protocol writes these plus ``status``).
RESULT_REQUIRED = ["query_id", "ref_id", "offset_s", "score", "seconds"]
#: Manifest columns the evaluation reads.
MANIFEST_REQUIRED = ["query_id", "set", "ref_id", "positive", "offset_s", "length_s", "distortion", "level"]
#: Metrics :func:`identification_metrics` returns that :func:`bootstrap_ci` can resample.
METRICS = ("top1", "top1_raw", "fpr", "precision", "recall", "f1")
#: Attribute-classification tasks and the column holding each label.
TASKS = ("speaker", "gender", "nationality", "distortion")
CLASSIFIERS = ("logreg", "knn")
#: Label values treated as missing (rows dropped for that task).
MISSING_LABELS = frozenset({"", "nan", "none", "unknown", "<na>"})

_TASK_LABEL = {"speaker": "speaker_id", "gender": "gender", "nationality": "nationality", "distortion": "distortion"}
_TASK_GROUP = {"speaker": "utterance_id", "gender": "speaker_id", "nationality": "speaker_id",
               "distortion": "utterance_id"}
_PRIME = 2_147_483_647  # 2**31 - 1: products with a 31-bit multiplier stay inside uint64
_HASH_A = 1_103_515_245
_HASH_B = 12_345


# --------------------------------------------------------------------------------------------------------------
# Reading and joining
# --------------------------------------------------------------------------------------------------------------

def _id_or_none(v: Any) -> str | None:
    if v is None or (isinstance(v, float) and math.isnan(v)) or v is pd.NA:
        return None
    if isinstance(v, (float, np.floating)) and float(v).is_integer():
        v = int(v)
    s = str(v).strip()
    return None if s.lower() in ("", "nan", "none", "<na>") else s


def _ids(s: pd.Series) -> pd.Series:
    """Identifiers as ``object`` strings with ``None`` for missing (empty, NaN, "None")."""
    return pd.Series([_id_or_none(v) for v in s.to_numpy(dtype=object)], index=s.index, dtype=object)


def join_results(manifest: pd.DataFrame, results: pd.DataFrame, system: str) -> pd.DataFrame:
    """One row per query: the manifest's truth beside one system's answer.

    Parameters
    ----------
    manifest : DataFrame
        The query manifest (see module docstring); ``ref_id`` is the expected reference, empty/NaN for negatives.
    results : DataFrame
        The system's answers: ``query_id, ref_id, offset_s, score, seconds`` (``ref_id`` empty/NaN = no match).
    system : str
        Written to the ``system`` column.

    Returns
    -------
    DataFrame
        Every manifest column, with the manifest's ``ref_id`` and ``offset_s`` renamed ``expected_ref_id`` and
        ``expected_offset_s``; the system's ``ref_id``, ``offset_s``, ``score``, ``seconds`` (the prediction)
        and any other results column (e.g. ``status`` from :func:`samaf_lib.protocol.run_queries`);
        ``system``; ``answered`` (False where the results table has no row for the query: treated as no match
        with score NaN); ``correct`` (bool: a positive whose predicted reference equals the expected one; always
        False for negatives) and ``offset_error_s`` (predicted minus expected offset, seconds, for correct rows;
        NaN elsewhere). Identifiers are strings, ``None`` when missing.

    Raises
    ------
    ValueError
        Missing columns, duplicated query ids, or results for queries the manifest does not hold.
    """
    miss_m = [c for c in MANIFEST_REQUIRED if c not in manifest.columns]
    miss_r = [c for c in RESULT_REQUIRED if c not in results.columns]
    if miss_m:
        raise ValueError(f"manifest: missing columns {miss_m}")
    if miss_r:
        raise ValueError(f"results of {system!r}: missing columns {miss_r}")
    m = manifest.copy()
    keep = RESULT_REQUIRED + [c for c in results.columns if c not in RESULT_REQUIRED and c not in manifest.columns
                             and c not in ("system", "answered", "correct", "offset_error_s")]
    r = results[keep].copy()
    m["query_id"] = _ids(m["query_id"])
    r["query_id"] = _ids(r["query_id"])
    for name, t in (("manifest", m), (f"results of {system!r}", r)):
        dup = t["query_id"][t["query_id"].duplicated()]
        if len(dup):
            raise ValueError(f"{name}: duplicated query_id(s) {sorted(dup.unique())[:5]}")
    extra = sorted(set(r["query_id"]) - set(m["query_id"]))
    if extra:
        raise ValueError(f"results of {system!r}: {len(extra)} query_id(s) not in the manifest, e.g. {extra[:5]}; "
                         "were the results computed on another query set?")
    m = m.rename(columns={"ref_id": "expected_ref_id", "offset_s": "expected_offset_s"})
    m["expected_ref_id"] = _ids(m["expected_ref_id"])
    r["ref_id"] = _ids(r["ref_id"])
    r["answered"] = True
    df = m.merge(r, on="query_id", how="left", validate="one_to_one")
    df["answered"] = df["answered"].fillna(False).astype(bool)
    df["ref_id"] = df["ref_id"].astype(object).where(df["ref_id"].notna(), None)
    df["system"] = system
    df["positive"] = df["positive"].astype(int)
    for c in ("offset_s", "score", "seconds", "expected_offset_s", "length_s"):
        df[c] = pd.to_numeric(df[c], errors="coerce").astype(float)
    pred = df["ref_id"].to_numpy(dtype=object)
    exp = df["expected_ref_id"].to_numpy(dtype=object)
    correct = (df["positive"].to_numpy() == 1) & np.array([p is not None and p == e for p, e in zip(pred, exp)],
                                                          dtype=bool)
    df["correct"] = correct
    df["offset_error_s"] = np.where(correct, df["offset_s"] - df["expected_offset_s"], np.nan)
    return df


# --------------------------------------------------------------------------------------------------------------
# Identification metrics
# --------------------------------------------------------------------------------------------------------------

def _flags(df: pd.DataFrame, threshold: float | np.ndarray,
           offset_tolerance_s: float | None) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per-row booleans ``(positive, accepted, hit, raw_hit)`` of a joined table."""
    for c in ("positive", "ref_id", "score", "correct"):
        if c not in df.columns:
            raise ValueError(f"expected a table from join_results, missing column {c!r}")
    pos = df["positive"].to_numpy().astype(int) == 1
    score = pd.to_numeric(df["score"], errors="coerce").to_numpy(dtype=float)
    has_pred = df["ref_id"].notna().to_numpy()
    with np.errstate(invalid="ignore"):
        accepted = has_pred & np.isfinite(score) & (score >= threshold)
    raw_hit = pos & df["correct"].to_numpy().astype(bool)
    if offset_tolerance_s is not None:
        if offset_tolerance_s < 0:
            raise ValueError(f"offset_tolerance_s must be >= 0, got {offset_tolerance_s}")
        err = np.abs(pd.to_numeric(df["offset_error_s"], errors="coerce").to_numpy(dtype=float))
        with np.errstate(invalid="ignore"):
            raw_hit &= err <= offset_tolerance_s
    return pos, accepted, accepted & raw_hit, raw_hit


def _div(a: Any, b: Any) -> Any:
    a = np.asarray(a, dtype=float)
    b = np.asarray(b, dtype=float)
    out = np.full(np.broadcast(a, b).shape, np.nan)
    np.divide(a, b, out=out, where=b > 0)
    return out if out.ndim else float(out)


def _metrics_from_counts(n_pos: Any, n_neg: Any, tp: Any, fp_pos: Any, fp_neg: Any, raw: Any) -> dict:
    """Metric values (scalars or arrays) from counts; undefined ratios are NaN."""
    n_pos = np.asarray(n_pos, dtype=float)
    tp = np.asarray(tp, dtype=float)
    fp = np.asarray(fp_pos, dtype=float) + np.asarray(fp_neg, dtype=float)
    fn = n_pos - tp
    return {
        "top1": _div(tp, n_pos),
        "top1_raw": _div(raw, n_pos),
        "fpr": _div(fp_neg, n_neg),
        "precision": _div(tp, tp + fp),
        "recall": _div(tp, n_pos),
        "f1": _div(2 * tp, 2 * tp + fp + fn),
    }


def _counts(df: pd.DataFrame, threshold: float, offset_tolerance_s: float | None) -> dict[str, int]:
    pos, acc, hit, raw = _flags(df, threshold, offset_tolerance_s)
    tp = int(hit.sum())
    return {"n_pos": int(pos.sum()), "n_neg": int((~pos).sum()), "tp": tp,
            "fp_pos": int((pos & acc & ~hit).sum()), "fp_neg": int((~pos & acc).sum()),
            "fn": int(pos.sum()) - tp, "raw_correct": int(raw.sum())}


def identification_metrics(df: pd.DataFrame, threshold: float,
                           offset_tolerance_s: float | None = None) -> dict[str, float | int]:
    """Identification metrics of one system's joined table at a rejection threshold.

    A query is *accepted* when the system named a reference (``ref_id`` not missing) with ``score >= threshold``.
    A positive is a *hit* when its predicted reference is the expected one (``correct``) and, when
    ``offset_tolerance_s`` is given, ``|offset_error_s| <= offset_tolerance_s``.

    Parameters
    ----------
    df : DataFrame
        Rows from :func:`join_results` (one system; mixing systems mixes their scores).
    threshold : float
        Scores at or above it are accepted.
    offset_tolerance_s : float, optional
        Also require the offset to be within this many seconds.

    Returns
    -------
    dict
        ``top1`` (accepted hits / positives), ``top1_raw`` (hits ignoring the threshold / positives), ``fpr``
        (accepted negatives / negatives), ``precision`` = TP / (TP + FP) with TP = accepted hits and FP = accepted
        negatives + accepted positives that are not hits, ``recall`` = TP / positives (equal to ``top1``),
        ``f1`` = 2 TP / (2 TP + FP + FN) (the harmonic mean of precision and recall, 0 when TP = 0), and the
        counts ``n_pos, n_neg, tp, fp_pos, fp_neg, fn, raw_correct``. A ratio with an empty denominator is NaN.
    """
    c = _counts(df, threshold, offset_tolerance_s)
    out: dict[str, float | int] = {k: float(v) for k, v in _metrics_from_counts(
        c["n_pos"], c["n_neg"], c["tp"], c["fp_pos"], c["fp_neg"], c["raw_correct"]).items()}
    out.update(c)
    return out


def choose_threshold(df: pd.DataFrame, target_fpr: float = 0.01, rule: str = "fpr",
                     offset_tolerance_s: float | None = None) -> float:
    """Choose one system's rejection threshold from its calibration queries.

    Candidate thresholds are the distinct scores of the rows that named a reference. With ``rule="fpr"`` the
    smallest candidate whose false-positive rate on the calibration negatives is ``<= target_fpr`` is chosen; with
    ``rule="max_f1"`` the candidate with the highest F1 (ties: the highest threshold). The returned value is the
    midpoint between the chosen candidate and the next lower one, so that scores between the two (unseen in
    calibration) are not decided by an accident of ties. When no candidate meets the target, the threshold lies
    just above the highest score (everything rejected); when the lowest candidate already does, it is returned.

    Parameters
    ----------
    df : DataFrame
        Joined rows (:func:`join_results`) of one system, all with ``set == "calib"``.
    target_fpr : float
        Largest false-positive rate allowed, in [0, 1).
    rule : {"fpr", "max_f1"}
    offset_tolerance_s : float, optional
        As in :func:`identification_metrics` (affects ``max_f1`` only).

    Returns
    -------
    float

    Raises
    ------
    ValueError
        Any test row (threshold selection must never read test queries), no ``set`` column, several systems,
        no negatives (``fpr``) or no positives (``max_f1``), or a bad ``rule``/``target_fpr``.
    """
    if "set" not in df.columns:
        raise ValueError("choose_threshold needs the 'set' column to check it reads calibration queries only")
    sets = df["set"].astype(str)
    if (sets == "test").any():
        raise ValueError(f"threshold selection must never read test queries: {int((sets == 'test').sum())} "
                         "row(s) have set == 'test'; pass df[df['set'] == 'calib']")
    if (sets != "calib").any():
        raise ValueError(f"choose_threshold expects calibration rows only, found set values "
                         f"{sorted(sets[sets != 'calib'].unique())}")
    if "system" in df.columns and df["system"].nunique() > 1:
        raise ValueError(f"one threshold per system: got rows of {sorted(df['system'].unique())}")
    if rule not in ("fpr", "max_f1"):
        raise ValueError(f"rule must be 'fpr' or 'max_f1', got {rule!r}")
    if not (0.0 <= target_fpr < 1.0):
        raise ValueError(f"target_fpr must be in [0, 1), got {target_fpr}")
    pos, _, _, raw = _flags(df, -np.inf, offset_tolerance_s)
    score = pd.to_numeric(df["score"], errors="coerce").to_numpy(dtype=float)
    pred = df["ref_id"].notna().to_numpy() & np.isfinite(score)
    n_pos, n_neg = int(pos.sum()), int((~pos).sum())
    cand = np.unique(score[pred])
    if cand.size == 0:
        return 0.0
    if rule == "fpr":
        if n_neg == 0:
            raise ValueError("rule 'fpr' needs negative calibration queries; none found")
        neg = np.sort(score[pred & ~pos])
        fpr = (neg.size - np.searchsorted(neg, cand, side="left")) / n_neg
        ok = np.flatnonzero(fpr <= target_fpr + 1e-12)
        k = int(ok[0]) if ok.size else cand.size
    else:
        if n_pos == 0:
            raise ValueError("rule 'max_f1' needs positive calibration queries; none found")
        hit_s = np.sort(score[pred & raw])
        bad_s = np.sort(score[pred & ~raw])
        tp = hit_s.size - np.searchsorted(hit_s, cand, side="left")
        fp = bad_s.size - np.searchsorted(bad_s, cand, side="left")
        f1 = np.append(2 * tp / (2 * tp + fp + (n_pos - tp)), 0.0)  # last: reject everything
        k = int(np.flatnonzero(f1 == f1.max())[-1])
    if k >= cand.size:
        return float(np.nextafter(cand[-1], np.inf))
    if k == 0:
        return float(cand[0])
    return float((cand[k - 1] + cand[k]) / 2)


def _category_counts(df: pd.DataFrame, threshold: float,
                     offset_tolerance_s: float | None) -> tuple[np.ndarray, int, int, int]:
    """Positives counted in 8 categories (hit, accepted non-hit, raw hit) and negatives accepted."""
    pos, acc, hit, raw = _flags(df, threshold, offset_tolerance_s)
    code = 4 * hit[pos].astype(int) + 2 * (acc & ~hit)[pos].astype(int) + raw[pos].astype(int)
    return np.bincount(code, minlength=8), int(pos.sum()), int((~pos).sum()), int((acc & ~pos).sum())


_CAT = np.arange(8)
_CAT_MASKS = np.stack([(_CAT & 4) > 0, (_CAT & 2) > 0, (_CAT & 1) > 0], axis=1).astype(np.int64)  # hit, fp, raw


def _bootstrap_metrics(cats: np.ndarray, n_pos: int, n_neg: int, fp_neg: int, n: int,
                       rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Metric values over ``n`` stratified resamples, drawn as category counts (exactly row resampling)."""
    if n_pos > 0:
        draws = rng.multinomial(n_pos, cats / n_pos, size=n)
        tp, fp_pos, raw = (draws @ _CAT_MASKS).T
    else:
        tp = fp_pos = raw = np.zeros(n)
    fpn = rng.binomial(n_neg, fp_neg / n_neg, size=n) if n_neg > 0 else np.zeros(n)
    return _metrics_from_counts(n_pos, n_neg, tp, fp_pos, fpn, raw)


def _intervals(values: np.ndarray, alpha: float) -> np.ndarray:
    """Percentile intervals of each row of ``values`` (shape (groups, n)), ignoring NaN: shape (groups, 2)."""
    v = np.atleast_2d(np.asarray(values, dtype=float))
    out = np.full((v.shape[0], 2), np.nan)
    ok = np.isfinite(v).any(axis=1)
    if ok.any():
        w = v[ok]
        if np.isfinite(w).all():
            q = np.quantile(w, [alpha / 2, 1 - alpha / 2], axis=1)
        else:
            q = np.nanquantile(np.where(np.isfinite(w), w, np.nan), [alpha / 2, 1 - alpha / 2], axis=1)
        out[ok] = q.T
    return out


def _interval(values: np.ndarray, alpha: float) -> tuple[float, float]:
    lo, hi = _intervals(np.asarray(values, dtype=float)[None, :], alpha)[0]
    return (float(lo), float(hi))


def bootstrap_ci(df: pd.DataFrame, threshold: float, metric: str, n: int = 1000, seed: int = 0,
                 alpha: float = 0.05, offset_tolerance_s: float | None = None) -> tuple[float, float]:
    """Percentile bootstrap interval of one identification metric, resampling queries.

    Positives and negatives are resampled separately (stratified), each with replacement to its own count. Since
    every metric depends on a resample only through how many of its rows fall in each outcome category (hit,
    accepted non-hit, hit ignoring the threshold, accepted negative), the resamples are drawn directly as
    multinomial/binomial category counts, which is the same distribution as resampling rows and costs
    O(n) whatever the table size.

    Parameters
    ----------
    df : DataFrame
        Joined rows of one system (:func:`join_results`).
    threshold : float
    metric : {"top1", "top1_raw", "fpr", "precision", "recall", "f1"}
    n : int
        Resamples.
    seed : int
    alpha : float
        1 - confidence (0.05: a 95% interval).
    offset_tolerance_s : float, optional

    Returns
    -------
    (lo, hi) : tuple of float
        NaN, NaN when the metric is undefined in every resample (e.g. ``top1`` without positives).
    """
    if metric not in METRICS:
        raise ValueError(f"metric must be one of {METRICS}, got {metric!r}")
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    if not (0 < alpha < 1):
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
    cats, n_pos, n_neg, fp_neg = _category_counts(df, threshold, offset_tolerance_s)
    vals = _bootstrap_metrics(cats, n_pos, n_neg, fp_neg, n, np.random.default_rng(seed))
    return _interval(vals[metric], alpha)


def metrics_table(df_all: pd.DataFrame, thresholds: dict[str, float],
                  by: Sequence[str] = ("system", "distortion", "level", "length_s"), ci: bool = True,
                  n_boot: int = 1000, seed: int = 0, alpha: float = 0.05, offset_tolerance_s: float | None = None,
                  split: str | None = "test") -> pd.DataFrame:
    """Identification metrics per group, each system at its own threshold.

    Parameters
    ----------
    df_all : DataFrame
        Joined rows of one or more systems (concatenated :func:`join_results` outputs).
    thresholds : dict
        System name -> threshold (from :func:`choose_threshold`).
    by : sequence of str
        Grouping columns; must include ``"system"``. Missing values form their own group.
    ci : bool
        Add percentile bootstrap intervals (``<metric>_lo``, ``<metric>_hi``; NaN when ``ci`` is False).
    n_boot, seed, alpha
        Bootstrap settings (every group uses ``seed``, so a group's interval does not depend on the others).
    offset_tolerance_s : float, optional
    split : str or None
        Keep only rows with this ``set`` ("test" by default); None keeps every row.

    Returns
    -------
    DataFrame
        One row per group, sorted by ``by``: the ``by`` columns, ``threshold``, ``top1, top1_lo, top1_hi,
        top1_raw, fpr, fpr_lo, fpr_hi, precision, precision_lo, precision_hi, recall, recall_lo, recall_hi, f1,
        f1_lo, f1_hi``, the counts ``n_pos, n_neg, tp, fp_pos, fp_neg, fn, raw_correct`` (so that coarser tables
        can be rebuilt exactly by summing) and ``median_query_ms`` (median of ``seconds`` x 1000, answered
        queries).
    """
    by = list(by)
    if "system" not in by:
        raise ValueError("metrics_table: 'by' must include 'system' (systems have different score scales)")
    missing = [c for c in by if c not in df_all.columns]
    if missing:
        raise ValueError(f"metrics_table: grouping column(s) {missing} not in the table")
    df = df_all
    if split is not None:
        if "set" not in df.columns:
            raise ValueError("metrics_table: no 'set' column to select the split; pass split=None")
        df = df[df["set"].astype(str) == split]
        if df.empty:
            raise ValueError(f"metrics_table: no rows with set == {split!r}")
    unknown = sorted(set(df["system"].unique()) - set(thresholds))
    if unknown:
        raise ValueError(f"metrics_table: no threshold for system(s) {unknown}; thresholds has {sorted(thresholds)}")
    df = df.reset_index(drop=True)
    thr_row = df["system"].map(lambda s: float(thresholds[s])).to_numpy(dtype=float)
    pos, acc, hit, raw = _flags(df, thr_row, offset_tolerance_s)  # thresholds broadcast row by row
    code = 4 * hit + 2 * (acc & ~hit) + raw
    flags = pd.DataFrame({
        "n_pos": pos, "n_neg": ~pos, "tp": hit, "fp_pos": pos & acc & ~hit, "fp_neg": ~pos & acc,
        "raw_correct": raw, **{f"_cat{k}": pos & (code == k) for k in range(8)}}).astype(np.int64)
    keys = [df[c] for c in by]
    counts = flags.groupby(keys, sort=True, dropna=False).sum()
    if "seconds" in df.columns:
        ms = pd.to_numeric(df["seconds"], errors="coerce") * 1000
        median_ms = ms.groupby(keys, sort=True, dropna=False).median().reindex(counts.index)
    else:
        median_ms = pd.Series(np.nan, index=counts.index)
    cols = list(counts.columns)
    arr = counts.to_numpy(dtype=np.int64)
    at = {k: arr[:, cols.index(k)] for k in ("n_pos", "n_neg", "tp", "fp_pos", "fp_neg", "raw_correct")}
    cat_idx = [cols.index(f"_cat{k}") for k in range(8)]
    m = _metrics_from_counts(at["n_pos"], at["n_neg"], at["tp"], at["fp_pos"], at["fp_neg"], at["raw_correct"])
    ci_names = [k for k in METRICS if k != "top1_raw"]
    bounds = {k: np.full((len(counts), 2), np.nan) for k in ci_names}
    if ci:
        boots = [_bootstrap_metrics(arr[i, cat_idx], int(at["n_pos"][i]), int(at["n_neg"][i]), int(at["fp_neg"][i]),
                                    n_boot, np.random.default_rng(seed)) for i in range(len(counts))]
        for k in ci_names:
            bounds[k] = _intervals(np.stack([b[k] for b in boots]), alpha) if boots else bounds[k]
    keys_df = counts.index.to_frame(index=False)
    keys_df.columns = by
    out = keys_df.copy()
    out["threshold"] = [float(thresholds[s]) for s in keys_df["system"]]
    for name in METRICS:
        out[name] = np.asarray(m[name], dtype=float)
        if name in bounds:
            out[f"{name}_lo"], out[f"{name}_hi"] = bounds[name][:, 0], bounds[name][:, 1]
    for k in ("n_pos", "n_neg", "tp", "fp_pos", "fp_neg"):
        out[k] = at[k].astype(int)
    out["fn"] = (at["n_pos"] - at["tp"]).astype(int)
    out["raw_correct"] = at["raw_correct"].astype(int)
    out["median_query_ms"] = median_ms.to_numpy(dtype=float)
    return out


# --------------------------------------------------------------------------------------------------------------
# Features from fingerprints
# --------------------------------------------------------------------------------------------------------------

def _hash_rows(codes: np.ndarray) -> np.ndarray:
    """One uint64 value in ``[0, 2**31 - 1)`` per code (1-D integers) or per row (2-D bytes)."""
    c = np.asarray(codes)
    if c.ndim == 1:
        if c.dtype.kind == "i":
            c = c.astype(np.int64).view(np.uint64)
        elif c.dtype.kind in "ub":
            c = c.astype(np.uint64)
        else:
            raise TypeError(f"codes must be integers, got dtype {c.dtype}")
        return c % np.uint64(_PRIME)
    if c.ndim == 2:
        if c.dtype.kind not in "uib":
            raise TypeError(f"2-D codes must be integer bytes, got dtype {c.dtype}")
        b = c.astype(np.uint8 if c.dtype.itemsize == 1 else np.uint64)
        h = np.zeros(b.shape[0], dtype=np.uint64)
        base = np.uint64(256 if b.dtype == np.uint8 else 65_599)
        for j in range(b.shape[1]):
            h = (h * base + (b[:, j].astype(np.uint64) % np.uint64(_PRIME))) % np.uint64(_PRIME)
        return h
    raise ValueError(f"codes must be 1-D (one integer per fingerprint) or 2-D (packed bytes), got shape {c.shape}")


def bag_of_hashes(codes: np.ndarray, times_s: np.ndarray, duration_s: float, dim: int = 512,
                  norm: str = "l2") -> np.ndarray:
    """A fixed-length "bag of hashes" of one clip (the hashing trick).

    Each code is reduced modulo the prime 2**31 - 1, mixed by a fixed affine map modulo the same prime (so that
    structured low bits, such as a time-difference field, do not all land in a few buckets) and taken modulo
    ``dim``; bucket counts are divided by the clip's duration (hashes per second of audio) and then normalised.

    Parameters
    ----------
    codes : np.ndarray
        Shape (n,) integers (Dejavu's uint64 hash, Panako's triplet hash, RAFS's uint32 words) or shape (n, m)
        integer bytes (SAMAF's packed uint8 codes): each row is hashed as one code.
    times_s : np.ndarray, shape (n,)
        Times of the fingerprints (checked for length only).
    duration_s : float
        Duration of the clip in seconds (> 0).
    dim : int
        Number of buckets.
    norm : {"l2", "log", "none"}
        ``"l2"``: unit Euclidean norm (a clip with no fingerprints stays all zero); ``"log"``: ``log1p`` of the
        hashes per second; ``"none"``: hashes per second.

    Returns
    -------
    np.ndarray, float64, shape (dim,)
    """
    if dim < 1:
        raise ValueError(f"dim must be >= 1, got {dim}")
    if not (duration_s > 0):
        raise ValueError(f"duration_s must be > 0, got {duration_s}")
    if norm not in ("l2", "log", "none"):
        raise ValueError(f"norm must be 'l2', 'log' or 'none', got {norm!r}")
    c = np.asarray(codes)
    t = np.asarray(times_s)
    if c.shape[0] != t.shape[0]:
        raise ValueError(f"codes ({c.shape[0]}) and times_s ({t.shape[0]}) differ in length")
    if c.shape[0] == 0:
        return np.zeros(dim)
    h = _hash_rows(c)
    h = (h * np.uint64(_HASH_A) + np.uint64(_HASH_B)) % np.uint64(_PRIME) % np.uint64(dim)
    v = np.bincount(h.astype(np.int64), minlength=dim).astype(np.float64) / float(duration_s)
    if norm == "l2":
        n = np.linalg.norm(v)
        return v / n if n > 0 else v
    if norm == "log":
        return np.log1p(v)
    return v


def bit_features(codes: np.ndarray, packed: bool | None = None) -> np.ndarray:
    """Fraction of ones at every bit position across a clip's fingerprints.

    Parameters
    ----------
    codes : np.ndarray
        One of: SAMAF packed codes, uint8 shape (n, B/8) (``np.packbits`` order: most significant bit first);
        bits, bool or 0/1 shape (n, B) (pass ``packed=False`` for 0/1 integers); integer words shape (n,), e.g.
        RAFS uint32 sub-fingerprints, giving one position per bit of the dtype (bit 0 = least significant).
    packed : bool, optional
        For 2-D input: whether rows are packed bytes. Default: bool arrays are bits, other 2-D arrays packed bytes.

    Returns
    -------
    np.ndarray, float64, shape (B,) (or (32,) for uint32 words)
        Zeros when there are no fingerprints.
    """
    c = np.asarray(codes)
    if c.ndim == 1:
        if c.dtype.kind not in "ui":
            raise TypeError(f"1-D codes must be integer words, got dtype {c.dtype}")
        nb = c.dtype.itemsize * 8
        if c.size == 0:
            return np.zeros(nb)
        u = c.view(np.dtype(f"u{c.dtype.itemsize}")).astype(np.uint64)
        bits = (u[:, None] >> np.arange(nb, dtype=np.uint64)) & np.uint64(1)
        return bits.mean(0).astype(np.float64)
    if c.ndim != 2:
        raise ValueError(f"codes must be 1-D words or 2-D (n, bytes|bits), got shape {c.shape}")
    if packed is None:
        packed = c.dtype != bool
    if packed:
        if c.dtype != np.uint8:
            raise TypeError(f"packed codes must be uint8, got {c.dtype}; pass packed=False for 0/1 bits")
        bits = np.unpackbits(c, axis=1)
    else:
        bits = (c != 0).astype(np.uint8)
    if bits.shape[0] == 0:
        return np.zeros(bits.shape[1])
    return bits.mean(0).astype(np.float64)


def mfcc_mean_features(audio: np.ndarray, sr: int) -> np.ndarray:
    """Reference features: mean and standard deviation over frames of 13 MFCCs.

    Parameters
    ----------
    audio : np.ndarray, shape (n,)
        Mono samples (any rate; resampled to 16 kHz by :func:`samaf_lib.features.mfcc_frames`).
    sr : int

    Returns
    -------
    np.ndarray, float64, shape (26,)
        ``[mean_0 .. mean_12, std_0 .. std_12]``.
    """
    from .features import mfcc_frames

    f = mfcc_frames(audio, sr).astype(np.float64)
    return np.concatenate([f.mean(0), f.std(0)])


# --------------------------------------------------------------------------------------------------------------
# Attribute classification
# --------------------------------------------------------------------------------------------------------------

def _labels_for(labels: pd.DataFrame, task: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(keep_mask, y, groups)`` for a task, with missing labels dropped."""
    if task not in TASKS:
        raise ValueError(f"task must be one of {TASKS}, got {task!r}")
    lab, grp = _TASK_LABEL[task], _TASK_GROUP[task]
    for c in (lab, grp):
        if c not in labels.columns:
            raise ValueError(f"task {task!r} needs a {c!r} column in labels")
    y = np.array([_id_or_none(v) for v in labels[lab].to_numpy(dtype=object)], dtype=object)
    g = np.array([_id_or_none(v) for v in labels[grp].to_numpy(dtype=object)], dtype=object)
    keep = np.array([v is not None and v.lower() not in MISSING_LABELS for v in y]) & np.array(
        [v is not None for v in g])
    return keep, y, g


def _eligible(labels: pd.DataFrame, task: str, min_groups_per_class: int = 2) -> tuple[np.ndarray, str]:
    """Indices usable for a task (labelled, in a class seen in >= 2 groups) and a note on what was dropped."""
    keep, y, g = _labels_for(labels, task)
    idx = np.flatnonzero(keep)
    notes = []
    if (~keep).any():
        notes.append(f"{int((~keep).sum())} row(s) without a label dropped")
    per_class = pd.DataFrame({"y": y[idx], "g": g[idx]}).groupby("y")["g"].nunique()
    thin = per_class[per_class < min_groups_per_class].index
    if len(thin):
        notes.append(f"{len(thin)} class(es) in fewer than {min_groups_per_class} {_TASK_GROUP[task]} group(s) "
                     "dropped")
        idx = idx[~np.isin(y[idx], np.array(list(thin), dtype=object))]
    return idx, "; ".join(notes)


def folds(labels: pd.DataFrame, task: str, n_splits: int = 5,
          seed: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    """Cross-validation folds of a classification task, disjoint by group.

    ``speaker``: stratified by speaker, grouped by ``utterance_id`` (the clips of one utterance never straddle
    train and test; a speaker task cannot be speaker-disjoint). ``gender``, ``nationality``: grouped by
    ``speaker_id`` (speaker-disjoint). ``distortion``: grouped by ``utterance_id``. Every task uses
    scikit-learn's ``StratifiedGroupKFold`` (a ``GroupKFold`` that also balances the classes) with shuffling
    seeded by ``seed``. Rows without a label (empty, NaN, "unknown") and classes present in fewer than two groups
    are left out of every fold.

    Parameters
    ----------
    labels : DataFrame
        One row per sample with the task's label and group columns.
    task : {"speaker", "gender", "nationality", "distortion"}
    n_splits : int
        Folds wanted; reduced to the number of groups when there are fewer.
    seed : int

    Returns
    -------
    list of (train_idx, test_idx)
        Integer positions into ``labels`` (int64 arrays); empty when the task cannot be cross-validated
        (fewer than two classes or two groups).
    """
    from sklearn.model_selection import StratifiedGroupKFold

    if n_splits < 2:
        raise ValueError(f"n_splits must be >= 2, got {n_splits}")
    idx, _ = _eligible(labels, task)
    _, y, g = _labels_for(labels, task)
    y, g = y[idx], g[idx]
    n_groups = len(set(g))
    if len(set(y)) < 2 or n_groups < 2:
        return []
    k = min(n_splits, n_groups)
    cv = StratifiedGroupKFold(n_splits=k, shuffle=True, random_state=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "least populated class has fewer members than n_splits"
        out = [(idx[tr].astype(np.int64), idx[te].astype(np.int64))
               for tr, te in cv.split(np.zeros(len(y)), y.astype(str), g.astype(str))]
    return [(tr, te) for tr, te in out if len(te) and len(tr)]


def _classifier(name: str, n_train: int):
    from sklearn.linear_model import LogisticRegression
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    if name == "logreg":
        return make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000, C=1.0))
    if name == "knn":
        return make_pipeline(StandardScaler(), KNeighborsClassifier(n_neighbors=max(1, min(5, n_train))))
    raise ValueError(f"classifier must be one of {CLASSIFIERS}, got {name!r}")


def classify_attributes(X: np.ndarray, labels: pd.DataFrame, tasks: Iterable[str] = TASKS,
                        classifiers: Iterable[str] = CLASSIFIERS, n_splits: int = 5,
                        seed: int = 0) -> pd.DataFrame:
    """Cross-validated attribute classification from fixed-length features.

    Parameters
    ----------
    X : np.ndarray, shape (n_samples, n_features)
        One feature vector per clip (from :func:`bag_of_hashes`, :func:`bit_features`, :func:`mfcc_mean_features`).
    labels : DataFrame, n_samples rows
        ``speaker_id, gender, nationality, distortion, utterance_id`` (others, e.g. ``seed``, are ignored), in the
        order of ``X``.
    tasks : iterable of str
        Among ``speaker, gender, nationality, distortion`` (folds: :func:`folds`).
    classifiers : iterable of str
        ``logreg``: StandardScaler + LogisticRegression (lbfgs, max_iter 2000); ``knn``: StandardScaler +
        KNeighborsClassifier (k = 5).
    n_splits : int
    seed : int
        Seeds the folds (the classifiers themselves are deterministic).

    Returns
    -------
    DataFrame
        One row per (task, classifier): ``task, classifier, accuracy, balanced_accuracy`` (pooled out-of-fold
        predictions), ``chance`` (the majority-class rate in the test folds: the share of each test fold's most
        frequent class, pooled over folds; what the best constant answer per fold would score),
        ``chance_balanced`` (1 / classes: the balanced accuracy of any constant answer), ``n_folds, n_samples,
        n_classes, n_groups, note``. A task that cannot be cross-validated has NaN scores and says why in ``note``.
    """
    from sklearn.metrics import accuracy_score, balanced_accuracy_score

    X = np.asarray(X, dtype=np.float64)
    if X.ndim != 2 or X.shape[0] != len(labels):
        raise ValueError(f"X must be (n_samples, n_features) with one row per label row; got {X.shape} "
                         f"for {len(labels)} labels")
    if not np.isfinite(X).all():
        raise ValueError("X holds NaN or infinite values")
    classifiers = list(classifiers)
    for c in classifiers:
        _classifier(c, 1)  # validates the name
    labels = labels.reset_index(drop=True)
    rows = []
    for task in tasks:
        idx, note = _eligible(labels, task)
        _, y_all, g_all = _labels_for(labels, task)
        fs = folds(labels, task, n_splits=n_splits, seed=seed)
        base = {"task": task, "n_samples": int(idx.size), "n_classes": len(set(y_all[idx])),
                "n_groups": len(set(g_all[idx])), "n_folds": len(fs)}
        if not fs:
            why = (f"skipped: {base['n_classes']} class(es) and {base['n_groups']} {_TASK_GROUP[task]} group(s) "
                   "after filtering; need at least 2 of each")
            for c in classifiers:
                rows.append({**base, "classifier": c, "accuracy": math.nan, "balanced_accuracy": math.nan,
                             "chance": math.nan, "chance_balanced": math.nan,
                             "note": "; ".join(x for x in (note, why) if x)})
            continue
        y = y_all.astype(str)
        test_all = np.concatenate([te for _, te in fs])
        chance = sum(int(pd.Series(y[te]).value_counts().iloc[0]) for _, te in fs) / len(test_all)
        for c in classifiers:
            p = _out_of_fold(X, y, fs, c)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # "y_pred contains classes not in y_true"
                bal = float(balanced_accuracy_score(y[test_all], p))
            rows.append({**base, "classifier": c, "accuracy": float(accuracy_score(y[test_all], p)),
                         "balanced_accuracy": bal, "chance": chance,
                         "chance_balanced": 1.0 / len(set(y[test_all])), "note": note})
    cols = ["task", "classifier", "accuracy", "balanced_accuracy", "chance", "chance_balanced", "n_folds",
            "n_samples", "n_classes", "n_groups", "note"]
    return pd.DataFrame(rows, columns=cols)


def _out_of_fold(X: np.ndarray, y: np.ndarray, fs: list[tuple[np.ndarray, np.ndarray]],
                 classifier: str) -> np.ndarray:
    """Predictions for the concatenated test folds of ``fs``, each from a model fitted on its training fold."""
    pred = []
    for tr, te in fs:
        model = _classifier(classifier, len(tr))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # convergence and single-class-fold warnings
            model.fit(X[tr], y[tr])
            pred.append(model.predict(X[te]))
    return np.concatenate(pred)


def attribute_confusion(X: np.ndarray, labels: pd.DataFrame, task: str, classifier: str = "logreg",
                        n_splits: int = 5, seed: int = 0) -> pd.DataFrame:
    """Confusion matrix of one attribute classifier, from the same out-of-fold predictions as
    :func:`classify_attributes`.

    Returns
    -------
    DataFrame
        Counts, true classes as rows and predicted classes as columns (both sorted); empty when the task cannot
        be cross-validated.
    """
    X = np.asarray(X, dtype=np.float64)
    labels = labels.reset_index(drop=True)
    fs = folds(labels, task, n_splits=n_splits, seed=seed)
    if not fs:
        return pd.DataFrame()
    _, y_all, _ = _labels_for(labels, task)
    y = y_all.astype(str)
    truth = y[np.concatenate([te for _, te in fs])]
    pred = _out_of_fold(X, y, fs, classifier)
    classes = sorted(set(truth) | set(pred))
    return pd.crosstab(pd.Categorical(truth, classes), pd.Categorical(pred, classes), rownames=["true"],
                       colnames=["predicted"], dropna=False)


# --------------------------------------------------------------------------------------------------------------
# Headline numbers and the paper's claims
# --------------------------------------------------------------------------------------------------------------

def _aggregate(rows: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    need = ["n_pos", "n_neg", "tp", "fp_pos", "fp_neg", "raw_correct"]
    missing = [c for c in need + keys if c not in rows.columns]
    if missing:
        raise ValueError(f"metrics rows lack columns {missing}; pass the output of metrics_table")
    agg = rows.groupby(keys, sort=True, dropna=False)[need].sum().reset_index()
    m = _metrics_from_counts(agg["n_pos"], agg["n_neg"], agg["tp"], agg["fp_pos"], agg["fp_neg"],
                             agg["raw_correct"])
    for k, v in m.items():
        agg[k] = v
    return agg


def _num(v: Any) -> float | None:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def headline(metrics_rows: pd.DataFrame, system_stats: dict[str, dict] | None = None,
             classification: pd.DataFrame | None = None,
             distortion_rows: pd.DataFrame | None = None) -> dict:
    """The numbers of ``reports/metrics.json``, per system.

    Parameters
    ----------
    metrics_rows : DataFrame
        Output of :func:`metrics_table` at any grouping that includes ``system``. Overall metrics are rebuilt
        exactly from the summed counts; the bootstrap intervals and ``median_query_ms`` are copied when there is
        one row per system (``by=("system",)``); otherwise ``median_query_ms`` is the query-weighted median of the
        group medians. Per-distortion top-1 comes from these rows when they have a ``distortion`` column, else
        from ``distortion_rows``.
    system_stats : dict, optional
        System -> its run record (:func:`samaf_lib.protocol.summarise_run`, or a ``stats()`` dict): read are
        ``bits_per_second``, ``bytes``, ``seconds`` (audio indexed), ``x_realtime`` (fingerprinting speed),
        ``query_ms_median`` (used when the rows carry no query times) and ``bits`` (SAMAF's code size per
        window; read from ``params["bits"]`` when absent).
    classification : DataFrame, optional
        :func:`classify_attributes` rows of every feature set, concatenated with a ``features`` column naming it
        (``samaf``, ``dejavu``, ``rafs``, ``panako``, ``mfcc``, ...). The best balanced accuracy over the
        classifiers is kept per (features, task).
    distortion_rows : DataFrame, optional
        :func:`metrics_table` rows grouped by at least ``system`` and ``distortion``.

    Returns
    -------
    dict
        ``{"systems": {name: {top1, top1_lo, top1_hi, top1_raw, fpr, fpr_lo, fpr_hi, precision, recall, f1,
        f1_lo, f1_hi, n_pos, n_neg, threshold, median_query_ms, bits_per_second, bytes, seconds, bytes_per_second,
        x_realtime, bits}}, "top1_by_distortion": {name: {distortion: top1}}, "classification": {features:
        {task: balanced_accuracy}}, "classification_chance": {task: chance_balanced}}``; the last three only when their
        inputs are given. Values that are unknown are None (valid JSON).
    """
    overall = _aggregate(metrics_rows, ["system"])
    per_system = metrics_rows.groupby("system").size()
    out: dict[str, Any] = {"systems": {}}
    stats = system_stats or {}
    for _, r in overall.iterrows():
        name = str(r["system"])
        rows = metrics_rows[metrics_rows["system"] == r["system"]]
        one = rows.iloc[0] if per_system[r["system"]] == 1 else None
        s: dict[str, Any] = {k: _num(r[k]) for k in METRICS}
        s["n_pos"], s["n_neg"] = int(r["n_pos"]), int(r["n_neg"])
        for k in ("top1", "fpr", "f1", "precision", "recall"):
            for side in ("lo", "hi"):
                col = f"{k}_{side}"
                s[col] = _num(one[col]) if one is not None and col in rows.columns else None
        s["threshold"] = _num(rows["threshold"].iloc[0]) if "threshold" in rows.columns else None
        if "median_query_ms" in rows.columns:
            med = rows[["median_query_ms", "n_pos", "n_neg"]].dropna(subset=["median_query_ms"])
            if one is not None or len(med) <= 1:
                s["median_query_ms"] = _num(med["median_query_ms"].iloc[0]) if len(med) else None
            else:
                med = med.sort_values("median_query_ms")
                w = (med["n_pos"] + med["n_neg"]).cumsum().to_numpy()
                s["median_query_ms"] = _num(med["median_query_ms"].iloc[int(np.searchsorted(w, w[-1] / 2))])
        else:
            s["median_query_ms"] = None
        st = stats.get(name, {})
        if s["median_query_ms"] is None:
            s["median_query_ms"] = _num(st.get("query_ms_median"))
        s["bits_per_second"] = _num(st.get("bits_per_second"))
        s["bytes"] = _num(st.get("bytes"))
        s["seconds"] = _num(st.get("seconds"))
        s["bytes_per_second"] = (s["bytes"] / s["seconds"]) if s["bytes"] is not None and s["seconds"] else None
        s["x_realtime"] = _num(st.get("x_realtime"))
        bits = st.get("bits", (st.get("params") or {}).get("bits"))
        s["bits"] = _num(bits)
        out["systems"][name] = s
    drows = metrics_rows if "distortion" in metrics_rows.columns else distortion_rows
    if drows is not None:
        per = _aggregate(drows, ["system", "distortion"])
        out["top1_by_distortion"] = {
            str(sysname): {str(d): _num(t) for d, t in zip(g["distortion"], g["top1"])}
            for sysname, g in per.groupby("system", sort=True)}
    if classification is not None:
        if "features" not in classification.columns:
            raise ValueError("classification rows need a 'features' column naming the feature set")
        best = classification.groupby(["features", "task"])["balanced_accuracy"].max().reset_index()
        out["classification"] = {str(f): {str(t): _num(v) for t, v in zip(g["task"], g["balanced_accuracy"])}
                                 for f, g in best.groupby("features", sort=True)}
        ch = classification.groupby("task")["chance_balanced"].max()
        out["classification_chance"] = {str(t): _num(v) for t, v in ch.items()}
    return out


#: Per-system keys of :func:`headline` that measure speed on this machine (they change from run to run).
TIMING_KEYS = ("median_query_ms", "x_realtime")


def drop_timings(metrics: dict) -> dict:
    """A copy of :func:`headline`'s dict without :data:`TIMING_KEYS`, for ``reports/metrics.json``: the committed
    metrics of a commit must be the same on every rerun (speed is measured by ``make bench``)."""
    out = dict(metrics)
    out["systems"] = {n: {k: v for k, v in s.items() if k not in TIMING_KEYS}
                      for n, s in metrics.get("systems", {}).items()}
    return out


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return [_jsonable(v) for v in obj.tolist()]
    if isinstance(obj, (np.bool_, bool)):
        return bool(obj)
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        return float(obj) if math.isfinite(float(obj)) else None
    if obj is pd.NA or obj is pd.NaT:
        return None
    return obj


def write_metrics(path: str | os.PathLike, obj: dict) -> None:
    """Write ``obj`` as JSON atomically (``samaf_lib.io.write_json``); NaN and infinities become ``null``."""
    from .io import write_json

    write_json(path, _jsonable(obj))


def _fmt(v: float | None, nd: int = 3) -> str:
    return "n/a" if v is None else f"{v:.{nd}f}"


def _claim_identification(summary: dict, samaf: str, baselines: list[str]) -> tuple[str, str]:
    systems = summary.get("systems", {})
    top = {k: _num(v.get("top1")) for k, v in systems.items()}
    if top.get(samaf) is None or not any(top.get(b) is not None for b in baselines):
        return "SAMAF or baseline top-1 missing from the summary", "not measured"
    bl = [b for b in baselines if top.get(b) is not None]
    beaten = [b for b in bl if top[samaf] > top[b]]
    s = systems[samaf]
    ci = (f" [{_fmt(s.get('top1_lo'))}, {_fmt(s.get('top1_hi'))}]" if s.get("top1_lo") is not None else "")
    parts = [f"top-1 at the calibrated threshold: {samaf} {_fmt(top[samaf])}{ci}"]
    parts += [f"{b} {_fmt(top[b])} (fpr {_fmt(_num(systems[b].get('fpr')))})" for b in bl]
    parts[0] += f" (fpr {_fmt(_num(s.get('fpr')))})"
    by = summary.get("top1_by_distortion", {})
    fam_won, fam_total = 0, 0
    if samaf in by:
        lost = []
        for fam, v in sorted(by[samaf].items()):
            others = [by.get(b, {}).get(fam) for b in bl]
            others = [o for o in others if o is not None]
            if v is None or not others:
                continue
            fam_total += 1
            if v > max(others):
                fam_won += 1
            else:
                lost.append(fam)
        parts.append(f"{samaf} best in {fam_won}/{fam_total} distortion families"
                     + (f" (not in: {', '.join(lost)})" if lost else ""))
    evidence = "; ".join(parts)
    all_overall = len(beaten) == len(bl)
    most_fam = fam_total == 0 or fam_won > fam_total / 2
    if all_overall and most_fam:
        return evidence, "holds"
    if beaten or fam_won > 0:
        return evidence, "holds in part"
    return evidence, "does not hold"


def _claim_classification(summary: dict, samaf: str, baselines: list[str]) -> tuple[str, str]:
    cls = summary.get("classification", {})
    if samaf not in cls or not any(b in cls for b in baselines):
        return "no classification results for SAMAF and the baselines", "not measured"
    chance = summary.get("classification_chance", {})
    won, total, parts = 0, 0, []
    for task, v in sorted(cls[samaf].items()):
        if v is None:
            continue
        others = {b: cls.get(b, {}).get(task) for b in baselines}
        others = {b: o for b, o in others.items() if o is not None}
        if not others:
            continue
        total += len(others)
        won += sum(v > o for o in others.values())
        extra = [f"{f} {_fmt(cls[f].get(task))}" for f in sorted(cls) if f != samaf and f not in baselines
                 and cls[f].get(task) is not None]
        if chance.get(task) is not None:
            extra.append(f"chance {_fmt(chance[task])}")
        parts.append(f"{task}: {samaf} {_fmt(v)} vs " + ", ".join(f"{b} {_fmt(o)}" for b, o in others.items())
                     + (f" ({', '.join(extra)})" if extra else ""))
    if total == 0:
        return "no task measured for both SAMAF and a baseline", "not measured"
    evidence = (f"balanced accuracy, best classifier; SAMAF ahead in {won}/{total} task-baseline pairs. "
                + "; ".join(parts))
    if won == total:
        return evidence, "holds"
    if won > 0:
        return evidence, "holds in part"
    return evidence, "does not hold"


def _claim_bits(summary: dict, samaf: str, baselines: list[str], rel_tol: float = 0.02) -> tuple[str, str]:
    s = summary.get("systems", {}).get(samaf, {})
    bps, bits = _num(s.get("bits_per_second")), _num(s.get("bits"))
    if bps is None:
        return "SAMAF bits per second missing from the summary", "not measured"
    others = [f"{b} {_fmt(_num(summary['systems'][b].get('bits_per_second')), 0)}" for b in baselines
              if b in summary.get("systems", {}) and _num(summary["systems"][b].get("bits_per_second")) is not None]
    evidence = (f"{samaf} stores {_fmt(bps, 1)} bits per second of audio"
                + (f" ({_fmt(bits, 0)} bits per 1-s window)" if bits is not None else "")
                + (f"; baselines: {', '.join(others)} bits/s" if others else ""))
    if any(abs(bps - t) <= rel_tol * t for t in (128, 256)):
        return evidence, "holds"
    if bits is not None and bits in (128, 256):
        return evidence + "; each 1-s window has a 128/256-bit code but overlapping windows store more", \
            "holds in part"
    return evidence, "does not hold"


def paper_claims(summary: dict, samaf: str = "samaf",
                 baselines: Sequence[str] = ("dejavu", "rafs", "panako")) -> pd.DataFrame:
    """The paper's claims, one row each, with the measured evidence and a verdict computed from it.

    Rules (``>`` is strict: a tie is not a win; "not measured" when the summary lacks the numbers):

    (a) *Identification better than all baselines.* "holds" when SAMAF's overall top-1 at its calibrated threshold
        exceeds every baseline's and SAMAF has the highest top-1 in more than half of the distortion families
        (when per-family numbers are present); "holds in part" when it exceeds at least one baseline overall or
        is best in at least one family; "does not hold" otherwise.
    (b) *Attribute classification better.* For each task and baseline, SAMAF's best balanced accuracy (over the
        classifiers) against the baseline's: "holds" when SAMAF wins every (task, baseline) pair, "holds in part"
        when it wins at least one, "does not hold" when none. Reference features (MFCC) are reported, not
        compared.
    (c) *128 or 256 bits per second.* "holds" when SAMAF's stored bits per second of audio is within 2% of 128 or
        256; "holds in part" when its code per 1-s window has 128 or 256 bits but overlapping windows store a
        different rate; "does not hold" otherwise.

    Parameters
    ----------
    summary : dict
        The output of :func:`headline` (``systems``, optionally ``top1_by_distortion``, ``classification``,
        ``classification_chance``).
    samaf : str
        The system that stands for SAMAF.
    baselines : sequence of str
        Baselines it is compared with (those absent from the summary are skipped).

    Returns
    -------
    DataFrame with columns ``claim`` ("a", "b", "c"), ``statement``, ``evidence``, ``verdict``.
    """
    bl = [b for b in baselines if b != samaf]
    rows = []
    for key, statement, fn in (
            ("a", "SAMAF identifies audio better than Dejavu, RAFS and Panako", _claim_identification),
            ("b", "SAMAF fingerprints classify audio attributes better than the baselines'", _claim_classification),
            ("c", "SAMAF's hash is 128 or 256 bits per second of audio", _claim_bits)):
        evidence, verdict = fn(summary, samaf, bl)
        rows.append({"claim": key, "statement": statement, "evidence": evidence, "verdict": verdict})
    return pd.DataFrame(rows, columns=["claim", "statement", "evidence", "verdict"])


def system_features(system: Any, audio: np.ndarray, sr: int, dim: int = 512) -> np.ndarray:
    """The fixed-length feature vector of one clip from one system's fingerprints (docs/study.md, Protocol).

    SAMAF: fraction of ones per hash bit over the clip's windows (``bits`` values); RAFS: fraction of ones per
    sub-fingerprint bit (32 values); Dejavu and Panako: their hashes as a bag of hashed buckets per second
    (:func:`bag_of_hashes`, ``dim`` values). A clip too short to give any fingerprint gives zeros.
    """
    codes, times = system.fingerprint(audio, sr)
    codes = np.asarray(codes)
    name = getattr(system, "name", "")
    if name == "samaf":
        width = int(system.bits)
        return bit_features(codes, packed=True)[:width] if len(codes) else np.zeros(width)
    if name == "rafs":
        return bit_features(codes.astype(np.uint32))
    return bag_of_hashes(codes, np.asarray(times), len(audio) / sr, dim=dim)
