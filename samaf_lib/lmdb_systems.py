"""RAFS, Panako 2014 and the triplets system in a :class:`~samaf_lib.lmdb_store.Store`.

Each class says what its system files under which key (see ``samaf_lib.lmdb_store`` for the store layer that
appends, commits, locks and reopens). They live apart from the store layer so that opening a SAMAF store imports
none of these systems: ``samaf identify`` on a SAMAF database then starts without them.
"""

from __future__ import annotations

import numpy as np

from .lmdb_store import OnDisk
from .systems.panako import BYTES_PER_TRIPLET as PANAKO_TRIPLET_BYTES
from .systems.panako import Panako
from .systems.rafs import RAFS
from .systems.triplets import BYTES_PER_TRIPLET as TRIPLETS_TRIPLET_BYTES
from .systems.triplets import Triplets


class RAFSOnDisk(OnDisk, RAFS):
    """RAFS in a :class:`Store`: every non-quiet sub-fingerprint filed under its 32 bits, as (reference, position);
    the codes of each reference kept whole for the BER verification, which reads only the candidates' spans."""

    KEY = ">u4"
    ROW = [("ref", ">u4"), ("pos", ">u4")]
    NAMES = "_ids"

    def _postings(self, record: dict[str, np.ndarray], idx: int) -> tuple[np.ndarray, np.ndarray]:
        pos = np.flatnonzero(~record["quiet"])
        rows = np.zeros(pos.size, dtype=self.ROW)
        rows["ref"], rows["pos"] = idx, pos
        return record["codes"][pos], rows

    def _disk_bytes(self, n: int) -> int:
        return 4 * n + (n + 7) // 8 + 8 * (len(self._seconds) + 1)

    def _database(self) -> dict[str, np.ndarray]:
        return {} if self._disk is not None else super()._database()

    def _lookup(self, db: dict[str, np.ndarray], keys: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        if self._disk is None:
            return super()._lookup(db, keys)
        counts, rows, ref = self._known(*self._disk.lookup(keys))
        return counts, ref, rows["pos"].astype(np.int64)

    def _verify(self, db: dict[str, np.ndarray], q: np.ndarray, cand_ref: np.ndarray,
                cand_start: np.ndarray) -> tuple[float, int, int] | None:
        if self._disk is None:
            return super()._verify(db, q, cand_ref, cand_start)
        # the same BER over the span of each candidate reference that the candidates cover, read from the file
        refs, local_ref = np.unique(cand_ref, return_inverse=True)
        lo_s = np.full(refs.size, np.iinfo(np.int64).max)
        hi_s = np.full(refs.size, np.iinfo(np.int64).min)
        np.minimum.at(lo_s, local_ref, cand_start)
        np.maximum.at(hi_s, local_ref, cand_start)
        parts, lengths = self._disk.spans(self._idxs[refs], "codes", lo_s, hi_s + q.size)
        lo = np.clip(lo_s, 0, lengths)
        span = np.array([p.size for p in parts], np.int64)
        local = {"codes": np.concatenate(parts) if parts else np.zeros(0, np.uint32), "lengths": span,
                 "starts": np.concatenate([[0], np.cumsum(span)]).astype(np.int64)}
        found = super()._verify(local, q, local_ref.astype(np.int64), cand_start - lo[local_ref])
        if found is None:
            return None
        rate, r, s = found
        return rate, int(refs[r]), int(s + lo[r])


class PanakoOnDisk(OnDisk, Panako):
    """Panako 2014 in a :class:`Store`: each triplet filed under its hash, as (reference, t1, Δt13, f1), the
    fields the offset histogram needs (Panako 2 keeps its fingerprints in LMDB in the same way)."""

    KEY = ">i4"
    ROW = [("ref", ">u4"), ("t1", ">i4"), ("dt13", ">i2"), ("f1", ">i2")]

    def _postings(self, record: dict[str, np.ndarray], idx: int) -> tuple[np.ndarray, np.ndarray]:
        rows = np.zeros(record["hashes"].size, dtype=self.ROW)
        rows["ref"] = idx
        for f in ("t1", "dt13", "f1"):
            rows[f] = record[f]
        return record["hashes"], rows

    def _disk_bytes(self, n: int) -> int:
        return n * PANAKO_TRIPLET_BYTES

    def _lookup(self, hashes: np.ndarray) -> tuple[np.ndarray, ...]:
        if self._disk is None:
            return super()._lookup(hashes)
        counts, rows, ref = self._known(*self._disk.lookup(hashes))
        return (counts, ref.astype(np.int32), rows["t1"].astype(np.int32), rows["dt13"].astype(np.int16),
                rows["f1"].astype(np.int16))


class TripletsOnDisk(OnDisk, Triplets):
    """Our triplets system in a :class:`Store`: each triplet filed under its hash, as (reference, its number in
    the reference, t1, f1, Δt13)."""

    KEY = ">i8"
    ROW = [("ref", ">u4"), ("i", ">u4"), ("t1", ">i4"), ("f1", ">i2"), ("dt13", ">i2")]

    def _postings(self, record: dict[str, np.ndarray], idx: int) -> tuple[np.ndarray, np.ndarray]:
        rows = np.zeros(record["hashes"].size, dtype=self.ROW)
        rows["ref"], rows["i"] = idx, np.arange(record["hashes"].size)
        for f in ("t1", "f1", "dt13"):
            rows[f] = record[f]
        return record["hashes"], rows

    def _disk_bytes(self, n: int) -> int:
        return n * TRIPLETS_TRIPLET_BYTES

    def _lookup(self, hashes: np.ndarray) -> tuple[np.ndarray, ...]:
        if self._disk is None:
            return super()._lookup(hashes)
        counts, rows, ref = self._known(*self._disk.lookup(hashes))
        triplet = (rows["ref"].astype(np.int64) << 32) | rows["i"].astype(np.int64)
        return (counts, triplet, ref.astype(np.int32), rows["t1"].astype(np.int32), rows["f1"].astype(np.int16),
                rows["dt13"].astype(np.int16))
