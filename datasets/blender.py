"""NeRF synthetic (Blender) scenes: ``transforms_{train,val,test}.json`` + RGBA PNGs."""
import json
import os

import numpy as np

from datasets.scene import Scene, orbit_poses
from rendering.rays import intrinsics_matrix
from utils.errors import UserError
from utils.io import read_image

SPLITS = ("train", "val", "test")
BLENDER_BBOX = np.array([[-1.5, -1.5, -1.5], [1.5, 1.5, 1.5]], dtype=np.float32)


def _read_json(path: str) -> dict:
    if not os.path.isfile(path):
        raise UserError(f"missing '{path}' (expected a Blender scene folder with transforms_{{train,val,test}}.json)")
    try:
        with open(path) as f:
            meta = json.load(f)
    except json.JSONDecodeError as err:
        raise UserError(f"{path}: malformed JSON ({err.msg} at line {err.lineno})") from None
    if not isinstance(meta, dict) or "camera_angle_x" not in meta or not isinstance(meta.get("frames"), list):
        raise UserError(f"{path}: expected an object with 'camera_angle_x' and a 'frames' list")
    return meta


def _frame_pose(path: str, k: int, frame) -> np.ndarray:
    try:
        pose = np.asarray(frame["transform_matrix"], dtype=np.float32)
        frame["file_path"]
    except (KeyError, TypeError, ValueError):
        raise UserError(f"{path}: frames[{k}] needs 'file_path' and a 4x4 'transform_matrix'") from None
    if pose.shape != (4, 4) or not np.isfinite(pose).all():
        raise UserError(f"{path}: frames[{k}].transform_matrix must be a finite 4x4 matrix, got shape {pose.shape}")
    return pose


def load_blender(args) -> Scene:
    datadir = args.datadir
    if not os.path.isdir(datadir):
        raise UserError(f"datadir '{datadir}' does not exist (--datadir)")
    factor = args.downscale * (2 if args.half_res else 1)
    images, poses, splits, angle = [], [], {}, None
    for split in SPLITS:
        path = os.path.join(datadir, f"transforms_{split}.json")
        meta = _read_json(path)
        angle = float(meta["camera_angle_x"]) if angle is None else angle
        skip = 1 if split == "train" or args.testskip == 0 else args.testskip
        start = len(images)
        for k, frame in enumerate(meta["frames"][::skip]):
            poses.append(_frame_pose(path, k * skip, frame))
            images.append(read_image(os.path.join(datadir, frame["file_path"] + ".png"), factor))
        splits[split] = np.arange(start, len(images))
    shapes = {im.shape for im in images}
    if len(shapes) != 1:
        raise UserError(f"{datadir}: images have different sizes {sorted(shapes)}")
    H, W = images[0].shape[:2]
    focal = 0.5 * W / np.tan(0.5 * angle)
    return Scene(name=os.path.basename(os.path.normpath(datadir)), images=np.stack(images),
                 poses=np.stack(poses), K=intrinsics_matrix(focal, W, H), near=2.0, far=6.0, splits=splits,
                 render_poses=orbit_poses(args.n_frames), bbox=BLENDER_BBOX.copy())
