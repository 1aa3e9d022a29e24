"""Training SAMAF: losses fall, runs are reproducible, an interrupted run resumes to the same weights."""

from __future__ import annotations

import hashlib
import threading
import time

import numpy as np
import pytest
import torch

from samaf_lib.features import Standardiser, mfcc
from samaf_lib.model import SAMAF, load_model
from samaf_lib.training import TrainConfig, TrainingTimeLimit, train

SR = 16000


def make_clusters(clips: list[np.ndarray], members: int = 4, seed: int = 0, hop_s: float = 0.5) -> np.ndarray:
    """Clusters (n, members, 100, 13) of raw MFCC: the clean 1-s window and noisy copies shifted by <= 0.1 s."""
    rng = np.random.default_rng(seed)
    out = []
    for audio in clips:
        versions = [mfcc(audio, SR, hop_s=hop_s)]
        for _ in range(members - 1):
            shift = int(rng.integers(0, 11)) * 160  # 0..0.1 s, whole frames
            a = audio[shift:]
            snr_db = rng.uniform(10, 25)
            noise = rng.standard_normal(a.size).astype(np.float32) * np.sqrt(np.mean(a**2) / 10 ** (snr_db / 10))
            versions.append(mfcc((a + noise).astype(np.float32), SR, hop_s=hop_s))
        n = min(v.shape[0] for v in versions)
        out.append(np.stack([v[:n] for v in versions], axis=1))
    return np.concatenate(out).astype(np.float32)


@pytest.fixture(scope="module")
def data(speech_bank):
    clips = list(speech_bank.values())
    train_X = make_clusters(clips[:8], seed=0)
    val_X = make_clusters(clips[8:10], seed=1)
    return train_X, val_X


def _model(train_X: np.ndarray, bits: int = 32, seed: int = 0) -> SAMAF:
    torch.manual_seed(seed)
    m = SAMAF(bits=bits)
    st = Standardiser.fit(train_X[:, 0])
    m.set_standardiser(st.mean, st.std)
    return m


def _cfg(**kw) -> TrainConfig:
    base = {"epochs": 4, "warmup_epochs": 1, "ramp_epochs": 1, "patience": 0, "seed": 3, "device": "cpu",
            "lr": 3e-3}
    base.update(kw)
    return TrainConfig(**base)


def _weights(m: SAMAF) -> dict:
    return {k: v.detach().cpu().clone() for k, v in m.state_dict().items()}


def _first_on_and_last(history: list[dict]) -> tuple[dict, dict]:
    """The first epoch with the cluster terms on, and the last epoch."""
    on = [h for h in history if h["ramp"] > 0]
    return on[0], history[-1]


@pytest.mark.parametrize("term, weights", [
    ("hash", {"hash_weight": 10.0, "entropy_weight": 0.0, "balance_weight": 0.0}),
    ("entropy", {"hash_weight": 0.0, "entropy_weight": 5.0, "balance_weight": 0.0}),
    ("balance", {"hash_weight": 0.0, "entropy_weight": 0.0, "balance_weight": 10.0}),
])
def test_each_loss_term_falls_when_it_drives_training(data, tmp_path, term, weights):
    """Every term is wired to the weights: given the weight, training lowers it (and the reconstruction)."""
    train_X, val_X = data
    history = train(_model(train_X), train_X, val_X, _cfg(epochs=5, **weights), tmp_path)
    assert [h["epoch"] for h in history] == [1, 2, 3, 4, 5]
    assert [h["ramp"] for h in history[:3]] == [0.0, 1.0, 1.0]
    first_on, last = _first_on_and_last(history)
    assert last[f"train_{term}"] < 0.5 * first_on[f"train_{term}"]
    assert last["train_mse"] < history[0]["train_mse"]
    if term == "entropy":
        # the trap of docs/samaf.md: the bitwise entropy alone is minimised by one constant code
        assert last["constant_bits"] == 32 and last["distinct_codes"] == 1
        assert last["train_balance"] > 0.5


def test_default_weights_train_without_collapse(data, tmp_path):
    """The defaults (cluster terms at 0.1 / 0.01 plus the bit-balance term) lower the objective, keep codes apart."""
    train_X, val_X = data
    m = _model(train_X)
    history = train(m, train_X, val_X, _cfg(epochs=6), tmp_path)
    first_on, last = _first_on_and_last(history)
    for term in ("mse", "balance", "total"):
        assert last[f"train_{term}"] < first_on[f"train_{term}"], term
    assert last["val_mse"] < history[0]["val_mse"]
    assert last["constant_bits"] <= 2 and last["distinct_codes"] > 0.8 * last["windows"]
    assert 0.35 < last["bit_balance"] < 0.65
    assert last["intra_hamming"] < last["inter_hamming"]  # copies of one segment are closer than unrelated ones
    assert (tmp_path / "last.pt").exists() and (tmp_path / "best.pt").exists()
    assert load_model(tmp_path / "best.pt", expect_bits=32).bits == 32


def test_same_seed_same_weights(data, tmp_path):
    train_X, val_X = data
    a, b = _model(train_X), _model(train_X)
    ha = train(a, train_X, val_X, _cfg(epochs=2), tmp_path / "a")
    hb = train(b, train_X, val_X, _cfg(epochs=2), tmp_path / "b")
    for k, v in _weights(a).items():
        assert torch.equal(v, _weights(b)[k]), k
    assert [h["train_total"] for h in ha] == [h["train_total"] for h in hb]
    c = _model(train_X)
    train(c, train_X, val_X, _cfg(epochs=2, seed=4), tmp_path / "c")
    assert any(not torch.equal(v, _weights(c)[k]) for k, v in _weights(a).items())


def test_resume_equals_uninterrupted(data, tmp_path):
    train_X, val_X = data
    straight = _model(train_X)
    h_straight = train(straight, train_X, val_X, _cfg(epochs=4), tmp_path / "straight")
    part = _model(train_X)
    train(part, train_X, val_X, _cfg(epochs=2), tmp_path / "resumed")  # "interrupted" after 2 epochs
    resumed = _model(train_X, seed=99)  # other initial weights: they must come from last.pt
    h_resumed = train(resumed, train_X, val_X, _cfg(epochs=4), tmp_path / "resumed")
    assert len(h_resumed) == 4
    for k, v in _weights(straight).items():
        assert torch.equal(v, _weights(resumed)[k]), k
    for a, b in zip(h_straight, h_resumed):
        assert a["train_total"] == b["train_total"] and a["val_total"] == b["val_total"]


def test_resume_with_other_settings_is_refused(data, tmp_path):
    train_X, val_X = data
    train(_model(train_X), train_X, val_X, _cfg(epochs=1), tmp_path)
    with pytest.raises(ValueError, match="lr"):
        train(_model(train_X), train_X, val_X, _cfg(epochs=2, lr=1e-3), tmp_path)
    with pytest.raises(ValueError, match="bits"):
        train(_model(train_X, bits=16), train_X, val_X, _cfg(epochs=2), tmp_path)


def test_early_stopping_and_bad_input(data, tmp_path):
    train_X, val_X = data
    m = _model(train_X)
    history = train(m, train_X, val_X, _cfg(epochs=10, lr=0.05, patience=1, warmup_epochs=0, ramp_epochs=0),
                    tmp_path)
    assert len(history) < 10 and not history[-1]["best"]  # stopped at the first epoch without improvement
    best_epoch = max(h["epoch"] for h in history if h["best"])
    best = load_model(tmp_path / "best.pt")
    assert torch.load(tmp_path / "best.pt", weights_only=True)["epoch"] == best_epoch
    for k, v in _weights(best).items():  # the model comes back with the best weights
        assert torch.equal(v, _weights(m)[k]), k
    with pytest.raises(ValueError, match=r"\(n_clusters, K, 100, 13\)"):
        train(_model(train_X), train_X[:, 0], val_X, _cfg(), tmp_path / "x")
    bad = val_X.copy()
    bad[0, 0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        train(_model(train_X), train_X, bad, _cfg(), tmp_path / "y")


@pytest.mark.parametrize("kw", [{"epochs": -1}, {"lr": 0.0}, {"loss_terms": "hash"}, {"device": "tpu"},
                                {"time_limit_minutes": 0}, {"batch_clusters": 0}, {"form": "paper"},
                                {"select": "val_top"}, {"temperature": 0.0}, {"threads": -1}])
def test_bad_config(kw):
    with pytest.raises(ValueError):
        TrainConfig(**kw)


def test_config_from_params_and_ramp():
    cfg = TrainConfig.from_params({"epochs": 5, "warmup_epochs": 2, "ramp_epochs": 2})
    assert [cfg.ramp(e) for e in range(5)] == [0.0, 0.0, 0.5, 1.0, 1.0]
    with pytest.raises(KeyError, match="epoch"):
        TrainConfig.from_params({"epoch": 5})


def _sha(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_same_seed_same_checkpoint_bytes_on_a_busy_machine(data, tmp_path):
    """Same data, settings and seed: byte-identical checkpoints, whether the machine is idle or loaded.

    The second run is slowed on purpose: a busy thread competes for the cores and every epoch's validation sleeps.
    Nothing of the machine's speed may reach the weights, the history or the files.
    """
    train_X, val_X = data
    cfg = _cfg(epochs=3, form="working", hash_weight=1.0, entropy_weight=0.1, threads=2)
    h_quiet = train(_model(train_X), train_X, val_X, cfg, tmp_path / "quiet",
                    validate=lambda m: {"val_probe": float(m.to_code.weight.detach().sum())})
    stop = threading.Event()

    def burn() -> None:
        x = np.random.default_rng(0).standard_normal((300, 300))
        while not stop.is_set():
            x = np.tanh(x @ x.T / 300.0)

    hog = threading.Thread(target=burn, daemon=True)
    hog.start()
    try:
        def slow_validate(m):
            time.sleep(0.3)
            return {"val_probe": float(m.to_code.weight.detach().sum())}

        timings: list = []
        h_busy = train(_model(train_X), train_X, val_X, cfg, tmp_path / "busy", validate=slow_validate,
                       timings=timings)
    finally:
        stop.set()
        hog.join()
    assert len(timings) == 3 and all(t["seconds"] > 0.3 for t in timings)
    for name in ("best.pt", "last.pt"):
        assert _sha(tmp_path / "quiet" / name) == _sha(tmp_path / "busy" / name), name
    assert h_quiet == h_busy
    assert not any("seconds" in k for row in h_busy for k in row)  # timings stay out of the history


def test_time_limit_is_an_error_not_a_shorter_model(data, tmp_path):
    train_X, val_X = data
    cfg = _cfg(epochs=3, time_limit_minutes=0.001)  # 60 ms: passed after the first epoch

    def slow(m):
        time.sleep(0.1)
        return {}

    with pytest.raises(TrainingTimeLimit, match="time_limit_minutes"):
        train(_model(train_X), train_X, val_X, cfg, tmp_path, validate=slow)
    assert torch.load(tmp_path / "last.pt", weights_only=True)["epoch"] == 1  # the work so far is kept
    history = train(_model(train_X), train_X, val_X, _cfg(epochs=3), tmp_path)  # no limit: resumes and finishes
    assert [h["epoch"] for h in history] == [1, 2, 3]


def test_best_checkpoint_follows_validation_top1(data, tmp_path):
    """With select='val_top1' the epoch with the highest validation measure is best.pt, whatever the loss says."""
    train_X, val_X = data
    scripted = iter([0.2, 0.6, 0.4, 0.5])
    history = train(_model(train_X), train_X, val_X,
                    _cfg(epochs=4, warmup_epochs=0, ramp_epochs=0, select="val_top1", patience=2),
                    tmp_path, validate=lambda m: {"val_top1": next(scripted)})
    assert [h["best"] for h in history] == [True, True, False, False]
    assert len(history) == 4  # two epochs without improvement: patience 2 stops after the fourth
    assert torch.load(tmp_path / "best.pt", weights_only=True)["epoch"] == 2
    with pytest.raises(ValueError, match="validate"):
        train(_model(train_X), train_X, val_X, _cfg(select="val_top1"), tmp_path / "x")


def test_working_form_separates_clusters(data, tmp_path):
    """The working loss (NT-Xent + majority entropy) brings copies of a second closer than other seconds, without
    shrinking z."""
    train_X, val_X = data
    history = train(_model(train_X), train_X, val_X,
                    _cfg(epochs=6, form="working", hash_weight=1.0, entropy_weight=0.1, warmup_epochs=0,
                         ramp_epochs=1), tmp_path)
    first, last = history[0], history[-1]
    assert last["train_hash"] < first["train_hash"]
    assert last["intra_hamming"] < 0.5 * last["inter_hamming"]
    assert last["mean_abs_z"] >= 0.9 * first["mean_abs_z"]
