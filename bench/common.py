"""Shared plumbing of the bench scripts: their own flags in front of train.py's options."""
import argparse
import os
import sys
from typing import List, Optional, Tuple

import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:  # run as ``python bench/<script>.py`` from anywhere
    sys.path.insert(0, ROOT)

from utils.config import build_parser, parse_args  # noqa: E402


def resolve_args(own: argparse.ArgumentParser, argv: Optional[List[str]], doc: str,
                 prepend: Tuple[str, ...] = ()) -> Tuple[argparse.Namespace, argparse.Namespace]:
    """(bench flags, train.py config). Everything the bench parser does not know goes to
    train.py's parser (``--config FILE`` and any overrides); ``prepend`` comes before the
    user's arguments there, so the user's own flags win over it."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if any(a in ("-h", "--help") for a in argv):
        print(doc)
        own.print_help()
        print("\nplus any train.py option (python train.py --help)")
        sys.exit(0)
    bench, rest = own.parse_known_args(argv)
    return bench, parse_args(build_parser(description=doc), list(prepend) + rest)


def set_threads(n: int) -> None:
    """``--threads N`` (0: leave torch's default)."""
    if n > 0:
        torch.set_num_threads(n)


def sync(device: torch.device) -> None:
    """Wait for queued GPU work, so wall-clock times are the work's."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def run_facts(args, trainer, device) -> dict:
    """What every bench result records about the run it measured."""
    grid = trainer.grid
    return {"device": str(device), "threads": torch.get_num_threads(),
            "occupied_fraction": grid.occupied_fraction() if grid is not None else None,
            "config": {k: v for k, v in vars(args).items() if v is not None}}


def write_json(path: Optional[str], result: dict) -> None:
    """``--json PATH``: write the result atomically (nothing when no path was given)."""
    if path:
        from utils.io import atomic_write_json
        atomic_write_json(path, result)
        print(f"wrote {path}")
