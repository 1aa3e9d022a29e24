"""Dejavu's database kept in its SQLite file, for the toolkit: opened without loading it, grown by one committed
transaction per reference (README, "What samaf index guarantees").

:class:`Dejavu` (``samaf_lib.systems.dejavu``) keeps its database in memory and writes it out whole; that is what
the study's pipeline uses. At archive scale it would hold every fingerprint in RAM (40 MB per hour: about 40 GB
at 1,000 hours) and rewrite the file on every save. :class:`DejavuOnDisk` is the same system, same schema, same
queries, with the connection pointed at the file itself:

- the file is put in SQLite's write-ahead-log mode (``PATH-wal`` and ``PATH-shm`` beside it) with
  ``synchronous = FULL``: each reference is one transaction (its song row and all its fingerprint rows, inserted
  in one batch), durable when ``add`` returns. A kill during a transaction leaves the file as it was before it;
- queries read pages through SQLite's cache (``cache_kb``), so resident memory does not grow with the database;
- readers open the file read-only and see every transaction committed before they began; SQLite's own locks
  let them read while one writer appends (the CLI's lock file keeps writers to one);
- :meth:`DejavuOnDisk.save` to its own file is a checkpoint (the log folded into the file), to another path a
  copy; :meth:`DejavuOnDisk.remove` deletes references in place.

A file written by :meth:`Dejavu.save` opens here and the other way round: only the journal mode differs.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path
from typing import Any

import numpy as np

from .store import check_known
from .systems.dejavu import Dejavu, _check_schema, _read_meta, _read_songs

#: SQLite page cache per connection, in KiB (SQLite's ``cache_size`` takes a negative KiB count).
CACHE_KB = 64 * 1024


class DejavuOnDisk(Dejavu):
    """A Dejavu database that lives in its SQLite file (see the module docstring). Built by :meth:`open`;
    constructed directly, it is an in-memory :class:`Dejavu` (used for copies)."""

    _path: Path | None = None
    _writable: bool = False
    _hidden_songs: np.ndarray = np.zeros(0, np.int64)  # song ids a view leaves out (hiding)

    @classmethod
    def open(cls, path: str | os.PathLike, writable: bool = True, cache_kb: int = CACHE_KB) -> DejavuOnDisk:
        """Open the database file ``path`` in place.

        Raises
        ------
        FileNotFoundError
            No file at ``path``.
        ValueError
            Not SQLite, or not a Dejavu database (foreign objects, missing tables, another format); names ``path``.
        """
        p = Path(path)
        if not p.is_file():
            raise FileNotFoundError(f"{p}: no such Dejavu database file")
        uri = f"{p.resolve().as_uri()}?mode={'rw' if writable else 'ro'}"
        try:
            con = sqlite3.connect(uri, uri=True, check_same_thread=False)
        except sqlite3.Error as e:
            raise ValueError(f"{p}: cannot open it as SQLite ({e})") from e
        try:
            con.execute(f"PRAGMA cache_size = {-int(cache_kb)}")
            if writable:
                mode = con.execute("PRAGMA journal_mode = WAL").fetchone()[0]
                if str(mode).lower() != "wal":
                    raise sqlite3.DatabaseError(f"cannot switch it to write-ahead logging (journal mode {mode})")
                con.execute("PRAGMA synchronous = FULL")
            con.execute("PRAGMA foreign_keys = ON")
            _check_schema(con)
            params = _read_meta(con)
            system = cls(**params)
            system._con.close()
            system._con = con
            system._refs = _read_songs(con)
        except (sqlite3.Error, KeyError, TypeError, ValueError) as e:
            con.close()
            raise ValueError(f"{p}: not a Dejavu database ({e})") from e
        system._path = p.resolve()
        system._writable = writable
        return system

    @property
    def in_place(self) -> bool:
        """True when the database is its file (opened by :meth:`open`), False for an in-memory copy."""
        return self._path is not None

    def save(self, path: str | os.PathLike) -> None:
        """To its own file: fold the write-ahead log into the file (nothing else to write, every add is committed).
        Elsewhere (or in memory): an atomic copy, as :meth:`Dejavu.save`."""
        if self._path is not None and Path(path).exists() and Path(path).resolve() == self._path:
            if self._writable:
                self._con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            return
        super().save(path)

    def hiding(self, names: set[str]) -> DejavuOnDisk:
        """A view of this database without the references ``names``: the same file, their votes left out,
        nothing copied (what the calibration queries held-out references against). Read it only; do not close it."""
        view = object.__new__(type(self))
        view.__dict__.update(self.__dict__)
        view._refs = {k: v for k, v in self._refs.items() if k not in names}
        view._hidden_songs = np.union1d(self._hidden_songs, [self._refs[n][0] for n in names if n in self._refs])
        return view

    def _votes(self, query: list[tuple[str, int]]) -> tuple[np.ndarray, np.ndarray]:
        song, diff = super()._votes(query)
        if self._hidden_songs.size:
            keep = ~np.isin(song, self._hidden_songs)
            song, diff = song[keep], diff[keep]
        return song, diff

    def duration_s(self, ref_id: str) -> float:
        """Seconds of audio stored for ``ref_id`` (from the songs table, no fingerprint read)."""
        return float(self._refs[ref_id][1])

    def remove(self, ref_ids: list[str]) -> None:
        """Delete the references ``ref_ids`` (their songs and fingerprints) in one transaction.

        Raises
        ------
        KeyError
            A name not in the database (nothing is deleted).
        """
        check_known(ref_ids, self._refs)
        with self._con:
            for rid in ref_ids:
                song_id = self._refs[rid][0]
                self._con.execute("DELETE FROM fingerprints WHERE song_id = ?", (song_id,))
                self._con.execute("DELETE FROM songs WHERE song_id = ?", (song_id,))
        for rid in ref_ids:
            del self._refs[rid]

    def stats(self) -> dict[str, Any]:
        """As :meth:`Dejavu.stats`; in place, the row count is the songs' ``total_hashes`` (no scan of the
        fingerprints table)."""
        if self._path is None:
            return super().stats()
        n_fp = int(self._con.execute("SELECT COALESCE(SUM(total_hashes), 0) FROM songs WHERE fingerprinted = 1")
                   .fetchone()[0])
        seconds = float(sum(d for _, d, _ in self._refs.values()))
        pages = self._con.execute("PRAGMA page_count").fetchone()[0]
        page_size = self._con.execute("PRAGMA page_size").fetchone()[0]
        hash_bytes = (int(self.params["fingerprint_reduction"]) + 1) // 2
        return {"name": self.name, "references": len(self._refs), "fingerprints": n_fp, "seconds": seconds,
                "bytes": n_fp * (hash_bytes + 8), "file_bytes": int(pages * page_size),
                "bits_per_second": 8.0 * hash_bytes * n_fp / seconds if seconds else 0.0,
                "fingerprints_per_second": n_fp / seconds if seconds else 0.0, "params": dict(self.params),
                "in_place": True}

    def close(self) -> None:
        """Close the connection (a writer's log is folded into the file first)."""
        if self._path is not None and self._writable:
            try:
                self._con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            except sqlite3.Error:
                pass
        self._con.close()

    # worker processes reopen the file read-only instead of receiving the database's bytes
    def __getstate__(self) -> dict[str, Any]:
        if self._path is None:
            return super().__getstate__()
        return {"params": self.params, "path": str(self._path)}

    def __setstate__(self, state: dict[str, Any]) -> None:
        if "path" not in state:
            super().__setstate__(state)
            return
        other = type(self).open(state["path"], writable=False)
        self.__dict__.update(other.__dict__)
