"""The SAMAF ablation (docs/samaf.md, "The ablation"): which part of the model and of the loss earns its keep.

A *variant* is a named set of overrides of the study's model and loss settings. The grid is, at each encoder
window of ``ablation.full_windows`` (1 s, the first design's window, and 0.5 s; a window other than 1 s ends the
variant's name, ``128-mse-0.5s``),

* bits {128, 256} x paper terms {``mse``, ``mse+hash``, ``mse+hash+entropy``} x our additions (per-window CMN and
  the balance term) on or off, all in the working form of the loss;
* ``literal-<bits>``: the paper as first read (literal form, weights 0.1 / 0.01 / 0.1, no CMN);
* ``random-<bits>``: no training at all, the sign of a seeded Gaussian projection of the same standardised
  (mean-normalised) MFCC window, through the same search and scoring. A learned hash that does not beat it has
  learned nothing useful for identification.

Every trained variant gets the grid's budget (``ablation.epochs``, with the study's early stopping). The study's
model, ``study-<bits>-<loss>`` (:func:`samaf_lib.paths.study_variant`), is the train stage's checkpoint, trained to
its plateau within ``train.epochs``, and is scored on the hash stage's answers to the test queries
(:func:`study_results`).

Profiles: ``default`` (what ``dvc repro`` runs: the study's model beside the random projection at the study's bits
and window) and ``full`` (the grid above at the hash sizes of ``ablation.full_bits`` and the windows of
``ablation.full_windows``, with ``make repro-full``). The full grid is
not a DVC stage: it runs for hours on two cores, so ``python -m samaf_lib.ablation full`` (what ``make repro-full``
calls) executes ``notebooks/07_ablation.ipynb`` with the settings of ``params.yaml``, exactly as the ``ablation``
stage does, and writes ``reports/ablation_full/`` (committed) and ``models/ablation_full/``; the ``report`` stage
reads that table.
"""

from __future__ import annotations

import json
import math
import re
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from .model import SAMAF
from .paths import ABLATION_FULL_TAG, study_checkpoint, study_variant, window_suffix

#: Our additions, switched together in the grid: (model.cmn, loss.balance_weight) when on.
OURS_ON = {"cmn": True, "balance_weight": 0.1}
OURS_OFF = {"cmn": False, "balance_weight": 0.0}
#: The literal reading's weights (the first version of the study).
LITERAL = {"form": "literal", "hash_weight": 0.1, "entropy_weight": 0.01, "balance_weight": 0.1, "cmn": False}
PROFILES = ("default", "full")


def variant_name(bits: int, loss_terms: str, ours: bool, window_s: float = 1.0) -> str:
    """``"128-mse+hash+entropy"`` with our additions, ``"128-mse+hash+entropy-plain"`` without; a window other
    than 1 s is added at the end (``"128-mse-0.5s"``)."""
    return f"{bits}-{loss_terms}" + ("" if ours else "-plain") + window_suffix(window_s)


def epochs_run(model_dir: str | Path) -> int | None:
    """How many epochs the training in ``model_dir`` ran (its ``train.json``), or None when it is not there."""
    path = Path(model_dir) / "train.json"
    return int(json.loads(path.read_text())["epochs_run"]) if path.is_file() else None


def parse_bits(text: str | int | Sequence[int | str], key: str = "ablation.full_bits") -> tuple[int, ...]:
    """``"128,256"`` (or ``[128, 256]``) -> ``(128, 256)``: the hash sizes of the full grid.

    Raises
    ------
    ValueError
        Naming ``key``: an empty list, or a size that is not a positive multiple of 8.
    """
    items = text if isinstance(text, (list, tuple)) else str(text).split(",")
    parts = [str(p).strip() for p in items if str(p).strip()]
    out = []
    for p in parts:
        if not p.isdigit() or int(p) <= 0 or int(p) % 8:
            raise ValueError(f"{key}: {p!r} is not a hash size; give positive multiples of 8 separated by commas, "
                             "e.g. \"128,256\"")
        out.append(int(p))
    if not out:
        raise ValueError(f"{key} is empty; give hash sizes separated by commas, e.g. \"128,256\"")
    return tuple(dict.fromkeys(out))


def parse_windows(text: str | float | Sequence[float | str], key: str = "ablation.full_windows") -> tuple[float, ...]:
    """``"1,0.5"`` (or ``[1.0, 0.5]``) -> ``(1.0, 0.5)``: the encoder windows (s) of the full grid.

    Raises
    ------
    ValueError
        Naming ``key``: an empty list, or a window that is not a whole number of 10-ms frames from 0.1 to 1 s.
    """
    from .encoder_input import window_frames

    items = text if isinstance(text, (list, tuple)) else str(text).split(",")
    out = []
    for p in [str(p).strip() for p in items if str(p).strip()]:
        try:
            w = float(p)
        except ValueError:
            raise ValueError(f"{key}: {p!r} is not a window length; give seconds separated by commas, e.g. "
                             "\"1,0.5\"") from None
        window_frames(w, key=key)
        if w > 1.0:
            raise ValueError(f"{key}: {p!r} is longer than the cluster bank's 1-s windows")
        out.append(w)
    if not out:
        raise ValueError(f"{key} is empty; give window lengths in seconds separated by commas, e.g. \"1,0.5\"")
    return tuple(dict.fromkeys(out))


def variants(profile: str, bits: tuple[int, ...] | None = None, study_bits: int = 128,
             windows: tuple[float, ...] | None = None, study_window: float = 1.0) -> dict[str, dict]:
    """The variants of a profile beside the study's model: name -> overrides.

    ``default`` is the random projection at ``study_bits`` and the study's window ``study_window``; ``full`` is,
    for each window in ``windows`` (default 1 s) and each size in ``bits`` (default 128 and 256), the
    working-form grid, the literal reading and the random projection.

    Each value holds ``kind`` (``"train"`` or ``"random"``), ``bits``, ``window_s`` and, for trained ones, the
    settings that differ from the study's defaults (``loss_terms``, ``form``, ``cmn``, ``hash_weight``,
    ``entropy_weight``, ``balance_weight``); unset keys take the study's values.

    Raises
    ------
    ValueError
        An unknown profile (naming ``ablation.profile``), a bad hash size or window.
    """
    if profile not in PROFILES:
        raise ValueError(f"ablation.profile must be one of {', '.join(PROFILES)}; got {profile!r}")
    if profile == "default":
        w = parse_windows([study_window], key="model.window_s")[0]
        return {f"random-{study_bits}{window_suffix(w)}": {"kind": "random", "bits": int(study_bits), "cmn": True,
                                                           "window_s": w}}
    out: dict[str, dict] = {}
    for w in parse_windows(windows if windows else "1"):
        sfx = window_suffix(w)
        for b in parse_bits(bits if bits else "128,256"):
            for terms in ("mse", "mse+hash", "mse+hash+entropy"):
                for ours in (True, False):
                    out[variant_name(b, terms, ours, w)] = {"kind": "train", "bits": b, "loss_terms": terms,
                                                            "form": "working", **(OURS_ON if ours else OURS_OFF),
                                                            "window_s": w}
            out[f"literal-{b}{sfx}"] = {"kind": "train", "bits": b, "loss_terms": "mse+hash+entropy", **LITERAL,
                                        "window_s": w}
            out[f"random-{b}{sfx}"] = {"kind": "random", "bits": b, "cmn": True, "window_s": w}
    return out


def select_variants(grid: dict[str, dict], only: str | Sequence[str] = "") -> dict[str, dict]:
    """The variants of ``grid`` named in ``only`` (a comma list or a sequence; empty: all of them), in grid order.

    Raises
    ------
    ValueError
        A name that is not in the grid, listing the names it has.
    """
    names = [n.strip() for n in (only.split(",") if isinstance(only, str) else only) if n.strip()]
    unknown = [n for n in names if n not in grid]
    if unknown:
        raise ValueError(f"--only: {', '.join(unknown)} not in the grid; its variants are {', '.join(grid)}")
    return {n: v for n, v in grid.items() if not names or n in names}


def variant_settings(study: dict, variant: dict) -> dict:
    """The study's settings (``bits``, ``loss_terms``, ``form``, ``cmn`` and the loss weights) with a variant's
    overrides (its entry of :func:`variants`, ``kind`` left out)."""
    return {**study, **{k: v for k, v in variant.items() if k != "kind"}}


def uses_study_model(study: dict, variant: dict, epochs: int, study_epochs: int) -> bool:
    """Whether a variant is the train stage's model: the study's own row (``kind`` ``"study"``), or the grid's
    variant with every one of the study's settings when the grid's budget (``ablation.epochs``) equals the study's
    (``train.epochs``). Such a variant loads the study's checkpoint instead of training, and reuses the hash
    stage's answers (:func:`study_results`)."""
    if variant["kind"] == "study":
        return True
    s = variant_settings(study, variant)
    return variant["kind"] == "train" and all(s.get(k) == v for k, v in study.items()) and epochs == study_epochs


def random_model(bits: int, cmn: bool, seed: int, train_X: np.ndarray) -> RandomProjection:
    """The random-projection reference at ``bits``: standardised on the clean members of the training clusters
    (``train_X[:, 0]``, raw MFCC windows, whose frames set its window), mean-normalised per window when ``cmn``."""
    from .features import Standardiser

    stats = Standardiser.fit(train_X[:, 0], cmn=bool(cmn))
    m = RandomProjection(bits=int(bits), seed=int(seed), cmn=bool(cmn), frames=int(train_X.shape[2]))
    m.set_standardiser(stats.mean, stats.std)
    return m


def merge_tables(old: pd.DataFrame, new: pd.DataFrame, key: str = "variant",
                 order: Sequence[str] | None = None) -> pd.DataFrame:
    """``new``'s rows, then ``old``'s rows of variants that ``new`` does not have.

    Used when a run measured part of the grid: the rows it did not measure are kept from the earlier run. With
    ``order`` (variant names), rows follow it, names it lacks last; otherwise they are ordered by bits as first
    seen. Rows of one variant (a curve's epochs) keep their order.
    """
    kept = old[~old[key].isin(set(new[key]))]
    out = pd.concat([new, kept], ignore_index=True) if len(kept) else new.reset_index(drop=True)
    # stable sorts keep the order rows were first seen in within a variant or a hash size
    if order is not None:
        rank = {name: i for i, name in enumerate(dict.fromkeys(order))}  # a repeated name keeps its first place
        return out.sort_values(key, key=lambda col: col.map(lambda v: rank.get(v, len(rank))), kind="stable",
                               ignore_index=True)
    return out.sort_values("bits", kind="stable", ignore_index=True) if "bits" in out.columns else out


def table_order(study: str, bits: Sequence[int], windows: Sequence[float] = (1.0,)) -> list[str]:
    """The order of the full grid's table: the study's model, then the grid of :func:`variants` at ``bits`` and
    ``windows`` (the longer windows first)."""
    return [study] + list(variants("full", tuple(sorted(set(int(b) for b in bits))),
                                   windows=tuple(sorted(set(float(w) for w in windows), reverse=True))))


class RandomProjection(SAMAF):
    """An untrained hash with SAMAF's interface: ``z = tanh(x_flat @ P / sqrt(d))`` with a seeded Gaussian ``P``.

    ``x_flat`` is the standardised (and, with ``cmn``, mean-normalised) MFCC window flattened to
    ``d = frames x n_mfcc`` values; the bits are the signs of a random projection (locality-sensitive hashing of the
    cosine). The LSTMs of the parent class are kept tiny and unused, so a
    :class:`~samaf_lib.systems.samaf.SAMAFSystem` can use this model as it uses a trained one.

    Parameters
    ----------
    bits : int
        Hash size.
    seed : int
        Seeds ``P``.
    cmn : bool
        Per-window cepstral mean normalisation before standardising.
    n_mfcc, frames : int
        Window shape (13, 100 for 1 s).
    """

    def __init__(self, bits: int = 128, seed: int = 0, cmn: bool = True, n_mfcc: int = 13,
                 frames: int = 100) -> None:
        super().__init__(bits=bits, hidden=1, layers=1, n_mfcc=n_mfcc, frames=frames, cmn=cmn)
        gen = torch.Generator().manual_seed(int(seed))
        self.register_buffer("projection", torch.randn(frames * n_mfcc, bits, generator=gen))

    def encode(self, x: torch.Tensor | np.ndarray) -> torch.Tensor:
        """``tanh`` of the scaled random projection of each flattened window, shape ``(batch, bits)``."""
        x = self.check_input(x)
        d = self.projection.shape[0]
        return torch.tanh(x.reshape(x.shape[0], -1) @ self.projection / math.sqrt(d))


def measure_variant(name: str, model: SAMAF, meta, manifest, corpus_dir, query_dir, sr: int, vset,
                    db_hop_s: float, query_hop_s: float, k: int, verify: int, target_fpr: float,
                    results: pd.DataFrame | None = None) -> dict:
    """One variant's row of the ablation table, measured exactly as the study measures SAMAF.

    Validation top-1 (:func:`samaf_lib.validation.identification_score`), then the test queries through
    :class:`samaf_lib.systems.samaf.SAMAFSystem` at thresholds per query length chosen on the calibration set,
    with the study's main negatives (speakers outside the database, when the corpus has them).

    ``results`` are the model's answers to ``manifest`` when they exist already (the ``hash`` stage's
    ``reports/results/samaf.csv`` for the study's model): then only the validation task is run here. Otherwise the
    references are indexed and the queries answered here.

    Returns
    -------
    dict
        ``variant, val_top1, top1, fpr, f1, top1_raw`` and ``top1_<L>s`` per query length.
    """
    from . import identification as idn
    from . import protocol, validation
    from .systems.samaf import SAMAFSystem

    val = validation.identification_score(model, vset, db_hop_s=db_hop_s, query_hop_s=query_hop_s)
    if results is None:
        fp = SAMAFSystem(model=model, bits=model.bits, db_hop_s=db_hop_s, query_hop_s=query_hop_s, k=k,
                         verify=verify, min_score=0.0)
        protocol.index_references(fp, meta, corpus_dir, sr, progress=False)
        results = protocol.run_queries(fp, manifest, query_dir, sr, progress=False, min_score=0.0)
    joined = idn.join_results(manifest, results, name)
    neg = "other_speaker" if (joined["kind"] == "other_speaker").any() else None
    thr = idn.choose_thresholds(joined[joined["set"] == "calib"], target_fpr=target_fpr, negatives=neg)
    overall = idn.metrics_table(joined, thr, by=("system",), ci=False, negatives=neg).iloc[0]
    row = {"variant": name, "val_top1": val["val_top1"]}
    row.update({m: float(overall[m]) for m in ("top1", "fpr", "f1", "top1_raw")})
    for _, r in idn.metrics_table(joined, thr, by=("system", "length_s"), ci=False, negatives=neg).iterrows():
        row[f"top1_{r['length_s']:g}s"] = float(r["top1"])
    return row


def study_results(root: str | Path, bits: int, loss_terms: str, db_hop_s: float, query_hop_s: float, k: int,
                  verify: int) -> pd.DataFrame | None:
    """The ``hash`` stage's answers of the study's model (``reports/results/samaf.csv``) when that stage ran the
    model ``models/samaf-<bits>-<loss_terms>/best.pt`` with these search settings; else ``None`` (measure anew).

    The ablation's row of the study's model then reuses them instead of answering every query a second time.
    """
    from . import protocol

    root = Path(root)
    csv, run = root / "reports/results/samaf.csv", root / "reports/results/samaf.json"
    if not (csv.is_file() and run.is_file()):
        return None
    p = json.loads(run.read_text()).get("params", {})
    want = {"checkpoint": study_checkpoint(bits, loss_terms), "bits": int(bits),
            "db_hop_s": float(db_hop_s), "query_hop_s": float(query_hop_s), "k": int(k), "verify": int(verify)}
    if any(p.get(key) != value for key, value in want.items()):
        return None
    return protocol.read_results(csv)


#: Where the full grid writes, under the project root: ``reports/<TAG>/`` and ``models/<TAG>/``.
FULL_TAG = ABLATION_FULL_TAG
_PARAM = re.compile(r'-p\s+(\w+)\s+("?)(\$\{[\w.]+\}|[^\s"]+)\2')


def _lookup(params: dict, dotted: str):
    value = params
    for part in dotted.split("."):
        if not isinstance(value, dict) or part not in value:
            raise KeyError(f"params.yaml has no {dotted!r}, which dvc.yaml's ablation stage passes")
        value = value[part]
    return value


def _render(value) -> str:
    """A parameter as DVC writes it into a command (booleans lower case)."""
    return str(value).lower() if isinstance(value, bool) else str(value)


def stage_parameters(dvc_yaml: dict, params: dict, stage: str = "ablation") -> dict[str, str]:
    """The notebook parameters a ``dvc.yaml`` stage passes (``-p name value``), with ``${...}`` filled in.

    The full grid takes its settings from here so that it trains and measures every variant exactly as the
    ``ablation`` stage does, whatever ``params.yaml`` says.
    """
    cmd = dvc_yaml["stages"][stage]["cmd"]
    out = {}
    for name, _, value in _PARAM.findall(cmd):
        out[name] = _render(_lookup(params, value[2:-1])) if value.startswith("${") else value
    return out


def run_full(root: Path, bits: str | None = None, only: str = "") -> Path:
    """Run the full grid with the settings of ``root``'s ``params.yaml``; returns ``reports/ablation_full/``.

    ``bits`` (``"128"``, ``"128,256"``) overrides ``ablation.full_bits``; ``only`` (``"256-mse,random-256"``) runs
    just those variants of the grid. The study's model is measured in every run; when it measures the same as in
    the committed table (same model and data), the rows of the variants this run did not measure are kept from that
    table, otherwise the table is replaced. The notebook runs under papermill in a
    process with the numerics of every pipeline stage (:mod:`samaf_lib.numerics`); the executed notebook is cleaned
    of its time stamps and kept beside the table.

    Raises
    ------
    ValueError
        A bad ``ablation.full_bits`` (or ``bits``), naming the key.
    FileNotFoundError
        The pipeline's outputs the grid reads (the study's model, the clusters) are missing: run ``dvc repro`` first.
    subprocess.CalledProcessError
        The notebook failed; ``reports/ablation_full/`` keeps what an earlier complete run wrote.
    """
    import shutil
    import subprocess
    import tempfile

    import yaml

    params = yaml.safe_load((root / "params.yaml").read_text())
    stage = yaml.safe_load((root / "dvc.yaml").read_text())
    full_bits = parse_bits(bits if bits is not None else params.get("ablation", {}).get("full_bits", "128,256"),
                           key="ablation.full_bits" if bits is None else "--bits")
    full_windows = parse_windows(params.get("ablation", {}).get("full_windows", "1"))
    args = stage_parameters(stage, params)
    names = select_variants(variants("full", full_bits, study_bits=int(args["study_bits"]), windows=full_windows),
                            only)
    study = root / "models" / f"samaf-{args['study_bits']}-{args['study_loss']}" / "best.pt"
    for need in (study, root / "data" / "clusters" / "train.npz"):
        if not need.exists():
            raise FileNotFoundError(f"{need.relative_to(root)} is missing: the full ablation reads the pipeline's "
                                    "outputs; run `dvc repro` (or `make repro`) first")
    args.update(profile="full", full_bits=",".join(map(str, full_bits)),
                full_windows=",".join(f"{w:g}" for w in full_windows), tag=FULL_TAG, only=",".join(names))
    dest = root / "reports" / FULL_TAG
    old = {f: pd.read_csv(dest / f) for f in ("ablation.csv", "curves.csv")
           if (dest / f).exists() and (dest / f).stat().st_size}
    work = Path(tempfile.mkdtemp(prefix=".ablation_full-", dir=root / "reports"))
    try:
        executed = work / "07_ablation.ipynb"
        cmd = [sys.executable, "-m", "samaf_lib.numerics", sys.executable, "-m", "papermill",
               "notebooks/07_ablation.ipynb", str(executed), "-k", "python3", "--log-output"]
        for name, value in args.items():
            cmd += ["-p", name, value]
        # the notebook writes reports/<tag>/ as its last step; a failed run leaves the previous table in place
        subprocess.run(cmd, cwd=root, check=True)
        subprocess.run([sys.executable, "-m", "samaf_lib.executed", "clean", str(executed)], cwd=root, check=True)
        shutil.move(str(executed), dest / "07_ablation.ipynb")
        _keep_unmeasured(dest, old, study=study_variant(args["study_bits"], args["study_loss"],
                                                        float(args.get("window_s", 1.0))))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return dest


def _keep_unmeasured(dest: Path, old: dict, study: str) -> None:
    """Put back the rows of ``old`` (file name -> table) that this run did not measure and that the grid still
    defines, if every variant both runs measured measured the same (at least one: the same data and code); the
    merged tables follow :func:`table_order`.

    The study's row is always measured. When its model changed (another window gives it another name), the old
    rows are kept only through a variant both runs measured alike, e.g. ``--only random-128``.
    """
    from .io import write_csv
    from .report import measured_alike

    if "ablation.csv" not in old:
        return
    new = pd.read_csv(dest / "ablation.csv")
    prev = old["ablation.csv"]
    if "window_s" not in prev:  # a table from before the window was a setting: every row had 1-s windows
        prev = prev.assign(window_s=1.0)
    if "window_s" not in new:
        new = new.assign(window_s=1.0)
    shared = sorted(set(prev.variant) & set(new.variant))
    if not shared or not measured_alike(prev, new, shared):
        return  # another model or data set: the earlier rows no longer describe this run
    order = table_order(study, pd.concat([prev["bits"], new["bits"]]), pd.concat([prev["window_s"],
                                                                                   new["window_s"]]))
    keep = set(order)
    prev = prev[prev.variant.isin(keep)]
    write_csv(dest / "ablation.csv", merge_tables(prev, new, order=order))
    if "curves.csv" in old:
        curves = old["curves.csv"]
        write_csv(dest / "curves.csv", merge_tables(curves[curves.variant.isin(keep)],
                                                    pd.read_csv(dest / "curves.csv"), order=order))


def main(argv: list[str] | None = None) -> int:
    """``python -m samaf_lib.ablation full [--bits 128,256]``: the full grid (``make repro-full``)."""
    import argparse

    from .paths import project_root

    ap = argparse.ArgumentParser(prog="python -m samaf_lib.ablation", description=main.__doc__)
    ap.add_argument("profile", choices=["full"], help="the profile to run outside DVC")
    ap.add_argument("--bits", help="hash sizes, e.g. 128,256 (default: ablation.full_bits of params.yaml)")
    ap.add_argument("--only", default="", help="run just these variants of the grid, e.g. 256-mse,random-256 "
                                                "(the other rows of the committed table are kept)")
    a = ap.parse_args(argv)
    try:
        dest = run_full(project_root(), a.bits, a.only)
    except (ValueError, FileNotFoundError, KeyError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {dest}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
