"""Does a negative query score higher because its voice is in the database? (docs/study.md, Data: the corpus tell)

A generated corpus can share material between different utterances of one voice (a speech engine that reuses
the same recorded consonant bursts, a small vocabulary): different recordings then hold identical spectral
landmarks, and a query from an utterance that is *not* in the database still finds exact matches in the
database's utterances of the same voice. Real speech has no such repetition. Two measurements show whether a
corpus has this tell:

* :func:`negatives_by_voice`, per system, from the evaluation's answers: the score distribution of the test
  negatives from unindexed utterances of database speakers (kind ``same_speaker``: their voice is in the database)
  beside the negatives from speakers the database never heard (kind ``other_speaker``), the false-positive rate of
  each at the calibrated thresholds, the share whose best candidate is an utterance of their own speaker (or, where
  the corpus says which language a voice speaks, of their own language), and the probability that a same-voice
  negative outscores an other-voice one (the AUC; 0.5 when the voice gives nothing away).
* :func:`landmark_overlap`, before any system runs: pairs of different utterances, of the same speaker or of
  different ones, scored as Dejavu scores a match (the most hashes of exactly equal value that agree on one time
  offset). Independent recordings share a handful by chance; a speech engine that repeats itself shares many more
  within a voice.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .audio import load_audio
from .identification import row_thresholds

#: The relations a negative's best candidate can have to the negative's own speaker.
RELATIONS = ("same_speaker", "same_language", "other")
#: Score quantiles reported per system and kind of negative.
QUANTILES = (0.5, 0.9, 0.95, 0.99)


def _relation(query_speaker: Any, ref_speaker: Any, query_language: Any, ref_language: Any) -> str | None:
    if ref_speaker is None or (isinstance(ref_speaker, float) and np.isnan(ref_speaker)):
        return None
    if ref_speaker == query_speaker:
        return "same_speaker"
    if query_language is not None and query_language == ref_language:
        return "same_language"
    return "other"


def auc(higher: np.ndarray, lower: np.ndarray) -> float:
    """P(a draw of ``higher`` exceeds a draw of ``lower``), ties counted one half (Mann-Whitney); NaN if empty."""
    a = np.asarray(higher, float)
    b = np.asarray(lower, float)
    a, b = a[np.isfinite(a)], b[np.isfinite(b)]
    if not a.size or not b.size:
        return float("nan")
    ranks = pd.Series(np.concatenate([a, b])).rank(method="average").to_numpy()
    return float((ranks[: a.size].sum() - a.size * (a.size + 1) / 2.0) / (a.size * b.size))


def negatives_by_voice(df_all: pd.DataFrame, meta: pd.DataFrame, thresholds: dict[str, Any],
                       set_name: str = "test") -> pd.DataFrame:
    """Per system and kind of negative: how the negatives scored, and whose utterance they best matched.

    Parameters
    ----------
    df_all : DataFrame
        :func:`samaf_lib.identification.join_results` of every system (columns ``system, set, kind, positive,
        speaker_id, length_s, ref_id, score``).
    meta : DataFrame
        The corpus metadata (``utterance_id, speaker_id``, and ``language`` where the corpus has it).
    thresholds : dict
        The calibrated thresholds (:func:`samaf_lib.identification.choose_thresholds`).
    set_name : str
        The query set whose negatives are measured.

    Returns
    -------
    DataFrame
        One row per system and kind (``same_speaker``, ``other_speaker``): ``n``, the score quantiles
        ``p50 p90 p95 p99`` and ``max`` (a missing score counts as 0), ``fpr`` at the thresholds, ``best_same_speaker``
        and ``best_same_language`` (shares of the negatives whose best candidate is an utterance of their own speaker,
        of another speaker of their language; NaN where the corpus names no language), and ``auc_same_vs_other``
        (on both rows of a system: P(a same-speaker negative outscores an other-speaker one)).
    """
    neg = df_all[(df_all["set"] == set_name) & (df_all["positive"].astype(int) == 0)].copy()
    if neg.empty:
        return pd.DataFrame()
    utt = meta.set_index("utterance_id")
    spk_lang = (meta.drop_duplicates("speaker_id").set_index("speaker_id")["language"]
                if "language" in meta.columns else None)
    ref_spk = neg["ref_id"].map(utt["speaker_id"])
    q_lang = neg["speaker_id"].map(spk_lang) if spk_lang is not None else pd.Series(None, index=neg.index)
    r_lang = ref_spk.map(spk_lang) if spk_lang is not None else pd.Series(None, index=neg.index)
    neg["relation"] = [_relation(q, r, ql, rl) for q, r, ql, rl in
                       zip(neg["speaker_id"], ref_spk.where(ref_spk.notna(), None), q_lang, r_lang)]
    neg["score0"] = neg["score"].fillna(0.0)
    neg["accepted"] = neg["ref_id"].notna() & (neg["score0"].to_numpy() >= row_thresholds(neg, thresholds))
    rows = []
    for system, g in neg.groupby("system", sort=False):
        same = g.loc[g["kind"] == "same_speaker", "score0"].to_numpy()
        other = g.loc[g["kind"] == "other_speaker", "score0"].to_numpy()
        a = auc(same, other)
        for kind, k in g.groupby("kind", sort=True):
            s = k["score0"].to_numpy()
            row = {"system": system, "kind": kind, "n": len(k)}
            row.update({f"p{int(q * 100)}": float(np.quantile(s, q)) for q in QUANTILES})
            row["max"] = float(s.max())
            row["fpr"] = float(k["accepted"].mean())
            row["best_same_speaker"] = float((k["relation"] == "same_speaker").mean())
            row["best_same_language"] = (float((k["relation"] == "same_language").mean()) if spk_lang is not None
                                         else float("nan"))
            acc = k[k["accepted"]]
            row["accepted_same_speaker"] = (float((acc["relation"] == "same_speaker").mean()) if len(acc)
                                            else float("nan"))
            row["auc_same_vs_other"] = a
            rows.append(row)
    return pd.DataFrame(rows)


def aligned_hashes(h1: np.ndarray, t1: np.ndarray, h2: np.ndarray, t2: np.ndarray) -> int:
    """Dejavu's match score of two fingerprints: the most equal hashes that agree on one offset ``t2 - t1``."""
    o1, o2 = np.argsort(h1, kind="stable"), np.argsort(h2, kind="stable")
    h1, t1, h2, t2 = h1[o1], t1[o1], h2[o2], t2[o2]
    common = np.intersect1d(h1, h2)
    if not common.size:
        return 0
    diffs = []
    for lo1, hi1, lo2, hi2 in zip(np.searchsorted(h1, common, "left"), np.searchsorted(h1, common, "right"),
                                  np.searchsorted(h2, common, "left"), np.searchsorted(h2, common, "right")):
        diffs.append((t2[lo2:hi2][None, :] - t1[lo1:hi1][:, None]).ravel())
    _, counts = np.unique(np.concatenate(diffs), return_counts=True)
    return int(counts.max())


def landmark_overlap(meta: pd.DataFrame, corpus_dir: str | os.PathLike, sr: int, seed: int,
                     max_utterances: int = 240) -> pd.DataFrame:
    """Pairs of different utterances scored as Dejavu scores a match (see the module docstring).

    Each of up to ``max_utterances`` utterances (a seeded choice) is paired with one other utterance of its own
    speaker and one of another speaker (of its own language too, where the corpus names languages), each drawn
    with the seed. Fingerprints are Dejavu's, with its 2019 parameters, of the whole recordings as stored.

    Returns
    -------
    DataFrame
        ``utterance_id, other_id, relation`` (``same_speaker``, ``same_language``, ``other``), ``aligned`` (the
        score) and ``hashes`` (the first utterance's fingerprint count).
    """
    from .systems.dejavu import Dejavu

    rng = np.random.default_rng(np.random.SeedSequence(int(seed), spawn_key=(41,)))
    meta = meta.reset_index(drop=True)
    pick = np.sort(rng.permutation(len(meta))[: int(max_utterances)])
    has_lang = "language" in meta.columns
    dj = Dejavu()
    cache: dict[str, tuple[np.ndarray, np.ndarray]] = {}

    def prints(i: int) -> tuple[np.ndarray, np.ndarray]:
        uid = meta.at[i, "utterance_id"]
        if uid not in cache:
            audio = load_audio(Path(corpus_dir) / meta.at[i, "path"], sr)
            h, t = dj.fingerprint(audio, sr)
            cache[uid] = (np.asarray(h), np.rint(np.asarray(t) * sr / dj.hop).astype(np.int64))
        return cache[uid]

    rows = []
    speakers = meta["speaker_id"].to_numpy()
    langs = meta["language"].to_numpy() if has_lang else None
    for i in pick:
        same = np.flatnonzero((speakers == speakers[i]) & (np.arange(len(meta)) != i))
        pools = [("same_speaker", same)]
        if has_lang:
            pools.append(("same_language", np.flatnonzero((langs == langs[i]) & (speakers != speakers[i]))))
            pools.append(("other", np.flatnonzero(langs != langs[i])))
        else:
            pools.append(("other", np.flatnonzero(speakers != speakers[i])))
        h1, t1 = prints(int(i))
        for relation, pool in pools:
            if not pool.size:
                continue
            j = int(pool[rng.integers(pool.size)])
            h2, t2 = prints(j)
            rows.append({"utterance_id": meta.at[i, "utterance_id"], "other_id": meta.at[j, "utterance_id"],
                         "relation": relation, "aligned": aligned_hashes(h1, t1, h2, t2), "hashes": int(h1.size)})
    return pd.DataFrame(rows, columns=["utterance_id", "other_id", "relation", "aligned", "hashes"])


def summarise_overlap(pairs: pd.DataFrame) -> pd.DataFrame:
    """Per relation: pairs, mean and quantiles (50, 90, 95, 99 %) of the aligned-hash score."""
    if pairs.empty:
        return pd.DataFrame()
    g = pairs.groupby("relation")["aligned"]
    out = g.agg(pairs="size", mean="mean")
    for q in QUANTILES:
        out[f"p{int(q * 100)}"] = g.quantile(q)
    order = [r for r in RELATIONS if r in out.index]
    return out.loc[order].reset_index()
