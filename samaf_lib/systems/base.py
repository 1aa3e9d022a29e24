"""The one interface every system implements (docs/study.md, Systems)."""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np


@dataclass(frozen=True)
class Match:
    """The answer to a query.

    Attributes
    ----------
    ref_id : str or None
        The identified reference, or ``None`` for "no match" (rejected, too short, silent).
    offset_s : float
        Where the query starts inside the reference, in seconds (0.0 when there is no match).
    score : float
        The system's confidence; higher is more confident. Comparable within one system only.
    """

    ref_id: str | None
    offset_s: float = 0.0
    score: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


NO_MATCH = Match(None, 0.0, 0.0)


@runtime_checkable
class Fingerprinter(Protocol):
    """What evaluation, benchmarks and the CLI need of a system."""

    name: str

    def add(self, ref_id: str, audio: np.ndarray, sr: int) -> None:
        """Fingerprint ``audio`` (mono float, any rate) and store it under ``ref_id``."""

    def identify(self, audio: np.ndarray, sr: int) -> Match:
        """Return the best reference for ``audio``, or a :class:`Match` with ``ref_id=None``."""

    def save(self, path: str | os.PathLike) -> None:
        """Persist the database to ``path`` (a file or folder, system-specific), atomically."""

    @classmethod
    def load(cls, path: str | os.PathLike) -> "Fingerprinter":
        """Open a database written by :meth:`save`."""

    def stats(self) -> dict:
        """``{"references", "fingerprints", "bytes", "seconds", "bits_per_second"}`` at least."""

    def reference_record(self, ref_id: str) -> dict[str, np.ndarray]:
        """Everything :meth:`add` stored for ``ref_id``, as named arrays (``"seconds"`` among them).

        The database journal (``samaf_lib.store``) appends this record when a file is indexed and gives it back to
        :meth:`add_record` when the database is reopened; the fingerprinting is not done again."""

    def add_record(self, ref_id: str, record: dict[str, np.ndarray]) -> None:
        """Store a record from :meth:`reference_record` under ``ref_id``, as :meth:`add` would have."""


def check_record(system: str, ref_id: str, record: dict[str, np.ndarray],
                 spec: dict[str, tuple[str, int]]) -> dict[str, np.ndarray]:
    """The arrays of ``record`` cast to ``spec`` (name -> (dtype, ndim)), or ``ValueError`` naming what is wrong.

    Every array of ``spec`` must be there with its number of dimensions, the 1-D and 2-D ones of one length
    (rows of the same stored items), and ``seconds`` a positive finite number."""
    if not isinstance(ref_id, str) or not ref_id:
        raise ValueError(f"{system}: ref_id must be a non-empty string, got {ref_id!r}")
    out: dict[str, np.ndarray] = {}
    for name, (dtype, ndim) in spec.items():
        if name not in record:
            raise ValueError(f"{system}: the record of {ref_id!r} lacks {name!r}")
        a = np.asarray(record[name])
        if a.ndim != ndim:
            raise ValueError(f"{system}: {name!r} of {ref_id!r} has {a.ndim} dimension(s), expected {ndim}")
        out[name] = a.astype(dtype, copy=False)
    rows = {a.shape[0] for a in out.values() if a.ndim >= 1}
    if len(rows) > 1:
        raise ValueError(f"{system}: the arrays of {ref_id!r}'s record have different lengths {sorted(rows)}")
    seconds = float(out["seconds"])
    if not np.isfinite(seconds) or seconds <= 0:
        raise ValueError(f"{system}: the record of {ref_id!r} gives {seconds} s of audio")
    return out
