"""Positional encoding of NeRF (Mildenhall et al. 2020, eq. 4)."""
import torch
from torch import nn


class PositionalEncoding(nn.Module):
    """gamma(x) = (x, sin(2^0 x), cos(2^0 x), ..., sin(2^(L-1) x), cos(2^(L-1) x)).

    Frequencies are log-spaced 2^0..2^(L-1) and the input itself is kept, as in the
    original code. ``num_freqs = 0`` or ``enabled=False`` gives the identity
    (raw coordinates, as SIREN often uses).

    Shapes: ``(..., d) -> (..., d * (1 + 2 L))``; the output is ordered
    ``[x, sin(f0 x), cos(f0 x), sin(f1 x), ...]`` with each block ``d`` wide.
    """

    def __init__(self, in_dim: int, num_freqs: int, enabled: bool = True):
        super().__init__()
        self.in_dim = in_dim
        self.num_freqs = num_freqs if enabled else 0
        freqs = 2.0 ** torch.arange(self.num_freqs, dtype=torch.float32)
        self.register_buffer("freqs", freqs, persistent=False)

    @property
    def out_dim(self) -> int:
        return self.in_dim * (1 + 2 * self.num_freqs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.num_freqs == 0:
            return x
        scaled = x[..., None, :] * self.freqs[:, None]            # (..., L, d)
        periodic = torch.stack([scaled.sin(), scaled.cos()], -2)  # (..., L, 2, d)
        return torch.cat([x, periodic.flatten(-3)], dim=-1)
