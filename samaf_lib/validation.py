"""Identification on validation data while SAMAF trains (docs/samaf.md, "Training").

Losses alone do not say whether a model identifies audio better: the first version of the study stopped on the
validation loss while identification got worse. So every epoch the model being trained answers a small
identification task made only of training-side data:

* the reference database is the clean ``val`` utterances (hashed every ``db_hop_s`` with the current model);
* the positive queries are distorted excerpts of those utterances at random off-grid offsets, at every condition
  and at the lengths ``lengths`` (1, 2, 3 s by default);
* the negative queries are excerpts of ``train`` utterances (never in this database).

The measure, ``val_top1``, is the study's headline measure on this set: the fraction of positives whose best
answer is the right utterance with a score above the threshold that lets through ``target_fpr`` of the negatives.
No test or unseen utterance is read, so choosing epochs, hops or settings on it never looks at the test queries.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from . import queries as qmod
from .audio import load_audio

#: Where the data stage writes the validation queries, relative to the data folder.
VALIDATION_DIR = "clusters/valid"


@dataclass
class ValidationSet:
    """Audio of the validation task, in memory.

    Attributes
    ----------
    sr : int
        Sample rate of every array.
    refs : list of (str, np.ndarray)
        Reference id and its clean float32 samples.
    queries : list of (np.ndarray, str or None, float, str)
        Samples, expected reference (``None`` for a negative), nominal length (s) and distortion name.
    """

    sr: int
    refs: list = field(default_factory=list)
    queries: list = field(default_factory=list)
    #: MFCC windows of the references and queries by feature settings and hops (:func:`identification_score`
    #: computes them once, not every epoch: they do not depend on the model)
    _windows: dict = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not self.refs:
            raise ValueError("validation set without references: the data stage found no 'val' utterances")
        if not any(r is not None for _, r, _, _ in self.queries) or not any(r is None for _, r, _, _ in self.queries):
            raise ValueError("validation set needs positive and negative queries; check data.frac_val/frac_train")


def build_validation_queries(meta: pd.DataFrame, corpus_dir: str | os.PathLike, out_dir: str | os.PathLike,
                             conditions: list, lengths: list[float], per_condition: int, seed: int,
                             sr: int = 16000, jobs: int = 1, progress: bool = False) -> pd.DataFrame:
    """Plan, render and write the validation queries; returns (and writes) their manifest ``queries.csv``.

    Positives come from ``val`` utterances and negatives from ``train`` ones
    (:func:`samaf_lib.queries.plan_queries` with ``query_set="val"``).
    """
    plan = qmod.plan_queries(meta, conditions, lengths, per_condition, seed, "val")
    manifest = qmod.render_queries(plan, corpus_dir, meta, out_dir, sr=sr, jobs=jobs, progress=progress)
    qmod.write_manifest(Path(out_dir) / "queries.csv", manifest)
    return manifest


def load_validation_set(meta: pd.DataFrame, corpus_dir: str | os.PathLike, query_dir: str | os.PathLike,
                        sr: int = 16000) -> ValidationSet:
    """Read the validation references (clean ``val`` utterances) and queries written by
    :func:`build_validation_queries`."""
    query_dir = Path(query_dir)
    manifest = qmod.read_manifest(query_dir / "queries.csv")
    refs = [(str(r.utterance_id), load_audio(Path(corpus_dir) / r.path, sr))
            for r in meta[meta["split"] == "val"].itertuples()]
    qs = []
    for q in manifest.itertuples():
        ref = str(q.ref_id) if int(q.positive) else None
        qs.append((load_audio(query_dir / q.path, sr), ref, float(q.length_s), str(q.distortion)))
    return ValidationSet(sr=sr, refs=refs, queries=qs)


def _task_windows(fp, vs: ValidationSet) -> tuple[list, list]:
    """The references' ``(ref_id, windows, times, seconds)`` and the queries' :meth:`~samaf_lib.systems.samaf.
    SAMAFSystem.query_windows` (``None`` for a query answered without hashing), for ``fp``'s features and hops;
    computed on the first call and kept in ``vs``."""
    key = (repr(fp.features), float(fp.params["db_hop_s"]), float(fp.params["query_hop_s"]))
    if key not in vs._windows:
        refs = [(ref_id, *fp.reference_windows(ref_id, audio, vs.sr)) for ref_id, audio in vs.refs]
        queries = [fp.query_windows(audio, vs.sr) for audio, _, _, _ in vs.queries]
        vs._windows[key] = (refs, queries)
    return vs._windows[key]


def threshold_at_fpr(negative_scores: np.ndarray, target_fpr: float) -> float:
    """The score a query must exceed so that at most ``target_fpr`` of ``negative_scores`` are accepted.

    Negatives with no answer count as ``-inf``. Returns ``-inf`` when no negative scored.
    """
    s = np.sort(np.asarray(negative_scores, np.float64))[::-1]
    if s.size == 0:
        return -np.inf
    allowed = int(np.floor(target_fpr * s.size + 1e-9))  # negatives that may pass
    return float(s[allowed]) if allowed < s.size else -np.inf


def identification_score(model, vs: ValidationSet, target_fpr: float = 0.05, **system_params) -> dict:
    """Answer the validation task with ``model`` inside a :class:`~samaf_lib.systems.samaf.SAMAFSystem`.

    Parameters
    ----------
    model : samaf_lib.model.SAMAF
        The model (copied, not changed).
    vs : ValidationSet
    target_fpr : float
        Share of negatives allowed above the threshold (0.05).
    **system_params
        Passed to the system (``db_hop_s``, ``query_hop_s``, ``k``, ``verify``, ...); ``min_score`` is 0.

    Returns
    -------
    dict
        ``val_top1`` (the measure, see the module docs), ``val_top1_raw`` (right answer, no threshold),
        ``val_fpr`` (share of negatives above the threshold), ``val_top1_<L>s`` per query length, and
        ``val_bits_per_second`` (what the database stores per second of audio).
    """
    from .systems.samaf import SAMAFSystem

    params = {k: v for k, v in system_params.items() if k != "min_score"}
    fp = SAMAFSystem(model=model, bits=model.bits, min_score=0.0, **params)
    refs, queries = _task_windows(fp, vs)
    # every window of the task goes through the encoder in one batched pass (the same codes as query by query, up
    # to the last float bit of a few activations); then each reference is stored and each query searched
    ref_codes = np.split(fp.encode(np.concatenate([w for _, w, _, _ in refs])),
                         np.cumsum([w.shape[0] for _, w, _, _ in refs])[:-1])
    for (ref_id, _, times, seconds), codes in zip(refs, ref_codes):
        fp.add_record(ref_id, {"codes": codes, "times": times.astype(np.float32), "seconds": np.float64(seconds)})
    hashed = [q for q in queries if q is not None]
    q_codes = iter(np.split(fp.encode(np.concatenate([w for w, _, _ in hashed])),
                            np.cumsum([w.shape[0] for w, _, _ in hashed])[:-1]) if hashed else [])
    rows = []
    for (_, ref, length, _), prepared in zip(vs.queries, queries):
        if prepared is None:  # shorter than one window or silent: no answer, as SAMAFSystem.identify
            rows.append((ref, None, -np.inf, length))
            continue
        m = fp.identify_codes(next(q_codes), prepared[1], prepared[2])
        score = float(m.score) if m.ref_id is not None else -np.inf
        rows.append((ref, m.ref_id, score, length))
    neg = np.array([s for r, _, s, _ in rows if r is None])
    thr = threshold_at_fpr(neg, target_fpr)
    pos = [(r == p, s > thr, L) for r, p, s, L in rows if r is not None]
    out = {
        "val_top1": float(np.mean([c and a for c, a, _ in pos])),
        "val_top1_raw": float(np.mean([c for c, _, _ in pos])),
        "val_fpr": float(np.mean(neg > thr)) if neg.size else 0.0,
        "val_bits_per_second": float(fp.stats()["bits_per_second"]),
    }
    for L in sorted({L for _, _, L in pos}):
        out[f"val_top1_{L:g}s"] = float(np.mean([c and a for c, a, LL in pos if LL == L]))
    return out
