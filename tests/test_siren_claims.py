"""The claims the code and configs make about SIREN's initialisation, each checked against
values computed here by hand (numpy matrix code on the networks' own weights).

- The hidden pre-activation z = omega0 (W h + b) of a SIREN-init layer has variance
  2 E[h^2] + omega0^2 / (3 n): the weight term has the same distribution for any omega0
  (W ~ U(+-sqrt(6/n)/omega0)), but the biases keep PyTorch's U(+-1/sqrt(n)) and are
  multiplied by omega0. At omega0 30 that is ~1.5 rad at width 256 and ~1.8 at width
  128: phases cover about one period, not many.
- So the initial function depends on the hidden omega0 (configs/blender/lego_siren.txt
  used to say it did not).
- Under Adam a weight's first step is ~lr whatever its gradient's scale, so the step of
  the effective weight omega0 W is ~omega0 lr: a small hidden omega0 takes smaller steps.
- cos(z) = sin(z + pi/2) exactly, but at SIREN init E[cos z] = (sin a / a) exp(-E[h^2]) ~ 0.2
  (a = omega0 / sqrt(n)) while E[sin z] = 0: cos features start with a mean offset.
- On PE inputs the first layer's pre-activations have std ~0.09 rad at first_omega0 1 (cos
  is flat there) and ~0.45 at 5 (README, "Choosing the recipes").
"""
import math

import numpy as np
import pytest
import torch

from models.activations import ActivationConfig, ActLinear
from models.encoding import PositionalEncoding
from models.nerf import NeRF

PE_POINTS = torch.rand(4096, 3, generator=torch.Generator().manual_seed(3)) * 2 - 1


def pe_inputs() -> np.ndarray:
    """gamma(x) written out by hand: [x, sin(2^k x), cos(2^k x)] for k < 10, float64."""
    x = PE_POINTS.double().numpy()
    parts = [x]
    for k in range(10):
        parts += [np.sin(2.0 ** k * x), np.cos(2.0 ** k * x)]
    out = np.concatenate(parts, -1)
    ours = PositionalEncoding(3, 10)(PE_POINTS).double().numpy()
    assert np.allclose(out, ours, atol=1e-5)
    return out


def hand_preactivations(net: NeRF, x: np.ndarray, fn=np.sin):
    """[(z, E[h^2] of the layer's input, fan-in)] of every trunk layer, by numpy matmuls."""
    out, h = [], x
    for i, layer in enumerate(net.pts_linears):
        W = layer.linear.weight.detach().double().numpy()
        b = layer.linear.bias.detach().double().numpy()
        z = layer.omega0 * (h @ W.T + b)
        out.append((z, float(np.mean(h ** 2)), W.shape[1]))
        h = fn(z)
        if i in net.skips:
            h = np.concatenate([x, h], -1)
    return out


def siren_net(width: int, omega0: float, name: str = "sin", depth: int = 8, seed: int = 0) -> NeRF:
    act = ActivationConfig(name, first_omega0=30.0, omega0=omega0, siren_init=True)
    return NeRF(D=depth, W=width, input_ch=63, input_ch_views=27, skips=[4], act=act,
                generator=torch.Generator().manual_seed(seed))


def predicted_std(mean_sq_input: float, n: int, omega0: float) -> float:
    """sqrt(Var(omega0 W h) + Var(omega0 b)) with W ~ U(+-sqrt(6/n)/omega0), b ~ U(+-1/sqrt(n)):
    n (6/n)/3 E[h^2] + omega0^2 (1/n)/3."""
    return math.sqrt(2.0 * mean_sq_input + omega0 ** 2 / (3.0 * n))


def realised_std(layer, mean_sq_input: float) -> float:
    """The same with the layer's own draws: omega0 sqrt(n mean(W^2) E[h^2] + mean(b^2))."""
    W = layer.linear.weight.detach().double().numpy()
    b = layer.linear.bias.detach().double().numpy()
    return layer.omega0 * math.sqrt(W.shape[1] * np.mean(W ** 2) * mean_sq_input + np.mean(b ** 2))


@pytest.mark.parametrize("width,omega0,expected", [(256, 30.0, 1.47), (128, 30.0, 1.83), (256, 1.0, 0.92)])
def test_hidden_preactivation_std_on_pe_inputs(width, omega0, expected):
    x = pe_inputs()
    hidden = []
    for seed in (0, 1, 2):
        net = siren_net(width, omega0, seed=seed)
        layers = hand_preactivations(net, x)
        for layer, (z, mean_sq, n) in zip(net.pts_linears[1:], layers[1:]):
            assert abs(z.std() - realised_std(layer, mean_sq)) / z.std() < 0.1, (z.std(), n)
            if n == width:
                hidden.append((z.std(), predicted_std(mean_sq, n, omega0)))
        # the first layer sees PE inputs with omega0 30: U(+-1/n) weights, PyTorch's bias times 30
        z0, mean_sq0, n0 = layers[0]
        first = math.sqrt(30.0 ** 2 * (n0 * (1 / n0) ** 2 / 3 * mean_sq0 + 1 / (3 * n0)))
        assert abs(z0.std() - first) / first < 0.1
    measured, predicted = np.mean([m for m, _ in hidden]), np.mean([p for _, p in hidden])
    assert abs(measured - predicted) < 0.06 and abs(measured - expected) < 0.06, (measured, predicted)


def test_siren_phases_cover_about_one_period_not_many():
    z = np.concatenate([z.ravel() for z, _, n in hand_preactivations(siren_net(256, 30.0), pe_inputs())[1:]
                        if n == 256])
    assert np.mean(np.abs(z) < math.pi) > 0.95   # within half a period either side of 0
    assert np.mean(np.abs(z) > 2 * math.pi) < 1e-3  # hardly anything past one full period


def test_hidden_omega0_changes_the_initial_function():
    """Same seed, same draws: only the hidden omega0 differs; the bias term omega0 b does not
    cancel, so the pre-activations (and the network's outputs) differ."""
    x = pe_inputs()
    a = hand_preactivations(siren_net(256, 30.0), x)
    b = hand_preactivations(siren_net(256, 1.0), x)
    assert np.allclose(a[0][0], b[0][0])  # the first layer (first_omega0 30 in both) is the same
    assert abs(a[1][0].std() / b[1][0].std() - predicted_std(0.5, 256, 30) / predicted_std(0.5, 256, 1)) < 0.1
    with torch.no_grad():
        rgb30, sigma30 = siren_net(256, 30.0)(torch.from_numpy(x).float(), torch.zeros(len(x), 27))
        rgb1, sigma1 = siren_net(256, 1.0)(torch.from_numpy(x).float(), torch.zeros(len(x), 27))
    assert (rgb30 - rgb1).abs().max() > 0.1 and (sigma30 - sigma1).abs().max() > 0.1


@pytest.mark.parametrize("omega0", [1.0, 30.0])
def test_adam_step_of_the_effective_weight_scales_with_omega0(omega0):
    """Adam's first step moves every weight by lr g / (|g| + eps) ~ lr; the layer computes
    with omega0 W, which moves by ~omega0 lr."""
    torch.manual_seed(0)
    act = ActivationConfig("sin", first_omega0=30.0, omega0=omega0, siren_init=True)
    layer = ActLinear(64, 64, act, is_first=False, generator=torch.Generator().manual_seed(0))
    before = layer.linear.weight.detach().clone()
    lr = 1e-4
    opt = torch.optim.Adam(layer.parameters(), lr=lr)
    layer(torch.randn(256, 64)).square().sum().backward()
    grad = layer.linear.weight.grad.detach().clone()
    opt.step()
    step = (layer.linear.weight.detach() - before) * omega0
    big = grad.abs() > 1e-4  # eps = 1e-8 is negligible there
    assert big.float().mean() > 0.9
    hand = -omega0 * lr * grad / (grad.abs() + 1e-8)
    assert torch.allclose(step[big], hand[big], rtol=1e-3, atol=1e-12)
    assert torch.allclose(step[big].abs(), torch.full_like(step[big], omega0 * lr), rtol=1e-3)


def test_cos_is_shifted_sin_but_not_centred_at_init():
    z = torch.randn(1000, dtype=torch.float64) * 10
    assert torch.allclose(torch.cos(z), torch.sin(z + math.pi / 2), atol=1e-12)
    x = pe_inputs()
    net = siren_net(256, 30.0, "cos")
    for layer, (z, mean_sq, n) in zip(net.pts_linears[1:], hand_preactivations(net, x, np.cos)[1:]):
        # z_j = omega0 b_j + g_j: a fixed bias per unit plus a nearly Gaussian weight term g_j;
        # E cos(c + g) = cos(c) exp(-Var g / 2) for g ~ N(0, Var g)
        b = layer.linear.bias.detach().double().numpy()
        g = z - layer.omega0 * b
        predicted = np.mean(np.cos(layer.omega0 * b + g.mean(0)) * np.exp(-g.var(0) / 2))
        assert abs(np.cos(z).mean() - predicted) < 0.03, (np.cos(z).mean(), predicted)
        assert np.cos(z).mean() > 0.15 and abs(np.sin(z).mean()) < 0.05


@pytest.mark.parametrize("first_omega0, expected_std", [(1.0, 0.09), (5.0, 0.45)])
def test_first_layer_preactivation_on_pe_and_where_cos_is_flat(first_omega0, expected_std):
    """README / bench/results: under the SIREN init the first layer's pre-activations on PE
    (63 inputs, W ~ U(+-1/63), PyTorch's bias U(+-1/sqrt(63))) have std
    first_omega0 * sqrt((E[x^2] + 1) / 189): ~0.09 rad at 1, ~0.45 at 5. cos's gradient
    -sin z then averages |sin z| ~ 0.07 (flat: the dead cos runs) against ~0.35."""
    act = ActivationConfig("cos", first_omega0=first_omega0, omega0=1.0, siren_init=True)
    net = NeRF(D=4, W=128, input_ch=63, input_ch_views=27, skips=[], act=act,
               generator=torch.Generator().manual_seed(0))
    x = pe_inputs()
    z, mean_sq, n = hand_preactivations(net, x, fn=np.cos)[0]
    assert n == 63
    # Var(W x) = n E[x^2] / (3 n^2), Var(b) = 1 / (3 n), n = 63: (E[x^2] + 1) / 189
    predicted = first_omega0 * math.sqrt((mean_sq + 1.0) / 189.0)
    assert abs(z.std() - predicted) / predicted < 0.15, (z.std(), predicted)
    assert abs(z.std() - expected_std) < 0.15 * expected_std, z.std()
    mean_abs_grad = float(np.mean(np.abs(np.sin(z))))
    assert (mean_abs_grad < 0.1) if first_omega0 == 1.0 else (mean_abs_grad > 0.3), mean_abs_grad
