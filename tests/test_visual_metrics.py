"""Depth colour maps, PSNR/SSIM, quantisation."""
import math

import numpy as np

from runs.evaluation import quantize
from utils.metrics import psnr, ssim
from utils.visual import colorize_depth


def test_depth_colormap_never_black_from_nan_or_inf():
    depth = np.linspace(2, 6, 64 * 64).reshape(64, 64)
    depth[:8] = np.nan
    depth[8:10] = np.inf
    img = colorize_depth(depth)
    assert np.isfinite(img).all() and img.shape == (64, 64, 3)
    assert (img.sum(-1) > 0.05).all()  # no black holes
    far = colorize_depth(np.full((2, 2), 6.0))[0, 0]
    assert np.allclose(img[0, 0], img[-1, -1], atol=0.02) and not np.allclose(far, 0)


def test_depth_colormap_is_robust_to_outliers_and_ignores_empty_rays():
    depth = np.tile(np.linspace(2, 3, 100), (100, 1))
    depth[0, 0] = 1e6  # one outlier must not flatten the rest
    acc = np.ones_like(depth)
    acc[:, :10] = 0.0
    img = colorize_depth(depth, acc)
    assert np.abs(img[50, 20] - img[50, 90]).sum() > 0.3


def test_psnr_and_ssim_hand_values():
    a = np.zeros((16, 16, 3))
    b = np.full((16, 16, 3), 0.1)
    assert math.isclose(psnr(a, b), 20.0, rel_tol=1e-9)  # -10 log10(0.01)
    rng = np.random.default_rng(0)
    img = rng.random((32, 32, 3))
    assert math.isclose(ssim(img, img), 1.0, rel_tol=1e-9)
    # a constant shift c of a flat image: SSIM = luminance term (2 mu1 mu2 + C1)/(mu1^2 + mu2^2 + C1)
    flat1, flat2 = np.full((32, 32, 3), 0.5), np.full((32, 32, 3), 0.6)
    c1 = 0.01 ** 2
    assert math.isclose(ssim(flat1, flat2), (2 * 0.5 * 0.6 + c1) / (0.25 + 0.36 + c1), rel_tol=1e-6)


def test_ssim_is_unavailable_below_its_window():
    """The 11-pixel Gaussian window does not fit a 10-pixel image: None, not an exception."""
    rng = np.random.default_rng(0)
    thin, square = rng.uniform(size=(10, 32, 3)), rng.uniform(size=(11, 11, 3))
    assert ssim(thin, thin) is None
    assert math.isclose(ssim(square, square), 1.0, rel_tol=1e-9)  # the smallest size it takes


def test_quantize_matches_saved_png_values():
    x = np.array([0.0, 0.5, 0.999, 1.2, -0.1], np.float32)
    assert np.allclose(quantize(x) * 255, [0, 128, 255, 255, 0])


def test_empty_rays_are_drawn_as_background_not_near():
    depth = np.full((4, 4), 3.0)
    acc = np.ones((4, 4))
    depth[0], acc[0] = 0.0, 0.0          # background: nothing hit, expected depth 0
    depth[1, :2] = [2.0, 6.0]
    img = colorize_depth(depth, acc)
    near = colorize_depth(np.array([[2.0, 6.0]]))[0, 0]
    # colour = acc * turbo + (1 - acc) * white: with acc = 0 exactly white (it was the far
    # colour before the opacity fade; white is the background the renders show there)
    assert np.array_equal(img[0, 0], [1.0, 1.0, 1.0]) and not np.allclose(img[0, 0], near, atol=0.1)
