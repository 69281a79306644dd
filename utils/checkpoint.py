"""Checkpoints that resume exactly: models, optimizer, scheduler, step, RNG states, config.

Written atomically and loaded with ``weights_only=True`` (plain tensors and containers;
no arbitrary unpickling). Their names and keys belong to ``runs/layout.py``.
"""
import os
from typing import Dict, List

import torch

from utils.errors import UserError, first_line
from utils.io import atomic_path


def save_checkpoint(path: str, state: Dict) -> None:
    with atomic_path(path) as tmp:
        torch.save(state, tmp)


class CheckpointUnreadable(UserError):
    """The file is missing, truncated or not a checkpoint (auto-resume may fall back)."""


REQUIRED_KEYS = ("step", "models")


def load_checkpoint(path: str, map_location="cpu") -> Dict:
    """The checkpoint's dict; a missing, unreadable or foreign file is a one-line error."""
    if not os.path.isfile(path):
        raise CheckpointUnreadable(f"checkpoint '{path}' not found")
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:  # truncated, empty, not a torch file, unpickling refused
        raise CheckpointUnreadable(f"checkpoint '{path}' cannot be loaded: {first_line(err)}") from None
    if not isinstance(ckpt, dict) or any(k not in ckpt for k in REQUIRED_KEYS) \
            or not isinstance(ckpt["models"], dict) or "coarse" not in ckpt["models"]:
        found = sorted(ckpt)[:8] if isinstance(ckpt, dict) else type(ckpt).__name__
        raise CheckpointUnreadable(f"checkpoint '{path}' is not a training checkpoint of this project "
                                   f"(expected a dict with {', '.join(REQUIRED_KEYS)} and models.coarse; found {found})")
    return ckpt


def nonfinite_tensors(state: Dict, prefix: str = "") -> List[str]:
    """Names of the floating-point tensors in a (nested) state dict with NaN or inf."""
    bad = []
    for key, value in state.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            bad += nonfinite_tensors(value, name + ".")
        elif torch.is_tensor(value) and (value.is_floating_point() or value.is_complex()) \
                and not bool(torch.isfinite(value).all()):
            bad.append(name)
    return bad
