"""Atomic writes: a stage interrupted half-way never leaves a file that looks complete."""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator

if TYPE_CHECKING:  # pandas costs a quarter of a second of start-up; imported where a CSV is written
    import pandas as pd

import numpy as np


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success rename it onto ``path``, on error remove it.

    The temporary file keeps the target's suffix (``suffix`` overrides) so that libraries which pick a format
    from the extension (soundfile, numpy, faiss) write the right one.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    sfx = suffix if suffix is not None else "".join(path.suffixes)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=f".tmp{sfx}", dir=path.parent)
    with contextlib.suppress(OSError):  # mkstemp makes the file private (0600); give it the user's usual mode
        os.fchmod(fd, 0o666 & ~_umask())
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.replace(tmp_path, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp_path.unlink()
        raise


def _umask() -> int:
    """The process's file-mode creation mask (read by setting it and putting it back)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def write_text(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` to ``path`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def write_json(path: str | os.PathLike, obj: Any) -> None:
    """Write ``obj`` as indented, key-sorted JSON, atomically."""
    write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=_json_default) + "\n")


def write_csv(path: str | os.PathLike, df: pd.DataFrame) -> None:
    """Write a DataFrame as CSV (no index), atomically."""
    with atomic_path(path) as tmp:
        df.to_csv(tmp, index=False)


#: Timestamp written for every member of an ``.npz`` archive (zip's earliest date), so that the same arrays
#: always give the same bytes (``np.savez`` stamps each member with the current time).
_ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)


def save_npz(file: Any, compress: bool = True, **arrays: np.ndarray) -> None:
    """Write arrays as an ``.npz`` (a zip of ``.npy`` members) to a path or an open binary file, byte-reproducibly.

    Readable with ``np.load``. Unlike ``np.savez``, every member carries a fixed timestamp and the members are
    written in the order given, so equal arrays give an identical file (DVC hashes stay the same across runs).
    Not atomic by itself: :func:`write_npz` is.

    Parameters
    ----------
    file : path-like or binary file object
        Where the archive goes.
    compress : bool
        Deflate the members (default) or store them as they are.
    **arrays : np.ndarray
        Member name -> array; object arrays are refused (``np.load(allow_pickle=False)`` must read the file).
    """
    import io as _io
    import zipfile

    method = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
    with zipfile.ZipFile(file, "w", compression=method, allowZip64=True) as zf:
        for name, value in arrays.items():
            arr = np.asanyarray(value)
            if arr.dtype.hasobject:
                raise ValueError(f"npz member {name!r} is an object array; store strings as fixed-width unicode "
                                 "(np.array([...], dtype=str))")
            buf = _io.BytesIO()
            np.lib.format.write_array(buf, arr, allow_pickle=False)
            info = zipfile.ZipInfo(f"{name}.npy", date_time=_ZIP_EPOCH)
            info.compress_type = method
            info.external_attr = 0o600 << 16
            zf.writestr(info, buf.getvalue())


def write_npz(path: str | os.PathLike, compress: bool = True, **arrays: np.ndarray) -> None:
    """Write arrays to an ``.npz`` atomically (temporary file, then rename) with :func:`save_npz`."""
    with atomic_path(path, suffix=".npz") as tmp:
        save_npz(tmp, compress, **arrays)


def _json_default(o: Any) -> Any:
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"cannot write {type(o).__name__} as JSON")
