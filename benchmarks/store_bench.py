"""What the store benchmarks (``dejavu_disk.py``, ``stores.py``) measure in a fresh process: open a database,
query it, add one file."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np

SR = 16000


def rss_mb(field: str = "VmRSS") -> float:
    """Resident memory of this process now (``VmHWM``: its peak since it started), MB. The peak is read here, not
    from ``getrusage``, whose maximum a child inherits from the parent it was forked from."""
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    return float("nan")


def noisy_queries(clip: Callable[[int], np.ndarray], n_real: int, n_queries: int = 40,
                  snr_db: float | None = None) -> Iterator[tuple[int, np.ndarray]]:
    """The benchmark's 5-s queries, ``(i, audio)``: an excerpt of reference ``i`` (``clip(i)``, one of ``n_real``)
    at a random start in its first 3 s, with white noise at ``snr_db`` when given; the same draws on every call."""
    rng = np.random.default_rng(1)
    for _ in range(n_queries):
        i = int(rng.integers(n_real))
        x = clip(i)
        start = int(rng.integers(0, int(3 * SR)))
        q = x[start: start + 5 * SR]
        if snr_db is not None:
            q = (q + rng.standard_normal(q.size) * np.sqrt(np.mean(q ** 2)) * 10 ** (-snr_db / 20)).astype(np.float32)
        yield i, q


def open_query_add(open_system: Callable[[], Any], clip: Callable[[int], np.ndarray], add: Callable[[Any], None],
                   n_queries: int = 40, snr_db: float | None = None) -> dict:
    """Seconds to open (``open_system()``), resident memory, 5-s query latency p50/p95 and top-1 over excerpts of
    the references named ``realNNNNN`` (``clip(i)`` gives reference i's audio; white noise at ``snr_db`` when
    given), and the seconds ``add(system)`` takes."""
    rss0 = rss_mb()
    t0 = time.perf_counter()
    system = open_system()
    open_s = time.perf_counter() - t0
    rss_open = rss_mb()
    n_real = sum(1 for r in system.references() if r.startswith("real"))
    lat, correct = [], 0
    for i, q in noisy_queries(clip, n_real, n_queries, snr_db):
        t = time.perf_counter()
        m = system.identify(q, SR)
        lat.append(time.perf_counter() - t)
        correct += m.ref_id == f"real{i:05d}"
    t = time.perf_counter()
    add(system)
    add_s = time.perf_counter() - t
    return {"open_s": open_s, "rss_before_mb": rss0, "rss_open_mb": rss_open,
            "peak_rss_mb": rss_mb("VmHWM"),
            "query_p50_ms": 1000 * float(np.percentile(lat, 50)), "query_p95_ms": 1000 * float(np.percentile(lat, 95)),
            "top1": correct / n_queries, "add_one_file_s": add_s}


def remove_store(work: Path, name: str) -> None:
    """Delete the database ``work / name`` and the files beside it (lock, WAL, journal, manifest), not the other
    databases whose names start with its name (``samaf.lmdb`` and ``samaf-ivf.lmdb``)."""
    for suffix in ("", "-lock", "-wal", "-shm", "-journal", ".json", ".journal"):
        (work / f"{name}{suffix}").unlink(missing_ok=True)


def write_results(path: str, results: list[dict]) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps(results, indent=2) + "\n")
