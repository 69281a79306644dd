"""Coarse + fine hierarchical rendering of ray batches.

Sampler (``utils.sampling``) and compositor (``utils.volume``) are separate pure
functions; this module wires them to radiance-field callables
``field(pts (..., 3), dirs (..., 3)) -> (rgb_raw (..., 3), sigma_raw (...))``.
"""
from dataclasses import dataclass
from typing import Callable, Dict, Optional

import torch

from utils.sampling import sample_pdf, stratified_samples
from utils.volume import composite

Field = Callable[[torch.Tensor, torch.Tensor], tuple]


@dataclass
class RenderOptions:
    N_samples: int = 64
    N_importance: int = 0
    perturb: bool = False
    lindisp: bool = False
    raw_noise_std: float = 0.0
    white_bkgd: bool = False
    density_activation: str = "relu"

    @classmethod
    def from_args(cls, args, train: bool) -> "RenderOptions":
        return cls(args.N_samples, args.N_importance, bool(args.perturb) and train, args.lindisp,
                   args.raw_noise_std if train else 0.0, args.white_bkgd, args.sigma_activation)


@dataclass
class RayBundle:
    """Rays to render, all (N_rays, ...): origins/directions in the space the field
    is queried in (NDC for forward-facing scenes), unit world view directions, bounds."""
    origins: torch.Tensor      # (N_rays, 3)
    directions: torch.Tensor   # (N_rays, 3)
    viewdirs: torch.Tensor     # (N_rays, 3)
    near: torch.Tensor         # (N_rays,)
    far: torch.Tensor          # (N_rays,)

    def __getitem__(self, sl) -> "RayBundle":
        return RayBundle(self.origins[sl], self.directions[sl], self.viewdirs[sl],
                         self.near[sl], self.far[sl])

    def __len__(self) -> int:
        return self.origins.shape[0]


def _shade(field: Field, rays: RayBundle, t: torch.Tensor, opts: RenderOptions,
           generator) -> Dict[str, torch.Tensor]:
    pts = rays.origins[..., None, :] + rays.directions[..., None, :] * t[..., None]  # (R, S, 3)
    rgb_raw, sigma_raw = field(pts, rays.viewdirs[..., None, :])
    return composite(rgb_raw.float(), sigma_raw.float(), t, rays.directions, opts.white_bkgd,
                     opts.raw_noise_std, opts.density_activation, generator)


def render_rays(rays: RayBundle, coarse: Field, fine: Optional[Field], opts: RenderOptions,
                generator: Optional[torch.Generator] = None) -> Dict[str, torch.Tensor]:
    """Render a batch of rays. Fine outputs are ``rgb``/``depth``/``acc``/``disp``; the
    coarse ones carry a ``_coarse`` suffix (they are the only ones when N_importance is 0)."""
    t_coarse = stratified_samples(rays.near, rays.far, opts.N_samples, opts.perturb, opts.lindisp, generator)
    out_c = _shade(coarse, rays, t_coarse, opts, generator)
    if opts.N_importance <= 0 or fine is None:
        out = {k: v for k, v in out_c.items() if k != "weights"}
        out.update({f"{k}_coarse": v for k, v in out.items()})
        return out
    mids = 0.5 * (t_coarse[..., 1:] + t_coarse[..., :-1])
    t_fine = sample_pdf(mids, out_c["weights"][..., 1:-1].detach(), opts.N_importance,
                        deterministic=not opts.perturb, generator=generator)
    t_all, _ = torch.sort(torch.cat([t_coarse, t_fine.detach()], -1), -1)
    out_f = _shade(fine, rays, t_all, opts, generator)
    out = {k: v for k, v in out_f.items() if k != "weights"}
    out.update({f"{k}_coarse": v for k, v in out_c.items() if k != "weights"})
    return out


def render_in_chunks(rays: RayBundle, coarse: Field, fine: Optional[Field], opts: RenderOptions,
                     chunk: int, generator=None) -> Dict[str, torch.Tensor]:
    """``render_rays`` over ``chunk`` rays at a time, concatenated; memory stays bounded."""
    pieces = [render_rays(rays[s:s + chunk], coarse, fine, opts, generator)
              for s in range(0, len(rays), chunk)]
    return {k: torch.cat([p[k] for p in pieces]) for k in pieces[0]}
