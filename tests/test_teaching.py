"""The teaching pictures: each returns a figure with the expected panels and titles, and numbers that agree with the
systems' own code. Synthetic 16-kHz audio (harmonic notes, a chirp, noise bursts) and a tiny untrained SAMAF model,
so the tests run offline in seconds.
"""

from __future__ import annotations

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch
from matplotlib.figure import Figure

from samaf_lib import distortions, systems, teaching
from samaf_lib.features import Standardiser, mfcc
from samaf_lib.hashing import hamming
from samaf_lib.model import SAMAF
from samaf_lib.systems import dejavu as dj
from samaf_lib.systems import rafs as rf
from samaf_lib.systems.samaf import SAMAFSystem

matplotlib.use("Agg")  # no display: the functions return figures, nothing is shown

SR = 16000


def make_clip(seconds: float = 6.0, seed: int = 0) -> np.ndarray:
    """Harmonic notes (5 partials, 0.3 s apart, decaying), a rising chirp and one short noise burst per second."""
    rng = np.random.default_rng(seed)
    n = int(seconds * SR)
    t = np.arange(n) / SR
    y = np.zeros(n)
    for k in range(int(seconds / 0.3)):
        f0 = rng.choice([196.0, 220.0, 247.0, 262.0, 294.0, 330.0, 349.0, 392.0, 440.0])
        s = int(k * 0.3 * SR)
        e = min(n, s + int(0.39 * SR))
        tt = t[s:e] - t[s]
        env = np.exp(-6.0 * tt) * (1.0 - np.exp(-200.0 * tt))
        for h in range(1, 6):
            y[s:e] += env * np.sin(2 * np.pi * f0 * h * tt) / h
    y += 0.3 * np.sin(2 * np.pi * (300.0 * t + 600.0 * t ** 2 / seconds))   # 300 Hz -> 1500 Hz
    for k in range(int(seconds)):
        s = int((k + 0.55) * SR)
        y[s:s + 400] += rng.normal(0.0, 0.5, 400) * np.hanning(400)
    return (0.5 * y / np.abs(y).max()).astype(np.float32)


@pytest.fixture(scope="module")
def clip() -> np.ndarray:
    return make_clip()


@pytest.fixture(autouse=True)
def no_pyplot_figures():
    """The functions build plain Figures: nothing is left open in pyplot."""
    yield
    assert plt.get_fignums() == []


def _images(fig: Figure) -> list:
    """The panels of a figure that hold an image (not colour bars)."""
    return [ax for ax in fig.axes if ax.get_label() != "<colorbar>" and (ax.images or ax.collections)]


def _colorbars(fig: Figure) -> list:
    return [ax for ax in fig.axes if ax.get_label() == "<colorbar>"]


# ---------------------------------------------------------------------------------------------------------------
# spectrogram


def test_spectrogram_has_time_frequency_axes_and_a_db_colour_bar(clip):
    fig = Figure()
    ax = fig.add_subplot()
    teaching.spectrogram(ax, clip[: 2 * SR], SR, title="two seconds", fmax=4000)
    (bar,) = _colorbars(fig)
    assert bar.get_ylabel() == "dB"
    assert ax.get_title() == "two seconds"
    assert "s" in ax.get_xlabel() and "Hz" in ax.get_ylabel()
    assert ax.get_xlim()[1] == pytest.approx(2.0, abs=0.02)
    assert ax.get_ylim() == (0.0, 4000.0)


# ---------------------------------------------------------------------------------------------------------------
# Dejavu


def test_dejavu_pairs_are_the_pairs_dejavu_hashes(clip):
    peaks = dj.find_peaks(dj.spectrogram_db(dj.to_int16_scale(clip), SR))
    pairs = teaching.dejavu_pairs(peaks)
    hashes, anchors = dj.pair_hashes(peaks)
    f1, t1 = peaks[pairs[:, 0], 0], peaks[pairs[:, 0], 1]
    f2, t2 = peaks[pairs[:, 1], 0], peaks[pairs[:, 1], 1]
    assert [dj.hash_pair(a, b, d) for a, b, d in zip(f1, f2, t2 - t1)] == hashes
    np.testing.assert_array_equal(t1, anchors)


def test_dejavu_constellation_counts_and_draws_pairs_that_span_time(clip):
    fig, info = teaching.dejavu_constellation(clip, SR, seconds=5.0)
    x = clip[: 5 * SR]
    peaks = dj.find_peaks(dj.spectrogram_db(dj.to_int16_scale(x), SR))
    np.testing.assert_array_equal(info["peaks"], peaks)
    codes, _ = dj.Dejavu().fingerprint(x, SR)
    assert info["n_pairs"] == len(codes) == len(info["pairs"])
    dt = peaks[info["pairs"][:, 1], 1] - peaks[info["pairs"][:, 0], 1]
    assert info["n_pairs_dt0"] == int(np.sum(dt == 0))
    assert info["share_dt0"] == pytest.approx(np.mean(dt == 0))
    assert info["hop_s"] == pytest.approx(0.128) and info["n_frames"] == 1 + (5 * SR - 4096) // 2048
    # the drawn anchors' pairs span time, one line per pair
    drawn = info["pairs"][info["drawn_pairs"]]
    assert len(info["anchors"]) == 4 and set(drawn[:, 0]) == set(info["anchors"])
    assert np.all(peaks[drawn[:, 1], 1] > peaks[drawn[:, 0], 1])
    (ax,) = _images(fig)
    assert len(ax.lines) == len(drawn)
    title = ax.get_title()
    for number in (info["n_peaks"], info["n_pairs"], info["n_pairs_dt0"], f"{info['share_dt0']:.0%}"):
        assert str(number) in title
    assert "hop 2048 (128 ms)" in title
    assert "dB" in _colorbars(fig)[0].get_ylabel()
    assert ax.get_xlabel() == "time (s)" and ax.get_ylabel() == "frequency (Hz)"


def test_dejavu_constellation_uses_the_systems_parameters(clip):
    system = dj.Dejavu(n_fft=1024, overlap_ratio=0.5, fan_value=5)
    _, info = teaching.dejavu_constellation(clip, SR, params=system, seconds=2.0, n_anchors=2)
    codes, _ = system.fingerprint(clip[: 2 * SR], SR)
    assert info["n_pairs"] == len(codes)
    assert info["hop_s"] == pytest.approx(512 / SR) and info["params"]["fan_value"] == 5
    _, same = teaching.dejavu_constellation(clip, SR, params={"n_fft": 1024, "fan_value": 5}, seconds=2.0)
    assert same["n_pairs"] == info["n_pairs"]


# ---------------------------------------------------------------------------------------------------------------
# RAFS


def test_rafs_bits_ber_is_rafs_ber_of_the_aligned_codes(clip):
    noisy = distortions.distort(clip, SR, "noise_white", 10, seed=3)
    fig, info = teaching.rafs_bits(clip, noisy, SR, label="white noise 10 dB")
    system = rf.RAFS()
    a, _ = system.fingerprint(clip, SR)
    b, _ = system.fingerprint(noisy, SR)
    assert info["n_subfingerprints"] == 256
    assert info["ber"] == pytest.approx(rf.ber(a[:256], b[:256]))
    assert 0.0 < info["ber"] < 0.35
    assert info["n_bit_errors"] == int(np.sum(info["clean_bits"] != info["distorted_bits"]))
    panels = _images(fig)
    assert len(panels) == 3
    assert [ax.get_title().split("\n")[0] for ax in panels[:2]] == ["clean", "white noise 10 dB"]
    assert f"BER {info['ber']:.3f}" in panels[2].get_title()
    assert "sub-fingerprint" in panels[0].get_ylabel() and "bit" in panels[0].get_xlabel()
    assert panels[2].images[0].get_array().shape == (256, 32)


def test_rafs_bits_of_an_identical_copy_is_zero_and_a_short_clip_is_refused(clip):
    _, info = teaching.rafs_bits(clip[:SR], clip[:SR], SR, n=50)
    assert info["ber"] == 0.0 and info["n_subfingerprints"] == 50
    with pytest.raises(ValueError, match="sub-fingerprint"):
        teaching.rafs_bits(clip[:4000], clip[:4000], SR)


# ---------------------------------------------------------------------------------------------------------------
# Panako and our triplets


@pytest.fixture(scope="module")
def copies(clip) -> dict[str, np.ndarray]:
    return {"clean": clip, "tempo": distortions.distort(clip, SR, "tempo", 1.05, 0),
            "pitch": distortions.distort(clip, SR, "pitch", 1.05, 0)}


@pytest.fixture(scope="module", params=["panako", "triplets"])
def followed(request, clip):
    system = systems.get(request.param)
    fig, info = teaching.panako_triplets(clip, SR, system, tempo=1.05, pitch=1.05)
    return system, fig, info


def test_panako_triplets_counts_agree_with_the_system(followed, copies):
    system, fig, info = followed
    clean_codes, _ = system.fingerprint(copies["clean"], SR)
    for key, audio in copies.items():
        v = info["versions"][key]
        codes, _ = system.fingerprint(audio, SR)
        assert v["n_triplets"] == len(codes) == len(system.triplets(audio, SR))
        assert v["n_events"] == len(system.event_points(audio, SR))
        assert v["shared_hashes"] == len(set(codes.tolist()) & set(clean_codes.tolist()))
    panels = _images(fig)
    assert len(panels) == 3 and len(_colorbars(fig)) == 1
    for ax, key in zip(panels, ("clean", "tempo", "pitch")):
        v = info["versions"][key]
        assert f"{v['n_events']} event points, {v['n_triplets']} triplets" in ax.get_title()
        if key != "clean":
            assert f"{v['shared_hashes']} distinct hashes shared with clean" in ax.get_title()
            assert f"{v['surviving']} of the clean triplets survive" in ax.get_title()


def test_the_followed_triplet_really_occurs_in_each_version_where_it_is_drawn(followed, copies):
    system, fig, info = followed
    assert info["versions"]["tempo"]["surviving"] > 0      # a 5 % time stretch keeps some triplets in both
    assert info["followed"] is not None
    expected = {"clean": (1.0, 0.0), "tempo": (1.05, 0.0), "pitch": (1.0, info["bin_shift"])}
    clean_pts = info["versions"]["clean"]["triplet"]
    for ax, (key, audio) in zip(_images(fig), copies.items()):
        v = info["versions"][key]
        if v["triplet"] is None:
            assert not ax.lines                             # nothing else is drawn in its place
            if v["surviving"] == 0:
                assert "no triplet survives" in ax.get_title()
            continue
        pts = system.triplets(audio, SR)
        codes, _ = system.fingerprint(audio, SR)
        j = v["highlighted"]
        np.testing.assert_array_equal(pts[j], v["triplet"])
        assert int(codes[j]) == info["hash"]                 # the same hash in every version
        factor, shift = expected[key]
        fps = system.frames_per_second
        assert np.all(np.abs(v["triplet"][:, 0] - clean_pts[:, 0] / factor) <= 3 / fps)
        assert np.all(np.abs(v["triplet"][:, 1] - clean_pts[:, 1] - shift) <= 1.5)
        (line,) = ax.lines
        np.testing.assert_allclose(np.column_stack(line.get_data()), v["triplet"])


def test_our_triplets_survive_the_pitch_shift_and_panako_is_reported_honestly(followed):
    system, fig, info = followed
    pitch = info["versions"]["pitch"]
    if system.name == "triplets":
        assert pitch["surviving"] > 0 and pitch["triplet"] is not None
    elif pitch["surviving"] == 0:                           # Panako 2014 is fragile under a 2.5-bin shift
        assert pitch["triplet"] is None
        assert "no triplet survives" in _images(fig)[2].get_title()


# ---------------------------------------------------------------------------------------------------------------
# SAMAF


def _tiny_model(clip: np.ndarray, reverse_target: bool = True) -> SAMAF:
    torch.manual_seed(0)
    m = SAMAF(bits=32, hidden=16, reverse_target=reverse_target)
    st = Standardiser.fit(mfcc(clip, SR))
    m.set_standardiser(st.mean, st.std)
    return m.eval()


@pytest.fixture(scope="module")
def samaf_system(clip) -> SAMAFSystem:
    return SAMAFSystem(model=_tiny_model(clip), bits=32)


@pytest.mark.parametrize("reverse_target", [True, False])
def test_samaf_reconstruction_is_shown_in_the_inputs_order_with_its_mse(clip, reverse_target):
    model = _tiny_model(clip, reverse_target)
    system = SAMAFSystem(model=model, bits=32)
    window = system.windows(clip, SR)[2]
    model.train()
    fig, info = teaching.samaf_reconstruction(model, window)
    assert model.training                                   # the caller's mode is left as it was
    model.eval()
    x = model.standardise(window[None])
    with torch.no_grad():
        recon, z = model(x)
        mse = float(torch.nn.functional.mse_loss(recon, model.target(x)))
    decoded = recon[0].numpy()
    np.testing.assert_allclose(info["reconstruction"], decoded[::-1] if reverse_target else decoded, atol=1e-6)
    np.testing.assert_allclose(info["input"], x[0], atol=1e-6)
    assert info["mse"] == pytest.approx(mse, rel=1e-5)
    np.testing.assert_array_equal(info["code"], (z[0].numpy() > 0).astype(np.uint8))
    panels = _images(fig)
    assert len(panels) == 2 and len(_colorbars(fig)) == 2
    assert f"MSE {info['mse']:.3f}" in panels[1].get_title()
    assert panels[0].images[0].get_array().shape == (13, 100)
    # the system works as well as the model, and gives the same picture's numbers
    _, same = teaching.samaf_reconstruction(system, window)
    assert same["mse"] == pytest.approx(info["mse"], rel=1e-5)


def test_samaf_reconstruction_refuses_a_window_of_the_wrong_shape(samaf_system):
    with pytest.raises(ValueError, match=r"\(100, 13\)"):
        teaching.samaf_reconstruction(samaf_system, np.zeros((13, 100), np.float32))


def test_samaf_bits_rows_and_hamming_distances(samaf_system, clip):
    second = clip[: 2 * SR]
    conds = [("noise_white", 10), ("lowpass", 2000)]
    fig, info = teaching.samaf_bits(samaf_system, second, SR, conds, seed=1)
    assert info["labels"] == ["clean", "noise_white 10", "lowpass 2000"]
    assert info["bits"].shape == (3, 32) and info["n_bits"] == 32
    codes = [samaf_system.fingerprint(second[:SR], SR)[0][:1]]
    for name, level in conds:
        codes.append(samaf_system.fingerprint(distortions.distort(second, SR, name, level, 1)[:SR], SR)[0][:1])
    expected = hamming(np.concatenate(codes), codes[0], pairwise=False).tolist()
    assert info["hamming"] == expected and expected[0] == 0
    assert info["hamming"][1:] == [int(np.sum(row != info["bits"][0])) for row in info["bits"][1:]]
    (ax,) = _images(fig)
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert labels == [f"{lab}: d = {d}" for lab, d in zip(info["labels"], info["hamming"])]
    assert ax.images[0].get_array().shape == (3, 32)


def test_samaf_bits_pads_a_copy_shorter_than_one_second(samaf_system, clip):
    _, info = teaching.samaf_bits(samaf_system, clip[:SR], SR, [("tempo", 1.05)])
    assert info["bits"].shape == (2, 32) and info["hamming"][0] == 0
