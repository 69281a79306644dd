"""2-D image fitting with a coordinate MLP per activation: the SIREN paper's first experiment
(what fit_image.py runs).

Each setting is an MLP f: [-1, 1]^2 -> pixel value built from the activation registry
(``ActLinear`` layers with the activation's own init) plus a linear output layer,
trained full-batch on every pixel with Adam and an lr that decays to 0.1x over the run
(the schedule of the FINER benchmark scripts). Targets are scaled to [-1, 1] for training
(as SIREN and FINER do); PSNR is measured on the prediction clipped to [0, 1].

Settings (``SETTINGS``) and their lr (from the FINER benchmark scripts unless noted):
  relu_pe  ReLU on NeRF's positional encoding (L = multires = 10), lr 1e-3
  relu     ReLU on raw coordinates, lr 1e-3
  sin      SIREN, omega0 30 for every layer, SIREN init, lr 5e-4 (SIREN's paper: 1e-4)
  cos      as sin with cos
  gauss    exp(-(10 z)^2), lr 5e-3 (FINER's script uses s = 30)
  wire     complex Gabor, omega 20, s0 10, lr 5e-3; hidden width / sqrt(2) as in the
           authors' code, since a complex unit holds two real numbers
  finer    FINER, omega0 30, first bias ~ U(-1, 1), lr 5e-4

The figure has a column per setting (the ground truth first) with the fitted image,
|grad f| and the Laplacian of f, both by autograd, as in SIREN's Fig. 1; for the ground
truth they are finite differences. Each derivative panel is scaled to its own 99th
percentile of |value| (SIREN does the same), so compare structure, not levels.
"""
import csv
import os
import time
from dataclasses import dataclass
from typing import Dict, Iterator, List, Optional, Sequence, Tuple

import cv2
import numpy as np
import torch
from torch import nn

from models.activations import ACTIVATIONS, ActivationConfig, ActLinear, default_linear_init
from models.encoding import PositionalEncoding
from models.nerf import layer_width, real_output, run_trunk
from utils.errors import UserError
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
    the output, as in WIRE's own code (evaluated in real arithmetic, as ``NeRF`` does). The output layer keeps PyTorch's default init
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
        h, imag = run_trunk(self.layers, self.encoding(coords), exact=exact)
        return real_output(self.output, h, imag)


def activation_config(setting: Setting, omega0: float = 30.0, **overrides) -> ActivationConfig:
    return ActivationConfig(setting.activation, first_omega0=omega0, omega0=omega0, siren_init=True, **overrides)


def build_model(name: str, out_dim: int, width: int, depth: int, seed: int, multires: int = 10,
                omega0: float = 30.0, **overrides) -> CoordinateMLP:
    setting = SETTINGS[name]
    width = layer_width(width, ACTIVATIONS[setting.activation].complex_valued, "matched")
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


def log_steps_for(steps: int, every: int) -> List[int]:
    """Step 0, every ``every`` steps, and the last step."""
    return sorted(set(range(0, steps + 1, every)) | {steps})


# ------------------------------------------------------------------ the study
def fit_settings(image: np.ndarray, names: Sequence[str], steps: int, log_steps: Sequence[int], width: int,
                 depth: int, seed: int = 0, multires: int = 10, omega0: float = 30.0, lr: Optional[float] = None,
                 **overrides) -> Iterator[Tuple[str, Dict]]:
    """Fit each setting in ``names`` (repeats dropped, order kept) to ``image`` in turn and
    yield (name, result): ``fit``'s dict plus 'lr' (``lr``, else the setting's own) and the
    autograd 'grad' and 'lap' maps of the fitted network. ``overrides`` go to
    ``ActivationConfig`` (gauss_scale, wire_omega0, wire_s0, first_bias_scale)."""
    c = image.shape[2]
    for name in dict.fromkeys(names):
        setting_lr = lr if lr is not None else SETTINGS[name].lr
        model = build_model(name, c, width, depth, seed, multires, omega0, **overrides)
        r = fit(model, image, steps, setting_lr, log_steps)
        r["lr"] = setting_lr
        r["grad"], r["lap"] = derivatives(model, image.shape[0])
        yield name, r


def write_figure(image: np.ndarray, results: Dict[str, Dict], steps: int, path: str) -> None:
    """``make_figure`` with the ground truth first, then each setting titled with its PSNR
    after ``steps``."""
    columns = [("ground truth", image, *image_derivatives(image))]
    columns += [(f"{name}\n{r['psnr'][steps]:.2f} dB", r["recon"], r["grad"], r["lap"]) for name, r in results.items()]
    make_figure(columns, path)
