"""The Blender loader on the real lego scene in ../shared/data (skips when absent)."""
import json
import math

import numpy as np

from datasets.blender import load_blender
from tests.conftest import LEGO, require
from utils.config import build_parser, parse_args


def lego_args(*extra):
    return parse_args(build_parser(), ["--datadir", str(require(LEGO)), "--dataset_type", "blender", *extra])


def test_lego_counts_shapes_focal_and_rigid_poses():
    scene = load_blender(lego_args("--testskip", "8", "--downscale", "4"))
    assert len(scene.splits["train"]) == 100 and len(scene.splits["val"]) == 1
    assert len(scene.splits["test"]) == 25
    assert scene.images.shape == (126, 100, 100, 4) and scene.images.dtype == np.float32
    meta = json.loads((LEGO / "transforms_train.json").read_text())
    focal = 0.5 * 100 / math.tan(0.5 * meta["camera_angle_x"])
    assert math.isclose(scene.K[0, 0], focal, rel_tol=1e-6) and scene.K[0, 2] == 50
    R = scene.poses[:, :3, :3]
    assert np.allclose(R @ R.transpose(0, 2, 1), np.eye(3), atol=1e-5)
    assert np.allclose(np.linalg.det(R), 1.0, atol=1e-5)
    assert np.allclose(scene.poses[:, 3], [0, 0, 0, 1])
    # first train pose is the JSON's transform_matrix (c2w) as is
    assert np.allclose(scene.poses[0], np.array(meta["frames"][0]["transform_matrix"]), atol=1e-6)
    assert (scene.near, scene.far) == (2.0, 6.0)
    # cameras look at the object: the -z axis points towards the origin
    to_origin = -scene.poses[:, :3, 3] / np.linalg.norm(scene.poses[:, :3, 3], axis=1, keepdims=True)
    assert (np.einsum("ni,ni->n", -scene.poses[:, :3, 2], to_origin) > 0.9).all()


def test_lego_white_background_and_full_resolution():
    scene = load_blender(lego_args("--testskip", "100"))
    assert scene.images.shape[1:] == (400, 400, 4)
    rgb = scene.rgb(white_bkgd=True)
    empty = scene.images[..., 3] == 0
    assert empty.any() and np.allclose(rgb[empty], 1.0)
    assert len(scene.splits["test"]) == 2 and len(scene.splits["train"]) == 100
