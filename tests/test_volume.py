"""Compositing against hand-computed cases."""
import math

import torch

from rendering.volume import composite, compute_weights


def test_weights_hand_computed():
    # two samples at t = 1, 2 (|d| = 2), sigma = (0.5, 1): delta = (2, 1e10)
    t = torch.tensor([1.0, 2.0])
    d = torch.tensor([0.0, 0.0, -2.0])
    w = compute_weights(torch.tensor([0.5, 1.0]), t, d)
    a0 = 1 - math.exp(-0.5 * 2)
    assert torch.allclose(w, torch.tensor([a0, (1 - a0) * 1.0]), atol=1e-6)


def test_three_samples_transmittance_product():
    t = torch.tensor([0.0, 0.5, 1.5])
    sigma = torch.tensor([1.0, 2.0, 0.0])
    w = compute_weights(sigma, t, torch.tensor([1.0, 0.0, 0.0]))
    a = [1 - math.exp(-0.5), 1 - math.exp(-2.0), 0.0]
    expected = [a[0], (1 - a[0]) * a[1], (1 - a[0]) * (1 - a[1]) * a[2]]
    assert torch.allclose(w, torch.tensor(expected), atol=1e-6)


def test_composite_outputs_and_white_background():
    t = torch.tensor([[2.0, 3.0, 4.0]])
    d = torch.tensor([[0.0, 0.0, 1.0]])
    sigma_raw = torch.tensor([[0.0, 0.7, 0.0]])
    rgb_raw = torch.zeros(1, 3, 3)  # sigmoid(0) = 0.5
    out = composite(rgb_raw, sigma_raw, t, d)
    a = 1 - math.exp(-0.7)
    assert math.isclose(out["acc"].item(), a, rel_tol=1e-6)
    assert math.isclose(out["depth"].item(), 3.0 * a, rel_tol=1e-6)
    assert math.isclose(out["disp"].item(), 1 / 3.0, rel_tol=1e-5)
    assert torch.allclose(out["rgb"], torch.full((1, 3), 0.5 * a))
    white = composite(rgb_raw, sigma_raw, t, d, white_bkgd=True)
    assert torch.allclose(white["rgb"], torch.full((1, 3), 0.5 * a + 1 - a))


def test_empty_ray_gives_finite_disparity_and_background():
    out = composite(torch.zeros(2, 4, 3), torch.full((2, 4), -5.0), torch.linspace(2, 6, 4).expand(2, 4),
                    torch.ones(2, 3), white_bkgd=True)
    assert torch.all(out["acc"] == 0) and torch.isfinite(out["disp"]).all()
    assert torch.allclose(out["rgb"], torch.ones(2, 3))


def test_weights_bounded_and_gradients_finite_at_extreme_densities():
    gen = torch.Generator().manual_seed(0)
    for scale in (1e-8, 1.0, 1e4, 1e12, 1e30):
        sigma_raw = (torch.rand(8, 64, generator=gen) * scale).requires_grad_()
        t, _ = torch.sort(torch.rand(8, 64, generator=gen) * 4 + 2, -1)
        out = composite(torch.randn(8, 64, 3, generator=gen), sigma_raw, t, torch.randn(8, 3, generator=gen))
        w = out["weights"]
        assert (w >= 0).all() and (w.sum(-1) <= 1 + 1e-5).all()
        (out["rgb"].sum() + out["depth"].sum()).backward()
        assert torch.isfinite(sigma_raw.grad).all(), scale


def test_raw_noise_only_with_std_and_reproducible():
    args = (torch.zeros(4, 8, 3), torch.ones(4, 8), torch.linspace(2, 6, 8).expand(4, 8), torch.ones(4, 3))
    a = composite(*args, raw_noise_std=1.0, generator=torch.Generator().manual_seed(3))
    b = composite(*args, raw_noise_std=1.0, generator=torch.Generator().manual_seed(3))
    c = composite(*args)
    assert torch.equal(a["rgb"], b["rgb"]) and not torch.equal(a["rgb"], c["rgb"])
