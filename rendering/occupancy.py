"""Occupancy grid over a bounded scene's box: which cells can hold density.

The renderer asks ``query(pts)`` and sends only samples in occupied cells through the
MLP (see ``rendering/renderer.py``). The grid is a cache of the coarse network's density,
kept up to date during training:

- ``density``: a float grid (res^3 cells over ``bbox``) of the *activated* density
  (relu or softplus of sigma_raw, as the renderer applies it, without training noise).
  An update evaluates the network at one jittered point inside each chosen cell and sets
  ``density = max(density * decay, new)`` on those cells. The max keeps a cell occupied
  for a while after it was last seen dense (a single jittered point can miss a thin
  surface), the decay lets cells that the network has emptied fall below the threshold.
  Cells not chosen keep their value. Warm-up updates (below) replace the density instead:
  the network changes fastest then, and a transient it has already left would otherwise
  hold for ~45 updates at decay 0.95 (sin on lego100: density ~2 everywhere in the first
  100 steps, 93% of the cells empty by step 300, yet the max-decayed grid stayed fully
  occupied until step ~1300, at a third of the steady step rate).
- which cells: during the first ``warmup`` updates every cell; afterwards a random
  quarter of all cells plus the occupied ones (a random quarter-of-all of them when more
  are occupied), so that empty cells are re-checked now and then and occupied ones often.
- ``binary``: ``density > min(thresh, mean(density))``, where ``thresh`` is the density
  whose opacity over a one-cell step (the mean cell side, world units) is ``occ_thresh``:
  ``thresh = -log(1 - occ_thresh) / cell``. Clamping to the mean keeps an untrained
  network's (uniformly low) density from emptying the whole grid.
- warm-up: until ``warmup`` updates have been made, every cell stays occupied (nothing
  is skipped) while the density grid fills in. An untrained network has no geometry
  yet; skipping by its density early on starves the samples that would create it.
- a grid whose density is zero everywhere stays fully occupied: emptying it would stop
  every gradient for good. This happened on lego: a ReLU coarse net with zero density
  everywhere at init emptied the grid at its first update, and the renders stayed white
  (9.9 dB after 120 s, against 20.7 dB without the grid). The density head's bias
  (``--sigma_bias_init``, models/nerf.py) now prevents such a net; the guard stays.

Points outside ``bbox`` are empty. Updates run under ``no_grad`` in chunks of ``chunk``
points, in the caller's precision (``train.py`` calls them outside autocast, i.e. fp32);
non-finite densities count as occupied (NaN) or very dense (inf), never as empty.
``state_dict`` holds tensors only, so checkpoints load with ``weights_only=True``.
"""
import math
from typing import Callable, Dict, Optional

import torch

from utils.errors import UserError
from rendering.volume import DENSITY_ACTIVATIONS

DensityFn = Callable[[torch.Tensor], torch.Tensor]


def field_density(field, activation: str) -> DensityFn:
    """The density the renderer sees from ``field``: act(sigma_raw) at points (N, 3) -> (N,).
    Density does not depend on the view direction, so any unit direction will do."""
    act = DENSITY_ACTIVATIONS[activation]

    def density(pts: torch.Tensor) -> torch.Tensor:
        dirs = pts.new_tensor([0.0, 0.0, 1.0]).expand_as(pts)
        return act(field(pts, dirs)[1].float())
    return density


class OccupancyGrid:
    """A res^3 binary grid of occupied cells over ``bbox`` (2, 3) = (min corner, max corner);
    a ``rendering.renderer.SpaceSkipper``."""

    def __init__(self, bbox, resolution: int = 128, occ_thresh: float = 0.01, decay: float = 0.95,
                 warmup: int = 16, device="cpu", chunk: int = 65536):
        if resolution < 1:
            raise ValueError(f"resolution must be >= 1, got {resolution}")
        if not 0.0 <= occ_thresh < 1.0:
            raise ValueError(f"occ_thresh must be in [0, 1), got {occ_thresh}")
        bbox = torch.as_tensor(bbox, dtype=torch.float32).reshape(2, 3).to(device)
        if not bool((bbox[1] > bbox[0]).all()):
            raise ValueError(f"bbox max corner must exceed the min corner, got {bbox.tolist()}")
        self.device = torch.device(device)
        self.resolution, self.decay, self.warmup, self.chunk = int(resolution), float(decay), int(warmup), int(chunk)
        self.bbox_min, self.bbox_size = bbox[0], bbox[1] - bbox[0]
        self.cell = self.bbox_size / self.resolution                 # (3,) cell sides
        self.occ_thresh = float(occ_thresh)
        self.density_thresh = -math.log1p(-self.occ_thresh) / float(self.cell.mean())
        n = self.resolution ** 3
        self.density = torch.zeros(n, device=self.device)
        self.binary = torch.ones(n, dtype=torch.bool, device=self.device)
        self.updates = 0

    @property
    def n_cells(self) -> int:
        return self.resolution ** 3

    @property
    def warming_up(self) -> bool:
        """True until ``warmup`` updates have been made."""
        return self.updates < self.warmup

    def occupied_fraction(self) -> float:
        return float(self.binary.float().mean())

    # ------------------------------------------------------------ lookup
    @torch.no_grad()
    def cell_index(self, pts: torch.Tensor):
        """(flat cell index (...), inside bbox (...)) of points (..., 3); the bbox is closed.
        In place after the first op and in int32 where r^3 fits: a render queries ~10^6
        points, and each fresh (..., 3) tensor costs about as much as the op filling it."""
        rel = (pts.float() - self.bbox_min).div_(self.bbox_size)
        inside = ((rel >= 0) & (rel <= 1)).all(-1)   # NaN compares False: outside
        r = self.resolution
        index_dtype = torch.int32 if r ** 3 < 2 ** 31 else torch.int64
        ijk = rel.nan_to_num_(0.0).mul_(r).clamp_(0, r - 1).to(index_dtype)  # floor for rel >= 0
        return (ijk[..., 0] * r + ijk[..., 1]) * r + ijk[..., 2], inside

    def query(self, pts: torch.Tensor) -> torch.Tensor:
        """Bool (...) for points (..., 3): True where the point's cell is occupied; False outside."""
        flat, inside = self.cell_index(pts)
        return inside & self.binary[flat]

    # ------------------------------------------------------------ update
    def _cells_to_update(self, generator, all_cells: bool) -> torch.Tensor:
        n = self.n_cells
        if all_cells or self.warming_up:
            return torch.arange(n, device=self.device)
        k = max(1, n // 4)
        random_cells = torch.randperm(n, generator=generator, device=self.device)[:k]
        occupied = self.binary.nonzero().squeeze(1)
        if occupied.numel() > k:
            occupied = occupied[torch.randperm(occupied.numel(), generator=generator, device=self.device)[:k]]
        return torch.cat([random_cells, occupied])

    def cell_points(self, cells: torch.Tensor, generator=None) -> torch.Tensor:
        """One point per cell (N,) -> (N, 3), uniformly jittered inside the cell."""
        r = self.resolution
        ijk = torch.stack([cells // (r * r), (cells // r) % r, cells % r], -1).float()
        u = torch.rand(ijk.shape, generator=generator, device=self.device)
        return self.bbox_min + (ijk + u) * self.cell

    @torch.no_grad()
    def update(self, density_fn: DensityFn, generator: Optional[torch.Generator] = None,
               all_cells: bool = False) -> int:
        """Re-evaluate cells with ``density_fn(points (N, 3)) -> density (N,) >= 0``; returns
        the number of points evaluated. ``generator`` (on the grid's device) drives cell
        choice and jitter, so a seeded run, and a resumed one, repeat exactly.
        ``all_cells`` evaluates every cell, as a warm-up update does."""
        cells = self._cells_to_update(generator, all_cells)
        pts = self.cell_points(cells, generator)
        sigma = torch.cat([density_fn(pts[s:s + self.chunk]).float().reshape(-1)
                           for s in range(0, pts.shape[0], self.chunk)])
        sigma = torch.nan_to_num(sigma, nan=float("inf")).clamp(min=0.0)
        new = torch.full((self.n_cells,), -1.0, device=self.device)
        new.scatter_reduce_(0, cells, sigma, reduce="amax")  # a cell chosen twice keeps its max
        seen = new >= 0
        kept = new if self.warming_up else torch.maximum(self.density * self.decay, new)
        self.density = torch.where(seen, kept, self.density)
        self.updates += 1
        self._threshold()
        return int(pts.shape[0])

    def build_from_trained(self, density_fn: DensityFn, generator: Optional[torch.Generator] = None) -> None:
        """Evaluate every cell once and threshold at once, skipping the warm-up: for a
        trained network whose checkpoint holds no grid (eval.py)."""
        self.update(density_fn, generator, all_cells=True)
        self.updates = max(self.updates, self.warmup)
        self._threshold()

    def _threshold(self) -> None:
        finite = torch.nan_to_num(self.density, posinf=torch.finfo(torch.float32).max)
        if self.warming_up or not bool((finite > 0).any()):
            self.binary = torch.ones_like(self.binary)  # warming up, or no density seen anywhere
            return
        thresh = finite.mean().clamp(max=self.density_thresh)
        self.binary = self.density > thresh

    # ------------------------------------------------------------ checkpoints
    def state_dict(self) -> Dict[str, torch.Tensor]:
        return {"density": self.density.clone(), "binary": self.binary.clone(),
                "updates": torch.tensor(self.updates), "resolution": torch.tensor(self.resolution),
                "bbox": torch.stack([self.bbox_min, self.bbox_min + self.bbox_size])}

    def load_state_dict(self, state: Dict[str, torch.Tensor]) -> None:
        res = int(state["resolution"])
        if res != self.resolution:
            raise UserError(f"the checkpoint's occupancy grid is {res}^3 but --occ_res is {self.resolution}")
        bbox = state["bbox"].to(self.device).float()
        if not torch.allclose(bbox, torch.stack([self.bbox_min, self.bbox_min + self.bbox_size])):
            raise UserError(f"the checkpoint's occupancy grid covers {bbox.tolist()}, not this scene's box")
        self.density = state["density"].to(self.device).float().clone()
        self.binary = state["binary"].to(self.device).bool().clone()
        self.updates = int(state["updates"])


def build_grid(args, bbox, device) -> Optional[OccupancyGrid]:
    """The run's grid from ``--occ_*`` (None without ``--occ_grid``); ``bbox`` is ``scene.bbox``."""
    if not args.occ_grid:
        return None
    if bbox is None:
        raise UserError(f"--occ_grid needs a bounded scene with a bounding box (blender, demo); this "
                        f"{args.dataset_type} scene has none (NDC/forward-facing scenes are not supported)")
    return OccupancyGrid(bbox, args.occ_res, args.occ_thresh, args.occ_decay, args.occ_warmup, device)
