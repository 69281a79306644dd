"""COLMAP loader (``--dataset_type colmap``): tiny models written by hand in COLMAP's text and
binary formats (the binary with struct, here, not with the loader's code), checked against
poses, intrinsics and rays derived by hand next to the input."""
import math
import struct
import subprocess
import sys

import cv2
import numpy as np
import pytest

from datasets import load_scene
from datasets.batching import CameraViews
from tests.conftest import ROOT
from utils.config import build_parser, parse_args
from utils.errors import UserError

S = math.sqrt(0.5)
MODEL_IDS = {"SIMPLE_PINHOLE": 0, "PINHOLE": 1, "SIMPLE_RADIAL": 2, "RADIAL": 3, "OPENCV": 4, "FULL_OPENCV": 6,
             "OPENCV_FISHEYE": 5}

# ----------------------------------------------------------------- the inward-facing model
# Four cameras on the circle of radius 2 around the origin in the plane z = 0, each looking at
# the origin with camera up = world +z. For camera k at C = 2 (c, s, 0), (c, s) = (cos, sin)
# of 0, 90, 180, 270 degrees, the OpenCV axes in world coordinates are
#   x (right) = (-s, c, 0), y (down) = (0, 0, -1), z (forward) = (-c, -s, 0),
# so COLMAP's world-to-camera R has these as rows, and t = -R C = (0, 0, 2) for every camera.
# The quaternions (w, x, y, z) of those R:
#   a (0 deg):   R = [[0, 1, 0], [0, 0, -1], [-1, 0, 0]]   q = (1/2, 1/2, 1/2, -1/2)
#   b (90 deg):  R = [[-1, 0, 0], [0, 0, -1], [0, -1, 0]]  q = (0, 0, S, -S)  (180 deg about (0, 1, -1)/sqrt 2)
#   c (180 deg): R = [[0, -1, 0], [0, 0, -1], [1, 0, 0]]   q = (1/2, 1/2, -1/2, 1/2)
#   d (270 deg): R = [[1, 0, 0], [0, 0, -1], [0, 1, 0]]    q = (S, S, 0, 0)    (90 deg about x)
# Image ids are deliberately not in name order. One 3D point, id 7, at the origin, seen by all.
INWARD_IMAGES = [  # (image id, qvec, tvec, name)
    (4, (0.5, 0.5, 0.5, -0.5), (0.0, 0.0, 2.0), "a.png"),
    (2, (0.0, 0.0, S, -S), (0.0, 0.0, 2.0), "b.png"),
    (3, (0.5, 0.5, -0.5, 0.5), (0.0, 0.0, 2.0), "c.png"),
    (1, (S, S, 0.0, 0.0), (0.0, 0.0, 2.0), "d.png"),
]
# Expected scene (loader rule for inward-facing captures): origin at the mean camera centre (0),
# world z = mean camera up = +z, world x = COLMAP x, so no rotation; scale s = 1 / (largest camera
# distance 2) = 1/2. The OpenGL c2w columns are [right, up, back = -forward, centre]:
INWARD_C2W = np.array([
    [[0, 0, 1, 1], [1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 0, 1]],      # a: right (0,1,0), back (1,0,0), centre (1,0,0)
    [[-1, 0, 0, 0], [0, 0, 1, 1], [0, 1, 0, 0], [0, 0, 0, 1]],     # b: right (-1,0,0), back (0,1,0), centre (0,1,0)
    [[0, 0, -1, -1], [-1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 0, 1]],   # c: right (0,-1,0), back (-1,0,0), centre (-1,0,0)
    [[1, 0, 0, 0], [0, 0, -1, -1], [0, 1, 0, 0], [0, 0, 0, 1]],    # d: right (1,0,0), back (0,-1,0), centre (0,-1,0)
], dtype=np.float64)
# Every depth is 2 (the point at the origin, 2 in front): near = 0.9 * 1, far = 1.1 * 1.
# bbox: camera box [-1, 1] x [-1, 1] x [0, 0] joined with the point (0, 0, 0), padded by 0.1 * 2.
INWARD_BBOX = np.array([[-1.2, -1.2, -0.2], [1.2, 1.2, 0.2]])
W, H = 8, 6
PINHOLE = ("PINHOLE", [10.0, 12.0, 3.5, 3.25])   # fx, fy, cx, cy (an off-centre principal point)
COLOURS = {"a.png": 40, "b.png": 80, "c.png": 120, "d.png": 160}


# ----------------------------------------------------------------- the forward-facing model
# Three cameras at x = -1, 0, 1 looking down world -z with up +y: OpenGL c2w rotation = identity,
# OpenCV R = diag(1, -1, -1), q = (0, 1, 0, 0), t = -R C = (-x, 0, 0). Points at (0, 0, -4) and
# (0, 0, -8), seen by all: depths 4 and 8, so d_lo = 4, d_hi = 8 (1st/99th percentiles of
# [4, 4, 4, 8, 8, 8]). Loader rule (LLFF's): the average pose is the identity; s = 1 / (0.75 * 4).
FORWARD_IMAGES = [(1, (0.0, 1.0, 0.0, 0.0), (1.0, 0.0, 0.0), "l.png"),
                  (2, (0.0, 1.0, 0.0, 0.0), (0.0, 0.0, 0.0), "m.png"),
                  (3, (0.0, 1.0, 0.0, 0.0), (-1.0, 0.0, 0.0), "r.png")]
FORWARD_CENTRES = np.array([[-1 / 3, 0, 0], [0, 0, 0], [1 / 3, 0, 0]])


# ----------------------------------------------------------------- writers (COLMAP's formats)

def write_text_model(sparse, camera, images, points):
    """camera: (model, W, H, params) as camera 1; images: (id, q, t, name, [(x, y, point id)]);
    points: (id, xyz, [(image id, 2D index)])."""
    sparse.mkdir(parents=True, exist_ok=True)
    model, w, h, params = camera
    (sparse / "cameras.txt").write_text("# Camera list with one line of data per camera:\n"
                                        f"1 {model} {w} {h} {' '.join(map(repr, params))}\n")
    lines = ["# Image list with two lines of data per image:"]
    for image_id, q, t, name, pts in images:
        lines.append(f"{image_id} {' '.join(map(repr, q))} {' '.join(map(repr, t))} 1 {name}")
        lines.append(" ".join(f"{x} {y} {pid}" for x, y, pid in pts))
    (sparse / "images.txt").write_text("\n".join(lines) + "\n")
    rows = [f"{pid} {x} {y} {z} 128 128 128 0.5 " + " ".join(f"{i} {k}" for i, k in track)
            for pid, (x, y, z), track in points]
    (sparse / "points3D.txt").write_text("# 3D point list\n" + "\n".join(rows) + "\n")


def write_binary_model(sparse, camera, images, points):
    """The same model in COLMAP's binary layout (little-endian), written with struct."""
    sparse.mkdir(parents=True, exist_ok=True)
    model, w, h, params = camera
    (sparse / "cameras.bin").write_bytes(struct.pack("<Q", 1) + struct.pack("<iiQQ", 1, MODEL_IDS[model], w, h)
                                         + struct.pack(f"<{len(params)}d", *params))
    data = struct.pack("<Q", len(images))
    for image_id, q, t, name, pts in images:
        data += struct.pack("<i", image_id) + struct.pack("<4d", *q) + struct.pack("<3d", *t) + struct.pack("<i", 1)
        data += name.encode() + b"\0" + struct.pack("<Q", len(pts))
        for x, y, pid in pts:
            data += struct.pack("<ddq", x, y, pid)
    (sparse / "images.bin").write_bytes(data)
    data = struct.pack("<Q", len(points))
    for pid, xyz, track in points:
        data += struct.pack("<Q", pid) + struct.pack("<3d", *xyz) + struct.pack("<3B", 128, 128, 128)
        data += struct.pack("<d", 0.5) + struct.pack("<Q", len(track))
        for image_id, k in track:
            data += struct.pack("<ii", image_id, k)
    (sparse / "points3D.bin").write_bytes(data)


def write_images(folder, names, colours=None, w=W, h=H):
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        value = (colours or {}).get(name, 100)
        cv2.imwrite(str(folder / name), np.full((h, w, 3), value, np.uint8))


def inward_scene(root, fmt="txt", camera=(PINHOLE[0], W, H, PINHOLE[1])):
    images = [(i, q, t, name, [(3.5, 3.25, 7), (1.0, 1.0, -1)]) for i, q, t, name in INWARD_IMAGES]
    points = [(7, (0.0, 0.0, 0.0), [(i, 0) for i, *_ in INWARD_IMAGES])]
    writer = write_text_model if fmt == "txt" else write_binary_model
    writer(root / "sparse" / "0", camera, images, points)
    write_images(root / "images", list(COLOURS), COLOURS)
    return root


def forward_scene(root, fmt="txt"):
    images = [(i, q, t, name, [(4.0, 3.0, 10), (4.0, 3.0, 11)]) for i, q, t, name in FORWARD_IMAGES]
    track = [(i, 0) for i, *_ in FORWARD_IMAGES]
    points = [(10, (0.0, 0.0, -4.0), track), (11, (0.0, 0.0, -8.0), [(i, 1) for i, *_ in FORWARD_IMAGES])]
    writer = write_text_model if fmt == "txt" else write_binary_model
    writer(root / "sparse" / "0", (PINHOLE[0], W, H, PINHOLE[1]), images, points)
    write_images(root / "images", [name for *_, name in FORWARD_IMAGES])
    return root


def colmap_args(datadir, *extra):
    return parse_args(build_parser(), ["--dataset_type", "colmap", "--datadir", str(datadir), "--factor", "1",
                                       *extra])


def load(datadir, *extra):
    return load_scene(colmap_args(datadir, *extra))


def one_line_error(excinfo, *needles):
    msg = str(excinfo.value)
    assert "\n" not in msg, msg
    for needle in needles:
        assert needle in msg, (needle, msg)


# ----------------------------------------------------------------- poses, intrinsics, rays

@pytest.mark.parametrize("fmt", ["txt", "bin"])
def test_inward_poses_intrinsics_and_bounds(tmp_path, fmt):
    scene = load(inward_scene(tmp_path / "s", fmt))
    assert scene.extras["facing"] == "inward" and not scene.ndc
    assert scene.extras["image_names"] == ["a.png", "b.png", "c.png", "d.png"]
    np.testing.assert_allclose(scene.poses, INWARD_C2W, atol=1e-6)
    np.testing.assert_allclose(scene.K, [[10, 0, 3.5], [0, 12, 3.25], [0, 0, 1]], atol=1e-6)
    assert (scene.H, scene.W) == (H, W)
    for k, name in enumerate(scene.extras["image_names"]):   # each image stays with its pose
        np.testing.assert_allclose(scene.images[k], COLOURS[name] / 255.0, atol=1e-6)
    assert scene.near == pytest.approx(0.9) and scene.far == pytest.approx(1.1)
    np.testing.assert_allclose(scene.bbox, INWARD_BBOX, atol=1e-6)
    # the render circle: radius 1 around the z axis at height 0, from camera a's azimuth, looking at 0
    path = scene.render_poses
    np.testing.assert_allclose(path[0, :3, 3], [1, 0, 0], atol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(path[:, :3, 3], axis=1), 1.0, atol=1e-6)
    np.testing.assert_allclose(path[:, :3, 2], path[:, :3, 3], atol=1e-6)   # back axis points away from 0


@pytest.mark.parametrize("fmt", ["txt", "bin"])
def test_inward_ray_through_a_pixel(tmp_path, fmt):
    """Camera a, column i = 5, row j = 2: camera direction ((5.5 - 3.5)/10, -(2.5 - 3.25)/12, -1)
    = (0.2, 0.0625, -1); world = 0.2 right + 0.0625 up - back = (-1, 0.2, 0.0625); origin (1, 0, 0)."""
    scene = load(inward_scene(tmp_path / "s", fmt))
    views = CameraViews(scene, False, "cpu")
    rays = views.image_rays(views.poses[0])
    k = 2 * W + 5
    np.testing.assert_allclose(rays.origins[k].numpy(), [1, 0, 0], atol=1e-6)
    np.testing.assert_allclose(rays.directions[k].numpy(), [-1, 0.2, 0.0625], atol=1e-6)
    np.testing.assert_allclose(rays.viewdirs[k].numpy(), np.array([-1, 0.2, 0.0625]) / np.linalg.norm([-1, 0.2, 0.0625]),
                               atol=1e-6)
    assert float(rays.near[k]) == pytest.approx(0.9) and float(rays.far[k]) == pytest.approx(1.1)


@pytest.mark.parametrize("fmt", ["txt", "bin"])
def test_forward_facing_is_llff_like(tmp_path, fmt):
    scene = load(forward_scene(tmp_path / "s", fmt))
    assert scene.extras["facing"] == "forward" and scene.ndc and (scene.near, scene.far) == (0.0, 1.0)
    assert scene.bbox is None
    np.testing.assert_allclose(scene.poses[:, :3, :3], np.tile(np.eye(3), (3, 1, 1)), atol=1e-6)
    np.testing.assert_allclose(scene.poses[:, :3, 3], FORWARD_CENTRES, atol=1e-6)
    np.testing.assert_allclose(scene.extras["bounds"], [[4 / 3, 8 / 3]], atol=1e-6)
    assert scene.render_poses.shape == (40, 4, 4)
    no_ndc = load(tmp_path / "s", "--no_ndc")
    assert not no_ndc.ndc
    assert no_ndc.near == pytest.approx(0.9 * 4 / 3) and no_ndc.far == pytest.approx(1.1 * 8 / 3)
    # camera m at the origin, pixel (i, j) = (0, 5): direction ((0.5 - 3.5)/10, -(5.5 - 3.25)/12, -1)
    views = CameraViews(no_ndc, False, "cpu")
    rays = views.image_rays(views.poses[1])
    np.testing.assert_allclose(rays.directions[5 * W].numpy(), [-0.3, -0.1875, -1.0], atol=1e-6)
    np.testing.assert_allclose(rays.origins[5 * W].numpy(), [0, 0, 0], atol=1e-6)
    spherified = load(tmp_path / "s", "--spherify")
    assert spherified.extras["facing"] == "inward" and not spherified.ndc


def test_text_and_binary_agree(tmp_path):
    a, b = load(inward_scene(tmp_path / "t", "txt")), load(inward_scene(tmp_path / "b", "bin"))
    np.testing.assert_array_equal(a.poses, b.poses)
    np.testing.assert_array_equal(a.K, b.K)


def test_factor_and_llffhold(tmp_path):
    """--factor 2 builds images_2/ (4x3) and halves fx, fy, cx, cy; --llffhold 2 tests a and c."""
    scene = load(inward_scene(tmp_path / "s"), "--factor", "2", "--llffhold", "2")
    assert (tmp_path / "s" / "images_2").is_dir() and (scene.H, scene.W) == (3, 4)
    np.testing.assert_allclose(scene.K, [[5, 0, 1.75], [0, 6, 1.625], [0, 0, 1]], atol=1e-6)
    assert scene.splits["test"].tolist() == [0, 2] and scene.splits["train"].tolist() == [1, 3]
    assert scene.splits["val"].tolist() == [0, 2]


# ----------------------------------------------------------------- distortion

def test_simple_radial_with_k_zero_equals_pinhole(tmp_path):
    pinhole = load(inward_scene(tmp_path / "p", camera=("PINHOLE", W, H, [10.0, 10.0, 3.5, 3.25])))
    radial = load(inward_scene(tmp_path / "r", camera=("SIMPLE_RADIAL", W, H, [10.0, 3.5, 3.25, 0.0])))
    np.testing.assert_array_equal(pinhole.K, radial.K)
    np.testing.assert_array_equal(pinhole.images, radial.images)
    np.testing.assert_array_equal(pinhole.poses, radial.poses)
    assert radial.extras["camera_model"] == "SIMPLE_RADIAL"


def opencv_distort(x, y, k1, k2, p1, p2):
    """COLMAP's OPENCV model on normalised coordinates (x right, y down)."""
    r2 = x * x + y * y
    radial = k1 * r2 + k2 * r2 * r2
    return (x + x * radial + 2 * p1 * x * y + p2 * (r2 + 2 * x * x),
            y + y * radial + 2 * p2 * x * y + p1 * (r2 + 2 * y * y))


@pytest.mark.parametrize("model,params", [
    ("SIMPLE_RADIAL", [60.0, 32.0, 24.0, 0.3]),
    ("RADIAL", [60.0, 31.5, 24.5, 0.2, 0.1]),
    ("OPENCV", [60.0, 62.0, 31.5, 24.25, 0.2, -0.05, 0.01, -0.005]),
])
def test_undistortion_moves_points_to_the_pinhole_projection(tmp_path, model, params):
    """A Gaussian blob drawn at the *distorted* pixel of the normalised point (x, y) must end up,
    after loading, at the pinhole projection (fx' x + cx', fy' y + cy') of the loaded K: the
    distortion formula is written out here; pixel centres are at +0.5 in both conventions."""
    w, h = 64, 48
    if model == "OPENCV":
        (fx, fy, cx, cy), dist = params[:4], params[4:]
    else:   # f, cx, cy, k1[, k2]
        (fx, fy, cx, cy), dist = (params[0], params[0], params[1], params[2]), (params[3:] + [0.0] * 4)[:4]
    for x, y in [(0.2, -0.15), (-0.25, 0.1)]:
        xd, yd = opencv_distort(x, y, *dist)
        u, v = fx * xd + cx, fy * yd + cy
        jj, ii = np.meshgrid(np.arange(h) + 0.5, np.arange(w) + 0.5, indexing="ij")
        blob = np.exp(-((ii - u) ** 2 + (jj - v) ** 2) / (2 * 1.5 ** 2))
        root = tmp_path / f"{model}_{x}"
        images = [(i, q, tv, name, [(cx, cy, 7)]) for i, q, tv, name in INWARD_IMAGES]
        write_text_model(root / "sparse" / "0", (model, w, h, params), images,
                         [(7, (0.0, 0.0, 0.0), [(i, 0) for i, *_ in INWARD_IMAGES])])
        (root / "images").mkdir()
        for *_, name in INWARD_IMAGES:
            cv2.imwrite(str(root / "images" / name), np.repeat((blob * 65535).round().astype(np.uint16)[..., None], 3, -1))
        scene = load(root)
        K = scene.K.astype(np.float64)
        img = scene.images[0, ..., 0].astype(np.float64)
        img = np.clip(img - 0.01, 0, None)   # the blob's far tail only adds noise
        centroid = (img * ii).sum() / img.sum(), (img * jj).sum() / img.sum()
        expected = K[0, 0] * x + K[0, 2], K[1, 1] * y + K[1, 2]
        assert np.hypot(centroid[0] - expected[0], centroid[1] - expected[1]) < 0.1, (centroid, expected, (u, v))
        assert np.hypot(expected[0] - u, expected[1] - v) > 0.3   # the test would notice no undistortion


# ----------------------------------------------------------------- bad input (one line)

def test_unsupported_camera_model(tmp_path):
    root = inward_scene(tmp_path / "s", "bin", camera=("FULL_OPENCV", W, H, [10.0] * 2 + [4.0, 3.0] + [0.0] * 8))
    with pytest.raises(UserError) as exc:
        load(root)
    one_line_error(exc, "FULL_OPENCV", "not supported", "PINHOLE")
    root = inward_scene(tmp_path / "t", "txt", camera=("OPENCV_FISHEYE", W, H, [10.0] * 2 + [4.0, 3.0] + [0.0] * 4))
    with pytest.raises(UserError) as exc:
        load(root)
    one_line_error(exc, "OPENCV_FISHEYE", "not supported")


def test_different_cameras_are_an_error(tmp_path):
    root = inward_scene(tmp_path / "s")
    cams = root / "sparse" / "0" / "cameras.txt"
    cams.write_text(cams.read_text() + "2 PINHOLE 8 6 11 12 3.5 3.25\n")
    lines = (root / "sparse" / "0" / "images.txt").read_text().splitlines()
    lines[1] = lines[1].replace(" 1 a.png", " 2 a.png")
    (root / "sparse" / "0" / "images.txt").write_text("\n".join(lines) + "\n")
    with pytest.raises(UserError) as exc:
        load(root)
    one_line_error(exc, "2 different cameras", "one camera shared by all images")


def test_image_listed_but_missing(tmp_path):
    root = inward_scene(tmp_path / "s", "bin")
    (root / "images" / "c.png").unlink()
    with pytest.raises(UserError) as exc:
        load(root)
    one_line_error(exc, "c.png", "images.bin", "is not in")


@pytest.mark.parametrize("name", ["cameras", "images", "points3D"])
def test_partial_model(tmp_path, name):
    root = inward_scene(tmp_path / "s", "bin")
    (root / "sparse" / "0" / f"{name}.bin").unlink()
    with pytest.raises(UserError) as exc:
        load(root)
    one_line_error(exc, f"{name}.bin or {name}.txt")


@pytest.mark.parametrize("name,cut", [("images", -5), ("points3D", -3), ("cameras", 100)])
def test_truncated_or_padded_binary(tmp_path, name, cut):
    root = inward_scene(tmp_path / "s", "bin")
    path = root / "sparse" / "0" / f"{name}.bin"
    data = path.read_bytes()
    path.write_bytes(data[:cut] if cut < 0 else data + b"\0" * cut)
    with pytest.raises(UserError) as exc:
        load(root)
    one_line_error(exc, f"{name}.bin", "corrupt COLMAP binary file")


def run_train(datadir, tmp_path):
    proc = subprocess.run([sys.executable, "train.py", "--dataset_type", "colmap", "--datadir", str(datadir),
                           "--factor", "1", "--basedir", str(tmp_path / "logs"), "--N_iters", "1",
                           "--netdepth", "2", "--netwidth", "16", "--N_samples", "4"],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 2 and len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    return lines[0]


def test_cli_corrupt_cameras_bin(tmp_path):
    root = inward_scene(tmp_path / "s", "bin")
    (root / "sparse" / "0" / "cameras.bin").write_bytes(struct.pack("<Q", 1) + struct.pack("<ii", 1, 99) + b"\0" * 16)
    err = run_train(root, tmp_path)
    assert "cameras.bin" in err and "unknown camera model id 99" in err


def test_cli_missing_sparse(tmp_path):
    root = tmp_path / "s"
    write_images(root / "images", ["a.png", "b.png"])
    err = run_train(root, tmp_path)
    assert "sparse/0" in err and "process_data.py" in err
