"""Attribute classification: fingerprint summaries, speaker-disjoint folds, classifiers, bootstrap intervals and
paired differences, on hand-made features with known answers and on tiny generated clips."""

from __future__ import annotations

import importlib
import math

import numpy as np
import pandas as pd
import pytest

from samaf_lib import attributes as at
from samaf_lib import systems

SR = 16000


# ---------------------------------------------------------------------------------------------------------------
# Features from fingerprints
# ---------------------------------------------------------------------------------------------------------------

def test_bag_of_hashes_shape_normalisation_and_rate():
    rng = np.random.default_rng(0)
    codes = rng.integers(0, 2**63, 300, dtype=np.uint64)
    times = np.sort(rng.uniform(0, 3, 300))
    v = at.bag_of_hashes(codes, times, 3.0, dim=512)
    assert v.shape == (512,) and v.dtype == np.float64
    assert np.linalg.norm(v) == pytest.approx(1.0)
    raw = at.bag_of_hashes(codes, times, 3.0, dim=64, norm="none")
    assert raw.sum() == pytest.approx(100.0)  # 300 hashes over 3 s
    assert at.bag_of_hashes(codes, times, 6.0, dim=64, norm="none").sum() == pytest.approx(50.0)
    assert np.allclose(at.bag_of_hashes(codes, times, 3.0, dim=64, norm="log"), np.log1p(raw))
    assert np.array_equal(at.bag_of_hashes(codes, times, 3.0), v)  # deterministic
    # structured codes (differing only in high bits) still spread over many buckets
    structured = (np.arange(200, dtype=np.uint64) << np.uint64(20))
    assert np.count_nonzero(at.bag_of_hashes(structured, np.zeros(200), 1.0, dim=64)) > 32
    empty = at.bag_of_hashes(np.zeros(0, np.uint64), np.zeros(0), 2.0, dim=16)
    assert empty.shape == (16,) and not empty.any()
    packed = rng.integers(0, 256, (40, 16), dtype=np.uint8)
    vp = at.bag_of_hashes(packed, np.arange(40) * 0.5, 20.0, dim=128)
    assert vp.shape == (128,) and np.linalg.norm(vp) == pytest.approx(1.0)
    assert np.array_equal(at.bag_of_hashes(packed[[0, 0]], [0, 1], 1.0, dim=128, norm="none").nonzero()[0],
                          at.bag_of_hashes(packed[[0]], [0], 1.0, dim=128, norm="none").nonzero()[0])
    signed = at.bag_of_hashes(np.array([-5, 7], np.int64), [0, 1], 1.0, dim=32)
    assert np.isfinite(signed).all()
    with pytest.raises(ValueError, match="length"):
        at.bag_of_hashes(codes, times[:10], 3.0)
    with pytest.raises(ValueError, match="duration_s"):
        at.bag_of_hashes(codes, times, 0.0)


def test_bit_features_packed_words_and_bits():
    bits = np.zeros((4, 128), dtype=bool)
    bits[:, 0] = True          # always one
    bits[:2, 5] = True         # half the windows
    f = at.bit_features(np.packbits(bits, axis=1))
    assert f.shape == (128,)
    assert f[0] == 1.0 and f[5] == 0.5 and f[1] == 0.0
    assert np.array_equal(at.bit_features(bits), f)
    assert np.array_equal(at.bit_features(bits.astype(np.uint8), packed=False), f)
    words = np.array([1, 3, 0x80000000, 1], dtype=np.uint32)
    w = at.bit_features(words)
    assert w.shape == (32,)
    assert w[0] == 0.75 and w[1] == 0.25 and w[31] == 0.25 and w[2:31].sum() == 0
    assert at.bit_features(np.zeros(0, np.uint32)).shape == (32,)


def test_bit_change_features_count_flips_between_consecutive_codes():
    bits = np.zeros((5, 16), dtype=bool)
    bits[:, 0] = True                  # constant one: never flips
    bits[::2, 3] = True                # 1 0 1 0 1: flips at every step
    bits[3:, 7] = True                 # 0 0 0 1 1: one flip in four steps
    f = at.bit_change_features(np.packbits(bits, axis=1))
    assert f.shape == (16,)
    assert f[0] == 0.0 and f[3] == 1.0 and f[7] == 0.25 and f[[1, 2, 4, 5, 6]].sum() == 0
    assert np.array_equal(at.bit_change_features(bits), f)
    assert np.array_equal(at.bit_change_features(bits.astype(np.uint8), packed=False), f)
    words = np.array([0b01, 0b11, 0b01, 0b01], dtype=np.uint32)  # bit 1 flips twice in three steps
    w = at.bit_change_features(words)
    assert w.shape == (32,) and w[1] == pytest.approx(2 / 3) and w[0] == 0 and w.sum() == pytest.approx(2 / 3)
    # the order of the codes matters (a rate of ones would not see it)
    assert not np.array_equal(at.bit_change_features(words[[0, 2, 3, 1]]), w)
    assert not at.bit_change_features(words[:1]).any() and at.bit_change_features(words[:1]).shape == (32,)
    assert at.bit_change_features(np.packbits(bits, axis=1)[:1]).shape == (16,)


def test_mfcc_mean_features_shape():
    t = np.arange(SR * 2) / SR
    audio = (0.5 * np.sin(2 * np.pi * 440 * t) + 0.05 * np.random.default_rng(0).standard_normal(t.size))
    f = at.mfcc_mean_features(audio.astype(np.float32), SR)
    assert f.shape == (26,) and np.isfinite(f).all()
    assert (f[13:] >= 0).all()  # standard deviations
    low = at.mfcc_mean_features((0.5 * np.sin(2 * np.pi * 150 * t)).astype(np.float32), SR)
    assert not np.allclose(f, low)


# ---------------------------------------------------------------------------------------------------------------
# One summary per system
# ---------------------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def samaf_system(speech_bank):
    import torch

    from samaf_lib.features import Standardiser, mfcc
    from samaf_lib.model import SAMAF
    from samaf_lib.systems.samaf import SAMAFSystem

    torch.manual_seed(0)
    m = SAMAF(bits=128)
    st = Standardiser.fit(np.concatenate([mfcc(speech_bank[k], SR) for k in ("ref00", "ref01")]))
    m.set_standardiser(st.mean, st.std)
    return SAMAFSystem(model=m.eval())


def _event_point_systems() -> list:
    out = [systems.get("panako")]
    try:  # our own triplet design, beside Panako
        out.append(importlib.import_module("samaf_lib.systems.triplets").SYSTEM())
    except ImportError:
        pass
    return out


#: summary key -> its length for the systems of the study at their defaults
_LENGTHS = {"samaf": 256, "rafs": 64, "dejavu": 72, "panako": 145, "triplets": 136}


def test_each_system_summary_has_a_fixed_length_independent_of_the_clip_and_is_deterministic(speech_bank,
                                                                                                samaf_system):
    clips = [speech_bank["ref02"][:3 * SR], speech_bank["ref05"][:5 * SR], speech_bank["ref09"]]
    for s in [samaf_system, systems.get("dejavu"), systems.get("rafs"), *_event_point_systems()]:
        kind = at.summary_of(s)
        assert kind == s.name and kind in at.SUMMARIES
        vs = [at.system_features(s, a, SR) for a in clips]
        assert {v.shape for v in vs} == {(_LENGTHS[kind],)}, (kind, [v.shape for v in vs])
        assert all(v.dtype == np.float64 and np.isfinite(v).all() for v in vs)
        assert np.array_equal(at.system_features(s, clips[0], SR), vs[0]), kind  # deterministic
        assert not np.allclose(vs[0], vs[1]) and np.abs(vs[0]).sum() > 0, kind  # depends on the clip
        short = at.system_features(s, np.zeros(SR // 10, np.float32), SR)  # no fingerprint at all
        assert short.shape == vs[0].shape and not short.any(), kind


def test_summaries_are_rates_per_second(speech_bank):
    """A clip repeated twice has about the same Dejavu and event-point summary: counts per second, not per clip."""
    a = speech_bank["ref06"]
    twice = np.concatenate([a, a])
    for s in [systems.get("dejavu"), *_event_point_systems()]:
        one, two = at.system_features(s, a, SR), at.system_features(s, twice, SR)
        assert one.sum() > 0 and 0.8 < two.sum() / one.sum() < 1.25, (s.name, two.sum() / one.sum())
        assert 0.8 < two[0] / one[0] < 1.25, s.name  # peaks or event points per second


def test_dejavu_summary_is_built_from_exactly_the_hashed_landmarks(speech_bank):
    from samaf_lib.systems.dejavu import hash_pair

    s = systems.get("dejavu")
    audio = speech_bank["ref04"][:5 * SR]
    f1, f2, dt, n_peaks = at.dejavu_landmarks(s, audio, SR)
    codes, _ = s.fingerprint(audio, SR)
    assert f1.size == codes.size > 0 and n_peaks > 0
    hz = SR / s.params["n_fft"]
    mine = sorted(int(hash_pair(round(a / hz), round(b / hz), int(d))[:16], 16)
                  for a, b, d in zip(f1, f2, dt))
    assert mine == sorted(int(c) for c in codes)
    v = at.system_features(s, audio, SR)
    assert v[0] == pytest.approx(n_peaks / 5.0) and v[1] == pytest.approx(codes.size / 5.0)
    assert v[2:24].sum() == pytest.approx(codes.size / 5.0)  # every pair in one f1 band


def test_legacy_summaries_and_fallbacks(speech_bank, samaf_system):
    audio = speech_bank["ref07"][:4 * SR]
    codes, _ = samaf_system.fingerprint(audio, SR)
    new = at.system_features(samaf_system, audio, SR)
    old = at.system_features(samaf_system, audio, SR, summary="legacy")
    assert np.array_equal(old, at.bit_features(codes)) and np.array_equal(new[:128], old)
    assert np.array_equal(new[128:], at.bit_change_features(codes))
    rafs = systems.get("rafs")
    assert at.system_features(rafs, audio, SR, summary="legacy").shape == (32,)
    dj = systems.get("dejavu")
    c, t = dj.fingerprint(audio, SR)
    assert np.array_equal(at.system_features(dj, audio, SR, dim=64, summary="legacy"),
                          at.bag_of_hashes(c, t, 4.0, dim=64))
    with pytest.raises(ValueError, match="summary"):
        at.system_features(dj, audio, SR, summary="other")

    class Opaque:  # a system that exposes nothing but its hash codes
        name = "mystery"

        def fingerprint(self, audio, sr):
            return np.arange(10, dtype=np.int64), np.linspace(0, 1, 10)

    assert at.summary_of(Opaque()) == "bag"
    assert np.array_equal(at.system_features(Opaque(), audio, SR, dim=32),
                          at.bag_of_hashes(np.arange(10), np.linspace(0, 1, 10), 4.0, dim=32))

    class EventsOnly(Opaque):  # event points, but no triplets: event part, then the bag of its hashes
        name = "events"
        def __init__(self) -> None:
            self.params = {"bins_per_octave": 12, "n_octaves": 2}

        def event_points(self, audio, sr):
            return np.array([[0.1, 1.0], [0.5, 13.0], [0.9, 20.0]])

    v = at.system_features(EventsOnly(), audio, SR, dim=32)
    assert at.summary_of(EventsOnly()) == "panako"
    assert v.shape == (1 + 6 + 32,) and v[0] == pytest.approx(3 / 4.0)
    assert np.allclose(v[1:7] * 4.0, [1, 0, 0, 1, 0, 1])  # bins 1, 13, 20 of 12 per octave: 1/3-octave bands 0, 3, 5


# ---------------------------------------------------------------------------------------------------------------
# Attribute classification
# ---------------------------------------------------------------------------------------------------------------

def _corpus_labels(n_speakers: int = 16) -> pd.DataFrame:
    rows = []
    nats = ["fr", "de", "es", "it"]
    dists = ["clean", "noise_white", "pitch", "reverb"]
    for s in range(n_speakers):
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


def test_gender_nationality_and_distortion_folds_are_speaker_disjoint_and_speaker_folds_utterance_disjoint():
    labels = _corpus_labels()
    for task, group in (("gender", "speaker_id"), ("nationality", "speaker_id"), ("distortion", "speaker_id"),
                        ("speaker", "utterance_id")):
        fs = at.folds(labels, task, n_splits=5, seed=0)
        assert len(fs) == 5
        covered = np.concatenate([te for _, te in fs])
        assert np.array_equal(np.sort(covered), np.arange(len(labels)))  # every row tested exactly once
        for tr, te in fs:
            assert not set(labels[group].iloc[tr]) & set(labels[group].iloc[te]), task
    # the speaker task still tests every speaker: its classes appear in train and test
    for tr, te in at.folds(labels, "speaker"):
        assert set(labels["speaker_id"].iloc[te]) <= set(labels["speaker_id"].iloc[tr])
    a = at.folds(labels, "distortion", seed=1)
    b = at.folds(labels, "distortion", seed=1)
    assert all(np.array_equal(x[1], y[1]) for x, y in zip(a, b))


def test_classify_attributes_beats_chance_on_separable_features_and_not_on_noise():
    labels = _corpus_labels()
    good = at.classify_attributes(_separable_features(labels), labels, seed=0, n_boot=300)
    assert len(good) == 4 * 2
    assert set(good["task"]) == set(at.TASKS) and set(good["classifier"]) == {"logreg", "knn"}
    for _, r in good.iterrows():
        assert r["n_folds"] == 5
        assert r["accuracy"] > r["chance"] + 0.1, r.to_dict()
        assert r["chance"] >= r["chance_balanced"] - 1e-12
        assert r["balanced_accuracy_lo"] <= r["balanced_accuracy"] <= r["balanced_accuracy_hi"], r.to_dict()
    lr = good[good["classifier"] == "logreg"].set_index("task")
    assert (lr["accuracy"] > 0.9).all()
    assert lr.loc["gender", "chance"] == pytest.approx(0.5, abs=0.15)
    noise = np.random.default_rng(1).standard_normal((len(labels), 26))
    bad = at.classify_attributes(noise, labels, seed=0, n_boot=300)
    for _, r in bad.iterrows():
        assert abs(r["balanced_accuracy"] - r["chance_balanced"]) < 0.2, r.to_dict()
        assert r["balanced_accuracy_lo"] <= r["balanced_accuracy"] <= r["balanced_accuracy_hi"], r.to_dict()
        assert r["balanced_accuracy_lo"] < r["chance_balanced"] + 0.05 or r["task"] == "speaker", r.to_dict()
    again = at.classify_attributes(noise, labels, seed=0, n_boot=300)
    pd.testing.assert_frame_equal(bad, again)


def test_classify_attributes_skips_a_task_it_cannot_cross_validate():
    labels = _corpus_labels()
    labels["gender"] = "f"  # one class
    labels.loc[labels["speaker_id"] == "spk00", "nationality"] = "unknown"
    out = at.classify_attributes(_separable_features(labels), labels, tasks=("gender", "nationality"),
                                 classifiers=("logreg",), n_boot=100)
    g = out[out["task"] == "gender"].iloc[0]
    assert math.isnan(g["accuracy"]) and math.isnan(g["balanced_accuracy_lo"]) and g["n_folds"] == 0
    assert "skipped" in g["note"]
    n = out[out["task"] == "nationality"].iloc[0]
    assert n["accuracy"] > 0.9 and "without a label" in n["note"]
    assert n["n_samples"] == len(labels) - 12
    with pytest.raises(ValueError, match="one row per label"):
        at.classify_attributes(np.zeros((3, 2)), labels)
    with pytest.raises(ValueError, match="n_boot"):
        at.classify_attributes(_separable_features(labels), labels, n_boot=0)


def test_attribute_confusion_counts_every_out_of_fold_prediction():
    rng = np.random.default_rng(0)
    n = 60
    labels = pd.DataFrame({"speaker_id": [f"s{i % 12}" for i in range(n)],
                           "gender": ["m" if i % 12 < 6 else "f" for i in range(n)],
                           "nationality": "x", "distortion": "clean", "utterance_id": [f"u{i}" for i in range(n)]})
    X = rng.normal(size=(n, 4))
    X[:, 0] += np.where(labels.gender == "m", 4.0, -4.0)  # separable
    cm = at.attribute_confusion(X, labels, "gender")
    assert list(cm.index) == ["f", "m"] and list(cm.columns) == ["f", "m"]
    assert int(cm.to_numpy().sum()) == n
    assert np.trace(cm.to_numpy()) >= 0.9 * n
    assert at.attribute_confusion(X, labels, "nationality").empty  # one class: cannot be cross-validated


# ---------------------------------------------------------------------------------------------------------------
# Intervals and paired differences
# ---------------------------------------------------------------------------------------------------------------

def _predictions(n_groups: int, per_group: int = 10, p_right: float = 0.7, seed: int = 0):
    """Two classes; each group is either all right or all wrong (predictions correlated within a group)."""
    rng = np.random.default_rng(seed)
    groups = np.repeat(np.arange(n_groups), per_group)
    truth = np.where(np.arange(groups.size) % 2, "a", "b")
    right = np.repeat(rng.random(n_groups) < p_right, per_group)
    pred = np.where(right, truth, np.where(truth == "a", "b", "a"))
    return truth, pred, groups


def test_balanced_accuracy_interval_contains_the_estimate_shrinks_with_more_data_and_respects_groups():
    from sklearn.metrics import balanced_accuracy_score

    widths = []
    for n_groups in (10, 40, 160):
        truth, pred, groups = _predictions(n_groups)
        lo, hi = at.balanced_accuracy_interval(truth, pred, groups, n_boot=500, seed=0)
        assert lo <= balanced_accuracy_score(truth, pred) <= hi
        widths.append(hi - lo)
    assert widths[0] > widths[1] > widths[2] > 0
    # resampling groups, not rows: whole groups right or wrong make the interval wider than a row bootstrap
    truth, pred, groups = _predictions(40)
    lo_g, hi_g = at.balanced_accuracy_interval(truth, pred, groups, n_boot=500)
    lo_r, hi_r = at.balanced_accuracy_interval(truth, pred, np.arange(truth.size), n_boot=500)
    assert hi_g - lo_g > 1.5 * (hi_r - lo_r)
    assert at.balanced_accuracy_interval(truth, truth, groups, n_boot=50) == (1.0, 1.0)


def test_bootstrap_draws_groups_within_classes_when_each_group_holds_one_class():
    """Class "a" has only 2 groups (always right), class "b" 20 (half right): every resample keeps class "a", so
    the balanced accuracy never falls to class b's recall alone."""
    rng = np.random.default_rng(5)
    groups = np.repeat(np.arange(22), 10)
    truth = np.where(groups < 2, "a", "b")
    right = np.repeat(np.r_[True, True, rng.permutation(np.arange(20) < 10)], 10)
    pred = np.where(right, truth, np.where(truth == "a", "b", "a"))
    lo, hi = at.balanced_accuracy_interval(truth, pred, groups, n_boot=2000, seed=0)
    assert lo <= 0.75 <= hi and lo > 0.6  # (1 + b's recall) / 2, b's recall at least about 0.25


def test_paired_difference_of_a_feature_set_with_itself_is_exactly_zero():
    labels = _corpus_labels()
    x = _separable_features(labels)
    out = at.paired_attribute_differences({"samaf": x, "copy": x.copy()}, labels, n_boot=200)
    assert list(out["task"]) == list(at.TASKS) and set(out["other"]) == {"copy"}
    assert (out["difference"] == 0).all() and (out["lo"] == 0).all() and (out["hi"] == 0).all()
    assert (out["value"] == out["other_value"]).all() and (out["p_not_better"] == 1).all()


def test_an_informative_feature_set_beats_noise_with_lo_above_zero_and_matches_classify_attributes():
    labels = _corpus_labels(24)
    x = _separable_features(labels)
    noise = np.random.default_rng(3).standard_normal((len(labels), 20))
    out = at.paired_attribute_differences({"samaf": x, "noise": noise}, labels, n_boot=300, seed=0).set_index("task")
    assert (out["lo"] > 0).all(), out[["difference", "lo", "hi"]]
    assert (out["lo"] <= out["difference"]).all() and (out["difference"] <= out["hi"]).all()
    assert (out["p_not_better"] < 0.05).all()
    # the other way round: the noise is worse, with the same magnitude
    back = at.paired_attribute_differences({"noise": noise, "samaf": x}, labels, system="noise", n_boot=300)
    assert np.allclose(back.set_index("task")["difference"], -out["difference"])
    assert (back["hi"] < 0).all()
    # the same folds, classifier and bootstrap draws as classify_attributes
    single = at.classify_attributes(x, labels, classifiers=("logreg",), n_boot=300, seed=0).set_index("task")
    assert np.allclose(out["value"], single.loc[out.index, "balanced_accuracy"])
    with pytest.raises(ValueError, match="no feature set"):
        at.paired_attribute_differences({"noise": noise}, labels)
    with pytest.raises(ValueError, match="one row per label"):
        at.paired_attribute_differences({"samaf": x, "short": x[:10]}, labels)


def test_each_out_of_fold_model_is_fitted_once_per_features_labels_and_folds(monkeypatch):
    labels = _corpus_labels()
    x = _separable_features(labels)
    monkeypatch.setattr(at, "_FITTED", type(at._FITTED)())
    fitted = []
    make = at._classifier

    def counting(name, n_train):
        fitted.append(name)
        return make(name, n_train)

    monkeypatch.setattr(at, "_classifier", counting)
    table = at.classify_attributes(x, labels, tasks=("gender", "distortion"), n_boot=100, seed=0)
    first = len(fitted)
    assert first == 2 * 2 * 5 + 2  # tasks x classifiers x folds, and the two name checks
    paired = at.paired_attribute_differences({"samaf": x, "copy": x.copy()}, labels, tasks=("gender", "distortion"),
                                             n_boot=100, seed=0)
    confusion = at.attribute_confusion(x, labels, "gender", "logreg", seed=0)
    assert len(fitted) == first + 1  # the name check: every logreg fit was remembered
    assert np.allclose(paired.set_index("task")["value"],
                       table[table.classifier == "logreg"].set_index("task").loc[["gender", "distortion"],
                                                                                "balanced_accuracy"])
    assert confusion.to_numpy().sum() == len(labels)
    # other features, labels or folds are fitted again, and a returned prediction cannot change what is kept
    y = labels["gender"].astype(str).to_numpy()
    fs = at.folds(labels, "gender", seed=0)
    a = at._out_of_fold(x, y, fs, "logreg")
    a[:] = "changed"
    assert (at._out_of_fold(x, y, fs, "logreg") != "changed").all()
    n = len(fitted)
    at._out_of_fold(x + 1e-9, y, fs, "logreg")
    at._out_of_fold(x, y, at.folds(labels, "gender", seed=1), "logreg")
    at._out_of_fold(x, y[::-1].copy(), fs, "logreg")
    assert len(fitted) == n + 3 * len(fs)


def test_paired_differences_with_the_classifier_chosen_by_inner_cross_validation():
    labels = _corpus_labels()
    x = _separable_features(labels)
    noise = np.random.default_rng(4).standard_normal((len(labels), 10))
    out = at.paired_attribute_differences({"samaf": x, "noise": noise}, labels, tasks=("gender", "distortion"),
                                          classifier="inner", n_boot=200)
    assert (out["classifier"] == "inner").all() and (out["lo"] > 0).all()
    assert out["note"].str.contains("classifiers per fold").all()
    with pytest.raises(ValueError, match="classifier"):
        at.paired_attribute_differences({"samaf": x, "noise": noise}, labels, classifier="forest")
