"""SAMAF's loss terms (docs/samaf.md, "The loss").

The paper names three terms: Mean Square Error (reconstruction), a Hash Loss ("minimizing the distance between
similar hashes and encouraging clustering") and a Bitwise Entropy Loss ("minimizing the variation inside the
clusters"). The formulas below are our readings of those phrases, in two *forms*:

``literal`` ("the paper as first read")
    hash loss = squared distance of each member to its cluster mean (:func:`hash_loss`); entropy loss = binary
    entropy of each cluster's mean bit probability (:func:`bitwise_entropy_loss`); balance = squared batch mean
    per bit (:func:`bit_balance_loss`). Measured on a trained model, these barely act: all three fall when ``z``
    shrinks towards 0, and the entropy's gradient vanishes at p = 1/2, where bits are undecided.
``working`` ("the paper as made to work", the default)
    hash loss = a multi-positive NT-Xent over the batch's clusters on the cosine of ``z`` (:func:`contrastive_hash_loss`):
    it pulls the members of a cluster together *and* pushes other seconds away, the "encouraging clustering" part;
    entropy loss = each member's binary cross-entropy of ``(z + 1) / 2`` against its cluster's majority bit, with
    no gradient through the target (:func:`majority_entropy_loss`): it drives undecided bits to the cluster's
    side; balance = the squared batch mean per bit of ``z`` divided by its mean magnitude
    (:func:`scale_free_balance_loss`). None of the three can be lowered by shrinking ``z``: the first and third
    do not depend on its scale and the second falls only as ``|z|`` grows towards 1.

The bit-balance term is ours in both forms, not the paper's: it guards against the collapse of every code to one
constant. The quantisation term (:func:`quantisation_loss`) is also ours, off by default.

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

#: The ``loss_terms`` choices (the ablation).
LOSS_TERMS = ("mse", "mse+hash", "mse+hash+entropy")
#: The readings of the paper's cluster terms (see the module docs).
LOSS_FORMS = ("literal", "working")


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


def _inverse(cluster_ids: torch.Tensor, device: torch.device) -> torch.Tensor:
    _, inverse = torch.unique(torch.as_tensor(cluster_ids, device=device).reshape(-1), return_inverse=True)
    return inverse


def contrastive_hash_loss(z: torch.Tensor, cluster_ids: torch.Tensor, temperature: float = 0.1) -> torch.Tensor:
    """Hash loss, working form: multi-positive NT-Xent on the cosine similarity of ``z``.

    For each member ``i`` with positives ``P(i)`` (the other members of its cluster) and ``s_ij = cos(z_i, z_j)``:

    ``L_i = -(1 / |P(i)|) * sum_{p in P(i)} log( exp(s_ip / t) / sum_{a != i} exp(s_ia / t) )``

    averaged over the members that have at least one positive. It is low when every member is closer to the other
    members of its cluster than to any other second of the batch, and it does not change when ``z`` is scaled.

    Parameters
    ----------
    z : torch.Tensor, float32, shape (N, B)
    cluster_ids : torch.Tensor, int, shape (N,)
    temperature : float
        ``t`` > 0 (0.1).

    Returns
    -------
    torch.Tensor, scalar, >= ln |P| on average (the floor, reached by tight, well separated clusters)
    """
    if not (isinstance(temperature, (int, float)) and temperature > 0):
        raise ValueError(f"temperature must be > 0, got {temperature!r}")
    inverse = _inverse(cluster_ids, z.device)
    n = z.shape[0]
    u = F.normalize(z, dim=1, eps=1e-8)
    logits = (u @ u.T) / float(temperature)
    self_mask = torch.eye(n, dtype=torch.bool, device=z.device)
    logits = logits.masked_fill(self_mask, float("-inf"))
    log_prob = logits - torch.logsumexp(logits, dim=1, keepdim=True)
    pos = (inverse[:, None] == inverse[None, :]) & ~self_mask
    n_pos = pos.sum(dim=1)
    has = n_pos > 0
    if not bool(has.any()):
        return z.sum() * 0.0
    per = -(log_prob.masked_fill(~pos, 0.0).sum(dim=1)[has] / n_pos[has])
    return per.mean()


def majority_entropy_loss(z: torch.Tensor, cluster_ids: torch.Tensor) -> torch.Tensor:
    """Bitwise entropy loss, working form: cross-entropy of each member's bits against its cluster's majority.

    ``t_cb = 1[mean_{i in c} z_ib > 0]`` (no gradient), ``p_ib = (z_ib + 1) / 2`` clamped to [eps, 1 - eps],
    ``L = mean_{i, b} -( t log p + (1 - t) log(1 - p) )`` in nats.

    Its gradient at an undecided bit (``z = 0``) is ``-1`` or ``+1`` (towards the majority), unlike the literal
    form's entropy of the mean, whose gradient vanishes at p = 1/2. It is ``ln 2`` at ``z = 0`` and falls to 0 as
    every member saturates on its cluster's side, so shrinking ``z`` raises it.

    Parameters
    ----------
    z : torch.Tensor, float32, shape (N, B)
    cluster_ids : torch.Tensor, int, shape (N,)

    Returns
    -------
    torch.Tensor, scalar, >= 0
    """
    inverse = _inverse(cluster_ids, z.device)
    with torch.no_grad():
        target = (cluster_means(z, cluster_ids) > 0).to(z.dtype)[inverse]
    p = ((z + 1.0) / 2.0).clamp(ENTROPY_EPS, 1.0 - ENTROPY_EPS)
    return F.binary_cross_entropy(p, target)


def scale_free_balance_loss(z: torch.Tensor) -> torch.Tensor:
    """Batch bit balance, working form (ours): ``mean_b (mean_i z_ib / (mean_i |z_ib| + eps))^2``.

    0 for balanced bits, 1 for a bit with one sign over the whole batch; unchanged when ``z`` is scaled.

    Parameters
    ----------
    z : torch.Tensor, float32, shape (N, B)

    Returns
    -------
    torch.Tensor, scalar, in [0, 1]
    """
    return ((z.mean(dim=0) / (z.abs().mean(dim=0) + 1e-6)) ** 2).mean()


def parse_loss_terms(loss_terms: str) -> tuple[bool, bool]:
    """``(use_hash, use_entropy)`` for one of :data:`LOSS_TERMS`; anything else raises ``ValueError``."""
    if loss_terms not in LOSS_TERMS:
        raise ValueError(f"loss_terms must be one of {', '.join(LOSS_TERMS)}; got {loss_terms!r}")
    terms = set(loss_terms.split("+"))
    return "hash" in terms, "entropy" in terms


def total_loss(recon: torch.Tensor, target: torch.Tensor, z: torch.Tensor, cluster_ids: torch.Tensor,
               hash_weight: float = 0.1, entropy_weight: float = 0.01, balance_weight: float = 0.1,
               ramp: float = 1.0, loss_terms: str = "mse+hash+entropy",
               quant_weight: float = 0.0, form: str = "literal",
               temperature: float = 0.1) -> tuple[torch.Tensor, dict]:
    """The training objective and its terms.

    ``L = L_mse + ramp * (w_hash * L_hash + w_ent * L_ent + w_bal * L_bal + w_q * L_q)``

    where a term absent from ``loss_terms`` has weight 0 (``L_bal`` and ``L_q`` are ours and controlled by their
    weights alone; set ``balance_weight=0`` and ``quant_weight=0`` for the paper's terms only). ``form`` picks the
    reading of ``L_hash``, ``L_ent`` and ``L_bal`` (module docs). ``ramp`` in [0, 1] fades the cluster terms in
    after the reconstruction warm-up. Every term is computed (and returned) even when its weight is 0.

    Parameters
    ----------
    recon, target : torch.Tensor, shape (N, frames, n_mfcc)
    z : torch.Tensor, shape (N, B)
    cluster_ids : torch.Tensor, int, shape (N,)
    hash_weight, entropy_weight, balance_weight, quant_weight : float
        Non-negative weights.
    ramp : float
        Multiplier of the cluster terms, in [0, 1].
    loss_terms : str
        ``"mse"``, ``"mse+hash"`` or ``"mse+hash+entropy"``.
    form : str
        ``"literal"`` or ``"working"``.
    temperature : float
        NT-Xent temperature of the working hash loss.

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
    if form not in LOSS_FORMS:
        raise ValueError(f"loss form must be one of {', '.join(LOSS_FORMS)}; got {form!r}")
    use_hash, use_entropy = parse_loss_terms(loss_terms)
    mse = reconstruction_loss(recon, target)
    if form == "literal":
        lh, le, lb = hash_loss(z, cluster_ids), bitwise_entropy_loss(z, cluster_ids), bit_balance_loss(z)
    else:
        lh = contrastive_hash_loss(z, cluster_ids, temperature)
        le = majority_entropy_loss(z, cluster_ids)
        lb = scale_free_balance_loss(z)
    lq = quantisation_loss(z)
    cluster = (hash_weight * lh if use_hash else 0.0) + (entropy_weight * le if use_entropy else 0.0)
    total = mse + ramp * (cluster + balance_weight * lb + quant_weight * lq)
    terms = {"mse": mse.detach(), "hash": lh.detach(), "entropy": le.detach(), "balance": lb.detach(),
             "quant": lq.detach(), "total": total.detach()}
    return total, terms
