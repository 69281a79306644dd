"""Region and high-frequency metrics: testing "sin is sharper on texture, noisier on
surfaces, cos in between" (the course report's claim) with numbers.

- **Region masks (demo scene).** The demo scene is analytic (datasets/demo.py), so which
  surface a ray hits is known exactly. ``demo_region_masks`` traces the same 3x3 sub-pixel
  rays per pixel that rendered the ground truth (``datasets.demo.render_view``), and a pixel
  belongs to a region (``floor``: the checkerboard floor tile, ``sphere``: the striped
  sphere, ``box``: the checkered box, ``background``: no surface) when all 9 of its
  sub-rays hit that surface. Pixels on a silhouette or on the floor/object contact belong
  to no region.
- **PSNR / SSIM per region.** PSNR from the mean squared error over the region's pixels
  (all 3 channels). SSIM: scikit-image's SSIM map with utils/metrics.py's settings
  (Gaussian 11x11 window, sigma 1.5, data range 1, per channel), averaged over the
  region's pixels and the channels, without the 5-pixel image border that scikit-image
  leaves out too; over the whole image this is utils.metrics.ssim.
- **High-frequency error.** The 5-point Laplacian L = f(x-1,y) + f(x+1,y) + f(x,y-1) +
  f(x,y+1) - 4 f(x,y), per channel, of the prediction and of the ground truth;
  ``hf_psnr`` = 10 log10(1 / mean((L_pred - L_gt)^2)) over the pixels whose Laplacian
  support (the pixel and its 4 neighbours) lies inside the region (whole image: every
  interior pixel), so it measures texture and noise inside a surface, not its silhouette.
  Higher is better: a blurred texture loses its Laplacian, a noisy surface gains one.
"""
from typing import Dict, Optional

import numpy as np

REGIONS = ("floor", "sphere", "box", "background")
_SURFACE_IDS = {"sphere": 0, "box": 1, "floor": 2, "background": -1}


# ---------------------------------------------------------------- masks of the demo scene
def subpixel_rays(c2w: np.ndarray, H: int, W: int, focal: float, supersample: int):
    """(origins, unit directions), each (H, W, S, S, 3): the sub-pixel rays of
    ``datasets.demo.render_view`` (S = its SUPERSAMPLE), in its order and arithmetic."""
    offsets = (np.arange(supersample) + 0.5) / supersample
    j, i = np.meshgrid(np.arange(H), np.arange(W), indexing="ij")
    u = i[..., None, None] + offsets[None, None, None, :]
    v = j[..., None, None] + offsets[None, None, :, None]
    u, v = np.broadcast_arrays(u, v)
    dirs = np.stack([(u - W / 2) / focal, -(v - H / 2) / focal, -np.ones_like(u)], -1)
    dirs = dirs @ np.asarray(c2w)[:3, :3].T
    dirs /= np.linalg.norm(dirs, axis=-1, keepdims=True)
    return np.broadcast_to(np.asarray(c2w)[:3, 3], dirs.shape), dirs


def surface_ids(origins: np.ndarray, dirs: np.ndarray) -> np.ndarray:
    """Which surface each ray hits first: 0 sphere, 1 box, 2 floor, -1 nothing. The same
    nearest-hit rule as ``datasets.demo.trace`` (which returns colour and depth only)."""
    from datasets import demo
    ts = np.stack([demo._sphere(origins, dirs)[0], demo._box(origins, dirs)[0], demo._floor(origins, dirs)[0]])
    first = ts.argmin(0)
    return np.where(np.isfinite(ts.min(0)), first, -1)


def demo_region_masks(c2w: np.ndarray, H: int, W: int, focal: float) -> Dict[str, np.ndarray]:
    """{region: (H, W) bool}: pixels all of whose sub-pixel rays hit that surface."""
    from datasets.demo import SUPERSAMPLE
    origins, dirs = subpixel_rays(c2w, H, W, focal, SUPERSAMPLE)
    ids = surface_ids(origins, dirs).reshape(H, W, -1)
    return {name: (ids == sid).all(-1) for name, sid in _SURFACE_IDS.items()}


# ---------------------------------------------------------------- metrics
def laplacian(img: np.ndarray) -> np.ndarray:
    """5-point Laplacian of an (H, W[, C]) image at its interior pixels: (H-2, W-2[, C])."""
    f = np.asarray(img, np.float64)
    return f[:-2, 1:-1] + f[2:, 1:-1] + f[1:-1, :-2] + f[1:-1, 2:] - 4.0 * f[1:-1, 1:-1]


def interior(mask: np.ndarray) -> np.ndarray:
    """(H-2, W-2) mask of the pixels whose Laplacian support lies inside ``mask``."""
    m = np.asarray(mask, bool)
    return m[1:-1, 1:-1] & m[:-2, 1:-1] & m[2:, 1:-1] & m[1:-1, :-2] & m[1:-1, 2:]


def _psnr_of_mse(mse: float) -> float:
    return float("inf") if mse <= 0 else float(-10.0 * np.log10(mse))


def masked_psnr(pred: np.ndarray, gt: np.ndarray, mask: Optional[np.ndarray] = None) -> Optional[float]:
    """PSNR over the pixels of ``mask`` (None: all); None when the mask is empty."""
    diff = (np.asarray(pred, np.float64) - np.asarray(gt, np.float64)) ** 2
    if mask is not None:
        if not mask.any():
            return None
        diff = diff[mask]
    return _psnr_of_mse(float(diff.mean()))


def ssim_map(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """scikit-image's SSIM map (H, W, C) with utils.metrics.ssim's settings."""
    from skimage.metrics import structural_similarity
    _, full = structural_similarity(np.asarray(pred, np.float64), np.asarray(gt, np.float64), channel_axis=-1,
                                    data_range=1.0, gaussian_weights=True, sigma=1.5,
                                    use_sample_covariance=False, K1=0.01, K2=0.03, full=True)
    return full


SSIM_PAD = 5  # scikit-image averages the map without a border of (win_size - 1) // 2 = 5 pixels


def masked_ssim(pred: np.ndarray, gt: np.ndarray, mask: Optional[np.ndarray] = None,
                full: Optional[np.ndarray] = None) -> Optional[float]:
    """Mean of the SSIM map over ``mask``'s pixels and the channels, leaving out the
    5-pixel border scikit-image leaves out (its window is cut there); with no mask this
    is utils.metrics.ssim. None when no pixel qualifies."""
    full = ssim_map(pred, gt) if full is None else full
    valid = np.zeros(full.shape[:2], bool)
    valid[SSIM_PAD:-SSIM_PAD, SSIM_PAD:-SSIM_PAD] = True
    if mask is not None:
        valid &= np.asarray(mask, bool)
    return float(full[valid].mean()) if valid.any() else None


def hf_psnr(pred: np.ndarray, gt: np.ndarray, mask: Optional[np.ndarray] = None) -> Optional[float]:
    """10 log10(1 / MSE) between the Laplacians of ``pred`` and ``gt`` over the interior
    pixels of ``mask`` (None: the whole image); None when no pixel qualifies."""
    diff = (laplacian(pred) - laplacian(gt)) ** 2
    inside = interior(np.ones(np.asarray(pred).shape[:2], bool) if mask is None else mask)
    if not inside.any():
        return None
    return _psnr_of_mse(float(diff[inside].mean()))


def image_metrics(pred: np.ndarray, gt: np.ndarray, masks: Optional[Dict[str, np.ndarray]] = None) -> Dict:
    """{"hf_psnr": whole image, "regions": {name: {psnr, ssim, hf_psnr, pixels}}} for one view."""
    out: Dict = {"hf_psnr": hf_psnr(pred, gt)}
    if masks:
        full = ssim_map(pred, gt)
        out["regions"] = {name: {"psnr": masked_psnr(pred, gt, m), "ssim": masked_ssim(pred, gt, m, full),
                                 "hf_psnr": hf_psnr(pred, gt, m), "pixels": int(m.sum())}
                          for name, m in masks.items()}
    return out


def mean_over_views(per_view) -> Dict:
    """Average ``image_metrics`` records over views (a region's None entries are skipped)."""
    def mean(values):
        values = [v for v in values if v is not None and np.isfinite(v)]
        return float(np.mean(values)) if values else None
    out = {"hf_psnr": mean([v["hf_psnr"] for v in per_view])}
    if per_view and "regions" in per_view[0]:
        out["regions"] = {name: {key: mean([v["regions"][name][key] for v in per_view])
                                 for key in ("psnr", "ssim", "hf_psnr")}
                          for name in per_view[0]["regions"]}
        for name in out["regions"]:
            out["regions"][name]["pixels"] = int(sum(v["regions"][name]["pixels"] for v in per_view))
    return out
