"""Identification: how often does a system name the right reference, at a calibrated false-positive rate?

Two kinds of input, both tables written by other stages:

* the query manifest ``queries.csv`` (one row per query: ``query_id, set, utterance_id, speaker_id, ref_id,
  positive, offset_s, length_s, distortion, level, seed, path``, and ``kind``: ``positive``, ``other_speaker``
  or ``same_speaker`` for negatives), and
* one results table per system ``results/<system>.csv`` (``query_id, ref_id, offset_s, score, status``), the
  system's best candidate for every query with ``min_score=0``.

:func:`join_results` puts them side by side; rejection thresholds are chosen on calibration queries only
(:func:`choose_threshold`, :func:`choose_thresholds` per query length) and applied here, so every system is compared
at the same calibrated false-positive rate. :func:`identification_metrics` and :func:`metrics_table` compute the
numbers of the report; the intervals come from :mod:`samaf_lib.uncertainty`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from . import uncertainty

#: Columns every results table must hold (samaf_lib.protocol writes these plus ``status``).
RESULT_REQUIRED = ["query_id", "ref_id", "offset_s", "score"]
#: Manifest columns the evaluation reads.
MANIFEST_REQUIRED = ["query_id", "set", "ref_id", "positive", "offset_s", "length_s", "distortion", "level"]
#: Metrics :func:`identification_metrics` returns that :func:`bootstrap_ci` can resample.
METRICS = uncertainty.METRICS
#: What a negative query is (manifest column ``kind``): from a speaker with no utterance in the database, or an
#: unindexed utterance of a database speaker. Manifests without the column count every negative as ``negative``.
NEGATIVE_KINDS = ("other_speaker", "same_speaker")
#: Key of the threshold used for query lengths that have no threshold of their own.
POOLED = "pooled"


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
        The system's answers: ``query_id, ref_id, offset_s, score`` and optionally ``seconds`` (the wall time of an
        answer, present in memory, not in the stored tables); ``ref_id`` empty/NaN = no match.
    system : str
        Written to the ``system`` column.

    Returns
    -------
    DataFrame
        Every manifest column, with the manifest's ``ref_id`` and ``offset_s`` renamed ``expected_ref_id`` and
        ``expected_offset_s``; the system's ``ref_id``, ``offset_s``, ``score`` (and ``seconds`` if given) (the prediction)
        and any other results column (e.g. ``status`` from :func:`samaf_lib.protocol.run_queries`);
        ``system``; ``answered`` (False where the results table has no row for the query: treated as no match
        with score NaN); ``correct`` (bool: a positive whose predicted reference equals the expected one; always
        False for negatives) and ``offset_error_s`` (predicted minus expected offset, seconds, for correct rows;
        NaN elsewhere); ``kind`` (``positive`` or the negative's kind, ``negative`` when the manifest has none).
        Identifiers are strings, ``None`` when missing.

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
    if "kind" not in df.columns:
        df["kind"] = np.where(df["positive"] == 1, "positive", "negative")
    df["kind"] = df["kind"].astype(str)
    for c in ("offset_s", "score", "seconds", "expected_offset_s", "length_s"):
        if c in df.columns:
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
    out: dict[str, float | int] = {k: float(v) for k, v in uncertainty.metrics_from_counts(
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


def _length_key(length_s: float) -> str:
    return f"{float(length_s):g}"


def choose_thresholds(calib: pd.DataFrame, target_fpr: float = 0.05, by_length: bool = True,
                      rule: str = "fpr", negatives: str | None = None) -> dict[str, dict[str, float]]:
    """Every system's thresholds from the calibration rows: one pooled, and one per query length.

    Count scores (aligned hashes, triplets) grow with the query's length, so one threshold for all lengths is
    set by the longest queries' negatives and rejects short positives; a threshold per system and length keeps
    each length at the target false-positive rate (docs/study.md, Evaluation).

    Parameters
    ----------
    calib : DataFrame
        Joined rows (:func:`join_results`) of one or more systems, all with ``set == "calib"``.
    target_fpr : float
    by_length : bool
        Also choose one threshold per ``length_s`` (False: the pooled one only).
    rule : {"fpr", "max_f1"}
    negatives : str, optional
        Keep only negatives of this ``kind`` (e.g. ``other_speaker``); None keeps every negative.

    Returns
    -------
    dict
        ``{system: {"pooled": t, "1": t_1s, "2": t_2s, ...}}`` (length keys as ``f"{length:g}"``), the form
        :func:`metrics_table` takes.
    """
    calib = select_negatives(calib, negatives)
    out: dict[str, dict[str, float]] = {}
    for name, rows in calib.groupby("system", sort=True):
        t = {POOLED: choose_threshold(rows, target_fpr=target_fpr, rule=rule)}
        if by_length:
            for length, part in rows.groupby("length_s", sort=True):
                t[_length_key(length)] = choose_threshold(part, target_fpr=target_fpr, rule=rule)
        out[str(name)] = t
    return out


def pooled_thresholds(thresholds: dict[str, Any]) -> dict[str, float]:
    """The pooled threshold of each system, from :func:`choose_thresholds`' form (floats pass through)."""
    return {k: float(v[POOLED]) if isinstance(v, dict) else float(v) for k, v in thresholds.items()}


def row_thresholds(df: pd.DataFrame, thresholds: dict[str, Any]) -> np.ndarray:
    """The threshold that applies to each row: its system's threshold for its query length, else the pooled one.

    ``thresholds`` maps a system to a float (one threshold for every length) or to :func:`choose_thresholds`'
    dict.
    """
    unknown = sorted(set(df["system"].astype(str).unique()) - set(thresholds))
    if unknown:
        raise ValueError(f"no threshold for system(s) {unknown}; thresholds has {sorted(thresholds)}")
    out = np.empty(len(df))
    for i, (name, length) in enumerate(zip(df["system"].astype(str), df["length_s"])):
        t = thresholds[name]
        if isinstance(t, dict):
            key = _length_key(length) if np.isfinite(length) else POOLED
            if key not in t and POOLED not in t:
                raise ValueError(f"system {name!r} has no threshold for {key}-s queries and no pooled one")
            out[i] = float(t.get(key, t.get(POOLED)))
        else:
            out[i] = float(t)
    return out


def select_negatives(df: pd.DataFrame, kind: str | None) -> pd.DataFrame:
    """Positives plus the negatives of one ``kind`` (None: every negative)."""
    if kind is None:
        return df
    if "kind" not in df.columns:
        raise ValueError("negatives by kind need the manifest's 'kind' column")
    keep = (df["positive"].astype(int) == 1) | (df["kind"].astype(str) == kind)
    if not (keep & (df["positive"].astype(int) == 0)).any() and (df["positive"].astype(int) == 0).any():
        raise ValueError(f"no negatives of kind {kind!r}; kinds present: "
                         f"{sorted(df.loc[df['positive'].astype(int) == 0, 'kind'].astype(str).unique())}")
    return df[keep]


def _groups(df: pd.DataFrame, ci: str) -> np.ndarray:
    """Resampling unit of each row: its source utterance (``cluster``) or itself (``query``)."""
    if ci == "query":
        return np.arange(len(df))
    if "utterance_id" not in df.columns:
        raise ValueError("the cluster bootstrap resamples source utterances: the table needs 'utterance_id'")
    return df["utterance_id"].astype(str).to_numpy()


def _ci_kind(ci: bool | str) -> str | None:
    if ci is True:
        return "cluster"
    if ci is False or ci is None:
        return None
    if ci not in ("cluster", "query"):
        raise ValueError(f"ci must be 'cluster', 'query' or False, got {ci!r}")
    return ci


def bootstrap_ci(df: pd.DataFrame, threshold: float | dict, metric: str, n: int = 1000, seed: int = 0,
                 alpha: float = 0.05, offset_tolerance_s: float | None = None,
                 ci: str = "cluster") -> tuple[float, float]:
    """Percentile bootstrap interval of one identification metric of one system's joined table.

    ``ci="cluster"`` resamples source utterances (``utterance_id``), positives' and negatives' separately, each
    bringing all its queries; ``ci="query"`` resamples queries (stratified by sign). See
    :mod:`samaf_lib.uncertainty`.

    Returns
    -------
    (lo, hi) : tuple of float
        NaN, NaN when the metric is undefined in every resample (e.g. ``top1`` without positives).
    """
    if metric not in METRICS:
        raise ValueError(f"metric must be one of {METRICS}, got {metric!r}")
    uncertainty.check_settings(n, alpha)
    kind = _ci_kind(ci) or "cluster"
    df = df.reset_index(drop=True)
    thr = row_thresholds(df, {str(s): threshold for s in df["system"].unique()}) if "system" in df.columns \
        else np.full(len(df), float(threshold))
    pos, acc, hit, raw = _flags(df, thr, offset_tolerance_s)
    g = _groups(df, kind)
    counts = uncertainty.resampled_counts(uncertainty.positive_codes(hit, acc, raw)[pos][None], g[pos],
                                          (acc & ~pos)[~pos][None], g[~pos], n, np.random.default_rng(seed))
    return uncertainty.interval(uncertainty.resampled_metrics(counts)[metric][0], alpha)


def metrics_table(df_all: pd.DataFrame, thresholds: dict[str, Any],
                  by: Sequence[str] = ("system", "distortion", "level", "length_s"), ci: bool | str = "cluster",
                  n_boot: int = 1000, seed: int = 0, alpha: float = 0.05, offset_tolerance_s: float | None = None,
                  split: str | None = "test", negatives: str | None = None) -> pd.DataFrame:
    """Identification metrics per group, each system at its own threshold(s).

    Parameters
    ----------
    df_all : DataFrame
        Joined rows of one or more systems (concatenated :func:`join_results` outputs).
    thresholds : dict
        System name -> a threshold, or -> :func:`choose_thresholds`' dict (a threshold per query length).
    by : sequence of str
        Grouping columns; must include ``"system"``. Missing values form their own group.
    ci : {"cluster", "query", False}
        Bootstrap intervals (``<metric>_lo``, ``<metric>_hi``) by source utterance (default) or by query; False
        leaves them NaN. ``True`` means ``"cluster"``.
    n_boot, seed, alpha
        Bootstrap settings (every group uses ``seed``, so a group's interval does not depend on the others).
    offset_tolerance_s : float, optional
    split : str or None
        Keep only rows with this ``set`` ("test" by default); None keeps every row.
    negatives : str, optional
        Keep only negatives of this ``kind`` (:data:`NEGATIVE_KINDS`); None keeps every negative.

    Returns
    -------
    DataFrame
        One row per group, sorted by ``by``: the ``by`` columns, ``threshold`` (NaN when the group's rows have
        several), ``top1, top1_lo, top1_hi, top1_raw, fpr, fpr_lo, fpr_hi, precision, precision_lo,
        precision_hi, recall, recall_lo, recall_hi, f1, f1_lo, f1_hi``, the counts ``n_pos, n_neg, tp, fp_pos,
        fp_neg, fn, raw_correct`` (so that coarser tables can be rebuilt exactly by summing) and
        ``median_query_ms`` (median of ``seconds`` x 1000, answered queries; NaN when the rows carry no timing).
    """
    by = list(by)
    if "system" not in by:
        raise ValueError("metrics_table: 'by' must include 'system' (systems have different score scales)")
    missing = [c for c in by if c not in df_all.columns]
    if missing:
        raise ValueError(f"metrics_table: grouping column(s) {missing} not in the table")
    kind = _ci_kind(ci)
    if kind:
        uncertainty.check_settings(n_boot, alpha)
    df = df_all
    if split is not None:
        if "set" not in df.columns:
            raise ValueError("metrics_table: no 'set' column to select the split; pass split=None")
        df = df[df["set"].astype(str) == split]
        if df.empty:
            raise ValueError(f"metrics_table: no rows with set == {split!r}")
    df = select_negatives(df, negatives).reset_index(drop=True)
    thr_row = row_thresholds(df, thresholds)
    pos, acc, hit, raw = _flags(df, thr_row, offset_tolerance_s)  # thresholds broadcast row by row
    flags = pd.DataFrame({
        "n_pos": pos, "n_neg": ~pos, "tp": hit, "fp_pos": pos & acc & ~hit, "fp_neg": ~pos & acc,
        "raw_correct": raw}).astype(np.int64)
    keys = [df[c] for c in by]
    grouped = flags.groupby(keys, sort=True, dropna=False)
    counts = grouped.sum()
    thr = pd.Series(thr_row).groupby(keys, sort=True, dropna=False).agg(
        lambda v: float(v.iloc[0]) if v.nunique() == 1 else np.nan).reindex(counts.index)
    if "seconds" in df.columns:
        ms = pd.to_numeric(df["seconds"], errors="coerce") * 1000
        median_ms = ms.groupby(keys, sort=True, dropna=False).median().reindex(counts.index)
    else:
        median_ms = pd.Series(np.nan, index=counts.index)
    at = {k: counts[k].to_numpy(dtype=np.int64) for k in ("n_pos", "n_neg", "tp", "fp_pos", "fp_neg",
                                                          "raw_correct")}
    m = uncertainty.metrics_from_counts(at["n_pos"], at["n_neg"], at["tp"], at["fp_pos"], at["fp_neg"],
                                        at["raw_correct"])
    ci_names = [k for k in METRICS if k != "top1_raw"]
    bounds = {k: np.full((len(counts), 2), np.nan) for k in ci_names}
    if kind and len(counts):
        codes = uncertainty.positive_codes(hit, acc, raw)
        groups = _groups(df, kind)
        for i, rows in enumerate(grouped.indices.values()):
            rows = np.asarray(rows)
            p, q = rows[pos[rows]], rows[~pos[rows]]
            c = uncertainty.resampled_counts(codes[p][None], groups[p], acc[q][None], groups[q], n_boot,
                                             np.random.default_rng(seed))
            vals = uncertainty.resampled_metrics(c)
            for k in ci_names:
                bounds[k][i] = uncertainty.intervals(vals[k], alpha)[0]
    keys_df = counts.index.to_frame(index=False)
    keys_df.columns = by
    out = keys_df.copy()
    out["threshold"] = thr.to_numpy(dtype=float)
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


def paired_differences(df_all: pd.DataFrame, thresholds: dict[str, Any], system: str = "samaf",
                       others: Sequence[str] | None = None, metrics: Sequence[str] = ("top1", "f1"),
                       by: Sequence[str] = (), n_boot: int = 1000, seed: int = 0, alpha: float = 0.05,
                       split: str | None = "test", negatives: str | None = None, ci: str = "cluster",
                       offset_tolerance_s: float | None = None) -> pd.DataFrame:
    """``system`` minus each other system on the same queries, with paired bootstrap intervals.

    Every resample draws the same source utterances (``ci="cluster"``) or queries (``ci="query"``) for both
    systems, so the interval is that of the difference itself, not of two separate numbers.

    Parameters
    ----------
    df_all : DataFrame
        Joined rows of every system, each system answering the same queries.
    thresholds : dict
        As in :func:`metrics_table`.
    system : str
        The system compared (SAMAF).
    others : sequence of str, optional
        Systems it is compared with (default: every other system in the table).
    metrics : sequence of str
        Among :data:`METRICS`.
    by : sequence of str
        Extra grouping columns (e.g. ``("length_s",)``); empty for one row per pair.
    n_boot, seed, alpha, split, negatives, ci, offset_tolerance_s
        As in :func:`metrics_table`.

    Returns
    -------
    DataFrame
        One row per (other system, ``by`` group, metric): ``system, other, <by>, metric, value`` (system's),
        ``other_value``, ``difference``, ``lo``, ``hi`` (interval of the difference) and ``p_not_better``
        (share of resamples in which the difference is <= 0).
    """
    bad = [k for k in metrics if k not in METRICS]
    if bad:
        raise ValueError(f"metrics must be among {METRICS}, got {bad}")
    kind = _ci_kind(ci) or "cluster"
    uncertainty.check_settings(n_boot, alpha)
    df = df_all
    if split is not None:
        df = df[df["set"].astype(str) == split]
    df = select_negatives(df, negatives)
    names = sorted(df["system"].astype(str).unique())
    if system not in names:
        raise ValueError(f"paired_differences: no rows of system {system!r}; systems: {names}")
    others = [o for o in (others if others is not None else names) if o != system]
    missing = [o for o in others if o not in names]
    if missing:
        raise ValueError(f"paired_differences: no rows of system(s) {missing}")
    parts = {}
    for name in [system, *others]:
        part = df[df["system"].astype(str) == name].sort_values("query_id").reset_index(drop=True)
        parts[name] = part
    ref_ids = parts[system]["query_id"].to_numpy()
    for o in others:
        if not np.array_equal(parts[o]["query_id"].to_numpy(), ref_ids):
            raise ValueError(f"paired_differences: {o!r} did not answer the same queries as {system!r}")
    base = parts[system]
    flags = {}
    for name, part in parts.items():
        pos, acc, hit, raw = _flags(part, row_thresholds(part, thresholds), offset_tolerance_s)
        flags[name] = (pos, acc, uncertainty.positive_codes(hit, acc, raw))
    pos = flags[system][0]
    groups = _groups(base, kind)
    group_keys = [base[c] for c in by] if by else [pd.Series(np.zeros(len(base)))]
    rows = []
    for key, idx in base.groupby(group_keys, sort=True, dropna=False).indices.items():
        idx = np.asarray(idx)
        p, q = idx[pos[idx]], idx[~pos[idx]]
        names_k = [system, *others]
        codes = np.stack([flags[n][2][p] for n in names_k])
        acc_neg = np.stack([flags[n][1][q] for n in names_k])
        c = uncertainty.resampled_counts(codes, groups[p], acc_neg, groups[q], n_boot, np.random.default_rng(seed))
        vals = uncertainty.resampled_metrics(c)
        point = uncertainty.metrics_from_counts(
            len(p), len(q), (codes >= 4).sum(1), ((codes & 2) > 0).sum(1), acc_neg.sum(1), (codes & 1).sum(1))
        key = key if isinstance(key, tuple) else (key,)
        for j, o in enumerate(others, start=1):
            for metric in metrics:
                d = vals[metric][0] - vals[metric][j]
                lo, hi = uncertainty.interval(d, alpha)
                ok = np.isfinite(d)
                row = {"system": system, "other": o}
                if by:
                    row.update(dict(zip(by, key)))
                v0, v1 = float(np.asarray(point[metric])[0]), float(np.asarray(point[metric])[j])
                row.update(metric=metric, value=v0, other_value=v1, difference=v0 - v1, lo=lo, hi=hi,
                           p_not_better=float((d[ok] <= 0).mean()) if ok.any() else np.nan)
                rows.append(row)
    cols = ["system", "other", *by, "metric", "value", "other_value", "difference", "lo", "hi", "p_not_better"]
    return pd.DataFrame(rows, columns=cols)
