"""Identification metrics on hand-made tables with known answers: joining, thresholds (pooled and per length),
negatives by kind, the query and cluster bootstraps, and paired differences."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from joined_tables import manifest as _manifest
from joined_tables import results as _results
from joined_tables import table as _table
from joined_tables import two_systems as _two_systems

from samaf_lib import identification as idn

# ---------------------------------------------------------------------------------------------------------------
# Hand-made tables
# ---------------------------------------------------------------------------------------------------------------

def test_join_results_columns_correct_and_offset_error():
    man = _manifest([{"qid": "a", "pos": 1, "ref": "u1", "off": 2.0},
                     {"qid": "b", "pos": 1, "ref": "u2", "off": 1.0},
                     {"qid": "c", "pos": 0},
                     {"qid": "d", "pos": 1, "ref": "u3"}])
    res = _results([{"qid": "a", "pred": "u1", "score": 9, "off": 2.25},
                    {"qid": "b", "pred": "u9", "score": 5},
                    {"qid": "c", "pred": np.nan, "score": 0}])  # no row for "d"
    res["status"] = "ok"
    df = idn.join_results(man, res, "dejavu")
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
    df = idn.join_results(read_manifest(tmp_path / "queries.csv"), res, "rafs")
    assert list(df["correct"]) == [True, False]
    assert df.loc[1, "ref_id"] is None and df.loc[1, "expected_ref_id"] is None
    m = idn.identification_metrics(df, 1)
    assert m["top1"] == 1.0 and m["fpr"] == 0.0


def test_join_results_rejects_foreign_and_duplicate_queries():
    man = _manifest([{"qid": "a", "pos": 1, "ref": "u1"}])
    with pytest.raises(ValueError, match="not in the manifest"):
        idn.join_results(man, _results([{"qid": "zz", "pred": "u1", "score": 1}]), "s")
    with pytest.raises(ValueError, match="duplicated"):
        idn.join_results(man, _results([{"qid": "a", "pred": "u1", "score": 1}] * 2), "s")
    with pytest.raises(ValueError, match="missing columns"):
        idn.join_results(man, pd.DataFrame({"query_id": ["a"]}), "s")


# ---------------------------------------------------------------------------------------------------------------
# Identification metrics
# ---------------------------------------------------------------------------------------------------------------

def test_three_of_four_positives_correct_gives_top1_075_and_threshold_rejecting_negatives_gives_fpr_0():
    df = _table([(1, "u1", "u1", 10), (1, "u2", "u2", 8), (1, "u3", "u3", 7), (1, "u4", "u1", 9),
                 (0, None, "u1", 3), (0, None, "u2", 2), (0, None, None, 0)])
    m = idn.identification_metrics(df, threshold=5)
    assert m["top1"] == pytest.approx(0.75)
    assert m["fpr"] == 0.0
    assert m["n_pos"] == 4 and m["n_neg"] == 3
    # a threshold that accepts the negatives with a prediction
    assert idn.identification_metrics(df, threshold=1)["fpr"] == pytest.approx(2 / 3)
    # raising the threshold above one correct answer lowers top1 but not top1_raw
    m = idn.identification_metrics(df, threshold=7.5)
    assert m["top1"] == pytest.approx(0.5) and m["top1_raw"] == pytest.approx(0.75)


def test_precision_recall_f1_by_hand():
    # positives: 3 correct accepted, 1 wrong accepted, 2 correct rejected (low score)
    # negatives: 1 accepted, 2 rejected by score, 1 without a prediction
    df = _table([(1, "a", "a", 9), (1, "b", "b", 8), (1, "c", "c", 7), (1, "d", "x", 9),
                 (1, "e", "e", 2), (1, "f", "f", 1),
                 (0, None, "a", 6), (0, None, "b", 3), (0, None, "c", 1), (0, None, None, 0)])
    m = idn.identification_metrics(df, threshold=5)
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
    df = idn.join_results(man, res, "s")
    assert idn.identification_metrics(df, 1)["top1"] == 1.0
    m = idn.identification_metrics(df, 1, offset_tolerance_s=0.2)
    assert m["top1"] == 0.5 and m["fp_pos"] == 1


def test_empty_groups_give_nan_not_a_crash():
    only_pos = _table([(1, "a", "a", 5), (1, "b", "b", 5)])
    m = idn.identification_metrics(only_pos, 1)
    assert m["top1"] == 1.0 and math.isnan(m["fpr"]) and m["n_neg"] == 0
    only_neg = _table([(0, None, "a", 5), (0, None, None, 0)])
    m = idn.identification_metrics(only_neg, 10)
    assert math.isnan(m["top1"]) and math.isnan(m["recall"]) and math.isnan(m["precision"])
    assert math.isnan(m["f1"]) and m["fpr"] == 0.0
    empty = only_pos.iloc[:0]
    m = idn.identification_metrics(empty, 1)
    assert math.isnan(m["top1"]) and m["n_pos"] == 0
    assert all(math.isnan(v) for v in idn.bootstrap_ci(empty, 1, "top1", n=50))


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
        idn.choose_threshold(pd.concat([calib, test], ignore_index=True))
    with pytest.raises(ValueError, match="never read test queries"):
        idn.choose_threshold(test, rule="max_f1")
    with pytest.raises(ValueError, match="set"):
        idn.choose_threshold(calib.drop(columns="set"))


def test_choose_threshold_refuses_several_systems_and_bad_arguments():
    a, b = _separable_calib(), _separable_calib()
    b["system"] = "other"
    with pytest.raises(ValueError, match="one threshold per system"):
        idn.choose_threshold(pd.concat([a, b]))
    with pytest.raises(ValueError, match="rule"):
        idn.choose_threshold(a, rule="youden")
    with pytest.raises(ValueError, match="target_fpr"):
        idn.choose_threshold(a, target_fpr=1.5)


@pytest.mark.parametrize("rule", ["fpr", "max_f1"])
def test_choose_threshold_separates_a_separable_calibration_set(rule):
    calib = _separable_calib()
    thr = idn.choose_threshold(calib, target_fpr=0.01, rule=rule)
    neg_max = calib.loc[calib["positive"] == 0, "score"].max()
    pos_min = calib.loc[calib["positive"] == 1, "score"].min()
    assert neg_max < thr <= pos_min
    m = idn.identification_metrics(calib, thr)
    assert m["top1"] == 1.0 and m["fpr"] == 0.0


def test_choose_threshold_meets_a_looser_target_with_a_lower_threshold():
    # negatives scoring 1..4, positives 3..6 (overlap): target 0.25 lets one negative through
    spec = [(0, None, "a", s) for s in (1, 2, 3, 4)] + [(1, f"u{s}", f"u{s}", s) for s in (3.5, 5, 6)]
    calib = _table(spec, query_set="calib")
    strict = idn.choose_threshold(calib, target_fpr=0.0)
    loose = idn.choose_threshold(calib, target_fpr=0.25)
    assert 4 < strict <= 5 and 3 < loose <= 3.5 + 1e-9 and loose < strict
    assert idn.identification_metrics(calib, loose)["fpr"] == pytest.approx(0.25)
    # nothing meets the target when the top score is a negative: everything rejected
    worst = _table([(0, None, "a", 9), (1, "b", "b", 2)], query_set="calib")
    thr = idn.choose_threshold(worst, target_fpr=0.0)
    assert thr > 9 and idn.identification_metrics(worst, thr)["fpr"] == 0.0


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
        lo, hi = idn.bootstrap_ci(df, 4.0, metric, n=1000, seed=0, ci="query")
        est = idn.identification_metrics(df, 4.0)[metric]
        assert lo <= est <= hi and lo < hi
    w_small = np.diff(idn.bootstrap_ci(small, 4.0, metric, ci="query"))[0]
    w_big = np.diff(idn.bootstrap_ci(big, 4.0, metric, ci="query"))[0]
    assert w_big < w_small / 2
    assert idn.bootstrap_ci(small, 4.0, metric, seed=3) == idn.bootstrap_ci(small, 4.0, metric, seed=3)


def test_bootstrap_matches_resampling_rows():
    df = _noisy_table(80, 50, seed=5)
    thr = 4.0
    lo, hi = idn.bootstrap_ci(df, thr, "f1", n=4000, seed=0, ci="query")
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
        idn.bootstrap_ci(_noisy_table(5, 5), 1.0, "auc")


# ---------------------------------------------------------------------------------------------------------------
# metrics_table and headline
# ---------------------------------------------------------------------------------------------------------------

def test_metrics_table_one_row_per_group_with_intervals_and_counts():
    df, thr = _two_systems()
    t = idn.metrics_table(df, thr, by=("system", "distortion", "level", "length_s"), n_boot=200, ci="query")
    assert len(t) == 2 * 3
    for c in ("top1", "top1_lo", "top1_hi", "fpr", "fpr_lo", "fpr_hi", "precision", "recall", "f1", "n_pos",
              "n_neg", "median_query_ms", "threshold"):
        assert c in t.columns
    assert (t["n_pos"] == 20).all() and (t["n_neg"] == 20).all()  # calibration rows left out
    assert (t["top1_lo"] <= t["top1"]).all() and (t["top1"] <= t["top1_hi"]).all()
    row = t[(t["system"] == "samaf") & (t["distortion"] == "pitch")].iloc[0]
    sub = df[(df["system"] == "samaf") & (df["distortion"] == "pitch") & (df["set"] == "test")]
    assert row["top1"] == pytest.approx(idn.identification_metrics(sub, 5.5)["top1"])
    assert row["median_query_ms"] == pytest.approx(10.0)
    with_nan = df.assign(level=df["level"].where(df["distortion"] != "clean", np.nan))
    t_nan = idn.metrics_table(with_nan, thr, by=("system", "distortion", "level"), n_boot=50, ci="query")
    assert len(t_nan) == 6 and t_nan["level"].isna().sum() == 2  # missing values form their own group
    no_ci = idn.metrics_table(df, thr, by=("system",), ci=False)
    assert no_ci["top1_lo"].isna().all()
    with pytest.raises(ValueError, match="no threshold"):
        idn.metrics_table(df, {"samaf": 1.0})
    with pytest.raises(ValueError, match="system"):
        idn.metrics_table(df, thr, by=("distortion",))


# ---------------------------------------------------------------------------------------------------------------
# Thresholds per query length and negatives by kind
# ---------------------------------------------------------------------------------------------------------------

def _length_table(query_set: str, seed: int, n: int = 60) -> pd.DataFrame:
    """Count-like scores: negatives score up to 2 x the length; positives 3 at 1 s and 12 at 5 s."""
    rng = np.random.default_rng(seed)
    man, res = [], []
    for length in (1.0, 5.0):
        for i in range(n):
            for pos in (1, 0):
                qid = f"{query_set}-{length:g}-{pos}-{i}"
                man.append({"qid": qid, "pos": pos, "ref": f"u{i}" if pos else None, "length": length,
                            "set": query_set})
                score = (3.0 if length == 1 else 12.0) if pos else float(rng.uniform(0, 2 * length))
                res.append({"qid": qid, "pred": f"u{i}", "score": score})
    m = _manifest(man, query_set)
    m["kind"] = np.where(m["positive"] == 1, "positive", "other_speaker")
    return idn.join_results(m, _results(res), "sys")


def test_per_length_thresholds_keep_short_positives_that_one_pooled_threshold_rejects():
    calib, test = _length_table("calib", 0), _length_table("test", 1)
    thr = idn.choose_thresholds(calib, target_fpr=0.05)
    t = thr["sys"]
    assert set(t) == {"pooled", "1", "5"}
    assert t["1"] < 3.0 < t["pooled"]  # the pooled threshold is set by the 5-s negatives (up to 10)
    both = pd.concat([calib, test])
    by_len = idn.metrics_table(both, thr, by=("system", "length_s"), ci=False).set_index("length_s")
    pooled = idn.metrics_table(both, idn.pooled_thresholds(thr), by=("system", "length_s"),
                               ci=False).set_index("length_s")
    assert by_len.loc[1.0, "top1"] == 1.0 and pooled.loc[1.0, "top1"] == 0.0
    assert by_len.loc[5.0, "top1"] == 1.0 and by_len.loc[1.0, "fpr"] <= 0.1 and by_len.loc[5.0, "fpr"] <= 0.1
    assert by_len.loc[1.0, "threshold"] == pytest.approx(t["1"])
    overall = idn.metrics_table(test, thr, by=("system",), ci=False).iloc[0]
    assert np.isnan(overall["threshold"])  # two thresholds in the group


def test_row_thresholds_fall_back_to_the_pooled_one_and_name_missing_systems():
    df = _length_table("test", 2, n=3)
    t = idn.row_thresholds(df, {"sys": {"pooled": 7.0, "1": 2.5}})
    assert set(t[df["length_s"] == 1.0]) == {2.5} and set(t[df["length_s"] == 5.0]) == {7.0}
    assert set(idn.row_thresholds(df, {"sys": 4.0})) == {4.0}
    with pytest.raises(ValueError, match="no threshold"):
        idn.row_thresholds(df, {"other": 1.0})


def test_negatives_selected_by_kind():
    man = _manifest([{"qid": "p", "pos": 1, "ref": "u1"}, {"qid": "n1", "pos": 0}, {"qid": "n2", "pos": 0}])
    man["kind"] = ["positive", "other_speaker", "same_speaker"]
    df = idn.join_results(man, _results([{"qid": q, "pred": "u1", "score": 5.0} for q in ("p", "n1", "n2")]), "s")
    assert list(idn.select_negatives(df, "other_speaker")["query_id"]) == ["p", "n1"]
    assert list(idn.select_negatives(df, None)["query_id"]) == ["p", "n1", "n2"]
    m = idn.metrics_table(df, {"s": 1.0}, by=("system",), ci=False, negatives="same_speaker").iloc[0]
    assert m["n_neg"] == 1 and m["fpr"] == 1.0
    with pytest.raises(ValueError, match="kind"):
        idn.select_negatives(df, "nonsense")
    old = idn.join_results(man.drop(columns="kind"), _results([{"qid": "p", "pred": "u1", "score": 1.0}]), "s")
    assert list(old["kind"]) == ["positive", "negative", "negative"]


# ---------------------------------------------------------------------------------------------------------------
# Cluster bootstrap and paired differences
# ---------------------------------------------------------------------------------------------------------------

def _clustered(n_utt: int, per_utt: int, hit_utts: set, system: str = "sys", neg_utts: int = 40,
               fp_utts: frozenset = frozenset()) -> pd.DataFrame:
    """Every query of an utterance has the same outcome: a hit when the utterance is in ``hit_utts``."""
    man, res = [], []
    for u in range(n_utt):
        for j in range(per_utt):
            qid = f"p{u}-{j}"
            man.append({"qid": qid, "pos": 1, "ref": f"u{u}"})
            res.append({"qid": qid, "pred": f"u{u}" if u in hit_utts else "wrong", "score": 9.0})
    for u in range(neg_utts):
        for j in range(per_utt):
            qid = f"n{u}-{j}"
            man.append({"qid": qid, "pos": 0})
            res.append({"qid": qid, "pred": "u0", "score": 9.0 if u in fp_utts else 1.0})
    m = _manifest(man)
    m.loc[m["positive"] == 0, "utterance_id"] = [f"neg{i // per_utt}" for i in range(neg_utts * per_utt)]
    return idn.join_results(m, _results(res), system)


def test_cluster_bootstrap_has_the_width_of_the_utterances_not_of_the_queries():
    # 100 utterances of 10 queries each, half of them found: top-1 0.5, and the right standard error is that of
    # 100 coin flips, sqrt(0.25 / 100) = 0.05 (95% interval about 0.196 wide), not of 1,000 (0.062 wide)
    df = _clustered(100, 10, set(range(50)))
    lo, hi = idn.bootstrap_ci(df, 5.0, "top1", n=4000, seed=0)
    assert lo < 0.5 < hi
    assert 0.196 * 0.85 < hi - lo < 0.196 * 1.15
    qlo, qhi = idn.bootstrap_ci(df, 5.0, "top1", n=4000, seed=0, ci="query")
    assert 0.062 * 0.8 < qhi - qlo < 0.062 * 1.2
    t = idn.metrics_table(df, {"sys": 5.0}, by=("system",), n_boot=4000).iloc[0]
    assert t["top1_hi"] - t["top1_lo"] == pytest.approx(hi - lo, abs=0.02)


def test_cluster_bootstrap_resamples_negatives_by_their_own_utterances():
    df = _clustered(20, 5, set(range(20)), neg_utts=40, fp_utts=frozenset(range(4)))  # fpr 0.1 over 40 sources
    lo, hi = idn.bootstrap_ci(df, 5.0, "fpr", n=4000, seed=0)
    se = np.sqrt(0.1 * 0.9 / 40)
    assert lo < 0.1 < hi and 3.92 * se * 0.8 < hi - lo < 3.92 * se * 1.25


def test_paired_difference_of_a_system_with_itself_is_exactly_zero():
    a = _clustered(30, 4, set(range(12)), "samaf")
    b = a.assign(system="copy")
    d = idn.paired_differences(pd.concat([a, b]), {"samaf": 5.0, "copy": 5.0}, n_boot=200).set_index("metric")
    assert d.loc["top1", "difference"] == 0 and d.loc["top1", "lo"] == 0 and d.loc["top1", "hi"] == 0


def test_paired_interval_sees_a_difference_that_separate_intervals_miss():
    # B finds 50 of 100 utterances; A finds the same 50 and 8 more: A - B = 0.08 on every paired resample >= 0
    a = _clustered(100, 5, set(range(58)), "samaf")
    b = _clustered(100, 5, set(range(50)), "rafs")
    thr = {"samaf": 5.0, "rafs": 5.0}
    d = idn.paired_differences(pd.concat([a, b]), thr, n_boot=2000, seed=1).set_index("metric")
    assert d.loc["top1", "difference"] == pytest.approx(0.08)
    assert 0 < d.loc["top1", "lo"] < 0.08 < d.loc["top1", "hi"]
    assert d.loc["top1", "p_not_better"] < 0.01
    sep = idn.metrics_table(pd.concat([a, b]), thr, by=("system",), n_boot=2000, seed=1).set_index("system")
    assert sep.loc["samaf", "top1_lo"] < sep.loc["rafs", "top1_hi"]  # unpaired intervals overlap
    by = idn.paired_differences(pd.concat([a, b]), thr, by=("length_s",), n_boot=100)
    assert list(by.columns[:3]) == ["system", "other", "length_s"]
    with pytest.raises(ValueError, match="same queries"):
        idn.paired_differences(pd.concat([a, b.iloc[1:]]), thr, n_boot=10)
