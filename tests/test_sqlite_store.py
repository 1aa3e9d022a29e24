"""Dejavu kept in its SQLite file (``samaf_lib.sqlite_store``): opened in place, one commit per reference, the
journal reduced to manifest entries, removal in place, and a kill between the two commits."""

from __future__ import annotations

import pickle
import sqlite3
from pathlib import Path

import numpy as np
import pytest
from conftest import make_music

from samaf_lib import cli, store
from samaf_lib.audio import write_audio
from samaf_lib.sqlite_store import DejavuOnDisk
from samaf_lib.systems.dejavu import Dejavu

SR = 16000


def _rows(path: Path) -> tuple[int, int]:
    con = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    try:
        return (con.execute("SELECT COUNT(*) FROM songs").fetchone()[0],
                con.execute("SELECT COUNT(*) FROM fingerprints").fetchone()[0])
    finally:
        con.close()


@pytest.fixture(scope="module")
def music() -> list[np.ndarray]:
    return [make_music(i, 8.0) for i in range(4)]


def test_add_is_committed_to_the_file_without_a_save(tmp_path, music):
    db = tmp_path / "x.dejavu"
    Dejavu().save(db)
    system = DejavuOnDisk.open(db)
    assert system.in_place
    system.add("a", music[0], SR)
    songs, rows = _rows(db)  # another connection sees the reference: it is in the file
    assert songs == 1 and rows == system.stats()["fingerprints"] > 0
    assert system._con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    reader = DejavuOnDisk.open(db, writable=False)
    m = reader.identify(music[0][SR: 4 * SR], SR)
    assert m.ref_id == "a" and abs(m.offset_s - 1.0) < 0.2
    with pytest.raises(sqlite3.OperationalError):  # a reader cannot write
        reader.add("b", music[1], SR)
    # the in-memory loader reads the same file, and finds the same
    system.save(db)
    assert Dejavu.load(db).identify(music[0][SR: 4 * SR], SR) == m


def test_in_place_answers_as_the_in_memory_database(tmp_path, music):
    mem = Dejavu()
    for i, x in enumerate(music):
        mem.add(f"r{i}", x, SR)
    db = tmp_path / "m.dejavu"
    mem.save(db)
    disk = DejavuOnDisk.open(db, writable=False)
    assert disk.references() == mem.references()
    assert disk.stats()["fingerprints"] == mem.stats()["fingerprints"]
    for x in music:
        q = x[2 * SR: 5 * SR]
        assert disk.candidates(q, SR, top_k=3) == mem.candidates(q, SR, top_k=3)
    clone = pickle.loads(pickle.dumps(disk))  # a worker reopens the file read-only
    assert clone.in_place and clone.references() == disk.references()
    assert clone.identify(music[2][SR: 4 * SR], SR) == disk.identify(music[2][SR: 4 * SR], SR)


def test_remove_deletes_in_place(tmp_path, music):
    db = tmp_path / "r.dejavu"
    Dejavu().save(db)
    system = DejavuOnDisk.open(db)
    for i, x in enumerate(music[:3]):
        system.add(f"r{i}", x, SR)
    n1 = system.reference_record("r1")["offsets"].size
    total = system.stats()["fingerprints"]
    with pytest.raises(KeyError):
        system.remove(["r1", "nope"])
    assert "r1" in system
    system.remove(["r1"])
    assert _rows(db) == (2, total - n1)
    assert system.identify(music[1][SR: 4 * SR], SR).ref_id != "r1"
    assert system.identify(music[2][SR: 4 * SR], SR).ref_id == "r2"


def test_cli_keeps_dejavu_in_its_file_and_the_journal_small(tmp_path, music, capsys):
    audio = tmp_path / "audio"
    for i, x in enumerate(music):
        write_audio(audio / f"m{i}.wav", x, SR)
    db = tmp_path / "lib.dejavu"
    args = ["index", str(audio), "--system", "dejavu", "--db", str(db), "--quiet", "--no-calibrate"]
    assert cli.main(args) == 0
    assert _rows(db)[0] == 4
    # one more file: committed to the SQLite file; the journal holds its manifest entry, no rows
    write_audio(audio / "m9.wav", make_music(9, 8.0), SR)
    before = db.read_bytes()
    assert cli.main(args) == 0
    journal = store.read(store.journal_path(db))
    assert journal is not None and [r.name for r in journal.records if r.kind == "add"] == ["m9.wav"]
    assert all(not r.arrays for r in journal.records)
    assert _rows(db)[0] == 5 and db.read_bytes() != before
    system, manifest = cli.open_database(db)
    assert system.in_place and "m9.wav" in system and manifest["files"]["m9.wav"]["seconds"] == 8.0
    capsys.readouterr()
    assert cli.main(["remove", "m2.wav", "--db", str(db)]) == 0
    assert _rows(db)[0] == 4
    system, manifest = cli.open_database(db)
    assert "m2.wav" not in system and "m2.wav" not in manifest["files"]
    assert cli.main(["identify", str(audio / "m3.wav"), "--db", str(db), "--uncalibrated"]) == 0
    assert "m3.wav" in capsys.readouterr().out


def test_a_kill_between_the_file_commit_and_the_journal_keeps_one_copy(tmp_path, music, capsys):
    """The reference's rows are committed to SQLite before its manifest entry reaches the journal; a kill in
    between leaves the rows without the entry. Reopened, the reference is there (its entry rebuilt), and the next
    index passes over it instead of adding it twice."""
    audio = tmp_path / "audio"
    for i, x in enumerate(music[:2]):
        write_audio(audio / f"m{i}.wav", x, SR)
    db = tmp_path / "k.dejavu"
    args = ["index", str(audio), "--system", "dejavu", "--db", str(db), "--quiet", "--no-calibrate"]
    assert cli.main(args) == 0
    write_audio(audio / "m2.wav", music[2], SR)
    from samaf_lib.audio import load_audio

    DejavuOnDisk.open(db).add("m2.wav", load_audio(audio / "m2.wav", SR), SR)  # the rows, then "killed"
    system, manifest = cli.open_database(db)
    assert "m2.wav" in system and manifest["files"]["m2.wav"]["size"] is None
    capsys.readouterr()
    assert cli.main(args) == 0
    assert "0 file(s) added" in capsys.readouterr().out
    assert _rows(db)[0] == 3
    _, manifest = cli.open_database(db)  # and its entry was written from the file on disk
    entry = manifest["files"]["m2.wav"]
    assert entry["size"] == (audio / "m2.wav").stat().st_size and entry["blake2b"] and entry["seconds"] == 8.0
