"""Test PSNR after a fixed training-time budget; by default the lego100-cpu protocol.

    python -m bench.quality_at_budget --budget 600 --threads 2 --json q.json \\
        [--config FILE] [any train.py option, e.g. --activation sin --netdepth 4]

- scene: the config's. The default, ``configs/blender/lego_cpu.txt``, is the lego100-cpu
  protocol: lego from ../shared/data/nerf_synthetic/lego at 100x100 (``downscale 4``),
  white background, test views 0, 25, ..., 175 (``testskip 25``: 8 views). Any other
  config brings its own scene and views (``--config configs/demo.txt``: the demo's 8 test
  views; ``--config configs/llff/fern.txt``: fern's 3 held-out views).
  When val is scored, the scene is loaded at ``--testskip 1`` (every val view: lego's 8,
  the demo's 4) and the test views are taken every config-``testskip``-th, the same views
  as without val. LLFF scenes have no val views of their own (val = test): ``--split val``
  is refused there.
- training: ``runs.training.timed_step`` (precrop, gradient step, grid upkeep), as
  train.py runs it, from a fresh model, until ``--budget`` seconds of training time have
  passed (passed on as ``--time_budget``, so a schedule over the run,
  ``--lrate_schedule run``, spans the budget); --N_iters is ignored, by the schedule too. Training time is
  measured around each step (GPU synchronised), so evaluation, data loading and setup are
  outside the budget.
- evaluation: every ``--eval_every`` seconds of training time and at the end, the loaded
  views of ``--split`` are rendered as eval.py renders them (8-bit quantised, grid on if
  --occ_grid) and their mean PSNR is recorded. ``test`` (the default) is for reporting;
  ``--split val`` is for tuning, so a recipe is never chosen on the views it is
  reported on; ``--split val test`` scores both in one run.
- output: the PSNR-vs-time curve and the final PSNR; ``--json PATH`` writes
  {"final_psnr", "curve": [[train_seconds, psnr], ...], "split", "splits", "steps", "config", ...}:
  the top-level PSNRs are the first split's; ``splits`` has every split's.
"""
import argparse
import os
import sys
import time

if __package__ in (None, ""):  # run as `python bench/quality_at_budget.py`: import from the repository root
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench.common import add_threads_and_json, resolve_args, run_facts, set_threads, write_json
from datasets import load_scene
from runs.evaluation import evaluate_views
from runs.training import Trainer, setup_training, timed_step
from utils.checkpoint import save_checkpoint
from utils.errors import UserError, run_cli
from utils.runtime import configure_backend, select_device

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_CONFIG = os.path.join(ROOT, "configs", "blender", "lego_cpu.txt")


# The budget alone ends a run here; this many steps never binds.
UNBOUNDED_STEPS = 10 ** 9


def protocol(bench: argparse.Namespace) -> tuple:
    """Flags before the user's: ``--time_budget`` = ``--budget``."""
    return ("--time_budget", repr(float(bench.budget)))


def budget_only(args: argparse.Namespace) -> argparse.Namespace:
    """Make the budget the run's only length: a run schedule's progress is the larger of
    step / N_iters and seconds / budget, so a config's own N_iters (demo.txt's 1000, passed
    in ~85 s) would end the lr decay long before the budget and hold it at its floor."""
    args.N_iters = UNBOUNDED_STEPS
    return args


def load_scored_scene(args, splits):
    """(scene, {split: view indices} in the order named). With val scored the scene is
    loaded at ``--testskip 1`` and its test views are thinned to the config's ``--testskip``
    (so they are those of a test-only run); otherwise each split is scored as loaded."""
    stride = max(1, args.testskip)
    if "val" in splits:
        args.testskip = 1
    scene = load_scene(args)
    views = views_to_score(scene, splits, stride if "val" in splits else 1)
    if "val" in views and "test" in scene.splits and set(views["val"].tolist()) == set(scene.splits["test"].tolist()):
        raise UserError(f"{args.datadir or args.dataset_type}: its val views are its test views (LLFF holds out "
                        f"one set); tuning on them would tune on the test views: use --split test")
    return scene, views


def views_to_score(scene, splits, test_stride: int) -> dict:
    """{split: view indices} in the order named; the test views every ``test_stride``-th."""
    return {split: scene.splits[split][::test_stride] if split == "test" else scene.splits[split]
            for split in dict.fromkeys(splits)}


def bench_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(add_help=False, allow_abbrev=False, description="bench/quality_at_budget.py options")
    p.add_argument("--budget", type=float, default=600.0, help="training seconds")
    p.add_argument("--eval_every", type=float, default=60.0, help="training seconds between evaluations")
    p.add_argument("--split", nargs="+", choices=["test", "val"], default=["test"],
                   help="views to score: test (to report), val (to tune on), or both ('val test': "
                        "one run, chosen on val, its test numbers read afterwards)")
    p.add_argument("--save_ckpt", type=str, default=None, help="save the final training state here")
    add_threads_and_json(p)
    return p


def mean_psnr(trainer: Trainer, views, indices) -> float:
    """Mean PSNR of the 8-bit renders of ``indices`` (eval-time render options)."""
    return evaluate_views(views, indices, trainer.coarse, trainer.fine, trainer.render_options(train=False),
                          trainer.args.chunk, amp=trainer.amp, with_ssim=False)["psnr"]


def train_with_budget(trainer: Trainer, batcher, evaluate, budget: float, eval_every: float):
    """Train until ``budget`` training seconds; ``evaluate() -> {split: psnr}`` (untimed)
    every ``eval_every`` and at the end. Returns [[train_seconds, {split: psnr}], ...]."""
    opts = trainer.render_options(train=True)
    curve, next_eval = [], eval_every
    while trainer.train_seconds < budget:
        timed_step(trainer, batcher, opts)
        if next_eval <= trainer.train_seconds < budget:
            curve.append([trainer.train_seconds, evaluate()])
            said = ", ".join(f"{k} {v:.2f}" for k, v in curve[-1][1].items())
            print(f"[{trainer.train_seconds:7.1f} s, step {trainer.step}] PSNR {said}", flush=True)
            while next_eval <= trainer.train_seconds:
                next_eval += eval_every
    curve.append([trainer.train_seconds, evaluate()])
    return curve


def split_results(curve, views_of: dict) -> dict:
    """{split: {"final_psnr", "curve": [[train_seconds, psnr], ...], "n_views"}}."""
    return {split: {"final_psnr": curve[-1][1][split], "curve": [[t, scores[split]] for t, scores in curve],
                    "n_views": len(indices)} for split, indices in views_of.items()}


def main(argv=None) -> int:
    bench, args = resolve_args(bench_parser(), argv, __doc__, protocol, DEFAULT_CONFIG)
    if bench.budget <= 0 or bench.eval_every <= 0:
        raise UserError("--budget and --eval_every must be > 0")
    if args.time_budget != bench.budget:
        raise UserError(f"--time_budget {args.time_budget:g} differs from --budget {bench.budget:g}; give --budget only")
    budget_only(args)
    set_threads(bench.threads)
    device = select_device(args.device)
    configure_backend(device)
    scene, views_of = load_scored_scene(args, bench.split)
    missing = [k for k, v in {"train": scene.splits["train"], **views_of}.items() if len(v) == 0]
    if missing:
        raise UserError(f"{args.datadir or args.dataset_type}: needs {' and '.join(missing)} views (--split)")
    trainer, views, batcher = setup_training(args, scene, device)
    print(f"{scene.name}: {len(scene.splits['train'])} train / "
          + " / ".join(f"{len(v)} {k}" for k, v in views_of.items())
          + f" views {scene.H}x{scene.W}, budget {bench.budget:g} s, {args.activation}, device {device}", flush=True)
    wall = time.perf_counter()
    curve = train_with_budget(trainer, batcher, lambda: {k: mean_psnr(trainer, views, v) for k, v in views_of.items()},
                              bench.budget, bench.eval_every)
    wall = time.perf_counter() - wall
    splits = split_results(curve, views_of)
    print("train_s  " + "  ".join(f"{k:>6}" for k in views_of))
    for seconds, scores in curve:
        print(f"{seconds:7.1f}  " + "  ".join(f"{v:6.2f}" for v in scores.values()))
    for split, r in splits.items():
        print(f"final {split} PSNR {r['final_psnr']:.2f} dB after {trainer.step} steps "
              f"({trainer.train_seconds:.1f} s training)")
    first = splits[next(iter(views_of))]  # the first split named: the top-level numbers
    result = {"final_psnr": first["final_psnr"], "curve": first["curve"], "split": next(iter(views_of)),
              "n_views": first["n_views"], "splits": splits, "steps": trainer.step,
              "train_seconds": trainer.train_seconds, "eval_seconds": wall - trainer.train_seconds,
              "budget": bench.budget, "resolution": [scene.H, scene.W], **run_facts(args, trainer, device)}
    if bench.save_ckpt:
        save_checkpoint(bench.save_ckpt, trainer.state())
    write_json(bench.json, result)
    return 0


if __name__ == "__main__":
    run_cli(main)
