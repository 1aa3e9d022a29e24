"""SAMAF as a fingerprinting system (docs/study.md, Systems): MFCC windows -> SAMAF hash -> Hamming index -> aligned votes.

Database. References are cut into windows of the model's length (its ``frames``: 100 frames, 1 s, or 50, 0.5 s;
``model.window_s``) every ``db_hop_s`` (0.25 s); each window's MFCCs are standardised
with the model's training statistics and encoded (batched, without gradients) into a ``bits``-bit hash, packed
into ``bits / 8`` bytes and stored in a faiss binary index, with two parallel arrays: the reference of each window
and its start time.

Query, step 1: candidates by aligned votes. The query is windowed every ``query_hop_s`` (0.1 s, so that some
query windows fall near the reference grid whatever the query's offset). Each query window looks up its ``k``
nearest reference windows; every hit within ``max_distance`` bits votes for (reference, offset bin) with
``offset = t_ref - t_query`` and ``bin = round(offset / db_hop_s)``, weighted by ``1 - d / (max_distance + 1)``.
A candidate spans two adjacent bins (a query off the reference grid splits its votes between two), and each query
window counts once per candidate (its best hit), so a candidate's vote score is ``mean aligned similarity x
coverage`` in [0, 1].

Query, step 2: verification and score. A raw vote count (Dejavu's score) grows with the query's length and with
how similar all speech looks to the model, so negatives score as high as many positives (docs/samaf.md). Instead, the
``verify`` best-voted references are each scanned at every offset on the query-hop grid: at offset ``o`` each
reference window in the query's span is compared with the query window nearest to it in time, and the agreement is
the mean of ``1 - 2 d / bits`` (1 for identical codes, about 0 for unrelated balanced codes; reference windows
missing from the span count 0). The best (reference, offset) wins. Its **score** is its agreement minus the
best agreement of a *different* alignment (another verified reference, or the same one at least a window away): a
margin that removes the agreement any speech reaches at its best alignment, which varies from query to query.
``offset_s`` is the winning offset (query-hop resolution). ``verify=0`` skips step 2 and returns the vote score.

Rejection. ``min_score`` defaults to 0.1: about 5 % false positives on generated out-of-database speech (24
references and 24 other utterances of ``make_speech``-style eSpeak NG speech, query lengths 1, 2, 3, 5 s, a model
trained for 10 epochs on 2,520 generated clusters; not the test queries). The evaluation sets ``min_score=0`` and
calibrates its own threshold.

Windows whose RMS is below :data:`samaf_lib.audio.SILENCE_RMS` are neither indexed nor looked up (digital silence
gives the same code in every reference); a silent query gives ``Match(None)``.

Cost. :meth:`SAMAFSystem.add` appends to growable arrays (amortised doubling) and defers the Hamming index: the
new codes enter the faiss index in one batch at the next query (the ``ivf`` kind, trained on its first batch, is
filled at once), so adding a reference costs the same whatever the size of the database. Importing this module
does not import torch (only building or loading a system with a torch model does), so
:meth:`SAMAFSystem.read_stats` describes a saved database without it, and a system built on a
:class:`samaf_lib.numpy_encoder.NumpyEncoder` hashes and answers queries without it.
"""

from __future__ import annotations

import copy
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..audio import SILENCE_RMS, AudioError, check_audio, resample, rms
from ..features import MFCCConfig, mfcc_frames, window_starts, windows_from_frames
from ..encoder_input import window_seconds
from ..hashing import INDEX_KINDS, HammingIndex, _as_numpy, hamming, pack
from ..numpy_encoder import NumpyEncoder
from ..paths import STUDY_LOSS, project_root
from .base import NO_MATCH, Match, check_record

if TYPE_CHECKING:  # torch and samaf_lib.model (which imports torch) are imported where a model is built, run or
    from ..model import SAMAF  # loaded: over a second of start-up that describing a database does not need

#: Where ``make repro`` leaves the trained model, relative to the project root (``{bits}`` filled in).
DEFAULT_CHECKPOINT = "models/samaf-{bits}-" + STUDY_LOSS + "/best.pt"
_FORMAT = "samaf-system-v1"
#: The verification scan looks this far (s) around each voted offset of a candidate reference.
SCAN_RADIUS_S = 3.0


class _Rows:
    """A growable array of rows: appending costs amortised O(rows appended), reading is a view without a copy.

    The buffer doubles when it is full, so ``n`` appends of ``m`` rows each copy O(n m) rows in all, where
    re-concatenating the whole array at every append copies O(n^2 m).

    Parameters
    ----------
    dtype : numpy dtype
        Element type.
    width : int or None
        Columns of each row (``None``: a 1-D array of scalars).
    """

    _MIN_CAPACITY = 1024

    def __init__(self, dtype: Any, width: int | None = None) -> None:
        self._shape = () if width is None else (int(width),)
        self._buf = np.zeros((0, *self._shape), dtype)
        self._n = 0

    @classmethod
    def of(cls, array: np.ndarray) -> _Rows:
        """Rows holding ``array`` (used as the buffer as it is, no copy)."""
        out = cls(array.dtype, array.shape[1] if array.ndim == 2 else None)
        out._buf, out._n = array, int(array.shape[0])
        return out

    def append(self, rows: np.ndarray) -> None:
        """Append ``rows`` (cast to the dtype; shaped ``(m,)`` or ``(m, width)``)."""
        need = self._n + rows.shape[0]
        if need > self._buf.shape[0]:
            grown = np.empty((max(need, 2 * self._buf.shape[0], self._MIN_CAPACITY), *self._shape), self._buf.dtype)
            grown[:self._n] = self._buf[:self._n]
            self._buf = grown
        self._buf[self._n:need] = rows
        self._n = need

    def __len__(self) -> int:
        return self._n

    @property
    def array(self) -> np.ndarray:
        """The rows appended so far (a read-only view of the buffer: later appends do not change it)."""
        view = self._buf[:self._n]
        view.flags.writeable = False
        return view


def _default_max_distance(bits: int) -> int:
    """The Hamming radius used when ``max_distance`` is None: half the bits (64 of 128), i.e. any neighbour
    closer than chance may propose a candidate; verification decides."""
    return bits // 2


class SAMAFSystem:
    """The SAMAF fingerprinter.

    Parameters
    ----------
    model : SAMAF, NumpyEncoder or None
        A trained (or, for tests, any) model, used as is (a copy). Takes precedence over ``checkpoint``. A
        :class:`samaf_lib.numpy_encoder.NumpyEncoder` (a stored model's encoder in numpy) hashes without torch,
        on the CPU: what the toolkit answers queries with.
    checkpoint : str or path or None
        A checkpoint written by training. ``None`` with no ``model`` means :data:`DEFAULT_CHECKPOINT` under the
        project root; when that does not exist either, construction fails with a message saying how to get one.
    bits : int
        Expected hash size; a model or checkpoint of another size raises ``ValueError``.
    db_hop_s : float
        Reference window hop in seconds, (0, 10] (0.25, the study's choice: docs/samaf.md, "The reference hop");
        rounded to the 10 ms frame hop.
    query_hop_s : float
        Query window hop in seconds, (0, 10] (0.1).
    k : int
        Nearest reference windows looked up per query window, >= 1 (10).
    max_distance : int or None
        Hamming radius in bits, [0, bits]; hits farther away do not vote. ``None`` (default) is ``bits // 2``.
    min_score : float
        Rejection threshold in [0, 1] on the score (the verified margin, see the module docs); a best candidate
        below it gives ``ref_id=None``. Default 0.1, chosen on generated speech (module docs); evaluation sets 0
        and calibrates its own.
    verify : int
        References verified by an offset scan, >= 0 (5); 0 returns the vote score of the best candidate.
    device : str
        Torch device for encoding: ``"cpu"`` (default), ``"cuda"`` or ``"auto"``.
    batch_size : int
        Windows per encoder forward pass, >= 1 (512).
    index : str
        Hamming index kind: ``"flat"`` (exact, default), ``"hash"`` or ``"ivf"`` (approximate, see
        :class:`samaf_lib.hashing.HammingIndex`).
    """

    name = "samaf"

    def __init__(self, model: SAMAF | NumpyEncoder | None = None, checkpoint: str | os.PathLike | None = None,
                 bits: int = 128, db_hop_s: float = 0.25, query_hop_s: float = 0.1, k: int = 10,
                 max_distance: int | None = None, min_score: float = 0.1, verify: int = 5, device: str = "cpu",
                 batch_size: int = 512, index: str = "flat") -> None:
        _check_int("bits", bits, 8, 1024)
        if bits % 8:
            raise ValueError(f"bits must be a multiple of 8, got {bits}")
        _check_float("db_hop_s", db_hop_s, 0.0, 10.0, low_open=True)
        _check_float("query_hop_s", query_hop_s, 0.0, 10.0, low_open=True)
        _check_int("k", k, 1, 1000)
        if max_distance is not None:
            _check_int("max_distance", max_distance, 0, bits)
        _check_float("min_score", min_score, 0.0, 1.0)
        _check_int("verify", verify, 0, 1000)
        _check_int("batch_size", batch_size, 1, 1 << 16)
        if not isinstance(device, str) or not (device in ("cpu", "cuda", "auto") or device.startswith("cuda:")):
            raise ValueError(f"device must be 'cpu', 'cuda', 'cuda:N' or 'auto', got {device!r}")
        if index not in INDEX_KINDS:
            raise ValueError(f"index must be one of {', '.join(INDEX_KINDS)}; got {index!r}")
        if checkpoint is not None and not isinstance(checkpoint, (str, os.PathLike)):
            raise ValueError(f"checkpoint must be a path or None, got {checkpoint!r}")
        if isinstance(model, NumpyEncoder):  # the torch-free encoder of a stored model (samaf_lib.numpy_encoder)
            if device.startswith("cuda"):
                raise ValueError(f"device={device!r}: the numpy encoder runs on the CPU; use 'cpu' or 'auto'")
            self._check_bits(model, bits)
            self._device = "cpu"
            self.model = model
        else:
            import torch

            from ..model import SAMAF

            if model is not None and not isinstance(model, SAMAF):
                raise ValueError(f"model must be a samaf_lib.model.SAMAF (or a samaf_lib.numpy_encoder."
                                 f"NumpyEncoder), got {type(model).__name__}")
            if device.startswith("cuda") and not torch.cuda.is_available():
                raise ValueError(f"device={device!r} but no CUDA device is available; use 'cpu' or 'auto'")
            self._device = torch.device("cuda" if device == "auto" and torch.cuda.is_available() else
                                        "cpu" if device == "auto" else device)
            self.model = self._resolve_model(model, checkpoint, bits).to(self._device).eval()
        self.params: dict[str, Any] = {
            "checkpoint": None if checkpoint is None else str(checkpoint), "bits": int(bits),
            "db_hop_s": float(db_hop_s), "query_hop_s": float(query_hop_s), "k": int(k),
            "max_distance": None if max_distance is None else int(max_distance), "min_score": float(min_score),
            "verify": int(verify), "device": device, "batch_size": int(batch_size), "index": index,
        }
        self.features = _model_features(self.model.config)
        if self.features.frames_per_window != self.model.config["frames"]:
            raise ValueError(f"the model expects {self.model.config['frames']} frames per window, the features "
                             f"give {self.features.frames_per_window}")
        self.bits = int(bits)
        self.radius = _default_max_distance(self.bits) if max_distance is None else int(max_distance)
        self._index = HammingIndex(self.bits, kind=index)
        self._refs: list[str] = []
        self._ref_pos: dict[str, int] = {}
        self._ref_seconds: list[float] = []
        self._ref_span: list[tuple[int, int]] = []  # [first, last + 1) window of each reference
        # one row per stored window: packed code, reference index, start time (see the _codes... properties)
        self._code_rows = _Rows(np.uint8, self.bits // 8)
        self._ref_rows = _Rows(np.int32)
        self._time_rows = _Rows(np.float32)
        self._indexed = 0  # windows already in self._index; the rest are added at the next query

    # -- the stored windows ---------------------------------------------------------------------------------------
    @property
    def _codes(self) -> np.ndarray:
        """Packed codes of every stored window, ``(n, bits / 8)`` uint8, in the order they were added (read-only)."""
        return self._code_rows.array

    @property
    def _win_ref(self) -> np.ndarray:
        """Reference index (into :meth:`references`) of every stored window, ``(n,)`` int32 (read-only)."""
        return self._ref_rows.array

    @property
    def _win_time(self) -> np.ndarray:
        """Start time (s) of every stored window in its reference, ``(n,)`` float32 (read-only)."""
        return self._time_rows.array

    def _sync_index(self) -> None:
        """Add the windows stored since the last query to the Hamming index, in one batch (ids = row numbers)."""
        n = len(self._code_rows)
        if self._indexed < n:
            self._index.add(self._codes[self._indexed:], np.arange(self._indexed, n, dtype=np.int64))
            self._indexed = n

    # -- model ---------------------------------------------------------------------------------------------------
    @staticmethod
    def _check_bits(model: Any, bits: int) -> None:
        """``ValueError`` unless the given model (torch or numpy) hashes to ``bits`` bits."""
        if model.bits != bits:
            raise ValueError(f"the model has {model.bits}-bit hashes but bits={bits}; pass bits={model.bits}")

    @staticmethod
    def _resolve_model(model: SAMAF | None, checkpoint, bits: int) -> SAMAF:
        from ..model import load_model

        if model is not None:
            SAMAFSystem._check_bits(model, bits)
            return copy.deepcopy(model).cpu()
        path = Path(checkpoint) if checkpoint is not None else project_root() / DEFAULT_CHECKPOINT.format(bits=bits)
        if not path.is_file():
            raise FileNotFoundError(
                f"no trained SAMAF model at {path}. Train one with `make repro` (the pipeline's training stage "
                f"writes {DEFAULT_CHECKPOINT.format(bits=bits)}), or pass checkpoint=<path to a .pt written by "
                "samaf_lib.training.train>, or model=<a SAMAF instance>")
        return load_model(path, map_location="cpu", expect_bits=bits)

    def _effective_hop(self, hop_s: float) -> float:
        return _effective_hop(self.features, hop_s)

    def _windows(self, audio16: np.ndarray, hop_s: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """MFCC windows ``(n, 100, 13)``, start times ``(n,)`` float64 and a loud-enough mask ``(n,)``."""
        cfg = self.features
        hop = self._effective_hop(hop_s)
        times = window_starts(audio16.size, cfg.sr, hop, cfg.window_s)
        frames = mfcc_frames(audio16, cfg.sr, cfg)
        windows = windows_from_frames(frames, audio16.size, hop, cfg)
        if windows.shape[0] != times.size:  # both come from window_starts; guard the invariant
            raise RuntimeError(f"window count {windows.shape[0]} != {times.size} start times")
        n = int(round(cfg.window_s * cfg.sr))
        starts = np.round(times * cfg.sr).astype(np.int64)
        sq = np.concatenate([[0.0], np.cumsum(audio16.astype(np.float64) ** 2)])
        loud = np.sqrt((sq[starts + n] - sq[starts]) / n) >= SILENCE_RMS
        return windows, times.astype(np.float64), loud

    def _encode(self, windows: np.ndarray) -> np.ndarray:
        """Packed codes ``(n, bits/8)`` uint8 of raw MFCC windows."""
        if isinstance(self.model, NumpyEncoder):
            return pack(self.model.hash_windows(windows, batch_size=self.params["batch_size"], standardise=True))
        import torch

        with torch.inference_mode():
            z = self.model.hash_windows(windows, batch_size=self.params["batch_size"], standardise=True)
        return pack(z)

    def _prepare(self, audio: np.ndarray, sr: int) -> np.ndarray:
        return resample(audio, sr, self.features.sr) if sr != self.features.sr else audio

    # -- the Fingerprinter interface ---------------------------------------------------------------------------
    def add(self, ref_id: str, audio: np.ndarray, sr: int) -> None:
        """Hash the windows of a reference every ``db_hop_s`` and index them.

        Raises
        ------
        AudioError
            Empty, stereo, non-finite, silent or shorter than one window (the message names ``ref_id``).
        ValueError
            ``ref_id`` is already in the database, or is not a non-empty string.
        """
        if not isinstance(ref_id, str) or not ref_id:
            raise ValueError(f"ref_id must be a non-empty string, got {ref_id!r}")
        if ref_id in self._ref_pos:
            raise ValueError(f"reference {ref_id!r} is already in the database")
        windows, times, seconds = self.reference_windows(ref_id, audio, sr)
        self._store(ref_id, self._encode(windows), times, seconds)

    def reference_windows(self, ref_id: str, audio: np.ndarray, sr: int) -> tuple[np.ndarray, np.ndarray, float]:
        """What :meth:`add` hashes: the loud MFCC windows of a reference every ``db_hop_s``, their start times and
        the reference's duration (s). Nothing here depends on the model, so a caller that adds the same audio
        many times (the validation task of every epoch) computes it once and stores codes with :meth:`add_record`.

        Raises
        ------
        AudioError
            As :meth:`add`.
        """
        a = check_audio(audio, sr, name=f"reference {ref_id!r}", min_duration_s=self.features.window_s)
        a16 = self._prepare(a, sr)
        windows, times, loud = self._windows(a16, self.params["db_hop_s"])
        if not loud.any():
            raise AudioError(f"reference {ref_id!r}: no window is louder than the silence level "
                             f"(RMS {SILENCE_RMS:g}); nothing to fingerprint")
        return windows[loud], times[loud], a.size / sr

    def encode(self, windows: np.ndarray) -> np.ndarray:
        """Packed codes ``(n, bits / 8)`` uint8 of raw MFCC windows ``(n, 100, 13)`` (of :meth:`reference_windows`
        or :meth:`query_windows`)."""
        return self._encode(windows)

    def _store(self, ref_id: str, codes: np.ndarray, times: np.ndarray, seconds: float) -> None:
        """Append the windows of a new reference (packed ``codes`` and their start ``times``)."""
        pos = len(self._refs)
        first = len(self._code_rows)
        if self._index.kind == "ivf" and first == 0:
            # an ivf index trains on the codes of its first add: the first reference enters it at once, as it
            # always did, so that it trains on the same codes (and too few of them fail here, in add)
            self._index.add(codes, np.arange(codes.shape[0], dtype=np.int64))
            self._indexed = codes.shape[0]
        self._code_rows.append(codes)
        self._ref_rows.append(np.full(codes.shape[0], pos, np.int32))
        self._time_rows.append(times.astype(np.float32))
        self._refs.append(ref_id)
        self._ref_pos[ref_id] = pos
        self._ref_seconds.append(seconds)
        self._ref_span.append((first, first + codes.shape[0]))

    def reference_record(self, ref_id: str) -> dict[str, np.ndarray]:
        """The stored windows of ``ref_id``: packed ``codes``, start ``times``, and its ``seconds``."""
        pos = self._ref_pos[ref_id]
        first, end = self._ref_span[pos]
        return {"codes": self._codes[first:end], "times": self._win_time[first:end],
                "seconds": np.float64(self._ref_seconds[pos])}

    def add_record(self, ref_id: str, record: dict[str, np.ndarray]) -> None:
        """Store a record of :meth:`reference_record` under the new ``ref_id`` (codes of this model's width)."""
        if ref_id in self._ref_pos:
            raise ValueError(f"reference {ref_id!r} is already in the database")
        r = check_record("samaf", ref_id, record, {"codes": ("uint8", 2), "times": ("float32", 1),
                                                   "seconds": ("f8", 0)})
        codes = r["codes"]
        if codes.shape[0] == 0 or codes.shape[1] != self.bits // 8:
            raise ValueError(f"samaf: the record of {ref_id!r} holds {codes.shape[0]} code(s) of "
                             f"{codes.shape[1] * 8} bits; this database stores {self.bits}-bit codes")
        self._store(ref_id, codes, r["times"], float(r["seconds"]))

    def fingerprint(self, audio: np.ndarray, sr: int) -> tuple[np.ndarray, np.ndarray]:
        """The hashes of a clip's windows every ``db_hop_s``.

        Unlike the other systems, whose codes are one integer each, SAMAF's codes are returned packed:
        ``codes`` is ``(n, bits / 8)`` uint8 (unpack with :func:`samaf_lib.hashing.unpack` for the bits), since a
        128- or 256-bit hash does not fit one integer.

        Returns
        -------
        codes : np.ndarray, uint8, shape (n, bits / 8)
        times_s : np.ndarray, float64, shape (n,)
            Window start times. A clip shorter than one window gives ``n = 0``.

        Raises
        ------
        AudioError
            Empty, stereo or non-finite audio.
        """
        a = check_audio(audio, sr, name="clip", min_duration_s=0.0, allow_silence=True)
        a16 = self._prepare(a, sr)
        if a16.size < int(round(self.features.window_s * self.features.sr)):
            return np.zeros((0, self.bits // 8), np.uint8), np.zeros(0, np.float64)
        windows, times, _ = self._windows(a16, self.params["db_hop_s"])
        return self._encode(windows), times

    def identify(self, audio: np.ndarray, sr: int) -> Match:
        """Best reference and offset for a query (see the module docs for the score).

        Returns ``Match(None, 0.0, 0.0)`` for an empty database, a query shorter than one window, a silent
        query or no hit within ``max_distance``; ``Match(None, offset, score)`` when the best score is below
        ``min_score`` (with ``min_score=0`` the best candidate is always returned when there is one).

        Raises
        ------
        AudioError
            Empty, stereo or non-finite audio, or a bad sample rate.
        """
        a = check_audio(audio, sr, name="query", min_duration_s=0.0, allow_silence=True)
        if not self._refs:
            return NO_MATCH
        prepared = self.query_windows(a, sr)
        if prepared is None:
            return NO_MATCH
        windows, times, n_query = prepared
        return self.identify_codes(self._encode(windows), times, n_query)

    def query_windows(self, audio: np.ndarray, sr: int) -> tuple[np.ndarray, np.ndarray, int] | None:
        """What :meth:`identify` hashes: the loud MFCC windows of a query every ``query_hop_s``, their start times
        and the number of windows the query has, loud or not; ``None`` when :meth:`identify` answers no match
        without hashing (a query shorter than one window, or silent). Nothing here depends on the model.

        Raises
        ------
        AudioError
            As :meth:`identify`.
        """
        a = check_audio(audio, sr, name="query", min_duration_s=0.0, allow_silence=True)
        a16 = self._prepare(a, sr)
        if a16.size < int(round(self.features.window_s * self.features.sr)) or rms(a16) < SILENCE_RMS:
            return None
        windows, times, loud = self._windows(a16, self.params["query_hop_s"])
        if not loud.any():
            return None
        return windows[loud], times[loud], int(windows.shape[0])

    def identify_codes(self, codes: np.ndarray, times: np.ndarray, n_query: int) -> Match:
        """:meth:`identify` for a query already hashed: ``codes`` of :meth:`encode` on the windows of
        :meth:`query_windows`, with its ``times`` and ``n_query``."""
        if not self._refs or codes.shape[0] == 0:
            return NO_MATCH
        self._sync_index()
        dist, ids = self._index.search(codes, self.params["k"])
        candidates = self._vote(dist, ids, times, n_query)
        if not candidates:
            return NO_MATCH
        if self.params["verify"] > 0:
            score, ref, offset = self._verified_best(codes, times, candidates)
        else:
            score, ref, offset = candidates[0]
        offset_s = max(0.0, round(float(offset), 3))
        if score < self.params["min_score"]:
            return Match(None, offset_s, float(score))
        return Match(self._refs[ref], offset_s, float(score))

    def _vote(self, dist: np.ndarray, ids: np.ndarray, q_times: np.ndarray,
              n_query: int) -> list[tuple[float, int, float]]:
        """Candidates ``(vote score, reference index, offset_s)``, best first (see the module docs)."""
        hop = self._effective_hop(self.params["db_hop_s"])
        ok = (ids >= 0) & (dist <= self.radius)
        if not ok.any():
            return []
        q = np.broadcast_to(np.arange(dist.shape[0])[:, None], dist.shape)[ok]
        hit = ids[ok]
        w = 1.0 - dist[ok] / (self.radius + 1.0)
        ref = self._win_ref[hit].astype(np.int64)
        offset = self._win_time[hit].astype(np.float64) - q_times[q]
        b = np.round(offset / hop).astype(np.int64)
        # each hit supports the candidates (ref, b) and (ref, b - 1): a candidate spans two adjacent bins
        idx = np.arange(q.size)
        cand_ref, cand_bin = np.concatenate([ref, ref]), np.concatenate([b, b - 1])
        qq, ww, hh = np.concatenate([q, q]), np.concatenate([w, w]), np.concatenate([idx, idx])
        # best hit per (candidate, query window): sort by candidate, window, then descending weight
        order = np.lexsort((-ww, qq, cand_bin, cand_ref))
        cr, cb, cq, cw, ch = cand_ref[order], cand_bin[order], qq[order], ww[order], hh[order]
        first = np.ones(cr.size, bool)
        first[1:] = (cr[1:] != cr[:-1]) | (cb[1:] != cb[:-1]) | (cq[1:] != cq[:-1])
        cr, cb, cw, ch = cr[first], cb[first], cw[first], ch[first]
        start = np.ones(cr.size, bool)
        start[1:] = (cr[1:] != cr[:-1]) | (cb[1:] != cb[:-1])
        group = np.cumsum(start) - 1
        scores = np.bincount(group, weights=cw) / n_query
        offsets = np.bincount(group, weights=cw * offset[ch]) / np.bincount(group, weights=cw)
        group_ref = cr[start]
        # best first; ties go to the lower reference index, then the lower bin (stable sort keeps that order)
        best = np.argsort(-scores, kind="stable")
        want = max(1, self.params["verify"])
        out: list[tuple[float, int, float]] = []
        for g in best:
            ref_g, off_g = int(group_ref[g]), float(offsets[g])
            # two candidates of one reference closer than half a hop are one alignment
            if any(r == ref_g and abs(o - off_g) < hop / 2 for _, r, o in out):
                continue
            out.append((float(scores[g]), ref_g, off_g))
            if len(out) >= want:
                break
        return out

    def _verified_best(self, codes: np.ndarray, q_times: np.ndarray,
                       candidates: list[tuple[float, int, float]]) -> tuple[float, int, float]:
        """Verify the references of the best candidates; score = best alignment's agreement minus a background.

        Each of the ``verify`` best-voted references is scanned at every offset on the query-hop grid
        (:meth:`_scan`). The reference and offset of highest agreement win. The background is the highest
        agreement of a different alignment: another scanned reference, or the winner at least one window away;
        with neither, the chance agreement with a fixed sample of stored windows. The margin removes what any
        speech reaches at its best alignment, which varies from query to query (with a weakly trained model,
        codes carry the voice as much as the content).
        """
        refs: list[int] = []
        for _, ref, _ in candidates:
            if ref not in refs:
                refs.append(ref)
            if len(refs) >= self.params["verify"]:
                break
        voted = {ref: [o for _, r, o in candidates if r == ref] for ref in refs}
        scans = [(self._scan(codes, q_times, ref, voted[ref]), ref) for ref in refs]
        (agree, offset, far), ref = max(scans, key=lambda x: x[0][0])  # first of equals: the better voted
        others = [far] + [sc[0] for sc, r in scans if r != ref]
        others = [o for o in others if np.isfinite(o)]
        background = max(others) if others else self._chance_agreement(codes)
        if not np.isfinite(agree):
            return 0.0, ref, offset
        return max(0.0, min(1.0, agree - background)), ref, offset

    def _chance_agreement(self, codes: np.ndarray) -> float:
        """Mean ``1 - 2 d / bits`` between the query windows and up to 256 stored windows spread over the database."""
        n = self._codes.shape[0]
        sample = self._codes[np.linspace(0, n - 1, min(n, 256)).astype(np.int64)]
        return float(np.mean(1.0 - 2.0 * hamming(codes, sample) / self.bits))

    def _scan(self, codes: np.ndarray, q_times: np.ndarray, ref: int,
              around: list[float] | None = None) -> tuple[float, float, float]:
        """Agreement of the query with reference ``ref`` at every offset on the query-hop grid.

        With ``around`` (the voted offsets of this reference), only offsets within :data:`SCAN_RADIUS_S` of one
        of them are scanned, so the cost depends on the query, not on the reference's length.

        At offset ``o`` each reference window whose start ``T`` falls within the query's span (``o + [0, last
        query window]``, +- half a reference hop) is compared with the query window nearest to ``T - o``; the
        agreement is ``sum (1 - 2 d / bits) / n_expected``, where ``n_expected`` is the number of reference windows
        a fully covered span holds, so that windows missing from the reference (past its end, silent) count as
        chance. 1 for an identical copy whose offset lies on the query-hop grid, about 0 for unrelated audio
        with balanced bits.

        Returns
        -------
        best : float
            Highest agreement (``-inf`` when no offset covers a window).
        offset : float
            Its offset in seconds.
        far_best : float
            Highest agreement at offsets at least one window from ``offset`` (``-inf`` when none).
        """
        lo, hi = self._ref_span[ref]
        times = self._win_time[lo:hi].astype(np.float64)
        q_hop = self._effective_hop(self.params["query_hop_s"])
        db_hop = self._effective_hop(self.params["db_hop_s"])
        half = db_hop / 2
        n_full = int(round(q_times[-1] / q_hop)) + 1  # query windows on the full grid (silent ones included)
        slot = np.full(n_full, -1, np.int64)  # full-grid index -> index among the looked-up windows
        slot[np.round(q_times / q_hop).astype(np.int64)] = np.arange(q_times.size)
        span = (n_full - 1) * q_hop
        n_expected = int(np.floor(span / db_hop)) + 1
        o_lo, o_hi = times[0] - half, max(times[0] - half, times[-1] - span + half)
        offsets = np.round(np.arange(np.floor(o_lo / q_hop), np.ceil(o_hi / q_hop) + 1) * q_hop, 6)
        if around:
            near = np.min(np.abs(offsets[:, None] - np.asarray(around, np.float64)[None, :]), axis=1)
            keep_off = near <= SCAN_RADIUS_S + 1e-9
            keep = (times >= offsets[keep_off].min() - half) & (times <= offsets[keep_off].max() + span + half) \
                if keep_off.any() else np.zeros(times.size, bool)
            if keep.any():  # the windows are sorted by time: keep one contiguous run
                offsets = offsets[keep_off]
                first, last = int(np.argmax(keep)), times.size - int(np.argmax(keep[::-1]))
                lo, hi, times = lo + first, lo + last, times[first:last]
        dist = hamming(self._codes[lo:hi], codes)  # (reference windows, query windows)
        k = np.round((times[:, None] - offsets[None, :]) / q_hop).astype(np.int64)  # nearest full-grid window
        inside = (k >= 0) & (k < n_full) & (np.abs(times[:, None] - offsets[None, :] - k * q_hop) <= half + 1e-6)
        q_idx = np.where(inside, slot[np.clip(k, 0, n_full - 1)], -1)
        valid = q_idx >= 0
        rows = np.broadcast_to(np.arange(times.size)[:, None], q_idx.shape)
        sim = np.where(valid, 1.0 - 2.0 * dist[rows, np.clip(q_idx, 0, None)] / self.bits, 0.0)
        agree = np.where(valid.any(axis=0), sim.sum(axis=0) / n_expected, -np.inf)
        j = int(np.argmax(agree))
        far = np.abs(offsets - offsets[j]) >= self.features.window_s - 1e-6
        far_best = float(agree[far].max()) if far.any() else -np.inf
        return float(agree[j]), float(offsets[j]), far_best

    # -- for the notebooks: what a query sees --------------------------------------------------------------------
    def windows(self, audio: np.ndarray, sr: int, hop_s: float | None = None) -> np.ndarray:
        """Raw MFCC windows of a clip, float32 ``(n, 100, 13)``, every ``hop_s`` (default ``db_hop_s``)."""
        a = check_audio(audio, sr, name="audio", min_duration_s=self.features.window_s, allow_silence=True)
        return self._windows(self._prepare(a, sr), hop_s or self.params["db_hop_s"])[0]

    def candidates(self, audio: np.ndarray, sr: int, top: int = 5) -> "pandas.DataFrame":  # noqa: F821
        """The vote table of a query: its ``top`` best-voted (reference, offset) candidates.

        Returns
        -------
        DataFrame
            ``ref_id, offset_s, votes`` (the vote score: similarity-weighted hits per query window) and
            ``agreement`` (the verification scan's best agreement with that reference, see :meth:`identify`);
            empty when the query is too short, silent or finds no hit.
        """
        import pandas as pd

        cols = ["ref_id", "offset_s", "votes", "agreement"]
        a = check_audio(audio, sr, name="query", min_duration_s=0.0, allow_silence=True)
        a16 = self._prepare(a, sr)
        if not self._refs or a16.size < int(round(self.features.window_s * self.features.sr)):
            return pd.DataFrame(columns=cols)
        windows, times, loud = self._windows(a16, self.params["query_hop_s"])
        if not loud.any():
            return pd.DataFrame(columns=cols)
        codes = self._encode(windows[loud])
        self._sync_index()
        dist, ids = self._index.search(codes, self.params["k"])
        saved = self.params["verify"]
        self.params["verify"] = max(int(top), 1)
        try:
            cands = self._vote(dist, ids, times[loud], windows.shape[0])
        finally:
            self.params["verify"] = saved
        rows = [{"ref_id": self._refs[r], "offset_s": round(o, 3), "votes": v,
                 "agreement": self._scan(codes, times[loud], r)[0]} for v, r, o in cands]
        return pd.DataFrame(rows, columns=cols)

    # -- database ------------------------------------------------------------------------------------------------
    def references(self) -> list[str]:
        """Reference ids in the order they were added."""
        return list(self._refs)

    def __contains__(self, ref_id: object) -> bool:
        return ref_id in self._ref_pos

    def __len__(self) -> int:
        return len(self._refs)

    def stats(self) -> dict:
        """Database size and the hash's bit rate.

        ``bits_per_second`` is what is stored per second of reference audio (``bits / db_hop_s``: 256 for 128 bits
        every 0.5 s); ``hash_bits_per_second`` is the hash itself (``bits`` per window: ``bits`` / the window's
        seconds). ``bytes`` counts the packed codes plus the per-window reference index (int32) and start time
        (float32).
        """
        nbytes = int(self._codes.nbytes + self._win_ref.nbytes + self._win_time.nbytes)
        return _stats(self.params, self.model.config, len(self._refs), int(self._codes.shape[0]), nbytes,
                      float(sum(self._ref_seconds)))

    @staticmethod
    def read_stats(path: str | os.PathLike) -> tuple[dict, list[str]]:
        """:meth:`stats` and :meth:`references` of a saved database, without loading its model or codes.

        Reads the file's metadata and the shapes of its arrays only (no torch, no faiss), so that describing a
        database (``samaf info``) takes a fraction of a second whatever its size.

        Returns
        -------
        stats : dict
            Equal to ``SAMAFSystem.load(path).stats()``.
        references : list of str
            Equal to ``SAMAFSystem.load(path).references()``.

        Raises
        ------
        FileNotFoundError, ValueError
            As :meth:`load`.
        """
        import zipfile

        p = Path(path)
        if not p.is_file():
            raise FileNotFoundError(f"{p}: no SAMAF database there")
        try:
            with zipfile.ZipFile(p) as z:
                with z.open("meta.npy") as fh:
                    meta = json.loads(str(np.lib.format.read_array(fh, allow_pickle=False)))
                if meta.get("format") != _FORMAT:
                    raise ValueError(f"format {meta.get('format')!r}, expected {_FORMAT!r}")
                shapes = {}
                for name in ("codes", "win_ref", "win_time"):
                    with z.open(f"{name}.npy") as fh:
                        shapes[name] = _npy_shape(fh)
            params, config = dict(meta["params"]), dict(meta["model_config"])
            refs = [str(r) for r in meta["refs"]]
            seconds = float(sum(float(x) for x in meta["ref_seconds"]))
        except (OSError, KeyError, ValueError, json.JSONDecodeError, EOFError) as e:
            raise ValueError(f"{p}: not a readable SAMAF database ({type(e).__name__}: {e})") from e
        except Exception as e:  # zipfile.BadZipFile and friends
            raise ValueError(f"{p}: not a readable SAMAF database ({type(e).__name__}: {e})") from e
        codes, win_ref, win_time = (shapes[k][0] for k in ("codes", "win_ref", "win_time"))
        width = int(params["bits"]) // 8
        if len(codes) != 2 or codes[1] != width or not (len(win_ref) == len(win_time) == 1) or not (
                codes[0] == win_ref[0] == win_time[0]):
            raise ValueError(f"{p}: inconsistent SAMAF database arrays")
        # load() casts the arrays to uint8, int32 and float32: count those sizes
        n = codes[0]
        nbytes = n * width + n * 4 + n * 4
        return _stats(params, config, len(refs), n, nbytes, seconds), refs

    def save(self, path: str | os.PathLike) -> None:
        """Write the database and the model (weights, standardisation, config) to one ``.npz`` file, atomically."""
        from ..io import atomic_path, save_npz

        arrays = {f"model/{k}": _as_numpy(v) for k, v in self.model.state_dict().items()}
        meta = {"format": _FORMAT, "params": self.params, "model_config": self.model.config,
                "refs": self._refs, "ref_seconds": self._ref_seconds}
        with atomic_path(path, suffix=".npz") as tmp:
            # byte-reproducible (no timestamps in the zip): the same database gives the same file
            save_npz(tmp, False, codes=self._codes, win_ref=self._win_ref, win_time=self._win_time,
                     meta=np.array(json.dumps(meta)), **arrays)

    @classmethod
    def load(cls, path: str | os.PathLike) -> SAMAFSystem:
        """Open a database written by :meth:`save` (no checkpoint needed: the model is inside).

        Raises
        ------
        FileNotFoundError
            No file at ``path``.
        ValueError
            The file is not a readable SAMAF database.
        """
        import torch

        from ..model import load_state, model_from_config

        p = Path(path)
        if not p.is_file():
            raise FileNotFoundError(f"{p}: no SAMAF database there")
        try:
            with np.load(p, allow_pickle=False) as f:
                meta = json.loads(str(f["meta"]))
                if meta.get("format") != _FORMAT:
                    raise ValueError(f"format {meta.get('format')!r}, expected {_FORMAT!r}")
                state = {k[len("model/"):]: torch.from_numpy(np.array(f[k])) for k in f.files
                         if k.startswith("model/")}
                codes, win_ref, win_time = f["codes"], f["win_ref"], f["win_time"]
            model = model_from_config(meta["model_config"])
            load_state(model, state, source=str(p))
        except (OSError, KeyError, ValueError, json.JSONDecodeError, EOFError) as e:
            raise ValueError(f"{p}: not a readable SAMAF database ({type(e).__name__}: {e})") from e
        except Exception as e:  # zipfile.BadZipFile and friends
            raise ValueError(f"{p}: not a readable SAMAF database ({type(e).__name__}: {e})") from e
        params = dict(meta["params"])
        system = cls(model=model, **{k: v for k, v in params.items() if k != "checkpoint"})
        system.params["checkpoint"] = params.get("checkpoint")
        if codes.ndim != 2 or codes.shape[1] != system.bits // 8 or not (
                codes.shape[0] == win_ref.shape[0] == win_time.shape[0]):
            raise ValueError(f"{p}: inconsistent SAMAF database arrays")
        system._code_rows = _Rows.of(codes.astype(np.uint8))
        system._ref_rows = _Rows.of(win_ref.astype(np.int32))
        system._time_rows = _Rows.of(win_time.astype(np.float32))
        system._sync_index()
        system._refs = [str(r) for r in meta["refs"]]
        system._ref_pos = {r: i for i, r in enumerate(system._refs)}
        system._ref_seconds = [float(s) for s in meta["ref_seconds"]]
        bounds = np.searchsorted(system._win_ref, np.arange(len(system._refs) + 1))
        system._ref_span = [(int(bounds[i]), int(bounds[i + 1])) for i in range(len(system._refs))]
        return system


SYSTEM = SAMAFSystem


def _effective_hop(cfg: MFCCConfig, hop_s: float) -> float:
    """``hop_s`` rounded to whole feature frames (10 ms), at least one frame."""
    step = max(1, int(round(hop_s * cfg.sr / cfg.hop_length)))
    return step * cfg.hop_length / cfg.sr


def _stats(params: dict, model_config: dict, n_refs: int, n_windows: int, nbytes: int, seconds: float) -> dict:
    """The dictionary :meth:`SAMAFSystem.stats` returns (shared with :meth:`SAMAFSystem.read_stats`)."""
    bits = int(params["bits"])
    features = _model_features(model_config)
    return {
        "name": SAMAFSystem.name,
        "references": n_refs,
        "fingerprints": n_windows,
        "seconds": seconds,
        "bytes": nbytes,
        "bytes_per_second": nbytes / seconds if seconds else 0.0,
        "bits_per_second": bits / _effective_hop(features, params["db_hop_s"]),
        "hash_bits_per_second": bits / features.window_s,
        "params": dict(params),
        "model": dict(model_config),
    }


def _model_features(model_config: dict) -> MFCCConfig:
    """The MFCC settings of a model's windows: its coefficients and a window of its ``frames`` (100: 1 s)."""
    return MFCCConfig(n_mfcc=int(model_config["n_mfcc"]), window_s=window_seconds(model_config["frames"]))


def _npy_shape(fh) -> tuple[tuple[int, ...], np.dtype]:
    """``(shape, dtype)`` from the header of an ``.npy`` stream, reading nothing else."""
    version = np.lib.format.read_magic(fh)
    if version == (1, 0):
        shape, _, dtype = np.lib.format.read_array_header_1_0(fh)
    elif version == (2, 0):
        shape, _, dtype = np.lib.format.read_array_header_2_0(fh)
    else:
        raise ValueError(f"unsupported .npy version {version}")
    return tuple(int(d) for d in shape), dtype


def _check_int(name: str, value: Any, lo: int, hi: int | None) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < lo or (
            hi is not None and value > hi):
        rng = f">= {lo}" if hi is None else f"in [{lo}, {hi}]"
        raise ValueError(f"{name} must be an integer {rng}, got {value!r}")


def _check_float(name: str, value: Any, lo: float, hi: float, low_open: bool = False) -> None:
    ok = not isinstance(value, bool) and isinstance(value, (int, float, np.floating)) and np.isfinite(value)
    ok = ok and (value > lo if low_open else value >= lo) and value <= hi
    if not ok:
        raise ValueError(f"{name} must be a number in {'(' if low_open else '['}{lo:g}, {hi:g}], got {value!r}")
