"""The pipeline's query stages on a Dask cluster: the answers of :func:`samaf_lib.protocol.run_queries`, computed
in Dask workers.

Answering the test and calibration queries is the per-file part of the ``hash`` and ``baselines`` stages: every
query is read, fingerprinted and looked up on its own. With ``parallel.dask`` set in ``params.yaml`` (``local:N``
starts a ``LocalCluster`` of N single-threaded worker processes on this machine; ``tcp://HOST:8786`` uses a running
cluster, whose workers must see the project's files at the same absolute paths), the manifest is cut into chunks
of :data:`CHUNK` queries in manifest order, each worker loads the database the stage has just saved (once per
process: the file, not the in-memory system, travels), answers its chunks with the same ``min_score`` and the
results are put back in manifest order. The answers are those of the serial run, row for row
(``tests/test_parallel.py``); so are the committed results, which come from the serial default (``dask: ""``).
Which worker answers which query changes nothing: a query's answer depends only on the database and the query.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pandas as pd

from . import protocol

#: Queries per Dask task.
CHUNK = 64
#: Databases loaded in this (worker) process, by (system, path, size, mtime).
_LOADED: dict[tuple, Any] = {}


def check_address(dask: str, key: str = "parallel.dask") -> str:
    """``dask`` stripped, or ``ValueError`` naming ``key`` and the accepted forms."""
    if not isinstance(dask, str):
        raise ValueError(f"{key} must be a string ('' for serial, local:N or tcp://HOST:PORT), got {dask!r}")
    d = dask.strip()
    if d and not (d.startswith("local:") or "://" in d):
        raise ValueError(f"{key}={dask!r}: use '' (serial, the default), local:N (N worker processes here) or the "
                         "scheduler's address, tcp://HOST:8786")
    return d


def connect(dask: str, key: str = "parallel.dask") -> Any:
    """A Dask client for ``dask`` (see the module docstring); ``ValueError`` naming ``key`` when it cannot be had."""
    from .cli import CLIError, dask_client

    try:
        return dask_client(check_address(dask, key))
    except CLIError as e:
        raise ValueError(f"{key}: {e}") from e


def run_queries(system: Any, saved: str | os.PathLike, manifest: pd.DataFrame, query_dir: str | os.PathLike,
                sr: int, min_score: float | None = 0.0, dask: str = "", progress: bool = True) -> pd.DataFrame:
    """:func:`samaf_lib.protocol.run_queries` for ``system``, serially (``dask`` empty) or in Dask workers.

    Parameters
    ----------
    system : Fingerprinter
        The stage's database, in memory (answers the serial run).
    saved : path-like
        Where the stage saved it (``system.save``): what each worker loads.
    dask : str
        ``""``, ``local:N`` or a scheduler's address.

    Returns
    -------
    pandas.DataFrame
        One row per query of ``manifest``, in its order (timing columns included, as the serial run's).
    """
    address = check_address(dask)
    if not address:
        return protocol.run_queries(system, manifest, query_dir, sr, progress=progress, min_score=min_score)
    saved = Path(saved).resolve()
    if not saved.exists():
        raise FileNotFoundError(f"{saved}: save the database before answering the queries on Dask")
    client = connect(address)
    try:
        futures = [client.submit(_answer_chunk, system.name, str(saved), manifest.iloc[i:i + CHUNK].copy(),
                                 str(Path(query_dir).resolve()), sr, min_score, pure=False)
                   for i in range(0, len(manifest), CHUNK)]
        parts = client.gather(futures)
    finally:
        cluster = getattr(client, "cluster", None)
        client.close()
        if cluster is not None and address.startswith("local:"):
            cluster.close()
    if not parts:
        return protocol.run_queries(system, manifest.iloc[:0], query_dir, sr, progress=False, min_score=min_score)
    return pd.concat(parts, ignore_index=True)


def _answer_chunk(name: str, saved: str, chunk: pd.DataFrame, query_dir: str, sr: int,
                  min_score: float | None) -> pd.DataFrame:
    """A Dask task: the answers to ``chunk`` from the database saved at ``saved`` (loaded once per process)."""
    from . import systems

    st = os.stat(saved)
    key = (name, saved, st.st_size, st.st_mtime_ns)
    if key not in _LOADED:
        _LOADED.clear()
        _LOADED[key] = systems.load(name, saved)
    return protocol.run_queries(_LOADED[key], chunk, query_dir, sr, progress=False, min_score=min_score)
