"""The scenes of the activation study and the in-process training they share
(bench/recipe_search.py, bench/activation_study.py).

A *scene protocol* is the scene-level part of a run: data, image size, network size,
samples, batch, precrop, grid. It never sets an activation-level option (learning rate,
omega0s, init, encoding: those come from each activation's recipe,
models/activations.py), so every setting trains on the same protocol with its own recipe.

- ``demo``: the built-in analytic scene at 64x64 (configs/demo.txt without its
  activation and lrate), 4 val / 8 test views.
- ``lego100``: ../shared/data/nerf_synthetic/lego at 100x100 (``--downscale 4``), test
  views 0, 25, ..., 175 (``--testskip 25``; val views likewise 0, 25, ...), a 64^3
  occupancy grid as configs/blender/lego_cpu.txt (its warm-up, 16 updates of 16 steps,
  skips nothing for the first 256 steps), 100 precrop steps (500 under ``--full``).
- ``fern``: ../shared/data/nerf_llff_data/fern at ``images_8`` (factor 8) shrunk to 168x126
  (``--downscale 3``: a 504x378 view took ~19 s to render on the 2 cores, too slow for the
  study's 9 renders per run; full size under ``--full``), held-out views 0/8/16, no grid
  (NDC rays), ``raw_noise_std 1`` as configs/llff/fern.txt. LLFF has no val split (its val
  views are the test views); the study renders and scores fern's test views only.

``small`` nets: 4x128 coarse + fine, 32+32 samples. ``full``: the paper's 8x256, 64+128
(64+64 on fern, as configs/llff/fern.txt).
"""
import os
import time
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import torch

from runs.evaluation import evaluate_views
from runs.training import Trainer, timed_step
from utils.config import build_parser, cli_flags, parse_args

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA = os.path.join(os.path.dirname(ROOT), "shared", "data")

SMALL_NET = {"netdepth": 4, "netwidth": 128, "netdepth_fine": 4, "netwidth_fine": 128,
             "N_samples": 32, "N_importance": 32}
FULL_NET = {"netdepth": 8, "netwidth": 256, "netdepth_fine": 8, "netwidth_fine": 256,
            "N_samples": 64, "N_importance": 128}


@dataclass(frozen=True)
class SceneProtocol:
    name: str
    options: Dict[str, object]            # train.py options (scene level only)
    datadir: Optional[str] = None         # must exist, else the scene is skipped with a reason
    full_options: Dict[str, object] = field(default_factory=dict)  # overrides under --full

    def missing(self) -> Optional[str]:
        """Why the scene cannot run here (None: it can)."""
        if self.datadir and not os.path.isdir(self.datadir):
            return f"data not found at {self.datadir}"
        return None

    def argv(self, full: bool = False) -> List[str]:
        opts = {**self.options, **SMALL_NET}
        if full:
            opts.update(FULL_NET)
            opts.update(self.full_options)
        return cli_flags(opts)


SCENES: Dict[str, SceneProtocol] = {
    "demo": SceneProtocol("demo", {
        "dataset_type": "demo", "demo_res": 64, "white_bkgd": True, "use_viewdirs": True,
        "N_rand": 512, "precrop_iters": 100}),
    "lego100": SceneProtocol("lego100", {
        "dataset_type": "blender", "datadir": os.path.join(DATA, "nerf_synthetic", "lego"), "downscale": 4,
        "white_bkgd": True, "use_viewdirs": True, "testskip": 25, "N_rand": 1024, "precrop_iters": 100,
        "precrop_frac": 0.5, "occ_grid": True, "occ_res": 64, "occ_update_every": 16, "occ_warmup": 16},
        datadir=os.path.join(DATA, "nerf_synthetic", "lego"),
        full_options={"downscale": 2, "occ_res": 128, "precrop_iters": 500}),
    "fern": SceneProtocol("fern", {
        "dataset_type": "llff", "datadir": os.path.join(DATA, "nerf_llff_data", "fern"), "factor": 8,
        "downscale": 3, "llffhold": 8, "use_viewdirs": True, "raw_noise_std": 1.0, "N_rand": 1024, "occ_grid": False},
        datadir=os.path.join(DATA, "nerf_llff_data", "fern"),
        full_options={"N_importance": 64, "downscale": 1}),
}


def resolve_args(scene: SceneProtocol, setting: Sequence[str], extra: Sequence[str] = (), full: bool = False):
    """train.py's config for ``scene`` + a setting's flags (``--activation X`` or explicit
    options) + ``extra`` (seed, steps, names); parsed, so recipes apply as in train.py."""
    return parse_args(build_parser(), scene.argv(full) + list(setting) + list(extra))


_SCENE_CACHE: Dict[Tuple, object] = {}


def load_scene_cached(args):
    """datasets.load_scene, once per (dataset, datadir, size, split) in this process."""
    from datasets import load_scene
    key = (args.dataset_type, args.datadir, args.demo_res, args.downscale, args.half_res, args.factor,
           args.testskip, args.llffhold, args.white_bkgd, args.n_frames, args.spherify)
    if key not in _SCENE_CACHE:
        _SCENE_CACHE[key] = load_scene(args)
    return _SCENE_CACHE[key]


def mean_psnr(trainer: Trainer, views, indices) -> Optional[float]:
    """Mean PSNR of the 8-bit renders of ``indices`` (as eval.py scores them); None if empty."""
    if len(indices) == 0:
        return None
    return evaluate_views(views, indices, trainer.coarse, trainer.fine, trainer.render_options(train=False),
                          trainer.args.chunk, amp=trainer.amp, with_ssim=False)["psnr"]


def weights_finite(trainer: Trainer) -> bool:
    return all(torch.isfinite(p).all() for p in trainer.parameters)


def train_steps(trainer: Trainer, batcher, steps: int, time_marks: Sequence[float] = (),
                on_time_mark: Optional[Callable[[float], None]] = None,
                step_marks: Sequence[int] = (), on_step_mark: Optional[Callable[[int], None]] = None,
                progress_every: int = 0, label: str = "") -> bool:
    """``runs.training.timed_step`` until ``trainer.step == steps``. Calls ``on_time_mark(t)``
    (untimed) the first time training time passes each mark ``t`` in seconds, and
    ``on_step_mark(s)`` at steps ``s``. Stops early (returns False) when the loss or the
    weights turn non-finite."""
    opts = trainer.render_options(train=True)
    pending = sorted(time_marks)
    start = time.perf_counter()
    while trainer.step < steps:
        result = timed_step(trainer, batcher, opts)
        while pending and trainer.train_seconds >= pending[0]:
            if on_time_mark is not None:
                on_time_mark(pending[0])
            pending.pop(0)
        if trainer.step in step_marks and on_step_mark is not None:
            on_step_mark(trainer.step)
        if progress_every and trainer.step % progress_every == 0:
            loss = result.loss.item()
            print(f"  {label} step {trainer.step}/{steps} loss {loss:.4f} "
                  f"({trainer.train_seconds:.0f} s training, {time.perf_counter() - start:.0f} s wall)", flush=True)
            if not torch.isfinite(torch.tensor(loss)):
                return False
    return bool(torch.isfinite(result.loss).item()) if steps > 0 else True
