"""A run never trains on NaN or on another config's weights, survives kill -9 and SIGTERM,
holds one trainer per folder, and reports a full disk in one line (runs/guards.py,
utils/locking.py, utils/io.py). Every case goes through the real command line."""
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from runs import layout
from tests.conftest import ROOT, checkpoint_weights as weights

TINY = ["--dataset_type", "demo", "--demo_res", "16", "--white_bkgd", "--use_viewdirs",
        "--netdepth", "2", "--netwidth", "32", "--netdepth_fine", "2", "--netwidth_fine", "32",
        "--N_samples", "8", "--N_importance", "8", "--N_rand", "64", "--lrate", "5e-3",
        "--i_print", "1", "--i_img", "0", "--i_testset", "0", "--i_video", "0", "--n_frames", "2"]


def train(base: Path, name: str, *extra, check: bool = True) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "train.py", "--basedir", str(base), "--expname", name, *TINY, *extra]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
    if check:
        assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc


def error_line(proc: subprocess.CompletedProcess) -> str:
    """The one error line: stderr's last line, with no traceback anywhere."""
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc.stderr.strip().splitlines()[-1]


def losses(run: Path) -> dict:
    acc = EventAccumulator(str(run), size_guidance={"scalars": 0})
    acc.Reload()
    return {e.step: e.value for e in acc.Scalars("train/loss")}


def newest_step(run: Path) -> int:
    """The newest checkpoint's step in ``run`` (0 when there is none)."""
    found = layout.checkpoints(str(run))
    return found[-1][0] if found else 0


def first_divergence(whole: Path, run: Path, last: int) -> str:
    """Where two runs' checkpoints (one kept per step) first differ: for the message of a
    failed exactness test, with where each killed process had resumed."""
    for step in range(1, last + 1):
        a, b = (weights(d / f"ckpt_{step:07d}.pt") for d in (whole, run))
        differ = [k for k in a if not torch.equal(a[k], b[k])]
        if differ:
            return f"first differing checkpoint: step {step} ({', '.join(differ[:3])})"
    return "every checkpoint equal but the compared one"


@pytest.mark.slow
def test_random_kill_9_resumes_bit_exactly(tmp_path):
    """kill -9 at random moments of training (checkpoints every step, so some land
    mid-write); the resumed run's weights and loss scalars equal an uninterrupted run's,
    bit for bit. Each kill waits for the run to pass a random step, then a random fraction
    of a step's time, so it lands in training whatever the machine's speed."""
    steps = ["--N_iters", "60", "--i_weights", "1"]
    train(tmp_path, "whole", *steps)
    rng, kills, run = random.Random(0), 0, tmp_path / "killed"
    cmd = [sys.executable, "train.py", "--basedir", str(tmp_path), "--expname", "killed", *TINY, *steps]
    for n, target in enumerate(sorted(rng.sample(range(3, 55), 5))):
        with open(tmp_path / f"kill{n}.log", "w") as log:
            proc = subprocess.Popen(cmd, cwd=ROOT, stdout=log, stderr=subprocess.DEVNULL,
                                    env={**os.environ, "PYTHONUNBUFFERED": "1"})  # its lines survive kill -9
        deadline = time.monotonic() + 120
        while proc.poll() is None and newest_step(run) < target and time.monotonic() < deadline:
            time.sleep(0.005)
        time.sleep(rng.uniform(0.0, 0.03))
        if proc.poll() is None:
            proc.kill()
            kills += 1
        proc.wait()
    train(tmp_path, "killed", *steps)  # finish
    assert kills >= 3
    a, b = weights(tmp_path / "whole" / "ckpt_0000060.pt"), weights(run / "ckpt_0000060.pt")
    assert a.keys() == b.keys()
    resumes = [line for f in sorted(tmp_path.glob("kill*.log")) for line in f.read_text().splitlines()
               if "resumed" in line or "removed" in line or "warning" in line]
    assert all(torch.equal(a[k], b[k]) for k in a), f"{first_divergence(tmp_path / 'whole', run, 60)}; {resumes}"
    assert losses(tmp_path / "whole") == losses(run)
    assert not list(run.glob(".tmp_*"))


def test_nan_stops_the_run_and_keeps_only_finite_checkpoints(tmp_path):
    proc = train(tmp_path, "nan", "--lrate", "1e30", "--N_iters", "30", "--i_weights", "2", "--i_print", "4",
                 check=False)
    assert proc.returncode == 3, proc.stderr
    line = error_line(proc)
    assert line.startswith("error: training diverged: non-finite") and "last good checkpoint" in line
    run = tmp_path / "nan"
    state = json.loads((run / "train_state.json").read_text())
    assert state["finished"] is False and state["diverged_at"] <= 4
    for ckpt in run.glob("ckpt_*.pt"):
        assert all(torch.isfinite(t).all() for t in weights(ckpt).values()), ckpt


def test_eval_refuses_a_non_finite_checkpoint(tmp_path):
    train(tmp_path, "ok", "--N_iters", "2")
    path = tmp_path / "ok" / "ckpt_0000002.pt"
    ckpt = torch.load(path, weights_only=True)
    first = next(iter(ckpt["models"]["coarse"]))
    ckpt["models"]["coarse"][first].fill_(float("nan"))
    torch.save(ckpt, path)
    proc = subprocess.run([sys.executable, "eval.py", "--run", str(tmp_path / "ok"), "--no_path"], cwd=ROOT,
                          capture_output=True, text=True)
    assert proc.returncode == 2 and "non-finite weights" in error_line(proc) and first in error_line(proc)


def test_resume_with_a_changed_model_option_fails_and_keeps_config(tmp_path):
    train(tmp_path, "r", "--N_iters", "3")
    config = (tmp_path / "r" / "config.txt").read_text()
    for flag, value, shown in (("--activation", "sin", "sin"), ("--netwidth", "16", "16"), ("--lrate", "1e30", "1e+30")):
        proc = train(tmp_path, "r", "--N_iters", "5", flag, value, check=False)
        assert proc.returncode == 2
        line = error_line(proc).replace("'", "")
        assert f"{flag}: checkpoint" in line and f"now {shown}" in line
        assert (tmp_path / "r" / "config.txt").read_text() == config
    proc = subprocess.run([sys.executable, "eval.py", "--run", str(tmp_path / "r"), "--activation", "sin",
                           "--no_path"], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 2 and "--activation: checkpoint 'relu', now 'sin'" in error_line(proc)


def test_resume_applies_and_records_a_changed_n_iters(tmp_path):
    train(tmp_path, "n", "--N_iters", "3")
    train(tmp_path, "n", "--N_iters", "6", "--i_print", "2")
    run = tmp_path / "n"
    assert "N_iters = 6" in (run / "config.txt").read_text()
    assert "i_print = 2" in (run / "config.txt").read_text()
    ckpt = torch.load(run / "ckpt_0000006.pt", weights_only=True)
    assert ckpt["step"] == 6 and ckpt["config"]["N_iters"] == 6
    assert json.loads((run / "train_state.json").read_text())["finished"] is True


def test_a_second_trainer_is_refused_and_sigterm_checkpoints(tmp_path):
    cmd = [sys.executable, "train.py", "--basedir", str(tmp_path), "--expname", "l", *TINY,
           "--N_iters", "100000", "--i_weights", "0"]
    first = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.time() + 120
        while time.time() < deadline and not list((tmp_path / "l").glob("events.*")):
            time.sleep(0.3)
        second = train(tmp_path, "l", "--N_iters", "100000", check=False)
        assert second.returncode == 2 and f"in use by PID {first.pid}" in error_line(second)
        first.send_signal(signal.SIGTERM)
        out, _ = first.communicate(timeout=120)
    finally:
        first.kill()
    assert first.returncode == 75, out
    assert "interrupted (SIGTERM)" in out
    state = json.loads((tmp_path / "l" / "train_state.json").read_text())
    assert state["finished"] is False and (tmp_path / "l" / state["checkpoint"]).is_file()
    train(tmp_path, "l", "--N_iters", str(state["step"] + 2))  # the lock died with its holder


def test_stale_temp_files_and_an_unreadable_latest_checkpoint(tmp_path):
    train(tmp_path, "c", "--N_iters", "4", "--i_weights", "2")
    run = tmp_path / "c"
    (run / ".tmp_abc.pt").write_bytes(b"half a checkpoint")
    (run / "ckpt_0000004.pt").write_bytes(b"truncated")
    proc = train(tmp_path, "c", "--N_iters", "6")
    assert not (run / ".tmp_abc.pt").exists()
    assert "resumed from" in proc.stdout and "ckpt_0000002.pt" in proc.stdout and "ckpt_0000004.pt" in proc.stdout
    assert torch.load(run / "ckpt_0000006.pt", weights_only=True)["step"] == 6


def test_outputs_get_the_umask_mode(tmp_path):
    old = os.umask(0o022)
    try:
        train(tmp_path, "m", "--N_iters", "1")
    finally:
        os.umask(old)
    run = tmp_path / "m"
    for name in ("config.txt", "train_state.json", "ckpt_0000001.pt"):
        assert (run / name).stat().st_mode & 0o777 == 0o644, name


@pytest.fixture
def small_disk(tmp_path):
    """A 3 MB tmpfs (needs root and mount); skipped with the reason where it cannot be mounted."""
    mount = tmp_path / "disk"
    mount.mkdir()
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(mount)], capture_output=True,
                          text=True)
    if proc.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here ({proc.stderr.strip() or 'mount failed'})")
    yield mount
    subprocess.run(["umount", "-l", str(mount)])


def test_disk_full_is_one_line_and_keeps_the_last_checkpoint(small_disk):
    train(small_disk, "d", "--N_iters", "2")
    good = small_disk / "d" / "ckpt_0000002.pt"
    size = good.stat().st_size
    free = os.statvfs(small_disk).f_bavail * os.statvfs(small_disk).f_frsize
    (small_disk / "filler").write_bytes(b"\0" * max(0, free - size // 2))
    proc = train(small_disk, "d", "--N_iters", "4", check=False)
    assert proc.returncode == 2
    line = error_line(proc)
    assert line.startswith("error: cannot write '") and "ckpt_0000004.pt" in line
    assert torch.load(good, weights_only=True)["step"] == 2
    assert not list((small_disk / "d").glob(".tmp_*")) and not (small_disk / "d" / "ckpt_0000004.pt").exists()
