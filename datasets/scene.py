"""The scene record every loader returns."""
from collections import Counter
from dataclasses import dataclass, field
from typing import Dict, Optional, Sequence, Tuple

import numpy as np


@dataclass
class Scene:
    """A loaded scene; loaders only parse files into this.

    images:       (N, H, W, 3 or 4) float32 in [0, 1]; RGBA is composited by ``rgb()``.
    poses:        (N, 4, 4) float32 camera-to-world, OpenGL axes (x right, y up, -z forward).
    K:            (3, 3) float32 pinhole intrinsics for the loaded images, shared by all views.
    near, far:    scene bounds along rays (before NDC).
    splits:       {'train'|'val'|'test': int64 indices into images}.
    render_poses: (M, 4, 4) the camera path rendered to GIF/MP4 (orbit or spiral).
    ndc:          forward-facing scene rendered in NDC (LLFF).
    bbox:         (2, 3) min/max corners of the occupied volume, for bounded scenes.
    """
    name: str
    images: np.ndarray
    poses: np.ndarray
    K: np.ndarray
    near: float
    far: float
    splits: Dict[str, np.ndarray]
    render_poses: np.ndarray
    ndc: bool = False
    bbox: Optional[np.ndarray] = None
    extras: Dict[str, object] = field(default_factory=dict)

    @property
    def H(self) -> int:
        return int(self.images.shape[1])

    @property
    def W(self) -> int:
        return int(self.images.shape[2])

    def rgb(self, white_bkgd: bool) -> np.ndarray:
        """(N, H, W, 3) images; RGBA is composited onto white (rgb * a + 1 - a) or
        multiplied by alpha onto black, as the renderer composites its own output."""
        if self.images.shape[-1] == 3:
            return self.images
        rgb, alpha = self.images[..., :3], self.images[..., 3:]
        return rgb * alpha + (1.0 - alpha) if white_bkgd else rgb * alpha


def first_odd_shape(images: Sequence[np.ndarray]) -> Tuple[Optional[int], tuple, int]:
    """(index of the first image whose shape differs from the most common shape, or None;
    that shape; how many images have it). A tie goes to the shape seen first. ``images``
    must not be empty."""
    counts = Counter(np.shape(im) for im in images)
    common, n = counts.most_common(1)[0]
    odd = next((k for k, im in enumerate(images) if np.shape(im) != common), None)
    return odd, common, n


def normalize(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v)


def pose_from_axes(right, up, back, centre) -> np.ndarray:
    """(..., 4, 4) float64 camera-to-world with columns [right, up, back, centre] (each (..., 3),
    broadcast) and last row [0, 0, 0, 1]. OpenGL axes: the camera looks down -back."""
    cols = np.broadcast_arrays(*(np.asarray(v) for v in (right, up, back, centre)))
    c2w = np.zeros(cols[0].shape[:-1] + (4, 4))
    c2w[..., 3, 3] = 1.0
    for k, col in enumerate(cols):
        c2w[..., :3, k] = col
    return c2w


def pose_from_back_up(back: np.ndarray, up: np.ndarray, centre: np.ndarray) -> np.ndarray:
    """(4, 4) c2w at ``centre`` with back axis ``back`` normalised, right = normalise(up x back)
    and camera up = back x right (``up`` orthogonalised against ``back``)."""
    back = normalize(back)
    right = normalize(np.cross(up, back))
    return pose_from_axes(right, np.cross(back, right), back, centre)


def look_at(eye: np.ndarray, target=(0.0, 0.0, 0.0), up=(0.0, 0.0, 1.0)) -> np.ndarray:
    """4x4 camera-to-world for a camera at ``eye`` looking at ``target`` (OpenGL axes)."""
    eye, target, up = (np.asarray(v, dtype=np.float64) for v in (eye, target, up))
    return pose_from_back_up(eye - target, up, eye)


def spherical_pose(azimuth_deg: float, elevation_deg: float, radius: float) -> np.ndarray:
    """Camera on a sphere around the origin, looking at it, world up +z (Blender)."""
    az, el = np.deg2rad(azimuth_deg), np.deg2rad(elevation_deg)
    eye = radius * np.array([np.cos(el) * np.cos(az), np.cos(el) * np.sin(az), np.sin(el)])
    return look_at(eye)


def orbit_poses(n_frames: int, elevation_deg: float = 30.0, radius: float = 4.0) -> np.ndarray:
    """(n_frames, 4, 4) 360-degree orbit at fixed elevation, for bounded scenes."""
    angles = np.linspace(-180.0, 180.0, n_frames + 1)[:-1]
    return np.stack([spherical_pose(a, elevation_deg, radius) for a in angles]).astype(np.float32)
