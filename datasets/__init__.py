"""Scene loaders, chosen by ``--dataset_type`` from one registry."""
from typing import Callable, Dict

from datasets.blender import load_blender
from datasets.colmap import load_colmap
from datasets.demo import load_demo
from datasets.llff import load_llff
from datasets.scene import Scene
from utils.errors import UserError

LOADERS: Dict[str, Callable[..., Scene]] = {
    "blender": load_blender,
    "colmap": load_colmap,
    "demo": load_demo,
    "llff": load_llff,
}


def load_scene(args) -> Scene:
    if args.dataset_type not in LOADERS:
        raise UserError(f"unknown --dataset_type '{args.dataset_type}'; expected one of {sorted(LOADERS)}")
    return LOADERS[args.dataset_type](args)
