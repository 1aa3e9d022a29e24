"""The corpus module: the generated synthvox corpus, the VoxCeleb1 loader, the metadata schema and the splits."""

from __future__ import annotations

import re
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from samaf_lib.corpus import espeak
from samaf_lib.corpus import (COLUMNS, NATIONALITY_VOICES, SPLITS, assign_splits, build_synthvox, check_fractions,
                              design_speakers, load_voxceleb1, read_metadata, resolve_paths, split_counts,
                              write_metadata)
from samaf_lib.corpus import synthvox as sv
from samaf_lib.corpus.espeak import synthesize

SR = 16000
SIZE = dict(n_speakers=4, utterances_per_speaker=2, seed=5, min_s=2.0, max_s=3.5, sr=SR)


def _files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*.wav"))}


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> tuple[Path, pd.DataFrame]:
    out = tmp_path_factory.mktemp("synthvox_a")
    return out, build_synthvox(out, **SIZE)


# ------------------------------------------------------------------------------------------------- synthvox
def test_synthvox_is_byte_identical_whatever_ran_before(built, tmp_path):
    out_a, df_a = built
    # use the shared engine in between: its internal state must not leak into the corpus
    synthesize("Something else entirely, said before the second build.", "fr", "f4", rate=120)
    df_b = build_synthvox(tmp_path / "b", **SIZE)
    files_a, files_b = _files(out_a), _files(tmp_path / "b")
    assert len(files_a) == SIZE["n_speakers"] * SIZE["utterances_per_speaker"]
    assert files_a == files_b
    pd.testing.assert_frame_equal(df_a, df_b)


def test_synthvox_utterance_does_not_depend_on_corpus_size(built, tmp_path):
    out_a, _ = built
    small = build_synthvox(tmp_path / "c", **{**SIZE, "n_speakers": 2, "utterances_per_speaker": 1})
    assert list(small.utterance_id) == ["sv0001_001", "sv0002_001"]
    for rel in small.path:
        assert (tmp_path / "c" / rel).read_bytes() == (out_a / rel).read_bytes()


def test_synthvox_other_seed_gives_other_audio(built, tmp_path):
    out_a, df_a = built
    other = build_synthvox(tmp_path / "d", **{**SIZE, "n_speakers": 1, "utterances_per_speaker": 1, "seed": 6})
    assert (tmp_path / "d" / other.path[0]).read_bytes() != (out_a / df_a.path[0]).read_bytes()


def test_synthvox_schema_and_files(built):
    out, df = built
    assert list(df.columns[: len(COLUMNS)]) == list(COLUMNS)
    assert {"language", "variant", "pitch", "rate", "channel", "snr_db", "noise"} <= set(df.columns)
    assert (df.source == "synthvox").all() and (df.split == "").all()
    assert df.utterance_id.is_unique
    assert df.speaker_id.nunique() == SIZE["n_speakers"]
    assert df.groupby("speaker_id").size().eq(SIZE["utterances_per_speaker"]).all()
    for row in df.itertuples():
        assert re.fullmatch(r"sv\d{4}", row.speaker_id)
        assert re.fullmatch(rf"{row.speaker_id}_\d{{3}}", row.utterance_id)
        assert row.path == f"wav/{row.speaker_id}/{row.utterance_id}.wav"
        info = sf.info(str(out / row.path))
        assert (info.samplerate, info.channels, info.subtype) == (SR, 1, "PCM_16")
        assert info.frames == round(row.duration_s * SR)
        audio, _ = sf.read(str(out / row.path), dtype="float32")
        assert np.max(np.abs(audio)) == pytest.approx(sv.PEAK, abs=1e-3)
        assert 10.0 <= row.snr_db <= 30.0
    assert isinstance(df.attrs["rejected"], pd.DataFrame)
    assert list(df.attrs["rejected"].columns) == ["path", "reason"] and df.attrs["rejected"].empty


def test_synthvox_durations_within_range(built):
    _, df = built
    assert df.duration_s.between(SIZE["min_s"] - 1e-9, SIZE["max_s"] + 1e-9).all()
    assert df.duration_s.nunique() > 1  # drawn, not fixed


def test_synthvox_gender_and_nationality(built):
    _, df = built
    spk = df.drop_duplicates("speaker_id")
    assert set(spk.gender) == {"m", "f"} and (spk.gender == "m").sum() == 2  # balanced
    assert (spk.variant.str[0] == spk.gender).all()  # m1-m8 male, f1-f5 female
    for row in spk.itertuples():
        assert row.language in NATIONALITY_VOICES[row.nationality]
    assert spk.nationality.nunique() == 4


def test_design_speakers_distinct_and_balanced():
    voices = design_speakers(48, seed=1)
    keys = [(v.language, v.variant, v.pitch, v.rate, v.pitch_range) for v in voices]
    assert len(set(keys)) == 48
    for a in voices:
        for b in voices:
            if a is not b and (a.language, a.variant) == (b.language, b.variant):
                assert abs(a.pitch - b.pitch) >= 8 or abs(a.rate - b.rate) >= 20
    df = pd.DataFrame([v.__dict__ for v in voices])
    assert (df.gender == "m").sum() == 24
    per_nat = df.groupby(["nationality", "gender"]).size()
    assert per_nat.eq(2).all() and len(per_nat) == 2 * len(NATIONALITY_VOICES)
    assert design_speakers(5, seed=1) == voices[:5]  # a speaker does not depend on the corpus size
    assert design_speakers(48, seed=2) != voices


def test_every_pool_voice_loads():
    for languages in NATIONALITY_VOICES.values():
        for lang in languages:
            assert sv.voice_loads(lang, "m1"), lang
    assert not sv.voice_loads("xx-no-such-language")


def test_speak_is_independent_of_engine_history():
    args = ("The quiet river meets the old bridge.", "en-us", "f2", 170, 55, 40, 9)
    first, rate = espeak.synthesize(*args)
    synthesize("Anything at all, to move the shared engine on.", "de", "m3")
    espeak.synthesize("Another voice in between.", "it", "f5", 130, 35)
    time.sleep(1.1)  # the engine would seed its breath noise from the clock (whole seconds)
    again, _ = espeak.synthesize(*args)
    assert rate == 22050 and first.size > rate
    np.testing.assert_array_equal(first, again)


def test_build_synthvox_rejects_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match="data.n_speakers"):
        build_synthvox(tmp_path, 0, 2, seed=1)
    with pytest.raises(ValueError, match="data.utterances_per_speaker"):
        build_synthvox(tmp_path, 2, -1, seed=1)
    with pytest.raises(ValueError, match="min_utterance_s"):
        build_synthvox(tmp_path, 2, 2, seed=1, min_s=5.0, max_s=4.0)
    with pytest.raises(ValueError, match="seed"):
        build_synthvox(tmp_path, 2, 2, seed=-3)
    assert not any(tmp_path.iterdir())


# ----------------------------------------------------------------------------------------------- the channel
def test_mix_at_snr_hits_the_requested_snr():
    rng = np.random.default_rng(0)
    speech = rng.standard_normal(SR).astype(np.float32)
    noise = sv.coloured_noise(SR, SR, "pink", rng)
    mixed = sv.mix_at_snr(speech, noise, 15.0)
    snr = 10 * np.log10(np.mean(speech.astype(np.float64) ** 2) / np.mean((mixed - speech).astype(np.float64) ** 2))
    assert snr == pytest.approx(15.0, abs=0.01)


def test_coloured_noise_slopes():
    rng = np.random.default_rng(1)
    f = np.fft.rfftfreq(4 * SR, 1 / SR)
    high_over_low = {}
    for colour in ("white", "pink", "brown"):
        x = sv.coloured_noise(4 * SR, SR, colour, rng)
        assert x.shape == (4 * SR,) and np.sqrt(np.mean(x.astype(np.float64) ** 2)) == pytest.approx(1.0, rel=1e-3)
        p = np.abs(np.fft.rfft(x)) ** 2
        high_over_low[colour] = p[(f > 4000) & (f < 6000)].mean() / p[(f > 200) & (f < 400)].mean()
    assert high_over_low["white"] == pytest.approx(1.0, rel=0.3)
    assert high_over_low["brown"] < high_over_low["pink"] < 0.2


def test_reverb_filters_and_gain_change_the_signal_as_stated():
    rng = np.random.default_rng(2)
    click = np.zeros(SR, np.float32)
    click[100] = 1.0
    wet = sv.room_reverb(click, SR, rt60_s=0.5, drr_db=0.0, rng=rng)
    assert wet.shape == click.shape and wet[100] == pytest.approx(1.0)
    tail = wet[141:].astype(np.float64)
    assert np.sum(tail**2) == pytest.approx(1.0, rel=1e-3)  # DRR 0 dB: tail energy = direct energy
    early, late = np.mean(tail[:800] ** 2), np.mean(tail[6000:6800] ** 2)
    assert late < early / 100  # decays
    t = np.arange(SR) / SR
    tones = (np.sin(2 * np.pi * 300 * t) + np.sin(2 * np.pi * 6000 * t)).astype(np.float32)
    low = sv.band_filter(tones, SR, None, 2000.0)
    spec_in, spec_out = np.abs(np.fft.rfft(tones)), np.abs(np.fft.rfft(low))
    assert spec_out[6000] < 0.01 * spec_in[6000] and spec_out[300] > 0.9 * spec_in[300]
    boosted = sv.peaking_eq(tones, SR, 300.0, 6.0, 1.0)
    assert np.abs(np.fft.rfft(boosted))[300] / spec_in[300] == pytest.approx(10 ** (6 / 20), rel=0.05)
    y, info = sv.wild_channel(tones, SR, np.random.default_rng(3))
    assert y.shape == tones.shape and np.max(np.abs(y)) == pytest.approx(0.9, abs=1e-6)
    assert 10 <= info["snr_db"] <= 30 and info["noise"] in {"white", "pink", "brown", "babble"}


def test_cut_prefers_a_pause_and_keeps_min_length():
    rng = np.random.default_rng(4)
    audio = rng.standard_normal(5 * SR).astype(np.float32)
    audio[int(2.85 * SR): int(2.9 * SR)] = 0.0  # a pause inside the last 0.3 s before 3 s
    out, how = sv._cut(audio, SR, target_s=3.0, min_s=2.0)
    assert how == "pause" and int(2.85 * SR) < out.size <= int(2.9 * SR)
    out, how = sv._cut(rng.standard_normal(5 * SR).astype(np.float32), SR, target_s=3.0, min_s=2.0)
    assert how == "hard" and out.size == 3 * SR and out[-1] == 0.0  # faded out


# ---------------------------------------------------------------------------------------------------- splits
def _table(n_speakers: int, per_speaker: int) -> pd.DataFrame:
    rows = [{"utterance_id": f"s{s:02d}_{u:02d}", "speaker_id": f"s{s:02d}", "gender": "mf"[s % 2],
             "nationality": "X", "split": "", "path": f"wav/{s}/{u}.wav", "duration_s": 5.0, "source": "t"}
            for s in range(n_speakers) for u in range(per_speaker)]
    return pd.DataFrame(rows)


FRACTIONS = {"train": 0.45, "val": 0.1, "test": 0.3, "unseen": 0.15}


def test_split_by_utterance_spreads_every_speaker():
    df = _table(12, 8)
    out = assign_splits(df, FRACTIONS, by="utterance", seed=3)
    assert list(out.utterance_id) == list(df.utterance_id)  # rows kept in order
    counts = out.split.value_counts().to_dict()
    assert counts == {k: v for k, v in split_counts(len(df), FRACTIONS).items() if v}
    for _, g in out.groupby("speaker_id"):
        assert {"train", "test"} <= set(g.split)  # test speakers are also heard in training
    assert out.utterance_id.is_unique  # disjoint by utterance
    again = assign_splits(df.sample(frac=1.0, random_state=7), FRACTIONS, by="utterance", seed=3)
    assert again.set_index("utterance_id").split.to_dict() == out.set_index("utterance_id").split.to_dict()
    other = assign_splits(df, FRACTIONS, by="utterance", seed=4)
    assert not other.split.equals(out.split)


def test_split_by_speaker_is_speaker_disjoint():
    df = _table(10, 3)
    out = assign_splits(df, FRACTIONS, by="speaker", seed=1)
    assert out.groupby("speaker_id").split.nunique().eq(1).all()
    assert set(out.split) == set(SPLITS)
    per_split = out.groupby("split").speaker_id.nunique().to_dict()
    assert per_split == {k: v for k, v in split_counts(10, FRACTIONS).items() if v}


@pytest.mark.parametrize("by", ["utterance", "speaker"])
def test_outside_speakers_are_held_out_of_every_split_half_for_calibration(by):
    df = _table(20, 4)
    out = assign_splits(df, FRACTIONS, by=by, seed=2, outside=0.2)
    spk = out.groupby("split").speaker_id.unique().map(set).to_dict()
    assert len(spk["outside_test"]) == len(spk["outside_calib"]) == 2  # 0.2 x 20 = 4 speakers, half each
    held = spk["outside_test"] | spk["outside_calib"]
    assert not spk["outside_test"] & spk["outside_calib"]
    for split in SPLITS:
        assert not spk.get(split, set()) & held, f"an outside speaker has a {split} utterance"
    assert out.groupby("speaker_id").split.apply(lambda s: s.str.startswith("outside").all() or
                                                 not s.str.startswith("outside").any()).all()
    again = assign_splits(df.sample(frac=1.0, random_state=1), FRACTIONS, by=by, seed=2, outside=0.2)
    assert again.set_index("utterance_id").split.to_dict() == out.set_index("utterance_id").split.to_dict()
    assert assign_splits(df, FRACTIONS, by=by, seed=2).split.isin(SPLITS).all()  # outside=0: as before


def test_outside_share_is_checked():
    with pytest.raises(ValueError, match="frac_outside"):
        assign_splits(_table(4, 2), FRACTIONS, outside=0.7)
    with pytest.raises(ValueError, match="frac_outside"):
        assign_splits(_table(2, 2), FRACTIONS, outside=0.5)  # leaves no database speaker
    with pytest.raises(ValueError, match="frac_outside"):
        assign_splits(_table(4, 2), FRACTIONS, outside="many")


def test_every_split_gets_one_item_from_four():
    out = assign_splits(_table(2, 2), FRACTIONS, by="utterance", seed=0)
    assert sorted(out.split) == sorted(SPLITS)
    out = assign_splits(_table(4, 1), FRACTIONS, by="speaker", seed=0)
    assert sorted(out.split) == sorted(SPLITS)
    assert split_counts(4, {"train": 0.97, "val": 0.01, "test": 0.01, "unseen": 0.01}) == dict.fromkeys(SPLITS, 1)
    assert split_counts(10, {"train": 0.5, "test": 0.5}) == {"train": 5, "val": 0, "test": 5, "unseen": 0}
    with pytest.warns(UserWarning, match="empty"):
        assign_splits(_table(3, 1), FRACTIONS, by="speaker", seed=0)


@pytest.mark.parametrize("fractions, key", [
    ({"train": 1.2, "val": -0.2, "test": 0.0, "unseen": 0.0}, "data.frac_train"),
    ({"train": 0.5, "val": -0.1, "test": 0.4, "unseen": 0.2}, "data.frac_val"),
    ({"train": 0.5, "val": 0.1, "test": 0.3, "unseen": 0.05}, "sum to 1"),
    ({"train": 0.5, "validation": 0.5}, "data.frac_validation"),
    ({"train": "lots", "test": 0.5}, "data.frac_train"),
])
def test_fractions_are_validated(fractions, key):
    with pytest.raises(ValueError, match=re.escape(key)):
        check_fractions(fractions)
    with pytest.raises(ValueError, match=re.escape(key)):
        assign_splits(_table(3, 3), fractions, by="utterance", seed=0)


def test_split_by_must_be_known():
    with pytest.raises(ValueError, match="data.split_by"):
        assign_splits(_table(3, 3), FRACTIONS, by="video", seed=0)


# -------------------------------------------------------------------------------------------------- metadata
def test_metadata_round_trip(tmp_path):
    df = assign_splits(_table(3, 2), FRACTIONS, by="utterance", seed=0)
    df.loc[0, "nationality"] = "NA"  # Namibia, not a missing value
    df.loc[1, "split"] = ""
    df["extra"] = 1
    write_metadata(df, tmp_path / "m" / "metadata.csv")
    back = read_metadata(tmp_path / "m" / "metadata.csv")
    assert list(back.columns[: len(COLUMNS)]) == list(COLUMNS) and "extra" in back.columns
    assert back.loc[0, "nationality"] == "NA" and back.loc[1, "split"] == ""
    assert back.duration_s.dtype == np.float64
    pd.testing.assert_frame_equal(back[list(COLUMNS)], df[list(COLUMNS)].astype({"duration_s": float}),
                                  check_dtype=False)
    assert [p.name for p in (tmp_path / "m").iterdir()] == ["metadata.csv"]  # no temporary file left
    assert resolve_paths(back).iloc[0] == str(tmp_path / "m" / df.path.iloc[0])
    assert resolve_paths(back.assign(path="/abs/x.wav")).iloc[0] == "/abs/x.wav"


def test_metadata_schema_errors(tmp_path):
    with pytest.raises(ValueError, match="nationality"):
        write_metadata(_table(2, 2).drop(columns="nationality"), tmp_path / "x.csv")
    _table(2, 2).drop(columns="duration_s").to_csv(tmp_path / "bad.csv", index=False)
    with pytest.raises(ValueError, match="duration_s"):
        read_metadata(tmp_path / "bad.csv")
    with pytest.raises(FileNotFoundError, match="nothere.csv"):
        read_metadata(tmp_path / "nothere.csv")
    dup = pd.concat([_table(1, 2), _table(1, 1)])
    dup.to_csv(tmp_path / "dup.csv", index=False)
    with pytest.raises(ValueError, match="more than once"):
        read_metadata(tmp_path / "dup.csv")


def test_synthvox_metadata_round_trips(built, tmp_path):
    _, df = built
    write_metadata(df, tmp_path / "metadata.csv")
    back = read_metadata(tmp_path / "metadata.csv")
    assert list(back.utterance_id) == list(df.utterance_id)
    np.testing.assert_allclose(back.duration_s, df.duration_s)


# -------------------------------------------------------------------------------------------------- VoxCeleb1
META_HEADER = "VoxCeleb1 ID\tVGGFace1 ID\tGender\tNationality\tSet\n"


def _speech_like(seconds: float, seed: int, sr: int = SR) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sr)) / sr
    return (0.3 * np.sin(2 * np.pi * (150 + 50 * seed) * t) * (1 + np.sin(2 * np.pi * 3 * t))
            + 0.01 * rng.standard_normal(t.size)).astype(np.float32)


@pytest.fixture()
def vox_tree(tmp_path) -> tuple[Path, Path, dict[str, str]]:
    """A tiny VoxCeleb1 in the real layout: 3 speakers with 2 good files each plus bad ones, and one extra folder."""
    root = tmp_path / "vox1"
    wav = root / "wav"
    good = {
        "id10001": ["1zcIwhmdeo4/00001.wav", "7gWzIy6yIIk/00002.wav"],
        "id10002": ["C7k7C-PDvAA/00001.wav", "C7k7C-PDvAA/00002.wav"],
        "id10003": ["5ablueV_1tw/00001.wav", "5ablueV_1tw/00003.wav"],
    }
    for k, (spk, files) in enumerate(good.items()):
        for j, rel in enumerate(files):
            p = wav / spk / rel
            p.parent.mkdir(parents=True, exist_ok=True)
            sf.write(str(p), _speech_like(1.5 + j, k), SR, subtype="PCM_16")
    bad = {
        "id10001/7gWzIy6yIIk/00003.wav": "corrupt",
        "id10001/9aaaaaaaaaa/00001.wav": "rate",
        "id10002/C7k7C-PDvAA/00003.wav": "empty",
        "id10002/C7k7C-PDvAA/00004.wav": "short",
        "id10003/5ablueV_1tw/00002.wav": "stereo",
        "id10003/x_y-z/00001.wav": "silent",
    }
    for rel, kind in bad.items():
        p = wav / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        if kind == "corrupt":
            p.write_bytes(b"RIFF\x10\x00\x00\x00WAVEnot really a wave file" * 3)
        elif kind == "empty":
            p.write_bytes(b"")
        elif kind == "short":
            sf.write(str(p), _speech_like(0.5, 1), SR)
        elif kind == "stereo":
            sf.write(str(p), np.stack([_speech_like(2.0, 2, 44100)] * 2, axis=1), 44100)
        elif kind == "rate":
            sf.write(str(p), _speech_like(2.0, 3, 8000), 8000)
        elif kind == "silent":
            sf.write(str(p), np.zeros(2 * SR, np.float32), SR)
    (wav / "id19999" / "vid").mkdir(parents=True)  # a folder with no metadata row
    sf.write(str(wav / "id19999" / "vid" / "00001.wav"), _speech_like(2.0, 4), SR)
    meta = tmp_path / "vox1_meta.csv"
    meta.write_text(META_HEADER + "id10001\tA.J._Buckley\tm\tIreland\tdev\n"
                    "id10002\tA.R._Rahman\tm\tIndia\tdev\nid10003\tAaron_Tveit\tf\tUSA \tdev\n"
                    "id10004\tAaron_Yoo\tm\tUSA\ttest\n")
    return root, meta, bad


def test_voxceleb1_keeps_good_files_and_rejects_bad_ones(vox_tree):
    root, meta, bad = vox_tree
    with pytest.warns(UserWarning, match="fewer than 4 usable files"):
        df = load_voxceleb1(root, meta, n_speakers=3, utterances_per_speaker=4, seed=0)
    assert list(df.columns[: len(COLUMNS)]) == list(COLUMNS)
    assert sorted(df.speaker_id.unique()) == ["id10001", "id10002", "id10003"]
    assert df.groupby("speaker_id").size().eq(2).all()  # the six good files
    assert (df.source == "voxceleb1").all() and (df.split == "").all()
    assert all(Path(p).is_absolute() and Path(p).is_file() for p in df.path)
    assert dict(zip(df.speaker_id, df.gender)) == {"id10001": "m", "id10002": "m", "id10003": "f"}
    assert dict(zip(df.speaker_id, df.nationality))["id10003"] == "USA"  # stripped
    assert "id10001_1zcIwhmdeo4_00001" in set(df.utterance_id)
    assert df.duration_s.min() >= 1.0
    rej = df.attrs["rejected"]
    assert list(rej.columns) == ["path", "reason"] and len(rej) == len(bad)
    reasons = {str(Path(p).relative_to((root / "wav").resolve())): r for p, r in zip(rej.path, rej.reason)}
    expect = {"corrupt": "cannot be read", "rate": "sample rate 8000", "empty": "empty", "short": "shorter",
              "stereo": "2 channels", "silent": "silent"}
    for rel, kind in bad.items():
        assert expect[kind] in reasons[rel], (kind, reasons[rel])


def test_voxceleb1_subset_is_seeded_and_replaces_bad_files(vox_tree, tmp_path):
    root, meta, _ = vox_tree
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # enough good files: no warning
        a = load_voxceleb1(root / "wav", meta, n_speakers=2, utterances_per_speaker=2, seed=3,
                           rejected=tmp_path / "rejected.csv")
    b = load_voxceleb1(root, meta, n_speakers=2, utterances_per_speaker=2, seed=3)
    pd.testing.assert_frame_equal(a, b)
    assert a.speaker_id.nunique() == 2 and len(a) == 4  # bad files were replaced by good ones
    written = pd.read_csv(tmp_path / "rejected.csv")
    assert list(written.columns) == ["path", "reason"] and len(written) == len(a.attrs["rejected"])
    picks = {tuple(sorted(load_voxceleb1(root, meta, 1, 1, seed=s).utterance_id)) for s in range(12)}
    assert len(picks) > 1  # the seed chooses


def test_voxceleb1_missing_root(tmp_path, vox_tree):
    _, meta, _ = vox_tree
    with pytest.raises(FileNotFoundError, match="data.voxceleb1_root"):
        load_voxceleb1(tmp_path / "nowhere", meta, 2, 2, seed=0)
    with pytest.raises(FileNotFoundError, match="data.voxceleb1_root"):
        load_voxceleb1("", meta, 2, 2, seed=0)


def test_voxceleb1_malformed_meta(vox_tree, tmp_path):
    root, _, _ = vox_tree
    comma = tmp_path / "comma.csv"
    comma.write_text("VoxCeleb1 ID,VGGFace1 ID,Gender,Nationality,Set\nid10001,A,m,Ireland,dev\n")
    nogender = tmp_path / "nogender.csv"
    nogender.write_text("VoxCeleb1 ID\tVGGFace1 ID\tNationality\tSet\nid10001\tA\tIreland\tdev\n")
    for bad in (comma, nogender, tmp_path / "absent.csv"):
        with pytest.raises(ValueError, match=r"data\.voxceleb1_meta.*VoxCeleb1 ID\\tVGGFace1 ID\\tGender"):
            load_voxceleb1(root, bad, 2, 2, seed=0)
    with pytest.raises(FileNotFoundError):
        load_voxceleb1(root, tmp_path / "absent.csv", 2, 2, seed=0)
