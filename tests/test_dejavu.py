"""Dejavu baseline: the published algorithm step by step, identification, the SQLite database, errors."""

from __future__ import annotations

import hashlib
import pickle
import sqlite3

import numpy as np
import pytest
from scipy.ndimage import binary_erosion, generate_binary_structure, iterate_structure, maximum_filter

from samaf_lib import systems
from samaf_lib.audio import AudioError
from samaf_lib.systems import dejavu as dj
from samaf_lib.systems.base import NO_MATCH, Match
from samaf_lib.systems.dejavu import Dejavu

SR = 16000
HOP = 2048  # the default n_fft 4096 with overlap 0.5


def _build(bank: dict[str, np.ndarray], **params) -> Dejavu:
    system = Dejavu(**params)
    for ref_id, audio in bank.items():
        system.add(ref_id, audio, SR)
    return system


@pytest.fixture(scope="module")
def db(speech_bank) -> Dejavu:
    """The 24 references with the 2019 defaults."""
    return _build(speech_bank)


@pytest.fixture(scope="module")
def db_dt1(speech_bank) -> Dejavu:
    """The 24 references without same-frame pairs (min_hash_time_delta=1).

    eSpeak NG reuses near-identical consonant bursts across utterances and voices; a burst frame holds many
    peaks, and its same-frame pairs (dt = 0) then align across different references. Leaving those pairs out
    shows what the matcher does on speech without that artefact of the generated corpus.
    """
    return _build(speech_bank, min_hash_time_delta=1)


def _excerpts(bank: dict[str, np.ndarray], seed: int, n: int, seconds: float = 5.0):
    """``n`` excerpts of distinct references at random offsets that are not on the frame grid."""
    rng = np.random.default_rng(seed)
    ids = sorted(bank)
    out = []
    for ref_id in rng.choice(ids, size=n, replace=False):
        audio = bank[ref_id]
        max_frame = (audio.size - int(seconds * SR)) // HOP - 1
        start = int(rng.integers(0, max_frame)) * HOP + int(rng.integers(200, HOP - 200))
        out.append((str(ref_id), start / SR, audio[start:start + int(seconds * SR)]))
    return out


def _found(system: Dejavu, excerpts) -> tuple[int, list[float]]:
    hits, scores = 0, []
    for ref_id, offset_s, clip in excerpts:
        m = system.identify(clip, SR)
        hits += m.ref_id == ref_id and abs(m.offset_s - offset_s) <= 0.2
        scores.append(m.score)
    return hits, scores


# ---------------------------------------------------------------------------------------------------------------
# The algorithm, step by step


def test_pair_hash_is_sha1_of_f1_f2_dt_cut_to_20_hex_digits():
    assert dj.hash_pair(123, 1045, 7) == hashlib.sha1(b"123|1045|7").hexdigest()[:20]
    peaks = np.array([[100, 0], [200, 0], [150, 3], [90, 250]])
    hashes, anchors = dj.pair_hashes(peaks, fan_value=15, min_dt=0, max_dt=200)
    expected = [hashlib.sha1(s.encode()).hexdigest()[:20] for s in ("100|200|0", "100|150|3", "200|150|3")]
    assert hashes == expected  # the pairs reaching frame 250 (dt 247 and 250) exceed 200 frames
    assert anchors.tolist() == [0, 0, 0]


def test_pairs_respect_fan_value_and_time_bounds():
    peaks = np.stack([np.arange(10) * 7, np.arange(10)], axis=1)  # one peak per frame
    hashes, anchors = dj.pair_hashes(peaks, fan_value=1)
    assert len(hashes) == 9 and anchors.tolist() == list(range(9))
    hashes, _ = dj.pair_hashes(peaks, fan_value=3)
    assert len(hashes) == 9 + 8 + 7
    hashes, _ = dj.pair_hashes(peaks, fan_value=15, min_dt=2, max_dt=3)
    assert len(hashes) == 8 + 7
    assert dj.pair_hashes(peaks[:1], fan_value=15) == ([], pytest.approx(np.zeros(0)))


def _published_generate_hashes(peaks: list[tuple[int, int]], fan_value: int) -> list[tuple[str, int]]:
    """``generate_hashes`` of worldveil/dejavu's ``fingerprint.py`` (2019), transcribed: peaks as (freq, time)."""
    peaks = sorted(peaks, key=lambda p: p[1])  # PEAK_SORT: a stable sort on time
    out = []
    for i in range(len(peaks)):
        for j in range(1, fan_value):
            if (i + j) < len(peaks):
                freq1, freq2 = peaks[i][0], peaks[i + j][0]
                t1, t2 = peaks[i][1], peaks[i + j][1]
                t_delta = t2 - t1
                if 0 <= t_delta <= 200:  # MIN_HASH_TIME_DELTA, MAX_HASH_TIME_DELTA
                    h = hashlib.sha1(f"{str(freq1)}|{str(freq2)}|{str(t_delta)}".encode("utf-8"))  # noqa: RUF010, UP012
                    out.append((h.hexdigest()[0:20], t1))
    return out


def _published_votes(db_rows: dict[str, set[tuple[str, int]]], query: set[tuple[str, int]]) -> dict:
    """The published matcher: every query (hash, offset) against every stored row of that hash votes for
    (song, db offset - query offset); a song's score is its largest vote count."""
    from collections import Counter

    votes = Counter((song, t_db - t_q) for song, rows in db_rows.items() for h_db, t_db in rows
                    for h_q, t_q in query if h_db == h_q)
    best: dict[str, tuple[int, int]] = {}
    for (song, diff), n in votes.items():
        if song not in best or n > best[song][0]:
            best[song] = (n, diff)
    return best


# Hand-made peaks, (bin, frame), sorted by frame then bin. Frame 8 holds two peaks (a same-frame pair).
_PEAKS_A = [(10, 0), (40, 2), (25, 3), (60, 5), (33, 8), (47, 8), (71, 9), (18, 12), (52, 14)]
# The query: A's peaks from frame 5 on, five frames earlier; song B: the query's peaks from its frame 3 on, two
# frames later.
_PEAKS_Q = [(b, t - 5) for b, t in _PEAKS_A if t >= 5]
_PEAKS_B = [(b, t + 2) for b, t in _PEAKS_Q if t >= 3]


def test_hashes_of_hand_made_peaks_equal_the_published_formula():
    hashes, anchors = dj.pair_hashes(np.array(_PEAKS_A), fan_value=3)
    sha = [hashlib.sha1(s.encode()).hexdigest()[:20] for s in (
        "10|40|2", "10|25|3", "10|60|5",  # each peak with its next three
        "40|25|1", "40|60|3", "40|33|6",
        "25|60|2", "25|33|5", "25|47|5",
        "60|33|3", "60|47|3", "60|71|4",
        "33|47|0", "33|71|1", "33|18|4",  # 33|47|0: the two peaks of frame 8
        "47|71|1", "47|18|4", "47|52|6",
        "71|18|3", "71|52|5",
        "18|52|2")]
    assert hashes == sha
    assert anchors.tolist() == [0] * 3 + [2] * 3 + [3] * 3 + [5] * 3 + [8] * 3 + [8] * 3 + [9] * 2 + [12]
    # The 2019 loop ``for j in range(1, fan_value)`` pairs each peak with the next fan_value - 1 peaks; this port
    # pairs it with the next fan_value (documented in the module), so fan_value 3 here is the published 4.
    assert list(zip(hashes, anchors.tolist())) == _published_generate_hashes(_PEAKS_A, fan_value=4)
    for fan in (1, 2, 5, 15):
        h, a = dj.pair_hashes(np.array(_PEAKS_A), fan_value=fan)
        assert list(zip(h, a.tolist())) == _published_generate_hashes(_PEAKS_A, fan_value=fan + 1)
    # min_hash_time_delta 1 drops exactly the same-frame pair
    h1, _ = dj.pair_hashes(np.array(_PEAKS_A), fan_value=3, min_dt=1)
    assert h1 == [h for h in sha if h != hashlib.sha1(b"33|47|0").hexdigest()[:20]]


def test_votes_of_a_hand_made_match_equal_the_published_histogram(monkeypatch):
    # Feed hand-made peaks through the whole system (hashing, SQLite storage, lookup, voting): each clip is told
    # apart by its length. The query's 6 peaks pair into 3 + 3 + 3 + 2 + 1 = 12 hashes, all of them A's hashes
    # anchored from frame 5 on (the same peaks follow each anchor), so A scores 12 at +5 frames; B holds the
    # query's last 5 peaks, whose 3 + 3 + 2 + 1 = 9 hashes all align at +2 frames.
    rng = np.random.default_rng(0)
    clips = {name: rng.uniform(-0.5, 0.5, SR + i).astype(np.float32) for i, name in enumerate("ABQ")}
    peaks = {clips[k].size: np.array(v, dtype=np.int64) for k, v in zip("ABQ", (_PEAKS_A, _PEAKS_B, _PEAKS_Q))}
    system = Dejavu(fan_value=3, min_score=0)
    monkeypatch.setattr(system, "_peaks", lambda samples, sr: peaks[samples.size])
    system.add("A", clips["A"], SR)
    system.add("B", clips["B"], SR)
    assert system.stats()["fingerprints"] == 21 + 9

    def rows(p):
        h, a = dj.pair_hashes(np.array(p), fan_value=3)
        return set(zip(h, a.tolist()))

    expected = _published_votes({"A": rows(_PEAKS_A), "B": rows(_PEAKS_B)}, rows(_PEAKS_Q))
    assert expected == {"A": (12, 5), "B": (9, 2)}
    cands = system.candidates(clips["Q"], SR, top_k=5)
    assert [(c["ref_id"], c["score"], c["offset_frames"]) for c in cands] == [("A", 12.0, 5), ("B", 9.0, 2)]
    assert cands[0]["offset_s"] == pytest.approx(5 * HOP / SR)
    assert cands[0]["input_confidence"] == 1.0 and cands[0]["fingerprinted_confidence"] == pytest.approx(12 / 21)
    assert system.identify(clips["Q"], SR) == Match("A", 5 * HOP / SR, 12.0)


def test_spectrogram_is_the_psd_in_db_of_matplotlib_specgram(speech_bank):
    mlab = pytest.importorskip("matplotlib.mlab")
    samples = dj.to_int16_scale(speech_bank["ref02"])
    ref = mlab.specgram(samples, NFFT=4096, Fs=SR, window=mlab.window_hanning, noverlap=2048)[0]
    with np.errstate(divide="ignore"):
        ref = 10 * np.log10(ref)
    ref[np.isneginf(ref)] = 0
    ours = dj.spectrogram_db(samples, SR, 4096, HOP)
    assert ours.shape == ref.shape == (2049, 1 + (samples.size - 4096) // HOP)
    np.testing.assert_allclose(ours, ref, atol=1e-6)


def test_int16_scale_rounds_and_clips():
    out = dj.to_int16_scale(np.array([0.0, 0.5, -1.0, 1.0, 2.0, 1e-6]))
    assert out.tolist() == [0.0, 16384.0, -32768.0, 32767.0, 32767.0, 0.0]


@pytest.mark.parametrize("shape", [(2049, 61), (2049, 6), (300, 1), (7, 3), (1, 1)])
def test_diamond_max_equals_maximum_filter_with_the_diamond_footprint(shape):
    spec = np.random.default_rng(sum(shape)).normal(size=shape)
    footprint = iterate_structure(generate_binary_structure(2, 1), 20)
    assert footprint.shape == (41, 41)
    np.testing.assert_array_equal(dj.diamond_max(spec, 20), maximum_filter(spec, footprint=footprint))


def _literal_peaks(spec: np.ndarray, size: int, amp_min: float) -> np.ndarray:
    """The peak rule as published: local maximum XOR eroded background, then amplitude > amp_min."""
    footprint = iterate_structure(generate_binary_structure(2, 1), size)
    local_max = maximum_filter(spec, footprint=footprint) == spec
    eroded = binary_erosion(spec == 0, structure=footprint, border_value=1)
    detected = (local_max ^ eroded) & (spec > amp_min)
    freq, frame = np.nonzero(detected)
    order = np.lexsort((freq, frame))
    return np.stack([freq[order], frame[order]], axis=1)


@pytest.mark.parametrize("amp_min", [10.0, -30.0])
def test_find_peaks_follows_the_published_rule(speech_bank, amp_min):
    audio = speech_bank["ref04"].copy()
    audio[20000:40000] = 0.0  # a stretch of digital silence: a zero background
    spec = dj.spectrogram_db(dj.to_int16_scale(audio), SR)
    ours = dj.find_peaks(spec, 20, amp_min)
    assert len(ours) > 20
    np.testing.assert_array_equal(ours, _literal_peaks(spec, 20, amp_min))


def test_peaks_computed_in_blocks_equal_the_whole(speech_bank, monkeypatch):
    system = Dejavu()
    samples = dj.to_int16_scale(np.concatenate([speech_bank["ref05"], speech_bank["ref06"]]))
    whole = dj.find_peaks(dj.spectrogram_db(samples, SR))
    monkeypatch.setattr(dj, "BLOCK_FRAMES", 9)
    np.testing.assert_array_equal(system._peaks(samples, SR), whole)


def test_fingerprint_codes_and_times(speech_bank):
    system = Dejavu()
    audio = speech_bank["ref07"]
    codes, times = system.fingerprint(audio, SR)
    hashes, anchors = system._hashes(dj.to_int16_scale(audio), SR)
    assert codes.dtype == np.uint64 and times.dtype == np.float64
    assert codes.shape == times.shape == (len(hashes),) and len(hashes) > 100
    assert codes.tolist() == [int(h[:16], 16) for h in hashes]
    np.testing.assert_allclose(times, anchors * HOP / SR)
    assert np.all(np.diff(times) >= 0) and times.max() < audio.size / SR
    short_codes, short_times = system.fingerprint(audio[:1600], SR)
    assert short_codes.size == short_times.size == 0


# ---------------------------------------------------------------------------------------------------------------
# Identification


def test_excerpts_on_the_frame_grid_are_found_at_the_exact_offset(db, speech_bank):
    rng = np.random.default_rng(3)
    for ref_id in ["ref00", "ref03", "ref06", "ref10", "ref15", "ref20"]:
        start = int(rng.integers(1, 20)) * HOP
        m = db.identify(speech_bank[ref_id][start:start + 5 * SR], SR)
        assert m.ref_id == ref_id
        assert m.offset_s == pytest.approx(start / SR, abs=1e-9)


def _ref_rows(audio: np.ndarray, **params) -> set[tuple[str, int]]:
    """The distinct ``(hash, anchor frame)`` rows Dejavu stores for ``audio``, from the module functions."""
    p = Dejavu(**params).params
    hop = p["n_fft"] - int(p["n_fft"] * p["overlap_ratio"])
    peaks = dj.find_peaks(dj.spectrogram_db(dj.to_int16_scale(audio), SR, p["n_fft"], hop), p["neighborhood_size"],
                          p["amp_min"])
    hashes, anchors = dj.pair_hashes(peaks, p["fan_value"], p["min_hash_time_delta"], p["max_hash_time_delta"])
    return set(zip(hashes, anchors.tolist()))


def test_whole_reference_on_the_grid_aligns_every_stored_fingerprint(db, speech_bank):
    # The query is the reference itself: its rows are the stored rows, and at offset 0 each one meets itself.
    # At any fixed offset a query row can meet at most one stored row of a reference, so nothing scores more.
    for ref_id in ["ref01", "ref09", "ref17"]:
        c = db.candidates(speech_bank[ref_id], SR, top_k=1)[0]
        assert (c["ref_id"], c["offset_frames"]) == (ref_id, 0)
        assert c["score"] == len(_ref_rows(speech_bank[ref_id])) and c["fingerprinted_confidence"] == 1.0


@pytest.mark.parametrize("hops", [1, 2, 3])
def test_excerpt_shifted_by_whole_hops_keeps_every_fingerprint_away_from_its_start(db, speech_bank, hops):
    # The query R[hops * HOP:] has frames that are exactly the reference frames hops, hops + 1, ... A peak is the
    # maximum over +-neighborhood_size frames, so every peak at least neighborhood_size frames after the cut sees
    # the same neighbourhood in both; a hash anchored at frame t pairs it with the peaks that follow it (frame >= t),
    # so every reference row anchored at frame >= hops + neighborhood_size is also a query row at the same offset.
    # Hence: found at exactly ``hops`` hops, and with at least that many aligned hashes (at most the query's rows).
    margin = db.params["neighborhood_size"]
    for ref_id in ["ref02", "ref11", "ref20"]:
        audio = speech_bank[ref_id]
        query = audio[hops * HOP:]
        c = db.candidates(query, SR, top_k=1)[0]
        assert c["ref_id"] == ref_id and c["offset_frames"] == hops
        assert c["offset_s"] == pytest.approx(hops * HOP / SR, abs=1e-12)
        guaranteed = sum(t >= hops + margin for _, t in _ref_rows(audio))
        assert guaranteed > 0
        assert guaranteed <= c["score"] <= len(_ref_rows(query))


def test_long_excerpts_half_a_hop_off_the_grid_are_found_far_above_chance(db, db_dt1, speech_bank):
    # Half a hop off the grid every query frame shares 3/4 of its samples with each of two reference frames, so
    # peaks survive only approximately and a hash needs both of its peaks exactly; no count follows from the
    # algorithm. What does follow: (1) an offset is a difference of frame indices, so the true alignment of a copy
    # starting half a hop into its reference is frame 0 or frame 1 (an error of exactly half a hop); (2) leaving
    # out the same-frame pairs keeps a subset of every clip's pairs (each peak has the same partners), so no
    # alignment gains a vote; (3) the true reference still shares pairs with a 7.9-s copy, so it is found at the
    # true alignment far more often than a chance pick of one of 24 references would be (and a chance pick would
    # also need the right offset): the bar is the smallest count such a pick reaches with probability below 1e-6.
    from scipy.stats import binom

    ids = sorted(speech_bank)
    bar = int(np.argmax(binom.sf(np.arange(len(ids)), len(ids), 1 / len(ids)) < 1e-6)) + 1
    found = {"defaults": 0, "dt1": 0}
    for ref_id in ids:
        query = speech_bank[ref_id][HOP // 2:]
        full = db.candidates(query, SR, top_k=len(ids))
        no_same = db_dt1.candidates(query, SR, top_k=len(ids))
        best_full = {c["ref_id"]: c["score"] for c in full}
        assert all(c["score"] <= best_full.get(c["ref_id"], -1.0) for c in no_same)
        for name, cands in (("defaults", full), ("dt1", no_same)):
            top = cands[0]
            if top["ref_id"] == ref_id and top["offset_frames"] in (0, 1):
                assert abs(top["offset_s"] - HOP / 2 / SR) == pytest.approx(HOP / 2 / SR)
                found[name] += 1
    assert found["defaults"] >= bar and found["dt1"] >= bar, (found, bar)


def test_outside_speech_is_rejected_with_the_default_min_score(db_dt1, speech_bank, outside_speech):
    assert db_dt1.params["min_score"] == Dejavu().params["min_score"] == 5.0
    m = db_dt1.identify(outside_speech, SR)
    assert m.ref_id is None and m.offset_s == 0.0
    _, pos_scores = _found(db_dt1, _excerpts(speech_bank, seed=5, n=8))
    assert m.score * 5 < np.median(pos_scores)


def test_min_score_zero_returns_the_best_candidate(db_dt1, outside_speech, monkeypatch):
    # Speech that is in no reference still shares a few pairs with some of them: a candidate scoring under the
    # default min_score (5), rejected by default, returned as it is with min_score 0.
    cands = db_dt1.candidates(outside_speech, SR, top_k=3)
    assert cands, "expected at least one chance alignment of outside speech with 24 references"
    top = cands[0]
    assert 0 < top["score"] < db_dt1.params["min_score"]
    assert db_dt1.identify(outside_speech, SR) == Match(None, 0.0, top["score"])
    monkeypatch.setitem(db_dt1.params, "min_score", 0.0)
    assert db_dt1.identify(outside_speech, SR) == Match(top["ref_id"], top["offset_s"], top["score"])
    assert [c["score"] for c in cands] == sorted((c["score"] for c in cands), reverse=True)
    assert len({c["ref_id"] for c in cands}) == len(cands)
    assert 0 < top["input_confidence"] <= 1 and 0 < top["fingerprinted_confidence"] <= 1


def test_silence_and_short_clips_give_no_match(db):
    assert db.identify(np.zeros(5 * SR, dtype=np.float32), SR) == NO_MATCH
    assert db.identify(np.full(5 * SR, 1e-7, dtype=np.float32), SR) == NO_MATCH
    clip = np.random.default_rng(0).uniform(-0.5, 0.5, int(0.1 * SR)).astype(np.float32)
    m = db.identify(clip, SR)
    assert m.ref_id is None and m == NO_MATCH


def test_query_at_another_rate_is_brought_to_the_database_rate(db, speech_bank):
    from samaf_lib.audio import resample

    start = 5 * HOP
    clip = resample(speech_bank["ref08"][start:start + 5 * SR], SR, 22050)
    m = db.identify(clip, 22050)
    assert m.ref_id == "ref08" and m.offset_s == pytest.approx(start / SR, abs=0.2)


def test_empty_no_database_gives_no_match(speech_bank):
    assert Dejavu().identify(speech_bank["ref00"][: 5 * SR], SR) == NO_MATCH


# ---------------------------------------------------------------------------------------------------------------
# Bad input


@pytest.mark.parametrize("bad", [np.zeros(0, np.float32), np.full(SR, np.nan, np.float32),
                                 np.array([0.1, np.inf] * SR, np.float32), np.zeros((SR, 2), np.float32)],
                         ids=["empty", "nan", "inf", "stereo"])
def test_bad_audio_raises_audio_error(db, bad):
    with pytest.raises(AudioError):
        db.identify(bad, SR)
    with pytest.raises(AudioError):
        db.fingerprint(bad, SR)
    with pytest.raises(AudioError, match="newref"):
        Dejavu().add("newref", bad, SR)


def test_bad_references(speech_bank):
    system = Dejavu()
    system.add("a", speech_bank["ref00"], SR)
    with pytest.raises(ValueError, match="already"):
        system.add("a", speech_bank["ref01"], SR)
    with pytest.raises(AudioError, match="silent"):
        system.add("quiet", np.zeros(3 * SR, np.float32), SR)
    with pytest.raises(AudioError, match="short"):
        system.add("short", speech_bank["ref02"][:4000], SR)
    with pytest.raises(ValueError, match="ref_id"):
        system.add("", speech_bank["ref02"], SR)
    assert system.references() == ["a"] and len(system) == 1 and "a" in system and "quiet" not in system


@pytest.mark.parametrize("params, name", [
    ({"fan_value": 0}, "fan_value"), ({"fan_value": -3}, "fan_value"), ({"fan_value": 2.5}, "fan_value"),
    ({"fan_value": True}, "fan_value"), ({"n_fft": 4095}, "n_fft"), ({"n_fft": "4096"}, "n_fft"),
    ({"overlap_ratio": 1.0}, "overlap_ratio"), ({"overlap_ratio": -0.1}, "overlap_ratio"),
    ({"amp_min": float("nan")}, "amp_min"), ({"neighborhood_size": 0}, "neighborhood_size"),
    ({"min_hash_time_delta": -1}, "min_hash_time_delta"),
    ({"min_hash_time_delta": 5, "max_hash_time_delta": 4}, "max_hash_time_delta"),
    ({"fingerprint_reduction": 15}, "fingerprint_reduction"), ({"fingerprint_reduction": 42}, "fingerprint_reduction"),
    ({"min_score": -1}, "min_score"),
])
def test_bad_parameters_raise_value_error_naming_them(params, name):
    with pytest.raises(ValueError, match=name):
        Dejavu(**params)


def test_unknown_parameter_and_registry():
    with pytest.raises(TypeError, match="fan"):
        systems.get("dejavu", fan=3)
    system = systems.get("dejavu", fan_value=5)
    assert isinstance(system, Dejavu) and system.name == "dejavu" and system.params["fan_value"] == 5
    assert Dejavu().params == {"n_fft": 4096, "overlap_ratio": 0.5, "fan_value": 15, "amp_min": 10.0,
                               "neighborhood_size": 20, "min_hash_time_delta": 0, "max_hash_time_delta": 200,
                               "fingerprint_reduction": 20, "min_score": 5.0}
    assert Dejavu().hop == HOP


# ---------------------------------------------------------------------------------------------------------------
# The database


def _queries(bank):
    return [clip for _, _, clip in _excerpts(bank, seed=21, n=6)] + [np.zeros(SR, np.float32)]


def test_save_and_load_give_the_same_answers(speech_bank, outside_speech, tmp_path):
    system = _build({k: speech_bank[k] for k in sorted(speech_bank)[:10]}, min_score=7, fan_value=10)
    path = tmp_path / "db" / "dejavu.sqlite"
    system.save(path)
    loaded = Dejavu.load(path)
    assert loaded.params == system.params and loaded.params["min_score"] == 7
    assert loaded.references() == system.references()
    stats = system.stats()
    assert loaded.stats() == stats and stats["file_bytes"] == path.stat().st_size
    assert stats["references"] == 10 and stats["seconds"] == pytest.approx(80.0)
    assert stats["bytes"] == stats["fingerprints"] * (10 + 4 + 4)  # 20 hex digits of hash, reference id, offset
    assert stats["bits_per_second"] == pytest.approx(8 * 10 * stats["fingerprints"] / 80.0)
    for q in _queries(speech_bank) + [outside_speech]:
        assert loaded.identify(q, SR) == system.identify(q, SR)
    assert systems.load("dejavu", path).identify(outside_speech, SR) == system.identify(outside_speech, SR)
    # a loaded database keeps growing like a new one
    loaded.add("ref23", speech_bank["ref23"], SR)
    assert loaded.identify(speech_bank["ref23"][HOP:HOP + 5 * SR], SR).ref_id == "ref23"
    assert [p.name for p in path.parent.iterdir()] == ["dejavu.sqlite"]  # no temp file left behind


def test_pickle_round_trip(speech_bank):
    system = _build({k: speech_bank[k] for k in ["ref00", "ref01", "ref02"]})
    copy = pickle.loads(pickle.dumps(system))
    assert copy.references() == system.references() and copy.stats() == system.stats()
    for q in _queries({k: speech_bank[k] for k in sorted(speech_bank)[:6]}):
        assert copy.identify(q, SR) == system.identify(q, SR)


def test_database_file_has_dejavus_schema(db, tmp_path):
    path = tmp_path / "dejavu.sqlite"
    db.save(path)
    con = sqlite3.connect(path)
    try:
        tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        assert {"songs", "fingerprints", "meta"} <= tables
        indexes = {r[1]: (r[2], r[3]) for r in con.execute("PRAGMA index_list(fingerprints)")}  # name: (unique, origin)
        index_cols = {name: [c[2] for c in con.execute(f"PRAGMA index_info({name})")] for name in indexes}
        assert ["hash"] in index_cols.values()
        unique = [cols for name, cols in index_cols.items() if indexes[name][0] == 1]
        assert ["song_id", "offset", "hash"] in unique
        n_rows, n_bad = con.execute("SELECT COUNT(*), SUM(length(hash) != 10) FROM fingerprints").fetchone()
        assert n_rows == db.stats()["fingerprints"] and n_bad == 0
        songs = con.execute("SELECT song_name, fingerprinted, total_hashes, sample_rate, file_sha1 FROM songs "
                            "ORDER BY song_id").fetchall()
        assert [s[0] for s in songs] == db.references()
        assert all(s[1] == 1 and s[3] == SR and len(s[4]) == 40 for s in songs)
        assert sum(s[2] for s in songs) == n_rows
        with pytest.raises(sqlite3.IntegrityError):  # the unique key (song_id, offset, hash)
            con.execute('INSERT INTO fingerprints (hash, song_id, "offset") '
                        'SELECT hash, song_id, "offset" FROM fingerprints LIMIT 1')
    finally:
        con.close()


def test_corrupt_missing_or_foreign_files(db, tmp_path):
    junk = tmp_path / "junk.sqlite"
    junk.write_bytes(np.random.default_rng(0).bytes(50_000))
    with pytest.raises(ValueError, match=r"junk\.sqlite.*not a Dejavu database"):
        Dejavu.load(junk)
    with pytest.raises(FileNotFoundError, match="nothere"):
        Dejavu.load(tmp_path / "nothere.sqlite")
    other = tmp_path / "other.sqlite"
    con = sqlite3.connect(other)
    con.execute("CREATE TABLE songs (x INTEGER)")
    con.commit()
    con.close()
    with pytest.raises(ValueError, match="not a Dejavu database"):
        Dejavu.load(other)
    good = tmp_path / "good.sqlite"
    db.save(good)
    data = good.read_bytes()
    cut = tmp_path / "cut.sqlite"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="not a Dejavu database"):
        Dejavu.load(cut)
