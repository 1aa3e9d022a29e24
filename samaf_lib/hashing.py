"""Binary hashes: from hash-layer activations to packed bits, Hamming distances and a faiss Hamming index.

Bit order: ``pack`` uses ``np.packbits`` along each row (big-endian within a byte: bit 0 of the hash is the most
significant bit of byte 0). Hamming distances do not depend on the order, and faiss binary indexes take these
bytes as they are.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from .io import atomic_path, save_npz

#: Index kinds: exact brute force, multi-substring hashing (approximate), inverted lists (approximate).
INDEX_KINDS = ("flat", "hash", "ivf")
_FORMAT = "samaf-hamming-index-v1"


def _as_numpy(x) -> np.ndarray:
    if hasattr(x, "detach"):  # a torch tensor
        x = x.detach().cpu().numpy()
    return np.asarray(x)


def binarise(z) -> np.ndarray:
    """Hash bits of activations: ``z > 0``.

    Parameters
    ----------
    z : array-like or torch.Tensor, float, shape (n, bits)

    Returns
    -------
    np.ndarray, uint8, shape (n, bits), values 0 or 1
    """
    z = _as_numpy(z)
    if z.ndim != 2:
        raise ValueError(f"expected activations shaped (n, bits), got shape {z.shape}")
    return (z > 0).astype(np.uint8)


def pack(bits_or_z) -> np.ndarray:
    """Pack bits (or binarise float activations first) into bytes.

    Parameters
    ----------
    bits_or_z : array-like, shape (n, bits)
        Either bits (bool or integer array of 0/1) or float activations (bit = value > 0). ``bits`` must be a
        multiple of 8.

    Returns
    -------
    np.ndarray, uint8, shape (n, bits / 8)
    """
    a = _as_numpy(bits_or_z)
    if a.ndim != 2:
        raise ValueError(f"expected bits or activations shaped (n, bits), got shape {a.shape}")
    if a.shape[1] % 8:
        raise ValueError(f"the number of bits must be a multiple of 8, got {a.shape[1]}")
    if np.issubdtype(a.dtype, np.floating):
        bits = binarise(a)
    else:
        if a.size and (a.min() < 0 or a.max() > 1):
            raise ValueError("integer input to pack() must hold bits (0 or 1); pass float activations to binarise")
        bits = a.astype(np.uint8)
    return np.packbits(bits, axis=1)


def unpack(packed, bits: int | None = None) -> np.ndarray:
    """Inverse of :func:`pack`: ``(n, bytes)`` uint8 -> ``(n, bits)`` uint8 of 0/1 (``bits`` defaults to 8 * bytes)."""
    p = _as_numpy(packed)
    if p.ndim != 2 or p.dtype != np.uint8:
        raise ValueError(f"expected packed codes as uint8 shaped (n, bytes), got {p.dtype} {p.shape}")
    out = np.unpackbits(p, axis=1)
    return out if bits is None else out[:, :bits]


def hamming(a, b, pairwise: bool = True) -> np.ndarray:
    """Hamming distances between packed codes.

    Parameters
    ----------
    a : np.ndarray, uint8, shape (n, bytes) or (bytes,)
    b : np.ndarray, uint8, shape (m, bytes) or (bytes,)
    pairwise : bool
        ``True``: every row of ``a`` against every row of ``b``, result ``(n, m)``. ``False``: row ``i`` of ``a``
        against row ``i`` of ``b`` (``n == m``, or one side a single code broadcast), result ``(n,)``.

    Returns
    -------
    np.ndarray, int32
    """
    a, b = np.atleast_2d(_as_numpy(a)), np.atleast_2d(_as_numpy(b))
    if a.dtype != np.uint8 or b.dtype != np.uint8:
        raise ValueError(f"hamming() takes packed uint8 codes, got {a.dtype} and {b.dtype}")
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"codes of different lengths: {a.shape[1]} and {b.shape[1]} bytes")
    if pairwise:
        x = np.bitwise_xor(a[:, None, :], b[None, :, :])
    else:
        if a.shape[0] != b.shape[0] and 1 not in (a.shape[0], b.shape[0]):
            raise ValueError(f"elementwise hamming() needs equal row counts, got {a.shape[0]} and {b.shape[0]}")
        x = np.bitwise_xor(a, b)
    return np.bitwise_count(x).sum(axis=-1, dtype=np.int32)


class HammingIndex:
    """A faiss binary index over packed codes, with caller-chosen integer ids.

    Parameters
    ----------
    bits : int
        Code length (multiple of 8).
    kind : str
        ``"flat"`` (default): exact k nearest neighbours by brute force (``faiss.IndexBinaryFlat``).
        ``"hash"``: approximate, ``faiss.IndexBinaryMultiHash`` over ``bits / 16`` substrings of 16 bits with
        ``nflip`` flipped bits per lookup (finds a neighbour when one substring is within ``nflip`` bits).
        ``"ivf"``: approximate, ``faiss.IndexBinaryIVF`` with ``nlist`` lists (trained on the first codes added,
        at least ``nlist`` of them) and ``nprobe`` lists searched.
    nflip, nlist, nprobe : int
        Settings of the approximate kinds.

    Notes
    -----
    Missing neighbours (fewer than ``k`` codes, or nothing found by an approximate kind) come back with id ``-1``
    and distance ``bits + 1``.
    """

    def __init__(self, bits: int, kind: str = "flat", nflip: int = 1, nlist: int = 256, nprobe: int = 8) -> None:
        import faiss

        if isinstance(bits, bool) or not isinstance(bits, (int, np.integer)) or bits <= 0 or bits % 8:
            raise ValueError(f"bits must be a positive multiple of 8, got {bits!r}")
        if kind not in INDEX_KINDS:
            raise ValueError(f"kind must be one of {', '.join(INDEX_KINDS)}; got {kind!r}")
        for name, v, lo in (("nflip", nflip, 0), ("nlist", nlist, 1), ("nprobe", nprobe, 1)):
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < lo:
                raise ValueError(f"{name} must be an integer >= {lo}, got {v!r}")
        self.bits, self.kind = int(bits), kind
        self.settings = {"nflip": int(nflip), "nlist": int(nlist), "nprobe": int(nprobe)}
        if kind == "flat":
            self._index = faiss.IndexBinaryFlat(self.bits)
        elif kind == "hash":
            b = min(16, self.bits)
            self._index = faiss.IndexBinaryMultiHash(self.bits, self.bits // b, b)
            self._index.nflip = int(nflip)
        else:
            self._quantizer = faiss.IndexBinaryFlat(self.bits)
            self._index = faiss.IndexBinaryIVF(self._quantizer, self.bits, int(nlist))
            self._index.nprobe = int(nprobe)
        self._ids = np.zeros(0, np.int64)

    @property
    def ntotal(self) -> int:
        """Number of codes stored."""
        return int(self._index.ntotal)

    def __len__(self) -> int:
        return self.ntotal

    def set_search(self, nprobe: int | None = None, nflip: int | None = None) -> None:
        """Change the search effort of a built index: ``nprobe`` (``"ivf"``) or ``nflip`` (``"hash"``).

        Raises ``ValueError`` for a value below 1 (``nprobe``) or 0 (``nflip``), or for a setting the index kind
        does not have.
        """
        for name, v, lo, kind in (("nprobe", nprobe, 1, "ivf"), ("nflip", nflip, 0, "hash")):
            if v is None:
                continue
            if self.kind != kind:
                raise ValueError(f"{name} applies to the {kind!r} index, this one is {self.kind!r}")
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < lo:
                raise ValueError(f"{name} must be an integer >= {lo}, got {v!r}")
            setattr(self._index, name, int(v))
            self.settings[name] = int(v)

    def _check_codes(self, codes) -> np.ndarray:
        c = np.ascontiguousarray(_as_numpy(codes))
        if c.ndim != 2 or c.dtype != np.uint8 or c.shape[1] != self.bits // 8:
            raise ValueError(f"codes must be packed uint8 shaped (n, {self.bits // 8}), got {c.dtype} {c.shape}")
        return c

    def add(self, codes, ids=None) -> None:
        """Add packed codes ``(n, bits/8)`` uint8 with int64 ``ids`` ``(n,)`` (default: ``ntotal .. ntotal+n-1``)."""
        c = self._check_codes(codes)
        if ids is None:
            ids = np.arange(self.ntotal, self.ntotal + c.shape[0], dtype=np.int64)
        ids = np.asarray(ids, np.int64).reshape(-1)
        if ids.shape[0] != c.shape[0]:
            raise ValueError(f"{c.shape[0]} codes but {ids.shape[0]} ids")
        if c.shape[0] == 0:
            return
        if not self._index.is_trained:
            nlist = self.settings["nlist"]
            if c.shape[0] < nlist:
                raise ValueError(f"an ivf index needs at least nlist={nlist} codes in its first add() to train, "
                                 f"got {c.shape[0]}; add more at once or lower nlist")
            self._index.train(c)
        self._index.add(c)
        self._ids = np.concatenate([self._ids, ids])

    def search(self, codes, k: int) -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` nearest stored codes of each query.

        Parameters
        ----------
        codes : np.ndarray, uint8, shape (nq, bits/8)
        k : int
            Neighbours per query (>= 1).

        Returns
        -------
        distances : np.ndarray, int32, shape (nq, k)
            Hamming distances, ascending per row; ``bits + 1`` where no neighbour.
        ids : np.ndarray, int64, shape (nq, k)
            The ids given to :meth:`add`; ``-1`` where no neighbour.
        """
        c = self._check_codes(codes)
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
            raise ValueError(f"k must be an integer >= 1, got {k!r}")
        nq = c.shape[0]
        dist = np.full((nq, k), self.bits + 1, np.int32)
        ids = np.full((nq, k), -1, np.int64)
        kk = min(int(k), self.ntotal)
        if nq == 0 or kk == 0:
            return dist, ids
        d, pos = self._index.search(c, kk)
        found = pos >= 0
        dist[:, :kk] = np.where(found, d, self.bits + 1)
        ids[:, :kk] = np.where(found, self._ids[np.clip(pos, 0, None)], -1)
        return dist, ids

    def save(self, path: str | os.PathLike) -> None:
        """Write the index and its ids to one ``.npz`` file, atomically."""
        import faiss

        blob = faiss.serialize_index_binary(self._index)
        meta = np.array([_FORMAT, self.kind, str(self.bits), str(self.settings["nflip"]),
                         str(self.settings["nlist"]), str(self.settings["nprobe"])])
        with atomic_path(path, suffix=".npz") as tmp:
            save_npz(tmp, False, index=np.asarray(blob, np.uint8), ids=self._ids, meta=meta)

    @classmethod
    def load(cls, path: str | os.PathLike) -> HammingIndex:
        """Read an index written by :meth:`save`; a missing or corrupt file raises an error naming ``path``."""
        import faiss

        p = Path(path)
        if not p.is_file():
            raise FileNotFoundError(f"{p}: no Hamming index there")
        try:
            with np.load(p, allow_pickle=False) as f:
                blob, ids, meta = f["index"], f["ids"], [str(m) for m in f["meta"]]
            if meta[0] != _FORMAT:
                raise ValueError(f"format {meta[0]!r}")
            out = cls(int(meta[2]), kind=meta[1], nflip=int(meta[3]), nlist=int(meta[4]), nprobe=int(meta[5]))
            index = faiss.deserialize_index_binary(blob)
        except Exception as e:
            raise ValueError(f"{p}: not a readable Hamming index ({type(e).__name__}: {e})") from e
        if index.ntotal != ids.shape[0] or index.d != out.bits:
            raise ValueError(f"{p}: inconsistent Hamming index ({index.ntotal} codes, {ids.shape[0]} ids)")
        if out.kind == "hash":
            index.nflip = out.settings["nflip"]
        elif out.kind == "ivf":
            index.nprobe = out.settings["nprobe"]
        out._index, out._ids = index, ids.astype(np.int64)
        return out
