"""Rendering whole images, test-set metrics and path videos (train.py and eval.py)."""
import time
from typing import Dict, List, Optional

import numpy as np
import torch

from datasets.batching import SceneRays
from utils.io import atomic_write_json, to_uint8, write_image
from utils.metrics import LPIPS, psnr, ssim
from utils.render import RenderOptions, render_in_chunks
from utils.runtime import autocast
from utils.visual import colorize_depth, hstack, write_video


@torch.no_grad()
def render_image(rays: SceneRays, c2w: torch.Tensor, coarse, fine, opts: RenderOptions, chunk: int,
                 K=None, H=None, W=None, amp=None) -> Dict[str, np.ndarray]:
    """One camera -> {'rgb': (H, W, 3), 'depth', 'acc', 'disp': (H, W)} as numpy."""
    H, W = H or rays.H, W or rays.W
    bundle = rays.image_rays(c2w, K, H, W)
    with autocast(rays.device, amp):
        out = render_in_chunks(bundle, coarse, fine, opts, chunk)
    keys = ("rgb", "depth", "acc", "disp")
    return {k: out[k].float().reshape(H, W, -1).squeeze(-1).cpu().numpy() for k in keys}


def quantize(img: np.ndarray) -> np.ndarray:
    """8-bit quantisation, as the images are saved: metrics are computed on this."""
    return to_uint8(img).astype(np.float32) / 255.0


def evaluate_views(rays: SceneRays, indices, coarse, fine, opts: RenderOptions, chunk: int,
                   outdir: str, lpips: Optional[LPIPS] = None, amp=None, progress=None) -> Dict:
    """Render views ``indices``; write NNN.png / NNN_depth.png, a GIF, and return metrics."""
    per_image, frames, seconds = [], [], 0.0
    for n, idx in enumerate(progress(indices) if progress else indices):
        start = time.perf_counter()
        out = render_image(rays, rays.poses[idx], coarse, fine, opts, chunk, amp=amp)
        seconds += time.perf_counter() - start
        pred, gt = quantize(out["rgb"]), rays.images[idx].cpu().numpy()
        write_image(f"{outdir}/{n:03d}.png", pred)
        write_image(f"{outdir}/{n:03d}_depth.png", colorize_depth(out["depth"], out["acc"]))
        record = {"index": int(idx), "psnr": psnr(pred, gt), "ssim": ssim(pred, gt)}
        if lpips is not None and lpips.model is not None:
            record["lpips"] = lpips(pred, gt)
        per_image.append(record)
        frames.append(pred)
    if frames:
        write_video(f"{outdir}/test_views", frames, fps=5)
    mean = lambda key: float(np.mean([r[key] for r in per_image])) if per_image and key in per_image[0] else None
    return {"psnr": mean("psnr"), "ssim": mean("ssim"), "lpips": mean("lpips"),
            "n_images": len(per_image), "height": rays.H, "width": rays.W,
            "seconds_per_image": seconds / max(1, len(per_image)), "per_image": per_image}


def render_path(rays: SceneRays, poses: torch.Tensor, coarse, fine, opts: RenderOptions, chunk: int,
                stem: str, render_factor: int = 0, amp=None, progress=None) -> List[str]:
    """Render a camera path (orbit/spiral) at 1/render_factor resolution; write GIF (+MP4)."""
    from utils.rays import scale_intrinsics
    factor = max(1, render_factor)
    K, H, W = scale_intrinsics(rays.K, factor), rays.H // factor, rays.W // factor
    frames = []
    for c2w in (progress(poses) if progress else poses):
        out = render_image(rays, c2w, coarse, fine, opts, chunk, K, H, W, amp)
        frames.append(hstack([out["rgb"], colorize_depth(out["depth"], out["acc"])]))
    return write_video(stem, frames, fps=20)


def validation_strip(rays: SceneRays, idx: int, coarse, fine, opts, chunk, amp=None):
    """(GT | prediction | depth) strip and its PSNR/SSIM, for TensorBoard."""
    out = render_image(rays, rays.poses[idx], coarse, fine, opts, chunk, amp=amp)
    gt, pred = rays.images[idx].cpu().numpy(), quantize(out["rgb"])
    strip = hstack([gt, pred, colorize_depth(out["depth"], out["acc"])])
    return strip, psnr(pred, gt), ssim(pred, gt)


def write_metrics(path: str, metrics: Dict) -> None:
    atomic_write_json(path, metrics)
