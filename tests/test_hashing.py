"""Bits, packing, Hamming distances and the faiss Hamming index."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from samaf_lib.hashing import HammingIndex, binarise, hamming, pack, unpack


def _codes(n: int, bits: int = 128, seed: int = 0) -> np.ndarray:
    return pack(np.random.default_rng(seed).integers(0, 2, (n, bits)).astype(np.uint8))


def _popcount_distance(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    ua, ub = np.unpackbits(a, axis=1).astype(int), np.unpackbits(b, axis=1).astype(int)
    return (ua[:, None, :] != ub[None, :, :]).sum(-1)


def test_binarise_and_pack_sizes():
    z = np.array([[0.3, -0.2, 0.0, 1e-6] * 32], np.float32)
    bits = binarise(z)
    assert bits.dtype == np.uint8 and bits.tolist()[0][:4] == [1, 0, 0, 1]
    for b in (128, 256):
        p = pack(np.random.default_rng(0).standard_normal((5, b)).astype(np.float32))
        assert p.shape == (5, b // 8) and p.dtype == np.uint8
    assert np.array_equal(pack(torch.tensor(z)), pack(z))
    with pytest.raises(ValueError):
        pack(np.zeros((2, 12), np.float32))
    with pytest.raises(ValueError):
        pack(np.full((2, 16), 3, np.uint8))


def test_unpack_inverts_pack():
    bits = np.random.default_rng(2).integers(0, 2, (7, 256)).astype(np.uint8)
    assert np.array_equal(unpack(pack(bits)), bits)
    assert np.array_equal(pack(bits.astype(bool)), pack(bits))


def test_hamming_matches_popcount():
    a, b = _codes(6, seed=1), _codes(9, seed=2)
    d = hamming(a, b)
    assert d.shape == (6, 9)
    assert np.array_equal(d, _popcount_distance(a, b))
    e = hamming(a, b[:6], pairwise=False)
    assert np.array_equal(e, np.diag(_popcount_distance(a, b[:6])))
    assert np.array_equal(hamming(a, a[0], pairwise=False), d_self := _popcount_distance(a, a[:1])[:, 0])
    assert d_self[0] == 0
    with pytest.raises(ValueError):
        hamming(a, b, pairwise=False)


def test_flat_index_returns_exact_nearest():
    db = _codes(500, seed=3)
    ids = np.arange(500) * 10 + 7
    index = HammingIndex(128)
    index.add(db, ids)
    assert index.ntotal == 500 and len(index) == 500
    queries = _codes(20, seed=4)
    dist, got = index.search(queries, 3)
    true = _popcount_distance(queries, db)
    assert dist.shape == got.shape == (20, 3) and dist.dtype == np.int32
    assert np.array_equal(dist[:, 0], true.min(axis=1))
    assert np.array_equal(dist, np.sort(true, axis=1)[:, :3])
    for row in range(20):
        assert true[row, (got[row, 0] - 7) // 10] == true[row].min()


def test_search_more_than_stored_and_empty():
    index = HammingIndex(64)
    dist, ids = index.search(_codes(2, bits=64), 4)
    assert np.all(ids == -1) and np.all(dist == 65)
    index.add(_codes(3, bits=64))
    dist, ids = index.search(_codes(2, bits=64), 4)
    assert np.array_equal(ids[:, 3], [-1, -1]) and set(ids[0, :3]) == {0, 1, 2}


def test_bad_codes_refused():
    index = HammingIndex(128)
    with pytest.raises(ValueError):
        index.add(_codes(3, bits=256))
    with pytest.raises(ValueError):
        index.add(_codes(3), np.arange(2))
    with pytest.raises(ValueError):
        HammingIndex(100)
    with pytest.raises(ValueError):
        HammingIndex(128, kind="lsh")


@pytest.mark.parametrize("kind", ["flat", "hash", "ivf"])
def test_save_load_round_trip(tmp_path, kind):
    db = _codes(400, seed=5)
    index = HammingIndex(128, kind=kind, nlist=8)
    index.add(db, np.arange(400) + 1000)
    q = db[:10].copy()
    q[:, 0] ^= 0b1000_0000  # one bit away from the stored code
    before = index.search(q, 2)
    index.save(tmp_path / "index.npz")
    loaded = HammingIndex.load(tmp_path / "index.npz")
    after = loaded.search(q, 2)
    assert loaded.kind == kind and loaded.ntotal == 400
    assert np.array_equal(before[0], after[0]) and np.array_equal(before[1], after[1])
    assert np.array_equal(after[1][:, 0], np.arange(10) + 1000) and np.all(after[0][:, 0] == 1)


def test_load_errors(tmp_path):
    with pytest.raises(FileNotFoundError):
        HammingIndex.load(tmp_path / "none.npz")
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"garbage")
    with pytest.raises(ValueError, match="bad.npz"):
        HammingIndex.load(bad)


def test_set_search_changes_ivf_effort_and_refuses_the_wrong_kind():
    from samaf_lib.hashing import HammingIndex

    rng = np.random.default_rng(0)
    codes = rng.integers(0, 256, (2000, 16), dtype=np.uint8)
    ivf = HammingIndex(128, kind="ivf", nlist=16, nprobe=1)
    ivf.add(codes)
    ivf.set_search(nprobe=16)
    assert ivf.settings["nprobe"] == 16
    d, i = ivf.search(codes[:20], 1)
    assert (i[:, 0] == np.arange(20)).all() and (d[:, 0] == 0).all()
    with pytest.raises(ValueError, match="nflip"):
        ivf.set_search(nflip=1)
    with pytest.raises(ValueError, match="nprobe"):
        HammingIndex(128).set_search(nprobe=4)
    with pytest.raises(ValueError, match=">= 1"):
        ivf.set_search(nprobe=0)
