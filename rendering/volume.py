"""Volume rendering by alpha compositing (NeRF paper, eq. 3)."""
from typing import Dict, Optional

import torch
import torch.nn.functional as F

DENSITY_ACTIVATIONS = {"relu": torch.relu, "softplus": F.softplus}
FAR_DELTA = 1e10  # the last sample's interval: it absorbs whatever light remains


def compute_weights(sigma: torch.Tensor, t: torch.Tensor, rays_d: torch.Tensor) -> torch.Tensor:
    """Compositing weights, (..., N) densities and t values, (..., 3) directions -> (..., N).

    delta_i = (t_{i+1} - t_i) |d| (last delta 1e10), alpha_i = 1 - exp(-sigma_i delta_i),
    T_i = prod_{j<i} (1 - alpha_j) = exp(-sum_{j<i} sigma_j delta_j), w_i = T_i alpha_i.
    T is computed from the exclusive cumulative sum of optical depth, which equals the
    product form but keeps gradients finite at extreme densities.
    """
    delta = torch.cat([t[..., 1:] - t[..., :-1], torch.full_like(t[..., :1], FAR_DELTA)], -1)
    optical_depth = sigma * (delta * rays_d.norm(dim=-1, keepdim=True))
    alpha = 1.0 - torch.exp(-optical_depth)
    exclusive = torch.cat([torch.zeros_like(optical_depth[..., :1]),
                           torch.cumsum(optical_depth[..., :-1], -1)], -1)
    return alpha * torch.exp(-exclusive)


def composite(rgb_raw: torch.Tensor, sigma_raw: torch.Tensor, t: torch.Tensor, rays_d: torch.Tensor,
              white_bkgd: bool = False, raw_noise_std: float = 0.0, sigma_activation: str = "relu",
              generator: Optional[torch.Generator] = None,
              noise: Optional[torch.Tensor] = None,
              background: Optional[torch.Tensor] = None) -> Dict[str, torch.Tensor]:
    """Render raw network outputs along rays.

    rgb_raw (..., N, 3), sigma_raw (..., N), t (..., N), rays_d (..., 3).
    sigma = act(sigma_raw + raw_noise_std * n) with n ~ N(0, 1) (training only; ``noise``
    (..., N) given, or drawn),
    c = sigmoid(rgb_raw). Returns (...)-shaped ``depth = sum w t``, ``acc = sum w``,
    ``disp = 1 / max(1e-10, depth / acc)`` (acc clamped at 1e-10 so empty rays give
    a finite value, not NaN), (..., 3) ``rgb = sum w c + (1 - acc) b``, and ``weights``
    (..., N). The background b is ``background`` (..., 3) when given (a colour per ray:
    training on random backgrounds), else white (1) with ``white_bkgd``, else black (0).
    """
    if raw_noise_std > 0:
        if noise is None:
            noise = torch.randn(sigma_raw.shape, device=sigma_raw.device, dtype=sigma_raw.dtype, generator=generator)
        sigma_raw = sigma_raw + raw_noise_std * noise
    sigma = DENSITY_ACTIVATIONS[sigma_activation](sigma_raw)
    weights = compute_weights(sigma, t, rays_d)
    rgb = (weights[..., None] * torch.sigmoid(rgb_raw)).sum(-2)
    depth = (weights * t).sum(-1)
    acc = weights.sum(-1)
    disp = 1.0 / torch.clamp(depth / acc.clamp(min=1e-10), min=1e-10)
    if background is not None:
        rgb = rgb + (1.0 - acc[..., None]) * background
    elif white_bkgd:
        rgb = rgb + (1.0 - acc[..., None])
    return {"rgb": rgb, "depth": depth, "acc": acc, "disp": disp, "weights": weights}
