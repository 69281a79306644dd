"""Fit one image with a coordinate MLP per activation: the SIREN paper's first experiment.

Each setting is an MLP f: [-1, 1]^2 -> pixel value built from the activation registry
(``ActLinear`` layers with the activation's own init) plus a linear output layer,
trained full-batch on every pixel with Adam and an lr that decays to 0.1x over the run
(the schedule of the FINER benchmark scripts). Outputs in ``--out``:

  psnr.csv, psnr.md  PSNR (dB, prediction clipped to [0, 1]) per setting after the
                     logged numbers of steps, and the training time;
  figure.png         a column per setting (the ground truth first) with the fitted
                     image, |grad f| and the Laplacian of f, both by autograd, as in
                     SIREN's Fig. 1. For the ground truth they are finite differences.
                     Each derivative panel is scaled to its own 99th percentile of
                     |value| (SIREN does the same), so compare structure, not levels.

Settings and their defaults (lr from the FINER benchmark scripts unless noted):
  relu_pe  ReLU on NeRF's positional encoding (L = --multires = 10), lr 1e-3
  relu     ReLU on raw coordinates, lr 1e-3
  sin      SIREN, omega0 30 for every layer, SIREN init, lr 5e-4 (SIREN's paper: 1e-4)
  cos      as sin with cos
  gauss    exp(-(10 z)^2), lr 5e-3 (FINER's script uses s = 30)
  wire     complex Gabor, omega 20, s0 10, lr 5e-3; hidden width / sqrt(2) as in the
           authors' code, since a complex unit holds two real numbers
  finer    FINER, omega0 30, first bias ~ U(-1, 1), lr 5e-4
Targets are scaled to [-1, 1] for training (as SIREN and FINER do).

Defaults (256 x 256, width 64, 3 activation layers, 200 steps) are sized so that all seven
settings take a couple of minutes on 2 CPU cores; they are far from converged (SIREN's
paper uses 256 x 5 layers and thousands of steps). WIRE suffers most from the small width:
its first-layer wavelets are narrow (s0 = 10), so few units cover each pixel. Measured on
128 x 128, 100 steps, lr 5e-3: 45 complex units 15.9 dB, 64: 21.9 dB, 128: 36.9 dB.
Pass e.g. ``--width 256 --steps 1000`` for a closer look.

Example: ``OMP_NUM_THREADS=1 python fit_image.py --steps 500``.
"""
import argparse
import csv
import math
import os
import time
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence

import cv2
import numpy as np
import torch
from torch import nn

from models.activations import ActivationConfig, ActLinear, default_linear_init
from models.encoding import PositionalEncoding
from utils.config import FLOAT_RANGES, check_float, check_output_folder
from utils.errors import UserError, run_cli
from utils.io import image_to_float, read_image, to_uint8
from utils.metrics import mse_to_psnr
from utils.tables import markdown_table


@dataclass(frozen=True)
class Setting:
    activation: str
    lr: float
    encode: bool = False


SETTINGS: Dict[str, Setting] = {
    "relu_pe": Setting("relu", 1e-3, encode=True),
    "relu": Setting("relu", 1e-3),
    "sin": Setting("sin", 5e-4),
    "cos": Setting("cos", 5e-4),
    "gauss": Setting("gauss", 5e-3),
    "wire": Setting("wire", 5e-3),
    "finer": Setting("finer", 5e-4),
}


class CoordinateMLP(nn.Module):
    """``depth`` ActLinear layers of ``width`` units and a linear output layer.

    A complex-valued activation (wire) gets a complex output layer whose real part is
    the output, as in WIRE's own code. The output layer keeps PyTorch's default init
    for every activation (as the NeRF heads do)."""

    def __init__(self, out_dim: int, act: ActivationConfig, width: int, depth: int,
                 multires: int = 0, generator: Optional[torch.Generator] = None):
        super().__init__()
        self.encoding = PositionalEncoding(2, multires, enabled=multires > 0)
        dims = [self.encoding.out_dim] + [width] * depth
        self.layers = nn.ModuleList(
            ActLinear(dims[k], dims[k + 1], act, is_first=(k == 0), generator=generator) for k in range(depth))
        complex_out = act.spec.complex_valued
        self.output = nn.Linear(width, out_dim, dtype=torch.cfloat if complex_out else None)
        default_linear_init(self.output, 1.0, generator)

    def forward(self, coords: torch.Tensor, exact: bool = False) -> torch.Tensor:
        h = self.encoding(coords)
        for layer in self.layers:
            h = layer(h, exact=exact)
        out = self.output(h)
        return out.real if out.is_complex() else out


def activation_config(setting: Setting, omega0: float = 30.0, **overrides) -> ActivationConfig:
    return ActivationConfig(setting.activation, first_omega0=omega0, omega0=omega0, siren_init=True, **overrides)


def build_model(name: str, out_dim: int, width: int, depth: int, seed: int, multires: int = 10,
                omega0: float = 30.0, **overrides) -> CoordinateMLP:
    setting = SETTINGS[name]
    if setting.activation == "wire":
        width = max(1, int(width / math.sqrt(2)))
    return CoordinateMLP(out_dim, activation_config(setting, omega0, **overrides), width, depth,
                         multires if setting.encode else 0, torch.Generator().manual_seed(seed))


# ------------------------------------------------------------------ data
def load_image(path: Optional[str], size: int) -> np.ndarray:
    """float32 (H, W, C) in [0, 1], C = 1 or 3. Default: skimage's cameraman (512^2).
    A non-square image is centre-cropped to a square first; ``size`` > 0 resizes to
    size x size (INTER_AREA), 0 keeps the (cropped) resolution."""
    if path is None:
        from skimage import data
        img = image_to_float(data.camera(), keep_gray=True)
    else:
        if not os.path.isfile(path):
            raise UserError(f"--image '{path}' not found")
        img = read_image(path, keep_gray=True)[..., :3]  # alpha dropped
    h, w = img.shape[:2]
    s = min(h, w)
    img = img[(h - s) // 2:(h - s) // 2 + s, (w - s) // 2:(w - s) // 2 + s]
    if size > 0 and size != s:
        img = cv2.resize(img, (size, size), interpolation=cv2.INTER_AREA)
        img = img[..., None] if img.ndim == 2 else img
    return np.ascontiguousarray(img, dtype=np.float32)


def pixel_coords(n: int) -> torch.Tensor:
    """(n*n, 2) coordinates (x = column, y = row), each linspace(-1, 1, n), row-major."""
    t = torch.linspace(-1.0, 1.0, n)
    yy, xx = torch.meshgrid(t, t, indexing="ij")
    return torch.stack([xx, yy], dim=-1).reshape(-1, 2)


# ------------------------------------------------------------------ training
def fit(model: CoordinateMLP, image: np.ndarray, steps: int, lr: float, log_steps: Sequence[int]) -> Dict:
    """Full-batch Adam on all pixels; PSNR after each number of steps in ``log_steps``
    (read off the forward pass that starts the next step, so it costs nothing)."""
    n, c = image.shape[0], image.shape[2]
    coords = pixel_coords(n)
    target01 = torch.from_numpy(image).reshape(-1, c)
    target = target01 * 2 - 1
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda k: 0.1 ** min(k / max(steps, 1), 1.0))
    wanted = set(log_steps)
    history: Dict[int, float] = {}
    start = time.perf_counter()
    for step in range(steps + 1):
        pred = model(coords)
        if step in wanted:
            with torch.no_grad():
                pred01 = ((pred.detach() + 1) / 2).clamp(0, 1)
                history[step] = mse_to_psnr((pred01 - target01).square().mean().item())
        if step == steps:
            break
        loss = (pred - target).square().mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
    seconds = time.perf_counter() - start
    with torch.no_grad():
        recon = ((model(coords) + 1) / 2).clamp(0, 1).reshape(n, n, c).numpy()
    return {"psnr": history, "seconds": seconds, "recon": recon}


def derivatives(model: CoordinateMLP, n: int, chunk: int = 16384):
    """|grad f| and the Laplacian of f by autograd at the pixel coordinates, f the mean
    over channels of the output in [0, 1] units; per unit of the [-1, 1] coordinates.
    Uses the exact activations (FINER's detached factor made differentiable)."""
    coords = pixel_coords(n)
    grads, laps = [], []
    for start in range(0, coords.shape[0], chunk):
        x = coords[start:start + chunk].clone().requires_grad_(True)
        f = ((model(x, exact=True) + 1) / 2).mean(dim=-1)
        (g,) = torch.autograd.grad(f.sum(), x, create_graph=True)
        lap = torch.zeros_like(f)
        for i in range(2):
            (gi,) = torch.autograd.grad(g[:, i].sum(), x, retain_graph=True, allow_unused=True)
            if gi is not None:
                lap = lap + gi[:, i]
        grads.append(g.detach().norm(dim=-1))
        laps.append(lap.detach())
    return torch.cat(grads).reshape(n, n).numpy(), torch.cat(laps).reshape(n, n).numpy()


def image_derivatives(image: np.ndarray):
    """Finite-difference |grad| and Laplacian of the channel mean, same units as autograd's."""
    f = image.mean(axis=-1).astype(np.float64)
    dx = 2.0 / (f.shape[0] - 1)
    gy, gx = np.gradient(f, dx)
    lap = cv2.Laplacian(f, cv2.CV_64F, ksize=1, borderType=cv2.BORDER_REPLICATE) / dx ** 2
    return np.hypot(gx, gy), lap


# ------------------------------------------------------------------ outputs
def _scale(a: np.ndarray) -> float:
    s = float(np.percentile(np.abs(a), 99))
    return s if s > 0 and np.isfinite(s) else 1.0


def _panels(image01: np.ndarray, grad: np.ndarray, lap: np.ndarray) -> List[np.ndarray]:
    """uint8 BGR panels; each is rounded in its own float precision (float64 for the ground
    truth's finite differences and the Laplacian colours)."""
    recon = cv2.cvtColor(to_uint8(image01[..., 0], image01.dtype), cv2.COLOR_GRAY2BGR) \
        if image01.shape[2] == 1 else to_uint8(image01[..., ::-1], image01.dtype)
    g = grad / _scale(grad)
    g8 = to_uint8(g, g.dtype)
    grad_bgr = cv2.applyColorMap(g8, cv2.COLORMAP_VIRIDIS)
    t = np.clip(lap / _scale(lap), -1, 1)  # diverging: blue < 0 < red, white at 0
    lap_bgr = np.empty(t.shape + (3,), np.float64)
    lap_bgr[..., 0] = 1 - np.clip(t, 0, 1)   # B
    lap_bgr[..., 1] = 1 - np.abs(t)          # G
    lap_bgr[..., 2] = 1 - np.clip(-t, 0, 1)  # R
    return [recon, grad_bgr, to_uint8(lap_bgr, lap_bgr.dtype)]


def make_figure(columns: List[tuple], path: str, panel: int = 256) -> None:
    """columns: (title, image01, grad, lap). Rows: image, |grad|, Laplacian."""
    header, left, gap = 40, 90, 6
    font = cv2.FONT_HERSHEY_SIMPLEX
    ncol = len(columns)
    H = header + 3 * panel + 2 * gap
    W = left + ncol * panel + (ncol - 1) * gap
    canvas = np.full((H, W, 3), 255, np.uint8)
    for r, label in enumerate(["image", "|grad f|", "Laplacian"]):
        y = header + r * (panel + gap) + panel // 2
        cv2.putText(canvas, label, (6, y), font, 0.5, (0, 0, 0), 1, cv2.LINE_AA)
    for k, (title, image01, grad, lap) in enumerate(columns):
        x0 = left + k * (panel + gap)
        lines = title.split("\n")
        for i, line in enumerate(lines[:2]):
            cv2.putText(canvas, line, (x0 + 4, 16 + 18 * i), font, 0.5, (0, 0, 0), 1, cv2.LINE_AA)
        for r, p in enumerate(_panels(image01, grad, lap)):
            p = cv2.resize(p, (panel, panel), interpolation=cv2.INTER_NEAREST if p.shape[0] < panel else cv2.INTER_AREA)
            y0 = header + r * (panel + gap)
            canvas[y0:y0 + panel, x0:x0 + panel] = p
        if not np.any(lap):  # e.g. ReLU on raw coordinates: piecewise linear
            cv2.putText(canvas, "0 everywhere", (x0 + 8, header + 2 * (panel + gap) + panel // 2), font, 0.5,
                        (0, 0, 0), 1, cv2.LINE_AA)
    if not cv2.imwrite(path, canvas):
        raise UserError(f"cannot write '{path}'")


def write_tables(results: Dict[str, Dict], log_steps: Sequence[int], out: str) -> str:
    header = ["setting", "lr"] + [f"step {s}" for s in log_steps] + ["seconds"]
    rows = []
    for name, r in results.items():
        rows.append([name, f"{r['lr']:g}"] + [f"{r['psnr'][s]:.2f}" for s in log_steps] + [f"{r['seconds']:.1f}"])
    with open(os.path.join(out, "psnr.csv"), "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)
    text = markdown_table(header, rows) + "\n"
    with open(os.path.join(out, "psnr.md"), "w") as f:
        f.write("PSNR (dB) after N full-batch steps\n\n" + text)
    return text


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


def log_steps_for(steps: int, every: int) -> List[int]:
    return sorted(set(range(0, steps + 1, every)) | {steps})


def main(argv=None) -> int:
    args = parse(argv)
    image = load_image(args.image, args.size)
    if image.shape[0] < 2:
        raise UserError("the image must be at least 2 x 2 pixels")
    os.makedirs(args.out, exist_ok=True)
    n, c = image.shape[0], image.shape[2]
    print(f"image {n}x{n}x{c}, {args.steps} steps, width {args.width}, depth {args.depth}, "
          f"torch threads {torch.get_num_threads()}")
    log_steps = log_steps_for(args.steps, args.log_every)
    overrides = dict(gauss_scale=args.gauss_scale, wire_omega0=args.wire_omega0, wire_s0=args.wire_s0,
                     first_bias_scale=args.first_bias_scale)
    results, columns = {}, [("ground truth", image, *image_derivatives(image))]
    for name in dict.fromkeys(args.settings):
        lr = args.lr if args.lr is not None else SETTINGS[name].lr
        model = build_model(name, c, args.width, args.depth, args.seed, args.multires, args.omega0, **overrides)
        r = fit(model, image, args.steps, lr, log_steps)
        r["lr"] = lr
        results[name] = r
        grad, lap = derivatives(model, n)
        columns.append((f"{name}\n{r['psnr'][args.steps]:.2f} dB", r["recon"], grad, lap))
        print(f"{name:8s} lr {lr:g}: " + " ".join(f"{s}:{r['psnr'][s]:.2f}" for s in log_steps)
              + f"  ({r['seconds']:.1f} s)", flush=True)
    print(write_tables(results, log_steps, args.out), end="")
    make_figure(columns, os.path.join(args.out, "figure.png"))
    print(f"wrote {os.path.join(args.out, 'psnr.csv')}, psnr.md and figure.png")
    return 0


if __name__ == "__main__":
    run_cli(main)
