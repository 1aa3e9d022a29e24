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
