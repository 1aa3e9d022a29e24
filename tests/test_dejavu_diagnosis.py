"""Diagnoses of Dejavu's defaults and of RAFS's bit flipping (samaf_lib.diagnosis) on small generated data."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from samaf_lib import diagnosis as dg
from samaf_lib.corpus.samples import make_speech
from samaf_lib.systems import dejavu as dj
from samaf_lib.systems.dejavu import Dejavu

SR = 16000
REFS = [f"ref{i:02d}" for i in range(8)]


@pytest.fixture(scope="module")
def refs(speech_bank) -> dict[str, np.ndarray]:
    return {k: speech_bank[k] for k in REFS}


@pytest.fixture(scope="module")
def queries(refs, outside_speech) -> pd.DataFrame:
    """Two excerpts (2 s and 4 s, off the frame grid) of each reference, and as many of speech in none."""
    rng = np.random.default_rng(5)
    others = [outside_speech, make_speech(1001), make_speech(1002), make_speech(1003)]
    rows = []
    for i, ref_id in enumerate(REFS):
        for length in (2.0, 4.0):
            n = int(length * SR)
            start = int(rng.integers(0, refs[ref_id].size - n))
            rows.append({"query_id": f"pos-{ref_id}-{length:g}", "ref_id": ref_id, "positive": 1,
                         "offset_s": start / SR, "length_s": length, "audio": refs[ref_id][start:start + n]})
            src = others[i % len(others)]
            start = int(rng.integers(0, src.size - n))
            rows.append({"query_id": f"neg-{i}-{length:g}", "ref_id": None, "positive": 0, "offset_s": start / SR,
                         "length_s": length, "audio": src[start:start + n]})
    df = pd.DataFrame(rows)
    df["set"], df["distortion"], df["level"] = "calib", "clean", "-"
    return df


@pytest.fixture(scope="module")
def table(refs, queries) -> pd.DataFrame:
    variants = {"defaults": {}, "min_hash_time_delta=1": {"min_hash_time_delta": 1},
                "neighborhood_size=10": {"neighborhood_size": 10}, "neighborhood_size=5": {"neighborhood_size": 5}}
    return dg.dejavu_diagnosis(refs, queries, SR, variants=variants).set_index("variant")


def test_defaults_are_the_2019_parameters(table):
    d = table.loc["defaults"]
    assert (d["n_fft"], d["hop_ms"], d["neighborhood_size"], d["min_hash_time_delta"], d["fan_value"]) == \
        (4096, 128.0, 20, 0, 15)
    assert d["neighborhood_s"] == pytest.approx(2.56)


def test_same_frame_pairs_are_there_by_default_and_gone_with_min_delta_one(table):
    assert 0 < table.loc["defaults", "same_frame_frac"] < 1
    assert table.loc["min_hash_time_delta=1", "same_frame_frac"] == 0.0
    # dropping them removes exactly those rows: the other pairs are the same (the partners of a peak do not change)
    kept = table.loc["defaults", "fingerprints"] * (1 - table.loc["defaults", "same_frame_frac"])
    assert table.loc["min_hash_time_delta=1", "fingerprints"] == pytest.approx(kept, abs=0.5)
    assert table.loc["min_hash_time_delta=1", "peaks_per_s"] == table.loc["defaults", "peaks_per_s"]


def test_structure_agrees_with_the_database(refs, table):
    system = Dejavu()
    for ref_id, audio in refs.items():
        system.add(ref_id, audio, SR)
    st = system.stats()
    assert table.loc["defaults", "fingerprints"] == st["fingerprints"]
    assert table.loc["defaults", "fingerprints_per_s"] == pytest.approx(st["fingerprints_per_second"])
    peaks = sum(len(dj.find_peaks(dj.spectrogram_db(dj.to_int16_scale(a), SR))) for a in refs.values())
    assert table.loc["defaults", "peaks_per_s"] == pytest.approx(peaks / (len(refs) * 8.0))
    assert table.loc["defaults", "distinct_hashes_per_s"] <= table.loc["defaults", "fingerprints_per_s"]


def test_peaks_per_second_fall_as_the_neighbourhood_grows(table):
    # a maximum over a larger neighbourhood is a maximum over every smaller one: the peaks of a larger radius are
    # a subset of those of a smaller one
    rates = [table.loc[f"neighborhood_size={r}", "peaks_per_s"] for r in (5, 10)] + \
        [table.loc["defaults", "peaks_per_s"]]
    assert np.all(np.diff(rates) < 0), rates


def test_identification_columns(table, queries):
    for name, row in table.iterrows():
        assert row["queries"] == len(queries)
        assert row["fpr"] <= 0.05 and row["fpr_pooled"] <= 0.05, name
        assert 0 <= row["top1"] <= row["top1_raw"] <= 1 and 0 <= row["top1_pooled"] <= row["top1_raw"]
        assert {"top1_2s", "top1_4s", "thr_2s", "thr_4s"} <= set(row.index)
        assert row["query_ms_median"] > 0
    d = table.loc["defaults"]
    assert d["pos_score_median"] > d["neg_score_median"]  # exact excerpts align more hashes than other speech


def test_test_queries_are_refused(refs, queries):
    bad = queries.copy()
    bad.loc[0, "set"] = "test"
    with pytest.raises(ValueError, match="calibration"):
        dg.dejavu_diagnosis(refs, bad, SR, variants={"defaults": {}})
    with pytest.raises(ValueError, match="calibration"):
        dg.rafs_flip_diagnosis(refs, bad, SR, flip_bits=(0,))
    with pytest.raises(ValueError, match="never 'test'"):
        dg.load_queries(bad, ".", SR, query_set="test")
    with pytest.raises(ValueError, match="audio"):
        dg.dejavu_diagnosis(refs, queries.drop(columns=["audio"]), SR)


def test_subsample_is_seeded_and_keeps_the_share_of_positives(queries):
    a = dg.subsample_queries(queries, 10, seed=3)
    b = dg.subsample_queries(queries, 10, seed=3)
    c = dg.subsample_queries(queries, 10, seed=4)
    assert list(a["query_id"]) == list(b["query_id"]) and len(a) == 10
    assert list(a["query_id"]) != list(c["query_id"])
    assert int(a["positive"].sum()) == 5 and list(a.index) == sorted(a.index)
    assert dg.subsample_queries(queries, None) is queries
    assert dg.subsample_queries(queries, 10_000) is queries


def test_rafs_flip_diagnosis(refs, queries):
    out = dg.rafs_flip_diagnosis(refs, queries, SR, flip_bits=(0, 3, 6))
    assert out["flip_bits"].tolist() == [0, 3, 6]
    assert out["lookups_per_subfingerprint"].tolist() == [1, 8, 64]
    assert (out["fpr"] <= 0.05).all() and (out["queries"] == len(queries)).all()
    # more toggled bits give a superset of candidate alignments, so the best BER of a query can only improve
    assert np.all(np.diff(out["pos_score_median"]) >= 0)
    with pytest.raises(ValueError, match="flip_bits"):
        dg.rafs_flip_diagnosis(refs, queries, SR, flip_bits=(13,))
