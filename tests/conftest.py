import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DATA = ROOT.parent / "shared" / "data"
LEGO = DATA / "nerf_synthetic" / "lego"
FERN = DATA / "nerf_llff_data" / "fern"

# The tiny demo-scene run the end-to-end tests train (train.py options); tiny_args()
# turns it into an argument list. Files that need another size override single keys.
TINY = {"dataset_type": "demo", "demo_res": 24, "white_bkgd": True, "use_viewdirs": True,
        "netdepth": 2, "netwidth": 64, "netdepth_fine": 2, "netwidth_fine": 64,
        "N_samples": 16, "N_importance": 16, "N_rand": 256, "lrate": "5e-3",
        "i_print": 10, "i_img": 100, "i_testset": 0, "i_video": 0, "n_frames": 4}
# A small occupancy grid that updates often enough to matter in a few dozen steps.
GRID = {"occ_grid": True, "occ_res": 24, "occ_update_every": 5, "occ_warmup": 4, "occ_decay": 0.8}


def cli_args(options: dict) -> list:
    """{key: value} -> ["--key", "value", ...]: a list gives several values ([]: the bare flag),
    True the bare flag, and None (or False) leaves the option out (its default)."""
    argv = []
    for key, value in options.items():
        if value is None or value is False:
            continue
        argv.append(f"--{key}")
        if isinstance(value, (list, tuple)):
            argv += [str(v) for v in value]
        elif value is not True:
            argv.append(str(value))
    return argv


def tiny_args(res=24, **overrides) -> list:
    """train.py options of the TINY run at ``--demo_res res`` with ``overrides`` (as cli_args)."""
    return cli_args({**TINY, "demo_res": res, **overrides})


def run_script(*args, check=True, env=None, timeout=600) -> subprocess.CompletedProcess:
    """Run ``python *args`` from the repository root as a user would (``run_script("train.py",
    ...)``, ``run_script("-m", "bench.throughput", ...)``), capturing its output as text.
    ``env`` entries are added to this process's environment. With ``check`` a non-zero exit
    fails the test, showing the command and its output."""
    cmd = [sys.executable, *map(str, args)]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **(env or {})})
    if check:
        assert proc.returncode == 0, (f"exit {proc.returncode}: {' '.join(cmd)}\n"
                                      f"--- stdout\n{proc.stdout[-4000:]}\n--- stderr\n{proc.stderr[-4000:]}")
    return proc


def checkpoint_weights(path) -> dict:
    """Every network tensor of a checkpoint, keyed '<model>.<parameter>'."""
    import torch
    ckpt = torch.load(path, weights_only=True)
    return {f"{k}.{n}": t for k, m in ckpt["models"].items() if m for n, t in m.items()}


def require(path: Path):
    """Skip (with the reason) when a real scene is absent from ../shared/data."""
    if not path.exists():
        pytest.skip(f"real data not found at {path} (see README, 'Datasets')")
    return path


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: end-to-end training runs (a few per suite)")
    os.environ.setdefault("PYTHONHASHSEED", "0")


# A tiny sweep config (tests/test_sweep.py, tests/test_sweep_ray.py): 20 steps of a 2x32 net.
SWEEP_CONFIG = """expname = tiny
dataset_type = demo
demo_res = 16
white_bkgd = True
netdepth = 2
netwidth = 32
skips = []
N_samples = 8
N_importance = 0
N_rand = 64
N_iters = 20
i_print = 5
i_img = 10
i_weights = 0
i_testset = 0
i_video = 0
n_frames = 3
"""
