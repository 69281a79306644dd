"""What keeps a run honest: the checkpoint's config is the truth, weights stay finite,
and a batch fits in memory.

- ``config_differences``: on resume (train.py) every option may differ from the
  checkpoint's only if it is in ``MAY_CHANGE_ON_RESUME``; in eval.py only if it is in
  ``MAY_DIFFER_IN_EVAL`` (those plus the options that act during training only).
  ``datadir`` may move as long as it names the same scene folder (same last component).
- ``nonfinite_weights``: the networks' tensors holding NaN or inf.
- ``check_batch_bounds``: a ray batch larger than the training pixels, or whose estimated
  memory exceeds what the device has, fails before training with the estimate.
"""
import os
from typing import Dict, Iterable, List

import torch

from utils.checkpoint import nonfinite_tensors
from utils.errors import UserError

# Applied when resuming, and recorded in config.txt and the next checkpoint: they change
# how long, how often and where a run trains, never what it learns.
MAY_CHANGE_ON_RESUME = frozenset({
    "config", "expname", "basedir", "N_iters", "no_reload", "ft_path", "i_print", "i_img", "i_weights",
    "i_testset", "i_video", "device", "amp", "compile", "chunk", "netchunk", "testskip", "render_factor",
    "n_frames", "time_budget"})
# Training-only options: eval.py renders with the trained networks whatever they were.
TRAINING_ONLY = frozenset({
    "N_rand", "lrate", "lrate_decay", "lrate_schedule", "lrate_final", "no_batching", "precrop_iters", "precrop_frac", "perturb",
    "raw_noise_std", "random_bkgd", "occ_update_every", "occ_warmup", "occ_decay", "occ_warmup_samples"})
MAY_DIFFER_IN_EVAL = MAY_CHANGE_ON_RESUME | TRAINING_ONLY


def _same(key: str, saved, current) -> bool:
    if key == "datadir":  # the same scene, possibly moved
        name = lambda p: os.path.basename(os.path.normpath(str(p))) if p else ""
        return name(saved) == name(current)
    if isinstance(saved, (list, tuple)) or isinstance(current, (list, tuple)):
        return list(saved or []) == list(current or [])
    return saved == current


def config_differences(saved: Dict, args, defaults: Dict, may_differ: Iterable[str]) -> List[str]:
    """``key: checkpoint X, now Y`` for every option outside ``may_differ`` whose value
    differs. A key the checkpoint lacks (None values are not stored; older checkpoints
    predate newer options) is compared with the option's default."""
    allowed = set(may_differ)
    diffs = []
    for key, current in sorted(vars(args).items()):
        if key in allowed:
            continue
        before = saved.get(key, defaults.get(key))
        if not _same(key, before, current):
            diffs.append(f"--{key}: checkpoint {before!r}, now {current!r}")
    return diffs


def require_same_config(ckpt: Dict, args, path: str, may_differ: Iterable[str], what: str) -> None:
    """A one-line error naming every differing option, unless the checkpoint has no config."""
    saved = ckpt.get("config")
    if not isinstance(saved, dict):
        return
    from utils.config import parser_defaults
    diffs = config_differences(saved, args, parser_defaults(), may_differ)
    if diffs:
        raise UserError(f"{what} '{path}' was trained with other settings ({'; '.join(diffs)}); "
                        f"use the checkpoint's values, or start a new run (--expname)")


def nonfinite_weights(models: Iterable) -> List[str]:
    """Names of the network tensors (``coarse.<param>``, ``fine.<param>``) with NaN or inf."""
    bad = []
    for name, module in zip(("coarse", "fine"), models):
        if module is not None:
            bad += nonfinite_tensors(module.state_dict(), name + ".")
    return bad


def estimate_step_bytes(args) -> int:
    """Rough peak memory of one training step: per MLP sample, the activations kept for
    backward (input encoding, each layer's pre- and post-activation, the view branch),
    4 bytes each; coarse samples + fine samples (coarse + fine). It reads 5.3 GB for
    lego.txt's default net, whose measured peak RSS was 4.8 GB (README, "Performance")."""
    in_ch = 3 + 6 * args.multires if args.i_embed != -1 else 3
    per_sample = lambda D, W: 4 * 2 * (in_ch + D * W + W + W // 2 + 27)
    coarse = args.N_rand * args.N_samples * per_sample(args.netdepth, args.netwidth)
    fine = args.N_rand * (args.N_samples + args.N_importance) * per_sample(args.netdepth_fine, args.netwidth_fine) \
        if args.N_importance > 0 else 0
    return coarse + fine


def available_bytes(device: torch.device):
    """Free memory of ``device`` (CUDA: free device memory; CPU: MemAvailable); None if unknown."""
    if device.type == "cuda":
        return torch.cuda.mem_get_info(device)[0]
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def check_batch_bounds(args, n_train_pixels: int, device: torch.device) -> None:
    """Fail before training when --N_rand exceeds the training pixels or the memory."""
    if args.N_rand > n_train_pixels:
        raise UserError(f"--N_rand {args.N_rand} is larger than the {n_train_pixels} training pixels; "
                        f"use at most {n_train_pixels}")
    need, free = estimate_step_bytes(args), available_bytes(device)
    if free is not None and need > free:
        raise UserError(f"--N_rand {args.N_rand} needs about {need / 2 ** 30:.1f} GiB per training step "
                        f"({args.N_samples}+{args.N_importance} samples per ray), but {device} has "
                        f"{free / 2 ** 30:.1f} GiB free; lower --N_rand or the samples")
