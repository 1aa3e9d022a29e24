"""The pipeline's per-file work on a Dask cluster: rendering the queries and the training clusters (``data``
stage, :func:`map_ordered`) and answering the queries (``hash`` and ``baselines``, :func:`run_queries`).

Answering the test and calibration queries is the per-file part of the ``hash`` and ``baselines`` stages: every
query is read, fingerprinted and looked up on its own. With ``parallel.dask`` set in ``params.yaml`` (``local:N``
starts a ``LocalCluster`` of N single-threaded worker processes on this machine; ``tcp://HOST:8786`` uses a running
cluster, whose workers must see the project's files at the same absolute paths), the manifest is cut into chunks
of :data:`CHUNK` queries in manifest order, each worker loads the database the stage has just saved (once per
process: the file, not the in-memory system, travels), answers its chunks with the same ``min_score`` and the
results are put back in manifest order. The answers are those of the serial run, row for row
(``tests/test_parallel.py``); so are the committed results, which come from the serial default (``dask: ""``).
Which worker answers which query changes nothing: a query's answer depends only on the database and the query.

The ``data`` stage's items (a query to cut and distort, a cluster's members to distort and window) are seeded by
their own recipe, so they come out the same whichever process makes them: :func:`map_ordered` runs them serially,
in a local process pool (``jobs``) or in Dask workers, and returns them in input order.

Bytes equal to the serial run's also need the same BLAS thread count: OpenBLAS splits a matrix product (the mel
filter bank of an MFCC) differently on one thread than on two, and a Dask worker is started with one
(``distributed.nanny.pre-spawn-environ``). Every task therefore runs under the calling process's BLAS thread
count (:func:`blas_threads`, set with ``threadpoolctl``), on a local or a remote cluster alike.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable, Iterable

import pandas as pd

from . import protocol

#: Queries per Dask task.
CHUNK = 64
#: Most worker processes of ``local:N`` (and of a ``jobs`` pool).
MAX_WORKERS = 64
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


def dask_client(address: str, key: str = "parallel.dask") -> Any:
    """A Dask client: ``local:N`` starts a LocalCluster of N single-threaded worker processes on this machine,
    anything else is a scheduler's address (``tcp://host:8786``).

    Raises
    ------
    ValueError
        Naming ``key``: Dask is not installed, ``local:N`` is malformed, or the scheduler cannot be reached.
    """
    address = check_address(address, key)
    try:
        from distributed import Client, LocalCluster
    except ImportError as e:
        raise ValueError(f"{key} {address}: needs Dask: pip install 'dask[distributed]' (or the project's [dask] "
                         "extra)") from e
    if address.startswith("local:"):
        n = address.split(":", 1)[1]
        if not n.isdigit() or not 1 <= int(n) <= MAX_WORKERS:
            raise ValueError(f"{key} {address}: expected local:N with N between 1 and {MAX_WORKERS} workers")
        cluster = LocalCluster(n_workers=int(n), threads_per_worker=1, processes=True, dashboard_address=None)
        return Client(cluster)
    try:
        return Client(address, timeout="20s")
    except (OSError, TimeoutError) as e:
        raise ValueError(f"{key} {address}: cannot reach the scheduler ({e})") from e


def close_client(client: Any, address: str) -> None:
    """Close ``client`` and, for ``local:N``, the cluster it started."""
    cluster = getattr(client, "cluster", None)
    client.close()
    if cluster is not None and address.startswith("local:"):
        cluster.close()


def blas_threads() -> int | None:
    """The BLAS thread count of this process (its first BLAS library's), ``None`` when none is loaded."""
    from threadpoolctl import threadpool_info

    counts = [i["num_threads"] for i in threadpool_info() if i.get("user_api") == "blas"]
    return counts[0] if counts else None


def blas_limited(threads: int | None):
    """A context that runs the BLAS libraries of this (worker) process on ``threads`` threads (``None``: as
    they are)."""
    from contextlib import nullcontext

    if threads is None:
        return nullcontext()
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=threads, user_api="blas")


def map_ordered(fn: Callable[[Any], Any], items: Iterable[Any], jobs: int = 1, dask: str = "",
                chunksize: int = 8, progress: bool = False, desc: str = "") -> list[Any]:
    """``[fn(item) for item in items]``, computed serially, in ``jobs`` local processes or on Dask (``dask``:
    ``local:N`` or a scheduler's address, which wins over ``jobs``); the results in the order of ``items``.

    ``fn`` must be a module-level function (it travels by name) whose result depends on its item alone.
    """
    from .progress import bar

    items = list(items)
    address = check_address(dask)
    if address and items:
        client = dask_client(address)
        try:
            threads = blas_threads()
            futures = [client.submit(_map_chunk, fn, items[i:i + chunksize], threads, pure=False)
                       for i in range(0, len(items), chunksize)]
            return [r for part in client.gather(futures) for r in part]
        finally:
            close_client(client, address)
    if jobs > 1 and len(items) > 1:
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(min(jobs, MAX_WORKERS)) as ex:
            return list(bar(ex.map(fn, items, chunksize=chunksize), total=len(items), enabled=progress, desc=desc))
    return [fn(item) for item in bar(items, enabled=progress, desc=desc)]


def _map_chunk(fn: Callable[[Any], Any], chunk: list[Any], threads: int | None) -> list[Any]:
    """A Dask task of :func:`map_ordered`, on the caller's BLAS thread count."""
    with blas_limited(threads):
        return [fn(item) for item in chunk]


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
    client = dask_client(address)
    try:
        threads = blas_threads()
        futures = [client.submit(_answer_chunk, system.name, str(saved), manifest.iloc[i:i + CHUNK].copy(),
                                 str(Path(query_dir).resolve()), sr, min_score, threads, pure=False)
                   for i in range(0, len(manifest), CHUNK)]
        parts = client.gather(futures)
    finally:
        close_client(client, address)
    if not parts:  # an empty manifest: the serial run's empty frame, with its columns
        return protocol.run_queries(system, manifest, query_dir, sr, progress=False, min_score=min_score)
    return pd.concat(parts, ignore_index=True)


def _answer_chunk(name: str, saved: str, chunk: pd.DataFrame, query_dir: str, sr: int,
                  min_score: float | None, threads: int | None = None) -> pd.DataFrame:
    """A Dask task: the answers to ``chunk`` from the database saved at ``saved`` (loaded once per process), on
    the caller's BLAS thread count."""
    from . import systems

    st = os.stat(saved)
    key = (name, saved, st.st_size, st.st_mtime_ns)
    if key not in _LOADED:
        _LOADED.clear()
        _LOADED[key] = systems.load(name, saved)
    with blas_limited(threads):
        return protocol.run_queries(_LOADED[key], chunk, query_dir, sr, progress=False, min_score=min_score)
