"""The ``samaf`` command: index a folder of recordings, identify clips, describe and calibrate a database.

Four subcommands, each working with any of the study's systems (``samaf``, ``dejavu``, ``rafs``, ``panako``,
``triplets``) through the common interface of :mod:`samaf_lib.systems`::

    samaf index AUDIO_DIR --system rafs --db music.rafs
    samaf identify clip1.wav clip2.mp3 --db music.rafs [--json]
    samaf info --db music.rafs
    samaf calibrate --db music.rafs

A match is accepted at the database's calibrated threshold for the clip's length (:mod:`samaf_lib.calibrate`:
the study's rule, a 5 % false-positive rate, on held-out references of the database's own audio); ``index``
calibrates at the end of a run when the number of references has changed by 10 % or more.

A database is three files: the system's own saved file at ``PATH`` (the snapshot), a manifest ``PATH.json`` beside
it (the system's name and parameters, the model file for SAMAF, every indexed file with its source path, size,
modification time and BLAKE2b, and every skipped file with the reason), and the journal ``PATH.journal``
(:mod:`samaf_lib.store`): ``index`` commits each file to the journal, in one fsynced append, as soon as it is done,
so a kill at any moment keeps every file finished before it; the journal is folded into a new snapshot (both
written atomically) when it outgrows it. Running ``index`` again adds only the files not yet indexed. ``index``
holds an exclusive lock (``PATH.lock``) while it writes, and Ctrl-C, SIGTERM or SIGHUP make it finish the current
file before it exits (README, "What samaf index guarantees").

Audio is read with :func:`samaf_lib.audio.load_audio` (wav, flac, mp3, ogg), averaged to mono and resampled to
16 kHz before it reaches a system, so every system sees the same signal whatever the files' rates.

Exit codes: 0 success; 1 nothing could be done (``index``: the database holds no reference; ``identify``: every
file failed); 2 a usage error (bad arguments, missing or mismatched database, no trained model); 130 interrupted.

Start-up. This module imports only the standard library; numpy, soundfile, faiss, torch and the systems are
imported by the subcommand that needs them, so ``samaf --help`` answers at once, ``samaf info`` reads a SAMAF
database's metadata without torch (:meth:`samaf_lib.systems.samaf.SAMAFSystem.read_stats`), and only SAMAF's
``index`` and ``identify`` pay for torch.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import json
import os
import stat
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import store
from .paths import study_checkpoint

#: File suffixes ``index`` picks up (lower-cased).
AUDIO_SUFFIXES = (".wav", ".flac", ".mp3", ".ogg")
#: Rate every file is converted to before fingerprinting or identification.
LOAD_SR = 16000
#: Where the pipeline's training stage leaves the model ``--system samaf`` uses by default (under the project root).
DEFAULT_MODEL = study_checkpoint(128)
#: Tag of the manifest written beside every database.
MANIFEST_FORMAT = "samaf-cli-manifest-v1"
#: Systems, in the order :func:`detect_system` tries them on a database that lost its manifest (SAMAF last: torch).
_SYSTEMS = ("dejavu", "rafs", "panako", "triplets", "samaf")
#: Bytes of audio files to index from which ``index`` tells :func:`samaf_lib.audio.resample` to use scipy's
#: compiled filter from the start (at least about 12 minutes of 44.1-kHz 16-bit mono WAV, an hour of 128-kbit/s
#: MP3): enough resampling to repay the second that importing it takes (see :func:`samaf_lib.audio.resample`).
COMPILED_RESAMPLER_BYTES = 64 * 2**20


class CLIError(Exception):
    """A problem to report as one line; ``code`` is the exit status (2: usage error)."""

    def __init__(self, message: str, code: int = 2) -> None:
        super().__init__(message)
        self.code = code


# -- files ----------------------------------------------------------------------------------------------------------
def find_audio(root: str | os.PathLike, exclude: Sequence[str | os.PathLike] = ()) -> list[Path]:
    """Audio files under ``root``, recursively, sorted by their relative path (deterministic).

    Parameters
    ----------
    root : path-like
        A folder.
    exclude : sequence of path-like
        Files to leave out (e.g. the database itself when it lives inside ``root``).

    Returns
    -------
    list of Path
        Files whose suffix is one of :data:`AUDIO_SUFFIXES` (any case); hidden files and folders (name starting
        with ``.``) are left out. Symbolic links to folders are not followed.
    """
    root = Path(root)
    skip = {Path(p).resolve() for p in exclude}
    out: list[Path] = []
    for folder, dirs, names in os.walk(root, onerror=_record_walk_error):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for n in names:
            p = Path(folder) / n
            if n.startswith(".") or p.suffix.lower() not in AUDIO_SUFFIXES:
                continue
            try:
                if p.resolve() in skip:
                    continue
            except (OSError, RuntimeError):  # a symbolic-link loop: kept, and skipped with its reason when read
                pass
            out.append(p)
    return sorted(out, key=lambda p: p.relative_to(root).as_posix())


#: Folders ``os.walk`` could not list during the last :func:`find_audio` (path, reason), reported by ``index``.
UNREADABLE_FOLDERS: list[tuple[str, str]] = []


def _record_walk_error(error: OSError) -> None:
    UNREADABLE_FOLDERS.append((str(error.filename), _os_reason(error)))


def _os_reason(error: OSError) -> str:
    """An operating-system error in words: what is wrong with the file, without the errno jargon."""
    import errno

    words = {errno.EACCES: "permission denied: the file cannot be read by this user",
             errno.EPERM: "permission denied: the file cannot be read by this user",
             errno.ENOENT: "no such file (a symbolic link to a file that does not exist?)",
             errno.ELOOP: "a loop of symbolic links",
             errno.EISDIR: "a folder, not a file"}
    return words.get(error.errno, error.strerror or str(error))


def _file_state(path: Path) -> dict[str, Any]:
    """What ``index`` records of a file: where it is, its size and modification time (OSError when unreadable)."""
    st = path.stat()
    if not stat.S_ISREG(st.st_mode):
        raise IsADirectoryError(errno.EISDIR, "not a regular file", str(path))
    return {"source": _display(path.resolve()), "size": int(st.st_size), "mtime_ns": int(st.st_mtime_ns)}


def _display(path: str | os.PathLike) -> str:
    """A path as text that can always be printed and stored (undecodable bytes of a name shown as escapes)."""
    return os.fsdecode(os.fspath(path)).encode("utf-8", "backslashreplace").decode("utf-8")


def content_hash(path: str | os.PathLike) -> str:
    """BLAKE2b (128-bit) of the file's bytes: what ``index`` records to know a file by its content."""
    import hashlib

    h = hashlib.blake2b(digest_size=16)
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _decode(path: str, digest: bool = True) -> tuple[Any, str | None, str | None]:
    """``(audio float32 (n,) at LOAD_SR, None, content hash or None)`` or ``(None, reason, None)``; runs in worker
    processes too. The reason says in words what is wrong with the file."""
    from .audio import AudioError, load_audio

    try:
        digest = content_hash(path) if digest else None
    except OSError as e:
        return None, _os_reason(e), None
    try:
        return load_audio(path, sr=LOAD_SR, mono=True), None, digest
    except AudioError as e:
        return None, _plain_reason(_reason(str(e), path)), None
    except MemoryError:
        return None, "too large to decode in the memory available", None


#: libsndfile's messages, in words a user understands.
_SNDFILE_WORDS = {
    "File does not exist or is not a regular file (possibly a pipe?)":
        "not audio in a format this toolkit reads (wav, flac, ogg, mp3), or its data is corrupt",
    "Format not recognised.": "not audio in a format this toolkit reads (wav, flac, ogg, mp3)",
    "System error.": "the file could not be read (permission denied, or a read error of the disk)",
    "Supported file format but file is malformed.": "a known audio format, but the file is damaged or truncated",
    "Unspecified internal error.": "the file's audio data is damaged",
}


def _plain_reason(reason: str) -> str:
    for jargon, words in _SNDFILE_WORDS.items():
        if jargon in reason:
            return f"cannot be read as audio: {words}"
    return reason


def _reason(message: str, *names: str) -> str:
    """An error message without a leading ``"<name>: "`` or ``"reference '<name>': "`` (the caller names it)."""
    msg = message.strip()
    for n in names:
        for prefix in (f"{n}: ", f"reference {n!r}: ", f"query {n!r}: "):
            if msg.startswith(prefix):
                return msg[len(prefix):]
    return msg


# -- the manifest ---------------------------------------------------------------------------------------------------
def manifest_path(db: str | os.PathLike) -> Path:
    """The manifest beside database ``db``: ``db`` + ``".json"``."""
    return Path(str(db) + ".json")


def read_manifest(db: str | os.PathLike) -> dict | None:
    """The manifest of ``db``, or ``None`` when there is none; an unreadable one raises :class:`CLIError`."""
    p = manifest_path(db)
    if not p.is_file():
        return None
    try:
        m = json.loads(p.read_text())
    except (OSError, ValueError) as e:
        raise CLIError(f"{p}: unreadable manifest ({e}); delete it to rebuild it from the database") from e
    if not isinstance(m, dict) or m.get("format") != MANIFEST_FORMAT or m.get("system") not in _SYSTEMS:
        raise CLIError(f"{p}: not a samaf manifest (expected format {MANIFEST_FORMAT!r}); delete it to rebuild it "
                       "from the database")
    m.setdefault("files", {})
    m.setdefault("skipped", {})
    for key in ("files", "skipped"):
        if not isinstance(m[key], dict) or not all(isinstance(v, dict) for v in m[key].values()):
            raise CLIError(f"{p}: its {key!r} is not a mapping of file names to records (damaged?); delete the "
                           "manifest to rebuild it from the database")
    return m


def _new_manifest(system: Any, model: str | None) -> dict:
    return {"format": MANIFEST_FORMAT, "system": system.name, "params": _jsonable(system.params), "model": model,
            "sample_rate": LOAD_SR, "audio_dirs": [], "files": {}, "skipped": {}}


def _jsonable(obj: Any) -> Any:
    return json.loads(json.dumps(obj, default=str))


def save_database(system: Any, db: Path, manifest: dict) -> None:
    """Write the system to ``db`` and then the manifest beside it, both atomically. A system the toolkit keeps in
    LMDB that is in memory (new, or loaded from an earlier version's file) is written as a store; one already in
    place has nothing left to write."""
    from .io import write_json

    url = _server_url(db) if system.name == "dejavu" else None
    if url is not None and not in_place(system):  # a new database on a PostgreSQL server, then its pointer file
        from .postgres_store import DejavuPostgres, write_pointer

        try:
            DejavuPostgres.create(url, system)
        except ValueError as e:  # the message names the server, without its password
            raise CLIError(f"--db {e}") from e
        write_pointer(url)
    elif system.name in IN_PLACE_SYSTEMS and system.name != "dejavu" and not in_place(system):
        from .lmdb_store import disk_class

        disk_class(system.name).create(db, system)
    else:
        system.save(db)
    write_json(manifest_path(db), manifest)


# -- systems --------------------------------------------------------------------------------------------------------
def default_model() -> Path:
    """The model the pipeline trains: :data:`DEFAULT_MODEL` under :func:`samaf_lib.paths.project_root`."""
    from .paths import project_root

    return project_root() / DEFAULT_MODEL


def resolve_model(model: str | None) -> Path:
    """The SAMAF checkpoint to use: ``model`` if given, else :func:`default_model`; a missing file is a CLIError."""
    if model is not None:
        p = Path(model)
        if not p.is_file():
            raise CLIError(f"--model {model}: no such file; pass the best.pt written by the training stage")
        return p.resolve()
    p = default_model()
    if not p.is_file():
        raise CLIError(f"no trained SAMAF model at {p}. Train one with `make repro` (or `dvc repro train`) in the "
                       f"project folder {p.parents[2]}, or pass --model PATH to a checkpoint (best.pt) written by "
                       "the training stage; set SAMAF_ROOT to use another project folder.")
    return p.resolve()


def create_system(name: str, params: dict[str, Any], model: str | None) -> tuple[Any, str | None]:
    """A new, empty system ``name`` with ``params``; for SAMAF the checkpoint is resolved and loaded.

    Returns
    -------
    (system, model path or None)
    """
    from . import systems

    _check_param_names(name, params)
    kwargs = dict(params)
    model_path = None
    if name == "samaf":
        from .model import read_checkpoint

        ckpt = resolve_model(model)
        try:
            bits = int(read_checkpoint(ckpt)["config"]["bits"])
        except (ValueError, KeyError, TypeError) as e:
            raise CLIError(f"--model {ckpt}: {e}") from e
        kwargs.setdefault("bits", bits)
        kwargs["checkpoint"] = str(ckpt)
        model_path = str(ckpt)
    elif model is not None:
        raise CLIError(f"--model applies to --system samaf only, not {name}")
    try:
        if name == "samaf" and kwargs.get("index") == "ivf":
            # exact until the database is large enough to train an IVF on, then the IVF (samaf_lib/samaf_store.py)
            from .samaf_store import SAMAFOnDisk

            return SAMAFOnDisk(**kwargs), model_path
        return systems.get(name, **kwargs), model_path
    except (TypeError, ValueError, FileNotFoundError) as e:
        raise CLIError(f"cannot create a {name} database: {e}") from e


def _check_param_names(name: str, params: dict[str, Any]) -> None:
    """CLIError naming the unknown keys and the valid ones, before the system is built."""
    import inspect

    from . import systems

    cls = systems.system_class(name)
    accepted = [k for k, prm in inspect.signature(cls.__init__).parameters.items()
                if k not in ("self", "checkpoint") and prm.kind in (prm.POSITIONAL_OR_KEYWORD, prm.KEYWORD_ONLY)]
    unknown = sorted(set(params) - set(accepted))
    if unknown:
        raise CLIError(f"--param {', '.join(unknown)}: not a parameter of {name}; its parameters are "
                       f"{', '.join(accepted)}")


def detect_system(db: Path) -> str:
    """The system whose loader accepts ``db`` (used when the manifest is missing); CLIError when none does."""
    from . import systems
    from .lmdb_store import Store, is_lmdb

    if is_lmdb(db):
        try:
            st = Store.open(db)
        except (ValueError, OSError) as e:
            raise CLIError(f"{db}: an LMDB file, but not a samaf database ({e})") from e
        st.close()
        if st.meta.get("system") in _SYSTEMS:
            return str(st.meta["system"])
    for name in _SYSTEMS:
        try:
            systems.load(name, db)
        except Exception:  # noqa: BLE001, S112 - each loader rejects another system's file with its own error
            continue
        return name
    raise CLIError(f"{db}: not a database of any system ({', '.join(_SYSTEMS)})")


#: Systems whose database the toolkit keeps in its file (opened in place, each add committed there): Dejavu in
#: SQLite (``samaf_lib.sqlite_store``), the others in LMDB (``samaf_lib.lmdb_store``).
IN_PLACE_SYSTEMS = ("dejavu", "rafs", "panako", "triplets", "samaf")


#: Pointer files of the PostgreSQL databases named by --db in this process, and their URLs.
_SERVER_DATABASES: dict[str, str] = {}


def _server_database(url: str) -> Path:
    """The local pointer file standing for the PostgreSQL database ``url`` (``samaf_lib.postgres_store``)."""
    from .postgres_store import pointer_for

    p = pointer_for(url)
    _SERVER_DATABASES[str(p)] = url
    return p


def _server_url(db: Path) -> str | None:
    """The PostgreSQL URL ``db`` stands for, or None for a database file."""
    if str(db) in _SERVER_DATABASES:
        return _SERVER_DATABASES[str(db)]
    if db.suffix != ".dejavu" or not db.name.startswith("postgresql-"):
        return None
    from .postgres_store import read_pointer

    return read_pointer(db)


def load_system(name: str, db: Path, writable: bool = False) -> Any:
    """The database of system ``name`` at ``db``, opened in place: Dejavu's SQLite file, the others' LMDB file
    (nothing loaded but the names, SAMAF's codes aside; each add committed to the file). A file saved whole by an
    earlier version (the system's ``.npz``) is loaded into memory; its next fold writes it as a store."""
    from . import systems

    if name == "dejavu":
        url = _server_url(Path(db))
        if url is not None:
            from .postgres_store import DejavuPostgres

            return DejavuPostgres.open(url, writable=writable)
        from .sqlite_store import DejavuOnDisk

        return DejavuOnDisk.open(db, writable=writable)
    from .lmdb_store import disk_class, is_lmdb

    if is_lmdb(db):
        return disk_class(name).open(db, writable=writable)
    return systems.load(name, db)


def in_place(system: Any) -> bool:
    """True when ``system`` commits what it stores to its database file itself (the journal then records only the
    manifest entries)."""
    return bool(getattr(system, "in_place", False))


def open_database(db: str | os.PathLike, writable: bool = False) -> tuple[Any, dict]:
    """Load an existing database and its manifest (rebuilt from the database when missing).

    ``writable``: the caller will add to or remove from the database (it holds the write lock).

    Raises
    ------
    CLIError
        No database at ``db``, or it cannot be read.
    """
    db = Path(db)
    _check_database_file(db)
    journal = _read_journal(db)  # before the snapshot: a fold in between only repeats records the snapshot has
    manifest = read_manifest(db)
    name = manifest["system"] if manifest else detect_system(db)
    if journal is not None and any(r.kind == "add" and r.arrays for r in journal.records):
        writable = True  # records written before Dejavu was kept in place: replaying them writes to the file
    try:
        system = load_system(name, db, writable)
    except (ValueError, FileNotFoundError, OSError) as e:
        raise CLIError(f"--db {db}: cannot open the {name} database ({e})") from e
    if manifest is None:
        manifest = _new_manifest(system, None)
    if journal is not None:
        _check_journal(db, journal, system)
        try:
            store.replay(system, manifest, journal.records)
        except (ValueError, KeyError, TypeError) as e:
            raise CLIError(f"--db {db}: a record of its journal {store.journal_path(db)} does not fit the "
                           f"database ({e}); move the journal away to open the database without it") from e
    _reconcile(manifest, system.references())
    return system, manifest


def _read_journal(db: Path) -> store.Contents | None:
    """The journal of ``db`` (None when there is none), or CLIError naming it."""
    try:
        return store.read(store.journal_path(db))
    except store.JournalError as e:
        raise CLIError(f"--db {db}: {e}") from e
    except OSError as e:
        raise CLIError(f"--db {db}: cannot read its journal {store.journal_path(db)}: {_os_reason(e)}") from e


def _check_journal(db: Path, journal: store.Contents, system: Any) -> None:
    if (journal.system, journal.params) != (system.name, _jsonable(system.params)):
        raise CLIError(f"--db {db}: its journal {store.journal_path(db)} belongs to a {journal.system} database "
                       "with other parameters; it is not this database's: move it away")


def _check_database_file(db: Path) -> None:
    """CLIError (saying how to create one) when there is no database file at ``db``."""
    if not db.is_file():
        hint = " (its manifest is there: was the database moved or deleted?)" if manifest_path(db).is_file() else ""
        raise CLIError(f"--db {db}: no database there{hint}; create one with `samaf index AUDIO_DIR --system NAME "
                       f"--db {db}`")


def describe_database(db: str | os.PathLike) -> tuple[str, dict, list[str], dict]:
    """``(system name, stats, references, manifest)`` of an existing database, loading as little as possible.

    A store (``samaf_lib.lmdb_store``) is described from its tables, and an earlier version's SAMAF file from its
    metadata and array shapes (``read_stats``), neither loading torch; the others, and any database without a
    manifest, are opened.

    Raises
    ------
    CLIError
        No database at ``db``, or it cannot be read.
    """
    from . import systems

    db = Path(db)
    _check_database_file(db)
    manifest = read_manifest(db)
    journal = _read_journal(db)
    if manifest is not None and not any(store.iter_names(journal)):  # no reference beyond the snapshot's
        if journal is not None:
            store.replay(None, manifest, [r for r in journal.records if r.kind != "add"])
        name = manifest["system"]
        from .lmdb_store import describe, is_lmdb

        read_stats = getattr(systems.system_class(name), "read_stats", None)
        if is_lmdb(db):
            try:
                _, stats, refs = describe(db)
            except (ValueError, KeyError, FileNotFoundError, OSError) as e:
                raise CLIError(f"--db {db}: cannot open the {name} database ({e})") from e
            _reconcile(manifest, refs)
            return name, stats, refs, manifest
        if read_stats is not None:
            try:
                stats, refs = read_stats(db)
            except (ValueError, FileNotFoundError, OSError) as e:
                raise CLIError(f"--db {db}: cannot open the {name} database ({e})") from e
            _reconcile(manifest, refs)
            return name, stats, refs, manifest
    system, manifest = open_database(db)
    stats = system.stats()
    return system.name, {**stats, "params": stats.get("params", system.params)}, system.references(), manifest


def _reconcile(manifest: dict, references: Sequence[str]) -> None:
    """Make the manifest's file list agree with the references actually in the database."""
    refs = set(references)
    files = manifest["files"]
    for rid in list(files):
        if rid not in refs:  # the database was saved before this entry (cannot happen with save_database's order)
            del files[rid]
    for rid in references:
        files.setdefault(rid, {"size": None, "mtime_ns": None, "seconds": None})
        manifest["skipped"].pop(rid, None)


# -- index ----------------------------------------------------------------------------------------------------------
def _parse_params(items: Sequence[str]) -> dict[str, Any]:
    params: dict[str, Any] = {}
    for item in items or ():
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise CLIError(f"--param {item!r}: expected KEY=VALUE, e.g. --param min_score=0")
        try:
            params[key] = json.loads(value)
        except ValueError:
            params[key] = value
    return params


def _open_for_index(args: argparse.Namespace, db: Path) -> tuple[Any, dict, bool]:
    """``(system, manifest, created)`` for ``index``: the existing database, checked against the arguments."""
    params = _parse_params(args.param)
    if db.exists():
        if not db.is_file():
            raise CLIError(f"--db {db}: is not a file")
        system, manifest = open_database(db, writable=True)
        if args.system and args.system != system.name:
            raise CLIError(f"--db {db} is a {system.name} database, not {args.system}; use another --db for "
                           f"{args.system}, or --system {system.name} to add to this one")
        if args.model is not None:
            if system.name != "samaf":
                raise CLIError(f"--model applies to --system samaf only, not {system.name}")
            if manifest.get("model") and Path(args.model).resolve() != Path(manifest["model"]):
                raise CLIError(f"--db {db} was built with the model {manifest['model']}; its hashes are not "
                               f"comparable with --model {args.model}: use another --db")
        differ = [f"{k}={system.params.get(k)!r}" for k, v in params.items() if system.params.get(k, object()) != v]
        if differ:
            raise CLIError(f"--db {db} was built with other parameters ({', '.join(differ)}); --param only applies "
                           "to a new database: use another --db")
        return system, manifest, False
    if not args.system:
        raise CLIError(f"--db {db} does not exist yet: say which system builds it with --system "
                       f"{{{','.join(_SYSTEMS)}}}")
    man = manifest_path(db)
    if man.exists():  # never overwrite a file that is not ours, nor the manifest of a database that went missing
        try:
            ours = read_manifest(db) is not None
        except CLIError:
            ours = False
        if ours:
            raise CLIError(f"--db {db}: the database file is missing but its manifest {man} is there: was the "
                           "database moved or deleted? Restore it, or delete the manifest to start a new database")
        raise CLIError(f"--db {db}: {man} exists and is not a samaf manifest; refusing to overwrite it: choose "
                       "another --db")
    system, model_path = create_system(args.system, params, args.model)
    return system, _new_manifest(system, model_path), True


def _decoded(paths: list[Path], jobs: int, compiled_resampler: bool = False
             ) -> Iterator[tuple[Path, Any, str | None]]:
    """``(path, audio or None, reason or None)`` for each path, in order; decoded in ``jobs`` processes.

    ``compiled_resampler`` makes the worker processes resample with scipy's compiled filter from the start
    (:func:`samaf_lib.audio.prefer_compiled_resampler`), as the caller's process does for a long job.
    """
    if jobs <= 1 or len(paths) <= 1:
        for p in paths:
            yield (p, *_decode(str(p)))
        return
    import multiprocessing
    from collections import deque
    from concurrent.futures import ProcessPoolExecutor

    from .audio import prefer_compiled_resampler

    with ProcessPoolExecutor(max_workers=jobs, mp_context=multiprocessing.get_context("spawn"),
                             initializer=prefer_compiled_resampler, initargs=(compiled_resampler,)) as pool:
        pending: deque = deque()
        it = iter(paths)
        for p in it:
            pending.append((p, pool.submit(_decode, str(p))))
            if len(pending) >= 2 * jobs:
                break
        while pending:
            p, fut = pending.popleft()
            nxt = next(it, None)
            if nxt is not None:
                pending.append((nxt, pool.submit(_decode, str(nxt))))
            yield (p, *fut.result())


#: The most decoding processes ``index`` starts.
MAX_JOBS = 64


@dataclass
class Fingerprinted:
    """What a Dask worker hands back for one file: the system's record of it and the audio's length."""

    record: dict
    seconds: float


def _add_reason(e: Exception, rid: str, path: str) -> str:
    """The skip reason of a file whose fingerprinting failed (``AudioError``: short, silent...)."""
    kind = "" if isinstance(e, ValueError) else f"{type(e).__name__}: "
    return kind + _reason(str(e), rid, path)


def _fingerprint_task(path: str, rid: str, blank: Any, threads: int | None = None
                      ) -> tuple[Any, str | None, str | None]:
    """A Dask task: decode ``path`` and fingerprint it with an empty copy of ``blank`` (an in-memory system), on
    the caller's BLAS thread count (``threads``; the same bytes as serially, see :mod:`samaf_lib.parallel`).
    Returns ``(Fingerprinted or None, reason or None, content hash or None)``."""
    from .calibrate import empty_like
    from .parallel import blas_limited

    audio, reason, digest = _decode(path)
    if reason is not None:
        return None, reason, None
    system = empty_like(blank)
    try:
        with blas_limited(threads):
            system.add(rid, audio, LOAD_SR)
    except Exception as e:  # noqa: BLE001 - as in the serial loop: the file is skipped with its reason
        return None, _add_reason(e, rid, path), None
    return Fingerprinted(system.reference_record(rid), audio.size / LOAD_SR), None, digest


def dask_client(address: str) -> Any:
    """:func:`samaf_lib.parallel.dask_client` for ``--dask``; :class:`CLIError` when no client can be had."""
    from .parallel import dask_client as client

    try:
        return client(address, key="--dask")
    except ValueError as e:
        raise CLIError(str(e)) from e


def _fingerprinted_on_dask(todo: list[tuple[Path, str, dict]], client: Any, system: Any, window: int
                           ) -> Iterator[tuple[Path, Any, str | None, str | None]]:
    """``(path, Fingerprinted or None, reason, hash)`` for each file of ``todo``, in order: decoded and
    fingerprinted by the Dask workers, at most ``window`` files in flight. The workers read the files by their
    absolute paths (a cluster needs them on a shared file system)."""
    from collections import deque
    from itertools import islice

    from .calibrate import empty_like
    from .parallel import blas_threads

    blank = client.scatter(empty_like(system), broadcast=True)
    threads = blas_threads()

    def submit(item: tuple[Path, str, dict]) -> tuple[Path, Any]:
        return item[0], client.submit(_fingerprint_task, str(item[0].resolve()), item[1], blank, threads,
                                      pure=False)

    it = iter(todo)
    pending: deque = deque(submit(item) for item in islice(it, window))
    try:
        while pending:
            p, fut = pending.popleft()
            nxt = next(it, None)
            if nxt is not None:
                pending.append(submit(nxt))
            yield (p, *fut.result())
    finally:
        for _, fut in pending:
            fut.cancel()


@contextlib.contextmanager
def database_lock(db: Path, wait: bool = False) -> Iterator[Path]:
    """Hold the exclusive write lock of database ``db`` (the file ``<db>.lock``, locked with ``flock``).

    One writer at a time: a second ``samaf index`` on the same ``--db`` fails at once with a clear message, or with
    ``wait`` waits for the first to finish. Readers take no lock: the journal only grows by whole records (a reader
    ignores a record being written), and a fold replaces the snapshot and then empties the journal, each
    atomically, so a reader sees every file committed before it opened the database. The lock is released by the
    operating system when the process ends, however it ends (no stale lock after a crash)."""
    lock = Path(str(db) + ".lock")
    lock.parent.mkdir(parents=True, exist_ok=True)
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX: no lock (documented)
        yield lock
        return
    fh = open(lock, "a+")
    try:
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            raise CLIError(f"--db {db}: another `samaf index` is writing this database (it holds {lock}); wait for "
                           "it to finish, or run with --wait to queue behind it") from None
        yield lock
    finally:
        fh.close()


def _clean_orphans(db: Path) -> list[Path]:
    """Remove temporary files that an interrupted save of ``db`` or its manifest left (call with the lock held)."""
    removed = []
    for pattern in (f".{db.name}.*.tmp*", f".{manifest_path(db).name}.*.tmp*"):
        for tmp in db.parent.glob(pattern):
            with contextlib.suppress(OSError):
                tmp.unlink()
                removed.append(tmp)
    return removed


class _StopRequest:
    """Ctrl-C, SIGTERM and SIGHUP ask ``index`` to stop after the file it is on.

    The handlers only set :attr:`requested`: a file is never half-added to the database, and a second Ctrl-C or a
    SIGTERM during a fold cannot cut it short. (SIGKILL cannot be caught, and need not be: every file done is
    already in the journal.)"""

    def __init__(self) -> None:
        self.requested: int | None = None
        self._previous: dict = {}

    def _handler(self, signum, frame) -> None:  # noqa: ARG002
        if self.requested is None:
            print("samaf index: stopping after the current file; every file done so far is kept",
                  file=sys.stderr)
        self.requested = signum

    def __enter__(self) -> _StopRequest:
        import signal

        for name in ("SIGINT", "SIGTERM", "SIGHUP"):
            sig = getattr(signal, name, None)
            if sig is not None:
                with contextlib.suppress(ValueError, OSError):  # not the main thread: leave the handler alone
                    self._previous[sig] = signal.signal(sig, self._handler)
        return self

    def __exit__(self, *exc) -> None:
        import signal

        for sig, handler in self._previous.items():
            signal.signal(sig, handler)


def cmd_index(args: argparse.Namespace) -> int:
    """``samaf index``: fingerprint the audio files of a folder into a database (resumable)."""
    root = Path(args.audio_dir)
    if not root.is_dir():
        raise CLIError(f"{root}: no such folder")
    if not 1 <= args.jobs <= MAX_JOBS:
        raise CLIError(f"--jobs must be between 1 and {MAX_JOBS}, got {args.jobs} (this machine has "
                       f"{os.cpu_count()} cores)")
    if args.fold_every < 0:
        raise CLIError(f"--fold-every must be >= 0 (0: fold when the journal outgrows the database), got "
                       f"{args.fold_every}")
    db = Path(args.db)
    for path, what in ((db, "the database"), (manifest_path(db), "its manifest")):
        if path.exists() and not path.is_file():
            raise CLIError(f"--db {db}: {path} ({what}) is a folder, not a file; choose another --db")
    with database_lock(db, wait=args.wait), _StopRequest() as stop:
        for tmp in _clean_orphans(db):
            _warn(f"removed {tmp.name}, left by an interrupted save")
        return _index_locked(args, root, db, stop)


def _index_locked(args: argparse.Namespace, root: Path, db: Path, stop: _StopRequest) -> int:
    system, manifest, created = _open_for_index(args, db)
    UNREADABLE_FOLDERS.clear()
    files = find_audio(root, exclude=[db, manifest_path(db), Path(str(db) + ".lock"), store.journal_path(db)])
    if not files and created:
        raise CLIError(f"{root}: no audio files ({', '.join(AUDIO_SUFFIXES)}) in it or below it", code=1)
    if created:  # the snapshot the journal builds on: an empty database and its manifest
        save_database(system, db, manifest)
        if system.name in IN_PLACE_SYSTEMS:  # from now on the file is the database
            try:
                system = load_system(system.name, db, writable=True)
            except (ValueError, OSError) as e:
                raise CLIError(f"--db {db}: cannot open the new database in place ({e})") from e
    try:
        journal = store.Journal(db, system.name, _jsonable(system.params))
    except store.JournalError as e:
        raise CLIError(f"--db {db}: {e}") from e
    except OSError as e:
        raise CLIError(f"--db {db}: cannot write its journal {store.journal_path(db)}: {_os_reason(e)}") from e
    with journal:
        return _index_journal(args, root, db, stop, system, manifest, journal, files, created)


def _index_journal(args: argparse.Namespace, root: Path, db: Path, stop: _StopRequest, system: Any, manifest: dict,
                   journal: store.Journal, files: list[Path], created: bool) -> int:
    from tqdm import tqdm

    def commit(record: store.Record) -> None:
        """Append ``record`` to the journal (durable when this returns) and apply it to the manifest."""
        journal.append(record)
        store.note(manifest, record)

    for folder, reason in UNREADABLE_FOLDERS:
        _warn(f"{_display(folder)}: folder skipped: {reason}")
        rid = _display(Path(folder).relative_to(root).as_posix() if Path(folder) != root else ".") + "/"
        commit(store.Record("skip", rid, {"source": _display(folder), "reason": f"folder not read: {reason}"}))
    if _display(root.resolve()) not in manifest.setdefault("audio_dirs", []):
        commit(store.Record("dir", _display(root.resolve())))

    todo, n_present, n_changed, n_skipped_before, n_clash = [], 0, 0, 0, 0
    unreadable: list[tuple[str, str]] = []
    for p in files:
        if stop.requested:
            print("samaf index: stopped before indexing began; no file was indexed", file=sys.stderr)
            return 130
        rid = _display(p.relative_to(root).as_posix())
        try:
            state = _file_state(p)
        except (OSError, RuntimeError) as e:  # dangling link, link loop, vanished or unreadable file
            reason = _os_reason(e) if isinstance(e, OSError) else "a loop of symbolic links"
            unreadable.append((rid, reason))
            continue
        if rid in system:
            old = manifest["files"].get(rid, {})
            if old.get("source") and old["source"] != state["source"]:
                n_clash += 1
                _warn(f"{state['source']}: not indexed: the database already has a reference named {rid!r}, from "
                      f"{old['source']}; give each folder its own --db, or rename one of the files")
                continue
            n_present += 1
            if in_place(system) and old.get("size") is None:
                # committed to the file by a run killed before its manifest entry reached the journal: write the
                # entry now (the rows are complete: they were one transaction)
                entry = {**state, "blake2b": content_hash(p), "seconds": round(system.duration_s(rid), 3)}
                commit(store.Record("add", rid, entry, {}))
                continue
            if old.get("size") is not None and (old["size"], old["mtime_ns"]) != (state["size"], state["mtime_ns"]):
                n_changed += 1
                _warn(f"{rid}: changed since it was indexed; kept its old fingerprints (a system cannot remove a "
                      "reference): build a new database to pick up the change")
            elif args.verify and old.get("blake2b") and content_hash(p) != old["blake2b"]:
                n_changed += 1
                _warn(f"{rid}: its content differs from what was indexed (same size and time); kept its old "
                      "fingerprints: build a new database to pick up the change")
            continue
        old_skip = manifest["skipped"].get(rid)
        if old_skip and not args.retry_skipped and (old_skip.get("size"), old_skip.get("mtime_ns")) == (
                state["size"], state["mtime_ns"]):
            n_skipped_before += 1
            continue
        todo.append((p, rid, state))

    added, skipped = 0, 0
    for rid, reason in unreadable:
        commit(store.Record("skip", rid, {"reason": reason}))
        _warn(f"skipped {rid}: {reason}")
        skipped += 1
    bar = tqdm(total=len(todo), unit="file", desc=f"index [{system.name}]", disable=True if args.quiet else None,
               file=sys.stderr, dynamic_ncols=True)
    interrupted = False
    # a long job repays importing scipy's compiled resampler at once (imported only if a file needs resampling)
    compiled = sum(state["size"] for _, _, state in todo) >= COMPILED_RESAMPLER_BYTES
    if compiled:
        from .audio import prefer_compiled_resampler

        previous = prefer_compiled_resampler(True)
    client = dask_client(args.dask) if args.dask else None
    decoded = (_fingerprinted_on_dask(todo, client, system, 4 * len(client.scheduler_info()["workers"]) or 4)
               if client is not None else _decoded([p for p, _, _ in todo], args.jobs, compiled))
    try:
        for (p, rid, state), (_, audio, reason, digest) in zip(todo, decoded):
            seconds = 0.0
            if reason is None:
                try:
                    if isinstance(audio, Fingerprinted):  # fingerprinted by a Dask worker: this process writes it
                        system.add_record(rid, audio.record)
                        seconds = audio.seconds
                    else:
                        system.add(rid, audio, LOAD_SR)
                        seconds = audio.size / LOAD_SR
                except Exception as e:  # noqa: BLE001 - AudioError (short, silent...) or a failure in one system
                    reason = _add_reason(e, rid, str(p))
            if reason is None:
                entry = {**state, "blake2b": digest, "seconds": round(seconds, 3)}
                # a system kept in place has committed its rows already: the record is the manifest entry
                commit(store.Record("add", rid, entry, {} if in_place(system) else system.reference_record(rid)))
                added += 1
                if args.verbose:
                    print(f"added {rid}", flush=True)
            else:
                commit(store.Record("skip", rid, {**state, "reason": reason}))
                skipped += 1
                bar.write(f"samaf index: skipped {rid}: {reason}", file=sys.stderr)
                if args.verbose:
                    print(f"skipped {rid}", flush=True)
            bar.update(1)
            if stop.requested:
                interrupted = True
                break
            if args.fold_every and journal.records >= args.fold_every:
                journal.fold(lambda: save_database(system, db, manifest))
    except KeyboardInterrupt:  # a signal handler of someone else's (not the main thread)
        interrupted = True
    finally:
        decoded.close()
        bar.close()
        if client is not None:
            client.close()
            if getattr(client, "cluster", None) is not None:
                client.cluster.close()
        if compiled:
            prefer_compiled_resampler(previous)
    if not interrupted and not args.no_calibrate and _calibration_due(manifest, len(system)):
        _calibrate_into(system, manifest, journal, quiet=args.quiet)
    snapshot = manifest_path(db) if in_place(system) else db  # what a fold rewrites
    if journal.records and (created or not snapshot.exists() or journal.size() > snapshot.stat().st_size):
        # a new database gets its first snapshot; later the journal is folded when it outgrows the snapshot, so
        # adding a few files to a large database writes those files, not the database again
        journal.fold(lambda: save_database(system, db, manifest))
    if in_place(system):  # fold SQLite's log into the file: the database is one file again when index ends
        system.save(db)
    total = len(system)
    parts = [f"{added} file(s) added", f"{skipped} skipped", f"{n_present} already indexed"]
    if n_skipped_before:
        parts.append(f"{n_skipped_before} skipped before and unchanged (--retry-skipped retries them)")
    if n_changed:
        parts.append(f"{n_changed} changed since indexed")
    if n_clash:
        parts.append(f"{n_clash} not indexed: their names are taken by other files")
    missing = [rid for rid, entry in manifest["files"].items()
               if entry.get("source") and Path(entry["source"]).parent.is_relative_to(root.resolve())
               and not Path(entry["source"]).exists()]
    if missing:
        parts.append(f"{len(missing)} indexed file(s) no longer in the folder (listed by `samaf info`)")
    msg = f"{db} [{system.name}]: {', '.join(parts)}; {total} reference(s) in the database"
    if interrupted:
        print(f"samaf index: interrupted; {msg}. Run the same command again to go on.", file=sys.stderr)
        return 130
    print(msg)
    if total == 0:
        print(f"samaf index: error: no file could be indexed; see the reasons above (or `samaf info --db {db}`)",
              file=sys.stderr)
        return 1
    return 0


#: ``index`` calibrates again when the number of references has changed by this share since the last calibration.
RECALIBRATE_CHANGE = 0.1


def _calibration_due(manifest: dict, n_references: int) -> bool:
    from .calibrate import MIN_REFERENCES

    if n_references < MIN_REFERENCES:
        return False
    last = manifest.get("calibration")
    if not last:
        return True
    return abs(n_references - last["references"]) >= RECALIBRATE_CHANGE * max(last["references"], 1)


def _source_loader(manifest: dict) -> Any:
    """Reference name -> its audio at :data:`LOAD_SR`, read again from the indexed file; ``None`` when the file is
    gone, unreadable or changed since it was indexed (its excerpts would not be what the database holds)."""

    def load(rid: str) -> Any:
        entry = manifest["files"].get(rid, {})
        source = entry.get("source")
        if not source:
            return None
        try:
            state = _file_state(Path(source))
        except (OSError, RuntimeError):
            return None
        if (state["size"], state["mtime_ns"]) != (entry.get("size"), entry.get("mtime_ns")):
            return None
        audio, reason, _ = _decode(source, digest=False)
        return audio if reason is None else None

    return load


def _calibrate_into(system: Any, manifest: dict, journal: store.Journal, quiet: bool = False,
                    target_fpr: float | None = None, seed: int = 0) -> dict | None:
    """Calibrate the database (:mod:`samaf_lib.calibrate`) and commit the result to its journal; a database that
    cannot be calibrated yet (too few references or readable files) is reported and left as it is."""
    from . import calibrate

    try:
        result = calibrate.calibrate(system, _source_loader(manifest), LOAD_SR,
                                     target_fpr=calibrate.TARGET_FPR if target_fpr is None else target_fpr,
                                     seed=seed)
    except ValueError as e:
        _warn(f"not calibrated: {e}")
        return None
    record = store.Record("calib", "calibration", result)
    journal.append(record)
    store.note(manifest, record)
    if not quiet:
        print(_calibration_summary(result), file=sys.stderr)
    return result


def _calibration_summary(c: dict) -> str:
    parts = [f"{k} s >= {v['threshold']:.4g}" for k, v in sorted(c["lengths"].items(), key=lambda kv: float(kv[0]))]
    return (f"samaf: calibrated on {sum(v['negatives'] for v in c['lengths'].values())} out-of-database excerpts "
            f"of {c['held_out']} held-out references at a false-positive rate of {c['target_fpr']:g}: accept "
            + ", ".join(parts))


def cmd_calibrate(args: argparse.Namespace) -> int:
    """``samaf calibrate``: choose the database's thresholds on excerpts of held-out references."""
    if not 0.0 < args.target_fpr < 1.0:
        raise CLIError(f"--target-fpr must be between 0 and 1 (exclusive), got {args.target_fpr}")
    db = Path(args.db)
    _check_database_file(db)
    with database_lock(db, wait=args.wait):
        system, manifest = open_database(db)
        try:
            journal = store.Journal(db, system.name, _jsonable(system.params))
        except store.JournalError as e:
            raise CLIError(f"--db {db}: {e}") from e
        with journal:
            result = _calibrate_into(system, manifest, journal, quiet=True, target_fpr=args.target_fpr,
                                     seed=args.seed)
    if result is None:
        return 1
    print(_calibration_summary(result))
    for k, v in sorted(result["lengths"].items(), key=lambda kv: float(kv[0])):
        print(f"  {k:>3} s: threshold {v['threshold']:.4g} from {v['negatives']} excerpts; clean excerpts in the "
              f"database accepted: {v['accepted_in_database']:.0%}")
    if result["unreadable"]:
        print(f"  {len(result['unreadable'])} held-out file(s) could not be read again and were left out")
    for a, b in result["duplicates"]:
        print(f"  {a} holds audio of {b} (left out of the negatives; `samaf dedup` lists every such pair)")
    return 0


def _warn(message: str) -> None:
    print(f"samaf index: warning: {message}", file=sys.stderr)


# -- identify -------------------------------------------------------------------------------------------------------
def _query_files(items: Sequence[str]) -> list[Path]:
    """The files to query: each item a file, a folder (its audio files) or ``-`` (one path per line of stdin)."""
    out: list[Path] = []
    for item in items:
        if item == "-":
            out.extend(_query_files([line.rstrip("\n") for line in sys.stdin if line.strip()]))
            continue
        p = Path(item)
        out.extend(find_audio(p) if p.is_dir() else [p])
    return out


def identify_file(system: Any, path: Path, min_seconds: float = 1.0, calibration: dict | None = None
                  ) -> dict[str, Any]:
    """Identify one file.

    With ``calibration`` (the database's, :mod:`samaf_lib.calibrate`) a match is accepted when its score reaches
    the calibrated threshold of the query's length, and ``fpr`` is the share of the calibration's
    out-of-database queries that scored as high; without, the system's own ``min_score`` decides.

    Returns
    -------
    dict
        ``file``; ``ref_id`` and ``offset_s`` (both ``None`` for no match); ``score`` (the best candidate's, also
        when rejected; ``None`` on error); ``threshold``; ``fpr`` (``None`` uncalibrated); ``seconds`` of the clip;
        ``error`` (``None``, or why the file could not be queried: unreadable, shorter than ``min_seconds``,
        silent, constant...) and ``warning`` (``None``, or what makes the answer doubtful: heavy clipping).
    """
    from .audio import AudioError, check_audio

    out: dict[str, Any] = {"file": str(path), "ref_id": None, "offset_s": None, "score": None, "threshold": None,
                           "fpr": None, "seconds": None, "error": None, "warning": None}
    audio, reason, _ = _decode(str(path), digest=False)
    if reason is None:
        try:
            check_audio(audio, LOAD_SR, name=str(path), min_duration_s=min_seconds)
            seconds = audio.size / LOAD_SR
            if calibration is None:
                m = system.identify(audio, LOAD_SR)
            else:
                saved = system.params.get("min_score")
                system.params["min_score"] = 0.0
                try:
                    m = system.identify(audio, LOAD_SR)
                finally:
                    system.params["min_score"] = saved
        except AudioError as e:
            reason = _reason(str(e), str(path))
    if reason is not None:
        out["error"] = reason
        return out
    out["seconds"] = round(seconds, 3)
    out["score"] = float(m.score)
    clipped = _clipped_share(audio)
    if clipped >= CLIPPED_SHARE:
        out["warning"] = (f"{clipped:.0%} of the samples sit at the clip's peak (clipped or square-wave-like "
                          "audio): the answer is unreliable")
    if calibration is None:
        out["threshold"] = system.params.get("min_score")
        accepted = m.ref_id is not None
    else:
        from . import calibrate

        out["threshold"], _ = calibrate.threshold(calibration, seconds)
        out["fpr"] = round(calibrate.false_positive_rate(calibration, seconds, m.score), 4)
        accepted = m.ref_id is not None and m.score >= out["threshold"]
    if accepted:
        out.update(ref_id=m.ref_id, offset_s=round(float(m.offset_s), 3))
    return out


#: Share of samples at the clip's peak magnitude from which ``identify`` warns that the clip is clipped.
CLIPPED_SHARE = 0.25


def _clipped_share(audio: Any) -> float:
    import numpy as np

    a = np.abs(np.asarray(audio, dtype=np.float32))
    peak = float(a.max()) if a.size else 0.0
    return float(np.mean(a >= 0.999 * peak)) if peak > 0 else 0.0


def _format_result(r: dict[str, Any]) -> str:
    if r["error"] is not None:
        return f"{r['file']}: error: {r['error']}"
    warn = f" [warning: {r['warning']}]" if r["warning"] else ""
    fpr = f", false-positive rate {r['fpr']:.2g}" if r["fpr"] is not None else ""
    if r["ref_id"] is None:
        best = (f" (best score {r['score']:.4g}, below the threshold {r['threshold']:.4g}{fpr})"
                if r["score"] and r["threshold"] is not None else "")
        return f"{r['file']}: no match{best}{warn}"
    return f"{r['file']}: {r['ref_id']} at {r['offset_s']:.2f} s (score {r['score']:.4g}{fpr}){warn}"


def _judge(system: Any, clip: Any, calibration: dict | None) -> tuple[Any, float | None]:
    """The best match of ``clip`` if it is accepted (else ``None``) and its false-positive rate."""
    from . import calibrate

    if calibration is None:
        m = system.identify(clip, LOAD_SR)
        return (m if m.ref_id is not None else None), None
    saved = system.params.get("min_score")
    system.params["min_score"] = 0.0
    try:
        m = system.identify(clip, LOAD_SR)
    finally:
        system.params["min_score"] = saved
    seconds = clip.size / LOAD_SR
    thr, _ = calibrate.threshold(calibration, seconds)
    fpr = calibrate.false_positive_rate(calibration, seconds, m.score)
    return (m if m.ref_id is not None and m.score >= thr else None), fpr


def segments_of_file(system: Any, path: Path, calibration: dict | None, window_s: float = 5.0,
                     hop_s: float = 2.5, durations: dict[str, float] | None = None) -> dict[str, Any]:
    """Every stretch of a long recording that matches a reference, with its time range in the recording and in
    the reference (as audfprint's ``--find-time-range`` or Panako's monitor).

    Windows of ``window_s`` every ``hop_s`` are identified one by one (each judged by the calibrated threshold of
    its length); consecutive accepted windows naming the same reference at the same alignment (the reference time
    minus the recording time agrees within one hop) join one segment. A segment spans its windows, cut to the
    reference's own length when ``durations`` (reference -> seconds) gives it, so its ends are known to within
    about ``window_s - hop_s``. Returns ``file``, ``seconds``, ``segments``
    (``ref_id``, ``start_s``/``end_s`` in the recording, ``ref_start_s``/``ref_end_s``, ``windows``, the best
    ``score`` and the lowest ``fpr``) and ``error``.
    """
    from .audio import AudioError, check_audio

    out: dict[str, Any] = {"file": str(path), "seconds": None, "segments": [], "error": None}
    audio, reason, _ = _decode(str(path), digest=False)
    if reason is None:
        try:
            check_audio(audio, LOAD_SR, name=str(path), min_duration_s=1.0)
        except AudioError as e:
            reason = _reason(str(e), str(path))
    if reason is not None:
        out["error"] = reason
        return out
    total = audio.size / LOAD_SR
    out["seconds"] = round(total, 3)
    win, hop = int(window_s * LOAD_SR), int(hop_s * LOAD_SR)
    starts = list(range(0, max(audio.size - win, 0) + 1, hop))
    if starts[-1] + win < audio.size:  # the tail gets a window of its own
        starts.append(max(audio.size - win, 0))
    current: dict[str, Any] | None = None
    for start in starts:
        clip = audio[start:start + win]
        try:
            m, fpr = _judge(system, clip, calibration)
        except AudioError:  # a silent stretch
            m, fpr = None, None
        t0, t1 = start / LOAD_SR, (start + clip.size) / LOAD_SR
        if m is None:
            current = None
            continue
        lag = float(m.offset_s) - t0
        if current is not None and current["ref_id"] == m.ref_id and abs(current["_lag"] - lag) <= hop_s:
            current.update(end_s=round(t1, 3), ref_end_s=round(t1 + current["_lag"], 3),
                           windows=current["windows"] + 1, score=max(current["score"], float(m.score)))
            if fpr is not None:
                current["fpr"] = min(current["fpr"], round(fpr, 4))
            continue
        current = {"ref_id": m.ref_id, "start_s": round(t0, 3), "end_s": round(t1, 3),
                   "ref_start_s": round(t0 + lag, 3), "ref_end_s": round(t1 + lag, 3), "windows": 1,
                   "score": float(m.score), "fpr": None if fpr is None else round(fpr, 4), "_lag": lag}
        out["segments"].append(current)
    for seg in out["segments"]:
        lag = seg.pop("_lag")
        length = (durations or {}).get(seg["ref_id"])
        lo, hi = max(seg["start_s"], -lag), seg["end_s"] if length is None else min(seg["end_s"], length - lag)
        if hi > lo:
            seg.update(start_s=round(lo, 3), end_s=round(hi, 3), ref_start_s=round(lo + lag, 3),
                       ref_end_s=round(hi + lag, 3))
    return out


def _format_segments(r: dict[str, Any]) -> list[str]:
    if r["error"] is not None:
        return [f"{r['file']}: error: {r['error']}"]
    if not r["segments"]:
        return [f"{r['file']}: no match in {r['seconds']:.1f} s"]
    return [f"{r['file']} {s['start_s']:.1f}-{s['end_s']:.1f} s: {s['ref_id']} {s['ref_start_s']:.1f}-"
            f"{s['ref_end_s']:.1f} s (score {s['score']:.4g}" + (f", false-positive rate {s['fpr']:.2g})"
                                                                  if s["fpr"] is not None else ")")
            for s in r["segments"]]


def cmd_identify(args: argparse.Namespace) -> int:
    """``samaf identify``: the reference, offset and score of each file, or "no match"."""
    if args.min_seconds < 0:
        raise CLIError(f"--min-seconds must be >= 0, got {args.min_seconds}")
    system, manifest = open_database(args.db)
    calibration = None if args.uncalibrated else manifest.get("calibration")
    if calibration is None and not args.uncalibrated:
        _warn(f"{args.db} is not calibrated (run `samaf calibrate --db {args.db}`): a match is accepted at the "
              f"system's own min_score ({system.params.get('min_score')}), which does not control how often "
              "out-of-database clips are matched")
    files = _query_files(args.files)
    if not files:
        raise CLIError("no audio files to identify (the folders given hold none)")
    if args.segments and not (0 < args.hop <= args.window):
        raise CLIError(f"--hop must be in (0, --window], got --hop {args.hop} --window {args.window}")
    if args.segments and args.window < 1.0:
        raise CLIError(f"--window must be at least 1 s, got {args.window}")
    results = []
    for p in files:
        if args.segments:
            durations = {rid: e["seconds"] for rid, e in manifest["files"].items() if e.get("seconds")}
            r = segments_of_file(system, p, calibration, args.window, args.hop, durations)
        else:
            r = identify_file(system, p, args.min_seconds, calibration)
        results.append(r)
        if not args.json:
            for line in (_format_segments(r) if args.segments else [_format_result(r)]):
                print(line, flush=True)
    if args.json:
        print(json.dumps(results, indent=2))
    return 1 if all(r["error"] is not None for r in results) else 0


# -- list, remove ---------------------------------------------------------------------------------------------------
def cmd_list(args: argparse.Namespace) -> int:
    """``samaf list``: every reference with its length and the file it came from."""
    _, _, refs, manifest = describe_database(args.db)
    rows = [{"ref_id": rid, "seconds": manifest["files"].get(rid, {}).get("seconds"),
             "source": manifest["files"].get(rid, {}).get("source")} for rid in refs]
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    for r in rows:
        sec = f"{r['seconds']:.1f} s" if r["seconds"] is not None else "? s"
        print(f"{r['ref_id']}\t{sec}\t{r['source'] or ''}")
    return 0


def cmd_remove(args: argparse.Namespace) -> int:
    """``samaf remove``: take references out of a database (deleted in its file in one transaction; an earlier
    version's whole-file database is rewritten without them)."""
    from .calibrate import without

    db = Path(args.db)
    _check_database_file(db)
    with database_lock(db, wait=args.wait):
        for tmp in _clean_orphans(db):
            _warn(f"removed {tmp.name}, left by an interrupted save")
        system, manifest = open_database(db, writable=True)
        names = list(dict.fromkeys(args.refs))
        missing = [n for n in names if n not in system]
        if missing:
            raise CLIError(f"--db {db} holds no reference named {', '.join(map(repr, missing))} (`samaf list "
                           f"--db {db}` lists them); nothing was removed")
        gone = set(names)
        if in_place(system):  # deleted in the file, in one transaction; the fold below writes the manifest
            system.remove(names)
            kept = system
        else:
            kept = without(system, gone)
        for rid in gone:
            manifest["files"].pop(rid, None)
        try:
            journal = store.Journal(db, system.name, _jsonable(system.params))
        except store.JournalError as e:
            raise CLIError(f"--db {db}: {e}") from e
        with journal:  # the new snapshot first, then the journal emptied: a kill in between removes nothing twice
            journal.fold(lambda: save_database(kept, db, manifest))
    print(f"{db} [{system.name}]: removed {len(gone)} reference(s); {len(kept)} remain")
    return 0


def cmd_dedup(args: argparse.Namespace) -> int:
    """``samaf dedup``: pairs of references that match each other (the same recording indexed twice, a copy)."""
    import numpy as np

    from .calibrate import without

    system, manifest = open_database(args.db)
    calibration = None if args.uncalibrated else manifest.get("calibration")
    load = _source_loader(manifest)
    refs = system.references()
    if len(refs) < 2:
        raise CLIError(f"--db {args.db} holds {len(refs)} reference(s); dedup needs two or more", code=1)
    halves = [refs[0::2], refs[1::2]]  # each half is queried against the database without it
    pairs, unreadable = [], []
    for half in halves:
        copy = without(system, set(half))
        for rid in half:
            audio = load(rid)
            if audio is None:
                unreadable.append(rid)
                continue
            n = min(audio.size, int(args.excerpt * LOAD_SR))
            start = (audio.size - n) // 2
            try:
                m, fpr = _judge(copy, audio[start:start + n], calibration)
            except Exception as e:  # noqa: BLE001 - an excerpt a system cannot take (silent middle)
                _warn(f"{rid}: not checked ({e})")
                continue
            if m is not None:
                pairs.append({"ref_id": rid, "matches": m.ref_id, "at_s": round(start / LOAD_SR, 3),
                              "offset_s": round(float(m.offset_s), 3), "score": float(m.score),
                              "fpr": None if fpr is None else round(float(np.float64(fpr)), 4)})
    if args.json:
        print(json.dumps({"pairs": pairs, "unreadable": unreadable}, indent=2))
    else:
        for p in pairs:
            print(f"{p['ref_id']} ({p['at_s']:.1f} s) matches {p['matches']} at {p['offset_s']:.1f} s "
                  f"(score {p['score']:.4g})")
        print(f"{len(pairs)} of {len(refs) - len(unreadable)} reference(s) match another"
              + (f"; {len(unreadable)} could not be read again" if unreadable else ""))
    return 0


# -- info -----------------------------------------------------------------------------------------------------------
def database_info(db: str | os.PathLike) -> dict[str, Any]:
    """What ``samaf info`` shows: the system's :meth:`stats` plus the file size and the manifest's record."""
    name, stats, refs, manifest = describe_database(db)
    stats = _jsonable(stats)
    return {
        "database": str(Path(db).resolve()),
        "system": name,
        "params": stats["params"],
        "references": len(refs),
        "fingerprints": stats.get("fingerprints"),
        "seconds": stats.get("seconds"),
        "bytes": stats.get("bytes"),
        "bytes_on_disk": sum(p.stat().st_size for p in (Path(db), manifest_path(db), store.journal_path(db))
                             if p.is_file()),
        "journal_bytes": store.journal_path(db).stat().st_size if store.journal_path(db).is_file() else 0,
        "bits_per_second": stats.get("bits_per_second"),
        "model": manifest.get("model"),
        "audio_dirs": manifest.get("audio_dirs", []),
        "skipped": manifest.get("skipped", {}),
        "calibration": ({k: v for k, v in manifest["calibration"].items() if k != "lengths"}
                        | {"thresholds": {k: {f: e[f] for f in ("threshold", "negatives", "accepted_in_database")}
                                          for k, e in manifest["calibration"]["lengths"].items()}}
                        if manifest.get("calibration") else None),
        "stats": stats,
    }


def cmd_info(args: argparse.Namespace) -> int:
    """``samaf info``: system, parameters, references, fingerprints, bytes, seconds indexed."""
    info = database_info(args.db)
    if args.json:
        print(json.dumps(info, indent=2, sort_keys=True))
        return 0
    sec = info["seconds"] or 0.0
    lines = [
        ("database", info["database"]),
        ("system", info["system"]),
        ("references", f"{info['references']:,}"),
        ("fingerprints", f"{info['fingerprints']:,}" if info["fingerprints"] is not None else "?"),
        ("audio indexed", f"{sec:,.1f} s ({sec / 3600:.3f} h)"),
        ("fingerprint bytes", f"{info['bytes']:,}" if info["bytes"] is not None else "?"),
        ("bytes on disk", f"{info['bytes_on_disk']:,} (database, manifest and journal: "
                          f"{info['journal_bytes']:,} not yet folded in)"),
        ("bits per second", f"{info['bits_per_second']:.1f}" if info["bits_per_second"] else "?"),
    ]
    if info["model"]:
        lines.append(("model", info["model"]))
    for d in info["audio_dirs"]:
        lines.append(("audio folder", d))
    lines.append(("skipped files", str(len(info["skipped"]))))
    cal = info["calibration"]
    if cal:
        lines.append(("calibrated", f"at a false-positive rate of {cal['target_fpr']:g} on {cal['held_out']} held-out "
                                    f"references (of {cal['references']})"))
        for k, e in sorted(cal["thresholds"].items(), key=lambda kv: float(kv[0])):
            lines.append((f"  threshold {k} s", f"{e['threshold']:.4g} ({e['negatives']} excerpts; clean excerpts "
                                                f"in the database accepted: {e['accepted_in_database']:.0%})"))
    else:
        lines.append(("calibrated", "no (`samaf calibrate`)"))
    width = max(len(k) for k, _ in lines)
    for k, v in lines:
        print(f"{k:<{width}}  {v}")
    print("parameters")
    for k in sorted(info["params"]):
        print(f"  {k} = {json.dumps(info['params'][k])}")
    for rid, s in sorted(info["skipped"].items()):
        print(f"skipped  {rid}: {s.get('reason')}")
    return 0


# -- the parser -----------------------------------------------------------------------------------------------------
_EPILOG = """\
exit status: 0 success; 1 nothing could be done (index: the database holds no reference; identify: every file
failed); 2 usage error (bad arguments, missing or mismatched database, no trained model); 130 interrupted.
"""


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("samaf-study")
    except PackageNotFoundError:  # run from a source tree that was not installed
        return "(not installed)"


def build_parser() -> argparse.ArgumentParser:
    """The ``samaf`` argument parser with its four subcommands."""
    systems = list(_SYSTEMS)
    parser = argparse.ArgumentParser(
        prog="samaf", epilog=_EPILOG,
        description="Index recordings and identify clips with SAMAF, Dejavu, RAFS, Panako or Triplets.")
    parser.add_argument("--debug", action="store_true", help="show the traceback of an unexpected error")
    parser.add_argument("--version", action="version", version=f"samaf {_version()}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser(
        "index", epilog=_EPILOG,
        help="fingerprint the audio files of a folder into a database (resumable)",
        description=(
            "Fingerprint every wav, flac, mp3 and ogg file under AUDIO_DIR (recursively, in sorted order) into the "
            "database at --db; the reference id of a file is its path relative to AUDIO_DIR. Files that cannot be "
            "read, are too short or silent are reported by name and skipped. Run the command again to add only "
            "the files not yet in the database (an interrupted run goes on where it stopped). The database is the "
            "system's file at PATH plus a manifest PATH.json; both are written atomically."))
    p.add_argument("audio_dir", metavar="AUDIO_DIR", help="folder of recordings")
    p.add_argument("--system", choices=systems,
                   help="the fingerprinting system (required for a new database; must match an existing one)")
    p.add_argument("--db", required=True, metavar="PATH", help="the database file (created if missing)")
    p.add_argument("--model", metavar="CHECKPOINT",
                   help=f"SAMAF only: the trained model (best.pt); default {DEFAULT_MODEL} under the project root, "
                        "as `make repro` writes it")
    p.add_argument("--jobs", type=int, default=1, metavar="N",
                   help="decode and resample files in N worker processes (default 1). Fingerprinting and database "
                        "writes stay in this process, so N > 1 only speeds up decoding (most for mp3 and ogg); "
                        "--dask fingerprints in workers too")
    p.add_argument("--dask", metavar="ADDRESS",
                   help="decode and fingerprint the files on a Dask cluster: local:N starts N worker processes "
                        "here, tcp://HOST:8786 uses a running scheduler (its workers must see the files at the same "
                        "absolute paths); this process alone writes the database, and resuming works as without")
    p.add_argument("--param", action="append", default=[], metavar="KEY=VALUE",
                   help="a system parameter for a new database (repeatable; VALUE read as JSON, else as text), "
                        "e.g. --param min_score=0.2")
    p.add_argument("--fold-every", type=int, default=0, metavar="N",
                   help="rewrite the database file with its journal folded in every N files; default 0: when the "
                        "journal has grown larger than the database file (each file is committed to the journal "
                        "as soon as it is done, whatever this is)")
    p.add_argument("-v", "--verbose", action="store_true",
                   help="print 'added NAME' or 'skipped NAME' on stdout as each file is committed")
    p.add_argument("--retry-skipped", action="store_true",
                   help="try again the files skipped by an earlier run even if they have not changed")
    p.add_argument("--wait", action="store_true",
                   help="when another `samaf index` is writing this --db, wait for it instead of stopping")
    p.add_argument("--verify", action="store_true",
                   help="read every indexed file again and compare its content hash with the one recorded")
    p.add_argument("--no-calibrate", action="store_true",
                   help="do not calibrate at the end of the run (see `samaf calibrate`)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_index)

    p = sub.add_parser(
        "identify",
        help="identify audio clips against a database",
        description=(
            "For each FILE (a folder stands for the audio files in it): the reference, where the clip starts in "
            "it (seconds) and the system's score, or 'no match'. A file that cannot be read, is shorter than "
            "--min-seconds or is silent gives an 'error: reason' line (with --json an \"error\" field) and the "
            "others go on."),
        epilog="exit status: 0 when at least one file could be queried (matched or not); 1 when every file "
               "failed; 2 usage error (bad arguments, no database).")
    p.add_argument("files", nargs="+", metavar="FILE",
                   help="audio clips (wav, flac, mp3, ogg), folders of them, or - to read one path per line of stdin")
    p.add_argument("--db", required=True, metavar="PATH", help="a database written by `samaf index`")
    p.add_argument("--json", action="store_true",
                   help="print one JSON list of {file, ref_id, offset_s, score, threshold, fpr, seconds, error, "
                        "warning} (ref_id and offset_s null: no match)")
    p.add_argument("--min-seconds", type=float, default=1.0, metavar="S",
                   help="shortest clip queried (default 1.0 s)")
    p.add_argument("--segments", action="store_true",
                   help="long recordings: report every stretch that matches a reference, with its time range in the "
                        "recording and in the reference (windows of --window s every --hop s)")
    p.add_argument("--window", type=float, default=5.0, metavar="S", help="--segments window (default 5 s)")
    p.add_argument("--hop", type=float, default=2.5, metavar="S", help="--segments hop (default 2.5 s)")
    p.add_argument("--uncalibrated", action="store_true",
                   help="accept matches at the system's own min_score, not at the database's calibrated thresholds")
    p.set_defaults(func=cmd_identify)

    p = sub.add_parser(
        "calibrate", epilog=_EPILOG,
        help="choose the database's thresholds (index does it too)",
        description=(
            "Choose the score a match needs, per query length (1, 2, 3, 5, 10, 20 s), so that at most "
            "--target-fpr of out-of-database clips are matched: excerpts of held-out references are queried "
            "against a copy of the database without them (the study's rule, on this database's own audio). "
            "`samaf index` calibrates at the end of a run when the number of references has changed by 10 % or "
            "more; `identify` then reports each score's false-positive rate. Needs the indexed files."))
    p.add_argument("--db", required=True, metavar="PATH", help="a database written by `samaf index`")
    p.add_argument("--target-fpr", type=float, default=0.05, metavar="P",
                   help="largest share of out-of-database clips matched (default 0.05, the study's)")
    p.add_argument("--seed", type=int, default=0, help="draws the held-out references and excerpts (default 0)")
    p.add_argument("--wait", action="store_true",
                   help="when a `samaf index` is writing this --db, wait for it instead of stopping")
    p.set_defaults(func=cmd_calibrate)

    p = sub.add_parser("list", help="list the references of a database",
                       description="Every reference: its name, its length and the file it was indexed from.")
    p.add_argument("--db", required=True, metavar="PATH", help="a database written by `samaf index`")
    p.add_argument("--json", action="store_true", help="print a JSON list of {ref_id, seconds, source}")
    p.set_defaults(func=cmd_list)

    p = sub.add_parser("remove", help="remove references from a database",
                       description="Take the named references out of the database (their files are not touched; "
                                   "`samaf index` adds them again unless they are moved away). The database file "
                                   "is rewritten without them.")
    p.add_argument("refs", nargs="+", metavar="REF", help="reference names, as `samaf list` shows them")
    p.add_argument("--db", required=True, metavar="PATH", help="a database written by `samaf index`")
    p.add_argument("--wait", action="store_true",
                   help="when a `samaf index` is writing this --db, wait for it instead of stopping")
    p.set_defaults(func=cmd_remove)

    p = sub.add_parser("dedup", help="find references that match each other",
                       description="Query an excerpt from the middle of every reference against the database "
                                   "without it (half of the references at a time) and list those that match "
                                   "another reference: duplicates, copies, shared material. Needs the indexed "
                                   "files.")
    p.add_argument("--db", required=True, metavar="PATH", help="a database written by `samaf index`")
    p.add_argument("--excerpt", type=float, default=5.0, metavar="S", help="excerpt length (default 5 s)")
    p.add_argument("--uncalibrated", action="store_true", help="judge at the system's own min_score")
    p.add_argument("--json", action="store_true", help="print {pairs: [...], unreadable: [...]}")
    p.set_defaults(func=cmd_dedup)

    p = sub.add_parser("info", help="describe a database",
                       description="System, parameters, references, fingerprints, bytes and seconds indexed.")
    p.add_argument("--db", required=True, metavar="PATH", help="a database written by `samaf index`")
    p.add_argument("--json", action="store_true", help="print the description as JSON")
    p.set_defaults(func=cmd_info)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``samaf`` command with ``argv`` (default ``sys.argv[1:]``) and return its exit status."""
    for stream in (sys.stdout, sys.stderr):  # file names that are not valid UTF-8 are printed with escapes
        with contextlib.suppress(AttributeError, ValueError):
            stream.reconfigure(errors="backslashreplace")
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:  # --help (0) or a usage error (2): argparse has printed the message
        return e.code if isinstance(e.code, int) else (0 if e.code is None else 2)
    try:
        if getattr(args, "db", None) and str(args.db).startswith(("postgresql://", "postgres://")):
            args.db = str(_server_database(args.db))
        return args.func(args)
    except CLIError as e:
        print(f"samaf {args.command}: error: {e}", file=sys.stderr)
        return e.code
    except KeyboardInterrupt:
        print(f"samaf {args.command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # the reader went away (`samaf info ... | head`): stop quietly
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), sys.stdout.fileno())
        return 141
    except Exception as e:
        if args.debug:
            raise
        print(f"samaf {args.command}: error: {type(e).__name__}: {e} (run `samaf --debug {args.command} ...` for "
              "the traceback)", file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
