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
