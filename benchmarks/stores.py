"""RAFS, Panako, triplets and SAMAF kept in LMDB (``samaf_lib.lmdb_store``), filled to 1, 10, 100 and 1,000 hours.

The database of each system is filled to each size: first ``--real-hours`` of real fingerprints of 8-s clips
added with ``system.add`` (generated music, ``conftest.make_music``; generated speech for SAMAF, the audio its
model was trained on), then synthetic references of 5 minutes, each 37
stretches made from those real records, end to end, so that they look like real ones and compete like them
(read before quoting a number):

- RAFS: a real reference's sub-fingerprints XOR one random 32-bit mask per synthetic reference. The sequence
  keeps its real structure (which bits change from frame to frame, the quiet frames), the values are new.
- Panako and triplets: a real reference's triplets (times, frequencies, spans) with their hashes XOR one random
  mask inside the hash's bit width (27 bits for Panako, the used bits for triplets): the same number of triplets
  per second and the same repeats inside a reference, other values.
- SAMAF: a real reference's codes with each bit flipped with probability 0.25, a new draw per synthetic
  reference: about 32 bits from the code they come from, as close as codes of different real audio come to each
  other (uniform random codes, 64 ± 5.7 bits from anything, would be far easier to reject).
- ``samaf-ivf``: the same SAMAF store with ``index=ivf`` (``samaf_lib/samaf_store.py``: exact until 262,144
  windows, then an IVF of 1,024 lists trained once, 64 probed). Also measured against the exact search over the
  same codes, for the windows of the timed queries and k of ``params.yaml``'s ``hash.k``: ``recall_at_k``, the
  share of its neighbours as close as the exact k-th (ties are common in Hamming space), and ``id_recall_at_k``,
  the share of the very ids the exact search returns (whose order among ties is arbitrary).

The store grows from one size to the next; at each size, in a fresh process: seconds to open the database,
resident memory after opening and at the end (peak), 5-s query latency p50/p95 (excerpts of the real clips with
white noise at 20 dB), top-1 on them, the seconds to add one 8-s file and commit it, bytes on disk per hour.
One thread (``OMP_NUM_THREADS=1``). Results to ``reports/bench_stores.json`` (timings: never committed). A size is
skipped when filling it is predicted to take longer than ``--max-fill-s`` (from the fill rate so far), and the
larger ones with it.

    python benchmarks/stores.py --systems rafs,panako,triplets,samaf --hours 1,10,100,1000
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")  # the filler too: two OpenMP threads beside a busy core crawl

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from samaf_lib.paths import study_checkpoint

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
SR = 16000
CLIP_S = 8.0
#: 8-s stretches per synthetic reference (5 min).
SYN_CLIPS = 37
TRAINED = ROOT / study_checkpoint(128)


def _clip(name: str, i: int) -> np.ndarray:
    """Real clip ``i``: generated speech for SAMAF (the audio its model was trained on), music for the others."""
    if name.startswith("samaf"):
        from samaf_lib.corpus.samples import make_speech

        return make_speech(i, CLIP_S)
    from conftest import make_music

    return make_music(i, CLIP_S)


def _system(name: str, model: str | None) -> object:
    from samaf_lib import systems

    if not name.startswith("samaf"):
        return systems.get(name)
    from samaf_lib.samaf_store import SAMAFOnDisk

    index = "ivf" if name == "samaf-ivf" else "flat"
    if model:
        return SAMAFOnDisk(checkpoint=model, index=index)
    import torch

    from samaf_lib.model import SAMAF

    torch.manual_seed(0)
    return SAMAFOnDisk(model=SAMAF(bits=128).eval(), index=index)


def _base(name: str) -> str:
    """The system a benchmark name stores (``samaf-ivf`` is SAMAF with another index)."""
    return "samaf" if name.startswith("samaf") else name


def _synthetic(name: str, record: dict, rng: np.random.Generator) -> dict:
    """A synthetic stretch made from a real ``record`` (see the module docstring)."""
    r = {k: np.array(v) for k, v in record.items()}
    if name == "rafs":
        r["codes"] = r["codes"] ^ np.uint32(rng.integers(0, 2 ** 32))
    elif name in ("panako", "triplets"):
        h = r["hashes"].astype(np.int64)
        width = max(int(h.max()).bit_length(), 1)
        r["hashes"] = (h ^ int(rng.integers(0, 2 ** width))).astype(r["hashes"].dtype)
    else:  # samaf, samaf-ivf
        bits = np.unpackbits(r["codes"], axis=1)
        flip = rng.random(bits.shape) < 0.25
        r["codes"] = np.packbits(bits ^ flip, axis=1)
    return r


def _joined(name: str, parts: list[dict], frames_per_second: float) -> dict:
    """One synthetic reference of ``parts`` (records of 8-s clips) end to end, their times shifted."""
    out: dict = {"seconds": np.float64(CLIP_S * len(parts))}
    if name == "rafs":
        out["codes"] = np.concatenate([p["codes"] for p in parts])
        out["quiet"] = np.concatenate([p["quiet"] for p in parts])
    elif name in ("panako", "triplets"):
        for k in parts[0]:
            if k != "seconds":
                out[k] = np.concatenate([p[k] for p in parts])
        shift = np.repeat(np.round(np.arange(len(parts)) * CLIP_S * frames_per_second).astype(np.int64),
                          [p["t1"].size for p in parts])
        out["t1"] = (out["t1"].astype(np.int64) + shift).astype(parts[0]["t1"].dtype)
    else:
        out["codes"] = np.concatenate([p["codes"] for p in parts])
        out["times"] = np.concatenate([p["times"] + np.float32(i * CLIP_S) for i, p in enumerate(parts)])
    return out


class Filler:
    """A new store of system ``name`` at ``db``, grown by :meth:`grow_to`: ``real_hours`` of real references first,
    then synthetic ones made from them."""

    def __init__(self, name: str, db: Path, real_hours: float, model: str | None, seed: int = 0) -> None:
        from samaf_lib.lmdb_store import disk_class

        cls = disk_class(_base(name))
        cls.create(db, _system(name, model))
        self.name, self.system = name, cls.open(db, writable=True)
        self.n_real_target = max(1, int(real_hours * 3600 / CLIP_S))
        self.records: list[dict] = []
        self.n_syn, self.rng = 0, np.random.default_rng(seed)
        self.real_s = self.syn_s = 0.0

    def hours(self) -> float:
        return (len(self.records) + self.n_syn) * CLIP_S / 3600

    def grow_to(self, hours: float) -> None:
        t = time.perf_counter()
        while len(self.records) < self.n_real_target and self.hours() < hours:
            rid = f"real{len(self.records):05d}"
            self.system.add(rid, _clip(self.name, len(self.records)), SR)
            self.records.append(self.system.reference_record(rid))
        self.real_s += time.perf_counter() - t
        t = time.perf_counter()
        fps = float(getattr(self.system, "frames_per_second", 0.0))
        while self.hours() < hours:  # references of SYN_CLIPS stretches (5 min), as in an archive
            k = min(SYN_CLIPS, int(np.ceil((hours - self.hours()) * 3600 / CLIP_S)))
            parts = [_synthetic(self.name, self.records[(self.n_syn + i) % len(self.records)], self.rng)
                     for i in range(k)]
            self.system.add_record(f"syn{self.n_syn:07d}", _joined(self.name, parts, fps))
            self.n_syn += k
        self.syn_s += time.perf_counter() - t

    def facts(self) -> dict:
        return {"real_refs": len(self.records), "synthetic_stretches": self.n_syn, "real_fill_s": self.real_s,
                "synthetic_fill_s": self.syn_s,
                "real_x_realtime": len(self.records) * CLIP_S / self.real_s if self.real_s else None}


def measure(name: str, db: Path, n_queries: int = 40) -> dict:
    """Open, query (20 dB white noise) and add one file, in this process."""
    from store_bench import open_query_add

    from samaf_lib.lmdb_store import disk_class

    extra: dict = {}

    def add(system) -> None:
        if name == "samaf-ivf":
            extra.update(_recall(system, n_queries))
        t = time.perf_counter()
        system.add(f"added{len(system.references())}", _clip(name, 10 ** 6), SR)
        extra["add_one_file_s"] = time.perf_counter() - t  # the recall check above left out
        system.close()

    out = open_query_add(lambda: disk_class(_base(name)).open(db, writable=True), lambda i: _clip(name, i), add,
                         n_queries, snr_db=20.0)
    return {**out, **extra}


def _recall(system, n_queries: int) -> dict:
    """recall@k of the IVF's neighbours against the exact search over the same codes, for the windows of the
    timed queries (:func:`store_bench.noisy_queries`)."""
    import faiss

    k = int(system.params["k"])
    exact = faiss.IndexBinaryFlat(system.bits)
    exact.add(np.ascontiguousarray(system._codes))
    from store_bench import noisy_queries

    n_real = sum(1 for r in system.references() if r.startswith("real"))
    hits = total = close = 0
    for _, q in noisy_queries(lambda i: _clip("samaf", i), n_real, n_queries, snr_db=20.0):
        windows, _, loud = system._windows(system._prepare(q, SR), system.params["query_hop_s"])
        codes = system._encode(windows[loud])
        d_got, got = system._index.search(codes, k)
        d_want, want = exact.search(codes, k)
        hits += sum(len(set(a) & set(b)) for a, b in zip(got.tolist(), want.tolist()))
        close += int((d_got <= d_want[:, -1:]).sum())
        total += want.size
    # recall_at_k: returned neighbours as close as the exact k-th (ties between equal distances are common in
    # Hamming space, and any of them is as good); id_recall_at_k: the same ids as faiss's exact search, whose
    # order among ties is arbitrary (searching every list of the IVF gives about 0.96 on it)
    return {"recall_at_k": close / total, "id_recall_at_k": hits / total, "k": k,
            "index": system.params.get("index"), "ivf_trained": bool(getattr(system._index, "trained", False))}


def main() -> int:
    from store_bench import remove_store, write_results

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--systems", default="rafs,panako,triplets,samaf")
    ap.add_argument("--hours", default="1,10,100,1000")
    ap.add_argument("--real-hours", type=float, default=0.25, help="hours of real fingerprints in each fill")
    ap.add_argument("--max-fill-s", type=float, default=900.0)
    ap.add_argument("--model", default=str(TRAINED) if TRAINED.is_file() else None,
                    help="SAMAF checkpoint (default: the trained one when it exists, else an untrained model)")
    ap.add_argument("--work", default="/tmp/bench_stores")
    ap.add_argument("--out", default=str(ROOT / "reports" / "bench_stores.json"))
    ap.add_argument("--keep", action="store_true", help="leave the filled stores in --work")
    ap.add_argument("--measure", nargs=2, metavar=("SYSTEM", "DB"), help=argparse.SUPPRESS)
    a = ap.parse_args()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    if a.measure:
        import torch

        torch.set_num_threads(1)
        print(json.dumps(measure(a.measure[0], Path(a.measure[1]))))
        return 0
    work = Path(a.work)
    work.mkdir(parents=True, exist_ok=True)
    results = []
    for name in a.systems.split(","):
        db = work / f"{name}.lmdb"
        remove_store(work, db.name)
        filler = Filler(name, db, a.real_hours, a.model)
        for hours in [float(h) for h in a.hours.split(",")]:
            rate = filler.syn_s / max(filler.hours() - a.real_hours, 1e-9)  # fill seconds per synthetic hour
            if filler.n_syn and rate * (hours - filler.hours()) > a.max_fill_s:
                results.append({"system": name, "hours": hours, "skipped": f"filling it was predicted to take "
                                f"{rate * (hours - filler.hours()):.0f} s more > --max-fill-s {a.max_fill_s:g}"})
                print(json.dumps(results[-1]), flush=True)
                break
            t = time.perf_counter()
            filler.grow_to(hours)
            fill_s = time.perf_counter() - t
            size = db.stat().st_size
            out = subprocess.run([sys.executable, __file__, "--measure", name, str(db)], capture_output=True,
                                 text=True, check=True, env=env)
            row = {"system": name, "hours": hours, **filler.facts(), "fill_s": fill_s, "file_bytes": size,
                   "bytes_per_hour": size / hours, **json.loads(out.stdout.strip().splitlines()[-1])}
            results.append(row)
            print(json.dumps(row), flush=True)
        filler.system.close()
        if not a.keep:
            remove_store(work, db.name)
    write_results(a.out, results)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
