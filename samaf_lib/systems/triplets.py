"""Triplets: our own time-scale and pitch invariant fingerprinter, inspired by Panako's event-point triplets.

This is **not Panako**. It borrows Panako's idea (Six & Leman, ISMIR 2014) of hashing triplets of constant-Q
spectral peaks by features that a time-scale change or a pitch shift leaves alone, but its front end, peak
picking, triplet fan-out, hash, lookup and matcher are designs of ours, chosen on generated speech for this
study. The faithful Panako of 2014 is :mod:`samaf_lib.systems.panako`; this module is the study's redesign, kept
as a system of its own (``triplets``).

It finds a query in a reference even when the query was played faster or slower (time-scale change) or higher
or lower (pitch shift), with three ideas:

1. **A constant-Q spectrum.** With 36 bins per octave the frequency axis is logarithmic, so a pitch shift by a
   factor ``p`` moves every component by the same number of bins, ``36 * log2(p)``.
2. **Event points and triplets.** Local maxima of the spectrum ("event points", about 8 per second) are combined
   in triplets ``e1 = (t1, f1), e2, e3`` with ``t1 < t2 < t3``. The hash of a triplet keeps only what survives
   both modifications: the frequency *differences* ``f2 - f1`` and ``f3 - f1`` (a pitch shift cancels out) and
   the time *ratio* ``(t2 - t1) / (t3 - t1)`` (a time-scale change cancels out), quantised.
3. **Matching that estimates the factors.** Every hash hit gives a time factor ``(ref Δt13) / (query Δt13)`` and
   a frequency offset ``query f1 - ref f1``. Per reference the hits that agree on a frequency offset are kept;
   a Hough search over time factors then finds the largest set that also agrees on one alignment
   ``t_ref = offset + factor * t_query``. Its size is the score; ``offset`` (in seconds) is where the query
   starts in the reference, and the two factors are left in :attr:`Triplets.last_factors`.

Choices of ours (our measurements on generated speech decided them; all are parameters of :class:`Triplets`):

* audio resampled to 8000 Hz mono (our choice: speech has little above 4 kHz, and 8 kHz keeps the transform
  cheap; 8 kHz is the rate of Panako's FFT strategy, whereas the 2014 constant-Q strategy ran at 44.1 kHz with a
  1536-sample hop, see :mod:`samaf_lib.systems.panako`); constant-Q spectrum from 110 Hz over 5 octaves (180 bins,
  top bin 3453 Hz), 36 bins per octave, hop 128 samples (16 ms), log magnitude in dB relative to a full-scale
  sine. :class:`ConstantQ` is our own multirate FFT implementation with cached kernels (it agrees with
  ``librosa.cqt`` to a correlation of 0.999 in dB and was about 5 times faster in our measurement, since
  librosa rebuilds its filters on every call);
* event points: maxima of a 9-frame x 13-bin neighbourhood (144 ms x 1/3 octave) of at least -55 dB, thinned
  so that no point has ``events_per_second`` (8) or more stronger points within +-0.5 s of it. The rule is
  local, so an excerpt keeps its reference's points away from its edges; on generated speech it gives 8-9
  event points per second. Points closer to either end of the clip than half their bin's analysis window
  (``edge_fraction`` = 0.5 of the window: 0.23 s at 110 Hz, 8 ms at 3.5 kHz) are dropped: there the window
  reaches past the audio and the maxima move, which biased the estimated time factor;
* triplets: for each e1 its next ``fan_out`` = 6 event points with t1 < t <= t1 + 62 frames (1 s) and
  |f - f1| <= 72 bins (2 octaves); every pair of them (the earlier as e2) with t3 - t1 >= 2 frames -> up to
  15 triplets per e1, about 85 per second of speech. (A window of 33 frames, 1 octave and 5 neighbours gave
  only 15 triplets per second, too few to find a time-stretched 5-s excerpt reliably);
* hash: ``f2 - f1`` and ``f3 - f1`` (exact bins, 145 values each), the time ratio in 8 levels, and optionally
  the band of f1 (``f1_bands``; 0, not used, by default: a pitch shift moves f1 across band borders);
* lookup with probes (``probe=1``): every query triplet is also looked up with each frequency difference +-1
  bin and the ratio level next to its own, 18 probes in all. Time-stretching and pitch-shifting move event
  points by a frame or a bin, and without the probes only about a third as many true hits survive;
* matching: time and pitch factors searched within [1/1.25, 1.25]; Hough grid step 1 % in time factor; a hit
  supports factor g when ``|ref Δt13 - g * query Δt13| <= 1.5 + 0.05 * query Δt13`` frames; offsets agree
  within 48 ms bins (a pair of adjacent bins counts, so up to 96 ms). A query triplet, and a reference
  triplet, count once in the score. The time factor is then refined by a robust line fit over the
  reference's hits near the alignment (:func:`fit_alignment`);
* ``min_score`` = 20 consistent triplets: on generated speech (24 references of 8 s; tests/conftest.py),
  96 excerpts (2 and 5 s) of 16 out-of-database clips scored 6 at the median, 16 at the 95th percentile and
  24 at most (that clip shares a synthetic voice and words with a reference); 5-s excerpts scored at least
  160 exact, 25 sped up by 5 %, 29 pitch-shifted by 5 %, 16 slowed by 5 %. The study's evaluation sets
  ``min_score=0`` and calibrates its own threshold.

Storage, per triplet: hash int64 (8 B) + reference int32 (4 B) + t1 frame int32 (4 B) + f1 bin int16 (2 B) +
Δt13 frames int16 (2 B) = 20 bytes; :meth:`Triplets.stats` reports that as ``bytes``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
from scipy.ndimage import maximum_filter

from ..audio import SILENCE_RMS, AudioError, check_audio, resample, rms
from ..io import atomic_path, save_npz
from .base import NO_MATCH, Match, check_record

#: Bytes per stored triplet: hash int64 + ref int32 + t1 int32 + f1 int16 + dt13 int16.
BYTES_PER_TRIPLET = 8 + 4 + 4 + 2 + 2
#: A hit supports time factor g when |ref Δt13 - g * query Δt13| <= DT_TOLERANCE_FRAMES + DT_TOLERANCE_REL * query Δt13.
DT_TOLERANCE_FRAMES = 1.5
DT_TOLERANCE_REL = 0.05
#: References whose best Hough cell is scored exactly (most votes first).
N_CANDIDATES = 10
#: The time factor is refined by a line fit when the consistent hits span at least this many query frames.
MIN_SPAN_FRAMES = 10
#: Format tag written into saved files.
FILE_FORMAT = "samaf-study/triplets/v1"

#: name -> (default, type, low, high); ints are checked as ints, floats accept ints.
_PARAMS: dict[str, tuple[Any, type, float, float]] = {
    "sr": (8000, int, 2000, 48000),
    "fmin": (110.0, float, 20.0, 2000.0),
    "n_octaves": (5, int, 1, 8),
    "bins_per_octave": (36, int, 12, 96),
    "hop_length": (128, int, 16, 4096),
    "peak_frames": (9, int, 1, 101),
    "peak_bins": (13, int, 1, 101),
    "min_magnitude_db": (-55.0, float, -200.0, 0.0),
    "events_per_second": (8.0, float, 0.5, 100.0),
    "edge_fraction": (0.5, float, 0.0, 1.0),
    "min_dt": (2, int, 1, 1000),
    "max_dt": (62, int, 2, 1000),
    "max_df": (72, int, 1, 500),
    "fan_out": (6, int, 2, 20),
    "ratio_levels": (8, int, 2, 64),
    "f1_bands": (0, int, 0, 64),
    "probe": (1, int, 0, 1),
    "max_time_factor": (1.25, float, 1.0, 2.0),
    "max_pitch_factor": (1.25, float, 1.0, 2.0),
    "factor_step": (0.01, float, 0.001, 0.1),
    "offset_tolerance_s": (0.048, float, 0.001, 1.0),
    "min_score": (20.0, float, 0.0, 1e9),
}


def _validate(params: dict[str, Any]) -> dict[str, Any]:
    """Fill defaults and check every value; a bad one raises ValueError naming it and its range."""
    unknown = sorted(set(params) - set(_PARAMS))
    if unknown:
        raise TypeError(f"triplets: unknown parameter(s) {', '.join(unknown)}; known: {', '.join(_PARAMS)}")
    out: dict[str, Any] = {}
    for key, (default, kind, lo, hi) in _PARAMS.items():
        v = params.get(key, default)
        if isinstance(v, (bool, np.bool_)):  # the system contract: a bad value of any kind is a ValueError
            raise ValueError(f"triplets: {key} must be a number in [{lo:g}, {hi:g}], got {v!r}")  # noqa: TRY004
        if kind is int:
            if not isinstance(v, (int, np.integer)):
                raise ValueError(f"triplets: {key} must be an integer in [{lo:g}, {hi:g}], got {v!r}")
            v = int(v)
        else:
            if not isinstance(v, (int, float, np.integer, np.floating)) or not np.isfinite(v):
                raise ValueError(f"triplets: {key} must be a number in [{lo:g}, {hi:g}], got {v!r}")
            v = float(v)
        if not lo <= v <= hi:
            raise ValueError(f"triplets: {key} must be in [{lo:g}, {hi:g}], got {v!r}")
        out[key] = v
    top = out["fmin"] * 2.0 ** out["n_octaves"]
    if top > out["sr"] / 2:
        raise ValueError(f"triplets: fmin * 2**n_octaves = {top:g} Hz must not exceed sr/2 = {out['sr'] / 2:g} Hz; "
                         "lower fmin or n_octaves, or raise sr")
    step = 2 ** (out["n_octaves"] - 1)
    if out["hop_length"] % step:
        raise ValueError(f"triplets: hop_length must be a multiple of 2**(n_octaves-1) = {step}, "
                         f"got {out['hop_length']}")
    if out["min_dt"] >= out["max_dt"]:
        raise ValueError(f"triplets: min_dt ({out['min_dt']}) must be below max_dt ({out['max_dt']})")
    return out


# ---------------------------------------------------------------------------------------------------------------
# Features: constant-Q spectrum, event points, triplets, hashes (pure functions over arrays)
# ---------------------------------------------------------------------------------------------------------------

class ConstantQ:
    """A constant-Q transform with precomputed spectral kernels, one octave at a time.

    Bin ``k`` is centred on ``fmin * 2 ** (k / bins_per_octave)`` Hz and analysed with a Hann-windowed complex
    exponential ``Q * sr / f_k`` samples long, ``Q = 1 / (2 ** (1 / bins_per_octave) - 1)`` (about 51 at 36 bins
    per octave: 0.47 s at 110 Hz, 16 ms at 3.5 kHz). Each octave is computed on the signal decimated by the
    largest power of two that keeps the octave's top edge below 0.4 times the decimated rate, from short FFTs
    with the kernels applied in the frequency domain (Brown & Puckette's scheme: each kernel's spectrum, cut
    below 1e-3 of its peak, touches only a band of FFT bins, and only that band is multiplied). Magnitudes are
    scaled so that a full-scale sine at a bin centre reads 1 (0 dB).

    Parameters
    ----------
    sr, fmin, n_octaves, bins_per_octave, hop_length
        Sample rate (Hz), lowest bin centre (Hz), octaves, bins per octave, hop (samples at ``sr``; a multiple of
        ``2 ** (n_octaves - 1)``).
    """

    def __init__(self, sr: int = 8000, fmin: float = 110.0, n_octaves: int = 5, bins_per_octave: int = 36,
                 hop_length: int = 128) -> None:
        self.sr, self.hop_length = sr, hop_length
        self.n_bins = n_octaves * bins_per_octave
        self.freqs = fmin * 2.0 ** (np.arange(self.n_bins) / bins_per_octave)
        q = 1.0 / (2.0 ** (1.0 / bins_per_octave) - 1.0)
        self.lengths = q * sr / self.freqs
        # (first bin, decimation, n_fft, first FFT bin used, kernel (FFT bins used, bins) complex64)
        self.octaves: list[tuple[int, int, int, int, np.ndarray]] = []
        for o in range(n_octaves):
            ks = np.arange(o * bins_per_octave, (o + 1) * bins_per_octave)
            top = fmin * 2.0 ** (o + 1)
            dec = 1
            while dec * 2 <= 2 ** (n_octaves - 1) and hop_length % (dec * 2) == 0 and sr / (dec * 2) * 0.4 >= top:
                dec *= 2
            rate = sr / dec
            n_fft = int(2 ** np.ceil(np.log2(self.lengths[ks].max() / dec)))
            rows = []
            for k in ks:
                n = int(np.ceil(self.lengths[k] / dec))
                w = np.hanning(n + 2)[1:-1]
                idx = np.arange(n) - (n - 1) / 2.0
                atom = np.zeros(n_fft, complex)
                start = n_fft // 2 - n // 2
                atom[start:start + n] = w * np.exp(2j * np.pi * self.freqs[k] * idx / rate) * (2.0 / w.sum())
                spec = np.conj(np.fft.fft(atom))[: n_fft // 2 + 1] / n_fft
                spec[np.abs(spec) < 1e-3 * np.abs(spec).max()] = 0.0
                rows.append(spec)
            kern = np.array(rows).T                                      # (n_fft // 2 + 1, bins)
            used = np.flatnonzero(np.any(kern != 0, axis=1))
            c0, c1 = int(used[0]), int(used[-1]) + 1
            self.octaves.append((int(ks[0]), dec, n_fft, c0, kern[c0:c1].astype(np.complex64)))

    def n_frames(self, n_samples: int) -> int:
        """Frames for a clip of ``n_samples``: ``1 + n_samples // hop_length``."""
        return 1 + n_samples // self.hop_length

    def magnitude_db(self, audio: np.ndarray) -> np.ndarray:
        """Log-magnitude spectrum.

        Parameters
        ----------
        audio : np.ndarray, float, shape (n,)
            Mono samples at ``sr``.

        Returns
        -------
        np.ndarray, float32, shape (n_bins, n_frames)
            dB relative to a full-scale sine; frame ``m`` is centred on sample ``m * hop_length``.
        """
        from numpy.lib.stride_tricks import sliding_window_view
        from scipy.fft import rfft
        from scipy.signal import resample_poly

        x = np.asarray(audio, np.float32)
        n_frames = self.n_frames(x.size)
        out = np.empty((n_frames, self.n_bins), np.float32)
        signals = {1: x}
        for first, dec, n_fft, c0, kernel in self.octaves:
            if dec not in signals:   # halve the rate step by step (anti-aliased, zero-phase)
                d = max(k for k in signals if dec % k == 0)
                signals[dec] = resample_poly(signals[d], 1, dec // d).astype(np.float32)
            y = signals[dec]
            hop = self.hop_length // dec
            half = n_fft // 2
            padded = np.zeros(half + y.size + half + n_frames * hop, np.float32)
            padded[half:half + y.size] = y
            frames = sliding_window_view(padded[: (n_frames - 1) * hop + n_fft], n_fft)[::hop]
            spec = rfft(frames, axis=1)[:, c0:c0 + kernel.shape[0]]
            out[:, first:first + kernel.shape[1]] = np.abs(spec @ kernel)
        return (20.0 * np.log10(out.T + 1e-10)).astype(np.float32)


def find_events(spec_db: np.ndarray, frames_per_second: float, peak_frames: int = 9, peak_bins: int = 13,
                min_magnitude_db: float = -55.0, events_per_second: float = 8.0,
                edge_frames: np.ndarray | None = None) -> np.ndarray:
    """Event points: local maxima of the spectrum, thinned to about ``events_per_second``.

    A point is kept when it is the maximum of its ``peak_bins`` x ``peak_frames`` neighbourhood, at least
    ``min_magnitude_db``, at least ``edge_frames[bin]`` frames from both ends of the clip, and fewer than
    ``events_per_second`` stronger such maxima lie within +-0.5 s of it.

    Parameters
    ----------
    spec_db : np.ndarray, shape (n_bins, n_frames)
        Output of :meth:`ConstantQ.magnitude_db`.
    frames_per_second : float
        ``sr / hop_length``.
    edge_frames : np.ndarray, shape (n_bins,), optional
        Per bin, how far from the clip's ends a point must lie (frames). Near an end the analysis window of a
        bin reaches past the audio, and the maxima there move in time and frequency.

    Returns
    -------
    np.ndarray, int32, shape (n_events, 2)
        ``(frame, bin)`` rows sorted by frame, then bin.
    """
    if spec_db.size == 0:
        return np.zeros((0, 2), np.int32)
    local_max = maximum_filter(spec_db, size=(peak_bins, peak_frames), mode="constant", cval=-np.inf)
    is_peak = (spec_db == local_max) & (spec_db >= min_magnitude_db)
    bins, frames = np.nonzero(is_peak)
    if edge_frames is not None:
        inside = (frames >= edge_frames[bins]) & (frames <= spec_db.shape[1] - 1 - edge_frames[bins])
        bins, frames = bins[inside], frames[inside]
    if frames.size == 0:
        return np.zeros((0, 2), np.int32)
    mags = spec_db[bins, frames]
    order = np.lexsort((bins, frames))
    frames, bins, mags = frames[order], bins[order], mags[order]
    half = round(0.5 * frames_per_second)
    limit = int(np.ceil(events_per_second))
    lo = np.searchsorted(frames, frames - half, side="left")
    hi = np.searchsorted(frames, frames + half, side="right")
    # neighbours of point i are lo[i] .. hi[i]-1; gather them into a padded (n, width) matrix
    width = int((hi - lo).max())
    nb = lo[:, None] + np.arange(width)[None, :]
    valid = nb < hi[:, None]
    nb = np.minimum(nb, frames.size - 1)
    other = mags[nb]
    # ties: the earlier (then lower) point counts as stronger, so equal magnitudes never both pass
    stronger = valid & ((other > mags[:, None]) | ((other == mags[:, None]) & (nb < np.arange(frames.size)[:, None])))
    keep = stronger.sum(axis=1) < limit
    return np.stack([frames[keep], bins[keep]], axis=1).astype(np.int32)


def make_triplets(events: np.ndarray, min_dt: int = 2, max_dt: int = 62, max_df: int = 72,
                  fan_out: int = 6) -> np.ndarray:
    """Triplets of event points ``e1, e2, e3`` with ``t1 < t2 < t3``.

    For each ``e1`` the next ``fan_out`` event points ``e`` with ``t1 < t <= t1 + max_dt`` and
    ``|f - f1| <= max_df`` are candidates; every pair of them (earlier one as ``e2``) with
    ``min_dt <= t3 - t1`` and ``t2 < t3`` makes a triplet.

    Parameters
    ----------
    events : np.ndarray, int, shape (n, 2)
        ``(frame, bin)`` rows sorted by frame (output of :func:`find_events`).

    Returns
    -------
    np.ndarray, int32, shape (m, 3) of indices into ``events`` (columns e1, e2, e3)
    """
    n = len(events)
    if n < 3:
        return np.zeros((0, 3), np.int32)
    t, f = events[:, 0].astype(np.int64), events[:, 1].astype(np.int64)
    i = np.arange(n)
    # candidates of e1 = i: the events after it within max_dt frames, as a padded (n, width) matrix of indices
    first = np.searchsorted(t, t, side="right")
    last = np.searchsorted(t, t + max_dt, side="right")
    width = int((last - first).max())
    if width < 2:
        return np.zeros((0, 3), np.int32)
    cand = first[:, None] + np.arange(width)[None, :]
    ok = cand < last[:, None]
    cand = np.minimum(cand, n - 1)
    ok &= np.abs(f[cand] - f[:, None]) <= max_df
    # keep the first fan_out of them, packed to the left of a (n, fan_out) matrix (-1 = none)
    rank = np.cumsum(ok, axis=1) - 1
    ok &= rank < fan_out
    sel = np.full((n, fan_out), -1, np.int64)
    rows, cols = np.nonzero(ok)
    sel[rows, rank[rows, cols]] = cand[rows, cols]
    # every pair (a < b) of the selected: e2 = sel[a], e3 = sel[b]
    ia, ib = np.triu_indices(fan_out, k=1)
    j2, j3 = sel[:, ia], sel[:, ib]
    e1 = np.broadcast_to(i[:, None], j2.shape)
    good = (j3 >= 0) & (j2 >= 0)
    j2s, j3s = np.maximum(j2, 0), np.maximum(j3, 0)
    good &= (t[j2s] < t[j3s]) & (t[j3s] - t[:, None] >= min_dt)
    out = np.stack([e1[good], j2[good], j3[good]], axis=1)
    # order by e1, then e2, e3 (the rows of the loop formulation)
    return out[np.lexsort((out[:, 2], out[:, 1], out[:, 0]))].astype(np.int32)


def triplet_features(events: np.ndarray, trip: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The invariant features of each triplet.

    Returns
    -------
    df12, df13 : np.ndarray, int64, shape (m,)
        ``f2 - f1`` and ``f3 - f1`` in bins (unchanged by a pitch shift).
    ratio : np.ndarray, float64, shape (m,)
        ``(t2 - t1) / (t3 - t1)`` in (0, 1) (unchanged by a time-scale change).
    """
    t = events[:, 0].astype(np.int64)
    f = events[:, 1].astype(np.int64)
    t1, t2, t3 = t[trip[:, 0]], t[trip[:, 1]], t[trip[:, 2]]
    f1, f2, f3 = f[trip[:, 0]], f[trip[:, 1]], f[trip[:, 2]]
    return f2 - f1, f3 - f1, (t2 - t1) / (t3 - t1)


def pack_hash(df12: np.ndarray, df13: np.ndarray, ratio_level: np.ndarray, band: np.ndarray | None,
              max_df: int, ratio_levels: int) -> np.ndarray:
    """One int64 per triplet: ``df12 + max_df``, ``df13 + max_df`` (``2 * max_df + 1`` values each), the ratio
    level (``ratio_levels`` values) and, when given, the band of ``f1``, from the low digits to the high ones.

    Out-of-range differences or levels are clipped (they never occur for triplets of :func:`make_triplets`).
    """
    width = 2 * max_df + 1
    a = np.clip(df12, -max_df, max_df) + max_df
    b = np.clip(df13, -max_df, max_df) + max_df
    r = np.clip(ratio_level, 0, ratio_levels - 1)
    h = a + width * (b + width * r)
    if band is not None:
        h = h + width * width * ratio_levels * band
    return h.astype(np.int64)


def hash_triplets(events: np.ndarray, trip: np.ndarray, max_df: int = 72, ratio_levels: int = 8,
                  f1_bands: int = 0, n_bins: int = 180) -> np.ndarray:
    """Pack the time-scale and pitch invariant features of each triplet into one integer.

    Fields (low to high): ``f2 - f1 + max_df``, ``f3 - f1 + max_df`` (each ``2 * max_df + 1`` values), the time
    ratio ``(t2 - t1) / (t3 - t1)`` in ``ratio_levels`` equal steps of (0, 1), and, when ``f1_bands > 0``, the
    band of ``f1`` among ``f1_bands`` equal bands of the ``n_bins``.

    Parameters
    ----------
    events : np.ndarray, int, shape (n, 2)
        ``(frame, bin)`` event points.
    trip : np.ndarray, int, shape (m, 3)
        Indices into ``events`` (output of :func:`make_triplets`).

    Returns
    -------
    np.ndarray, int64, shape (m,)
    """
    if len(trip) == 0:
        return np.zeros(0, np.int64)
    df12, df13, ratio = triplet_features(events, trip)
    level = np.minimum((ratio * ratio_levels).astype(np.int64), ratio_levels - 1)
    return pack_hash(df12, df13, level, _f1_band(events, trip, f1_bands, n_bins), max_df, ratio_levels)


def probe_hashes(events: np.ndarray, trip: np.ndarray, max_df: int = 72, ratio_levels: int = 8,
                 f1_bands: int = 0, n_bins: int = 180) -> tuple[np.ndarray, np.ndarray]:
    """Hashes of each query triplet and of its nearest neighbouring cells, for a lookup that forgives
    one bin of rounding in each frequency difference and a ratio near a level border.

    Each triplet gives 3 x 3 x 2 = 18 probes: ``df12 + {-1, 0, 1}``, ``df13 + {-1, 0, 1}`` and its own ratio
    level plus the neighbouring level on the side its ratio is nearer to.

    Returns
    -------
    hashes : np.ndarray, int64, shape (18 * m,)
    triplet : np.ndarray, int64, shape (18 * m,)
        Index of the query triplet each probe belongs to.
    """
    if len(trip) == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    df12, df13, ratio = triplet_features(events, trip)
    x = ratio * ratio_levels
    level = np.minimum(x.astype(np.int64), ratio_levels - 1)
    other = np.where(x - level < 0.5, level - 1, level + 1)
    other = np.where((other < 0) | (other >= ratio_levels), level, other)  # at the ends: probe itself twice
    band = _f1_band(events, trip, f1_bands, n_bins)
    out, idx = [], []
    m = np.arange(len(trip))
    for d12 in (0, -1, 1):
        for d13 in (0, -1, 1):
            for lv in (level, other):
                out.append(pack_hash(df12 + d12, df13 + d13, lv, band, max_df, ratio_levels))
                idx.append(m)
    h, q = np.concatenate(out), np.concatenate(idx)
    # drop duplicates (ends of the ratio range, clipped differences) so a probe hits a reference triplet once
    _, first = np.unique(q * (int(h.max()) + 1) + h, return_index=True)
    return h[first], q[first]


def _f1_band(events: np.ndarray, trip: np.ndarray, f1_bands: int, n_bins: int) -> np.ndarray | None:
    if f1_bands <= 0:
        return None
    f1 = events[trip[:, 0], 1].astype(np.int64)
    return np.minimum(f1 * f1_bands // n_bins, f1_bands - 1)


def fit_alignment(tq: np.ndarray, tr: np.ndarray, factor: float, offset: float, max_factor: float,
                  tolerance: float = 2.0, rounds: int = 2) -> tuple[float, float]:
    """Refine the alignment ``t_ref = offset + factor * t_query`` from matched event times (frames).

    Each round keeps the matches within ``tolerance`` frames of the current line, and refits it: the slope is
    the median of the pairwise slopes of distinct matches at least ``MIN_SPAN_FRAMES`` apart in the query
    (Theil-Sen, robust to the few matches that joined by chance), the offset the median of
    ``tr - slope * tq``. A round without enough spread, or giving a slope outside
    ``[1 / max_factor, max_factor]``, keeps the line it had.

    Parameters
    ----------
    tq, tr : np.ndarray, float, shape (n,)
        Query and reference frames of the first event point of matched triplets (all matches of one reference).
    factor, offset : float
        The starting line (from the Hough search).

    Returns
    -------
    (factor, offset) : tuple of float
    """
    tq = np.asarray(tq, np.float64)
    tr = np.asarray(tr, np.float64)
    for _ in range(rounds):
        near = np.abs(tr - (offset + factor * tq)) <= tolerance
        if not np.any(near):
            break
        pts = np.unique(np.stack([tq[near], tr[near]], axis=1), axis=0)
        if len(pts) > 300:                              # bound the pairwise work: an even subsample in query time
            pts = pts[np.linspace(0, len(pts) - 1, 300).astype(int)]
        i, j = np.triu_indices(len(pts), k=1)
        span = pts[j, 0] - pts[i, 0]
        far = span >= MIN_SPAN_FRAMES
        if not np.any(far):
            break
        slope = float(np.median((pts[j, 1] - pts[i, 1])[far] / span[far]))
        if not 1 / max_factor <= slope <= max_factor:
            break
        factor = slope
        offset = float(np.median(pts[:, 1] - factor * pts[:, 0]))
    return float(factor), float(offset)


# ---------------------------------------------------------------------------------------------------------------
# The system
# ---------------------------------------------------------------------------------------------------------------

class Triplets:
    """Our triplet fingerprinter (inspired by Panako, not Panako): constant-Q event-point triplets, robust to
    time-scale and pitch change.

    Parameters
    ----------
    sr : int, default 8000
        Analysis rate; input at any rate is resampled to it.
    fmin : float, default 110.0
        Centre of the lowest constant-Q bin (Hz).
    n_octaves : int, default 5
        Octaves covered (``fmin * 2**n_octaves <= sr / 2``).
    bins_per_octave : int, default 36
    hop_length : int, default 128
        Frame hop in samples (16 ms at 8 kHz); a multiple of ``2**(n_octaves - 1)``.
    peak_frames, peak_bins : int, default 9, 13
        Neighbourhood (frames x bins) an event point must be the maximum of.
    min_magnitude_db : float, default -55.0
        Weakest event point, dB relative to a full-scale sine.
    events_per_second : float, default 8.0
        Density limit: an event point must have fewer than this many stronger ones within +-0.5 s.
    edge_fraction : float, default 0.5
        Event points must lie this fraction of their bin's window length away from both ends of the clip.
    min_dt, max_dt : int, default 2, 62
        Range of ``t3 - t1`` in frames.
    max_df : int, default 72
        Largest ``|f2 - f1|``, ``|f3 - f1|`` in bins.
    fan_out : int, default 6
        Event points after each ``e1`` combined in pairs (up to ``fan_out * (fan_out - 1) / 2`` triplets).
    ratio_levels : int, default 8
        Quantisation levels of the time ratio in the hash.
    f1_bands : int, default 0
        Coarse bands of ``f1`` in the hash (0: not in the hash).
    probe : int, default 1
        1: look each query triplet up with its neighbouring hash cells too (see :func:`probe_hashes`); 0: exact.
    max_time_factor, max_pitch_factor : float, default 1.25
        Factors searched: [1/x, x].
    factor_step : float, default 0.01
        Relative step of the time-factor grid.
    offset_tolerance_s : float, default 0.048
        Hits agree on an alignment when their offsets fall in the same or adjacent bins of this width.
    min_score : float, default 20.0
        Fewer consistent hits than this gives ``ref_id=None``.

    Attributes
    ----------
    last_factors : dict or None
        After :meth:`identify` with a candidate: ``{"time": f_t, "pitch": f_p, "freq_offset_bins": d}`` where
        ``f_t`` is how much faster the query plays than the reference (reference duration / query duration) and
        ``f_p`` the query's frequencies over the reference's (``2 ** (d / bins_per_octave)``, ``d`` = query bin
        minus reference bin). ``None`` when there was no candidate.
    """

    name = "triplets"

    def __init__(self, **params: Any) -> None:
        self.params: dict[str, Any] = _validate(params)
        self._ref_ids: list[str] = []
        self._seconds: list[float] = []
        self._chunks: list[tuple[np.ndarray, ...]] = []   # per ref: hashes, t1, f1, dt13
        self._index: tuple[np.ndarray, ...] | None = None
        self._file_bytes: int | None = None
        self.last_factors: dict[str, float] | None = None
        self._cqt: ConstantQ | None = None

    # ---- derived constants -------------------------------------------------------------------------------------
    @property
    def frames_per_second(self) -> float:
        """Constant-Q frames per second (``sr / hop_length``)."""
        return self.params["sr"] / self.params["hop_length"]

    @property
    def n_bins(self) -> int:
        """Constant-Q bins (``n_octaves * bins_per_octave``)."""
        return self.params["n_octaves"] * self.params["bins_per_octave"]

    # ---- features ----------------------------------------------------------------------------------------------
    def _cq(self) -> ConstantQ:
        if self._cqt is None:
            p = self.params
            self._cqt = ConstantQ(p["sr"], p["fmin"], p["n_octaves"], p["bins_per_octave"], p["hop_length"])
        return self._cqt

    def _prepare(self, audio: np.ndarray, sr: int, name: str) -> np.ndarray | None:
        """Validate (AudioError for empty/NaN/stereo), resample; ``None`` for silent input."""
        a = check_audio(audio, sr, name=name, min_duration_s=0.0, allow_silence=True)
        if rms(a) < SILENCE_RMS:
            return None
        return resample(a, int(sr), self.params["sr"])

    def _events_frames(self, audio8k: np.ndarray) -> np.ndarray:
        p = self.params
        if audio8k.size < p["hop_length"]:
            return np.zeros((0, 2), np.int32)
        cq = self._cq()
        spec = cq.magnitude_db(audio8k)
        edge = np.ceil(p["edge_fraction"] * cq.lengths / p["hop_length"]).astype(np.int64)
        return find_events(spec, self.frames_per_second, p["peak_frames"], p["peak_bins"],
                           p["min_magnitude_db"], p["events_per_second"], edge)

    def _analyse(self, audio: np.ndarray, sr: int, name: str) -> tuple[np.ndarray, np.ndarray]:
        """(events (n, 2) frame/bin, triplets (m, 3) indices) of a clip; empty for silent/short clips."""
        a = self._prepare(audio, sr, name)
        if a is None:
            return np.zeros((0, 2), np.int32), np.zeros((0, 3), np.int32)
        ev = self._events_frames(a)
        p = self.params
        return ev, make_triplets(ev, p["min_dt"], p["max_dt"], p["max_df"], p["fan_out"])

    def _hashes(self, ev: np.ndarray, trip: np.ndarray) -> np.ndarray:
        p = self.params
        return hash_triplets(ev, trip, p["max_df"], p["ratio_levels"], p["f1_bands"], self.n_bins)

    def event_points(self, audio: np.ndarray, sr: int) -> np.ndarray:
        """Event points of a clip.

        Parameters
        ----------
        audio : np.ndarray, shape (n,)
            Mono samples at ``sr`` (any rate).

        Returns
        -------
        np.ndarray, float64, shape (n_events, 2)
            ``(time_s, cq_bin)`` rows sorted by time; bin ``k`` is centred on ``fmin * 2**(k / 36)`` Hz.
        """
        a = self._prepare(audio, sr, "audio")
        ev = np.zeros((0, 2), np.int32) if a is None else self._events_frames(a)
        return np.column_stack([ev[:, 0] / self.frames_per_second, ev[:, 1]]).astype(np.float64)

    def triplets(self, audio: np.ndarray, sr: int) -> np.ndarray:
        """The event-point triplets of a clip, for plotting.

        Returns
        -------
        np.ndarray, float64, shape (m, 3, 2)
            ``[i, j] = (time_s, cq_bin)`` of event ``e1``, ``e2``, ``e3`` (j = 0, 1, 2) of triplet ``i``.
        """
        ev, trip = self._analyse(audio, sr, "audio")
        pts = np.column_stack([ev[:, 0] / self.frames_per_second, ev[:, 1]]).astype(np.float64)
        return pts[trip] if len(trip) else np.zeros((0, 3, 2), np.float64)

    def fingerprint(self, audio: np.ndarray, sr: int) -> tuple[np.ndarray, np.ndarray]:
        """Triplet hashes of a clip.

        Returns
        -------
        codes : np.ndarray, int64, shape (m,)
            One hash per triplet (see :func:`hash_triplets`).
        times_s : np.ndarray, float64, shape (m,)
            Time of each triplet's first event point, seconds from the clip start.
        """
        ev, trip = self._analyse(audio, sr, "audio")
        if len(trip) == 0:
            return np.zeros(0, np.int64), np.zeros(0, np.float64)
        return self._hashes(ev, trip), ev[trip[:, 0], 0] / self.frames_per_second

    # ---- database ----------------------------------------------------------------------------------------------
    def add(self, ref_id: str, audio: np.ndarray, sr: int) -> None:
        """Fingerprint ``audio`` (mono float, any rate) and index it under ``ref_id``.

        Raises
        ------
        ValueError
            ``ref_id`` is not a non-empty string or is already in the database.
        AudioError
            Empty, non-finite, stereo, silent audio, or too short to give a single triplet.
        """
        if not isinstance(ref_id, str) or not ref_id:
            raise ValueError(f"triplets: ref_id must be a non-empty string, got {ref_id!r}")
        if ref_id in self._ref_ids:
            raise ValueError(f"triplets: reference {ref_id!r} is already in the database")
        a = check_audio(audio, sr, name=ref_id, min_duration_s=0.0)
        ev, trip = self._analyse(a, sr, ref_id)
        if len(trip) == 0:
            raise AudioError(f"{ref_id}: gives no event-point triplets ({a.size / sr:.2f} s, {len(ev)} event "
                             "points); too short or too quiet to fingerprint")
        t = ev[:, 0]
        chunk = (self._hashes(ev, trip), t[trip[:, 0]].astype(np.int32), ev[trip[:, 0], 1].astype(np.int16),
                 (t[trip[:, 2]] - t[trip[:, 0]]).astype(np.int16))
        self._ref_ids.append(ref_id)
        self._seconds.append(a.size / sr)
        self._chunks.append(chunk)
        self._index = None
        self._file_bytes = None

    #: The arrays of one stored reference, in the order of a chunk (see :meth:`add`).
    _RECORD = ("hashes", "t1", "f1", "dt13")

    def reference_record(self, ref_id: str) -> dict[str, np.ndarray]:
        """The stored triplet hashes of ``ref_id`` with their times and frequencies, and its ``seconds``."""
        i = self._ref_ids.index(ref_id)
        return {**dict(zip(self._RECORD, self._chunks[i])), "seconds": np.float64(self._seconds[i])}

    def add_record(self, ref_id: str, record: dict[str, np.ndarray]) -> None:
        """Store a record of :meth:`reference_record` under the new ``ref_id``."""
        if ref_id in self._ref_ids:
            raise ValueError(f"triplets: reference {ref_id!r} is already in the database")
        r = check_record("triplets", ref_id, record, {"hashes": ("int64", 1), "t1": ("int32", 1),
                                                      "f1": ("int16", 1), "dt13": ("int16", 1), "seconds": ("f8", 0)})
        if r["hashes"].size == 0:
            raise ValueError(f"triplets: the record of {ref_id!r} holds no triplet")
        self._ref_ids.append(ref_id)
        self._seconds.append(float(r["seconds"]))
        self._chunks.append(tuple(r[k] for k in self._RECORD))
        self._index = None
        self._file_bytes = None

    def references(self) -> list[str]:
        """Reference ids in the order they were added."""
        return list(self._ref_ids)

    def __contains__(self, ref_id: object) -> bool:
        return ref_id in self._ref_ids

    def __len__(self) -> int:
        return len(self._ref_ids)

    def _build_index(self) -> tuple[np.ndarray, ...]:
        """Sorted (hash, ref, t1, f1, dt13) arrays over all references."""
        if self._index is None:
            if self._chunks:
                h = np.concatenate([c[0] for c in self._chunks])
                r = np.concatenate([np.full(len(c[0]), i, np.int32) for i, c in enumerate(self._chunks)])
                t1, f1, dt = (np.concatenate([c[k] for c in self._chunks]) for k in (1, 2, 3))
            else:
                h = np.zeros(0, np.int64)
                r, t1 = np.zeros(0, np.int32), np.zeros(0, np.int32)
                f1, dt = np.zeros(0, np.int16), np.zeros(0, np.int16)
            order = np.argsort(h, kind="stable")
            self._index = (h[order], r[order], t1[order], f1[order], dt[order])
        return self._index

    def _lookup(self, hashes: np.ndarray) -> tuple[np.ndarray, ...]:
        """Stored triplets whose hash equals each of ``hashes``: ``(counts, rows, refs, t1, f1, dt13)``, hits per
        hash and, for every hit (grouped by hash, hashes in order), a number naming that stored triplet, its
        reference index, time, frequency and span."""
        keys, refs, rt1, rf1, rdt = self._build_index()
        lo = np.searchsorted(keys, hashes, side="left")
        hi = np.searchsorted(keys, hashes, side="right")
        counts = hi - lo
        di = np.repeat(lo - (np.cumsum(counts) - counts), counts) + np.arange(int(counts.sum()))
        return counts, di, refs[di], rt1[di], rf1[di], rdt[di]

    # ---- matching ----------------------------------------------------------------------------------------------
    def identify(self, audio: np.ndarray, sr: int) -> Match:
        """Find the reference ``audio`` comes from, tolerating time-scale and pitch change.

        Returns
        -------
        Match
            ``ref_id`` (``None`` when no candidate reaches ``min_score``, or the clip is silent or too short),
            ``offset_s`` = where the query starts in the reference, ``score`` = consistent hits. The estimated
            factors are left in :attr:`last_factors`.

        Raises
        ------
        AudioError
            Empty, NaN/inf or stereo input.
        """
        self.last_factors = None
        ev, trip = self._analyse(audio, sr, "query")
        if len(trip) == 0 or not self._ref_ids:
            return NO_MATCH
        best = self._match(ev, trip)
        if best is None:
            return NO_MATCH
        ref, offset_frames, score, factor, dfreq = best
        self.last_factors = {"time": factor, "pitch": float(2.0 ** (dfreq / self.params["bins_per_octave"])),
                             "freq_offset_bins": dfreq}
        if score < max(self.params["min_score"], 1.0):
            return Match(None, 0.0, float(score))
        return Match(self._ref_ids[ref], float(offset_frames / self.frames_per_second), float(score))

    def _hits(self, ev: np.ndarray, trip: np.ndarray) -> dict[str, np.ndarray] | None:
        """All (query triplet, reference triplet) pairs with equal hashes, as column arrays."""
        p = self.params
        if p["probe"]:
            qh, qt = probe_hashes(ev, trip, p["max_df"], p["ratio_levels"], p["f1_bands"], self.n_bins)
        else:
            qh, qt = self._hashes(ev, trip), np.arange(len(trip))
        counts, di, refs, rt1, rf1, rdt = self._lookup(qh)
        if refs.size == 0:
            return None
        qi = np.repeat(qt, counts)
        t = ev[:, 0].astype(np.float64)
        return {"ref": refs.astype(np.int64), "tr": rt1.astype(np.float64),
                "fr": rf1.astype(np.int64), "dtr": rdt.astype(np.float64),
                "tq": t[trip[qi, 0]], "fq": ev[trip[qi, 0], 1].astype(np.int64),
                "dtq": t[trip[qi, 2]] - t[trip[qi, 0]], "qi": qi, "di": di}

    def _match(self, ev: np.ndarray, trip: np.ndarray) -> tuple[int, float, int, float, float] | None:
        """Best (ref index, offset in frames, score, time factor, query-minus-ref bins) or None."""
        p = self.params
        h = self._hits(ev, trip)
        if h is None:
            return None
        # 1. plausible factors per hit: the time factor from Δt13 (+-1 frame of quantisation), the pitch offset
        fmax = p["max_time_factor"]
        max_bins = int(np.ceil(p["bins_per_octave"] * np.log2(p["max_pitch_factor"])))
        foff = h["fq"] - h["fr"]
        ok = ((h["dtr"] >= h["dtq"] / fmax - 1.0) & (h["dtr"] <= h["dtq"] * fmax + 1.0)
              & (np.abs(foff) <= max_bins))
        if not np.any(ok):
            return None
        h = {k: v[ok] for k, v in h.items()}
        foff = foff[ok]
        # 2. per reference, the dominant frequency offset (a window of +-1 bin) and the hits that agree with it
        width = 2 * max_bins + 3
        n_ref = len(self._ref_ids)
        hist = np.bincount(h["ref"] * width + foff + max_bins + 1, minlength=n_ref * width).reshape(n_ref, width)
        smooth = hist[:, :-2] + hist[:, 1:-1] + hist[:, 2:]          # centre c <-> offset c - max_bins
        best_off = np.argmax(smooth, axis=1) - max_bins
        keep = np.abs(foff - best_off[h["ref"]]) <= 1
        h = {k: v[keep] for k, v in h.items()}
        foff = foff[keep]
        # 3. Hough over (time factor g, offset): t_ref = offset + g * t_query. A hit supports g when its own
        #    Δt13 agrees with g; it votes for the offset bin of t_ref - g * t_query.
        n_steps = int(np.ceil(np.log(fmax) / np.log1p(p["factor_step"])))
        grid = np.exp(np.linspace(-np.log(fmax), np.log(fmax), 2 * n_steps + 1))
        bin_w = p["offset_tolerance_s"] * self.frames_per_second
        tol = DT_TOLERANCE_FRAMES + DT_TOLERANCE_REL * h["dtq"][None, :]
        gi, hi_ = np.nonzero(np.abs(h["dtr"][None, :] - grid[:, None] * h["dtq"][None, :]) <= tol)
        if gi.size == 0:
            return None
        off = h["tr"][hi_] - grid[gi] * h["tq"][hi_]
        ob = np.floor(off / bin_w).astype(np.int64)
        ob -= ob.min()
        n_ob = int(ob.max()) + 2
        key = (h["ref"][hi_] * len(grid) + gi) * n_ob + ob
        uk, uc = np.unique(key, return_counts=True)
        nxt = np.minimum(np.searchsorted(uk, uk + 1), uk.size - 1)
        pair = uc + np.where(uk[nxt] == uk + 1, uc[nxt], 0)         # votes in bins (o, o + 1)
        # candidates: the best cell of each of the (up to) 10 references with the most votes; the score of a
        # candidate counts each query triplet and each reference triplet once
        cell_ref = uk // (len(grid) * n_ob)
        order = np.lexsort((uk, -pair))                             # most votes first, ties -> lower key
        _, first_of_ref = np.unique(cell_ref[order], return_index=True)
        cands = order[np.sort(first_of_ref)][:N_CANDIDATES]
        best: tuple[int, int, np.ndarray] | None = None             # (score, -key, hits)
        for c in cands:
            k0 = int(uk[c])
            hits = hi_[(key == k0) | (key == k0 + 1)]
            score = int(min(np.unique(h["qi"][hits]).size, np.unique(h["di"][hits]).size))
            if best is None or (score, -k0) > best[:2]:
                best = (score, -k0, hits)
        score, k0, hits = best[0], -best[1], best[2]
        ref = int(k0 // (len(grid) * n_ob))
        factor = float(grid[(k0 // n_ob) % len(grid)])
        offset = float(np.median(h["tr"][hits] - factor * h["tq"][hits]))
        same = h["ref"] == ref
        factor, offset = fit_alignment(h["tq"][same], h["tr"][same], factor, offset, fmax)
        return ref, offset, score, factor, float(np.mean(foff[hits]))

    # ---- persistence -------------------------------------------------------------------------------------------
    def save(self, path: str | os.PathLike) -> None:
        """Write the database to one ``.npz`` file at ``path``, atomically (params as JSON inside)."""
        keys, refs, t1, f1, dt = self._build_index()
        meta = {"format": FILE_FORMAT, "params": self.params, "ref_ids": self._ref_ids,
                "seconds": self._seconds}
        with atomic_path(path) as tmp, open(tmp, "wb") as fh:   # a file object: numpy adds no ".npz" suffix
            save_npz(fh, True, meta=np.array(json.dumps(meta)), hashes=keys, refs=refs, t1=t1, f1=f1, dt13=dt)
        self._file_bytes = Path(path).stat().st_size

    @classmethod
    def load(cls, path: str | os.PathLike) -> Triplets:
        """Open a database written by :meth:`save`.

        Raises
        ------
        FileNotFoundError
            No file at ``path``.
        ValueError
            The file is not a triplets database of this format (corrupt, truncated, another system's).
        """
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no triplets database file here")
        try:
            with np.load(path, allow_pickle=False) as z:
                meta = json.loads(str(z["meta"]))
                arrays = {k: np.asarray(z[k]) for k in ("hashes", "refs", "t1", "f1", "dt13")}
            if meta.get("format") != FILE_FORMAT:
                raise ValueError(f"format {meta.get('format')!r}, expected {FILE_FORMAT!r}")
            sys_ = cls(**meta["params"])
            ref_ids, seconds = list(meta["ref_ids"]), [float(s) for s in meta["seconds"]]
            n = len(arrays["hashes"])
            if len(ref_ids) != len(seconds) or any(len(a) != n for a in arrays.values()):
                raise ValueError("array lengths disagree")
            refs = arrays["refs"].astype(np.int64)
            if n and (refs.min() < 0 or refs.max() >= len(ref_ids)):
                raise ValueError("reference index out of range")
        except (OSError, KeyError, ValueError, TypeError, AttributeError, EOFError) as e:
            raise ValueError(f"{path}: not a readable triplets database ({e})") from e
        by_ref = np.argsort(refs, kind="stable")
        bounds = np.searchsorted(refs[by_ref], np.arange(len(ref_ids) + 1))
        for i, rid in enumerate(ref_ids):
            s = by_ref[bounds[i]:bounds[i + 1]]
            sys_._ref_ids.append(rid)
            sys_._seconds.append(seconds[i])
            sys_._chunks.append((arrays["hashes"][s].astype(np.int64), arrays["t1"][s].astype(np.int32),
                                 arrays["f1"][s].astype(np.int16), arrays["dt13"][s].astype(np.int16)))
        sys_._file_bytes = path.stat().st_size
        return sys_

    def stats(self) -> dict[str, Any]:
        """Database size.

        Returns
        -------
        dict
            ``name``, ``references``, ``fingerprints`` (triplets stored), ``seconds`` (audio indexed), ``bytes``
            (``fingerprints * 20``, the stored record size), ``bits_per_second`` (``8 * bytes / seconds``),
            ``fingerprints_per_second``, ``file_bytes`` (size of the file last saved or loaded, else ``None``),
            ``params``.
        """
        n = int(sum(len(c[0]) for c in self._chunks))
        seconds = float(sum(self._seconds))
        nbytes = n * BYTES_PER_TRIPLET
        return {"name": self.name, "references": len(self), "fingerprints": n, "seconds": seconds,
                "bytes": nbytes, "bits_per_second": 8.0 * nbytes / seconds if seconds else 0.0,
                "fingerprints_per_second": n / seconds if seconds else 0.0, "file_bytes": self._file_bytes,
                "params": dict(self.params)}


SYSTEM = Triplets
