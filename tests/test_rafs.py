"""RAFS (Haitsma & Kalker 2002): extraction formula, search, rejection, persistence and input checks."""

from __future__ import annotations

import numpy as np
import pytest

from samaf_lib import systems
from samaf_lib.audio import AudioError
from samaf_lib.systems import rafs as rafs_module
from samaf_lib.systems.base import Match
from samaf_lib.systems.rafs import RAFS, band_edges, ber, bit_image, energy_bits, pack_bits, unpack_bits

SR = 16000


@pytest.fixture(scope="module")
def rafs(speech_bank) -> RAFS:
    s = RAFS()
    for ref_id, audio in speech_bank.items():
        s.add(ref_id, audio, SR)
    return s



def _placeholder(n: int) -> np.ndarray:
    """Audio that passes the input checks (not silent, not constant); the tests that use it fake the extraction,
    so its content does not matter, only its length."""
    return (0.1 * np.sin(np.arange(n) * 0.05)).astype(np.float32)

def _excerpt(audio: np.ndarray, seconds: float, rng: np.random.Generator) -> tuple[np.ndarray, float]:
    n = int(seconds * SR)
    start = int(rng.integers(1, audio.size - n))  # any sample: off the 64-sample hop grid at 5512 Hz
    return audio[start: start + n].copy(), start / SR


def _add_noise(x: np.ndarray, snr_db: float, rng: np.random.Generator) -> np.ndarray:
    noise = rng.standard_normal(x.size)
    scale = np.sqrt(np.mean(x.astype(np.float64) ** 2) / 10 ** (snr_db / 10) / np.mean(noise ** 2))
    return (x + scale * noise).astype(np.float32)


# ------------------------------------------------------------------------------------------ extraction


def test_bit_formula_on_hand_made_energies():
    # Two frames, three bands: frame differences along frequency are (3, -2) then (-1, 2).
    e = np.array([[4.0, 1.0, 3.0],
                  [1.0, 2.0, 0.0]])
    bits, rel = energy_bits(e)
    # (-1 - 3) = -4 -> 0 ; (2 - (-2)) = 4 -> 1
    assert bits.tolist() == [[False, True]]
    assert rel.tolist() == [[4.0, 4.0]]
    # A difference of exactly zero gives bit 0 (the paper's "> 0").
    bits0, rel0 = energy_bits(np.array([[1.0, 1.0], [2.0, 2.0]]))
    assert bits0.tolist() == [[False]] and rel0.tolist() == [[0.0]]


def test_bits_match_the_formula_and_pack_msb_first():
    rng = np.random.default_rng(0)
    e = rng.random((5, 33))
    bits, rel = energy_bits(e)
    assert bits.shape == rel.shape == (4, 32)
    for n in range(1, 5):
        for m in range(32):
            d = e[n, m] - e[n, m + 1] - (e[n - 1, m] - e[n - 1, m + 1])
            assert bits[n - 1, m] == (d > 0)
            assert rel[n - 1, m] == pytest.approx(abs(d))
    codes = pack_bits(bits)
    assert codes.dtype == np.uint32
    assert np.array_equal(unpack_bits(codes), bits.astype(np.uint8))
    only_first = np.zeros((1, 32), bool)
    only_first[0, 0] = True
    assert int(pack_bits(only_first)[0]) == 1 << 31


def test_bands_are_log_spaced_and_non_empty():
    sr, n_fft = 5512, 2048
    edges = band_edges(sr, n_fft, 300.0, 2000.0)
    # 33 bands (34 edges) between 300 and 2000 Hz give 32 band differences: 32 bits (Haitsma & Kalker, 4.2).
    assert edges.shape == (34,)
    assert np.all(np.diff(edges) >= 1)  # every band holds at least one FFT bin
    # The ideal edges are 300 * r**m with one ratio r = (2000 / 300) ** (1 / 33); each edge is the first FFT bin at
    # or above its ideal frequency, so it lies within one bin above it.
    ratio = (2000.0 / 300.0) ** (1 / 33)
    ideal = 300.0 * ratio ** np.arange(34) * n_fft / sr  # in bins
    assert np.all(edges >= ideal - 1e-6) and np.all(edges < ideal + 1)
    # Hence consecutive edges keep the constant ratio up to one bin of rounding on each edge.
    measured = edges[1:] / edges[:-1]
    # with x <= e < x + 1 on both edges and x_next = r * x: r * x / (x + 1) <= e_next / e < r * (x_next + 1) / x_next
    tol = np.maximum(1 / ideal[1:], 1 / (ideal[:-1] + 1))
    assert np.all(np.abs(measured / ratio - 1) <= tol)
    assert tol.max() < 0.02 and ratio - 1 > 0.05  # the tolerance is tighter than the step: linear spacing fails
    linear = np.linspace(edges[0], edges[-1], 34)
    assert not np.all(np.abs(linear[1:] / linear[:-1] / ratio - 1) <= tol)
    # band energies of a clip: 33 columns, and the band of each bin as the edges say
    x = np.random.default_rng(0).standard_normal(3 * sr)
    e = rafs_module.band_energies(x, sr, n_fft, 64)
    assert e.shape[1] == 33 and np.all(e > 0)
    codes, rel, _ = rafs_module.subfingerprints(x, sr)
    assert rel.shape == (codes.size, 32)
    # an FFT whose bins (86 Hz at 64 points) are wider than the narrowest bands (17.8 Hz) would leave bands
    # without a bin: refused
    with pytest.raises(ValueError, match="no FFT bin"):
        band_edges(sr, 64, 300.0, 2000.0)


def test_fingerprint_shapes_rate_and_bit_image(speech_bank):
    s = RAFS()
    codes, times = s.fingerprint(speech_bank["ref00"], SR)
    n5512 = int(np.ceil(8.0 * 5512))
    assert codes.dtype == np.uint32 and times.dtype == np.float64
    assert codes.size == times.size == (n5512 - 2048) // 64
    assert np.allclose(np.diff(times), 64 / 5512)
    img = bit_image(speech_bank["ref00"], SR)
    assert img.shape == (codes.size, 32) and img.dtype == np.uint8 and set(np.unique(img)) <= {0, 1}
    assert np.array_equal(pack_bits(img.astype(bool)), codes)
    assert 0.2 < img.mean() < 0.8  # speech gives a mix of ones and zeros
    # Same clip at 22.05 kHz gives nearly the same bits (resampled internally to 5512 Hz).
    from samaf_lib.audio import resample
    c2, _ = s.fingerprint(resample(speech_bank["ref00"], SR, 22050), 22050)
    n = min(c2.size, codes.size)
    assert ber(codes[:n], c2[:n]) < 0.05


def test_ber():
    a = np.array([0, 0xFFFFFFFF], dtype=np.uint32)
    assert ber(a, a) == 0.0
    assert ber(a, a ^ np.uint32(1)) == pytest.approx(2 / 64)
    assert ber(np.zeros(1, np.uint32), np.array([0xFFFFFFFF], np.uint32)) == 1.0
    with pytest.raises(ValueError):
        ber(a, a[:1])


def test_too_short_and_silent_clips_give_no_subfingerprints():
    codes, rel, quiet = rafs_module.subfingerprints(np.zeros(1000, np.float32) + 0.1, SR)
    assert codes.size == 0 and rel.shape == (0, 32) and quiet.size == 0
    _, _, quiet = rafs_module.subfingerprints(np.zeros(SR, np.float32), SR)
    assert quiet.all()


# ---------------------------------------------------------------------------------------------- search


def test_exact_excerpts_are_found_with_offset(rafs, speech_bank):
    rng = np.random.default_rng(1)
    for ref_id in ["ref00", "ref05", "ref11", "ref17", "ref23"]:
        q, t0 = _excerpt(speech_bank[ref_id], 5.0, rng)
        m = rafs.identify(q, SR)
        assert m.ref_id == ref_id
        assert abs(m.offset_s - t0) < 0.2
        assert m.score > 0.9  # BER well under 0.1 for a clean copy


def test_excerpts_under_20db_white_noise_are_found(rafs, speech_bank):
    rng = np.random.default_rng(2)
    hits = 0
    for ref_id in ["ref01", "ref04", "ref09", "ref14", "ref20"]:
        q, t0 = _excerpt(speech_bank[ref_id], 5.0, rng)
        m = rafs.identify(_add_noise(q, 20.0, rng), SR)
        hits += m.ref_id == ref_id and abs(m.offset_s - t0) < 0.2
    assert hits >= 4


def test_one_second_query_shorter_than_a_block(rafs, speech_bank):
    rng = np.random.default_rng(3)
    for ref_id in ["ref02", "ref08", "ref15"]:
        q, t0 = _excerpt(speech_bank[ref_id], 1.0, rng)
        m = rafs.identify(q, SR)
        assert m.ref_id == ref_id and abs(m.offset_s - t0) < 0.2


def test_query_longer_than_a_block_and_running_past_the_start(rafs, speech_bank, outside_speech):
    m = rafs.identify(speech_bank["ref06"], SR)  # 8 s: three blocks
    assert m.ref_id == "ref06" and abs(m.offset_s) < 0.05 and m.score > 0.95
    # 0.5 s of other speech, then the first 3 s of ref10: the query starts 0.5 s before the reference.
    q = np.concatenate([outside_speech[: SR // 2], speech_bank["ref10"][: 3 * SR]])
    m = rafs.identify(q, SR)
    assert m.ref_id == "ref10" and abs(m.offset_s + 0.5) < 0.2


def test_silence_and_too_short_queries_give_no_match(rafs, speech_bank):
    assert rafs.identify(np.zeros(5 * SR, np.float32), SR) == Match(None, 0.0, 0.0)
    assert rafs.identify(np.full(3 * SR, 1e-6, np.float32), SR).ref_id is None
    short = speech_bank["ref00"][: int(0.3 * SR)]  # under frame + hop = 0.383 s
    assert rafs.identify(short, SR) == Match(None, 0.0, 0.0)


def test_outside_speech_is_rejected_by_default_but_scored_with_min_score_zero(rafs, speech_bank,
                                                                             outside_speech):
    for start in (0, 1, 2, 3):
        q = outside_speech[start * SR: (start + 5) * SR]
        assert rafs.identify(q, SR).ref_id is None
    open_system = RAFS(min_score=0.0)
    for ref_id in speech_bank:
        open_system.add(ref_id, speech_bank[ref_id], SR)
    scores = [open_system.identify(outside_speech[s * SR: (s + 5) * SR], SR) for s in (0, 1, 2, 3)]
    # with no threshold the best candidate, if any lookup hit at all, comes back with its (low) score
    assert all(m.ref_id is None or 0.0 < m.score < 0.65 for m in scores)
    assert any(m.ref_id is not None for m in scores)


def test_exact_lookup_only_still_finds_a_clean_copy(speech_bank):
    s = RAFS(flip_bits=0)
    for ref_id in ["ref00", "ref01", "ref02"]:
        s.add(ref_id, speech_bank[ref_id], SR)
    q, t0 = _excerpt(speech_bank["ref01"], 3.0, np.random.default_rng(4))
    m = s.identify(q, SR)
    assert m.ref_id == "ref01" and abs(m.offset_s - t0) < 0.2


def _fake_extraction(system: RAFS, monkeypatch, table: dict[int, tuple[np.ndarray, np.ndarray]]) -> None:
    """Make ``system`` take hand-made sub-fingerprints: a clip of n samples gets ``table[n]`` (codes, reliability)."""
    def extract(audio, sr):
        codes, rel = table[audio.size]
        return codes, rel, np.zeros(codes.size, bool)
    monkeypatch.setattr(system, "_extract", extract)


def _flip(codes: np.ndarray, positions: list[np.ndarray]) -> np.ndarray:
    """``codes`` with bit ``positions[i]`` (0 = most significant) of sub-fingerprint ``i`` toggled."""
    out = codes.copy()
    for i, pos in enumerate(positions):
        for b in pos:
            out[i] ^= np.uint32(1) << np.uint32(31 - int(b))
    return out


@pytest.mark.parametrize("target_ber, found", [(0.33, True), (0.37, False)])
def test_block_near_the_ber_threshold(monkeypatch, target_ber, found):
    # A 256-sub-fingerprint block copied from a reference with bits toggled at a controlled BER. 32 of its
    # sub-fingerprints have 2 bits toggled among their 3 least reliable ones, so the candidate is found only by the
    # lookup with flip_bits 3 (no sub-fingerprint of the block is exact); the other 224 carry the rest of the
    # errors. The paper's threshold is BER 0.35: score = 1 - BER >= min_score 0.65 is accepted.
    rng = np.random.default_rng(7)
    n_ref, start, block = 3000, 1234, 256
    refs = {f"r{i}": rng.integers(0, 2 ** 32, n_ref, dtype=np.uint32) for i in range(4)}
    clean = refs["r2"][start: start + block]
    rel = rng.random((block, 32)) + 1.0
    weak = rng.permuted(np.tile(np.arange(32), (block, 1)), axis=1)[:, :3]
    rel[np.arange(block)[:, None], weak] = rng.random((block, 3)) * 0.5  # the 3 least reliable bits
    guided = np.arange(0, block, 8)  # 32 sub-fingerprints reachable by flipping their weak bits
    errors = round(target_ber * block * 32)
    rest = errors - 2 * guided.size
    others = np.setdiff1d(np.arange(block), guided)
    per_code = np.full(others.size, rest // others.size)
    per_code[: rest % others.size] += 1
    positions: list[np.ndarray] = [np.zeros(0, int)] * block
    for i in guided:
        positions[i] = weak[i, :2]
    for i, k in zip(others, per_code):
        positions[i] = rng.choice(32, int(k), replace=False)
    query = _flip(clean, positions)
    assert not np.isin(query, clean).any()  # no exact sub-fingerprint: the candidate comes from the flips
    assert ber(query, clean) == errors / (block * 32)
    assert abs(ber(query, clean) - target_ber) < 1e-4

    sr = 5512
    table = {30000 + i: (codes, np.ones((n_ref, 32))) for i, codes in enumerate(refs.values())}
    table[20000] = (query, rel)

    def build(**params) -> RAFS:
        s = RAFS(**params)
        _fake_extraction(s, monkeypatch, table)
        for i, ref_id in enumerate(refs):
            s.add(ref_id, _placeholder(30000 + i), sr)
        return s

    q_audio = np.full(20000, 0.1, np.float32)
    system = build()
    assert system.params["min_score"] == 0.65 and system.params["flip_bits"] == 3
    m = system.identify(q_audio, sr)
    # the same alignment, with the threshold lifted: rejection comes from the threshold, not from the lookup
    open_m = build(min_score=0.0).identify(q_audio, sr)
    assert open_m.ref_id == "r2" and open_m.offset_s == pytest.approx(start * 64 / sr)
    assert open_m.score == pytest.approx(1 - errors / (block * 32))
    if found:
        assert m == open_m and m.score >= 0.65
    else:
        assert m == Match(None, 0.0, 0.0) and open_m.score < 0.65
    # exact lookup alone finds no candidate at all
    assert build(flip_bits=0, min_score=0.0).identify(q_audio, sr) == Match(None, 0.0, 0.0)


def test_flip_bits_up_to_ten_as_the_paper(monkeypatch):
    # Haitsma & Kalker toggle up to the 10 least reliable bits (1024 lookups per sub-fingerprint). A block whose
    # every sub-fingerprint differs from the reference in 6 of its 10 weakest bits is found with flip_bits 10 and
    # not with 5 (a lookup with k flips reaches only codes whose errors all lie among the k weakest bits).
    rng = np.random.default_rng(3)
    ref = rng.integers(0, 2 ** 32, 2000, dtype=np.uint32)
    start, block = 700, 64
    rel = rng.random((block, 32)) + 1.0
    order = rng.permuted(np.tile(np.arange(32), (block, 1)), axis=1)
    rel[np.arange(block)[:, None], order[:, :10]] = np.linspace(0.05, 0.5, 10)[None, :]  # 10 weakest bits
    query = _flip(ref[start: start + block], [order[i, rng.choice(10, 6, replace=False)] for i in range(block)])
    table = {30000: (ref, np.ones((ref.size, 32))), 20000: (query, rel)}
    hits = {}
    for k in (5, 10):
        s = RAFS(flip_bits=k)
        assert s.params["flip_bits"] == k
        _fake_extraction(s, monkeypatch, table)
        s.add("ref", _placeholder(30000), 5512)
        hits[k] = s.identify(np.full(20000, 0.1, np.float32), 5512)
    assert hits[5] == Match(None, 0.0, 0.0)
    assert hits[10].ref_id == "ref" and hits[10].offset_s == pytest.approx(start * 64 / 5512)
    assert hits[10].score == pytest.approx(1 - 6 / 32)
    with pytest.raises(ValueError, match="flip_bits"):
        RAFS(flip_bits=13)


# ------------------------------------------------------------------------------------ persistence, API


def test_save_load_gives_same_answers(rafs, speech_bank, outside_speech, tmp_path):
    path = tmp_path / "db" / "rafs.npz"
    rafs.save(path)
    assert path.is_file() and not [p for p in path.parent.iterdir() if p.name != "rafs.npz"]
    loaded = systems.load("rafs", path)
    assert isinstance(loaded, RAFS) and loaded.params == rafs.params
    assert loaded.references() == rafs.references() and len(loaded) == 24 and "ref03" in loaded
    assert loaded.stats() == rafs.stats()
    rng = np.random.default_rng(5)
    queries = [_excerpt(speech_bank[r], 3.0, rng)[0] for r in ("ref03", "ref12", "ref21")]
    queries.append(outside_speech[: 3 * SR])
    for q in queries:
        assert loaded.identify(q, SR) == rafs.identify(q, SR)


def test_corrupt_and_missing_files(tmp_path):
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"not a zip file at all")
    with pytest.raises(ValueError, match="bad.npz"):
        RAFS.load(bad)
    other = tmp_path / "other.npz"
    np.savez(other, x=np.arange(3))
    with pytest.raises(ValueError, match="other.npz"):
        RAFS.load(other)
    with pytest.raises(FileNotFoundError, match="missing.npz"):
        RAFS.load(tmp_path / "missing.npz")


def test_stats(rafs):
    st = rafs.stats()
    assert st["name"] == "rafs" and st["references"] == 24
    assert st["fingerprints"] == 24 * ((int(np.ceil(8 * 5512)) - 2048) // 64)
    assert st["seconds"] == pytest.approx(24 * 8.0)
    assert st["bits_per_second"] == pytest.approx(32 * 5512 / 64)
    assert 4 * st["fingerprints"] <= st["bytes"] <= 4.2 * st["fingerprints"] + 1000
    assert st["params"]["block"] == 256 and st["params"]["min_score"] == pytest.approx(0.65)


def test_registry_and_parameters():
    s = systems.get("rafs", flip_bits=2)
    assert isinstance(s, RAFS) and s.name == "rafs" and s.params["flip_bits"] == 2 and len(s) == 0
    assert s.identify(np.ones(SR, np.float32) * 0.1, SR) == Match(None, 0.0, 0.0)  # empty database
    for name, value in [("flip_bits", -1), ("flip_bits", 2.5), ("flip_bits", 13), ("block", 0), ("hop", 0),
                        ("min_score", 1.5), ("min_score", float("nan")), ("fmax", 100.0), ("sr", True),
                        ("frame_size", 64), ("min_overlap", 0)]:
        with pytest.raises(ValueError, match=name):
            RAFS(**{name: value})
    with pytest.raises(TypeError):
        RAFS(unknown=1)


def test_bad_audio_raises(speech_bank):
    s = RAFS()
    for bad in (np.zeros(0, np.float32), np.array([0.1, np.nan] * 8000, np.float32),
                np.zeros((SR, 2), np.float32) + 0.1):
        with pytest.raises(AudioError):
            s.identify(bad, SR)
        with pytest.raises(AudioError):
            s.fingerprint(bad, SR)
        with pytest.raises(AudioError, match="refX"):
            s.add("refX", bad, SR)
    with pytest.raises(AudioError, match="refS"):
        s.add("refS", np.zeros(2 * SR, np.float32), SR)  # silent
    with pytest.raises(AudioError, match="refT"):
        s.add("refT", speech_bank["ref00"][: int(0.2 * SR)], SR)  # too short
    s.add("ref00", speech_bank["ref00"], SR)
    with pytest.raises(ValueError, match="ref00"):
        s.add("ref00", speech_bank["ref00"], SR)
    assert s.references() == ["ref00"]
