"""Checkpoints that resume exactly: models, optimizer, scheduler, step, RNG states, config.

Written atomically and loaded with ``weights_only=True`` (plain tensors and containers;
no arbitrary unpickling). Their names and keys belong to ``runs/layout.py``.
"""
import os
from typing import Dict

import torch

from utils.errors import UserError
from utils.io import atomic_path


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
