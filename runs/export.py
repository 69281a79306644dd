"""Geometry out of a trained run: marching-cubes meshes, depth point clouds, mesh previews.

What export.py runs. The trained field is read through the renderer's own definitions:

- **density** is ``act(sigma_raw)`` (``--sigma_activation``, ``rendering.occupancy.field_density``)
  of the *fine* network when the run has one (it is the one the final image is composited
  from), else the coarse one. With an occupancy grid, density in cells the grid marks
  empty is 0, exactly as the renderer treats those samples, and they are not evaluated.
- **mesh**: the density is sampled on a grid spanning the scene box (``scene.bbox``,
  corners included) with ``resolution`` points along its longest side and (nearly) cubic
  voxels (``grid_axes``; demo box 2.5 x 2.5 x 1 at 256: 256 x 256 x 103), padded with a
  layer of zero density (so a surface that leaves the box is closed by a cap on the box
  face), and ``skimage.measure.marching_cubes`` extracts the iso-surface ``density =
  threshold``. Faces wind counter-clockwise seen from outside (normals point out of the
  dense region).
- **default threshold** ``ln 2 / delta`` with ``delta = (far - near) / N_samples``, the
  coarse sampling step: the density at which one coarse render step is half opaque
  (alpha = 1 - exp(-sigma delta) = 0.5). Below it a coarse sample mostly lets light
  through, above it it mostly hides what lies behind. It comes from the run's sampling
  and scene units, not from the mesh resolution, so a finer mesh of the same run has the
  same surface. Demo (32 coarse samples over 2..6): 5.55; the Blender configs with 64:
  11.09; ``lego_cpu.txt`` (one net, 128 samples): 22.18. Measured on 600-step demo runs (tests/test_export.py):
  trained without density noise, levels 3.5 to 5 gave the closest surface and the fine
  step's level (32 + 32 samples: 11.09) tore holes, because a briefly trained field's
  density rises over a few hundredths of a unit instead of jumping; trained with
  ``--raw_noise_std 1`` (sharper, opaque surfaces) every level from 3 to 11 gave the same
  surface (mean vertex error 0.047 to 0.048). ``--threshold`` overrides it.
- **vertex colours** are ``sigmoid(rgb_raw)`` of the same network at the vertex, seen from
  outside along the surface normal: view direction = -normal (a camera looking straight at
  the surface). For view-dependent materials this is the head-on colour.
- **point cloud**: each view of a split is rendered (``runs.evaluation.render_image``);
  where the accumulated opacity ``acc >= min_acc`` the expected termination point
  ``o + (depth / acc) d`` is kept (for NDC scenes mapped back to world space), coloured by
  the rendered rgb with the background composite removed: ``(rgb - (1 - acc)) / acc`` on
  white, ``rgb / acc`` on black.

Files are written through trimesh (PLY, OBJ or GLB by the extension; point clouds as PLY)
to a temp file that is renamed, as every output of this project.
"""
import math
import os
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch

from datasets.batching import CameraViews
from rendering.occupancy import field_density
from rendering.rays import ndc_to_world, scale_intrinsics
from runs.evaluation import render_image
from utils.errors import UserError
from utils.io import atomic_path
from utils.runtime import amp_dtype
from utils.visual import hstack

MESH_FORMATS = {".ply": "ply", ".obj": "obj", ".glb": "glb"}
POINTCLOUD_FORMATS = {".ply": "ply"}
DENSITY_CHUNK = 1 << 16  # points per density evaluation (the field splits further by --netchunk)


# ---------------------------------------------------------------- command-line helpers
def output_format(path: str, formats: Dict[str, str], flag: str) -> str:
    """trimesh's file type for ``path`` from its extension; anything else is a UserError."""
    ext = os.path.splitext(path)[1].lower()
    if ext not in formats:
        raise UserError(f"{flag} '{path}': unknown extension '{ext or '(none)'}'; "
                        f"expected {', '.join(sorted(formats))}")
    return formats[ext]


def default_threshold(near: float, far: float, n_samples: int) -> float:
    """ln 2 / delta, delta = (far - near) / n_samples (the coarse step, N_samples): the
    density at which one coarse render step is half opaque (module doc)."""
    delta = (float(far) - float(near)) / max(1, int(n_samples))
    return math.log(2.0) / delta


def mesh_network(trained):
    """The network the final renders come from: fine when present, else coarse."""
    return trained.fine if trained.fine is not None else trained.coarse


def extent_text(points: np.ndarray) -> str:
    lo, hi = points.min(0), points.max(0)
    fmt = lambda v: "(" + ", ".join(f"{x:.3f}" for x in v) + ")"
    return f"{fmt(lo)} to {fmt(hi)}, size {fmt(hi - lo)}"


# ---------------------------------------------------------------- density and marching cubes
def grid_axes(bbox, resolution: int) -> Tuple[List[np.ndarray], np.ndarray]:
    """The sample positions per axis over ``bbox`` (corners included) and their spacing (3,):
    ``resolution`` samples along the box's longest side, and on the others as many as keep
    the voxels (nearly) cubic, at least 2."""
    if resolution < 2:
        raise UserError(f"--resolution must be >= 2, got {resolution}")
    bbox = np.asarray(bbox, np.float64).reshape(2, 3)
    size = bbox[1] - bbox[0]
    step = size.max() / (resolution - 1)
    counts = [max(2, int(round(side / step)) + 1) for side in size]
    axes = [np.linspace(bbox[0, k], bbox[1, k], counts[k]) for k in range(3)]
    return axes, size / (np.array(counts) - 1)


@torch.no_grad()
def sample_density(density_fn: Callable[[torch.Tensor], torch.Tensor], bbox, resolution: int, device,
                   occupancy=None, chunk: int = DENSITY_CHUNK, progress=None) -> Tuple[np.ndarray, int]:
    """Density at the points of ``grid_axes`` -> ((nx, ny, nz) float32 indexed [x, y, z],
    points evaluated). With ``occupancy`` (a ``SpaceSkipper``) points in empty cells are 0
    and not evaluated. Non-finite densities: NaN -> 0, +inf -> float32 max."""
    axes, _ = grid_axes(bbox, resolution)
    nx, ny, nz = (len(a) for a in axes)
    ax = [torch.as_tensor(a, dtype=torch.float32, device=device) for a in axes]
    yz = torch.stack(torch.meshgrid(ax[1], ax[2], indexing="ij"), -1).reshape(-1, 2)  # (ny * nz, 2)
    volume = np.zeros((nx, ny, nz), np.float32)
    planes = max(1, chunk // (ny * nz))
    evaluated = 0
    starts = range(0, nx, planes)
    for i0 in (progress(starts) if progress else starts):
        xs = ax[0][i0:i0 + planes]
        pts = torch.cat([xs.repeat_interleave(ny * nz)[:, None], yz.repeat(len(xs), 1)], -1)
        sigma = torch.zeros(pts.shape[0], device=device)
        keep = occupancy.query(pts) if occupancy is not None else None
        if keep is None:
            sigma = density_fn(pts).float()
            evaluated += pts.shape[0]
        elif bool(keep.any()):
            sigma[keep] = density_fn(pts[keep]).float()
            evaluated += int(keep.sum())
        sigma = torch.nan_to_num(sigma, nan=0.0, posinf=torch.finfo(torch.float32).max)
        volume[i0:i0 + len(xs)] = sigma.reshape(len(xs), ny, nz).cpu().numpy()
    return volume, evaluated


def marching_cubes(volume: np.ndarray, bbox, threshold: float) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The iso-surface ``volume = threshold`` of a density grid sampled as ``grid_axes`` ->
    (vertices (V, 3) world, faces (F, 3) wound outwards, outward unit normals (V, 3)).

    The grid is padded with zero density, so a surface that leaves the box is closed on the
    box face (vertices there are clamped onto the face)."""
    from skimage.measure import marching_cubes as skimage_marching_cubes
    if not np.isfinite(threshold) or threshold <= 0:
        raise UserError(f"--threshold must be a positive density, got {threshold}")
    peak = float(volume.max()) if volume.size else 0.0
    if peak <= threshold:
        raise UserError(f"no density above the threshold {threshold:.4g} in the scene box (the largest is "
                        f"{peak:.4g}); pass a lower --threshold")
    bbox = np.asarray(bbox, np.float64).reshape(2, 3)
    spacing = (bbox[1] - bbox[0]) / (np.array(volume.shape) - 1)
    padded = np.pad(volume, 1, mode="constant", constant_values=0.0)
    verts, faces, normals, _ = skimage_marching_cubes(padded, level=float(threshold), spacing=tuple(spacing),
                                                      allow_degenerate=False)
    # skimage: normals point to decreasing values (out of the dense region); its faces wind
    # the other way, so reverse them to make the winding agree with the normals.
    verts = np.clip(bbox[0] + verts - spacing, bbox[0], bbox[1])
    return verts.astype(np.float32), faces[:, ::-1].astype(np.int64), normals.astype(np.float32)


@torch.no_grad()
def surface_colors(field, verts: np.ndarray, normals: np.ndarray, device, chunk: int = DENSITY_CHUNK) -> np.ndarray:
    """rgb in [0, 1] (V, 3) of ``field`` at vertices, viewed along -normal (looking at the
    surface from outside). A zero normal views along -z."""
    colors = []
    for s in range(0, len(verts), chunk):
        pts = torch.tensor(np.asarray(verts[s:s + chunk]), dtype=torch.float32, device=device)
        n = torch.tensor(np.asarray(normals[s:s + chunk]), dtype=torch.float32, device=device)
        dirs = -torch.nn.functional.normalize(n, dim=-1)
        dirs[dirs.norm(dim=-1) < 0.5] = dirs.new_tensor([0.0, 0.0, -1.0])
        colors.append(torch.sigmoid(field(pts, dirs)[0].float()).cpu().numpy())
    return np.concatenate(colors) if colors else np.zeros((0, 3), np.float32)


def colors_to_rgba8(colors: np.ndarray) -> np.ndarray:
    rgb = np.clip(np.round(np.asarray(colors, np.float64) * 255.0), 0, 255).astype(np.uint8)
    return np.concatenate([rgb, np.full((len(rgb), 1), 255, np.uint8)], 1)


def extract_mesh(field, sigma_activation: str, bbox, resolution: int, threshold: float, device,
                 occupancy=None, progress=None):
    """(a vertex-coloured ``trimesh.Trimesh`` of the surface ``density = threshold`` of
    ``field`` in ``bbox``, {'grid': (nx, ny, nz), 'spacing': (3,), 'evaluated': points
    whose density was computed})."""
    import trimesh
    volume, evaluated = sample_density(field_density(field, sigma_activation), bbox, resolution, device,
                                       occupancy, progress=progress)
    verts, faces, normals = marching_cubes(volume, bbox, threshold)
    colors = surface_colors(field, verts, normals, device)
    mesh = trimesh.Trimesh(vertices=verts, faces=faces, vertex_normals=normals,
                           vertex_colors=colors_to_rgba8(colors), process=False)
    return mesh, {"grid": volume.shape, "spacing": grid_axes(bbox, resolution)[1], "evaluated": evaluated}


def write_geometry(geometry, path: str, file_type: str) -> None:
    """A trimesh mesh or point cloud to ``path`` (written to a temp file, then renamed)."""
    with atomic_path(path) as tmp:
        geometry.export(tmp, file_type=file_type)


# ---------------------------------------------------------------- point clouds
@torch.no_grad()
def depth_points(views: CameraViews, indices: Sequence[int], coarse, fine, opts, chunk: int,
                 min_acc: float, amp=None, progress=None) -> Tuple[np.ndarray, np.ndarray]:
    """(points (N, 3) world, rgb (N, 3) in [0, 1]): per view, the expected ray termination
    ``o + (depth / acc) d`` where ``acc >= min_acc``, with the background composite taken
    out of the rendered colour (module doc)."""
    points, colors = [], []
    for idx in (progress(indices) if progress else indices):
        c2w = views.poses[int(idx)]
        out = render_image(views, c2w, coarse, fine, opts, chunk, amp=amp)
        acc = torch.from_numpy(out["acc"].reshape(-1)).to(views.device)
        depth = torch.from_numpy(out["depth"].reshape(-1)).to(views.device)
        rgb = torch.from_numpy(out["rgb"].reshape(-1, 3)).to(views.device)
        bundle = views.image_rays(c2w)
        keep = (acc >= min_acc) & torch.isfinite(depth)
        t = depth[keep] / acc[keep]
        pts = bundle.origins[keep] + t[:, None] * bundle.directions[keep]
        finite = torch.ones(pts.shape[0], dtype=torch.bool, device=pts.device)
        if views.scene.ndc:  # NDC z' in [-1, 1) is world depth [near, inf); 1 and beyond: at infinity
            finite = pts[:, 2] < 1.0 - 1e-6
            K = views.K
            pts = ndc_to_world(pts, views.H, views.W, float(K[0, 0]), float(K[1, 1]), 1.0)
        a = acc[keep][:, None]
        surface = (rgb[keep] - (1.0 - a)) / a if opts.white_bkgd else rgb[keep] / a
        finite &= torch.isfinite(pts).all(-1)
        points.append(pts[finite].cpu().numpy())
        colors.append(surface[finite].clamp(0, 1).cpu().numpy())
    if not points:
        return np.zeros((0, 3), np.float32), np.zeros((0, 3), np.float32)
    return np.concatenate(points).astype(np.float32), np.concatenate(colors).astype(np.float32)


def point_cloud(points: np.ndarray, colors: np.ndarray):
    import trimesh
    return trimesh.PointCloud(vertices=points, colors=colors_to_rgba8(colors))


# ---------------------------------------------------------------- mesh preview (software raster)
def render_mesh(vertices: np.ndarray, faces: np.ndarray, c2w: np.ndarray, K: np.ndarray, H: int, W: int,
                face_colors: Optional[np.ndarray] = None, shade: bool = True, background: float = 1.0,
                supersample: int = 2, vertex_normals: Optional[np.ndarray] = None) -> np.ndarray:
    """A (H, W, 3) float image of a triangle mesh seen by an OpenGL camera ``c2w`` (4, 4)
    with intrinsics ``K`` (the renderer's pixel-centre convention). A painter's algorithm:
    faces facing away are culled, the others filled far to near with OpenCV, at
    ``supersample`` x the size and then shrunk (INTER_AREA). Colour: ``face_colors`` (F, 3)
    or grey, times a headlight Lambert term ``0.3 + 0.7 |n . v|`` when ``shade``, n being
    the face's normal or, with ``vertex_normals``, the mean of its vertices' (smoother)."""
    import cv2
    s = max(1, int(supersample))
    c2w = np.asarray(c2w, np.float64)
    R, t = c2w[:3, :3], c2w[:3, 3]
    tri = np.asarray(vertices, np.float64)[np.asarray(faces)]            # (F, 3, 3) world
    cam = (tri - t) @ R                                                  # camera coordinates
    depth = -cam[..., 2]                                                 # (F, 3), > 0 in front
    normal = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    normal /= np.maximum(np.linalg.norm(normal, axis=-1, keepdims=True), 1e-12)
    to_eye = t - tri.mean(1)
    to_eye /= np.maximum(np.linalg.norm(to_eye, axis=-1, keepdims=True), 1e-12)
    facing = (normal * to_eye).sum(-1)
    visible = (depth > 1e-6).all(-1) & (facing > 0)
    fx, fy, cx, cy = K[0, 0], K[1, 1], K[0, 2], K[1, 2]
    with np.errstate(divide="ignore", invalid="ignore"):
        u = (cx + fx * cam[..., 0] / depth) * s - 0.5   # continuous pixel coordinate -> OpenCV's
        v = (cy - fy * cam[..., 1] / depth) * s - 0.5
    colors = np.full((len(tri), 3), 0.8) if face_colors is None else np.asarray(face_colors, np.float64)
    if shade:
        n_shade = normal
        if vertex_normals is not None:
            n_shade = np.asarray(vertex_normals, np.float64)[np.asarray(faces)].mean(1)
            n_shade /= np.maximum(np.linalg.norm(n_shade, axis=-1, keepdims=True), 1e-12)
        colors = colors * (0.3 + 0.7 * np.abs((n_shade * to_eye).sum(-1)))[:, None]
    # faces far outside the image are dropped (OpenCV clips the rest; this keeps the fixed-point
    # coordinates inside int32)
    margin = 4 * max(H, W) * s
    visible &= (np.abs(np.nan_to_num(u, nan=np.inf)) < margin).all(-1) & \
        (np.abs(np.nan_to_num(v, nan=np.inf)) < margin).all(-1)
    image = np.full((H * s, W * s, 3), background, np.float32)
    order = np.nonzero(visible)[0]
    order = order[np.argsort(-depth[order].mean(1), kind="stable")]       # far to near
    shift = 4                                                            # 1/16-pixel vertex precision
    uv = np.where(visible[:, None, None], np.stack([u, v], -1), 0.0)
    pix = np.round(uv * (1 << shift)).astype(np.int32)
    for f in order:
        cv2.fillConvexPoly(image, pix[f], colors[f].tolist(), lineType=cv2.LINE_8, shift=shift)
    if s > 1:
        image = cv2.resize(image, (W, H), interpolation=cv2.INTER_AREA)
    return np.clip(image, 0.0, 1.0)


def mesh_preview(mesh, c2w: np.ndarray, K: np.ndarray, H: int, W: int) -> List[np.ndarray]:
    """[the mesh in its vertex colours, the mesh shaded grey] from one camera."""
    faces = np.asarray(mesh.faces)
    vc = np.asarray(mesh.visual.vertex_colors)[:, :3].astype(np.float64) / 255.0
    face_rgb = vc[faces].mean(1)
    return [render_mesh(mesh.vertices, faces, c2w, K, H, W, face_rgb, shade=False),
            render_mesh(mesh.vertices, faces, c2w, K, H, W, None, shade=True, vertex_normals=mesh.vertex_normals)]


def preview_image(views: CameraViews, trained, args, mesh, c2w: np.ndarray, H: int) -> np.ndarray:
    """[NeRF render | mesh in its vertex colours | mesh shaded] from camera ``c2w``, each
    panel H pixels high with the views' intrinsics scaled to that size."""
    W = max(1, round(H * views.W / views.H))
    K = scale_intrinsics(views.K, views.H / H)
    c2w_t = torch.as_tensor(np.asarray(c2w, np.float32), device=views.device)
    out = render_image(views, c2w_t, trained.coarse, trained.fine, trained.render_options(args), args.chunk,
                       K, H, W, amp_dtype(views.device, args.amp))
    return hstack([out["rgb"]] + mesh_preview(mesh, np.asarray(c2w, np.float64), K.cpu().numpy(), H, W))
