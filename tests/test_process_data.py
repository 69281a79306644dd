"""process_data.py: COLMAP (pycolmap) on renders with known cameras, and bad input through the
real command line (one line on stderr, non-zero exit, no traceback)."""
import importlib.util
import os
import subprocess
import sys
import time

import cv2
import numpy as np
import pytest

from datasets import load_scene
from datasets.colmap_capture import extract_frames, process_capture
from datasets.scene import look_at
from tests.conftest import ROOT
from tests.textured_demo import render_textured_view
from utils.config import build_parser, parse_args

needs_pycolmap = pytest.mark.skipif(importlib.util.find_spec("pycolmap") is None,
                                    reason="pycolmap is not installed (pip install pycolmap==4.2.1)")


def run(*args):
    proc = subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True, timeout=300)
    return proc.returncode, proc.stdout, proc.stderr.strip()


def assert_one_line_error(code, err, *needles):
    assert code == 2, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])


def write_png(path, img):
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), img)


# ----------------------------------------------------------------- pose recovery

def ring_cameras(n: int, radius: float = 3.5):
    """n OpenGL c2w cameras around the demo scene, azimuth 360 k / n, elevation 30 +- 15 degrees,
    all looking at the origin with world up +z."""
    poses = []
    for k in range(n):
        az, el = np.deg2rad(360.0 * k / n), np.deg2rad(30.0 + 15.0 * np.sin(6.0 * np.pi * k / n))
        poses.append(look_at(radius * np.array([np.cos(el) * np.cos(az), np.cos(el) * np.sin(az), np.sin(el)])))
    return np.stack(poses)


def umeyama(src: np.ndarray, dst: np.ndarray):
    """Similarity (c, R, t) minimising sum |dst - (c R src + t)|^2 (Umeyama 1991)."""
    mu_s, mu_d = src.mean(0), dst.mean(0)
    xs, xd = src - mu_s, dst - mu_d
    U, D, Vt = np.linalg.svd(xd.T @ xs / len(src))
    E = np.eye(3)
    E[2, 2] = np.sign(np.linalg.det(U) * np.linalg.det(Vt))
    R = U @ E @ Vt
    c = np.trace(np.diag(D) @ E) / xs.var(0).sum()
    return c, R, mu_d - c * R @ mu_s


def rotation_error_deg(Ra: np.ndarray, Rb: np.ndarray) -> float:
    return float(np.degrees(np.arccos(np.clip((np.trace(Ra.T @ Rb) - 1.0) / 2.0, -1.0, 1.0))))


@pytest.mark.slow
@needs_pycolmap
def test_pose_recovery_and_training(tmp_path):
    start = time.perf_counter()
    n, res = 30, 256
    focal = 0.5 * res / np.tan(np.deg2rad(25.0))   # 50-degree field of view
    truth = ring_cameras(n)
    for k, c2w in enumerate(truth):
        rgb = render_textured_view(c2w, res, res, focal)
        write_png(tmp_path / "photos" / f"view_{k:03d}.png", (rgb[..., ::-1] * 255.0 + 0.5).astype(np.uint8))
    rendered = time.perf_counter()

    scene_dir = tmp_path / "scene"
    result = process_capture(str(scene_dir), images=str(tmp_path / "photos"), max_features=1024)
    processed = time.perf_counter()
    assert len(result.registered) == n and not result.unregistered
    for sub in ("images", "images_2", "images_4", "images_8", "sparse/0"):
        assert (scene_dir / sub).is_dir(), sub
    assert cv2.imread(str(scene_dir / "images_4" / "view_000.png")).shape == (res // 4, res // 4, 3)

    scene = load_scene(parse_args(build_parser(), ["--dataset_type", "colmap", "--datadir", str(scene_dir),
                                                   "--factor", "1"]))
    order = [int(name[5:8]) for name in scene.extras["image_names"]]
    true = truth[order]
    est = scene.poses.astype(np.float64)
    c, R, t = umeyama(est[:, :3, 3], true[:, :3, 3])
    aligned = c * est[:, :3, 3] @ R.T + t
    spread = np.sqrt(np.mean(np.sum((true[:, :3, 3] - true[:, :3, 3].mean(0)) ** 2, axis=1)))
    rms = np.sqrt(np.mean(np.sum((aligned - true[:, :3, 3]) ** 2, axis=1)))
    rot = [rotation_error_deg(tr[:3, :3], R @ e[:3, :3]) for tr, e in zip(true, est)]
    focal_err = abs(scene.K[0, 0] - focal) / focal
    print(f"\npose recovery: {n} views {res}x{res}; centre RMS {rms:.4f} = {100 * rms / spread:.3f}% of the "
          f"camera spread {spread:.3f}; rotation error mean {np.mean(rot):.3f} max {np.max(rot):.3f} deg; "
          f"focal {scene.K[0, 0]:.2f} vs {focal:.2f} ({100 * focal_err:.2f}%); reprojection "
          f"{result.mean_reprojection_error:.3f} px; {result.n_points} points; facing {scene.extras['facing']}")
    assert rms < 0.02 * spread
    assert np.mean(rot) < 1.0
    assert focal_err < 0.02
    assert scene.extras["facing"] == "inward" and not scene.ndc and scene.bbox is not None

    code, out, err = run("train.py", "--dataset_type", "colmap", "--datadir", str(scene_dir), "--factor", "4",
                         "--basedir", str(tmp_path / "logs"), "--expname", "capture", "--N_iters", "5",
                         "--netdepth", "2", "--netwidth", "32", "--netdepth_fine", "2", "--netwidth_fine", "32",
                         "--N_samples", "8", "--N_importance", "8", "--N_rand", "256", "--occ_grid",
                         "--i_img", "0", "--i_testset", "0", "--i_video", "0")
    assert code == 0, err
    assert (tmp_path / "logs" / "capture" / "ckpt_0000005.pt").is_file()
    end = time.perf_counter()
    print(f"timings: render {rendered - start:.1f} s, process_data {processed - rendered:.1f} s, "
          f"load + train 5 steps {end - processed:.1f} s, total {end - start:.1f} s")


# ----------------------------------------------------------------- bad input (command line)

def test_folder_without_images(tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("no images here")
    code, _, err = run("process_data.py", "--images", str(tmp_path / "empty"), "--out", str(tmp_path / "scene"))
    assert_one_line_error(code, err, "empty", "no .png/.jpg/.jpeg images")
    assert not (tmp_path / "scene").exists()


def test_images_of_different_sizes(tmp_path):
    write_png(tmp_path / "in" / "a.png", np.zeros((8, 8, 3), np.uint8))
    write_png(tmp_path / "in" / "b.png", np.zeros((8, 10, 3), np.uint8))
    code, _, err = run("process_data.py", "--images", str(tmp_path / "in"), "--out", str(tmp_path / "scene"))
    assert_one_line_error(code, err, "different sizes", "8x8", "10x8")


def test_existing_output_is_not_overwritten(tmp_path):
    write_png(tmp_path / "in" / "a.png", np.zeros((8, 8, 3), np.uint8))
    (tmp_path / "scene" / "sparse").mkdir(parents=True)
    code, _, err = run("process_data.py", "--images", str(tmp_path / "in"), "--out", str(tmp_path / "scene"))
    assert_one_line_error(code, err, "sparse", "already exists")


def test_without_pycolmap(tmp_path):
    """pycolmap blocked (sys.modules entry None makes its import fail): one line saying to install it."""
    for k in range(3):
        write_png(tmp_path / "in" / f"{k}.png", np.zeros((8, 8, 3), np.uint8))
    code = ("import runpy, sys; sys.modules['pycolmap'] = None; sys.argv = ['process_data.py'] + sys.argv[1:]; "
            "runpy.run_path('process_data.py', run_name='__main__')")
    code, _, err = run("-c", code, "--images", str(tmp_path / "in"), "--out", str(tmp_path / "scene"))
    assert_one_line_error(code, err, "pip install pycolmap==4.2.1")


@needs_pycolmap
def test_images_that_do_not_register(tmp_path):
    rng = np.random.default_rng(0)
    for k in range(3):
        write_png(tmp_path / "noise" / f"noise_{k}.png", rng.integers(0, 256, (128, 128, 3), dtype=np.uint8))
    out = tmp_path / "scene"
    code, _, err = run("process_data.py", "--images", str(tmp_path / "noise"), "--out", str(out),
                       "--max_features", "512")
    assert_one_line_error(code, err, "only 0 of 3 images registered", "noise_0.png, noise_1.png, noise_2.png",
                          "colmap.log")
    assert sorted(os.listdir(out)) == ["colmap.log"]   # no partial images/ or sparse/


@needs_pycolmap
def test_unreadable_video(tmp_path):
    (tmp_path / "clip.mp4").write_bytes(b"this is not a video" * 10)
    code, _, err = run("process_data.py", "--video", str(tmp_path / "clip.mp4"), "--out", str(tmp_path / "scene"))
    assert_one_line_error(code, err, "clip.mp4", "video")


def test_video_frames_are_sampled_evenly(tmp_path):
    """20 frames whose grey level encodes their index; 5 sampled frames are 0, 5, 10, 14, 19
    (linspace(0, 19, 5) rounded)."""
    path = str(tmp_path / "clip.avi")
    writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*"MJPG"), 10.0, (32, 32))
    assert writer.isOpened()
    for k in range(20):
        writer.write(np.full((32, 32, 3), 10 * k + 5, np.uint8))
    writer.release()
    (tmp_path / "frames").mkdir()
    names = extract_frames(path, str(tmp_path / "frames"), 5)
    assert names == [f"frame_{k:05d}.png" for k in range(5)]
    levels = [cv2.imread(str(tmp_path / "frames" / name)).mean() for name in names]
    np.testing.assert_allclose(levels, [10 * k + 5 for k in (0, 5, 10, 14, 19)], atol=3)
