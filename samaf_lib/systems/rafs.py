"""RAFS: Haitsma & Kalker's "highly robust audio fingerprinting system" (ISMIR 2002), written from the paper.

Extraction (paper §4.2, docs/study.md, Systems)
    Audio is resampled to 5512 Hz mono and cut into 2048-sample Hann frames (0.37 s) every 64 samples (11.6 ms,
    overlap 31/32). The power spectrum of each frame is summed over 33 non-overlapping bands spaced
    logarithmically between 300 and 2000 Hz, giving band energies ``E(n, m)``. Bit ``m`` (0..31) of the
    sub-fingerprint of frame ``n`` is::

        F(n, m) = 1  iff  E(n, m) - E(n, m+1) - (E(n-1, m) - E(n-1, m+1)) > 0

    and the magnitude of that difference is the bit's reliability. The 32 bits are packed into one ``uint32``,
    bit 0 in the most significant position (so ``bit_image`` columns read left to right, MSB first).
    Sub-fingerprint ``k`` of a clip uses frames ``k`` and ``k + 1``; its time is the start of frame ``k``,
    ``k * 64 / 5512`` s. A clip of ``n`` samples at 5512 Hz has ``(n - 2048) // 64`` sub-fingerprints.

Database
    All reference sub-fingerprints in one ``uint32`` array, references stored one after another (``ref_starts``
    gives where each begins, so a position gives the reference and its frame). Lookup by exact 32-bit value goes
    through a sorted copy of the codes and ``np.searchsorted``; the sorted copy is rebuilt after ``add`` and on
    ``load`` and is not stored. Sub-fingerprints of near-silent frames (band energy below that of -100 dBFS
    white noise) are kept for BER verification but left out of the lookup: in digital silence every bit is 0,
    and such codes would match every pause in every reference.

Search (paper §4.3)
    The query is cut into consecutive blocks of ``block`` (256) sub-fingerprints, at most ``max_blocks``; a query
    shorter than a block is one short block. For each block, every sub-fingerprint is looked up exactly and with
    every combination of its ``flip_bits`` least reliable bits toggled (``2 ** flip_bits`` lookups each; the
    paper goes up to 10 bits, 1024 lookups). Each hit proposes an alignment (reference, start frame = hit frame
    - query frame). Each distinct alignment (the ``max_candidates`` with most hits) is verified by the bit error
    rate (BER) between the block and the reference at that alignment, over their overlap (an alignment that runs
    past an end of the reference compares only the overlap, which must be at least
    ``min(min_overlap, block length)`` sub-fingerprints). The best (lowest-BER) alignment over all blocks wins;
    ``score = 1 - BER``, and a score below ``min_score`` (default ``1 - 0.35``, the paper's BER threshold 0.35)
    is rejected. ``offset_s`` is where the query starts in the reference: start frame ``* 64 / 5512``.
"""

from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import scipy.fft

from ..audio import SILENCE_RMS, AudioError, check_audio, resample, rms
from ..io import atomic_path, save_npz
from .base import NO_MATCH, Match, check_record

#: Number of bits per sub-fingerprint (33 bands give 32 band differences).
N_BITS = 32
#: A frame whose total band energy is below that of white noise at this RMS (-100 dBFS) is "quiet".
QUIET_RMS = 1e-5
#: Frames fingerprinted per FFT call (bounds the memory of the frame matrix: 2048 x 2048 float32 = 16 MB).
_CHUNK_FRAMES = 2048
#: Candidate alignments verified per vectorised BER batch.
_VERIFY_BATCH = 2048
#: Format tag written into saved databases.
_FORMAT = "samaf-rafs-1"

_DEFAULTS: dict[str, Any] = {
    "sr": 5512,
    "frame_size": 2048,
    "hop": 64,
    "fmin": 300.0,
    "fmax": 2000.0,
    "block": 256,
    "flip_bits": 3,
    "max_blocks": 4,
    "min_overlap": 32,
    "max_candidates": 10000,
    "min_score": 0.65,
}


# --------------------------------------------------------------------------------------------- extraction


def band_edges(sr: int = 5512, frame_size: int = 2048, fmin: float = 300.0,
               fmax: float = 2000.0) -> np.ndarray:
    """FFT-bin boundaries of the 33 log-spaced bands.

    Parameters
    ----------
    sr, frame_size : int
        Sample rate and FFT length.
    fmin, fmax : float
        Lower edge of the first band and upper edge of the last, in Hz.

    Returns
    -------
    np.ndarray, int64, shape (34,)
        Band ``m`` sums rfft bins ``edges[m] <= k < edges[m + 1]`` (bin ``k`` is at ``k * sr / frame_size`` Hz).

    Raises
    ------
    ValueError
        A band holds no FFT bin (``frame_size`` too small for the band widths).
    """
    hz = np.geomspace(fmin, fmax, N_BITS + 2)
    edges = np.ceil(hz * frame_size / sr - 1e-9).astype(np.int64)
    if np.any(np.diff(edges) < 1):
        raise ValueError(f"frame_size={frame_size} at sr={sr} leaves a band between {fmin} and {fmax} Hz with "
                         "no FFT bin; use a larger frame_size or a wider band range")
    return edges


def band_energies(audio: np.ndarray, sr: int = 5512, frame_size: int = 2048, hop: int = 64,
                  fmin: float = 300.0, fmax: float = 2000.0) -> np.ndarray:
    """Band energies ``E(n, m)`` of Hann-windowed frames of audio already at ``sr``.

    Parameters
    ----------
    audio : np.ndarray, float, shape (n,)
        Mono samples at ``sr``.
    sr, frame_size, hop : int
        Sample rate, frame length and hop in samples.
    fmin, fmax : float
        Band range in Hz.

    Returns
    -------
    np.ndarray, float64, shape (n_frames, 33)
        ``n_frames = 1 + (n - frame_size) // hop`` (0 when the clip is shorter than a frame). Power spectrum
        summed per band.
    """
    x = np.ascontiguousarray(audio, dtype=np.float32)
    n_bands = N_BITS + 1
    if x.size < frame_size:
        return np.zeros((0, n_bands), dtype=np.float64)
    edges = band_edges(sr, frame_size, fmin, fmax)
    lo, hi = int(edges[0]), int(edges[-1])
    # 0/1 matrix from the used bins to the bands: power[:, lo:hi] @ members sums each band.
    members = np.zeros((hi - lo, n_bands), dtype=np.float32)
    for m in range(n_bands):
        members[edges[m] - lo: edges[m + 1] - lo, m] = 1.0
    window = np.hanning(frame_size + 1)[:-1].astype(np.float32)  # periodic Hann
    frames = np.lib.stride_tricks.sliding_window_view(x, frame_size)[::hop]
    out = np.empty((frames.shape[0], n_bands), dtype=np.float64)
    for i in range(0, frames.shape[0], _CHUNK_FRAMES):
        spec = scipy.fft.rfft(frames[i: i + _CHUNK_FRAMES] * window, axis=1)[:, lo:hi]
        power = spec.real ** 2 + spec.imag ** 2
        out[i: i + _CHUNK_FRAMES] = power @ members
    return out


def energy_bits(energies: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The paper's bit derivation from band energies.

    Parameters
    ----------
    energies : np.ndarray, float, shape (n_frames, n_bands)
        ``E(n, m)``.

    Returns
    -------
    bits : np.ndarray, bool, shape (n_frames - 1, n_bands - 1)
        ``bits[k, m]`` is ``F(k + 1, m)``: ``E(n,m) - E(n,m+1) - (E(n-1,m) - E(n-1,m+1)) > 0`` with ``n = k + 1``.
    reliability : np.ndarray, float64, shape (n_frames - 1, n_bands - 1)
        ``|E(n,m) - E(n,m+1) - (E(n-1,m) - E(n-1,m+1))|``; small means the bit flips easily.
    """
    e = np.asarray(energies, dtype=np.float64)
    if e.ndim != 2 or e.shape[1] < 2:
        raise ValueError(f"energies must be shaped (n_frames, n_bands >= 2), got {e.shape}")
    freq_diff = e[:, :-1] - e[:, 1:]
    d = freq_diff[1:] - freq_diff[:-1]
    return d > 0, np.abs(d)


def pack_bits(bits: np.ndarray) -> np.ndarray:
    """Pack (n, 32) bits into uint32 codes, column 0 in the most significant bit. Returns uint32 (n,)."""
    b = np.asarray(bits, dtype=bool)
    if b.ndim != 2 or b.shape[1] != N_BITS:
        raise ValueError(f"bits must be shaped (n, {N_BITS}), got {b.shape}")
    return np.packbits(b, axis=1, bitorder="big").view(">u4")[:, 0].astype(np.uint32)


def unpack_bits(codes: np.ndarray) -> np.ndarray:
    """Inverse of :func:`pack_bits`: uint32 (n,) -> uint8 (n, 32) of 0/1, MSB first."""
    c = np.ascontiguousarray(np.asarray(codes).astype(">u4", copy=False).reshape(-1))
    return np.unpackbits(c.view(np.uint8).reshape(-1, 4), axis=1, bitorder="big")


def _to_rate(audio: np.ndarray, sr: int, target_sr: int) -> np.ndarray:
    return resample(audio, sr, target_sr) if sr != target_sr else np.asarray(audio, dtype=np.float32)


def _quiet_level(sr: int, frame_size: int, fmin: float, fmax: float) -> float:
    """Total band energy of white noise at ``QUIET_RMS`` (Hann window, rfft power, bins in the bands)."""
    edges = band_edges(sr, frame_size, fmin, fmax)
    window = np.hanning(frame_size + 1)[:-1]
    return float((edges[-1] - edges[0]) * np.sum(window ** 2) * QUIET_RMS ** 2)


def subfingerprints(audio: np.ndarray, sr: int, *, target_sr: int = 5512, frame_size: int = 2048,
                    hop: int = 64, fmin: float = 300.0,
                    fmax: float = 2000.0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sub-fingerprints of a checked mono clip at any rate.

    Parameters
    ----------
    audio : np.ndarray, float, shape (n,)
        Mono samples at ``sr`` (validate with :func:`samaf_lib.audio.check_audio` first).
    sr : int
        Their sample rate; resampled to ``target_sr``.
    target_sr, frame_size, hop, fmin, fmax
        Extraction parameters (paper defaults).

    Returns
    -------
    codes : np.ndarray, uint32, shape (k,)
        One 32-bit sub-fingerprint per frame after the first (``k = n_frames - 1``, 0 for a short clip).
    reliability : np.ndarray, float64, shape (k, 32)
        Per-bit reliability ``|difference|``.
    quiet : np.ndarray, bool, shape (k,)
        The two frames of the sub-fingerprint are near-silent (left out of the lookup table).
    """
    x = _to_rate(audio, sr, target_sr)
    e = band_energies(x, target_sr, frame_size, hop, fmin, fmax)
    if e.shape[0] < 2:
        return (np.zeros(0, np.uint32), np.zeros((0, N_BITS), np.float64), np.zeros(0, bool))
    bits, rel = energy_bits(e)
    total = e.sum(axis=1)
    level = _quiet_level(target_sr, frame_size, fmin, fmax)
    quiet = np.maximum(total[1:], total[:-1]) < level
    return pack_bits(bits), rel, quiet


def bit_image(audio: np.ndarray, sr: int) -> np.ndarray:
    """The fingerprint bit image of a clip with the paper's parameters (for figures).

    Parameters
    ----------
    audio : np.ndarray, float, shape (n,)
        Mono samples.
    sr : int
        Their sample rate.

    Returns
    -------
    np.ndarray, uint8, shape (n_subfingerprints, 32)
        Row ``k`` is sub-fingerprint ``k`` (time ``k * 64 / 5512`` s), column ``m`` its bit ``m`` (0 or 1).
    """
    a = check_audio(audio, sr, name="audio", min_duration_s=0.0, allow_silence=True)
    codes, _, _ = subfingerprints(a, sr)
    return unpack_bits(codes)


def ber(a: np.ndarray, b: np.ndarray) -> float:
    """Bit error rate between two equally long sub-fingerprint arrays.

    Parameters
    ----------
    a, b : np.ndarray, uint32 (or integers below 2**32), shape (k,)

    Returns
    -------
    float
        Fraction of the ``32 * k`` bits that differ, in [0, 1].
    """
    a = np.asarray(a).astype(np.uint32).reshape(-1)
    b = np.asarray(b).astype(np.uint32).reshape(-1)
    if a.shape != b.shape:
        raise ValueError(f"ber needs arrays of the same length, got {a.size} and {b.size}")
    if a.size == 0:
        raise ValueError("ber of empty arrays is undefined")
    return float(np.bitwise_count(a ^ b).sum()) / (N_BITS * a.size)


# ------------------------------------------------------------------------------------------------- system


def _check_int(name: str, value: Any, lo: int, hi: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not lo <= value <= hi:
        raise ValueError(f"{name} must be an integer in [{lo}, {hi}], got {value!r}")
    return int(value)


def _check_float(name: str, value: Any, lo: float, hi: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) \
            or not np.isfinite(value) or not lo <= value <= hi:
        raise ValueError(f"{name} must be a number in [{lo}, {hi}], got {value!r}")
    return float(value)


def _flip_masks(k: int) -> np.ndarray:
    """All 2**k subsets of k items as a 0/1 matrix, uint32 (2**k, k); row 0 is the empty set."""
    rows = np.arange(2 ** k, dtype=np.uint32)
    return ((rows[:, None] >> np.arange(k, dtype=np.uint32)[None, :]) & 1).astype(np.uint32)


class RAFS:
    """Haitsma & Kalker's fingerprinting system with BER verification (see the module docstring).

    Parameters
    ----------
    sr : int
        Working sample rate, Hz (5512).
    frame_size : int
        Frame length in samples (2048, 0.37 s).
    hop : int
        Hop in samples (64, 11.6 ms).
    fmin, fmax : float
        Range of the 33 log-spaced bands, Hz (300, 2000).
    block : int
        Sub-fingerprints per fingerprint block (256, about 3 s).
    flip_bits : int
        Least reliable bits toggled in every combination for the lookup (3: 8 lookups per sub-fingerprint;
        0 = exact match only; the paper allows up to 10). 3 keeps a query at a few milliseconds of lookups.
    max_blocks : int
        Blocks of a long query searched (4, about 12 s); the best block decides.
    min_overlap : int
        Fewest sub-fingerprints a candidate alignment must share with the reference (32, about 0.37 s), or the
        whole block if it is shorter.
    max_candidates : int
        Distinct alignments verified per block, those with most lookup hits first (10000).
    min_score : float
        Rejection threshold on ``1 - BER`` (0.65, the paper's BER threshold 0.35); 0 returns the best candidate.
    """

    name = "rafs"

    def __init__(self, sr: int = 5512, frame_size: int = 2048, hop: int = 64, fmin: float = 300.0,
                 fmax: float = 2000.0, block: int = 256, flip_bits: int = 3, max_blocks: int = 4,
                 min_overlap: int = 32, max_candidates: int = 10000, min_score: float = 0.65) -> None:
        sr = _check_int("sr", sr, 1000, 192000)
        frame_size = _check_int("frame_size", frame_size, 64, 1 << 16)
        hop = _check_int("hop", hop, 1, frame_size)
        fmin = _check_float("fmin", fmin, 1e-3, sr / 2)
        fmax = _check_float("fmax", fmax, 1e-3, sr / 2)
        if fmax <= fmin:
            raise ValueError(f"fmax must be greater than fmin, got fmin={fmin} and fmax={fmax}")
        band_edges(sr, frame_size, fmin, fmax)  # every band must hold a bin
        self.params: dict[str, Any] = {
            "sr": sr, "frame_size": frame_size, "hop": hop, "fmin": fmin, "fmax": fmax,
            "block": _check_int("block", block, 1, 1 << 20),
            "flip_bits": _check_int("flip_bits", flip_bits, 0, 12),
            "max_blocks": _check_int("max_blocks", max_blocks, 1, 1 << 20),
            "min_overlap": _check_int("min_overlap", min_overlap, 1, 1 << 20),
            "max_candidates": _check_int("max_candidates", max_candidates, 1, 1 << 30),
            "min_score": _check_float("min_score", min_score, 0.0, 1.0),
        }
        self._ids: list[str] = []
        self._parts: list[tuple[np.ndarray, np.ndarray]] = []  # (codes, quiet) per reference, in order
        self._seconds: list[float] = []
        self._db: dict[str, np.ndarray] | None = None  # built lazily from _parts

    # --------------------------------------------------------------------------------------- helpers

    def _extract(self, audio: np.ndarray, sr: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        p = self.params
        return subfingerprints(audio, sr, target_sr=p["sr"], frame_size=p["frame_size"], hop=p["hop"],
                               fmin=p["fmin"], fmax=p["fmax"])

    def _database(self) -> dict[str, np.ndarray]:
        """Concatenated codes, reference starts, and the sorted lookup over non-quiet positions."""
        if self._db is None:
            codes = (np.concatenate([c for c, _ in self._parts]) if self._parts else np.zeros(0, np.uint32))
            quiet = (np.concatenate([q for _, q in self._parts]) if self._parts else np.zeros(0, bool))
            lengths = np.array([c.size for c, _ in self._parts], dtype=np.int64)
            starts = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
            positions = np.flatnonzero(~quiet)
            order = positions[np.argsort(codes[positions], kind="stable")]
            self._db = {"codes": codes, "quiet": quiet, "starts": starts, "lengths": lengths,
                        "order": order, "sorted": codes[order]}
        return self._db

    # ------------------------------------------------------------------------------------ public API

    def add(self, ref_id: str, audio: np.ndarray, sr: int) -> None:
        """Fingerprint a reference and store it.

        Parameters
        ----------
        ref_id : str
            Its name; must be new.
        audio : np.ndarray, float, shape (n,)
            Mono samples at ``sr`` (any rate; resampled to 5512 Hz).
        sr : int
            Their sample rate.

        Raises
        ------
        ValueError
            ``ref_id`` is already in the database or is not a non-empty string.
        AudioError
            The audio is empty, stereo, non-finite, silent or shorter than one sub-fingerprint.
        """
        if not isinstance(ref_id, str) or not ref_id:
            raise ValueError(f"ref_id must be a non-empty string, got {ref_id!r}")
        if ref_id in self._ids:
            raise ValueError(f"reference {ref_id!r} is already in the database")
        p = self.params
        min_s = (p["frame_size"] + p["hop"]) / p["sr"]
        a = check_audio(audio, sr, name=f"reference {ref_id!r}", min_duration_s=min_s)
        codes, _, quiet = self._extract(a, sr)
        if codes.size == 0:
            raise AudioError(f"reference {ref_id!r}: {a.size / sr:.3f} s is too short for one sub-fingerprint "
                             f"(needs {min_s:.3f} s)")
        self._ids.append(ref_id)
        self._parts.append((codes, quiet))
        self._seconds.append(a.size / sr)
        self._db = None

    def reference_record(self, ref_id: str) -> dict[str, np.ndarray]:
        """The stored sub-fingerprints of ``ref_id`` (``codes``, ``quiet``) and its ``seconds``."""
        i = self._ids.index(ref_id)
        codes, quiet = self._parts[i]
        return {"codes": codes, "quiet": quiet, "seconds": np.float64(self._seconds[i])}

    def add_record(self, ref_id: str, record: dict[str, np.ndarray]) -> None:
        """Store a record of :meth:`reference_record` under the new ``ref_id``."""
        if ref_id in self._ids:
            raise ValueError(f"reference {ref_id!r} is already in the database")
        r = check_record("rafs", ref_id, record, {"codes": ("uint32", 1), "quiet": (bool, 1), "seconds": ("f8", 0)})
        if r["codes"].size == 0:
            raise ValueError(f"rafs: the record of {ref_id!r} holds no sub-fingerprint")
        self._ids.append(ref_id)
        self._parts.append((r["codes"], r["quiet"]))
        self._seconds.append(float(r["seconds"]))
        self._db = None

    def fingerprint(self, audio: np.ndarray, sr: int) -> tuple[np.ndarray, np.ndarray]:
        """The raw sub-fingerprints of a clip.

        Parameters
        ----------
        audio : np.ndarray, float, shape (n,)
            Mono samples (silence allowed).
        sr : int
            Their sample rate.

        Returns
        -------
        codes : np.ndarray, uint32, shape (k,)
            32-bit sub-fingerprints (empty when the clip is shorter than frame + hop).
        times_s : np.ndarray, float64, shape (k,)
            Start of each sub-fingerprint's first frame, seconds: ``k * hop / sr``.

        Raises
        ------
        AudioError
            Empty, stereo or non-finite audio.
        """
        a = check_audio(audio, sr, name="audio", min_duration_s=0.0, allow_silence=True)
        codes, _, _ = self._extract(a, sr)
        return codes, np.arange(codes.size, dtype=np.float64) * self.params["hop"] / self.params["sr"]

    def identify(self, audio: np.ndarray, sr: int) -> Match:
        """Find the reference a query comes from.

        Parameters
        ----------
        audio : np.ndarray, float, shape (n,)
            Mono query samples at ``sr``.
        sr : int
            Their sample rate.

        Returns
        -------
        Match
            ``ref_id``, ``offset_s`` (query start inside the reference) and ``score = 1 - BER`` of the best
            alignment; ``Match(None, 0.0, 0.0)`` when the query is silent, too short for one sub-fingerprint,
            finds no candidate, or scores below ``min_score``.

        Raises
        ------
        AudioError
            Empty, stereo or non-finite audio.
        """
        a = check_audio(audio, sr, name="query", min_duration_s=0.0, allow_silence=True)
        if rms(a) < SILENCE_RMS or not self._ids:
            return NO_MATCH
        codes, rel, quiet = self._extract(a, sr)
        if codes.size == 0:
            return NO_MATCH
        p = self.params
        db = self._database()
        best: tuple[float, int, int] | None = None  # (ber, ref index, query-start frame in the reference)
        n_blocks = min(p["max_blocks"], -(-codes.size // p["block"]))
        for b in range(n_blocks):
            sl = slice(b * p["block"], (b + 1) * p["block"])
            found = self._search_block(db, codes[sl], rel[sl], quiet[sl])
            if found is not None and (best is None or found[0] < best[0]):
                best = (found[0], found[1], found[2] - b * p["block"])
        if best is None:
            return NO_MATCH
        score = 1.0 - best[0]
        if score < p["min_score"]:
            return NO_MATCH
        return Match(self._ids[best[1]], best[2] * p["hop"] / p["sr"], score)

    def _search_block(self, db: dict[str, np.ndarray], q: np.ndarray, rel: np.ndarray,
                      quiet: np.ndarray) -> tuple[float, int, int] | None:
        """Lookups, candidate alignments and BER verification for one block.

        Returns ``(ber, ref index, block-start frame in the reference)`` of the best alignment, or None.
        """
        p = self.params
        frames = np.flatnonzero(~quiet)
        if frames.size == 0:
            return None
        # Every combination of the k least reliable bits toggled: variants (n, 2**k).
        k = p["flip_bits"]
        weakest = np.argsort(rel[frames], axis=1, kind="stable")[:, :k]
        bit_values = (np.uint32(1) << (N_BITS - 1 - weakest).astype(np.uint32))  # (n, k)
        flips = np.zeros((frames.size, 2 ** k), dtype=np.uint32)
        for j, use in enumerate(_flip_masks(k).T):  # use: (2**k,) 0/1 for bit j
            flips |= bit_values[:, j: j + 1] * use[None, :]
        variants = (q[frames, None] ^ flips).reshape(-1)
        qframe = np.repeat(frames, 2 ** k)
        counts, ref, local = self._lookup(db, variants)
        if ref.size == 0:
            return None
        start = local - np.repeat(qframe, counts)
        key = (ref.astype(np.int64) << 32) + (start.astype(np.int64) + (1 << 31))
        keys, votes = np.unique(key, return_counts=True)
        if keys.size > p["max_candidates"]:
            keys = keys[np.argsort(-votes, kind="stable")[: p["max_candidates"]]]
        cand_ref = (keys >> 32).astype(np.int64)
        cand_start = (keys & 0xFFFFFFFF) - (1 << 31)
        return self._verify(db, q, cand_ref, cand_start)

    def _lookup(self, db: dict[str, np.ndarray], keys: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Exact-match lookup of sub-fingerprints ``keys`` (uint32) among the stored non-quiet ones.

        Returns ``(counts, ref, local)``: hits per key, and for every hit (grouped by key, keys in order) its
        reference index and its position in that reference.
        """
        left = np.searchsorted(db["sorted"], keys, side="left")
        right = np.searchsorted(db["sorted"], keys, side="right")
        counts = right - left
        total = int(counts.sum())
        first = np.repeat(left - (np.cumsum(counts) - counts), counts) + np.arange(total)
        pos = db["order"][first]
        ref = np.searchsorted(db["starts"], pos, side="right") - 1
        return counts, ref, pos - db["starts"][ref]

    def _verify(self, db: dict[str, np.ndarray], q: np.ndarray, cand_ref: np.ndarray,
                cand_start: np.ndarray) -> tuple[float, int, int] | None:
        """BER of block ``q`` at each candidate alignment over the overlap; the best one or None."""
        need = min(self.params["min_overlap"], q.size)
        j = np.arange(q.size, dtype=np.int64)
        best: tuple[float, int, int] | None = None
        for i in range(0, cand_ref.size, _VERIFY_BATCH):
            r = cand_ref[i: i + _VERIFY_BATCH]
            s = cand_start[i: i + _VERIFY_BATCH]
            local = s[:, None] + j[None, :]
            valid = (local >= 0) & (local < db["lengths"][r][:, None])
            overlap = valid.sum(axis=1)
            gpos = np.where(valid, db["starts"][r][:, None] + local, 0)
            errors = (np.bitwise_count(db["codes"][gpos] ^ q[None, :]) * valid).sum(axis=1)
            rate = np.where(overlap >= need, errors / (N_BITS * np.maximum(overlap, 1)), np.inf)
            t = int(np.argmin(rate))
            if np.isfinite(rate[t]) and (best is None or rate[t] < best[0]):
                best = (float(rate[t]), int(r[t]), int(s[t]))
        return best

    def references(self) -> list[str]:
        """Reference ids in the order they were added."""
        return list(self._ids)

    def __contains__(self, ref_id: object) -> bool:
        return ref_id in self._ids

    def __len__(self) -> int:
        return len(self._ids)

    def stats(self) -> dict[str, Any]:
        """Database size and rate.

        Returns
        -------
        dict
            ``name``, ``references``, ``fingerprints`` (sub-fingerprints stored), ``seconds`` (audio indexed),
            ``bytes`` (4 per sub-fingerprint + the quiet flags packed 8 per byte + 8 per reference start),
            ``bits_per_second`` (``32 * sr / hop``, about 2756), ``bytes_per_second`` and ``params``.
        """
        db = self._database()
        n = int(db["codes"].size)
        nbytes = 4 * n + (n + 7) // 8 + 8 * int(db["starts"].size)
        seconds = float(sum(self._seconds))
        return {
            "name": self.name, "references": len(self._ids), "fingerprints": n, "seconds": seconds,
            "bytes": nbytes, "bits_per_second": N_BITS * self.params["sr"] / self.params["hop"],
            "bytes_per_second": nbytes / seconds if seconds else 0.0, "params": dict(self.params),
        }

    # ------------------------------------------------------------------------------------- persistence

    def save(self, path: str | os.PathLike) -> None:
        """Write the database to one ``.npz`` file at ``path``, atomically (params stored as JSON)."""
        db = self._database()
        with atomic_path(path) as tmp:
            with open(tmp, "wb") as f:
                save_npz(f, False, format=np.array(_FORMAT), params=np.array(json.dumps(self.params, sort_keys=True)),
                         ids=np.array(self._ids, dtype=np.str_), seconds=np.array(self._seconds, np.float64),
                         codes=db["codes"], lengths=db["lengths"],
                         quiet=np.packbits(db["quiet"]))

    @classmethod
    def load(cls, path: str | os.PathLike) -> "RAFS":
        """Open a database written by :meth:`save`.

        Raises
        ------
        FileNotFoundError
            No file at ``path``.
        ValueError
            The file is not a RAFS database or is damaged (the message names the path).
        """
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no RAFS database file there")
        try:
            with np.load(path, allow_pickle=False) as z:
                if str(z["format"]) != _FORMAT:
                    raise ValueError(f"format tag {str(z['format'])!r}, expected {_FORMAT!r}")
                params = json.loads(str(z["params"]))
                ids = [str(i) for i in z["ids"]]
                seconds = [float(s) for s in z["seconds"]]
                codes = np.asarray(z["codes"], dtype=np.uint32)
                lengths = np.asarray(z["lengths"], dtype=np.int64)
                quiet = np.unpackbits(z["quiet"])[: codes.size].astype(bool)
            if not (len(ids) == len(seconds) == lengths.size and int(lengths.sum()) == codes.size
                    and quiet.size == codes.size and np.all(lengths > 0)):
                raise ValueError("array sizes do not agree")
            system = cls(**params)
        except (OSError, KeyError, ValueError, TypeError, zipfile.BadZipFile, EOFError) as e:
            raise ValueError(f"{path}: not a readable RAFS database ({e}); re-create it with save()") from e
        bounds = np.concatenate([[0], np.cumsum(lengths)])
        system._ids = ids
        system._seconds = seconds
        system._parts = [(codes[bounds[i]: bounds[i + 1]], quiet[bounds[i]: bounds[i + 1]])
                         for i in range(len(ids))]
        return system


SYSTEM = RAFS
