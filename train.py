"""Train a NeRF with a pluggable MLP activation.

    python train.py --config configs/blender/lego.txt --activation sin

Writes the run folder ``<basedir>/<expname>/`` (layout: runs/layout.py): config.txt,
TensorBoard events, checkpoints (resumed automatically unless --no_reload), val image
strips, test-set renders and path videos. One trainer per run folder (an OS lock). Ctrl-C or SIGTERM saves a
checkpoint and exits 75; a non-finite loss or weights stop the run with exit 3, keeping
only finite checkpoints (exit codes: utils/errors.py).
"""
import math
import os
import time

import torch
from torch.utils.tensorboard import SummaryWriter
from tqdm import tqdm

from datasets import load_scene
from datasets.batching import require_alpha
from runs import distributed, layout
from runs.distributed import DistInfo
from runs.evaluation import evaluate_views, render_path, validation_strip, write_metrics
from runs.summary import hparams_summaries
from runs.guards import check_batch_bounds
from runs.training import Trainer, resume_latest, setup_training, timed_step
from utils.config import build_parser, parse_args, save_config
from utils.errors import EXIT_INTERRUPTED, Diverged, UserError, run_cli
from utils.io import remove_stale_temp_files
from utils.locking import hold_lock
from utils.metrics import mse_to_psnr
from utils.runtime import StopFlag, configure_backend, select_device


def restore(trainer: Trainer, args, run_dir: str) -> None:
    """--ft_path, else the run's newest readable checkpoint (unless --no_reload)."""
    if args.ft_path:
        trainer.load(args.ft_path)
        path = args.ft_path
    else:
        path = None if args.no_reload else resume_latest(trainer, run_dir)
    if path is not None and trainer.dist.is_main:
        print(f"resumed from {path} at step {trainer.step}")


def check_loss(result, step: int) -> float:
    """The loss as a float (a host sync: only at print steps); Diverged when non-finite."""
    loss = result.loss.item()
    if not math.isfinite(loss):
        raise Diverged(f"non-finite loss ({loss}) at step {step}")
    return loss


def log_hparams(writer: SummaryWriter, args, n_params: int) -> None:
    """Write the HParams summaries so TensorBoard compares runs by activation and settings,
    with their final val PSNR and (once eval.py has run) test PSNR/SSIM (runs.summary)."""
    for summary in hparams_summaries(args, n_params):
        writer.file_writer.add_summary(summary)


def log_train_scalars(writer: SummaryWriter, trainer: Trainer, result, rays_per_sec: float) -> float:
    """The periodic training scalars; returns the fine PSNR."""
    step, fine_psnr = trainer.step, mse_to_psnr(result.mse_fine.item())
    writer.add_scalar("train/loss", result.loss.item(), step)
    writer.add_scalar("train/psnr", fine_psnr, step)
    writer.add_scalar("train/psnr_coarse", mse_to_psnr(result.mse_coarse.item()), step)
    writer.add_scalar("lr", trainer.scheduler.get_last_lr()[0], step)
    writer.add_scalar("train/rays_per_sec", rays_per_sec, step)
    writer.add_scalar("train/seconds", trainer.train_seconds, step)
    if trainer.grid is not None:
        writer.add_scalar("train/occupied_fraction", trainer.grid.occupied_fraction(), step)
    return fine_psnr


def log_validation(trainer: Trainer, views, writer: SummaryWriter, val_indices) -> float:
    """Render one val view (in turn) into TensorBoard: GT | prediction | depth, PSNR, SSIM."""
    idx = int(val_indices[(trainer.step // max(1, trainer.args.i_img)) % len(val_indices)])
    strip, val_psnr, val_ssim = validation_strip(views, idx, trainer.coarse, trainer.fine,
                                                 trainer.render_options(False), trainer.args.chunk, trainer.amp)
    writer.add_scalar("val/psnr", val_psnr, trainer.step)
    if val_ssim is not None:
        writer.add_scalar("val/ssim", val_ssim, trainer.step)
    writer.add_image("val/gt_pred_depth", strip, trainer.step, dataformats="HWC")
    return val_psnr


def periodic_renders(trainer: Trainer, views, scene, run_dir: str) -> None:
    """--i_testset: the test split with metrics; --i_video: the camera path."""
    args, step, opts = trainer.args, trainer.step, trainer.render_options(False)
    if args.i_testset > 0 and step % args.i_testset == 0 and len(scene.splits["test"]):
        outdir = layout.testset_dir(run_dir, step)
        metrics = evaluate_views(views, scene.splits["test"], trainer.coarse, trainer.fine, opts, args.chunk,
                                 outdir, amp=trainer.amp)
        write_metrics(layout.metrics_path(outdir), {**metrics, "step": step})
        tqdm.write(f"[step {step}] test PSNR {metrics['psnr']:.2f} over {metrics['n_images']} views -> {outdir}")
    if args.i_video > 0 and step % args.i_video == 0:
        poses = torch.from_numpy(scene.render_poses).float()
        render_path(views, poses, trainer.coarse, trainer.fine, opts, args.chunk,
                    layout.video_stem(run_dir, step), args.render_factor, trainer.amp)


def checkpoint_with_logs(trainer: Trainer, run_dir: str, writer) -> str:
    """Flush TensorBoard, then write the checkpoint: every step a checkpoint holds has its
    scalars on disk first, so a resume after kill -9 never lacks a logged step."""
    if writer is not None:
        writer.flush()
    return trainer.save(run_dir)


def train_loop(trainer: Trainer, batcher, views, scene, run_dir: str, writer, stop) -> bool:
    """Steps until --N_iters or a stop request, with logging, validation and checkpoints
    (``writer`` None: a data-parallel rank other than 0, which writes nothing). Returns
    whether it stopped on a request."""
    args, opts, main = trainer.args, trainer.render_options(train=True), trainer.dist.is_main
    val_indices = scene.splits["val"] if len(scene.splits["val"]) else scene.splits["test"]
    bar = tqdm(total=args.N_iters, initial=trainer.step, dynamic_ncols=True, desc=args.expname, disable=not main)
    last_log, last_step, stopping = time.perf_counter(), trainer.step, False
    try:
        while not trainer.done() and not stopping:
            result = timed_step(trainer, batcher, opts, stop.requested)
            stopping = bool(result.stop) if trainer.dist.enabled else stop.requested
            bar.update(1)
            step = trainer.step
            if step % args.i_print == 0 or step == 1:
                loss = check_loss(result, step)
                now = time.perf_counter()
                rays_per_sec = args.N_rand * (step - last_step) / max(now - last_log, 1e-9)
                last_log, last_step = now, step
                if main:
                    fine_psnr = log_train_scalars(writer, trainer, result, rays_per_sec)
                    bar.set_postfix(loss=f"{loss:.4f}", psnr=f"{fine_psnr:.2f}")
            if main and args.i_img > 0 and step % args.i_img == 0:
                bar.set_postfix(val=f"{log_validation(trainer, views, writer, val_indices):.2f}")
            if args.i_weights > 0 and step % args.i_weights == 0:
                checkpoint_with_logs(trainer, run_dir, writer)
            if main:
                periodic_renders(trainer, views, scene, run_dir)
    finally:
        bar.close()
    return stopping


def open_run(trainer: Trainer, args, run_dir: str):
    """Resume, then (rank 0) record the config and open TensorBoard; returns the writer."""
    if trainer.dist.is_main:
        for path in remove_stale_temp_files(run_dir):
            print(f"removed {path}, left by an interrupted write")
    restore(trainer, args, run_dir)
    if not trainer.dist.is_main:
        return None
    save_config(args, layout.config_path(run_dir))  # only once the checkpoint has loaded
    writer = SummaryWriter(run_dir)
    if trainer.step == 0:
        log_hparams(writer, args, trainer.n_params)
    return writer


def train_run(args, scene, device, run_dir: str, dist: DistInfo) -> int:
    """Train in ``run_dir`` (rank 0 holds its lock): resume, record the config, loop, checkpoint."""
    trainer, views, batcher = setup_training(args, scene, device, dist)
    writer = open_run(trainer, args, run_dir)
    if dist.is_main:
        print(f"{scene.name}: {len(scene.splits['train'])} train views {scene.H}x{scene.W}, "
              f"activation {args.activation}, {trainer.n_params} parameters, device {device}"
              + (f", {dist.world_size} processes" if dist.enabled else ""))
    stop = StopFlag()
    try:
        stopped = train_loop(trainer, batcher, views, scene, run_dir, writer, stop)
        path = checkpoint_with_logs(trainer, run_dir, writer)
    except Diverged as err:
        if dist.is_main:
            layout.mark_diverged(run_dir, trainer.step, args.N_iters, trainer.train_seconds, str(err))
        last = layout.latest_checkpoint(run_dir)
        raise Diverged(f"training diverged: {err}; last good checkpoint: {last or 'none'}") from None
    finally:
        stop.restore()
        if writer is not None:
            writer.close()
    if stopped:
        if dist.is_main:
            print(f"interrupted ({stop.signal_name or 'another process'}): saved {path} at step {trainer.step}; "
                  f"run the same command to resume (exit {EXIT_INTERRUPTED})")
        return EXIT_INTERRUPTED
    if dist.is_main:
        print(f"saved {path} at step {trainer.step}")
    return 0


def main(argv=None) -> int:
    args = parse_args(build_parser(description=__doc__), argv)
    dist = distributed.launched_info()
    if dist.enabled and args.time_budget > 0:
        raise UserError("--time_budget is not supported under torchrun (each process keeps its own clock, "
                        "so they would stop and decay the lr at different steps); use --N_iters")
    device = select_device(distributed.device_for(dist, args.device))
    configure_backend(device)
    scene = load_scene(args)
    if len(scene.splits["train"]) == 0:
        raise UserError(f"{args.datadir}: the train split is empty")
    if args.random_bkgd:
        require_alpha(scene)
    check_batch_bounds(args, len(scene.splits["train"]) * scene.H * scene.W, device)
    run_dir = os.path.join(args.basedir, args.expname)
    try:
        os.makedirs(run_dir, exist_ok=True)
    except OSError as err:
        raise UserError(f"cannot create the run folder '{run_dir}': {err.strerror}") from None
    distributed.init(dist, device, args.N_rand)
    try:
        if not dist.is_main:
            return train_run(args, scene, device, run_dir, dist)
        with hold_lock(layout.lock_path(run_dir), f"run folder '{run_dir}'"):
            return train_run(args, scene, device, run_dir, dist)
    finally:
        distributed.shutdown(dist)


if __name__ == "__main__":
    run_cli(main)
