"""The SAMAF sequence-to-sequence autoencoder (docs/samaf.md).

An LSTM encoder reads a 1-s window of MFCCs, shaped ``(100, 13)``, and its last hidden state is mapped to the hash
layer ``z = tanh(W h_T + b)`` in ``(-1, 1)^B``. The hash bits are ``z > 0``. An LSTM decoder is fed ``z`` at every
step, starts from a state computed from ``z`` (no teacher forcing, so it cannot reconstruct without ``z``) and
reconstructs the window reversed in time (as auDeep does) through a linear layer to 13 coefficients per step.

The model carries the per-coefficient standardisation statistics of the training split as buffers, so one
checkpoint is all a system needs to hash audio.

Checkpoints are plain ``torch.save`` dictionaries readable with ``torch.load(..., weights_only=True)``: the
configuration is a dict of ints, floats and bools, the history a list of dicts of floats.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from . import encoder_input
from .io import atomic_path

#: Marks a file as a SAMAF checkpoint; bumped when the layout changes.
CHECKPOINT_FORMAT = "samaf-checkpoint-v1"

#: The configuration keys of :class:`SAMAF`, in constructor order.
CONFIG_KEYS = ("bits", "hidden", "layers", "n_mfcc", "frames", "reverse_target", "dropout", "cmn")


class SAMAF(nn.Module):
    """Sequence-to-sequence LSTM autoencoder whose bottleneck is a ``bits``-bit hash.

    Parameters
    ----------
    bits : int
        Hash size B (the paper uses 128 or 256); a multiple of 8.
    hidden : int or None
        LSTM hidden size H of encoder and decoder; ``None`` means ``bits``.
    layers : int
        Stacked LSTM layers in encoder and decoder.
    n_mfcc : int
        Coefficients per frame (13).
    frames : int
        Frames per window (100 for 1 s at a 10 ms hop).
    reverse_target : bool
        Reconstruct the window reversed in time (auDeep style) rather than in order.
    dropout : float
        Dropout between stacked LSTM layers (only used when ``layers > 1``), in [0, 1).
    cmn : bool
        Per-window cepstral mean normalisation (ours, not the paper's): subtract each coefficient's mean over the
        window's frames before standardising, which removes a fixed channel (EQ, gain, band-limiting shifts the
        cepstrum by a constant). The standardisation statistics must then be fitted on mean-normalised windows
        (:meth:`samaf_lib.features.Standardiser.fit` with ``cmn=True``).

    Attributes
    ----------
    config : dict
        The constructor arguments (plain ints, floats, bools) with ``hidden`` resolved.
    mean, std : torch.Tensor, float32, shape (n_mfcc,)
        Standardisation buffers (train-split statistics); identity (0, 1) until :meth:`set_standardiser`.
    """

    def __init__(self, bits: int = 128, hidden: int | None = None, layers: int = 1, n_mfcc: int = 13,
                 frames: int = 100, reverse_target: bool = True, dropout: float = 0.0, cmn: bool = False) -> None:
        super().__init__()
        hidden = bits if hidden is None else hidden
        _check_int("bits", bits, 8)
        if bits % 8:
            raise ValueError(f"bits must be a multiple of 8 (codes are packed into bytes), got {bits}")
        _check_int("hidden", hidden, 1)
        _check_int("layers", layers, 1)
        _check_int("n_mfcc", n_mfcc, 1)
        _check_int("frames", frames, 1)
        if not isinstance(reverse_target, (bool, np.bool_)):
            raise ValueError(f"reverse_target must be a bool, got {reverse_target!r}")
        if not isinstance(dropout, (int, float)) or not 0.0 <= float(dropout) < 1.0:
            raise ValueError(f"dropout must be a float in [0, 1), got {dropout!r}")
        if not isinstance(cmn, (bool, np.bool_)):
            raise ValueError(f"cmn must be a bool, got {cmn!r}")
        self.config: dict[str, Any] = {
            "bits": int(bits), "hidden": int(hidden), "layers": int(layers), "n_mfcc": int(n_mfcc),
            "frames": int(frames), "reverse_target": bool(reverse_target), "dropout": float(dropout),
            "cmn": bool(cmn),
        }
        between = float(dropout) if layers > 1 else 0.0
        self.encoder = nn.LSTM(n_mfcc, hidden, num_layers=layers, batch_first=True, dropout=between)
        self.to_code = nn.Linear(hidden, bits)
        self.init_h = nn.Linear(bits, layers * hidden)
        self.init_c = nn.Linear(bits, layers * hidden)
        self.decoder = nn.LSTM(bits, hidden, num_layers=layers, batch_first=True, dropout=between)
        self.to_frame = nn.Linear(hidden, n_mfcc)
        self.register_buffer("mean", torch.zeros(n_mfcc, dtype=torch.float32))
        self.register_buffer("std", torch.ones(n_mfcc, dtype=torch.float32))

    # -- shapes -------------------------------------------------------------------------------------------------
    @property
    def bits(self) -> int:
        """Hash size B."""
        return self.config["bits"]

    @property
    def input_shape(self) -> tuple[int, int]:
        """``(frames, n_mfcc)`` of one window."""
        return self.config["frames"], self.config["n_mfcc"]

    def check_input(self, x: torch.Tensor | np.ndarray) -> torch.Tensor:
        """Return ``x`` as a float32 tensor on the model's device, or raise ``ValueError``.

        Raises
        ------
        ValueError
            ``x`` is not shaped ``(batch, frames, n_mfcc)`` (``(batch, 100, 13)`` by default), is empty, or holds
            NaN or infinite values.
        """
        frames, n_mfcc = self.input_shape
        expected = f"(batch, {frames}, {n_mfcc})"
        shape = tuple(x.shape)
        if len(shape) != 3 or shape[1:] != (frames, n_mfcc) or shape[0] == 0:
            raise ValueError(f"SAMAF input must be MFCC windows shaped {expected}, got shape {shape}")
        t = torch.as_tensor(x, dtype=torch.float32, device=self.mean.device)
        if not bool(torch.isfinite(t).all()):
            raise ValueError(f"SAMAF input {expected} holds NaN or infinite values; check the features")
        return t

    # -- standardisation ----------------------------------------------------------------------------------------
    def set_standardiser(self, mean: np.ndarray | torch.Tensor, std: np.ndarray | torch.Tensor) -> None:
        """Store the train-split statistics, each shaped ``(n_mfcc,)``; ``std`` must be positive."""
        n = self.config["n_mfcc"]
        m = torch.as_tensor(np.asarray(mean, np.float32)).reshape(-1)
        s = torch.as_tensor(np.asarray(std, np.float32)).reshape(-1)
        if m.numel() != n or s.numel() != n:
            raise ValueError(f"standardiser mean and std must have shape ({n},), got {tuple(m.shape)}, "
                             f"{tuple(s.shape)}")
        if not bool(torch.isfinite(m).all() and torch.isfinite(s).all() and (s > 0).all()):
            raise ValueError("standardiser mean/std must be finite and std > 0")
        self.mean.copy_(m)
        self.std.copy_(s)

    def standardise(self, x: torch.Tensor | np.ndarray) -> torch.Tensor | np.ndarray:
        """``(x - mean) / std`` per coefficient (last axis), after the per-window mean normalisation when ``cmn``.

        ``x`` is shaped ``(..., frames, n_mfcc)``; the window mean is taken over the frames axis. A numpy array in
        gives float32 numpy out.
        """
        if isinstance(x, np.ndarray):
            return encoder_input.standardise(x, self.mean.detach().cpu().numpy(), self.std.detach().cpu().numpy(),
                                             bool(self.config["cmn"]))
        if self.config["cmn"]:
            x = x - x.mean(dim=-2, keepdim=True)
        return (x - self.mean) / self.std

    # -- the network --------------------------------------------------------------------------------------------
    def encode(self, x: torch.Tensor | np.ndarray) -> torch.Tensor:
        """Hash layer activations.

        Parameters
        ----------
        x : tensor or array, float32, shape (batch, 100, 13)
            Standardised MFCC windows.

        Returns
        -------
        torch.Tensor, float32, shape (batch, bits), values in (-1, 1)
            ``z = tanh(W h_T + b)``; the hash bits are ``z > 0``.
        """
        x = self.check_input(x)
        _, (h, _) = self.encoder(x)
        return torch.tanh(self.to_code(h[-1]))

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Reconstruct ``(batch, frames, n_mfcc)`` from ``z`` shaped ``(batch, bits)``.

        The decoder LSTM receives ``z`` at every step; its initial state is ``(tanh(A z), C z)``.
        """
        layers, hidden, frames = self.config["layers"], self.config["hidden"], self.config["frames"]
        batch = z.shape[0]
        h0 = torch.tanh(self.init_h(z)).view(batch, layers, hidden).transpose(0, 1).contiguous()
        c0 = self.init_c(z).view(batch, layers, hidden).transpose(0, 1).contiguous()
        steps = z.unsqueeze(1).expand(batch, frames, z.shape[1])
        out, _ = self.decoder(steps, (h0, c0))
        return self.to_frame(out)

    def forward(self, x: torch.Tensor | np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        """Return ``(reconstruction (batch, frames, n_mfcc), z (batch, bits))`` for standardised windows ``x``.

        Compare the reconstruction with :meth:`target`, not with ``x``.
        """
        z = self.encode(x)
        return self.decode(z), z

    def target(self, x: torch.Tensor | np.ndarray) -> torch.Tensor:
        """What the reconstruction is compared with: ``x`` reversed in time when ``reverse_target``, else ``x``."""
        x = self.check_input(x)
        return torch.flip(x, dims=(1,)) if self.config["reverse_target"] else x

    @torch.no_grad()
    def hash_windows(self, windows: np.ndarray, batch_size: int = 512, standardise: bool = True) -> np.ndarray:
        """Hash-layer activations of raw MFCC windows, batched, in eval mode, without gradients.

        Parameters
        ----------
        windows : np.ndarray, float32, shape (n, 100, 13)
            MFCC windows (raw when ``standardise``, else already standardised).
        batch_size : int
            Windows per forward pass.

        Returns
        -------
        np.ndarray, float32, shape (n, bits)
        """
        encoder_input.check_windows(windows, *self.input_shape)
        if windows.shape[0] == 0:
            return np.zeros((0, self.bits), np.float32)
        was_training = self.training
        self.eval()
        try:
            out = []
            for i in range(0, windows.shape[0], batch_size):
                x = torch.as_tensor(np.ascontiguousarray(windows[i:i + batch_size], np.float32),
                                    device=self.mean.device)
                if standardise:
                    x = self.standardise(x)
                out.append(self.encode(x).cpu().numpy())
            return np.concatenate(out).astype(np.float32)
        finally:
            self.train(was_training)


def _check_int(name: str, value: Any, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")


# -- checkpoints ------------------------------------------------------------------------------------------------
def save_checkpoint(path: str | os.PathLike, model: SAMAF, optimizer_state: dict | None = None, epoch: int = 0,
                    history: list | None = None, extra: dict | None = None) -> None:
    """Write a checkpoint atomically (temporary file, then rename).

    Parameters
    ----------
    path : path-like
        Target file (``.pt``).
    model : SAMAF
        Its ``config`` and ``state_dict`` (weights and standardisation buffers) are stored.
    optimizer_state : dict or None
        ``optimizer.state_dict()``, to resume training.
    epoch : int
        Epochs completed.
    history : list of dict or None
        Per-epoch metrics (plain floats and ints).
    extra : dict or None
        Anything else made of tensors, numbers, strings, lists and dicts (training state, RNG states).
    """
    state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
    payload = {
        "format": CHECKPOINT_FORMAT,
        "config": dict(model.config),
        "state_dict": state,
        "optimizer": _to_cpu(optimizer_state) if optimizer_state is not None else None,
        "epoch": int(epoch),
        "history": list(history or []),
        "extra": _to_cpu(extra or {}),
    }
    import io

    buf = io.BytesIO()  # saved to memory first: torch names the zip's records after a file's name, and the
    torch.save(payload, buf)  # temporary file's name is random; from a buffer the records are always "archive/"
    with atomic_path(path) as tmp:
        tmp.write_bytes(buf.getvalue())


def read_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> dict:
    """Read a checkpoint dictionary with ``torch.load(weights_only=True)``.

    Raises
    ------
    FileNotFoundError
        No file at ``path``.
    ValueError
        The file is not a readable SAMAF checkpoint (corrupt, truncated, another format).
    """
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"{p}: no SAMAF checkpoint there; train one (`make repro`) or pass another path")
    try:
        ckpt = torch.load(p, map_location=map_location, weights_only=True)
    except Exception as e:  # corrupt zip, truncated file, pickle refused by weights_only
        raise ValueError(f"{p}: cannot be read as a SAMAF checkpoint ({type(e).__name__}: {e})") from e
    if not isinstance(ckpt, dict) or ckpt.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"{p}: not a SAMAF checkpoint (expected format {CHECKPOINT_FORMAT!r})")
    missing = [k for k in ("config", "state_dict") if k not in ckpt]
    if missing:
        raise ValueError(f"{p}: SAMAF checkpoint lacks {missing}")
    return ckpt


def model_from_config(config: dict) -> SAMAF:
    """A fresh :class:`SAMAF` built from a stored ``config`` dict; unknown keys raise ``ValueError``."""
    bad = sorted(set(config) - set(CONFIG_KEYS))
    if bad:
        raise ValueError(f"unknown SAMAF config key(s) {bad}; known keys are {list(CONFIG_KEYS)}")
    return SAMAF(**config)


def check_config(found: dict, expected: dict, source: str = "checkpoint") -> None:
    """Raise ``ValueError`` listing every key where ``found`` and ``expected`` differ (keys of ``expected``)."""
    diffs = [f"{k}: {source} has {found.get(k)!r}, expected {v!r}" for k, v in expected.items()
             if found.get(k) != v]
    if diffs:
        raise ValueError(f"{source} is a different SAMAF model ({'; '.join(diffs)}); use a checkpoint trained "
                         "with these settings or change them to match")


def load_model(path: str | os.PathLike, map_location: str | torch.device = "cpu", expect_bits: int | None = None,
               expect_config: dict | None = None) -> SAMAF:
    """Load a :class:`SAMAF` (weights and standardisation) from a checkpoint, in eval mode.

    Parameters
    ----------
    path : path-like
        A file written by :func:`save_checkpoint`.
    map_location : str or torch.device
        Where the tensors go.
    expect_bits : int or None
        When set, a checkpoint with another hash size raises ``ValueError``.
    expect_config : dict or None
        When set, every key given must match the checkpoint's config (e.g. ``{"hidden": 128, "layers": 1}``).

    Raises
    ------
    FileNotFoundError, ValueError
        Missing file; unreadable file; another bit size or architecture than expected.
    """
    ckpt = read_checkpoint(path, map_location=map_location)
    config = dict(ckpt["config"])
    expected = dict(expect_config or {})
    if expect_bits is not None:
        expected["bits"] = int(expect_bits)
    check_config(config, expected, source=f"checkpoint {path}")
    model = model_from_config(config)
    load_state(model, ckpt["state_dict"], source=f"checkpoint {path}")
    return model.to(map_location).eval()


def load_state(model: SAMAF, state_dict: dict, source: str = "checkpoint") -> None:
    """Copy ``state_dict`` into ``model``; a mismatch of names or shapes raises ``ValueError`` naming ``source``."""
    own = model.state_dict()
    missing = sorted(set(own) - set(state_dict))
    extra = sorted(set(state_dict) - set(own))
    shapes = [f"{k} {tuple(state_dict[k].shape)} vs {tuple(v.shape)}" for k, v in own.items()
              if k in state_dict and tuple(state_dict[k].shape) != tuple(v.shape)]
    if missing or extra or shapes:
        raise ValueError(f"{source} does not fit this SAMAF model {model.config}: missing {missing}, "
                         f"unexpected {extra}, shape mismatches {shapes}")
    model.load_state_dict({k: torch.as_tensor(v) for k, v in state_dict.items()})


def _to_cpu(obj: Any) -> Any:
    """Copy nested tensors to the CPU so a checkpoint written on a GPU loads anywhere."""
    if isinstance(obj, torch.Tensor):
        return obj.detach().cpu().clone()
    if isinstance(obj, dict):
        return {k: _to_cpu(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_to_cpu(v) for v in obj)
    return obj
