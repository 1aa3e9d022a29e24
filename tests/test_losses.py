"""SAMAF's loss terms are zero (or ln 2) where the formulas say so, and their gradients stay finite."""

from __future__ import annotations

import math

import pytest
import torch

from samaf_lib.losses import (bit_balance_loss, bitwise_entropy_loss, contrastive_hash_loss, hash_loss,
                              majority_entropy_loss, reconstruction_loss, scale_free_balance_loss, total_loss)

IDS = torch.tensor([0, 0, 0, 1, 1, 1, 2, 2, 2, 2])


def _codes(seed: int = 0, n_clusters: int = 3, bits: int = 16) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.tanh(3 * torch.randn(n_clusters, bits, generator=g))


def test_reconstruction_loss_is_mse():
    a, b = torch.zeros(2, 100, 13), torch.full((2, 100, 13), 2.0)
    assert float(reconstruction_loss(a, b)) == pytest.approx(4.0)
    with pytest.raises(ValueError):
        reconstruction_loss(a, b[:1])


def test_hash_loss_zero_when_members_share_a_code():
    z = _codes()[IDS]
    assert float(hash_loss(z, IDS)) == pytest.approx(0.0, abs=1e-7)


def test_hash_loss_value():
    # two members at +-a per bit around mean 0: squared distance a^2 per bit, divided by B -> a^2
    z = torch.tensor([[0.5, 0.5, 0.5, 0.5], [-0.5, -0.5, -0.5, -0.5]])
    assert float(hash_loss(z, torch.tensor([7, 7]))) == pytest.approx(0.25)
    # independent of the labels' values and order
    z2 = torch.cat([z, z])
    assert float(hash_loss(z2, torch.tensor([3, 3, 9, 9]))) == pytest.approx(0.25)


def test_entropy_near_zero_when_members_agree():
    z = (0.9999 * torch.sign(_codes())).clone()[IDS]
    assert float(bitwise_entropy_loss(z, IDS)) < 1e-3


def test_entropy_ln2_when_half_of_each_cluster_disagrees():
    signs = torch.sign(_codes(n_clusters=2, bits=8))
    z = torch.cat([signs, -signs])  # member pairs disagree on every bit
    ids = torch.tensor([0, 1, 0, 1])
    assert float(bitwise_entropy_loss(z, ids)) == pytest.approx(math.log(2), rel=1e-5)
    assert float(bitwise_entropy_loss(torch.zeros(4, 8), ids)) == pytest.approx(math.log(2), rel=1e-5)


def test_gradients_finite_at_saturated_ends():
    z = torch.sign(_codes())[IDS].clone().requires_grad_(True)  # exactly +-1
    assert set(z.detach().unique().tolist()) <= {-1.0, 1.0}
    loss = hash_loss(z, IDS) + bitwise_entropy_loss(z, IDS) + bit_balance_loss(z)
    loss.backward()
    assert torch.isfinite(loss) and torch.all(torch.isfinite(z.grad))
    z2 = torch.ones(4, 8, requires_grad=True)
    bitwise_entropy_loss(z2, torch.tensor([0, 0, 1, 1])).backward()
    assert torch.all(torch.isfinite(z2.grad))


def test_balance_loss_zero_for_balanced_codes_and_one_for_collapse():
    half = torch.sign(_codes(n_clusters=4, bits=16))
    balanced = torch.cat([half, -half])
    assert float(bit_balance_loss(balanced)) == pytest.approx(0.0, abs=1e-7)
    assert float(bit_balance_loss(torch.ones(8, 16))) == pytest.approx(1.0)


def test_total_loss_combines_terms():
    g = torch.Generator().manual_seed(1)
    recon, target = torch.randn(10, 100, 13, generator=g), torch.randn(10, 100, 13, generator=g)
    z = torch.tanh(torch.randn(10, 16, generator=g))
    total, terms = total_loss(recon, target, z, IDS, hash_weight=0.1, entropy_weight=0.01, balance_weight=0.1,
                              ramp=0.5)
    expect = terms["mse"] + 0.5 * (0.1 * terms["hash"] + 0.01 * terms["entropy"] + 0.1 * terms["balance"])
    assert float(total) == pytest.approx(float(expect), rel=1e-6)
    assert float(terms["total"]) == pytest.approx(float(total))
    t0, _ = total_loss(recon, target, z, IDS, ramp=0.0)
    assert float(t0) == pytest.approx(float(terms["mse"]))
    only_mse, _ = total_loss(recon, target, z, IDS, balance_weight=0.0, loss_terms="mse")
    assert float(only_mse) == pytest.approx(float(terms["mse"]))
    no_ent, t = total_loss(recon, target, z, IDS, balance_weight=0.0, loss_terms="mse+hash")
    assert float(no_ent) == pytest.approx(float(t["mse"] + 0.1 * t["hash"]), rel=1e-6)


@pytest.mark.parametrize("kw", [{"hash_weight": -1.0}, {"ramp": 1.5}, {"loss_terms": "mse+entropy"},
                                {"entropy_weight": float("nan")}])
def test_total_loss_bad_settings(kw):
    z = torch.zeros(10, 8)
    with pytest.raises(ValueError):
        total_loss(torch.zeros(10, 100, 13), torch.zeros(10, 100, 13), z, IDS, **kw)


# -- the working form --------------------------------------------------------------------------------------------


def test_contrastive_hash_loss_hand_computed():
    """Two clusters of two members; cosines 1 within and 0 or -1 between give the NT-Xent by hand."""
    z = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.0, 1.0]])
    ids = torch.tensor([0, 0, 1, 1])
    t = 0.5
    # member 0: positive cos 1, negatives cos 0, 0 -> -log(e^2 / (e^2 + 2))
    expected = -math.log(math.exp(2.0) / (math.exp(2.0) + 2.0))
    assert contrastive_hash_loss(z, ids, temperature=t).item() == pytest.approx(expected, rel=1e-6)


def test_contrastive_hash_loss_prefers_separated_clusters_and_ignores_scale():
    g = torch.Generator().manual_seed(0)
    centres = torch.randn(8, 32, generator=g)
    ids = torch.arange(8).repeat_interleave(4)
    tight = centres[ids] + 0.05 * torch.randn(32, 32, generator=g)
    mixed = torch.randn(32, 32, generator=g)
    assert contrastive_hash_loss(tight, ids) < 0.3 * contrastive_hash_loss(mixed, ids)
    # its floor with 3 positives each is ln 3, reached when clusters are tight and far apart
    assert contrastive_hash_loss(tight, ids).item() == pytest.approx(math.log(3), abs=0.01)
    # nothing to gain by shrinking z: the loss is the same at any scale
    assert contrastive_hash_loss(0.01 * mixed, ids).item() == pytest.approx(contrastive_hash_loss(mixed, ids).item(),
                                                                           rel=1e-5)


def test_majority_entropy_acts_where_bits_are_undecided():
    """At z = 0 the literal entropy has no gradient; the working form pulls each bit to its cluster's majority."""
    z = torch.tensor([[0.5, -0.2], [0.0, -0.1], [0.1, 0.0]], requires_grad=True)
    ids = torch.tensor([0, 0, 0])
    majority_entropy_loss(z, ids).backward()
    g = z.grad
    assert g[1, 0] < 0 and g[2, 1] > 0  # undecided entries: pushed up (majority 1) and down (majority 0)
    assert abs(g[1, 0].item()) == pytest.approx(1.0 / 6, rel=1e-4)  # d/dz of -log((z+1)/2) at 0 is -1, over 6 terms
    z2 = torch.zeros(4, 3, requires_grad=True)
    bitwise_entropy_loss(z2, torch.tensor([0, 0, 1, 1])).backward()
    assert torch.all(z2.grad.abs() < 1e-6)  # the literal reading is flat there
    # saturated on the majority side: about 0; shrinking z raises it
    sat = torch.full((4, 3), 0.999)
    assert majority_entropy_loss(sat, torch.tensor([0, 0, 1, 1])) < 1e-2
    assert majority_entropy_loss(0.1 * sat, torch.tensor([0, 0, 1, 1])) > 0.5


def test_scale_free_balance():
    z = torch.tensor([[0.5, 0.2], [-0.5, 0.4]])
    assert scale_free_balance_loss(z).item() == pytest.approx(0.5, abs=1e-5)  # bit 0 balanced, bit 1 one-sided
    assert scale_free_balance_loss(0.01 * z).item() == pytest.approx(scale_free_balance_loss(z).item(), rel=1e-3)


def test_total_loss_forms():
    g = torch.Generator().manual_seed(1)
    z = torch.tanh(torch.randn(8, 16, generator=g))
    ids = torch.arange(4).repeat_interleave(2)
    x = torch.randn(8, 100, 13, generator=g)
    _, lit = total_loss(x, x, z, ids, form="literal")
    _, work = total_loss(x, x, z, ids, form="working", hash_weight=1.0, entropy_weight=0.1)
    assert lit["hash"].item() == pytest.approx(hash_loss(z, ids).item())
    assert work["hash"].item() == pytest.approx(contrastive_hash_loss(z, ids).item())
    assert work["entropy"].item() == pytest.approx(majority_entropy_loss(z, ids).item())
    with pytest.raises(ValueError, match="form"):
        total_loss(x, x, z, ids, form="paper")
