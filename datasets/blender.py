"""NeRF synthetic (Blender) scenes: ``transforms_{train,val,test}.json`` + RGBA PNGs."""
import json
import math
import os

import cv2
import numpy as np

from datasets.scene import Scene, first_odd_shape, orbit_poses
from rendering.rays import intrinsics_matrix
from utils.errors import UserError
from utils.io import read_image

SPLITS = ("train", "val", "test")
BLENDER_BBOX = np.array([[-1.5, -1.5, -1.5], [1.5, 1.5, 1.5]], dtype=np.float32)


def _read_json(path: str) -> dict:
    if not os.path.isfile(path):
        raise UserError(f"missing '{path}' (expected a Blender scene folder with transforms_{{train,val,test}}.json)")
    try:
        with open(path, encoding="utf-8") as f:
            meta = json.load(f)
    except json.JSONDecodeError as err:
        raise UserError(f"{path}: malformed JSON ({err.msg} at line {err.lineno})") from None
    except UnicodeDecodeError as err:
        raise UserError(f"{path}: not a UTF-8 JSON text file (undecodable byte at offset {err.start})") from None
    except OSError as err:
        raise UserError(f"{path}: cannot read ({err.strerror})") from None
    if not isinstance(meta, dict) or "camera_angle_x" not in meta or not isinstance(meta.get("frames"), list):
        raise UserError(f"{path}: expected an object with 'camera_angle_x' and a 'frames' list")
    return meta


def _camera_angle(path: str, meta: dict) -> float:
    """The horizontal field of view in radians, a number in (0, pi)."""
    value = meta["camera_angle_x"]
    try:
        angle = math.nan if isinstance(value, bool) else float(value)
    except (TypeError, ValueError):
        angle = math.nan
    if not 0 < angle < math.pi:  # NaN fails too
        raise UserError(f"{path}: camera_angle_x must be a number in (0, pi), got {value!r}")
    return angle


def _frame_pose(path: str, k: int, frame) -> np.ndarray:
    try:
        pose = np.asarray(frame["transform_matrix"], dtype=np.float32)
        if not isinstance(frame["file_path"], str):
            raise TypeError
    except (KeyError, TypeError, ValueError):
        raise UserError(f"{path}: frames[{k}] needs a 'file_path' string and a 4x4 'transform_matrix'") from None
    if pose.shape != (4, 4) or not np.isfinite(pose).all():
        raise UserError(f"{path}: frames[{k}].transform_matrix must be a finite 4x4 matrix, got shape {pose.shape}")
    return pose


def _read_frame(path: str, args) -> np.ndarray:
    """One frame's image shrunk by --downscale (x2 with --half_res); smaller than that is an error."""
    factor = args.downscale * (2 if args.half_res else 1)
    try:
        return read_image(path, factor)
    except cv2.error:
        H, W = read_image(path).shape[:2]
        if H >= factor and W >= factor:
            raise
    flags = f"--downscale {args.downscale}" + (" with --half_res" if args.half_res else "")
    raise UserError(f"image '{path}' ({W}x{H}) is smaller than the downscale factor {factor} ({flags})")


def _check_shapes(images, files, datadir: str) -> None:
    """All images must share one size and channel count (RGB and RGBA must not be mixed)."""
    if not images:
        raise UserError(f"{datadir}: no frames in transforms_{{train,val,test}}.json")
    k, common, n = first_odd_shape(images)
    if k is not None:
        describe = lambda s: f"{s[1]}x{s[0]} with {s[2]} channels"
        raise UserError(f"image '{files[k]}' is {describe(images[k].shape)}, but {n} of {len(images)} "
                        f"images are {describe(common)}")


def load_blender(args) -> Scene:
    datadir = args.datadir
    if not os.path.isdir(datadir):
        raise UserError(f"datadir '{datadir}' does not exist (--datadir)")
    images, files, poses, splits, angle = [], [], [], {}, None
    for split in SPLITS:
        path = os.path.join(datadir, f"transforms_{split}.json")
        meta = _read_json(path)
        split_angle = _camera_angle(path, meta)  # every file's is checked; the first one's is used
        angle = split_angle if angle is None else angle
        skip = 1 if split == "train" or args.testskip == 0 else args.testskip
        start = len(images)
        for k, frame in enumerate(meta["frames"][::skip]):
            poses.append(_frame_pose(path, k * skip, frame))
            files.append(os.path.join(datadir, frame["file_path"] + ".png"))
            images.append(_read_frame(files[-1], args))
        splits[split] = np.arange(start, len(images))
    _check_shapes(images, files, datadir)
    H, W = images[0].shape[:2]
    focal = 0.5 * W / np.tan(0.5 * angle)
    return Scene(name=os.path.basename(os.path.normpath(datadir)), images=np.stack(images),
                 poses=np.stack(poses), K=intrinsics_matrix(focal, W, H), near=2.0, far=6.0, splits=splits,
                 render_poses=orbit_poses(args.n_frames), bbox=BLENDER_BBOX.copy())
