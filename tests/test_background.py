"""Training on random backgrounds (--random_bkgd), against hand-computed values."""
import math

import numpy as np
import pytest
import torch

from datasets.batching import CameraViews, RayBatcher, onto_background
from datasets.scene import Scene
from rendering.renderer import RayNoise, RenderOptions
from rendering.volume import composite
from utils.errors import UserError


def test_onto_background_by_hand():
    # straight colour 0.2 at alpha 0.25: on white 0.2 * 0.25 + 0.75 = 0.8, on black 0.05
    on_white = torch.tensor([[0.8, 0.8, 0.8, 0.25]])
    on_black = torch.tensor([[0.05, 0.05, 0.05, 0.25]])
    bg = torch.tensor([[0.4, 0.0, 1.0]])
    expected = torch.tensor([[0.05 + 0.75 * 0.4, 0.05, 0.05 + 0.75]])  # c a + b (1 - a)
    assert torch.allclose(onto_background(on_white, bg, white_bkgd=True), expected)
    assert torch.allclose(onto_background(on_black, bg, white_bkgd=False), expected)


def test_composite_onto_a_background_per_ray():
    t = torch.tensor([[2.0, 3.0, 4.0], [2.0, 3.0, 4.0]])
    d = torch.tensor([[0.0, 0.0, 1.0], [0.0, 0.0, 1.0]])
    sigma_raw = torch.tensor([[0.0, 0.7, 0.0], [0.0, 0.0, 0.0]])
    rgb_raw = torch.zeros(2, 3, 3)  # sigmoid(0) = 0.5
    bg = torch.tensor([[0.2, 0.4, 0.6], [0.9, 0.1, 0.3]])
    out = composite(rgb_raw, sigma_raw, t, d, white_bkgd=True, background=bg)
    a = 1 - math.exp(-0.7)
    expected = torch.stack([0.5 * a + (1 - a) * bg[0], bg[1]])  # the second ray is empty: its background
    assert torch.allclose(out["rgb"], expected, atol=1e-6)


def rgba_scene(channels: int = 4) -> Scene:
    rng = np.random.default_rng(0)
    images = rng.uniform(size=(3, 4, 5, channels)).astype(np.float32)
    poses = np.tile(np.eye(4, dtype=np.float32), (3, 1, 1))
    K = np.array([[5, 0, 2.5], [0, 5, 2], [0, 0, 1]], np.float32)
    splits = {"train": np.array([0, 1]), "val": np.array([2]), "test": np.array([2])}
    return Scene("rgba", images, poses, K, 2.0, 6.0, splits, poses[:1])


def test_batcher_targets_carry_alpha_and_recomposite_to_the_straight_colour():
    scene = rgba_scene()
    views = CameraViews(scene, white_bkgd=True, device=torch.device("cpu"), keep_alpha=True)
    _, target = RayBatcher(views, [0, 1], torch.Generator().manual_seed(0)).sample(64)
    assert target.shape == (64, 4)
    bg = torch.rand(64, 3, generator=torch.Generator().manual_seed(1))
    # which pixel each target is: find its alpha among the train images (distinct random floats)
    alpha = torch.from_numpy(scene.images[[0, 1], ..., 3]).reshape(-1)
    straight = torch.from_numpy(scene.images[[0, 1], ..., :3]).reshape(-1, 3)
    idx = (target[:, 3:4] == alpha[None]).float().argmax(1)
    expected = straight[idx] * alpha[idx, None] + bg * (1 - alpha[idx, None])
    assert torch.allclose(onto_background(target, bg, white_bkgd=True), expected, atol=1e-6)


def test_random_background_needs_alpha():
    with pytest.raises(UserError, match="--random_bkgd needs images with an alpha channel"):
        CameraViews(rgba_scene(channels=3), white_bkgd=True, device=torch.device("cpu"), keep_alpha=True)


def test_background_is_drawn_last_and_only_when_asked():
    """A run without random backgrounds draws exactly the numbers it drew before the option existed."""
    opts = RenderOptions(N_samples=4, N_importance=4, perturb=True, raw_noise_std=1.0)
    plain = RayNoise.draw(8, opts, True, torch.Generator().manual_seed(0), "cpu")
    opts.random_bkgd = True
    with_bg = RayNoise.draw(8, opts, True, torch.Generator().manual_seed(0), "cpu")
    assert plain.background is None and with_bg.background.shape == (8, 3)
    for name in ("strata", "raw_coarse", "pdf", "raw_fine"):
        assert torch.equal(getattr(plain, name), getattr(with_bg, name)), name
    assert torch.equal(with_bg[2:5].background, with_bg.background[2:5])


def test_random_background_is_for_training_only():
    from types import SimpleNamespace
    args = SimpleNamespace(N_samples=8, N_importance=8, perturb=1.0, lindisp=False, raw_noise_std=0.0,
                           white_bkgd=True, sigma_activation="relu", occ_stop_T=0.0, random_bkgd=True)
    assert RenderOptions.from_args(args, train=True).random_bkgd
    assert not RenderOptions.from_args(args, train=False).random_bkgd
