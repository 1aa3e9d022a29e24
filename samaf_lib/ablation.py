"""The SAMAF ablation (docs/samaf.md, "The ablation"): which part of the model and of the loss earns its keep.

A *variant* is a named set of overrides of the study's model and loss settings. The grid is

* bits {128, 256} x paper terms {``mse``, ``mse+hash``, ``mse+hash+entropy``} x our additions (per-window CMN and
  the balance term) on or off, all in the working form of the loss;
* ``literal-<bits>``: the paper as first read (literal form, weights 0.1 / 0.01 / 0.1, no CMN);
* ``random-<bits>``: no training at all, the sign of a seeded Gaussian projection of the same standardised
  (mean-normalised) MFCC window, through the same search and scoring. A learned hash that does not beat it has
  learned nothing useful for identification.

Profiles: ``default`` (what ``dvc repro`` runs beside the study's model: the two references at 128 bits) and
``full`` (everything above, ``make repro-full``).
"""

from __future__ import annotations

import math

import numpy as np
import torch

from .model import SAMAF

#: Our additions, switched together in the grid: (model.cmn, loss.balance_weight) when on.
OURS_ON = {"cmn": True, "balance_weight": 0.1}
OURS_OFF = {"cmn": False, "balance_weight": 0.0}
#: The literal reading's weights (the first version of the study).
LITERAL = {"form": "literal", "hash_weight": 0.1, "entropy_weight": 0.01, "balance_weight": 0.1, "cmn": False}
PROFILES = ("default", "full")


def variant_name(bits: int, loss_terms: str, ours: bool) -> str:
    """``"128-mse+hash+entropy"`` with our additions, ``"128-mse+hash+entropy-plain"`` without."""
    return f"{bits}-{loss_terms}" + ("" if ours else "-plain")


def variants(profile: str) -> dict[str, dict]:
    """The variants of a profile: name -> overrides.

    Each value holds ``kind`` (``"train"`` or ``"random"``), ``bits`` and, for trained ones, the settings that
    differ from the study's defaults (``loss_terms``, ``form``, ``cmn``, ``hash_weight``, ``entropy_weight``,
    ``balance_weight``); unset keys take the study's values.

    Raises
    ------
    ValueError
        An unknown profile.
    """
    if profile not in PROFILES:
        raise ValueError(f"ablation.profile must be one of {', '.join(PROFILES)}; got {profile!r}")
    out: dict[str, dict] = {}
    bits_list = (128,) if profile == "default" else (128, 256)
    if profile == "full":
        for bits in bits_list:
            for terms in ("mse", "mse+hash", "mse+hash+entropy"):
                for ours in (True, False):
                    out[variant_name(bits, terms, ours)] = {"kind": "train", "bits": bits, "loss_terms": terms,
                                                            "form": "working", **(OURS_ON if ours else OURS_OFF)}
    for bits in bits_list:
        out[f"literal-{bits}"] = {"kind": "train", "bits": bits, "loss_terms": "mse+hash+entropy", **LITERAL}
        out[f"random-{bits}"] = {"kind": "random", "bits": bits, "cmn": True}
    return out


class RandomProjection(SAMAF):
    """An untrained hash with SAMAF's interface: ``z = tanh(x_flat @ P / sqrt(d))`` with a seeded Gaussian ``P``.

    ``x_flat`` is the standardised (and, with ``cmn``, mean-normalised) 1-s MFCC window flattened to
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
        Window shape (13, 100).
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
                    db_hop_s: float, query_hop_s: float, k: int, verify: int, target_fpr: float) -> dict:
    """One variant's row of the ablation table, measured exactly as the study measures SAMAF.

    Validation top-1 (:func:`samaf_lib.validation.identification_score`), then the test queries through
    :class:`samaf_lib.systems.samaf.SAMAFSystem` at thresholds per query length chosen on the calibration set,
    with the study's main negatives (speakers outside the database, when the corpus has them).

    Returns
    -------
    dict
        ``variant, val_top1, top1, fpr, f1, top1_raw`` and ``top1_<L>s`` per query length.
    """
    from . import identification as idn
    from . import protocol, validation
    from .systems.samaf import SAMAFSystem

    val = validation.identification_score(model, vset, db_hop_s=db_hop_s, query_hop_s=query_hop_s)
    fp = SAMAFSystem(model=model, bits=model.bits, db_hop_s=db_hop_s, query_hop_s=query_hop_s, k=k, verify=verify,
                     min_score=0.0)
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
