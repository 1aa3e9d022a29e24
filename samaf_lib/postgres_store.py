"""Dejavu's database on a PostgreSQL server, for the toolkit: ``samaf index DIR --system dejavu --db
postgresql://USER@HOST/DBNAME`` (Dejavu itself can keep its fingerprints in PostgreSQL as well as in MySQL).

:class:`DejavuPostgres` is :class:`~samaf_lib.systems.dejavu.Dejavu` with the same schema (``songs``,
``fingerprints`` with its hash index, ``meta``), the same queries and parameters, its connection pointed at the
server. Dejavu's queries are written for SQLite; :class:`_Connection` runs them on PostgreSQL (placeholders,
``INSERT OR IGNORE``, the new song's id, ``with con:`` as one transaction). Each reference is one transaction,
durable when ``add`` returns (the server's own guarantee); readers see every commit made before their query.

The database has no file, but the CLI keeps a manifest, a journal and a lock beside each database: for a server
they live in a small local *pointer file* that names the server (:func:`pointer_for`), under ``SAMAF_STATE_DIR``
(default ``~/.local/state/samaf``). The lock keeps writers on this machine to one; writers on several machines
each need their own database.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path
from typing import Any

from .store import check_known
from .systems.dejavu import FORMAT_VERSION, Dejavu

#: Tag of a pointer file.
POINTER_FORMAT = "samaf-postgresql-pointer-v1"
URL_PREFIXES = ("postgresql://", "postgres://")

_SCHEMA = (
    """CREATE TABLE songs (
        song_id BIGSERIAL PRIMARY KEY,
        song_name TEXT NOT NULL UNIQUE,
        fingerprinted SMALLINT NOT NULL DEFAULT 0,
        file_sha1 TEXT NOT NULL,
        total_hashes INTEGER NOT NULL DEFAULT 0,
        duration_s DOUBLE PRECISION NOT NULL,
        sample_rate INTEGER NOT NULL
    )""",
    """CREATE TABLE fingerprints (
        song_id BIGINT NOT NULL REFERENCES songs(song_id) ON DELETE CASCADE,
        "offset" INTEGER NOT NULL,
        hash BYTEA NOT NULL,
        PRIMARY KEY (song_id, "offset", hash)
    )""",
    "CREATE INDEX ix_fingerprints_hash ON fingerprints(hash)",
    "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
)
_TABLES = ("songs", "fingerprints", "meta")


def is_url(db: str | os.PathLike) -> bool:
    return str(db).startswith(URL_PREFIXES)


def _state_dir() -> Path:
    return Path(os.environ.get("SAMAF_STATE_DIR") or Path.home() / ".local" / "state" / "samaf")


def pointer_for(url: str) -> Path:
    """The local pointer file of the database at ``url`` (its manifest, journal and lock sit beside it)."""
    return _state_dir() / f"postgresql-{hashlib.blake2b(url.encode(), digest_size=8).hexdigest()}.dejavu"


def write_pointer(url: str) -> Path:
    from .io import write_json

    p = pointer_for(url)
    write_json(p, {"format": POINTER_FORMAT, "url": url})
    return p


def read_pointer(path: str | os.PathLike) -> str | None:
    """The server URL a pointer file names, or None when ``path`` is not a pointer file."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(4096)
        data = json.loads(head)
    except (OSError, ValueError):
        return None
    if isinstance(data, dict) and data.get("format") == POINTER_FORMAT and is_url(str(data.get("url", ""))):
        return str(data["url"])
    return None


class _Cursor:
    def __init__(self, cur: Any, lastrowid: int | None = None) -> None:
        self._cur, self.lastrowid = cur, lastrowid

    def fetchone(self) -> Any:
        return self._cur.fetchone()

    def fetchall(self) -> list:
        return self._cur.fetchall()

    def __iter__(self):
        return iter(self._cur.fetchall())


_PLACEHOLDER = re.compile(r"\?")


def _translate(sql: str) -> tuple[str, bool]:
    """Dejavu's SQLite statement in PostgreSQL's words, and whether it inserts a song (its id is returned)."""
    out = _PLACEHOLDER.sub("%s", sql)
    if out.startswith("INSERT OR IGNORE INTO"):
        out = "INSERT INTO" + out[len("INSERT OR IGNORE INTO"):] + " ON CONFLICT DO NOTHING"
    song = out.startswith("INSERT INTO songs")
    return (out + " RETURNING song_id" if song else out), song


class _Connection:
    """A PostgreSQL connection that runs Dejavu's SQLite statements (see the module docstring)."""

    def __init__(self, url: str) -> None:
        import psycopg

        self._con = psycopg.connect(url, autocommit=True)
        self._tx: Any = None

    def execute(self, sql: str, params: Any = ()) -> _Cursor:
        stmt, song = _translate(sql)
        cur = self._con.execute(stmt, tuple(params))
        return _Cursor(cur, cur.fetchone()[0] if song else None)

    def executemany(self, sql: str, rows: Any) -> None:
        stmt, _ = _translate(sql)
        with self._con.cursor() as cur:
            cur.executemany(stmt, list(rows))

    def __enter__(self) -> _Connection:
        self._tx = self._con.transaction()
        self._tx.__enter__()
        return self

    def __exit__(self, *exc: Any) -> Any:
        tx, self._tx = self._tx, None
        return tx.__exit__(*exc)

    def close(self) -> None:
        self._con.close()


class DejavuPostgres(Dejavu):
    """A Dejavu database on a PostgreSQL server (see the module docstring). Built by :meth:`create` or
    :meth:`open`; constructed directly, it is an in-memory :class:`Dejavu` (used for copies)."""

    _url: str | None = None

    @classmethod
    def create(cls, url: str, system: Dejavu) -> None:
        """Make the tables at ``url`` and store the in-memory ``system``'s references there. Tables already there
        are adopted when they hold a Dejavu database with the same parameters.

        Raises
        ------
        ValueError
            The server cannot be reached, or holds another database in these tables.
        """
        con = cls._connect(url)
        try:
            have = {r[0] for r in con.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()")}
            if not have & set(_TABLES):
                with con:
                    for stmt in _SCHEMA:
                        con.execute(stmt)
                    for key, value in (("system", "dejavu"), ("format_version", str(FORMAT_VERSION)),
                                       ("params", json.dumps(system.params, sort_keys=True))):
                        con.execute("INSERT INTO meta (key, value) VALUES (?, ?)", (key, value))
        finally:
            con.close()
        disk = cls.open(url)
        try:
            if disk.params != system.params:
                raise ValueError(f"{url}: holds a Dejavu database with other parameters")
            for rid in system.references():
                if rid not in disk:
                    disk.add_record(rid, system.reference_record(rid))
        finally:
            disk.close()

    @staticmethod
    def _connect(url: str) -> _Connection:
        try:
            return _Connection(url)
        except Exception as e:  # psycopg.OperationalError and friends; psycopg may be missing
            raise ValueError(f"{_safe(url)}: cannot connect ({type(e).__name__}: {e})") from e

    @classmethod
    def open(cls, url: str, writable: bool = True) -> DejavuPostgres:
        """Open the database at ``url``.

        Raises
        ------
        ValueError
            The server cannot be reached, or its tables are missing or hold another database.
        """
        con = cls._connect(url)
        try:
            have = {r[0] for r in con.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()")}
            missing = sorted(set(_TABLES) - have)
            if missing:
                raise ValueError(f"tables {', '.join(missing)} are missing; create the database with `samaf index`")
            meta = dict(con.execute("SELECT key, value FROM meta").fetchall())
            if meta.get("system") != "dejavu" or meta.get("format_version") != str(FORMAT_VERSION):
                raise ValueError(f"meta says system {meta.get('system')!r}, format {meta.get('format_version')!r}")
            system = cls(**json.loads(meta["params"]))
            rows = con.execute("SELECT song_name, song_id, duration_s, sample_rate FROM songs "
                               "WHERE fingerprinted = 1 ORDER BY song_id").fetchall()
        except Exception as e:
            con.close()
            raise ValueError(f"{_safe(url)}: not a Dejavu database ({e})") from e
        system._con.close()
        system._con = con
        system._refs = {name: (int(sid), float(dur), int(rate)) for name, sid, dur, rate in rows}
        system._url = url
        system._writable = writable
        return system

    @property
    def in_place(self) -> bool:
        return self._url is not None

    def save(self, path: str | os.PathLike) -> None:
        """On the server, every add is committed: nothing to write to its pointer file. Elsewhere: the database
        copied into a Dejavu SQLite file."""
        if self._url is None:
            return super().save(path)
        if read_pointer(path) == self._url:
            return
        copy = Dejavu(**self.params)
        for rid in self.references():
            copy.add_record(rid, self.reference_record(rid))
        copy.save(path)

    def duration_s(self, ref_id: str) -> float:
        return float(self._refs[ref_id][1])

    def remove(self, ref_ids: list[str]) -> None:
        """Delete ``ref_ids`` (songs and, by the foreign key, their fingerprints) in one transaction."""
        check_known(ref_ids, self._refs)
        with self._con:
            for rid in ref_ids:
                self._con.execute("DELETE FROM songs WHERE song_id = ?", (self._refs[rid][0],))
        for rid in ref_ids:
            del self._refs[rid]

    def stats(self) -> dict[str, Any]:
        if self._url is None:
            return super().stats()
        n_fp = int(self._con.execute("SELECT COALESCE(SUM(total_hashes), 0) FROM songs WHERE fingerprinted = 1")
                   .fetchone()[0])
        size = int(self._con.execute("SELECT pg_total_relation_size('songs') + pg_total_relation_size("
                                     "'fingerprints')").fetchone()[0])
        seconds = float(sum(d for _, d, _ in self._refs.values()))
        hash_bytes = (int(self.params["fingerprint_reduction"]) + 1) // 2
        return {"name": self.name, "references": len(self._refs), "fingerprints": n_fp, "seconds": seconds,
                "bytes": n_fp * (hash_bytes + 8), "file_bytes": size,
                "bits_per_second": 8.0 * hash_bytes * n_fp / seconds if seconds else 0.0,
                "fingerprints_per_second": n_fp / seconds if seconds else 0.0, "params": dict(self.params),
                "in_place": True, "server": _safe(self._url)}

    def close(self) -> None:
        self._con.close()

    def __getstate__(self) -> dict[str, Any]:
        if self._url is None:
            return super().__getstate__()
        return {"params": self.params, "url": self._url}

    def __setstate__(self, state: dict[str, Any]) -> None:
        if "url" not in state:
            super().__setstate__(state)
            return
        self.__dict__.update(type(self).open(state["url"], writable=False).__dict__)


def _safe(url: str) -> str:
    """``url`` without its password."""
    return re.sub(r"(://[^:/@]+):[^@]*@", r"\1:***@", url)
