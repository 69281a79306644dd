"""sweep.py: naming, scheduling, skip of finished runs, resume of unfinished ones, failures reported."""
import json
import threading
import time

import pytest

import sweep
import train as train_script
from utils.errors import UserError

CONFIG = """expname = tiny
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


@pytest.fixture
def config(tmp_path):
    path = tmp_path / "tiny.txt"
    path.write_text(CONFIG)
    return path


def test_run_names_encode_the_setting(config, tmp_path):
    basedir, jobs = sweep.plan(str(config), ["relu", "sin"], [0, 2], ["--lrate", "5e-3", "--N_iters", "50",
                                                                      "--skips", "1", "2"])
    assert basedir.endswith("sweep_tiny")
    assert [j.name for j in jobs] == ["tiny_relu_s0_lrate=5e-3_skips=1-2", "tiny_relu_s2_lrate=5e-3_skips=1-2",
                                      "tiny_sin_s0_lrate=5e-3_skips=1-2", "tiny_sin_s2_lrate=5e-3_skips=1-2"]
    assert jobs[2].args.activation == "sin" and jobs[1].args.seed == 2 and jobs[0].args.N_iters == 50
    assert len(sweep.override_slug([("netwidth", [str(k)]) for k in range(40)])) == 48  # long: hashed
    _, jobs = sweep.plan(str(config), ["cos"], [1], [], str(tmp_path / "b"))
    assert jobs[0].name == "tiny_cos_s1" and jobs[0].run_dir == str(tmp_path / "b" / "tiny_cos_s1")
    with pytest.raises(UserError, match="--seed is set by the sweep"):
        sweep.plan(str(config), ["relu"], [0], ["--seed", "3"])
    with pytest.raises(UserError, match="unknown"):
        sweep.plan(str(config), ["tanhh"], [0], [])


def test_one_job_per_gpu_slot_at_a_time():
    """Scheduling without GPUs: two slots run jobs concurrently, each job once, failures kept."""
    jobs = [sweep.Job(f"j{k}", "relu", k, "", [], None) for k in range(5)]
    seen, lock, busy = [], threading.Lock(), set()

    def work(job, slot):
        with lock:
            assert slot not in busy  # a slot (GPU) never runs two jobs at once
            busy.add(slot)
            seen.append((job.name, slot))
        time.sleep(0.05)
        with lock:
            busy.discard(slot)
        if job.name == "j3":
            raise RuntimeError("boom")
        return sweep.Result(job.name, "trained", "done")

    results = sweep.run_jobs(jobs, ["0", "1"], work, threading.Event())
    assert sorted(n for n, _ in seen) == [j.name for j in jobs] and {s for _, s in seen} == {"0", "1"}
    assert results["j3"].failed and "boom" in results["j3"].message and not results["j0"].failed
    assert sweep.gpu_slots("2,3", "auto") == ["2", "3"] and sweep.gpu_slots(None, "cpu") == [None]


def state(run):
    return json.loads((run / "train_state.json").read_text())


@pytest.mark.slow
def test_sweep_trains_resumes_skips_and_compares(config, tmp_path, capsys):
    base = tmp_path / "logs"
    argv = ["--config", str(config), "--activations", "relu", "sin", "--seeds", "0", "--basedir", str(base),
            "--", "--lrate", "5e-3"]
    relu, sin = base / "tiny_relu_s0_lrate=5e-3", base / "tiny_sin_s0_lrate=5e-3"
    # a killed run: the sin run stopped at step 10 of 20
    assert train_script.main(["--config", str(config), "--basedir", str(base), "--expname", sin.name,
                              "--activation", "sin", "--lrate", "5e-3", "--N_iters", "10"]) == 0
    assert state(sin)["step"] == 10
    capsys.readouterr()

    assert sweep.main(argv) == 0
    out = capsys.readouterr().out
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
    assert sweep.main(argv) == 0
    out = capsys.readouterr().out
    assert out.count("skipped") >= 2 and "training" not in out and "evaluating" not in out
    assert sorted(p for run in (relu, sin) for p in run.glob("**/*") if p.suffix in (".pt", ".json")) == files
    assert [p.stat().st_mtime_ns for p in files] == mtimes


@pytest.mark.slow
def test_failed_runs_are_reported(config, tmp_path, capsys):
    base = tmp_path / "logs"
    # an existing folder with other settings is refused (not trained over)
    clash = base / "tiny_cos_s0"
    clash.mkdir(parents=True)
    (clash / "config.txt").write_text(CONFIG.replace("netwidth = 32", "netwidth = 64"))
    # and a run whose training fails (no such Blender scene)
    code = sweep.main(["--config", str(config), "--activations", "cos", "--seeds", "0", "--basedir", str(base),
                       "--no_compare"])
    assert code == 1
    out = capsys.readouterr().out
    assert "netwidth (run: 64, sweep: 32)" in out and "FAILED (1): tiny_cos_s0" in out
    assert not list(clash.glob("ckpt_*"))

    code = sweep.main(["--config", str(config), "--activations", "relu", "--seeds", "0", "--basedir", str(base),
                       "--", "--dataset_type", "blender", "--datadir", str(tmp_path / "missing")])
    out = capsys.readouterr().out
    assert code == 1 and "train.py exit 2" in out and "missing" in out and "FAILED (1)" in out
