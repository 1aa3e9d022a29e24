"""The SAMAF autoencoder: shapes, input checks, dependence of the decoder on z, checkpoints."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from samaf_lib.model import SAMAF, load_model, read_checkpoint, save_checkpoint


def _model(bits: int = 32, **kw) -> SAMAF:
    torch.manual_seed(0)
    return SAMAF(bits=bits, **kw)


def _x(n: int = 4, seed: int = 0) -> torch.Tensor:
    return torch.as_tensor(np.random.default_rng(seed).standard_normal((n, 100, 13)), dtype=torch.float32)


def test_shapes_range_and_config():
    m = _model(32)
    recon, z = m(_x())
    assert recon.shape == (4, 100, 13)
    assert z.shape == (4, 32)
    assert torch.all(z.abs() < 1)
    assert m.config == {"bits": 32, "hidden": 32, "layers": 1, "n_mfcc": 13, "frames": 100,
                        "reverse_target": True, "dropout": 0.0, "cmn": False}
    assert m.encoder.hidden_size == 32 and m.bits == 32
    assert SAMAF(bits=16, hidden=8, layers=2).decoder.num_layers == 2


def test_target_is_reversed_in_time_when_asked():
    x = _x(2)
    assert torch.equal(_model(reverse_target=True).target(x), torch.flip(x, dims=(1,)))
    assert torch.equal(_model(reverse_target=False).target(x), x)


def test_bad_constructor_values():
    for kw in ({"bits": 12}, {"bits": 0}, {"hidden": -1}, {"layers": 0}, {"dropout": 1.5}, {"reverse_target": 1}):
        with pytest.raises(ValueError):
            SAMAF(**{"bits": 16, **kw})


@pytest.mark.parametrize("shape", [(4, 99, 13), (100, 13), (4, 100, 12), (0, 100, 13)])
def test_wrong_shape_names_the_expected_shape(shape):
    with pytest.raises(ValueError, match=r"\(batch, 100, 13\)"):
        _model().encode(torch.zeros(shape))


def test_nan_input_is_refused():
    x = _x(2)
    x[1, 5, 3] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        _model().encode(x)
    with pytest.raises(ValueError, match="NaN"):
        _model().hash_windows(x.numpy())


def test_decoder_depends_on_z():
    """No teacher forcing: the reconstruction is a function of z, and the loss reaches the encoder."""
    m = _model()
    z1, z2 = torch.full((2, 32), 0.9), torch.full((2, 32), -0.9)
    assert not torch.allclose(m.decode(z1), m.decode(z2))
    recon, _ = m(_x())
    ((recon - m.target(_x())) ** 2).mean().backward()
    assert m.encoder.weight_ih_l0.grad is not None and m.encoder.weight_ih_l0.grad.abs().sum() > 0


def test_standardise_numpy_and_tensor():
    m = _model()
    mean, std = np.arange(13, dtype=np.float32), np.full(13, 2.0, np.float32)
    m.set_standardiser(mean, std)
    x = np.random.default_rng(1).standard_normal((3, 100, 13)).astype(np.float32)
    out = m.standardise(x)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, (x - mean) / std, rtol=1e-6)
    np.testing.assert_allclose(m.standardise(torch.as_tensor(x)).numpy(), out, rtol=1e-6)
    with pytest.raises(ValueError):
        m.set_standardiser(np.zeros(12), np.ones(12))
    with pytest.raises(ValueError):
        m.set_standardiser(np.zeros(13), np.zeros(13))


def test_hash_windows_matches_encode_of_standardised_input():
    m = _model()
    m.set_standardiser(np.full(13, 0.5, np.float32), np.full(13, 3.0, np.float32))
    x = _x(5).numpy()
    z = m.hash_windows(x, batch_size=2)
    with torch.no_grad():
        ref = m.encode(torch.as_tensor((x - 0.5) / 3.0)).numpy()
    np.testing.assert_allclose(z, ref, atol=1e-5)
    assert m.hash_windows(np.zeros((0, 100, 13), np.float32)).shape == (0, 32)


def test_checkpoint_round_trip(tmp_path):
    m = _model(32)
    m.set_standardiser(np.full(13, 1.0, np.float32), np.full(13, 2.0, np.float32))
    path = tmp_path / "m.pt"
    save_checkpoint(path, m, epoch=3, history=[{"epoch": 1, "val_mse": 0.5}])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.pt"]  # no temporary file left
    raw = torch.load(path, weights_only=True)  # plain types only
    assert raw["epoch"] == 3 and raw["history"][0]["val_mse"] == 0.5
    m2 = load_model(path, expect_bits=32)
    assert not m2.training
    assert torch.equal(m2.std, m.std)
    x = _x(3)
    m.eval()
    with torch.no_grad():
        assert torch.equal(m.encode(m.standardise(x)), m2.encode(m2.standardise(x)))


def test_checkpoint_of_another_model_is_refused(tmp_path):
    path = tmp_path / "m.pt"
    save_checkpoint(path, _model(128))
    with pytest.raises(ValueError, match="bits"):
        load_model(path, expect_bits=256)
    with pytest.raises(ValueError, match="hidden"):
        load_model(path, expect_config={"hidden": 64})
    assert load_model(path, expect_bits=128).bits == 128


def test_missing_or_corrupt_checkpoint(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.pt"):
        load_model(tmp_path / "nope.pt")
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="bad.pt"):
        read_checkpoint(bad)
    other = tmp_path / "other.pt"
    torch.save({"weights": torch.zeros(3)}, other)
    with pytest.raises(ValueError, match="not a SAMAF checkpoint"):
        load_model(other)
