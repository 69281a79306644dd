"""Compare trained runs: a table for the paper, PSNR curves and side-by-side renders.

    python compare.py logs/sweep_demo/demo_relu_s0 logs/sweep_demo/demo_sin_s0 --out cmp/

Writes into ``--out``:
  report.md          settings table (seeds grouped: mean ± std, n), paired differences of
                     test PSNR/SSIM vs a reference setting (per seed, mean ± std, n,
                     paired t-test: within seed noise or not; runs/stats.py), per-run
                     table (with each run's training status), notes
  summary.csv        the same numbers at full precision, one row per run and per group
                     (column ``kind``), ``*_std`` / ``*_n`` columns for groups, and
                     ``vs_ref`` / ``test_psnr_vs_ref*`` / ``test_ssim_vs_ref*`` on group rows
  psnr_curves.png    val (thick) and train (thin) PSNR against step and training wall time
  views/NNN.png      ground truth | run A | run B ... per test view, with a zoomed crop of
                     the patch where the runs differ most under each panel
  side_by_side.gif   the runs' camera-path GIFs (eval path.gif), labelled, side by side

A run without an evaluation at its final checkpoint is evaluated first (``eval.py --run``
in a subprocess) unless ``--no_eval``; then it is listed as "missing eval", never dropped.
A run whose training did not finish (or diverged) is marked in the per-run table and left
out of its setting's numbers and of the paired differences, unless ``--include_unfinished``.
The reference setting is ``--reference`` (a setting's label), else the first relu setting,
else the first.

Ground truth of the view panels and how views are matched: runs/figures.py.
"""
import argparse
import os
from typing import Tuple

from runs.comparison import compare, unique_runs
from utils.config import check_output_folder
from utils.errors import UserError, run_cli
from utils.metrics import LPIPS_BACKBONES


def parse_crop(text: str) -> Tuple[int, int, int]:
    try:
        x, y, size = (int(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected x,y,size (integers), got '{text}'") from None
    if x < 0 or y < 0 or size < 1:
        raise argparse.ArgumentTypeError(f"need x, y >= 0 and size >= 1, got '{text}'")
    return x, y, size


def check_arguments(a: argparse.Namespace) -> None:
    """One-line errors for values argparse accepts but compare cannot use."""
    check_output_folder(a.out, "--out")
    if a.max_views < 0:
        raise UserError(f"--max_views must be >= 0 (0: all), got {a.max_views}")
    if a.testskip is not None and a.testskip < 0:
        raise UserError(f"--testskip must be >= 0, got {a.testskip}")
    if a.lpips_weights is not None and not os.path.isfile(a.lpips_weights):
        raise UserError(f"--lpips_weights '{a.lpips_weights}' is not a file")


def main(argv=None) -> int:
    """Command line: run folders, --out, options; see the module doc."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("runs", nargs="+", help="run directories <basedir>/<expname>")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--no_eval", action="store_true", help="do not evaluate runs; list them as 'missing eval'")
    p.add_argument("--crop", type=parse_crop, default=None,
                   help="x,y,size of the zoomed crop in image pixels (default: where the runs differ most)")
    p.add_argument("--max_views", type=int, default=8, help="test views in views/ (0: all)")
    p.add_argument("--testskip", type=int, default=None, help="forwarded to eval.py for missing evaluations")
    p.add_argument("--lpips_net", choices=sorted(LPIPS_BACKBONES), default=None,
                   help="forwarded to eval.py for missing evaluations (eval.py's default: vgg)")
    p.add_argument("--lpips_weights", default=None, help="forwarded to eval.py for missing evaluations")
    p.add_argument("--include_unfinished", action="store_true",
                   help="count unfinished or diverged runs in their settings' numbers (marked in the group row)")
    p.add_argument("--reference", default=None,
                   help="the setting (its label in report.md) the others are compared with, seed by seed "
                        "(default: the first relu setting, else the first)")
    a = p.parse_args(argv)
    check_arguments(a)
    eval_args = ["--testskip", str(a.testskip)] if a.testskip else []
    eval_args += ["--lpips_net", a.lpips_net] if a.lpips_net else []
    eval_args += ["--lpips_weights", a.lpips_weights] if a.lpips_weights else []
    return compare(unique_runs(a.runs), a.out, a.no_eval, a.crop, a.max_views, eval_args, a.include_unfinished,
                   a.reference)


if __name__ == "__main__":
    run_cli(main)
