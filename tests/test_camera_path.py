"""Camera-path files (runs/camera_path.py): nerfstudio's camera_path.json, the plain format
and a bare list parse into the expected poses and intrinsics (values worked out by hand
next to each input); bad files are one-line errors naming the file and the field; a path
renders to MP4 + GIF."""
import json

import imageio.v2 as imageio
import numpy as np
import pytest
import torch

from runs.camera_path import load_camera_path, render_camera_path
from utils.errors import UserError

# 90 degrees about +z, then translated by (1, 2, 3): row-major, so the translation is the
# last *column*. Read column-major it would have (1, 2, 3) in the last row and be refused.
ROT_Z90 = [[0.0, -1.0, 0.0, 1.0],
           [1.0, 0.0, 0.0, 2.0],
           [0.0, 0.0, 1.0, 3.0],
           [0.0, 0.0, 0.0, 1.0]]
IDENTITY = np.eye(4).tolist()
FLAT = [x for row in ROT_Z90 for x in row]


def write(tmp_path, obj, name="path.json"):
    path = tmp_path / name
    path.write_text(json.dumps(obj) if not isinstance(obj, str) else obj)
    return str(path)


def test_nerfstudio_format(tmp_path):
    # fov 90 (vertical) at H = 100: focal = (100 / 2) / tan(45 deg) = 50; cx = W / 2 = 100, cy = 50
    path = write(tmp_path, {"render_width": 200, "render_height": 100, "fps": 30, "seconds": 2 / 30,
                            "camera_type": "perspective",
                            "camera_path": [{"camera_to_world": FLAT, "fov": 90, "aspect": 2.0},
                                            {"camera_to_world": sum(IDENTITY, []), "fov": 90, "aspect": 2.0}]})
    poses, K, H, W, fps = load_camera_path(path, W=64, H=64)
    assert poses.dtype == np.float32 and poses.shape == (2, 4, 4)
    np.testing.assert_array_equal(poses[0], np.array(ROT_Z90, np.float32))
    np.testing.assert_array_equal(poses[1], np.eye(4, dtype=np.float32))
    np.testing.assert_allclose(K, [[50, 0, 100], [0, 50, 50], [0, 0, 1]], atol=1e-4)
    assert (H, W, fps) == (100, 200, 30.0)


def test_nerfstudio_fov_per_frame(tmp_path):
    # fov 90 -> focal 50 at H = 100; fov 60 -> 50 / tan(30 deg) = 86.6025
    path = write(tmp_path, {"render_width": 100, "render_height": 100,
                            "camera_path": [{"camera_to_world": FLAT, "fov": 90},
                                            {"camera_to_world": FLAT, "fov": 60}]})
    poses, K, H, W, fps = load_camera_path(path, W=64, H=64)
    assert K.shape == (2, 3, 3)
    np.testing.assert_allclose(K[:, 0, 0], [50.0, 86.6025], atol=1e-3)
    assert fps == 24.0  # default


def test_plain_format_and_3x4(tmp_path):
    # fov_deg 60 at height 300: focal = 150 / tan(30 deg) = 259.8076; cx = 200, cy = 150
    path = write(tmp_path, {"fov_deg": 60, "width": 400, "height": 300, "fps": 12,
                            "poses": [ROT_Z90, ROT_Z90[:3], FLAT[:12]]})
    poses, K, H, W, fps = load_camera_path(path, W=64, H=64)
    assert poses.shape == (3, 4, 4)
    for pose in poses:  # 4x4, 3x4 nested and 12 numbers all give the same matrix
        np.testing.assert_array_equal(pose, np.array(ROT_Z90, np.float32))
    np.testing.assert_allclose(K, [[259.8076, 0, 200], [0, 259.8076, 150], [0, 0, 1]], atol=1e-3)
    assert (H, W, fps) == (300, 400, 12.0)


def test_bare_list_uses_defaults(tmp_path):
    # default fov 40 at H = 64: focal = 32 / tan(20 deg) = 87.9201 (the demo scene's focal)
    path = write(tmp_path, [IDENTITY, ROT_Z90])
    poses, K, H, W, fps = load_camera_path(path, W=80, H=64)
    assert poses.shape == (2, 4, 4) and (H, W, fps) == (64, 80, 24.0)
    np.testing.assert_allclose(K, [[87.9201, 0, 40], [0, 87.9201, 32], [0, 0, 1]], atol=1e-3)
    # the caller's default fov: 90 degrees at H = 64 -> focal 32
    _, K, _, _, _ = load_camera_path(path, W=80, H=64, default_fov_deg=90)
    assert K[0, 0] == pytest.approx(32.0)


NAN_POSE = [row[:] for row in ROT_Z90]
NAN_POSE[0][3] = float("nan")
SCALED = [[2.0 * x for x in row[:3]] + [row[3]] for row in ROT_Z90[:3]] + [ROT_Z90[3]]


@pytest.mark.parametrize("content, expected", [
    ({"camera_path": [{"fov": 50}]}, "camera_path[0]: missing field 'camera_to_world'"),
    ({"camera_path": [{"camera_to_world": FLAT}]}, "camera_path[0]: missing field 'fov'"),
    ({"camera_path": [{"camera_to_world": FLAT[:15], "fov": 50}]},
     "camera_path[0].camera_to_world: expected 16 numbers"),
    ({"camera_path": [{"camera_to_world": FLAT, "fov": 180}]}, "camera_path[0].fov: must be between 0 and 180"),
    ({"camera_path": [{"camera_to_world": FLAT, "fov": "wide"}]}, "camera_path[0].fov: expected a finite number"),
    ({"camera_path": []}, "camera_path: expected a non-empty list"),
    ({"camera_path": [{"camera_to_world": FLAT, "fov": 50}], "render_height": 0}, "render_height: expected a positive"),
    ({"camera_path": [{"camera_to_world": FLAT, "fov": 50}], "camera_type": "fisheye"}, "camera_type 'fisheye'"),
    ({"poses": [[[1, 0, 0], [0, 1, 0], [0, 0, 1]]]}, "poses[0]: expected a 4x4 or 3x4 matrix"),
    ({"poses": [NAN_POSE]}, "poses[0]: the matrix holds non-finite values"),
    ('{"poses": [[[1, 0, 0, Infinity], [0, 1, 0, 0], [0, 0, 1, 0]]]}', "poses[0]: the matrix holds non-finite"),
    ({"poses": [SCALED]}, "poses[0]: the 3x3 part is not a rotation"),
    ({"poses": [np.array(ROT_Z90).T.tolist()]}, "poses[0]: the last row of a 4x4 camera-to-world must be 0 0 0 1"),
    ({"poses": [ROT_Z90], "fov": 50}, "unknown field(s) fov"),
    ({"poses": [ROT_Z90], "fov_deg": -5}, "fov_deg: must be between 0 and 180"),
    ({"poses": [ROT_Z90], "width": 10.5}, "width: expected a positive whole number"),
    ({"poses": []}, "poses: expected a non-empty list"),
    ({"frames": []}, "missing field 'camera_path' (nerfstudio) or 'poses'"),
    ([[1, 2, 3]], "(list of poses)[0]: expected 16 numbers"),
    ("{not json", "cannot read JSON"),
])
def test_bad_files_are_one_line_errors(tmp_path, content, expected):
    path = write(tmp_path, content)
    with pytest.raises(UserError) as err:
        load_camera_path(path, W=64, H=64)
    message = str(err.value)
    assert "\n" not in message and path in message and expected in message, message


def test_missing_file(tmp_path):
    with pytest.raises(UserError, match="not found"):
        load_camera_path(str(tmp_path / "none.json"), 64, 64)


def test_render_camera_path_writes_mp4_and_gif(tmp_path):
    """An untrained tiny run renders a 3-frame path at an odd size (the MP4 is padded to even)."""
    pytest.importorskip("imageio_ffmpeg")
    from datasets import load_scene
    from datasets.batching import CameraViews
    from runs.training import TrainedFields
    from models import build_fields
    from utils.config import build_parser, parse_args
    args = parse_args(build_parser(), ["--dataset_type", "demo", "--demo_res", "8", "--netdepth", "2",
                                       "--netwidth", "16", "--netdepth_fine", "2", "--netwidth_fine", "16",
                                       "--N_samples", "8", "--N_importance", "8", "--use_viewdirs",
                                       "--white_bkgd"])
    scene = load_scene(args)
    views = CameraViews(scene, args.white_bkgd, torch.device("cpu"))
    coarse, fine = build_fields(args, torch.Generator().manual_seed(0))
    trained = TrainedFields(coarse.eval(), fine.eval(), None, 0)
    path = write(tmp_path, {"fov_deg": 40, "width": 11, "height": 9, "fps": 5,
                            "poses": [p.tolist() for p in scene.render_poses[:3]]})
    poses, K, H, W, fps = load_camera_path(path, scene.W, scene.H)
    written = render_camera_path(views, poses, K, H, W, trained, args, str(tmp_path / "cam"), fps)
    assert written == [str(tmp_path / "cam.gif"), str(tmp_path / "cam.mp4")]
    gif = imageio.mimread(tmp_path / "cam.gif")
    assert len(gif) == 3 and gif[0].shape[:2] == (9, 11)
    reader = imageio.get_reader(tmp_path / "cam.mp4")
    assert reader.count_frames() == 3 and reader.get_meta_data()["size"] == (12, 10)  # padded to even


def test_eval_renders_a_camera_path_file(tmp_path):
    """eval.py --camera_path: the user's path at its own size, to MP4 + GIF in the eval folder."""
    from tests.conftest import run_script, tiny_args
    run_script("train.py", "--basedir", tmp_path, "--expname", "a", "--N_iters", "2", *tiny_args(16))
    path = tmp_path / "path.json"
    near = [[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 3], [0, 0, 0, 1]]
    far = [[1, 0, 0, 0.5], [0, 1, 0, 0], [0, 0, 1, 4], [0, 0, 0, 1]]  # distinct frames (a GIF merges equal ones)
    path.write_text(json.dumps({"fov_deg": 40, "width": 20, "height": 14, "fps": 5, "poses": [near, far]}))
    out = run_script("eval.py", "--run", tmp_path / "a", "--camera_path", path).stdout
    assert "2 frames at 20x14, 5 fps" in out
    frames = imageio.mimread(tmp_path / "a" / "eval_0000002" / "camera_path.gif")
    assert len(frames) == 2 and frames[0].shape[:2] == (14, 20)
