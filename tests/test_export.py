"""Geometry export (export.py, runs/export.py).

Cheap tests run marching cubes on fields whose surface is known exactly (a sphere); the
slow ones train a small demo run once (module fixture) and measure how far the exported
mesh and point cloud lie from the demo scene's analytic surfaces (datasets/demo.py)."""
import re
import time

import numpy as np
import pytest
import torch

from datasets import demo
from rendering.rays import ndc_rays, ndc_to_world
from runs.export import (colors_to_rgba8, default_threshold, extract_mesh, grid_axes, marching_cubes,
                         render_mesh, write_geometry)
from tests.conftest import run_script
from utils.errors import UserError

# ---------------------------------------------------------------- an analytic field
CENTER, RADIUS, LEVEL = np.array([0.1, -0.2, 0.05]), 0.6, 20.0
BBOX = np.array([[-1.0, -1.0, -1.0], [1.0, 1.0, 1.0]])


def sphere_field(pts, dirs):
    """sigma_raw = LEVEL * exp(4 (R - |p - c|)): exactly LEVEL on the sphere, denser inside.
    rgb_raw = 3 * dirs, so the colour records the view direction it was asked for."""
    d = (pts - pts.new_tensor(CENTER)).norm(dim=-1)
    return 3.0 * dirs.expand_as(pts), LEVEL * torch.exp(4.0 * (RADIUS - d))


def test_sphere_mesh_within_a_voxel():
    mesh, info = extract_mesh(sphere_field, "relu", BBOX, 48, LEVEL, "cpu")
    voxel = float(info["spacing"].max())
    assert info["grid"] == (48, 48, 48) and info["evaluated"] == 48 ** 3
    radial = np.asarray(mesh.vertices) - CENTER
    err = np.abs(np.linalg.norm(radial, axis=1) - RADIUS)
    assert err.max() < voxel, (err.max(), voxel)
    assert err.mean() < 0.05 * voxel  # linear interpolation of a smooth radial profile
    # closed, wound outwards (positive volume ~ 4/3 pi R^3), normals pointing out
    assert mesh.is_watertight and mesh.volume == pytest.approx(4 / 3 * np.pi * RADIUS ** 3, rel=0.02)
    unit = radial / np.linalg.norm(radial, axis=1, keepdims=True)
    assert (np.sum(np.asarray(mesh.vertex_normals) * unit, 1) > 0.99).all()
    assert (np.sum(np.asarray(mesh.face_normals) * (mesh.triangles_center - CENTER), 1) > 0).all()
    # colour = sigmoid(3 * view direction) with view direction = -normal (looking at the surface)
    normals = np.asarray(mesh.vertex_normals)
    expected = colors_to_rgba8(1.0 / (1.0 + np.exp(3.0 * normals)))[:, :3].astype(int)
    assert np.abs(np.asarray(mesh.visual.vertex_colors)[:, :3].astype(int) - expected).max() <= 1


def test_mesh_is_capped_on_the_box_and_grid_is_respected():
    """A sphere that leaves the box is closed by a flat cap on the box face; cells an
    occupancy grid marks empty are never evaluated and hold no surface."""
    box = np.array([[-1.0, -1.0, -1.0], [1.0, 1.0, 0.3]])  # cuts the sphere at z = 0.3

    class HalfEmpty:  # x < 0 empty
        def query(self, pts):
            return pts[..., 0] >= 0

    mesh, info = extract_mesh(sphere_field, "relu", box, 41, LEVEL, "cpu")
    v = np.asarray(mesh.vertices)
    assert info["grid"] == (41, 41, 27)  # 2 / 40 = 0.05 spacing; 1.3 / 0.05 + 1 = 27
    assert v[:, 2].max() == pytest.approx(0.3) and mesh.is_watertight
    cap = v[np.isclose(v[:, 2], 0.3)]
    assert (np.linalg.norm(cap[:, :2] - CENTER[:2], axis=1) <= np.sqrt(RADIUS ** 2 - 0.25 ** 2) + 0.05).all()

    half, info = extract_mesh(sphere_field, "relu", BBOX, 41, LEVEL, "cpu", occupancy=HalfEmpty())
    assert info["evaluated"] < 41 ** 3 * 0.55 and np.asarray(half.vertices)[:, 0].min() > -0.05


def test_threshold_and_grid_helpers():
    assert default_threshold(2.0, 6.0, 32) == pytest.approx(np.log(2) / (4 / 32))  # 5.545: demo, 32 coarse
    axes, spacing = grid_axes(demo.BBOX, 256)
    assert [len(a) for a in axes] == [256, 256, 103] and spacing.max() == pytest.approx(2.5 / 255)
    with pytest.raises(UserError, match="no density above the threshold"):
        marching_cubes(np.ones((4, 4, 4), np.float32), BBOX, 5.0)


@pytest.mark.parametrize("ext", ["ply", "obj", "glb"])
def test_mesh_files_keep_geometry_and_colours(tmp_path, ext):
    import trimesh
    mesh, _ = extract_mesh(sphere_field, "relu", BBOX, 16, LEVEL, "cpu")
    path = tmp_path / f"m.{ext}"
    write_geometry(mesh, str(path), ext)
    back = trimesh.load(path, force="mesh", process=False)
    assert len(back.vertices) == len(mesh.vertices) and len(back.faces) == len(mesh.faces)
    np.testing.assert_allclose(np.asarray(back.vertices), np.asarray(mesh.vertices), atol=1e-5)
    np.testing.assert_array_equal(np.asarray(back.visual.vertex_colors)[:, :3],
                                  np.asarray(mesh.visual.vertex_colors)[:, :3])


def test_ndc_to_world_inverts_ndc_rays():
    """Every point of an NDC ray maps back onto its world ray (LLFF point clouds)."""
    g = torch.Generator().manual_seed(0)
    H, W, fx, fy = 30, 40, 35.0, 33.0
    o = torch.randn(50, 3, generator=g) * 0.1
    d = torch.nn.functional.normalize(torch.randn(50, 3, generator=g) * 0.3 + torch.tensor([0, 0, -1.0]), dim=-1)
    o_ndc, d_ndc = ndc_rays(H, W, fx, fy, 1.0, o, d)
    t = torch.rand(50, 1, generator=g) * 0.9
    world = ndc_to_world(o_ndc + t * d_ndc, H, W, fx, fy, 1.0)
    s = (world - o)[:, 2] / d[:, 2]  # the point's parameter on the world ray
    torch.testing.assert_close(world, o + s[:, None] * d, atol=1e-4, rtol=1e-4)
    assert (s > 0).all()


def test_render_mesh_draws_the_sphere():
    """The software raster of the sphere mesh covers the disc the sphere projects to."""
    from datasets.scene import look_at
    from rendering.rays import intrinsics_matrix
    mesh, _ = extract_mesh(sphere_field, "relu", BBOX, 32, LEVEL, "cpu")
    c2w = look_at(CENTER + np.array([0.0, -3.0, 0.0]), target=CENTER)
    H = W = 64
    K = intrinsics_matrix(40.0, W, H)
    img = render_mesh(mesh.vertices, mesh.faces, c2w, K, H, W, shade=True)
    covered = (img < 0.99).any(-1)
    # a sphere of radius R at distance 3: silhouette radius f R / sqrt(9 - R^2) pixels
    r_px = 40.0 * RADIUS / np.sqrt(9 - RADIUS ** 2)
    j, i = np.mgrid[0:H, 0:W] + 0.5
    dist = np.hypot(i - W / 2, j - H / 2)
    assert covered[dist < r_px - 1.5].all() and not covered[dist > r_px + 1.5].any()
    assert img[H // 2, W // 2].mean() == pytest.approx(0.8, abs=0.02)  # head-on: full headlight


# ---------------------------------------------------------------- the demo scene's surfaces
def demo_surface_distance(p: np.ndarray) -> np.ndarray:
    """Exact distance from points (N, 3) to the union of the demo scene's surfaces: the
    sphere, the box's six faces and the floor tile (a square at z = FLOOR_Z)."""
    d_sphere = np.abs(np.linalg.norm(p - demo.SPHERE_CENTER, axis=1) - demo.SPHERE_RADIUS)
    q = np.abs(p - demo.BOX_CENTER) - demo.BOX_HALF              # box SDF: outside + inside parts
    box_sdf = np.linalg.norm(np.maximum(q, 0), axis=1) + np.minimum(q.max(1), 0)
    out = np.maximum(np.abs(p[:, :2]) - demo.FLOOR_HALF, 0)
    d_floor = np.sqrt((p[:, 2] - demo.FLOOR_Z) ** 2 + (out ** 2).sum(1))
    return np.minimum(np.minimum(d_sphere, np.abs(box_sdf)), d_floor)


def demo_surface_samples(n: int, seed: int = 0) -> np.ndarray:
    """Points spread uniformly (by area) over the surfaces the training cameras see: the
    sphere, the box's top and four sides, and the floor tile outside the box's footprint."""
    rng = np.random.default_rng(seed)
    a_sphere = 4 * np.pi * demo.SPHERE_RADIUS ** 2
    hx, hy, hz = demo.BOX_HALF
    a_box = 4 * hx * hy + 2 * (4 * hx * hz) + 2 * (4 * hy * hz)
    a_floor = (2 * demo.FLOOR_HALF) ** 2 - 4 * hx * hy
    counts = rng.multinomial(n, np.array([a_sphere, a_box, a_floor]) / (a_sphere + a_box + a_floor))
    u = rng.normal(size=(counts[0], 3))
    sphere = demo.SPHERE_CENTER + demo.SPHERE_RADIUS * u / np.linalg.norm(u, axis=1, keepdims=True)
    faces = [(2, 1, 4 * hx * hy), (0, 1, 4 * hy * hz), (0, -1, 4 * hy * hz),  # (axis, side, area):
             (1, 1, 4 * hx * hz), (1, -1, 4 * hx * hz)]                        # top and the 4 sides
    pick = rng.choice(len(faces), counts[1], p=np.array([f[2] for f in faces]) / a_box)
    box = demo.BOX_CENTER + rng.uniform(-1, 1, (counts[1], 3)) * demo.BOX_HALF
    for k, (axis, sign, _) in enumerate(faces):
        box[pick == k, axis] = demo.BOX_CENTER[axis] + sign * demo.BOX_HALF[axis]
    floor = np.zeros((0, 3))
    while len(floor) < counts[2]:
        xy = rng.uniform(-demo.FLOOR_HALF, demo.FLOOR_HALF, (2 * counts[2], 2))
        xy = xy[(np.abs(xy - demo.BOX_CENTER[:2]) > demo.BOX_HALF[:2]).any(1)]
        floor = np.concatenate([floor, np.c_[xy, np.full(len(xy), demo.FLOOR_Z)]])
    return np.concatenate([sphere, box, floor[:counts[2]]])


def test_demo_surface_distance_by_hand():
    pts = np.array([demo.SPHERE_CENTER + [0, 0, demo.SPHERE_RADIUS + 0.1],   # 0.1 above the sphere top
                    demo.BOX_CENTER,                                      # box centre: 0.3 to every face
                    [1.2 + 0.3, 1.2 + 0.4, demo.FLOOR_Z],                 # beyond the tile's corner: 0.5
                    [1.0, -1.0, demo.FLOOR_Z + 0.25]])                    # 0.25 above the floor
    np.testing.assert_allclose(demo_surface_distance(pts), [0.1, 0.3, 0.5, 0.25], atol=1e-9)
    assert demo_surface_distance(demo_surface_samples(2000)).max() < 1e-9


# ---------------------------------------------------------------- a trained demo run (slow)
# 600 steps of 3x64 nets (coarse + fine) at lr 5e-3 with a 32^3 occupancy grid; PSNR ~22.7
# on the training rays. --raw_noise_std 1 (noise on the raw density in training, as NeRF
# does on LLFF) pushes the field to opaque surfaces instead of semi-transparent fuzz: the
# same run without it had 19% of its mesh vertices more than 0.1 from any surface (against
# 6%), and a mesh that moved with the threshold (one pair of runs). Timing: 117 to 297 s
# of training and ~130 s of export on the project's 2 cores shared at a load average of
# 5 to 6; not measured on an idle machine. Training is deterministic here (two runs gave
# bit-identical weights), so the distances below repeat exactly on this platform.
TRAIN = ["--config", "configs/demo.txt", "--N_iters", "600", "--netdepth", "3", "--netwidth", "64",
         "--netdepth_fine", "3", "--netwidth_fine", "64", "--lrate", "5e-3", "--raw_noise_std", "1",
         "--occ_grid", "--occ_res", "32", "--occ_warmup", "8",
         "--i_img", "0", "--i_weights", "600", "--i_testset", "0", "--i_video", "0"]
MESH_RES = 128  # 128 x 128 x 52 samples, voxel 2.5 / 127 = 0.0197


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """Train the demo run once, then export its mesh (+ preview) and point cloud in one call."""
    base = tmp_path_factory.mktemp("export_run")
    start = time.perf_counter()
    run_script("train.py", *TRAIN, "--basedir", base, "--expname", "m", timeout=1800)  # a loaded machine: minutes
    trained = time.perf_counter()
    files = {"mesh": base / "mesh.ply", "pointcloud": base / "points.ply", "preview": base / "preview.png"}
    proc = run_script("export.py", "--run", base / "m", "--mesh", files["mesh"], "--resolution", MESH_RES,
                      "--preview", files["preview"], "--preview_size", 96, "--pointcloud", files["pointcloud"])
    print(f"\ntrain {trained - start:.1f} s, export {time.perf_counter() - trained:.1f} s\n{proc.stdout}")
    return {**files, "stdout": proc.stdout}


def distance_report(name: str, d: np.ndarray) -> str:
    return f"{name}: mean {d.mean():.4f}, median {np.median(d):.4f}, p90 {np.percentile(d, 90):.4f}, max {d.max():.4f}"


@pytest.mark.slow
def test_demo_mesh_lies_on_the_scene_surfaces(exported):
    """Chamfer-style check of the exported mesh against the exact demo scene.

    Scale: one voxel is 0.020, and one pixel of the 64 x 64 training images covers
    4 / 87.9 = 0.046 at the scene (camera distance 4, focal 87.9 px): the images cannot
    pin a surface much closer than a pixel, and 600 steps do not quite get there.
    Measured on this run: vertex -> surface mean 0.047, p90 0.071; surface -> mesh mean
    0.035, p90 0.051. Bounds about 1.5x those (vertex mean 0.07 = 1.5 pixels, p90 0.12;
    surface mean 0.06, p90 0.10). The same mesh fails them when moved up by 2 pixels
    (0.09: vertex mean 0.073, p90 0.143) or with the box cut out (surface mean 0.088,
    p90 0.25) or the sphere (0.12, 0.42)."""
    import trimesh
    from scipy.spatial import cKDTree
    out = exported["stdout"]
    assert re.search(r"wrote .*mesh.ply: \d+ vertices, \d+ faces", out) and "mesh extent: (" in out, out
    assert "density grid 128x128x52, voxel 0.01969" in out, out
    mesh = trimesh.load(exported["mesh"], process=False)
    verts = np.asarray(mesh.vertices, np.float64)
    to_surface = demo_surface_distance(verts)
    gt = demo_surface_samples(20000)
    on_mesh, _ = trimesh.sample.sample_surface(mesh, 200000, seed=0)
    to_mesh = cKDTree(on_mesh).query(gt)[0]
    report = "\n".join([f"mesh {len(verts)} vertices, {len(mesh.faces)} faces",
                        distance_report("vertex -> scene surface", to_surface),
                        distance_report("scene surface sample -> mesh", to_mesh)])
    print("\n" + report)
    assert to_surface.mean() < 0.07 and np.percentile(to_surface, 90) < 0.12, report
    assert to_mesh.mean() < 0.06 and np.percentile(to_mesh, 90) < 0.10, report
    # vertex colours: the sphere is red/yellow (red channel well above blue)
    colors = np.asarray(mesh.visual.vertex_colors)[:, :3].astype(float) / 255
    on_sphere = np.abs(np.linalg.norm(verts - demo.SPHERE_CENTER, axis=1) - demo.SPHERE_RADIUS) < 0.03
    assert colors[on_sphere, 0].mean() > colors[on_sphere, 2].mean() + 0.3, report
    import imageio.v2 as imageio
    preview = imageio.imread(exported["preview"])
    assert preview.shape == (96, 3 * 96, 3) and preview[:, 96:].min() < 128  # the mesh panels are not blank


@pytest.mark.slow
def test_demo_point_cloud_lies_on_the_scene_surfaces(exported):
    """Points back-projected from the 8 test views' expected depths (acc >= 0.9).

    Expected depth averages over the ray's weights, so stray points sit between surfaces
    and floaters: measured mean 0.034, median 0.023, p90 0.074 on this run. Bounds about 2x
    (mean 0.07 = 1.5 pixels, p90 0.15)."""
    import trimesh
    out = exported["stdout"]
    match = re.search(r"wrote .*points.ply: (\d+) points from 8 test views", out)
    assert match and "point cloud extent: (" in out, out
    cloud = trimesh.load(exported["pointcloud"])
    points = np.asarray(cloud.vertices, np.float64)
    assert len(points) == int(match.group(1)) > 3000, len(points)
    d = demo_surface_distance(points)
    report = distance_report(f"{len(points)} points -> scene surface", d)
    print("\n" + report)
    assert d.mean() < 0.07 and np.percentile(d, 90) < 0.15, report
    assert np.asarray(cloud.colors).shape == (len(points), 4)


def bad_run(tmp_path):
    """A run folder with a config and no checkpoint."""
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.txt").write_text(f"expname = run\nbasedir = {tmp_path}\ndataset_type = demo\ndemo_res = 8\n")
    return run


def test_bad_input_from_the_command_line(tmp_path):
    """As a user sees it: one line on stderr, exit 2, no traceback."""
    run = bad_run(tmp_path)
    for argv, expected in [(["--run", run, "--mesh", tmp_path / "m.ply"], "no checkpoint (ckpt_*.pt) in"),
                           (["--run", run, "--mesh", tmp_path / "m.stl"], "--mesh '")]:
        proc = run_script("export.py", *argv, check=False)
        lines = proc.stderr.strip().splitlines()
        assert proc.returncode == 2 and len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
        assert expected in lines[0] and "Traceback" not in proc.stderr, lines[0]


@pytest.mark.parametrize("argv, expected", [
    (["--mesh", "{t}/m.stl"], "--mesh '{t}/m.stl': unknown extension '.stl'; expected .glb, .obj, .ply"),
    (["--pointcloud", "{t}/p.obj"], "--pointcloud '{t}/p.obj': unknown extension '.obj'; expected .ply"),
    (["--mesh", "{t}/m"], "--mesh '{t}/m': unknown extension '(none)'; expected .glb, .obj, .ply"),
    ([], "nothing to export: give --mesh FILE and/or --pointcloud FILE"),
    (["--pointcloud", "{t}/p.ply", "--preview", "{t}/x.png"], "--preview renders the exported mesh: give --mesh too"),
    (["--mesh", "{t}/m.ply", "--threshold", "-1"], "--threshold must be a positive density, got -1.0"),
    (["--mesh", "{t}/m.ply", "--resolution", "1"], "--resolution must be in [2, 1024], got 1"),
    (["--pointcloud", "{t}/p.ply", "--min_acc", "0"], "--min_acc must be in (0, 1], got 0.0"),
    (["--mesh", "{t}/m.ply"], "no checkpoint (ckpt_*.pt) in '{t}/run'; train first or pass --ckpt"),
    (["--mesh", "{t}/m.ply", "--run", "{t}/nowhere"], "run directory '{t}/nowhere' has no config.txt (--run)"),
])
def test_bad_inputs_are_one_line_errors(tmp_path, argv, expected):
    """Every output flag is checked before anything is loaded; the message names the flag."""
    import export
    run = bad_run(tmp_path)
    argv = [a.replace("{t}", str(tmp_path)) for a in argv]
    with pytest.raises(UserError) as err:
        export.main((["--run", str(run)] if "--run" not in argv else []) + argv)
    assert str(err.value) == expected.replace("{t}", str(tmp_path))
