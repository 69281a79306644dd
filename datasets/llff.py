"""LLFF forward-facing scenes: ``poses_bounds.npy`` + ``images[_N]/``.

Follows the original NeRF loader (bmild/nerf, ``load_llff.py``); see ``../shared/CONVENTIONS.md``
(the project's shared notes), "LLFF".

``poses_bounds.npy`` is an (N, 17) array. Row k holds
  - ``row[:15].reshape(3, 5)``: a 3x4 camera-to-world pose whose rotation columns are ordered
    [down, right, back], followed by the column [H, W, focal] of the *full-size* images;
  - ``row[15:17]``: the near and far scene depths seen by camera k.

Processing, in order (all in float64, cast to float32 at the end):
  1. columns [down, right, back] -> OpenGL [right, up, back] = [col1, -col0, col2];
  2. bd_factor rescale: s = 1 / (min(bounds) * 0.75) multiplies translations and bounds, so the
     nearest bound becomes 1/0.75 and the NDC near plane (z = -1) lies in front of everything;
  3. recentring: every pose is left-multiplied by the inverse of the average pose, which
     therefore becomes the identity;
  4. ``--spherify`` (360-degree captures) re-centres on the point closest to all optical axes
     and scales the cameras onto the unit sphere (see ``spherify_poses``).

Splits: with ``--llffhold k > 0`` the test views are indices 0, k, 2k, ...; val = test (as
nerf-pytorch); train = the rest. With ``--llffhold <= 0`` nothing is held out: train, val and
test are all the images (val/test then measure the fit, not novel-view quality).
"""
import os
import shutil
import tempfile
from collections import Counter
from typing import List, Tuple

import cv2
import numpy as np

from datasets.scene import Scene, first_odd_shape, normalize, pose_from_axes, pose_from_back_up
from rendering.rays import intrinsics_matrix
from utils.errors import UserError
from utils.io import read_image

IMAGE_EXTS = (".png", ".jpg", ".jpeg")
BD_FACTOR = 0.75
SPIRAL_DT, SPIRAL_ROTS, SPIRAL_ZRATE = 0.75, 2, 0.5
DEFAULT_VIEWS = 120


# --------------------------------------------------------------------------- files

def read_poses_bounds(path: str) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``poses_bounds.npy`` -> poses (N, 3, 4) LLFF column order, hwf (N, 3) full-size [H, W, f],
    bounds (N, 2) [near, far], all float64."""
    if not os.path.isfile(path):
        raise UserError(f"missing '{path}' (expected an LLFF scene folder with poses_bounds.npy)")
    try:
        arr = np.load(path, allow_pickle=False)
    except EOFError:
        raise UserError(f"{path}: empty file (expected a .npy array)") from None
    except (ValueError, OSError) as err:
        raise UserError(f"{path}: cannot read as a .npy array ({err})") from None
    if not isinstance(arr, np.ndarray):  # an .npz archive
        raise UserError(f"{path}: an .npz archive; expected a .npy array")
    if arr.dtype.kind not in "iuf":
        raise UserError(f"{path}: expected a numeric N x 17 array, got dtype {arr.dtype}")
    if arr.ndim != 2 or arr.shape[1] != 17 or arr.shape[0] == 0:
        raise UserError(f"{path}: expected an N x 17 array (3x5 pose+hwf and near/far per image), "
                        f"got shape {arr.shape}")
    arr = arr.astype(np.float64)
    if not np.isfinite(arr).all():
        raise UserError(f"{path}: contains non-finite values")
    mats = arr[:, :15].reshape(-1, 3, 5)
    bounds = arr[:, 15:17]
    if bounds.min() <= 0:
        raise UserError(f"{path}: depth bounds must be positive, found minimum {bounds.min():g}")
    if (mats[:, :2, 4] <= 0).any() or (mats[:, 2, 4] <= 0).any():
        raise UserError(f"{path}: H, W and focal (column 5 of each 3x5 block) must be positive")
    return mats[:, :, :4], mats[:, :, 4], bounds


def image_files(folder: str) -> List[str]:
    """Sorted image file names (.png/.jpg/.jpeg, any case) in ``folder``; hidden files skipped."""
    return sorted(f for f in os.listdir(folder)
                  if not f.startswith(".") and os.path.splitext(f)[1].lower() in IMAGE_EXTS)


def minify(src: str, dst: str, factor: int) -> None:
    """Write every image of ``src`` downscaled by 1/factor (INTER_AREA, W//factor x H//factor)
    as PNG into ``dst``. The folder is built under a temporary name and renamed when complete,
    so an interrupted run never leaves a partial ``dst``."""
    names = image_files(src)
    if not names:
        raise UserError(f"'{src}' has no .png/.jpg images to downscale into '{dst}'")
    parent = os.path.dirname(os.path.abspath(dst))
    try:
        tmp = tempfile.mkdtemp(prefix=f".tmp_{os.path.basename(dst)}_", dir=parent)
    except OSError as err:
        raise UserError(f"cannot create '{dst}' from '{src}': {err.strerror}") from None
    try:
        for name in names:
            img = cv2.imread(os.path.join(src, name), cv2.IMREAD_UNCHANGED)
            if img is None:
                raise UserError(f"cannot decode image '{os.path.join(src, name)}'")
            H, W = img.shape[:2]
            if H < factor or W < factor:
                raise UserError(f"'{os.path.join(src, name)}' ({W}x{H}) is smaller than --factor {factor}")
            small = cv2.resize(img, (W // factor, H // factor), interpolation=cv2.INTER_AREA)
            out = os.path.join(tmp, os.path.splitext(name)[0] + ".png")
            if not cv2.imwrite(out, small):
                raise UserError(f"cannot write '{out}'")
        try:
            os.replace(tmp, dst)
        except OSError as err:
            if not os.path.isdir(dst):  # else another process finished it first: use theirs
                raise UserError(f"cannot create '{dst}' from '{src}': {err.strerror}") from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def image_folder(datadir: str, factor: int) -> str:
    """``images/`` for factor 1, else ``images_<factor>/``, created from ``images/`` if missing."""
    full = os.path.join(datadir, "images")
    if factor == 1:
        if not os.path.isdir(full):
            raise UserError(f"missing image folder '{full}'")
        return full
    folder = os.path.join(datadir, f"images_{factor}")
    if not os.path.isdir(folder):
        if not os.path.isdir(full):
            raise UserError(f"neither '{folder}' nor '{full}' exists (needed for --factor {factor})")
        print(f"creating '{folder}' from '{full}' (1/{factor}, INTER_AREA)")
        minify(full, folder, factor)
    return folder


def load_images(folder: str, n_poses: int, npy_path: str, downscale: int = 1) -> np.ndarray:
    """(N, H, W, 3) float32 in [0, 1]; alpha, if any, is dropped (as the original loader).
    ``downscale`` k > 1 averages k x k pixel blocks (INTER_AREA); k must divide H and W, so
    that the intrinsics scale by exactly 1/k on both axes."""
    names = image_files(folder)
    if len(names) != n_poses:
        raise UserError(f"'{folder}' has {len(names)} images but '{npy_path}' has {n_poses} poses")
    if downscale > 1:
        H, W = read_image(os.path.join(folder, names[0])).shape[:2]
        if H % downscale or W % downscale:
            raise UserError(f"--downscale {downscale} must divide the image size of '{folder}' ({W}x{H}); "
                            f"divisors of both: {[k for k in range(2, min(H, W) + 1) if H % k == 0 and W % k == 0][:6]}")
    images = [read_image(os.path.join(folder, name), downscale)[..., :3] for name in names]
    odd = first_odd_shape(images)[0]  # not empty: there is at least one pose
    if odd is not None:
        sizes = Counter(f"{img.shape[1]}x{img.shape[0]}" for img in images)
        found = ", ".join(f"{n} at {wh}" for wh, n in sizes.most_common())
        raise UserError(f"'{folder}': images have inconsistent sizes (WxH): {found}; "
                        f"the first odd one is '{os.path.join(folder, names[odd])}'")
    return np.stack(images).astype(np.float32)


# --------------------------------------------------------------------------- poses

def to_homogeneous(poses: np.ndarray) -> np.ndarray:
    """(N, 3, 4) -> (N, 4, 4) float64 with last row [0, 0, 0, 1]."""
    return pose_from_axes(*np.moveaxis(poses, -1, 0))


def llff_to_opengl(poses: np.ndarray) -> np.ndarray:
    """(N, 3, 4) rotation columns [down, right, back] -> [right, up, back] = [c1, -c0, c2];
    the translation column is unchanged."""
    return np.concatenate([poses[:, :, 1:2], -poses[:, :, 0:1], poses[:, :, 2:4]], axis=2)


def rescale(poses: np.ndarray, bounds: np.ndarray, bd_factor: float = BD_FACTOR):
    """s = 1 / (min(bounds) * bd_factor) multiplies translations and bounds -> (poses, bounds)."""
    s = 1.0 / (bounds.min() * bd_factor)
    poses = poses.copy()
    poses[:, :3, 3] *= s
    return poses, bounds * s


def average_pose(poses: np.ndarray) -> np.ndarray:
    """(4, 4): centre = mean camera centre, z = normalised mean z axis, up = mean y axis
    (orthogonalised by ``pose_from_back_up``)."""
    return pose_from_back_up(poses[:, :3, 2].mean(0), poses[:, :3, 1].mean(0), poses[:, :3, 3].mean(0))


def recenter(poses: np.ndarray) -> np.ndarray:
    """(N, 4, 4) -> inv(average_pose) @ poses; the average pose of the result is the identity."""
    return np.linalg.inv(average_pose(poses)) @ poses


def spiral_path(poses: np.ndarray, bounds: np.ndarray, n_views: int,
                rots: float = SPIRAL_ROTS, zrate: float = SPIRAL_ZRATE, dt: float = SPIRAL_DT) -> np.ndarray:
    """(n_views, 4, 4) spiral around the average pose c2w (original ``render_path_spiral``).

    focus = 1 / ((1 - dt) / close + dt / far), close = 0.9 min(bounds), far = 5 max(bounds);
    radii r = 90th percentile of |camera translation| per axis. For theta in [0, 2 pi rots):
      centre c = c2w @ (r_x cos theta, -r_y sin theta, -r_z sin(zrate theta), 1),
      each camera looks at the focus point c2w @ (0, 0, -focus, 1), up = mean y axis.
    """
    c2w = average_pose(poses)
    up = normalize(poses[:, :3, 1].sum(0))
    close, far = bounds.min() * 0.9, bounds.max() * 5.0
    focus = 1.0 / ((1.0 - dt) / close + dt / far)
    radii = np.percentile(np.abs(poses[:, :3, 3]), 90, axis=0)
    target = c2w @ np.array([0.0, 0.0, -focus, 1.0])
    path = []
    for theta in np.linspace(0.0, 2.0 * np.pi * rots, n_views + 1)[:-1]:
        offset = np.array([np.cos(theta), -np.sin(theta), -np.sin(theta * zrate)]) * radii
        centre = c2w @ np.append(offset, 1.0)
        path.append(pose_from_back_up(centre[:3] - target[:3], up, centre[:3]))
    return np.stack(path)


def closest_point_to_axes(origins: np.ndarray, dirs: np.ndarray) -> np.ndarray:
    """(3,) point p minimising sum_i |A_i (p - o_i)|^2 with A_i = I - d_i d_i^T (unit d_i):
    p = (sum A_i)^-1 sum A_i o_i."""
    dirs = dirs / np.linalg.norm(dirs, axis=-1, keepdims=True)
    A = np.eye(3) - dirs[:, :, None] * dirs[:, None, :]
    return np.linalg.solve(A.sum(0), (A @ origins[:, :, None]).sum(0))[:, 0]


def spherify_poses(poses: np.ndarray, bounds: np.ndarray, n_views: int):
    """360-degree captures (original ``spherify_poses``) -> (poses, render_poses, bounds).

    The world origin moves to the point closest to all optical axes, world z to the mean
    direction from there to the cameras, and the scale to unit RMS camera distance. The render
    path is a circle of n_views cameras at the cameras' mean height, looking at the origin.
    """
    centre = closest_point_to_axes(poses[:, :3, 3], poses[:, :3, 2])
    z = normalize((poses[:, :3, 3] - centre).mean(0))
    x = normalize(np.cross([0.1, 0.2, 0.3], z))
    y = normalize(np.cross(z, x))
    poses = np.linalg.inv(pose_from_axes(x, y, z, centre)) @ poses
    scale = 1.0 / np.sqrt(np.mean(np.sum(poses[:, :3, 3] ** 2, -1)))
    poses[:, :3, 3] *= scale
    bounds = bounds * scale
    height = poses[:, :3, 3].mean(0)[2]
    radius = np.sqrt(max(1.0 - height ** 2, 0.0))
    path = []
    for theta in np.linspace(0.0, 2.0 * np.pi, n_views, endpoint=False):
        eye = np.array([radius * np.cos(theta), radius * np.sin(theta), height])
        back = normalize(eye)
        right = normalize(np.cross(back, [0.0, 0.0, -1.0]))
        path.append(pose_from_axes(right, normalize(np.cross(back, right)), back, eye))
    return poses, np.stack(path), bounds


def split_indices(n: int, llffhold: int):
    """{'train', 'val', 'test'} int64 indices: test = val = 0, k, 2k, ... (k = llffhold > 0),
    train = the rest; llffhold <= 0: all three are every image."""
    every = np.arange(n, dtype=np.int64)
    if llffhold <= 0:
        return {"train": every, "val": every.copy(), "test": every.copy()}
    test = every[::llffhold]
    return {"train": np.setdiff1d(every, test), "val": test.copy(), "test": test}


# --------------------------------------------------------------------------- loader

def load_llff(args) -> Scene:
    datadir = args.datadir
    if not os.path.isdir(datadir):
        raise UserError(f"datadir '{datadir}' does not exist (--datadir)")
    if args.factor < 1:
        raise UserError(f"--factor must be >= 1 (1: full-size images/), got {args.factor}")
    npy = os.path.join(datadir, "poses_bounds.npy")
    raw_poses, hwf, bounds = read_poses_bounds(npy)
    images = load_images(image_folder(datadir, args.factor), len(raw_poses), npy, args.downscale)
    H, W = images.shape[1:3]
    focal = hwf[0, 2] * W / hwf[0, 1]  # first row's intrinsics scaled to the loaded width, as the original loader
    poses, bounds = rescale(to_homogeneous(llff_to_opengl(raw_poses)), bounds)
    poses = recenter(poses)
    n_views = args.n_frames if args.n_frames > 0 else DEFAULT_VIEWS
    if args.spherify:
        poses, render_poses, bounds = spherify_poses(poses, bounds, n_views)
    else:
        render_poses = spiral_path(poses, bounds, n_views)
    ndc = not args.no_ndc and not args.spherify
    near, far = (0.0, 1.0) if ndc else (float(bounds.min() * 0.9), float(bounds.max()))
    return Scene(name=os.path.basename(os.path.normpath(datadir)), images=images,
                 poses=poses.astype(np.float32), K=intrinsics_matrix(focal, W, H), near=near, far=far,
                 splits=split_indices(len(images), args.llffhold),
                 render_poses=render_poses.astype(np.float32), ndc=ndc, bbox=None,
                 extras={"bounds": bounds.astype(np.float32), "full_hwf": hwf[0].astype(np.float32)})
