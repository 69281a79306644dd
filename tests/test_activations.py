"""SIREN initialisation statistics and the course-report setting."""
import math

import pytest
import torch
import torch.nn.functional as F

from models.activations import ACTIVATIONS, ActivationConfig, ActLinear
from models.nerf import NeRF


def siren_stack(name, depth=8, width=256, in_dim=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    act = ActivationConfig(name, first_omega0=30.0, omega0=30.0, siren_init=True)
    return [ActLinear(in_dim if k == 0 else width, width, act, is_first=(k == 0), generator=g) for k in range(depth)]


@pytest.mark.parametrize("name", ["sin", "cos"])
def test_siren_preactivations_stay_in_a_stable_band(name):
    layers = siren_stack(name)
    x = torch.rand(8192, 3, generator=torch.Generator().manual_seed(1)) * 2 - 1
    stds, h = [], x
    with torch.no_grad():
        for layer in layers:
            z = layer.omega0 * layer.linear(h)  # the argument of sin/cos
            stds.append(z.std().item())
            h = layer(h)
            assert h.abs().max() <= 1.0
    hidden = stds[1:]
    # weight term has unit variance by design; PyTorch's default bias times omega0 adds ~300/n
    expected = math.sqrt(1.0 + 30.0 ** 2 / (3 * 256))
    assert all(abs(s - expected) / expected < 0.15 for s in hidden), stds
    assert max(hidden) / min(hidden) < 1.2, stds
    # activations are arcsine-distributed on [-1, 1]: E[a^2] = 1/2
    assert abs((h ** 2).mean().item() - 0.5) < 0.03


def test_siren_init_bounds():
    layers = siren_stack("sin", depth=2, width=64, in_dim=5)
    assert layers[0].linear.weight.abs().max() <= 1 / 5
    assert layers[1].linear.weight.abs().max() <= math.sqrt(6 / 64) / 30
    assert layers[1].linear.weight.abs().max() > 0.9 * math.sqrt(6 / 64) / 30


@pytest.mark.parametrize("name,fn", [("sin", torch.sin), ("cos", torch.cos)])
def test_report_setting_is_plain_activation_on_default_init(name, fn):
    """omega0 = 1, siren_init False: exactly fn(linear(x)) with PyTorch's default Linear init."""
    act = ActivationConfig(name, first_omega0=1.0, omega0=1.0, siren_init=False)
    ours = [ActLinear(63, 256, act, is_first=True, generator=torch.Generator().manual_seed(7))]
    torch.manual_seed(7)
    reference = torch.nn.Linear(63, 256)  # default init from the global RNG seeded alike
    assert torch.equal(ours[0].linear.weight, reference.weight)
    assert torch.equal(ours[0].linear.bias, reference.bias)
    x = torch.randn(100, 63)
    assert torch.equal(ours[0](x), fn(reference(x)))


def test_report_setting_whole_network_matches_plain_forward():
    act = ActivationConfig("sin", 1.0, 1.0, siren_init=False)
    net = NeRF(D=4, W=32, input_ch=63, input_ch_views=27, skips=[2], use_viewdirs=True, act=act,
               generator=torch.Generator().manual_seed(0))
    x, d = torch.randn(10, 63), torch.randn(10, 27)
    h = x
    for i, layer in enumerate(net.pts_linears):
        h = torch.sin(F.linear(h, layer.linear.weight, layer.linear.bias))
        if i == 2:
            h = torch.cat([x, h], -1)
    sigma = F.linear(h, net.alpha_linear.weight, net.alpha_linear.bias)[:, 0]
    feat = F.linear(h, net.feature_linear.weight, net.feature_linear.bias)
    hv = torch.sin(F.linear(torch.cat([feat, d], -1), net.views_linear.linear.weight, net.views_linear.linear.bias))
    rgb = F.linear(hv, net.rgb_linear.weight, net.rgb_linear.bias)
    rgb_ours, sigma_ours = net(x, d)
    assert torch.allclose(rgb_ours, rgb) and torch.allclose(sigma_ours, sigma)


def test_relu_uses_default_init_and_registry_is_complete():
    assert {"relu", "sin", "cos"} <= set(ACTIVATIONS)
    layer = ActLinear(10, 20, ActivationConfig("relu"), is_first=True, generator=torch.Generator().manual_seed(0))
    assert layer.linear.weight.abs().max() <= 1 / math.sqrt(10)
    assert (layer(torch.randn(5, 10)) >= 0).all()
