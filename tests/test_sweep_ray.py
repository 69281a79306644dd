"""sweep.py --launcher ray and --tune, through the real command line, on Ray on this machine.

Each test runs ``python sweep.py ... --launcher ray`` (or ``--tune``) as a user would. The
2x1 sweep lets sweep.py start its own local Ray instance (the default); the kill and tune
tests join a running "cluster" with ``--address`` (the ``ray_cluster`` fixture: one local
Ray node started once for the module), as on a real cluster. Ray has 2 CPUs here and each
run asks for 1: at most 2 trainings at once. The Ray tests are skipped when Ray is not
installed (CI installs requirements-cluster.txt); the one-line error for a missing Ray is
checked either way, by hiding the package."""
import importlib.util
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import ROOT, SWEEP_CONFIG as CONFIG, run_script

needs_ray = pytest.mark.skipif(importlib.util.find_spec("ray") is None,
                               reason="ray is not installed: pip install -r requirements-cluster.txt (CI installs it)")



@pytest.fixture(scope="module")
def ray_cluster():
    """The address of a one-node Ray cluster started by this process (what ``ray start
    --head`` gives), shut down after the module's tests."""
    import logging

    import ray
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    ray.init(address="local", num_cpus=2, include_dashboard=False, logging_level=logging.WARNING,
             log_to_driver=False)
    try:
        yield ray.get_runtime_context().gcs_address
    finally:
        ray.shutdown()


@pytest.fixture
def config(tmp_path):
    path = tmp_path / "tiny.txt"
    path.write_text(CONFIG)
    return path


def state(run: Path) -> dict:
    return json.loads((run / "train_state.json").read_text())


def test_ray_launcher_without_ray_is_one_line(config, tmp_path):
    """With Ray missing, --launcher ray says how to install it (and the default needs no Ray)."""
    hide = tmp_path / "no_ray" / "ray"
    hide.mkdir(parents=True)
    (hide / "__init__.py").write_text("raise ImportError(\"No module named 'ray'\")\n")
    proc = run_script("sweep.py", "--config", config, "--launcher", "ray", "--basedir", tmp_path / "logs",
                      check=False, env={"PYTHONPATH": str(hide.parent)})
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert proc.returncode == 2 and len(lines) == 1, proc.stderr
    assert lines[0].startswith("error: ") and "pip install -r requirements-cluster.txt" in lines[0]
    assert not (tmp_path / "logs").exists()


@needs_ray
@pytest.mark.slow
def test_ray_sweep_trains_evaluates_and_compares(config, tmp_path):
    base = tmp_path / "logs"
    proc = run_script("sweep.py", "--config", config, "--activations", "relu", "sin", "--seeds", "0",
                      "--basedir", base, "--launcher", "ray")
    assert "on Ray (local instance)" in proc.stdout and "none failed" in proc.stdout, proc.stdout
    for act in ("relu", "sin"):
        run = base / f"tiny_{act}_s0"
        assert state(run)["finished"] and state(run)["step"] == 20
        assert (run / "eval_0000020" / "metrics.json").exists()
        log = (run / "sweep.log").read_text()
        assert "# ray task" in log and "train.py" in log and "eval.py" in log
    report = (base / "compare" / "report.md").read_text()
    assert "tiny_relu" in report and "tiny_sin" in report
    assert "2 runs" in report


def parent_pid(pid: int) -> int:
    with open(f"/proc/{pid}/stat") as f:
        return int(f.read().rsplit(")", 1)[1].split()[1])


def trainer_pid(run: Path):
    """The PID in the run's .train.lock (train.py writes it there), or None."""
    try:
        text = (run / ".train.lock").read_text().strip()
        return int(text) if text else None
    except (OSError, ValueError):
        return None


@needs_ray
@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc to find the Ray worker")
def test_killed_trainer_and_killed_worker_resume_from_checkpoints(config, tmp_path, ray_cluster):
    """kill -9 of one run's train.py (a ProcessKilled task exception) and of the other run's
    Ray worker (a system failure): Ray retries both tasks, and both runs resume from their
    checkpoints and finish."""
    base = tmp_path / "logs"
    cmd = [sys.executable, "sweep.py", "--config", str(config), "--activations", "relu", "sin",
           "--basedir", str(base), "--launcher", "ray", "--address", ray_cluster, "--max_retries", "2",
           "--no_compare", "--", "--N_iters", "600", "--i_weights", "10", "--i_img", "0"]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    targets = {"relu": "train.py", "sin": "worker"}
    killed = {}
    try:
        deadline = time.monotonic() + 240
        while len(killed) < 2 and proc.poll() is None and time.monotonic() < deadline:
            for act, what in targets.items():
                run = base / f"tiny_{act}_s0"
                pid = trainer_pid(run)
                if act in killed or pid is None or not (run / "ckpt_0000010.pt").exists():
                    continue
                target = pid if what == "train.py" else parent_pid(pid)
                if what == "worker":  # a Ray worker names itself ray::<task> (else default_worker.py)
                    cmdline = Path(f"/proc/{target}/cmdline").read_text()
                    assert "ray::" in cmdline or "default_worker" in cmdline, cmdline
                os.kill(target, signal.SIGKILL)
                killed[act] = target
            time.sleep(0.05)
        out, _ = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:  # a failed check above: stop the sweep as Ctrl-C would (Ray shuts down)
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
    assert len(killed) == 2, f"killed only {killed}\n{out}"
    assert proc.returncode == 0, out
    for act in ("relu", "sin"):
        run = base / f"tiny_{act}_s0"
        assert state(run)["finished"] and state(run)["step"] == 600, out
        log = (run / "sweep.log").read_text()
        assert log.count("# ray task") == 2, log[-3000:]  # the first attempt and its retry
        assert re.search(r"resumed from .*ckpt_\d+\.pt at step [1-9]\d*", log), log[-3000:]
        assert re.search(rf"^tiny_{act}_s0\s+resumed\s+done", out, re.M), out
    assert "train.py (PID" in (base / "tiny_relu_s0" / "sweep.log").read_text()  # the kill, in the run's log


@needs_ray
@pytest.mark.slow
def test_tune_writes_a_recipe_inside_the_search_space(config, tmp_path, ray_cluster):
    base, recipes = tmp_path / "tune", tmp_path / "recipes"
    proc = run_script("sweep.py", "--config", config, "--activations", "sin", "--tune", "--num_samples", "2",
                      "--tune_chunk", "10", "--lr_range", "1e-4", "1e-2", "--omega_range", "2", "8",
                      "--basedir", base, "--recipes_dir", recipes, "--address", ray_cluster)
    path = recipes / "demo" / "sin.txt"
    assert path.exists(), proc.stdout
    text = path.read_text()
    values = dict(re.findall(r"^(\w+) = (\S+)$", text, re.M))
    assert values["activation"] == "sin"
    assert 1e-4 <= float(values["lrate"]) <= 1e-2 and 2 <= float(values["omega0"]) <= 8
    header = [ln for ln in text.splitlines() if ln.startswith("#")]
    assert any("ASHA" in ln for ln in header) and any("val PSNR" in ln for ln in header), text
    assert any("log-uniform [0.0001, 0.01]" in ln and "omega0" in ln for ln in header), text
    trials = [p for p in base.iterdir() if p.is_dir() and p.name.startswith("tiny_sin_")]
    assert len(trials) == 2, list(base.iterdir())
    for run in trials:
        assert (run / "sweep.log").exists() and (run / "config.txt").exists()
        # tuned on val views only: no test-set render or evaluation in any trial
        assert not list(run.glob("testset_*")) and not list(run.glob("eval_*"))
    # the winner's values are those of a trial that trained to the end
    winner = re.search(r"Winner: trial (\S+),", text)[1]
    run = next(p for p in trials if p.name.endswith(winner))
    assert state(run)["step"] == 20
    saved = dict(re.findall(r"^(\w+) = (.+)$", (run / "config.txt").read_text(), re.M))
    assert float(saved["lrate"]) == float(values["lrate"]) and float(saved["omega0"]) == float(values["omega0"])
