"""Digests of the training clusters, per distortion condition, to find what differs when a rerun on another machine
gives ``data/clusters`` another checksum than ``dvc.lock`` (README, "Reproducing the study").

The corpus, the queries and the feature statistics reproduce across machines; a difference in the clusters then
comes from one distortion's floating-point path (the queries, written as 16-bit audio, hide differences below
half a quantisation step; the clusters keep float32 MFCCs of the distorted audio). Comparing these digests with
the committed ones (``docs/cluster-digests.txt``) names the conditions that differ.

    python -m samaf_lib.digests data/clusters/train.npz > mine.txt && diff docs/cluster-digests.txt mine.txt
"""

from __future__ import annotations

import argparse
import hashlib
from collections import defaultdict

import numpy as np


def digests(path: str) -> list[str]:
    """Lines ``CONDITION COUNT MD5``: the MD5 of the MFCCs of every member distorted by that condition (in file
    order), after the whole array's and the clean members' lines."""
    with np.load(path, allow_pickle=False) as z:
        X, recipes = z["X"], z["recipe"]
    lines = [f"all {X.shape[0] * X.shape[1]} {hashlib.md5(X.tobytes()).hexdigest()}",
             f"clean {X.shape[0]} {hashlib.md5(np.ascontiguousarray(X[:, 0]).tobytes()).hexdigest()}"]
    members: dict[str, list[bytes]] = defaultdict(list)
    for i, recipe in enumerate(recipes):
        for k, part in enumerate(str(recipe).split(";")):
            name, level = part.split(":")[:2]
            members[f"{name}:{level}"].append(X[i, k + 1].tobytes())
    lines += [f"{c} {len(m)} {hashlib.md5(b''.join(m)).hexdigest()}" for c, m in sorted(members.items())]
    return lines


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("clusters", help="a clusters file (data/clusters/train.npz)")
    print("\n".join(digests(ap.parse_args().clusters)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
