"""Evaluate a trained run on its test split and render its camera path.

    python eval.py --run logs/<expname>            # saved config + latest checkpoint
    python eval.py --config FILE --ckpt PATH        # any config / checkpoint

Writes ``--outdir`` (default ``<run>/eval_<step>/``): NNN.png, NNN_depth.png (with a
near/far legend below), metrics.json (computed on 8-bit renders), test_views.gif and
path.gif (+ .mp4 with imageio-ffmpeg), and prints a summary table. Every test image is
used unless ``--testskip N`` is given here.

LPIPS (``--lpips_net vgg|alex``, default vgg as in the NeRF paper) is computed only from
local files (utils.metrics.LPIPS); otherwise metrics.json has ``lpips: null`` and
``lpips_note`` names the missing files. Evaluating a run's newest checkpoint on its whole
test split also writes ``test/psnr`` and ``test/ssim`` at the checkpoint's step into the
run's TensorBoard events (the HParams tab's test columns).
"""
import argparse
import os
from typing import List

import torch
from tqdm import tqdm

from runs import layout
from runs.camera_path import load_camera_path, render_camera_path
from runs.evaluation import evaluate_views, render_path, write_metrics
from runs.summary import run_settings
from runs.training import open_trained_run
from utils.config import check_output_folder, parse_script_args
from utils.errors import UserError, run_cli
from utils.metrics import DEFAULT_LPIPS_NET, LPIPS, LPIPS_BACKBONES
from utils.runtime import amp_dtype


def eval_only_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(add_help=False, allow_abbrev=False, description="eval.py options")
    p.add_argument("--run", type=str, default=None, help="run directory <basedir>/<expname>")
    p.add_argument("--ckpt", type=str, default=None, help="checkpoint (default: the run's latest)")
    p.add_argument("--outdir", type=str, default=None, help="output folder (default <run>/eval_<step>)")
    p.add_argument("--camera_path", type=str, default=None,
                   help="render this camera path (nerfstudio camera_path.json or a list of camera-to-world "
                        "matrices; runs/camera_path.py) to <outdir>/camera_path.mp4 + .gif instead of the views")
    p.add_argument("--split", type=str, default="test", choices=["test", "val", "train"], help="views to evaluate")
    p.add_argument("--no_path", action="store_true", help="skip the camera-path GIF/MP4")
    p.add_argument("--lpips_net", type=str, default=DEFAULT_LPIPS_NET, choices=sorted(LPIPS_BACKBONES),
                   help="LPIPS backbone (default vgg: the NeRF paper's LPIPS; nerfstudio reports alex)")
    p.add_argument("--lpips_weights", type=str, default=None,
                   help="the backbone's torchvision checkpoint (vgg16-397923af.pth / alexnet-owt-7be5be79.pth); "
                        "default: the local torch hub cache. Nothing is downloaded")
    return p


def run_config_args(ev: argparse.Namespace, rest: List[str]) -> List[str]:
    return layout.run_config_args(ev.run, rest)


def print_summary(metrics: dict, outdir: str) -> None:
    lp = "unavailable" if metrics["lpips"] is None else f"{metrics['lpips']:.4f} ({metrics['lpips_net']})"
    ss = "unavailable (images under 11 pixels)" if metrics["ssim"] is None else f"{metrics['ssim']:.4f}"
    rows = [("activation", metrics["activation"]), ("step", metrics["step"]),
            ("views", f"{metrics['n_images']} at {metrics['width']}x{metrics['height']}"),
            ("PSNR", f"{metrics['psnr']:.2f} dB"), ("SSIM", ss), ("LPIPS", lp),
            ("s / image", f"{metrics['seconds_per_image']:.2f}"), ("output", outdir)]
    width = max(len(k) for k, _ in rows)
    print("-" * (width + 30))
    for key, value in rows:
        print(f"{key:<{width}} | {value}")
    print("-" * (width + 30))
    if metrics["lpips"] is None:
        print(f"LPIPS unavailable: {metrics['lpips_note']}")


def test_scalars_target(ev: argparse.Namespace, args, run_dir: str, ckpt_path: str):
    """(run folder, "") when this evaluation's PSNR/SSIM belong in the run's TensorBoard
    events as ``test/psnr`` / ``test/ssim``: the run's own newest checkpoint, on every view
    of its test split. Else (None, why not)."""
    if ev.split != "test":
        return None, f"--split {ev.split} is not the test split"
    if args.testskip > 1:
        return None, f"--testskip {args.testskip} scores a subset of the test views"
    newest = layout.latest_checkpoint(run_dir)
    if not os.path.isfile(layout.config_path(run_dir)) or newest is None:
        return None, f"'{run_dir}' is not a trained run folder"
    if os.path.realpath(ckpt_path) != os.path.realpath(newest):
        return None, f"{ckpt_path} is not the run's newest checkpoint ({os.path.basename(newest)})"
    return run_dir, ""


def log_test_scalars(run_dir: str, step: int, metrics: dict) -> None:
    """test/psnr and test/ssim at ``step`` into a new events file of the run folder."""
    from torch.utils.tensorboard import SummaryWriter
    writer = SummaryWriter(run_dir)
    try:
        writer.add_scalar("test/psnr", metrics["psnr"], step)
        if metrics["ssim"] is not None:
            writer.add_scalar("test/ssim", metrics["ssim"], step)
    finally:
        writer.close()


def report_test_scalars(ev, args, run_dir: str, ckpt_path: str, step: int, metrics: dict) -> None:
    target, why_not = test_scalars_target(ev, args, run_dir, ckpt_path)
    if target is not None:
        log_test_scalars(target, step, metrics)
        print(f"TensorBoard: test/psnr, test/ssim at step {step} -> {target}")
    else:
        print(f"TensorBoard: test scalars not written ({why_not})")


def render_user_path(ev, args, views, trained, outdir: str) -> None:
    """--camera_path: the user's path at its own size and field of view, to MP4 + GIF."""
    poses, K, H, W, fps = load_camera_path(ev.camera_path, views.W, views.H)
    bar = lambda xs: tqdm(xs, desc="camera path", dynamic_ncols=True)
    written = render_camera_path(views, poses, K, H, W, trained, args, os.path.join(outdir, "camera_path"), fps, bar)
    print(f"{len(poses)} frames at {W}x{H}, {fps:g} fps -> {', '.join(written)}")


def main(argv=None) -> int:
    ev, args = parse_script_args(eval_only_parser(), argv, __doc__, run_config_args)
    if ev.outdir is not None:
        check_output_folder(ev.outdir, "--outdir")
    if ev.lpips_weights is not None and not os.path.isfile(ev.lpips_weights):
        raise UserError(f"--lpips_weights '{ev.lpips_weights}' is not a file")
    run = open_trained_run(ev.run, ev.ckpt, args)
    run_dir, ckpt_path, device, scene, views, trained = (run.run_dir, run.ckpt_path, run.device, run.scene,
                                                         run.views, run.trained)
    outdir = ev.outdir or layout.eval_dir(run_dir, trained.step, ev.split)
    if ev.camera_path is not None:
        render_user_path(ev, args, views, trained, outdir)
        return 0
    opts, amp = trained.render_options(args), amp_dtype(device, args.amp)
    lpips = LPIPS(device, ev.lpips_net, ev.lpips_weights)
    indices = scene.splits[ev.split]
    if len(indices) == 0:
        raise UserError(f"the {ev.split} split of '{args.datadir or args.dataset_type}' is empty")
    bar = lambda xs: tqdm(xs, desc=f"{ev.split} views", dynamic_ncols=True)
    metrics = evaluate_views(views, indices, trained.coarse, trained.fine, opts, args.chunk, outdir, lpips, amp, bar)
    metrics.update({"lpips_note": lpips.reason, "lpips_net": lpips.net,
                    "lpips_weights": lpips.files.get("backbone"), "step": trained.step, **run_settings(args),
                    "split": ev.split, "testskip": args.testskip,
                    "checkpoint": os.path.abspath(ckpt_path), "expname": args.expname,
                    "dataset": args.dataset_type, "device": str(device),
                    "occupied_fraction": trained.grid.occupied_fraction() if trained.grid is not None else None})
    if not ev.no_path:
        poses = torch.from_numpy(scene.render_poses).float()
        pbar = lambda xs: tqdm(xs, desc="camera path", dynamic_ncols=True)
        metrics["path_videos"] = [os.path.basename(p) for p in render_path(
            views, poses, trained.coarse, trained.fine, opts, args.chunk, os.path.join(outdir, "path"),
            args.render_factor, amp, pbar)]
    write_metrics(layout.metrics_path(outdir), metrics)
    print_summary(metrics, outdir)
    report_test_scalars(ev, args, run_dir, ckpt_path, trained.step, metrics)
    return 0


if __name__ == "__main__":
    run_cli(main)
