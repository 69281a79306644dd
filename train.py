"""Train a NeRF with a pluggable MLP activation.

    python train.py --config configs/blender/lego.txt --activation sin

Writes ``<basedir>/<expname>/``: config.txt, TensorBoard events, checkpoints
(resumed automatically unless --no_reload), val image strips, test-set renders and
path videos. Ctrl-C saves a checkpoint and exits 0.
"""
import os
import signal
import time

import torch
from torch.utils.tensorboard import SummaryWriter
from tqdm import tqdm

from datasets import load_scene
from datasets.batching import RayBatcher, SceneRays
from models import build_fields
from utils.checkpoint import checkpoint_path, latest_checkpoint, load_checkpoint, save_checkpoint
from utils.config import build_parser, parse_args, save_config
from utils.errors import UserError, run_cli
from utils.evaluation import evaluate_views, render_path, validation_strip, write_metrics
from utils.io import atomic_write_json
from utils.metrics import mse_to_psnr
from utils.occupancy import build_grid, field_density
from utils.render import RenderOptions, render_rays
from utils.runtime import amp_dtype, autocast, configure_backend, select_device


# ---------------------------------------------------------------- setup helpers
def lr_factor(lrate_decay: int):
    """lr(step) = lrate * 0.1 ** (step / (lrate_decay * 1000)), the paper's schedule."""
    decay_steps = max(1, lrate_decay * 1000)
    return lambda step: 0.1 ** (step / decay_steps)


def build_model(args, device):
    init_generator = torch.Generator().manual_seed(args.seed)
    coarse, fine = build_fields(args, init_generator, device)
    params = list(coarse.parameters()) + (list(fine.parameters()) if fine is not None else [])
    optimizer = torch.optim.Adam(params, lr=args.lrate, betas=(0.9, 0.999))
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_factor(args.lrate_decay))
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


class Trainer:
    """The state that a checkpoint holds, with save and restore."""

    def __init__(self, args, device, bbox=None):
        self.args, self.device = args, device
        self.coarse, self.fine, self.optimizer, self.scheduler = build_model(args, device)
        self.grid = build_grid(args, bbox, device)  # None unless --occ_grid (bbox: scene.bbox)
        self.generator = torch.Generator(device=device).manual_seed(args.seed)
        self.amp = amp_dtype(device, args.amp)
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.amp == torch.float16)
        self.step, self.train_seconds = 0, 0.0

    def state(self) -> dict:
        return {"step": self.step, "train_seconds": self.train_seconds,
                "models": {"coarse": self.coarse.state_dict(),
                           "fine": self.fine.state_dict() if self.fine is not None else None},
                "optimizer": self.optimizer.state_dict(), "scheduler": self.scheduler.state_dict(),
                "scaler": self.scaler.state_dict(), "rng": rng_states(self.generator),
                "occupancy": self.grid.state_dict() if self.grid is not None else None,
                "config": {k: v for k, v in vars(self.args).items() if v is not None}}

    def load(self, path: str) -> None:
        ckpt = load_checkpoint(path, map_location=self.device)
        self.coarse.load_state_dict(ckpt["models"]["coarse"])
        if self.fine is not None:
            self.fine.load_state_dict(ckpt["models"]["fine"])
        self.optimizer.load_state_dict(ckpt["optimizer"])
        self.scheduler.load_state_dict(ckpt["scheduler"])
        self.scaler.load_state_dict(ckpt["scaler"])
        restore_rng(ckpt["rng"], self.generator)
        if self.grid is not None and ckpt.get("occupancy") is not None:
            self.grid.load_state_dict(ckpt["occupancy"])  # else it starts all occupied
        self.step, self.train_seconds = int(ckpt["step"]), float(ckpt.get("train_seconds", 0.0))

    def render_options(self, train: bool) -> RenderOptions:
        return RenderOptions.from_args(self.args, train, self.grid)

    @property
    def n_params(self) -> int:
        return sum(p.numel() for m in (self.coarse, self.fine) if m is not None for p in m.parameters())

    def save(self, run_dir: str) -> str:
        """Checkpoint, then ``train_state.json`` (what sweeps and compare.py read)."""
        path = checkpoint_path(run_dir, self.step)
        save_checkpoint(path, self.state())
        atomic_write_json(os.path.join(run_dir, "train_state.json"),
                          {"step": self.step, "N_iters": self.args.N_iters, "finished": self.step >= self.args.N_iters,
                           "train_seconds": self.train_seconds, "n_params": self.n_params,
                           "checkpoint": os.path.basename(path)})
        return path


def resume_path(args, run_dir: str):
    if args.ft_path:
        return args.ft_path
    return None if args.no_reload else latest_checkpoint(run_dir)


def log_hparams(writer: SummaryWriter, args, n_params: int) -> None:
    """Write the HParams summary so TensorBoard compares runs by activation and settings."""
    from torch.utils.tensorboard.summary import hparams
    hp = {"activation": args.activation, "dir_activation": args.dir_activation or args.activation,
          "first_omega0": args.first_omega0, "omega0": args.omega0, "siren_init": args.siren_init,
          "encoding": "none" if args.i_embed == -1 else f"pe{args.multires}/{args.multires_views}",
          "netdepth": args.netdepth, "netwidth": args.netwidth, "lrate": args.lrate,
          "N_samples": args.N_samples, "N_importance": args.N_importance, "seed": args.seed,
          "n_params": n_params}
    for summary in hparams(hp, {"val/psnr": 0.0, "train/psnr": 0.0}):
        writer.file_writer.add_summary(summary)


# ---------------------------------------------------------------- the step
def train_step(t: Trainer, batcher: RayBatcher, opts: RenderOptions, crop_frac: float):
    """One gradient step; returns (loss, fine mse, coarse mse) as tensors (no host sync)."""
    rays, target = batcher.sample(t.args.N_rand, crop_frac)
    with autocast(t.device, t.amp):
        out = render_rays(rays, t.coarse, t.fine, opts, t.generator)
    mse_fine = torch.mean((out["rgb"] - target) ** 2)
    mse_coarse = torch.mean((out["rgb_coarse"] - target) ** 2)
    loss = mse_fine + mse_coarse if t.fine is not None else mse_fine
    t.optimizer.zero_grad(set_to_none=True)
    t.scaler.scale(loss).backward()
    t.scaler.step(t.optimizer)
    t.scaler.update()
    t.scheduler.step()
    t.step += 1
    return loss.detach(), mse_fine.detach(), mse_coarse.detach()


def update_grid(t: Trainer) -> int:
    """Every --occ_update_every steps, refresh the occupancy grid from the coarse network's
    density (fp32: outside autocast; no grad). Returns the points evaluated (0: not due)."""
    if t.grid is None or t.step % t.args.occ_update_every != 0:
        return 0
    return t.grid.update(field_density(t.coarse, t.args.sigma_activation), t.generator)


def crop_fraction(args, step: int) -> float:
    """NeRF's precrop schedule: central crops for the first --precrop_iters steps."""
    return args.precrop_frac if step < args.precrop_iters else 1.0


def train_iteration(t: Trainer, batcher: RayBatcher, opts: RenderOptions):
    """One step of the training loop: precrop schedule, gradient step, grid upkeep.
    Returns train_step's (loss, fine mse, coarse mse)."""
    losses = train_step(t, batcher, opts, crop_fraction(t.args, t.step))
    update_grid(t)
    return losses


def log_train_scalars(writer: SummaryWriter, t: Trainer, loss, mse_fine, mse_coarse, rays_per_sec: float) -> float:
    """The periodic training scalars; returns the fine PSNR."""
    fine_psnr = mse_to_psnr(mse_fine.item())
    writer.add_scalar("train/loss", loss.item(), t.step)
    writer.add_scalar("train/psnr", fine_psnr, t.step)
    writer.add_scalar("train/psnr_coarse", mse_to_psnr(mse_coarse.item()), t.step)
    writer.add_scalar("lr", t.scheduler.get_last_lr()[0], t.step)
    writer.add_scalar("train/rays_per_sec", rays_per_sec, t.step)
    writer.add_scalar("train/seconds", t.train_seconds, t.step)
    if t.grid is not None:
        writer.add_scalar("train/occupied_fraction", t.grid.occupied_fraction(), t.step)
    return fine_psnr


def log_validation(t: Trainer, rays: SceneRays, writer: SummaryWriter, val_indices) -> float:
    idx = int(val_indices[(t.step // max(1, t.args.i_img)) % len(val_indices)])
    strip, val_psnr, val_ssim = validation_strip(rays, idx, t.coarse, t.fine, t.render_options(False),
                                                 t.args.chunk, t.amp)
    writer.add_scalar("val/psnr", val_psnr, t.step)
    writer.add_scalar("val/ssim", val_ssim, t.step)
    writer.add_image("val/gt_pred_depth", strip, t.step, dataformats="HWC")
    return val_psnr


def periodic_renders(t: Trainer, rays: SceneRays, scene, run_dir: str) -> None:
    args, opts = t.args, t.render_options(False)
    if args.i_testset > 0 and t.step % args.i_testset == 0 and len(scene.splits["test"]):
        outdir = os.path.join(run_dir, f"testset_{t.step:07d}")
        metrics = evaluate_views(rays, scene.splits["test"], t.coarse, t.fine, opts, args.chunk, outdir, amp=t.amp)
        write_metrics(os.path.join(outdir, "metrics.json"), {**metrics, "step": t.step})
        tqdm.write(f"[step {t.step}] test PSNR {metrics['psnr']:.2f} over {metrics['n_images']} views -> {outdir}")
    if args.i_video > 0 and t.step % args.i_video == 0:
        poses = torch.from_numpy(scene.render_poses).float()
        render_path(rays, poses, t.coarse, t.fine, opts, args.chunk,
                    os.path.join(run_dir, f"video_{t.step:07d}"), args.render_factor, t.amp)


class StopFlag:
    """First Ctrl-C asks the loop to checkpoint and stop after the current step."""

    def __init__(self):
        self.requested = False
        self.previous = signal.signal(signal.SIGINT, self._handle)

    def _handle(self, signum, frame):
        if self.requested:  # second Ctrl-C: stop now
            signal.signal(signal.SIGINT, self.previous)
            raise KeyboardInterrupt
        self.requested = True

    def restore(self):
        signal.signal(signal.SIGINT, self.previous)


# ---------------------------------------------------------------- main
def main(argv=None) -> int:
    args = parse_args(build_parser(description=__doc__), argv)
    device = select_device(args.device)
    configure_backend(device)
    scene = load_scene(args)
    if len(scene.splits["train"]) == 0:
        raise UserError(f"{args.datadir}: the train split is empty")
    run_dir = os.path.join(args.basedir, args.expname)
    os.makedirs(run_dir, exist_ok=True)
    save_config(args, os.path.join(run_dir, "config.txt"))

    rays = SceneRays(scene, args.white_bkgd, device)
    t = Trainer(args, device, scene.bbox)
    if (path := resume_path(args, run_dir)) is not None:
        t.load(path)
        print(f"resumed from {path} at step {t.step}")
    batcher = RayBatcher(rays, scene.splits["train"], t.generator, one_image=args.no_batching)
    val_indices = scene.splits["val"] if len(scene.splits["val"]) else scene.splits["test"]
    opts = t.render_options(train=True)
    writer = SummaryWriter(run_dir)
    n_params = t.n_params
    if t.step == 0:
        log_hparams(writer, args, n_params)
    print(f"{scene.name}: {len(scene.splits['train'])} train views {scene.H}x{scene.W}, "
          f"activation {args.activation}, {n_params} parameters, device {device}")

    stop = StopFlag()
    bar = tqdm(total=args.N_iters, initial=t.step, dynamic_ncols=True, desc=args.expname)
    last_log, last_step = time.perf_counter(), t.step
    try:
        while t.step < args.N_iters and not stop.requested:
            tick = time.perf_counter()
            loss, mse_fine, mse_coarse = train_iteration(t, batcher, opts)
            t.train_seconds += time.perf_counter() - tick
            bar.update(1)
            if t.step % args.i_print == 0 or t.step == 1:
                now = time.perf_counter()
                rays_per_sec = args.N_rand * (t.step - last_step) / max(now - last_log, 1e-9)
                last_log, last_step = now, t.step
                fine_psnr = log_train_scalars(writer, t, loss, mse_fine, mse_coarse, rays_per_sec)
                bar.set_postfix(loss=f"{loss.item():.4f}", psnr=f"{fine_psnr:.2f}")
            if args.i_img > 0 and t.step % args.i_img == 0:
                val_psnr = log_validation(t, rays, writer, val_indices)
                bar.set_postfix(loss=f"{loss.item():.4f}", psnr=f"{mse_to_psnr(mse_fine.item()):.2f}",
                                val=f"{val_psnr:.2f}")
            if args.i_weights > 0 and t.step % args.i_weights == 0:
                t.save(run_dir)
            periodic_renders(t, rays, scene, run_dir)
    finally:
        stop.restore()
        bar.close()
    path = t.save(run_dir)
    writer.close()
    print(("interrupted: " if stop.requested else "") + f"saved {path} at step {t.step}")
    return 0


if __name__ == "__main__":
    run_cli(main)
