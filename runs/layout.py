"""The on-disk contract of a run: this module alone spells its file names and keys.

A run is the folder ``<basedir>/<expname>/``:

    config.txt               resolved config (``key = value``; re-readable with --config)
    .train.lock              held by the one train.py working on the run (its PID inside)
    events.out.tfevents.*    TensorBoard scalars, images, hparams
    ckpt_0001000.pt ...      checkpoints, keys CHECKPOINT_KEYS (atomic; weights_only-loadable)
    train_state.json         TRAIN_STATE_KEYS, rewritten with every checkpoint
    testset_<step>/          periodic test renders (--i_testset) with metrics.json
    video_<step>.gif         periodic camera-path renders (--i_video)
    eval_<step>/             eval.py: NNN.png, NNN_depth.png, metrics.json, test_views.gif, path.gif
    eval_<split>_<step>/     eval.py --split val|train

``metrics.json`` (eval.py, --i_testset) holds METRICS_KEYS plus the run's settings
(``runs.summary.run_settings``) and ``per_image[{index, psnr, ssim[, lpips]}]``.
"""
import glob
import os
import re
from typing import Dict, List, Optional, Tuple

from utils.io import atomic_write_json, read_json

CONFIG_FILE = "config.txt"
TRAIN_STATE_FILE = "train_state.json"
METRICS_FILE = "metrics.json"
CHECKPOINT_GLOB = "ckpt_*.pt"
_CHECKPOINT_RE = re.compile(r"ckpt_(\d+)\.pt$")
_EVAL_RE = re.compile(r"eval_(?:(val|train)_)?(\d+)$")

# What a checkpoint holds (runs.training.Trainer.state writes them, Trainer.load reads them).
CHECKPOINT_KEYS = ("step", "train_seconds", "models", "optimizer", "scheduler", "scaler", "rng",
                   "occupancy", "config")
# train_state.json: what sweeps and compare.py read without loading a checkpoint
# (plus ``diverged_at`` and ``diverged`` when the run stopped on non-finite numbers).
TRAIN_STATE_KEYS = ("step", "N_iters", "time_budget", "finished", "train_seconds", "n_params", "checkpoint")
# metrics.json: the numbers every evaluation writes (runs.evaluation.evaluate_views + eval.py).
METRICS_KEYS = ("psnr", "ssim", "lpips", "n_images", "height", "width", "seconds_per_image", "per_image",
                "step", "split", "testskip", "checkpoint", "lpips_net")


def config_path(run_dir: str) -> str:
    return os.path.join(run_dir, CONFIG_FILE)


def lock_path(run_dir: str) -> str:
    """The trainer's lock: one train.py per run folder (holds the trainer's PID)."""
    return os.path.join(run_dir, ".train.lock")


def sweep_lock_path(run_dir: str) -> str:
    """sweep.py's lock: one sweep per run folder."""
    return os.path.join(run_dir, "sweep.lock")


def checkpoint_path(run_dir: str, step: int) -> str:
    return os.path.join(run_dir, f"ckpt_{step:07d}.pt")


def checkpoint_step(path: str) -> Optional[int]:
    """The step in a checkpoint's file name (None when the name is not ``ckpt_<step>.pt``)."""
    match = _CHECKPOINT_RE.search(path)
    return int(match.group(1)) if match else None


def checkpoints(run_dir: str) -> List[Tuple[int, str]]:
    """[(step, path)] of the run's checkpoints, oldest first."""
    found = [(checkpoint_step(p), p) for p in glob.glob(os.path.join(run_dir, CHECKPOINT_GLOB))]
    return sorted((step, p) for step, p in found if step is not None)


def latest_checkpoint(run_dir: str) -> Optional[str]:
    found = checkpoints(run_dir)
    return found[-1][1] if found else None


def eval_dir(run_dir: str, step: int, split: str = "test") -> str:
    return os.path.join(run_dir, f"eval_{'' if split == 'test' else split + '_'}{step:07d}")


def testset_dir(run_dir: str, step: int) -> str:
    return os.path.join(run_dir, f"testset_{step:07d}")


def video_stem(run_dir: str, step: int) -> str:
    return os.path.join(run_dir, f"video_{step:07d}")


def metrics_path(folder: str) -> str:
    return os.path.join(folder, METRICS_FILE)


def eval_dirs(run_dir: str, split: str = "test") -> List[Tuple[int, str]]:
    """[(step, folder)] of the run's evaluations on ``split`` that have a metrics.json, by step."""
    found = []
    for path in glob.glob(os.path.join(run_dir, "eval_*")):
        match = _EVAL_RE.search(path)
        if not match or not os.path.isfile(metrics_path(path)):
            continue
        if (read_json(metrics_path(path)) or {}).get("split", match.group(1) or "test") == split:
            found.append((int(match.group(2)), path))
    return sorted(found)


def training_done(step: int, n_iters: int, train_seconds: float, time_budget: float) -> bool:
    """A run ends at --N_iters steps, or once its training clock reaches --time_budget (> 0)."""
    return step >= n_iters or (time_budget > 0 and train_seconds >= time_budget)


def state_done(state: Dict, n_iters: int) -> bool:
    """train_state.json says finished, and its step reached ``n_iters`` (config.txt's, which
    may have grown since) or its clock its own time budget."""
    step = state.get("step")
    return bool(state.get("finished")) and step is not None and training_done(
        int(step), int(n_iters), float(state.get("train_seconds") or 0.0), float(state.get("time_budget") or 0.0))


def write_train_state(run_dir: str, step: int, n_iters: int, train_seconds: float, n_params: int,
                      checkpoint: str, time_budget: float = 0.0) -> None:
    atomic_write_json(os.path.join(run_dir, TRAIN_STATE_FILE),
                      {"step": step, "N_iters": n_iters, "time_budget": time_budget,
                       "finished": training_done(step, n_iters, train_seconds, time_budget),
                       "train_seconds": train_seconds, "n_params": n_params,
                       "checkpoint": os.path.basename(checkpoint)})


def mark_diverged(run_dir: str, step: int, n_iters: int, train_seconds: float, reason: str) -> None:
    """train_state.json of a run that stopped on non-finite numbers: not finished, and
    ``diverged_at`` / ``diverged`` say where and why; ``checkpoint`` stays the last good one."""
    state = read_train_state(run_dir)
    state.update({"step": state.get("step", 0), "N_iters": n_iters, "finished": False,
                  "train_seconds": state.get("train_seconds", train_seconds),
                  "diverged_at": step, "diverged": reason})
    atomic_write_json(os.path.join(run_dir, TRAIN_STATE_FILE), state)


def run_config_args(run_dir, rest: List[str]) -> List[str]:
    """Config arguments for a script that reads a run (eval.py, export.py): ``--config
    <run>/config.txt`` under the command-line ``rest`` (unless it names a --config itself),
    and every image of the split unless --testskip is given."""
    from utils.config import has_flag
    from utils.errors import UserError
    if not has_flag(rest, "--config"):
        if run_dir is None:
            raise UserError("give --run <basedir>/<expname> or --config FILE")
        if not os.path.isfile(config_path(run_dir)):
            raise UserError(f"run directory '{run_dir}' has no config.txt (--run)")
        rest = ["--config", config_path(run_dir)] + rest
    if not has_flag(rest, "--testskip"):
        rest += ["--testskip", "1"]
    return rest


def read_train_state(run_dir: str) -> Dict:
    """train_state.json as a dict ({} when absent; a corrupt file is a one-line error)."""
    return read_json(os.path.join(run_dir, TRAIN_STATE_FILE)) or {}
