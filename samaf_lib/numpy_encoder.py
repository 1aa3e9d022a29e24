"""SAMAF's encoder without torch: the hash of MFCC windows computed in numpy from a stored model's weights.

A one-clip ``samaf identify`` spends most of its start-up importing torch (about 1.4 s on a quiet core, more
than everything else together), only to run the encoder over a few dozen windows. :class:`NumpyEncoder` runs that
forward pass in numpy from the weights a SAMAF database keeps (``SAMAFOnDisk`` stores its model), so a query
needs no torch at all. It computes what :meth:`samaf_lib.model.SAMAF.hash_windows` computes, in float32, in the
same order of operations: the per-window cepstral mean normalisation when the model has ``cmn``, the train-split
standardisation, the stacked LSTM (torch's gates ``i, f, g, o``; no dropout, as in eval mode) and
``z = tanh(W h_T + b)``. Its activations match torch's to about 1e-6, so a bit can differ only where ``|z|`` is
that close to 0, which a distortion flips anyway (tests/test_numpy_encoder.py measures both).

Numpy steps the recurrence one matrix product and a few element-wise passes at a time: on one core about as
fast per window as torch on batches of hundreds of windows, and slower on a short query's few dozen (the
per-step calls dominate). The toolkit uses it where start-up dominates, answering queries, and torch where
throughput does, indexing. It holds every array of the model's state (decoder included), so a database saved from a system that
uses it keeps the whole model.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from . import encoder_input

#: The keys of a SAMAF model's configuration (``samaf_lib.model.CONFIG_KEYS``) that the encoder reads.
_NEEDED = ("bits", "hidden", "layers", "n_mfcc", "frames", "cmn")


class NumpyEncoder:
    """The encoder half of a trained SAMAF model, in numpy.

    Parameters
    ----------
    config : dict
        The model's configuration (``SAMAF.config``).
    state : mapping of str to array
        The model's ``state_dict`` as arrays (``encoder.weight_ih_l0``, ..., ``to_code.weight``, ``mean``,
        ``std``; other entries are kept, not used).

    Raises
    ------
    ValueError
        A configuration key or a weight is missing or has the wrong shape.
    """

    def __init__(self, config: Mapping[str, Any], state: Mapping[str, Any]) -> None:
        missing = [k for k in _NEEDED if k not in config]
        if missing:
            raise ValueError(f"SAMAF config lacks {missing}; it has {sorted(config)}")
        self.config: dict[str, Any] = dict(config)
        self._state = {k: np.asarray(v) for k, v in state.items()}
        hidden, layers, n_mfcc, bits = (int(config[k]) for k in ("hidden", "layers", "n_mfcc", "bits"))
        self._layers: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        for layer in range(layers):
            width = n_mfcc if layer == 0 else hidden
            w_ih = self._weight(f"encoder.weight_ih_l{layer}", (4 * hidden, width))
            w_hh = self._weight(f"encoder.weight_hh_l{layer}", (4 * hidden, hidden))
            b_ih = self._weight(f"encoder.bias_ih_l{layer}", (4 * hidden,))
            b_hh = self._weight(f"encoder.bias_hh_l{layer}", (4 * hidden,))
            # gates reordered i, f, o, g: the three sigmoids become one call over a contiguous block
            order = np.concatenate([np.arange(0, 2 * hidden), np.arange(3 * hidden, 4 * hidden),
                                    np.arange(2 * hidden, 3 * hidden)])
            self._layers.append((np.ascontiguousarray(w_ih[order].T), np.ascontiguousarray(w_hh[order].T),
                                 (b_ih + b_hh)[order]))
        self._w_code = np.ascontiguousarray(self._weight("to_code.weight", (bits, hidden)).T)
        self._b_code = self._weight("to_code.bias", (bits,))
        self._mean = self._weight("mean", (n_mfcc,))
        self._std = self._weight("std", (n_mfcc,))

    def _weight(self, name: str, shape: tuple[int, ...]) -> np.ndarray:
        if name not in self._state:
            raise ValueError(f"SAMAF weights lack {name!r}")
        w = self._state[name].astype(np.float32)
        if w.shape != shape:
            raise ValueError(f"SAMAF weight {name!r} has shape {w.shape}, expected {shape}")
        return w

    # -- what SAMAFSystem asks of a model ---------------------------------------------------------------------------
    @property
    def bits(self) -> int:
        return int(self.config["bits"])

    @property
    def input_shape(self) -> tuple[int, int]:
        return int(self.config["frames"]), int(self.config["n_mfcc"])

    def to(self, device: Any) -> NumpyEncoder:
        """The CPU is the only place it runs; returns itself."""
        if str(device) != "cpu":
            raise ValueError(f"the numpy encoder runs on the CPU only, not on {device}")
        return self

    def eval(self) -> NumpyEncoder:
        return self

    def state_dict(self) -> dict[str, np.ndarray]:
        """Every array of the model's state, as given (copies)."""
        return {k: v.copy() for k, v in self._state.items()}

    def standardise(self, x: np.ndarray) -> np.ndarray:
        """As :meth:`samaf_lib.model.SAMAF.standardise` for a float32 array ``(..., frames, n_mfcc)``."""
        return encoder_input.standardise(np.asarray(x, np.float32), self._mean, self._std, bool(self.config["cmn"]))

    def encode(self, x: np.ndarray) -> np.ndarray:
        """``z = tanh(W h_T + b)``, ``(batch, bits)`` float32, of standardised windows ``(batch, frames, n_mfcc)``."""
        x = np.ascontiguousarray(x, np.float32)
        batch, frames, _ = x.shape
        hidden = int(self.config["hidden"])
        seq = x
        for li, (w_ih, w_hh, b) in enumerate(self._layers):
            gates_in = (seq.reshape(batch * frames, -1) @ w_ih).reshape(batch, frames, 4 * hidden) + b
            h = np.zeros((batch, hidden), np.float32)
            c = np.zeros((batch, hidden), np.float32)
            last = li == len(self._layers) - 1
            out = None if last else np.empty((batch, frames, hidden), np.float32)
            g = np.empty((batch, 4 * hidden), np.float32)
            for t in range(frames):
                np.matmul(h, w_hh, out=g)
                g += gates_in[:, t]
                sig = _sigmoid(g[:, :3 * hidden])
                c *= sig[:, hidden:2 * hidden]
                c += sig[:, :hidden] * np.tanh(g[:, 3 * hidden:])
                h = sig[:, 2 * hidden:] * np.tanh(c)
                if out is not None:
                    out[:, t] = h
            if out is not None:
                seq = out
        return np.tanh(h @ self._w_code + self._b_code).astype(np.float32)

    def hash_windows(self, windows: np.ndarray, batch_size: int = 512, standardise: bool = True) -> np.ndarray:
        """As :meth:`samaf_lib.model.SAMAF.hash_windows`: activations ``(n, bits)`` of MFCC windows
        ``(n, frames, n_mfcc)``, raw when ``standardise``."""
        frames, n_mfcc = self.input_shape
        encoder_input.check_windows(windows, frames, n_mfcc)
        if windows.shape[0] == 0:
            return np.zeros((0, self.bits), np.float32)
        if not np.all(np.isfinite(windows)):
            raise ValueError(f"SAMAF input (batch, {frames}, {n_mfcc}) holds NaN or infinite values; check the "
                             "features")
        out = []
        for i in range(0, windows.shape[0], batch_size):
            x = np.asarray(windows[i:i + batch_size], np.float32)
            out.append(self.encode(self.standardise(x) if standardise else x))
        return np.concatenate(out).astype(np.float32)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    """``1 / (1 + exp(-x))`` as ``(1 + tanh(x / 2)) / 2``: one transcendental, no overflow, float32."""
    y = np.tanh(x * np.float32(0.5))
    y += np.float32(1.0)
    y *= np.float32(0.5)
    return y
