"""The systems of the study behind one interface: ``get(name, **params)``.

``panako`` is Panako as published in 2014; ``triplets`` is the study's own Panako-inspired redesign.
"""

from __future__ import annotations

import importlib

from .base import NO_MATCH, Fingerprinter, Match

#: System name -> module under ``samaf_lib.systems``; each module exposes its class as ``SYSTEM``.
SYSTEMS = ("samaf", "dejavu", "rafs", "panako", "triplets")


def system_class(name: str) -> type:
    """The class implementing system ``name``."""
    if name not in SYSTEMS:
        raise KeyError(f"unknown system {name!r}; choose one of {', '.join(SYSTEMS)}")
    return importlib.import_module(f"{__name__}.{name}").SYSTEM


def get(name: str, **params) -> Fingerprinter:
    """A new, empty system ``name`` with its defaults (docs/study.md, Systems), overridden by ``params``.

    Unknown parameter names raise ``TypeError`` naming the key.
    """
    return system_class(name)(**params)


def load(name: str, path) -> Fingerprinter:
    """Open a database of system ``name`` saved at ``path``.

    A damaged or foreign file raises ``ValueError`` naming ``path`` (whatever the format's own reader raised), a
    missing one ``FileNotFoundError``."""
    import sqlite3
    import zipfile

    try:
        return system_class(name).load(path)
    except (zipfile.BadZipFile, EOFError, KeyError, IndexError, sqlite3.Error, UnicodeDecodeError) as e:
        raise ValueError(f"{path}: not a readable {name} database (damaged or truncated? {type(e).__name__}: "
                         f"{e})") from e


__all__ = ["Fingerprinter", "Match", "NO_MATCH", "SYSTEMS", "get", "load", "system_class"]
