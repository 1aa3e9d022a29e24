"""Panako as published in 2014 (constant-Q strategy of Panako 1.x): transform, event points, triplets, the 27-bit
hash, the matching rules, and identification of exact, time-stretched and pitch-shifted excerpts.

The rules are pinned with hand-computed examples. The identification tests use 20-s excerpts of 30-s references
(``long_db``), not the 5-s excerpts of the 8-s speech bank: Panako keeps one triplet per event point, chosen
among partners up to 2 + 2 s later, so the last 4 s of a query rarely reproduce their reference's triplets, and a
5-s query keeps only a handful of hits (module docstring of :mod:`samaf_lib.systems.panako`).

Panako's claim of robustness to tempo and pitch changes is made for music, so the identification tests run on
generated speech and on music-like audio generated here (:func:`make_music`: harmonic notes of one equal-tempered
scale, chords, percussion). On both, ``tempo 1.05`` is found in most excerpts and ``pitch 1.05`` in few: a shift
by 2.53 constant-Q bins breaks most hashes, while a shift by a whole 3 bins does not. The pitch weakness belongs
to the design, not to speech; the tests assert it as a finding.
"""

from __future__ import annotations

import numpy as np
import pytest

from samaf_lib import distortions, systems
from samaf_lib.audio import AudioError
from samaf_lib.corpus.samples import make_speech
from samaf_lib.systems.panako import (
    ConstantQ,
    Panako,
    align_hits,
    cents_to_hz,
    dedup_triplets,
    find_event_points,
    hash_triplets,
    make_triplets,
)

SR = 16000
LONG_S, QUERY_S = 30.0, 20.0
#: Allowed error of a reported offset: the 3-frame bin of the offset histogram plus a frame of event jitter (s).
OFFSET_TOL_S = 4 * 1536 / 44100


# ---- fixtures ------------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def long_bank() -> dict[str, np.ndarray]:
    """12 references of 30 s (seeds 100-111: voices and sentences no other test of this file uses)."""
    return {f"long{i:02d}": make_speech(100 + i, LONG_S) for i in range(12)}


@pytest.fixture(scope="module")
def long_db(long_bank) -> Panako:
    s = Panako()
    for ref_id, audio in long_bank.items():
        s.add(ref_id, audio, SR)
    return s


@pytest.fixture(scope="module")
def long_excerpts(long_bank) -> list[tuple[str, float, np.ndarray]]:
    """One 20-s excerpt per reference, at a random odd sample: never on the 34.8-ms frame grid."""
    rng = np.random.default_rng(3)
    out = []
    for ref_id, audio in long_bank.items():
        start = int(rng.integers(1, int((LONG_S - QUERY_S - 0.1) * SR))) | 1
        out.append((ref_id, start / SR, audio[start:start + int(QUERY_S * SR)]))
    return out


def _answers(db: Panako, excerpts, name: str | None, level: float | None) -> list[dict]:
    """Identify every excerpt, distorted by ``samaf_lib.distortions`` when ``name`` is given."""
    rows = []
    for ref_id, offset, q in excerpts:
        if name is not None:
            q = distortions.distort(q, SR, name, level, 0)
        m = db.identify(q, SR)
        rows.append({"ref": ref_id, "offset": offset, "match": m, "factors": db.last_factors})
    return rows


@pytest.fixture(scope="module")
def tempo_answers(long_db, long_excerpts) -> list[dict]:
    return _answers(long_db, long_excerpts, "tempo", 1.05)


@pytest.fixture(scope="module")
def pitch_answers(long_db, long_excerpts) -> list[dict]:
    """Half of the excerpts (the pitch shift is the slowest distortion)."""
    return _answers(long_db, long_excerpts[:6], "pitch", 1.05)


# ---- music-like audio ----------------------------------------------------------------------------------------------

#: Semitones of the major scale above its key note.
MAJOR_SCALE = (0, 2, 4, 5, 7, 9, 11)


def _note(f0: float, seconds: float, sr: int, rng: np.random.Generator, partials: int, decay: float) -> np.ndarray:
    """A harmonic tone: partials ``h * f0`` (h = 1 .. ``partials``, those below 0.45 ``sr``) of amplitude
    ``0.6 ** (h - 1)`` and random phase, a 10-ms attack, an exponential decay of ``decay`` per second and a
    20-ms release."""
    t = np.arange(int(seconds * sr)) / sr
    y = np.zeros(t.size)
    for h in range(1, partials + 1):
        if h * f0 < 0.45 * sr:
            y += 0.6 ** (h - 1) * np.sin(2 * np.pi * h * f0 * t + rng.uniform(0, 2 * np.pi))
    return y * np.minimum(1, t / 0.01) * np.exp(-decay * t) * np.clip((seconds - t) / 0.02, 0, 1)


def make_music(seed: int, seconds: float = LONG_S, sr: int = SR) -> np.ndarray:
    """Deterministic music-like audio: a melody, chords and percussion on one beat grid.

    * Tuning: equal temperament on A = 440 Hz, the whole piece detuned by a seeded offset in [-15, 15] cents (every
      note keeps one position relative to Panako's bins, which lie a third of a semitone apart on the A440 grid).
    * Key and beat seeded; a beat lasts 0.4-0.6 s.
    * Melody: notes of half a beat or a beat (0.2-0.6 s), a random walk of up to 3 steps over the major scale from
      MIDI note 55 to 88 (196-1319 Hz, 2.75 octaves), 5 partials, decaying by 3 per second.
    * Chords: triads of the scale lasting 2 or 4 beats, notes between MIDI 43 and 67 (98-392 Hz), 4 partials,
      decaying by 1 per second.
    * Percussion: on every beat (on the half beat after 3 beats in 10), alternately a kick (an 80-ms sine falling
      from 140 Hz towards 60 Hz) and an 80-ms burst of noise.

    Returns
    -------
    np.ndarray, float32, shape (round(seconds * sr),)
        Peak-normalised to 0.9.
    """
    rng = np.random.default_rng(seed)
    out = np.zeros(int(seconds * sr) + 4 * sr)               # room for the last notes' tails
    key, beat, cents = int(rng.integers(0, 12)), float(rng.uniform(0.4, 0.6)), float(rng.uniform(-15, 15))
    scale = [36 + key + 12 * octave + step for octave in range(5) for step in MAJOR_SCALE]

    def hz(midi: int) -> float:
        return 440.0 * 2 ** ((midi - 69 + cents / 100) / 12)

    def put(t: float, y: np.ndarray) -> None:
        out[int(t * sr): int(t * sr) + y.size] += y

    melody = [m for m in scale if 55 <= m <= 88]
    t, i = 0.0, int(rng.integers(len(melody)))
    while t < seconds:
        dur = beat * float(rng.choice([0.5, 1.0]))
        i = int(np.clip(i + rng.integers(-3, 4), 0, len(melody) - 1))
        put(t, 0.5 * _note(hz(melody[i]), dur, sr, rng, 5, 3.0))
        t += dur
    low = [m for m in scale if 43 <= m <= 67]
    t = 0.0
    while t < seconds:
        dur = beat * float(rng.choice([2, 4]))
        root = int(rng.integers(0, len(low) - 4))
        for step in (0, 2, 4):
            put(t, 0.25 * _note(hz(low[root + step]), dur, sr, rng, 4, 1.0))
        t += dur
    tt = np.arange(int(0.08 * sr)) / sr
    t, k = 0.0, 0
    while t < seconds:
        if k % 2 == 0:
            put(t, 0.6 * np.sin(2 * np.pi * (60 + 80 * np.exp(-30 * tt)) * tt) * np.exp(-25 * tt))
        else:
            put(t, 0.25 * rng.standard_normal(tt.size) * np.exp(-60 * tt))
        t += beat / 2 if rng.random() < 0.3 else beat
        k += 1
    out = out[: int(seconds * sr)]
    return (0.9 * out / np.max(np.abs(out))).astype(np.float32)


@pytest.fixture(scope="module")
def music_bank() -> dict[str, np.ndarray]:
    """12 music-like references of 30 s (seeds 200-211)."""
    return {f"music{i:02d}": make_music(200 + i) for i in range(12)}


@pytest.fixture(scope="module")
def music_db(music_bank) -> Panako:
    s = Panako()
    for ref_id, audio in music_bank.items():
        s.add(ref_id, audio, SR)
    return s


@pytest.fixture(scope="module")
def music_excerpts(music_bank) -> list[tuple[str, float, np.ndarray]]:
    """One 20-s excerpt per reference at a random odd sample (off the frame grid), as for speech."""
    rng = np.random.default_rng(4)
    out = []
    for ref_id, audio in music_bank.items():
        start = int(rng.integers(1, int((LONG_S - QUERY_S - 0.1) * SR))) | 1
        out.append((ref_id, start / SR, audio[start:start + int(QUERY_S * SR)]))
    return out


@pytest.fixture(scope="module")
def music_answers(music_db, music_excerpts):
    """Answers per condition, computed once: ``music_answers(name, level)``."""
    cache: dict[tuple, list[dict]] = {}

    def get(name: str | None, level: float | None) -> list[dict]:
        if (name, level) not in cache:
            cache[(name, level)] = _answers(music_db, music_excerpts, name, level)
        return cache[(name, level)]

    return get


# ---- constant-Q transform ------------------------------------------------------------------------------------------

def test_constant_q_has_the_published_geometry():
    cq = ConstantQ()
    assert cents_to_hz(3700) == pytest.approx(69.29, abs=0.01) and cents_to_hz(12200) == pytest.approx(9396.4, abs=0.1)
    # ceil(36 * log2(9396.4 / 69.29)) = ceil(255.0000...) in float32, as TarsosDSP computes it
    assert cq.n_bins == 256 and cq.n_fft == 32768
    assert cq.freqs[0] == pytest.approx(69.29, abs=0.01) and cq.freqs[36] == pytest.approx(2 * 69.29, abs=0.02)
    q = 1 / (2 ** (1 / 36) - 1)                               # 51.4
    assert cq.lengths[0] == np.ceil(q * 44100 / cq.freqs[0]) == 32739 and cq.lengths[-1] == 242
    assert cq.n_frames(1) == 1 and cq.n_frames(32768) == 1 and cq.n_frames(32769) == 2
    assert cq.n_frames(32768 + 1536) == 2 and cq.n_frames(32768 + 1537) == 3


def test_constant_q_puts_a_sine_in_its_bin():
    cq = ConstantQ()
    t = np.arange(3 * 44100) / 44100
    for k in (0, 60, 150, 240):
        mag = cq.magnitudes(np.cos(2 * np.pi * cq.freqs[k] * t))
        mid = mag[mag.shape[0] // 2]
        assert int(np.argmax(mid)) == k
        assert mid[k] == pytest.approx(0.25, abs=0.01)          # Hann kernel / length: a full-scale sine reads 1/4


def test_pitch_shift_by_whole_bins_moves_the_constant_q_peak_by_those_bins():
    cq = ConstantQ()
    t = np.arange(2 * 44100) / 44100
    for f in (220.0, 700.0, 2500.0):
        a = cq.magnitudes(np.sin(2 * np.pi * f * t))[10]
        b = cq.magnitudes(np.sin(2 * np.pi * f * 2 ** (3 / 36) * t))[10]
        assert int(np.argmax(b)) - int(np.argmax(a)) == 3


# ---- event points ----------------------------------------------------------------------------------------------

def test_event_points_of_a_synthetic_spectrum():
    mag = np.full((50, 60), 0.05, np.float32)                   # flat background: no contrast, no event points
    peaks = {
        (20, 30): 0.10,   # kept: log1p(.05) / log1p(.10) = 0.51
        (5, 30): 0.10,    # frame 5 < 7: never examined
        (20, 50): 0.10,   # flat: its 3 x 3 neighbours are 0.095 -> ratio 0.95 >= 0.9
        (40, 10): 0.10,   # its 3 x 3 minimum is 0 (below)
        (30, 45): 1.00,   # too much contrast: log1p(.05) / log1p(1) = 0.07 <= 0.2
        (30, 57): 0.06,   # above the strong point in its frame: log1p(.06) = .058 <= 0.1 * log1p(1) = .069
        (30, 25): 0.06,   # below it: the running frame maximum has not seen it yet -> kept (ratio 0.84)
        (20, 5): 0.10,    # kept
        (27, 5): 0.09,    # 7 frames after a larger point in the same bin: not a 15 x 15 maximum
        (20, 15): 0.10,   # kept
        (28, 15): 0.09,   # 8 frames after it: outside its 15 x 15 window -> kept
    }
    mag[19:22, 49:52] = 0.095
    mag[39:42, 9:12] = 0.0
    for (t, k), v in peaks.items():
        mag[t, k] = v
    ev = find_event_points(mag)
    assert [(int(t), int(k)) for t, k, _ in ev] == [(20, 5), (20, 15), (20, 30), (28, 15), (30, 25)]
    np.testing.assert_allclose(ev[:, 2], [0.05 / 0.10, 0.5, 0.5, 0.05 / 0.09, 0.05 / 0.06], rtol=1e-6)
    assert find_event_points(np.zeros((14, 60), np.float32)).shape == (0, 3)   # fewer than 15 frames


# ---- triplets ----------------------------------------------------------------------------------------------------

def test_one_triplet_per_event_point_with_the_largest_contrast_sum():
    # (frame, bin, contrast)
    ev = np.array([[0, 100, 0.5],     # 0
                   [7, 100, 0.9],     # 1: t - t0 = 7 is not > 7
                   [8, 110, 0.3],     # 2
                   [9, 140, 0.9],     # 3: |140 - 100| = 40 >= 31
                   [17, 115, 0.4],    # 4
                   [20, 90, 0.8],     # 5
                   [60, 100, 1.0],    # 6: 60 - 0 >= 57, but within 57 of 8, 17 and 20
                   [61, 160, 1.0]])   # 7: |160 - f2| >= 31 for every e2
    trip = make_triplets(ev)
    # e0: e2 in {2, 4, 5}; (2, 4) .5+.3+.4 = 1.2, (2, 5) 1.6, (2, 6) 1.8, (4, 6) 1.9, (5, 6) 2.3 -> (5, 6)
    # e1 (7, 100): e2 in {4 (17), 5 (20)} (8 and 9 are not > 7 + 7); (4, 6) .9+.4+1 = 2.3, (5, 6) 2.7 -> (5, 6)
    # e2 (8, 110): e2 in {4, 5}; e3 = 6 for both: (4, 6) 1.7, (5, 6) 2.1 -> (5, 6)
    # e3 (9, 140): e2 in {4 (|115-140| = 25)}; e3 = 6 (|100-115| = 15): (4, 6)
    # e4 (17, 115): e2 = 6 (60 < 74); e3 must come 8+ frames after 60: none
    assert trip.tolist() == [[0, 5, 6], [1, 5, 6], [2, 5, 6], [3, 4, 6]]


def test_contrast_ties_go_to_the_last_candidate():
    ev = np.array([[0, 50, 0.5], [10, 50, 0.5], [12, 52, 0.5], [30, 50, 0.5]])
    # candidates of e0: (1, 3), (2, 3), all of sum 1.5: the last one, (2, 3), is kept
    assert make_triplets(ev).tolist() == [[0, 2, 3]]


def test_the_same_hash_within_100_frames_is_stored_once():
    hashes = np.array([5, 5, 5, 7, 5])
    t1 = np.array([0, 99, 100, 100, 150])
    # 99 - 0 < 100: dropped; 100 - 0 = 100: kept; hash 7: kept; 150 - 100 < 100: dropped
    assert dedup_triplets(hashes, t1).tolist() == [0, 2, 3]


# ---- the 27-bit hash ---------------------------------------------------------------------------------------------

def test_hash_layout_hand_computed():
    def h(*pts):
        (t1, f1), (t2, f2), (t3, f3) = pts
        return int(hash_triplets([f1], [f2], [f3], [t1], [t2], [t3])[0])

    # (100, 50) (112, 60) (130, 45): band f1 round(3.125) = 3, band f3 round(2.8125) = 3, f2 - f1 + 31 = 41,
    # f3 - f2 + 31 = 16, ratio round(8 * 12/30 = 3.2) = 3, 12 > 18 no: 0, round(30/20 = 1.5) = 2 (half up)
    assert h((100, 50), (112, 60), (130, 45)) == 3 + 3 * 2**4 + 41 * 2**8 + 16 * 2**14 + 3 * 2**20 + 0 + 2 * 2**25
    assert h((100, 50), (112, 60), (130, 45)) == 70527283
    # Java rounding of halves: f1 = 8 -> 0.5 -> 1; f3 = 24 -> 1.5 -> 2; ratio 8 * 18/32 = 4.5 -> 5; bit 18 > 14;
    # span 32/20 = 1.6 -> 2; f2 - f1 + 31 = 53; f3 - f2 + 31 = 25
    assert h((0, 8), (18, 30), (32, 24)) == 1 + 2 * 2**4 + 53 * 2**8 + 25 * 2**14 + 5 * 2**20 + 2**24 + 2 * 2**25
    # wrap-arounds: f1 = 250 -> round(15.625) = 16 % 16 = 0; span 100/20 = 5 % 4 = 1; ratio 8 * 50/100 = 4;
    # f2 - f1 + 31 = 1; f3 - f2 + 31 = 61; f3 = 250 -> 0
    assert h((0, 250), (50, 220), (100, 250)) == 0 + 0 + 1 * 2**8 + 61 * 2**14 + 4 * 2**20 + 0 + 1 * 2**25
    assert all(0 <= h((0, a), (20, b), (45, c)) < 2**27 for a, b, c in [(0, 30, 0), (255, 225, 255), (100, 70, 130)])


def test_hash_invariance_as_designed():
    rng = np.random.default_rng(0)
    f = rng.integers(20, 60, (200, 3)) + np.array([0, 10, 5])
    t = np.cumsum(rng.integers(8, 40, (200, 3)), axis=1)
    base = hash_triplets(f[:, 0], f[:, 1], f[:, 2], t[:, 0], t[:, 1], t[:, 2])
    # a shift of 3 bins keeps the differences; the hash is unchanged where f1 and f3 stay in their 16-bin bands
    g = f + 3
    def band(x):                                               # Java's Math.round(x / 16), then % 16
        return np.floor(x / 16 + 0.5) % 16

    same_band = (band(f[:, [0, 2]]) == band(g[:, [0, 2]])).all(axis=1)
    moved = hash_triplets(g[:, 0], g[:, 1], g[:, 2], t[:, 0], t[:, 1], t[:, 2])
    assert same_band.sum() > 50
    assert np.array_equal(moved[same_band], base[same_band]) and np.all(moved[~same_band] != base[~same_band])
    # the time ratio, the longer-gap bit and round((t3 - t1) / 20) are unchanged by a shift in time
    assert np.array_equal(hash_triplets(f[:, 0], f[:, 1], f[:, 2], t[:, 0] + 7, t[:, 1] + 7, t[:, 2] + 7), base)


# ---- matching rules ----------------------------------------------------------------------------------------------

def _hits(q_t1, q_dt, q_f1, r_t1, r_dt, r_f1, ref=None):
    n = len(q_t1)
    cols = {"q_t1": q_t1, "q_dt": q_dt, "q_f1": q_f1, "r_t1": r_t1, "r_dt": r_dt, "r_f1": r_f1}
    return {"ref": np.zeros(n, int) if ref is None else np.asarray(ref), **{k: np.asarray(v) for k, v in cols.items()}}


def test_more_than_4_raw_hits_are_needed():
    q = np.array([0, 10, 20, 30, 40])
    four = _hits(q[:4], [20] * 4, [60] * 4, q[:4] + 90, [20] * 4, [60] * 4)
    assert align_hits(**four, n_refs=1)["score"].tolist() == [0]        # 4 aligned hits, but only 4 hits
    five = _hits(q, [20] * 5, [60] * 5, np.append(q[:4] + 90, 300), [20] * 5, [60] * 5)
    res = align_hits(**five, n_refs=1)
    assert res["raw"].tolist() == [5] and res["score"].tolist() == [4] and res["offset"].tolist() == [90]


def test_5_raw_hits_with_4_aligned_match_and_3_aligned_do_not():
    s = Panako()
    assert s.params["min_matches"] == 4 and s.params["min_score"] == 4.0   # > 4 raw, > 3 aligned
    q = np.array([0, 10, 20, 30, 40])
    four = align_hits(**_hits(q, [20] * 5, [60] * 5, [90, 100, 110, 120, 300], [20] * 5, [60] * 5), n_refs=1)
    three = align_hits(**_hits(q, [20] * 5, [60] * 5, [90, 100, 110, 250, 300], [20] * 5, [60] * 5), n_refs=1)
    assert four["score"][0] == 4 >= s.params["min_score"]
    assert three["score"][0] == 3 < s.params["min_score"]


def test_time_ratio_65_percent_is_rejected_75_kept():
    q = np.array([0, 4, 8, 12, 16])
    # reference 0: ratio 15/20 = 75 %, t_ref = 30 + 0.75 t_query; reference 1: 13/20 = 65 %, same alignment rule
    hits = _hits(np.tile(q, 2), [20] * 10, [60] * 10, np.concatenate([30 + 0.75 * q, 30 + 0.65 * q]).round(),
                 [15] * 5 + [13] * 5, [60] * 10, ref=[0] * 5 + [1] * 5)
    res = align_hits(**hits, n_refs=2)
    assert res["raw"].tolist() == [5, 5] and res["score"].tolist() == [5, 0]
    assert res["offset"][0] == 30 and res["time"][0] == pytest.approx(0.75) and np.isnan(res["time"][1])
    # and above: 27/20 = 135 % is rejected, 25/20 = 125 % kept
    hits = _hits(np.tile(q, 2), [20] * 10, [60] * 10, np.concatenate([30 + 1.25 * q, 30 + 1.35 * q]).round(),
                 [25] * 5 + [27] * 5, [60] * 10, ref=[0] * 5 + [1] * 5)
    assert align_hits(**hits, n_refs=2)["score"].tolist() == [5, 0]


def test_frequency_ratio_bounds():
    q = np.array([0, 10, 20, 30, 40])
    # 2**(13/36) = 1.285 (128 %) kept, 2**(14/36) = 1.310 (131 %) and 2**(-19/36) = 0.694 (69 %) rejected,
    # 2**(-18/36) = 0.707 (71 %) kept
    for df, kept in ((13, True), (14, False), (-18, True), (-19, False)):
        res = align_hits(**_hits(q, [20] * 5, [60 + df] * 5, q + 50, [20] * 5, [60] * 5), n_refs=1)
        assert res["score"][0] == (5 if kept else 0), df
        if kept:
            assert res["pitch"][0] == pytest.approx(2 ** (df / 36))


def test_offset_histogram_bins_of_3_frames_and_ties_to_the_lower_bin():
    q = np.array([0, 10, 20, 30, 40, 50])
    # offsets 60, 61 (bin 20: round(61/3) = 20) and 66, 67, 68 (bin 22, 23): 3 hits in bin 20, ...
    res = align_hits(**_hits(q, [20] * 6, [60] * 6, q + np.array([60, 61, 59, 66, 67, 71]), [20] * 6, [60] * 6),
                     n_refs=1)
    # 60 -> 20, 61 -> 20, 59 -> 20, 66 -> 22, 67 -> 22, 71 -> 24: bin 20 wins with 3
    assert res["score"][0] == 3 and res["offset"][0] == 60
    tie = align_hits(**_hits(q, [20] * 6, [60] * 6, q + np.array([90, 90, 90, 60, 60, 60]), [20] * 6, [60] * 6),
                     n_refs=1)
    assert tie["score"][0] == 3 and tie["offset"][0] == 60


def test_factors_of_a_time_scaled_and_pitch_shifted_alignment():
    q = np.arange(0, 200, 20)
    # the query plays 5 % faster (reference Δt = 1.05 x query Δt) and 3 bins higher; it starts at frame 42
    hits = _hits(q, [40] * 10, [63] * 10, np.round(42 + 1.05 * q), [42] * 10, [60] * 10)
    res = align_hits(**hits, n_refs=1)
    assert res["score"][0] == 10 and res["offset"][0] == 42
    assert res["time"][0] == pytest.approx(1.05) and res["pitch"][0] == pytest.approx(2 ** (3 / 36))


# ---- identification ----------------------------------------------------------------------------------------------

def test_exact_excerpts_found_at_the_right_offset(long_db, long_excerpts):
    for row in _answers(long_db, long_excerpts, None, None):
        m = row["match"]
        assert m.ref_id == row["ref"] and abs(m.offset_s - row["offset"]) <= OFFSET_TOL_S, row
        assert m.score >= long_db.params["min_score"]
        assert abs(row["factors"]["time"] - 1.0) < 0.01 and row["factors"]["pitch"] == pytest.approx(1.0)


def _found(rows: list[dict]) -> list[dict]:
    return [r for r in rows if r["match"].ref_id == r["ref"]]


def test_tempo_1_05_found_with_its_time_factor(tempo_answers):
    """The claim: a time-stretched query is found and its time factor measured. Required: more than half of the
    excerpts found, none given to another reference, and every one found with time factor 1.05 +- 0.01, pitch
    1.0 and the offset within the histogram's resolution."""
    found = _found(tempo_answers)
    assert all(r["match"].ref_id in (r["ref"], None) for r in tempo_answers)
    assert len(found) > len(tempo_answers) / 2, [r["match"] for r in tempo_answers]
    assert all(abs(r["factors"]["time"] - 1.05) <= 0.01 for r in found), [r["factors"] for r in found]
    assert all(r["factors"]["pitch"] == pytest.approx(1.0) for r in found)
    assert all(abs(r["match"].offset_s - r["offset"]) <= OFFSET_TOL_S for r in found)


def test_pitch_shift_by_whole_bins_found_with_its_factor(long_db, long_excerpts):
    """A pitch shift by 3 constant-Q bins (2**(3/36) = 1.059) keeps every frequency difference of the hash: the
    same requirements as for tempo. Half of the excerpts, as for ``pitch_answers`` (measured: 6 of these 6 found,
    11 of all 12)."""
    rows = _answers(long_db, long_excerpts[:6], "pitch", 2 ** (3 / 36))
    found = _found(rows)
    assert all(r["match"].ref_id in (r["ref"], None) for r in rows)
    assert len(found) > len(rows) / 2, [r["match"] for r in rows]
    assert all(abs(r["factors"]["pitch"] - 2 ** (3 / 36)) <= 0.005 for r in found), [r["factors"] for r in found]
    assert all(abs(r["factors"]["time"] - 1.0) <= 0.01 for r in found)


def test_pitch_1_05_is_never_given_to_another_reference(pitch_answers):
    assert all(r["match"].ref_id in (r["ref"], None) for r in pitch_answers)
    assert all(abs(r["factors"]["pitch"] - 1.05) <= 0.02 for r in _found(pitch_answers))


def test_pitch_1_05_on_speech_misses_most_excerpts_that_tempo_1_05_finds(tempo_answers, pitch_answers):
    """A finding, not the published claim: the bar the tempo test meets (more than half of the excerpts found) is
    missed after a 5 % pitch shift. 5 % is 2.53 constant-Q bins, so peaks move by 2 or 3 bins, the frequency
    differences of many hashes change, and the contrasts that choose each point's one triplet change with them
    (measured: 1 of the 12 excerpts of long_bank found, 1 of the 6 of ``pitch_answers``; 10 of 12 after tempo
    1.05). Music-like audio shows the same (``test_music_pitch_1_05_misses_most_excerpts``): it is the design's,
    not speech's."""
    assert len(_found(tempo_answers)) > len(tempo_answers) / 2
    assert len(_found(pitch_answers)) <= len(pitch_answers) / 2, [r["match"] for r in pitch_answers]


def test_out_of_database_speech_stays_below_the_published_threshold(long_db, long_excerpts):
    """``min_score`` is Panako's own rule (more than 3 aligned hits), not tuned on this data; seeds 5000-5003 are
    speech in no reference."""
    exact = [long_db.identify(q, SR).score for _, _, q in long_excerpts]
    outside = []
    for seed in range(5000, 5004):
        m = long_db.identify(make_speech(seed, QUERY_S), SR)
        assert m.ref_id is None and m.offset_s == 0.0, (seed, m)
        outside.append(m.score)
    assert max(outside) < long_db.params["min_score"] <= min(exact), (outside, exact)


# ---- identification of music-like audio ------------------------------------------------------------------------------
# Panako's claim (robustness to tempo and pitch changes of about 10 %) is made for music and 20-s queries. Music
# differs from speech in its steady partials and in notes that share one tuning, so that every fundamental sits at
# the same place between two constant-Q bins and a pitch shift moves them all alike. Measured on the 12 excerpts of
# ``music_excerpts`` (and, in brackets, on 30 references of seeds 200-229 with their excerpts drawn the same way),
# excerpts found at their offset:
#   exact 11 | tempo 1.05: 8 (20 of 30) | tempo 0.95: (18 of 30)
#   pitch 1.05: 3 (4 of 30) | pitch 0.95: (7 of 30) | pitch 2**(3/36): 10
#   speed 1.05: 3 | speed 0.95: 3 | speed 2**(3/36): 8 | speed 2**(-3/36): 10
# never a wrong reference; 12 out-of-database clips (seeds 5000-5011) score 0. On speech (``long_excerpts``): tempo
# 1.05: 10 of 12, pitch 1.05: 1, speed 1.05: 1, speed 2**(3/36): 11. Panako 1.x looks each query hash up as it is
# (no neighbouring bins or bands are tried), and so does :class:`Panako`: a peak that moves by 2 bins while its
# partners move by 3 changes the hash, and nothing in the design recovers it.

def _found_at(rows: list[dict]) -> list[dict]:
    """Rows found: the right reference, at the right offset (within :data:`OFFSET_TOL_S`)."""
    return [r for r in _found(rows) if abs(r["match"].offset_s - r["offset"]) <= OFFSET_TOL_S]


def _never_wrong(rows: list[dict]) -> bool:
    return all(r["match"].ref_id in (r["ref"], None) for r in rows)


def test_music_tempo_1_05_found_with_its_time_factor(music_answers):
    """The published claim holds for tempo: more than half of the excerpts found at their offset, none given to
    another reference, and each with a time factor closer to 1.05 than to 1 (within 0.025: the factor is a mean
    over a handful of hits whose Δt13 of 20-60 frames is known to a frame) and pitch factor 1."""
    rows = music_answers("tempo", 1.05)
    found = _found_at(rows)
    assert _never_wrong(rows)
    assert len(found) > len(rows) / 2, [r["match"] for r in rows]
    assert all(abs(r["factors"]["time"] - 1.05) < 0.025 for r in found), [r["factors"] for r in found]
    assert all(r["factors"]["pitch"] == pytest.approx(1.0) for r in found)


def test_music_pitch_1_05_misses_most_excerpts(music_answers):
    """The published claim does not hold for pitch: on music, too, a 5 % pitch shift misses the bar of the tempo
    test (more than half found). It is never given to another reference, and an excerpt that is found reports a
    pitch factor within 0.02 of 1.05 (a whole number of bins: 2**(2/36) = 1.039 or 2**(3/36) = 1.059)."""
    rows = music_answers("pitch", 1.05)
    assert _never_wrong(rows)
    assert len(_found(rows)) <= len(rows) / 2, [r["match"] for r in rows]
    assert all(abs(r["factors"]["pitch"] - 1.05) <= 0.02 for r in _found(rows))


def test_music_what_breaks_is_a_shift_by_a_fraction_of_a_bin(music_answers):
    """Resampling (``speed``) scales every frequency by the same factor, with no phase vocoder involved, and Panako
    measures the time factor it brings along. By 2**(3/36), a whole 3 bins, it is found as the whole-bin pitch
    shift of speech is (more than half, with both factors); by 1.05, 2.53 bins, it misses the bar as the pitch
    shift does. What defeats the hash is the fraction of a bin, not the pitch-shifting algorithm."""
    whole = music_answers("speed", 2 ** (3 / 36))
    part = music_answers("speed", 1.05)
    assert _never_wrong(whole) and _never_wrong(part)
    found = _found_at(whole)
    assert len(found) > len(whole) / 2, [r["match"] for r in whole]
    assert all(r["factors"]["pitch"] == pytest.approx(2 ** (3 / 36)) for r in found), [r["factors"] for r in found]
    assert all(abs(r["factors"]["time"] - 2 ** (3 / 36)) < 0.025 for r in found), [r["factors"] for r in found]
    assert len(_found(part)) <= len(part) / 2, [r["match"] for r in part]


def test_out_of_database_music_stays_below_the_published_threshold(music_db):
    """Seeds 5000-5003: music-like clips in no reference, on the same scale, tuning range and sounds as the
    references; none reaches Panako's own ``min_score`` (more than 3 aligned hits)."""
    scores = []
    for seed in range(5000, 5004):
        m = music_db.identify(make_music(seed, QUERY_S), SR)
        assert m.ref_id is None and m.offset_s == 0.0, (seed, m)
        scores.append(m.score)
    assert max(scores) < music_db.params["min_score"], scores


def test_below_min_score_the_score_is_kept_without_a_reference(long_db, long_excerpts):
    ref_id, _, q = long_excerpts[0]
    expected = long_db.identify(q, SR)
    saved = long_db.params["min_score"]
    try:
        long_db.params["min_score"] = expected.score + 1
        m = long_db.identify(q, SR)
        assert m == systems.Match(None, 0.0, expected.score) and long_db.last_factors is not None
        long_db.params["min_score"] = 0.0
        assert long_db.identify(q, SR) == expected and expected.ref_id == ref_id
    finally:
        long_db.params["min_score"] = saved


def test_silence_and_tiny_clips_give_no_match(long_db):
    assert long_db.identify(np.zeros(3 * SR, np.float32), SR) == systems.NO_MATCH
    assert long_db.last_factors is None
    for n in (1, 10, 400, SR):                 # 1 s at 44.1 kHz is 14 frames: no frame is ever examined
        m = long_db.identify(np.random.default_rng(n).standard_normal(n).astype(np.float32) * 0.1, SR)
        assert m.ref_id is None and m.score == 0.0
    codes, times = long_db.fingerprint(np.zeros(SR, np.float32), SR)
    assert codes.size == times.size == 0


def test_bad_query_audio_raises_audio_error(long_db):
    with pytest.raises(AudioError):
        long_db.identify(np.zeros(0, np.float32), SR)
    bad = np.ones(SR, np.float32)
    bad[100] = np.nan
    with pytest.raises(AudioError):
        long_db.identify(bad, SR)
    bad[100] = np.inf
    with pytest.raises(AudioError):
        long_db.fingerprint(bad, SR)
    with pytest.raises(AudioError):
        long_db.identify(np.zeros((SR, 2), np.float32), SR)


def test_bad_reference_audio_and_duplicates(speech_bank):
    s = Panako()
    with pytest.raises(AudioError, match="quiet_ref"):
        s.add("quiet_ref", np.zeros(2 * SR, np.float32), SR)
    with pytest.raises(AudioError, match="nan_ref"):
        s.add("nan_ref", np.full(SR, np.nan, np.float32), SR)
    with pytest.raises(AudioError, match="tiny_ref"):
        s.add("tiny_ref", speech_bank["ref00"][: SR // 2], SR)
    assert len(s) == 0
    s.add("a", speech_bank["ref00"], SR)
    with pytest.raises(ValueError, match="already"):
        s.add("a", speech_bank["ref01"], SR)
    assert s.references() == ["a"] and "a" in s and "b" not in s and len(s) == 1


def test_event_points_triplets_and_fingerprint_shapes(speech_bank):
    s = Panako()
    audio = speech_bank["ref03"]
    ev = s.event_points(audio, SR)
    assert ev.ndim == 2 and ev.shape[1] == 2 and len(ev) > 0
    assert np.all(np.diff(ev[:, 0]) >= 0) and ev[:, 1].min() >= 0 and ev[:, 1].max() < 247   # nothing above 8 kHz
    tr = s.triplets(audio, SR)
    assert tr.shape[1:] == (3, 2) and 0 < len(tr) <= len(ev)                  # at most one per event point
    hop_s = 1536 / 44100
    d12, d23 = (tr[:, 1, 0] - tr[:, 0, 0]) / hop_s, (tr[:, 2, 0] - tr[:, 1, 0]) / hop_s
    assert np.all((d12 > 7.5) & (d12 < 56.5) & (d23 > 7.5) & (d23 < 56.5))
    assert np.all(np.abs(tr[:, 1, 1] - tr[:, 0, 1]) < 31) and np.all(np.abs(tr[:, 2, 1] - tr[:, 1, 1]) < 31)
    codes, times = s.fingerprint(audio, SR)
    assert codes.dtype == np.int64 and np.all((codes >= 0) & (codes < 2**27))
    assert np.array_equal(times, tr[:, 0, 0])


def test_any_sample_rate_is_resampled(long_bank, long_db):
    import librosa

    q = librosa.resample(long_bank["long04"][2 * SR: 22 * SR], orig_sr=SR, target_sr=22050)
    m = long_db.identify(q, 22050)
    assert m.ref_id == "long04" and abs(m.offset_s - 2.0) <= OFFSET_TOL_S


# ---- parameters, persistence, stats -------------------------------------------------------------------------------

@pytest.mark.parametrize("key, value", [("min_score", -1), ("max_filter", 14), ("min_filter", 15),
                                        ("bins_per_octave", 36.5), ("min_contrast", 0.95), ("hop", "1536"),
                                        ("max_cents", 14000), ("min_ratio", 130), ("min_matches", True)])
def test_bad_parameters_raise_value_error_naming_them(key, value):
    with pytest.raises(ValueError, match=key):
        Panako(**{key: value})


def test_unknown_parameter_and_registry():
    with pytest.raises(TypeError, match="bogus"):
        Panako(bogus=1)
    s = systems.get("panako", min_score=3)
    assert isinstance(s, Panako) and s.name == "panako" and s.params["min_score"] == 3.0
    p = s.params
    assert (p["sr"], p["hop"], p["min_cents"], p["max_cents"], p["bins_per_octave"]) == (44100, 1536, 3700, 12200, 36)
    assert s.max_dt_frames == 57 and s.max_df_bins == 31 and s.hash_shift == 31


def test_save_load_same_answers(long_db, long_excerpts, tmp_path):
    path = tmp_path / "sub" / "panako.npz"
    long_db.save(path)
    assert path.is_file() and not list(path.parent.glob(".*tmp*"))
    loaded = systems.load("panako", path)
    assert loaded.params == long_db.params and loaded.references() == long_db.references()
    assert loaded.stats()["fingerprints"] == long_db.stats()["fingerprints"]
    for _, _, q in long_excerpts[:3]:
        assert loaded.identify(q, SR) == long_db.identify(q, SR)
        assert loaded.last_factors == long_db.last_factors
    assert loaded.stats()["file_bytes"] == path.stat().st_size
    with pytest.raises(ValueError, match="panako.npz"):
        systems.load("triplets", path)                         # another system's file is refused


def test_load_errors_name_the_path(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.npz"):
        Panako.load(tmp_path / "missing.npz")
    junk = tmp_path / "junk.npz"
    junk.write_bytes(b"not a database at all")
    with pytest.raises(ValueError, match="junk.npz"):
        Panako.load(junk)
    other = tmp_path / "other.npz"
    np.savez(other, x=np.arange(3))
    with pytest.raises(ValueError, match="other.npz"):
        Panako.load(other)


def test_stats(long_db):
    st = long_db.stats()
    for key in ("name", "references", "fingerprints", "seconds", "bytes", "bits_per_second", "params"):
        assert key in st
    assert st["name"] == "panako" and st["references"] == 12
    assert st["seconds"] == pytest.approx(12 * LONG_S)
    assert st["bytes"] == 16 * st["fingerprints"] > 0
    assert st["bits_per_second"] == pytest.approx(8 * st["bytes"] / st["seconds"])
    assert Panako().stats()["bits_per_second"] == 0.0
