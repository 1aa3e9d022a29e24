"""The journal of a ``samaf`` database: every indexed file is committed by one append, so that a kill at any
moment keeps every file finished before it (README, "What samaf index guarantees").

A database at ``PATH`` is three files:

- ``PATH``, the system's own saved file (the *snapshot*), written atomically by the system's ``save``;
- ``PATH.json``, the manifest of the snapshot (every indexed and skipped file), written atomically after it;
- ``PATH.journal``, what happened since the snapshot, append-only: a header line naming the system and its
  parameters, then one record per file (its manifest entry and, for an indexed file, everything the system
  stored for it: ``reference_record``).

Each record is ``b"R"``, its payload length and CRC-32 (little-endian ``uint32`` each), and the payload (an
uncompressed ``.npz`` holding the record's JSON and arrays; nothing pickled). A record is written with one
``write`` and made durable with ``fsync`` before the file counts as done. A kill can leave only a torn last record,
which readers ignore and the next writer cuts off; damage anywhere before the end is refused, naming the file.

Opening a database loads the snapshot and replays the journal on top (:func:`replay`): records of references
the snapshot already holds are passed over, so folding the journal into a new snapshot (:meth:`Journal.fold`)
is safe at any point: the snapshot is replaced first, the journal emptied after. Nothing here takes a lock; the
CLI's single writer holds ``PATH.lock`` while it appends or folds.
"""

from __future__ import annotations

import io
import json
import os
import struct
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator

if TYPE_CHECKING:  # numpy is imported where a record is encoded or decoded: `samaf --help` needs none of it
    import numpy as np

#: First line of every journal.
MAGIC = b"samaf-journal-v1\n"
_RECORD_HEAD = struct.Struct("<cII")  # b"R", payload length, CRC-32 of the payload
#: Largest payload a record may declare (a 24-hour reference of the densest system is well below it).
MAX_RECORD_BYTES = 1 << 31
#: Record kinds: a file indexed (with the system's record), a file skipped (manifest entry only), an audio folder,
#: the database's calibration (``samaf_lib.calibrate``; the entry replaces the manifest's ``calibration``).
KINDS = ("add", "skip", "dir", "calib")


class JournalError(ValueError):
    """A journal that is damaged or belongs to another database; the message names the file."""


def journal_path(db: str | os.PathLike) -> Path:
    """The journal beside database ``db``: ``db`` + ``".journal"``."""
    return Path(str(db) + ".journal")


@dataclass
class Record:
    """One journal record: ``kind`` (one of :data:`KINDS`), the file's name in the database, its manifest entry,
    and for ``"add"`` the system's arrays."""

    kind: str
    name: str
    entry: dict[str, Any] = field(default_factory=dict)
    arrays: dict[str, np.ndarray] = field(default_factory=dict)


def _header(system: str, params: dict[str, Any]) -> bytes:
    return MAGIC + json.dumps({"system": system, "params": params}, sort_keys=True, default=str).encode() + b"\n"


def encode(record: Record) -> bytes:
    """The bytes of ``record`` as the journal stores it (head and payload)."""
    import numpy as np

    from .io import save_npz

    if record.kind not in KINDS:
        raise ValueError(f"journal record kind {record.kind!r} is not one of {', '.join(KINDS)}")
    buf = io.BytesIO()
    meta = json.dumps({"kind": record.kind, "name": record.name, "entry": record.entry}, sort_keys=True)
    save_npz(buf, False, **{"_meta": np.array(meta)}, **{f"a/{k}": v for k, v in record.arrays.items()})
    payload = buf.getvalue()
    return _RECORD_HEAD.pack(b"R", len(payload), zlib.crc32(payload)) + payload


def _decode(payload: bytes) -> Record:
    import numpy as np

    with np.load(io.BytesIO(payload), allow_pickle=False) as z:
        meta = json.loads(str(z["_meta"]))
        arrays = {k[2:]: np.array(z[k]) for k in z.files if k.startswith("a/")}
    if meta.get("kind") not in KINDS or not isinstance(meta.get("name"), str) or not isinstance(
            meta.get("entry"), dict):
        raise ValueError(f"record fields {sorted(meta)} are not a journal record's")
    return Record(meta["kind"], meta["name"], meta["entry"], arrays)


@dataclass
class Contents:
    """What a journal holds: its header, its complete records, where they end, and the bytes of a torn tail."""

    system: str
    params: dict[str, Any]
    records: list[Record]
    end: int
    torn: int


def parse(data: bytes, path: str | os.PathLike = "journal") -> Contents:
    """Read the journal bytes ``data`` (a torn last record is left out and counted in ``torn``).

    Raises
    ------
    JournalError
        Not a journal, or a record before the end is damaged (the message names ``path``).
    """
    if not data.startswith(MAGIC):
        raise JournalError(f"{path}: not a samaf journal (it does not start with {MAGIC[:-1].decode()!r})")
    eol = data.find(b"\n", len(MAGIC))
    if eol < 0:
        raise JournalError(f"{path}: its header is cut short")
    try:
        head = json.loads(data[len(MAGIC):eol])
        system, params = str(head["system"]), dict(head["params"])
    except (ValueError, KeyError, TypeError) as e:
        raise JournalError(f"{path}: unreadable header ({e})") from e
    pos, records = eol + 1, []
    while pos < len(data):
        if len(data) - pos < _RECORD_HEAD.size:
            break  # a torn head
        tag, n, crc = _RECORD_HEAD.unpack_from(data, pos)
        start = pos + _RECORD_HEAD.size
        if tag != b"R" or n > MAX_RECORD_BYTES:
            raise JournalError(f"{path}: damaged at byte {pos} (not a record head); the records before it are "
                               f"intact: move the file away to open the database without them")
        if start + n > len(data):
            break  # a torn payload
        payload = data[start:start + n]
        if zlib.crc32(payload) != crc:
            if start + n == len(data):
                break  # the last record, torn in a way the length did not show
            raise JournalError(f"{path}: record at byte {pos} fails its checksum; the records before it are "
                               "intact: move the file away to open the database without them")
        try:
            records.append(_decode(payload))
        except (ValueError, KeyError, OSError, EOFError) as e:
            raise JournalError(f"{path}: record at byte {pos} is unreadable ({e})") from e
        pos = start + n
    return Contents(system, params, records, pos, len(data) - pos)


def read(path: str | os.PathLike) -> Contents | None:
    """The journal at ``path`` (read in one go: a writer appending meanwhile adds only what a later read sees), or
    ``None`` when there is none."""
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        return None
    return parse(data, path)


def replay(system: Any, manifest: dict[str, Any], records: list[Record]) -> int:
    """Apply ``records`` to a system opened from the snapshot and to its manifest; return the references added.

    A reference the snapshot already holds is passed over (the journal was folded into it and not yet emptied).
    ``system`` may be ``None`` when no record is an ``"add"`` (the manifest alone is updated)."""
    added = 0
    for r in records:
        if r.kind == "add" and r.name not in system:
            if not r.arrays:  # a system kept in place wrote no rows here; if they are not in its file, the
                continue      # file was never committed (or was removed since): the entry is left out
            system.add_record(r.name, r.arrays)
            added += 1
        note(manifest, r)
    return added


def note(manifest: dict[str, Any], record: Record) -> None:
    """Write what ``record`` says into the manifest (its file entry, its skip, or its audio folder)."""
    if record.kind == "add":
        manifest["files"][record.name] = record.entry
        manifest["skipped"].pop(record.name, None)
    elif record.kind == "skip":
        if record.name not in manifest["files"]:
            manifest["skipped"][record.name] = record.entry
    elif record.kind == "calib":
        manifest["calibration"] = record.entry
    elif record.name not in manifest.setdefault("audio_dirs", []):
        manifest["audio_dirs"].append(record.name)


class Journal:
    """The journal of one database, open for appending (hold the database's write lock).

    Parameters
    ----------
    db : path
        The database; the journal is ``db + ".journal"``.
    system, params :
        The system's name and parameters, written in a new journal's header and checked against an existing one.
    """

    def __init__(self, db: str | os.PathLike, system: str, params: dict[str, Any]) -> None:
        self.path = journal_path(db)
        self._header = _header(system, params)
        self.records = 0
        contents = read(self.path)
        if contents is None:
            self._fresh()
        else:
            want = json.loads(self._header[len(MAGIC):])
            if (contents.system, contents.params) != (want["system"], want["params"]):
                raise JournalError(f"{self.path}: journal of a {contents.system} database with other parameters "
                                   f"than {db}'s; it is not this database's: move it away")
            self.records = len(contents.records)
            if contents.torn:
                with open(self.path, "r+b") as fh:  # cut off the record a kill left half-written
                    fh.truncate(contents.end)
                    os.fsync(fh.fileno())
        self._fh = open(self.path, "ab")

    def _fresh(self) -> None:
        from .io import atomic_path

        with atomic_path(self.path) as tmp:
            with open(tmp, "wb") as fh:
                fh.write(self._header)
                fh.flush()
                os.fsync(fh.fileno())
        _sync_folder(self.path.parent)

    def append(self, record: Record) -> None:
        """Append ``record`` and make it durable (one write, then fsync)."""
        data = encode(record)
        self._fh.write(data)
        self._fh.flush()
        os.fsync(self._fh.fileno())
        self.records += 1

    def size(self) -> int:
        """Bytes in the journal now."""
        return self._fh.tell()

    def fold(self, save: Any) -> None:
        """Write a new snapshot with ``save()`` (which must replace the database and its manifest atomically),
        then empty the journal (replaced atomically by its bare header)."""
        save()
        self._fh.close()
        self._fresh()
        self._fh = open(self.path, "ab")
        self.records = 0

    def close(self) -> None:
        self._fh.close()

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _sync_folder(folder: Path) -> None:
    """fsync a folder so that a file renamed into it survives a power cut (best effort)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def check_known(ref_ids: list[str], known: Any) -> None:
    """KeyError naming the references of ``ref_ids`` that are not in ``known`` (what ``remove`` checks before it
    deletes anything)."""
    missing = [r for r in ref_ids if r not in known]
    if missing:
        raise KeyError(f"not in the database: {', '.join(map(repr, missing))}")


def iter_names(contents: Contents | None, kind: str = "add") -> Iterator[str]:
    """Names of the records of ``kind`` in ``contents`` (nothing when there is no journal)."""
    if contents is not None:
        for r in contents.records:
            if r.kind == kind:
                yield r.name
