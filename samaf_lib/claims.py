"""The study's conclusions: the headline numbers per system (``reports/metrics.json``) and the paper's three claims,
each with its evidence and a verdict that follows from the intervals.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from .uncertainty import METRICS, metrics_from_counts

#: The baselines of the paper, in the order the report lists them.
BASELINES = ("dejavu", "rafs", "panako")


def _aggregate(rows: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    need = ["n_pos", "n_neg", "tp", "fp_pos", "fp_neg", "raw_correct"]
    missing = [c for c in need + keys if c not in rows.columns]
    if missing:
        raise ValueError(f"metrics rows lack columns {missing}; pass the output of metrics_table")
    agg = rows.groupby(keys, sort=True, dropna=False)[need].sum().reset_index()
    m = metrics_from_counts(agg["n_pos"], agg["n_neg"], agg["tp"], agg["fp_pos"], agg["fp_neg"],
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
             distortion_rows: pd.DataFrame | None = None, same_speaker_rows: pd.DataFrame | None = None,
             paired: pd.DataFrame | None = None, classification_paired: pd.DataFrame | None = None) -> dict:
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
    same_speaker_rows : DataFrame, optional
        :func:`metrics_table` rows (``by=("system",)``) on the negatives of the other kind (unindexed utterances
        of database speakers): their ``fpr`` becomes ``fpr_same_speaker``.
    paired : DataFrame, optional
        :func:`samaf_lib.identification.paired_differences` rows (no ``by``): ``paired[other][metric]`` holds
        ``difference, lo, hi``.
    classification_paired : DataFrame, optional
        Paired attribute differences (``system, other, task, difference, lo, hi``):
        ``classification_paired[other][task]``.

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
        s["bytes_on_disk"] = _num(st.get("bytes_on_disk"))
        s["seconds"] = _num(st.get("seconds"))
        s["bytes_per_second"] = (s["bytes"] / s["seconds"]) if s["bytes"] is not None and s["seconds"] else None
        s["x_realtime"] = _num(st.get("x_realtime"))
        bits = st.get("bits", (st.get("params") or {}).get("bits"))
        s["bits"] = _num(bits)
        if st.get("hash_bits_per_second") is not None:  # the code per second of audio: bits / window (s)
            s["hash_bits_per_second"] = _num(st.get("hash_bits_per_second"))
        out["systems"][name] = s
    if same_speaker_rows is not None:
        agg = _aggregate(same_speaker_rows, ["system"])
        for _, r in agg.iterrows():
            if str(r["system"]) in out["systems"]:
                out["systems"][str(r["system"])]["fpr_same_speaker"] = _num(r["fpr"])
    if paired is not None and len(paired):
        out["paired"] = {str(o): {str(r["metric"]): {k: _num(r[k]) for k in ("difference", "lo", "hi")}
                                  for _, r in g.iterrows()} for o, g in paired.groupby("other", sort=True)}
    if classification_paired is not None and len(classification_paired):
        out["classification_paired"] = {
            str(o): {str(r["task"]): {k: _num(r[k]) for k in ("difference", "lo", "hi")} for _, r in g.iterrows()}
            for o, g in classification_paired.groupby("other", sort=True)}
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


def _interval_text(d: dict) -> str:
    return f"{d['difference']:+.3f} [{_fmt(d.get('lo'))}, {_fmt(d.get('hi'))}]"


def _decide(pairs: dict[str, dict | None]) -> tuple[str, int, int]:
    """Verdict from paired intervals: ``holds`` when every interval lies above 0, ``holds in part`` when some do,
    ``does not hold`` when none does; returns ``(verdict, above, measured)``."""
    measured = {k: v for k, v in pairs.items() if v is not None and v.get("lo") is not None}
    above = sum(v["lo"] > 0 for v in measured.values())
    if not measured:
        return "not measured", 0, 0
    if above == len(measured):
        return "holds", above, len(measured)
    return ("holds in part" if above else "does not hold"), above, len(measured)


def _claim_identification(summary: dict, samaf: str, baselines: list[str]) -> tuple[str, str]:
    systems = summary.get("systems", {})
    top = {k: _num(v.get("top1")) for k, v in systems.items()}
    if top.get(samaf) is None or not any(top.get(b) is not None for b in baselines):
        return "SAMAF or baseline top-1 missing from the summary", "not measured"
    bl = [b for b in baselines if top.get(b) is not None]
    s = systems[samaf]
    ci = (f" [{_fmt(s.get('top1_lo'))}, {_fmt(s.get('top1_hi'))}]" if s.get("top1_lo") is not None else "")
    parts = [f"top-1 at the calibrated thresholds: {samaf} {_fmt(top[samaf])}{ci} (fpr {_fmt(_num(s.get('fpr')))})"]
    parts += [f"{b} {_fmt(top[b])} (fpr {_fmt(_num(systems[b].get('fpr')))})" for b in bl]
    paired = summary.get("paired", {})
    diffs = {b: paired.get(b, {}).get("top1") for b in bl}
    verdict, _, measured = _decide(diffs)
    if measured:
        parts.append("paired top-1 difference, SAMAF minus baseline, 95% cluster-bootstrap interval: "
                     + ", ".join(f"{b} {_interval_text(d)}" for b, d in diffs.items() if d is not None))
    by = summary.get("top1_by_distortion", {})
    if samaf in by:
        won, total = 0, 0
        for fam, v in sorted(by[samaf].items()):
            others = [o for o in (by.get(b, {}).get(fam) for b in bl) if o is not None]
            if v is None or not others:
                continue
            total += 1
            won += v > max(others)
        parts.append(f"{samaf} has the highest point top-1 in {won}/{total} distortion families")
    evidence = "; ".join(parts)
    if not measured:  # no paired intervals: say so rather than decide from point values
        return evidence + "; no paired intervals, so no verdict", "not measured"
    return evidence, verdict


def _claim_classification(summary: dict, samaf: str, baselines: list[str]) -> tuple[str, str]:
    cls = summary.get("classification", {})
    if samaf not in cls or not any(b in cls for b in baselines):
        return "no classification results for SAMAF and the baselines", "not measured"
    chance = summary.get("classification_chance", {})
    paired = summary.get("classification_paired", {})
    parts, pairs = [], {}
    for task, v in sorted(cls[samaf].items()):
        if v is None:
            continue
        others = {b: cls.get(b, {}).get(task) for b in baselines}
        others = {b: o for b, o in others.items() if o is not None}
        if not others:
            continue
        for b in others:
            pairs[f"{task}/{b}"] = paired.get(b, {}).get(task)
        extra = [f"{f} {_fmt(cls[f].get(task))}" for f in sorted(cls) if f != samaf and f not in baselines
                 and cls[f].get(task) is not None]
        if chance.get(task) is not None:
            extra.append(f"chance {_fmt(chance[task])}")
        parts.append(f"{task}: {samaf} {_fmt(v)} vs " + ", ".join(f"{b} {_fmt(o)}" for b, o in others.items())
                     + (f" ({', '.join(extra)})" if extra else ""))
    if not pairs:
        return "no task measured for both SAMAF and a baseline", "not measured"
    verdict, above, measured = _decide(pairs)
    evidence = "balanced accuracy (best of the classifiers); " + "; ".join(parts)
    if not measured:
        return evidence + "; no paired intervals, so no verdict", "not measured"
    evidence += (f". Paired differences (SAMAF minus baseline, logistic regression, 95% interval over speakers) "
                 f"above 0 in "
                 f"{above}/{measured} task-baseline pairs")
    return evidence, verdict


def _claim_bits(summary: dict, samaf: str, baselines: list[str], rel_tol: float = 0.02) -> tuple[str, str]:
    s = summary.get("systems", {}).get(samaf, {})
    bps, bits = _num(s.get("bits_per_second")), _num(s.get("bits"))
    if bps is None:
        return "SAMAF bits per second missing from the summary", "not measured"
    rate = _num(s.get("hash_bits_per_second")) or bits  # the code per second of audio (missing: a 1-s window)
    window = bits / rate if bits and rate else 1.0
    others = [f"{b} {_fmt(_num(summary['systems'][b].get('bits_per_second')), 0)}" for b in baselines
              if b in summary.get("systems", {}) and _num(summary["systems"][b].get("bits_per_second")) is not None]
    per = (f" ({_fmt(bits, 0)} bits per {window:g}-s window" + (f", {_fmt(rate, 0)} bits per second of audio)"
                                                                 if abs(window - 1.0) > 1e-9 else ")")
           if bits is not None else "")
    evidence = (f"{samaf} stores {_fmt(bps, 1)} bits of hash per second of audio" + per
                + (f"; baselines: {', '.join(others)} bits/s" if others else ""))
    if rate is None or round(rate) not in (128, 256):
        return evidence + "; the code per second of audio is not 128 or 256 bits", "does not hold"
    if abs(bps - rate) <= rel_tol * rate:
        return evidence, "holds"
    return (evidence + f"; each {window:g}-s window has a {bits:.0f}-bit code, but windows overlap, so "
            f"{bps / bits:.1f} codes are stored per second"), "holds in part"


def paper_claims(summary: dict, samaf: str = "samaf",
                 baselines: Sequence[str] = BASELINES) -> pd.DataFrame:
    """The paper's claims, one row each, with the measured evidence and a verdict computed from it.

    Verdicts follow from intervals, not from point values ("not measured" when the summary lacks them):

    (a) *Identification better than all baselines.* For each baseline, the paired difference of top-1 (SAMAF minus
        the baseline, on the same test queries, each at its calibrated per-length thresholds) with its 95%
        cluster-bootstrap interval: "holds" when every interval lies above 0, "holds in part" when some do,
        "does not hold" when none does. Per-family point values are evidence only.
    (b) *Attribute classification better.* The same rule over every (task, baseline) pair, on the paired
        differences of balanced accuracy (intervals over speakers). Reference features (MFCC) are reported, not
        compared.
    (c) *128 or 256 bits per second.* "holds" when SAMAF's code comes to 128 or 256 bits per second of audio
        (``bits`` per window of ``window`` seconds: 128 bits per 1-s window, or per 0.5-s window 256 bits per
        second) and the codes stored per second of audio add up to that number (within 2%, i.e. windows that do
        not overlap); "holds in part" when the code's rate is 128 or 256 bits per second but overlapping windows
        store more; "does not hold" otherwise.

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



#: The per-system numbers of ``reports/headline.json``, the file ``dvc metrics show`` prints.
HEADLINE_KEYS = ("top1", "fpr", "f1")


def headline_metrics(summary: dict, digits: int = 4) -> dict:
    """The small headline of :func:`headline`'s dict: ``{system: {top1, fpr, f1}}``, rounded to ``digits``, for
    ``reports/headline.json`` (committed, read by ``dvc metrics show/diff`` and ``dvc exp show``)."""
    return {name: {k: (round(s[k], digits) if s.get(k) is not None else None) for k in HEADLINE_KEYS}
            for name, s in sorted(summary.get("systems", {}).items())}
