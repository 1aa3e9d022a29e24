"""What one epoch of SAMAF's training costs on this machine, part by part (part of ``make bench``).

The training notebook prints no timings (its output must be the same on every machine); this benchmark measures
them. On the pipeline's own data (``data/clusters``, ``data/validation`` and the corpus, as ``make repro`` leaves
them) and with the study's settings from ``params.yaml`` (model, loss and ``train`` sections, ``hash.db_hop_s``,
``hash.query_hop_s``), it builds the study's model as the training stage does and times, for ``--epochs``
epochs, the three parts of an epoch of ``samaf_lib.training.train``:

* ``train``: one pass over the training clusters (``train.members`` drawn per cluster, forward, loss, backward,
  Adam step), on ``train.threads`` torch threads;
* ``evaluate``: the loss terms and code statistics on the validation clusters;
* ``validate``: the validation identification task (hash the validation references at ``hash.db_hop_s``, answer
  its queries, threshold at 5 % false positives): what picks the best epoch and stops training.

Wall and CPU seconds per part and epoch go to ``reports/bench_train.json`` (timings: not committed) and a table
to stdout. Run it under the pipeline's numeric pins, as ``make bench`` does, to time what ``make repro`` runs:

    python -m samaf_lib.numerics python benchmarks/train_epoch.py --epochs 2
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _timed(fn, *args):
    t0, c0 = time.perf_counter(), time.process_time()
    out = fn(*args)
    return out, time.perf_counter() - t0, time.process_time() - c0


def measure(epochs: int, bits: int | None = None) -> dict:
    import numpy as np
    import torch
    import yaml

    from samaf_lib import validation
    from samaf_lib.clusters import load_clusters
    from samaf_lib.corpus import read_metadata
    from samaf_lib.encoder_input import window_frames, window_seconds
    from samaf_lib.features import Standardiser
    from samaf_lib.model import SAMAF
    from samaf_lib.training import TrainConfig, _train_epoch, crop_windows, evaluate

    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    tr, lo, mo, ha = params["train"], params["loss"], params["model"], params["hash"]
    data = ROOT / "data"
    missing = [p for p in (data / "clusters/train.npz", data / "clusters/val.npz", data / "corpus/metadata.csv")
               if not p.is_file()]
    if missing:
        raise SystemExit(f"train_epoch: {', '.join(map(str, missing))} missing; run `make repro` (or `dvc repro "
                         "data`) first")
    cfg = TrainConfig(epochs=epochs, batch_clusters=tr["batch_clusters"], members=tr["members"], lr=tr["lr"],
                      clip=tr["clip"], warmup_epochs=0, ramp_epochs=tr["ramp_epochs"], patience=0,
                      hash_weight=lo["hash_weight"], entropy_weight=lo["entropy_weight"],
                      balance_weight=lo["balance_weight"], loss_terms=ha["loss"], form=lo["form"],
                      temperature=lo["temperature"], seed=params["seed"], device=tr["device"],
                      threads=tr["threads"], select="val_top1")
    frames = window_frames(mo.get("window_s", 1.0))  # the study's window, cut from the bank's 1-s windows
    train_X = crop_windows(load_clusters(data / "clusters/train.npz"), frames)
    val_X = crop_windows(load_clusters(data / "clusters/val.npz"), frames)
    stats = Standardiser.fit(train_X[:, 0], cmn=True) if mo["cmn"] else Standardiser.load(
        data / "features/stats.npz")
    meta = read_metadata(data / "corpus/metadata.csv")
    vset = validation.load_validation_set(meta, data / "corpus", data / validation.VALIDATION_DIR)
    torch.manual_seed(params["seed"])
    torch.set_num_threads(int(tr["threads"]))
    bits = int(bits or ha["bits"])
    model = SAMAF(bits=bits, hidden=mo["hidden"] or None, layers=mo["layers"],
                  reverse_target=bool(mo["reverse_target"]), cmn=bool(mo["cmn"]), frames=frames)
    model.set_standardiser(stats.mean, stats.std)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    gen = torch.Generator().manual_seed(cfg.seed)
    Xt = model.standardise(torch.as_tensor(train_X))
    Xv = model.standardise(torch.as_tensor(val_X))
    rows = []
    for epoch in range(epochs):
        _, tw, tc = _timed(_train_epoch, model, Xt, cfg, cfg.ramp(epoch), opt, gen)
        with torch.no_grad():
            _, ew, ec = _timed(evaluate, model, Xv, cfg)
        model.eval()
        _, vw, vc = _timed(lambda m: validation.identification_score(m, vset, db_hop_s=ha["db_hop_s"],
                                                                      query_hop_s=ha["query_hop_s"]), model)
        rows.append({"epoch": epoch + 1, "train_s": tw, "train_cpu_s": tc, "evaluate_s": ew, "evaluate_cpu_s": ec,
                     "validate_s": vw, "validate_cpu_s": vc, "total_s": tw + ew + vw})
        print(f"epoch {epoch + 1}: train {tw:.1f} s, evaluate {ew:.1f} s, validate {vw:.1f} s "
              f"(total {tw + ew + vw:.1f} s)", flush=True)
    windows = train_X.shape[0] * min(cfg.members, train_X.shape[1])
    return {"settings": {"epochs": epochs, "bits": bits, "threads": int(tr["threads"]),
                         "batch_clusters": cfg.batch_clusters, "window_s": window_seconds(frames),
                         "members": cfg.members, "train_clusters": int(train_X.shape[0]),
                         "val_clusters": int(val_X.shape[0]), "windows_per_epoch": int(windows),
                         "validation_references": len(vset.refs), "validation_queries": len(vset.queries),
                         "db_hop_s": ha["db_hop_s"], "cpu_count": os.cpu_count(),
                         "pins": os.environ.get("NPY_DISABLE_CPU_FEATURES") is not None,
                         "torch_cpu_capability": torch.backends.cpu.get_cpu_capability()},
            "load_average": list(os.getloadavg()), "epochs": rows,
            "median": {k: float(np.median([r[k] for r in rows])) for k in rows[0] if k != "epoch"}}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--epochs", type=int, default=2, help="epochs to time (2)")
    ap.add_argument("--bits", type=int, default=None,
                    help="hash size (default hash.bits); e.g. 256 for what an epoch of the grid's 256-bit half costs")
    ap.add_argument("--out", type=Path, default=ROOT / "reports" / "bench_train.json")
    args = ap.parse_args(argv)
    if args.epochs < 1:
        ap.error(f"--epochs must be at least 1, got {args.epochs}")
    if args.bits is not None and (args.bits <= 0 or args.bits % 8):
        ap.error(f"--bits must be a positive multiple of 8, got {args.bits}")
    sys.path.insert(0, str(ROOT))
    res = measure(args.epochs, args.bits)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(res, indent=1) + "\n")
    m = res["median"]
    print(f"median epoch at {res['settings']['bits']} bits: {m['total_s']:.1f} s = train {m['train_s']:.1f} + "
          f"evaluate {m['evaluate_s']:.1f} + validate {m['validate_s']:.1f} s "
          f"({res['settings']['windows_per_epoch']:,} windows): {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
