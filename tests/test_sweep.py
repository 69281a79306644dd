"""sweep.py: naming, scheduling, skip of finished runs, resume of unfinished ones, failures reported.

sweep.py and train.py run as a user runs them (subprocesses from the repository root);
``--dry_run`` shows the plan. Two checks have no command-line equivalent and use the sweep
logic in-process (the ``sweep_internals`` fixture): the parsed arguments of each job, and
the slot scheduling of ``run_jobs``."""
import json
import re
from pathlib import Path

import pytest

from tests.conftest import SWEEP_CONFIG as CONFIG, run_script

PLAN_LINE = re.compile(r"^(\S+)\s+(new|partial|finished)\s+step (\d+)/(\d+)\s+(.+)$")


@pytest.fixture
def config(tmp_path):
    path = tmp_path / "tiny.txt"
    path.write_text(CONFIG)
    return path


@pytest.fixture
def sweep_internals():
    """The sweep logic (runs/sweep.py) in-process, for what sweep.py's command line cannot show."""
    from runs import sweep
    return sweep


def dry_run(config, *args):
    """The planned runs of ``sweep.py --dry_run``: [(name, N_iters, run_dir)] in order."""
    proc = run_script("sweep.py", "--config", config, "--dry_run", *args)
    said = ("recipe ", "warning: ")  # the recipe lines each job's config prints, once per setting
    plan = [PLAN_LINE.match(line) for line in proc.stdout.splitlines() if line.strip() and not line.startswith(said)]
    assert plan and all(plan), proc.stdout
    assert all(m[2] == "new" and m[3] == "0" for m in plan), proc.stdout
    return [(m[1], int(m[4]), Path(m[5])) for m in plan]


def one_line_error(proc, needle):
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 2 and len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    assert needle in lines[0], proc.stderr


def test_run_names_encode_the_setting(config, tmp_path):
    jobs = dry_run(config, "--activations", "relu", "sin", "--seeds", "0", "2",
                   "--", "--lrate", "5e-3", "--N_iters", "50", "--skips", "1", "2")
    assert all(run_dir.parent.name == "sweep_tiny" and run_dir.name == name for name, _, run_dir in jobs)
    assert [name for name, _, _ in jobs] == ["tiny_relu_s0_lrate=5e-3_skips=1-2", "tiny_relu_s2_lrate=5e-3_skips=1-2",
                                             "tiny_sin_s0_lrate=5e-3_skips=1-2", "tiny_sin_s2_lrate=5e-3_skips=1-2"]
    assert jobs[0][1] == 50
    # long: hashed (the overrides --netwidth 0 ... --netwidth 39: 40 pairs, as before)
    (name, _, _), = dry_run(config, "--", *[tok for k in range(40) for tok in ("--netwidth", str(k))])
    assert name.startswith("tiny_relu_s0_") and len(name[len("tiny_relu_s0_"):]) == 48
    (name, _, run_dir), = dry_run(config, "--activations", "cos", "--seeds", "1", "--basedir", tmp_path / "b")
    assert name == "tiny_cos_s1" and run_dir == tmp_path / "b" / "tiny_cos_s1"
    one_line_error(run_script("sweep.py", "--config", config, "--dry_run", "--", "--seed", "3", check=False),
                   "--seed is set by the sweep")
    one_line_error(run_script("sweep.py", "--config", config, "--dry_run", "--activations", "tanhh", check=False),
                   "unknown")


def test_plan_parses_each_jobs_arguments(config, sweep_internals):
    """The job's own train.py arguments, parsed: not visible in --dry_run's output."""
    _, jobs = sweep_internals.plan(str(config), ["relu", "sin"], [0, 2], ["--lrate", "5e-3", "--N_iters", "50",
                                                                          "--skips", "1", "2"])
    assert jobs[2].args.activation == "sin" and jobs[1].args.seed == 2 and jobs[0].args.N_iters == 50


def state(run):
    return json.loads((run / "train_state.json").read_text())


@pytest.mark.slow
def test_sweep_trains_resumes_skips_and_compares(config, tmp_path):
    base = tmp_path / "logs"
    argv = ["--config", config, "--activations", "relu", "sin", "--seeds", "0", "--basedir", base,
            "--", "--lrate", "5e-3"]
    relu, sin = base / "tiny_relu_s0_lrate=5e-3", base / "tiny_sin_s0_lrate=5e-3"
    # a killed run: the sin run stopped at step 10 of 20
    run_script("train.py", "--config", config, "--basedir", base, "--expname", sin.name,
               "--activation", "sin", "--lrate", "5e-3", "--N_iters", "10")
    assert state(sin)["step"] == 10

    out = run_script("sweep.py", *argv).stdout
    assert state(relu)["step"] == 20 and state(relu)["finished"]
    assert state(sin)["step"] == 20 and state(sin)["finished"]
    assert "resuming from step 10" in out and "resumed from" in (sin / "sweep.log").read_text()
    assert "at step 10" in (sin / "sweep.log").read_text()
    assert (sin / "ckpt_0000010.pt").exists() and (sin / "ckpt_0000020.pt").exists()
    for run in (relu, sin):
        assert (run / "eval_0000020" / "metrics.json").exists()
    for name in ("report.md", "summary.csv", "psnr_curves.png", "side_by_side.gif", "views/000.png"):
        assert (base / "compare" / name).exists(), name
    report = (base / "compare" / "report.md").read_text()
    assert "tiny_relu_lrate=5e-3" in report and "tiny_sin_lrate=5e-3" in report

    # a second call trains and evaluates nothing
    files = sorted(p for run in (relu, sin) for p in run.glob("**/*") if p.suffix in (".pt", ".json"))
    mtimes = [p.stat().st_mtime_ns for p in files]
    out = run_script("sweep.py", *argv).stdout
    assert out.count("skipped") >= 2 and "] training" not in out and "] evaluating" not in out  # the sweep's job lines
    assert sorted(p for run in (relu, sin) for p in run.glob("**/*") if p.suffix in (".pt", ".json")) == files
    assert [p.stat().st_mtime_ns for p in files] == mtimes


@pytest.mark.slow
def test_failed_runs_are_reported(config, tmp_path):
    base = tmp_path / "logs"
    # an existing folder with other settings is refused (not trained over)
    clash = base / "tiny_cos_s0"
    clash.mkdir(parents=True)
    (clash / "config.txt").write_text(CONFIG.replace("netwidth = 32", "netwidth = 64"))
    # and a run whose training fails (no such Blender scene)
    proc = run_script("sweep.py", "--config", config, "--activations", "cos", "--seeds", "0", "--basedir", base,
                      "--no_compare", check=False)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    out = proc.stdout
    assert "netwidth (run: 64, sweep: 32)" in out and "FAILED (1): tiny_cos_s0" in out
    assert not list(clash.glob("ckpt_*"))

    proc = run_script("sweep.py", "--config", config, "--activations", "relu", "--seeds", "0", "--basedir", base,
                      "--", "--dataset_type", "blender", "--datadir", tmp_path / "missing", check=False)
    out = proc.stdout
    assert proc.returncode == 1 and "train.py exit 2" in out and "missing" in out and "FAILED (1)" in out
