"""End to end on the built-in demo scene: train, resume, interrupt, evaluate (train.py and
eval.py run as a user runs them: subprocesses from the repository root)."""
import json
import signal
import subprocess
import sys
import time

import imageio.v2 as imageio
import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from tests.conftest import GRID, ROOT, run_script, tiny_args
from utils.errors import EXIT_INTERRUPTED

TINY = tiny_args(24)


def scalars(run_dir, tag):
    acc = EventAccumulator(str(run_dir), size_guidance={"scalars": 0})
    acc.Reload()
    return [(e.step, e.value) for e in acc.Scalars(tag)]


@pytest.mark.slow
def test_train_resume_and_eval(tmp_path):
    base = ["--basedir", str(tmp_path), "--expname", "tiny"] + TINY
    run_script("train.py", *base, "--N_iters", "150", "--i_weights", "100")
    run = tmp_path / "tiny"
    assert (run / "config.txt").exists() and (run / "ckpt_0000150.pt").exists()
    psnr = scalars(run, "train/psnr")
    assert psnr[-1][1] > psnr[0][1] + 5, psnr  # well above the starting value
    assert {"train/loss", "train/psnr_coarse", "lr", "train/rays_per_sec", "val/psnr", "val/ssim"} <= set(
        EventAccumulator(str(run)).Reload().Tags()["scalars"])

    # resume continues from the saved step
    run_script("train.py", *base, "--N_iters", "170", "--i_weights", "100")
    state = json.loads((run / "train_state.json").read_text())
    assert state["step"] == 170 and (run / "ckpt_0000170.pt").exists()
    steps = [s for s, _ in scalars(run, "train/psnr")]
    assert steps[-1] == 170 and 150 < max(s for s in steps if s > 150)

    run_script("eval.py", "--run", run, "--render_factor", "2")
    out = run / "eval_0000170"
    metrics = json.loads((out / "metrics.json").read_text())
    for key in ("psnr", "ssim", "lpips", "n_images", "height", "width", "seconds_per_image", "activation",
                "step", "per_image"):
        assert key in metrics
    assert metrics["n_images"] == 8 and metrics["step"] == 170 and metrics["height"] == 24
    assert metrics["per_image"][0].keys() >= {"index", "psnr", "ssim"}
    assert metrics["psnr"] > 12
    for name in ("000.png", "000_depth.png", "007.png", "test_views.gif", "path.gif"):
        assert (out / name).exists(), name
    assert imageio.imread(out / "000.png").shape == (24, 24, 3)
    path = imageio.mimread(out / "path.gif")
    assert len(path) == 4 and path[0].shape[:2] == (12, 24)  # rgb | depth at 1/2 resolution


RESUME_ARGS = {
    "no_grid": tiny_args(16, N_rand=64, i_img=0, i_weights=0),
    # the occupancy tests' smaller run, with a grid updated every 2 steps after 3 warm-up
    # updates, rendered with 8 samples per ray until then (16 after step 6): the checkpoint
    # at step 5 falls inside the warm-up
    "grid": tiny_args(16, netwidth=32, netwidth_fine=32, i_print=50, i_img=0, i_weights=0, n_frames=None,
                      **{**GRID, "occ_update_every": 2, "occ_warmup": 3, "occ_warmup_samples": 8}, N_rand=64),
}


@pytest.mark.parametrize("variant", sorted(RESUME_ARGS))
def test_resume_is_exact(tmp_path, variant):
    """10 steps in one go equal 5 + 5 with a checkpoint in between: models, grid and RNG restored."""
    args = RESUME_ARGS[variant]
    run_script("train.py", "--basedir", tmp_path, "--expname", "a", "--N_iters", "10", *args)
    run_script("train.py", "--basedir", tmp_path, "--expname", "b", "--N_iters", "5", *args)
    run_script("train.py", "--basedir", tmp_path, "--expname", "b", "--N_iters", "10", *args)
    a = torch.load(tmp_path / "a" / "ckpt_0000010.pt", weights_only=True)
    b = torch.load(tmp_path / "b" / "ckpt_0000010.pt", weights_only=True)
    for k, v in a["models"]["coarse"].items():
        assert torch.equal(v, b["models"]["coarse"][k]), k
    for k, v in a["models"]["fine"].items():
        assert torch.equal(v, b["models"]["fine"][k]), k
    assert torch.equal(a["rng"]["generator"], b["rng"]["generator"])
    if variant == "grid":
        for k, v in a["occupancy"].items():
            assert torch.equal(v, b["occupancy"][k]), k
    else:
        assert a["occupancy"] is None and b["occupancy"] is None


@pytest.mark.slow
def test_ctrl_c_saves_checkpoint_and_exits_interrupted(tmp_path):
    """Ctrl-C: a checkpoint, and the exit code that says "run the same command to resume"."""
    cmd = [sys.executable, "train.py", "--basedir", str(tmp_path), "--expname", "int", "--N_iters", "100000",
           "--i_weights", "0"] + TINY
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.time() + 120
    while time.time() < deadline and not list((tmp_path / "int").glob("events.*")):
        time.sleep(0.5)
    time.sleep(3)
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == EXIT_INTERRUPTED == 75, out
    ckpts = list((tmp_path / "int").glob("ckpt_*.pt"))
    assert len(ckpts) == 1 and "interrupted" in out
    assert not list((tmp_path / "int").glob(".tmp_*"))
