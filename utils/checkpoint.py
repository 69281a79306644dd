"""Checkpoints that resume exactly: models, optimizer, scheduler, step, RNG states, config.

Files are ``<run>/ckpt_{step:07d}.pt``, written atomically and loaded with
``weights_only=True`` (plain tensors and containers; no arbitrary unpickling).
"""
import glob
import os
import re
from typing import Dict, Optional

import torch

from utils.errors import UserError
from utils.io import atomic_path

PATTERN = re.compile(r"ckpt_(\d+)\.pt$")


def checkpoint_path(run_dir: str, step: int) -> str:
    return os.path.join(run_dir, f"ckpt_{step:07d}.pt")


def latest_checkpoint(run_dir: str) -> Optional[str]:
    found = [(int(PATTERN.search(p).group(1)), p) for p in glob.glob(os.path.join(run_dir, "ckpt_*.pt"))
             if PATTERN.search(p)]
    return max(found)[1] if found else None


def save_checkpoint(path: str, state: Dict) -> None:
    with atomic_path(path) as tmp:
        torch.save(state, tmp)


def load_checkpoint(path: str, map_location="cpu") -> Dict:
    if not os.path.isfile(path):
        raise UserError(f"checkpoint '{path}' not found")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:
        raise UserError(f"checkpoint '{path}' cannot be loaded: {str(err).splitlines()[0]}") from None
