"""Rays from a scene record: random training batches and whole-image bundles.

This is the one place that turns (image, pose, intrinsics) into rays; images stay on
the training device and rays are built on the fly (no precomputed ray buffer).
"""
from typing import Optional, Tuple

import torch

from datasets.scene import Scene
from rendering.rays import camera_directions, ndc_rays, pixel_grid, rays_from_camera
from rendering.renderer import RayBundle
from utils.errors import UserError


def make_bundle(origins: torch.Tensor, directions: torch.Tensor, near: float, far: float,
                ndc: bool, K: torch.Tensor, H: int, W: int) -> RayBundle:
    """World rays (N, 3) -> the bundle the renderer needs: unit world view directions, and for
    forward-facing scenes NDC rays with t in [0, 1] (near plane at 1)."""
    viewdirs = directions / directions.norm(dim=-1, keepdim=True)
    if ndc:
        origins, directions = ndc_rays(H, W, float(K[0, 0]), float(K[1, 1]), 1.0, origins, directions)
        near, far = 0.0, 1.0
    n = origins.shape[0]
    return RayBundle(origins, directions, viewdirs,
                     torch.full((n,), near, device=origins.device),
                     torch.full((n,), far, device=origins.device))


def onto_background(target: torch.Tensor, background: torch.Tensor, white_bkgd: bool) -> torch.Tensor:
    """Training targets recomposited onto per-ray background colours.

    target (n, 4): colour composited onto the base background (white with ``white_bkgd``,
    else black), then alpha; background (n, 3). Since c_base = c a + base (1 - a), the
    colour over b is c_base + (b - base) (1 - a) -> (n, 3)."""
    base = 1.0 if white_bkgd else 0.0
    return target[:, :3] + (background - base) * (1.0 - target[:, 3:4])


def require_alpha(scene: Scene) -> None:
    """Random backgrounds need the images' alpha: a one-line error for an RGB scene."""
    if scene.images.shape[-1] != 4:
        raise UserError(f"--random_bkgd needs images with an alpha channel (RGBA, as Blender's and the "
                        f"demo's); the {scene.name} scene's images are RGB")


class CameraViews:
    """A scene's images, poses and intrinsics on ``device``; makes the rays of any camera.

    ``keep_alpha`` (training on random backgrounds) also keeps the images' alpha
    (``alpha`` (N, H, W)); the scene must have RGBA images."""

    def __init__(self, scene: Scene, white_bkgd: bool, device: torch.device, keep_alpha: bool = False):
        self.scene = scene
        self.H, self.W = scene.H, scene.W
        self.images = torch.from_numpy(scene.rgb(white_bkgd)).float().to(device)  # (N, H, W, 3)
        self.poses = torch.from_numpy(scene.poses).float().to(device)           # (N, 4, 4)
        self.K = torch.from_numpy(scene.K).float().to(device)
        self.device = device
        self.alpha = None
        if keep_alpha:
            require_alpha(scene)
            self.alpha = torch.from_numpy(scene.images[..., 3]).float().to(device)

    def bundle(self, c2w: torch.Tensor, i: torch.Tensor, j: torch.Tensor, K=None, H=None, W=None) -> RayBundle:
        K = self.K if K is None else K
        o, d = rays_from_camera(camera_directions(i, j, K), c2w)
        return make_bundle(o, d, self.scene.near, self.scene.far, self.scene.ndc, K,
                           H or self.H, W or self.W)

    def image_rays(self, c2w: torch.Tensor, K: Optional[torch.Tensor] = None,
                   H: Optional[int] = None, W: Optional[int] = None) -> RayBundle:
        """All H*W rays of one camera (row-major), optionally with other intrinsics/size."""
        H, W = H or self.H, W or self.W
        i, j = pixel_grid(H, W, self.device)
        return self.bundle(c2w.to(self.device)[:3, :4], i.reshape(-1), j.reshape(-1), K, H, W)


class RayBatcher:
    """Random rays across all training images, drawn from a seeded generator.

    ``one_image`` (nerf-pytorch's ``--no_batching``) draws each batch from one random image."""

    def __init__(self, views: CameraViews, indices, generator: torch.Generator, one_image: bool = False):
        self.views, self.one_image = views, one_image
        self.indices = torch.as_tensor(indices, device=views.device, dtype=torch.long)
        self.generator = generator

    def sample(self, n_rays: int, crop_frac: float = 1.0, shard: slice = slice(None)
               ) -> Tuple[RayBundle, torch.Tensor]:
        """(bundle, target rgb (n, 3); rgb + alpha (n, 4) when the views keep alpha) of ``n_rays`` random pixels, or of their ``shard``
        (a data-parallel rank's slice: every rank draws the whole batch, so the union of the
        shards is exactly one process's batch). ``crop_frac < 1`` samples only the central
        crop (NeRF's precrop), which helps early training on object scenes."""
        H, W, dev, g = self.views.H, self.views.W, self.views.device, self.generator
        k = self.indices[torch.randint(len(self.indices), (1 if self.one_image else n_rays,), device=dev,
                                       generator=g)].expand(n_rays)
        ch, cw = (max(1, int(H * crop_frac)), max(1, int(W * crop_frac))) if crop_frac < 1 else (H, W)
        j = torch.randint(ch, (n_rays,), device=dev, generator=g) + (H - ch) // 2
        i = torch.randint(cw, (n_rays,), device=dev, generator=g) + (W - cw) // 2
        k, j, i = k[shard], j[shard], i[shard]
        target = self.views.images[k, j, i]
        if self.views.alpha is not None:  # (n, 4): for onto_background
            target = torch.cat([target, self.views.alpha[k, j, i, None]], -1)
        bundle = self.views.bundle(self.views.poses[k, :3, :4], i.float(), j.float())
        return bundle, target
