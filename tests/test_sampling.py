"""Stratified and inverse-CDF sampling."""
import numpy as np
import torch

from rendering.sampling import sample_pdf, stratified_samples


def test_stratified_deterministic_and_within_strata():
    near, far = torch.full((3,), 2.0), torch.full((3,), 6.0)
    t = stratified_samples(near, far, 5)
    assert torch.allclose(t[0], torch.tensor([2.0, 3.0, 4.0, 5.0, 6.0]))
    g = torch.Generator().manual_seed(0)
    tp = stratified_samples(torch.full((1000,), 2.0), torch.full((1000,), 6.0), 5, perturb=True, generator=g)
    edges = torch.tensor([2.0, 2.5, 3.5, 4.5, 5.5, 6.0])
    assert ((tp >= edges[:-1]) & (tp <= edges[1:])).all()
    assert (tp.diff(dim=-1) > 0).all()


def test_lindisp_is_linear_in_inverse_depth():
    t = stratified_samples(torch.tensor([1.0]), torch.tensor([4.0]), 4, lindisp=True)[0]
    assert torch.allclose(1 / t, torch.tensor([1.0, 0.75, 0.5, 0.25]))


def test_sample_pdf_inside_bins_and_follows_weights():
    bins = torch.tensor([0.0, 1.0, 2.0, 3.0, 4.0])
    weights = torch.tensor([0.1, 0.0, 0.6, 0.3])
    g = torch.Generator().manual_seed(0)
    s = sample_pdf(bins.expand(4, 5), weights.expand(4, 4), 50000, generator=g).flatten()
    assert (s >= 0).all() and (s <= 4).all()
    hist = np.histogram(s.numpy(), bins=bins.numpy())[0] / s.numel()
    expected = (weights + 1e-5) / (weights + 1e-5).sum()
    assert np.allclose(hist, expected.numpy(), atol=0.01)
    # uniform inside a bin: the samples in bin [2, 3) have mean ~2.5
    inside = s[(s >= 2) & (s < 3)]
    assert abs(inside.mean().item() - 2.5) < 0.01


def test_sample_pdf_inverse_cdf_hand_value():
    # pdf (0.25, 0.75) over bins [0,1],[1,3]: u = 0.5 -> bin 1 at 1 + (0.5-0.25)/0.75 * 2
    s = sample_pdf(torch.tensor([0.0, 1.0, 3.0]), torch.tensor([0.25, 0.75]), 3, deterministic=True, eps=0.0)
    assert torch.allclose(s, torch.tensor([0.0, 1 + 0.25 / 0.75 * 2, 3.0]), atol=1e-6)


def test_sample_pdf_deterministic_is_monotone_and_batched():
    g = torch.Generator().manual_seed(1)
    bins, _ = torch.sort(torch.rand(2, 7, 33, generator=g), -1)
    w = torch.rand(2, 7, 32, generator=g)
    s = sample_pdf(bins, w, 64, deterministic=True)
    assert s.shape == (2, 7, 64)
    assert (s.diff(dim=-1) >= 0).all()
    assert (s >= bins[..., :1]).all() and (s <= bins[..., -1:]).all()
