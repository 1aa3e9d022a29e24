"""Speed of the ``samaf`` command where users meet it: ``index`` throughput, one-clip start-up, ``add()`` scaling.

Three measurements, each on one CPU thread (``OMP_NUM_THREADS=1`` and friends in every child process):

1. **Indexing through the CLI**, x real time per core: ``samaf index`` of a fresh database on a folder of generated
   speech WAV files (``make_speech``, 12 eSpeak NG voices, written at ``--file-sr``, 44.1 kHz by default, so that
   decoding and resampling to 16 kHz are included), for SAMAF at the reference hops 0.5, 0.25 and 0.1 s
   (``--param db_hop_s=...``) and for RAFS, Panako and Dejavu with their defaults, each into a new database,
   best of ``index_repeats`` runs. ``x_realtime`` is audio seconds over the wall-clock time of the whole command
   (start-up, decoding, fingerprinting, saving); ``x_realtime_cpu`` uses the child's CPU time instead;
   ``x_realtime_marginal`` leaves out what does not grow with the folder (start-up, one-off imports):
   ``(A - a) / (T - t)`` with ``(a, t)`` from indexing the first half of the files.
2. **Start-up of a one-clip identify**: ``samaf identify CLIP --db DB`` on a 5-s excerpt (same rate as the files)
   against each database of (1) (SAMAF at the 0.5-s hop), median wall time of ``--repeats`` runs; likewise
   ``samaf info --db DB`` and ``samaf --help``.
3. **add() as the database grows** (in this process): the time of adding reference number 10, 100, 1000 (median
   of the 11 adds around each) of 2-s references to a growing :class:`SAMAFSystem`, and the time of one ``add()``
   into databases loaded with 10^4 ... 10^6 stored windows of random codes (median of 10 adds; ``first_query_ms``
   is the first identify after them, which enters the new codes into the Hamming index in one batch).

The SAMAF model is the study's (``samaf_lib.cli.DEFAULT_MODEL``) when the pipeline has trained it, otherwise an
untrained model of the same shape (128 bits, seed 0, standardisation fitted on the generated speech) saved as a
checkpoint in a temporary folder and passed with ``--model``: speed does not depend on the weights.

Results go to ``reports/bench.json`` under ``"cli"`` (merged into what ``benchmarks/run.py`` wrote there) or to
``--out``. ``--quick`` uses a smaller folder and fewer repeats (about a minute). Timings on a shared machine are
noisy; the JSON records the load average at start and end.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMEXPR_NUM_THREADS"):
    os.environ[_var] = "1"  # per-core figures; set before numpy and torch start their thread pools

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

SR = 16000
#: System runs of the indexing benchmark: (label, system, extra ``samaf index`` arguments).
RUNS = (("samaf (db_hop_s=0.5)", "samaf", ["--param", "db_hop_s=0.5"]),
        ("samaf (db_hop_s=0.25)", "samaf", ["--param", "db_hop_s=0.25"]),
        ("samaf (db_hop_s=0.1)", "samaf", ["--param", "db_hop_s=0.1"]),
        ("rafs", "rafs", []), ("panako", "panako", []), ("triplets", "triplets", []), ("dejavu", "dejavu", []))
#: Folder size, repeats and add() sizes of a full run and of ``--quick``.
FULL = {"files": 40, "file_s": 45.0, "index_repeats": 2, "repeats": 5, "grow_refs": [10, 100, 1000],
        "loaded_windows": [10_000, 100_000, 1_000_000]}
QUICK = {"files": 10, "file_s": 30.0, "index_repeats": 1, "repeats": 3, "grow_refs": [10, 100, 300],
         "loaded_windows": [10_000, 100_000]}
CLIP_S = 5.0
REF_S = 2.0


def log(msg: str) -> None:
    print(f"[cli-speed {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def child_env() -> dict[str, str]:
    """The environment of every measured command: this process's, with one OpenMP / BLAS thread."""
    env = dict(os.environ)
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMEXPR_NUM_THREADS"):
        env[var] = "1"
    return env


def samaf_command(*args: str) -> list[str]:
    """``samaf ARGS`` as the console script runs it (``samaf_lib.cli.main``), with this interpreter."""
    return [sys.executable, "-c", "import sys; from samaf_lib.cli import main; sys.exit(main())", *args]


def timed(cmd: list[str], cwd: Path) -> dict[str, float]:
    """Run ``cmd``; its wall-clock and CPU (user + system) seconds. A non-zero exit raises with its stderr."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    res = subprocess.run(cmd, cwd=cwd, env=child_env(), capture_output=True, text=True, check=False)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if res.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd[3:])} exited with {res.returncode}: {res.stderr.strip()[-2000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {"wall_s": wall, "cpu_s": cpu}


# -- inputs ---------------------------------------------------------------------------------------------------------
def write_folder(folder: Path, n_files: int, file_s: float, file_sr: int, seed0: int = 0) -> float:
    """``n_files`` WAV files of ``file_s`` seconds of generated speech at ``file_sr``; returns the seconds written."""
    from samaf_lib.audio import write_audio
    from samaf_lib.corpus.samples import make_speech

    folder.mkdir(parents=True, exist_ok=True)
    total = 0.0
    for i in range(n_files):
        x = make_speech(seed0 + i, file_s, file_sr)
        write_audio(folder / f"speech{i:03d}.wav", x, file_sr)
        total += x.size / file_sr
    return total


def benchmark_model(tmp: Path, speech: list[np.ndarray]) -> tuple[Path, dict[str, Any]]:
    """The trained model's checkpoint if there is one, else an untrained 128-bit one saved under ``tmp``."""
    from samaf_lib.cli import default_model

    path = default_model()
    if path.is_file():
        return path, {"checkpoint": str(path), "trained": True}
    import torch

    from samaf_lib.features import mfcc_frames
    from samaf_lib.model import SAMAF, save_checkpoint

    frames = np.concatenate([mfcc_frames(x, SR) for x in speech])
    with torch.random.fork_rng():
        torch.manual_seed(0)
        model = SAMAF(bits=128)
    model.set_standardiser(frames.mean(axis=0), frames.std(axis=0))
    ckpt = tmp / "untrained-samaf-128.pt"
    save_checkpoint(ckpt, model)
    return ckpt, {"checkpoint": None, "trained": False, "config": dict(model.config),
                  "note": f"no trained model at {path}: an untrained model of the same shape (same speed)"}


# -- 1. and 2.: the command ------------------------------------------------------------------------------------------
def bench_cli(tmp: Path, conf: dict[str, Any], file_sr: int, model: Path) -> dict[str, Any]:
    """Indexing throughput per system and hop, and the start-up of ``identify``, ``info`` and ``--help``."""
    from samaf_lib.audio import write_audio
    from samaf_lib.corpus.samples import make_speech

    folder, half = tmp / "audio", tmp / "half"
    seconds = write_folder(folder, conf["files"], conf["file_s"], file_sr)
    half.mkdir()
    for f in sorted(folder.iterdir())[: conf["files"] // 2]:
        (half / f.name).write_bytes(f.read_bytes())
    half_seconds = conf["files"] // 2 * conf["file_s"]
    clip = tmp / "clip.wav"
    x = make_speech(3, conf["file_s"], file_sr)
    start = int(round(1.0 * file_sr))
    write_audio(clip, x[start:start + int(CLIP_S * file_sr)], file_sr)
    log(f"{conf['files']} files, {seconds:.0f} s of speech at {file_sr} Hz")

    rows, dbs = [], {}
    for label, system, extra in RUNS:
        model_args = ["--model", str(model)] if system == "samaf" else []
        name = label.replace(" ", "_")
        bigs, smalls = [], []
        for r in range(conf["index_repeats"]):
            db, small_db = tmp / f"db{r}" / f"{name}.db", tmp / f"db{r}" / f"{name}.half.db"  # new databases
            db.parent.mkdir(exist_ok=True)
            # indexing speed alone: the calibration that follows a run is a separate cost (samaf calibrate)
            bigs.append(timed(samaf_command("index", str(folder), "--system", system, "--db", str(db), "-q",
                                            "--no-calibrate", *model_args, *extra), cwd=tmp))
            smalls.append(timed(samaf_command("index", str(half), "--system", system, "--db", str(small_db), "-q",
                                              "--no-calibrate", *model_args, *extra), cwd=tmp))
        big, small = min(bigs, key=lambda t: t["wall_s"]), min(smalls, key=lambda t: t["wall_s"])
        dbs[label] = db
        grow = big["wall_s"] - small["wall_s"]
        row = {"label": label, "system": system, "args": extra, "audio_s": seconds, "files": conf["files"],
               "wall_s": big["wall_s"], "cpu_s": big["cpu_s"], "x_realtime": seconds / big["wall_s"],
               "x_realtime_cpu": seconds / big["cpu_s"], "half_wall_s": small["wall_s"],
               "runs_wall_s": [t["wall_s"] for t in bigs],
               "x_realtime_marginal": (seconds - half_seconds) / grow if grow > 0 else None}
        rows.append(row)
        log(f"index {label}: {row['x_realtime']:.0f}x real time (wall {big['wall_s']:.2f} s, cpu {big['cpu_s']:.2f} s,"
            f" half the files {small['wall_s']:.2f} s, marginal "
            f"{row['x_realtime_marginal'] or float('nan'):.0f}x)")

    startup = []
    for label, system, _ in RUNS:
        if system == "samaf" and label != RUNS[0][0]:
            continue
        db = dbs[label]
        ident = [timed(samaf_command("identify", str(clip), "--db", str(db)), cwd=tmp)["wall_s"]
                 for _ in range(conf["repeats"])]
        info = [timed(samaf_command("info", "--db", str(db)), cwd=tmp)["wall_s"] for _ in range(conf["repeats"])]
        startup.append({"system": system, "identify_one_clip_s": statistics.median(ident),
                        "identify_runs_s": ident, "info_s": statistics.median(info), "info_runs_s": info})
        log(f"start-up {system}: identify one clip {startup[-1]['identify_one_clip_s']:.2f} s (median of "
            f"{len(ident)}), info {startup[-1]['info_s']:.2f} s")
    helps = [timed(samaf_command("--help"), cwd=tmp)["wall_s"] for _ in range(conf["repeats"])]
    return {"file_sr": file_sr, "clip_s": CLIP_S, "index": rows, "startup": startup,
            "help_s": statistics.median(helps)}


# -- 3. add() -------------------------------------------------------------------------------------------------------
def bench_add(tmp: Path, conf: dict[str, Any], model_path: Path) -> dict[str, Any]:
    """add() time per reference as the database grows, and into databases loaded with many windows."""
    import torch

    from samaf_lib.model import load_model
    from samaf_lib.systems.samaf import SAMAFSystem

    torch.set_num_threads(1)
    model = load_model(model_path)
    rng = np.random.default_rng(0)
    base = np.concatenate([_speech(i, 30.0) for i in range(4)])
    n = int(REF_S * SR)

    def reference(j: int) -> np.ndarray:
        """A 2-s excerpt of the base speech at a position given by ``j``, with a little noise (distinct codes)."""
        s = (j * 7919) % (base.size - n)
        return (base[s:s + n] + 1e-3 * rng.standard_normal(n)).astype(np.float32)

    system = SAMAFSystem(model=model)
    grow_ms: dict[int, list[float]] = {k: [] for k in conf["grow_refs"]}
    last = max(conf["grow_refs"]) + 5
    for j in range(1, last + 1):
        x = reference(j)
        t0 = time.perf_counter()
        system.add(f"r{j:06d}", x, SR)
        ms = (time.perf_counter() - t0) * 1000
        for k in grow_ms:
            if abs(j - k) <= 5:
                grow_ms[k].append(ms)
    growing = [{"reference": k, "windows_before": None, "add_ms_median": statistics.median(v),
                "add_ms_max": max(v), "adds": len(v)} for k, v in grow_ms.items()]
    log("add() growing: " + ", ".join(f"#{r['reference']} {r['add_ms_median']:.2f} ms" for r in growing))

    template = tmp / "template.samaf"
    SAMAFSystem(model=model).save(template)
    loaded = []
    for n_win in conf["loaded_windows"]:
        path = tmp / f"loaded{n_win}.samaf"
        _synthetic_database(template, path, n_win, windows_per_ref=600, rng=rng)
        db = SAMAFSystem.load(path)
        ms = []
        for j in range(10):
            x = reference(10_000 + j)
            t0 = time.perf_counter()
            db.add(f"new{j}", x, SR)
            ms.append((time.perf_counter() - t0) * 1000)
        t0 = time.perf_counter()
        db.identify(reference(10_003)[: int(1.5 * SR)], SR)
        first_query = (time.perf_counter() - t0) * 1000
        loaded.append({"windows": n_win, "hours_at_0.5s_hop": n_win * 0.5 / 3600,
                       "add_ms_median": statistics.median(ms), "add_ms_max": max(ms), "adds": len(ms),
                       "first_query_ms": first_query})
        log(f"add() into {n_win:,} windows: median {loaded[-1]['add_ms_median']:.2f} ms, max "
            f"{loaded[-1]['add_ms_max']:.1f} ms; first query {first_query:.1f} ms")
        path.unlink()
    return {"reference_s": REF_S, "growing": growing, "loaded": loaded}


def _speech(seed: int, seconds: float) -> np.ndarray:
    from samaf_lib.corpus.samples import make_speech

    return make_speech(seed, seconds, SR)


def _synthetic_database(template: Path, path: Path, n_windows: int, windows_per_ref: int,
                        rng: np.random.Generator) -> None:
    """A SAMAF database file like ``template`` (same model) holding ``n_windows`` random codes.

    The references are ``windows_per_ref`` windows each (5 min at a 0.5-s hop), their windows every 0.5 s: the
    layout :meth:`SAMAFSystem.save` writes, so that :meth:`SAMAFSystem.load` opens it like a real database.
    """
    with np.load(template, allow_pickle=False) as f:
        arrays = {k: f[k] for k in f.files}
    meta = json.loads(str(arrays["meta"]))
    width = arrays["codes"].shape[1]
    n_refs = -(-n_windows // windows_per_ref)
    win_ref = (np.arange(n_windows) // windows_per_ref).astype(np.int32)
    win_time = ((np.arange(n_windows) % windows_per_ref) * 0.5).astype(np.float32)
    meta["refs"] = [f"synthetic{i:06d}" for i in range(n_refs)]
    meta["ref_seconds"] = [windows_per_ref * 0.5 + 0.5] * n_refs
    arrays.update(codes=rng.integers(0, 256, size=(n_windows, width), dtype=np.uint8), win_ref=win_ref,
                  win_time=win_time, meta=np.array(json.dumps(meta)))
    with open(path, "wb") as fh:  # a file object: numpy adds no ".npz" suffix
        np.savez(fh, **arrays)


# -- results ----------------------------------------------------------------------------------------------------------
def measure(quick: bool = False, file_sr: int = 44100, parts: tuple[str, ...] = ("cli", "add")) -> dict[str, Any]:
    """Run the measurements; the ``"cli"`` section of ``reports/bench.json``."""
    conf = dict(QUICK if quick else FULL)
    t_start = time.perf_counter()
    out: dict[str, Any] = {"settings": {**conf, "quick": quick, "file_sr": file_sr, "threads": 1},
                           "load_average_start": list(os.getloadavg())}
    with tempfile.TemporaryDirectory(prefix="samaf-cli-speed-") as tmp_name:
        tmp = Path(tmp_name)
        model, info = benchmark_model(tmp, [_speech(i, 20.0) for i in range(4)])
        out["model"] = info
        if "cli" in parts:
            out.update(bench_cli(tmp, conf, file_sr, model))
        if "add" in parts:
            out["add"] = bench_add(tmp, conf, model)
    out["load_average_end"] = list(os.getloadavg())
    out["wall_s"] = time.perf_counter() - t_start
    return out


def table(cli: dict[str, Any]) -> str:
    """The indexing, start-up and add() figures as markdown tables (those measured)."""
    sections = []
    if cli.get("index"):
        rows = ["| run | x real time (wall) | x real time (CPU) | marginal x real time | wall s |",
                "|---|---:|---:|---:|---:|"]
        for r in cli["index"]:
            marg = f"{r['x_realtime_marginal']:.0f}" if r["x_realtime_marginal"] else "-"
            rows.append(f"| {r['label']} | {r['x_realtime']:.0f} | {r['x_realtime_cpu']:.0f} | {marg} | "
                        f"{r['wall_s']:.2f} |")
        sections.append(rows)
    if cli.get("startup"):
        sections.append(["| system | identify one clip, s | info, s |", "|---|---:|---:|"]
                        + [f"| {s['system']} | {s['identify_one_clip_s']:.2f} | {s['info_s']:.2f} |"
                           for s in cli["startup"]])
    if cli.get("add"):
        sections.append(["| add() | median ms | max ms |", "|---|---:|---:|"]
                        + [f"| reference #{r['reference']} | {r['add_ms_median']:.2f} | {r['add_ms_max']:.2f} |"
                           for r in cli["add"]["growing"]]
                        + [f"| into {r['windows']:,} windows | {r['add_ms_median']:.2f} | {r['add_ms_max']:.2f} |"
                           for r in cli["add"]["loaded"]])
    return "\n\n".join("\n".join(rows) for rows in sections)


def merge_into(path: Path, cli: dict[str, Any]) -> None:
    """Write ``cli`` as the ``"cli"`` key of the JSON at ``path``, keeping what else is there."""
    from samaf_lib.io import write_json

    data: dict[str, Any] = {}
    if path.is_file():
        try:
            data = json.loads(path.read_text())
        except ValueError:
            data = {}
    data["cli"] = cli
    write_json(path, data)


def main(argv: list[str] | None = None) -> int:
    from samaf_lib.paths import reports_dir

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="a smaller folder and fewer repeats (about a minute)")
    ap.add_argument("--out", type=Path, default=None, help="JSON to merge the results into (reports/bench.json)")
    ap.add_argument("--file-sr", type=int, default=44100, help="sample rate of the generated files (44100)")
    ap.add_argument("--parts", default="cli,add", help="comma list of cli (index and start-up) and add")
    args = ap.parse_args(argv)
    out = args.out or reports_dir() / "bench.json"
    cli = measure(args.quick, args.file_sr, tuple(p.strip() for p in args.parts.split(",") if p.strip()))
    merge_into(out, cli)
    print(table(cli))
    log(f"done in {cli['wall_s']:.0f} s: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
