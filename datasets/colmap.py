"""COLMAP scenes: ``images[_N]/`` + ``sparse/0/{cameras,images,points3D}.{bin,txt}``.

What ``process_data.py`` writes, and the layout of Mip-NeRF 360 scenes. The model files are
read by the small numpy/struct parser below (COLMAP's documented text and binary formats),
so loading needs no pycolmap. For each of cameras/images/points3D the ``.bin`` file is read
when present, else the ``.txt``; a missing pair is an error.

Cameras. PINHOLE, SIMPLE_PINHOLE, SIMPLE_RADIAL, RADIAL and OPENCV are supported; any other
model is an error naming it. COLMAP's pixel coordinates put the centre of the top-left pixel
at (0.5, 0.5), as ``rendering/rays.py`` does, so cx, cy carry over unchanged. Intrinsics are
scaled to the loaded images by (loaded width / camera width, loaded height / camera height).
A camera with distortion is undistorted with OpenCV onto the pinhole K that
``cv2.getOptimalNewCameraMatrix(alpha=0)`` chooses (same image size, only valid pixels, so no
black borders to train on), bilinear, edges replicated; with every distortion coefficient
exactly 0 nothing is resampled and K is the camera's own. ``Scene`` holds one K for all views:
every registered image must use the same camera (same model, size and parameters), otherwise
the loader stops and says so; it does not resample images onto a common K.

Poses. COLMAP stores world-to-camera (qvec = (w, x, y, z), tvec) in OpenCV camera axes
(x right, y down, z forward). c2w = inv([R | t]) = [R^T | -R^T t], then the y and z camera
axes are negated (columns 1 and 2) to get the project's OpenGL camera-to-world.

Depths. Every observation (an image's 2D point with a 3D point id) gives the depth z of its
3D point in that camera; without observations (a model with empty point lists) every 3D point
in front of a camera and inside its image counts. d_lo, d_hi = 1st and 99th percentile of the
positive depths; an error if there are none.

Facing. Forward-facing when the unit viewing directions are nearly parallel: the length of
their mean is >= 0.9 (about 25 degrees of spread; LLFF fern: 0.994). Otherwise inward-facing:
the directions spread and (for a 360 capture) converge on the point nearest to all optical
axes. Convergence alone does not separate the two (a forward-facing capture aimed at a subject
also converges); NDC needs nearly parallel views, so the spread decides. ``--spherify``
forces inward-facing.

Normalisation, with s the scale and world units those of the scene afterwards:
  forward-facing (as LLFF, ``datasets/llff.py``): poses are left-multiplied by the inverse of
    the average pose (centre: the mean camera centre; it becomes the identity) and scaled by
    s = 1 / (0.75 d_lo), so the nearest content lies beyond the NDC near plane at depth 1.
    NDC unless ``--no_ndc`` (then near = 0.9 s d_lo, far = 1.1 s d_hi); the render path is
    LLFF's spiral with bounds [s d_lo, s d_hi]; no bbox.
  inward-facing: the origin moves to the mean camera centre; world z becomes the mean camera
    up vector, world x the COLMAP x axis made orthogonal to it (COLMAP y if x is nearly
    parallel), y = z x x; s = 1 / (largest camera distance from the origin), so the cameras
    lie in the unit ball, the farthest on the unit sphere. No NDC; near = 0.9 s d_lo,
    far = 1.1 s d_hi. bbox (for ``--occ_grid``): the box of the camera centres joined with
    the box of the 3D points between their 1st and 99th percentile per axis, grown on every
    side by 10% of its largest side. Anything outside the bbox counts as empty, so a capture
    with far background should train without ``--occ_grid``. Render path: a circle of
    ``--n_frames`` views around the vertical through the convergence point (the origin if that
    point is behind most cameras), at the cameras' mean height and mean horizontal distance
    from it, starting at the first image's azimuth, looking at the point.
    (The origin replaces a convergence point behind most cameras or more than 10 away.)

Images are ordered by name. Splits as LLFF: ``--llffhold k > 0`` holds out names 0, k, 2k, ...
as test (val = test), ``<= 0`` holds out nothing. ``--factor N`` reads ``images_N/`` (made
from ``images/`` with ``datasets.llff.minify`` when missing); a listed image is found by its
name, or by its stem with another image extension (``minify`` writes PNGs).
``extras``: bounds (1, 2) [s d_lo, s d_hi], facing, camera_model, image_names and
colmap_to_world (4, 4): the similarity taking COLMAP world points to scene world points.
"""
import os
import struct
from dataclasses import dataclass
from typing import Dict, List, Tuple

import cv2
import numpy as np

from datasets.llff import (BD_FACTOR, IMAGE_EXTS, average_pose, closest_point_to_axes, image_folder,
                           spiral_path, split_indices)
from datasets.scene import Scene, look_at, normalize, pose_from_axes
from rendering.rays import intrinsics_matrix
from utils.errors import UserError
from utils.io import read_image

# COLMAP's camera models: id -> (name, number of parameters) (colmap/sensor/models.h)
CAMERA_MODELS = {
    0: ("SIMPLE_PINHOLE", 3), 1: ("PINHOLE", 4), 2: ("SIMPLE_RADIAL", 4), 3: ("RADIAL", 5),
    4: ("OPENCV", 8), 5: ("OPENCV_FISHEYE", 8), 6: ("FULL_OPENCV", 12), 7: ("FOV", 5),
    8: ("SIMPLE_RADIAL_FISHEYE", 4), 9: ("RADIAL_FISHEYE", 5), 10: ("THIN_PRISM_FISHEYE", 12),
    11: ("RAD_TAN_THIN_PRISM_FISHEYE", 16), 12: ("SIMPLE_DIVISION", 4), 13: ("DIVISION", 5),
    14: ("SIMPLE_FISHEYE", 3), 15: ("FISHEYE", 4), 16: ("EUCM", 6), 17: ("EQUIRECTANGULAR", 2),
}
MODEL_PARAMS = {name: n for name, n in CAMERA_MODELS.values()}
SUPPORTED_MODELS = ("SIMPLE_PINHOLE", "PINHOLE", "SIMPLE_RADIAL", "RADIAL", "OPENCV")
FORWARD_MIN_MEAN_DIRECTION = 0.9   # |mean unit viewing direction| at or above it: forward-facing
DEPTH_PERCENTILES = (1.0, 99.0)
NEAR_MARGIN, FAR_MARGIN = 0.9, 1.1
BBOX_PAD = 0.1
OPENCV_TO_OPENGL = np.diag([1.0, -1.0, -1.0, 1.0])   # negate the camera's y and z axes


@dataclass
class Camera:
    id: int
    model: str
    width: int
    height: int
    params: np.ndarray          # float64, COLMAP's order for the model


@dataclass
class Image:
    id: int
    qvec: np.ndarray            # (4,) w, x, y, z of the world-to-camera rotation
    tvec: np.ndarray            # (3,) world-to-camera translation
    camera_id: int
    name: str
    point3D_ids: np.ndarray     # (P,) int64 ids of the 3D points its 2D points observe (-1: none)


@dataclass
class Model:
    cameras: Dict[int, Camera]
    images: Dict[int, Image]
    point_ids: np.ndarray       # (M,) int64
    points: np.ndarray          # (M, 3) float64
    files: Dict[str, str]       # 'cameras' | 'images' | 'points3D' -> the path read


# --------------------------------------------------------------------------- binary files

class _Binary:
    """Sequential little-endian reads over a whole file; any overrun is a UserError."""

    def __init__(self, path: str):
        self.path, self.pos = path, 0
        try:
            with open(path, "rb") as f:
                self.data = f.read()
        except OSError as err:
            raise UserError(f"cannot read '{path}': {err.strerror}") from None

    def corrupt(self, what: str) -> UserError:
        return UserError(f"{self.path}: corrupt COLMAP binary file ({what} at byte {self.pos})")

    def take(self, fmt: str) -> tuple:
        size = struct.calcsize(fmt)
        if self.pos + size > len(self.data):
            raise self.corrupt("truncated")
        out = struct.unpack_from(fmt, self.data, self.pos)
        self.pos += size
        return out

    def array(self, dtype, count: int) -> np.ndarray:
        size = np.dtype(dtype).itemsize * count
        if self.pos + size > len(self.data):
            raise self.corrupt(f"truncated array of {count} records")
        out = np.frombuffer(self.data, dtype=dtype, count=count, offset=self.pos)
        self.pos += size
        return out

    def skip(self, size: int) -> None:
        if self.pos + size > len(self.data):
            raise self.corrupt("truncated")
        self.pos += size

    def cstring(self) -> str:
        end = self.data.find(b"\0", self.pos)
        if end < 0:
            raise self.corrupt("unterminated image name")
        raw, self.pos = self.data[self.pos:end], end + 1
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            raise self.corrupt("image name is not UTF-8") from None

    def count(self, min_record: int, what: str) -> int:
        (n,) = self.take("<Q")
        if n * min_record > len(self.data) - self.pos:
            raise self.corrupt(f"{n} {what} cannot fit in the remaining {len(self.data) - self.pos} bytes")
        return n

    def finish(self) -> None:
        if self.pos != len(self.data):
            raise self.corrupt(f"{len(self.data) - self.pos} unexpected bytes after the last record")


def read_cameras_binary(path: str) -> Dict[int, Camera]:
    """cameras.bin: uint64 count; per camera int32 id, int32 model id, uint64 width, uint64
    height, float64 params[n(model)]."""
    f = _Binary(path)
    cameras = {}
    for _ in range(f.count(24, "cameras")):
        cam_id, model_id, width, height = f.take("<iiQQ")
        if model_id not in CAMERA_MODELS:
            raise f.corrupt(f"unknown camera model id {model_id} for camera {cam_id}")
        name, n = CAMERA_MODELS[model_id]
        cameras[cam_id] = Camera(cam_id, name, int(width), int(height), np.array(f.take(f"<{n}d")))
    f.finish()
    return cameras


def read_images_binary(path: str) -> Dict[int, Image]:
    """images.bin: uint64 count; per image int32 id, float64 qvec[4], float64 tvec[3], int32
    camera id, NUL-terminated name, uint64 n, then n x (float64 x, float64 y, int64 point3D id)."""
    f = _Binary(path)
    point = np.dtype([("x", "<f8"), ("y", "<f8"), ("id", "<i8")])
    images = {}
    for _ in range(f.count(73, "images")):
        vals = f.take("<i4d3di")
        name = f.cstring()
        (n,) = f.take("<Q")
        ids = f.array(point, n)["id"].astype(np.int64)
        images[vals[0]] = Image(vals[0], np.array(vals[1:5]), np.array(vals[5:8]), vals[8], name, ids)
    f.finish()
    return images


def read_points3D_binary(path: str) -> Tuple[np.ndarray, np.ndarray]:
    """points3D.bin: uint64 count; per point uint64 id, float64 xyz[3], uint8 rgb[3], float64
    error, uint64 track length n, then n x (int32 image id, int32 2D point index)."""
    f = _Binary(path)
    n = f.count(51, "points")
    ids, xyz = np.empty(n, np.int64), np.empty((n, 3))
    for k in range(n):
        vals = f.take("<Q3d3Bd")
        ids[k], xyz[k] = vals[0], vals[1:4]
        (track,) = f.take("<Q")
        f.skip(8 * track)
    f.finish()
    return ids, xyz


# --------------------------------------------------------------------------- text files

def _text_lines(path: str):
    """All lines of a text file (callers skip blank and '#' lines)."""
    try:
        with open(path, encoding="utf-8") as f:
            lines = f.read().splitlines()
    except (OSError, UnicodeDecodeError) as err:
        raise UserError(f"cannot read '{path}': {getattr(err, 'strerror', None) or err}") from None
    return lines


def _numbers(path: str, lineno: int, tokens: List[str], kind=float) -> list:
    try:
        return [kind(t) for t in tokens]
    except ValueError:
        raise UserError(f"{path}:{lineno}: expected numbers, got '{' '.join(tokens)[:80]}'") from None


def read_cameras_text(path: str) -> Dict[int, Camera]:
    """cameras.txt: ``CAMERA_ID MODEL WIDTH HEIGHT PARAMS[]`` per line."""
    cameras = {}
    for lineno, line in enumerate(_text_lines(path), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        tok = line.split()
        if len(tok) < 4:
            raise UserError(f"{path}:{lineno}: expected 'CAMERA_ID MODEL WIDTH HEIGHT PARAMS...', got '{line[:80]}'")
        model = tok[1]
        if model not in MODEL_PARAMS:
            raise UserError(f"{path}:{lineno}: unknown camera model '{model}'")
        cam_id, width, height = _numbers(path, lineno, [tok[0], tok[2], tok[3]], int)
        params = _numbers(path, lineno, tok[4:])
        if len(params) != MODEL_PARAMS[model]:
            raise UserError(f"{path}:{lineno}: {model} has {MODEL_PARAMS[model]} parameters, found {len(params)}")
        cameras[cam_id] = Camera(cam_id, model, width, height, np.array(params))
    return cameras


def read_images_text(path: str) -> Dict[int, Image]:
    """images.txt: two lines per image, ``IMAGE_ID QW QX QY QZ TX TY TZ CAMERA_ID NAME`` then
    ``X Y POINT3D_ID ...`` (possibly empty). As COLMAP's reader, the line after an image line
    is its point line, whatever it holds."""
    lines = _text_lines(path)
    images, k = {}, 0
    while k < len(lines):
        line, lineno = lines[k].strip(), k + 1
        k += 1
        if not line or line.startswith("#"):
            continue
        tok = line.split(maxsplit=9)
        if len(tok) != 10:
            raise UserError(f"{path}:{lineno}: expected 'IMAGE_ID QW QX QY QZ TX TY TZ CAMERA_ID NAME', "
                            f"got '{line[:80]}'")
        image_id, camera_id = _numbers(path, lineno, [tok[0], tok[8]], int)
        vals = _numbers(path, lineno, tok[1:8])
        points = lines[k].split() if k < len(lines) else []
        k += 1
        if len(points) % 3:
            raise UserError(f"{path}:{lineno + 1}: expected 'X Y POINT3D_ID' triples, found {len(points)} numbers")
        ids = np.array(_numbers(path, lineno + 1, points[2::3], int), dtype=np.int64)
        images[image_id] = Image(image_id, np.array(vals[:4]), np.array(vals[4:]), camera_id, tok[9], ids)
    return images


def read_points3D_text(path: str) -> Tuple[np.ndarray, np.ndarray]:
    """points3D.txt: ``POINT3D_ID X Y Z R G B ERROR TRACK[]`` per line -> (ids, xyz)."""
    ids, xyz = [], []
    for lineno, line in enumerate(_text_lines(path), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        tok = line.split()
        if len(tok) < 8:
            raise UserError(f"{path}:{lineno}: expected 'POINT3D_ID X Y Z R G B ERROR TRACK...', got '{line[:80]}'")
        ids.append(_numbers(path, lineno, tok[:1], int)[0])
        xyz.append(_numbers(path, lineno, tok[1:4]))
    return np.array(ids, dtype=np.int64), np.array(xyz, dtype=np.float64).reshape(-1, 3)


READERS = {"cameras": (read_cameras_binary, read_cameras_text),
           "images": (read_images_binary, read_images_text),
           "points3D": (read_points3D_binary, read_points3D_text)}


def read_model(sparse_dir: str) -> Model:
    """cameras, images and points3D from ``sparse_dir``, each .bin if present, else .txt."""
    if not os.path.isdir(sparse_dir):
        raise UserError(f"missing COLMAP model folder '{sparse_dir}' (a COLMAP scene has images/ and "
                        f"sparse/0/{{cameras,images,points3D}}.bin or .txt; process_data.py makes one)")
    out, files = {}, {}
    for name, (read_bin, read_txt) in READERS.items():
        bin_path, txt_path = (os.path.join(sparse_dir, f"{name}{ext}") for ext in (".bin", ".txt"))
        if os.path.isfile(bin_path):
            out[name], files[name] = read_bin(bin_path), bin_path
        elif os.path.isfile(txt_path):
            out[name], files[name] = read_txt(txt_path), txt_path
        else:
            raise UserError(f"'{sparse_dir}' has no {name}.bin or {name}.txt (an incomplete COLMAP model: "
                            f"it needs cameras, images and points3D)")
    ids, xyz = out["points3D"]
    return Model(out["cameras"], out["images"], ids, xyz, files)


# --------------------------------------------------------------------------- geometry

def qvec_to_rotation(qvec: np.ndarray) -> np.ndarray:
    """(3, 3) rotation of the unit quaternion (w, x, y, z) (normalised here)."""
    w, x, y, z = qvec / np.linalg.norm(qvec)
    return np.array([[1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
                     [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
                     [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)]])


def colmap_to_c2w(qvec: np.ndarray, tvec: np.ndarray) -> np.ndarray:
    """COLMAP world-to-camera (OpenCV axes) -> (4, 4) OpenGL camera-to-world:
    [R^T | -R^T t], then camera axes y and z negated."""
    R = qvec_to_rotation(qvec)
    c2w = np.eye(4)
    c2w[:3, :3], c2w[:3, 3] = R.T, -R.T @ tvec
    return c2w @ OPENCV_TO_OPENGL


def pinhole_and_distortion(cam: Camera) -> Tuple[np.ndarray, np.ndarray]:
    """(fx, fy, cx, cy) and OpenCV's (k1, k2, p1, p2) of a supported camera model."""
    p = cam.params
    if cam.model == "SIMPLE_PINHOLE":
        return np.array([p[0], p[0], p[1], p[2]]), np.zeros(4)
    if cam.model == "PINHOLE":
        return p[:4].copy(), np.zeros(4)
    if cam.model == "SIMPLE_RADIAL":
        return np.array([p[0], p[0], p[1], p[2]]), np.array([p[3], 0.0, 0.0, 0.0])
    if cam.model == "RADIAL":
        return np.array([p[0], p[0], p[1], p[2]]), np.array([p[3], p[4], 0.0, 0.0])
    if cam.model == "OPENCV":
        return p[:4].copy(), p[4:8].copy()
    raise UserError(f"camera {cam.id} uses the COLMAP camera model {cam.model}, which is not supported "
                    f"(supported: {', '.join(SUPPORTED_MODELS)}); undistort the images first "
                    f"(colmap image_undistorter) or re-run COLMAP with one of those models")


class Undistorter:
    """Remaps images of one camera (at the loaded size) onto a pinhole K (see the module doc).
    ``K`` is in the project's convention (pixel centres at +0.5); OpenCV's K has the centre of
    the top-left pixel at 0, so its cx, cy are ours minus 0.5."""

    def __init__(self, K: np.ndarray, dist: np.ndarray, W: int, H: int):
        self.maps = None
        self.K = K.copy()
        if not np.any(dist):
            return
        K_cv = K.copy()
        K_cv[:2, 2] -= 0.5
        new_cv, _ = cv2.getOptimalNewCameraMatrix(K_cv, dist, (W, H), 0, (W, H))
        self.maps = cv2.initUndistortRectifyMap(K_cv, dist, None, new_cv, (W, H), cv2.CV_32FC1)
        self.K = new_cv.astype(np.float64)
        self.K[:2, 2] += 0.5

    def __call__(self, img: np.ndarray) -> np.ndarray:
        if self.maps is None:
            return img
        return cv2.remap(img, *self.maps, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def observation_depths(model: Model, images: List[Image], poses_cv: np.ndarray, W: int, H: int,
                       K: np.ndarray) -> np.ndarray:
    """Positive depths of the 3D points in the cameras that observe them; without any
    observation, of every point in front of a camera that projects inside its image."""
    order = np.argsort(model.point_ids)
    sorted_ids = model.point_ids[order]
    depths = []
    for img, w2c in zip(images, poses_cv):
        ids = img.point3D_ids[img.point3D_ids >= 0]
        if len(ids) == 0 or len(sorted_ids) == 0:
            continue
        pos = np.clip(np.searchsorted(sorted_ids, ids), 0, len(sorted_ids) - 1)
        known = sorted_ids[pos] == ids
        X = model.points[order[pos[known]]]
        depths.append((X @ w2c[:3, :3].T + w2c[:3, 3])[:, 2])
    if not depths:  # no observations listed: points in each camera's frustum
        for w2c in poses_cv:
            Xc = model.points @ w2c[:3, :3].T + w2c[:3, 3]
            z = Xc[:, 2]
            with np.errstate(divide="ignore", invalid="ignore"):
                u = K[0, 0] * Xc[:, 0] / z + K[0, 2]
                v = K[1, 1] * Xc[:, 1] / z + K[1, 2]
            depths.append(z[(z > 0) & (u >= 0) & (u <= W) & (v >= 0) & (v <= H)])
    depths = np.concatenate(depths) if depths else np.zeros(0)
    return depths[np.isfinite(depths) & (depths > 0)]


def is_forward_facing(poses: np.ndarray) -> bool:
    """True when |mean unit viewing direction| >= FORWARD_MIN_MEAN_DIRECTION (see module doc)."""
    dirs = -poses[:, :3, 2]
    return bool(np.linalg.norm(dirs.mean(0)) >= FORWARD_MIN_MEAN_DIRECTION)


def convergence_point(poses: np.ndarray, max_radius: float = 10.0) -> np.ndarray:
    """The point nearest to all optical axes if it is in front of most cameras and within
    ``max_radius`` of the origin (the cameras lie in the unit ball), else the origin."""
    try:
        p = closest_point_to_axes(poses[:, :3, 3], poses[:, :3, 2])
    except np.linalg.LinAlgError:  # all axes parallel
        return np.zeros(3)
    in_front = ((p - poses[:, :3, 3]) * -poses[:, :3, 2]).sum(-1) > 0
    ok = np.all(np.isfinite(p)) and np.linalg.norm(p) <= max_radius and in_front.mean() > 0.5
    return p if ok else np.zeros(3)


def up_frame(poses: np.ndarray) -> np.ndarray:
    """(4, 4) frame at the mean camera centre: z = mean camera up, x = world x (or y) made
    orthogonal to z, y = z x x. Its inverse maps the world into the inward-facing frame."""
    z = normalize(poses[:, :3, 1].mean(0))
    ref = np.array([1.0, 0.0, 0.0]) if abs(z[0]) < 0.9 else np.array([0.0, 1.0, 0.0])
    x = normalize(ref - (ref @ z) * z)
    return pose_from_axes(x, np.cross(z, x), z, poses[:, :3, 3].mean(0))


def circle_path(poses: np.ndarray, target: np.ndarray, n_views: int) -> np.ndarray:
    """(n_views, 4, 4): a horizontal circle around the vertical through ``target`` at the mean
    camera height and mean horizontal distance, from the first camera's azimuth, looking at it."""
    rel = poses[:, :3, 3] - target
    radius = max(float(np.linalg.norm(rel[:, :2], axis=1).mean()), 1e-3)
    height = float(poses[:, 2, 3].mean())
    start = np.arctan2(rel[0, 1], rel[0, 0])
    path = []
    for theta in start + np.linspace(0.0, 2.0 * np.pi, n_views, endpoint=False):
        eye = np.array([target[0] + radius * np.cos(theta), target[1] + radius * np.sin(theta), height])
        path.append(look_at(eye, target, up=(0.0, 0.0, 1.0)))
    return np.stack(path)


def similarity(rigid: np.ndarray, scale: float) -> np.ndarray:
    """(4, 4) x -> scale * (rigid @ x) for points."""
    M = rigid.copy()
    M[:3] *= scale
    return M


# --------------------------------------------------------------------------- images

def find_image(folder: str, name: str, listed_in: str) -> str:
    """``folder/name``, else a file with the same stem and another image extension."""
    path = os.path.join(folder, name)
    if os.path.isfile(path):
        return path
    stem = os.path.splitext(path)[0]
    for ext in IMAGE_EXTS:
        for cand in (stem + ext, stem + ext.upper()):
            if os.path.isfile(cand):
                return cand
    raise UserError(f"image '{name}' is listed in '{listed_in}' but is not in '{folder}'")


def shared_camera(model: Model, images: List[Image]) -> Camera:
    """The one camera of all registered images (identical model, size and parameters)."""
    used = {}
    for img in images:
        if img.camera_id not in model.cameras:
            raise UserError(f"image '{img.name}' in '{model.files['images']}' uses camera {img.camera_id}, "
                            f"which '{model.files['cameras']}' does not define")
        cam = model.cameras[img.camera_id]
        used.setdefault((cam.model, cam.width, cam.height, tuple(cam.params)), []).append(cam.id)
    if len(used) > 1:
        desc = "; ".join(f"camera {ids[0]}: {key[0]} {key[1]}x{key[2]} "
                         f"[{', '.join(f'{v:.6g}' for v in key[3])}]" for key, ids in used.items())
        raise UserError(f"'{model.files['cameras']}': the images use {len(used)} different cameras ({desc}); "
                        f"this loader needs one camera shared by all images (re-run COLMAP with a single "
                        f"camera, as process_data.py does)")
    return model.cameras[images[0].camera_id]


def load_images(folder: str, images: List[Image], cam: Camera, factor: int, listed_in: str) -> np.ndarray:
    """(N, H, W, 3) float32 in [0, 1] of the listed images, sizes checked against the camera."""
    out, first = [], None
    for img in images:
        path = find_image(folder, img.name, listed_in)
        rgb = read_image(path)[..., :3]
        H, W = rgb.shape[:2]
        if factor == 1 and (W, H) != (cam.width, cam.height):
            raise UserError(f"'{path}' is {W}x{H} but camera {cam.id} in '{listed_in}' is {cam.width}x{cam.height}")
        if factor > 1 and (abs(W - cam.width / factor) >= 1 or abs(H - cam.height / factor) >= 1):
            raise UserError(f"'{path}' is {W}x{H}, not about 1/{factor} of the camera's {cam.width}x{cam.height} "
                            f"(is '{folder}' from other images? delete it to rebuild it)")
        if first is not None and (W, H) != first:
            raise UserError(f"'{folder}': images have different sizes ({first[0]}x{first[1]} and {W}x{H} at '{path}')")
        first = (W, H)
        out.append(rgb)
    return np.stack(out).astype(np.float32)


# --------------------------------------------------------------------------- loader

def registered_images(datadir: str) -> Tuple[Model, List[Image]]:
    """The model in ``datadir/sparse/0`` and its images by name (the split order), each pose
    checked here: a NaN or zero quaternion would otherwise only show up as NaN poses."""
    model = read_model(os.path.join(datadir, "sparse", "0"))
    if not model.images:
        raise UserError(f"'{model.files['images']}' lists no registered images")
    images = sorted(model.images.values(), key=lambda im: im.name)
    for img in images:
        if not (np.all(np.isfinite(img.qvec)) and np.all(np.isfinite(img.tvec)) and np.linalg.norm(img.qvec) > 0):
            raise UserError(f"'{model.files['images']}': image '{img.name}' has an invalid pose")
    return model, images


def checked_camera(model: Model, images: List[Image]) -> Tuple[Camera, np.ndarray, np.ndarray]:
    """The images' one camera with its (fx, fy, cx, cy) and distortion (``pinhole_and_distortion``),
    refused when its size or parameters could not make a valid K."""
    cam = shared_camera(model, images)
    intr, dist = pinhole_and_distortion(cam)
    if not np.all(np.isfinite(cam.params)) or min(intr[:2]) <= 0 or min(cam.width, cam.height) <= 0:
        raise UserError(f"'{model.files['cameras']}': camera {cam.id} has invalid size or parameters")
    return cam, intr, dist


def load_undistorted(datadir: str, factor: int, model: Model, images: List[Image], cam: Camera,
                     intr: np.ndarray, dist: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """(N, H, W, 3) float32 images of ``images_<factor>/``, undistorted, and their float64 pinhole
    K. The camera's intrinsics are first scaled to the loaded size: images_N is only about 1/N."""
    rgb = load_images(image_folder(datadir, factor), images, cam, factor, model.files["images"])
    H, W = rgb.shape[1:3]
    sx, sy = W / cam.width, H / cam.height
    K = intrinsics_matrix(intr[0] * sx, W, H, fy=intr[1] * sy, cx=intr[2] * sx, cy=intr[3] * sy, dtype=np.float64)
    undistort = Undistorter(K, dist, W, H)
    return np.stack([undistort(im) for im in rgb]).astype(np.float32), undistort.K


def depth_range(model: Model, images: List[Image], poses: np.ndarray, cam: Camera,
                intr: np.ndarray) -> Tuple[float, float]:
    """(d_lo, d_hi): 1st and 99th percentile of the 3D points' depths in the cameras (percentiles,
    so a few stray points do not set near/far), at the camera's own size and intrinsics."""
    w2c_cv = np.linalg.inv(poses @ OPENCV_TO_OPENGL)
    K = intrinsics_matrix(intr[0], cam.width, cam.height, fy=intr[1], cx=intr[2], cy=intr[3], dtype=np.float64)
    depths = observation_depths(model, images, w2c_cv, cam.width, cam.height, K)
    if len(depths) == 0:
        raise UserError(f"'{model.files['points3D']}': no 3D point lies in front of the cameras, so near/far "
                        f"cannot be set")
    d_lo, d_hi = np.percentile(depths, DEPTH_PERCENTILES)
    return d_lo, d_hi


def normalising_transform(poses: np.ndarray, d_lo: float, forward: bool) -> Tuple[np.ndarray, float]:
    """(rigid, scale) taking COLMAP's world to the scene's (module doc, Normalisation): LLFF's
    recentring for forward-facing scenes, so the nearest content lies beyond NDC's near plane;
    an up-aligned frame for inward-facing ones, so the cameras fill the unit ball."""
    if forward:
        return np.linalg.inv(average_pose(poses)), 1.0 / (BD_FACTOR * d_lo)
    rigid = np.linalg.inv(up_frame(poses))
    return rigid, 1.0 / max(np.linalg.norm((rigid @ poses)[:, :3, 3], axis=1).max(), 1e-12)


def near_far(bounds: np.ndarray, forward: bool, no_ndc: bool) -> Tuple[float, float, bool]:
    """(near, far, ndc): NDC's [0, 1] for forward-facing scenes unless ``--no_ndc``, else the
    depth range widened by NEAR_MARGIN / FAR_MARGIN so no content sits on a bound."""
    if forward and not no_ndc:
        return 0.0, 1.0, True
    return float(NEAR_MARGIN * bounds[0, 0]), float(FAR_MARGIN * bounds[0, 1]), False


def inward_bbox(poses: np.ndarray, points: np.ndarray) -> np.ndarray:
    """(2, 3) float32 box for ``--occ_grid``: the camera centres joined with the 1st-99th
    percentile box of the points (stray points would blow it up), padded by BBOX_PAD of its
    largest side."""
    boxes = [poses[:, :3, 3]]
    if len(points):
        boxes.append(np.percentile(points, DEPTH_PERCENTILES, axis=0))
    lo, hi = np.min([b.min(0) for b in boxes], 0), np.max([b.max(0) for b in boxes], 0)
    pad = BBOX_PAD * max(float((hi - lo).max()), 1e-6)
    return np.stack([lo - pad, hi + pad]).astype(np.float32)


def load_colmap(args) -> Scene:
    """``--dataset_type colmap``: the scene in ``args.datadir`` (module doc)."""
    datadir = args.datadir
    if not os.path.isdir(datadir):
        raise UserError(f"datadir '{datadir}' does not exist (--datadir)")
    if args.factor < 1:
        raise UserError(f"--factor must be >= 1 (1: full-size images/), got {args.factor}")
    model, images = registered_images(datadir)
    cam, intr, dist = checked_camera(model, images)
    rgb, K = load_undistorted(datadir, args.factor, model, images, cam, intr, dist)
    poses = np.stack([colmap_to_c2w(im.qvec, im.tvec) for im in images])         # OpenGL c2w
    d_lo, d_hi = depth_range(model, images, poses, cam, intr)

    forward = is_forward_facing(poses) and not args.spherify
    rigid, scale = normalising_transform(poses, d_lo, forward)
    poses = rigid @ poses
    poses[:, :3, 3] *= scale
    bounds = np.array([[d_lo, d_hi]]) * scale
    near, far, ndc = near_far(bounds, forward, args.no_ndc)
    if forward:
        render_poses, bbox = spiral_path(poses, bounds, args.n_frames), None
    else:
        render_poses = circle_path(poses, convergence_point(poses), args.n_frames)
        bbox = inward_bbox(poses, model.points @ rigid[:3, :3].T * scale + rigid[:3, 3] * scale)

    return Scene(name=os.path.basename(os.path.normpath(datadir)), images=rgb,
                 poses=poses.astype(np.float32), K=K.astype(np.float32),
                 near=near, far=far, splits=split_indices(len(rgb), args.llffhold),
                 render_poses=render_poses.astype(np.float32), ndc=ndc, bbox=bbox,
                 extras={"bounds": bounds.astype(np.float32), "facing": "forward" if forward else "inward",
                         "camera_model": cam.model, "image_names": [im.name for im in images],
                         "colmap_to_world": similarity(rigid, scale)})
