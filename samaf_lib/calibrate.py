"""Thresholds for a ``samaf`` database, chosen by the study's rule on the database's own kind of audio.

The study rejects a match whose score is below a threshold chosen on out-of-database calibration queries at a
target false-positive rate, one threshold per system and query length (docs/study.md, Protocol). A user's
database needs the same, on its own material: chance scores depend on the audio (speech or music), on the
channel and on how many references there are, so no threshold fixed in advance holds everywhere.

Out-of-database queries come from the database itself. Its references are split into folds (seeded); the excerpts
of each held-out fold are queried against a copy of the database without that fold, built from the stored
records (:meth:`reference_record`, nothing is fingerprinted again): audio of the same kind that the copy does not
hold. The threshold of each query length is :func:`samaf_lib.identification.choose_threshold` with the rule
``"fpr"`` on those negatives (about 150 per length), as in the study. Three excerpts of each reference and length
are also queried against the whole database, which holds them, and the share identified at the threshold is
reported (``accepted_in_database``): what the threshold costs in misses on clean excerpts. The negatives' scores
are kept, so that ``identify`` reports for any score the share of out-of-database queries that scored as high
(:func:`false_positive_rate`), a number that means the same for every system.

When several excerpts of a held-out reference name the same reference at the same alignment, the copy holds that
audio (the same recording indexed twice, a jingle in every file): those answers are copies, not chance matches,
and are left out of the negatives; the pair is listed in ``duplicates`` (``samaf dedup`` looks for every such
pair). Shared material that gives no consistent alignment still raises the thresholds; ``samaf info`` shows the
calibration and its counts.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

#: Query lengths (s) calibrated; a query is judged by the threshold of the longest of these not above its length.
LENGTHS_S = (1.0, 2.0, 3.0, 5.0, 10.0, 20.0)
#: Out-of-database excerpts wanted per length: the threshold at a 5 % rate is about the 95th percentile of their
#: scores, which a few dozen would leave to chance.
NEGATIVES_PER_LENGTH = 150
#: Excerpts per held-out reference and length, at seeded offsets: enough for :data:`NEGATIVES_PER_LENGTH`, within
#: these bounds (excerpts of one reference are not independent).
EXCERPTS_PER_REFERENCE = (3, 12)
#: Of those, how many are also queried against the whole database (``accepted_in_database``).
POSITIVES_PER_REFERENCE = 3
#: Fewest references a database needs to be calibrated (two folds of at least one).
MIN_REFERENCES = 2
#: References held out in all: every one in a small database, at most this many in a large one.
MAX_HELD_OUT = 64
#: Folds the held-out references are split into (each fold's copy of the database lacks only that fold).
MAX_FOLDS = 4
#: Fewest negatives a length needs for its own threshold (a length with fewer is left out).
MIN_NEGATIVES = 10
#: The study's target false-positive rate (params.yaml, evaluate.target_fpr).
TARGET_FPR = 0.05


def empty_like(system: Any) -> Any:
    """A new, empty system with ``system``'s parameters (and model, for SAMAF)."""
    cls = type(system)
    params = dict(system.params)
    if system.name == "samaf":
        out = cls(model=system.model, **{k: v for k, v in params.items() if k != "checkpoint"})
        out.params["checkpoint"] = params.get("checkpoint")
        return out
    return cls(**params)


def without(system: Any, names: set[str]) -> Any:
    """``system``'s database without the references ``names``: for a database kept in its file, a view of that
    file which leaves them out (``hiding``: nothing copied, so a calibration costs no memory at archive scale);
    otherwise a copy rebuilt from the stored records (nothing is fingerprinted again)."""
    if getattr(system, "in_place", False) and callable(getattr(system, "hiding", None)):
        return system.hiding(names)
    copy = empty_like(system)
    for rid in system.references():
        if rid not in names:
            copy.add_record(rid, system.reference_record(rid))
    return copy


def folds(references: list[str], seed: int) -> list[list[str]]:
    """The held-out references, split into folds: a seeded draw of at most :data:`MAX_HELD_OUT`."""
    rng = np.random.default_rng(seed)
    refs = sorted(references)
    chosen = [refs[i] for i in sorted(rng.permutation(len(refs))[:MAX_HELD_OUT])]
    n_folds = min(MAX_FOLDS, len(chosen))
    if len(chosen) == len(refs):  # everything held out: every fold must leave references in its copy
        n_folds = max(2, n_folds)
    order = rng.permutation(len(chosen))
    return [sorted(chosen[j] for j in order[k::n_folds]) for k in range(n_folds)]


def _excerpts(n_samples: int, sr: int, per_reference: int, rng: np.random.Generator) -> list[tuple[float, int, bool]]:
    """``(length, start, also a positive)`` of the excerpts of one reference."""
    out = []
    for length in LENGTHS_S:
        n = int(length * sr)
        if n > n_samples:
            break
        for j, start in enumerate(rng.integers(0, n_samples - n + 1, per_reference)):
            out.append((length, int(start), j < POSITIVES_PER_REFERENCE))
    return out


#: Excerpts of one held-out reference that must name the same reference at the same alignment to be a copy.
COPY_EXCERPTS = 3
#: How closely (s) their alignments (reference time minus excerpt time) must agree.
COPY_LAG_S = 0.3


def _copies(table: Any) -> np.ndarray:
    """Rows whose out-of-database answer is a copy of the held-out audio, not chance: at least
    :data:`COPY_EXCERPTS` excerpts of one held-out reference that do not overlap in time name the same reference at
    the same alignment (within :data:`COPY_LAG_S` of their median). A chance match points anywhere; a copy points
    to one place from every part of the recording. (Overlapping excerpts share their chance matches, so they do
    not count twice.)"""
    out = np.zeros(len(table), bool)
    named = table[table["neg_ref"].notna()]
    for _, group in named.groupby(["ref", "neg_ref"]):
        lag = group["neg_lag"].to_numpy(dtype=float)
        agree = group[np.abs(lag - np.median(lag)) <= COPY_LAG_S]
        disjoint, end = 0, -np.inf  # most excerpts without overlap: earliest end first
        for start, stop in sorted(zip(agree["start_s"], agree["start_s"] + agree["length"]), key=lambda x: x[1]):
            if start >= end:
                disjoint, end = disjoint + 1, stop
        if disjoint >= COPY_EXCERPTS:
            out[table.index.get_indexer(agree.index)] = True
    return out


def _answer(system: Any, audio: np.ndarray, sr: int) -> tuple[str | None, float, float]:
    """The best candidate and its score, with the system's own rejection threshold set aside (as the study's
    protocol does)."""
    from .audio import AudioError

    saved = system.params.get("min_score")
    system.params["min_score"] = 0.0
    try:
        m = system.identify(audio, sr)
    except AudioError:
        return None, float("nan"), float("nan")
    finally:
        system.params["min_score"] = saved
    return m.ref_id, float(m.score), float(m.offset_s)


def calibrate(system: Any, load: Callable[[str], np.ndarray | None], sr: int, target_fpr: float = TARGET_FPR,
              seed: int = 0, progress: Callable[[int], None] | None = None) -> dict[str, Any]:
    """Choose the thresholds of ``system``'s database (see the module's docstring).

    Parameters
    ----------
    system :
        The whole database (any system of :mod:`samaf_lib.systems` with records).
    load : callable
        Reference name -> its audio at ``sr`` (mono float), or ``None`` when it cannot be read any more (the
        reference is then left out of the held-out set).
    sr : int
    target_fpr : float
        Largest share of out-of-database queries accepted, in (0, 1).
    seed : int
        Draws the held-out references and the excerpts' offsets.
    progress : callable, optional
        Called with the number of queries answered since the last call.

    Returns
    -------
    dict
        ``target_fpr``, ``seed``, ``references``, ``held_out``, ``unreadable`` and ``lengths``: query length (s,
        as a string) -> ``threshold``, ``negatives``, ``accepted_in_database``, ``negative_scores`` (sorted).

    Raises
    ------
    ValueError
        Fewer than :data:`MIN_REFERENCES` references, a bad ``target_fpr``, or no readable held-out reference.
    """
    import pandas as pd

    from .identification import choose_threshold

    if not 0.0 < target_fpr < 1.0:
        raise ValueError(f"target_fpr must be in (0, 1), got {target_fpr}")
    references = system.references()
    if len(references) < MIN_REFERENCES:
        raise ValueError(f"a database needs at least {MIN_REFERENCES} references to be calibrated (it holds "
                         f"{len(references)}): its out-of-database queries are cut from references held out")
    rng = np.random.default_rng(seed)
    rows: list[dict[str, Any]] = []
    unreadable: list[str] = []
    plan = folds(references, seed)
    lo, hi = EXCERPTS_PER_REFERENCE
    per_reference = int(np.clip(-(-NEGATIVES_PER_LENGTH // sum(map(len, plan))), lo, hi))
    for fold in plan:
        copy = without(system, set(fold))
        for rid in fold:
            audio = load(rid)
            if audio is None:
                unreadable.append(rid)
                continue
            for length, start, positive in _excerpts(audio.size, sr, per_reference, rng):
                clip = audio[start:start + int(length * sr)]
                neg_ref, neg_score, neg_offset = _answer(copy, clip, sr)
                pos_ref, pos_score, _ = _answer(system, clip, sr) if positive else (None, float("nan"), 0.0)
                rows.append({"length": length, "ref": rid, "neg_ref": neg_ref, "neg_score": neg_score,
                             "neg_lag": neg_offset - start / sr, "start_s": start / sr,
                             "positive": positive, "pos_ok": pos_ref == rid, "pos_score": pos_score})
                if progress is not None:
                    progress(1 + positive)
    if not rows:
        raise ValueError("no held-out reference could be read again (moved or deleted files?); calibration needs "
                         "the indexed files")
    table = pd.DataFrame(rows)
    lengths: dict[str, Any] = {}
    copies = _copies(table)
    duplicates = sorted({(r, q) for r, q in zip(table["ref"][copies], table["neg_ref"][copies])})
    table = table[~copies]
    for length in LENGTHS_S:  # a length few references are long enough for is left out (see threshold())
        part = table[table["length"] == length]
        pos = part[part["positive"]]
        if len(part) < MIN_NEGATIVES:
            continue
        neg = pd.DataFrame({"set": "calib", "positive": 0, "correct": False,
                            "ref_id": part["neg_ref"].to_numpy(), "score": part["neg_score"].to_numpy()})
        threshold = choose_threshold(neg, target_fpr=target_fpr, rule="fpr")
        scores = np.sort(part["neg_score"].to_numpy(dtype=float)[part["neg_ref"].notna().to_numpy()])
        accepted = pos["pos_ok"].to_numpy() & (pos["pos_score"].to_numpy(dtype=float) >= threshold)
        lengths[f"{length:g}"] = {"threshold": float(threshold), "negatives": int(len(part)),
                                  "accepted_in_database": round(float(accepted.mean()), 4),
                                  "negative_scores": [round(float(s), 6) for s in scores]}
    if not lengths:
        raise ValueError(f"only {len(table)} out-of-database queries could be cut from the held-out references "
                         f"(at least {MIN_NEGATIVES} are needed); index more audio first")
    return {"target_fpr": float(target_fpr), "seed": int(seed), "rule": "fpr per query length",
            "excerpts_per_reference": per_reference,
            "references": len(references), "held_out": len({r["ref"] for r in rows}),
            "unreadable": sorted(unreadable), "duplicates": sorted(map(list, duplicates)), "lengths": lengths}


def _entry(calibration: dict[str, Any], seconds: float) -> tuple[str, dict[str, Any]]:
    keys = sorted(calibration["lengths"], key=float)
    usable = [k for k in keys if float(k) <= seconds + 1e-9]
    key = usable[-1] if usable else keys[0]
    return key, calibration["lengths"][key]


def threshold(calibration: dict[str, Any], seconds: float) -> tuple[float, str]:
    """The threshold for a query of ``seconds`` and the calibrated length it comes from (the longest not above
    ``seconds``; the shortest for a shorter query)."""
    key, entry = _entry(calibration, seconds)
    return float(entry["threshold"]), key


def false_positive_rate(calibration: dict[str, Any], seconds: float, score: float) -> float:
    """Share of the calibration's out-of-database queries (of the length :func:`threshold` picks) that named a
    reference with a score of at least ``score``."""
    _, entry = _entry(calibration, seconds)
    scores = np.asarray(entry["negative_scores"], dtype=float)
    if not entry["negatives"]:
        return float("nan")
    return float((scores.size - np.searchsorted(scores, score, side="left")) / entry["negatives"])
