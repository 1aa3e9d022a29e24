"""Training SAMAF on clusters of similar windows (docs/samaf.md, "Training").

A cluster ("similar set") is one clean training segment plus distorted, slightly shifted copies of it. A batch
holds ``batch_clusters`` clusters with ``members`` of their copies each (drawn at random, without replacement).
The first ``warmup_epochs`` optimise reconstruction alone; the cluster terms (and our bit-balance term) then ramp
in linearly over ``ramp_epochs`` (docs/samaf.md, "Collapse": the warm-up lets z carry information before the cluster
terms, which a constant code would minimise, start to pull).

Reproducibility: the length of a run is a number of epochs (with early stopping on a validation measure), never
wall time, so a busy machine takes longer and gives the same model. A ``torch.Generator`` seeded with ``seed``
draws every batch; the global torch RNG (dropout) is seeded inside :func:`torch.random.fork_rng`, so calling
:func:`train` changes no global state; deterministic algorithms are switched on and torch runs on ``threads``
threads for the run (the float reductions of a CPU kernel depend on the thread count, not on the load).
Checkpoints hold no timings: ``out_dir/last.pt`` (every epoch, with the optimiser and RNG states, so an interrupted
run resumed with the same arguments ends with the same weights) and ``best.pt`` are byte-identical from one run
to the next. An optional ``time_limit_minutes`` stops a run that takes too long with :class:`TrainingTimeLimit`
instead of returning a shorter model.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .hashing import pack
from .losses import LOSS_TERMS, parse_loss_terms, total_loss
from .model import SAMAF, check_config, load_state, read_checkpoint, save_checkpoint

#: Terms logged for train and val, in this order.
TERMS = ("mse", "hash", "entropy", "balance", "quant", "total")
#: Settings that may change between an interrupted run and its resumption.
_RESUMABLE = {"epochs", "time_limit_minutes", "device", "patience"}
#: Validation measures an early stop can follow, and whether higher is better.
SELECT_METRICS = {"val_total": False, "val_top1": True}


class TrainingTimeLimit(RuntimeError):
    """A training run passed its ``time_limit_minutes``; the checkpoints so far are kept and the run resumes."""


@dataclass
class TrainConfig:
    """The ``train`` and ``loss`` settings of one training run.

    Attributes
    ----------
    epochs : int
        Maximum number of epochs (passes over the training clusters).
    batch_clusters : int
        Clusters per batch (16).
    members : int
        Members drawn per cluster and batch (4); ``min(members, K)`` are used.
    lr : float
        Adam learning rate (3e-3).
    clip : float
        Gradient-norm clip (1.0); 0 disables it.
    warmup_epochs : int
        Epochs with the reconstruction loss alone.
    ramp_epochs : int
        Epochs over which the cluster terms rise linearly to full weight after the warm-up (0: at once).
    patience : int
        Early stop after this many full-weight epochs without a better validation total; 0 disables it.
    hash_weight, entropy_weight, balance_weight : float
        Loss weights (0.1, 0.01, 0.1); ``balance_weight`` is our anti-collapse term, not the paper's.
    quant_weight : float
        Weight of our quantisation term (``|z| -> 1``), not the paper's; 0 (off) by default.
    loss_terms : str
        ``"mse"``, ``"mse+hash"`` or ``"mse+hash+entropy"`` (the paper's terms used; the ablation).
    seed : int
        Seeds batch sampling and dropout.
    device : str
        ``"auto"`` (CUDA when available, else CPU), ``"cpu"``, ``"cuda"`` or ``"cuda:N"``.
    time_limit_minutes : float or None
        A guard, not a budget: when an epoch ends after this much wall time, :func:`train` raises
        :class:`TrainingTimeLimit` (the checkpoints are kept; rerunning resumes). ``None`` for no limit.
    form : str
        Reading of the paper's cluster terms: ``"literal"`` or ``"working"`` (:mod:`samaf_lib.losses`).
    temperature : float
        NT-Xent temperature of the working hash loss (0.1).
    threads : int
        Torch CPU threads during the run (results depend on this number, never on the load); 0 keeps torch's.
    select : str
        What early stopping and ``best.pt`` follow: ``"val_top1"`` (the validation identification measure of the
        ``validate`` callback, higher is better) or ``"val_total"`` (validation loss, lower is better).
    """

    epochs: int = 20
    batch_clusters: int = 16
    members: int = 4
    lr: float = 3e-3
    clip: float = 1.0
    warmup_epochs: int = 2
    ramp_epochs: int = 3
    patience: int = 4
    hash_weight: float = 0.1
    entropy_weight: float = 0.01
    balance_weight: float = 0.1
    quant_weight: float = 0.0
    loss_terms: str = "mse+hash+entropy"
    seed: int = 0
    device: str = "auto"
    time_limit_minutes: float | None = None
    form: str = "literal"
    temperature: float = 0.1
    threads: int = 0
    select: str = "val_total"

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Raise ``ValueError`` naming the first bad setting and its allowed range."""
        for name, lo in (("epochs", 0), ("batch_clusters", 1), ("members", 1), ("warmup_epochs", 0),
                         ("ramp_epochs", 0), ("patience", 0), ("seed", 0), ("threads", 0)):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < lo:
                raise ValueError(f"train.{name} must be an integer >= {lo}, got {v!r}")
        for name in ("lr", "clip", "hash_weight", "entropy_weight", "balance_weight", "quant_weight"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v < 0:
                raise ValueError(f"train.{name} must be a finite number >= 0, got {v!r}")
        if self.lr <= 0:
            raise ValueError(f"train.lr must be > 0, got {self.lr!r}")
        if self.loss_terms not in LOSS_TERMS:
            raise ValueError(f"train.loss_terms must be one of {', '.join(LOSS_TERMS)}; got {self.loss_terms!r}")
        if not isinstance(self.device, str) or not (self.device in ("auto", "cpu", "cuda")
                                                    or self.device.startswith("cuda:")):
            raise ValueError(f"train.device must be 'auto', 'cpu', 'cuda' or 'cuda:N', got {self.device!r}")
        t = self.time_limit_minutes
        if t is not None and (isinstance(t, bool) or not isinstance(t, (int, float)) or not t > 0):
            raise ValueError(f"train.time_limit_minutes must be a number > 0 or None (no limit), got {t!r}")
        from .losses import LOSS_FORMS

        if self.form not in LOSS_FORMS:
            raise ValueError(f"loss.form must be one of {', '.join(LOSS_FORMS)}; got {self.form!r}")
        if isinstance(self.temperature, bool) or not isinstance(self.temperature, (int, float)) or not (
                math.isfinite(self.temperature) and self.temperature > 0):
            raise ValueError(f"loss.temperature must be a number > 0, got {self.temperature!r}")
        if self.select not in SELECT_METRICS:
            raise ValueError(f"train.select must be one of {', '.join(SELECT_METRICS)}; got {self.select!r}")

    @classmethod
    def from_params(cls, section: dict | None) -> TrainConfig:
        """Build from a dict (e.g. merged ``train`` and ``loss`` sections); unknown keys raise ``KeyError``."""
        section = dict(section or {})
        known = {f.name for f in dataclasses.fields(cls)}
        bad = sorted(set(section) - known)
        if bad:
            raise KeyError(f"train: unknown key(s) {bad}; known keys are {sorted(known)}")
        return cls(**section)

    def to_dict(self) -> dict[str, Any]:
        """Plain dict of the settings."""
        return dataclasses.asdict(self)

    def ramp(self, epoch: int) -> float:
        """Weight multiplier of the cluster terms in 0-based ``epoch``: 0 in the warm-up, then rising to 1."""
        if epoch < self.warmup_epochs:
            return 0.0
        if self.ramp_epochs == 0:
            return 1.0
        return min(1.0, (epoch - self.warmup_epochs + 1) / self.ramp_epochs)


def resolve_device(device: str) -> torch.device:
    """``"auto"`` -> CUDA when available, else CPU; otherwise ``torch.device(device)`` (CUDA must exist)."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"train.device={device!r} but no CUDA device is available; use 'auto' or 'cpu'")
    return dev


@contextlib.contextmanager
def deterministic_mode() -> Iterator[None]:
    """Deterministic torch algorithms (warn-only where none exists) for the block; previous settings restored."""
    was = torch.are_deterministic_algorithms_enabled()
    warn = torch.is_deterministic_algorithms_warn_only_enabled()
    cudnn_det, cudnn_bench = torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark
    torch.use_deterministic_algorithms(True, warn_only=True)
    torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = True, False
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(was, warn_only=warn)
        torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = cudnn_det, cudnn_bench


def _check_clusters(name: str, X: np.ndarray, model: SAMAF) -> np.ndarray:
    frames, n_mfcc = model.input_shape
    X = np.asarray(X)
    if X.ndim != 4 or X.shape[2:] != (frames, n_mfcc) or X.shape[0] == 0 or X.shape[1] == 0:
        raise ValueError(f"{name} must be raw MFCC clusters shaped (n_clusters, K, {frames}, {n_mfcc}), "
                         f"got shape {X.shape}")
    if not np.all(np.isfinite(X)):
        raise ValueError(f"{name} holds NaN or infinite values")
    return np.ascontiguousarray(X, dtype=np.float32)


def crop_windows(X: np.ndarray, frames: int, name: str = "clusters") -> np.ndarray:
    """The middle ``frames`` frames of every window of ``X`` (``(..., F, n_mfcc)``, ``F >= frames``), contiguous.

    The cluster bank holds 1-s windows (100 frames); a model with a shorter window (``model.window_s``) trains on
    their middles, so each copy of a cluster keeps the shift it was drawn with (docs/samaf.md, "The window").
    ``frames == F`` returns ``X`` itself.

    Raises
    ------
    ValueError
        Naming ``name``: ``frames`` is not between 1 and the windows' frames.
    """
    X = np.asarray(X)
    have = int(X.shape[-2]) if X.ndim >= 2 else 0
    if not 1 <= int(frames) <= have:
        raise ValueError(f"{name}: a window of {frames} frames does not fit the stored windows of {have} frames; "
                         "model.window_s may be at most the cluster bank's window (1 s)")
    if int(frames) == have:
        return X
    start = (have - int(frames)) // 2
    return np.ascontiguousarray(X[..., start:start + int(frames), :])


def _data_signature(X: np.ndarray) -> list:
    return [int(s) for s in X.shape] + [float(np.sum(X, dtype=np.float64))]


def _cluster_ids(n_clusters: int, members: int, device: torch.device) -> torch.Tensor:
    return torch.arange(n_clusters, device=device).repeat_interleave(members)


def _train_epoch(model: SAMAF, X: torch.Tensor, cfg: TrainConfig, ramp: float, opt: torch.optim.Optimizer,
                 gen: torch.Generator) -> dict[str, float]:
    model.train()
    n, k = X.shape[:2]
    kk = min(cfg.members, k)
    order = torch.randperm(n, generator=gen)
    sums = {t: 0.0 for t in TERMS}
    batches = 0
    for start in range(0, n, cfg.batch_clusters):
        idx = order[start:start + cfg.batch_clusters]
        pick = torch.rand(idx.numel(), k, generator=gen).argsort(dim=1)[:, :kk]
        x = X[idx.to(X.device)[:, None], pick.to(X.device)].reshape(-1, *X.shape[2:])
        ids = _cluster_ids(idx.numel(), kk, X.device)
        recon, z = model(x)
        loss, terms = total_loss(recon, model.target(x), z, ids, cfg.hash_weight, cfg.entropy_weight,
                                 cfg.balance_weight, ramp, cfg.loss_terms, cfg.quant_weight, cfg.form,
                                 cfg.temperature)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if cfg.clip > 0:
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.clip)
        opt.step()
        for t in TERMS:
            sums[t] += float(terms[t])
        batches += 1
    return {f"train_{t}": sums[t] / batches for t in TERMS}


@torch.no_grad()
def evaluate(model: SAMAF, X: torch.Tensor, cfg: TrainConfig) -> dict[str, float]:
    """Validation metrics on standardised clusters ``X`` (n, K, frames, n_mfcc) using the first ``members``.

    Loss terms are the batch averages at full weight (ramp 1), so ``val_total`` is comparable across epochs.
    Code statistics over all evaluated windows: ``bit_balance`` (mean over bits of the fraction of ones; 0.5 is
    balanced), ``bit_ones_min``/``bit_ones_max`` (the most unbalanced bits), ``constant_bits`` (bits equal for
    every window), ``distinct_codes`` and ``windows``, ``intra_hamming`` (mean Hamming distance between members of
    one cluster, as a fraction of the bits) and ``inter_hamming`` (same between the first members of clusters
    ``c`` and ``c + n/2``, usually unrelated segments: about 0.5 for independent balanced codes, 0 under collapse), ``mean_abs_z`` (mean
    |z|: how saturated the hash layer is; a shrinking z also lowers the hash loss) and ``weak_bits`` (fraction of
    activations with |z| < 0.1, whose sign a small distortion flips).
    """
    model.eval()
    n, k = X.shape[:2]
    kk = min(cfg.members, k)
    sums = {t: 0.0 for t in TERMS}
    zs = []
    batches = 0
    for start in range(0, n, cfg.batch_clusters):
        x = X[start:start + cfg.batch_clusters, :kk]
        c = x.shape[0]
        x = x.reshape(-1, *X.shape[2:])
        recon, z = model(x)
        _, terms = total_loss(recon, model.target(x), z, _cluster_ids(c, kk, X.device), cfg.hash_weight,
                              cfg.entropy_weight, cfg.balance_weight, 1.0, cfg.loss_terms, cfg.quant_weight,
                              cfg.form, cfg.temperature)
        for t in TERMS:
            sums[t] += float(terms[t])
        zs.append(z.cpu().numpy())
        batches += 1
    out = {f"val_{t}": sums[t] / batches for t in TERMS}
    out.update(code_statistics(np.concatenate(zs).reshape(n, kk, -1)))
    return out


def code_statistics(z: np.ndarray) -> dict[str, float]:
    """Collapse diagnostics of activations ``z`` shaped (n_clusters, members, bits); see :func:`evaluate`."""
    n, kk, bits = z.shape
    b = (z > 0).reshape(n * kk, bits)
    ones = b.mean(axis=0)
    packed = pack(b.astype(np.uint8))
    grouped = b.reshape(n, kk, bits)
    intra = float(np.mean(grouped[:, :, None, :] != grouped[:, None, :, :]) * kk / max(kk - 1, 1)) if kk > 1 \
        else 0.0
    far = (np.arange(n) + n // 2) % n  # clusters half the set away: usually unrelated segments
    inter = float(np.mean(grouped[:, 0] != grouped[far, 0])) if n > 1 else 0.0
    return {
        "bit_balance": float(ones.mean()),
        "bit_ones_min": float(ones.min()),
        "bit_ones_max": float(ones.max()),
        "constant_bits": int(np.sum((ones == 0) | (ones == 1))),
        "distinct_codes": int(np.unique(packed, axis=0).shape[0]),
        "windows": int(n * kk),
        "intra_hamming": intra,
        "inter_hamming": inter,
        "mean_abs_z": float(np.mean(np.abs(z))),
        "weak_bits": float(np.mean(np.abs(z) < 0.1)),
    }


def train(model: SAMAF, train_X: np.ndarray, val_X: np.ndarray, cfg: TrainConfig, out_dir: str | Path,
          progress: bool = False, validate: Callable[[SAMAF], dict] | None = None,
          timings: list | None = None) -> list[dict]:
    """Train ``model`` on clusters, checkpointing every epoch; resume from ``out_dir/last.pt`` when present.

    Parameters
    ----------
    model : SAMAF
        The model to train, its standardisation buffers already set (:meth:`SAMAF.set_standardiser`) from the
        training statistics. Its weights are the starting point unless a checkpoint is resumed. On return it holds
        the weights of ``best.pt`` and sits on the training device, in eval mode.
    train_X, val_X : np.ndarray, float32, shape (n_clusters, K, 100, 13)
        Raw MFCC windows; ``[c, 0]`` is usually the clean segment and ``[c, 1:]`` its distorted copies. Every
        epoch draws ``cfg.members`` of the K members of each training cluster afresh.
    cfg : TrainConfig
        Settings.
    out_dir : path-like
        Receives ``last.pt`` (every epoch: weights, optimiser, RNG states, history) and ``best.pt`` (the best
        full-weight epoch by ``cfg.select``; during warm-up and ramp it follows the last epoch).
    progress : bool
        Show a tqdm bar over epochs.
    validate : callable or None
        Called with the model (eval mode) after every epoch; returns a dict of numbers merged into the epoch's
        row (for ``cfg.select == "val_top1"`` it must return ``val_top1``). It must be deterministic.
    timings : list or None
        When given, one dict per epoch run here is appended: ``epoch``, ``seconds`` (wall) and ``cpu_seconds``.
        Timings are kept out of the history and the checkpoints, which must not depend on the machine.

    Returns
    -------
    list of dict
        One dict per epoch: ``epoch`` (1-based), ``ramp``, ``train_<term>`` and ``val_<term>`` for ``mse``,
        ``hash``, ``entropy``, ``balance``, ``quant``, ``total`` (train: the ramped objective averaged over
        batches; val: full weights), the code statistics of :func:`evaluate`, what ``validate`` returned and
        ``best`` (whether best.pt was written).

    Raises
    ------
    ValueError
        Bad shapes or values, or an ``out_dir/last.pt`` from a run with other settings, model or data.
    TrainingTimeLimit
        The run passed ``cfg.time_limit_minutes``.
    """
    cfg.validate()
    parse_loss_terms(cfg.loss_terms)
    if cfg.select == "val_top1" and validate is None:
        raise ValueError("train.select is 'val_top1' but no validate callback was given; pass one or select "
                         "'val_total'")
    train_X = _check_clusters("train_X", train_X, model)
    val_X = _check_clusters("val_X", val_X, model)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    last, best = out_dir / "last.pt", out_dir / "best.pt"
    device = resolve_device(cfg.device)
    signature = {"train": _data_signature(train_X), "val": _data_signature(val_X)}
    rng_devices = [device.index or 0] if device.type == "cuda" else []
    threads_before = torch.get_num_threads()

    with torch.random.fork_rng(devices=rng_devices), deterministic_mode():
        if cfg.threads:
            torch.set_num_threads(cfg.threads)
        try:
            torch.manual_seed(cfg.seed)
            model.to(device)
            opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
            gen = torch.Generator().manual_seed(cfg.seed)
            state: dict[str, Any] = {"best_val": math.inf, "bad_epochs": 0, "stopped": False,
                                     "full_seen": False}
            history: list[dict] = []
            start = 0
            if last.exists():
                start, history = _resume(last, model, opt, gen, cfg, signature, state, device)
            Xt = model.standardise(torch.as_tensor(train_X, device=device))
            Xv = model.standardise(torch.as_tensor(val_X, device=device))
            began = time.perf_counter()
            bar = None
            if progress and not state["stopped"]:
                from .progress import bar as progress_bar

                bar = progress_bar(total=cfg.epochs, initial=start, desc="train SAMAF", unit="epoch")
            for epoch in range(start, cfg.epochs):
                if state["stopped"]:
                    break
                t0, c0 = time.perf_counter(), time.process_time()
                ramp = cfg.ramp(epoch)
                row: dict[str, Any] = {"epoch": epoch + 1, "ramp": ramp}
                row.update(_train_epoch(model, Xt, cfg, ramp, opt, gen))
                row.update(evaluate(model, Xv, cfg))
                if validate is not None:
                    model.eval()
                    row.update({k: float(v) for k, v in validate(model).items()})
                row["best"] = _update_best(state, row, ramp, cfg)
                history.append(row)
                extra = _extra(cfg, gen, state, signature, device)
                save_checkpoint(last, model, opt.state_dict(), epoch + 1, history, extra)
                if row["best"]:
                    save_checkpoint(best, model, None, epoch + 1, history, extra)
                if timings is not None:
                    timings.append({"epoch": epoch + 1, "seconds": time.perf_counter() - t0,
                                    "cpu_seconds": time.process_time() - c0})
                if bar is not None:
                    bar.update(1)
                    post = {"mse": f"{row['val_mse']:.3f}", "hash": f"{row['val_hash']:.3f}",
                            "ones": f"{row['bit_balance']:.2f}"}
                    if "val_top1" in row:
                        post["top1"] = f"{row['val_top1']:.3f}"
                    bar.set_postfix(post)
                if state["stopped"]:
                    break
                limit = cfg.time_limit_minutes
                if limit is not None and time.perf_counter() - began > 60.0 * limit and epoch + 1 < cfg.epochs:
                    raise TrainingTimeLimit(
                        f"training passed train.time_limit_minutes={limit:g} after epoch {epoch + 1} of "
                        f"{cfg.epochs}; the checkpoints in {out_dir} are kept and rerunning resumes there. Raise "
                        "the limit (or set it to 0 for none) rather than accept a shorter model")
            if bar is not None:
                bar.close()
        finally:
            torch.set_num_threads(threads_before)
    if best.exists():
        load_state(model, read_checkpoint(best, map_location=device)["state_dict"], source=str(best))
    model.eval()
    return history


def _update_best(state: dict, row: dict, ramp: float, cfg: TrainConfig) -> bool:
    """Early-stopping bookkeeping on ``cfg.select``; returns whether this epoch becomes ``best.pt``."""
    if ramp < 1.0:
        return not state["full_seen"]
    state["full_seen"] = True
    higher = SELECT_METRICS[cfg.select]
    value = float(row[cfg.select])
    key = -value if higher else value  # stored as "lower is better"
    if key < state["best_val"]:
        state["best_val"], state["bad_epochs"] = key, 0
        return True
    state["bad_epochs"] += 1
    if cfg.patience and state["bad_epochs"] >= cfg.patience:
        state["stopped"] = True
    return False


def _extra(cfg: TrainConfig, gen: torch.Generator, state: dict, signature: dict, device: torch.device) -> dict:
    extra = {
        "train_config": cfg.to_dict(),
        "data": signature,
        "generator": gen.get_state(),
        "torch_rng": torch.get_rng_state(),
        "state": {k: (float(v) if isinstance(v, float) else v) for k, v in state.items()},
    }
    if device.type == "cuda":
        extra["cuda_rng"] = torch.cuda.get_rng_state(device)
    return extra


def _resume(path: Path, model: SAMAF, opt: torch.optim.Optimizer, gen: torch.Generator, cfg: TrainConfig,
            signature: dict, state: dict, device: torch.device) -> tuple[int, list]:
    """Restore weights, optimiser, RNG and early-stopping state from ``last.pt``; check it is the same run."""
    ckpt = read_checkpoint(path, map_location=device)
    check_config(ckpt["config"], model.config, source=f"{path} (resume)")
    extra = ckpt.get("extra") or {}
    old = dict(extra.get("train_config") or {})
    new = cfg.to_dict()
    diffs = [f"{k}: {old.get(k)!r} -> {v!r}" for k, v in new.items() if k not in _RESUMABLE and old.get(k) != v]
    if diffs:
        raise ValueError(f"{path} is from a run with other settings ({'; '.join(diffs)}); use another out_dir "
                         "or delete it to start afresh")
    if extra.get("data") != signature:
        raise ValueError(f"{path} is from a run on other data; use another out_dir or delete it to start afresh")
    load_state(model, ckpt["state_dict"], source=str(path))
    if ckpt.get("optimizer") is not None:
        opt.load_state_dict(ckpt["optimizer"])
    gen.set_state(extra["generator"].cpu())
    torch.set_rng_state(extra["torch_rng"].cpu())
    if device.type == "cuda" and "cuda_rng" in extra:
        torch.cuda.set_rng_state(extra["cuda_rng"].cpu(), device)
    state.update(extra.get("state") or {})
    return int(ckpt["epoch"]), list(ckpt.get("history") or [])
