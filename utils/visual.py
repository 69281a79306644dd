"""Depth colour maps (faded by opacity, with a near/far legend), image strips and GIF/MP4 writing."""
from typing import List, Optional, Tuple

import cv2
import numpy as np

from utils.io import atomic_path, to_uint8

BACKGROUND = (1.0, 1.0, 1.0)  # what a ray that hits nothing shows in a depth map (white)
LEGEND_FONT = cv2.FONT_HERSHEY_SIMPLEX


def turbo_near_far(norm: np.ndarray) -> np.ndarray:
    """[0, 1] (0 = near, 1 = far) -> float RGB in [0, 1]: turbo with near warm (dark red,
    turbo's top entry) and far cold (dark blue, its bottom entry)."""
    colored = cv2.applyColorMap(to_uint8(1.0 - np.asarray(norm, np.float64)).reshape(np.shape(norm)),
                                cv2.COLORMAP_TURBO)
    return cv2.cvtColor(colored, cv2.COLOR_BGR2RGB).astype(np.float32) / 255.0


def colorize_depth_range(depth: np.ndarray, acc: Optional[np.ndarray] = None, lo_pct: float = 1.0,
                         hi_pct: float = 99.0, background=BACKGROUND) -> Tuple[np.ndarray, float, float]:
    """``colorize_depth``'s image and the depths (near, far) its two colour-map ends stand for."""
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
        lo, hi = (float(v) for v in np.percentile(values, [lo_pct, hi_pct]))
    norm = np.clip((np.nan_to_num(depth, nan=hi, posinf=hi, neginf=lo) - lo) / max(hi - lo, 1e-8), 0, 1)
    colors = turbo_near_far(norm)
    if acc is not None:  # a faint floater fades into the background instead of posing as a surface
        a = np.clip(np.nan_to_num(acc, nan=0.0), 0.0, 1.0)[..., None]
        colors = (a * colors + (1.0 - a) * np.asarray(background, np.float64)).astype(np.float32)
    return colors, lo, hi


def colorize_depth(depth: np.ndarray, acc: Optional[np.ndarray] = None, lo_pct: float = 1.0,
                   hi_pct: float = 99.0, background=BACKGROUND) -> np.ndarray:
    """(H, W) depth -> (H, W, 3) float turbo colour image, near warm (red), far cold (blue).

    With ``acc`` (accumulated opacity), the expected depth sum(w t) is divided by acc (the
    depth of what the ray hit, not pulled towards 0 by transparency), and each pixel's
    colour is faded towards ``background`` (white) by its opacity:
    ``acc * turbo(depth) + (1 - acc) * background``. So a ray that hits nothing is white and
    a faint floater (acc between 1e-3 and 0.5) is a pale tint, not a bright near surface.
    Robust normalisation: the [1, 99] percentiles of finite depths on rays that hit
    something (acc > 0.5 where given) map to the two ends. NaN/inf pixels get the far
    colour (then the fade), never black holes. ``colorize_depth_range`` also returns the
    two depths, for ``with_depth_legend``."""
    return colorize_depth_range(depth, acc, lo_pct, hi_pct, background)[0]


def depth_legend_labels(near: float, far: float) -> Tuple[str, str]:
    """The legend's two labels: the depths (scene units; NDC for LLFF in NDC) of the ends."""
    return f"near {near:.3g}", f"far {far:.3g}"


def _text_scale(texts: List[str], width: int, largest: float) -> float:
    """The largest font scale in [0.25, largest] at which each text fits ``width`` (else 0.25)."""
    scale = largest
    while scale > 0.25 and max(cv2.getTextSize(t, LEGEND_FONT, scale, 1)[0][0] for t in texts) > width:
        scale -= 0.05
    return scale


def depth_legend(width: int, near: float, far: float, bar_x0: int = 0, bar_x1: Optional[int] = None) -> np.ndarray:
    """A white (L, width, 3) float strip: a colour bar from ``bar_x0`` to ``bar_x1`` (near
    colour on the left, far on the right) and under it "near <depth>" at the bar's left and
    "far <depth>" at its right (on a second line when one line is too narrow). Bar and
    text grow with the bar's width (text from 0.35 to 0.7 of OpenCV's font scale)."""
    bar_x1 = width if bar_x1 is None else bar_x1
    bar_height = max(6, (bar_x1 - bar_x0) // 40)
    labels = depth_legend_labels(near, far)
    scale = _text_scale(list(labels), width, float(np.clip((bar_x1 - bar_x0) / 400, 0.35, 0.7)))
    (tw_near, th), base = cv2.getTextSize(labels[0], LEGEND_FONT, scale, 1)
    tw_far = cv2.getTextSize(labels[1], LEGEND_FONT, scale, 1)[0][0]
    x_near = max(0, min(bar_x0, width - tw_near - 1))
    x_far = max(0, min(bar_x1, width) - tw_far - 1)
    two_lines = x_near + tw_near + 4 > x_far
    line = th + base + 2
    top = 2
    strip = np.full((top + bar_height + 2 + line * (2 if two_lines else 1), width, 3), 255, np.uint8)
    ramp = np.linspace(0.0, 1.0, max(1, bar_x1 - bar_x0))[None, :]
    strip[top:top + bar_height, bar_x0:bar_x1] = to_uint8(turbo_near_far(np.repeat(ramp, bar_height, 0)))
    y = top + bar_height + 2 + th + 1
    cv2.putText(strip, labels[0], (x_near, y), LEGEND_FONT, scale, (40, 40, 40), 1, cv2.LINE_AA)
    cv2.putText(strip, labels[1], (x_far, y + (line if two_lines else 0)), LEGEND_FONT, scale, (40, 40, 40), 1,
                cv2.LINE_AA)
    return strip.astype(np.float32) / 255.0


def with_depth_legend(image: np.ndarray, near: float, far: float, x0: int = 0, x1: Optional[int] = None) -> np.ndarray:
    """``image`` (H, W, 3) with a ``depth_legend`` strip appended below; the bar spans the
    columns [x0, x1) of the depth panel (default: the whole width). Rows 0..H-1 are unchanged."""
    image = np.asarray(image, np.float32)
    return np.concatenate([image, depth_legend(image.shape[1], near, far, x0, x1)], axis=0)


def depth_image_with_legend(depth: np.ndarray, acc: Optional[np.ndarray] = None) -> np.ndarray:
    """``colorize_depth`` with its near/far legend below: what eval.py saves as NNN_depth.png."""
    colors, near, far = colorize_depth_range(depth, acc)
    return with_depth_legend(colors, near, far)


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


def even_size(frame: np.ndarray) -> np.ndarray:
    """Pad an (H, W, C) frame by repeating its last row/column to even H and W: H.264 in
    yuv420p needs both even, and ffmpeg refuses odd sizes (with macro_block_size=1 imageio
    does not resize). Padding keeps every pixel as rendered (no resampling)."""
    H, W = frame.shape[:2]
    return np.pad(frame, ((0, H % 2), (0, W % 2), (0, 0)), mode="edge")


def write_video(stem: str, frames: List[np.ndarray], fps: float = 10) -> List[str]:
    """Write ``stem.gif``, and ``stem.mp4`` (H.264) whenever imageio-ffmpeg is installed;
    MP4 frames of odd width or height get one repeated row/column (``even_size``).
    Returns the paths written."""
    written = [stem + ".gif"]
    write_gif(written[0], frames, fps)
    if has_ffmpeg():
        import imageio.v2 as imageio
        with atomic_path(stem + ".mp4") as tmp:
            imageio.mimwrite(tmp, [even_size(to_uint8(f)) for f in frames], fps=fps, quality=8,
                             macro_block_size=1, format="FFMPEG")
        written.append(stem + ".mp4")
    return written
