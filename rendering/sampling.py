"""Samplers along rays: stratified (coarse) and inverse-CDF (hierarchical).

Pure functions over any leading dimensions; ``t`` are ray parameters of o + t d.
"""
from typing import Optional

import torch


def stratified_samples(near: torch.Tensor, far: torch.Tensor, n_samples: int, perturb: bool = False,
                       lindisp: bool = False, generator: Optional[torch.Generator] = None,
                       u: Optional[torch.Tensor] = None) -> torch.Tensor:
    """``n_samples`` t values between near and far, (...,) -> (..., n_samples).

    Deterministic: evenly spaced in depth (or in inverse depth with ``lindisp``),
    endpoints included. With ``perturb``, each t is drawn uniformly inside its
    stratum, whose edges are the midpoints between neighbouring deterministic t:
    t = lower + (upper - lower) * u, with u (..., n_samples) in [0, 1) given or drawn.
    """
    s = torch.linspace(0.0, 1.0, n_samples, device=near.device, dtype=near.dtype)
    near, far = near[..., None], far[..., None]
    if lindisp:
        t = 1.0 / (1.0 / near * (1.0 - s) + 1.0 / far * s)
    else:
        t = near * (1.0 - s) + far * s
    if perturb:
        mids = 0.5 * (t[..., 1:] + t[..., :-1])
        upper = torch.cat([mids, t[..., -1:]], -1)
        lower = torch.cat([t[..., :1], mids], -1)
        rand = u if u is not None else torch.rand(t.shape, device=t.device, dtype=t.dtype, generator=generator)
        t = lower + (upper - lower) * rand
    return t


def sample_pdf(bins: torch.Tensor, weights: torch.Tensor, n_samples: int, deterministic: bool = False,
               generator: Optional[torch.Generator] = None, eps: float = 1e-5,
               u: Optional[torch.Tensor] = None) -> torch.Tensor:
    """Inverse-transform sampling of a piecewise-constant pdf.

    bins: (..., M + 1) edges, weights: (..., M) non-negative -> (..., n_samples).
    pdf_k = (w_k + eps) / sum(w + eps); for u in [0, 1] (evenly spaced when
    ``deterministic``, else uniform random: ``u`` (..., n_samples) given, or drawn), find bin k with cdf_k <= u < cdf_{k+1}
    and return bins_k + (u - cdf_k) / pdf_k * (bins_{k+1} - bins_k).
    Deterministic samples are sorted; random ones are not.
    """
    weights = weights + eps
    pdf = weights / weights.sum(-1, keepdim=True)
    cdf = torch.cumsum(pdf, -1)
    cdf = torch.cat([torch.zeros_like(cdf[..., :1]), cdf], -1).clamp(max=1.0)  # (..., M + 1)
    shape = (*cdf.shape[:-1], n_samples)
    if deterministic:
        u = torch.linspace(0.0, 1.0, n_samples, device=cdf.device, dtype=cdf.dtype).expand(shape)
    elif u is None:
        u = torch.rand(shape, device=cdf.device, dtype=cdf.dtype, generator=generator)
    u = u.contiguous()
    idx = torch.searchsorted(cdf.contiguous(), u, right=True)
    below = (idx - 1).clamp(min=0)
    above = idx.clamp(max=cdf.shape[-1] - 1)
    cdf_lo, cdf_hi = cdf.gather(-1, below), cdf.gather(-1, above)
    bin_lo, bin_hi = bins.gather(-1, below), bins.gather(-1, above)
    denom = cdf_hi - cdf_lo
    # a zero-width cdf step (u at an edge of an empty bin) would divide by zero
    denom = torch.where(denom < 1e-5, torch.ones_like(denom), denom)
    return bin_lo + (u - cdf_lo) / denom * (bin_hi - bin_lo)
