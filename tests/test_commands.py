"""The commands users of audfprint, Olaf and Panako expect: ``identify --segments`` on a long recording,
``list``, ``remove``, ``dedup``, a file list on stdin, ``--version``."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
from conftest import make_speech

from samaf_lib import cli, store
from samaf_lib.audio import write_audio

SR = 16000


@pytest.fixture(scope="module")
def db(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("commands")
    for i in range(12):
        write_audio(root / "audio" / f"s{i:02d}.wav", make_speech(i, 8.0), SR)
    path = root / "x.rafs"
    assert cli.main(["index", str(root / "audio"), "--system", "rafs", "--db", str(path), "--quiet"]) == 0
    return path


def _json(capsys, *argv) -> object:
    capsys.readouterr()
    assert cli.main([str(a) for a in argv]) == 0
    return json.loads(capsys.readouterr().out)


def test_segments_find_three_references_in_one_recording_with_their_time_ranges(db, tmp_path, capsys):
    pieces = [(3, 1.0, 5.0), (None, 0.0, 1.0), (7, 0.5, 5.0), ("outside", 0.0, 2.0), (10, 0.0, 4.0)]
    audio, truth, t = [], [], 0.0
    for ref, start, seconds in pieces:
        if ref is None:
            x = np.zeros(int(seconds * SR), np.float32)
        elif ref == "outside":
            x = make_speech(1004, 3.0)[: int(seconds * SR)]
        else:
            x = make_speech(ref, 8.0)[int(start * SR): int((start + seconds) * SR)]
            truth.append((f"s{ref:02d}.wav", t, t + seconds, start))
        audio.append(x)
        t += seconds
    write_audio(tmp_path / "long.wav", np.concatenate(audio), SR)  # 17 s
    (result,) = _json(capsys, "identify", tmp_path / "long.wav", "--db", db, "--segments", "--json")
    segs = result["segments"]
    assert [s["ref_id"] for s in segs] == [r for r, *_ in truth], segs
    for seg, (_, q0, q1, r0) in zip(segs, truth):
        assert seg["start_s"] <= q0 + 2.5 and seg["end_s"] >= q1 - 2.5  # within one hop of the truth
        assert seg["start_s"] >= q0 - 2.5 and seg["end_s"] <= q1 + 2.5
        assert abs((seg["ref_start_s"] - seg["start_s"]) - (r0 - q0)) <= 0.1  # the alignment
        assert seg["fpr"] is not None and seg["score"] > 0


def test_list_remove_and_stdin(db, tmp_path, capsys, monkeypatch):
    copy = tmp_path / "c.rafs"
    for suffix in ("", ".json", ".journal"):
        src = Path(str(db) + suffix)
        if src.exists():
            Path(str(copy) + suffix).write_bytes(src.read_bytes())
    rows = _json(capsys, "list", "--db", copy, "--json")
    assert [r["ref_id"] for r in rows] == [f"s{i:02d}.wav" for i in range(12)]
    assert all(r["seconds"] == pytest.approx(8.0, abs=0.01) and Path(r["source"]).is_file() for r in rows)
    assert cli.main(["remove", "s03.wav", "nosuch.wav", "--db", str(copy)]) == 2
    assert "no reference named 'nosuch.wav'" in capsys.readouterr().err
    assert cli.main(["remove", "s03.wav", "s05.wav", "--db", str(copy)]) == 0
    assert "removed 2 reference(s); 10 remain" in capsys.readouterr().out
    assert [r["ref_id"] for r in _json(capsys, "list", "--db", copy, "--json")] == [
        f"s{i:02d}.wav" for i in range(12) if i not in (3, 5)]
    assert store.read(store.journal_path(copy)).records == []  # folded: the file was rewritten without them
    clip = tmp_path / "clip.wav"
    write_audio(clip, make_speech(3, 8.0)[SR: 4 * SR], SR)
    other = tmp_path / "clip7.wav"
    write_audio(other, make_speech(7, 8.0)[SR: 4 * SR], SR)
    monkeypatch.setattr("sys.stdin", io.StringIO(f"{clip}\n\n{other}\n"))
    results = _json(capsys, "identify", "-", "--db", copy, "--json")
    assert [r["ref_id"] for r in results] == [None, "s07.wav"]  # s03 was removed


def test_dedup_finds_a_file_indexed_twice(tmp_path, capsys):
    for i in range(6):
        write_audio(tmp_path / "audio" / f"s{i}.wav", make_speech(20 + i, 8.0), SR)
    (tmp_path / "audio" / "again.wav").write_bytes((tmp_path / "audio" / "s2.wav").read_bytes())
    db = tmp_path / "d.rafs"
    assert cli.main(["index", str(tmp_path / "audio"), "--system", "rafs", "--db", str(db), "--quiet"]) == 0
    calibration = cli.read_manifest(db)["calibration"]
    assert sorted(map(tuple, calibration["duplicates"])) == [("again.wav", "s2.wav"), ("s2.wav", "again.wav")]
    found = _json(capsys, "dedup", "--db", db, "--json")
    assert sorted((p["ref_id"], p["matches"]) for p in found["pairs"]) == [("again.wav", "s2.wav"),
                                                                          ("s2.wav", "again.wav")]


def test_version(capsys):
    with pytest.raises(SystemExit):
        cli.build_parser().parse_args(["--version"])
    assert capsys.readouterr().out.startswith("samaf ")
