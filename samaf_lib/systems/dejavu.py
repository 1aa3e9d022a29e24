"""Dejavu, the Shazam-like peak-pair fingerprinter, with the 2019 defaults (docs/study.md, Systems).

Our own port, written from the published description of Dejavu (its README and the author's write-up of the
method); no code of that project is used. The pipeline:

1. **Spectrogram** at the clip's own sample rate: float samples are scaled to the int16 range (Dejavu reads int16
   samples), cut into Hann frames of ``n_fft`` samples with ``overlap_ratio`` overlap (hop 2048 for the defaults),
   and turned into a one-sided power spectral density, the default of the plotting library's ``specgram`` that
   Dejavu calls (non-edge bins doubled, divided by ``sr * sum(window**2)``), in ``10*log10``; ``-inf`` (zero power)
   becomes 0. The scale matters: the 10 dB peak threshold is applied to these values.
2. **Peaks**: points equal to the maximum over a diamond neighbourhood (connectivity-1 structure iterated to
   ``neighborhood_size``, i.e. the L1 ball of radius 20: 41 bins by 41 frames) that are not on the flat zero
   background and exceed ``amp_min``. The diamond maximum is computed as ``neighborhood_size`` passes of a
   3-point cross maximum, which equals ``scipy.ndimage.maximum_filter`` with the diamond footprint and its default
   ``reflect`` border exactly (the test suite checks this) and is about ten times faster.
3. **Pairs**: peaks sorted by frame (then bin); each is paired with the next ``fan_value`` peaks; a pair is kept
   when ``min_hash_time_delta <= dt <= max_hash_time_delta`` frames. Its hash is the SHA-1 hex digest of the string
   ``f"{f1}|{f2}|{dt}"`` cut to ``fingerprint_reduction`` hex digits; the fingerprint is ``(hash, t1)``.
4. **Storage**: SQLite with Dejavu's schema (``songs``; ``fingerprints(hash, song_id, offset)`` with an index on
   ``hash`` and the unique key ``(song_id, offset, hash)``; duplicate rows are ignored as Dejavu's
   ``INSERT IGNORE`` does), plus a ``meta`` table holding the parameters. The fingerprints table is clustered on its
   unique key (``WITHOUT ROWID``), as MySQL/InnoDB, which Dejavu targets, clusters a table that has no primary key.
   The database lives in memory; :meth:`Dejavu.save` writes it to one file atomically.
5. **Matching**: every distinct ``(hash, t_query)`` of the query is looked up; each database row that shares the
   hash votes for ``(song_id, t_db - t_query)``; the score is the largest vote count, the offset
   ``(t_db - t_query) * hop / sr``. A best score below ``min_score`` is rejected.

Two choices of ours, documented: ``fan_value`` is the number of partners of each peak (the next 15 peaks, as the
study specifies; the 2019 code's loop stops one short, pairing with the next ``fan_value - 1``), and a
query hash that occurs at several query frames votes once per frame (the 2019 matcher kept only one query frame
per hash). When every reference has the same sample rate and a query has another, the query is resampled to it
(Dejavu would simply not match); the study uses one rate throughout, so this never applies there.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import sqlite3
from numbers import Integral, Real
from pathlib import Path
from typing import Any

import numpy as np

from ..audio import AudioError, check_audio, check_rate, resample
from ..io import atomic_path
from .base import NO_MATCH, Match, check_record

#: Format of the ``meta`` table; bump when the schema changes.
FORMAT_VERSION = 1
#: Most host parameters in one ``WHERE hash IN (...)`` query (SQLite's historical limit is 999).
LOOKUP_CHUNK = 900
#: Frames of spectrogram computed at a time for long clips (bounded memory; peaks are exact across blocks).
BLOCK_FRAMES = 1024

_SCHEMA = (
    """CREATE TABLE songs (
        song_id INTEGER PRIMARY KEY,
        song_name TEXT NOT NULL UNIQUE,
        fingerprinted INTEGER NOT NULL DEFAULT 0,
        file_sha1 TEXT NOT NULL,
        total_hashes INTEGER NOT NULL DEFAULT 0,
        duration_s REAL NOT NULL,
        sample_rate INTEGER NOT NULL
    )""",
    # columns in the order of the clustered key: SQLite 3.40's quick_check misreads NOT NULL columns of a
    # WITHOUT ROWID table whose primary key lists them in another order
    """CREATE TABLE fingerprints (
        song_id INTEGER NOT NULL REFERENCES songs(song_id) ON DELETE CASCADE,
        "offset" INTEGER NOT NULL,
        hash BLOB NOT NULL,
        PRIMARY KEY (song_id, "offset", hash)
    ) WITHOUT ROWID""",
    "CREATE INDEX ix_fingerprints_hash ON fingerprints(hash)",
    "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
)
_COLUMNS = {
    "songs": {"song_id", "song_name", "fingerprinted", "file_sha1", "total_hashes", "duration_s", "sample_rate"},
    "fingerprints": {"hash", "song_id", "offset"},
    "meta": {"key", "value"},
}


# ----------------------------------------------------------------------------------------------------------------
# Parameters


def _int_param(name: str, value: Any, lo: int, hi: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, Integral):
        raise ValueError(f"{name} must be an integer {_range(lo, hi)}, got {value!r}")
    if value < lo or (hi is not None and value > hi):
        raise ValueError(f"{name} must be an integer {_range(lo, hi)}, got {value!r}")
    return int(value)


def _float_param(name: str, value: Any, lo: float | None = None, hi: float | None = None,
                 hi_open: bool = False) -> float:
    ok = not isinstance(value, bool) and isinstance(value, Real) and math.isfinite(float(value))
    if ok:
        v = float(value)
        ok = (lo is None or v >= lo) and (hi is None or (v < hi if hi_open else v <= hi))
    if not ok:
        hi_txt = "" if hi is None else f"{'<' if hi_open else '<='} {hi:g}"
        lo_txt = "" if lo is None else f">= {lo:g}"
        rng = " and ".join(t for t in (lo_txt, hi_txt) if t) or "finite"
        raise ValueError(f"{name} must be a real number {rng}, got {value!r}")
    return float(value)


def _range(lo: int, hi: int | None) -> str:
    return f">= {lo}" if hi is None else f"in [{lo}, {hi}]"


# ----------------------------------------------------------------------------------------------------------------
# Signal processing (pure functions over arrays)


def to_int16_scale(audio: np.ndarray) -> np.ndarray:
    """Float audio in [-1, 1] as the int16 sample values Dejavu reads.

    Parameters
    ----------
    audio : np.ndarray, float, shape (n,)

    Returns
    -------
    np.ndarray, float64, shape (n,)
        ``round(audio * 32768)`` clipped to [-32768, 32767] (integers held as float64).
    """
    return np.clip(np.round(np.asarray(audio, dtype=np.float64) * 32768.0), -32768.0, 32767.0)


def n_frames(n_samples: int, n_fft: int, hop: int) -> int:
    """Number of whole frames of ``n_fft`` samples at ``hop`` in ``n_samples`` (0 when shorter than a frame)."""
    return 0 if n_samples < n_fft else 1 + (n_samples - n_fft) // hop


def spectrogram_db(samples: np.ndarray, sr: int, n_fft: int = 4096, hop: int = 2048,
                   start: int = 0, stop: int | None = None) -> np.ndarray:
    """One-sided power spectral density in dB of Hann frames, as Dejavu computes it.

    Parameters
    ----------
    samples : np.ndarray, float64, shape (n,)
        Samples on the int16 scale (see :func:`to_int16_scale`).
    sr : int
        Sample rate (Hz); the density is per Hz.
    n_fft, hop : int
        Frame length (even) and hop in samples.
    start, stop : int
        The range of frames to compute (default: all whole frames).

    Returns
    -------
    np.ndarray, float64, shape (n_fft // 2 + 1, stop - start)
        ``10*log10(psd)`` with zero power (``-inf``) replaced by 0. Empty when there is no whole frame.
    """
    total = n_frames(samples.size, n_fft, hop)
    stop = total if stop is None else min(stop, total)
    if stop <= start:
        return np.zeros((n_fft // 2 + 1, 0))
    frames = np.lib.stride_tricks.sliding_window_view(samples, n_fft)[start * hop:(stop - 1) * hop + 1:hop]
    window = np.hanning(n_fft)  # the symmetric Hann window
    power = np.abs(np.fft.rfft(frames * window, axis=1)) ** 2
    power[:, 1:-1] *= 2.0  # one-sided: energy of the negative frequencies
    power /= sr * np.sum(window ** 2)
    with np.errstate(divide="ignore"):
        db = 10.0 * np.log10(power.T)
    db[np.isneginf(db)] = 0.0
    return np.ascontiguousarray(db)


def diamond_max(spec: np.ndarray, radius: int) -> np.ndarray:
    """Maximum over the L1 ball of ``radius`` (the diamond footprint), with scipy's ``reflect`` border.

    The diamond of radius r is r passes of the 3-point cross, so r cheap passes give exactly
    ``scipy.ndimage.maximum_filter(spec, footprint=iterate_structure(generate_binary_structure(2, 1), r))``.

    Parameters
    ----------
    spec : np.ndarray, float, shape (n_freq, n_frames)
    radius : int, >= 1

    Returns
    -------
    np.ndarray, same shape and dtype
    """
    cur = np.array(spec, copy=True)
    nxt = np.empty_like(cur)
    for _ in range(radius):
        nxt[...] = cur
        np.maximum(nxt[1:], cur[:-1], out=nxt[1:])
        np.maximum(nxt[:-1], cur[1:], out=nxt[:-1])
        np.maximum(nxt[:, 1:], cur[:, :-1], out=nxt[:, 1:])
        np.maximum(nxt[:, :-1], cur[:, 1:], out=nxt[:, :-1])
        cur, nxt = nxt, cur
    return cur


def find_peaks(spec: np.ndarray, neighborhood_size: int = 20, amp_min: float = 10.0) -> np.ndarray:
    """Spectral peaks: local maxima over the diamond neighbourhood, off the zero background, above ``amp_min``.

    Parameters
    ----------
    spec : np.ndarray, float64, shape (n_freq, n_frames)
        A dB spectrogram from :func:`spectrogram_db`.
    neighborhood_size : int
        Radius of the diamond (Dejavu's ``PEAK_NEIGHBORHOOD_SIZE``).
    amp_min : float
        Peaks must be strictly louder than this (dB).

    Returns
    -------
    np.ndarray, int64, shape (n_peaks, 2)
        ``(frequency bin, frame)`` rows, sorted by frame, then bin.
    """
    if spec.size == 0:
        return np.zeros((0, 2), dtype=np.int64)
    peaks = (diamond_max(spec, neighborhood_size) == spec) & (spec > amp_min)
    if amp_min < 0:  # only then can the zero background pass the threshold: drop its eroded interior
        from scipy.ndimage import binary_erosion, generate_binary_structure, iterate_structure

        footprint = iterate_structure(generate_binary_structure(2, 1), neighborhood_size)
        peaks &= ~binary_erosion(spec == 0, structure=footprint, border_value=1)
    freq, frame = np.nonzero(peaks)
    order = np.lexsort((freq, frame))
    return np.stack([freq[order], frame[order]], axis=1).astype(np.int64)


def hash_pair(f1: int, f2: int, dt: int, reduction: int = 20) -> str:
    """Dejavu's hash of a peak pair: SHA-1 hex digest of ``"f1|f2|dt"`` cut to ``reduction`` hex digits."""
    return hashlib.sha1(f"{f1}|{f2}|{dt}".encode()).hexdigest()[:reduction]


def pair_hashes(peaks: np.ndarray, fan_value: int = 15, min_dt: int = 0, max_dt: int = 200,
                reduction: int = 20) -> tuple[list[str], np.ndarray]:
    """Hash each peak with each of its next ``fan_value`` peaks whose frame distance is in ``[min_dt, max_dt]``.

    Parameters
    ----------
    peaks : np.ndarray, int, shape (n, 2)
        ``(bin, frame)`` rows sorted by frame (see :func:`find_peaks`).
    fan_value, min_dt, max_dt, reduction : int
        Partners per peak; frame-distance bounds; hex digits kept of each hash.

    Returns
    -------
    hashes : list of str, length m
        Hex hashes, ordered by anchor peak, then partner.
    anchors : np.ndarray, int64, shape (m,)
        The anchor frame ``t1`` of each hash.
    """
    n = len(peaks)
    anchor_idx, partner_idx = [], []
    for k in range(1, fan_value + 1):
        if k >= n:
            break
        i = np.arange(n - k)
        dt = peaks[i + k, 1] - peaks[i, 1]
        keep = (dt >= min_dt) & (dt <= max_dt)
        anchor_idx.append(i[keep])
        partner_idx.append(i[keep] + k)
    if not anchor_idx:
        return [], np.zeros(0, dtype=np.int64)
    a = np.concatenate(anchor_idx)
    b = np.concatenate(partner_idx)
    order = np.lexsort((b, a))
    a, b = a[order], b[order]
    f1, f2 = peaks[a, 0].tolist(), peaks[b, 0].tolist()
    t1 = peaks[a, 1]
    dts = (peaks[b, 1] - t1).tolist()
    hashes = [hashlib.sha1(f"{x}|{y}|{d}".encode()).hexdigest()[:reduction] for x, y, d in zip(f1, f2, dts)]
    return hashes, t1.astype(np.int64)


def hash_codes(hashes: list[str]) -> np.ndarray:
    """Integer codes of hex hashes: the first 16 hex digits as uint64. Returns np.ndarray uint64, shape (m,)."""
    return np.array([int(h[:16], 16) for h in hashes], dtype=np.uint64)


# ----------------------------------------------------------------------------------------------------------------
# The system


class Dejavu:
    """Dejavu peak-pair fingerprinting over an SQLite database (see the module docstring).

    Parameters
    ----------
    n_fft : int, even, in [16, 65536]
        Frame length in samples (Dejavu's ``DEFAULT_WINDOW_SIZE``, 4096).
    overlap_ratio : float in [0, 1)
        Frame overlap; hop = ``n_fft - int(n_fft * overlap_ratio)`` (2048 for the defaults).
    fan_value : int >= 1
        Partners of each peak (15).
    amp_min : float
        Peaks must exceed this many dB (10).
    neighborhood_size : int >= 1
        Radius of the diamond peak neighbourhood, in bins and frames (20).
    min_hash_time_delta, max_hash_time_delta : int >= 0
        Bounds on the frame distance of a pair (0 and 200).
    fingerprint_reduction : int, even, in [16, 40]
        Hex digits of SHA-1 kept (20, i.e. 10 bytes stored per hash).
    min_score : float >= 0
        Rejection threshold on the aligned-hash count (5, a choice of ours: chance alignments of natural audio
        are a handful of hashes). On the generated eSpeak speech the defaults align 10 to 100 hashes of clips not
        in the database (same-frame pairs of eSpeak's recurring consonant bursts), and 5-s excerpts tens to
        hundreds; evaluation builds with ``min_score=0`` and calibrates its own threshold.
    """

    name = "dejavu"

    def __init__(self, n_fft: int = 4096, overlap_ratio: float = 0.5, fan_value: int = 15, amp_min: float = 10.0,
                 neighborhood_size: int = 20, min_hash_time_delta: int = 0, max_hash_time_delta: int = 200,
                 fingerprint_reduction: int = 20, min_score: float = 5.0) -> None:
        n_fft = _int_param("n_fft", n_fft, 16, 65536)
        if n_fft % 2:
            raise ValueError(f"n_fft must be an even integer in [16, 65536], got {n_fft}")
        reduction = _int_param("fingerprint_reduction", fingerprint_reduction, 16, 40)
        if reduction % 2:
            raise ValueError(f"fingerprint_reduction must be an even integer in [16, 40], got {reduction}")
        min_dt = _int_param("min_hash_time_delta", min_hash_time_delta, 0)
        self.params: dict[str, Any] = {
            "n_fft": n_fft,
            "overlap_ratio": _float_param("overlap_ratio", overlap_ratio, 0.0, 0.95),
            "fan_value": _int_param("fan_value", fan_value, 1, 100),
            "amp_min": _float_param("amp_min", amp_min),
            "neighborhood_size": _int_param("neighborhood_size", neighborhood_size, 1, 100),
            "min_hash_time_delta": min_dt,
            "max_hash_time_delta": _int_param("max_hash_time_delta", max_hash_time_delta, min_dt, 10000),
            "fingerprint_reduction": reduction,
            "min_score": _float_param("min_score", min_score, 0.0),
        }
        self.hop = n_fft - int(n_fft * self.params["overlap_ratio"])
        self._con = _new_database(self.params)
        self._refs: dict[str, tuple[int, float, int]] = {}  # ref_id -> (song_id, duration_s, sample_rate)

    # -- the Fingerprinter contract ------------------------------------------------------------------------------

    def add(self, ref_id: str, audio: np.ndarray, sr: int) -> None:
        """Fingerprint ``audio`` at its own rate and store it as song ``ref_id``.

        Parameters
        ----------
        ref_id : str
            A new, non-empty name.
        audio : np.ndarray, float, shape (n,)
            Mono samples in [-1, 1], at least ``n_fft`` of them.
        sr : int
            Their sample rate.

        Raises
        ------
        ValueError
            ``ref_id`` is not a non-empty string or is already stored.
        AudioError
            Empty, non-finite, stereo, silent or shorter than one frame, or no fingerprint at all; names ``ref_id``.
        """
        if not isinstance(ref_id, str) or not ref_id:
            raise ValueError(f"ref_id must be a non-empty string, got {ref_id!r}")
        if ref_id in self._refs:
            raise ValueError(f"reference {ref_id!r} is already in the database; use another ref_id")
        check_rate(sr, f"reference {ref_id!r}")
        a = check_audio(audio, sr, name=f"reference {ref_id!r}", min_duration_s=self.params["n_fft"] / sr)
        samples = to_int16_scale(a)
        hashes, anchors = self._hashes(samples, int(sr))
        if not hashes:
            raise AudioError(f"reference {ref_id!r}: no spectral peak above {self.params['amp_min']:g} dB, so no "
                             "fingerprint; is it nearly silent?")
        file_sha1 = hashlib.sha1(samples.astype("<i2").tobytes()).hexdigest()
        rows = sorted(set(zip(hashes, anchors.tolist())))
        self._insert(ref_id, file_sha1, a.size / sr, int(sr), ((bytes.fromhex(h), t) for h, t in rows), len(rows))

    def _insert(self, ref_id: str, file_sha1: str, seconds: float, sr: int, rows, n_rows: int) -> None:
        """Store song ``ref_id`` and its ``(hash bytes, offset)`` rows in one transaction."""
        with self._con:  # one transaction
            cur = self._con.execute(
                "INSERT INTO songs (song_name, fingerprinted, file_sha1, total_hashes, duration_s, sample_rate) "
                "VALUES (?, 0, ?, 0, ?, ?)", (ref_id, file_sha1, seconds, sr))
            song_id = cur.lastrowid
            self._con.executemany('INSERT OR IGNORE INTO fingerprints (hash, song_id, "offset") VALUES (?, ?, ?)',
                                  ((h, song_id, t) for h, t in rows))
            self._con.execute("UPDATE songs SET fingerprinted = 1, total_hashes = ? WHERE song_id = ?",
                              (n_rows, song_id))
        self._refs[ref_id] = (song_id, seconds, sr)

    def reference_record(self, ref_id: str) -> dict[str, np.ndarray]:
        """The stored rows of song ``ref_id`` (``hashes`` as bytes, ``offsets``), its ``file_sha1``, ``seconds``
        and ``sample_rate``."""
        song_id, seconds, sr = self._refs[ref_id]
        width = (self.params["fingerprint_reduction"] + 1) // 2
        rows = self._con.execute('SELECT hash, "offset" FROM fingerprints WHERE song_id = ? ORDER BY hash, "offset"',
                                 (song_id,)).fetchall()
        sha1 = self._con.execute("SELECT file_sha1 FROM songs WHERE song_id = ?", (song_id,)).fetchone()[0]
        hashes = np.frombuffer(b"".join(h for h, _ in rows), np.uint8).reshape(len(rows), width)
        return {"hashes": hashes, "offsets": np.array([t for _, t in rows], np.int64), "seconds": np.float64(seconds),
                "sample_rate": np.int64(sr), "file_sha1": np.array(sha1)}

    def add_record(self, ref_id: str, record: dict[str, np.ndarray]) -> None:
        """Store a record of :meth:`reference_record` under the new ``ref_id``."""
        if ref_id in self._refs:
            raise ValueError(f"reference {ref_id!r} is already in the database; use another ref_id")
        r = check_record("dejavu", ref_id, record, {"hashes": ("uint8", 2), "offsets": ("int64", 1),
                                                    "seconds": ("f8", 0), "sample_rate": ("int64", 0),
                                                    "file_sha1": (str, 0)})
        width = (self.params["fingerprint_reduction"] + 1) // 2
        if r["hashes"].shape[0] == 0 or r["hashes"].shape[1] != width:
            raise ValueError(f"dejavu: the record of {ref_id!r} holds {r['hashes'].shape[0]} hash(es) of "
                             f"{r['hashes'].shape[1]} bytes; this database stores {width}-byte hashes")
        sr = check_rate(int(r["sample_rate"]), f"reference {ref_id!r}")
        rows = [(h.tobytes(), int(t)) for h, t in zip(r["hashes"], r["offsets"])]
        self._insert(ref_id, str(r["file_sha1"]), float(r["seconds"]), int(sr), rows, len(rows))

    def identify(self, audio: np.ndarray, sr: int) -> Match:
        """The best aligned reference for ``audio``.

        Parameters
        ----------
        audio : np.ndarray, float, shape (n,)
            Mono query samples in [-1, 1].
        sr : int
            Their sample rate.

        Returns
        -------
        Match
            ``(ref_id, offset_s, score)`` with score = the top aligned-hash count. A best score below ``min_score``
            gives ``Match(None, 0.0, score)``; no candidate at all (too short for one frame, silent, nothing in
            common with the database) gives ``Match(None, 0.0, 0.0)``.

        Raises
        ------
        AudioError
            Empty, non-finite or stereo audio.
        """
        best = self.candidates(audio, sr, top_k=1)
        if not best:
            return NO_MATCH
        c = best[0]
        if c["score"] < self.params["min_score"]:
            return Match(None, 0.0, c["score"])
        return Match(c["ref_id"], c["offset_s"], c["score"])

    def candidates(self, audio: np.ndarray, sr: int, top_k: int = 5) -> list[dict[str, Any]]:
        """The ``top_k`` best references (one alignment each), best first, with Dejavu's confidence ratios.

        Returns
        -------
        list of dict
            ``ref_id``, ``offset_s``, ``score`` (aligned hashes), ``offset_frames``,
            ``input_confidence`` (score / distinct query fingerprints) and ``fingerprinted_confidence``
            (score / the reference's stored fingerprints). Empty when there is no candidate.
        """
        top_k = _int_param("top_k", top_k, 1)
        a = check_audio(audio, sr, name="query", min_duration_s=0.0, allow_silence=True)
        db_sr = self._database_rate()
        if db_sr is not None and db_sr != sr:
            a, sr = resample(a, int(sr), db_sr), db_sr
        if a.size < self.params["n_fft"] or not self._refs:
            return []
        hashes, anchors = self._hashes(to_int16_scale(a), int(sr))
        if not hashes:
            return []
        query = sorted(set(zip(hashes, anchors.tolist())))
        song, diff = self._votes(query)
        if song.size == 0:
            return []
        keys, counts = np.unique((song << 32) | (diff + (1 << 31)), return_counts=True)
        order = np.lexsort((keys, -counts))  # most votes first; ties: lowest song_id, then lowest offset
        names = {sid: (ref, n_sr) for ref, (sid, _, n_sr) in self._refs.items()}
        totals = dict(self._con.execute("SELECT song_id, total_hashes FROM songs"))
        out, seen = [], set()
        for k in order:
            sid = int(keys[k] >> 32)
            if sid in seen:
                continue
            seen.add(sid)
            d = int(keys[k] & 0xFFFFFFFF) - (1 << 31)
            ref, ref_sr = names[sid]
            score = float(counts[k])
            out.append({"ref_id": ref, "offset_s": d * self.hop / ref_sr, "score": score, "offset_frames": d,
                        "input_confidence": score / len(query),
                        "fingerprinted_confidence": score / max(totals[sid], 1)})
            if len(out) >= top_k:
                break
        return out

    def fingerprint(self, audio: np.ndarray, sr: int) -> tuple[np.ndarray, np.ndarray]:
        """The raw peak-pair fingerprints of a clip, at its own rate.

        Returns
        -------
        codes : np.ndarray, uint64, shape (m,)
            First 16 hex digits of each hash.
        times_s : np.ndarray, float64, shape (m,)
            Start time of each anchor frame (``t1 * hop / sr``). Both empty for a clip shorter than one frame.

        Raises
        ------
        AudioError
            Empty, non-finite or stereo audio.
        """
        a = check_audio(audio, sr, name="audio", min_duration_s=0.0, allow_silence=True)
        hashes, anchors = self._hashes(to_int16_scale(a), int(sr))
        return hash_codes(hashes), anchors * (self.hop / sr)

    def references(self) -> list[str]:
        """The stored ref_ids, in insertion order."""
        return list(self._refs)

    def __contains__(self, ref_id: object) -> bool:
        return ref_id in self._refs

    def __len__(self) -> int:
        return len(self._refs)

    def stats(self) -> dict[str, Any]:
        """Size of the database.

        Returns
        -------
        dict
            ``name``, ``references``, ``fingerprints`` (stored rows), ``seconds`` (audio indexed), ``bytes`` (what
            the fingerprints themselves take, counted like for like with the other systems: per row the hash,
            ``fingerprint_reduction`` hex digits = 10 bytes at the default, plus a 4-byte reference id and a 4-byte
            offset; the database's own overhead excluded), ``file_bytes`` (the SQLite database, page_count *
            page_size: the size of the file :meth:`save` writes), ``bits_per_second`` (hash bits stored per second
            of audio), ``fingerprints_per_second``, ``params``.
        """
        n_fp = self._con.execute("SELECT COUNT(*) FROM fingerprints").fetchone()[0]
        seconds = float(sum(d for _, d, _ in self._refs.values()))
        pages = self._con.execute("PRAGMA page_count").fetchone()[0]
        page_size = self._con.execute("PRAGMA page_size").fetchone()[0]
        hash_bytes = (int(self.params["fingerprint_reduction"]) + 1) // 2
        return {"name": self.name, "references": len(self._refs), "fingerprints": int(n_fp), "seconds": seconds,
                "bytes": int(n_fp) * (hash_bytes + 8), "file_bytes": int(pages * page_size),
                "bits_per_second": 8.0 * hash_bytes * n_fp / seconds if seconds else 0.0,
                "fingerprints_per_second": n_fp / seconds if seconds else 0.0, "params": dict(self.params)}

    def save(self, path: str | os.PathLike) -> None:
        """Write the database to the SQLite file ``path``, atomically (backup into a temp file, then rename)."""
        with atomic_path(path) as tmp:
            dst = sqlite3.connect(tmp)
            try:
                self._con.backup(dst)
            finally:
                dst.close()

    @classmethod
    def load(cls, path: str | os.PathLike) -> "Dejavu":
        """Open a database written by :meth:`save` (copied into memory).

        Raises
        ------
        FileNotFoundError
            No file at ``path``.
        ValueError
            The file is not SQLite, is corrupt, or lacks Dejavu's tables or parameters; the message names ``path``.
        """
        p = Path(path)
        if not p.is_file():
            raise FileNotFoundError(f"{p}: no such Dejavu database file")
        mem = sqlite3.connect(":memory:")
        try:
            src = sqlite3.connect(f"{p.resolve().as_uri()}?mode=ro", uri=True)
            try:
                src.backup(mem)
            finally:
                src.close()
            check = mem.execute("PRAGMA quick_check").fetchone()[0]
            if check != "ok":
                raise sqlite3.DatabaseError(f"integrity check failed: {check}")
            _check_schema(mem)
            params = _read_meta(mem)
            system = cls(**params)
            system._con.close()
            system._con = mem
            system._refs = _read_songs(mem)
        except (sqlite3.Error, KeyError, TypeError, ValueError, json.JSONDecodeError) as e:
            mem.close()
            raise ValueError(f"{p}: not a Dejavu database ({e})") from e
        mem.execute("PRAGMA foreign_keys = ON")
        return system

    # -- pickling (for worker processes): the database travels as its serialized bytes --------------------------

    def __getstate__(self) -> dict[str, Any]:
        return {"params": self.params, "db": self._con.serialize()}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(**state["params"])
        self._con.deserialize(state["db"])
        self._refs = _read_songs(self._con)

    # -- internals ----------------------------------------------------------------------------------------------

    def _hashes(self, samples: np.ndarray, sr: int) -> tuple[list[str], np.ndarray]:
        """Hashes and anchor frames of int16-scaled ``samples`` (empty when shorter than one frame)."""
        p = self.params
        peaks = self._peaks(samples, sr)
        return pair_hashes(peaks, p["fan_value"], p["min_hash_time_delta"], p["max_hash_time_delta"],
                           p["fingerprint_reduction"])

    def _peaks(self, samples: np.ndarray, sr: int) -> np.ndarray:
        """Peaks of the whole clip, computed in blocks of frames with a margin so that they are exact."""
        p = self.params
        total = n_frames(samples.size, p["n_fft"], self.hop)
        margin = p["neighborhood_size"]
        out = []
        for lo in range(0, total, BLOCK_FRAMES):
            hi = min(lo + BLOCK_FRAMES, total)
            a, b = max(lo - margin, 0), min(hi + margin, total)
            spec = spectrogram_db(samples, sr, p["n_fft"], self.hop, a, b)
            peaks = find_peaks(spec, p["neighborhood_size"], p["amp_min"])
            peaks[:, 1] += a
            out.append(peaks[(peaks[:, 1] >= lo) & (peaks[:, 1] < hi)])
        return np.concatenate(out) if out else np.zeros((0, 2), dtype=np.int64)

    def _votes(self, query: list[tuple[str, int]]) -> tuple[np.ndarray, np.ndarray]:
        """Look up the query's ``(hash, frame)`` pairs; return each vote's song_id and offset difference (int64)."""
        # ``query`` is sorted by hash, so each distinct hash owns a contiguous run of query frames
        q_hash = [bytes.fromhex(h) for h, _ in query]
        q_time = np.array([t for _, t in query], dtype=np.int64)
        keys, first = [], {}
        for i, h in enumerate(q_hash):
            if h not in first:
                first[h] = len(keys)
                keys.append(h)
        run_start = np.searchsorted(np.array([first[h] for h in q_hash]), np.arange(len(keys)))
        run_len = np.diff(np.append(run_start, len(q_hash)))
        rows: list[tuple[bytes, int, int]] = []
        for i in range(0, len(keys), LOOKUP_CHUNK):
            chunk = keys[i:i + LOOKUP_CHUNK]
            marks = ",".join("?" * len(chunk))
            rows += self._con.execute(f'SELECT hash, song_id, "offset" FROM fingerprints WHERE hash IN ({marks})',
                                      chunk).fetchall()
        if not rows:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
        key = np.array([first[h] for h, _, _ in rows], dtype=np.int64)
        sid = np.array([r[1] for r in rows], dtype=np.int64)
        off = np.array([r[2] for r in rows], dtype=np.int64)
        reps = run_len[key]  # one vote per (database row, query frame of the same hash)
        row = np.repeat(np.arange(len(rows)), reps)
        within = np.arange(row.size) - np.repeat(np.cumsum(reps) - reps, reps)
        return sid[row], off[row] - q_time[run_start[key[row]] + within]

    def _database_rate(self) -> int | None:
        """The sample rate shared by every reference, or None (no reference, or several rates)."""
        rates = {r for _, _, r in self._refs.values()}
        return rates.pop() if len(rates) == 1 else None


def _new_database(params: dict[str, Any]) -> sqlite3.Connection:
    con = sqlite3.connect(":memory:")
    con.execute("PRAGMA foreign_keys = ON")
    with con:
        for stmt in _SCHEMA:
            con.execute(stmt)
        con.executemany("INSERT INTO meta (key, value) VALUES (?, ?)",
                        [("system", "dejavu"), ("format_version", str(FORMAT_VERSION)),
                         ("params", json.dumps(params, sort_keys=True))])
    return con


def _check_schema(con: sqlite3.Connection) -> None:
    """Refuse a database holding objects Dejavu never creates (a trigger could delete or alter what ``add``
    writes while reporting success; a view or another table is not ours to carry along)."""
    objects = "SELECT type || ' ' || name FROM sqlite_master WHERE name NOT LIKE 'sqlite_%'"
    expected = {r[0] for r in _new_database({}).execute(objects)}
    found = {r[0] for r in con.execute(objects)}
    foreign = sorted(found - expected)
    if foreign:
        raise sqlite3.DatabaseError(f"it holds objects Dejavu does not create ({', '.join(foreign)}); refusing to "
                                    "open it")


def _read_meta(con: sqlite3.Connection) -> dict[str, Any]:
    """Check the tables and columns, return the stored parameters."""
    tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    for table, cols in _COLUMNS.items():
        if table not in tables:
            raise ValueError(f"missing table {table!r}")
        have = {r[1] for r in con.execute(f"PRAGMA table_info({table})")}
        if not cols <= have:
            raise ValueError(f"table {table!r} lacks columns {sorted(cols - have)}")
    meta = dict(con.execute("SELECT key, value FROM meta"))
    if meta.get("system") != "dejavu":
        raise ValueError(f"meta.system is {meta.get('system')!r}, expected 'dejavu'")
    if meta.get("format_version") != str(FORMAT_VERSION):
        raise ValueError(f"format version {meta.get('format_version')!r}, this code reads {FORMAT_VERSION}")
    return json.loads(meta["params"])


def _read_songs(con: sqlite3.Connection) -> dict[str, tuple[int, float, int]]:
    rows = con.execute("SELECT song_name, song_id, duration_s, sample_rate FROM songs WHERE fingerprinted = 1 "
                       "ORDER BY song_id")
    return {name: (int(sid), float(dur), int(rate)) for name, sid, dur, rate in rows}


SYSTEM = Dejavu
