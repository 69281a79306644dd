"""Depth colour maps, image strips and GIF/MP4 writing."""
import os
from typing import List, Optional

import cv2
import numpy as np

from utils.io import atomic_path, to_uint8


def colorize_depth(depth: np.ndarray, acc: Optional[np.ndarray] = None, lo_pct: float = 1.0,
                   hi_pct: float = 99.0) -> np.ndarray:
    """(H, W) depth -> (H, W, 3) float turbo colour image.

    With ``acc``, the expected depth sum(w t) is divided by acc (the depth of what the ray
    hit, not pulled towards 0 by transparency) and rays that hit nothing (acc < 1e-3) are
    drawn like the far end. Robust normalisation: the [1, 99] percentiles of finite depths
    on rays that hit something (acc > 0.5 where given) map to [0, 1]. NaN/inf pixels are
    drawn like the far end, never as black holes."""
    depth = np.asarray(depth, np.float64)
    if acc is not None:
        acc = np.asarray(acc, np.float64)
        with np.errstate(divide="ignore", invalid="ignore"):
            depth = np.where(acc > 1e-3, depth / np.maximum(acc, 1e-10), np.nan)
    valid = np.isfinite(depth)
    if acc is not None:
        valid &= acc > 0.5
    values = depth[valid] if valid.any() else depth[np.isfinite(depth)]
    if values.size == 0:
        lo, hi = 0.0, 1.0
    else:
        lo, hi = np.percentile(values, [lo_pct, hi_pct])
    norm = np.clip((np.nan_to_num(depth, nan=hi, posinf=hi, neginf=lo) - lo) / max(hi - lo, 1e-8), 0, 1)
    colored = cv2.applyColorMap(to_uint8(1.0 - norm), cv2.COLORMAP_TURBO)  # near = warm
    return cv2.cvtColor(colored, cv2.COLOR_BGR2RGB).astype(np.float32) / 255.0


def hstack(images: List[np.ndarray]) -> np.ndarray:
    return np.concatenate([np.asarray(im, np.float32) for im in images], axis=1)


def has_ffmpeg() -> bool:
    try:
        import imageio_ffmpeg  # noqa: F401
        return True
    except ImportError:
        return False


def write_gif(path: str, frames: List[np.ndarray], fps: int = 10) -> None:
    import imageio.v2 as imageio
    with atomic_path(path) as tmp:
        imageio.mimsave(tmp, [to_uint8(f) for f in frames], format="GIF", duration=1000.0 / fps, loop=0)


def write_video(stem: str, frames: List[np.ndarray], fps: int = 10) -> List[str]:
    """Write ``stem.gif`` and, when imageio-ffmpeg is installed, ``stem.mp4``."""
    written = [stem + ".gif"]
    write_gif(written[0], frames, fps)
    if has_ffmpeg():
        import imageio.v2 as imageio
        with atomic_path(stem + ".mp4") as tmp:
            imageio.mimwrite(tmp, [to_uint8(f) for f in frames], fps=fps, quality=8, macro_block_size=1,
                             format="FFMPEG")
        written.append(stem + ".mp4")
    return written
