"""SAMAF's encoder window (model.window_s): its frames, the training crops, the system and the ablation's names."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from samaf_lib import ablation, claims
from samaf_lib.encoder_input import window_frames, window_seconds
from samaf_lib.features import Standardiser, mfcc
from samaf_lib.paths import study_variant
from samaf_lib.systems.samaf import SAMAFSystem
from samaf_lib.training import crop_windows

SR = 16000


def test_window_frames_and_seconds():
    assert window_frames(1.0) == 100 and window_frames(0.5) == 50 and window_frames("0.25") == 25
    assert window_seconds(100) == 1.0 and window_seconds(50) == 0.5
    for bad in (0.333, 0.05, 0.0, -1, "half", None, float("nan")):
        with pytest.raises(ValueError, match="model.window_s"):
            window_frames(bad)
    with pytest.raises(ValueError, match="my.key"):
        window_frames(0.123, key="my.key")


def test_training_windows_are_the_middles_of_the_bank_windows():
    X = np.arange(2 * 3 * 100 * 13, dtype=np.float32).reshape(2, 3, 100, 13)
    half = crop_windows(X, 50)
    assert half.shape == (2, 3, 50, 13) and half.flags.c_contiguous
    assert np.array_equal(half, X[:, :, 25:75]) and np.array_equal(crop_windows(X, 25), X[:, :, 37:62])
    assert crop_windows(X, 100) is X  # the bank's own window: nothing cut, nothing copied
    with pytest.raises(ValueError, match="train clusters.*120 frames"):
        crop_windows(X, 120, "train clusters")


def test_a_half_second_model_hashes_half_second_windows(speech_bank):
    clips = list(speech_bank.items())[:6]
    windows = crop_windows(np.concatenate([mfcc(a, SR) for _, a in clips]), 50)
    st = Standardiser.fit(windows, cmn=True)
    m = ablation.RandomProjection(bits=64, seed=3, frames=50)
    m.set_standardiser(st.mean, st.std)
    fp = SAMAFSystem(model=m, bits=64, db_hop_s=0.1, min_score=0.0)
    assert fp.features.window_s == 0.5 and fp.features.frames_per_window == 50
    for ref, audio in clips:
        fp.add(ref, audio, SR)
    stats = fp.stats()
    # 64 bits every 0.1 s are stored; the code itself is 64 bits per 0.5 s, 128 per second of audio
    assert stats["bits_per_second"] == pytest.approx(640.0) and stats["hash_bits_per_second"] == pytest.approx(128.0)
    assert stats["fingerprints"] == sum(int(np.floor((a.size / SR - 0.5) / 0.1 + 1e-9)) + 1 for _, a in clips)
    ref, audio = clips[2]
    # a query shorter than 1 s but longer than the window is answered, at its place
    m1 = fp.identify(audio[int(2.3 * SR): int(3.0 * SR)], SR)
    assert m1.ref_id == ref and abs(m1.offset_s - 2.3) <= 0.1
    # shorter than the window: no answer
    assert fp.identify(audio[: int(0.4 * SR)], SR).ref_id is None


def test_claim_c_counts_the_code_per_second_of_audio():
    def verdict(bits, rate, bps):
        summary = {"systems": {"samaf": {"top1": 0.8, "fpr": 0.01, "bits": bits, "hash_bits_per_second": rate,
                                         "bits_per_second": bps}}}
        row = claims.paper_claims(summary).set_index("claim").loc["c"]
        return row["verdict"], row["evidence"]

    v, ev = verdict(128, 256.0, 1280.0)  # 128 bits per 0.5-s window, stored every 0.1 s
    assert v == "holds in part" and "128 bits per 0.5-s window, 256 bits per second of audio" in ev
    assert verdict(128, 256.0, 256.0)[0] == "holds"  # windows side by side: 256 bits per second
    assert verdict(128, 128.0, 128.0)[0] == "holds"  # the paper's 1-s window
    assert verdict(128, 512.0, 1280.0)[0] == "does not hold"  # 128 bits per 0.25 s: 512 bits per second


def test_the_grid_at_several_windows_and_the_names_of_its_rows():
    grid = ablation.variants("full", (128,), windows=(1.0, 0.5))
    assert len(grid) == 16
    assert grid["128-mse"]["window_s"] == 1.0 and grid["128-mse-0.5s"]["window_s"] == 0.5
    assert {"literal-128-0.5s", "random-128-0.5s", "128-mse+hash+entropy-plain-0.5s"} <= set(grid)
    assert ablation.variants("default", study_window=0.5) == {
        "random-128-0.5s": {"kind": "random", "bits": 128, "cmn": True, "window_s": 0.5}}
    assert study_variant(128, "mse", 0.5) == "study-128-mse-0.5s" and study_variant(128, "mse") == "study-128-mse"
    assert ablation.parse_windows("1, 0.5,1") == (1.0, 0.5) and ablation.parse_windows([0.5]) == (0.5,)
    for bad in ("", "2", "0.333", "abc"):
        with pytest.raises(ValueError, match="ablation.full_windows"):
            ablation.parse_windows(bad)
    order = ablation.table_order("study-128-mse-0.5s", [128], [0.5, 1.0])
    assert order[:3] == ["study-128-mse-0.5s", "128-mse", "128-mse-plain"] and order[-1] == "random-128-0.5s"
    # the study's settings include its window: the grid's 0.5-s variant is the study's model, the 1-s one is not
    study = {"bits": 128, "loss_terms": "mse", "form": "working", "cmn": True, "hash_weight": 1.0,
             "entropy_weight": 0.1, "balance_weight": 0.1, "window_s": 0.5}
    assert ablation.uses_study_model(study, grid["128-mse-0.5s"], epochs=60, study_epochs=60)
    assert not ablation.uses_study_model(study, grid["128-mse"], epochs=60, study_epochs=60)


def test_a_new_study_window_keeps_the_grid_rows_a_shared_variant_vouches_for(tmp_path):
    """The study's model got another window (another name): the earlier rows stay when a variant both runs
    measured measured the same, and the earlier study row, which the grid no longer defines, goes."""
    cols = ["variant", "val_top1", "top1", "bits", "window_s"]
    old = pd.DataFrame([("study-128-mse", 0.9, 0.83, 128, 1.0), ("128-mse", 0.87, 0.83, 128, 1.0),
                        ("128-mse+hash", 0.8, 0.77, 128, 1.0), ("random-128", 0.72, 0.74, 128, 1.0)], columns=cols)

    def kept_after(rows):
        dest = tmp_path / "dest"
        dest.mkdir(exist_ok=True)
        pd.DataFrame(rows, columns=cols).to_csv(dest / "ablation.csv", index=False)
        ablation._keep_unmeasured(dest, {"ablation.csv": old}, study="study-128-mse-0.5s")
        return pd.read_csv(dest / "ablation.csv").variant.tolist()

    study = ("study-128-mse-0.5s", 0.93, 0.86, 128, 0.5)
    assert kept_after([study, ("random-128", 0.72, 0.74, 128, 1.0)]) == [
        "study-128-mse-0.5s", "128-mse", "128-mse+hash", "random-128"]
    # the shared variant measured otherwise (other data): nothing of the earlier table is kept
    assert kept_after([study, ("random-128", 0.70, 0.74, 128, 1.0)]) == ["study-128-mse-0.5s", "random-128"]
    # nothing measured by both runs: nothing vouches for the earlier rows
    assert kept_after([study]) == ["study-128-mse-0.5s"]
