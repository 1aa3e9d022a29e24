"""``data.source: folder``: someone's own recordings as the study's corpus (samaf_lib/corpus/folder.py), checked
file by file, and the whole pipeline run on them."""

from __future__ import annotations

import json
import subprocess

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
import yaml

from folder_fixture import write_test_folder
from samaf_lib import attributes
from samaf_lib.corpus import assign_splits, load_folder, read_metadata, write_metadata


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    root = tmp_path_factory.mktemp("own")
    return root, write_test_folder(root)


def test_folder_with_csv(folder, tmp_path):
    root, rec = folder
    meta = load_folder(rec, tmp_path / "corpus", sr=16000, meta=root / "recordings.csv", group="artist",
                       min_s=4.0, max_s=10.0, rejected=tmp_path / "rejected.csv")
    assert sorted(meta.speaker_id.unique()) == ["anna", "ben", "chorus", "dmitri", "kit", "lyre"]
    assert set(meta.attr_genre) == {"speech", "music"} and (meta.group_by == "artist").all()
    assert set(meta.loc[meta.speaker_id == "anna", "gender"]) == {"f"}
    assert set(meta.loc[meta.speaker_id == "kit", "gender"]) == {""}
    # every piece was written mono at the study rate, whatever the file's format, rate and channels were
    for path in meta.path:
        info = sf.info(str(tmp_path / "corpus" / path))
        assert (info.samplerate, info.channels, info.subtype) == (16000, 1, "PCM_16")
    formats = {(p.suffix, sf.info(str(p)).samplerate, sf.info(str(p)).channels) for p in rec.rglob("*_[0-9].*")}
    assert {f[0] for f in formats} == {".wav", ".flac", ".ogg", ".mp3"} and {f[2] for f in formats} == {1, 2}
    assert {f[1] for f in formats} == {16000, 22050, 44100, 48000}
    # the 23-s file in pieces of 10 s with their offsets; the 3-s rest is shorter than min_s and dropped
    long = meta[meta.recording == "anna__anna_long"]
    assert long.offset_s.tolist() == [0.0, 10.0] and long.duration_s.tolist() == [10.0, 10.0]
    # each bad file rejected with its reason, in the table and in rejected.csv
    rej = pd.read_csv(tmp_path / "rejected.csv").set_index("path")["reason"]
    assert sorted(rej.index) == ["bad/corrupt.wav", "bad/empty.flac", "bad/short.wav", "bad/silent.ogg"]
    assert "cannot be read" in rej["bad/corrupt.wav"] and "shorter than" in rej["bad/short.wav"]
    assert "silent" in rej["bad/silent.ogg"]
    # the attribute tasks the corpus allows: its groups, gender where known, genre; never nationality
    assert attributes.tasks_for(meta) == ["speaker", "gender", "attr_genre", "distortion"]
    # round trip through metadata.csv, and pieces of one recording stay in one split
    write_metadata(assign_splits(meta, {"train": 0.45, "val": 0.1, "test": 0.3, "unseen": 0.15}, seed=3,
                                 outside=0.3), tmp_path / "corpus" / "metadata.csv")
    back = read_metadata(tmp_path / "corpus" / "metadata.csv")
    assert back.groupby("recording").split.nunique().max() == 1
    assert back.loc[back.speaker_id.isin(back.loc[back.split.str.startswith("outside"), "speaker_id"]),
                    "split"].str.startswith("outside").all()


def test_folder_without_csv_groups_by_folder(folder, tmp_path):
    _, rec = folder
    meta = load_folder(rec, tmp_path / "corpus")
    assert (meta.group_by == "folder").all() and "anna" in set(meta.speaker_id)
    assert attributes.tasks_for(meta) == ["distortion"]  # no CSV: no attribute task but the signal's own
    assert len(meta.attrs["rejected"]) == 4


def test_folder_bad_settings_name_the_key(folder, tmp_path):
    root, rec = folder
    with pytest.raises(FileNotFoundError, match="data.folder.root"):
        load_folder(tmp_path / "missing", tmp_path / "c")
    with pytest.raises(FileNotFoundError, match="data.folder.root is empty"):
        load_folder("", tmp_path / "c")
    with pytest.raises(ValueError, match="data.folder.meta"):
        load_folder(rec, tmp_path / "c", meta=tmp_path / "nope.csv")
    (tmp_path / "nopath.csv").write_text("file,genre\na.wav,x\n")
    with pytest.raises(ValueError, match="no 'path' column"):
        load_folder(rec, tmp_path / "c", meta=tmp_path / "nopath.csv")
    with pytest.raises(ValueError, match="data.folder.group"):
        load_folder(rec, tmp_path / "c", meta=root / "recordings.csv", group="speaker")
    with pytest.raises(ValueError, match="data.folder.group"):
        load_folder(rec, tmp_path / "c", group="artist")
    empty = tmp_path / "nothing"
    (empty / "x").mkdir(parents=True)
    sf.write(str(empty / "x" / "quiet.wav"), np.zeros(16000 * 3, np.float32), 16000)
    with pytest.raises(ValueError, match="no usable recording"):
        load_folder(empty, tmp_path / "c")


def test_folder_listed_but_missing_is_rejected(folder, tmp_path):
    root, rec = folder
    csv = pd.read_csv(root / "recordings.csv")
    csv = pd.concat([csv, pd.DataFrame([{"path": "anna/gone.wav", "artist": "anna", "genre": "speech"}])])
    csv.to_csv(tmp_path / "m.csv", index=False)
    meta = load_folder(rec, tmp_path / "c", meta=tmp_path / "m.csv", group="artist")
    rej = meta.attrs["rejected"]
    assert "no such file" in rej.set_index("path").loc["anna/gone.wav", "reason"]


@pytest.mark.slow
def test_pipeline_on_a_folder(folder, tmp_path):
    """The whole pipeline, SAMAF's training included, on the test folder (smoke sizes, four distortions)."""
    from test_pipeline import BIN, ROOT, _copy_study, _env

    root, rec = folder
    study = _copy_study(tmp_path / "study")
    params = yaml.safe_load((ROOT / "tests" / "smoke_params.yaml").read_text())
    params["data"].update(source="folder", folder={"root": str(rec), "meta": str(root / "recordings.csv"),
                                                   "group": "artist"})
    params["queries"].update(distortions="noise_white,lowpass,tempo,mp3", lengths="1,3")
    (study / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    env = _env(study)
    subprocess.run(["git", "init", "-q"], cwd=study, check=True)
    run = subprocess.run([str(BIN / "dvc"), "repro"], cwd=study, env=env, capture_output=True, text=True)
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-3000:]
    meta = read_metadata(study / "data" / "corpus" / "metadata.csv")
    assert set(meta.source) == {"folder"} and "attr_genre" in meta.columns
    assert len(pd.read_csv(study / "data" / "corpus" / "rejected.csv")) == 4
    metrics = json.loads((study / "reports" / "metrics.json").read_text())
    assert sorted(metrics["systems"]) == ["dejavu", "panako", "rafs", "samaf", "triplets"]
    classification = pd.read_csv(study / "reports" / "tables" / "classification.csv")
    assert {"speaker", "gender", "attr_genre", "distortion"} == set(classification.task)
    assert (study / "reports" / "06_report.html").exists()
    assert len(pd.read_csv(study / "reports" / "tables" / "negatives_by_voice.csv"))
