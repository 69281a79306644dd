import math

import torch

from models.encoding import PositionalEncoding


def test_positional_encoding_values_and_order():
    enc = PositionalEncoding(2, 3)
    x = torch.tensor([[0.3, -1.2]])
    out = enc(x)[0]
    assert enc.out_dim == 2 * (1 + 2 * 3) == out.numel()
    expected = [0.3, -1.2]
    for k in range(3):
        f = 2.0 ** k
        expected += [math.sin(f * 0.3), math.sin(f * -1.2), math.cos(f * 0.3), math.cos(f * -1.2)]
    assert torch.allclose(out, torch.tensor(expected), atol=1e-6)


def test_defaults_give_nerf_widths_and_disabled_is_identity():
    assert PositionalEncoding(3, 10).out_dim == 63 and PositionalEncoding(3, 4).out_dim == 27
    x = torch.randn(4, 5, 3)
    off = PositionalEncoding(3, 10, enabled=False)
    assert off.out_dim == 3 and torch.equal(off(x), x)
    assert PositionalEncoding(3, 10)(x).shape == (4, 5, 63)


def test_gradient_through_the_encoding():
    # d/dx of sum(gamma(x)) = 1 + sum_k f_k (cos(f_k x) - sin(f_k x)), f_k = 2^k
    enc = PositionalEncoding(1, 2)
    x = torch.tensor([[0.7]], requires_grad=True)
    out = enc(x)
    expected = [0.7, math.sin(0.7), math.cos(0.7), math.sin(1.4), math.cos(1.4)]
    assert torch.allclose(out.detach()[0], torch.tensor(expected), atol=1e-6)
    out.sum().backward()
    grad = 1 + sum(f * (math.cos(f * 0.7) - math.sin(f * 0.7)) for f in (1.0, 2.0))
    assert math.isclose(x.grad.item(), grad, rel_tol=1e-5)
