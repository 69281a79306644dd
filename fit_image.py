"""Fit one image with a coordinate MLP per activation: the SIREN paper's first experiment.

One MLP f: [-1, 1]^2 -> pixel value per setting, trained full-batch on every pixel with
Adam (lr decaying to 0.1x over the run); runs/image_fit.py has the models, the settings
and their learning rates, the training and the figure. Outputs in ``--out``:

  psnr.csv, psnr.md  PSNR (dB, prediction clipped to [0, 1]) per setting after the
                     logged numbers of steps, and the training time;
  figure.png         a column per setting (the ground truth first) with the fitted
                     image, |grad f| and the Laplacian of f (autograd; finite
                     differences for the ground truth), as in SIREN's Fig. 1.

Settings: relu_pe, relu, sin, cos, gauss, wire, finer (``--settings``; all by default).

Defaults (256 x 256, width 64, 3 activation layers, 200 steps) are sized so that all seven
settings take a couple of minutes on 2 CPU cores; they are far from converged (SIREN's
paper uses 256 x 5 layers and thousands of steps). WIRE suffers most from the small width:
its first-layer wavelets are narrow (s0 = 10), so few units cover each pixel. Measured on
128 x 128, 100 steps, lr 5e-3 (``--width`` 64, 91, 182): 45 complex units 16.0 dB, 64: 21.8 dB,
128: 36.5 dB (15.9, 21.9 and 36.9 before wire's real-arithmetic evaluation).
Pass e.g. ``--width 256 --steps 1000`` for a closer look.

Example: ``OMP_NUM_THREADS=1 python fit_image.py --steps 500``.
"""
import argparse
import os

import torch

from runs.image_fit import SETTINGS, fit_settings, load_image, log_steps_for, write_figure, write_tables
from utils.config import FLOAT_RANGES, check_float, check_output_folder
from utils.errors import UserError, run_cli
from utils.runtime import configure_backend


# ------------------------------------------------------------------ CLI
def parse(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--image", type=str, default=None, help="image file (default: skimage cameraman)")
    p.add_argument("--size", type=int, default=256, help="resize the (centre-cropped) image to N x N; 0 keeps it")
    p.add_argument("--settings", type=str, nargs="+", default=list(SETTINGS),
                   help=f"which settings to run, from {list(SETTINGS)}")
    p.add_argument("--steps", type=int, default=200, help="full-batch Adam steps per setting")
    p.add_argument("--lr", type=float, default=None, help="learning rate for every setting (default: per setting)")
    p.add_argument("--width", type=int, default=64, help="units per hidden layer")
    p.add_argument("--depth", type=int, default=3, help="hidden (activation) layers")
    p.add_argument("--multires", type=int, default=10, help="positional-encoding frequencies for relu_pe")
    p.add_argument("--omega0", type=float, default=30.0, help="omega0 of sin/cos/finer (every layer)")
    p.add_argument("--gauss_scale", type=float, default=10.0, help="gauss: s in exp(-(s z)^2)")
    p.add_argument("--wire_omega0", type=float, default=20.0, help="wire: omega")
    p.add_argument("--wire_s0", type=float, default=10.0, help="wire: s0")
    p.add_argument("--first_bias_scale", type=float, default=1.0, help="finer: first bias ~ U(-k, k)")
    p.add_argument("--seed", type=int, default=0, help="seed of the init generator (same for every setting)")
    p.add_argument("--out", type=str, default="./fit_image_out", help="output folder")
    p.add_argument("--log_every", type=int, default=50, help="steps between PSNR columns")
    try:
        args = p.parse_args(argv)
    except SystemExit as exc:
        if exc.code == 0:  # --help
            raise
        raise UserError("invalid command-line arguments (see the message above)") from None
    unknown = [s for s in args.settings if s not in SETTINGS]
    if unknown:
        raise UserError(f"unknown setting(s) {', '.join(unknown)}; expected from {list(SETTINGS)}")
    for flag in ("steps", "width", "depth", "log_every"):
        if getattr(args, flag) < 1:
            raise UserError(f"--{flag} must be >= 1, got {getattr(args, flag)}")
    if args.size < 0 or args.size == 1:
        raise UserError(f"--size must be 0 or >= 2, got {args.size}")
    if args.multires < 0:
        raise UserError(f"--multires must be >= 0, got {args.multires}")
    check_floats(args)
    check_output_folder(args.out, "--out")
    return args


def check_floats(args) -> None:
    """Finite values in the ranges that mean something (as train.py's ``FLOAT_RANGES``)."""
    for flag in ("lr", "omega0", "gauss_scale", "wire_omega0", "wire_s0", "first_bias_scale"):
        if getattr(args, flag) is not None:
            check_float(flag, getattr(args, flag), FLOAT_RANGES[{"lr": "lrate"}.get(flag, flag)])


def main(argv=None) -> int:
    args = parse(argv)
    configure_backend(torch.device("cpu"))  # subnormals flushed (gauss, wire), deterministic vector math
    image = load_image(args.image, args.size)
    if image.shape[0] < 2:
        raise UserError("the image must be at least 2 x 2 pixels")
    os.makedirs(args.out, exist_ok=True)
    n, c = image.shape[0], image.shape[2]
    print(f"image {n}x{n}x{c}, {args.steps} steps, width {args.width}, depth {args.depth}, "
          f"torch threads {torch.get_num_threads()}")
    log_steps = log_steps_for(args.steps, args.log_every)
    results = {}
    for name, r in fit_settings(image, args.settings, args.steps, log_steps, args.width, args.depth, args.seed,
                                args.multires, args.omega0, args.lr, gauss_scale=args.gauss_scale,
                                wire_omega0=args.wire_omega0, wire_s0=args.wire_s0,
                                first_bias_scale=args.first_bias_scale):
        results[name] = r
        print(f"{name:8s} lr {r['lr']:g}: " + " ".join(f"{s}:{r['psnr'][s]:.2f}" for s in log_steps)
              + f"  ({r['seconds']:.1f} s)", flush=True)
    print(write_tables(results, log_steps, args.out), end="")
    write_figure(image, results, args.steps, os.path.join(args.out, "figure.png"))
    print(f"wrote {os.path.join(args.out, 'psnr.csv')}, psnr.md and figure.png")
    return 0


if __name__ == "__main__":
    run_cli(main)
