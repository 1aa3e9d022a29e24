"""Hand-made query manifests, results and joined tables shared by the evaluation tests."""

from __future__ import annotations

import numpy as np
import pandas as pd

from samaf_lib import identification as idn


def manifest(rows: list[dict], query_set: str = "test") -> pd.DataFrame:
    """Manifest rows from short dicts: {qid, pos, ref, off} plus optional distortion/level/length."""
    out = []
    for r in rows:
        out.append({"query_id": r["qid"], "set": r.get("set", query_set), "utterance_id": r.get("ref") or "u_neg",
                    "speaker_id": "s1", "ref_id": r.get("ref") if r["pos"] else "", "positive": r["pos"],
                    "offset_s": r.get("off", 1.0), "length_s": r.get("length", 3.0),
                    "distortion": r.get("dist", "clean"), "level": r.get("level", "-"), "seed": 0,
                    "path": f"x/{r['qid']}.wav"})
    return pd.DataFrame(out)


def results(rows: list[dict]) -> pd.DataFrame:
    """Results rows from {qid, pred, score, off}."""
    return pd.DataFrame([{"query_id": r["qid"], "ref_id": r.get("pred"), "offset_s": r.get("off", 1.0),
                          "score": r["score"], "seconds": r.get("seconds", 0.01)} for r in rows])


def table(spec: list[tuple], query_set: str = "test", system: str = "sys") -> pd.DataFrame:
    """Joined table from tuples (positive, expected_ref, predicted_ref, score[, distortion])."""
    man, res = [], []
    for i, t in enumerate(spec):
        pos, exp, pred, score = t[:4]
        dist = t[4] if len(t) > 4 else "clean"
        qid = f"q{i:04d}"
        man.append({"qid": qid, "pos": pos, "ref": exp, "dist": dist})
        res.append({"qid": qid, "pred": pred, "score": score})
    return idn.join_results(manifest(man, query_set), results(res), system)


def two_systems() -> tuple[pd.DataFrame, dict]:
    """Two systems (samaf right 90 %, dejavu 60 %) on test and calibration copies of one query set, and thresholds."""
    frames = []
    rng = np.random.default_rng(7)
    for system, p_right in (("samaf", 0.9), ("dejavu", 0.6)):
        spec = []
        for d in ("clean", "noise_white", "pitch"):
            for i in range(20):
                spec.append((1, f"u{i}", f"u{i}" if rng.random() < p_right else "x", float(rng.uniform(5, 10)), d))
                spec.append((0, None, "y", float(rng.uniform(0, 6)), d))
        frames.append(table(spec, system=system))
    calib_like = pd.concat(frames, ignore_index=True)
    calib = calib_like.assign(set="calib", query_id=calib_like["query_id"] + "c")
    df = pd.concat(frames + [calib], ignore_index=True)
    return df, {"samaf": 5.5, "dejavu": 5.5}
