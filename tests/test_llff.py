"""LLFF loader: checked against values computed by hand from the raw files
(``../shared/CONVENTIONS.md``, the project's shared notes)."""
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from datasets import load_scene
from datasets.llff import closest_point_to_axes, split_indices, spiral_path
from utils.config import build_parser, parse_args
from utils.errors import UserError
from rendering.rays import camera_directions, ndc_rays, rays_from_camera

FERN = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "nerf_llff_data" / "fern"
needs_fern = pytest.mark.skipif(not (FERN / "poses_bounds.npy").is_file() or not (FERN / "images_8").is_dir(),
                                reason=f"LLFF fern data not found at {FERN}")


def llff_args(datadir, *extra):
    return parse_args(build_parser(), ["--dataset_type", "llff", "--datadir", str(datadir), *extra])


# ----------------------------------------------------------------- independent reference maths

def unit(v):
    return v / np.linalg.norm(v)


def reference_average_pose(poses):
    """../shared/CONVENTIONS.md recipe: centre = mean centre, z = normalised mean z, up = mean y orthogonalised."""
    z = unit(poses[:, :3, 2].mean(0))
    up = poses[:, :3, 1].mean(0)
    x = unit(np.cross(up, z))
    y = np.cross(z, x)
    avg = np.eye(4)
    avg[:3, :4] = np.stack([x, y, z, poses[:, :3, 3].mean(0)], 1)
    return avg


def raw_fern():
    raw = np.load(FERN / "poses_bounds.npy").astype(np.float64)
    return raw[:, :15].reshape(-1, 3, 5), raw[:, 15:17]


def hand_processed_fern():
    """Raw poses -> [col1, -col0, col2] -> bd rescale -> recentre, each step written out here."""
    mats, bounds = raw_fern()
    s = 1.0 / (bounds.min() * 0.75)
    poses = np.tile(np.eye(4), (len(mats), 1, 1))
    for k, m in enumerate(mats):
        poses[k, :3, 0] = m[:, 1]
        poses[k, :3, 1] = -m[:, 0]
        poses[k, :3, 2] = m[:, 2]
        poses[k, :3, 3] = m[:, 3] * s
    return np.linalg.inv(reference_average_pose(poses)) @ poses, bounds * s


def assert_rigid(poses, atol=1e-5):
    R = poses[:, :3, :3].astype(np.float64)
    eye = np.broadcast_to(np.eye(3), R.shape)
    np.testing.assert_allclose(np.swapaxes(R, 1, 2) @ R, eye, atol=atol)
    np.testing.assert_allclose(np.linalg.det(R), 1.0, atol=atol)
    np.testing.assert_array_equal(poses[:, 3], np.broadcast_to([0, 0, 0, 1], (len(poses), 4)))


@pytest.fixture(scope="module")
def fern():
    if not (FERN / "poses_bounds.npy").is_file():
        pytest.skip(f"LLFF fern data not found at {FERN}")
    return load_scene(llff_args(FERN, "--factor", "8", "--llffhold", "8"))


# ----------------------------------------------------------------- fern: loading and poses

@needs_fern
def test_fern_images_and_intrinsics(fern):
    mats, _ = raw_fern()
    H_full, W_full, f_full = mats[0, :, 4]
    assert fern.images.shape == (20, 378, 504, 3) and fern.images.dtype == np.float32
    assert 0.0 <= fern.images.min() and fern.images.max() <= 1.0
    assert fern.H == 378 and fern.W == 504 and (H_full, W_full) == (3024, 4032)
    assert fern.K.dtype == np.float32 and fern.K.shape == (3, 3)
    np.testing.assert_allclose(fern.K[0, 0], f_full * 504 / W_full, rtol=1e-6)
    np.testing.assert_allclose(fern.K[1, 1], f_full * 504 / W_full, rtol=1e-6)
    np.testing.assert_allclose(fern.K[:2, 2], [504 / 2, 378 / 2])
    assert fern.poses.shape == (20, 4, 4) and fern.poses.dtype == np.float32
    assert fern.bbox is None and fern.name == "fern"


@needs_fern
def test_fern_llffhold_split(fern):
    assert fern.splits["test"].tolist() == [0, 8, 16]
    assert fern.splits["val"].tolist() == [0, 8, 16]
    assert fern.splits["train"].tolist() == [k for k in range(20) if k not in (0, 8, 16)]


@needs_fern
def test_fern_recentred_average_pose_is_identity(fern):
    np.testing.assert_allclose(reference_average_pose(fern.poses.astype(np.float64)), np.eye(4), atol=1e-5)


@needs_fern
def test_fern_poses_are_rigid(fern):
    assert_rigid(fern.poses)


@needs_fern
def test_fern_column_reorder_and_recentring_match_hand_computation(fern):
    expected, _ = hand_processed_fern()
    for k in (0, 7, 19):
        np.testing.assert_allclose(fern.poses[k, :3, :3], expected[k, :3, :3], atol=1e-5)
        np.testing.assert_allclose(fern.poses[k, :3, 3], expected[k, :3, 3], atol=1e-5)
    # Forward-facing: every camera's back (+z) axis is close to world +z after recentring.
    assert (fern.poses[:, 2, 2] > 0.9).all()


@needs_fern
def test_fern_bounds_rescaled_by_bd_factor(fern):
    _, raw_bounds = raw_fern()
    bounds = fern.extras["bounds"]
    np.testing.assert_allclose(bounds.min(), 1 / 0.75, rtol=1e-6)
    np.testing.assert_allclose(bounds / raw_bounds, 1.0 / (raw_bounds.min() * 0.75), rtol=1e-5)


@needs_fern
def test_fern_near_far_ndc_and_no_ndc(fern):
    assert fern.ndc is True and (fern.near, fern.far) == (0.0, 1.0)
    scene = load_scene(llff_args(FERN, "--no_ndc"))
    _, bounds = hand_processed_fern()
    assert scene.ndc is False
    np.testing.assert_allclose([scene.near, scene.far], [bounds.min() * 0.9, bounds.max()], rtol=1e-6)


# ----------------------------------------------------------------- NDC

def ndc_point(p, fx, fy, H, W, near=1.0):
    """NDC projection of world points (..., 3), written out independently of rendering.rays."""
    x, y, z = p[..., 0], p[..., 1], p[..., 2]
    return np.stack([-fx / (W / 2) * x / z, -fy / (H / 2) * y / z, 1 + 2 * near / z], -1)


@needs_fern
def test_ndc_rays_contain_projected_world_points(fern):
    rng = np.random.default_rng(0)
    H, W, K = fern.H, fern.W, torch.from_numpy(fern.K).double()
    fx, fy = float(K[0, 0]), float(K[1, 1])
    for cam in (0, 5, 13):
        c2w = torch.from_numpy(fern.poses[cam]).double()
        i = torch.from_numpy(rng.uniform(0, W, 64))
        j = torch.from_numpy(rng.uniform(0, H, 64))
        o, d = rays_from_camera(camera_directions(i, j, K), c2w[:3, :4])
        o_ndc, d_ndc = ndc_rays(H, W, fx, fy, 1.0, o, d)
        o, d, o_ndc, d_ndc = (a.numpy() for a in (o, d, o_ndc, d_ndc))
        assert (o[:, 2] > -1).all() and (d[:, 2] < 0).all()  # cameras sit behind the near plane
        prev_t = np.full(len(o), -np.inf)
        for z in (-1.0, -1.5, -3.0, -10.0, -100.0):
            p = o + ((z - o[:, 2]) / d[:, 2])[:, None] * d  # world point on the ray at depth z
            q = ndc_point(p, fx, fy, H, W)
            t = (q[:, 2] - o_ndc[:, 2]) / d_ndc[:, 2]
            assert ((t >= -1e-9) & (t <= 1)).all()
            assert (t > prev_t).all()
            prev_t = t
            np.testing.assert_allclose(o_ndc + t[:, None] * d_ndc, q, atol=1e-4)
            if z == -1.0:  # t = 0 is the near-plane point
                np.testing.assert_allclose(t, 0.0, atol=1e-9)
                np.testing.assert_allclose(o_ndc, q, atol=1e-9)
        # t -> 1 is the point at infinity: (-fx/(W/2) dx/dz, -fy/(H/2) dy/dz, 1).
        inf = np.stack([-fx / (W / 2) * d[:, 0] / d[:, 2], -fy / (H / 2) * d[:, 1] / d[:, 2],
                        np.ones(len(d))], -1)
        np.testing.assert_allclose(o_ndc + d_ndc, inf, atol=1e-9)


# ----------------------------------------------------------------- render paths

@needs_fern
def test_spiral_path_by_hand(fern):
    assert fern.render_poses.shape == (40, 4, 4)  # --n_frames default
    poses = fern.poses.astype(np.float64)
    bounds = fern.extras["bounds"].astype(np.float64)
    path = spiral_path(poses, bounds, 40)
    assert_rigid(path)
    np.testing.assert_allclose(fern.render_poses, path, atol=1e-5)
    avg = reference_average_pose(poses)
    focus = 1.0 / (0.25 / (0.9 * bounds.min()) + 0.75 / (5.0 * bounds.max()))
    target = avg[:3, :3] @ [0, 0, -focus] + avg[:3, 3]
    for pose in path:  # every camera looks straight at the focus point
        np.testing.assert_allclose(unit(target - pose[:3, 3]), -pose[:3, 2], atol=1e-6)
    r = np.percentile(np.abs(poses[:, :3, 3]), 90, axis=0)
    # 2 rotations over 40 views, zrate 0.5: view 0 is theta 0, view 10 is theta pi.
    np.testing.assert_allclose(path[0, :3, 3], avg[:3, :3] @ [r[0], 0, 0] + avg[:3, 3], atol=1e-6)
    np.testing.assert_allclose(path[10, :3, 3], avg[:3, :3] @ [-r[0], 0, -r[2]] + avg[:3, 3], atol=1e-6)


@needs_fern
def test_spiral_length_follows_n_frames(fern):
    assert spiral_path(fern.poses.astype(np.float64), fern.extras["bounds"], 120).shape == (120, 4, 4)


@needs_fern
def test_spherify_loads_without_ndc():
    scene = load_scene(llff_args(FERN, "--spherify", "--n_frames", "12"))
    assert scene.ndc is False and scene.render_poses.shape == (12, 4, 4)
    assert_rigid(scene.poses)
    assert_rigid(scene.render_poses)
    np.testing.assert_allclose(np.sqrt((scene.poses[:, :3, 3] ** 2).sum(-1).mean()), 1.0, rtol=1e-5)
    bounds = scene.extras["bounds"]
    np.testing.assert_allclose([scene.near, scene.far], [bounds.min() * 0.9, bounds.max()], rtol=1e-6)


def test_closest_point_to_axes_recovers_look_at_point():
    rng = np.random.default_rng(1)
    centre = np.array([0.3, -0.2, 0.5])
    origins = rng.normal(size=(9, 3)) * 3
    dirs = (origins - centre) * rng.choice([-1.0, 1.0], size=(9, 1))  # sign does not matter
    np.testing.assert_allclose(closest_point_to_axes(origins, dirs), centre, atol=1e-9)


def test_split_indices():
    s = split_indices(20, 8)
    assert s["test"].tolist() == [0, 8, 16] and s["val"].tolist() == [0, 8, 16]
    assert sorted(s["train"].tolist() + s["test"].tolist()) == list(range(20))
    s = split_indices(5, 0)  # nothing held out: every split is every image
    assert all(s[k].tolist() == list(range(5)) for k in ("train", "val", "test"))


# ----------------------------------------------------------------- synthetic scenes, bad input

def write_scene(root: Path, n_poses=3, sizes=((12, 16),) * 3, folder="images_8", full=(96, 128), focal=100.0):
    """A tiny LLFF folder: PNGs of the given (h, w) sizes and an n_poses x 17 poses_bounds.npy.
    Every camera is the OpenGL identity rotation ([down, right, back] = [-y, x, z]) at a
    different position."""
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    if folder:
        (root / folder).mkdir()
        for k, (h, w) in enumerate(sizes):
            cv2.imwrite(str(root / folder / f"img{k:03d}.png"), rng.integers(0, 256, (h, w, 3), dtype=np.uint8))
    rows = []
    for k in range(n_poses):
        m = np.zeros((3, 5))
        m[:, 0], m[:, 1], m[:, 2] = [0, -1, 0], [1, 0, 0], [0, 0, 1]
        m[:, 3] = [0.1 * k, -0.05 * k, 0.02 * k]
        m[:, 4] = [full[0], full[1], focal]
        rows.append(np.concatenate([m.ravel(), [2.0 + k, 10.0]]))
    np.save(root / "poses_bounds.npy", np.array(rows))
    return root


def test_synthetic_scene_reorders_columns_to_identity(tmp_path):
    scene = load_scene(llff_args(write_scene(tmp_path / "s")))
    np.testing.assert_allclose(scene.poses[:, :3, :3], np.broadcast_to(np.eye(3), (3, 3, 3)), atol=1e-6)
    s = 1.0 / (2.0 * 0.75)
    t = np.array([[0.1 * k, -0.05 * k, 0.02 * k] for k in range(3)]) * s
    np.testing.assert_allclose(scene.poses[:, :3, 3], t - t.mean(0), atol=1e-6)
    np.testing.assert_allclose(scene.K[0, 0], 100.0 * 16 / 128, rtol=1e-6)
    assert scene.splits["test"].tolist() == [0]


def test_downscale_averages_blocks_and_scales_focal(tmp_path):
    """--downscale 2 on 12x16 images: each pixel is the mean of its 2x2 block, written out
    here with numpy; focal and the principal point are exactly halved."""
    root = write_scene(tmp_path / "s")
    full = load_scene(llff_args(root))
    half = load_scene(llff_args(root, "--downscale", "2"))
    blocks = full.images.reshape(3, 6, 2, 8, 2, 3).mean(axis=(2, 4))
    assert half.images.shape == (3, 6, 8, 3)
    np.testing.assert_allclose(half.images, blocks, atol=1e-6)
    np.testing.assert_allclose(half.K[0, 0], 100.0 * 8 / 128, rtol=1e-6)
    np.testing.assert_allclose(half.K[:2, 2], [4.0, 3.0], rtol=1e-6)
    np.testing.assert_allclose(half.poses, full.poses)


def test_downscale_must_divide_the_image_size(tmp_path):
    root = write_scene(tmp_path / "s")
    with pytest.raises(UserError) as err:
        load_scene(llff_args(root, "--downscale", "5"))
    msg = str(err.value)
    assert "--downscale 5" in msg and "images_8" in msg and "16x12" in msg and "[2, 4]" in msg


def test_image_count_differs_from_pose_count(tmp_path):
    root = write_scene(tmp_path / "s", n_poses=3, sizes=((12, 16),) * 4)
    with pytest.raises(UserError) as err:
        load_scene(llff_args(root))
    msg = str(err.value)
    assert "images_8" in msg and "4 images" in msg and "3 poses" in msg and "poses_bounds.npy" in msg


def test_inconsistent_image_sizes(tmp_path):
    root = write_scene(tmp_path / "s", sizes=((12, 16), (12, 16), (12, 20)))
    with pytest.raises(UserError) as err:
        load_scene(llff_args(root))
    msg = str(err.value)
    assert "images_8" in msg and "2 at 16x12" in msg and "1 at 20x12" in msg


@pytest.mark.parametrize("shape", [(3, 15), (17,), (3, 18)])
def test_poses_bounds_not_n_by_17(tmp_path, shape):
    root = write_scene(tmp_path / "s")
    np.save(root / "poses_bounds.npy", np.ones(shape))
    with pytest.raises(UserError) as err:
        load_scene(llff_args(root))
    assert "poses_bounds.npy" in str(err.value) and str(shape) in str(err.value)


def test_non_positive_bounds(tmp_path):
    root = write_scene(tmp_path / "s")
    arr = np.load(root / "poses_bounds.npy")
    arr[1, 15] = 0.0
    np.save(root / "poses_bounds.npy", arr)
    with pytest.raises(UserError, match="poses_bounds.npy.*positive"):
        load_scene(llff_args(root))


def test_missing_image_folders(tmp_path):
    root = write_scene(tmp_path / "s", folder=None)
    with pytest.raises(UserError) as err:
        load_scene(llff_args(root, "--factor", "4"))
    assert "images_4" in str(err.value) and "images'" in str(err.value)


def test_missing_datadir_and_npy(tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        load_scene(llff_args(tmp_path / "nope"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="poses_bounds.npy"):
        load_scene(llff_args(tmp_path / "empty"))


def test_images_n_created_from_full_images(tmp_path):
    root = write_scene(tmp_path / "s", sizes=((48, 64),) * 3, folder="images", full=(48, 64), focal=50.0)
    (root / "images" / ".hidden.png").write_bytes(b"")  # hidden files are not images
    scene = load_scene(llff_args(root, "--factor", "8"))
    made = sorted(p.name for p in (root / "images_8").iterdir())
    assert made == ["img000.png", "img001.png", "img002.png"]
    assert not [p for p in root.iterdir() if p.name.startswith(".tmp")]
    assert (scene.H, scene.W) == (6, 8)
    np.testing.assert_allclose(scene.K[0, 0], 50.0 * 8 / 64, rtol=1e-6)
    src = cv2.imread(str(root / "images" / "img001.png"))
    expected = cv2.resize(src, (8, 6), interpolation=cv2.INTER_AREA)[..., ::-1] / 255.0
    np.testing.assert_allclose(scene.images[1], expected, atol=1e-6)
    # A second load uses the folder now present.
    assert load_scene(llff_args(root, "--factor", "8")).images.shape == (3, 6, 8, 3)
