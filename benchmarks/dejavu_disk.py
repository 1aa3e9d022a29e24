"""Dejavu's database in memory (``Dejavu.load``) against in place (``samaf_lib.sqlite_store``), as it grows.

The database is filled to each size in hours: the first hour with real fingerprints of generated music (8-s
clips, ``conftest.make_music``), the rest with synthetic songs drawn to match them: the same rows per second of
audio, hashes uniform over the 10-byte space (Dejavu's hashes are cut SHA-1 digests, so real ones are uniform
too), offsets uniform over each song's frames. Synthetic rows compete for lookups as real ones from other songs
do: a query hash rarely meets them, as it rarely meets another real song's.

One database grows from the smallest size asked for to the largest (``fill_s`` is the time to reach each size).
At each size, in a fresh process per mode (in memory only up to ``--max-memory-hours``): seconds to open the
database, resident memory after opening and after the queries (peak RSS), 5-s query latency p50/p95 (excerpts of
the real songs), the time to add one 8-s file and commit it, and bytes on disk per hour. Results to
``reports/bench_dejavu_disk.json`` (timings: not committed).

    python benchmarks/dejavu_disk.py --hours 1,10,100
    python benchmarks/dejavu_disk.py --hours 1,10,100,1000 --modes in_place
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
SR = 16000
CLIP_S = 8.0


def build(db: Path, hours: float, seed: int = 0) -> dict:
    """Fill ``db`` to ``hours``: a new Dejavu file, or one this function filled to fewer hours, which it grows (the
    synthetic songs are drawn per song from ``seed``, so growing 10 -> 100 h writes what a 100-h fill would)."""
    from conftest import make_music

    from samaf_lib.sqlite_store import DejavuOnDisk
    from samaf_lib.systems.dejavu import Dejavu

    if not db.exists():
        Dejavu().save(db)
    system = DejavuOnDisk.open(db)
    system._con.execute("PRAGMA synchronous = OFF")  # the fill only; the measured add runs with FULL
    if "added" in system.references():  # the file the last size's measurement added
        system.remove(["added"])
    names = set(system.references())
    n_real = int(min(hours, 1.0) * 3600 / CLIP_S)
    for i in range(n_real):
        if f"real{i:05d}" not in names:
            system.add(f"real{i:05d}", make_music(i, CLIP_S), SR)
    real = [r for r in system.references() if r.startswith("real")]
    counts = system._con.execute("SELECT SUM(total_hashes), SUM(duration_s) FROM songs WHERE song_name LIKE "
                                 "'real%'").fetchone()
    rows_per_s = counts[0] / counts[1]
    frames = int(CLIP_S * SR / system.hop)
    n_syn = int(max(hours - 1.0, 0.0) * 3600 / CLIP_S)
    per_song = int(round(rows_per_s * CLIP_S))
    have = sum(1 for r in names if r.startswith("syn"))
    _fill_synthetic(system._con, have, n_syn, per_song, frames, seed)
    system.save(db)
    system.close()
    return {"real_songs": len(real), "synthetic_songs": n_syn, "rows_per_second": rows_per_s}


#: Synthetic songs per transaction of the fill.
CHUNK_SONGS = 2000
#: A fill adding more synthetic songs than this drops the hash index and builds it again at the end (one sort
#: instead of a random B-tree insert per row: 10 -> 100 h took 33 min with the index kept).
BULK_SONGS = 20000


def _fill_synthetic(con, have: int, n_syn: int, per_song: int, frames: int, seed: int) -> None:
    """Append synthetic songs ``have .. n_syn - 1`` (song ``j``'s rows drawn from ``[seed, j]``), in offset order.

    A large fill runs without a journal (a fill interrupted is started again, not resumed) and without the hash
    index, which it builds again in one ``CREATE INDEX`` (a sort in temporary files: the directory of
    ``SQLITE_TMPDIR`` needs about as much free space as the index takes)."""
    from samaf_lib.systems.dejavu import _SCHEMA

    if n_syn <= have:
        return
    bulk = n_syn - have > BULK_SONGS
    if bulk:
        con.execute("PRAGMA journal_mode = OFF")
        con.execute("DROP INDEX IF EXISTS ix_fingerprints_hash")
    for start in range(have, n_syn, CHUNK_SONGS):
        with con:
            for j in range(start, min(start + CHUNK_SONGS, n_syn)):
                rng = np.random.default_rng([seed, j])
                hashes = rng.integers(0, 256, size=(per_song, 10), dtype=np.uint8)
                offsets = rng.integers(0, frames, size=per_song)
                order = np.lexsort((offsets,))
                blob = hashes[order].tobytes()
                song_id = con.execute(
                    "INSERT INTO songs (song_name, fingerprinted, file_sha1, total_hashes, duration_s, sample_rate)"
                    " VALUES (?, 1, ?, ?, ?, ?)", (f"syn{j:07d}", "0" * 40, per_song, CLIP_S, SR)).lastrowid
                # one statement per song: SQLite cuts the rows out of the hash bytes and a JSON list of offsets
                # (3.5x faster than executemany's row-by-row binding)
                con.execute('INSERT OR IGNORE INTO fingerprints (hash, song_id, "offset") '
                            "SELECT substr(?1, 10 * key + 1, 10), ?2, value FROM json_each(?3)",
                            (blob, song_id, json.dumps(offsets[order].tolist())))
    if bulk:
        con.execute("PRAGMA cache_size = -2000000")  # the sort's memory: 2 GB
        con.execute(next(q for q in _SCHEMA if "ix_fingerprints_hash" in q))
        con.execute("PRAGMA journal_mode = WAL")


def measure(db: Path, mode: str, n_queries: int = 40) -> dict:
    """One mode in this process: open, query, add one file."""
    from conftest import make_music
    from store_bench import open_query_add

    from samaf_lib.sqlite_store import DejavuOnDisk
    from samaf_lib.systems.dejavu import Dejavu

    def add(system) -> None:
        system.add("added", make_music(10 ** 6, CLIP_S), SR)
        if mode == "memory":
            system.save(Path(str(db) + ".copy"))  # what committing meant before: the whole database written out

    out = open_query_add(lambda: Dejavu.load(db) if mode == "memory" else DejavuOnDisk.open(db),
                         lambda i: make_music(i, CLIP_S), add, n_queries)
    return {"mode": mode, **out}


def main() -> int:
    from store_bench import remove_store, write_results

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--hours", default="1,10")
    ap.add_argument("--work", default="/tmp/bench_dejavu_disk")
    ap.add_argument("--out", default=str(ROOT / "reports" / "bench_dejavu_disk.json"))
    ap.add_argument("--modes", default="memory,in_place", help="memory, in_place or both (comma-separated)")
    ap.add_argument("--max-memory-hours", type=float, default=30.0,
                    help="measure the in-memory mode up to this size only (it holds ~40 MB per hour in RAM)")
    ap.add_argument("--keep", action="store_true", help="keep the database in --work at the end")
    ap.add_argument("--measure", nargs=2, metavar=("DB", "MODE"), help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.measure:
        print(json.dumps(measure(Path(a.measure[0]), a.measure[1])))
        return 0
    modes = [m for m in a.modes.split(",") if m]
    bad = sorted(set(modes) - {"memory", "in_place"})
    if bad:
        ap.error(f"--modes: unknown mode(s) {', '.join(bad)}; use memory and/or in_place")
    work = Path(a.work)
    work.mkdir(parents=True, exist_ok=True)
    db = work / "dejavu.db"
    remove_store(work, db.name)
    results, fill_s = [], 0.0
    for hours in sorted(float(h) for h in a.hours.split(",")):  # one database, grown from size to size
        t = time.perf_counter()
        fill = build(db, hours)
        fill_s += time.perf_counter() - t
        os.sync()  # the fill runs with synchronous = OFF: its pages reach the disk before the add is timed
        size = db.stat().st_size
        row = {"hours": hours, **fill, "fill_s": fill_s, "file_bytes": size, "bytes_per_hour": size / hours}
        for mode in modes:
            if mode == "memory" and hours > a.max_memory_hours:
                row[mode] = {"skipped": f"over --max-memory-hours {a.max_memory_hours:g}"}
                continue
            out = subprocess.run([sys.executable, __file__, "--measure", str(db), mode], capture_output=True,
                                 text=True, check=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
            row[mode] = json.loads(out.stdout.strip().splitlines()[-1])
        results.append(row)
        print(json.dumps(row), flush=True)
    if not a.keep:
        remove_store(work, db.name)
    write_results(a.out, results)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
