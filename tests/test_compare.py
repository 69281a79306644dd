"""compare.py on tiny demo-scene runs: the table's numbers are the runs' own, every figure is readable."""
import csv
import json
import re
from argparse import Namespace

import imageio.v2 as imageio
import numpy as np
import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from tests.conftest import run_script, tiny_args

RES = 16
# coarse network only, no view directions, no skip
TINY = tiny_args(RES, use_viewdirs=None, netdepth_fine=None, netwidth_fine=None, netwidth=32, skips=[],
                 N_samples=8, N_importance=0, N_rand=64, i_img=10, i_weights=0, n_frames=3)
RUNS = [("relu", 0), ("relu", 1), ("sin", 0)]


def train_run(base, activation, seed, n_iters=30):
    name = f"demo_{activation}_s{seed}"
    argv = ["--basedir", str(base), "--expname", name, "--activation", activation, "--seed", str(seed),
            "--N_iters", str(n_iters)] + TINY
    run_script("train.py", *argv)
    return base / name


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """relu seeds 0 and 1 (evaluated here), sin seed 0 (left for compare.py to evaluate)."""
    base = tmp_path_factory.mktemp("runs")
    dirs = [train_run(base, act, seed) for act, seed in RUNS]
    for run in dirs[:2]:
        run_script("eval.py", "--run", run)
    return dirs


def last_scalar(run, tag):
    acc = EventAccumulator(str(run), size_guidance={"scalars": 0})
    acc.Reload()
    return max((e.step, e.value) for e in acc.Scalars(tag))[1]


def read_csv(path):
    with open(path) as f:
        return list(csv.DictReader(f))


def run_config(run):
    """{key: value} of the run's config.txt (``key = value`` lines), as text."""
    lines = (run / "config.txt").read_text().splitlines()
    return dict(tuple(part.strip() for part in ln.split("=", 1)) for ln in lines if "=" in ln)


def number(cell):
    return None if cell == "" else float(cell)


def expected_run(run):
    """The run's numbers read straight from its own files, not through runs.report."""
    state = json.loads((run / "train_state.json").read_text())
    metrics = json.loads((run / f"eval_{state['step']:07d}" / "metrics.json").read_text())
    return {"val_psnr": last_scalar(run, "val/psnr"), "test_psnr": metrics["psnr"], "test_ssim": metrics["ssim"],
            "test_lpips": metrics["lpips"], "train_seconds": state["train_seconds"], "steps": state["step"],
            "n_params": state["n_params"]}


def check_readable_outputs(out, n_views, n_runs):
    curves = imageio.imread(out / "psnr_curves.png")
    assert curves.ndim == 3 and curves.shape[0] > 300 and curves.shape[1] > 600 and curves.std() > 10
    for k in range(n_views):
        view = imageio.imread(out / "views" / f"{k:03d}.png")
        assert view.shape[2] == 3 and view.shape[0] > 2 * 192 and view.shape[1] > (1 + n_runs) * 192, view.shape
    frames = imageio.mimread(out / "side_by_side.gif")
    assert len(frames) == 3 and frames[0].shape[0] >= 128 and frames[0].shape[1] > n_runs * frames[0].shape[0]


@pytest.mark.slow
def test_compare_report_matches_run_files(runs, tmp_path):
    out = tmp_path / "cmp"
    run_script("compare.py", *runs, "--out", out)
    assert (runs[2] / "eval_0000030" / "metrics.json").exists()  # the missing eval was run
    expected = {r.name: expected_run(r) for r in runs}
    rows = {(row["kind"], row["name"]): row for row in read_csv(out / "summary.csv")}
    for name, exp in expected.items():
        row = rows[("run", name)]
        for key in ("val_psnr", "test_psnr", "test_ssim", "train_seconds", "steps", "n_params"):
            assert number(row[key]) == pytest.approx(exp[key], rel=1e-12), (name, key)
        assert exp["test_lpips"] is None and row["test_lpips"] == "" and row["eval"] == "ok"

    relu = [expected["demo_relu_s0"], expected["demo_relu_s1"]]
    group = rows[("group", "demo_relu")]
    assert group["n"] == "2" and group["seeds"] == "0,1"
    report = (out / "report.md").read_text()
    for key, digits in (("test_psnr", 2), ("test_ssim", 4), ("val_psnr", 2)):
        values = [r[key] for r in relu]
        mean, std = np.mean(values), np.std(values, ddof=1)
        assert number(group[key]) == pytest.approx(mean, rel=1e-12)
        assert number(group[key + "_std"]) == pytest.approx(std, rel=1e-12)
        assert f"{mean:.{digits}f} ± {std:.{digits}f}" in report
    sin = rows[("group", "demo_sin")]
    assert sin["n"] == "1" and sin["test_psnr_std"] == ""
    sin_config = run_config(runs[2])  # the sin recipe's omega0s, as the run recorded them
    omegas = f"{float(sin_config['first_omega0']):g} / {float(sin_config['omega0']):g}"
    assert f"| demo_sin | 1 | sin | {omegas} | yes | – |" in report
    assert f"{expected['demo_sin_s0']['test_psnr']:.2f} |" in report and "| n/a |" in report
    check_readable_outputs(out, n_views=8, n_runs=3)
    check_ground_truth_panel(out, runs[0])


def check_ground_truth_panel(out, run):
    """The GT column of views/000.png is the demo scene's test image eval.py scored view 0 against."""
    from datasets.demo import load_demo
    metrics = json.loads((run / "eval_0000030" / "metrics.json").read_text())
    scene = load_demo(Namespace(demo_res=RES, testskip=1, n_frames=3))
    gt = scene.rgb(True)[metrics["per_image"][0]["index"]]
    view = imageio.imread(out / "views" / "000.png")
    scale, head = 192 // RES, 38
    centres = view[head + scale // 2: head + RES * scale: scale, scale // 2: RES * scale: scale]
    same = np.abs(centres.astype(int) - np.round(gt * 255).astype(int)).max(-1) <= 1
    assert same.mean() > 0.8, same.mean()  # all but the cells under the crop frame


@pytest.mark.slow
def test_no_eval_lists_missing_eval(runs, tmp_path):
    unevaluated = train_run(tmp_path, "cos", 0, n_iters=10)
    out = tmp_path / "cmp"
    run_script("compare.py", runs[0], unevaluated, "--out", out, "--no_eval")
    assert not list(unevaluated.glob("eval_*"))
    row = {r["name"]: r for r in read_csv(out / "summary.csv") if r["kind"] == "run"}["demo_cos_s0"]
    assert row["eval"] == "missing eval" and row["test_psnr"] == "" and number(row["steps"]) == 10
    report = (out / "report.md").read_text()
    line = next(ln for ln in report.splitlines() if ln.startswith("| demo_cos_s0 |"))
    assert line.count("missing eval") >= 3
    assert "**missing eval**" in report and "demo_cos_s0" in report.split("**missing eval**")[1]
    check_readable_outputs(out, n_views=8, n_runs=1)


def test_not_a_run_is_a_one_line_error(tmp_path):
    (tmp_path / "empty").mkdir()
    proc = run_script("compare.py", tmp_path / "empty", "--out", tmp_path / "out", check=False)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1, proc.stderr
    assert re.search("empty.*not a run directory", proc.stderr), proc.stderr
    assert not (tmp_path / "out").exists()
    proc = run_script("compare.py", tmp_path / "nothing", "--out", tmp_path / "o", check=False)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and "nothing" in proc.stderr, proc.stderr
    assert not (tmp_path / "o").exists()


@pytest.fixture
def compare_helpers():
    """compare.py's pure figure helpers (best_crop, crop_box, nice_ticks), imported in-process
    from their run-logic module (no command line exposes them; no test imports a script)."""
    from runs import figures
    return figures


def test_best_crop_finds_where_runs_differ(compare_helpers):
    compare = compare_helpers
    a = np.zeros((32, 40, 3), np.float32)
    b = a.copy()
    b[20:26, 9:15] = 1.0  # the runs differ only here
    assert compare.best_crop([a, b], None, 6) == (9, 20)
    assert compare.crop_box((38, 30, 8), [a, b], None, (32, 40)) == (32, 24, 8)  # clipped into the image


def test_nice_ticks_cover_the_range(compare_helpers):
    compare = compare_helpers
    ticks = compare.nice_ticks(3.2, 27.9)
    assert ticks[0] <= 3.2 and ticks[-1] >= 27.9 and 4 <= len(ticks) <= 8
    assert np.allclose(np.diff(ticks), ticks[1] - ticks[0])
