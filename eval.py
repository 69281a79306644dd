"""Evaluate a trained run on its test split and render its camera path.

    python eval.py --run logs/<expname>            # saved config + latest checkpoint
    python eval.py --config FILE --ckpt PATH        # any config / checkpoint

Writes ``--outdir`` (default ``<run>/eval_<step>/``): NNN.png, NNN_depth.png,
metrics.json (computed on 8-bit renders), test_views.gif and path.gif (+ .mp4 with
imageio-ffmpeg), and prints a summary table. Every test image is used unless
``--testskip N`` is given here.
"""
import argparse
import os
import sys

import torch
from tqdm import tqdm

from datasets import load_scene
from datasets.batching import SceneRays
from models import build_fields
from utils.checkpoint import latest_checkpoint, load_checkpoint
from utils.config import build_parser, parse_args
from utils.errors import UserError, run_cli
from utils.evaluation import evaluate_views, render_path, write_metrics
from utils.metrics import LPIPS
from utils.occupancy import build_grid, field_density
from utils.render import RenderOptions
from utils.runtime import amp_dtype, configure_backend, select_device


def eval_only_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(add_help=False)
    p.add_argument("--run", type=str, default=None, help="run directory <basedir>/<expname>")
    p.add_argument("--ckpt", type=str, default=None, help="checkpoint (default: the run's latest)")
    p.add_argument("--outdir", type=str, default=None, help="output folder (default <run>/eval_<step>)")
    p.add_argument("--split", type=str, default="test", choices=["test", "val", "train"], help="views to evaluate")
    p.add_argument("--no_path", action="store_true", help="skip the camera-path GIF/MP4")
    return p


def resolve_args(argv):
    """Eval flags, then the run's saved config with command-line overrides on top."""
    if any(a in ("-h", "--help") for a in argv):
        build_parser(description=__doc__).print_help()
        print("\neval options: --run DIR, --ckpt PATH, --outdir DIR, --split {test,val,train}, --no_path")
        sys.exit(0)
    ev, rest = eval_only_parser().parse_known_args(argv)
    if not any(a == "--config" or a.startswith("--config=") for a in rest):
        if ev.run is None:
            raise UserError("give --run <basedir>/<expname> or --config FILE")
        config = os.path.join(ev.run, "config.txt")
        if not os.path.isfile(config):
            raise UserError(f"run directory '{ev.run}' has no config.txt (--run)")
        rest = ["--config", config] + rest
    if not any(a == "--testskip" or a.startswith("--testskip=") for a in rest):
        rest += ["--testskip", "1"]  # every test image unless asked otherwise
    args = parse_args(build_parser(description=__doc__), rest)
    return ev, args


def load_fields(args, ckpt_path: str, device):
    coarse, fine = build_fields(args, torch.Generator().manual_seed(args.seed), device)
    ckpt = load_checkpoint(ckpt_path, map_location=device)
    coarse.load_state_dict(ckpt["models"]["coarse"])
    if fine is not None:
        fine.load_state_dict(ckpt["models"]["fine"])
    return coarse.eval(), (fine.eval() if fine is not None else None), int(ckpt["step"])


def load_grid(args, ckpt_path: str, bbox, coarse, device):
    """The run's occupancy grid (None without --occ_grid): the checkpoint's, or, when the
    checkpoint holds none, one built by evaluating the coarse network in every cell."""
    grid = build_grid(args, bbox, device)
    if grid is None:
        return None
    state = load_checkpoint(ckpt_path, map_location=device).get("occupancy")
    if state is not None:
        grid.load_state_dict(state)
    else:
        print("note: the checkpoint holds no occupancy grid; building one from the coarse network")
        generator = torch.Generator(device=device).manual_seed(args.seed)
        grid.build_from_trained(field_density(coarse, args.sigma_activation), generator)
    return grid


def print_summary(metrics: dict, outdir: str) -> None:
    lp = "unavailable" if metrics["lpips"] is None else f"{metrics['lpips']:.4f}"
    rows = [("activation", metrics["activation"]), ("step", metrics["step"]),
            ("views", f"{metrics['n_images']} at {metrics['width']}x{metrics['height']}"),
            ("PSNR", f"{metrics['psnr']:.2f} dB"), ("SSIM", f"{metrics['ssim']:.4f}"), ("LPIPS", lp),
            ("s / image", f"{metrics['seconds_per_image']:.2f}"), ("output", outdir)]
    width = max(len(k) for k, _ in rows)
    print("-" * (width + 30))
    for key, value in rows:
        print(f"{key:<{width}} | {value}")
    print("-" * (width + 30))
    if metrics["lpips"] is None:
        print(f"LPIPS unavailable: {metrics['lpips_note']}")


def main(argv=None) -> int:
    ev, args = resolve_args(list(sys.argv[1:] if argv is None else argv))
    run_dir = ev.run or os.path.join(args.basedir, args.expname)
    ckpt_path = ev.ckpt or latest_checkpoint(run_dir)
    if ckpt_path is None:
        raise UserError(f"no checkpoint (ckpt_*.pt) in '{run_dir}'; train first or pass --ckpt")
    device = select_device(args.device)
    configure_backend(device)
    scene = load_scene(args)
    rays = SceneRays(scene, args.white_bkgd, device)
    coarse, fine, step = load_fields(args, ckpt_path, device)
    grid = load_grid(args, ckpt_path, scene.bbox, coarse, device)
    split_tag = "" if ev.split == "test" else f"{ev.split}_"
    outdir = ev.outdir or os.path.join(run_dir, f"eval_{split_tag}{step:07d}")
    opts, amp = RenderOptions.from_args(args, train=False, occupancy=grid), amp_dtype(device, args.amp)
    lpips = LPIPS(device)
    indices = scene.splits[ev.split]
    if len(indices) == 0:
        raise UserError(f"the {ev.split} split of '{args.datadir or args.dataset_type}' is empty")
    bar = lambda xs: tqdm(xs, desc=f"{ev.split} views", dynamic_ncols=True)
    metrics = evaluate_views(rays, indices, coarse, fine, opts, args.chunk, outdir, lpips, amp, bar)
    metrics.update({"lpips_note": lpips.reason, "activation": args.activation, "step": step,
                    "dir_activation": args.dir_activation or args.activation, "first_omega0": args.first_omega0,
                    "omega0": args.omega0, "siren_init": args.siren_init, "split": ev.split, "testskip": args.testskip,
                    "checkpoint": os.path.abspath(ckpt_path), "expname": args.expname,
                    "dataset": args.dataset_type, "device": str(device),
                    "occupied_fraction": grid.occupied_fraction() if grid is not None else None})
    if not ev.no_path:
        poses = torch.from_numpy(scene.render_poses).float()
        pbar = lambda xs: tqdm(xs, desc="camera path", dynamic_ncols=True)
        metrics["path_videos"] = [os.path.basename(p) for p in render_path(
            rays, poses, coarse, fine, opts, args.chunk, os.path.join(outdir, "path"), args.render_factor, amp, pbar)]
    write_metrics(os.path.join(outdir, "metrics.json"), metrics)
    print_summary(metrics, outdir)
    return 0


if __name__ == "__main__":
    run_cli(main)
