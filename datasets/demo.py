"""A built-in analytic scene: no download, exact ground truth, deterministic.

A striped sphere and a checkered box stand on a checkerboard floor tile; outside the
tile is empty (transparent, so ``--white_bkgd`` applies as for Blender). Shading is
Lambertian under a fixed light, so colour is view-independent. Each pixel is the mean
of a 3x3 grid of sub-pixel rays, i.e. the exact box-filtered image of the scene.
Cameras: train/val/test on the upper hemisphere at radius 4 (near 2, far 6, as Blender).
"""
import numpy as np

from datasets.scene import Scene, look_at, orbit_poses
from rendering.rays import intrinsics_matrix

SPHERE_CENTER, SPHERE_RADIUS = np.array([0.35, -0.25, -0.05]), 0.45
BOX_CENTER, BOX_HALF = np.array([-0.45, 0.4, -0.2]), np.array([0.3, 0.3, 0.3])
FLOOR_Z, FLOOR_HALF = -0.5, 1.2
LIGHT = np.array([0.4, 0.3, 0.86]) / np.linalg.norm([0.4, 0.3, 0.86])
BBOX = np.array([[-1.25, -1.25, -0.55], [1.25, 1.25, 0.45]], dtype=np.float32)
SUPERSAMPLE = 3


def _sphere(o, d):
    oc = o - SPHERE_CENTER
    b = (oc * d).sum(-1)
    disc = b * b - ((oc * oc).sum(-1) - SPHERE_RADIUS ** 2)
    t = -b - np.sqrt(np.maximum(disc, 0.0))
    t = np.where((disc > 0) & (t > 0), t, np.inf)
    n = (o + np.where(np.isfinite(t), t, 0)[..., None] * d - SPHERE_CENTER) / SPHERE_RADIUS
    az, el = np.arctan2(n[..., 1], n[..., 0]), np.arcsin(np.clip(n[..., 2], -1, 1))
    stripes = (np.sin(8 * az) * np.sin(6 * el) > 0)[..., None]  # 16 x 6 checker on the sphere
    colour = np.where(stripes, [0.9, 0.25, 0.15], [0.95, 0.85, 0.3])
    return t, n, colour


def _box(o, d):
    with np.errstate(divide="ignore", invalid="ignore"):
        inv = 1.0 / d
        t0, t1 = (BOX_CENTER - BOX_HALF - o) * inv, (BOX_CENTER + BOX_HALF - o) * inv
    t_near = np.minimum(t0, t1).max(-1)
    t_far = np.maximum(t0, t1).min(-1)
    t = np.where((t_near < t_far) & (t_near > 0), t_near, np.inf)
    local = (o + np.where(np.isfinite(t), t, 0)[..., None] * d - BOX_CENTER) / BOX_HALF
    axis = np.abs(local).argmax(-1)
    n = np.eye(3)[axis] * np.sign(np.take_along_axis(local, axis[..., None], -1))
    cells = np.floor(local * 3.0).astype(int).sum(-1) % 2 == 0  # 6 x 6 checker per face
    colour = np.where(cells[..., None], [0.2, 0.45, 0.9], [0.9, 0.95, 1.0])
    return t, n, colour


def _floor(o, d):
    with np.errstate(divide="ignore", invalid="ignore"):
        t = (FLOOR_Z - o[..., 2]) / d[..., 2]
    p = o + np.where(np.isfinite(t), t, 0)[..., None] * d
    inside = (np.abs(p[..., 0]) < FLOOR_HALF) & (np.abs(p[..., 1]) < FLOOR_HALF)
    t = np.where(inside & (t > 0), t, np.inf)
    checker = (np.floor(p[..., 0] / 0.3) + np.floor(p[..., 1] / 0.3)) % 2 == 0
    colour = np.where(checker[..., None], [0.25, 0.6, 0.3], [0.85, 0.85, 0.8])
    n = np.broadcast_to([0.0, 0.0, 1.0], p.shape)
    return t, n, colour


def trace(origins: np.ndarray, dirs: np.ndarray):
    """Exact RGBA and depth (t) for rays (..., 3) with unit directions."""
    hits = [_sphere(origins, dirs), _box(origins, dirs), _floor(origins, dirs)]
    ts = np.stack([h[0] for h in hits])
    first = ts.argmin(0)
    t = np.take_along_axis(ts, first[None], 0)[0]
    normal = np.choose(first[..., None], [h[1] for h in hits])
    albedo = np.choose(first[..., None], [h[2] for h in hits])
    shade = 0.35 + 0.65 * np.clip((normal * LIGHT).sum(-1, keepdims=True), 0, 1)
    hit = np.isfinite(t)[..., None]
    rgba = np.concatenate([np.where(hit, albedo * shade, 0.0), hit.astype(np.float64)], -1)
    return rgba, t


def occupied(points: np.ndarray, margin: float = 0.0) -> np.ndarray:
    """True where a point (..., 3) lies within ``margin`` of a surface or solid object."""
    in_sphere = np.linalg.norm(points - SPHERE_CENTER, axis=-1) <= SPHERE_RADIUS + margin
    in_box = (np.abs(points - BOX_CENTER) <= BOX_HALF + margin).all(-1)
    on_floor = (np.abs(points[..., 2] - FLOOR_Z) <= margin) & \
               (np.abs(points[..., :2]) <= FLOOR_HALF + margin).all(-1)
    return in_sphere | in_box | on_floor


def render_view(c2w: np.ndarray, H: int, W: int, focal: float):
    """Box-filtered RGBA (H, W, 4) of one camera, mean over SUPERSAMPLE^2 sub-pixel rays."""
    offsets = (np.arange(SUPERSAMPLE) + 0.5) / SUPERSAMPLE
    j, i = np.meshgrid(np.arange(H), np.arange(W), indexing="ij")
    u = i[..., None, None] + offsets[None, None, None, :]   # (H, W, 1, S) columns
    v = j[..., None, None] + offsets[None, None, :, None]   # (H, W, S, 1) rows
    u, v = np.broadcast_arrays(u, v)
    dirs = np.stack([(u - W / 2) / focal, -(v - H / 2) / focal, -np.ones_like(u)], -1)
    dirs = dirs @ c2w[:3, :3].T
    dirs /= np.linalg.norm(dirs, axis=-1, keepdims=True)
    rgba, _ = trace(np.broadcast_to(c2w[:3, 3], dirs.shape), dirs)
    return rgba.mean(axis=(2, 3)).astype(np.float32)


def _hemisphere_cameras(n: int, seed: int, radius: float = 4.0):
    rng = np.random.default_rng(seed)
    az = rng.uniform(-180, 180, n)
    el = np.rad2deg(np.arcsin(rng.uniform(np.sin(np.deg2rad(15)), np.sin(np.deg2rad(75)), n)))
    eyes = radius * np.stack([np.cos(np.deg2rad(el)) * np.cos(np.deg2rad(az)),
                              np.cos(np.deg2rad(el)) * np.sin(np.deg2rad(az)),
                              np.sin(np.deg2rad(el))], -1)
    return [look_at(e) for e in eyes]


def load_demo(args) -> Scene:
    """The analytic scene at ``args.demo_res`` pixels, 40 train / 4 val / 8 test views."""
    H = W = int(args.demo_res)
    focal = 0.5 * W / np.tan(0.5 * np.deg2rad(40.0))
    cameras = {"train": _hemisphere_cameras(40, 0), "val": _hemisphere_cameras(4, 1),
               "test": _hemisphere_cameras(8, 2)}
    if args.testskip > 1:
        cameras["test"] = cameras["test"][::args.testskip]
        cameras["val"] = cameras["val"][::args.testskip]
    poses, splits = [], {}
    for split, cams in cameras.items():
        splits[split] = np.arange(len(poses), len(poses) + len(cams))
        poses.extend(cams)
    images = np.stack([render_view(c2w, H, W, focal) for c2w in poses])
    return Scene(name="demo", images=images, poses=np.stack(poses).astype(np.float32),
                 K=intrinsics_matrix(focal, W, H),
                 near=2.0, far=6.0, splits=splits, render_poses=orbit_poses(args.n_frames),
                 bbox=BBOX.copy())
