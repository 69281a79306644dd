"""Pinhole rays and NDC. Pure tensor functions over any leading dimensions (the one
exception, ``intrinsics_matrix``, builds the loaders' numpy K).

Conventions (see README, "Conventions"):
- OpenGL/Blender camera axes: +x right, +y up, the camera looks down -z.
- Pixel (column i, row j) is sampled at its *centre*, (i + 0.5, j + 0.5).
  nerf-pytorch samples at the corner (i, j); we do not.
- ``c2w`` is camera-to-world, (..., 3, 4) or (..., 4, 4).
"""
from typing import Tuple

import numpy as np
import torch


def intrinsics_matrix(focal: float, W: float, H: float, *, fy: "float | None" = None,
                      cx: "float | None" = None, cy: "float | None" = None, dtype=np.float32) -> np.ndarray:
    """(3, 3) pinhole intrinsics [[fx, 0, cx], [0, fy, cy], [0, 0, 1]], the one builder of K.

    fx = ``focal``; by default fy = fx and the principal point is the image centre (W/2, H/2),
    as the Blender, LLFF and demo loaders need (Scene.K is float32). COLMAP cameras pass their
    own ``fy``, ``cx``, ``cy`` and float64 (their K feeds OpenCV undistortion and depth maths).

    Pixel coordinates are continuous: pixel (column i, row j) covers [i, i + 1) x [j, j + 1),
    so its centre is (i + 0.5, j + 0.5) and the principal point (W/2, H/2) is the centre of the
    image (for odd W or H, the centre of the middle pixel). ``camera_directions`` adds the
    0.5, so the rays go through pixel centres. (nerf-pytorch samples pixel corners instead.)
    """
    fy = focal if fy is None else fy
    cx = W / 2 if cx is None else cx
    cy = H / 2 if cy is None else cy
    return np.array([[focal, 0, cx], [0, fy, cy], [0, 0, 1]], dtype=dtype)


def scale_intrinsics(K: torch.Tensor, factor: float) -> torch.Tensor:
    """Intrinsics of the same camera at 1/factor resolution (pixel-centre consistent:
    cx, cy and focal all scale by 1/factor)."""
    K = K.clone()
    K[:2] /= factor
    return K


def pixel_grid(H: int, W: int, device=None) -> Tuple[torch.Tensor, torch.Tensor]:
    """Column and row indices ``i, j`` of every pixel, each (H, W), as float."""
    j, i = torch.meshgrid(torch.arange(H, device=device, dtype=torch.float32),
                          torch.arange(W, device=device, dtype=torch.float32), indexing="ij")
    return i, j


def camera_directions(i: torch.Tensor, j: torch.Tensor, K: torch.Tensor) -> torch.Tensor:
    """Camera-space ray directions through pixel centres.

    d = ((i + 0.5 - cx) / fx, -(j + 0.5 - cy) / fy, -1); i, j: (...) -> (..., 3).
    """
    fx, fy, cx, cy = K[..., 0, 0], K[..., 1, 1], K[..., 0, 2], K[..., 1, 2]
    x = (i + 0.5 - cx) / fx
    y = -(j + 0.5 - cy) / fy
    return torch.stack([x, y, -torch.ones_like(x)], dim=-1)


def rays_from_camera(dirs_cam: torch.Tensor, c2w: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
    """World-space rays: d = R @ d_cam, o = t. dirs_cam (..., 3), c2w (..., 3|4, 4)
    broadcastable -> origins (..., 3), directions (..., 3) (not normalised)."""
    R, t = c2w[..., :3, :3], c2w[..., :3, 3]
    rays_d = (R * dirs_cam[..., None, :]).sum(-1)
    return t.expand_as(rays_d), rays_d


def get_rays(H: int, W: int, K: torch.Tensor, c2w: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
    """All rays of one image: (H, W, 3) origins and directions."""
    i, j = pixel_grid(H, W, device=c2w.device)
    return rays_from_camera(camera_directions(i, j, K.to(c2w.device)), c2w[:3, :4])


def ndc_rays(H: int, W: int, focal_x: float, focal_y: float, near: float,
             rays_o: torch.Tensor, rays_d: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
    """Forward-facing rays in normalised device coordinates (NeRF paper, appendix C).

    The origin is first moved onto the plane z = -near, then
      o' = (-fx/(W/2) o_x/o_z, -fy/(H/2) o_y/o_z, 1 + 2 near/o_z)
      d' = (-fx/(W/2) (d_x/d_z - o_x/o_z), -fy/(H/2) (d_y/d_z - o_y/o_z), -2 near/o_z)
    so that t' in [0, 1] spans depths from the near plane to infinity.
    Shapes: (..., 3) -> (..., 3).
    """
    t = -(near + rays_o[..., 2]) / rays_d[..., 2]
    rays_o = rays_o + t[..., None] * rays_d
    ox, oy, oz = rays_o.unbind(-1)
    dx, dy, dz = rays_d.unbind(-1)
    ax, ay = -focal_x / (W / 2.0), -focal_y / (H / 2.0)
    o_ndc = torch.stack([ax * ox / oz, ay * oy / oz, 1.0 + 2.0 * near / oz], -1)
    d_ndc = torch.stack([ax * (dx / dz - ox / oz), ay * (dy / dz - oy / oz), -2.0 * near / oz], -1)
    return o_ndc, d_ndc


def ndc_to_world(pts_ndc: torch.Tensor, H: int, W: int, focal_x: float, focal_y: float,
                 near: float = 1.0) -> torch.Tensor:
    """The inverse of ``ndc_rays``' map on points: NDC (..., 3) -> world (..., 3).

    z = 2 near / (z' - 1), x = x' z / ax, y = y' z / ay with ax = -fx/(W/2), ay = -fy/(H/2).
    Every point of an NDC ray maps onto its world ray; z' -> 1 (t' -> 1) is infinitely
    far, and z' >= 1 gives non-finite or behind-the-camera points (callers filter them)."""
    x, y, z = pts_ndc.unbind(-1)
    ax, ay = -focal_x / (W / 2.0), -focal_y / (H / 2.0)
    wz = 2.0 * near / (z - 1.0)
    return torch.stack([x * wz / ax, y * wz / ay, wz], -1)
