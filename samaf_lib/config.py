"""Reading ``params.yaml`` with errors that name the key."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml

from .paths import project_root


def load_params(path: str | os.PathLike | None = None) -> dict:
    """The study's parameters (``<root>/params.yaml`` by default)."""
    p = Path(path) if path else project_root() / "params.yaml"
    if not p.exists():
        raise FileNotFoundError(f"{p}: no params.yaml; run from the study folder or set SAMAF_ROOT")
    with open(p) as f:
        params = yaml.safe_load(f) or {}
    if not isinstance(params, dict):
        raise ValueError(f"{p}: expected a mapping of sections, got {type(params).__name__}")
    return params


def get(params: dict, dotted: str, default: Any = ...) -> Any:
    """``get(params, "data.n_speakers")``; a missing key without a default raises KeyError naming it."""
    node: Any = params
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            if default is ...:
                raise KeyError(f"params.yaml has no key {dotted!r}")
            return default
        node = node[part]
    return node


def choice(value: Any, key: str, allowed: tuple) -> Any:
    """Check ``value`` is one of ``allowed``; the error names the key."""
    if value not in allowed:
        raise ValueError(f"{key}: {value!r} is not one of {', '.join(map(str, allowed))}")
    return value


def positive(value: Any, key: str, integer: bool = False) -> Any:
    """Check ``value`` is a positive number (an int when ``integer``); the error names the key."""
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0
    if integer:
        ok = ok and float(value).is_integer()
    if not ok:
        raise ValueError(f"{key}: expected a positive {'integer' if integer else 'number'}, got {value!r}")
    return int(value) if integer else value
