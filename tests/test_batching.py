"""RayBatcher on a hand-made scene: every drawn ray is the ray of the pixel its target came from.

Each pixel's colour encodes its image, row and column exactly ((k + 1) / 8, j / 16, i / 16),
so a target tells which pixel was drawn; that pixel's ray is recomputed here by hand from
the pose and intrinsics (pixel centres: README, "Conventions")."""
import numpy as np
import pytest
import torch

from datasets.batching import CameraViews, RayBatcher
from datasets.scene import Scene

N, H, W = 5, 8, 12
FOCAL, CX, CY = 9.0, 5.5, 4.25  # principal point off the image centre: a swapped cx / cy shows
TRAIN = [0, 2, 3]


def random_pose(rng):
    q, r = np.linalg.qr(rng.normal(size=(3, 3)))
    q = q * np.sign(np.diag(r))
    if np.linalg.det(q) < 0:
        q[:, 0] = -q[:, 0]
    c2w = np.eye(4)
    c2w[:3, :3], c2w[:3, 3] = q, rng.uniform(-3, 3, 3)
    return c2w


@pytest.fixture(scope="module")
def scene():
    rng = np.random.default_rng(0)
    k, j, i = np.meshgrid(np.arange(N), np.arange(H), np.arange(W), indexing="ij")
    images = np.stack([(k + 1) / 8, j / 16, i / 16], -1).astype(np.float32)  # (N, H, W, 3), exact in float32
    poses = np.stack([random_pose(rng) for _ in range(N)]).astype(np.float32)
    K = np.array([[FOCAL, 0, CX], [0, FOCAL, CY], [0, 0, 1]], np.float32)
    splits = {"train": np.array(TRAIN), "val": np.array([1]), "test": np.array([4])}
    return Scene("hand", images, poses, K, near=0.5, far=7.0, splits=splits, render_poses=poses[:2])


def batcher(scene, seed=0, one_image=False):
    views = CameraViews(scene, white_bkgd=False, device=torch.device("cpu"))
    return RayBatcher(views, scene.splits["train"], torch.Generator().manual_seed(seed), one_image=one_image)


def drawn_pixels(target):
    """(k, j, i) int arrays of the pixels the targets are, from their colour code."""
    t = target.double().numpy()
    k, j, i = np.rint(t[:, 0] * 8 - 1), np.rint(t[:, 1] * 16), np.rint(t[:, 2] * 16)
    return k.astype(int), j.astype(int), i.astype(int)


def test_targets_are_pixels_and_rays_go_through_their_centres(scene):
    rays, target = batcher(scene).sample(512)
    assert target.shape == (512, 3) and len(rays) == 512
    k, j, i = drawn_pixels(target)
    assert np.array_equal(target.numpy(), scene.images[k, j, i])  # exactly a pixel of the image
    for m in range(512):
        c2w = scene.poses[k[m]].astype(np.float64)
        d_cam = np.array([(i[m] + 0.5 - CX) / FOCAL, -(j[m] + 0.5 - CY) / FOCAL, -1.0])
        d = c2w[:3, :3] @ d_cam
        np.testing.assert_allclose(rays.origins[m].numpy(), c2w[:3, 3], atol=1e-6)
        np.testing.assert_allclose(rays.directions[m].numpy(), d, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(rays.viewdirs[m].numpy(), d / np.linalg.norm(d), atol=1e-6)
    assert torch.all(rays.near == 0.5) and torch.all(rays.far == 7.0)


def test_only_train_images_are_drawn(scene):
    b = batcher(scene)
    k = np.concatenate([drawn_pixels(b.sample(256)[1])[0] for _ in range(4)])
    assert set(k.tolist()) == set(TRAIN)


def test_precrop_draws_the_central_crop_only(scene):
    """crop_frac 0.5 of 8 x 12: rows 2..5 and columns 3..8, all of them reachable."""
    b = batcher(scene)
    _, j, i = (np.concatenate(a) for a in zip(*(drawn_pixels(b.sample(512, crop_frac=0.5)[1]) for _ in range(4))))
    assert set(j.tolist()) == set(range(2, 6)) and set(i.tolist()) == set(range(3, 9))
    _, j, i = drawn_pixels(b.sample(2048)[1])  # without the crop: the whole image
    assert set(j.tolist()) == set(range(H)) and set(i.tolist()) == set(range(W))


def test_one_image_draws_each_batch_from_one_image(scene):
    b = batcher(scene, one_image=True)
    images = []
    for _ in range(12):
        k, _, _ = drawn_pixels(b.sample(64)[1])
        assert len(set(k.tolist())) == 1
        images.append(int(k[0]))
    assert set(images) <= set(TRAIN) and len(set(images)) > 1


@pytest.mark.parametrize("one_image", [False, True])
def test_same_seed_same_batch(scene, one_image):
    (ra, ta), (rb, tb) = (batcher(scene, 7, one_image).sample(128, crop_frac=0.5) for _ in range(2))
    assert torch.equal(ta, tb)
    for key in ("origins", "directions", "viewdirs", "near", "far"):
        assert torch.equal(getattr(ra, key), getattr(rb, key)), key
    _, tc = batcher(scene, 8, one_image).sample(128, crop_frac=0.5)
    assert not torch.equal(ta, tc)
