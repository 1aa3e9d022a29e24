"""Uncertainty: how sure are the study's numbers, and is one system really ahead of another?

Queries are not independent: the 1,280 test positives of the default run are cut from about 115 reference
utterances, and every query of an utterance shares its voice, its words and its place in the database. Resampling
queries as if they were independent gives intervals that are too narrow. The default here is the **cluster
bootstrap**: the source utterances are resampled with replacement (positives' and negatives' sources separately,
so that every resample keeps both kinds), and each drawn utterance brings all of its queries
(:func:`resampled_counts`). With one group per query it is the ordinary stratified bootstrap.

**Paired differences** (:func:`paired_differences`): all systems answer the same queries, so the difference of a
metric between two systems is resampled with the *same* draws for both; the interval of that difference is what a
claim "A is better than B" rests on (docs/study.md, Evaluation).

Every metric depends on a resample only through counts (hits, accepted non-hits, hits ignoring the threshold,
accepted negatives, and the numbers of positives and negatives drawn), so a resample is a weighted sum of
per-utterance counts, and a thousand resamples cost one small matrix product.
"""

from __future__ import annotations

from typing import Any

import numpy as np

#: Metrics computed from counts (:func:`metrics_from_counts`).
METRICS = ("top1", "top1_raw", "fpr", "precision", "recall", "f1")
#: A positive query's outcome as a code 0..7: 4 * hit + 2 * (accepted, not a hit) + raw hit.
_CAT = np.arange(8)
_CAT_MASKS = np.stack([(_CAT & 4) > 0, (_CAT & 2) > 0, (_CAT & 1) > 0], axis=1).astype(np.int64)  # hit, fp, raw


def _div(a: Any, b: Any) -> Any:
    a = np.asarray(a, dtype=float)
    b = np.asarray(b, dtype=float)
    out = np.full(np.broadcast(a, b).shape, np.nan)
    np.divide(a, b, out=out, where=b > 0)
    return out if out.ndim else float(out)


def metrics_from_counts(n_pos: Any, n_neg: Any, tp: Any, fp_pos: Any, fp_neg: Any, raw: Any) -> dict:
    """Metric values (scalars or arrays, broadcast) from counts; undefined ratios are NaN.

    ``top1`` = tp / n_pos, ``top1_raw`` = raw / n_pos, ``fpr`` = fp_neg / n_neg, ``precision`` = tp / (tp + fp),
    ``recall`` = tp / n_pos, ``f1`` = 2 tp / (2 tp + fp + fn), with fp = fp_pos + fp_neg and fn = n_pos - tp.
    """
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


def positive_codes(hit: np.ndarray, accepted: np.ndarray, raw_hit: np.ndarray) -> np.ndarray:
    """The outcome code 0..7 of positive queries (see :data:`_CAT`), from boolean arrays of any shape."""
    hit = np.asarray(hit, bool)
    return 4 * hit.astype(np.int64) + 2 * (np.asarray(accepted, bool) & ~hit) + np.asarray(raw_hit, bool)


def _weights(groups: np.ndarray, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """``(W, inverse)``: ``W[b, g]`` how often group ``g`` is drawn in resample ``b``; ``inverse`` maps rows to groups."""
    _, inv = np.unique(np.asarray(groups).astype(str), return_inverse=True)
    n_groups = int(inv.max()) + 1 if inv.size else 0
    if n_groups == 0:
        return np.zeros((n, 0), np.int64), inv
    return rng.multinomial(n_groups, np.full(n_groups, 1.0 / n_groups), size=n), inv


def resampled_counts(pos_codes: np.ndarray, pos_groups: np.ndarray, neg_accepted: np.ndarray,
                     neg_groups: np.ndarray, n: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Counts of ``n`` bootstrap resamples, drawn by group, the same draws for every system.

    Parameters
    ----------
    pos_codes : np.ndarray, shape (k, n_pos)
        Outcome codes (:func:`positive_codes`) of ``k`` systems on the same positive queries.
    pos_groups : np.ndarray, shape (n_pos,)
        The group (source utterance) of each positive; pass ``np.arange(n_pos)`` for the query-level bootstrap.
    neg_accepted : np.ndarray, shape (k, n_neg), bool
        Whether each system accepted each negative query.
    neg_groups : np.ndarray, shape (n_neg,)
    n : int
        Resamples.
    rng : np.random.Generator

    Returns
    -------
    dict
        ``n_pos``, ``n_neg`` (shape (n,)) and ``tp``, ``fp_pos``, ``raw``, ``fp_neg`` (shape (k, n)).
    """
    pos_codes = np.atleast_2d(np.asarray(pos_codes, np.int64))
    neg_accepted = np.atleast_2d(np.asarray(neg_accepted, bool))
    k = max(pos_codes.shape[0], neg_accepted.shape[0])
    out: dict[str, np.ndarray] = {}
    w, inv = _weights(pos_groups, n, rng)
    if inv.size and pos_codes.size:
        out["n_pos"] = w @ np.bincount(inv, minlength=w.shape[1])
        per = np.zeros((k, w.shape[1], 8), np.int64)
        for j in range(k):
            np.add.at(per[j], (inv, pos_codes[j]), 1)
        tp, fp_pos, raw = np.einsum("bg,kgc,cm->mkb", w, per, _CAT_MASKS)
        out.update(tp=tp, fp_pos=fp_pos, raw=raw)
    else:
        out["n_pos"] = np.zeros(n, np.int64)
        out.update(tp=np.zeros((k, n)), fp_pos=np.zeros((k, n)), raw=np.zeros((k, n)))
    w, inv = _weights(neg_groups, n, rng)
    if inv.size and neg_accepted.size:
        out["n_neg"] = w @ np.bincount(inv, minlength=w.shape[1])
        acc = np.stack([np.bincount(inv, weights=neg_accepted[j].astype(float), minlength=w.shape[1])
                        for j in range(k)])
        out["fp_neg"] = acc @ w.T
    else:
        out["n_neg"] = np.zeros(n, np.int64)
        out["fp_neg"] = np.zeros((k, n))
    return out


def resampled_metrics(counts: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """:func:`metrics_from_counts` of :func:`resampled_counts`' output: each metric of shape (k, n)."""
    return metrics_from_counts(counts["n_pos"][None, :], counts["n_neg"][None, :], counts["tp"],
                               counts["fp_pos"], counts["fp_neg"], counts["raw"])


def intervals(values: np.ndarray, alpha: float) -> np.ndarray:
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


def interval(values: np.ndarray, alpha: float) -> tuple[float, float]:
    """The percentile interval of one vector of resampled values (NaN ignored)."""
    lo, hi = intervals(np.asarray(values, dtype=float)[None, :], alpha)[0]
    return (float(lo), float(hi))


def check_settings(n: int, alpha: float) -> None:
    """Raise ValueError naming the setting when ``n`` < 1 or ``alpha`` is not in (0, 1)."""
    if n < 1:
        raise ValueError(f"n_boot must be >= 1, got {n}")
    if not (0 < alpha < 1):
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
