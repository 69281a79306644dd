"""The activation study in one command: every recipe x 3 seeds x {demo, lego100, fern},
at equal steps and at equal training time, with region metrics (runs/study.py).

    python -m bench.activation_study --out study_out --threads 2          # ~2 h 40 min alone on 2 CPU cores
    python -m bench.activation_study --out study_gpu --full               # paper-size nets and steps (GPU)
    python -m bench.activation_study --out smoke --smoke                  # relu + sin, seed 0, demo at 32x32, 20 steps

Settings ``relu sin cos gauss wire finer report-sin report-cos`` (each ``--activation
NAME`` with its own recipe), seeds 0 1 2, scenes ``demo``, ``lego100`` (lego at 100x100,
test views 0, 25, ..., 175) and ``fern`` (images_8 at 168x126, no grid); a scene whose data is
absent is skipped with the reason. Resumable: run the same command again and finished
runs are skipped. Writes ``--out``/study.md (tables per scene: equal steps, equal time,
regions; mean ± std over seeds), study.json (every run), results/<run>.json,
runs/<run>/ (run folders) and compare_<scene>/ (compare.py's report). ``--settings``,
``--seeds`` and ``--scenes`` select a part of the protocol.
"""
import argparse
import os
import shlex
import sys

if __package__ in (None, ""):  # run as `python bench/activation_study.py`: import from the repository root
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench.common import add_runtime_flags, parse_own_args, start_device
from runs.study import DEFAULT_PLAN, FULL_PLAN, SEEDS, SETTINGS, SMOKE_PLAN, SMOKE_SEEDS, SMOKE_SETTINGS, run_study
from utils.config import check_output_folder
from utils.errors import run_cli


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, allow_abbrev=False,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", required=True, help="output folder")
    size = p.add_mutually_exclusive_group()
    size.add_argument("--full", action="store_true", help="paper-size nets and steps (for a GPU)")
    size.add_argument("--smoke", action="store_true", help="relu and sin, seed 0, demo, 20 steps: proves it runs")
    p.add_argument("--settings", nargs="+", choices=SETTINGS, default=None, help="a subset of the settings")
    p.add_argument("--seeds", nargs="+", type=int, default=None, help="a subset of the seeds")
    p.add_argument("--scenes", nargs="+", choices=["demo", "lego100", "fern"], default=None, help="a subset of scenes")
    p.add_argument("--no_compare", action="store_true", help="skip the compare.py reports")
    add_runtime_flags(p)
    return p


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_own_args(parser(), argv)
    check_output_folder(args.out, "--out")
    plans = SMOKE_PLAN if args.smoke else FULL_PLAN if args.full else DEFAULT_PLAN
    if args.scenes:
        plans = tuple(pl for pl in plans if pl.scene in args.scenes)
    settings = args.settings or (SMOKE_SETTINGS if args.smoke else SETTINGS)
    seeds = args.seeds if args.seeds is not None else (SMOKE_SEEDS if args.smoke else SEEDS)
    device = start_device(args.threads, args.device)
    command = "python -m bench.activation_study " + " ".join(shlex.quote(a) for a in argv)
    run_study(args.out, plans, settings, seeds, device, command, full=args.full, compare=not args.no_compare)
    return 0


if __name__ == "__main__":
    run_cli(main)
