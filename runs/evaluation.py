"""Rendering whole images, test-set metrics and path videos (train.py, eval.py, bench/)."""
import time
from typing import Dict, List, Optional

import numpy as np
import torch

from datasets.batching import CameraViews
from rendering.rays import scale_intrinsics
from rendering.renderer import RenderOptions, render_in_chunks
from utils.io import atomic_write_json, to_uint8, write_image
from utils.metrics import LPIPS, psnr, ssim
from utils.runtime import autocast
from utils.visual import (colorize_depth, colorize_depth_range, depth_image_with_legend, hstack, with_depth_legend,
                          write_video)


@torch.no_grad()
def render_image(views: CameraViews, c2w: torch.Tensor, coarse, fine, opts: RenderOptions, chunk: int,
                 K=None, H=None, W=None, amp=None) -> Dict[str, np.ndarray]:
    """One camera -> {'rgb': (H, W, 3), 'depth', 'acc', 'disp': (H, W)} as numpy."""
    H, W = H or views.H, W or views.W
    bundle = views.image_rays(c2w, K, H, W)
    with autocast(views.device, amp):
        out = render_in_chunks(bundle, coarse, fine, opts, chunk)
    keys = ("rgb", "depth", "acc", "disp")
    return {k: out[k].float().reshape(H, W, -1).squeeze(-1).cpu().numpy() for k in keys}


def quantize(img: np.ndarray) -> np.ndarray:
    """8-bit quantisation, as the images are saved: metrics are computed on this."""
    return to_uint8(img).astype(np.float32) / 255.0


def evaluate_views(views: CameraViews, indices, coarse, fine, opts: RenderOptions, chunk: int,
                   outdir: Optional[str] = None, lpips: Optional[LPIPS] = None, amp=None, progress=None,
                   with_ssim: bool = True) -> Dict:
    """Render views ``indices`` and return their metrics on 8-bit renders. With ``outdir``
    also write NNN.png / NNN_depth.png (with its near/far legend below) and a GIF of the renders."""
    per_image, frames, seconds = [], [], 0.0
    for n, idx in enumerate(progress(indices) if progress else indices):
        start = time.perf_counter()
        out = render_image(views, views.poses[int(idx)], coarse, fine, opts, chunk, amp=amp)
        seconds += time.perf_counter() - start
        pred, gt = quantize(out["rgb"]), views.images[int(idx)].cpu().numpy()
        record = {"index": int(idx), "psnr": psnr(pred, gt)}
        if with_ssim:
            record["ssim"] = ssim(pred, gt)
        if lpips is not None and lpips.model is not None:
            record["lpips"] = lpips(pred, gt)
        per_image.append(record)
        if outdir is not None:
            write_image(f"{outdir}/{n:03d}.png", pred)
            write_image(f"{outdir}/{n:03d}_depth.png", depth_image_with_legend(out["depth"], out["acc"]))
            frames.append(pred)
    if frames:
        write_video(f"{outdir}/test_views", frames, fps=5)
    def mean(key: str) -> Optional[float]:  # None: unavailable (not computed, or e.g. SSIM of tiny images)
        values = [r[key] for r in per_image if r.get(key) is not None]
        return float(np.mean(values)) if values else None
    return {"psnr": mean("psnr"), "ssim": mean("ssim"), "lpips": mean("lpips"),
            "n_images": len(per_image), "height": views.H, "width": views.W,
            "seconds_per_image": seconds / max(1, len(per_image)), "per_image": per_image}


def render_path(views: CameraViews, poses: torch.Tensor, coarse, fine, opts: RenderOptions, chunk: int,
                stem: str, render_factor: int = 0, amp=None, progress=None) -> List[str]:
    """Render a camera path (orbit/spiral) at 1/render_factor resolution; write GIF (+MP4) of
    rgb | depth frames (depth coloured as in NNN_depth.png, without the legend: each frame has
    its own near/far range, and the frames keep the render's size)."""
    factor = max(1, render_factor)
    K, H, W = scale_intrinsics(views.K, factor), views.H // factor, views.W // factor
    frames = []
    for c2w in (progress(poses) if progress else poses):
        out = render_image(views, c2w, coarse, fine, opts, chunk, K, H, W, amp)
        frames.append(hstack([out["rgb"], colorize_depth(out["depth"], out["acc"])]))
    return write_video(stem, frames, fps=20)


def validation_strip(views: CameraViews, idx: int, coarse, fine, opts, chunk, amp=None):
    """(GT | prediction | depth) strip, the depth's near/far legend below it, and the
    prediction's PSNR/SSIM (None for images under SSIM's window), for TensorBoard."""
    out = render_image(views, views.poses[idx], coarse, fine, opts, chunk, amp=amp)
    gt, pred = views.images[idx].cpu().numpy(), quantize(out["rgb"])
    depth, near, far = colorize_depth_range(out["depth"], out["acc"])
    W = depth.shape[1]
    strip = with_depth_legend(hstack([gt, pred, depth]), near, far, 2 * W, 3 * W)
    return strip, psnr(pred, gt), ssim(pred, gt)


def write_metrics(path: str, metrics: Dict) -> None:
    atomic_write_json(path, metrics)
