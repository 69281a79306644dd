"""Data-parallel training (runs/distributed.py): torchrun with 2 CPU processes (gloo)
equals 1 process with the same seed and global --N_rand, resumes exactly, and only
rank 0 writes."""
import shutil
import subprocess
import sys

import pytest
import torch

from tests.conftest import ROOT, checkpoint_weights as weights

ARGS = ["--config", "configs/demo.txt", "--demo_res", "16", "--netdepth", "2", "--netwidth", "32",
        "--netdepth_fine", "2", "--netwidth_fine", "32", "--N_samples", "8", "--N_importance", "8",
        "--N_rand", "64", "--i_img", "0", "--i_print", "1", "--i_weights", "0", "--occ_grid", "True",
        "--occ_update_every", "4", "--occ_warmup", "1", "--raw_noise_std", "0.5"]


def torchrun(nproc: int, *args, check: bool = True) -> subprocess.CompletedProcess:
    launcher = shutil.which("torchrun")
    cmd = ([launcher] if launcher else [sys.executable, "-m", "torch.distributed.run"]) + \
        ["--standalone", "--nproc_per_node", str(nproc), "train.py", *ARGS, *args]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
    if check:
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc


@pytest.mark.slow
def test_two_processes_equal_one_and_resume_exactly(tmp_path):
    base = ["--basedir", str(tmp_path)]
    one = subprocess.run([sys.executable, "train.py", *ARGS, *base, "--expname", "one", "--N_iters", "20"],
                         cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert one.returncode == 0, one.stderr[-3000:]
    torchrun(2, *base, "--expname", "two", "--N_iters", "20")
    a, b = weights(tmp_path / "one" / "ckpt_0000020.pt"), weights(tmp_path / "two" / "ckpt_0000020.pt")
    diff = max((a[k] - b[k]).abs().max().item() for k in a)
    print(f"max |w_1proc - w_2proc| after 20 steps: {diff:.3g}")
    assert diff < 1e-5

    torchrun(2, *base, "--expname", "resumed", "--N_iters", "10")
    torchrun(2, *base, "--expname", "resumed", "--N_iters", "20")
    c = weights(tmp_path / "resumed" / "ckpt_0000020.pt")
    assert all(torch.equal(b[k], c[k]) for k in b)

    # rank 0 alone wrote: one events file per training launch, the checkpoints, config, state
    names = sorted(p.name for p in (tmp_path / "two").iterdir())
    assert [n for n in names if n.startswith("events")] == [names[-2]] and len(names) == 5, names
    assert len(list((tmp_path / "resumed").glob("events.*"))) == 2


def test_a_batch_that_does_not_split_is_one_line(tmp_path):
    proc = torchrun(2, "--basedir", str(tmp_path), "--expname", "bad", "--N_rand", "63", "--N_iters", "2",
                    check=False)
    assert proc.returncode != 0
    ours = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert ours == ["error: --N_rand 63 must be a multiple of the 2 processes (each renders N_rand / world_size rays)"]
