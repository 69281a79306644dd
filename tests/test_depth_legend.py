"""Depth maps: colour faded by accumulated opacity, and the near/far legend (utils.visual),
in eval.py's NNN_depth.png and TensorBoard's val strip.

Hand values: OpenCV's COLORMAP_TURBO is Google's Turbo table, whose ends are (published
sRGB bytes) entry 255 = (122, 4, 3) (dark red: near, as we map it) and entry 0 =
(48, 18, 59) (dark blue: far)."""
import json

import imageio.v2 as imageio
import numpy as np
import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from tests.conftest import run_script, tiny_args
from utils.visual import (colorize_depth, colorize_depth_range, depth_image_with_legend, depth_legend,
                          depth_legend_labels, with_depth_legend)

NEAR = np.array([122, 4, 3]) / 255.0
FAR = np.array([48, 18, 59]) / 255.0
WHITE = np.ones(3)


def test_colour_is_faded_towards_white_by_opacity():
    # expected depth sum(w t) = acc * surface depth; surfaces at 2 (near) and 6 (far)
    acc = np.array([[1.0, 1.0, 0.5, 0.25, 0.3, 0.0]])
    surface = np.array([[2.0, 6.0, 6.0, 2.0, 2.0, 4.0]])
    img, near, far = colorize_depth_range(surface * acc, acc)
    # the percentiles use the rays with acc > 0.5 only: the surfaces at 2 and 6
    assert near == pytest.approx(2.0 + 0.01 * 4.0) and far == pytest.approx(6.0 - 0.01 * 4.0)
    expected = [NEAR, FAR, 0.5 * FAR + 0.5 * WHITE, 0.25 * NEAR + 0.75 * WHITE, 0.3 * NEAR + 0.7 * WHITE, WHITE]
    assert np.allclose(img[0], expected, atol=1e-6)
    # the faint floater (acc 0.3) is a pale tint, far from the near colour it was drawn as before
    assert np.abs(img[0, 4] - NEAR).max() > 0.5 and img[0, 4].min() > 0.6


def test_without_opacity_colours_are_unfaded():
    img = colorize_depth(np.array([[2.0, 6.0]]))
    assert np.allclose(img[0], [NEAR, FAR], atol=1e-6)


def test_legend_bar_and_labels():
    depth = np.array([[2.0, 3.0, 4.0, 5.0, 6.0]])
    _, near, far = colorize_depth_range(depth)
    # numpy's linear percentile over 5 values: 1 % at position 0.04, 99 % at 3.96
    assert (near, far) == (pytest.approx(2.04), pytest.approx(5.96))
    assert depth_legend_labels(near, far) == ("near 2.04", "far 5.96")
    strip = depth_legend(200, near, far)
    bar_row = strip[4]  # the bar starts 2 rows down and is 6 rows high at this width
    assert np.allclose(bar_row[0], NEAR, atol=1e-6) and np.allclose(bar_row[-1], FAR, atol=1e-6)
    text_rows = strip[10:]
    assert (text_rows.max(-1) < 0.5).any()  # dark label pixels under the bar
    assert (text_rows[:, :60].max(-1) < 0.5).any() and (text_rows[:, -60:].max(-1) < 0.5).any()  # near left, far right


def test_legend_under_one_panel_of_a_strip():
    W = 24
    strip = np.ones((W, 3 * W, 3), np.float32)
    out = with_depth_legend(strip, 2.04, 5.96, 2 * W, 3 * W)
    assert out.shape[1] == 3 * W and out.shape[0] > W
    assert np.array_equal(out[:W], strip)  # the images are untouched
    bar = out[W + 4]
    assert np.allclose(bar[:2 * W], 1.0) and np.allclose(bar[2 * W], NEAR, atol=1e-6)
    assert np.allclose(bar[-1], FAR, atol=1e-6)
    # a narrow panel: the labels go on two lines, both inside the strip
    assert out.shape[0] > with_depth_legend(np.ones((W, 400, 3)), 2.04, 5.96, 200, 400).shape[0]


def test_depth_png_keeps_the_image_rows():
    depth = np.tile(np.linspace(2.0, 6.0, 64), (64, 1))
    out = depth_image_with_legend(depth, np.ones_like(depth))
    assert out.shape[0] > 64 and out.shape[1] == 64
    assert np.array_equal(out[:64], colorize_depth(depth, np.ones_like(depth)))


@pytest.mark.slow
def test_eval_png_and_tensorboard_strip_carry_the_legend(tmp_path):
    res = 16
    run_script("train.py", "--basedir", tmp_path, "--expname", "d", "--N_iters", "10",
               *tiny_args(res, i_img=10, i_weights=0, N_rand=64, N_samples=8, N_importance=0))
    run = tmp_path / "d"
    run_script("eval.py", "--run", run, "--no_path")
    depth_png = imageio.imread(run / "eval_0000010" / "000_depth.png")
    assert depth_png.shape[0] > res and depth_png.shape[1] == res
    assert imageio.imread(run / "eval_0000010" / "000.png").shape == (res, res, 3)
    legend = depth_png[res:].astype(int)
    assert (np.abs(legend - np.round(NEAR * 255)).max(-1) <= 1).any()  # the bar's near end
    acc = EventAccumulator(str(run), size_guidance={"images": 0})
    acc.Reload()
    image = acc.Images("val/gt_pred_depth")[-1]
    assert image.width == 3 * res and image.height > res  # GT | prediction | depth, legend below
    metrics = json.loads((run / "eval_0000010" / "metrics.json").read_text())
    assert metrics["height"] == res
