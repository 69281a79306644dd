"""Coarse + fine hierarchical rendering of ray batches.

Sampler (``rendering.sampling``) and compositor (``rendering.volume``) are separate pure
functions; this module wires them to radiance-field callables
``field(pts (..., 3), dirs (..., 3)) -> (rgb_raw (..., 3), sigma_raw (...))``.

Empty-space skipping (``RenderOptions.occupancy``, a ``SpaceSkipper`` such as
``rendering.occupancy.OccupancyGrid``) and early ray termination (``stop_T``) decide
which samples are *evaluated*; they never move samples, so the sample sets, the
compositing and the hierarchical sampling are those of the plain renderer:

- coarse pass: the usual stratified samples; only those in occupied cells go through
  the coarse MLP (gathered into one flat batch, scattered back).
- fine pass: ``sample_pdf`` on the coarse weights as usual; the coarse weights are 0 in
  empty cells, so fine samples land in occupied space (up to the pdf's 1e-5 floor).
  Of the sorted union of coarse and fine samples (the grid is queried for the new ones
  only: the coarse samples' cells are known), the fine MLP evaluates those in
  occupied cells that lie before the point where the *coarse* transmittance drops below
  ``stop_T``: a sample at t with t_i <= t < t_{i+1} (coarse samples) is skipped when
  T_i = prod_{j<i} (1 - alpha_j) < stop_T. T_i bounds the coarse transmittance on
  [t_i, t_{i+1}) from above, so the test is conservative for the coarse model; it is an
  estimate for the fine model (the two networks differ), and the light it can drop is
  at most the fine transmittance there, about stop_T when the networks agree.
- a sample not evaluated gets sigma_raw = EMPTY_SIGMA_RAW and rgb_raw = 0, hence
  activated density 0, alpha 0, weight 0, and no gradient. Points are formed only for
  the samples evaluated (a 100x100 render has ~10^6 samples, ~15% of them evaluated).

Exactness: with a grid that marks every sample occupied and ``stop_T = 0`` the outputs
equal the plain renderer's (same samples, same field calls up to how points are batched).
With a grid that is right (empty cells have zero density) they are equal up to the
field's values in skipped cells. Without a grid and with ``stop_T = 0`` nothing changes.
Grid-guided marching (placing the coarse samples only in occupied segments) would
give the coarse pass more resolution but needs per-interval deltas in the compositor;
it is not done here.
"""
from dataclasses import dataclass
from typing import Callable, Dict, Optional, Protocol

import torch

from rendering.sampling import sample_pdf, stratified_samples
from rendering.volume import composite

Field = Callable[[torch.Tensor, torch.Tensor], tuple]

# Raw density of samples that are not evaluated. relu(-1e4) = 0 and softplus(-1e4) =
# log1p(exp(-1e4)) = 0 exactly in float32 (composite works in float32), training noise
# (std ~1) cannot lift it above 0, and it is finite even in fp16, so no inf * 0 = NaN
# can arise. A density activation added later must also map it to 0 (exp would).
EMPTY_SIGMA_RAW = -1e4


class SpaceSkipper(Protocol):
    """What can skip empty space (``rendering.occupancy.OccupancyGrid`` is one)."""

    def query(self, pts: torch.Tensor) -> torch.Tensor:
        """Bool (...) for points (..., 3): False where the density is known to be zero."""


@dataclass
class RenderOptions:
    N_samples: int = 64
    N_importance: int = 0
    perturb: bool = False
    lindisp: bool = False
    raw_noise_std: float = 0.0
    white_bkgd: bool = False
    sigma_activation: str = "relu"
    occupancy: Optional[SpaceSkipper] = None  # None: evaluate every sample
    stop_T: float = 0.0                 # fine pass: skip samples behind coarse transmittance < stop_T
    random_bkgd: bool = False           # a random background colour per ray (RayNoise.background)

    @classmethod
    def from_args(cls, args, train: bool, occupancy: Optional[SpaceSkipper] = None) -> "RenderOptions":
        """Options from the parsed config; ``occupancy`` (the run's grid) also turns on early
        ray termination at ``--occ_stop_T``. Random backgrounds are for training only."""
        stop_T = args.occ_stop_T if occupancy is not None else 0.0
        return cls(args.N_samples, args.N_importance, bool(args.perturb) and train, args.lindisp,
                   args.raw_noise_std if train else 0.0, args.white_bkgd, args.sigma_activation,
                   occupancy, stop_T, bool(args.random_bkgd) and train)


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


@dataclass
class RayNoise:
    """The training randomness of a ray batch, drawn up front: stratified jitter u (R, S),
    density noise n (R, S) for the coarse pass, inverse-CDF u (R, N_importance), density
    noise n (R, S + N_importance) for the fine pass, background colours U(0, 1) (R, 3)
    (``random_bkgd``); None where unused (no perturb, no raw noise, no fine pass, fixed
    background). Drawn for a whole batch and sliced by rays, so that the processes of a
    data-parallel run, each rendering a slice, use exactly the numbers one process would
    (``runs/distributed.py``)."""
    strata: Optional[torch.Tensor] = None
    raw_coarse: Optional[torch.Tensor] = None
    pdf: Optional[torch.Tensor] = None
    raw_fine: Optional[torch.Tensor] = None
    background: Optional[torch.Tensor] = None

    @classmethod
    def draw(cls, n_rays: int, opts: "RenderOptions", has_fine: bool, generator, device) -> "RayNoise":
        """In the order render_rays uses them (so a batch drawn here or inline is the same);
        the background last, so a run without it draws the same numbers as before it existed."""
        rand = lambda *shape: torch.rand(shape, device=device, generator=generator)
        randn = lambda *shape: torch.randn(shape, device=device, generator=generator)
        S, fine = opts.N_samples, has_fine and opts.N_importance > 0
        noise = cls()
        noise.strata = rand(n_rays, S) if opts.perturb else None
        noise.raw_coarse = randn(n_rays, S) if opts.raw_noise_std > 0 else None
        noise.pdf = rand(n_rays, opts.N_importance) if fine and opts.perturb else None
        noise.raw_fine = randn(n_rays, S + opts.N_importance) if fine and opts.raw_noise_std > 0 else None
        noise.background = rand(n_rays, 3) if opts.random_bkgd else None
        return noise

    def __getitem__(self, sl) -> "RayNoise":
        pick = lambda t: None if t is None else t[sl]
        return RayNoise(pick(self.strata), pick(self.raw_coarse), pick(self.pdf), pick(self.raw_fine),
                        pick(self.background))


def _points(rays: RayBundle, t: torch.Tensor) -> torch.Tensor:
    return rays.origins[..., None, :] + rays.directions[..., None, :] * t[..., None]  # (R, S, 3)


def _evaluate_where(field: Field, rays: RayBundle, t: torch.Tensor, keep: torch.Tensor):
    """``field`` at the samples where ``keep`` (R, S), gathered into one flat batch whose
    points o + t d (``_points``) are formed for those samples only; the others get
    rgb_raw 0 and sigma_raw EMPTY_SIGMA_RAW. t (R, S) -> rgb_raw (R, S, 3), sigma_raw
    (R, S) in float32, the compositor's precision (a bf16 field's values convert exactly)."""
    n, S = keep.numel(), keep.shape[-1]
    flat = keep.reshape(-1).nonzero().squeeze(1)
    if flat.numel() == 0:
        # Nothing to evaluate: run one sample (the first) and discard it, so the outputs stay
        # attached to the field's parameters (a loss over them can still call backward()).
        rgb_k, sigma_k = field(_points(rays[:1], t[:1, :1])[0], rays.viewdirs[:1])
        zero = 0.0 * (rgb_k.float().sum() + sigma_k.float().sum())
        rgb = torch.zeros(n, 3, device=t.device) + zero
        sigma = torch.full((n,), EMPTY_SIGMA_RAW, device=t.device) + zero
    else:
        kept = rays[flat // S]  # a sample's ray: its flat index // S
        rgb_k, sigma_k = field(_points(kept, t.reshape(-1)[flat, None])[:, 0], kept.viewdirs)
        rgb = torch.zeros(n, 3, device=t.device).index_copy_(0, flat, rgb_k.float())
        sigma = torch.full((n,), EMPTY_SIGMA_RAW, device=t.device).index_copy_(0, flat, sigma_k.float())
    return rgb.reshape(*keep.shape, 3), sigma.reshape(keep.shape)


def _shade(field: Field, rays: RayBundle, t: torch.Tensor, opts: RenderOptions, raw_noise,
           keep: Optional[torch.Tensor] = None, background: Optional[torch.Tensor] = None) -> Dict[str, torch.Tensor]:
    """Composite ``field`` at samples t (R, S): all of them, or those where ``keep``."""
    if keep is None:
        rgb_raw, sigma_raw = field(_points(rays, t), rays.viewdirs[..., None, :])
    else:
        rgb_raw, sigma_raw = _evaluate_where(field, rays, t, keep)
    return composite(rgb_raw.float(), sigma_raw.float(), t, rays.directions, opts.white_bkgd,
                     opts.raw_noise_std, opts.sigma_activation, noise=raw_noise, background=background)


def alive_samples(t: torch.Tensor, t_coarse: torch.Tensor, weights_coarse: torch.Tensor,
                  stop_T: float) -> torch.Tensor:
    """Bool (R, S): samples ``t`` (R, S) before the coarse transmittance falls below ``stop_T``.

    A sample with t_i <= t < t_{i+1} is alive when T_i = 1 - sum_{j<i} w_j >= stop_T, T_i
    being the coarse transmittance in front of coarse sample i (an upper bound on it
    over [t_i, t_{i+1})). Samples before t_0 use T_0 = 1."""
    w = weights_coarse.detach().float()
    T = 1.0 - torch.cat([torch.zeros_like(w[..., :1]), torch.cumsum(w[..., :-1], -1)], -1)
    idx = (torch.searchsorted(t_coarse.contiguous(), t.contiguous(), right=True) - 1).clamp(min=0)
    return T.gather(-1, idx) >= stop_T


def _occupied(opts: RenderOptions, rays: RayBundle, t: torch.Tensor) -> Optional[torch.Tensor]:
    """Bool (R, S): the samples t (R, S) in occupied cells; None without a grid."""
    return opts.occupancy.query(_points(rays, t)) if opts.occupancy is not None else None


def _both(a: Optional[torch.Tensor], b: Optional[torch.Tensor]) -> Optional[torch.Tensor]:
    return a if b is None else b if a is None else a & b


def render_rays(rays: RayBundle, coarse: Field, fine: Optional[Field], opts: RenderOptions,
                generator: Optional[torch.Generator] = None,
                noise: Optional[RayNoise] = None) -> Dict[str, torch.Tensor]:
    """Render a batch of rays. Fine outputs are ``rgb``/``depth``/``acc``/``disp``; the
    coarse ones carry a ``_coarse`` suffix (they are the only ones when N_importance is 0).
    With ``opts.occupancy`` / ``opts.stop_T`` only some samples are evaluated (module doc).
    Randomness (jitter, density noise, random backgrounds) comes from ``noise``, else is
    drawn from ``generator``."""
    if noise is None:
        noise = RayNoise.draw(len(rays), opts, fine is not None, generator, rays.origins.device)
    t_coarse = stratified_samples(rays.near, rays.far, opts.N_samples, opts.perturb, opts.lindisp, u=noise.strata)
    occupied_coarse = _occupied(opts, rays, t_coarse)
    out_c = _shade(coarse, rays, t_coarse, opts, noise.raw_coarse, occupied_coarse, noise.background)
    if opts.N_importance <= 0 or fine is None:
        out = {k: v for k, v in out_c.items() if k != "weights"}
        out.update({f"{k}_coarse": v for k, v in out.items()})
        return out
    mids = 0.5 * (t_coarse[..., 1:] + t_coarse[..., :-1])
    t_fine = sample_pdf(mids, out_c["weights"][..., 1:-1].detach(), opts.N_importance,
                        deterministic=not opts.perturb, u=noise.pdf).detach()
    t_all, order = torch.sort(torch.cat([t_coarse, t_fine], -1), -1)
    occupied = None
    if occupied_coarse is not None:  # the coarse samples' cells are known: query the new samples only
        occupied = torch.cat([occupied_coarse, _occupied(opts, rays, t_fine)], -1).gather(-1, order)
    alive = alive_samples(t_all, t_coarse, out_c["weights"], opts.stop_T) if opts.stop_T > 0 else None
    out_f = _shade(fine, rays, t_all, opts, noise.raw_fine, _both(occupied, alive), noise.background)
    out = {k: v for k, v in out_f.items() if k != "weights"}
    out.update({f"{k}_coarse": v for k, v in out_c.items() if k != "weights"})
    return out


def render_in_chunks(rays: RayBundle, coarse: Field, fine: Optional[Field], opts: RenderOptions,
                     chunk: int, generator=None) -> Dict[str, torch.Tensor]:
    """``render_rays`` over ``chunk`` rays at a time, concatenated; memory stays bounded."""
    pieces = [render_rays(rays[s:s + chunk], coarse, fine, opts, generator)
              for s in range(0, len(rays), chunk)]
    return {k: torch.cat([p[k] for p in pieces]) for k in pieces[0]}
