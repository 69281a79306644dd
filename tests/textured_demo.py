"""The demo scene's geometry (``datasets.demo.trace``) with a 3-D noise texture, for structure
from motion tests.

The demo's own checkerboards and stripes are repetitive and mostly flat-coloured: COLMAP does
register 30 of its 256-pixel views, but slowly (7 of them only through its structure-less
fallback: 76 s of mapping) and with the focal length 6% off. Multiplying each surface's colour by value noise
of the hit point gives SIFT distinctive corners everywhere while keeping the geometry, so the
known cameras stay the ground truth. ``datasets/demo.py`` is unchanged.
"""
import numpy as np

from datasets import demo

OCTAVES = (3.0, 7.0, 15.0, 31.0)   # noise frequencies, cycles per world unit
BACKGROUND = 0.5


def _lattice(i: np.ndarray, j: np.ndarray, k: np.ndarray) -> np.ndarray:
    """A pseudo-random value in [0, 1] per integer lattice point (integer hash)."""
    h = (i * 73856093) ^ (j * 19349663) ^ (k * 83492791)
    h = (h ^ (h >> 13)) * 1274126177
    return ((h ^ (h >> 16)) & 0xFFFF).astype(np.float64) / 0xFFFF


def value_noise(p: np.ndarray) -> np.ndarray:
    """Smooth value noise of points (..., 3): the lattice values blended with smoothstep weights."""
    f = np.floor(p)
    u = p - f
    u = u * u * (3.0 - 2.0 * u)
    i = f.astype(np.int64)
    out = np.zeros(p.shape[:-1])
    for corner in np.ndindex(2, 2, 2):
        w = np.prod([u[..., a] if c else 1.0 - u[..., a] for a, c in enumerate(corner)], axis=0)
        out += w * _lattice(i[..., 0] + corner[0], i[..., 1] + corner[1], i[..., 2] + corner[2])
    return out


def texture(p: np.ndarray) -> np.ndarray:
    """Contrast-stretched sum of noise octaves (weights 1, 1/2, 1/3, 1/4) in [0, 1]."""
    weights = [1.0 / (o + 1) for o in range(len(OCTAVES))]
    n = sum(w * value_noise(p * f + 17.0 * o) for o, (w, f) in enumerate(zip(weights, OCTAVES)))
    return np.clip((n / sum(weights) - 0.5) * 3.0 + 0.5, 0.0, 1.0)


def render_textured_view(c2w: np.ndarray, H: int, W: int, focal: float) -> np.ndarray:
    """(H, W, 3) float32 RGB of one OpenGL c2w camera, one ray per pixel centre (principal point
    (W/2, H/2)): the demo colour times (0.15 + texture) on hit surfaces, grey elsewhere."""
    j, i = np.meshgrid(np.arange(H) + 0.5, np.arange(W) + 0.5, indexing="ij")
    d = np.stack([(i - W / 2) / focal, -(j - H / 2) / focal, -np.ones_like(i)], -1) @ c2w[:3, :3].T
    d /= np.linalg.norm(d, axis=-1, keepdims=True)
    o = np.broadcast_to(c2w[:3, 3], d.shape)
    rgba, t = demo.trace(o, d)
    hit = np.isfinite(t)
    p = o + np.where(hit, t, 0.0)[..., None] * d
    rgb = rgba[..., :3] * (0.15 + texture(p)[..., None])
    return np.clip(np.where(hit[..., None], rgb, BACKGROUND), 0.0, 1.0).astype(np.float32)
