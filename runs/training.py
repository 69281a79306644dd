"""The training state and the step: what train.py, eval.py and bench/ build runs from.

``Trainer`` holds everything a checkpoint holds (networks, optimizer, LR schedule, step,
generator states, occupancy grid) and builds it from a config in one place, as
multinerf's ``train_utils.setup_model`` does. ``load_trained`` restores the networks
and grid of a checkpoint for rendering (eval.py, export scripts). ``timed_step`` is the
one training step every loop calls (train.py, bench/quality_at_budget.py,
bench/throughput.py): precrop schedule, gradient step, grid upkeep, timed and synced.
"""
import os
import time
from dataclasses import dataclass, replace
from typing import Callable, Dict, List, Optional, Tuple

import torch

from datasets.batching import CameraViews, RayBatcher, onto_background
from models import build_fields
from rendering.occupancy import build_grid, field_density
from rendering.renderer import RayNoise, RenderOptions, render_rays
from runs import guards, layout
from runs.distributed import DistInfo, all_reduce_step, broadcast_grid
from utils.checkpoint import CheckpointUnreadable, load_checkpoint, nonfinite_tensors, save_checkpoint
from utils.errors import Diverged, UserError
from utils.runtime import amp_dtype, autocast, sync


def run_progress(step: int, train_seconds: float, n_iters: int, time_budget: float) -> float:
    """How far a run is, in [0, 1]: the larger of step / N_iters and, with a time budget
    (> 0), training seconds / time_budget."""
    progress = step / max(1, n_iters)
    if time_budget > 0:
        progress = max(progress, train_seconds / time_budget)
    return min(1.0, progress)


def lr_factor(args, train_seconds: Callable[[], float] = lambda: 0.0) -> Callable[[int], float]:
    """step -> lr / lrate.

    ``--lrate_schedule nerf``: 0.1 ** (step / (lrate_decay * 1000)), the paper's schedule.
    ``--lrate_schedule run``: lrate_final ** p, p = ``run_progress`` (steps of --N_iters or
    seconds of --time_budget, whichever is further): the lr falls exponentially from lrate
    to lrate * lrate_final over the run, whatever its length. ``train_seconds()`` reads the
    run's training clock (checkpointed, so a resumed run continues the same curve)."""
    if args.lrate_schedule == "run":
        final, n_iters, budget = float(args.lrate_final), int(args.N_iters), float(args.time_budget)
        return lambda step: final ** run_progress(step, train_seconds(), n_iters, budget)
    decay_steps = max(1, args.lrate_decay * 1000)
    return lambda step: 0.1 ** (step / decay_steps)


def build_model(args, device, train_seconds: Callable[[], float] = lambda: 0.0):
    """(coarse, fine, optimizer, scheduler) from the config; weights drawn from ``--seed``.
    ``train_seconds()``: the run's training clock, for a schedule over a time budget."""
    init_generator = torch.Generator().manual_seed(args.seed)
    coarse, fine = build_fields(args, init_generator, device)
    params = list(coarse.parameters()) + (list(fine.parameters()) if fine is not None else [])
    optimizer = torch.optim.Adam(params, lr=args.lrate, betas=(0.9, 0.999))
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_factor(args, train_seconds))
    return coarse, fine, optimizer, scheduler


def rng_states(generator: torch.Generator) -> dict:
    states = {"generator": generator.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def restore_rng(states: dict, generator: torch.Generator) -> None:
    generator.set_state(states["generator"])
    torch.set_rng_state(states["torch"])
    if "cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])


def restore_networks(ckpt: Dict, coarse, fine, grid) -> None:
    """Load a checkpoint's networks and occupancy grid (a grid it lacks is left as built)."""
    coarse.load_state_dict(ckpt["models"]["coarse"])
    if fine is not None:
        fine.load_state_dict(ckpt["models"]["fine"])
    if grid is not None and ckpt.get("occupancy") is not None:
        grid.load_state_dict(ckpt["occupancy"])


class Trainer:
    """The state that a checkpoint holds, with save and restore."""

    def __init__(self, args, device, bbox=None, dist: Optional[DistInfo] = None):
        self.args, self.device, self.dist = args, device, dist or DistInfo()
        self.step, self.train_seconds = 0, 0.0
        self.coarse, self.fine, self.optimizer, self.scheduler = build_model(args, device, lambda: self.train_seconds)
        self.grid = build_grid(args, bbox, device)  # None unless --occ_grid (bbox: scene.bbox)
        self.generator = torch.Generator(device=device).manual_seed(args.seed)
        self.amp = amp_dtype(device, args.amp)
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.amp == torch.float16)

    def state(self) -> dict:
        """The checkpoint: keys ``layout.CHECKPOINT_KEYS``."""
        return {"step": self.step, "train_seconds": self.train_seconds,
                "models": {"coarse": self.coarse.state_dict(),
                           "fine": self.fine.state_dict() if self.fine is not None else None},
                "optimizer": self.optimizer.state_dict(), "scheduler": self.scheduler.state_dict(),
                "scaler": self.scaler.state_dict(), "rng": rng_states(self.generator),
                "occupancy": self.grid.state_dict() if self.grid is not None else None,
                "config": {k: v for k, v in vars(self.args).items() if v is not None}}

    def load(self, path: str) -> None:
        """Resume exactly from a checkpoint (a grid it lacks starts all occupied). Its config
        must match ours but for ``guards.MAY_CHANGE_ON_RESUME``; its weights must be finite."""
        ckpt = load_checkpoint(path, map_location=self.device)
        guards.require_same_config(ckpt, self.args, path, guards.MAY_CHANGE_ON_RESUME, "checkpoint")
        require_finite(ckpt, path)
        restore_networks(ckpt, self.coarse, self.fine, self.grid)
        self.optimizer.load_state_dict(ckpt["optimizer"])
        self.scheduler.load_state_dict(ckpt["scheduler"])
        self.scaler.load_state_dict(ckpt["scaler"])
        restore_rng(ckpt["rng"], self.generator)
        self.step, self.train_seconds = int(ckpt["step"]), float(ckpt.get("train_seconds", 0.0))

    def done(self) -> bool:
        """Reached --N_iters, or --time_budget seconds of training."""
        return layout.training_done(self.step, self.args.N_iters, self.train_seconds, self.args.time_budget)

    def render_options(self, train: bool) -> RenderOptions:
        return RenderOptions.from_args(self.args, train, self.grid)

    @property
    def parameters(self) -> List[torch.nn.Parameter]:
        return [p for m in (self.coarse, self.fine) if m is not None for p in m.parameters()]

    @property
    def n_params(self) -> int:
        return sum(p.numel() for m in (self.coarse, self.fine) if m is not None for p in m.parameters())

    def save(self, run_dir: str) -> str:
        """Checkpoint, then ``train_state.json`` (what sweeps and compare.py read); only rank
        0 of a data-parallel run writes. Refuses (``Diverged``, on every rank: the weights
        are the same) to write non-finite weights."""
        bad = guards.nonfinite_weights((self.coarse, self.fine))
        if bad:
            raise Diverged(f"non-finite weights at step {self.step} ({', '.join(bad[:3])}"
                           f"{', ...' if len(bad) > 3 else ''})")
        path = layout.checkpoint_path(run_dir, self.step)
        if not self.dist.is_main:
            return path
        save_checkpoint(path, self.state())
        layout.write_train_state(run_dir, self.step, self.args.N_iters, self.train_seconds, self.n_params, path,
                                 self.args.time_budget)
        return path


@dataclass
class TrainedFields:
    """A checkpoint's networks and grid, ready to render (eval mode)."""
    coarse: torch.nn.Module
    fine: Optional[torch.nn.Module]
    grid: Optional[object]
    step: int

    def render_options(self, args) -> RenderOptions:
        return RenderOptions.from_args(args, train=False, occupancy=self.grid)


def require_finite(ckpt: Dict, path: str) -> None:
    bad = nonfinite_tensors(ckpt["models"])
    if bad:
        raise UserError(f"checkpoint '{path}' holds non-finite weights ({', '.join(bad[:3])}); "
                        f"the run diverged: use an earlier checkpoint (--ckpt / --ft_path)")


def resume_latest(trainer: Trainer, run_dir: str):
    """Resume from the newest readable checkpoint of ``run_dir``; an unreadable one (a
    truncated file, say) is skipped with a warning naming it and the one used. Returns
    the path resumed from, or None when there is none."""
    skipped = []
    for _, path in reversed(layout.checkpoints(run_dir)):
        try:
            trainer.load(path)
        except CheckpointUnreadable as err:
            skipped.append(path)
            print(f"warning: {err}; trying an older checkpoint")
            continue
        if skipped:
            print(f"warning: resumed from {path} instead of the unreadable {', '.join(skipped)}")
        return path
    if skipped:
        raise UserError(f"no readable checkpoint in '{run_dir}' ({len(skipped)} unreadable); "
                        f"move them away to start again, or pass --no_reload")
    return None


def load_trained(args, ckpt_path: str, device, bbox=None) -> TrainedFields:
    """The networks and occupancy grid of ``ckpt_path`` (read once) for rendering. Its
    config must match ``args`` but for ``guards.MAY_DIFFER_IN_EVAL``, and its weights be
    finite. A grid-trained checkpoint without a grid gets one built from its coarse
    network's density."""
    coarse, fine = build_fields(args, torch.Generator().manual_seed(args.seed), device)
    grid = build_grid(args, bbox, device)
    ckpt = load_checkpoint(ckpt_path, map_location=device)
    guards.require_same_config(ckpt, args, ckpt_path, guards.MAY_DIFFER_IN_EVAL, "checkpoint")
    require_finite(ckpt, ckpt_path)
    restore_networks(ckpt, coarse, fine, grid)
    if grid is not None and ckpt.get("occupancy") is None:
        print("note: the checkpoint holds no occupancy grid; building one from the coarse network")
        generator = torch.Generator(device=device).manual_seed(args.seed)
        grid.build_from_trained(field_density(coarse, args.sigma_activation), generator)
    return TrainedFields(coarse.eval(), fine.eval() if fine is not None else None, grid, int(ckpt["step"]))


@dataclass
class OpenedRun:
    """What a script that renders a trained run needs (eval.py, export.py)."""
    run_dir: str
    ckpt_path: str
    device: torch.device
    scene: object
    views: CameraViews
    trained: TrainedFields


def open_trained_run(run, ckpt, args) -> OpenedRun:
    """The run folder ``run`` (else ``<basedir>/<expname>``), its checkpoint ``ckpt`` (else
    the newest), the device, the scene, its views and the trained fields."""
    from datasets import load_scene
    from utils.runtime import configure_backend, select_device
    run_dir = run or os.path.join(args.basedir, args.expname)
    ckpt_path = ckpt or layout.latest_checkpoint(run_dir)
    if ckpt_path is None:
        raise UserError(f"no checkpoint ({layout.CHECKPOINT_GLOB}) in '{run_dir}'; train first or pass --ckpt")
    device = select_device(args.device)
    configure_backend(device)
    scene = load_scene(args)
    views = CameraViews(scene, args.white_bkgd, device)
    return OpenedRun(run_dir, ckpt_path, device, scene, views, load_trained(args, ckpt_path, device, scene.bbox))


# ---------------------------------------------------------------- the step
def train_step(trainer: Trainer, batcher: RayBatcher, opts: RenderOptions, crop_frac: float,
               stop_requested: bool = False):
    """One gradient step; returns (loss, fine mse, coarse mse, stop) as tensors (no host
    sync). In a data-parallel run this rank renders its shard of the batch, and the
    gradients, losses and stop requests are combined over ranks (runs/distributed.py)."""
    args, dist = trainer.args, trainer.dist
    opts = warmup_options(trainer, opts)
    shard = dist.shard(args.N_rand)
    rays, target = batcher.sample(args.N_rand, crop_frac, shard)
    noise = RayNoise.draw(args.N_rand, opts, trainer.fine is not None, trainer.generator, trainer.device)[shard]
    if noise.background is not None:
        target = onto_background(target, noise.background, args.white_bkgd)
    with autocast(trainer.device, trainer.amp):
        out = render_rays(rays, trainer.coarse, trainer.fine, opts, noise=noise)
    mse_fine = torch.mean((out["rgb"] - target) ** 2)
    mse_coarse = torch.mean((out["rgb_coarse"] - target) ** 2)
    loss = mse_fine + mse_coarse if trainer.fine is not None else mse_fine
    trainer.optimizer.zero_grad(set_to_none=True)
    trainer.scaler.scale(loss).backward()
    stop = torch.tensor(float(stop_requested))
    if dist.enabled:
        extras = torch.stack([loss.detach(), mse_fine.detach(), mse_coarse.detach()]).float().cpu()
        summed = all_reduce_step(trainer.parameters, torch.cat([extras, stop[None]]), dist.world_size)
        loss, mse_fine, mse_coarse = (summed[:3] / dist.world_size).unbind()
        stop = summed[3]
    trainer.scaler.step(trainer.optimizer)
    trainer.scaler.update()
    trainer.scheduler.step()
    trainer.step += 1
    return loss.detach(), mse_fine.detach(), mse_coarse.detach(), stop > 0


def warmup_options(trainer: Trainer, opts: RenderOptions) -> RenderOptions:
    """``opts`` with --occ_warmup_samples samples per ray while the grid warms up (every
    cell occupied, so every sample reaches the MLP), else ``opts``."""
    n = trainer.args.occ_warmup_samples
    if n > 0 and trainer.grid is not None and trainer.grid.warming_up:
        return replace(opts, N_samples=n)
    return opts


def update_grid(trainer: Trainer) -> int:
    """Every --occ_update_every steps, refresh the occupancy grid from the coarse network's
    density (fp32: outside autocast; no grad); data-parallel ranks then take rank 0's grid.
    Returns the points evaluated (0: not due)."""
    if trainer.grid is None or trainer.step % trainer.args.occ_update_every != 0:
        return 0
    points = trainer.grid.update(field_density(trainer.coarse, trainer.args.sigma_activation), trainer.generator)
    if trainer.dist.enabled:
        broadcast_grid(trainer.grid)
    return points


def crop_fraction(args, step: int) -> float:
    """NeRF's precrop schedule: central crops for the first --precrop_iters steps."""
    return args.precrop_frac if step < args.precrop_iters else 1.0


@dataclass
class StepResult:
    loss: torch.Tensor        # coarse + fine MSE (tensor: reading it is a host sync)
    mse_fine: torch.Tensor
    mse_coarse: torch.Tensor
    stop: torch.Tensor        # bool: a stop was requested (on any rank)
    seconds: float            # wall time of the step and grid upkeep (device synchronised)
    grid_points: int          # points the grid update evaluated (0: no update this step)


def timed_step(trainer: Trainer, batcher: RayBatcher, opts: RenderOptions,
               stop_requested: bool = False) -> StepResult:
    """One step of every training loop: precrop schedule, gradient step, grid upkeep.
    Its wall time (device synchronised) is added to ``trainer.train_seconds``."""
    sync(trainer.device)
    start = time.perf_counter()
    loss, mse_fine, mse_coarse, stop = train_step(trainer, batcher, opts, crop_fraction(trainer.args, trainer.step),
                                                  stop_requested)
    grid_points = update_grid(trainer)
    sync(trainer.device)
    seconds = time.perf_counter() - start
    trainer.train_seconds += seconds
    return StepResult(loss, mse_fine, mse_coarse, stop, seconds, grid_points)


def setup_training(args, scene, device, dist: Optional[DistInfo] = None) -> Tuple[Trainer, CameraViews, RayBatcher]:
    """Trainer, the scene's views on ``device`` and the batcher of its train split."""
    views = CameraViews(scene, args.white_bkgd, device, keep_alpha=args.random_bkgd)
    trainer = Trainer(args, device, scene.bbox, dist)
    batcher = RayBatcher(views, scene.splits["train"], trainer.generator, one_image=args.no_batching)
    return trainer, views, batcher
