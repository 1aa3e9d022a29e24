"""The SAMAF fingerprinter: exact copies found at the right offset, rejection, errors, save/load, stats.

The model is untrained with a fixed seed: identical input windows give identical codes, which is all that
identifying exact copies needs (a query whose offset lies on the 0.1-s query grid has windows identical to the
reference windows). No checkpoint and no GPU are needed.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from samaf_lib import systems
from samaf_lib.audio import AudioError
from samaf_lib.features import Standardiser, mfcc
from samaf_lib.hashing import unpack
from samaf_lib.model import SAMAF, save_checkpoint
from samaf_lib.systems.base import NO_MATCH
from samaf_lib.systems.samaf import SAMAFSystem

SR = 16000
N_REFS = 10


@pytest.fixture(scope="module")
def model(speech_bank) -> SAMAF:
    torch.manual_seed(0)
    m = SAMAF(bits=128)
    st = Standardiser.fit(np.concatenate([mfcc(a, SR) for a in speech_bank.values()]))
    m.set_standardiser(st.mean, st.std)
    return m.eval()


@pytest.fixture(scope="module")
def refs(speech_bank) -> dict[str, np.ndarray]:
    return dict(list(speech_bank.items())[:N_REFS])


def _build(model: SAMAF, refs: dict[str, np.ndarray], **params) -> SAMAFSystem:
    params.setdefault("db_hop_s", 0.5)  # the tests' counts assume a 0.5-s grid (the study's default is 0.25)
    s = SAMAFSystem(model=model, **params)
    for ref_id, audio in refs.items():
        s.add(ref_id, audio, SR)
    return s


@pytest.fixture(scope="module")
def system(model, refs) -> SAMAFSystem:
    """The evaluation's setting: min_score=0, the best candidate is always returned."""
    return _build(model, refs, min_score=0.0)


def _excerpt(audio: np.ndarray, offset_s: float, seconds: float) -> np.ndarray:
    start = int(round(offset_s * SR))
    return audio[start:start + int(seconds * SR)]


def _grid_offsets(seconds: float, seed: int = 0) -> list[float]:
    rng = np.random.default_rng(seed)
    return [round(float(rng.uniform(0, 8 - seconds)) / 0.1) * 0.1 for _ in range(N_REFS)]


def test_exact_copies_found_at_the_right_offset(system, refs):
    hop = system.params["db_hop_s"]
    for (ref_id, audio), offset in zip(refs.items(), _grid_offsets(3.0)):
        m = system.identify(_excerpt(audio, offset, 3.0), SR)
        assert m.ref_id == ref_id, (ref_id, offset, m)
        assert abs(m.offset_s - offset) <= hop, (ref_id, offset, m)
        assert m.score > 0


def test_identify_resamples_queries(system, refs):
    from samaf_lib.audio import resample

    audio = refs["ref03"]
    q = resample(_excerpt(audio, 2.0, 5.0), SR, 8000)  # a band-limited copy at another rate
    m = SAMAFSystem(model=system.model, min_score=0.0)
    m.add("ref03", audio, SR)
    assert m.identify(q, 8000).ref_id == "ref03"


def test_rejects_silence_and_out_of_database_speech(model, refs, outside_speech):
    """Default min_score: 5-s exact copies pass, 5-s speech from outside the database does not."""
    system = _build(model, refs)
    assert system.params["min_score"] == pytest.approx(0.1)
    assert system.identify(np.zeros(3 * SR, np.float32), SR) == NO_MATCH
    for (ref_id, audio), offset in zip(refs.items(), _grid_offsets(5.0, seed=1)):
        assert system.identify(_excerpt(audio, offset, 5.0), SR).ref_id == ref_id
    for offset in (0.0, 1.0, 2.0, 3.0):
        m = system.identify(_excerpt(outside_speech, offset, 5.0), SR)
        assert m.ref_id is None and m.score < system.params["min_score"], m
    # with min_score=0 (the evaluation's setting) the best candidate comes back with its score
    loose = SAMAFSystem(model=system.model, min_score=0.0)
    loose.add("ref00", refs["ref00"], SR)
    m = loose.identify(_excerpt(outside_speech, 1.0, 5.0), SR)
    assert m.ref_id == "ref00" and m.score >= 0.0


def test_short_or_bad_queries(system):
    assert system.identify(np.full(SR // 2, 0.1, np.float32), SR) == NO_MATCH  # shorter than one window
    with pytest.raises(AudioError):
        system.identify(np.zeros(0, np.float32), SR)
    with pytest.raises(AudioError):
        system.identify(np.full(SR * 2, np.nan, np.float32), SR)
    with pytest.raises(AudioError):
        system.identify(np.zeros((SR * 2, 2), np.float32), SR)
    assert SAMAFSystem(model=system.model).identify(np.ones(2 * SR, np.float32) * 0.1, SR) == NO_MATCH  # empty db


def test_add_errors(model, refs):
    s = SAMAFSystem(model=model)
    s.add("a", refs["ref00"], SR)
    with pytest.raises(ValueError, match="already"):
        s.add("a", refs["ref01"], SR)
    with pytest.raises(AudioError, match="'b'"):
        s.add("b", np.zeros(3 * SR, np.float32), SR)  # silent
    with pytest.raises(AudioError, match="'c'"):
        s.add("c", refs["ref01"][: SR // 2], SR)  # shorter than one window
    with pytest.raises(AudioError, match="'d'"):
        s.add("d", np.full(3 * SR, np.inf, np.float32), SR)
    assert s.references() == ["a"] and "a" in s and "b" not in s and len(s) == 1


def test_wrong_shape_or_nan_features_are_refused(system):
    with pytest.raises(ValueError, match=r"\(batch, 100, 13\)"):
        system.model.hash_windows(np.zeros((2, 99, 13), np.float32))
    bad = np.zeros((2, 100, 13), np.float32)
    bad[0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        system.model.hash_windows(bad)


def test_fingerprint_codes_and_times(system, refs):
    codes, times = system.fingerprint(refs["ref00"], SR)
    assert codes.dtype == np.uint8 and codes.shape == (15, 16)  # 8 s at a 0.5-s hop, 128 bits = 16 bytes
    assert times.dtype == np.float64 and np.allclose(times, np.arange(15) * 0.5)
    assert np.array_equal(codes, system._codes[:15])  # the stored reference codes
    assert unpack(codes).shape == (15, 128)
    short_codes, short_times = system.fingerprint(np.ones(SR // 2, np.float32) * 0.1, SR)
    assert short_codes.shape == (0, 16) and short_times.shape == (0,)


def test_default_reference_hop_is_the_studys():
    import inspect

    assert inspect.signature(SAMAFSystem).parameters["db_hop_s"].default == 0.25


def test_stats(system):
    st = system.stats()
    n = 15 * N_REFS
    assert st["name"] == "samaf" and st["references"] == N_REFS and st["fingerprints"] == n
    assert st["seconds"] == pytest.approx(8.0 * N_REFS)
    assert st["bytes"] == n * (16 + 4 + 4)
    assert st["bits_per_second"] == pytest.approx(256.0) and st["hash_bits_per_second"] == 128.0
    assert st["params"]["db_hop_s"] == 0.5 and st["params"]["checkpoint"] is None
    assert st["params"]["min_score"] == 0.0


def test_save_load_round_trip(system, refs, tmp_path):
    path = tmp_path / "db.samaf"
    system.save(path)
    assert [p.name for p in tmp_path.iterdir()] == ["db.samaf"]
    loaded = SAMAFSystem.load(path)
    assert loaded.references() == system.references() and loaded.params == system.params
    assert loaded.stats()["fingerprints"] == system.stats()["fingerprints"]
    for ref_id, offset in (("ref02", 1.3), ("ref07", 4.0)):
        q = _excerpt(refs[ref_id], offset, 3.0)
        assert loaded.identify(q, SR) == system.identify(q, SR)
    assert systems.load("samaf", path).references() == system.references()


def test_load_errors(tmp_path):
    with pytest.raises(FileNotFoundError):
        SAMAFSystem.load(tmp_path / "missing.npz")
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"not a database")
    with pytest.raises(ValueError, match="bad.npz"):
        SAMAFSystem.load(bad)


def test_no_model_no_checkpoint_says_how_to_get_one(tmp_path, monkeypatch):
    monkeypatch.setenv("SAMAF_ROOT", str(tmp_path))
    with pytest.raises(FileNotFoundError, match="make repro"):
        SAMAFSystem()
    with pytest.raises(FileNotFoundError, match="make repro"):
        systems.get("samaf", checkpoint=str(tmp_path / "none.pt"))


def test_checkpoint_bits_must_match(tmp_path, model):
    path = tmp_path / "m64.pt"
    torch.manual_seed(0)
    save_checkpoint(path, SAMAF(bits=64))
    with pytest.raises(ValueError, match="bits"):
        SAMAFSystem(checkpoint=path)  # bits=128 expected by default
    s = SAMAFSystem(checkpoint=path, bits=64)
    assert s.model.bits == 64 and s.params["checkpoint"] == str(path)
    with pytest.raises(ValueError, match="bits"):
        SAMAFSystem(model=model, bits=256)


@pytest.mark.parametrize("kw", [{"k": 0}, {"db_hop_s": -0.5}, {"query_hop_s": 0}, {"min_score": 1.5},
                                {"max_distance": 200}, {"index": "lsh"}, {"bits": 100}, {"verify": -1},
                                {"device": "tpu"}, {"batch_size": 0}])
def test_bad_parameters_name_the_parameter(model, kw):
    name = next(iter(kw))
    with pytest.raises(ValueError, match=name):
        SAMAFSystem(model=model, **kw)


def test_registry_builds_it(model):
    s = systems.get("samaf", model=model, k=5)
    assert isinstance(s, SAMAFSystem) and s.name == "samaf" and s.params["k"] == 5
    assert isinstance(s, systems.Fingerprinter)


def _short_references(speech_bank, n: int) -> dict[str, np.ndarray]:
    """``n`` references of 1.2 to 3 s cut from the speech bank (distinct excerpts, some with silent windows)."""
    rng = np.random.default_rng(5)
    bank = list(speech_bank.values())
    out = {}
    for i in range(n):
        audio = bank[i % len(bank)]
        length = int(rng.uniform(1.2, 3.0) * SR)
        start = int(rng.integers(0, audio.size - length))
        x = audio[start:start + length].copy()
        if i % 7 == 3:
            x[: SR // 2] = 0.0  # a silent first half second: windows left out of the database
        out[f"short{i:03d}"] = x
    return out


@pytest.mark.parametrize("index", ["flat", "hash"])
def test_many_adds_store_what_adding_one_by_one_stores(model, speech_bank, index, monkeypatch):
    """Growable storage and the deferred index hold exactly what one system per reference computes."""
    from samaf_lib.systems.samaf import _Rows

    monkeypatch.setattr(_Rows, "_MIN_CAPACITY", 16)  # grow (double) many times over these ~1,000 windows
    refs = _short_references(speech_bank, 90)
    many = SAMAFSystem(model=model, db_hop_s=0.1, min_score=0.0, index=index)
    eager = SAMAFSystem(model=model, db_hop_s=0.1, min_score=0.0, index=index)
    codes, win_ref, win_time = [], [], []
    for pos, (ref_id, audio) in enumerate(refs.items()):
        many.add(ref_id, audio, SR)
        eager.add(ref_id, audio, SR)
        eager._sync_index()  # every reference enters the index at once, as before the index was deferred
        alone = SAMAFSystem(model=model, db_hop_s=0.1)
        alone.add(ref_id, audio, SR)
        codes.append(alone._codes)
        win_ref.append(np.full(len(alone._codes), pos, np.int32))
        win_time.append(alone._win_time)
    assert len(many._codes) > 32 * _Rows._MIN_CAPACITY
    assert np.array_equal(many._codes, np.concatenate(codes)) and many._codes.dtype == np.uint8
    assert np.array_equal(many._win_ref, np.concatenate(win_ref)) and many._win_ref.dtype == np.int32
    assert np.array_equal(many._win_time, np.concatenate(win_time)) and many._win_time.dtype == np.float32
    bounds = np.cumsum([0] + [len(c) for c in codes])
    assert many._ref_span == [(int(a), int(b)) for a, b in zip(bounds[:-1], bounds[1:])]
    assert many.stats() == eager.stats()
    assert not many._codes.flags.writeable  # a view of the buffer, not to be written through
    for ref_id, audio in list(refs.items())[::9]:
        got = many.identify(audio, SR)  # an exact copy: identical windows
        assert got == eager.identify(audio, SR) and got.ref_id == ref_id, (ref_id, got)
    # adding after queries (index partly filled) and saving/loading keep the same answers
    many.add("late", speech_bank["ref05"], SR)
    eager.add("late", speech_bank["ref05"], SR)
    q = _excerpt(speech_bank["ref05"], 2.0, 3.0)
    assert many.identify(q, SR) == eager.identify(q, SR) and many.identify(q, SR).ref_id == "late"


def test_saved_file_is_the_same_after_many_adds(model, refs, tmp_path):
    """The saved arrays are those of the old, concatenating add: the references' codes in order."""
    s = _build(model, refs)
    s.save(tmp_path / "a.samaf")
    with np.load(tmp_path / "a.samaf") as f:
        names = set(f.files)
        codes, win_ref, win_time = f["codes"], f["win_ref"], f["win_time"]
    assert {"codes", "win_ref", "win_time", "meta"} <= names
    assert codes.dtype == np.uint8 and win_ref.dtype == np.int32 and win_time.dtype == np.float32
    expected = np.concatenate([s.fingerprint(a, SR)[0] for a in refs.values()])  # no silent windows in these
    assert np.array_equal(codes, expected)
    assert np.array_equal(win_ref, np.repeat(np.arange(N_REFS, dtype=np.int32), 15))


def test_ivf_index_still_trains_on_the_first_reference(model, refs):
    s = SAMAFSystem(model=model, index="ivf")
    with pytest.raises(ValueError, match="nlist"):
        s.add("ref00", refs["ref00"], SR)  # 15 windows cannot train 256 lists, and the error comes at add
    assert len(s) == 0 and len(s._codes) == 0


def test_read_stats_equals_the_loaded_database(system, tmp_path):
    path = tmp_path / "db.samaf"
    system.save(path)
    stats, refs = SAMAFSystem.read_stats(path)
    loaded = SAMAFSystem.load(path)
    assert stats == loaded.stats() == system.stats()
    assert refs == loaded.references() == system.references()
    with pytest.raises(FileNotFoundError):
        SAMAFSystem.read_stats(tmp_path / "missing.samaf")
    (tmp_path / "bad.samaf").write_bytes(b"not a database")
    with pytest.raises(ValueError, match="bad.samaf"):
        SAMAFSystem.read_stats(tmp_path / "bad.samaf")
