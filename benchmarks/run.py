"""Speed and memory benchmarks of the four systems (docs/study.md, Targets): ``make bench`` runs this file.

What is measured (every number on one CPU thread: ``OMP_NUM_THREADS=1``, ``torch.set_num_threads(1)``,
``faiss.omp_set_num_threads(1)``):

1. **Fingerprinting speed**, x real time per core: ``system.add`` on ~60 s of generated speech, best of 3 runs, CPU
   time of this process.
2. **Query latency** (p50, p95) of 5-s queries (excerpts of the first reference with white noise at 20 dB) against
   reference databases of growing size, the database's memory (growth of the process's resident set while it is
   built) and its bytes on disk per hour of audio.

   * Baselines (Dejavu, RAFS, Panako): real fingerprints of real (generated) audio, built with ``system.add``.
     The references are 5-min tiles of one base recording of generated speech, each tile changed so that its
     hashes differ: resampled by 0.5-2 % (speed and pitch), circularly shifted by a random amount (other frame
     alignment), scaled, with white noise at 40 dB. Tiles share their words, so hash collisions are more
     frequent than in a varied corpus (the lookups return more rows than they would there).
   * SAMAF: the codes of the same tiles for the first hour (the study's model when trained, else an untrained
     model: speed does not depend on the weights), then synthetic uniformly random 128-bit codes up to 1,000 h
     (7.2 M windows at a 0.5-s hop). A query is hashed by the real model (1-s windows every ``query_hop_s``),
     searched in a :class:`samaf_lib.hashing.HammingIndex` (flat = exact; hash = faiss IndexBinaryMultiHash;
     ivf = faiss IndexBinaryIVF) and voted (reference, offset) as the system does. Latency = hashing + search +
     vote. Recall of the approximate indexes is measured against the exact flat search on the real query
     windows, and on codes planted at a known Hamming distance among the random ones.

3. **The** ``samaf`` **command** (``benchmarks/cli_speed.py``, under ``"cli"`` in the JSON): ``samaf index`` of a
   folder of generated speech WAV files in x real time per core for every system (SAMAF at the reference hops
   0.5, 0.25 and 0.1 s), the start-up of a one-clip ``samaf identify`` per system, and the time of ``add()`` as
   the database grows. ``--no-cli`` leaves it out.

Results: ``reports/bench.json`` and ``reports/figures/bench_latency.png``. ``--quick`` runs small sizes in about
a minute (for tests of this script). Timings on a shared machine are noisy; the JSON records the load average.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMEXPR_NUM_THREADS"):
    os.environ[_var] = "1"  # per-core figures; set before numpy, torch and faiss start their thread pools

import argparse
import gc
import multiprocessing
import platform
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

SR = 16000
BASELINES = ("dejavu", "rafs", "panako", "triplets")
QUERY_S = 5.0
QUERY_SNR_DB = 20.0
TARGET_MS = 100.0
TARGET_BYTES = 1 << 30
#: Voices for the generated base recording (eSpeak NG language, variant).
FULL = {"base_s": 300.0, "fp_s": 60.0, "tile_s": 300.0, "baseline_hours": [1.0, 10.0], "samaf_real_hours": 1.0,
        "samaf_hours": [1.0, 10.0, 100.0, 1000.0], "queries": 20, "max_build_s": 300.0}
QUICK = {"base_s": 40.0, "fp_s": 20.0, "tile_s": 40.0, "baseline_hours": [0.05], "samaf_real_hours": 0.05,
         "samaf_hours": [0.05, 1.0], "queries": 4, "max_build_s": 60.0}


# -- helpers ------------------------------------------------------------------------------------------------------
def _threads() -> None:
    """One thread for torch and faiss too (the environment variables cover OpenMP and BLAS)."""
    try:
        import torch

        torch.set_num_threads(1)
    except ImportError:  # pragma: no cover
        pass
    import faiss

    faiss.omp_set_num_threads(1)


def rss_bytes() -> int:
    """Resident set size of this process (``VmRSS``)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def percentiles(ms: list[float]) -> dict[str, float]:
    a = np.asarray(ms, np.float64)
    return {"p50_ms": float(np.percentile(a, 50)), "p95_ms": float(np.percentile(a, 95)),
            "mean_ms": float(a.mean()), "n_queries": int(a.size)}


def describe_machine() -> dict[str, Any]:
    """CPU model, cores, memory, load and library versions."""
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem = int(line.split()[1]) * 1024
    except OSError:
        pass
    versions = {"python": platform.python_version(), "numpy": np.__version__}
    for mod in ("torch", "faiss", "scipy", "librosa", "soundfile"):
        try:
            versions[mod] = __import__(mod).__version__
        except Exception:  # noqa: BLE001 - a missing library is recorded, not fatal
            versions[mod] = None
    return {"cpu_model": cpu, "cpu_count": os.cpu_count(),
            "cpus_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
            "memory_bytes": mem, "platform": platform.platform(), "load_average_start": list(os.getloadavg()),
            "threads": 1, "versions": versions}


def make_speech(seed: int, seconds: float) -> np.ndarray:
    """Generated speech, ``seconds`` long, float32 at 16 kHz (voice and sentences from ``seed``)."""
    from samaf_lib.corpus.samples import make_speech as speech

    return speech(seed, seconds, SR)


def base_recording(seconds: float) -> np.ndarray:
    """``seconds`` of generated speech, 12 voices in turn (deterministic)."""
    chunk = 20.0
    n = int(np.ceil(seconds / chunk))
    return np.concatenate([make_speech(i, chunk) for i in range(n)])[: int(seconds * SR)]


def add_noise(x: np.ndarray, snr_db: float, rng: np.random.Generator) -> np.ndarray:
    noise = rng.standard_normal(x.size)
    scale = np.sqrt(np.mean(x.astype(np.float64) ** 2) / 10 ** (snr_db / 10) / np.mean(noise ** 2))
    return (x + scale * noise).astype(np.float32)


class Tiles:
    """The references of the database: 5-min tiles of one base recording, changed so that their hashes differ.

    Tile 0 is the base recording itself. Tile ``j > 0`` is the base resampled by a factor of 1 +- 0.5..2 % (speed
    and pitch; 8 factors, computed once), circularly shifted by a random number of samples (other frame
    alignments), scaled by 0.5..1 and mixed with white noise at 40 dB (seeded by ``j``).
    """

    FACTORS = tuple((200 + s, 200) for s in (1, -1, 2, -2, 3, -3, 4, -4))

    def __init__(self, base: np.ndarray, seconds: float) -> None:
        from scipy.signal import resample_poly

        self.n = int(seconds * SR)
        self.base = base[: self.n].astype(np.float32)
        self.variants = [resample_poly(self.base.astype(np.float64), up, down).astype(np.float32)
                         for up, down in self.FACTORS]

    def __getitem__(self, j: int) -> np.ndarray:
        if j == 0:
            return self.base.copy()
        rng = np.random.default_rng(10_000 + j)
        x = self.variants[(j - 1) % len(self.variants)]
        x = np.resize(np.roll(x, int(rng.integers(0, x.size))), self.n) * np.float32(rng.uniform(0.5, 1.0))
        noise = rng.standard_normal(self.n, dtype=np.float32)
        noise *= np.float32(np.sqrt(np.mean(x.astype(np.float64) ** 2) / 10 ** 4.0 / np.mean(noise ** 2)))
        return x + noise


def make_queries(base: np.ndarray, n: int, seed: int, tile_s: float) -> tuple[np.ndarray, np.ndarray]:
    """``n`` 5-s excerpts of tile 0 at random offsets with white noise at 20 dB; ``(queries (n, 80000), offsets)``."""
    rng = np.random.default_rng(seed)
    qn = int(QUERY_S * SR)
    starts = rng.integers(0, int(tile_s * SR) - qn, size=n)
    qs = np.stack([add_noise(base[s: s + qn], QUERY_SNR_DB, rng) for s in starts])
    return qs, starts / SR


def _in_subprocess(fn, *args) -> Any:
    """Run ``fn(*args)`` in a fresh process (clean memory accounting, nothing left behind)."""
    with ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn")) as ex:
        return ex.submit(fn, *args).result()


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# -- SAMAF model -----------------------------------------------------------------------------------------------------
def samaf_settings() -> dict[str, Any]:
    """The evaluated SAMAF settings (``params.yaml`` section ``hash``), with the system's defaults as fallback."""
    try:
        from samaf_lib.config import load_params

        h = dict(load_params().get("hash") or {})
    except (FileNotFoundError, ValueError):
        h = {}
    return {"db_hop_s": float(h.get("db_hop_s", 0.5)), "query_hop_s": float(h.get("query_hop_s", 0.1)),
            "k": int(h.get("k", 10)), "max_distance": h.get("max_distance"), "verify": h.get("verify")}


def samaf_model(base: np.ndarray) -> tuple[Any, dict[str, Any]]:
    """The trained model (``samaf_lib.cli.DEFAULT_MODEL``, the study's) if there is one, else an untrained one.

    The untrained model (128 bits, seed 0) gets standardisation statistics from the base recording, so its codes
    vary; its speed is that of a trained model of the same size, its codes are not robust.
    """
    import torch

    from samaf_lib.cli import default_model
    from samaf_lib.features import mfcc_frames
    from samaf_lib.model import SAMAF, load_model

    path = default_model()
    if path.is_file():
        model = load_model(path)
        return model, {"checkpoint": str(path), "trained": True, "config": dict(model.config)}
    with torch.random.fork_rng():
        torch.manual_seed(0)
        model = SAMAF(bits=128)
    frames = mfcc_frames(base[: 60 * SR], SR)
    model.set_standardiser(frames.mean(axis=0), frames.std(axis=0))
    return model.eval(), {"checkpoint": None, "trained": False, "config": dict(model.config),
                          "note": f"no trained model at {path}: untrained weights (speed is the same; codes are "
                                  "not robust, so recall and accuracy here say little about a trained SAMAF)"}


def new_system(name: str, model: Any = None, **params: Any) -> Any:
    from samaf_lib import systems

    if name == "samaf":
        return systems.get("samaf", model=model, bits=model.bits, **params)
    return systems.get(name, **params)


# -- 1. fingerprinting speed --------------------------------------------------------------------------------------
def bench_fingerprinting(name: str, audio_path: str, seconds: float, repeats: int = 3) -> dict[str, Any]:
    """x real time of ``system.add`` on ``seconds`` of speech (best of ``repeats``; one thread)."""
    _threads()
    base = np.load(audio_path)
    audio = base[: int(seconds * SR)]
    model, _ = samaf_model(base) if name == "samaf" else (None, None)
    cpu = []
    for r in range(repeats):
        s = new_system(name, model)
        gc.collect()
        t0 = time.process_time()
        s.add(f"r{r}", audio, SR)
        cpu.append(time.process_time() - t0)
    st = s.stats()
    best = min(cpu)
    return {"system": name, "seconds_audio": audio.size / SR, "cpu_s": cpu, "best_cpu_s": best,
            "x_realtime_per_core": audio.size / SR / best, "fingerprints_per_s": st["fingerprints"] / st["seconds"],
            "bytes_per_hour": st["bytes"] / st["seconds"] * 3600, "bits_per_second": st["bits_per_second"]}


# -- 2a. baselines: latency, memory, disk ------------------------------------------------------------------------------
def bench_baseline(name: str, data_dir: str, hours: list[float], tile_s: float, max_build_s: float,
                   x_realtime: float) -> list[dict[str, Any]]:
    """Build ``name``'s database tile by tile; at each size in ``hours`` time the queries and measure it.

    A size is skipped when building up to it would take longer than ``max_build_s`` (wall clock), predicted from
    the rate of the previous size (or from ``x_realtime`` for the first).
    """
    _threads()
    d = Path(data_dir)
    tiles = Tiles(np.load(d / "base.npy"), tile_s)
    queries, offsets = np.load(d / "queries.npy"), np.load(d / "offsets.npy")
    system = new_system(name)
    gc.collect()
    rss0 = rss_bytes()
    rows, n_tiles, build_cpu, build_wall = [], 0, 0.0, 0.0
    for h in hours:
        need = max(1, round(h * 3600 / tile_s))
        rate = n_tiles * tile_s / build_wall if build_wall > 0 else x_realtime  # audio seconds per second
        predicted = (need - n_tiles) * tile_s / max(rate, 1e-9)
        if predicted > max_build_s:
            rows.append({"system": name, "index": "own", "hours": h, "skipped":
                         f"building it would take about {predicted:.0f} s (limit {max_build_s:.0f} s, "
                         "--max-build-s)"})
            log(f"{name}: {h:g} h skipped ({rows[-1]['skipped']})")
            continue
        w0 = time.perf_counter()
        while n_tiles < need:
            x = tiles[n_tiles]
            t0 = time.process_time()
            system.add(f"tile{n_tiles:05d}", x, SR)
            build_cpu += time.process_time() - t0
            n_tiles += 1
        build_wall += time.perf_counter() - w0
        gc.collect()
        rss = rss_bytes() - rss0
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / f"{name}.db"
            system.save(path)
            disk = path.stat().st_size
        ms, correct = [], 0
        for q, off in zip(queries, offsets):
            t0 = time.perf_counter()
            m = system.identify(q, SR)
            ms.append((time.perf_counter() - t0) * 1000)
            correct += int(m.ref_id == "tile00000" and abs(m.offset_s - off) <= 0.5)
        st = system.stats()
        real_h = st["seconds"] / 3600
        rows.append({"system": name, "index": "own", "hours": h, "real_hours": real_h, "synthetic_hours": 0.0,
                     "references": len(system), "fingerprints": st["fingerprints"], "exact": True,
                     **percentiles(ms), "accuracy": correct / len(queries), "rss_bytes": rss,
                     "stats_bytes": st["bytes"], "disk_bytes": disk, "disk_bytes_per_hour": disk / real_h,
                     "build_cpu_s": build_cpu, "build_x_realtime": st["seconds"] / build_cpu})
        log(f"{name}: {h:g} h  p50 {rows[-1]['p50_ms']:.1f} ms  p95 {rows[-1]['p95_ms']:.1f} ms  "
            f"rss {rss / 1e6:.0f} MB  disk {disk / 1e6:.1f} MB  build {build_wall:.0f} s")
    return rows


# -- 2b. SAMAF: real codes, then synthetic ----------------------------------------------------------------------------
def samaf_real(data_dir: str, real_hours: float, tile_s: float) -> dict[str, Any]:
    """Hash the first ``real_hours`` of tiles and the queries; time the system's own ``identify`` on them.

    The system is timed twice, with its verification scan (``verify``, the default) and without (``verify=0``):
    the difference per query is the verification time, which depends on the length of the verified references,
    not on the size of the database, and is added to the component timings of the large indexes.
    """
    _threads()
    d = Path(data_dir)
    base = np.load(d / "base.npy")
    tiles = Tiles(base, tile_s)
    queries, offsets = np.load(d / "queries.npy"), np.load(d / "offsets.npy")
    model, info = samaf_model(base)
    cfg = samaf_settings()
    params = {"db_hop_s": cfg["db_hop_s"], "query_hop_s": cfg["query_hop_s"], "k": cfg["k"],
              "max_distance": cfg["max_distance"]}
    ref_hasher = new_system("samaf", model, db_hop_s=cfg["db_hop_s"])
    query_hasher = new_system("samaf", model, db_hop_s=cfg["query_hop_s"])  # fingerprint() at the query hop
    system = new_system("samaf", model, **params, **({"verify": int(cfg["verify"])} if cfg["verify"] is not None
                                                      else {}))
    plain = new_system("samaf", model, **params, verify=0)
    cfg = {**cfg, "max_distance": int(system.radius), "verify": system.params.get("verify")}
    n_tiles = max(1, round(real_hours * 3600 / tile_s))
    codes, win_ref, win_time = [], [], []
    gc.collect()
    rss0 = rss_bytes()
    t_add = 0.0
    for j in range(n_tiles):
        x = tiles[j]
        t0 = time.process_time()
        system.add(f"tile{j:05d}", x, SR)
        t_add += time.process_time() - t0
        plain.add(f"tile{j:05d}", x, SR)
        c, t = ref_hasher.fingerprint(x, SR)
        codes.append(c)
        win_ref.append(np.full(len(c), j, np.int32))
        win_time.append(t.astype(np.float32))
    gc.collect()
    rss = rss_bytes() - rss0
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "samaf.db"
        system.save(path)
        disk = path.stat().st_size
    q_codes, q_times, enc_ms, sys_ms, plain_ms, correct, plain_correct = [], [], [], [], [], 0, 0
    for q, off in zip(queries, offsets):
        t0 = time.perf_counter()
        c, t = query_hasher.fingerprint(q, SR)
        enc_ms.append((time.perf_counter() - t0) * 1000)
        q_codes.append(c)
        q_times.append(t)
        t0 = time.perf_counter()
        m = system.identify(q, SR)
        sys_ms.append((time.perf_counter() - t0) * 1000)
        correct += int(m.ref_id == "tile00000" and abs(m.offset_s - off) <= 0.5)
        t0 = time.perf_counter()
        m = plain.identify(q, SR)
        plain_ms.append((time.perf_counter() - t0) * 1000)
        plain_correct += int(m.ref_id == "tile00000" and abs(m.offset_s - off) <= 0.5)
    verify_ms = np.maximum(np.asarray(sys_ms) - np.asarray(plain_ms), 0.0)
    np.save(d / "samaf_codes.npy", np.concatenate(codes))
    np.save(d / "samaf_win_ref.npy", np.concatenate(win_ref))
    np.save(d / "samaf_win_time.npy", np.concatenate(win_time))
    np.save(d / "samaf_q_codes.npy", np.stack(q_codes))
    np.save(d / "samaf_q_times.npy", np.stack(q_times))
    np.save(d / "samaf_enc_ms.npy", np.asarray(enc_ms))
    np.save(d / "samaf_verify_ms.npy", verify_ms)
    st = system.stats()
    real_h = st["seconds"] / 3600
    common = {"system": "samaf", "hours": real_hours, "real_hours": real_h, "synthetic_hours": 0.0,
              "references": len(system), "fingerprints": st["fingerprints"], "exact": True, "rss_bytes": rss,
              "stats_bytes": st["bytes"], "disk_bytes": disk, "disk_bytes_per_hour": disk / real_h,
              "build_cpu_s": t_add, "build_x_realtime": st["seconds"] / t_add}
    rows = [{**common, "index": "flat (system)", **percentiles(sys_ms), "accuracy": correct / len(queries),
             "note": "SAMAFSystem.identify end to end on real codes (the saved file holds the model's weights)"},
            {**common, "index": "flat (system, verify=0)", **percentiles(plain_ms),
             "accuracy": plain_correct / len(queries), "note": "the same without the verification scan"}]
    log(f"samaf (system, real {real_h:.2f} h): p50 {rows[0]['p50_ms']:.1f} ms, without verification "
        f"{rows[1]['p50_ms']:.1f} ms, hashing a query p50 {np.median(enc_ms):.1f} ms, "
        f"accuracy {rows[0]['accuracy']:.2f}")
    return {"model": info, "settings": cfg, "system_rows": rows, "encode_ms": percentiles(enc_ms),
            "verify_ms": percentiles(list(verify_ms))}


def _vote(dist: np.ndarray, ids: np.ndarray, q_times: np.ndarray, win_ref: np.ndarray, win_time: np.ndarray,
          n_real: int, per_ref: int, db_hop: float, radius: int) -> tuple[int, float]:
    """(reference, offset s) with most similarity-weighted hits in one offset bin (the system's voting, simplified).

    Ids below ``n_real`` are real windows (``win_ref``, ``win_time``); the synthetic ones belong to references of
    ``per_ref`` windows each, numbered after the real ones.
    """
    ok = (ids >= 0) & (dist <= radius)
    if not ok.any():
        return -1, 0.0
    q = np.broadcast_to(np.arange(dist.shape[0])[:, None], dist.shape)[ok]
    hit = ids[ok]
    real = hit < n_real
    syn = hit - n_real
    ref = np.where(real, win_ref[np.minimum(hit, n_real - 1)], int(win_ref.max()) + 1 + syn // per_ref)
    t_ref = np.where(real, win_time[np.minimum(hit, n_real - 1)], (syn % per_ref) * db_hop)
    offset = t_ref - q_times[q]
    b = np.round(offset / db_hop).astype(np.int64)
    w = 1.0 - dist[ok] / (radius + 1.0)
    keys, inv = np.unique(np.stack([ref, b]), axis=1, return_inverse=True)
    score = np.bincount(inv.reshape(-1), weights=w)
    best = int(np.argmax(score))
    sel = inv.reshape(-1) == best
    return int(keys[0, best]), float(np.average(offset[sel], weights=w[sel]))


_BLOCK = 1 << 20


def synthetic_codes(seed: int, start: int, stop: int, nbytes: int) -> np.ndarray:
    """Uniformly random codes for synthetic positions ``[start, stop)``: the same codes whatever the chunking.

    Returns
    -------
    np.ndarray, uint8, shape (stop - start, nbytes)
    """
    parts = []
    for b in range(start // _BLOCK, (stop - 1) // _BLOCK + 1 if stop > start else start // _BLOCK):
        block = np.random.default_rng([seed, b]).integers(0, 256, size=(_BLOCK, nbytes), dtype=np.uint8)
        lo, hi = max(start, b * _BLOCK) - b * _BLOCK, min(stop, (b + 1) * _BLOCK) - b * _BLOCK
        parts.append(block[lo:hi])
    return np.concatenate(parts) if parts else np.zeros((0, nbytes), np.uint8)


def _grow(index: Any, n_target: int, real_codes: np.ndarray, seed: int, first_min: int = 0) -> None:
    """Fill ``index`` with the real codes (ids 0..), then synthetic codes, up to ``n_target`` codes.

    ``first_min``: the first ``add`` holds at least this many codes (an ivf index trains on its first add).
    """
    n_real, nbytes = real_codes.shape
    if index.ntotal == 0:
        extra = max(0, min(n_target, first_min) - n_real)
        index.add(np.concatenate([real_codes, synthetic_codes(seed, 0, extra, nbytes)]) if extra else real_codes)
    while index.ntotal < n_target:
        pos = index.ntotal - n_real
        m = min(_BLOCK, n_target - index.ntotal)
        index.add(synthetic_codes(seed, pos, pos + m, nbytes))


def samaf_index(kind: str, data_dir: str, h: float, real: dict[str, Any], tile_s: float, seed: int,
                planted: bool) -> dict[str, Any]:
    """Latency, memory, disk and recall of one HammingIndex kind holding ``h`` hours (run in a fresh process).

    The index holds the real codes (ids 0..) and then synthetic ones (the same for every kind). ``ivf`` gets
    ``nlist`` = the largest power of two <= codes / 64, at most 1024. ``planted``: measure recall of planted codes
    afterwards.
    """
    _threads()
    from samaf_lib.hashing import HammingIndex

    d = Path(data_dir)
    codes = np.load(d / "samaf_codes.npy")
    win_ref, win_time = np.load(d / "samaf_win_ref.npy"), np.load(d / "samaf_win_time.npy")
    q_codes, q_times = np.load(d / "samaf_q_codes.npy"), np.load(d / "samaf_q_times.npy")
    enc_ms, verify_ms = np.load(d / "samaf_enc_ms.npy"), np.load(d / "samaf_verify_ms.npy")
    offsets = np.load(d / "offsets.npy")
    cfg = real["settings"]
    bits = int(real["model"]["config"]["bits"])
    radius = int(cfg["max_distance"])
    k, hop = int(cfg["k"]), float(cfg["db_hop_s"])
    per_ref = round(tile_s / hop)
    windows_per_hour = 3600.0 / hop
    n_real = codes.shape[0]
    n_total = max(n_real, round(h * windows_per_hour))
    settings = {"flat": [{}], "hash": [{"nflip": 0}, {"nflip": 1}],
                "ivf": [{"nprobe": 16}, {"nprobe": 32}, {"nprobe": 64}]}[kind]
    gc.collect()
    rss0 = rss_bytes()
    first_min = 0
    if kind == "ivf":
        nlist = int(min(1024, 2 ** np.floor(np.log2(max(n_total / 64, 16)))))
        index = HammingIndex(bits, kind="ivf", nlist=nlist, nprobe=settings[0]["nprobe"])
        first_min = 256 * nlist  # faiss trains on at most 256 codes per list
    else:
        index = HammingIndex(bits, kind=kind)
    t0 = time.perf_counter()
    _grow(index, n_total, codes, seed, first_min)
    build_s = time.perf_counter() - t0
    gc.collect()
    rss = rss_bytes() - rss0
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "index.npz"
        index.save(path)
        disk = path.stat().st_size
    flat_file = d / f"flat_{h:g}.npy"
    rows, recall_rows = [], []
    for s in settings:
        if s:
            index.set_search(**s)
        ms, plain_ms, search_ms, correct, all_d = [], [], [], 0, []
        for i in range(q_codes.shape[0]):
            t0 = time.perf_counter()
            dist, ids = index.search(q_codes[i], k)
            t1 = time.perf_counter()
            ref, off = _vote(dist, ids, q_times[i], win_ref, win_time, n_real, per_ref, hop, radius)
            t2 = time.perf_counter()
            search_ms.append((t1 - t0) * 1000)
            plain_ms.append(enc_ms[i] + (t2 - t0) * 1000)
            ms.append(plain_ms[-1] + verify_ms[i])
            correct += int(ref == 0 and abs(off - offsets[i]) <= 0.5)
            all_d.append(dist)
        all_d = np.stack(all_d)
        label = _label(kind, s)
        exact = kind == "flat"
        row = {"system": "samaf", "index": label, "hours": h, "real_hours": n_real / windows_per_hour,
               "synthetic_hours": (index.ntotal - n_real) / windows_per_hour, "fingerprints": index.ntotal,
               "exact": exact, **percentiles(ms), "p50_ms_without_verify": float(np.median(plain_ms)),
               "p95_ms_without_verify": float(np.percentile(plain_ms, 95)),
               "search_p50_ms": float(np.median(search_ms)),
               "search_p95_ms": float(np.percentile(search_ms, 95)), "accuracy": correct / q_codes.shape[0],
               "rss_bytes": rss, "disk_bytes": disk, "disk_bytes_per_hour": disk / h, "build_s": build_s,
               "settings": {**index.settings, "k": k, "radius": radius}}
        if exact:
            np.save(flat_file, all_d)
        elif flat_file.is_file():
            ref_d = np.load(flat_file)
            kth = ref_d[..., -1:]
            row["recall_at_k_vs_flat"] = float((np.minimum((all_d <= kth).sum(axis=-1), k) / k).mean())
            row["nn_recall_vs_flat"] = float((all_d[..., 0] == ref_d[..., 0]).mean())
            within = ref_d[..., 0] <= radius
            row["nn_recall_within_radius"] = (float((all_d[..., 0][within] == ref_d[..., 0][within]).mean())
                                              if within.any() else None)
            recall_rows.append({key: row[key] for key in ("index", "hours", "recall_at_k_vs_flat",
                                                          "nn_recall_vs_flat", "nn_recall_within_radius")})
        rows.append(row)
        log(f"samaf {label} {h:g} h: p50 {row['p50_ms']:.1f} ms (search {row['search_p50_ms']:.1f}, without "
            f"verification {row['p50_ms_without_verify']:.1f}) "
            f"p95 {row['p95_ms']:.1f} ms  rss {rss / 1e6:.0f} MB  disk {disk / 1e6:.0f} MB  build {build_s:.0f} s"
            + (f"  recall@{k} {row['recall_at_k_vs_flat']:.3f}" if "recall_at_k_vs_flat" in row else ""))
    planted_rows = (_planted_recall(index, kind, settings, h, np.random.default_rng([seed, 7]), bits)
                    if planted and kind != "flat" else [])
    return {"rows": rows, "recall": recall_rows, "planted": planted_rows}


def _label(kind: str, setting: dict[str, int]) -> str:
    return kind if not setting else f"{kind} ({', '.join(f'{a}={b}' for a, b in setting.items())})"


def _planted_recall(index: Any, kind: str, settings: list[dict[str, int]], hours: float, rng: np.random.Generator,
                    bits: int, n: int = 200, distances: tuple[int, ...] = (4, 8, 12, 16, 24, 32)
                    ) -> list[dict[str, Any]]:
    """Add ``n`` random codes, then search them with ``d`` random bits flipped: is the original among the 10 nearest?

    The codes are added under ids beyond the index's range (after every latency measurement).
    """
    from samaf_lib.hashing import pack, unpack

    planted = rng.integers(0, 256, size=(n, bits // 8), dtype=np.uint8)
    ids = np.arange(10 ** 12, 10 ** 12 + n, dtype=np.int64)
    index.add(planted, ids)
    queries = {}
    for dd in distances:
        b = unpack(planted)
        for row in b:
            row[rng.choice(bits, dd, replace=False)] ^= 1
        queries[dd] = pack(b)
    out = []
    for s in settings:
        index.set_search(**s)
        label = _label(kind, s)
        for dd, q in queries.items():
            _, got = index.search(q, 10)
            out.append({"index": label, "hours": hours, "distance": dd,
                        "recall_at_10": float((got == ids[:, None]).any(axis=1).mean())})
    return out


# -- report ---------------------------------------------------------------------------------------------------------
def figure(results: dict[str, Any], path: Path) -> None:
    """Latency (p50, p95) and memory against database size, and fingerprinting speed, with the targets of docs/study.md.

    SAMAF's index curves show hashing + search + vote (without the verification scan, whose cost does not depend
    on the size); the system's own end-to-end latency on the real hour is shown as separate points.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from samaf_lib.io import atomic_path

    rows = [r for r in results["latency"] if "p50_ms" in r]
    groups: dict[str, list] = {}
    for r in rows:
        if r["system"] != "samaf":
            label = r["system"]
        elif "system" in r["index"]:
            label = f"samaf {r['index'].replace('flat (', '(')}"
        else:
            label = f"samaf {r['index']}, w/o verify"
        groups.setdefault(label, []).append(r)
    cmap = plt.get_cmap("tab20")
    order = sorted(groups)
    colors = {label: cmap(i % 20) for i, label in enumerate(order)}
    fig, (ax1, ax2, ax3) = plt.subplots(1, 3, figsize=(16, 5.4), gridspec_kw={"width_ratios": [5, 5, 3]})
    for ax in (ax1, ax2):
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("reference audio (hours)")
        ax.grid(True, which="both", alpha=0.3)
    for i, label in enumerate(order):
        rs = sorted(groups[label], key=lambda r: r["hours"])
        h = [r["hours"] for r in rs]
        no_verify = label.endswith("w/o verify")
        p50 = [r["p50_ms_without_verify"] if no_verify else r["p50_ms"] for r in rs]
        p95 = [r["p95_ms_without_verify"] if no_verify else r["p95_ms"] for r in rs]
        color, marker = colors[label], "os^Dv<>ph*P"[i % 11]
        ax1.plot(h, p50, marker=marker, ls="-", color=color, label=label)
        ax1.plot(h, p95, marker=marker, ls=":", color=color, mfc="none")
        mem = [max(r["rss_bytes"], r["disk_bytes"]) / 2 ** 20 for r in rs]
        ax2.plot(h, mem, marker=marker, ls="-", color=color, label=label)
    ax1.axhline(TARGET_MS, color="k", lw=0.8, ls="--")
    ax1.text(0.01, TARGET_MS * 1.07, "target: SAMAF, 1,000 h, 100 ms", fontsize=8, transform=ax1.get_yaxis_transform())
    v = results["samaf"].get("verify_ms") or {}
    if v:
        ax1.text(0.01, 0.02, f"SAMAF's verification scan adds {v['p50_ms']:.0f} ms (p50) at any size",
                 fontsize=8, transform=ax1.transAxes)
    ax1.set_ylabel("5-s query latency, ms (solid p50, dotted p95)")
    ax2.axhline(TARGET_BYTES / 2 ** 20, color="k", lw=0.8, ls="--")
    ax2.text(0.01, TARGET_BYTES / 2 ** 20 * 1.1, "1 GiB", fontsize=8, transform=ax2.get_yaxis_transform())
    ax2.set_ylabel("database size, MiB (max of RSS growth and file)")
    sp = results["fingerprinting"]
    names = [s["system"] for s in sp]
    ax3.bar(names, [s["x_realtime_per_core"] for s in sp],
            color=[colors.get(n, colors.get("samaf flat, w/o verify", "0.5")) for n in names])
    for i, n in enumerate(names):
        target = 300 if n == "samaf" else 100
        ax3.plot([i - 0.4, i + 0.4], [target, target], "k--", lw=0.8)
    ax3.set_ylabel("fingerprinting speed, x real time per core (-- target)")
    ax3.grid(True, axis="y", alpha=0.3)
    fig.legend(*ax1.get_legend_handles_labels(), loc="lower center", ncol=5, fontsize=8, frameon=False)
    m = results["machine"]
    fig.suptitle(f"one thread of {m['cpu_model']} ({m['cpus_usable']} cores usable); SAMAF beyond "
                 f"{results['samaf']['real_hours']:.2g} h: synthetic random codes; model trained: "
                 f"{results['samaf']['model']['trained']}", fontsize=9)
    fig.tight_layout(rect=(0, 0.12, 1, 1))
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=130)
    plt.close(fig)


def target_verdict(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Which SAMAF index answers a 5-s query against 1,000 h in <= 100 ms with an index < 1 GB.

    Judged on the p95 latency, with the system's verification scan (``p95_ms``) and without it
    (``p95_ms_without_verify``: hashing + search + vote), and on the larger of the RSS growth and the file size.
    """
    big = [r for r in rows if r["system"] == "samaf" and r.get("hours") == 1000.0 and "p50_ms" in r]
    out = []
    for r in big:
        size = max(r["rss_bytes"], r["disk_bytes"])
        small = size < TARGET_BYTES
        out.append({"index": r["index"], "exact": r["exact"], "p50_ms": r["p50_ms"], "p95_ms": r["p95_ms"],
                    "p50_ms_without_verify": r.get("p50_ms_without_verify"),
                    "p95_ms_without_verify": r.get("p95_ms_without_verify"),
                    "search_p50_ms": r.get("search_p50_ms"), "index_bytes": size,
                    "meets_target": r["p95_ms"] <= TARGET_MS and small,
                    "meets_target_without_verify": (r.get("p95_ms_without_verify", np.inf) <= TARGET_MS
                                                    and small),
                    "recall_at_k_vs_flat": r.get("recall_at_k_vs_flat", 1.0 if r["exact"] else None)})
    return {"target": "SAMAF, 5-s query against 1,000 h (7.2 M windows), <= 100 ms (p95), index < 1 GB (docs/study.md, Targets)",
            "candidates": out}


def table(results: dict[str, Any]) -> str:
    """The latency rows as a markdown table."""
    lines = [("| system | index | hours | p50 ms | p95 ms | p50 ms w/o verify | memory MB | disk MB/h | exact "
              "| accuracy |"), "|---|---|---:|---:|---:|---:|---:|---:|---|---:|"]
    for r in results["latency"]:
        if "p50_ms" not in r:
            lines.append(f"| {r['system']} | {r['index']} | {r['hours']:g} | skipped: {r['skipped']} | | | | | | |")
            continue
        nv = f"{r['p50_ms_without_verify']:.1f}" if "p50_ms_without_verify" in r else ""
        lines.append(f"| {r['system']} | {r['index']} | {r['hours']:g} | {r['p50_ms']:.1f} | {r['p95_ms']:.1f} | "
                     f"{nv} | {r['rss_bytes'] / 1e6:.0f} | {r['disk_bytes_per_hour'] / 1e6:.2f} | "
                     f"{'yes' if r['exact'] else 'no'} | {r['accuracy']:.2f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    from samaf_lib.io import write_json
    from samaf_lib.paths import reports_dir

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="small sizes (about a minute), to test this script")
    ap.add_argument("--out", type=Path, default=None, help="JSON results (default reports/bench.json)")
    ap.add_argument("--figure", type=Path, default=None,
                    help="figure (default reports/figures/bench_latency.png)")
    ap.add_argument("--baseline-hours", type=str, default=None, help="comma list, e.g. 1,10")
    ap.add_argument("--samaf-hours", type=str, default=None, help="comma list, e.g. 1,10,100,1000")
    ap.add_argument("--max-build-s", type=float, default=None,
                    help="skip a baseline size whose database would take longer than this to build")
    ap.add_argument("--seed", type=int, default=20200301)
    ap.add_argument("--no-cli", action="store_true",
                    help="leave out the speed of the samaf command (benchmarks/cli_speed.py)")
    args = ap.parse_args(argv)
    conf = dict(QUICK if args.quick else FULL)
    if args.baseline_hours:
        conf["baseline_hours"] = [float(x) for x in args.baseline_hours.split(",")]
    if args.samaf_hours:
        conf["samaf_hours"] = [float(x) for x in args.samaf_hours.split(",")]
    if args.max_build_s is not None:
        conf["max_build_s"] = args.max_build_s
    out = args.out or reports_dir() / "bench.json"
    fig_path = args.figure or reports_dir() / "figures" / "bench_latency.png"
    t_start = time.perf_counter()
    results: dict[str, Any] = {"machine": describe_machine(), "settings": {**conf, "quick": args.quick,
                               "query_s": QUERY_S, "query_snr_db": QUERY_SNR_DB, "seed": args.seed}}
    log(f"machine: {results['machine']['cpu_model']}, {results['machine']['cpus_usable']} cores; "
        f"{'quick' if args.quick else 'full'} run")

    with tempfile.TemporaryDirectory(prefix="samaf-bench-") as tmp:
        d = Path(tmp)
        log(f"generating {conf['base_s']:g} s of speech")
        base = base_recording(max(conf["base_s"], conf["fp_s"], conf["tile_s"]))
        np.save(d / "base.npy", base)
        qs, offs = make_queries(base, conf["queries"], args.seed, conf["tile_s"])
        np.save(d / "queries.npy", qs)
        np.save(d / "offsets.npy", offs)

        speeds = []
        for name in (*BASELINES, "samaf"):
            speeds.append(_in_subprocess(bench_fingerprinting, name, str(d / "base.npy"), conf["fp_s"]))
            log(f"{name}: {speeds[-1]['x_realtime_per_core']:.0f}x real time per core")
        results["fingerprinting"] = speeds
        xrt = {s["system"]: s["x_realtime_per_core"] for s in speeds}

        latency: list[dict[str, Any]] = []
        for name in BASELINES:
            latency += _in_subprocess(bench_baseline, name, str(d), conf["baseline_hours"], conf["tile_s"],
                                      conf["max_build_s"], xrt[name])
        real = _in_subprocess(samaf_real, str(d), conf["samaf_real_hours"], conf["tile_s"])
        latency += real["system_rows"]
        recall, planted = [], []
        for kind in ("flat", "hash", "ivf"):
            for h in conf["samaf_hours"]:
                res = _in_subprocess(samaf_index, kind, str(d), h, real, conf["tile_s"], args.seed,
                                     h == conf["samaf_hours"][-1])
                latency += res["rows"]
                recall += res["recall"]
                planted += res["planted"]
    results["latency"] = latency
    results["samaf"] = {"model": real["model"], "settings": real["settings"], "encode_ms": real["encode_ms"],
                        "verify_ms": real["verify_ms"], "real_hours": real["system_rows"][0]["real_hours"],
                        "recall_vs_flat": recall,
                        "planted_recall": planted}
    results["target"] = target_verdict(latency)
    if not args.no_cli:
        import cli_speed  # beside this file

        log("the samaf command: indexing speed, start-up, add() as the database grows")
        results["cli"] = _in_subprocess(cli_speed.measure, args.quick)
    results["machine"]["load_average_end"] = list(os.getloadavg())
    results["wall_s"] = time.perf_counter() - t_start
    write_json(out, results)
    figure(results, fig_path)
    print(table(results))
    if "cli" in results:
        import cli_speed

        print(cli_speed.table(results["cli"]))
    for c in results["target"]["candidates"]:
        print(f"1,000 h, {c['index']}: p50 {c['p50_ms']:.1f} ms, p95 {c['p95_ms']:.1f} ms (without verification "
              f"{c['p50_ms_without_verify']:.1f} / {c['p95_ms_without_verify']:.1f} ms), "
              f"{c['index_bytes'] / 1e6:.0f} MB, exact={c['exact']}, meets the target: {c['meets_target']} "
              f"(without verification: {c['meets_target_without_verify']})")
    log(f"done in {results['wall_s']:.0f} s: {out}, {fig_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
