"""Panako as published in 2014: the constant-Q strategy of Six & Leman, written for this study.

Reference: J. Six and M. Leman, "Panako - a scalable acoustic fingerprinting system handling time-scale and pitch
modification", ISMIR 2014, and its reference implementation, Panako 1.x (Java): the constant-Q strategy of the
classes ``NCteQStrategy``, ``NCteQEventPointProcessor``, ``NCteQFingerprint``, ``NCteQHashFunction`` and
``NCteQMapDBStorage``/``NCteQFingerprintHit``, with the defaults of its configuration (``be.panako.util.Key``,
keys ``NCTEQ_*``) and the constant-Q transform of TarsosDSP (``be.tarsos.dsp.ConstantQ``) it runs on (we read
the NCteQ classes of the JorenSix/Panako repository at commit 9604299, a 1.x version). The paper describes the
design (constant-Q event points, triplets hashed by frequency differences and a time ratio, matching by an
offset histogram that also yields time and frequency factors); the numbers below are those of the source and its
configuration. We read both to learn what the system does; this module is our own code, and the description is
in our words. The study's own redesign of the idea is :mod:`samaf_lib.systems.triplets`.

How Panako works
----------------
1. **Constant-Q spectrum** (TarsosDSP ``ConstantQ``; keys ``NCTEQ_SAMPLE_RATE`` 44100, ``NCTEQ_STEP_SIZE`` 1536,
   ``NCTEQ_MIN_FREQ`` 3700 and ``NCTEQ_MAX_FREQ`` 12200 absolute cents, ``NCTEQ_BINS_PER_OCTAVE`` 36). Audio at
   44.1 kHz is cut into frames of the transform's FFT length every 1536 samples (34.8 ms). Absolute cents count
   from 8.175 Hz (MIDI note 0, C-1; Panako's ``PitchUnit``), so the band is 69.3 Hz to 9397 Hz, 7.08 octaves;
   TarsosDSP's bin count ``ceil(36 * log2(fmax / fmin))``, in float32, comes out at 256 bins of 1/36 octave.
   ``Q = 1 / (2**(1/36) - 1)`` = 51.4; bin ``k`` is centred on ``69.3 * 2**(k/36)`` Hz (9396 Hz for the last)
   and analysed by a Hann-windowed complex exponential ``ceil(Q * sr / f_k)`` samples long (32739 at the bottom,
   242 at the top) that starts at the frame's first sample; the FFT length is the next power of two above the
   longest window, 32768 samples (0.74 s). Each kernel's spectrum keeps only the FFT bins where it exceeds 0.001
   (Brown & Puckette's sparse kernel). Magnitudes are linear: a full-scale sine at a bin centre reads about 0.25.
2. **Event points** (``NCteQEventPointProcessor``). A point ``(frame, bin)`` is an event point when its magnitude
   is the maximum of the 15-bin x 15-frame neighbourhood around it (the frequency filter repeats the edge bins;
   frames closer than 7 to either end of the clip are never examined), is not zero, the minimum of its 3 x 3
   neighbourhood is not zero, ``log1p(min3x3) / log1p(max15x15)`` lies strictly between 0.2 and 0.9 (neither
   near silence nor in a flat region), and ``log1p(magnitude)`` exceeds 0.1 times ``log1p`` of the largest
   15 x 15 maximum of the bins at or below it in that frame (the source's running frame maximum). The point
   carries its contrast ``min3x3 / max15x15``.
3. **Triplets** (``packEventPointsIntoFingerprints``). For each event point ``e1`` (in time, then bin order)
   every later ``e2`` with ``t1 + 7 < t2 < t1 + 57`` frames and ``|f2 - f1| < 31`` bins, and for it every later
   ``e3`` with ``t2 + 7 < t3 < t2 + 57`` and ``|f3 - f2| < 31``, is a candidate; 57 frames is 2 s
   (``int(2.0 * 44100 / 1536)``), 31 bins is ``NCTEQ_EVENT_POINT_FREQUENCY_DELTA_MAX`` = 1066 cents at 36 bins
   per octave. Of the candidates only the one with the largest contrast sum is kept (one triplet per event
   point; a tie goes to the last candidate in loop order). A triplet is dropped when one already kept has the
   same hash and a ``t1`` less than 100 frames away (the source keeps triplets in a hash set whose equality is
   "same hash, within 100 frames"). Queries are packed the same way: the configuration also lists
   ``NCTEQ_EVENT_POINT_BRANCHING_FOR_STORAGE`` 1 / ``_FOR_QUERY`` 4 and ``NCTEQ_EVENT_POINTS_PER_SECOND_*`` 8, but
   the NCteQ event-point processor reads none of them (its one triplet per point is fixed, and it sets no limit
   on event points per second), so neither is applied here.
4. **Hash** (``NCteQHashFunction``, 27 bits; Java's rounding, ``floor(x + 0.5)``)::

       bits  0- 3  round(f1 / 16) % 16           where f1 lies (16 coarse bands)
       bits  4- 7  round(f3 / 16) % 16           where f3 lies
       bits  8-13  (f2 - f1 + 31) % 64           31 = 1066 * 36 // 1200
       bits 14-19  (f3 - f2 + 31) % 64
       bits 20-23  round(8 * (t2 - t1) / (t3 - t1)) % 16
       bit  24     1 if t2 - t1 > t3 - t2 else 0
       bits 25-26  round((t3 - t1) / 20) % 4

   Stored with each hash: ``t1``, the reference, ``t3 - t1`` and ``f1``.
5. **Matching** (``NCteQMapDBStorage.getFingerprintMatches``). Every stored triplet with a query triplet's hash
   is a hit. References with more than 4 hits (``NCTEQ_MINIMUM_MATCHES_THRESHOLD``) are examined. A hit is
   plausible when its time ratio ``int(100 * ref Δt13 / query Δt13)`` and its frequency ratio
   ``round(100 * 2**((query f1 - ref f1) / 36))`` both lie strictly between 70 and 130 (+-30 %). Each plausible
   hit votes for the offset ``round(round(t1_ref - t1_query * time ratio) / 3)`` (3-frame bins); the score of a
   reference is the number of hits in its most popular bin, and it is a match when more than 3 hits align
   (``NCTEQ_MINIMUM_ALIGNED_MATCHES_THRESHOLD``). The answer is the reference with the highest score; where the
   query starts in it is ``3 * bin`` frames; the time factor and the frequency factor are the means of the
   aligned hits' ratios. (The source also finds the most popular frequency difference, in 5-cent steps, but
   it enters the score only as ``min(1, its count)``, which is 1 whenever the time histogram has a peak: it
   changes nothing, and is left out here.)

Parameters of :class:`Panako` default to the values above; each can be changed for an ablation.

Where this module departs from Panako 1.x, and why
--------------------------------------------------
* **Sample rate.** The study's audio is 16 kHz; it is resampled to 44.1 kHz (band-limited polyphase,
  :func:`samaf_lib.audio.resample`), as Panako itself does by decoding every file through ffmpeg at
  ``NCTEQ_SAMPLE_RATE``. Everything of the published front end (frame, hop, kernels, band) then runs unchanged,
  and the hash's coarse band fields ``round(f / 16)`` keep their meaning. The price: the band ends at 9397 Hz,
  above the 8 kHz Nyquist of 16-kHz audio, so the top 9 of the 256 bins (8.0-9.4 kHz) hold no energy and never
  give event points. Running the transform at 16 kHz instead would have had to change the hop, the FFT length
  and the top of the band, that is, the published design; the empty bins are the smaller departure.
* **Time origin.** Panako labels an event point with its frame index plus 28 (``32768 // 1536 + 32768 // 4608``
  = 21 + 7 at its defaults); here frame ``m`` is the one that starts at sample ``m * 1536`` of the clip. The
  shift cancels in every hash and time difference, and in the offset at time ratio 1; at another ratio ``r``
  Panako's offset carries an extra ``28 * (1 - r)`` frames, an error in the reported position that we do not
  reproduce.
* **Query details of the source that depend on Java's hash-set order.** Panako looks up each query hash with
  the ``t1``/``Δt13``/``f1`` of whichever query triplet with that hash it met last; here every query triplet
  uses its own (query triplets sharing a hash lie at least 100 frames, 3.5 s, apart, so this is rare). Where
  two offset bins, or two references, tie for the most hits, Panako's winner depends on hash-set iteration
  order; here the lower bin, and the reference added first, win.
* **Numbers.** Magnitudes are computed in float64 and rounded to float32 before the float32 tests of the
  source (``log1p``, ratios, thresholds), so a point exactly on a threshold may fall either way.
* **What is left out:** the database engine (MapDB), the monitor mode and the ``maxNumberOfResults`` list;
  :meth:`Panako.identify` returns the best reference only, as every system of the study does.

Behaviour on the study's generated speech
-----------------------------------------
One triplet per event point, chosen by a contrast sum among partners up to 4 s ahead, makes the choice fragile:
a query whose frames fall between its reference's (any excerpt off the 34.8-ms grid) or whose last seconds lack
the partners keeps only part of its reference's triplets. On the 24 8-s references of tests/conftest.py, 5.4
triplets are stored per second (698 bit/s), and 5-s excerpts are found at the default threshold 10 times in 24
exact, 3 in 24 after ``tempo`` 1.05 and never after ``pitch`` 1.05, while no out-of-database clip scores above
0. On 20-s excerpts of 30-s references (tests/test_panako.py) 12 of 12 exact and 10 of 12 time-stretched (1.05)
excerpts are found with their time factor; a pitch shift by whole bins (``2**(3/36)``) is found 11 times in 12,
a 5 % shift (2.53 bins: peaks move by 2 or 3 bins, so the frequency differences of the hash change) once.

The pitch weakness belongs to the design, not to speech: on music-like test signals (harmonic melodies, chords
and percussion; tests/test_panako.py) 20-s excerpts are found 11 times in 12 exact, 8 in 12 after ``tempo`` 1.05,
10 in 12 after a whole-bin pitch shift and 3 in 12 after ``pitch`` 1.05, and a plain resampling by 1.05 (no phase
vocoder) fails the same way. A shift by a fraction of a bin changes each peak's contrast, hence which single
triplet an event point keeps, and the exact bin differences of the hash; Panako 1.x looks up only the exact hash
of each query triplet, so nothing recovers them.

Score and threshold
-------------------
``Match.score`` is the number of aligned hits of the best reference (comparable within Panako only).
``min_score`` (default 4) is Panako's "more than 3 aligned hits"; below it the answer is ``ref_id=None`` with the
score kept. The study's evaluation runs with ``min_score=0`` and calibrates its own threshold; the rule of more
than 4 raw hits (``min_matches``) stays, as it belongs to the search itself.

Storage: four 32-bit integers per triplet, as in Panako's store (hash, ``t1``, reference, ``Δt13 + (f1 << 16)``):
16 bytes, reported by :meth:`Panako.stats` as ``bytes``.
"""

from __future__ import annotations

import functools
import json
import math
import os
from pathlib import Path
from typing import Any

import numpy as np

from ..audio import SILENCE_RMS, AudioError, check_audio, resample, rms
from ..io import atomic_path, save_npz
from .base import NO_MATCH, Match, check_record

#: Hz of 0 absolute cents in Panako 1.x (``PitchUnit.REF_FREQ``: MIDI note 0, C-1).
ABSOLUTE_CENT_HZ = 8.175
#: A constant-Q kernel keeps the FFT bins where its spectrum exceeds this (TarsosDSP's default threshold).
KERNEL_THRESHOLD = 0.001
#: Bytes per stored triplet: four int32, as Panako 1.x stores them.
BYTES_PER_TRIPLET = 16
#: Frames per chunk of the constant-Q analysis (bounds memory: 64 frames of 32768 samples).
CHUNK_FRAMES = 64
#: Format tag written into saved files.
FILE_FORMAT = "samaf-study/panako/v1"

#: name -> (default, type, low, high); ints are checked as ints, floats accept ints. Defaults: Panako 1.x.
_PARAMS: dict[str, tuple[Any, type, float, float]] = {
    "sr": (44100, int, 8000, 192000),             # NCTEQ_SAMPLE_RATE
    "hop": (1536, int, 16, 16384),                 # NCTEQ_STEP_SIZE (samples)
    "min_cents": (3700.0, float, 0.0, 15000.0),    # NCTEQ_MIN_FREQ (absolute cents)
    "max_cents": (12200.0, float, 0.0, 15000.0),   # NCTEQ_MAX_FREQ (absolute cents)
    "bins_per_octave": (36, int, 4, 96),           # NCTEQ_BINS_PER_OCTAVE
    "max_filter": (15, int, 3, 101),               # NCteQEventPointProcessor: 15 x 15 maximum
    "min_filter": (3, int, 1, 99),                 # 3 x 3 minimum
    "min_contrast": (0.2, float, 0.0, 1.0),        # log1p(min) / log1p(max) must exceed this ...
    "max_contrast": (0.9, float, 0.0, 1.0),        # ... and stay below this
    "min_energy": (0.1, float, 0.0, 1.0),          # log1p(point) > min_energy * log1p(running frame maximum)
    "max_dt_s": (2.0, float, 0.01, 60.0),          # e2 - e1 and e3 - e2 below int(max_dt_s * sr / hop) frames
    "min_dt": (7, int, 0, 1000),                   # ... and above min_dt frames
    "max_df_cents": (1066, int, 1, 4800),          # NCTEQ_EVENT_POINT_FREQUENCY_DELTA_MAX
    "dedup_frames": (100, int, 0, 100000),         # same hash within this many frames of t1: stored once
    "min_matches": (4, int, 0, 1000000),           # NCTEQ_MINIMUM_MATCHES_THRESHOLD: more hits than this
    "min_ratio": (70, int, 1, 1000),               # time and frequency ratios (%) strictly above this ...
    "max_ratio": (130, int, 1, 1000),              # ... and strictly below this
    "offset_bin": (3, int, 1, 1000),               # frames per offset-histogram bin
    "min_score": (4.0, float, 0.0, 1e9),           # NCTEQ_MINIMUM_ALIGNED_MATCHES_THRESHOLD (3) + 1
}


def _validate(params: dict[str, Any]) -> dict[str, Any]:
    """Fill defaults and check every value; a bad one raises ValueError naming it and its range."""
    unknown = sorted(set(params) - set(_PARAMS))
    if unknown:
        raise TypeError(f"panako: unknown parameter(s) {', '.join(unknown)}; known: {', '.join(_PARAMS)}")
    out: dict[str, Any] = {}
    for key, (default, kind, lo, hi) in _PARAMS.items():
        v = params.get(key, default)
        if isinstance(v, (bool, np.bool_)):  # the system contract: a bad value of any kind is a ValueError
            raise ValueError(f"panako: {key} must be a number in [{lo:g}, {hi:g}], got {v!r}")  # noqa: TRY004
        if kind is int:
            if not isinstance(v, (int, np.integer)):
                raise ValueError(f"panako: {key} must be an integer in [{lo:g}, {hi:g}], got {v!r}")
            v = int(v)
        else:
            if not isinstance(v, (int, float, np.integer, np.floating)) or not np.isfinite(v):
                raise ValueError(f"panako: {key} must be a number in [{lo:g}, {hi:g}], got {v!r}")
            v = float(v)
        if not lo <= v <= hi:
            raise ValueError(f"panako: {key} must be in [{lo:g}, {hi:g}], got {v!r}")
        out[key] = v
    for key in ("max_filter", "min_filter"):
        if out[key] % 2 == 0:
            raise ValueError(f"panako: {key} must be odd (a window centred on the point), got {out[key]}")
    if out["min_filter"] >= out["max_filter"]:
        raise ValueError(f"panako: min_filter ({out['min_filter']}) must be below max_filter ({out['max_filter']})")
    if out["min_cents"] >= out["max_cents"]:
        raise ValueError(f"panako: min_cents ({out['min_cents']:g}) must be below max_cents ({out['max_cents']:g})")
    top = cents_to_hz(out["max_cents"])
    if top > out["sr"] / 2:
        raise ValueError(f"panako: max_cents = {out['max_cents']:g} ({top:.0f} Hz) must not exceed sr/2 = "
                         f"{out['sr'] / 2:g} Hz; lower max_cents or raise sr")
    if out["min_contrast"] >= out["max_contrast"]:
        raise ValueError(f"panako: min_contrast ({out['min_contrast']:g}) must be below max_contrast "
                         f"({out['max_contrast']:g})")
    if out["min_ratio"] >= out["max_ratio"]:
        raise ValueError(f"panako: min_ratio ({out['min_ratio']}) must be below max_ratio ({out['max_ratio']})")
    if int(out["max_dt_s"] * out["sr"] / out["hop"]) <= out["min_dt"] + 1:
        raise ValueError(f"panako: max_dt_s ({out['max_dt_s']:g} s) leaves no room above min_dt "
                         f"({out['min_dt']} frames of {out['hop']} samples)")
    return out


def cents_to_hz(cents: float) -> float:
    """Absolute cents (Panako's ``PitchUnit``: 0 cents = 8.175 Hz) to Hz."""
    return ABSOLUTE_CENT_HZ * 2.0 ** (cents / 1200.0)


def _java_round(x: np.ndarray) -> np.ndarray:
    """Java's ``Math.round``: ``floor(x + 0.5)`` (halves go up, unlike numpy's round-half-to-even)."""
    return np.floor(np.asarray(x, np.float64) + 0.5).astype(np.int64)


# ---------------------------------------------------------------------------------------------------------------
# Constant-Q transform (TarsosDSP's design)
# ---------------------------------------------------------------------------------------------------------------

class ConstantQ:
    """The constant-Q transform Panako 1.x runs on (TarsosDSP's), computed frame by frame.

    ``n_bins = ceil(bins_per_octave * log2(fmax / fmin))`` bins, bin ``k`` centred on
    ``fmin * 2 ** (k / bins_per_octave)``; ``Q = 1 / (2 ** (1 / bins_per_octave) - 1)``; the kernel of bin ``k`` is
    ``w[j] / L_k * exp(2 pi i Q j / L_k)``, ``j < L_k = min(ceil(Q * sr / f_k), n_fft)``, with the Hann window
    ``w[j] = 0.5 - 0.5 cos(2 pi j / L_k)``, placed at the start of the frame; ``n_fft`` is the next power of two
    above ``ceil(Q * sr / fmin)``. A kernel's FFT is folded as TarsosDSP folds it (FFT bin ``m`` plus bin
    ``n_fft - 1 - m``), kept where that folded magnitude exceeds :data:`KERNEL_THRESHOLD`, divided by ``n_fft``
    and conjugated; a frame's coefficients are its real FFT (bins below ``n_fft / 2``) times the kernels.

    Parameters
    ----------
    sr : int
        Sample rate (Hz).
    fmin, fmax : float
        Band edges (Hz). The bin count is computed in float32 as the Java source does.
    bins_per_octave : int
    hop : int
        Samples between frame starts.
    """

    def __init__(self, sr: int = 44100, fmin: float = cents_to_hz(3700.0), fmax: float = cents_to_hz(12200.0),
                 bins_per_octave: int = 36, hop: int = 1536) -> None:
        self.sr, self.hop, self.bins_per_octave = int(sr), int(hop), int(bins_per_octave)
        self.n_fft, self.freqs, self.lengths, self._kernel = _cq_kernel(int(sr), float(fmin), float(fmax),
                                                                        int(bins_per_octave))
        self.n_bins = len(self.freqs)

    def n_frames(self, n_samples: int) -> int:
        """Frames for a clip of ``n_samples``: the first covers samples ``0 .. n_fft - 1``; a later frame is
        analysed while it brings new samples (the last one zero-padded, as TarsosDSP's dispatcher does)."""
        if n_samples <= 0:
            return 0
        return 1 + max(0, -(-(n_samples - self.n_fft) // self.hop))

    def magnitudes(self, audio: np.ndarray) -> np.ndarray:
        """Linear constant-Q magnitudes.

        Parameters
        ----------
        audio : np.ndarray, float, shape (n,)
            Mono samples at ``sr``.

        Returns
        -------
        np.ndarray, float32, shape (n_frames, n_bins)
            Row ``m`` analyses samples ``m * hop .. m * hop + n_fft - 1``.
        """
        from numpy.lib.stride_tricks import sliding_window_view
        from scipy.fft import rfft

        x = np.asarray(audio, np.float32)
        n_frames = self.n_frames(x.size)
        out = np.zeros((n_frames, self.n_bins), np.float32)
        if n_frames == 0:
            return out
        padded = np.zeros((n_frames - 1) * self.hop + self.n_fft, np.float32)
        padded[: x.size] = x
        frames = sliding_window_view(padded, self.n_fft)[:: self.hop]
        c0, c1, kernel_t = self._kernel                    # FFT bins used, sparse (bins x used FFT bins)
        for s in range(0, n_frames, CHUNK_FRAMES):
            spec = rfft(frames[s:s + CHUNK_FRAMES], axis=1, workers=1)[:, c0:c1]
            out[s:s + CHUNK_FRAMES] = np.abs(kernel_t @ spec.T).T
        return out


def cq_bin_count(fmin: float, fmax: float, bins_per_octave: int) -> int:
    """``ceil(bins_per_octave * log2(fmax / fmin))`` with the band edges and their ratio in float32, as TarsosDSP
    computes it (256 at Panako's defaults: 36 x 7.0833 comes out a hair above 255)."""
    ratio = np.float32(np.float32(fmax) / np.float32(fmin))
    return math.ceil(bins_per_octave * math.log(float(ratio)) / math.log(2.0))


@functools.lru_cache(maxsize=4)
def _cq_kernel(sr: int, fmin: float, fmax: float, bins_per_octave: int) -> tuple[int, np.ndarray, np.ndarray, tuple]:
    """(n_fft, centre frequencies, window lengths, (first FFT bin, end FFT bin, sparse kernel)) of a transform."""
    from scipy import sparse
    from scipy.fft import fft

    q = 1.0 / (2.0 ** (1.0 / bins_per_octave) - 1.0)
    fmin32 = np.float32(fmin)
    n_bins = cq_bin_count(fmin, fmax, bins_per_octave)
    n_fft = int(2 ** math.ceil(math.log(math.ceil(q * sr / float(fmin32))) / math.log(2.0)))
    freqs = (float(fmin32) * 2.0 ** (np.arange(n_bins) / bins_per_octave)).astype(np.float32).astype(np.float64)
    lengths = np.minimum(np.ceil(q * sr / freqs), n_fft).astype(np.int64)
    half = n_fft // 2
    rows, cols, vals = [], [], []
    for k in range(n_bins):
        n = int(lengths[k])
        j = np.arange(n)
        atom = np.zeros(n_fft, np.complex128)
        atom[:n] = (0.5 - 0.5 * np.cos(2.0 * np.pi * j / n)) / n * np.exp(2j * np.pi * q * j / n)
        spec = fft(atom, workers=1)
        m = np.arange(half)
        mirror = spec[n_fft - 1 - m]
        folded = np.abs(spec[:half]) + np.abs(mirror)
        keep = np.flatnonzero(folded > KERNEL_THRESHOLD)
        rows.append(np.full(keep.size, k))
        cols.append(keep)
        vals.append(np.conj(spec[keep] + mirror[keep]) / n_fft)
    r, c, v = np.concatenate(rows), np.concatenate(cols), np.concatenate(vals)
    c0, c1 = int(c.min()), int(c.max()) + 1
    kern = sparse.csr_matrix((v.astype(np.complex64), (r, c - c0)), shape=(n_bins, c1 - c0))
    return n_fft, freqs, lengths, (c0, c1, kern)


# ---------------------------------------------------------------------------------------------------------------
# Event points, triplets, hashes (pure functions over arrays)
# ---------------------------------------------------------------------------------------------------------------

def find_event_points(mag: np.ndarray, max_filter: int = 15, min_filter: int = 3, min_contrast: float = 0.2,
                      max_contrast: float = 0.9, min_energy: float = 0.1) -> np.ndarray:
    """Panako's event points of a linear magnitude spectrum.

    Point ``(t, k)`` is kept when ``t`` is at least ``max_filter // 2`` frames from both ends, its magnitude
    equals the maximum of the ``max_filter`` x ``max_filter`` (frames x bins) neighbourhood and is not zero, the
    ``min_filter`` x ``min_filter`` minimum is not zero, ``min_contrast < log1p(min) / log1p(max) < max_contrast``
    and ``log1p(magnitude) > min_energy * log1p(M)``, ``M`` the largest neighbourhood maximum over the bins
    ``0 .. k`` of frame ``t``. Along frequency the filters repeat the edge bins. The tests run in float32.

    Parameters
    ----------
    mag : np.ndarray, shape (n_frames, n_bins)
        Linear magnitudes (:meth:`ConstantQ.magnitudes`).

    Returns
    -------
    np.ndarray, float64, shape (n_events, 3)
        ``(frame, bin, contrast)`` rows sorted by frame, then bin; ``contrast = min / max`` (float32 values).
    """
    from numpy.lib.stride_tricks import sliding_window_view
    from scipy.ndimage import maximum_filter1d, minimum_filter1d

    mag = np.asarray(mag, np.float32)
    n, n_bins = mag.shape if mag.ndim == 2 else (0, 0)
    h, hm = max_filter // 2, min_filter // 2
    if n < max_filter or n_bins == 0:
        return np.zeros((0, 3), np.float64)
    vmax = maximum_filter1d(mag, max_filter, axis=1, mode="nearest")
    vmin = minimum_filter1d(mag, min_filter, axis=1, mode="nearest")
    big = sliding_window_view(vmax, max_filter, axis=0).max(axis=-1)           # centres h .. n-1-h
    small = sliding_window_view(vmin, min_filter, axis=0).min(axis=-1)[h - hm: n - h - hm]
    cur = mag[h: n - h]
    f32 = np.float32
    log_cur = np.log1p(cur.astype(np.float64)).astype(f32)
    log_big = np.log1p(big.astype(np.float64)).astype(f32)
    log_small = np.log1p(small.astype(np.float64)).astype(f32)
    log_frame = np.log1p(np.maximum.accumulate(big, axis=1).astype(np.float64)).astype(f32)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = (log_small / log_big).astype(f32)
    ok = (cur == big) & (cur != 0) & (small != 0)
    ok &= (log_cur > f32(min_energy) * log_frame) & (ratio > f32(min_contrast)) & (ratio < f32(max_contrast))
    t, k = np.nonzero(ok)                                                       # row-major: frame, then bin
    with np.errstate(divide="ignore", invalid="ignore"):
        contrast = (small[t, k] / big[t, k]).astype(f32)
    return np.column_stack([t + h, k, contrast.astype(np.float64)])


def make_triplets(events: np.ndarray, max_dt: int = 57, min_dt: int = 7, max_df: int = 31) -> np.ndarray:
    """One triplet per event point, as Panako packs them (before the hash-set de-duplication).

    For ``e1 = events[i]``: every ``j > i`` with ``t1 + min_dt < t_j < t1 + max_dt`` and ``|f_j - f1| < max_df``,
    and for each such ``j`` every ``k > j`` with ``t_j + min_dt < t_k < t_j + max_dt`` and ``|f_k - f_j| < max_df``
    is a candidate; the one with the largest float32 contrast sum ``(c_k + c_j) + c_i`` is kept, a tie going to
    the last candidate in loop order (``j``, then ``k``, ascending).

    Parameters
    ----------
    events : np.ndarray, shape (n, 3)
        ``(frame, bin, contrast)`` rows sorted by frame (:func:`find_event_points`).

    Returns
    -------
    np.ndarray, int64, shape (m, 3)
        Indices ``(i, j, k)`` into ``events``, sorted by ``i``.
    """
    n = len(events)
    if n < 3:
        return np.zeros((0, 3), np.int64)
    t = events[:, 0].astype(np.int64)
    f = events[:, 1].astype(np.int64)
    c = events[:, 2].astype(np.float32)
    end = np.searchsorted(t, t + max_dt, side="left")          # events with t < t_x + max_dt: indices < end[x]
    out = []
    for i in range(n):
        js = np.arange(i + 1, end[i])
        js = js[(t[js] > t[i] + min_dt) & (np.abs(f[js] - f[i]) < max_df)]
        if js.size == 0:
            continue
        hi = int(end[js].max())
        ks = np.arange(int(js[0]) + 1, hi)
        if ks.size == 0:
            continue
        ok = ((ks[None, :] > js[:, None]) & (ks[None, :] < end[js][:, None])
              & (t[ks][None, :] > t[js][:, None] + min_dt) & (np.abs(f[ks][None, :] - f[js][:, None]) < max_df))
        if not ok.any():
            continue
        energy = np.where(ok, (c[ks][None, :] + c[js][:, None]) + c[i], -np.inf).astype(np.float32)
        flat = energy.ravel()
        last = flat.size - 1 - int(np.argmax(flat[::-1]))    # the last maximum in (j, k) order
        a, b = divmod(last, ks.size)
        out.append((i, int(js[a]), int(ks[b])))
    return np.array(out, np.int64).reshape(-1, 3)


def hash_triplets(f1: np.ndarray, f2: np.ndarray, f3: np.ndarray, t1: np.ndarray, t2: np.ndarray, t3: np.ndarray,
                  shift: int = 31) -> np.ndarray:
    """Panako's 27-bit triplet hash (``NCteQHashFunction``); see the module docstring for the layout.

    Parameters
    ----------
    f1, f2, f3 : np.ndarray, int
        Constant-Q bins of the three event points.
    t1, t2, t3 : np.ndarray, int
        Their frames, ``t1 < t2 < t3``.
    shift : int
        Added to the frequency differences: ``max_df_cents * bins_per_octave // 1200`` (31 at the defaults).

    Returns
    -------
    np.ndarray, int64
    """
    f1, f2, f3, t1, t2, t3 = (np.asarray(v, np.int64) for v in (f1, f2, f3, t1, t2, t3))
    band1 = np.fmod(_java_round(f1 / 16.0), 16)
    band3 = np.fmod(_java_round(f3 / 16.0), 16)
    d12 = np.fmod(f2 - f1 + shift, 64)                          # Java's %: the sign of the dividend
    d23 = np.fmod(f3 - f2 + shift, 64)
    ratio = ((t2 - t1) / (t3 - t1)).astype(np.float32)          # float32, as the source divides
    level = np.fmod(_java_round(ratio.astype(np.float64) * 8.0), 16)
    first_longer = ((t2 - t1) > (t3 - t2)).astype(np.int64)
    span = np.fmod(_java_round((t3 - t1) / 20.0), 4)
    return (band1 + (band3 << 4) + (d12 << 8) + (d23 << 14) + (level << 20) + (first_longer << 24)
            + (span << 25)).astype(np.int64)


def dedup_triplets(hashes: np.ndarray, t1: np.ndarray, window: int = 100) -> np.ndarray:
    """Indices of the triplets Panako's hash set keeps: in order, a triplet is dropped when a kept one has the same
    hash and a ``t1`` less than ``window`` frames away. ``t1`` must be non-decreasing."""
    last: dict[int, int] = {}
    keep = []
    for i, (h, t) in enumerate(zip(hashes.tolist(), t1.tolist())):
        prev = last.get(h)
        if prev is not None and t - prev < window:
            continue
        last[h] = t
        keep.append(i)
    return np.array(keep, np.int64)


# ---------------------------------------------------------------------------------------------------------------
# Matching (pure function over hit arrays)
# ---------------------------------------------------------------------------------------------------------------

def hit_ratios(q_dt: np.ndarray, r_dt: np.ndarray, q_f1: np.ndarray, r_f1: np.ndarray,
               bins_per_octave: int = 36) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Panako's per-hit ratios, in float32 as the source computes them.

    Returns
    -------
    time_pct : np.ndarray, float32
        ``100 * ref Δt13 / query Δt13``.
    time_int : np.ndarray, int64
        ``time_pct`` truncated (the test of plausibility uses it).
    freq_int : np.ndarray, int64
        ``round(100 * 2 ** ((query f1 - ref f1) / bins_per_octave))``.
    """
    f32 = np.float32
    time_pct = (np.asarray(r_dt, f32) / np.asarray(q_dt, f32)).astype(f32) * f32(100.0)
    cents = f32(1200.0 / bins_per_octave) * (np.asarray(q_f1, np.int64) - np.asarray(r_f1, np.int64)).astype(f32)
    freq = np.exp(cents.astype(np.float64) * (math.log(2.0) / 1200.0)).astype(f32) * f32(100.0)
    return time_pct, np.trunc(time_pct).astype(np.int64), _java_round(freq)


def align_hits(ref: np.ndarray, q_t1: np.ndarray, q_dt: np.ndarray, q_f1: np.ndarray, r_t1: np.ndarray,
               r_dt: np.ndarray, r_f1: np.ndarray, n_refs: int, min_matches: int = 4, min_ratio: int = 70,
               max_ratio: int = 130, offset_bin: int = 3, bins_per_octave: int = 36) -> dict[str, np.ndarray]:
    """Panako's scoring of hash hits, per reference.

    A reference with more than ``min_matches`` hits is a candidate. Its hits whose truncated time ratio and
    rounded frequency ratio (:func:`hit_ratios`) both lie strictly inside ``(min_ratio, max_ratio)`` vote for the
    offset bin ``round(round(r_t1 - q_t1 * time_pct / 100) / offset_bin)``; its score is the count of the most
    popular bin (the lower bin on a tie).

    Parameters
    ----------
    ref : np.ndarray, int, shape (h,)
        Reference index of each hit.
    q_t1, q_dt, q_f1, r_t1, r_dt, r_f1 : np.ndarray, int, shape (h,)
        ``t1``, ``t3 - t1`` and ``f1`` of the query triplet and of the stored triplet of each hit.
    n_refs : int
        References in the database.

    Returns
    -------
    dict of np.ndarray, shape (n_refs,)
        ``raw`` (hits), ``score`` (aligned hits; 0 for a reference that is no candidate), ``offset`` (the winning
        bin times ``offset_bin``, in frames: where the query's frame 0 lies in the reference), ``time`` and
        ``pitch`` (means over the aligned hits of ``r_dt / q_dt`` and ``2 ** ((q_f1 - r_f1) / bins_per_octave)``;
        NaN without a score).
    """
    ref = np.asarray(ref, np.int64)
    raw = np.bincount(ref, minlength=n_refs)[:n_refs]
    score = np.zeros(n_refs, np.int64)
    offset = np.zeros(n_refs, np.int64)
    time_f = np.full(n_refs, np.nan)
    pitch_f = np.full(n_refs, np.nan)
    out = {"raw": raw, "score": score, "offset": offset, "time": time_f, "pitch": pitch_f}
    if ref.size == 0:
        return out
    time_pct, time_int, freq_int = hit_ratios(q_dt, r_dt, q_f1, r_f1, bins_per_octave)
    ok = ((raw[ref] > min_matches) & (time_int > min_ratio) & (time_int < max_ratio)
          & (freq_int > min_ratio) & (freq_int < max_ratio))
    if not ok.any():
        return out
    f32 = np.float32
    diff = np.asarray(r_t1, np.int64).astype(f32) - (np.asarray(q_t1, np.int64).astype(f32) * time_pct
                                                     / f32(100.0)).astype(f32)
    td = _java_round(diff.astype(f32))
    rough = _java_round((td.astype(f32) / f32(offset_bin)).astype(f32))
    idx = np.flatnonzero(ok)
    r, b = ref[idx], rough[idx]
    order = np.lexsort((b, r))
    r, b, idx = r[order], b[order], idx[order]
    new = np.ones(r.size, bool)
    new[1:] = (r[1:] != r[:-1]) | (b[1:] != b[:-1])
    start = np.flatnonzero(new)
    counts = np.diff(np.append(start, r.size))
    cell_ref = r[start]
    # per reference the first (lowest-bin) cell with the largest count
    best_order = np.lexsort((b[start], -counts, cell_ref))
    _, first = np.unique(cell_ref[best_order], return_index=True)
    for c in best_order[first]:
        i = int(cell_ref[c])
        hits = idx[start[c]: start[c] + counts[c]]
        score[i] = counts[c]
        offset[i] = int(b[start[c]]) * offset_bin
        time_f[i] = float(np.mean(np.asarray(r_dt, np.float64)[hits] / np.asarray(q_dt, np.float64)[hits]))
        df = np.asarray(q_f1, np.float64)[hits] - np.asarray(r_f1, np.float64)[hits]
        pitch_f[i] = float(np.mean(2.0 ** (df / bins_per_octave)))
    return out


# ---------------------------------------------------------------------------------------------------------------
# The system
# ---------------------------------------------------------------------------------------------------------------

class Panako:
    """Panako 2014 (constant-Q strategy of Panako 1.x): event-point triplets, robust to time-scale and pitch change.

    Parameters
    ----------
    sr : int, default 44100
        Analysis rate (``NCTEQ_SAMPLE_RATE``); input at any rate is resampled to it.
    hop : int, default 1536
        Samples between frames (``NCTEQ_STEP_SIZE``; 34.8 ms at 44.1 kHz).
    min_cents, max_cents : float, default 3700, 12200
        Band in absolute cents (``NCTEQ_MIN_FREQ``, ``NCTEQ_MAX_FREQ``; 0 cents = 8.175 Hz): 69.3-9397 Hz.
    bins_per_octave : int, default 36
        ``NCTEQ_BINS_PER_OCTAVE``.
    max_filter, min_filter : int, default 15, 3
        Sides of the maximum and minimum neighbourhoods of an event point (frames and bins; odd).
    min_contrast, max_contrast : float, default 0.2, 0.9
        Bounds (exclusive) of ``log1p(min) / log1p(max)``.
    min_energy : float, default 0.1
        ``log1p(point)`` must exceed this times ``log1p`` of the running frame maximum.
    max_dt_s : float, default 2.0
        ``t2 - t1`` and ``t3 - t2`` stay below ``int(max_dt_s * sr / hop)`` frames (57).
    min_dt : int, default 7
        ... and above this many frames.
    max_df_cents : int, default 1066
        ``|f2 - f1|``, ``|f3 - f2|`` below ``int(bins_per_octave * max_df_cents / 1200)`` bins (31)
        (``NCTEQ_EVENT_POINT_FREQUENCY_DELTA_MAX``); the hash adds ``max_df_cents * bins_per_octave // 1200``.
    dedup_frames : int, default 100
        A triplet with the same hash as a kept one less than this many frames earlier is dropped.
    min_matches : int, default 4
        A reference needs more hits than this to be examined (``NCTEQ_MINIMUM_MATCHES_THRESHOLD``).
    min_ratio, max_ratio : int, default 70, 130
        Plausible time and frequency ratios of a hit, in percent (exclusive).
    offset_bin : int, default 3
        Frames per bin of the offset histogram.
    min_score : float, default 4.0
        Fewer aligned hits give ``ref_id=None`` (Panako: more than ``NCTEQ_MINIMUM_ALIGNED_MATCHES_THRESHOLD`` = 3).

    Attributes
    ----------
    last_factors : dict or None
        After :meth:`identify` with a candidate: ``{"time": f_t, "pitch": f_p}``, the means over the aligned hits
        of the reference's ``Δt13`` over the query's (how much faster the query plays) and of the query's
        frequencies over the reference's. ``None`` when there was no candidate.
    """

    name = "panako"

    def __init__(self, **params: Any) -> None:
        self.params: dict[str, Any] = _validate(params)
        self._ref_ids: list[str] = []
        self._seconds: list[float] = []
        self._chunks: list[tuple[np.ndarray, ...]] = []   # per ref: hashes, t1, dt13, f1
        self._index: tuple[np.ndarray, ...] | None = None
        self._file_bytes: int | None = None
        self.last_factors: dict[str, float] | None = None
        self._cqt: ConstantQ | None = None

    # ---- derived constants -------------------------------------------------------------------------------------
    @property
    def frames_per_second(self) -> float:
        """Frames per second (``sr / hop``)."""
        return self.params["sr"] / self.params["hop"]

    @property
    def n_bins(self) -> int:
        """Constant-Q bins (:func:`cq_bin_count`; 256 at the defaults)."""
        p = self.params
        return cq_bin_count(cents_to_hz(p["min_cents"]), cents_to_hz(p["max_cents"]), p["bins_per_octave"])

    @property
    def max_dt_frames(self) -> int:
        """Upper bound (exclusive) of ``t2 - t1`` and ``t3 - t2``: ``int(max_dt_s * sr / hop)``."""
        p = self.params
        return int(p["max_dt_s"] * p["sr"] / p["hop"])

    @property
    def max_df_bins(self) -> int:
        """Upper bound (exclusive) of ``|f2 - f1|``, ``|f3 - f2|``: ``int(bins_per_octave * max_df_cents / 1200)``."""
        p = self.params
        return int(p["bins_per_octave"] * p["max_df_cents"] / 1200.0)

    @property
    def hash_shift(self) -> int:
        """Offset added to the frequency differences in the hash: ``max_df_cents * bins_per_octave // 1200``."""
        p = self.params
        return p["max_df_cents"] * p["bins_per_octave"] // 1200

    # ---- features ----------------------------------------------------------------------------------------------
    def constant_q(self) -> ConstantQ:
        """The transform of this configuration (built once)."""
        if self._cqt is None:
            p = self.params
            self._cqt = ConstantQ(p["sr"], cents_to_hz(p["min_cents"]), cents_to_hz(p["max_cents"]),
                                  p["bins_per_octave"], p["hop"])
        return self._cqt

    def _prepare(self, audio: np.ndarray, sr: int, name: str) -> np.ndarray | None:
        """Validate (AudioError for empty/NaN/stereo), resample; ``None`` for silent input."""
        a = check_audio(audio, sr, name=name, min_duration_s=0.0, allow_silence=True)
        if rms(a) < SILENCE_RMS:
            return None
        return resample(a, int(sr), self.params["sr"])

    def _events(self, audio: np.ndarray) -> np.ndarray:
        p = self.params
        mag = self.constant_q().magnitudes(audio)
        return find_event_points(mag, p["max_filter"], p["min_filter"], p["min_contrast"], p["max_contrast"],
                                 p["min_energy"])

    def _analyse(self, audio: np.ndarray, sr: int, name: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(events (n, 3), kept triplets (m, 3) indices, their hashes (m,)); empty for silent or short clips."""
        a = self._prepare(audio, sr, name)
        if a is None:
            return np.zeros((0, 3)), np.zeros((0, 3), np.int64), np.zeros(0, np.int64)
        ev = self._events(a)
        trip = make_triplets(ev, self.max_dt_frames, self.params["min_dt"], self.max_df_bins)
        if len(trip) == 0:
            return ev, trip, np.zeros(0, np.int64)
        t, f = ev[:, 0].astype(np.int64), ev[:, 1].astype(np.int64)
        i, j, k = trip[:, 0], trip[:, 1], trip[:, 2]
        h = hash_triplets(f[i], f[j], f[k], t[i], t[j], t[k], self.hash_shift)
        keep = dedup_triplets(h, t[i], self.params["dedup_frames"])
        return ev, trip[keep], h[keep]

    def event_points(self, audio: np.ndarray, sr: int) -> np.ndarray:
        """Event points of a clip.

        Returns
        -------
        np.ndarray, float64, shape (n_events, 2)
            ``(time_s, cq_bin)`` rows sorted by time; ``time_s`` is the start of the point's frame, bin ``k`` is
            centred on ``69.3 * 2 ** (k / 36)`` Hz at the defaults.
        """
        a = self._prepare(audio, sr, "audio")
        ev = np.zeros((0, 3)) if a is None else self._events(a)
        return np.column_stack([ev[:, 0] / self.frames_per_second, ev[:, 1]]).astype(np.float64)

    def triplets(self, audio: np.ndarray, sr: int) -> np.ndarray:
        """The stored triplets of a clip, for plotting.

        Returns
        -------
        np.ndarray, float64, shape (m, 3, 2)
            ``[i, j] = (time_s, cq_bin)`` of event ``e1``, ``e2``, ``e3`` (j = 0, 1, 2) of triplet ``i``.
        """
        ev, trip, _ = self._analyse(audio, sr, "audio")
        pts = np.column_stack([ev[:, 0] / self.frames_per_second, ev[:, 1]]).astype(np.float64)
        return pts[trip] if len(trip) else np.zeros((0, 3, 2), np.float64)

    def fingerprint(self, audio: np.ndarray, sr: int) -> tuple[np.ndarray, np.ndarray]:
        """Triplet hashes of a clip.

        Returns
        -------
        codes : np.ndarray, int64, shape (m,)
            One 27-bit hash per triplet (:func:`hash_triplets`).
        times_s : np.ndarray, float64, shape (m,)
            Start of the frame of each triplet's first event point, seconds from the clip start.
        """
        ev, trip, h = self._analyse(audio, sr, "audio")
        if len(trip) == 0:
            return np.zeros(0, np.int64), np.zeros(0, np.float64)
        return h, ev[trip[:, 0], 0] / self.frames_per_second

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
            raise ValueError(f"panako: ref_id must be a non-empty string, got {ref_id!r}")
        if ref_id in self._ref_ids:
            raise ValueError(f"panako: reference {ref_id!r} is already in the database")
        a = check_audio(audio, sr, name=ref_id, min_duration_s=0.0)
        ev, trip, h = self._analyse(a, sr, ref_id)
        if len(trip) == 0:
            raise AudioError(f"{ref_id}: gives no event-point triplets ({a.size / sr:.2f} s, {len(ev)} event "
                             "points); too short or too quiet to fingerprint")
        t, f = ev[:, 0].astype(np.int64), ev[:, 1].astype(np.int64)
        chunk = (h.astype(np.int32), t[trip[:, 0]].astype(np.int32),
                 (t[trip[:, 2]] - t[trip[:, 0]]).astype(np.int16), f[trip[:, 0]].astype(np.int16))
        self._ref_ids.append(ref_id)
        self._seconds.append(a.size / sr)
        self._chunks.append(chunk)
        self._index = None
        self._file_bytes = None

    #: The arrays of one stored reference, in the order of a chunk (see :meth:`add`).
    _RECORD = ("hashes", "t1", "dt13", "f1")

    def reference_record(self, ref_id: str) -> dict[str, np.ndarray]:
        """The stored triplet hashes of ``ref_id`` with their times and frequencies, and its ``seconds``."""
        i = self._ref_ids.index(ref_id)
        return {**dict(zip(self._RECORD, self._chunks[i])), "seconds": np.float64(self._seconds[i])}

    def add_record(self, ref_id: str, record: dict[str, np.ndarray]) -> None:
        """Store a record of :meth:`reference_record` under the new ``ref_id``."""
        if ref_id in self._ref_ids:
            raise ValueError(f"panako: reference {ref_id!r} is already in the database")
        r = check_record("panako", ref_id, record, {"hashes": ("int32", 1), "t1": ("int32", 1),
                                                    "dt13": ("int16", 1), "f1": ("int16", 1), "seconds": ("f8", 0)})
        if r["hashes"].size == 0:
            raise ValueError(f"panako: the record of {ref_id!r} holds no triplet")
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
        """(hash, ref, t1, dt13, f1) arrays over all references, sorted by hash."""
        if self._index is None:
            if self._chunks:
                h = np.concatenate([c[0] for c in self._chunks])
                r = np.concatenate([np.full(len(c[0]), i, np.int32) for i, c in enumerate(self._chunks)])
                t1, dt, f1 = (np.concatenate([c[k] for c in self._chunks]) for k in (1, 2, 3))
            else:
                h, r, t1 = np.zeros(0, np.int32), np.zeros(0, np.int32), np.zeros(0, np.int32)
                dt, f1 = np.zeros(0, np.int16), np.zeros(0, np.int16)
            order = np.argsort(h, kind="stable")
            self._index = (h[order], r[order], t1[order], dt[order], f1[order])
        return self._index

    def _lookup(self, hashes: np.ndarray) -> tuple[np.ndarray, ...]:
        """Stored triplets whose hash equals each of ``hashes``: ``(counts, refs, t1, dt13, f1)``, hits per hash
        and, for every hit (grouped by hash, hashes in order), its reference index, time, span and frequency."""
        keys, refs, rt1, rdt, rf1 = self._build_index()
        lo = np.searchsorted(keys, hashes.astype(keys.dtype), side="left")
        hi = np.searchsorted(keys, hashes.astype(keys.dtype), side="right")
        counts = hi - lo
        di = np.repeat(lo - (np.cumsum(counts) - counts), counts) + np.arange(int(counts.sum()))
        return counts, refs[di], rt1[di], rdt[di], rf1[di]

    # ---- matching ----------------------------------------------------------------------------------------------
    def identify(self, audio: np.ndarray, sr: int) -> Match:
        """Find the reference ``audio`` comes from, tolerating time-scale and pitch change.

        Returns
        -------
        Match
            ``ref_id`` (``None`` when no reference has more than ``min_matches`` hits and ``min_score`` aligned
            ones, or the clip is silent or too short), ``offset_s`` = where the query starts in the reference,
            ``score`` = aligned hits of the best reference. The estimated factors are left in
            :attr:`last_factors`.

        Raises
        ------
        AudioError
            Empty, NaN/inf or stereo input.
        """
        self.last_factors = None
        ev, trip, qh = self._analyse(audio, sr, "query")
        if len(trip) == 0 or not self._ref_ids:
            return NO_MATCH
        counts, refs, rt1, rdt, rf1 = self._lookup(qh)
        if refs.size == 0:
            return NO_MATCH
        qi = np.repeat(np.arange(len(trip)), counts)
        t, f = ev[:, 0].astype(np.int64), ev[:, 1].astype(np.int64)
        p = self.params
        res = align_hits(refs, t[trip[qi, 0]], t[trip[qi, 2]] - t[trip[qi, 0]], f[trip[qi, 0]],
                         rt1, rdt, rf1, len(self._ref_ids), p["min_matches"], p["min_ratio"],
                         p["max_ratio"], p["offset_bin"], p["bins_per_octave"])
        score = res["score"]
        best = int(np.argmax(score))                      # ties: the reference added first
        if score[best] == 0:
            return NO_MATCH
        self.last_factors = {"time": float(res["time"][best]), "pitch": float(res["pitch"][best])}
        if score[best] < max(p["min_score"], 1.0):
            return Match(None, 0.0, float(score[best]))
        return Match(self._ref_ids[best], float(res["offset"][best] / self.frames_per_second), float(score[best]))

    # ---- persistence -------------------------------------------------------------------------------------------
    def save(self, path: str | os.PathLike) -> None:
        """Write the database to one ``.npz`` file at ``path``, atomically (params as JSON inside)."""
        keys, refs, t1, dt, f1 = self._build_index()
        meta = {"format": FILE_FORMAT, "params": self.params, "ref_ids": self._ref_ids,
                "seconds": self._seconds}
        with atomic_path(path) as tmp, open(tmp, "wb") as fh:   # a file object: numpy adds no ".npz" suffix
            save_npz(fh, True, meta=np.array(json.dumps(meta)), hashes=keys, refs=refs, t1=t1, dt13=dt, f1=f1)
        self._file_bytes = Path(path).stat().st_size

    @classmethod
    def load(cls, path: str | os.PathLike) -> Panako:
        """Open a database written by :meth:`save`.

        Raises
        ------
        FileNotFoundError
            No file at ``path``.
        ValueError
            The file is not a Panako database of this format (corrupt, truncated, another system's).
        """
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no Panako database file here")
        try:
            with np.load(path, allow_pickle=False) as z:
                meta = json.loads(str(z["meta"]))
                arrays = {k: np.asarray(z[k]) for k in ("hashes", "refs", "t1", "dt13", "f1")}
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
            raise ValueError(f"{path}: not a readable Panako database ({e})") from e
        by_ref = np.argsort(refs, kind="stable")
        bounds = np.searchsorted(refs[by_ref], np.arange(len(ref_ids) + 1))
        for i, rid in enumerate(ref_ids):
            s = by_ref[bounds[i]:bounds[i + 1]]
            sys_._ref_ids.append(rid)
            sys_._seconds.append(seconds[i])
            sys_._chunks.append((arrays["hashes"][s].astype(np.int32), arrays["t1"][s].astype(np.int32),
                                 arrays["dt13"][s].astype(np.int16), arrays["f1"][s].astype(np.int16)))
        sys_._file_bytes = path.stat().st_size
        return sys_

    def stats(self) -> dict[str, Any]:
        """Database size.

        Returns
        -------
        dict
            ``name``, ``references``, ``fingerprints`` (triplets stored), ``seconds`` (audio indexed), ``bytes``
            (``fingerprints * 16``, Panako's record size), ``bits_per_second`` (``8 * bytes / seconds``),
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


SYSTEM = Panako
