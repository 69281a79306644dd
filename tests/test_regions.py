"""Region and high-frequency metrics (runs/regions.py) against hand-computed values, and the
demo scene's exact region masks."""
import argparse
import math

import numpy as np
import pytest

from runs.regions import (demo_region_masks, hf_psnr, image_metrics, interior, laplacian, masked_psnr,
                          masked_ssim, mean_over_views, subpixel_rays, surface_ids)
from utils.metrics import ssim


def test_laplacian_of_a_delta():
    img = np.zeros((5, 5))
    img[2, 2] = 1.0
    expected = np.array([[0, 1, 0], [1, -4, 1], [0, 1, 0]], float)
    assert np.array_equal(laplacian(img), expected)


def test_laplacian_of_polynomials():
    y, x = np.mgrid[0:6, 0:7].astype(float)
    assert np.allclose(laplacian(x ** 2), 2.0)             # d2/dx2 x^2 = 2, exact for the 5-point stencil
    assert np.allclose(laplacian(x ** 2 + 3 * y ** 2), 8.0)
    assert np.allclose(laplacian(2 * x + y + x * y), 0.0)   # harmonic
    rgb = np.stack([x ** 2, y ** 2, x * y], -1)
    assert laplacian(rgb).shape == (4, 5, 3) and np.allclose(laplacian(rgb)[..., 2], 0)


def test_interior_keeps_pixels_whose_stencil_is_inside():
    mask = np.zeros((6, 6), bool)
    mask[1:5, 1:5] = True          # a 4x4 block: its inner 2x2 pixels have all 4 neighbours inside
    inner = interior(mask)         # indexed like laplacian's output (shifted by one)
    expected = np.zeros((4, 4), bool)
    expected[1:3, 1:3] = True
    assert np.array_equal(inner, expected)


def test_hf_psnr_by_hand():
    gt = np.zeros((5, 5, 3))
    pred = gt.copy()
    a = 0.1
    pred[2, 2] = a                 # Laplacian error: a at 4 neighbours, -4a at the centre, 0 at 4 corners
    mse = (4 * a ** 2 + 16 * a ** 2) / 9
    assert hf_psnr(pred, gt) == pytest.approx(-10 * math.log10(mse))
    mask = np.zeros((5, 5), bool)
    mask[1:4, 1:4] = True          # only the centre's stencil lies inside: error -4a there
    assert hf_psnr(pred, gt, mask) == pytest.approx(-10 * math.log10(16 * a ** 2))
    assert hf_psnr(pred, gt, np.zeros((5, 5), bool)) is None
    assert hf_psnr(gt, gt) == math.inf
    # a constant offset has no high frequencies
    assert hf_psnr(gt + 0.3, gt) == math.inf


def test_masked_psnr_and_ssim_by_hand():
    gt = np.zeros((4, 4, 3))
    pred = gt.copy()
    pred[0, 0] = 0.5               # error 0.25 in 3 channels of one pixel
    mask = np.zeros((4, 4), bool)
    mask[0, :2] = True             # 2 pixels: MSE = 3 * 0.25 / 6
    assert masked_psnr(pred, gt, mask) == pytest.approx(-10 * math.log10(0.125))
    assert masked_psnr(pred, gt) == pytest.approx(-10 * math.log10(0.75 / 48))
    assert masked_psnr(pred, gt, np.zeros((4, 4), bool)) is None
    rng = np.random.default_rng(0)
    a, b = rng.random((32, 32, 3)), rng.random((32, 32, 3))
    assert masked_ssim(a, b) == pytest.approx(ssim(a, b), abs=1e-12)  # the whole-image mean is utils' SSIM
    assert masked_ssim(a, b, np.ones((32, 32), bool)) == pytest.approx(ssim(a, b), abs=1e-12)
    from runs.regions import ssim_map
    half = np.zeros((32, 32), bool)
    half[:, :16] = True
    assert masked_ssim(a, b, half) == pytest.approx(ssim_map(a, b)[5:-5, 5:16].mean(), abs=1e-12)
    assert masked_ssim(a, b, np.pad(np.ones((2, 2), bool), ((0, 30), (0, 30)))) is None  # all in the border


def test_mean_over_views_skips_missing_regions():
    views = [{"hf_psnr": 10.0, "regions": {"box": {"psnr": 20.0, "ssim": 0.5, "hf_psnr": None, "pixels": 3}}},
             {"hf_psnr": 20.0, "regions": {"box": {"psnr": None, "ssim": None, "hf_psnr": None, "pixels": 0}}}]
    out = mean_over_views(views)
    assert out["hf_psnr"] == 15.0 and out["regions"]["box"] == {"psnr": 20.0, "ssim": 0.5, "hf_psnr": None,
                                                                  "pixels": 3}


# ---------------------------------------------------------------- demo masks
@pytest.fixture(scope="module")
def demo_scene():
    from datasets.demo import load_demo
    return load_demo(argparse.Namespace(demo_res=24, testskip=1, n_frames=4))


def test_mask_rays_are_the_rays_that_rendered_the_ground_truth(demo_scene):
    """Tracing our sub-pixel rays from the loader's own (float64) test cameras and focal and
    box-filtering them reproduces the scene's images, so the masks describe exactly the
    pixels that were scored; from the loaded (float32) poses and K they are the same masks."""
    from datasets.demo import SUPERSAMPLE, _hemisphere_cameras, trace
    H, W = demo_scene.H, demo_scene.W
    focal = 0.5 * W / np.tan(0.5 * np.deg2rad(40.0))  # datasets/demo.py's load_demo
    assert focal == pytest.approx(float(demo_scene.K[0][0]), rel=1e-6)
    for camera, idx in zip(_hemisphere_cameras(8, 2), demo_scene.splits["test"]):
        assert np.allclose(camera, demo_scene.poses[idx], atol=1e-6)
        origins, dirs = subpixel_rays(camera, H, W, focal, SUPERSAMPLE)
        rgba, t = trace(origins, dirs)
        assert np.allclose(rgba.mean(axis=(2, 3)), demo_scene.images[idx], atol=1e-6)
        ids = surface_ids(origins, dirs)
        assert np.array_equal(ids == -1, ~np.isfinite(t))
        ours = demo_region_masks(np.asarray(demo_scene.poses[idx], np.float64), H, W, float(demo_scene.K[0][0]))
        exact = demo_region_masks(camera, H, W, focal)
        assert all(np.array_equal(ours[k], exact[k]) for k in exact)


def test_region_masks_partition_the_pure_pixels(demo_scene):
    from datasets.demo import SUPERSAMPLE
    H, W, focal = demo_scene.H, demo_scene.W, float(demo_scene.K[0][0])
    for idx in demo_scene.splits["test"]:
        c2w = np.asarray(demo_scene.poses[idx], np.float64)
        masks = demo_region_masks(c2w, H, W, focal)
        stack = np.stack(list(masks.values()))
        assert stack.sum(0).max() <= 1                    # disjoint
        ids = surface_ids(*subpixel_rays(c2w, H, W, focal, SUPERSAMPLE)).reshape(H, W, -1)
        pure = (ids == ids[..., :1]).all(-1)
        assert np.array_equal(stack.any(0), pure)         # exactly the pixels whose 9 rays agree
        assert masks["floor"].sum() > 0.1 * H * W         # every test view sees the floor
        alpha = demo_scene.images[idx][..., 3]
        assert np.all(alpha[masks["background"]] == 0) and np.all(alpha[masks["floor"]] == 1)


def test_image_metrics_per_region(demo_scene):
    H, W, focal = demo_scene.H, demo_scene.W, float(demo_scene.K[0][0])
    idx = demo_scene.splits["test"][0]
    gt = demo_scene.images[idx][..., :3]
    masks = demo_region_masks(np.asarray(demo_scene.poses[idx], np.float64), H, W, focal)
    pred = gt.copy()
    pred[masks["floor"]] += 0.1                           # error on the floor only
    out = image_metrics(pred, gt, masks)
    assert out["regions"]["floor"]["psnr"] == pytest.approx(20.0, abs=1e-4)
    for name in ("sphere", "box", "background"):
        if masks[name].any():
            assert out["regions"][name]["psnr"] == math.inf
    assert out["regions"]["floor"]["hf_psnr"] > 100         # a constant offset inside the region (float32 rounding)
    assert out["hf_psnr"] < math.inf                       # but the floor's edges change the whole image's
