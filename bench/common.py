"""Shared plumbing of the bench scripts (run from the repository root as
``python -m bench.<script>``): their own flags in front of train.py's options, and the
facts every result records."""
import argparse
from typing import Callable, List, Optional, Tuple, Union

import torch

from utils.config import has_flag, parse_script_args
from utils.errors import UserError
from utils.io import atomic_write_json
from utils.runtime import configure_backend, select_device


def resolve_args(own: argparse.ArgumentParser, argv: Optional[List[str]], doc: str,
                 prepend: Union[Tuple[str, ...], Callable[[argparse.Namespace], Tuple[str, ...]]] = (),
                 default_config: Optional[str] = None):
    """(bench flags, train.py config). Everything the bench parser does not know goes to
    train.py's parser (``--config FILE`` and any overrides); ``prepend`` (or
    ``prepend(bench flags)``) comes before the user's arguments there, so the user's own
    flags win over it."""
    def complete(bench: argparse.Namespace, rest: List[str]) -> List[str]:
        if default_config is not None and not has_flag(rest, "--config"):
            rest = ["--config", default_config] + rest
        return list(prepend(bench) if callable(prepend) else prepend) + rest
    return parse_script_args(own, argv, doc, complete)


def set_threads(n: int) -> None:
    """``--threads N`` (0: leave torch's default)."""
    if n > 0:
        torch.set_num_threads(n)


def _add_threads(p: argparse.ArgumentParser) -> None:
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")


def add_threads_and_json(p: argparse.ArgumentParser) -> None:
    """``--threads`` and ``--json`` for a bench script in front of train.py's options
    (``resolve_args``; train.py's own ``--device`` picks the device)."""
    _add_threads(p)
    p.add_argument("--json", type=str, default=None, help="write the results here")


def add_runtime_flags(p: argparse.ArgumentParser) -> None:
    """``--threads`` and ``--device`` for a bench script with a parser of its own."""
    _add_threads(p)
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")


def parse_own_args(p: argparse.ArgumentParser, argv: List[str]) -> argparse.Namespace:
    """``p``'s arguments, a parse error raised as a one-line UserError (no usage block)."""
    p.error = lambda message: (_ for _ in ()).throw(UserError(message))
    return p.parse_args(argv)


def start_device(threads: int, device: str) -> torch.device:
    """Threads set, the device chosen and its backend configured (utils/runtime.py)."""
    set_threads(threads)
    chosen = select_device(device)
    configure_backend(chosen)
    return chosen


def run_facts(args, trainer, device) -> dict:
    """What every bench result records about the run it measured."""
    grid = trainer.grid
    return {"device": str(device), "threads": torch.get_num_threads(),
            "occupied_fraction": grid.occupied_fraction() if grid is not None else None,
            "config": {k: v for k, v in vars(args).items() if v is not None}}


def write_json(path: Optional[str], result: dict) -> None:
    """``--json PATH``: write the result atomically (nothing when no path was given)."""
    if path:
        atomic_write_json(path, result)
        print(f"wrote {path}")
