"""Attribute classification: what do a system's fingerprints tell about the speaker, the language and the channel?

Each system's fingerprints of a clip are turned into one fixed-length vector (:func:`system_features`), the most
informative fixed-size summary that its fingerprint allows (:data:`SUMMARIES`), and attribute classifiers are
cross-validated on those vectors (:func:`folds`, :func:`classify_attributes`). Folds are disjoint by speaker for
every task that allows it (gender, nationality, distortion); speaker identification is disjoint by utterance.

Claim (b) of the study (docs/study.md, Protocol) rests on :func:`paired_attribute_differences`: SAMAF's balanced
accuracy minus each baseline's, with one fixed classifier for every feature set, the same folds and a paired
cluster-bootstrap interval (the same resampled speakers, or utterances for the speaker task, for both).
"""

from __future__ import annotations

import hashlib
import math
import warnings
import zlib
from collections import OrderedDict
from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd

from . import uncertainty
from .identification import _id_or_none

#: Attribute-classification tasks and the column holding each label.
TASKS = ("speaker", "gender", "nationality", "distortion")
CLASSIFIERS = ("logreg", "knn")
#: Label values treated as missing (rows dropped for that task).
MISSING_LABELS = frozenset({"", "nan", "none", "unknown", "<na>"})

_TASK_LABEL = {"speaker": "speaker_id", "gender": "gender", "nationality": "nationality", "distortion": "distortion"}
#: The column whose values never straddle a training and a test fold, per task: the speaker wherever the task
#: allows it; utterances for the speaker task, whose classes are the speakers.
_TASK_GROUP = {"speaker": "utterance_id", "gender": "speaker_id", "nationality": "speaker_id",
               "distortion": "speaker_id"}
#: Prefix of the attribute columns a folder's metadata CSV brings (``attr_genre``); each is a task of its own,
#: labelled by that column and grouped by ``speaker_id`` (the folder's group).
ATTRIBUTE_PREFIX = "attr_"
_PRIME = 2_147_483_647  # 2**31 - 1: products with a 31-bit multiplier stay inside uint64
_HASH_A = 1_103_515_245
_HASH_B = 12_345


# --------------------------------------------------------------------------------------------------------------
# Features from fingerprints
# --------------------------------------------------------------------------------------------------------------

def _hash_rows(codes: np.ndarray) -> np.ndarray:
    """One uint64 value in ``[0, 2**31 - 1)`` per code (1-D integers) or per row (2-D bytes)."""
    c = np.asarray(codes)
    if c.ndim == 1:
        if c.dtype.kind == "i":
            c = c.astype(np.int64).view(np.uint64)
        elif c.dtype.kind in "ub":
            c = c.astype(np.uint64)
        else:
            raise TypeError(f"codes must be integers, got dtype {c.dtype}")
        return c % np.uint64(_PRIME)
    if c.ndim == 2:
        if c.dtype.kind not in "uib":
            raise TypeError(f"2-D codes must be integer bytes, got dtype {c.dtype}")
        b = c.astype(np.uint8 if c.dtype.itemsize == 1 else np.uint64)
        h = np.zeros(b.shape[0], dtype=np.uint64)
        base = np.uint64(256 if b.dtype == np.uint8 else 65_599)
        for j in range(b.shape[1]):
            h = (h * base + (b[:, j].astype(np.uint64) % np.uint64(_PRIME))) % np.uint64(_PRIME)
        return h
    raise ValueError(f"codes must be 1-D (one integer per fingerprint) or 2-D (packed bytes), got shape {c.shape}")


def bag_of_hashes(codes: np.ndarray, times_s: np.ndarray, duration_s: float, dim: int = 512,
                  norm: str = "l2") -> np.ndarray:
    """A fixed-length "bag of hashes" of one clip (the hashing trick).

    Each code is reduced modulo the prime 2**31 - 1, mixed by a fixed affine map modulo the same prime (so that
    structured low bits, such as a time-difference field, do not all land in a few buckets) and taken modulo
    ``dim``; bucket counts are divided by the clip's duration (hashes per second of audio) and then normalised.

    Parameters
    ----------
    codes : np.ndarray
        Shape (n,) integers (Dejavu's uint64 hash, Panako's triplet hash, RAFS's uint32 words) or shape (n, m)
        integer bytes (SAMAF's packed uint8 codes): each row is hashed as one code.
    times_s : np.ndarray, shape (n,)
        Times of the fingerprints (checked for length only).
    duration_s : float
        Duration of the clip in seconds (> 0).
    dim : int
        Number of buckets.
    norm : {"l2", "log", "none"}
        ``"l2"``: unit Euclidean norm (a clip with no fingerprints stays all zero); ``"log"``: ``log1p`` of the
        hashes per second; ``"none"``: hashes per second.

    Returns
    -------
    np.ndarray, float64, shape (dim,)
    """
    if dim < 1:
        raise ValueError(f"dim must be >= 1, got {dim}")
    if not (duration_s > 0):
        raise ValueError(f"duration_s must be > 0, got {duration_s}")
    if norm not in ("l2", "log", "none"):
        raise ValueError(f"norm must be 'l2', 'log' or 'none', got {norm!r}")
    c = np.asarray(codes)
    t = np.asarray(times_s)
    if c.shape[0] != t.shape[0]:
        raise ValueError(f"codes ({c.shape[0]}) and times_s ({t.shape[0]}) differ in length")
    if c.shape[0] == 0:
        return np.zeros(dim)
    h = _hash_rows(c)
    h = (h * np.uint64(_HASH_A) + np.uint64(_HASH_B)) % np.uint64(_PRIME) % np.uint64(dim)
    v = np.bincount(h.astype(np.int64), minlength=dim).astype(np.float64) / float(duration_s)
    if norm == "l2":
        n = np.linalg.norm(v)
        return v / n if n > 0 else v
    if norm == "log":
        return np.log1p(v)
    return v


def bit_features(codes: np.ndarray, packed: bool | None = None) -> np.ndarray:
    """Fraction of ones at every bit position across a clip's fingerprints.

    Parameters
    ----------
    codes : np.ndarray
        One of: SAMAF packed codes, uint8 shape (n, B/8) (``np.packbits`` order: most significant bit first);
        bits, bool or 0/1 shape (n, B) (pass ``packed=False`` for 0/1 integers); integer words shape (n,), e.g.
        RAFS uint32 sub-fingerprints, giving one position per bit of the dtype (bit 0 = least significant).
    packed : bool, optional
        For 2-D input: whether rows are packed bytes. Default: bool arrays are bits, other 2-D arrays packed bytes.

    Returns
    -------
    np.ndarray, float64, shape (B,) (or (32,) for uint32 words)
        Zeros when there are no fingerprints.
    """
    c = np.asarray(codes)
    if c.ndim == 1:
        if c.dtype.kind not in "ui":
            raise TypeError(f"1-D codes must be integer words, got dtype {c.dtype}")
        nb = c.dtype.itemsize * 8
        if c.size == 0:
            return np.zeros(nb)
        u = c.view(np.dtype(f"u{c.dtype.itemsize}")).astype(np.uint64)
        bits = (u[:, None] >> np.arange(nb, dtype=np.uint64)) & np.uint64(1)
        return bits.mean(0).astype(np.float64)
    if c.ndim != 2:
        raise ValueError(f"codes must be 1-D words or 2-D (n, bytes|bits), got shape {c.shape}")
    if packed is None:
        packed = c.dtype != bool
    if packed:
        if c.dtype != np.uint8:
            raise TypeError(f"packed codes must be uint8, got {c.dtype}; pass packed=False for 0/1 bits")
        bits = np.unpackbits(c, axis=1)
    else:
        bits = (c != 0).astype(np.uint8)
    if bits.shape[0] == 0:
        return np.zeros(bits.shape[1])
    return bits.mean(0).astype(np.float64)


def mfcc_mean_features(audio: np.ndarray, sr: int) -> np.ndarray:
    """Reference features: mean and standard deviation over frames of 13 MFCCs.

    Parameters
    ----------
    audio : np.ndarray, shape (n,)
        Mono samples (any rate; resampled to 16 kHz by :func:`samaf_lib.features.mfcc_frames`).
    sr : int

    Returns
    -------
    np.ndarray, float64, shape (26,)
        ``[mean_0 .. mean_12, std_0 .. std_12]``.
    """
    from .features import mfcc_frames

    f = mfcc_frames(audio, sr).astype(np.float64)
    return np.concatenate([f.mean(0), f.std(0)])


def bit_change_features(codes: np.ndarray, packed: bool | None = None) -> np.ndarray:
    """Fraction of consecutive fingerprints that differ at every bit position (the per-bit flip rate).

    Parameters
    ----------
    codes : np.ndarray
        As for :func:`bit_features`, in time order: packed bytes (n, B/8), bits (n, B) or integer words (n,).
    packed : bool, optional
        As for :func:`bit_features`.

    Returns
    -------
    np.ndarray, float64, shape (B,) (or (32,) for uint32 words)
        ``mean over i of (bit of code i+1 != bit of code i)``; zeros when there are fewer than two fingerprints.
    """
    c = np.asarray(codes)
    if c.ndim == 2 and (packed is False or (packed is None and c.dtype == bool)):
        c = c != 0
        return bit_features(c[1:] ^ c[:-1]) if len(c) >= 2 else np.zeros(c.shape[1])
    if c.ndim == 1 and c.dtype.kind not in "ui":
        raise TypeError(f"1-D codes must be integer words, got dtype {c.dtype}")
    if c.ndim not in (1, 2):
        raise ValueError(f"codes must be 1-D words or 2-D (n, bytes|bits), got shape {c.shape}")
    if len(c) < 2:
        return np.zeros(c.dtype.itemsize * 8 if c.ndim == 1 else bit_features(c[:0], packed=packed).shape[0])
    return bit_features(np.bitwise_xor(c[1:], c[:-1]), packed=packed)


# --------------------------------------------------------------------------------------------------------------
# One summary per system
# --------------------------------------------------------------------------------------------------------------

#: The fixed-length summary :func:`system_features` makes of each system's fingerprints of a clip (one line each,
#: for the report). Every summary is the distribution of each field that the system's fingerprint records: rates
#: per bit for bit codes, counts per second of audio in log-spaced (pitch-like) bins for peak pairs and triplets;
#: ``bag`` is the fallback for a system that exposes nothing but opaque hash codes.
SUMMARIES: dict[str, str] = {
    "samaf": "per hash bit, the rate of ones and the rate of change between consecutive windows "
             "(2 x bits values)",
    "rafs": "per sub-fingerprint bit, the rate of ones and the rate of change between consecutive 11.6-ms "
            "sub-fingerprints (64 values)",
    "dejavu": "the peak-pair landmarks before SHA-1, per second: peaks and pairs, f1 in 1/3-octave bands, f2 - f1 "
              "in signed half-octave bins, dt in log-spaced frame bins (72 values)",
    "panako": "event points and triplets, per second: events and triplets, event constant-Q bins in 1/3-octave "
              "bands, f2 - f1 and f3 - f1 in semitone bins, time ratio in 8 levels, t3 - t1 in half-octave bins "
              "(121 + 3 x octaves values: 145 for Panako 2014)",
    "triplets": "as panako, on the constant-Q event points and triplets of our triplet design (136 values)",
    "bag": "bag of hashes: the fingerprint codes hashed into dim buckets per second, L2-normalised (dim values)",
}
#: What :func:`system_features` made of each system before every system had a summary of its own
#: (``summary="legacy"``): the basis of the comparison "old against new summaries".
LEGACY_SUMMARIES: dict[str, str] = {
    "samaf": "per hash bit, the rate of ones (bits values)",
    "rafs": "per sub-fingerprint bit, the rate of ones (32 values)",
    "bag": "bag of hashes: codes hashed into dim buckets per second, L2-normalised (dim values)",
}

# Dejavu: 1/3-octave bands of f1 from 62.5 Hz to 8 kHz (and one band below); f2 - f1 in half-octave bins of
# |f2 - f1| from 31.25 Hz to 8 kHz on either side of a central bin (-31.25, 31.25) Hz; dt in frames.
_DJ_F_EDGES = np.concatenate([[0.0], 62.5 * 2.0 ** (np.arange(22) / 3)])
_DJ_DF_POS = 31.25 * 2.0 ** (np.arange(17) / 2)
_DJ_DF_EDGES = np.concatenate([-_DJ_DF_POS[::-1], _DJ_DF_POS])
_DJ_DT_EDGES = np.array([0, 1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64, 96, 128, 201], dtype=np.float64)
# Event-point systems: frequency differences within +-2 octaves in semitone bins (1/12 octave); t3 - t1 from 1/32 s
# to 4 s in half-octave bins (the triplets of either Panako design span at most 4 s).
_PK_DF_EDGES = np.linspace(-2.0, 2.0, 49)
_PK_DT_EDGES = np.concatenate([[0.0], 2.0 ** (np.arange(-10, 5) / 2)])


def _hist(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Counts of ``values`` in the bins of ``edges``; values outside are clipped into the first or last bin."""
    v = np.clip(np.asarray(values, dtype=np.float64), edges[0], edges[-1])
    return np.histogram(v, bins=edges)[0].astype(np.float64)


def summary_of(system: Any) -> str:
    """The key of :data:`SUMMARIES` that :func:`system_features` uses for ``system``.

    By name for SAMAF, RAFS and Dejavu; ``panako`` or ``triplets`` for any system with an ``event_points``
    method (the constant-Q event-point systems); ``bag`` for every other system.
    """
    name = str(getattr(system, "name", ""))
    if name in ("samaf", "rafs"):
        return name
    if name == "dejavu" and isinstance(getattr(system, "params", None), dict) and hasattr(system, "hop"):
        return "dejavu"
    if callable(getattr(system, "event_points", None)):
        return name if name in ("panako", "triplets") else "panako"
    return "bag"


def _bit_summary(codes: np.ndarray, width: int, packed: bool) -> np.ndarray:
    if len(codes) == 0:
        return np.zeros(2 * width)
    return np.concatenate([bit_features(codes, packed=packed)[:width],
                           bit_change_features(codes, packed=packed)[:width]])


def dejavu_landmarks(system: Any, audio: np.ndarray, sr: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """The peak pairs that Dejavu hashes, before the hash: what its fingerprint of a clip encodes.

    Peaks and pairs follow :class:`samaf_lib.systems.dejavu.Dejavu` exactly (its spectrogram, peak picking and
    pairing with its parameters), so there is one landmark per fingerprint of :meth:`Dejavu.fingerprint`.

    Returns
    -------
    f1_hz, f2_hz : np.ndarray, float64, shape (m,)
        Frequencies of the anchor peak and of its partner (bin * sr / n_fft).
    dt : np.ndarray, int64, shape (m,)
        Frame distance of each pair.
    n_peaks : int
    """
    from .audio import check_audio
    from .systems import dejavu as dj

    p = system.params
    a = check_audio(audio, sr, name="audio", min_duration_s=0.0, allow_silence=True)
    samples = dj.to_int16_scale(a)
    hop, n_fft, margin = int(system.hop), int(p["n_fft"]), int(p["neighborhood_size"])
    total = dj.n_frames(samples.size, n_fft, hop)
    blocks = []
    for lo in range(0, total, dj.BLOCK_FRAMES):  # bounded memory; peaks exact across blocks, as Dejavu computes them
        hi = min(lo + dj.BLOCK_FRAMES, total)
        b0, b1 = max(lo - margin, 0), min(hi + margin, total)
        pk = dj.find_peaks(dj.spectrogram_db(samples, int(sr), n_fft, hop, b0, b1), margin, p["amp_min"])
        pk[:, 1] += b0
        blocks.append(pk[(pk[:, 1] >= lo) & (pk[:, 1] < hi)])
    peaks = np.concatenate(blocks) if blocks else np.zeros((0, 2), np.int64)
    n = len(peaks)
    a_idx, b_idx = [], []
    for k in range(1, int(p["fan_value"]) + 1):
        if k >= n:
            break
        i = np.arange(n - k)
        dt = peaks[i + k, 1] - peaks[i, 1]
        keep = (dt >= p["min_hash_time_delta"]) & (dt <= p["max_hash_time_delta"])
        a_idx.append(i[keep])
        b_idx.append(i[keep] + k)
    ia = np.concatenate(a_idx) if a_idx else np.zeros(0, np.int64)
    ib = np.concatenate(b_idx) if b_idx else np.zeros(0, np.int64)
    hz = float(sr) / n_fft
    return (peaks[ia, 0] * hz, peaks[ib, 0] * hz, (peaks[ib, 1] - peaks[ia, 1]).astype(np.int64), n)


def _dejavu_summary(system: Any, audio: np.ndarray, sr: int) -> np.ndarray:
    f1, f2, dt, n_peaks = dejavu_landmarks(system, audio, sr)
    v = np.concatenate([[n_peaks, f1.size], _hist(f1, _DJ_F_EDGES), _hist(f2 - f1, _DJ_DF_EDGES),
                        _hist(dt, _DJ_DT_EDGES)])
    return v / (len(audio) / sr)


def _cq_octaves(system: Any, bpo: int) -> int:
    """Octaves spanned by a system's constant-Q bins, rounded up: from its ``n_bins``, its ``constant_q()``
    transform, or its ``n_octaves`` parameter (8 when it tells none of these)."""
    n_bins = getattr(system, "n_bins", None)
    if not isinstance(n_bins, (int, np.integer)) and callable(getattr(system, "constant_q", None)):
        n_bins = getattr(system.constant_q(), "n_bins", None)
    if isinstance(n_bins, (int, np.integer)) and n_bins > 0:
        return math.ceil(n_bins / bpo - 1e-9)
    return int((getattr(system, "params", None) or {}).get("n_octaves", 8))


def _event_summary(system: Any, audio: np.ndarray, sr: int, dim: int) -> np.ndarray:
    params = getattr(system, "params", None) or {}
    bpo = int(params.get("bins_per_octave", 36))
    levels = int(params.get("ratio_levels", 8))
    duration = len(audio) / sr
    ev = np.asarray(system.event_points(audio, sr), dtype=np.float64).reshape(-1, 2)
    octaves = _cq_octaves(system, bpo)
    band_edges = np.linspace(0.0, octaves, 3 * octaves + 1)
    parts = [[ev.shape[0]], _hist(ev[:, 1] / bpo, band_edges)]
    if callable(getattr(system, "triplets", None)):
        tr = np.asarray(system.triplets(audio, sr), dtype=np.float64).reshape(-1, 3, 2)
        t, f = tr[:, :, 0], tr[:, :, 1] / bpo
        span = t[:, 2] - t[:, 0]
        ratio = np.divide(t[:, 1] - t[:, 0], span, out=np.zeros(len(tr)), where=span > 0)
        parts += [[tr.shape[0]], _hist(f[:, 1] - f[:, 0], _PK_DF_EDGES), _hist(f[:, 2] - f[:, 0], _PK_DF_EDGES),
                  _hist(ratio, np.linspace(0.0, 1.0, levels + 1)), _hist(span, _PK_DT_EDGES)]
        return np.concatenate(parts) / duration
    codes, times = system.fingerprint(audio, sr)
    return np.concatenate([np.concatenate(parts) / duration,
                           bag_of_hashes(np.asarray(codes), np.asarray(times), duration, dim=dim)])


def system_features(system: Any, audio: np.ndarray, sr: int, dim: int = 512, summary: str = "best") -> np.ndarray:
    """The fixed-length feature vector of one clip from one system's fingerprints (docs/study.md, Protocol).

    Every system gets the most informative fixed-size summary its fingerprint allows: the distribution, per
    second of audio, of each field that the fingerprint records (:data:`SUMMARIES`; :func:`summary_of` says which
    applies). The length depends on the system only, never on the clip, and a clip too short to give any
    fingerprint gives zeros.

    * **SAMAF** (``samaf``): per hash bit the rate of ones (:func:`bit_features`) and the rate of change between
      consecutive windows (:func:`bit_change_features`), ``2 * bits`` values. Both bit-code systems get the same
      two per-bit statistics, a choice made for symmetry and fixed before measuring, not on scores; the flip
      rate carries how fast each bit follows the audio.
    * **RAFS** (``rafs``): the same two statistics of the 32-bit sub-fingerprints, 64 values (RAFS bits are
      signs of energy differences, so their rate of ones stays near 0.5; their flip rate carries the band
      dynamics).
    * **Dejavu** (``dejavu``): the landmarks before hashing (:func:`dejavu_landmarks`). The SHA-1 of
      ``f1|f2|dt`` is a one-to-one code of the landmark that hides its structure, so a bag of the hashes is near
      chance by construction; the landmark is what the fingerprint encodes. Per second: peaks, pairs, a histogram
      of f1 in 1/3-octave bands (62.5 Hz to 8 kHz, plus one band below), of f2 - f1 in signed half-octave bins
      of 31.25 Hz to 8 kHz (plus a central bin), of dt in log-spaced frame bins up to 200; 72 values.
    * **Panako and triplets** (any system with an ``event_points(audio, sr)`` method returning ``(time_s, bin)``
      rows of a constant-Q spectrum with ``params["bins_per_octave"]``): per second, event points and a
      histogram of their bins in 1/3-octave bands over the octaves the transform spans; and, when the system also
      has ``triplets(audio, sr)`` returning ``(m, 3, 2)`` ``(time_s, bin)`` points, triplets and histograms of
      f2 - f1 and f3 - f1 in semitone bins within +-2 octaves, of the time ratio ``(t2 - t1) / (t3 - t1)`` in
      ``params["ratio_levels"]`` (8) levels and of ``t3 - t1`` in half-octave bins from 1/32 to 4 s;
      ``121 + 3 * octaves`` values (145 for Panako 2014's 7.1 octaves, 136 for the 5 of our triplet design).
      These are the fields that the triplet hash and its stored record keep (frequency differences, time
      ratio, f1, t3 - t1), undone from the hash. A system with event points but no ``triplets`` gets the event
      part followed by the bag of its hashes.
    * **Any other system**: the bag of its hashes (:func:`bag_of_hashes`, ``dim`` values).

    Parameters
    ----------
    system : Fingerprinter
        A system of :mod:`samaf_lib.systems` (or any object with ``name`` and ``fingerprint(audio, sr)``).
    audio : np.ndarray, shape (n,)
        Mono samples.
    sr : int
    dim : int
        Buckets of the bag of hashes, where one is used.
    summary : {"best", "legacy"}
        ``"best"``: the summaries above. ``"legacy"``: the study's first summaries (:data:`LEGACY_SUMMARIES`):
        bit rates of ones for SAMAF and RAFS, a bag of hashes for every other system.

    Returns
    -------
    np.ndarray, float64, 1-D
    """
    if summary not in ("best", "legacy"):
        raise ValueError(f"summary must be 'best' or 'legacy', got {summary!r}")
    kind = summary_of(system)
    if summary == "best" and kind == "dejavu":
        return _dejavu_summary(system, audio, sr)
    if summary == "best" and kind in ("panako", "triplets"):
        return _event_summary(system, audio, sr, dim)
    codes, times = system.fingerprint(audio, sr)
    codes = np.asarray(codes)
    if kind == "samaf":
        width = int(system.bits)
        if summary == "legacy":
            return bit_features(codes, packed=True)[:width] if len(codes) else np.zeros(width)
        return _bit_summary(codes, width, packed=True)
    if kind == "rafs":
        words = codes.astype(np.uint32)
        return bit_features(words) if summary == "legacy" else _bit_summary(words, 32, packed=False)
    return bag_of_hashes(codes, np.asarray(times), len(audio) / sr, dim=dim)


# --------------------------------------------------------------------------------------------------------------
# Attribute classification
# --------------------------------------------------------------------------------------------------------------

def _task_columns(task: str) -> tuple[str, str]:
    """The label and group columns of a task: :data:`TASKS`, or an ``attr_*`` column (grouped by speaker)."""
    if task in TASKS:
        return _TASK_LABEL[task], _TASK_GROUP[task]
    if isinstance(task, str) and task.startswith(ATTRIBUTE_PREFIX) and len(task) > len(ATTRIBUTE_PREFIX):
        return task, "speaker_id"
    raise ValueError(f"task must be one of {TASKS} or an {ATTRIBUTE_PREFIX}* metadata column, got {task!r}")


def tasks_for(meta: pd.DataFrame) -> list[str]:
    """The attribute tasks a corpus allows: ``speaker`` where speakers (or a folder's groups named in its CSV) are
    known, ``gender`` and ``nationality`` where any utterance has one, every ``attr_*`` column, and ``distortion``
    (known for every query)."""
    def labelled(col: str) -> bool:
        return col in meta.columns and any(
            v is not None and v.lower() not in MISSING_LABELS
            for v in (_id_or_none(x) for x in meta[col].to_numpy(dtype=object)))

    by_folder = "group_by" in meta.columns and (meta["group_by"].astype(str) == "folder").all()
    out = [] if by_folder else ["speaker"]
    out += [t for t in ("gender", "nationality") if labelled(t)]
    out += [c for c in meta.columns if c.startswith(ATTRIBUTE_PREFIX) and labelled(c)]
    return out + ["distortion"]


def _labels_for(labels: pd.DataFrame, task: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(keep_mask, y, groups)`` for a task, with missing labels dropped."""
    lab, grp = _task_columns(task)
    for c in (lab, grp):
        if c not in labels.columns:
            raise ValueError(f"task {task!r} needs a {c!r} column in labels")
    y = np.array([_id_or_none(v) for v in labels[lab].to_numpy(dtype=object)], dtype=object)
    g = np.array([_id_or_none(v) for v in labels[grp].to_numpy(dtype=object)], dtype=object)
    keep = np.array([v is not None and v.lower() not in MISSING_LABELS for v in y]) & np.array(
        [v is not None for v in g])
    return keep, y, g


def _eligible(labels: pd.DataFrame, task: str, min_groups_per_class: int = 2) -> tuple[np.ndarray, str]:
    """Indices usable for a task (labelled, in a class seen in >= 2 groups) and a note on what was dropped."""
    keep, y, g = _labels_for(labels, task)
    idx = np.flatnonzero(keep)
    notes = []
    if (~keep).any():
        notes.append(f"{int((~keep).sum())} row(s) without a label dropped")
    per_class = pd.DataFrame({"y": y[idx], "g": g[idx]}).groupby("y")["g"].nunique()
    thin = per_class[per_class < min_groups_per_class].index
    if len(thin):
        notes.append(f"{len(thin)} class(es) in fewer than {min_groups_per_class} {_task_columns(task)[1]} group(s) "
                     "dropped")
        idx = idx[~np.isin(y[idx], np.array(list(thin), dtype=object))]
    return idx, "; ".join(notes)


def folds(labels: pd.DataFrame, task: str, n_splits: int = 5,
          seed: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    """Cross-validation folds of a classification task, disjoint by group.

    ``gender``, ``nationality``, ``distortion``: grouped by ``speaker_id`` (speaker-disjoint: a classifier cannot
    score by recognising a voice it was trained on). ``speaker``: stratified by speaker, grouped by
    ``utterance_id`` (the clips of one utterance never straddle train and test); a speaker task cannot be
    speaker-disjoint, since its classes are the speakers. Every task uses
    scikit-learn's ``StratifiedGroupKFold`` (a ``GroupKFold`` that also balances the classes) with shuffling
    seeded by ``seed``. Rows without a label (empty, NaN, "unknown") and classes present in fewer than two groups
    are left out of every fold.

    Parameters
    ----------
    labels : DataFrame
        One row per sample with the task's label and group columns.
    task : {"speaker", "gender", "nationality", "distortion"}
    n_splits : int
        Folds wanted; reduced to the number of groups when there are fewer.
    seed : int

    Returns
    -------
    list of (train_idx, test_idx)
        Integer positions into ``labels`` (int64 arrays); empty when the task cannot be cross-validated
        (fewer than two classes or two groups).
    """
    from sklearn.model_selection import StratifiedGroupKFold

    if n_splits < 2:
        raise ValueError(f"n_splits must be >= 2, got {n_splits}")
    idx, _ = _eligible(labels, task)
    _, y, g = _labels_for(labels, task)
    y, g = y[idx], g[idx]
    n_groups = len(set(g))
    if len(set(y)) < 2 or n_groups < 2:
        return []
    k = min(n_splits, n_groups)
    cv = StratifiedGroupKFold(n_splits=k, shuffle=True, random_state=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "least populated class has fewer members than n_splits"
        out = [(idx[tr].astype(np.int64), idx[te].astype(np.int64))
               for tr, te in cv.split(np.zeros(len(y)), y.astype(str), g.astype(str))]
    return [(tr, te) for tr, te in out if len(te) and len(tr)]


def _classifier(name: str, n_train: int):
    from sklearn.linear_model import LogisticRegression
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    if name == "logreg":
        return make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000, C=1.0))
    if name == "knn":
        return make_pipeline(StandardScaler(), KNeighborsClassifier(n_neighbors=max(1, min(5, n_train))))
    raise ValueError(f"classifier must be one of {CLASSIFIERS}, got {name!r}")


def classify_attributes(X: np.ndarray, labels: pd.DataFrame, tasks: Iterable[str] = TASKS,
                        classifiers: Iterable[str] = CLASSIFIERS, n_splits: int = 5, seed: int = 0,
                        n_boot: int = 1000, alpha: float = 0.05) -> pd.DataFrame:
    """Cross-validated attribute classification from fixed-length features, with bootstrap intervals.

    Parameters
    ----------
    X : np.ndarray, shape (n_samples, n_features)
        One feature vector per clip (from :func:`system_features`, :func:`bag_of_hashes`, :func:`bit_features`,
        :func:`mfcc_mean_features`).
    labels : DataFrame, n_samples rows
        ``speaker_id, gender, nationality, distortion, utterance_id`` (others, e.g. ``seed``, are ignored), in the
        order of ``X``.
    tasks : iterable of str
        Among ``speaker, gender, nationality, distortion`` (folds: :func:`folds`).
    classifiers : iterable of str
        ``logreg``: StandardScaler + LogisticRegression (lbfgs, max_iter 2000); ``knn``: StandardScaler +
        KNeighborsClassifier (k = 5).
    n_splits : int
    seed : int
        Seeds the folds and the bootstrap (the classifiers themselves are deterministic).
    n_boot, alpha : int, float
        Bootstrap resamples and 1 - coverage of the interval of the balanced accuracy
        (:func:`balanced_accuracy_interval`: the pooled out-of-fold predictions resampled by group, i.e. by
        speaker, or by utterance for the speaker task; the same draws as :func:`paired_attribute_differences`).

    Returns
    -------
    DataFrame
        One row per (task, classifier): ``task, classifier, accuracy, balanced_accuracy`` (pooled out-of-fold
        predictions), ``balanced_accuracy_lo``, ``balanced_accuracy_hi`` (its interval), ``chance`` (the
        majority-class rate in the test folds: the share of each test fold's most frequent class, pooled over
        folds; what the best constant answer per fold would score),
        ``chance_balanced`` (1 / classes: the balanced accuracy of any constant answer), ``n_folds, n_samples,
        n_classes, n_groups, note``. A task that cannot be cross-validated has NaN scores and says why in ``note``.
    """
    from sklearn.metrics import accuracy_score, balanced_accuracy_score

    X = np.asarray(X, dtype=np.float64)
    if X.ndim != 2 or X.shape[0] != len(labels):
        raise ValueError(f"X must be (n_samples, n_features) with one row per label row; got {X.shape} "
                         f"for {len(labels)} labels")
    if not np.isfinite(X).all():
        raise ValueError("X holds NaN or infinite values")
    classifiers = list(classifiers)
    for c in classifiers:
        _classifier(c, 1)  # validates the name
    uncertainty.check_settings(n_boot, alpha)
    labels = labels.reset_index(drop=True)
    rows = []
    for task in tasks:
        idx, note = _eligible(labels, task)
        _, y_all, g_all = _labels_for(labels, task)
        fs = folds(labels, task, n_splits=n_splits, seed=seed)
        base = {"task": task, "n_samples": int(idx.size), "n_classes": len(set(y_all[idx])),
                "n_groups": len(set(g_all[idx])), "n_folds": len(fs)}
        if not fs:
            why = (f"skipped: {base['n_classes']} class(es) and {base['n_groups']} {_task_columns(task)[1]} group(s) "
                   "after filtering; need at least 2 of each")
            for c in classifiers:
                rows.append({**base, "classifier": c, "accuracy": math.nan, "balanced_accuracy": math.nan,
                             "balanced_accuracy_lo": math.nan, "balanced_accuracy_hi": math.nan,
                             "chance": math.nan, "chance_balanced": math.nan,
                             "note": "; ".join(x for x in (note, why) if x)})
            continue
        y = y_all.astype(str)
        test_all = np.concatenate([te for _, te in fs])
        truth, groups = y[test_all], _group_index(g_all[test_all])
        classes = np.unique(truth)
        w = _group_weights(truth, groups, classes, n_boot, task, seed)
        chance = sum(int(pd.Series(y[te]).value_counts().iloc[0]) for _, te in fs) / len(test_all)
        for c in classifiers:
            p = _out_of_fold(X, y, fs, c)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # "y_pred contains classes not in y_true"
                bal = float(balanced_accuracy_score(truth, p))
            total, correct = _class_counts(truth, p.astype(str), groups, classes)
            lo, hi = uncertainty.interval(_balanced(w @ total, w @ correct), alpha)
            rows.append({**base, "classifier": c, "accuracy": float(accuracy_score(truth, p)),
                         "balanced_accuracy": bal, "balanced_accuracy_lo": lo, "balanced_accuracy_hi": hi,
                         "chance": chance, "chance_balanced": 1.0 / len(classes), "note": note})
    cols = ["task", "classifier", "accuracy", "balanced_accuracy", "balanced_accuracy_lo", "balanced_accuracy_hi",
            "chance", "chance_balanced", "n_folds", "n_samples", "n_classes", "n_groups", "note"]
    return pd.DataFrame(rows, columns=cols)


#: Out-of-fold predictions already computed in this process, by :func:`_fit_key` (least recently used last).
_FITTED: OrderedDict[str, np.ndarray] = OrderedDict()
#: How many sets of predictions :data:`_FITTED` keeps.
FITTED_KEPT = 256


def _fit_key(X: np.ndarray, y: np.ndarray, fs: list[tuple[np.ndarray, np.ndarray]], classifier: str) -> str:
    """A digest of everything an out-of-fold prediction depends on: the features, the labels, the folds and the
    classifier."""
    h = hashlib.blake2b(digest_size=20)
    for part in (classifier, X.dtype.str, X.shape, len(fs)):
        h.update(repr(part).encode())
    h.update(np.ascontiguousarray(X).tobytes())
    h.update("".join(f"{len(v)}:{v}" for v in map(str, y)).encode())
    for tr, te in fs:
        h.update(np.asarray(tr, dtype=np.int64).tobytes() + b"|" + np.asarray(te, dtype=np.int64).tobytes() + b";")
    return h.hexdigest()


def _out_of_fold(X: np.ndarray, y: np.ndarray, fs: list[tuple[np.ndarray, np.ndarray]],
                 classifier: str) -> np.ndarray:
    """Predictions for the concatenated test folds of ``fs``, each from a model fitted on its training fold.

    The fits are deterministic, so a result is remembered (:data:`_FITTED`): :func:`classify_attributes`,
    :func:`paired_attribute_differences` and :func:`attribute_confusion` on the same features, labels and folds
    fit each model once (the evaluation's classifiers took twice the time before). A copy is returned."""
    key = _fit_key(X, y, fs, classifier)
    if key in _FITTED:
        _FITTED.move_to_end(key)
        return _FITTED[key].copy()
    pred = []
    for tr, te in fs:
        model = _classifier(classifier, len(tr))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # convergence and single-class-fold warnings
            model.fit(X[tr], y[tr])
            pred.append(model.predict(X[te]))
    out = np.concatenate(pred)
    _FITTED[key] = out
    while len(_FITTED) > FITTED_KEPT:
        _FITTED.popitem(last=False)
    return out.copy()


def attribute_confusion(X: np.ndarray, labels: pd.DataFrame, task: str, classifier: str = "logreg",
                        n_splits: int = 5, seed: int = 0) -> pd.DataFrame:
    """Confusion matrix of one attribute classifier, from the same out-of-fold predictions as
    :func:`classify_attributes`.

    Returns
    -------
    DataFrame
        Counts, true classes as rows and predicted classes as columns (both sorted); empty when the task cannot
        be cross-validated.
    """
    X = np.asarray(X, dtype=np.float64)
    labels = labels.reset_index(drop=True)
    fs = folds(labels, task, n_splits=n_splits, seed=seed)
    if not fs:
        return pd.DataFrame()
    _, y_all, _ = _labels_for(labels, task)
    y = y_all.astype(str)
    truth = y[np.concatenate([te for _, te in fs])]
    pred = _out_of_fold(X, y, fs, classifier)
    classes = sorted(set(truth) | set(pred))
    return pd.crosstab(pd.Categorical(truth, classes), pd.Categorical(pred, classes), rownames=["true"],
                       colnames=["predicted"], dropna=False)


# --------------------------------------------------------------------------------------------------------------
# Intervals and paired differences
# --------------------------------------------------------------------------------------------------------------

def _class_counts(truth: np.ndarray, pred: np.ndarray, groups: np.ndarray,
                  classes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(total, correct)``, shape (n_groups, n_classes): per group and true class, rows and correct rows.

    ``groups`` are integer group indices (0 .. n_groups - 1); ``classes`` the sorted true classes.
    """
    n_groups = int(groups.max()) + 1 if groups.size else 0
    k = np.searchsorted(classes, truth)
    total = np.zeros((n_groups, classes.size))
    correct = np.zeros((n_groups, classes.size))
    np.add.at(total, (groups, k), 1.0)
    np.add.at(correct, (groups, k), (truth == pred).astype(np.float64))
    return total, correct


def _balanced(total: np.ndarray, correct: np.ndarray) -> np.ndarray:
    """Balanced accuracy (mean recall over the classes present) from class totals of shape (..., n_classes)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        recall = np.where(total > 0, correct / np.where(total > 0, total, 1.0), np.nan)
    present = (total > 0).sum(axis=-1)
    return np.where(present > 0, np.nansum(recall, axis=-1) / np.maximum(present, 1), np.nan)


def _group_weights(truth: np.ndarray, groups: np.ndarray, classes: np.ndarray, n_boot: int, task: str,
                   seed: int) -> np.ndarray:
    """``W[b, g]``: how often group ``g`` is drawn in resample ``b`` (groups drawn with replacement).

    When every group holds one class only (the speakers of a gender or a nationality, the utterances of a
    speaker), the groups are drawn within each class, as many as it has: every resample keeps every class and
    its number of groups, as the design fixes them (an unstratified draw would drop the classes with few groups
    now and then and so shift the balanced accuracy, the mean recall over the classes present). Otherwise (the
    speakers of the distortion task hold every distortion) groups are drawn from all of them. Seeded by
    ``(seed, task)`` only, so every feature set and classifier of a task gets the same draws.
    """
    rng = np.random.default_rng([int(seed), TASKS.index(task) if task in TASKS else zlib.crc32(task.encode())])
    n_groups = int(groups.max()) + 1
    total, _ = _class_counts(truth, truth, groups, classes)
    if ((total > 0).sum(axis=1) == 1).all():
        w = np.zeros((n_boot, n_groups))
        stratum = total.argmax(axis=1)
        for k in range(classes.size):
            members = np.flatnonzero(stratum == k)
            if members.size:
                w[:, members] = rng.multinomial(members.size, np.full(members.size, 1.0 / members.size), size=n_boot)
        return w
    return rng.multinomial(n_groups, np.full(n_groups, 1.0 / n_groups), size=n_boot).astype(np.float64)


def _group_index(g: np.ndarray) -> np.ndarray:
    return np.unique(np.asarray(g).astype(str), return_inverse=True)[1].reshape(-1)


def balanced_accuracy_interval(truth: np.ndarray, pred: np.ndarray, groups: np.ndarray, n_boot: int = 1000,
                               seed: int = 0, alpha: float = 0.05, task: str = "gender") -> tuple[float, float]:
    """Cluster-bootstrap percentile interval of the balanced accuracy of pooled predictions.

    Groups (speakers, or utterances for the speaker task) are drawn with replacement, each bringing all of its
    rows, within each class when every group holds one class only (:func:`_group_weights`); a resample's
    balanced accuracy is the mean recall over the classes it contains. The models are not refitted, so the
    interval covers the sampling of the test clips' groups, not the variability of training.

    Parameters
    ----------
    truth, pred : np.ndarray, shape (n,)
        True and predicted labels (strings).
    groups : np.ndarray, shape (n,)
        The group of each row.
    n_boot, seed, alpha
        Resamples, seed, 1 - coverage.
    task : str
        Among :data:`TASKS`; with ``seed`` it fixes the draws (the same as :func:`paired_attribute_differences`').

    Returns
    -------
    (lo, hi) : floats
    """
    uncertainty.check_settings(n_boot, alpha)
    truth, pred = np.asarray(truth).astype(str), np.asarray(pred).astype(str)
    g, classes = _group_index(groups), np.unique(truth)
    total, correct = _class_counts(truth, pred, g, classes)
    w = _group_weights(truth, g, classes, n_boot, task, seed)
    return uncertainty.interval(_balanced(w @ total, w @ correct), alpha)


def _predict(X: np.ndarray, y: np.ndarray, labels: pd.DataFrame, task: str, fs: list[tuple[np.ndarray, np.ndarray]],
             classifier: str, n_splits: int, seed: int) -> tuple[np.ndarray, list[str]]:
    """Out-of-fold predictions with one fixed classifier, or with the classifier chosen in each training fold by
    an inner cross-validation (``classifier="inner"``); also the classifier used in each fold."""
    if classifier != "inner":
        return _out_of_fold(X, y, fs, classifier), [classifier] * len(fs)
    from sklearn.metrics import balanced_accuracy_score

    pred, chosen = [], []
    for tr, te in fs:
        sub = labels.iloc[tr].reset_index(drop=True)
        inner = folds(sub, task, n_splits=n_splits, seed=seed)
        best, best_score = CLASSIFIERS[0], -math.inf
        if inner:
            truth = y[tr][np.concatenate([b for _, b in inner])]
            for c in CLASSIFIERS:  # ties keep the earlier classifier
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    score = balanced_accuracy_score(truth, _out_of_fold(X[tr], y[tr], inner, c))
                if score > best_score:
                    best, best_score = c, score
        chosen.append(best)
        pred.append(_out_of_fold(X, y, [(tr, te)], best))
    return np.concatenate(pred), chosen


def paired_attribute_differences(feature_sets: dict[str, np.ndarray], labels: pd.DataFrame, system: str = "samaf",
                                 others: Iterable[str] | None = None, tasks: Iterable[str] = TASKS,
                                 classifier: str = "logreg", n_splits: int = 5, n_boot: int = 1000, seed: int = 0,
                                 alpha: float = 0.05) -> pd.DataFrame:
    """``system``'s balanced accuracy minus each other feature set's, per task, with paired bootstrap intervals.

    Every feature set is classified with the same folds (:func:`folds`, which depend on the labels and the seed
    only) and the same classifier; the pooled out-of-fold predictions are then resampled by group (speakers; for
    the speaker task, utterances; within each class where groups are nested in classes, see
    :func:`_group_weights`) with the *same* draws for both sides of a difference, so the interval is that of the
    difference itself. Claim (b) of the study is decided by these intervals: ``lo > 0`` means ``system``
    classifies the attribute better (docs/study.md, Protocol).

    The classifier is fixed in advance (``logreg``, the default) rather than taken as the better of several on
    the test folds: picking the maximum of several cross-validated scores per feature set is biased upward, by
    more for the feature set whose classifiers disagree more. ``classifier="inner"`` instead chooses, in each
    training fold, the classifier of :data:`CLASSIFIERS` with the best balanced accuracy in an inner grouped
    cross-validation of that fold (nested cross-validation: no test row takes part in the choice).

    Parameters
    ----------
    feature_sets : dict of str -> np.ndarray, shape (n_samples, n_features_i)
        One feature matrix per system (or reference such as MFCC), rows in the order of ``labels``.
    labels : DataFrame
        As for :func:`classify_attributes`.
    system : str
        The key compared with the others (SAMAF).
    others : iterable of str, optional
        Keys it is compared with; default every other key of ``feature_sets``.
    tasks : iterable of str
    classifier : str
        One of :data:`CLASSIFIERS`, or ``"inner"``.
    n_splits, n_boot, seed, alpha
        Folds, resamples, seed (folds and draws), 1 - coverage.

    Returns
    -------
    DataFrame
        One row per (task, other): ``task, system, other, classifier, value`` (``system``'s balanced accuracy),
        ``other_value``, ``difference``, ``lo``, ``hi`` (interval of the difference), ``p_not_better`` (share of
        resamples in which the difference is <= 0), ``n_folds, n_samples, n_groups, note``. A task that cannot
        be cross-validated has NaN values and says why in ``note``.
    """
    if classifier != "inner":
        _classifier(classifier, 1)  # validates the name
    uncertainty.check_settings(n_boot, alpha)
    if system not in feature_sets:
        raise ValueError(f"paired_attribute_differences: no feature set {system!r}; have {sorted(feature_sets)}")
    others = [o for o in (others if others is not None else feature_sets) if o != system]
    missing = [o for o in others if o not in feature_sets]
    if missing:
        raise ValueError(f"paired_attribute_differences: no feature set(s) {missing}")
    labels = labels.reset_index(drop=True)
    mats = {}
    for k in [system, *others]:
        x = np.asarray(feature_sets[k], dtype=np.float64)
        if x.ndim != 2 or x.shape[0] != len(labels):
            raise ValueError(f"feature set {k!r} must be (n_samples, n_features) with one row per label row; "
                             f"got {x.shape} for {len(labels)} labels")
        if not np.isfinite(x).all():
            raise ValueError(f"feature set {k!r} holds NaN or infinite values")
        mats[k] = x
    rows = []
    for task in tasks:
        idx, note = _eligible(labels, task)
        _, y_all, g_all = _labels_for(labels, task)
        fs = folds(labels, task, n_splits=n_splits, seed=seed)
        base = {"task": task, "system": system, "classifier": classifier, "n_folds": len(fs),
                "n_samples": int(idx.size), "n_groups": len(set(g_all[idx]))}
        if not fs:
            why = f"skipped: task {task!r} cannot be cross-validated on these labels"
            rows += [{**base, "other": o, "value": math.nan, "other_value": math.nan, "difference": math.nan,
                      "lo": math.nan, "hi": math.nan, "p_not_better": math.nan,
                      "note": "; ".join(x for x in (note, why) if x)} for o in others]
            continue
        y = y_all.astype(str)
        test_all = np.concatenate([te for _, te in fs])
        truth, groups = y[test_all], _group_index(g_all[test_all])
        classes = np.unique(truth)
        w = _group_weights(truth, groups, classes, n_boot, task, seed)
        point, boot, used = {}, {}, {}
        for k, x in mats.items():
            pred, chosen = _predict(x, y, labels, task, fs, classifier, n_splits, seed)
            total, correct = _class_counts(truth, pred.astype(str), groups, classes)
            point[k] = float(_balanced(total.sum(0), correct.sum(0)))
            boot[k] = _balanced(w @ total, w @ correct)
            used[k] = chosen
        for o in others:
            d = boot[system] - boot[o]
            lo, hi = uncertainty.interval(d, alpha)
            extra = note
            if classifier == "inner":
                chosen = f"classifiers per fold: {system} {','.join(used[system])}, {o} {','.join(used[o])}"
                extra = "; ".join(x for x in (note, chosen) if x)
            rows.append({**base, "other": o, "value": point[system], "other_value": point[o],
                         "difference": point[system] - point[o], "lo": lo, "hi": hi,
                         "p_not_better": float(np.mean(d <= 0)), "note": extra})
    cols = ["task", "system", "other", "classifier", "value", "other_value", "difference", "lo", "hi",
            "p_not_better", "n_folds", "n_samples", "n_groups", "note"]
    return pd.DataFrame(rows, columns=cols)
