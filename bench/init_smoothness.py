"""How smooth a config's network is at init: the correlation of the coarse MLP's last
trunk features at points a distance apart.

    python -m bench.init_smoothness --activation wire [--config FILE] [any train.py option] \\
        [--points 4096] [--extent 1.5] [--distances 0.003 0.01 0.03 0.1 0.3] [--seeds 0 1 2]

For each seed the coarse field is built as train.py builds it (``models.nerf.build_fields``,
the activation's recipe applied), ``--points`` points x are drawn uniformly in the cube
[-extent, extent]^3 (1.5: the Blender objects' bound) and each is moved by ``d`` along a
random unit direction. Per trunk feature f (the real and imaginary parts of a complex one
count as two), the Pearson correlation over points of f(x) and f(x + d u) is taken, and
their mean is printed for each distance d, averaged over seeds (± std over seeds). About
1 means the initial function barely changes over d; about 0 means points d apart already
get unrelated features: the network starts as white noise at that scale.
Defaults to configs/demo.txt's 4x128 trunk; ``--netdepth 8 --netwidth 256`` for NeRF's.
Why it matters: wire at w = 20, s0 = 10 (the WIRE authors' image settings, 2-3 layers)
gives 0.04 at d = 0.01 in the 4x128 trunk (relu on PE 0.43) and trains to the background
alone there; ~0 in the 8x256 trunk (bench/results/recipe_search_demo.md, "Stage 5").
"""
import argparse
import os
import statistics
import sys
from typing import List

import torch

if __package__ in (None, ""):  # run as `python bench/init_smoothness.py`: import from the repository root
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench.common import add_threads_and_json, resolve_args, set_threads, write_json
from models.nerf import build_fields, run_trunk
from utils.errors import UserError, run_cli


def bench_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(add_help=False, allow_abbrev=False, description="bench/init_smoothness.py options")
    p.add_argument("--points", type=int, default=4096, help="points per seed")
    p.add_argument("--extent", type=float, default=1.5, help="points uniform in [-extent, extent]^3")
    p.add_argument("--distances", type=float, nargs="+", default=[0.003, 0.01, 0.03, 0.1, 0.3],
                   help="distances d between the paired points")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="init seeds")
    add_threads_and_json(p)
    return p


def feature_correlation(a: torch.Tensor, b: torch.Tensor) -> float:
    """Mean over columns of the Pearson correlation of a[:, j] and b[:, j] (N, F) each;
    a column constant over points counts as 0."""
    a, b = a - a.mean(0), b - b.mean(0)
    denom = a.norm(dim=0) * b.norm(dim=0)
    corr = torch.where(denom > 0, (a * b).sum(0) / denom.clamp_min(1e-30), torch.zeros_like(denom))
    return corr.mean().item()


@torch.no_grad()
def correlations(args, seed: int, points: int, extent: float, distances: List[float]) -> List[float]:
    """One init seed: the mean feature correlation at each distance (float64 inputs cast to
    the field's dtype, so rounding of x + d u does not enter at small d)."""
    g = torch.Generator().manual_seed(seed)
    coarse, _ = build_fields(args, g)
    trunk = coarse.mlp.pts_linears
    def features(x):
        return run_trunk(trunk, coarse.embed_pts(x.float()), coarse.mlp.skips)[0]
    x = (torch.rand(points, 3, generator=g, dtype=torch.float64) * 2 - 1) * extent
    u = torch.randn(points, 3, generator=g, dtype=torch.float64)
    u = u / u.norm(dim=-1, keepdim=True)
    base = features(x)
    return [feature_correlation(base, features(x + d * u)) for d in distances]


def main(argv=None) -> int:
    bench, args = resolve_args(bench_parser(), argv, __doc__, default_config="configs/demo.txt")
    if bench.points < 2 or bench.extent <= 0 or any(d <= 0 for d in bench.distances):
        raise UserError("--points must be >= 2, --extent and every --distances value > 0")
    set_threads(bench.threads)
    per_seed = [correlations(args, s, bench.points, bench.extent, bench.distances) for s in bench.seeds]
    print(f"{args.activation}: mean correlation of the last trunk features at points d apart "
          f"(init, {len(bench.seeds)} seed(s), {bench.points} points in [-{bench.extent:g}, {bench.extent:g}]^3)")
    rows = []
    for i, d in enumerate(bench.distances):
        values = [c[i] for c in per_seed]
        std = statistics.stdev(values) if len(values) > 1 else 0.0
        rows.append({"distance": d, "mean": statistics.fmean(values), "std": std, "per_seed": values})
        print(f"  d = {d:<6g} {rows[-1]['mean']:+.3f} ± {std:.3f}")
    write_json(bench.json, {"activation": args.activation, "seeds": bench.seeds, "points": bench.points,
                            "extent": bench.extent, "correlations": rows,
                            "config": {k: v for k, v in vars(args).items() if v is not None}})
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
