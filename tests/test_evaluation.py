"""Evaluation: metrics on hand-made tables with known answers, thresholds, bootstrap, features, classification,
headline and the paper's claims."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from samaf_lib import evaluation as ev


# ---------------------------------------------------------------------------------------------------------------
# Hand-made tables
# ---------------------------------------------------------------------------------------------------------------

def _manifest(rows: list[dict], query_set: str = "test") -> pd.DataFrame:
    """Manifest rows from short dicts: {qid, pos, ref, off} plus optional distortion/level/length."""
    out = []
    for r in rows:
        out.append({"query_id": r["qid"], "set": r.get("set", query_set), "utterance_id": r.get("ref") or "u_neg",
                    "speaker_id": "s1", "ref_id": r.get("ref") if r["pos"] else "", "positive": r["pos"],
                    "offset_s": r.get("off", 1.0), "length_s": r.get("length", 3.0),
                    "distortion": r.get("dist", "clean"), "level": r.get("level", "-"), "seed": 0,
                    "path": f"x/{r['qid']}.wav"})
    return pd.DataFrame(out)


def _results(rows: list[dict]) -> pd.DataFrame:
    """Results rows from {qid, pred, score, off}."""
    return pd.DataFrame([{"query_id": r["qid"], "ref_id": r.get("pred"), "offset_s": r.get("off", 1.0),
                          "score": r["score"], "seconds": r.get("seconds", 0.01)} for r in rows])


def _table(spec: list[tuple], query_set: str = "test", system: str = "sys") -> pd.DataFrame:
    """Joined table from tuples (positive, expected_ref, predicted_ref, score[, distortion])."""
    man, res = [], []
    for i, t in enumerate(spec):
        pos, exp, pred, score = t[:4]
        dist = t[4] if len(t) > 4 else "clean"
        qid = f"q{i:04d}"
        man.append({"qid": qid, "pos": pos, "ref": exp, "dist": dist})
        res.append({"qid": qid, "pred": pred, "score": score})
    return ev.join_results(_manifest(man, query_set), _results(res), system)


def test_join_results_columns_correct_and_offset_error():
    man = _manifest([{"qid": "a", "pos": 1, "ref": "u1", "off": 2.0},
                     {"qid": "b", "pos": 1, "ref": "u2", "off": 1.0},
                     {"qid": "c", "pos": 0},
                     {"qid": "d", "pos": 1, "ref": "u3"}])
    res = _results([{"qid": "a", "pred": "u1", "score": 9, "off": 2.25},
                    {"qid": "b", "pred": "u9", "score": 5},
                    {"qid": "c", "pred": np.nan, "score": 0}])  # no row for "d"
    res["status"] = "ok"
    df = ev.join_results(man, res, "dejavu")
    assert list(df["status"].iloc[:3]) == ["ok"] * 3
    assert list(df["query_id"]) == ["a", "b", "c", "d"]
    assert set(df["system"]) == {"dejavu"}
    assert list(df["correct"]) == [True, False, False, False]
    assert df.loc[0, "offset_error_s"] == pytest.approx(0.25)
    assert np.isnan(df.loc[1, "offset_error_s"])
    assert df.loc[2, "ref_id"] is None and df.loc[2, "expected_ref_id"] is None
    assert list(df["answered"]) == [True, True, True, False]
    for c in ("expected_ref_id", "expected_offset_s", "distortion", "level", "length_s", "score", "seconds"):
        assert c in df.columns


def test_join_results_from_csv_files(tmp_path):
    from samaf_lib.queries import read_manifest

    man = _manifest([{"qid": "001", "pos": 1, "ref": "0042"}, {"qid": "002", "pos": 0}])
    man.to_csv(tmp_path / "queries.csv", index=False)
    _results([{"qid": "001", "pred": "0042", "score": 3}, {"qid": "002", "pred": "", "score": 0}]).to_csv(
        tmp_path / "r.csv", index=False)
    res = pd.read_csv(tmp_path / "r.csv", dtype={"query_id": str, "ref_id": str})
    df = ev.join_results(read_manifest(tmp_path / "queries.csv"), res, "rafs")
    assert list(df["correct"]) == [True, False]
    assert df.loc[1, "ref_id"] is None and df.loc[1, "expected_ref_id"] is None
    m = ev.identification_metrics(df, 1)
    assert m["top1"] == 1.0 and m["fpr"] == 0.0


def test_join_results_rejects_foreign_and_duplicate_queries():
    man = _manifest([{"qid": "a", "pos": 1, "ref": "u1"}])
    with pytest.raises(ValueError, match="not in the manifest"):
        ev.join_results(man, _results([{"qid": "zz", "pred": "u1", "score": 1}]), "s")
    with pytest.raises(ValueError, match="duplicated"):
        ev.join_results(man, _results([{"qid": "a", "pred": "u1", "score": 1}] * 2), "s")
    with pytest.raises(ValueError, match="missing columns"):
        ev.join_results(man, pd.DataFrame({"query_id": ["a"]}), "s")


# ---------------------------------------------------------------------------------------------------------------
# Identification metrics
# ---------------------------------------------------------------------------------------------------------------

def test_three_of_four_positives_correct_gives_top1_075_and_threshold_rejecting_negatives_gives_fpr_0():
    df = _table([(1, "u1", "u1", 10), (1, "u2", "u2", 8), (1, "u3", "u3", 7), (1, "u4", "u1", 9),
                 (0, None, "u1", 3), (0, None, "u2", 2), (0, None, None, 0)])
    m = ev.identification_metrics(df, threshold=5)
    assert m["top1"] == pytest.approx(0.75)
    assert m["fpr"] == 0.0
    assert m["n_pos"] == 4 and m["n_neg"] == 3
    # a threshold that accepts the negatives with a prediction
    assert ev.identification_metrics(df, threshold=1)["fpr"] == pytest.approx(2 / 3)
    # raising the threshold above one correct answer lowers top1 but not top1_raw
    m = ev.identification_metrics(df, threshold=7.5)
    assert m["top1"] == pytest.approx(0.5) and m["top1_raw"] == pytest.approx(0.75)


def test_precision_recall_f1_by_hand():
    # positives: 3 correct accepted, 1 wrong accepted, 2 correct rejected (low score)
    # negatives: 1 accepted, 2 rejected by score, 1 without a prediction
    df = _table([(1, "a", "a", 9), (1, "b", "b", 8), (1, "c", "c", 7), (1, "d", "x", 9),
                 (1, "e", "e", 2), (1, "f", "f", 1),
                 (0, None, "a", 6), (0, None, "b", 3), (0, None, "c", 1), (0, None, None, 0)])
    m = ev.identification_metrics(df, threshold=5)
    tp, fp, fn = 3, 1 + 1, 3
    assert (m["tp"], m["fp_pos"], m["fp_neg"], m["fn"]) == (3, 1, 1, 3)
    assert m["precision"] == pytest.approx(tp / (tp + fp))  # 0.6
    assert m["recall"] == pytest.approx(3 / 6)
    assert m["f1"] == pytest.approx(2 * 0.6 * 0.5 / 1.1)  # 6/11
    assert m["f1"] == pytest.approx(2 * tp / (2 * tp + fp + fn))
    assert m["fpr"] == pytest.approx(1 / 4)
    assert m["top1_raw"] == pytest.approx(5 / 6)


def test_offset_tolerance_counts_a_far_offset_as_a_miss():
    man = _manifest([{"qid": "a", "pos": 1, "ref": "u1", "off": 2.0}, {"qid": "b", "pos": 1, "ref": "u2", "off": 1.0}])
    res = _results([{"qid": "a", "pred": "u1", "score": 9, "off": 2.05},
                    {"qid": "b", "pred": "u2", "score": 9, "off": 3.0}])
    df = ev.join_results(man, res, "s")
    assert ev.identification_metrics(df, 1)["top1"] == 1.0
    m = ev.identification_metrics(df, 1, offset_tolerance_s=0.2)
    assert m["top1"] == 0.5 and m["fp_pos"] == 1


def test_empty_groups_give_nan_not_a_crash():
    only_pos = _table([(1, "a", "a", 5), (1, "b", "b", 5)])
    m = ev.identification_metrics(only_pos, 1)
    assert m["top1"] == 1.0 and math.isnan(m["fpr"]) and m["n_neg"] == 0
    only_neg = _table([(0, None, "a", 5), (0, None, None, 0)])
    m = ev.identification_metrics(only_neg, 10)
    assert math.isnan(m["top1"]) and math.isnan(m["recall"]) and math.isnan(m["precision"])
    assert math.isnan(m["f1"]) and m["fpr"] == 0.0
    empty = only_pos.iloc[:0]
    m = ev.identification_metrics(empty, 1)
    assert math.isnan(m["top1"]) and m["n_pos"] == 0
    assert all(math.isnan(v) for v in ev.bootstrap_ci(empty, 1, "top1", n=50))


# ---------------------------------------------------------------------------------------------------------------
# Thresholds
# ---------------------------------------------------------------------------------------------------------------

def _separable_calib(n: int = 40, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    spec = [(1, f"u{i}", f"u{i}", float(s)) for i, s in enumerate(rng.uniform(10, 20, n))]
    spec += [(0, None, f"u{i}", float(s)) for i, s in enumerate(rng.uniform(0, 6, n))]
    return _table(spec, query_set="calib")


def test_choose_threshold_refuses_test_rows():
    calib = _separable_calib()
    test = _table([(1, "a", "a", 5), (0, None, "a", 1)], query_set="test")
    with pytest.raises(ValueError, match="never read test queries"):
        ev.choose_threshold(pd.concat([calib, test], ignore_index=True))
    with pytest.raises(ValueError, match="never read test queries"):
        ev.choose_threshold(test, rule="max_f1")
    with pytest.raises(ValueError, match="set"):
        ev.choose_threshold(calib.drop(columns="set"))


def test_choose_threshold_refuses_several_systems_and_bad_arguments():
    a, b = _separable_calib(), _separable_calib()
    b["system"] = "other"
    with pytest.raises(ValueError, match="one threshold per system"):
        ev.choose_threshold(pd.concat([a, b]))
    with pytest.raises(ValueError, match="rule"):
        ev.choose_threshold(a, rule="youden")
    with pytest.raises(ValueError, match="target_fpr"):
        ev.choose_threshold(a, target_fpr=1.5)


@pytest.mark.parametrize("rule", ["fpr", "max_f1"])
def test_choose_threshold_separates_a_separable_calibration_set(rule):
    calib = _separable_calib()
    thr = ev.choose_threshold(calib, target_fpr=0.01, rule=rule)
    neg_max = calib.loc[calib["positive"] == 0, "score"].max()
    pos_min = calib.loc[calib["positive"] == 1, "score"].min()
    assert neg_max < thr <= pos_min
    m = ev.identification_metrics(calib, thr)
    assert m["top1"] == 1.0 and m["fpr"] == 0.0


def test_choose_threshold_meets_a_looser_target_with_a_lower_threshold():
    # negatives scoring 1..4, positives 3..6 (overlap): target 0.25 lets one negative through
    spec = [(0, None, "a", s) for s in (1, 2, 3, 4)] + [(1, f"u{s}", f"u{s}", s) for s in (3.5, 5, 6)]
    calib = _table(spec, query_set="calib")
    strict = ev.choose_threshold(calib, target_fpr=0.0)
    loose = ev.choose_threshold(calib, target_fpr=0.25)
    assert 4 < strict <= 5 and 3 < loose <= 3.5 + 1e-9 and loose < strict
    assert ev.identification_metrics(calib, loose)["fpr"] == pytest.approx(0.25)
    # nothing meets the target when the top score is a negative: everything rejected
    worst = _table([(0, None, "a", 9), (1, "b", "b", 2)], query_set="calib")
    thr = ev.choose_threshold(worst, target_fpr=0.0)
    assert thr > 9 and ev.identification_metrics(worst, thr)["fpr"] == 0.0


# ---------------------------------------------------------------------------------------------------------------
# Bootstrap
# ---------------------------------------------------------------------------------------------------------------

def _noisy_table(n_pos: int, n_neg: int, seed: int = 1) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    spec = []
    for i in range(n_pos):
        right = rng.random() < 0.8
        spec.append((1, f"u{i}", f"u{i}" if right else "wrong", float(rng.uniform(0, 10))))
    for i in range(n_neg):
        spec.append((0, None, f"u{i}", float(rng.uniform(0, 6))))
    return _table(spec)


@pytest.mark.parametrize("metric", ["top1", "fpr", "precision", "f1"])
def test_bootstrap_contains_the_estimate_and_narrows_with_more_data(metric):
    small, big = _noisy_table(60, 60), _noisy_table(1500, 1500)
    for df in (small, big):
        lo, hi = ev.bootstrap_ci(df, 4.0, metric, n=1000, seed=0)
        est = ev.identification_metrics(df, 4.0)[metric]
        assert lo <= est <= hi and lo < hi
    w_small = np.diff(ev.bootstrap_ci(small, 4.0, metric))[0]
    w_big = np.diff(ev.bootstrap_ci(big, 4.0, metric))[0]
    assert w_big < w_small / 2
    assert ev.bootstrap_ci(small, 4.0, metric, seed=3) == ev.bootstrap_ci(small, 4.0, metric, seed=3)


def test_bootstrap_matches_resampling_rows():
    df = _noisy_table(80, 50, seed=5)
    thr = 4.0
    lo, hi = ev.bootstrap_ci(df, thr, "f1", n=4000, seed=0)
    # naive stratified row resampling, written out independently
    pos = df["positive"].to_numpy() == 1
    acc = df["ref_id"].notna().to_numpy() & (df["score"].to_numpy() >= thr)
    hit = acc & df["correct"].to_numpy()
    rng = np.random.default_rng(1)
    ip = rng.choice(np.flatnonzero(pos), size=(2000, pos.sum()))
    ineg = rng.choice(np.flatnonzero(~pos), size=(2000, (~pos).sum()))
    tp = hit[ip].sum(1)
    fp = (acc & ~hit)[ip].sum(1) + acc[ineg].sum(1)
    vals = 2 * tp / (2 * tp + fp + (pos.sum() - tp))
    nlo, nhi = np.quantile(vals, [0.025, 0.975])
    assert abs(lo - nlo) < 0.03 and abs(hi - nhi) < 0.03


def test_bootstrap_rejects_unknown_metric():
    with pytest.raises(ValueError, match="metric"):
        ev.bootstrap_ci(_noisy_table(5, 5), 1.0, "auc")


# ---------------------------------------------------------------------------------------------------------------
# metrics_table and headline
# ---------------------------------------------------------------------------------------------------------------

def _two_systems() -> tuple[pd.DataFrame, dict]:
    frames = []
    rng = np.random.default_rng(7)
    for system, p_right in (("samaf", 0.9), ("dejavu", 0.6)):
        spec = []
        for d in ("clean", "noise_white", "pitch"):
            for i in range(20):
                spec.append((1, f"u{i}", f"u{i}" if rng.random() < p_right else "x", float(rng.uniform(5, 10)), d))
                spec.append((0, None, "y", float(rng.uniform(0, 6)), d))
        frames.append(_table(spec, system=system))
    calib_like = pd.concat(frames, ignore_index=True)
    calib = calib_like.assign(set="calib", query_id=calib_like["query_id"] + "c")
    df = pd.concat(frames + [calib], ignore_index=True)
    return df, {"samaf": 5.5, "dejavu": 5.5}


def test_metrics_table_one_row_per_group_with_intervals_and_counts():
    df, thr = _two_systems()
    t = ev.metrics_table(df, thr, by=("system", "distortion", "level", "length_s"), n_boot=200)
    assert len(t) == 2 * 3
    for c in ("top1", "top1_lo", "top1_hi", "fpr", "fpr_lo", "fpr_hi", "precision", "recall", "f1", "n_pos",
              "n_neg", "median_query_ms", "threshold"):
        assert c in t.columns
    assert (t["n_pos"] == 20).all() and (t["n_neg"] == 20).all()  # calibration rows left out
    assert (t["top1_lo"] <= t["top1"]).all() and (t["top1"] <= t["top1_hi"]).all()
    row = t[(t["system"] == "samaf") & (t["distortion"] == "pitch")].iloc[0]
    sub = df[(df["system"] == "samaf") & (df["distortion"] == "pitch") & (df["set"] == "test")]
    assert row["top1"] == pytest.approx(ev.identification_metrics(sub, 5.5)["top1"])
    assert row["median_query_ms"] == pytest.approx(10.0)
    with_nan = df.assign(level=df["level"].where(df["distortion"] != "clean", np.nan))
    t_nan = ev.metrics_table(with_nan, thr, by=("system", "distortion", "level"), n_boot=50)
    assert len(t_nan) == 6 and t_nan["level"].isna().sum() == 2  # missing values form their own group
    no_ci = ev.metrics_table(df, thr, by=("system",), ci=False)
    assert no_ci["top1_lo"].isna().all()
    with pytest.raises(ValueError, match="no threshold"):
        ev.metrics_table(df, {"samaf": 1.0})
    with pytest.raises(ValueError, match="system"):
        ev.metrics_table(df, thr, by=("distortion",))


def test_headline_rebuilds_overall_numbers_from_finer_rows_and_writes_valid_json(tmp_path):
    df, thr = _two_systems()
    fine = ev.metrics_table(df, thr, n_boot=100)
    overall = ev.metrics_table(df, thr, by=("system",), n_boot=100)
    stats = {"samaf": {"bits_per_second": 256.0, "bytes": 3200, "seconds": 100.0, "x_realtime": 900.0,
                       "params": {"bits": 128}},
             "dejavu": {"bits_per_second": 5000.0, "bytes": 64000, "seconds": 100.0}}
    h_fine = ev.headline(fine, stats)
    h_all = ev.headline(overall, stats, distortion_rows=fine)
    for s in ("samaf", "dejavu"):
        ref = overall[overall["system"] == s].iloc[0]
        for k in ("top1", "fpr", "f1"):
            assert h_fine["systems"][s][k] == pytest.approx(ref[k])
        assert h_all["systems"][s]["top1_lo"] == pytest.approx(ref["top1_lo"])
    assert h_fine["systems"]["samaf"]["top1_lo"] is None  # no interval from finer rows
    assert h_all["systems"]["samaf"]["bytes_per_second"] == pytest.approx(32.0)
    assert h_all["systems"]["samaf"]["bits"] == 128 and h_all["systems"]["dejavu"]["x_realtime"] is None
    assert set(h_all["top1_by_distortion"]["samaf"]) == {"clean", "noise_white", "pitch"}
    h_all["systems"]["samaf"]["nan_value"] = float("nan")
    path = tmp_path / "reports" / "metrics.json"
    ev.write_metrics(path, h_all)
    back = json.loads(path.read_text())  # strict JSON: no NaN literals
    assert "NaN" not in path.read_text()
    assert back["systems"]["samaf"]["nan_value"] is None
    assert back["systems"]["dejavu"]["top1"] == pytest.approx(h_all["systems"]["dejavu"]["top1"])


# ---------------------------------------------------------------------------------------------------------------
# Features
# ---------------------------------------------------------------------------------------------------------------

def test_bag_of_hashes_shape_normalisation_and_rate():
    rng = np.random.default_rng(0)
    codes = rng.integers(0, 2**63, 300, dtype=np.uint64)
    times = np.sort(rng.uniform(0, 3, 300))
    v = ev.bag_of_hashes(codes, times, 3.0, dim=512)
    assert v.shape == (512,) and v.dtype == np.float64
    assert np.linalg.norm(v) == pytest.approx(1.0)
    raw = ev.bag_of_hashes(codes, times, 3.0, dim=64, norm="none")
    assert raw.sum() == pytest.approx(100.0)  # 300 hashes over 3 s
    assert ev.bag_of_hashes(codes, times, 6.0, dim=64, norm="none").sum() == pytest.approx(50.0)
    assert np.allclose(ev.bag_of_hashes(codes, times, 3.0, dim=64, norm="log"), np.log1p(raw))
    assert np.array_equal(ev.bag_of_hashes(codes, times, 3.0), v)  # deterministic
    # structured codes (differing only in high bits) still spread over many buckets
    structured = (np.arange(200, dtype=np.uint64) << np.uint64(20))
    assert np.count_nonzero(ev.bag_of_hashes(structured, np.zeros(200), 1.0, dim=64)) > 32
    empty = ev.bag_of_hashes(np.zeros(0, np.uint64), np.zeros(0), 2.0, dim=16)
    assert empty.shape == (16,) and not empty.any()
    packed = rng.integers(0, 256, (40, 16), dtype=np.uint8)
    vp = ev.bag_of_hashes(packed, np.arange(40) * 0.5, 20.0, dim=128)
    assert vp.shape == (128,) and np.linalg.norm(vp) == pytest.approx(1.0)
    assert np.array_equal(ev.bag_of_hashes(packed[[0, 0]], [0, 1], 1.0, dim=128, norm="none").nonzero()[0],
                          ev.bag_of_hashes(packed[[0]], [0], 1.0, dim=128, norm="none").nonzero()[0])
    signed = ev.bag_of_hashes(np.array([-5, 7], np.int64), [0, 1], 1.0, dim=32)
    assert np.isfinite(signed).all()
    with pytest.raises(ValueError, match="length"):
        ev.bag_of_hashes(codes, times[:10], 3.0)
    with pytest.raises(ValueError, match="duration_s"):
        ev.bag_of_hashes(codes, times, 0.0)


def test_bit_features_packed_words_and_bits():
    bits = np.zeros((4, 128), dtype=bool)
    bits[:, 0] = True          # always one
    bits[:2, 5] = True         # half the windows
    f = ev.bit_features(np.packbits(bits, axis=1))
    assert f.shape == (128,)
    assert f[0] == 1.0 and f[5] == 0.5 and f[1] == 0.0
    assert np.array_equal(ev.bit_features(bits), f)
    assert np.array_equal(ev.bit_features(bits.astype(np.uint8), packed=False), f)
    words = np.array([1, 3, 0x80000000, 1], dtype=np.uint32)
    w = ev.bit_features(words)
    assert w.shape == (32,)
    assert w[0] == 0.75 and w[1] == 0.25 and w[31] == 0.25 and w[2:31].sum() == 0
    assert ev.bit_features(np.zeros(0, np.uint32)).shape == (32,)


def test_mfcc_mean_features_shape():
    sr = 16000
    t = np.arange(sr * 2) / sr
    audio = (0.5 * np.sin(2 * np.pi * 440 * t) + 0.05 * np.random.default_rng(0).standard_normal(t.size))
    f = ev.mfcc_mean_features(audio.astype(np.float32), sr)
    assert f.shape == (26,) and np.isfinite(f).all()
    assert (f[13:] >= 0).all()  # standard deviations
    low = ev.mfcc_mean_features((0.5 * np.sin(2 * np.pi * 150 * t)).astype(np.float32), sr)
    assert not np.allclose(f, low)


# ---------------------------------------------------------------------------------------------------------------
# Attribute classification
# ---------------------------------------------------------------------------------------------------------------

def _corpus_labels() -> pd.DataFrame:
    rows = []
    nats = ["fr", "de", "es", "it"]
    dists = ["clean", "noise_white", "pitch", "reverb"]
    for s in range(16):
        for u in range(3):
            for c in range(4):
                rows.append({"speaker_id": f"spk{s:02d}", "gender": "m" if s % 2 else "f",
                             "nationality": nats[(s // 2) % 4], "utterance_id": f"spk{s:02d}_u{u}",
                             "distortion": dists[(c + u + s) % 4], "seed": c})
    return pd.DataFrame(rows)


def _separable_features(labels: pd.DataFrame, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    parts = [pd.get_dummies(labels[c]).to_numpy(float) * 3 for c in ("speaker_id", "gender", "nationality",
                                                                       "distortion")]
    x = np.hstack(parts)
    return x + 0.3 * rng.standard_normal(x.shape)


def test_gender_and_nationality_folds_are_speaker_disjoint_and_others_utterance_disjoint():
    labels = _corpus_labels()
    for task, group in (("gender", "speaker_id"), ("nationality", "speaker_id"), ("speaker", "utterance_id"),
                        ("distortion", "utterance_id")):
        fs = ev.folds(labels, task, n_splits=5, seed=0)
        assert len(fs) == 5
        covered = np.concatenate([te for _, te in fs])
        assert np.array_equal(np.sort(covered), np.arange(len(labels)))  # every row tested exactly once
        for tr, te in fs:
            assert not set(labels[group].iloc[tr]) & set(labels[group].iloc[te])
    # the speaker task still tests every speaker: its classes appear in train and test
    for tr, te in ev.folds(labels, "speaker"):
        assert set(labels["speaker_id"].iloc[te]) <= set(labels["speaker_id"].iloc[tr])
    a = ev.folds(labels, "gender", seed=1)
    b = ev.folds(labels, "gender", seed=1)
    assert all(np.array_equal(x[1], y[1]) for x, y in zip(a, b))


def test_classify_attributes_beats_chance_on_separable_features_and_not_on_noise():
    labels = _corpus_labels()
    good = ev.classify_attributes(_separable_features(labels), labels, seed=0)
    assert len(good) == 4 * 2
    assert set(good["task"]) == set(ev.TASKS) and set(good["classifier"]) == {"logreg", "knn"}
    for _, r in good.iterrows():
        assert r["n_folds"] == 5
        assert r["accuracy"] > r["chance"] + 0.1, r.to_dict()
        assert r["chance"] >= r["chance_balanced"] - 1e-12
    lr = good[good["classifier"] == "logreg"].set_index("task")
    assert (lr["accuracy"] > 0.9).all()
    assert lr.loc["gender", "chance"] == pytest.approx(0.5, abs=0.15)
    noise = np.random.default_rng(1).standard_normal((len(labels), 26))
    bad = ev.classify_attributes(noise, labels, seed=0)
    for _, r in bad.iterrows():
        assert abs(r["balanced_accuracy"] - r["chance_balanced"]) < 0.2, r.to_dict()
    again = ev.classify_attributes(noise, labels, seed=0)
    pd.testing.assert_frame_equal(bad, again)


def test_classify_attributes_skips_a_task_it_cannot_cross_validate():
    labels = _corpus_labels()
    labels["gender"] = "f"  # one class
    labels.loc[labels["speaker_id"] == "spk00", "nationality"] = "unknown"
    out = ev.classify_attributes(_separable_features(labels), labels, tasks=("gender", "nationality"),
                                 classifiers=("logreg",))
    g = out[out["task"] == "gender"].iloc[0]
    assert math.isnan(g["accuracy"]) and g["n_folds"] == 0 and "skipped" in g["note"]
    n = out[out["task"] == "nationality"].iloc[0]
    assert n["accuracy"] > 0.9 and "without a label" in n["note"]
    assert n["n_samples"] == len(labels) - 12
    with pytest.raises(ValueError, match="one row per label"):
        ev.classify_attributes(np.zeros((3, 2)), labels)


# ---------------------------------------------------------------------------------------------------------------
# The paper's claims
# ---------------------------------------------------------------------------------------------------------------

def _summary(top1: dict, by_dist: dict | None = None, cls: dict | None = None, bps: float = 256.0,
             bits: float | None = 128) -> dict:
    systems = {k: {"top1": v, "fpr": 0.01, "bits_per_second": 1000.0} for k, v in top1.items()}
    if "samaf" in systems:
        systems["samaf"].update(bits_per_second=bps, bits=bits)
    out = {"systems": systems}
    if by_dist is not None:
        out["top1_by_distortion"] = by_dist
    if cls is not None:
        out["classification"] = cls
        out["classification_chance"] = {t: 0.1 for t in next(iter(cls.values()))}
    return out


def _verdicts(summary: dict) -> dict:
    t = ev.paper_claims(summary)
    assert list(t.columns) == ["claim", "statement", "evidence", "verdict"]
    assert all(isinstance(e, str) and e for e in t["evidence"])
    return dict(zip(t["claim"], t["verdict"]))


def test_paper_claims_identification_verdicts():
    fams = lambda s, d, r, p: {"samaf": s, "dejavu": d, "rafs": r, "panako": p}  # noqa: E731
    by_win = {k: {"noise": v1, "pitch": v2, "tempo": v3} for k, (v1, v2, v3) in
              {"samaf": (0.9, 0.8, 0.7), "dejavu": (0.5, 0.5, 0.9), "rafs": (0.4, 0.4, 0.4),
               "panako": (0.3, 0.3, 0.3)}.items()}
    assert _verdicts(_summary(fams(0.9, 0.7, 0.6, 0.5), by_win))["a"] == "holds"
    by_lose = {k: {"noise": v[0], "pitch": v[1], "tempo": v[2]} for k, v in
               {"samaf": (0.9, 0.1, 0.1), "dejavu": (0.5, 0.5, 0.9), "rafs": (0.4, 0.4, 0.4),
                "panako": (0.3, 0.3, 0.3)}.items()}
    assert _verdicts(_summary(fams(0.9, 0.7, 0.6, 0.5), by_lose))["a"] == "holds in part"
    assert _verdicts(_summary(fams(0.65, 0.7, 0.6, 0.5)))["a"] == "holds in part"
    assert _verdicts(_summary(fams(0.4, 0.7, 0.6, 0.5)))["a"] == "does not hold"
    assert _verdicts(_summary(fams(0.5, 0.5, 0.6, 0.7)))["a"] == "does not hold"  # a tie is not a win
    assert _verdicts(_summary({"dejavu": 0.5}))["a"] == "not measured"


def test_paper_claims_classification_and_bits_verdicts():
    top = {"samaf": 0.9, "dejavu": 0.5, "rafs": 0.5, "panako": 0.5}
    win = {"samaf": {"speaker": 0.8, "gender": 0.9}, "dejavu": {"speaker": 0.3, "gender": 0.6},
           "rafs": {"speaker": 0.5, "gender": 0.7}, "panako": {"speaker": 0.2, "gender": 0.5},
           "mfcc": {"speaker": 0.95, "gender": 0.99}}
    v = _verdicts(_summary(top, cls=win))
    assert v["b"] == "holds"
    part = {**win, "rafs": {"speaker": 0.85, "gender": 0.7}}
    assert _verdicts(_summary(top, cls=part))["b"] == "holds in part"
    lose = {k: ({"speaker": 0.1, "gender": 0.5} if k == "samaf" else d) for k, d in win.items()}
    assert _verdicts(_summary(top, cls=lose))["b"] == "does not hold"
    assert _verdicts(_summary(top))["b"] == "not measured"
    assert "mfcc" in ev.paper_claims(_summary(top, cls=win)).set_index("claim").loc["b", "evidence"]
    assert v["c"] == "holds"  # 256 bits/s
    assert _verdicts(_summary(top, bps=128.5))["c"] == "holds"
    assert _verdicts(_summary(top, bps=512.0, bits=128))["c"] == "holds in part"
    assert _verdicts(_summary(top, bps=512.0, bits=64))["c"] == "does not hold"
    assert _verdicts(_summary(top, bps=float("nan")))["c"] == "not measured"


def test_attribute_confusion_counts_every_out_of_fold_prediction():
    from samaf_lib.evaluation import attribute_confusion

    rng = np.random.default_rng(0)
    n = 60
    labels = pd.DataFrame({"speaker_id": [f"s{i % 12}" for i in range(n)],
                           "gender": ["m" if i % 12 < 6 else "f" for i in range(n)],
                           "nationality": "x", "distortion": "clean", "utterance_id": [f"u{i}" for i in range(n)]})
    X = rng.normal(size=(n, 4))
    X[:, 0] += np.where(labels.gender == "m", 4.0, -4.0)  # separable
    cm = attribute_confusion(X, labels, "gender")
    assert list(cm.index) == ["f", "m"] and list(cm.columns) == ["f", "m"]
    assert int(cm.to_numpy().sum()) == n
    assert np.trace(cm.to_numpy()) >= 0.9 * n
    assert attribute_confusion(X, labels, "nationality").empty  # one class: cannot be cross-validated
