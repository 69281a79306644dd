"""Camera paths from JSON files, rendered to MP4 + GIF (eval.py ``--camera_path FILE.json``).

Three file layouts are read; every pose is a camera-to-world matrix in this project's
convention (OpenGL axes: x right, y up, the camera looks down -z; see README,
"Conventions"), given as a 4x4 or 3x4 nested list or as 16 / 12 numbers row-major:

1. **nerfstudio's** ``camera_path.json`` (what its viewer's "render" panel exports)::

       {"render_width": 640, "render_height": 480, "fps": 24, "seconds": 4,
        "camera_type": "perspective",
        "camera_path": [{"camera_to_world": [16 numbers, row-major 4x4], "fov": 50, "aspect": 1.33}, ...]}

   ``fov`` is the *vertical* field of view in degrees (focal = (H / 2) / tan(fov / 2), as
   nerfstudio computes it). ``camera_path`` holds every frame already interpolated;
   ``seconds``, ``aspect`` and ``keyframes`` are not needed and not read. nerfstudio's
   camera_to_world is OpenGL already. Only ``camera_type`` "perspective" (or none) is
   rendered. The poses are used in this run's world frame as they are: a path made in
   nerfstudio for a nerfstudio-processed dataset lives in nerfstudio's normalised frame
   (its dataparser_transforms.json), not in this run's.
   ``render_width``/``render_height`` default to the run's image size and ``fps`` to 24.
   When ``fov`` changes along the path, K is (N, 3, 3), one per frame.

2. **plain**::

       {"fov_deg": 40, "width": 400, "height": 400, "fps": 30, "poses": [[[...4x4...]], ...]}

   everything but ``poses`` optional: ``fov_deg`` (vertical, degrees) defaults to
   ``default_fov_deg`` (40 degrees: the demo scene's and, to 0.4 degrees, Blender's
   cameras; eval.py may pass the run's own), size to the run's images, fps to 24.

3. **a bare list** of matrices ``[[[...4x4...]], ...]``: the plain format's defaults.

Each pose must be finite, its 3x3 part a rotation (orthonormal to 1e-3, determinant +1:
no scale, no mirror) and a 4x4's last row 0 0 0 1. Anything else is a one-line UserError
naming the file and the field (``camera_path[3].camera_to_world``).
"""
from typing import List

import numpy as np
import torch

from rendering.rays import intrinsics_matrix
from utils.errors import UserError
from utils.io import read_json
from utils.runtime import amp_dtype
from utils.visual import has_ffmpeg, write_video

DEFAULT_FOV_DEG = 40.0
DEFAULT_FPS = 24.0
ROTATION_TOL = 1e-3


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _number(value, where: str, lo: float = 0.0, hi: float = float("inf")) -> float:
    """A finite number in (lo, hi)."""
    if not _is_number(value) or not np.isfinite(value):
        raise UserError(f"{where}: expected a finite number, got {value!r}"[:300])
    if not lo < value < hi:
        bound = f"between {lo:g} and {hi:g}" if np.isfinite(hi) else f"> {lo:g}"
        raise UserError(f"{where}: must be {bound}, got {value}")
    return float(value)


def _size(value, where: str) -> int:
    if not _is_number(value) or not float(value).is_integer() or value < 1:
        raise UserError(f"{where}: expected a positive whole number of pixels, got {value!r}"[:300])
    return int(value)


def _pose(value, where: str) -> np.ndarray:
    """A camera-to-world matrix (4x4 / 3x4, nested or flat row-major) -> (4, 4) float64."""
    if isinstance(value, list) and value and all(isinstance(row, list) for row in value):
        shape = (len(value), len(value[0]))
        if len(value) not in (3, 4) or any(len(row) != 4 for row in value):
            lens = [len(row) for row in value]
            raise UserError(f"{where}: expected a 4x4 or 3x4 matrix, got {len(value)} rows of {lens}"[:300])
        flat = [x for row in value for x in row]
    elif isinstance(value, list):
        if len(value) not in (12, 16):
            raise UserError(f"{where}: expected 16 numbers (a row-major 4x4) or 12 (3x4), got {len(value)}")
        shape, flat = (len(value) // 4, 4), value
    else:
        raise UserError(f"{where}: expected a 4x4 matrix (list of rows or 16 numbers), got {type(value).__name__}")
    if not all(_is_number(x) for x in flat):
        bad = next(x for x in flat if not _is_number(x))
        raise UserError(f"{where}: matrix entries must be numbers, got {bad!r}"[:300])
    m = np.asarray(flat, np.float64).reshape(shape)
    if not np.isfinite(m).all():
        raise UserError(f"{where}: the matrix holds non-finite values (NaN or infinity)")
    if shape[0] == 4 and not np.allclose(m[3], [0, 0, 0, 1], atol=1e-6):
        raise UserError(f"{where}: the last row of a 4x4 camera-to-world must be 0 0 0 1, got {m[3].tolist()}")
    R = m[:3, :3]
    if not np.allclose(R.T @ R, np.eye(3), atol=ROTATION_TOL) or np.linalg.det(R) < 0:
        raise UserError(f"{where}: the 3x3 part is not a rotation (scaled, sheared or mirrored; "
                        f"det {np.linalg.det(R):.4g})")
    pose = np.eye(4)
    pose[:3] = m[:3]
    return pose


def _poses(values, where: str) -> np.ndarray:
    if not isinstance(values, list) or not values:
        raise UserError(f"{where}: expected a non-empty list of camera-to-world matrices")
    return np.stack([_pose(v, f"{where}[{n}]") for n, v in enumerate(values)]).astype(np.float32)


def focal_from_fov(fov_deg: float, H: int) -> float:
    """Vertical field of view (degrees) -> focal length in pixels: (H / 2) / tan(fov / 2)."""
    return 0.5 * H / np.tan(0.5 * np.deg2rad(fov_deg))


def _nerfstudio(data: dict, path: str, W: int, H: int):
    camera_type = data.get("camera_type", "perspective")
    if camera_type != "perspective":
        raise UserError(f"{path}: camera_type '{camera_type}' is not supported (only 'perspective')")
    W = _size(data["render_width"], f"{path}: render_width") if "render_width" in data else W
    H = _size(data["render_height"], f"{path}: render_height") if "render_height" in data else H
    fps = _number(data["fps"], f"{path}: fps") if "fps" in data else DEFAULT_FPS
    cameras = data["camera_path"]
    if not isinstance(cameras, list) or not cameras:
        raise UserError(f"{path}: camera_path: expected a non-empty list of cameras")
    poses, fovs = [], []
    for n, cam in enumerate(cameras):
        where = f"{path}: camera_path[{n}]"
        if not isinstance(cam, dict):
            raise UserError(f"{where}: expected an object with camera_to_world and fov")
        for key in ("camera_to_world", "fov"):
            if key not in cam:
                raise UserError(f"{where}: missing field '{key}'")
        poses.append(_pose(cam["camera_to_world"], f"{where}.camera_to_world"))
        fovs.append(_number(cam["fov"], f"{where}.fov", 0.0, 180.0))
    Ks = np.stack([intrinsics_matrix(focal_from_fov(f, H), W, H) for f in fovs])
    K = Ks[0] if np.allclose(fovs, fovs[0]) else Ks
    return np.stack(poses).astype(np.float32), K, H, W, fps


def _plain(data: dict, path: str, W: int, H: int, default_fov_deg: float):
    known = {"poses", "fov_deg", "width", "height", "fps"}
    unknown = sorted(set(data) - known)
    if unknown:
        raise UserError(f"{path}: unknown field(s) {', '.join(unknown)}; expected {', '.join(sorted(known))}")
    fov = _number(data["fov_deg"], f"{path}: fov_deg", 0.0, 180.0) if "fov_deg" in data else default_fov_deg
    W = _size(data["width"], f"{path}: width") if "width" in data else W
    H = _size(data["height"], f"{path}: height") if "height" in data else H
    fps = _number(data["fps"], f"{path}: fps") if "fps" in data else DEFAULT_FPS
    poses = _poses(data["poses"], f"{path}: poses")
    return poses, intrinsics_matrix(focal_from_fov(fov, H), W, H), H, W, fps


def load_camera_path(path: str, W: int, H: int, default_fov_deg: float = DEFAULT_FOV_DEG):
    """A camera-path file -> (poses (N, 4, 4) float32 camera-to-world (OpenGL), K (3, 3)
    float32 (or (N, 3, 3) for a nerfstudio path whose fov changes), H, W, fps).

    ``W``, ``H`` (the run's image size) and ``default_fov_deg`` apply where the file gives
    none. Formats and checks: module doc."""
    data = read_json(path)
    if data is None:
        raise UserError(f"camera path '{path}' not found")
    _size(W, "load_camera_path: W")
    _size(H, "load_camera_path: H")
    _number(default_fov_deg, "load_camera_path: default_fov_deg", 0.0, 180.0)
    if isinstance(data, list):
        poses = _poses(data, f"{path}: (list of poses)")
        return poses, intrinsics_matrix(focal_from_fov(default_fov_deg, H), W, H), H, W, DEFAULT_FPS
    if not isinstance(data, dict):
        raise UserError(f"{path}: expected a JSON object or a list of poses, got {type(data).__name__}")
    if "camera_path" in data:
        return _nerfstudio(data, path, W, H)
    if "poses" in data:
        return _plain(data, path, W, H, default_fov_deg)
    raise UserError(f"{path}: missing field 'camera_path' (nerfstudio) or 'poses' (plain format)")


@torch.no_grad()
def render_camera_path(views, poses, K, H: int, W: int, trained, args, out_stem: str, fps: float,
                       progress=None) -> List[str]:
    """Render every pose of a camera path at H x W with intrinsics ``K`` ((3, 3), or (N, 3, 3)
    per frame) and write ``out_stem.mp4`` (when imageio-ffmpeg is installed) and
    ``out_stem.gif``. ``trained``: ``runs.training.TrainedFields``; ``args``: the run's
    config. Returns the files written."""
    from runs.evaluation import render_image
    poses = torch.as_tensor(np.asarray(poses, np.float32), device=views.device)
    K = torch.as_tensor(np.asarray(K, np.float32), device=views.device)
    opts, amp = trained.render_options(args), amp_dtype(views.device, args.amp)
    frames = []
    indices = range(len(poses))
    for n in (progress(indices) if progress else indices):
        Kn = K[n] if K.ndim == 3 else K
        out = render_image(views, poses[n], trained.coarse, trained.fine, opts, args.chunk, Kn, H, W, amp)
        frames.append(out["rgb"])
    if not has_ffmpeg():
        print("note: imageio-ffmpeg is not installed; writing the GIF only (pip install imageio-ffmpeg)")
    return write_video(out_stem, frames, fps=fps)
