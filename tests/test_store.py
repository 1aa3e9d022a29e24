"""The journal of a ``samaf`` database (``samaf_lib.store``) and the per-reference records it carries.

A journal grows by appends only, a torn last record is ignored and cut off, damage before the end is refused with
the file named; every system gives back from a record exactly the database ``add`` built; and ``samaf index``
commits a file to a large database without rewriting the database file.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
from conftest import make_speech

from samaf_lib import cli, store, systems
from samaf_lib.audio import write_audio
from samaf_lib.lmdb_store import RAFSOnDisk

SR = 16000


def _record(i: int, n: int = 50) -> store.Record:
    rng = np.random.default_rng(i)
    return store.Record("add", f"r{i}.wav", {"size": n, "blake2b": f"{i:032x}"},
                        {"codes": rng.integers(0, 2**32, n, dtype=np.uint32), "quiet": rng.random(n) < 0.1,
                         "seconds": np.float64(n / 86.0)})


def _open(tmp_path: Path) -> store.Journal:
    return store.Journal(tmp_path / "x.db", "rafs", {"hop": 64})


def test_a_journal_grows_by_appends_and_reads_back(tmp_path):
    journal = _open(tmp_path)
    for i in range(3):
        before = journal.path.read_bytes()
        journal.append(_record(i))
        after = journal.path.read_bytes()
        assert after.startswith(before) and len(after) > len(before)  # appended, nothing before it rewritten
    journal.close()
    contents = store.read(journal.path)
    assert (contents.system, contents.params, contents.torn) == ("rafs", {"hop": 64}, 0)
    assert [r.name for r in contents.records] == ["r0.wav", "r1.wav", "r2.wav"]
    got = contents.records[1]
    assert got.kind == "add" and got.entry == {"size": 50, "blake2b": f"{1:032x}"}
    np.testing.assert_array_equal(got.arrays["codes"], _record(1).arrays["codes"])
    assert got.arrays["quiet"].dtype == bool and float(got.arrays["seconds"]) == pytest.approx(50 / 86.0)


@pytest.mark.parametrize("cut", [1, 5, 9, 100])
def test_a_torn_last_record_is_ignored_and_cut_off_by_the_next_writer(tmp_path, cut):
    journal = _open(tmp_path)
    for i in range(3):
        journal.append(_record(i))
    journal.close()
    data = journal.path.read_bytes()
    journal.path.write_bytes(data[:-cut])  # a kill in the middle of the last write
    contents = store.read(journal.path)
    assert [r.name for r in contents.records] == ["r0.wav", "r1.wav"] and contents.torn > 0
    reopened = _open(tmp_path)
    assert reopened.records == 2 and reopened.path.stat().st_size == contents.end
    reopened.append(_record(7))
    reopened.close()
    assert [r.name for r in store.read(journal.path).records] == ["r0.wav", "r1.wav", "r7.wav"]


def test_damage_before_the_end_is_refused_naming_the_file(tmp_path):
    journal = _open(tmp_path)
    for i in range(3):
        journal.append(_record(i))
    journal.close()
    data = bytearray(journal.path.read_bytes())
    data[len(data) // 2] ^= 0xFF  # inside the second record's payload
    journal.path.write_bytes(bytes(data))
    with pytest.raises(store.JournalError, match="x.db.journal.*checksum"):
        store.read(journal.path)
    with pytest.raises(store.JournalError, match="x.db.journal"):
        _open(tmp_path)
    journal.path.write_bytes(b"something else entirely")
    with pytest.raises(store.JournalError, match="not a samaf journal"):
        store.read(journal.path)


def test_a_journal_of_other_parameters_is_refused(tmp_path):
    _open(tmp_path).close()
    with pytest.raises(store.JournalError, match="other parameters"):
        store.Journal(tmp_path / "x.db", "rafs", {"hop": 32})


def _clip(seed: int, seconds: float = 6.0) -> np.ndarray:
    return make_speech(seed, seconds)


@pytest.mark.parametrize("name", ["rafs", "dejavu", "panako", "triplets", "samaf"])
def test_a_record_rebuilds_exactly_what_add_stored(tmp_path, name):
    kwargs = {}
    if name == "samaf":
        import torch

        from samaf_lib.model import SAMAF

        with torch.random.fork_rng():
            torch.manual_seed(0)
            kwargs = {"model": SAMAF(bits=128, hidden=32)}
    built, rebuilt = systems.get(name, **kwargs), systems.get(name, **kwargs)
    for i in range(3):
        built.add(f"r{i}", _clip(200 + i), SR)
    for rid in built.references():
        record = built.reference_record(rid)
        # through the journal's own encoding, as a reopened database gets it
        data = store.MAGIC + b'{"params": {}, "system": "x"}\n' + store.encode(store.Record("add", rid, {}, record))
        decoded = store.parse(data).records[0]
        rebuilt.add_record(rid, decoded.arrays)
    built.save(tmp_path / "a")
    rebuilt.save(tmp_path / "b")
    digest = [hashlib.sha256((tmp_path / f).read_bytes()).hexdigest() for f in ("a", "b")]
    assert digest[0] == digest[1]
    query = _clip(201)[SR: 5 * SR]
    assert built.identify(query, SR) == rebuilt.identify(query, SR)
    with pytest.raises(ValueError, match="already in the database"):
        rebuilt.add_record("r0", built.reference_record("r0"))
    broken = dict(built.reference_record("r1"))
    broken.pop(next(k for k in broken if k != "seconds"))
    with pytest.raises(ValueError, match="lacks"):
        rebuilt.add_record("new", broken)


@pytest.fixture()
def folder(tmp_path) -> Path:
    audio = tmp_path / "audio"
    audio.mkdir()
    for i in range(6):
        write_audio(audio / f"f{i}.wav", _clip(300 + i, 4.0), SR)
    return audio


def _index(*args) -> int:
    return cli.main(["index", *map(str, args), "--quiet", "--no-calibrate"])


def test_adding_a_file_commits_it_without_rewriting_the_database(folder, tmp_path, capsys):
    db = tmp_path / "x.rafs"
    assert _index(folder, "--system", "rafs", "--db", db) == 0
    journal = store.journal_path(db)
    manifest_before = cli.manifest_path(db).read_text()
    assert store.read(journal).records == []  # a new database got its first snapshot
    write_audio(folder / "g.wav", _clip(400, 4.0), SR)
    assert _index(folder, "--db", db) == 0
    # the reference is committed to the database's own file (LMDB, in place); the manifest is not rewritten, the
    # journal holds the file's entry and nothing the file already has
    assert "g.wav" in RAFSOnDisk.open(db).references()
    assert cli.manifest_path(db).read_text() == manifest_before
    assert [(r.name, r.arrays) for r in store.read(journal).records] == [("g.wav", {})]
    system, manifest = cli.open_database(db)  # readers replay the journal
    assert "g.wav" in system.references() and manifest["files"]["g.wav"]["blake2b"]
    assert system.identify(_clip(400, 4.0)[SR: 3 * SR], SR).ref_id == "g.wav"
    capsys.readouterr()
    code = cli.main(["info", "--db", str(db), "--json"])
    info = json.loads(capsys.readouterr().out)
    assert code == 0 and info["references"] == 7 and info["journal_bytes"] > 0
    assert _index(folder, "--db", db) == 0 and "0 file(s) added" in capsys.readouterr().out


def test_a_fold_cut_short_after_the_snapshot_repeats_nothing(folder, tmp_path, capsys):
    """A kill after the new snapshot was written but before the journal was emptied: the journal's records are
    already in the snapshot, and reopening adds none of them twice."""
    db = tmp_path / "x.rafs"
    assert _index(folder, "--system", "rafs", "--db", db) == 0
    write_audio(folder / "g.wav", _clip(400, 4.0), SR)
    assert _index(folder, "--db", db) == 0
    journal = store.journal_path(db).read_bytes()
    system, manifest = cli.open_database(db)
    cli.save_database(system, db, manifest)  # the fold's first step, and then the kill
    assert store.journal_path(db).read_bytes() == journal
    reopened, manifest = cli.open_database(db)
    assert sorted(reopened.references()) == sorted(set(reopened.references())) == sorted(manifest["files"])
    assert len(reopened) == 7
    assert _index(folder, "--db", db) == 0 and "0 file(s) added" in capsys.readouterr().out


def test_a_damaged_journal_stops_index_and_info_with_its_name(folder, tmp_path, capsys):
    db = tmp_path / "x.rafs"
    assert _index(folder, "--system", "rafs", "--db", db) == 0
    store.journal_path(db).write_bytes(b"not a journal")
    assert cli.main(["info", "--db", str(db)]) == 2
    assert "x.rafs.journal: not a samaf journal" in capsys.readouterr().err
    assert _index(folder, "--db", db) == 2
    assert "x.rafs.journal" in capsys.readouterr().err
