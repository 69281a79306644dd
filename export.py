"""Export a trained run's geometry: a marching-cubes mesh and/or a depth point cloud.

    python export.py --run logs/<expname> --mesh mesh.ply [--resolution 256] [--threshold T]
    python export.py --run logs/<expname> --pointcloud points.ply [--split test] [--min_acc 0.9]
    python export.py --run logs/<expname> --mesh mesh.glb --preview mesh.png

The mesh is the iso-surface density = T of the fine network (coarse without one), on a
grid over the scene box with --resolution points along its longest side, vertex-coloured
by the radiance field seen head-on; .ply, .obj or .glb by the extension. The default
T = ln 2 / ((far - near) / N_samples) is the density at which one coarse render step is
half opaque. The point cloud is each view's expected depth where the accumulated opacity
is >= --min_acc, coloured by the render (.ply). --preview renders [NeRF | mesh colours |
mesh shaded] from the first camera-path pose into a PNG. Both print counts and the
extent of the output. See runs/export.py for the details.
"""
import argparse

import numpy as np
from tqdm import tqdm

from runs import layout
from runs.export import (MESH_FORMATS, POINTCLOUD_FORMATS, default_threshold, depth_points, extent_text,
                         extract_mesh, mesh_network, output_format, point_cloud, preview_image,
                         write_geometry)
from runs.training import open_trained_run
from utils.config import parse_script_args
from utils.errors import UserError, run_cli
from utils.io import write_image
from utils.runtime import amp_dtype


def export_only_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(add_help=False, allow_abbrev=False, description="export.py options")
    p.add_argument("--run", type=str, default=None, help="run directory <basedir>/<expname>")
    p.add_argument("--ckpt", type=str, default=None, help="checkpoint (default: the run's latest)")
    p.add_argument("--mesh", type=str, default=None, help="mesh file to write: .ply, .obj or .glb")
    p.add_argument("--resolution", type=int, default=256, help="density samples along the scene box's longest side (cubic voxels)")
    p.add_argument("--threshold", type=float, default=None,
                   help="iso-density of the surface (default ln 2 / coarse step: one coarse step half opaque)")
    p.add_argument("--pointcloud", type=str, default=None, help="point cloud to write: .ply")
    p.add_argument("--split", type=str, default="test", choices=["test", "val", "train"],
                   help="views whose depths make the point cloud")
    p.add_argument("--min_acc", type=float, default=0.9, help="keep pixels whose accumulated opacity is >= this")
    p.add_argument("--preview", type=str, default=None, help="PNG: NeRF | mesh colours | mesh shaded")
    p.add_argument("--preview_size", type=int, default=256, help="preview panel height in pixels")
    return p


def check_outputs(ex: argparse.Namespace) -> None:
    """Every output flag is valid before anything is loaded."""
    if ex.mesh is None and ex.pointcloud is None:
        raise UserError("nothing to export: give --mesh FILE and/or --pointcloud FILE")
    if ex.mesh is not None:
        output_format(ex.mesh, MESH_FORMATS, "--mesh")
    if ex.pointcloud is not None:
        output_format(ex.pointcloud, POINTCLOUD_FORMATS, "--pointcloud")
    if ex.preview is not None:
        if ex.mesh is None:
            raise UserError("--preview renders the exported mesh: give --mesh too")
        output_format(ex.preview, {".png": "png"}, "--preview")
    if ex.resolution < 2 or ex.resolution > 1024:  # 1024: a 1024^3 float32 grid is 4 GB
        raise UserError(f"--resolution must be in [2, 1024], got {ex.resolution}")
    if ex.threshold is not None and not (np.isfinite(ex.threshold) and ex.threshold > 0):
        raise UserError(f"--threshold must be a positive density, got {ex.threshold}")
    if not 0.0 < ex.min_acc <= 1.0:
        raise UserError(f"--min_acc must be in (0, 1], got {ex.min_acc}")
    if ex.preview_size < 8:
        raise UserError(f"--preview_size must be >= 8, got {ex.preview_size}")


def export_mesh(ex, args, scene, views, trained, device) -> None:
    threshold = ex.threshold if ex.threshold is not None else default_threshold(scene.near, scene.far, args.N_samples)
    which = "fine" if trained.fine is not None else "coarse"
    print(f"mesh: {which} network, threshold {threshold:.4g}" + (" (default)" if ex.threshold is None else "")
          + f", box {extent_text(np.asarray(scene.bbox))}")
    bar = lambda xs: tqdm(xs, desc="density", dynamic_ncols=True)
    mesh, info = extract_mesh(mesh_network(trained), args.sigma_activation, scene.bbox, ex.resolution,
                              threshold, device, trained.grid, progress=bar)
    write_geometry(mesh, ex.mesh, output_format(ex.mesh, MESH_FORMATS, "--mesh"))
    grid, total = "x".join(str(n) for n in info["grid"]), int(np.prod(info["grid"]))
    print(f"density grid {grid}, voxel {float(info['spacing'].max()):.4g}; {info['evaluated']} of {total} points "
          f"evaluated" + (" (the rest in cells the occupancy grid marks empty)" if trained.grid is not None else ""))
    print(f"wrote {ex.mesh}: {len(mesh.vertices)} vertices, {len(mesh.faces)} faces")
    print(f"mesh extent: {extent_text(np.asarray(mesh.vertices))}")
    if ex.preview is not None:
        write_preview(ex, args, scene, views, trained, mesh)


def write_preview(ex, args, scene, views, trained, mesh) -> None:
    c2w = np.asarray(scene.render_poses[0], np.float32)
    image = preview_image(views, trained, args, mesh, c2w, ex.preview_size)
    write_image(ex.preview, image)
    print(f"wrote {ex.preview}: NeRF | mesh colours | mesh shaded, {image.shape[1] // 3}x{image.shape[0]} each")


def export_pointcloud(ex, args, scene, views, trained) -> None:
    indices = scene.splits[ex.split]
    if len(indices) == 0:
        raise UserError(f"the {ex.split} split of '{args.datadir or args.dataset_type}' is empty")
    bar = lambda xs: tqdm(xs, desc=f"{ex.split} views", dynamic_ncols=True)
    points, colors = depth_points(views, indices, trained.coarse, trained.fine, trained.render_options(args),
                                  args.chunk, ex.min_acc, amp_dtype(views.device, args.amp), bar)
    if len(points) == 0:
        raise UserError(f"no pixel of the {len(indices)} {ex.split} views reaches opacity --min_acc {ex.min_acc}")
    write_geometry(point_cloud(points, colors), ex.pointcloud, "ply")
    total = len(indices) * scene.H * scene.W
    print(f"wrote {ex.pointcloud}: {len(points)} points from {len(indices)} {ex.split} views "
          f"({len(points) / total:.1%} of {total} pixels had opacity >= {ex.min_acc})")
    print(f"point cloud extent: {extent_text(points)}")


def complete_config(ex: argparse.Namespace, rest):
    """Check the output flags first (nothing is loaded for a bad one), then read the run."""
    check_outputs(ex)
    return layout.run_config_args(ex.run, rest)


def main(argv=None) -> int:
    ex, args = parse_script_args(export_only_parser(), argv, __doc__, complete_config)
    run = open_trained_run(ex.run, ex.ckpt, args)
    scene, views, trained, device, ckpt_path = run.scene, run.views, run.trained, run.device, run.ckpt_path
    if ex.mesh is not None and scene.bbox is None:
        raise UserError(f"--mesh needs a bounded scene with a box (blender, demo); this {args.dataset_type} "
                        f"scene has none (forward-facing NDC scenes are unbounded): use --pointcloud")
    print(f"{args.expname}: step {trained.step}, checkpoint {ckpt_path}")
    if ex.mesh is not None:
        export_mesh(ex, args, scene, views, trained, device)
    if ex.pointcloud is not None:
        export_pointcloud(ex, args, scene, views, trained)
    return 0


if __name__ == "__main__":
    run_cli(main)
