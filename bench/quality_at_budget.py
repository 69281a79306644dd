"""The lego100-cpu protocol: test PSNR after a fixed wall-clock training budget.

    python -m bench.quality_at_budget --budget 600 --threads 2 --json q.json \\
        [--config FILE] [any train.py option, e.g. --activation sin --netdepth 4]

- scene: the config's (default ``configs/blender/lego_cpu.txt``: lego from
  ../shared/data/nerf_synthetic/lego), always loaded with ``--downscale 4 --white_bkgd
  --testskip 25``, i.e. 100x100 images and the test views 0, 25, ..., 175 (8 views).
  These come before the user's arguments, so an explicit command-line flag still wins.
- training: ``runs.training.timed_step`` (precrop, gradient step, grid upkeep), as
  train.py runs it, from a fresh model, until ``--budget`` seconds of training time have passed;
  --N_iters is ignored. Training time is measured around each step (GPU synchronised),
  so evaluation, data loading and setup are outside the budget.
- evaluation: every ``--eval_every`` seconds of training time and at the end, the loaded
  test views are rendered as eval.py renders them (8-bit quantised, grid on if
  --occ_grid) and their mean PSNR is recorded.
- output: the PSNR-vs-time curve and the final test PSNR; ``--json PATH`` writes
  {"final_psnr", "curve": [[train_seconds, psnr], ...], "steps", "config", ...}.
"""
import argparse
import os
import time

from bench.common import resolve_args, run_facts, set_threads, write_json
from datasets import load_scene
from runs.evaluation import evaluate_views
from runs.training import Trainer, setup_training, timed_step
from utils.checkpoint import save_checkpoint
from utils.errors import UserError, run_cli
from utils.runtime import configure_backend, select_device

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_CONFIG = os.path.join(ROOT, "configs", "blender", "lego_cpu.txt")
PROTOCOL = ("--downscale", "4", "--white_bkgd", "--testskip", "25")


def bench_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(add_help=False, allow_abbrev=False, description="bench/quality_at_budget.py options")
    p.add_argument("--budget", type=float, default=600.0, help="training seconds")
    p.add_argument("--eval_every", type=float, default=60.0, help="training seconds between test evaluations")
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    p.add_argument("--json", type=str, default=None, help="write the results here")
    p.add_argument("--save_ckpt", type=str, default=None, help="save the final training state here")
    return p


def mean_test_psnr(trainer: Trainer, views, indices) -> float:
    """Mean PSNR of the 8-bit renders of ``indices`` (eval-time render options)."""
    return evaluate_views(views, indices, trainer.coarse, trainer.fine, trainer.render_options(train=False),
                          trainer.args.chunk, amp=trainer.amp, with_ssim=False)["psnr"]


def train_with_budget(trainer: Trainer, batcher, evaluate, budget: float, eval_every: float):
    """Train until ``budget`` training seconds; evaluate (untimed) every ``eval_every``."""
    opts = trainer.render_options(train=True)
    curve, next_eval = [], eval_every
    while trainer.train_seconds < budget:
        timed_step(trainer, batcher, opts)
        if next_eval <= trainer.train_seconds < budget:
            curve.append([trainer.train_seconds, evaluate()])
            print(f"[{trainer.train_seconds:7.1f} s, step {trainer.step}] test PSNR {curve[-1][1]:.2f}", flush=True)
            while next_eval <= trainer.train_seconds:
                next_eval += eval_every
    curve.append([trainer.train_seconds, evaluate()])
    return curve


def main(argv=None) -> int:
    bench, args = resolve_args(bench_parser(), argv, __doc__, PROTOCOL, DEFAULT_CONFIG)
    if bench.budget <= 0 or bench.eval_every <= 0:
        raise UserError("--budget and --eval_every must be > 0")
    set_threads(bench.threads)
    device = select_device(args.device)
    configure_backend(device)
    scene = load_scene(args)
    test = scene.splits["test"]
    if len(test) == 0 or len(scene.splits["train"]) == 0:
        raise UserError(f"{args.datadir or args.dataset_type}: needs train and test views")
    trainer, views, batcher = setup_training(args, scene, device)
    print(f"{scene.name}: {len(scene.splits['train'])} train / {len(test)} test views {scene.H}x{scene.W}, "
          f"budget {bench.budget:g} s, {args.activation}, device {device}", flush=True)
    wall = time.perf_counter()
    curve = train_with_budget(trainer, batcher, lambda: mean_test_psnr(trainer, views, test), bench.budget,
                              bench.eval_every)
    wall = time.perf_counter() - wall
    print("train_s    psnr")
    for seconds, value in curve:
        print(f"{seconds:7.1f}  {value:6.2f}")
    print(f"final test PSNR {curve[-1][1]:.2f} dB after {trainer.step} steps ({trainer.train_seconds:.1f} s training)")
    result = {"final_psnr": curve[-1][1], "curve": curve, "steps": trainer.step, "train_seconds": trainer.train_seconds,
              "eval_seconds": wall - trainer.train_seconds, "budget": bench.budget, "n_test_views": len(test),
              "resolution": [scene.H, scene.W], **run_facts(args, trainer, device)}
    if bench.save_ckpt:
        save_checkpoint(bench.save_ckpt, trainer.state())
    write_json(bench.json, result)
    return 0


if __name__ == "__main__":
    run_cli(main)
