"""Progress bars for long loops: shown in a terminal, silent in notebooks, logs and tests.

A bar in an executed notebook is noise (hundreds of carriage-return lines in the HTML, a warning about widgets),
and its timings would differ on every run, so a bar is drawn only when standard error is a terminal.
"""

from __future__ import annotations

import sys
from typing import Any, Iterable

from tqdm.std import tqdm


def interactive() -> bool:
    """True when standard error is a terminal (not a notebook kernel, a pipe or a file)."""
    isatty = getattr(sys.stderr, "isatty", None)
    try:
        return bool(isatty and isatty())
    except ValueError:  # a closed stream
        return False


def bar(iterable: Iterable | None = None, *, enabled: bool = True, **kwargs: Any) -> tqdm:
    """A tqdm bar over ``iterable``, drawn only when ``enabled`` and :func:`interactive`."""
    return tqdm(iterable, disable=not (enabled and interactive()), **kwargs)
