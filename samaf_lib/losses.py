"""SAMAF's loss terms (STUDY §2).

The paper names three terms: Mean Square Error (reconstruction), a Hash Loss ("minimizing the distance between
similar hashes and encouraging clustering") and a Bitwise Entropy Loss ("minimizing the variation inside the
clusters"). The formulas below are our reading of those phrases. A fourth term, the batch bit-balance loss, is ours,
not the paper's: it guards against the collapse of every code to one constant (STUDY §2, "Collapse"). A fifth,
the quantisation loss, is also ours and off by default: it counters the shrinking of z towards 0.

Notation: a batch holds N hash vectors ``z`` in ``(-1, 1)^B`` grouped into clusters ("similar sets": one clean 1-s
segment and distorted copies of it) by ``cluster_ids``; ``C`` is the number of clusters in the batch and ``m_c`` the
mean of the members of cluster ``c``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

#: p is clamped to [EPS, 1 - EPS] inside the entropy so that log and its gradient stay finite.
ENTROPY_EPS = 1e-6

#: The ``loss_terms`` choices (the ablation of STUDY §2).
LOSS_TERMS = ("mse", "mse+hash", "mse+hash+entropy")


def reconstruction_loss(recon: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean square error ``mean((recon - target)^2)`` over every element.

    Parameters
    ----------
    recon, target : torch.Tensor, float32, shape (N, frames, n_mfcc)

    Returns
    -------
    torch.Tensor, scalar
    """
    if recon.shape != target.shape:
        raise ValueError(f"reconstruction {tuple(recon.shape)} and target {tuple(target.shape)} differ in shape")
    return F.mse_loss(recon, target)


def _membership(cluster_ids: torch.Tensor, n: int, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """Row-normalised one-hot matrix ``A`` (C, N) with ``A @ z`` = the cluster means."""
    ids = torch.as_tensor(cluster_ids, device=device).reshape(-1)
    if ids.numel() != n:
        raise ValueError(f"cluster_ids has {ids.numel()} entries for {n} hash vectors")
    _, inverse = torch.unique(ids, return_inverse=True)
    onehot = F.one_hot(inverse, num_classes=int(inverse.max()) + 1).T.to(dtype)
    return onehot / onehot.sum(dim=1, keepdim=True)


def cluster_means(z: torch.Tensor, cluster_ids: torch.Tensor) -> torch.Tensor:
    """Mean of each cluster's members: ``(C, B)``, clusters in increasing id order."""
    return _membership(cluster_ids, z.shape[0], z.device, z.dtype) @ z


def hash_loss(z: torch.Tensor, cluster_ids: torch.Tensor) -> torch.Tensor:
    """Hash loss: mean over members of the squared distance to their cluster mean, divided by B.

    ``L_hash = (1 / N) * sum_i ||z_i - m_{c(i)}||^2 / B``

    Zero when every member of each cluster has the same z. Its scale does not depend on B: for z uniform in
    (-1, 1) and independent members it is about 1/3 * (1 - 1/K) for clusters of K members.

    Parameters
    ----------
    z : torch.Tensor, float32, shape (N, B)
    cluster_ids : torch.Tensor, int, shape (N,)
        Any integer labels; equal labels are one cluster.

    Returns
    -------
    torch.Tensor, scalar
    """
    means = cluster_means(z, cluster_ids)
    _, inverse = torch.unique(torch.as_tensor(cluster_ids, device=z.device).reshape(-1), return_inverse=True)
    return ((z - means[inverse]) ** 2).sum(dim=1).mean() / z.shape[1]


def bitwise_entropy_loss(z: torch.Tensor, cluster_ids: torch.Tensor) -> torch.Tensor:
    """Bitwise entropy loss: mean over clusters and bits of the binary entropy of the cluster's bit probability.

    ``p_cb = mean_{i in c} (z_ib + 1) / 2``,  ``H(p) = -p ln p - (1 - p) ln (1 - p)`` (nats),
    ``L_ent = mean_{c, b} H(clamp(p_cb, eps, 1 - eps))`` with ``eps = 1e-6``.

    About 0 when the members of each cluster agree on every bit with saturated z (all near +1 or all near -1);
    ``ln 2`` when each cluster is split half +1, half -1 on every bit (and when z = 0). The clamp keeps the loss and
    its gradient finite at z = +-1 exactly.

    Parameters
    ----------
    z : torch.Tensor, float32, shape (N, B)
    cluster_ids : torch.Tensor, int, shape (N,)

    Returns
    -------
    torch.Tensor, scalar, in [0, ln 2]
    """
    p = cluster_means((z + 1.0) / 2.0, cluster_ids).clamp(ENTROPY_EPS, 1.0 - ENTROPY_EPS)
    h = -(p * torch.log(p) + (1.0 - p) * torch.log1p(-p))
    return h.mean()


def bit_balance_loss(z: torch.Tensor) -> torch.Tensor:
    """Batch bit-balance loss (ours, not the paper's): the squared batch mean of each bit, averaged over bits.

    ``L_bal = (1 / B) * sum_b (mean_i z_ib)^2``

    Zero when every bit is +1 for half of the batch and -1 for the other half (balanced codes); 1 when a bit is the
    same saturated value for the whole batch (collapse).

    Parameters
    ----------
    z : torch.Tensor, float32, shape (N, B)

    Returns
    -------
    torch.Tensor, scalar, in [0, 1]
    """
    return (z.mean(dim=0) ** 2).mean()


def quantisation_loss(z: torch.Tensor) -> torch.Tensor:
    """Quantisation loss (ours, not the paper's; off by default): mean squared gap between |z| and 1.

    ``L_q = mean_{i, b} (1 - |z_ib|)^2``

    Zero when every activation is saturated at +-1; 1 when z = 0. It counters the shrinking of z towards 0 that
    lowers the hash and balance losses without making the bits agree (a bit with |z| near 0 flips under small
    distortions). Its gradient is non-zero at z = 0 (unlike the bitwise entropy's at p = 1/2).

    Parameters
    ----------
    z : torch.Tensor, float32, shape (N, B)

    Returns
    -------
    torch.Tensor, scalar, in [0, 1]
    """
    return ((1.0 - z.abs()) ** 2).mean()


def parse_loss_terms(loss_terms: str) -> tuple[bool, bool]:
    """``(use_hash, use_entropy)`` for one of :data:`LOSS_TERMS`; anything else raises ``ValueError``."""
    if loss_terms not in LOSS_TERMS:
        raise ValueError(f"loss_terms must be one of {', '.join(LOSS_TERMS)}; got {loss_terms!r}")
    terms = set(loss_terms.split("+"))
    return "hash" in terms, "entropy" in terms


def total_loss(recon: torch.Tensor, target: torch.Tensor, z: torch.Tensor, cluster_ids: torch.Tensor,
               hash_weight: float = 0.1, entropy_weight: float = 0.01, balance_weight: float = 0.1,
               ramp: float = 1.0, loss_terms: str = "mse+hash+entropy",
               quant_weight: float = 0.0) -> tuple[torch.Tensor, dict]:
    """The training objective and its terms.

    ``L = L_mse + ramp * (w_hash * L_hash + w_ent * L_ent + w_bal * L_bal + w_q * L_q)``

    where a term absent from ``loss_terms`` has weight 0 (``L_bal`` and ``L_q`` are ours and controlled by their
    weights alone; set ``balance_weight=0`` and ``quant_weight=0`` for the paper's terms only). ``ramp`` in [0, 1] fades the cluster terms in after the
    reconstruction warm-up. Every term is computed (and returned) even when its weight is 0, for monitoring.

    Parameters
    ----------
    recon, target : torch.Tensor, shape (N, frames, n_mfcc)
    z : torch.Tensor, shape (N, B)
    cluster_ids : torch.Tensor, int, shape (N,)
    hash_weight, entropy_weight, balance_weight, quant_weight : float
        Non-negative weights (defaults 0.1, 0.01, 0.1, 0).
    ramp : float
        Multiplier of the cluster terms, in [0, 1].
    loss_terms : str
        ``"mse"``, ``"mse+hash"`` or ``"mse+hash+entropy"``.

    Returns
    -------
    total : torch.Tensor, scalar (with gradient)
    terms : dict of str -> torch.Tensor
        Detached scalars ``mse``, ``hash``, ``entropy``, ``balance``, ``quant`` and ``total``.
    """
    for name, w in (("hash_weight", hash_weight), ("entropy_weight", entropy_weight),
                    ("balance_weight", balance_weight), ("quant_weight", quant_weight)):
        if not (isinstance(w, (int, float)) and math.isfinite(w) and w >= 0):
            raise ValueError(f"{name} must be a finite number >= 0, got {w!r}")
    if not (isinstance(ramp, (int, float)) and 0.0 <= ramp <= 1.0):
        raise ValueError(f"ramp must be in [0, 1], got {ramp!r}")
    use_hash, use_entropy = parse_loss_terms(loss_terms)
    mse = reconstruction_loss(recon, target)
    lh = hash_loss(z, cluster_ids)
    le = bitwise_entropy_loss(z, cluster_ids)
    lb = bit_balance_loss(z)
    lq = quantisation_loss(z)
    cluster = (hash_weight * lh if use_hash else 0.0) + (entropy_weight * le if use_entropy else 0.0)
    total = mse + ramp * (cluster + balance_weight * lb + quant_weight * lq)
    terms = {"mse": mse.detach(), "hash": lh.detach(), "entropy": le.detach(), "balance": lb.detach(),
             "quant": lq.detach(), "total": total.detach()}
    return total, terms
