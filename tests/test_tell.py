"""The corpus tell (samaf_lib/tell.py): shared landmarks between utterances of one voice, and negatives scored by
whose voice they carry; and the varied generated corpus that removes the tell."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from samaf_lib import tell
from samaf_lib.corpus import build_synthvox
from samaf_lib.corpus.synthvox import design_speakers, utterance_style
from samaf_lib.corpus.text import pseudo_name, varied_sentence


def test_auc_counts_ties_half():
    assert tell.auc(np.array([2.0, 3.0]), np.array([1.0, 1.0])) == 1.0
    assert tell.auc(np.array([1.0]), np.array([1.0])) == 0.5
    assert tell.auc(np.array([0.0, 2.0]), np.array([1.0])) == 0.5
    assert np.isnan(tell.auc(np.array([]), np.array([1.0])))


def test_aligned_hashes_counts_one_offset():
    h1, t1 = np.array([5, 7, 9, 11], np.uint64), np.array([0, 1, 2, 3])
    h2, t2 = np.array([5, 7, 9, 11, 5], np.uint64), np.array([10, 11, 12, 40, 3])
    assert tell.aligned_hashes(h1, t1, h2, t2) == 3  # 5, 7 and 9 agree on offset 10; 11 and the second 5 do not
    assert tell.aligned_hashes(h1, t1, np.array([1], np.uint64), np.array([0])) == 0


def test_negatives_by_voice():
    meta = pd.DataFrame({"utterance_id": ["a1", "a2", "b1"], "speaker_id": ["a", "a", "b"],
                         "language": ["en", "en", "fr"]})
    rows = []
    for i, (kind, spk, ref, score) in enumerate([("same_speaker", "a", "a1", 9.0), ("same_speaker", "a", "b1", 3.0),
                                                 ("other_speaker", "c", "a1", 2.0), ("other_speaker", "d", None, 1.0)]):
        rows.append({"system": "x", "set": "test", "positive": 0, "kind": kind, "speaker_id": spk, "ref_id": ref,
                     "score": score, "length_s": 1.0, "query_id": f"q{i}"})
    rows.append({"system": "x", "set": "test", "positive": 1, "kind": "positive", "speaker_id": "a", "ref_id": "a1",
                 "score": 10.0, "length_s": 1.0, "query_id": "p"})
    meta_c = pd.concat([meta, pd.DataFrame({"utterance_id": ["c1", "d1"], "speaker_id": ["c", "d"],
                                            "language": ["en", "de"]})])
    t = tell.negatives_by_voice(pd.DataFrame(rows), meta_c, {"x": 2.5}).set_index("kind")
    assert t.loc["same_speaker", "n"] == 2 and t.loc["same_speaker", "best_same_speaker"] == 0.5
    assert t.loc["same_speaker", "fpr"] == 1.0 and t.loc["other_speaker", "fpr"] == 0.0
    assert t.loc["other_speaker", "best_same_language"] == 0.5  # c (en) best-matched a1 (en)
    assert t.loc["same_speaker", "auc_same_vs_other"] == 1.0


def test_varied_sentences_use_a_large_vocabulary():
    rng = np.random.default_rng(0)
    words = [w.strip(".,?").lower() for _ in range(300) for w in varied_sentence(rng).split()]
    assert len(set(words)) > 700
    a, b = np.random.default_rng(5), np.random.default_rng(5)
    assert varied_sentence(a) == varied_sentence(b) and pseudo_name(a) == pseudo_name(b)


def test_utterance_style_varies_the_voice_within_bounds():
    voice = design_speakers(1, 3)[0]
    styles = [utterance_style(voice, np.random.default_rng(k), 16000) for k in range(200)]
    warps = np.array([s["warp"] for s in styles])
    assert 0.93 < warps.min() < 0.96 and 1.04 < warps.max() < 1.07
    assert all(s["warp_rate"] % 50 == 0 for s in styles)
    rates = np.array([s["rate"] for s in styles]) / voice.rate
    assert rates.min() >= 0.84 and rates.max() <= 1.16 and rates.std() > 0.05


@pytest.fixture(scope="module")
def corpora(tmp_path_factory):
    out = {}
    for varied in (False, True):
        d = tmp_path_factory.mktemp(f"varied{int(varied)}")
        meta = build_synthvox(d, n_speakers=12, utterances_per_speaker=4, seed=20200301, varied=varied)
        out[varied] = tell.summarise_overlap(tell.landmark_overlap(meta, d, 16000, 1, max_utterances=48))
    return out


def test_first_corpus_has_the_tell_and_the_varied_one_not(corpora):
    """Utterances of one voice share identical landmarks in the corpus as first generated, not once varied."""
    before, after = (corpora[v].set_index("relation") for v in (False, True))
    assert before.loc["same_speaker", "mean"] > 2 * before.loc["other", "mean"] + 1
    assert after.loc["same_speaker", "mean"] < 0.5 and after.loc["same_speaker", "p95"] <= 2
