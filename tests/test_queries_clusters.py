"""The shared query set and the training clusters."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from samaf_lib import clusters as cl
from samaf_lib import queries
from samaf_lib.audio import load_audio, write_audio
from samaf_lib.features import mfcc

SR = 16000


@pytest.fixture(scope="module")
def tiny_corpus(tmp_path_factory, speech_bank):
    root = tmp_path_factory.mktemp("corpus")
    rows = []
    splits = ["train"] * 8 + ["val"] * 4 + ["test"] * 8 + ["unseen"] * 4
    for (ref, audio), split in zip(speech_bank.items(), splits):
        write_audio(root / f"{ref}.wav", audio, SR)
        rows.append({"utterance_id": ref, "speaker_id": f"s{ref[-1]}", "split": split, "path": f"{ref}.wav",
                     "duration_s": audio.size / SR})
    return root, pd.DataFrame(rows)


CONDS = [("noise_white", 10), ("tempo", 1.1), ("reverb", "small")]


def test_plan_is_deterministic_and_balanced(tiny_corpus):
    _, meta = tiny_corpus
    a = queries.plan_queries(meta, CONDS, [1.0, 3.0], 3, seed=5)
    b = queries.plan_queries(meta, CONDS, [1.0, 3.0], 3, seed=5)
    pd.testing.assert_frame_equal(a, b)
    assert len(a) == 4 * 2 * 3 * 2  # (clean + 3) conditions x 2 lengths x 3 x pos/neg
    assert a.query_id.is_unique
    split = dict(zip(meta.utterance_id, meta.split))
    assert set(a[a.positive == 1].utterance_id.map(split)) == {"test"}
    assert set(a[a.positive == 0].utterance_id.map(split)) == {"unseen"}
    assert (a[a.positive == 1].ref_id == a[a.positive == 1].utterance_id).all()
    assert (a[a.positive == 0].ref_id == "").all()
    dur = dict(zip(meta.utterance_id, meta.duration_s))
    assert (a.offset_s + a.length_s <= a.utterance_id.map(dur) + 1e-9).all()
    frac = (a.offset_s % 0.5)
    assert ((frac >= 0.05 - 1e-9) & (frac <= 0.45 + 1e-9)).all(), "offsets must stay off the 0.5-s grid"


def test_calibration_set_is_separate(tiny_corpus):
    _, meta = tiny_corpus
    t = queries.plan_queries(meta, CONDS, [3.0], 3, seed=5, query_set="test")
    c = queries.plan_queries(meta, CONDS, [3.0], 3, seed=5, query_set="calib")
    split = dict(zip(meta.utterance_id, meta.split))
    assert set(c[c.positive == 0].utterance_id.map(split)) == {"val"}
    assert not set(t.query_id) & set(c.query_id)
    assert not np.allclose(t.offset_s.to_numpy(), c.offset_s.to_numpy())


def test_plan_rejects_bad_values(tiny_corpus):
    _, meta = tiny_corpus
    with pytest.raises(ValueError, match="per_condition"):
        queries.plan_queries(meta, CONDS, [1.0], 0, seed=1)
    with pytest.raises(ValueError, match="lengths"):
        queries.parse_lengths("1,-2")
    with pytest.raises(ValueError, match="unseen"):
        queries.plan_queries(meta[meta.split != "unseen"], CONDS, [1.0], 1, seed=1)


def test_render_writes_distorted_excerpts(tiny_corpus, tmp_path):
    root, meta = tiny_corpus
    plan = queries.plan_queries(meta, CONDS, [2.0], 1, seed=3)
    man = queries.render_queries(plan, root, meta, tmp_path, sr=SR, progress=False, jobs=2)
    assert len(man) == len(plan)
    queries.write_manifest(tmp_path / "queries.csv", man)
    back = queries.read_manifest(tmp_path / "queries.csv")
    assert back.ref_id.isna().sum() == (back.positive == 0).sum()
    for row in man.itertuples():
        a = load_audio(tmp_path / row.path, SR)
        expected = 2.0 / 1.1 if row.distortion == "tempo" else 2.0
        assert abs(a.size / SR - expected) < 0.01
        if row.distortion == "clean":
            src = load_audio(root / f"{row.utterance_id}.wav", SR)
            start = int(round(row.offset_s * SR))
            np.testing.assert_allclose(a, src[start:start + a.size], atol=1e-4)


def test_queries_and_clusters_on_dask_equal_the_serial_ones(tiny_corpus, tmp_path):
    """The data stage with ``parallel.dask`` set writes the same query files and cluster windows as serially."""
    pytest.importorskip("distributed")
    root, meta = tiny_corpus
    plan = queries.plan_queries(meta, CONDS, [1.0, 2.0], 1, seed=4)
    serial = queries.render_queries(plan, root, meta, tmp_path / "serial", sr=SR, progress=False)
    on_dask = queries.render_queries(plan, root, meta, tmp_path / "dask", sr=SR, progress=False, dask="local:2")
    pd.testing.assert_frame_equal(serial, on_dask)
    for row in serial.itertuples():
        assert (tmp_path / "serial" / row.path).read_bytes() == (tmp_path / "dask" / row.path).read_bytes()
    specs = cl.plan_clusters(meta, "train", 5, 3, 0.1, CONDS, seed=2)
    np.testing.assert_array_equal(cl.build_clusters(specs, meta, root, SR, progress=False),
                                  cl.build_clusters(specs, meta, root, SR, progress=False, dask="local:2"))


def test_clusters_shape_and_members(tiny_corpus):
    root, meta = tiny_corpus
    specs = cl.plan_clusters(meta, "train", 6, 4, 0.1, CONDS, seed=2)
    assert specs == cl.plan_clusters(meta, "train", 6, 4, 0.1, CONDS, seed=2)
    split = dict(zip(meta.utterance_id, meta.split))
    assert {split[s.utterance_id] for s in specs} == {"train"}
    X = cl.build_clusters(specs, meta, root, SR, progress=False)
    assert X.shape == (6, 4, 100, 13) and np.isfinite(X).all()
    s = specs[0]
    audio = load_audio(root / f"{s.utterance_id}.wav", SR)
    a = int(round(s.start_s * SR))
    np.testing.assert_allclose(X[0, 0], mfcc(audio[a:a + SR], SR, hop_s=1.0)[0], rtol=1e-4, atol=1e-3)
    # distorted copies differ from the clean member but stay closer to it than another cluster's clean segment
    d_copy = np.abs(X[:, 1:] - X[:, :1]).mean()
    d_other = np.abs(X[1:, 0] - X[:-1, 0]).mean()
    assert 0 < d_copy < d_other


def test_cluster_files_round_trip_and_reject_nan(tiny_corpus, tmp_path):
    root, meta = tiny_corpus
    specs = cl.plan_clusters(meta, "train", 3, 2, 0.1, CONDS, seed=2)
    X = cl.build_clusters(specs, meta, root, SR, progress=False)
    cl.save_clusters(tmp_path / "c.npz", X, specs)
    np.testing.assert_array_equal(cl.load_clusters(tmp_path / "c.npz"), X)
    X[0, 0, 0, 0] = np.nan
    cl.save_clusters(tmp_path / "bad.npz", X, specs)
    with pytest.raises(ValueError, match="NaN"):
        cl.load_clusters(tmp_path / "bad.npz")
    with pytest.raises(ValueError, match="cluster_size"):
        cl.plan_clusters(meta, "train", 3, 1, 0.1, CONDS, seed=2)


def _with_outside(meta: pd.DataFrame) -> pd.DataFrame:
    """The tiny corpus with two more speakers held out: one for test negatives, one for calibration negatives."""
    extra = meta[meta.split == "train"].head(4).copy()
    extra["utterance_id"] = [f"out{i}" for i in range(4)]
    extra["speaker_id"] = ["sx", "sx", "sy", "sy"]
    extra["split"] = ["outside_test", "outside_test", "outside_calib", "outside_calib"]
    return pd.concat([meta, extra], ignore_index=True)


def test_negatives_come_from_outside_speakers_and_same_speaker_negatives_are_kept_apart(tiny_corpus):
    _, meta = tiny_corpus
    meta = _with_outside(meta)
    t = queries.plan_queries(meta, CONDS, [1.0, 3.0], 3, seed=5, same_speaker_per_condition=2)
    c = queries.plan_queries(meta, CONDS, [1.0, 3.0], 3, seed=5, query_set="calib")
    split = dict(zip(meta.utterance_id, meta.split))
    assert set(t[t.kind == "other_speaker"].utterance_id.map(split)) == {"outside_test"}
    assert set(t[t.kind == "same_speaker"].utterance_id.map(split)) == {"unseen"}
    assert set(c[c.positive == 0].utterance_id.map(split)) == {"outside_calib"}
    assert set(c[c.positive == 0].kind) == {"other_speaker"}
    assert (t.kind == "other_speaker").sum() == (t.kind == "positive").sum() == 4 * 2 * 3
    assert (t.kind == "same_speaker").sum() == 4 * 2 * 2
    db_speakers = set(meta[meta.split == "test"].speaker_id)
    assert not set(t[t.kind == "other_speaker"].speaker_id) & db_speakers
    assert not set(c[c.positive == 0].speaker_id) & (db_speakers | set(t[t.kind == "other_speaker"].speaker_id))
    assert t.query_id.is_unique
    none = queries.plan_queries(meta, CONDS, [1.0], 1, seed=5, same_speaker_per_condition=0)
    assert set(none.kind) == {"positive", "other_speaker"}


def test_manifest_without_kinds_reads_as_same_speaker_negatives(tiny_corpus, tmp_path):
    _, meta = tiny_corpus
    plan = queries.plan_queries(meta, CONDS, [1.0], 1, seed=5)
    assert set(plan[plan.positive == 0].kind) == {"same_speaker"}  # no outside speakers: unseen utterances
    plan.drop(columns="kind").to_csv(tmp_path / "old.csv", index=False)
    back = queries.read_manifest(tmp_path / "old.csv")
    assert list(back.kind) == list(plan.kind)
