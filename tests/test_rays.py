"""Rays and NDC against hand-computed values."""
import math

import numpy as np
import torch

from rendering.rays import camera_directions, get_rays, ndc_rays, rays_from_camera, scale_intrinsics


def K_of(f, W, H):
    return torch.tensor([[f, 0, W / 2], [0, f, H / 2], [0, 0, 1.0]])


def test_pixel_centre_directions_identity_camera():
    # W=4, H=2, f=2: centre of pixel (i=0, j=0) is (0.5, 0.5) -> ((0.5-2)/2, -(0.5-1)/2, -1)
    i, j = torch.tensor([0.0, 3.0, 1.0]), torch.tensor([0.0, 1.0, 0.0])
    d = camera_directions(i, j, K_of(2.0, 4, 2))
    expected = torch.tensor([[-0.75, 0.25, -1.0], [0.75, -0.25, -1.0], [-0.25, 0.25, -1.0]])
    assert torch.allclose(d, expected)


def test_get_rays_symmetric_and_world_rotation():
    # camera at (1, 2, 3), rotated 90 deg about +y: camera -z looks along world -x
    c = math.cos(math.pi / 2)
    R = torch.tensor([[c, 0, 1.0], [0, 1, 0], [-1.0, 0, c]])
    c2w = torch.eye(4)
    c2w[:3, :3], c2w[:3, 3] = R, torch.tensor([1.0, 2.0, 3.0])
    o, d = get_rays(2, 2, K_of(1.0, 2, 2), c2w)
    assert o.shape == d.shape == (2, 2, 3)
    assert torch.allclose(o, torch.tensor([1.0, 2.0, 3.0]).expand(2, 2, 3))
    # pixel (0, 0): centre (0.5, 0.5) -> cam (-0.5, 0.5, -1) -> world (R @ v)
    assert torch.allclose(d[0, 0], torch.tensor([-1.0, 0.5, 0.5]), atol=1e-6)
    # the 2x2 image's rays are symmetric about the optical axis: their mean is the axis
    assert torch.allclose(d.mean((0, 1)), torch.tensor([-1.0, 0.0, 0.0]), atol=1e-6)


def test_rays_broadcast_over_batches_of_cameras():
    c2w = torch.eye(4).expand(5, 4, 4)
    dirs = torch.randn(5, 3)
    o, d = rays_from_camera(dirs, c2w[:, :3])
    assert torch.allclose(d, dirs) and o.shape == (5, 3)


def test_scale_intrinsics_keeps_pixel_centres():
    # the centre of the full image (W=8) maps to the centre of the 1/2 image (W=4)
    K = K_of(10.0, 8, 8)
    K2 = scale_intrinsics(K, 2)
    assert K2[0, 0] == 5.0 and K2[0, 2] == 2.0 and K2[1, 2] == 2.0


def ndc_point(p, fx, fy, W, H, near=1.0):
    """Independent projection of a world point into NDC (paper appendix C, eq. 23)."""
    x, y, z = p
    return np.array([-fx / (W / 2) * x / z, -fy / (H / 2) * y / z, 1 + 2 * near / z])


def test_ndc_world_points_lie_on_ndc_ray():
    gen = torch.Generator().manual_seed(0)
    W, H, fx, fy = 40, 30, 35.0, 33.0
    o = torch.rand(64, 3, generator=gen) * 0.4 - 0.2
    d = torch.rand(64, 3, generator=gen) - 0.5
    d[:, 2] = -1.0 - torch.rand(64, generator=gen)  # forward-facing: looking down -z
    o_ndc, d_ndc = ndc_rays(H, W, fx, fy, 1.0, o, d)
    for k in range(64):
        o_k, d_k = o[k].double().numpy(), d[k].double().numpy()
        t_near = -(1.0 + o_k[2]) / d_k[2]
        for s in (0.0, 0.5, 3.0, 50.0):
            q = ndc_point(o_k + (t_near + s) * d_k, fx, fy, W, H)
            t = (q[2] - o_ndc[k, 2].item()) / d_ndc[k, 2].item()
            assert -1e-6 <= t <= 1.0
            assert np.allclose(o_ndc[k].numpy() + t * d_ndc[k].numpy(), q, atol=1e-4)
        # t = 0 is the near plane (z_ndc = -1); t = 1 is infinity (z_ndc = 1)
        assert abs(o_ndc[k, 2].item() + 1.0) < 1e-5
        assert abs(o_ndc[k, 2].item() + d_ndc[k, 2].item() - 1.0) < 1e-5
