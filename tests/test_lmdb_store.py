"""RAFS, Panako, triplets and SAMAF kept in an LMDB file (``samaf_lib.lmdb_store``, ``samaf_lib.samaf_store``):
the same answers as the in-memory systems, one commit per reference seen by a reader without a save, removal in
place, pickling, bad files, and the CLI keeping every system's database in place."""

from __future__ import annotations

import json
import pickle

import numpy as np
import pytest
import torch
from conftest import make_music

from samaf_lib import cli, store
from samaf_lib.audio import write_audio
from samaf_lib.features import Standardiser, mfcc
from samaf_lib.lmdb_store import PanakoOnDisk, RAFSOnDisk, Store, TripletsOnDisk, is_lmdb
from samaf_lib.model import SAMAF
from samaf_lib.samaf_store import SAMAFOnDisk, describe
from samaf_lib.systems.panako import Panako
from samaf_lib.systems.rafs import RAFS
from samaf_lib.systems.samaf import SAMAFSystem
from samaf_lib.systems.triplets import Triplets

SR = 16000
CLASSES = {"rafs": (RAFS, RAFSOnDisk), "panako": (Panako, PanakoOnDisk), "triplets": (Triplets, TripletsOnDisk)}


@pytest.fixture(scope="module")
def music() -> list[np.ndarray]:
    return [make_music(i, 12.0) for i in range(4)]


@pytest.fixture(scope="module")
def model(speech_bank) -> SAMAF:
    torch.manual_seed(0)
    m = SAMAF(bits=64)
    st = Standardiser.fit(np.concatenate([mfcc(a, SR) for a in list(speech_bank.values())[:4]]))
    m.set_standardiser(st.mean, st.std)
    return m.eval()


def _queries(music: list[np.ndarray]) -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    out = []
    for x in music:
        for off, n in ((0.5, 3.0), (2.0, 5.0), (4.3, 7.0)):
            q = x[int(off * SR): int((off + n) * SR)]
            out.append((q + 0.02 * rng.standard_normal(q.size)).astype(np.float32))
    out.append(make_music(99, 5.0))  # not in the database
    return out


@pytest.mark.parametrize("name", sorted(CLASSES))
def test_on_disk_answers_as_in_memory(tmp_path, music, name):
    base, disk = CLASSES[name]
    mem = base()
    for i, x in enumerate(music):
        mem.add(f"r{i}", x, SR)
    db = tmp_path / f"x.{name}"
    disk.create(db, mem)
    assert is_lmdb(db) and not is_lmdb(tmp_path)
    d = disk.open(db, writable=False)
    assert d.in_place and d.references() == mem.references()
    for q in _queries(music):
        assert d.identify(q, SR) == mem.identify(q, SR)
    ms, ds = mem.stats(), d.stats()
    for key in ("references", "fingerprints", "seconds", "bytes", "bits_per_second"):
        assert ds[key] == pytest.approx(ms[key]), key
    assert ds["in_place"] and ds["file_bytes"] > 0
    rec, want = d.reference_record("r2"), mem.reference_record("r2")
    assert sorted(rec) == sorted(want) and all(np.array_equal(rec[k], want[k]) for k in want)
    with pytest.raises(PermissionError):  # a reader cannot write
        d.add("new", music[0], SR)
    d.close()


@pytest.mark.parametrize("name", sorted(CLASSES))
def test_commits_seen_by_a_reader_remove_and_pickle(tmp_path, music, name):
    base, disk = CLASSES[name]
    db = tmp_path / f"y.{name}"
    disk.create(db, base())
    w = disk.open(db, writable=True)
    r = disk.open(db, writable=False)
    assert r.references() == []
    for i, x in enumerate(music[:3]):
        w.add(f"r{i}", x, SR)
    mem = base()
    for i, x in enumerate(music[:3]):
        mem.add(f"r{i}", x, SR)
    q = _queries(music)[4]  # from r1
    assert r.identify(q, SR) == mem.identify(q, SR)  # committed: the reader sees it, no save needed
    assert r.references() == ["r0", "r1", "r2"]
    with pytest.raises(ValueError, match="already"):
        w.add("r1", music[1], SR)
    with pytest.raises(KeyError, match="nope"):
        w.remove(["r0", "nope"])
    assert w.references() == ["r0", "r1", "r2"]  # nothing removed
    w.remove(["r1"])
    mem2 = base()
    for i in (0, 2):
        mem2.add(f"r{i}", music[i], SR)
    assert r.identify(q, SR) == mem2.identify(q, SR)
    assert r.stats()["fingerprints"] == mem2.stats()["fingerprints"]
    again = pickle.loads(pickle.dumps(r))  # a worker process reopens the file
    assert again.references() == ["r0", "r2"] and again.identify(q, SR) == r.identify(q, SR)
    w.save(tmp_path / "copy")  # elsewhere: a compact copy that opens as the same database
    assert disk.open(tmp_path / "copy").references() == ["r0", "r2"]
    w.close()
    r.close()


def test_samaf_on_disk(tmp_path, model, speech_bank):
    refs = dict(list(speech_bank.items())[:4])
    mem = SAMAFSystem(model=model, bits=64)
    for rid, a in refs.items():
        mem.add(rid, a, SR)
    db = tmp_path / "s.samaf"
    SAMAFOnDisk.create(db, SAMAFSystem(model=model, bits=64))
    w = SAMAFOnDisk.open(db, writable=True)
    for rid, a in refs.items():
        w.add(rid, a, SR)
    r = SAMAFOnDisk.open(tmp_path / "s.samaf")  # the same file, read: model and codes come from it
    queries = [a[int(0.3 * SR): int(3.3 * SR)] for a in refs.values()]
    for q in queries:
        assert r.identify(q, SR) == w.identify(q, SR) == mem.identify(q, SR)
    assert r.stats()["bytes"] == mem.stats()["bytes"] and r.references() == mem.references()
    gone = list(refs)[1]
    w.remove([gone])
    assert r.identify(queries[1], SR).ref_id != gone  # the reader catches up with the removal
    assert r.references() == w.references() == [x for x in refs if x != gone]
    stats, names = describe(Store.open(db))  # from the file's tables, without the model or the codes
    assert names == r.references() and stats == r.stats()
    w.close()
    r.close()


@pytest.mark.parametrize("index", ["flat", "ivf"])
def test_samaf_calibration_view_copies_nothing_and_answers_as_a_copy(tmp_path, model, speech_bank, monkeypatch,
                                                                    index):
    """``calibrate.without`` of a SAMAF database in its file shares its codes and index (nothing copied) and
    leaves the hidden references' windows out of every search: exact, it answers as the in-memory copy without
    them, vote scores, verification and chance background included; with the IVF (which faiss cannot filter), the
    same nearest visible neighbours as that index searched with more neighbours and the hidden ones dropped."""
    from samaf_lib.calibrate import without
    from samaf_lib.samaf_store import HidingIndex

    if index == "ivf":
        monkeypatch.setattr(SAMAFOnDisk, "IVF_NLIST", 4)
        monkeypatch.setattr(SAMAFOnDisk, "IVF_NPROBE", 2)
        monkeypatch.setattr(SAMAFOnDisk, "IVF_TRAIN_AT", 60)
    refs = dict(list(speech_bank.items())[:6])
    db = tmp_path / f"v-{index}.samaf"
    SAMAFOnDisk.create(db, SAMAFOnDisk(model=model, bits=64, index=index))
    w = SAMAFOnDisk.open(db, writable=True)
    for rid, a in refs.items():
        w.add(rid, a, SR)
    w.close()
    d = SAMAFOnDisk.open(db)
    hidden = {"ref01", "ref04"}
    view = without(d, hidden)
    assert view is not d and isinstance(view._index, HidingIndex)
    assert view._code_rows is d._code_rows and view._index.inner is d._index  # shared, not copied
    assert view.references() == [r for r in refs if r not in hidden] and len(view) == 4 and "ref01" not in view
    queries = [a[int(0.3 * SR): int(3.3 * SR)] for a in refs.values()] + [speech_bank["ref10"][:3 * SR]]
    if index == "flat":
        mem = SAMAFSystem(model=model, bits=64)
        for rid, a in refs.items():
            if rid not in hidden:
                mem.add(rid, a, SR)
        for q in queries:
            assert view.identify(q, SR) == mem.identify(q, SR)
        codes = view._encode(view._windows(view._prepare(queries[1], SR), 0.1)[0])
        assert view._chance_agreement(codes) == mem._chance_agreement(codes)
    else:
        assert d._index.trained
        rows = view._hidden_rows
        for q in queries:
            codes = view._encode(view._windows(view._prepare(q, SR), 0.1)[0])
            dist, ids = view._index.search(codes, 10)
            assert not np.isin(ids, rows).any()
            d_all, i_all = d._index.search(codes, int(d._index.ntotal))
            for row in range(codes.shape[0]):
                keep = (i_all[row] >= 0) & ~np.isin(i_all[row], rows)
                want = d_all[row][keep][:10]
                assert np.array_equal(dist[row][:want.size], want)
            got = view.identify(q, SR)
            assert got.ref_id not in hidden
    assert d.references() == list(refs)  # the database itself is untouched
    assert d.identify(queries[1], SR).ref_id == "ref01"
    with pytest.raises(ValueError, match="view"):
        view.add_record("x", d.reference_record("ref00"))
    d.close()


def test_samaf_ivf_store_grows_trains_once_and_reopens_without_assigning(tmp_path, model, speech_bank,
                                                                         monkeypatch):
    """``index=ivf``: exact until ``IVF_TRAIN_AT`` windows, then an IVF trained once by the writer (centroids and
    each later reference's lists kept in the file); with every list probed it answers as the exact search."""
    from samaf_lib import samaf_store

    monkeypatch.setattr(SAMAFOnDisk, "IVF_NLIST", 4)
    monkeypatch.setattr(SAMAFOnDisk, "IVF_NPROBE", 4)
    monkeypatch.setattr(SAMAFOnDisk, "IVF_TRAIN_AT", 60)
    refs = dict(list(speech_bank.items())[:6])
    mem = SAMAFSystem(model=model, bits=64)
    db = tmp_path / "ivf.samaf"
    SAMAFOnDisk.create(db, SAMAFOnDisk(model=model, bits=64, index="ivf"))
    w = SAMAFOnDisk.open(db, writable=True)
    assert isinstance(w._index, samaf_store.GrowingIVF) and not w._index.trained
    trained_after = None
    for i, (rid, a) in enumerate(refs.items()):
        w.add(rid, a, SR)
        mem.add(rid, a, SR)
        if trained_after is None and w._index.trained:
            trained_after = i
    assert trained_after is not None and 0 < trained_after < len(refs) - 1
    st = Store.open(db)
    assert st.extra("ivf_centroids") is not None
    has_lists = ["lists" in st.arrays(i) for i in sorted(st.names)]
    assert has_lists == [i >= trained_after for i in range(len(refs))]  # committed once trained: lists kept
    r = SAMAFOnDisk.open(db)  # a reader: trained from the file, lists read, nothing assigned again
    assert r._index.trained and np.array_equal(r._index.centroids, w._index.centroids)
    queries = [a[int(0.3 * SR): int(3.3 * SR)] for a in refs.values()]
    for q in queries:
        got, want = r.identify(q, SR), mem.identify(q, SR)
        assert got == w.identify(q, SR) and got.ref_id == want.ref_id  # reader and writer: one index
        codes = mem._encode(mem._windows(mem._prepare(q, SR), 0.1)[0])
        mem._sync_index()
        # every list probed: the exact neighbours' distances (ties between equal distances may come in another
        # order, so a score can differ in its last votes)
        assert np.array_equal(r._index.search(codes, 10)[0], mem._index.search(codes, 10)[0])
    assert r.params["index"] == "ivf" and r._index.ntotal == len(mem._codes)
    gone = list(refs)[0]
    w.remove([gone])
    assert r.identify(queries[0], SR).ref_id != gone  # the reader catches up with the removal
    assert w._index.trained and w.references() == r.references() == list(refs)[1:]
    monkeypatch.setattr(SAMAFOnDisk, "IVF_NPROBE", 1)  # fewer lists probed: still the same stored index
    one = SAMAFOnDisk.open(db)
    assert one._index.nprobe == 1 and one.identify(queries[2], SR).ref_id == list(refs)[2]
    w.close()
    r.close()
    one.close()


def test_growing_ivf_recall_against_exact():
    from samaf_lib.samaf_store import GrowingIVF

    rng = np.random.default_rng(0)
    centres = rng.integers(0, 256, (200, 16), dtype=np.uint8)
    noise = np.packbits(rng.random((20000, 128)) < 0.1, axis=1)
    codes = centres[rng.integers(0, 200, 20000)] ^ noise
    g = GrowingIVF(128, nlist=64, nprobe=16, train_at=8000)
    for i in range(0, 20000, 1000):
        g.add(codes[i:i + 1000], np.arange(i, i + 1000))
    assert g.trained and g.ntotal == 20000
    import faiss

    exact = faiss.IndexBinaryFlat(128)
    exact.add(codes)
    q = codes[:300] ^ np.packbits(rng.random((300, 128)) < 0.05, axis=1)
    _, got = g.search(q, 10)
    _, want = exact.search(q, 10)
    recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(got, want)])
    assert recall > 0.9
    with pytest.raises(ValueError, match="ivf_train_at"):
        GrowingIVF(128, nlist=64, train_at=10)


def test_bad_files_are_refused_with_their_name(tmp_path, music):
    junk = tmp_path / "junk.rafs"
    junk.write_bytes(b"\0" * 8192)
    with pytest.raises(ValueError, match="junk.rafs"):
        RAFSOnDisk.open(junk)
    with pytest.raises(FileNotFoundError):
        RAFSOnDisk.open(tmp_path / "missing")
    db = tmp_path / "p.panako"
    PanakoOnDisk.create(db, Panako())
    with pytest.raises(ValueError, match="panako database, not rafs"):
        RAFSOnDisk.open(db)


@pytest.mark.parametrize("name", ["rafs", "panako"])
def test_cli_keeps_the_database_in_place(tmp_path, music, name, capsys):
    audio = tmp_path / "audio"
    audio.mkdir()
    for i, x in enumerate(music[:3]):
        write_audio(audio / f"m{i}.wav", x, SR)
    db = tmp_path / f"lib.{name}"
    assert cli.main(["index", str(audio), "--system", name, "--db", str(db), "--no-calibrate", "-q"]) == 0
    assert is_lmdb(db)
    journal = store.read(store.journal_path(db))
    assert all(not r.arrays for r in journal.records)  # the journal holds manifest entries, not fingerprints
    write_audio(audio / "m3.wav", music[3], SR)
    assert cli.main(["index", str(audio), "--db", str(db), "--no-calibrate", "-q"]) == 0
    system, manifest = cli.open_database(db)
    assert cli.in_place(system) and sorted(system.references()) == ["m0.wav", "m1.wav", "m2.wav", "m3.wav"]
    assert manifest["files"]["m3.wav"]["size"] == (audio / "m3.wav").stat().st_size
    system.close()
    capsys.readouterr()
    assert cli.main(["info", "--db", str(db), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["stats"]["references"] == 4 and info["stats"]["in_place"]
    assert cli.main(["remove", "m1.wav", "--db", str(db)]) == 0
    system, _ = cli.open_database(db)
    assert sorted(system.references()) == ["m0.wav", "m2.wav", "m3.wav"]
    system.close()


def test_cli_converts_a_database_saved_whole(tmp_path, music):
    """A database an earlier version saved whole (the system's .npz, with a journal of records carrying arrays)
    still opens and grows; its next fold writes it as a store, with every reference it had."""
    audio = tmp_path / "audio"
    audio.mkdir()
    for i in range(3):
        write_audio(audio / f"m{i}.wav", music[i], SR)
    db = tmp_path / "old.rafs"
    mem = RAFS()
    mem.add("m0.wav", music[0], SR)
    mem.save(db)
    manifest = cli._new_manifest(mem, None)
    manifest["files"]["m0.wav"] = {"size": None, "mtime_ns": None, "seconds": 12.0}
    (tmp_path / "old.rafs.json").write_text(json.dumps(manifest))
    with store.Journal(db, "rafs", cli._jsonable(mem.params)) as j:  # a record as the earlier version wrote it
        other = RAFS()
        other.add("m1.wav", music[1], SR)
        j.append(store.Record("add", "m1.wav", {"size": 1, "mtime_ns": 1, "seconds": 12.0},
                              other.reference_record("m1.wav")))
    assert not is_lmdb(db)
    system, _ = cli.open_database(db)
    assert not cli.in_place(system) and system.references() == ["m0.wav", "m1.wav"]
    assert cli.main(["index", str(audio), "--db", str(db), "--no-calibrate", "-q", "--fold-every", "1"]) == 0
    assert is_lmdb(db)
    system, manifest = cli.open_database(db)
    assert cli.in_place(system) and sorted(system.references()) == ["m0.wav", "m1.wav", "m2.wav"]
    assert system.identify(music[2][SR: 5 * SR], SR).ref_id == "m2.wav"
    system.close()


def test_dask_indexing_equals_serial_indexing(tmp_path, music):
    """``index --dask local:2``: two Dask workers decode and fingerprint, this process writes; the database holds
    the same references with the same records as a serial run, skips included, and a second run adds nothing."""
    pytest.importorskip("distributed")
    audio = tmp_path / "audio"
    audio.mkdir()
    for i, x in enumerate(music + [make_music(10 + i, 4.0) for i in range(4)]):  # more files than the 8 in flight
        write_audio(audio / f"m{i}.wav", x, SR)
    (audio / "broken.wav").write_bytes(b"RIFF0000WAVEjunk")
    write_audio(audio / "short.wav", music[0][: SR // 4], SR)
    dbs = {}
    for label, extra in (("serial", []), ("dask", ["--dask", "local:2"])):
        dbs[label] = tmp_path / f"{label}.rafs"
        assert cli.main(["index", str(audio), "--system", "rafs", "--db", str(dbs[label]), "--no-calibrate", "-q",
                         *extra]) == 0
    a, ma = cli.open_database(dbs["serial"])
    b, mb = cli.open_database(dbs["dask"])
    assert sorted(a.references()) == sorted(b.references()) == [f"m{i}.wav" for i in range(8)]
    for rid in a.references():
        ra, rb = a.reference_record(rid), b.reference_record(rid)
        assert all(np.array_equal(ra[k], rb[k]) for k in ra)
        assert {k: v for k, v in ma["files"][rid].items()} == {k: v for k, v in mb["files"][rid].items()}
    assert sorted(ma["skipped"]) == sorted(mb["skipped"]) == ["broken.wav", "short.wav"]
    assert cli.main(["index", str(audio), "--db", str(dbs["dask"]), "--no-calibrate", "-q", "--dask", "local:2"]) == 0
    assert len(cli.load_system("rafs", dbs["dask"])) == 8


def test_a_store_grows_by_appending_and_opens_without_reading_it(tmp_path, music):
    """Adding a reference to a store writes that reference's pages (and the few tree pages above them), not the
    database again; opening reads the names only."""
    db = tmp_path / "g.rafs"
    RAFSOnDisk.create(db, RAFS())
    w = RAFSOnDisk.open(db, writable=True)
    rng = np.random.default_rng(3)
    w.add("seed", music[0], SR)
    seed = w.reference_record("seed")  # real music, re-keyed 60 times (as the benchmark fills) to make it large
    for i in range(60):
        w.add_record(f"s{i:02d}", {**seed, "codes": seed["codes"] ^ np.uint32(rng.integers(0, 2 ** 32))})
    before = db.read_bytes()
    w.add("new", music[1], SR)
    after = db.read_bytes()
    page = 4096
    old_pages = len(before) // page
    same = sum(before[i * page:(i + 1) * page] == after[i * page:(i + 1) * page] for i in range(old_pages))
    new_bytes = w.reference_record("new")["codes"].nbytes
    assert len(after) - len(before) < 8 * new_bytes + 16 * page  # the new reference, not a copy of the database
    assert same >= 0.8 * old_pages, (same, old_pages)  # what was committed stays where it was
    r = RAFSOnDisk.open(db)
    assert len(r) == 62 and r._parts == [] and r._db is None  # the names, no sub-fingerprint read
    assert r.stats()["fingerprints"] == w.stats()["fingerprints"] == 61 * seed["codes"].size + new_bytes // 4
    w.close()
    r.close()


@pytest.mark.parametrize("name", [*sorted(CLASSES), "dejavu"])
def test_calibration_views_leave_references_out_without_a_copy(tmp_path, music, name):
    """``calibrate.without`` of a database kept in its file is a view of the file (nothing copied) that answers as
    the in-memory copy without those references; the database itself is untouched."""
    from samaf_lib.calibrate import without
    from samaf_lib.sqlite_store import DejavuOnDisk
    from samaf_lib.systems.dejavu import Dejavu

    base, disk = CLASSES.get(name, (Dejavu, DejavuOnDisk))
    mem = base()
    for i, x in enumerate(music):
        mem.add(f"r{i}", x, SR)
    db = tmp_path / f"v.{name}"
    if name == "dejavu":
        mem.save(db)
    else:
        disk.create(db, mem)
    d = disk.open(db, writable=False)
    view, copy = without(d, {"r1", "r3"}), without(mem, {"r1", "r3"})
    assert view is not d and view.references() == copy.references() == ["r0", "r2"]
    assert getattr(view, "_parts", []) == [] and getattr(view, "_chunks", []) == []  # nothing loaded
    for q in _queries(music):
        assert view.identify(q, SR) == copy.identify(q, SR)
    assert d.references() == mem.references() and d.identify(_queries(music)[4], SR) == mem.identify(
        _queries(music)[4], SR)
