"""Search each activation's recipe on val views (never test): the numbers behind the
recipes in models/activations.py.

    python -m bench.recipe_search --steps 300 --threads 1 --out recipe_search_out \\
        [--scenes demo lego100] [--activations relu sin ...] [--seed 0]

For every activation a small grid (runs/recipe_search.py, ``GRID``: learning rate,
omega0s for periodic activations, positional encoding on/off where it matters) is
trained on each scene protocol (runs/protocol.py: ``demo``; ``lego100`` is skipped with
a reason when ../shared/data/nerf_synthetic/lego is absent) for ``--steps`` steps from
``--seed``, and scored by the mean PSNR of the scene's val views rendered at the end.
Writes ``--out``/recipe_search.json and recipe_search.md (every candidate) and prints
the winner per activation. Resumable: finished candidates are skipped. ``--candidates``
retrains only the named ones (a second, longer stage on the leaders of a first).
"""
import argparse
import os
import shlex
import sys

if __package__ in (None, ""):  # run as `python bench/recipe_search.py`: import from the repository root
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench.common import add_runtime_flags, parse_own_args, start_device
from runs.protocol import SCENES
from runs.recipe_search import GRID, candidates, search
from utils.config import check_output_folder
from utils.errors import UserError, run_cli


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, allow_abbrev=False,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", required=True, help="output folder (candidates/, recipe_search.json, .md)")
    p.add_argument("--steps", type=int, default=300, help="training steps per candidate")
    p.add_argument("--scenes", nargs="+", default=["demo"], choices=["demo", "lego100"], help="scene protocols")
    p.add_argument("--activations", nargs="+", default=list(GRID), choices=list(GRID), help="activations to search")
    p.add_argument("--candidates", nargs="+", default=None,
                   help="only these candidates (names as in the table, e.g. sin_pe_lr0.002_w1-1): a longer stage")
    p.add_argument("--seed", type=int, default=0, help="seed of every candidate")
    add_runtime_flags(p)
    return p


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_own_args(parser(), argv)
    if args.steps < 1:
        raise UserError(f"--steps must be >= 1, got {args.steps}")
    check_output_folder(args.out, "--out")
    device = start_device(args.threads, args.device)
    command = "python -m bench.recipe_search " + " ".join(shlex.quote(a) for a in argv)
    if args.candidates:
        unknown = sorted(set(args.candidates) - {c.name for c in candidates(list(GRID))})
        if unknown:
            raise UserError(f"--candidates: unknown candidate(s) {', '.join(unknown)}")
    search(args.out, [s for s in args.scenes if s in SCENES], args.activations, args.steps, args.seed, device,
           command, args.candidates)
    return 0


if __name__ == "__main__":
    run_cli(main)
