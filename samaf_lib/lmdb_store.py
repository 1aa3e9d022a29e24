"""The fingerprints of RAFS, Panako, triplets and SAMAF kept in an LMDB file, for the toolkit: opened without
loading them, grown by one committed transaction per reference (README, "What samaf index guarantees").

The systems' own classes (``samaf_lib.systems``) keep their database in memory and write it out whole; that is
what the study's pipeline uses. At archive scale RAFS alone would hold 1.2 GB per 1,000 hours of sub-fingerprints
in RAM and rewrite them on every save. Here one store layer, :class:`Store`, keeps any of them in one LMDB file
(the key-value store Panako 2 and Olaf keep their fingerprints in), and each system says only what it stores:

- the arrays of a reference (its :meth:`reference_record`), kept whole under the reference's number;
- its *postings*: one fixed-size row per stored fingerprint, filed under the fingerprint's hash (LMDB's sorted
  duplicates), so that a query's hashes are looked up in the file without reading anything else.

:class:`Store` appends, commits, removes and reopens; the on-disk class of each system (:class:`RAFSOnDisk`,
:class:`PanakoOnDisk`, :class:`TripletsOnDisk` in ``samaf_lib.lmdb_systems``, imported from here on first use,
and :class:`SAMAFOnDisk` in ``samaf_lib.samaf_store``) is that system with the same parameters,
fingerprints and scores, its lookups answered by the store. SAMAF's search needs every code in memory (a faiss
binary index), so :class:`SAMAFOnDisk` reads its codes once when it opens, then appends to the file like the others.

A file is ``PATH`` (LMDB's data file) and ``PATH-lock`` (its reader table) beside it. Each reference is one write
transaction, durable when ``add`` returns; a kill at any moment leaves the file as it was after the last commit
(LMDB never overwrites a committed page). Readers open it read-only and see every commit made before their
lookup; the CLI's lock file keeps writers to one.
"""

from __future__ import annotations

import io
import json
import os
import struct
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from .store import check_known

#: The most an LMDB file may grow to: address space reserved when it is opened, not disk (the file grows as it
#: fills).
MAP_SIZE = 1 << 40
#: Format tag in every file's meta table.
FORMAT = "samaf-lmdb-v1"
_LMDB_MAGIC = 0xBEEFC0DE  # at byte 16 of an LMDB data file (its first meta page)
#: LMDB environments open in this process, by resolved path: (environment, writable, users).
_OPEN: dict[str, tuple[Any, bool, int]] = {}
_IDX = struct.Struct(">I")  # a reference's number, big-endian so that the file keeps them in order


def is_lmdb(path: str | os.PathLike) -> bool:
    """True when ``path`` is an LMDB data file (by its first meta page), False for anything else."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(20)
    except OSError:
        return False
    return len(head) == 20 and struct.unpack_from("<I", head, 16)[0] == _LMDB_MAGIC


def _npy(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.lib.format.write_array(buf, np.ascontiguousarray(array), allow_pickle=False)
    return buf.getvalue()


def _from_npy(data: bytes | memoryview) -> np.ndarray:
    return np.lib.format.read_array(io.BytesIO(bytes(data)), allow_pickle=False)


class Store:
    """One LMDB file holding one system's database (see the module docstring). Made by :meth:`init`, opened by
    :meth:`open`.

    Tables: ``meta`` (format, system, parameters, key and posting layout, and the system's extras),
    ``refs`` (name -> number), ``names`` (number -> name, seconds, fingerprints), ``arrays`` (number + field ->
    ``.npy`` bytes), ``postings`` (hash -> fixed-size rows, sorted duplicates).
    """

    def __init__(self, env: Any, path: Path, writable: bool) -> None:
        self._env, self.path, self.writable = env, path, writable
        self._dbs = {name: env.open_db(name.encode(), create=False) for name in ("meta", "refs", "names", "arrays")}
        self._dbs["postings"] = env.open_db(b"postings", dupsort=True, dupfixed=True, create=False)
        with env.begin() as txn:
            raw = txn.get(b"meta", db=self._dbs["meta"])
        if raw is None:
            raise ValueError("no meta record")
        self.meta: dict[str, Any] = json.loads(raw)
        if self.meta.get("format") != FORMAT:
            raise ValueError(f"format {self.meta.get('format')!r}, expected {FORMAT!r}")
        self.key_dtype = np.dtype(self.meta["key"])
        self.row_dtype = np.dtype([(n, t) for n, t in self.meta["row"]])
        self.names: dict[int, tuple[str, float, int]] = {}  # number -> (name, seconds, fingerprints)
        self._entries: tuple[int, int] = (-1, -1)
        self.refresh()

    # -- opening --------------------------------------------------------------------------------------------------
    @staticmethod
    def _env(path: Path, writable: bool, create: bool = False) -> Any:
        """An LMDB environment for ``path``. LMDB allows one per file and process: a file already open here is
        shared (its count of users raised), so that a second open of it in this process reads the same file."""
        import lmdb

        key = str(path.resolve())
        if key in _OPEN:
            env, was_writable, users = _OPEN[key]
            if writable and not was_writable:
                raise ValueError(f"{path} is open read-only in this process (its folder or file is not writable)")
            _OPEN[key] = (env, was_writable, users + 1)
            return env
        # opened for writing whenever the file allows it, so that one environment serves a reader and a writer in
        # this process; a Store opened to read refuses to write (Store.writable)
        writable = writable or (os.access(path, os.W_OK) and os.access(path.parent, os.W_OK))
        env = lmdb.open(str(path), subdir=False, readonly=not writable, create=create, map_size=MAP_SIZE,
                         max_dbs=6, meminit=False, sync=True, metasync=True, readahead=False)
        _OPEN[str(path.resolve())] = (env, writable, 1)
        return env

    @staticmethod
    def _release(env: Any, path: Path) -> None:
        """Close ``env`` when its last user in this process lets it go."""
        key = str(path.resolve())
        _, writable, users = _OPEN.get(key, (env, False, 1))
        if users > 1:
            _OPEN[key] = (env, writable, users - 1)
            return
        _OPEN.pop(key, None)
        env.close()

    @classmethod
    def open(cls, path: str | os.PathLike, writable: bool = False) -> Store:
        """Open the store at ``path``.

        Raises
        ------
        FileNotFoundError
            No file at ``path``.
        ValueError
            Not an LMDB file of this format (the message names ``path``).
        """
        import lmdb

        p = Path(path)
        if not p.is_file():
            raise FileNotFoundError(f"{p}: no such database file")
        if not is_lmdb(p):
            raise ValueError(f"{p}: not an LMDB file")
        try:
            env = cls._env(p, writable)
        except lmdb.Error as e:
            raise ValueError(f"{p}: cannot open it as LMDB ({e})") from e
        try:
            return cls(env, p.resolve(), writable)
        except (lmdb.Error, ValueError, KeyError, TypeError) as e:
            cls._release(env, p)
            raise ValueError(f"{p}: not a samaf LMDB database ({e})") from e

    @classmethod
    def init(cls, path: str | os.PathLike, meta: dict[str, Any], extras: dict[str, bytes] | None = None) -> None:
        """Make ``path`` (absent or empty) a new, empty store: its tables and its meta record.

        ``meta`` holds ``system``, ``params``, ``key`` (the hash's dtype string) and ``row`` (the posting's
        ``[[field, dtype], ...]``), and whatever else the system keeps there; ``extras`` the system's blobs
        (:meth:`extra`). Not atomic by itself: :meth:`OnDisk.create` builds a store beside its target and renames
        it into place."""
        env = cls._env(Path(path), writable=True, create=True)
        try:
            dbs = {name: env.open_db(name.encode()) for name in ("meta", "refs", "names", "arrays")}
            env.open_db(b"postings", dupsort=True, dupfixed=True)
            with env.begin(write=True) as txn:
                txn.put(b"meta", json.dumps({**meta, "format": FORMAT, "next": 0}, sort_keys=True).encode(),
                        db=dbs["meta"])
                for key, data in (extras or {}).items():
                    txn.put(f"extra/{key}".encode(), data, db=dbs["meta"])
            env.sync(True)
        finally:
            cls._release(env, Path(path))

    def extra(self, key: str) -> bytes | None:
        """The system's blob ``key`` (SAMAF: its model), kept in the meta table when the store was created."""
        with self._env.begin() as txn:
            data = txn.get(f"extra/{key}".encode(), db=self._dbs["meta"])
        return None if data is None else bytes(data)

    def put_extra(self, key: str, data: bytes) -> None:
        """Keep (or replace) the blob ``key`` in the meta table, committed when this returns (SAMAF: the trained
        IVF centroids). Needs a writable store."""
        if not self.writable:
            raise ValueError(f"{self.path}: opened read-only; cannot write {key!r}")
        with self._env.begin(write=True) as txn:
            txn.put(f"extra/{key}".encode(), bytes(data), db=self._dbs["meta"])

    def refresh(self) -> bool:
        """Reread the reference list if another process committed since; True when it changed."""
        with self._env.begin() as txn:
            # (references, numbers given out): any add or removal since changes one of the two
            entries = (txn.stat(self._dbs["names"])["entries"],
                       json.loads(txn.get(b"meta", db=self._dbs["meta"]))["next"])
            if entries == self._entries:
                return False
            names = {}
            for k, v in txn.cursor(db=self._dbs["names"]):
                rid, seconds, count = json.loads(bytes(v))
                names[_IDX.unpack(k)[0]] = (str(rid), float(seconds), int(count))
        self.names, self._entries = names, entries
        return True

    # -- writing --------------------------------------------------------------------------------------------------
    def add(self, ref_id: str, seconds: float, count: int, arrays: dict[str, np.ndarray], postings: Any) -> int:
        """Store a reference in one transaction and return its number: its ``arrays``, and the ``(keys, rows)``
        that ``postings(number)`` gives. ``count`` is the fingerprints it holds (for statistics). Durable when
        this returns.

        Raises
        ------
        ValueError
            ``ref_id`` is already stored, or the postings do not match the store's layout.
        """
        self._check_writable()
        with self._env.begin(write=True) as txn:
            if txn.get(ref_id.encode(), db=self._dbs["refs"]) is not None:
                raise ValueError(f"reference {ref_id!r} is already in the database")
            meta = json.loads(txn.get(b"meta", db=self._dbs["meta"]))
            idx = int(meta["next"])
            keys, rows = postings(idx)
            if keys.shape != rows.shape or keys.ndim != 1:
                raise ValueError(f"{ref_id!r}: {keys.shape} keys for {rows.shape} posting rows")
            meta["next"] = idx + 1
            txn.put(b"meta", json.dumps(meta, sort_keys=True).encode(), db=self._dbs["meta"])
            ib = _IDX.pack(idx)
            txn.put(ref_id.encode(), ib, db=self._dbs["refs"])
            txn.put(ib, json.dumps([ref_id, float(seconds), int(count)]).encode(), db=self._dbs["names"])
            for field, arr in arrays.items():
                txn.put(ib + field.encode(), _npy(arr), db=self._dbs["arrays"])
            txn.cursor(db=self._dbs["postings"]).putmulti(self._items(keys, rows, sort=True), dupdata=True)
        self.names[idx] = (ref_id, float(seconds), int(count))
        self._entries = (self._entries[0] + 1, idx + 1)
        return idx

    def _items(self, keys: np.ndarray, rows: np.ndarray, sort: bool = False) -> list[tuple[bytes, bytes]]:
        """``(key bytes, row bytes)`` pairs in the store's layout (sorted by key: LMDB inserts those faster)."""
        k = np.ascontiguousarray(keys, dtype=self.key_dtype)
        v = np.ascontiguousarray(rows, dtype=self.row_dtype)
        if sort:
            order = np.argsort(k, kind="stable")
            k, v = k[order], v[order]
        kb, vb = k.tobytes(), v.tobytes()
        ks, vs = self.key_dtype.itemsize, self.row_dtype.itemsize
        return [(kb[i * ks:(i + 1) * ks], vb[i * vs:(i + 1) * vs]) for i in range(k.size)]

    def _check_writable(self) -> None:
        if not self.writable:
            raise PermissionError(f"{self.path}: opened to read; open it writable to change it")

    def remove(self, idxs: list[int], postings: Any) -> None:
        """Delete the references numbered ``idxs`` in one transaction; ``postings(arrays, idx)`` gives the
        ``(keys, rows)`` each one filed (the system recomputes them from its stored arrays)."""
        self._check_writable()
        with self._env.begin(write=True) as txn:
            for idx in idxs:
                ib = _IDX.pack(idx)
                arrays = self._read_arrays(txn, idx)
                for key, row in self._items(*postings(arrays, idx)):
                    txn.delete(key, row, db=self._dbs["postings"])
                for field in arrays:
                    txn.delete(ib + field.encode(), db=self._dbs["arrays"])
                txn.delete(self.names[idx][0].encode(), db=self._dbs["refs"])
                txn.delete(ib, db=self._dbs["names"])
        for idx in idxs:
            del self.names[idx]
        self._entries = (self._entries[0] - len(idxs), self._entries[1])

    def sync(self) -> None:
        """Flush to disk (every commit already is; this is for a store opened without sync)."""
        if self.writable:
            self._env.sync(True)

    def copy_to(self, path: str | os.PathLike) -> None:
        """A compacted copy of the whole store at ``path``, written atomically."""
        from .io import atomic_path

        with atomic_path(path) as tmp, open(tmp, "wb") as fh:
            self._env.copyfd(fh.fileno(), compact=True)
            fh.flush()
            os.fsync(fh.fileno())

    def close(self) -> None:
        if self._env is not None:
            self._release(self._env, self.path)
            self._env = None

    # -- reading --------------------------------------------------------------------------------------------------
    def _read_arrays(self, txn: Any, idx: int) -> dict[str, np.ndarray]:
        ib = _IDX.pack(idx)
        out = {}
        cur = txn.cursor(db=self._dbs["arrays"])
        if cur.set_range(ib):
            for k, v in cur:
                if not k.startswith(ib):
                    break
                out[bytes(k[len(ib):]).decode()] = _from_npy(v)
        return out

    def arrays(self, idx: int) -> dict[str, np.ndarray]:
        """The arrays stored for reference number ``idx``."""
        with self._env.begin() as txn:
            return self._read_arrays(txn, idx)

    def spans(self, idxs: np.ndarray, field: str, lo: np.ndarray, hi: np.ndarray
              ) -> tuple[list[np.ndarray], np.ndarray]:
        """Elements ``lo[j]:hi[j]`` of the 1-D array ``field`` of each reference ``idxs[j]``, and each array's
        length, read in one transaction straight from the file's pages (only the spans are copied)."""
        out, lengths = [], np.zeros(len(idxs), np.int64)
        with self._env.begin(buffers=True) as txn:
            for j, i in enumerate(idxs):
                buf = txn.get(_IDX.pack(int(i)) + field.encode(), db=self._dbs["arrays"])
                head = io.BytesIO(bytes(buf[:256]))
                read = (np.lib.format.read_array_header_1_0 if np.lib.format.read_magic(head) == (1, 0)
                        else np.lib.format.read_array_header_2_0)
                shape, _, dtype = read(head)
                arr = np.frombuffer(buf, dtype=dtype, count=int(np.prod(shape)), offset=head.tell())
                lengths[j] = arr.size
                a, b = int(np.clip(lo[j], 0, arr.size)), int(np.clip(hi[j], 0, arr.size))
                out.append(arr[a:max(a, b)].copy())
        return out, lengths

    def lookup(self, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The postings filed under each of ``keys``.

        Returns
        -------
        counts : np.ndarray, int64, shape (len(keys),)
            Rows found per key.
        rows : np.ndarray, the store's row dtype, shape (counts.sum(),)
            Every row found, grouped by key in the order of ``keys``.
        """
        k = np.ascontiguousarray(keys, dtype=self.key_dtype)
        uniq, inverse = np.unique(k, return_inverse=True)  # sorted: LMDB walks its tree in order
        ks, vs = self.key_dtype.itemsize, self.row_dtype.itemsize
        ub = uniq.tobytes()
        with self._env.begin() as txn:
            found = txn.cursor(db=self._dbs["postings"]).getmulti(
                [ub[i * ks:(i + 1) * ks] for i in range(uniq.size)], dupdata=True, dupfixed_bytes=vs, keyfixed=True)
            rec = np.frombuffer(bytes(found), dtype=[("key", self.key_dtype), ("row", self.row_dtype)])
        per_uniq = np.bincount(np.searchsorted(uniq, rec["key"]), minlength=uniq.size)
        first = np.concatenate([[0], np.cumsum(per_uniq)[:-1]]).astype(np.int64)
        counts = per_uniq[inverse].astype(np.int64)
        take = np.repeat(first[inverse] - (np.cumsum(counts) - counts), counts) + np.arange(int(counts.sum()))
        return counts, rec["row"][take]

    def postings(self) -> int:
        """Rows in the postings table."""
        with self._env.begin() as txn:
            return int(txn.stat(self._dbs["postings"])["entries"])

    def file_bytes(self) -> int:
        """Bytes the file's pages take (LMDB's last page number times its page size)."""
        info, stat = self._env.info(), self._env.stat()
        return int((info["last_pgno"] + 1) * stat["psize"])


class OnDisk:
    """What the on-disk class of every system shares: it is the system, with its database in a :class:`Store`.

    Constructed directly, it is the in-memory system (used for copies); built by :meth:`open`, it keeps in memory
    only its references' names, seconds and fingerprint counts. Each system declares :attr:`KEY` (its hash's
    dtype), :attr:`ROW` (its posting's fields) and :meth:`_postings` (what it files for a stored record).
    """

    KEY: ClassVar[str]
    ROW: ClassVar[list[tuple[str, str]]]
    #: The base class's list of reference names.
    NAMES: ClassVar[str] = "_ref_ids"
    _disk: Store | None = None
    _hidden: frozenset[int] = frozenset()  # numbers of the references a view leaves out
    _seen: tuple[int, int] = (-1, -1)  # the store's state when the names were last read
    _positions: tuple[np.ndarray, np.ndarray] | None = None  # _position_arrays, built from _idx_list when needed

    # -- what each system says -------------------------------------------------------------------------------------
    def _postings(self, record: dict[str, np.ndarray], idx: int) -> tuple[np.ndarray, np.ndarray]:
        """``(keys, rows)`` that reference number ``idx`` with the stored ``record`` files under its hashes."""
        raise NotImplementedError

    def _count(self, record: dict[str, np.ndarray]) -> int:
        """Fingerprints in ``record`` (for statistics)."""
        return int(next(iter(record.values())).shape[0])

    def _disk_bytes(self, n: int) -> int:
        """The system's ``stats()["bytes"]`` for ``n`` stored fingerprints."""
        raise NotImplementedError

    @classmethod
    def _meta(cls, system: Any) -> dict[str, Any]:
        return {"system": cls.name, "params": system.params, "key": cls.KEY, "row": cls.ROW}

    # -- creating and opening ------------------------------------------------------------------------------------
    @classmethod
    def create(cls, path: str | os.PathLike, system: Any) -> None:
        """Write the in-memory ``system`` as a new store at ``path``, atomically (``path`` is replaced only by the
        complete store)."""
        from .io import atomic_path

        with atomic_path(path) as tmp:  # built whole beside ``path``, then renamed onto it
            Store.init(tmp, cls._meta(system), cls._extras(system))
            disk = cls.open(tmp, writable=True)
            try:
                for rid in system.references():
                    disk.add_record(rid, system.reference_record(rid))
            finally:
                disk.close()
            Path(str(tmp) + "-lock").unlink(missing_ok=True)

    @classmethod
    def _extras(cls, system: Any) -> dict[str, bytes]:
        """What the system needs beyond its parameters (nothing, except for SAMAF's model)."""
        return {}

    @classmethod
    def open(cls, path: str | os.PathLike, writable: bool = False) -> Any:
        """Open the store at ``path`` in place.

        Raises
        ------
        FileNotFoundError
            No file at ``path``.
        ValueError
            Not a store of this system (another system's, another format, damaged); names ``path``.
        """
        st = Store.open(path, writable)
        try:
            if st.meta.get("system") != cls.name:
                raise ValueError(f"{path}: a {st.meta.get('system')} database, not {cls.name}")
            system = cls._from_store(st)
        except Exception:
            st.close()
            raise
        return system

    @classmethod
    def _from_store(cls, st: Store) -> Any:
        system = cls(**st.meta["params"])
        system._disk = st
        system._sync_names(force=True)
        return system

    def _sync_names(self, force: bool = False) -> None:
        """The base class's name list (and the number -> position map) from the store's references (those this
        object hides left out: :meth:`hiding`)."""
        st = self._disk
        st.refresh()
        if st._entries == self._seen and not force:
            return
        self._seen = st._entries
        idxs = sorted(i for i in st.names if i not in self._hidden)
        self._idx_list = idxs
        self._positions = None
        self._idx_of = {st.names[i][0]: i for i in idxs}
        setattr(self, self.NAMES, [st.names[i][0] for i in idxs])
        self._seconds = [st.names[i][1] for i in idxs]

    def _append_name(self, idx: int, ref_id: str, seconds: float) -> None:
        """What :meth:`_sync_names` would read after this process committed reference ``idx`` (numbers only grow),
        without reading every name again: an add stays independent of the database's size."""
        self._idx_list.append(idx)
        getattr(self, self.NAMES).append(ref_id)
        self._seconds.append(seconds)
        self._idx_of[ref_id] = idx
        self._positions = None
        self._seen = self._disk._entries

    def _position_arrays(self) -> tuple[np.ndarray, np.ndarray]:
        """``(numbers, position of each number or -1)`` of the references this object shows, built when needed."""
        if self._positions is None:
            idxs = np.array(self._idx_list, dtype=np.int64)
            pos = np.full(int(idxs[-1]) + 1 if idxs.size else 0, -1, dtype=np.int64)
            pos[idxs] = np.arange(idxs.size)
            self._positions = (idxs, pos)
        return self._positions

    @property
    def _idxs(self) -> np.ndarray:
        return self._position_arrays()[0]

    @property
    def _pos_of(self) -> np.ndarray:
        return self._position_arrays()[1]

    @property
    def in_place(self) -> bool:
        """True when the database is its file (opened by :meth:`open`), False for an in-memory copy."""
        return self._disk is not None

    def hiding(self, names: set[str]) -> Any:
        """A view of this database without the references ``names``: the same file, their hits left out, nothing
        copied (what the calibration queries held-out references against). Read it only; do not close it."""
        view = object.__new__(type(self))
        view.__dict__.update(self.__dict__)
        view._hidden = self._hidden | {self._idx_of[n] for n in names if n in self._idx_of}
        view._sync_names(force=True)
        return view

    def _base(self) -> type:
        return next(c for c in type(self).__mro__[1:] if c is not OnDisk and not issubclass(c, OnDisk))

    def _scratch(self) -> Any:
        """An empty in-memory system with these parameters (sharing the transform already built for them)."""
        out = self._base()(**self.params)
        if getattr(self, "_cqt", None) is not None:
            out._cqt = self._cqt
        return out

    # -- the database ----------------------------------------------------------------------------------------------
    def add(self, ref_id: str, audio: np.ndarray, sr: int) -> None:
        """As the system's ``add``; in place, the reference is committed to the file when this returns."""
        if self._disk is None:
            return super().add(ref_id, audio, sr)
        if ref_id in self._idx_of:
            raise ValueError(f"{self.name}: reference {ref_id!r} is already in the database")
        scratch = self._scratch()
        scratch.add(ref_id, audio, sr)  # the system's own checks and fingerprints
        self._commit(ref_id, scratch.reference_record(ref_id))

    def add_record(self, ref_id: str, record: dict[str, np.ndarray]) -> None:
        """As the system's ``add_record``; in place, committed to the file when this returns."""
        if self._disk is None:
            return super().add_record(ref_id, record)
        if ref_id in self._idx_of:
            raise ValueError(f"{self.name}: reference {ref_id!r} is already in the database")
        scratch = self._scratch()
        scratch.add_record(ref_id, record)  # the system's own record checks
        self._commit(ref_id, scratch.reference_record(ref_id))

    def _commit(self, ref_id: str, record: dict[str, np.ndarray]) -> None:
        arrays = {k: v for k, v in record.items() if k != "seconds"}
        seconds = float(record["seconds"])
        idx = self._disk.add(ref_id, seconds, self._count(arrays), arrays, lambda i: self._postings(arrays, i))
        self._append_name(idx, ref_id, seconds)

    def reference_record(self, ref_id: str) -> dict[str, np.ndarray]:
        if self._disk is None:
            return super().reference_record(ref_id)
        idx = self._idx_of[ref_id]
        return {**self._disk.arrays(idx), "seconds": np.float64(self._disk.names[idx][1])}

    def duration_s(self, ref_id: str) -> float:
        """Seconds of audio stored for ``ref_id``."""
        return float(self._disk.names[self._idx_of[ref_id]][1])

    def remove(self, ref_ids: list[str]) -> None:
        """Delete the references ``ref_ids`` (their arrays and postings) in one transaction.

        Raises
        ------
        KeyError
            A name not in the database (nothing is deleted).
        """
        check_known(ref_ids, self._idx_of)
        self._disk.remove([self._idx_of[r] for r in ref_ids], self._postings)
        self._sync_names(force=True)

    def _known(self, counts: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(counts, rows, positions)`` of the hits whose reference this view knows (a writer may have committed
        one since the names were read: the view is refreshed once, then newer rows are left out)."""
        idx = rows["ref"].astype(np.int64)
        if idx.size and (idx.max() >= self._pos_of.size or (self._pos_of[idx] < 0).any()):
            self._sync_names(force=True)
        ok = idx < self._pos_of.size
        ok[ok] = self._pos_of[idx[ok]] >= 0
        if not ok.all():
            key = np.repeat(np.arange(counts.size), counts)[ok]
            counts, rows, idx = np.bincount(key, minlength=counts.size), rows[ok], idx[ok]
        return counts, rows, self._pos_of[idx]

    def identify(self, audio: np.ndarray, sr: int) -> Any:
        if self._disk is not None:
            self._sync_names()
        return super().identify(audio, sr)

    def stats(self) -> dict[str, Any]:
        """As the system's ``stats``; in place, from the counts kept with each reference (nothing scanned)."""
        if self._disk is None:
            return super().stats()
        self._sync_names()
        n = int(sum(c for _, _, c in self._disk.names.values()))
        seconds = float(sum(self._seconds))
        nbytes = self._disk_bytes(n)
        out = self._scratch().stats()
        out.update({"references": len(self._seconds), "fingerprints": n, "seconds": seconds, "bytes": nbytes,
                    "file_bytes": self._disk.file_bytes(), "in_place": True})
        if "bytes_per_second" in out:
            out["bytes_per_second"] = nbytes / seconds if seconds else 0.0
        if "fingerprints_per_second" in out:
            out["bits_per_second"] = 8.0 * nbytes / seconds if seconds else 0.0
            out["fingerprints_per_second"] = n / seconds if seconds else 0.0
        return out

    def save(self, path: str | os.PathLike) -> None:
        """To its own file: nothing to write (every add is committed). Elsewhere: a compacted copy of the store.
        In memory: the system's own ``save``."""
        if self._disk is None:
            return super().save(path)
        if Path(path).exists() and Path(path).resolve() == self._disk.path:
            self._disk.sync()
            return
        self._disk.copy_to(path)

    def close(self) -> None:
        if self._disk is not None:
            self._disk.close()

    # worker processes reopen the file read-only instead of receiving the database
    def __getstate__(self) -> dict[str, Any]:
        if self._disk is None:
            return dict(self.__dict__)
        return {"__path__": str(self._disk.path)}

    def __setstate__(self, state: dict[str, Any]) -> None:
        if "__path__" not in state:
            self.__dict__.update(state)
            return
        other = type(self).open(state["__path__"], writable=False)
        self.__dict__.update(other.__dict__)


#: The on-disk classes of the three systems kept here besides SAMAF, defined in ``samaf_lib.lmdb_systems`` and
#: imported when first asked for: opening a SAMAF store then imports none of the other systems (nor scipy).
_SYSTEM_CLASSES = {"rafs": "RAFSOnDisk", "panako": "PanakoOnDisk", "triplets": "TripletsOnDisk"}


def __getattr__(name: str) -> Any:
    if name in _SYSTEM_CLASSES.values():
        from . import lmdb_systems

        return getattr(lmdb_systems, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def disk_class(name: str) -> type:
    """The on-disk class of system ``name`` (KeyError for Dejavu, kept in SQLite by ``samaf_lib.sqlite_store``)."""
    if name == "samaf":
        from .samaf_store import SAMAFOnDisk

        return SAMAFOnDisk
    from . import lmdb_systems

    return getattr(lmdb_systems, _SYSTEM_CLASSES[name])


def describe(path: str | os.PathLike) -> tuple[str, dict, list[str]]:
    """``(system, stats, references)`` of a store, from its tables (no fingerprint read, no SAMAF model loaded).

    Raises
    ------
    FileNotFoundError, ValueError
        As :meth:`Store.open`.
    """
    st = Store.open(path)
    try:
        name = str(st.meta.get("system"))
        if name == "samaf":
            from .samaf_store import describe as describe_samaf

            stats, refs = describe_samaf(st)
            return name, stats, refs
        system = disk_class(name)._from_store(st)
        return name, system.stats(), system.references()
    finally:
        st.close()
