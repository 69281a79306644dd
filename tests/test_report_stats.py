"""compare.py's seed statistics: paired differences vs a reference setting, and unfinished
runs, on fake run folders whose per-seed numbers are written here by hand.

Expected p-values come from the closed forms of Student's t CDF, not from scipy:
df = 1: p = 1 - (2/pi) atan|t|;  df = 2: p = 1 - |t| / sqrt(t^2 + 2)."""
import csv
import json
import math

import imageio.v2 as imageio
import numpy as np
import pytest

from runs.stats import paired
from tests.conftest import run_script

RES = 8
VIEWS = (0, 1, 2)

# (activation, seed): (test PSNR, test SSIM, train_state.json or None)
DONE = {"step": 1000, "N_iters": 1000, "finished": True}
RUNS = {
    ("relu", 0): (25.0, 0.900, DONE), ("relu", 1): (26.0, 0.910, DONE), ("relu", 2): (24.5, 0.880, DONE),
    ("relu", 3): (25.5, 0.905, DONE),
    ("sin", 0): (26.0, 0.905, DONE), ("sin", 1): (27.5, 0.930, DONE), ("sin", 2): (25.0, 0.890, DONE),
    ("sin", 3): (12.0, 0.300, {"step": 300, "N_iters": 1000, "finished": False}),
    ("cos", 0): (28.0, 0.950, DONE), ("cos", 1): (29.1, 0.960, DONE), ("cos", 2): (27.4, 0.940, DONE),
    ("cos", 3): (5.0, 0.100, {"step": 400, "N_iters": 1000, "finished": False, "diverged_at": 412,
                              "diverged": "non-finite loss"}),
    ("gauss", 0): (24.0, 0.850, DONE),
    ("wire", 7): (20.0, 0.700, DONE),
    ("finer", 0): (30.0, 0.990, None),  # no train_state.json
}
# hand-computed: per-seed PSNR differences vs relu over the finished runs
SIN_D = [26.0 - 25.0, 27.5 - 26.0, 25.0 - 24.5]      # 1.0, 1.5, 0.5: mean 1.0, std 0.5
COS_D = [28.0 - 25.0, 29.1 - 26.0, 27.4 - 24.5]      # 3.0, 3.1, 2.9: mean 3.0, std 0.1
SIN_SSIM_D = [0.905 - 0.900, 0.930 - 0.910, 0.890 - 0.880]


def p_df2(diffs):
    """Two-sided paired t-test p-value for n = 3 (df = 2), in closed form."""
    t = np.mean(diffs) / (np.std(diffs, ddof=1) / math.sqrt(3))
    return 1.0 - abs(t) / math.sqrt(t * t + 2.0)


def fake_run(base, activation, seed, psnr, ssim, state, lpips=None, lpips_net=None):
    """A run folder as train.py + eval.py leave it (config, train_state, eval_<step>/ with
    metrics.json and 8x8 renders), without checkpoints or events."""
    run = base / f"demo_{activation}_s{seed}"
    run.mkdir()
    (run / "config.txt").write_text(f"dataset_type = demo\ndemo_res = {RES}\nwhite_bkgd = True\n"
                                    f"activation = {activation}\nseed = {seed}\nN_iters = 1000\n"
                                    f"expname = {run.name}\n")
    step = 1000
    if state is not None:
        step = state["step"]
        (run / "train_state.json").write_text(json.dumps(
            {**state, "train_seconds": 60.0, "n_params": 1234, "checkpoint": f"ckpt_{step:07d}.pt"}))
    ev = run / f"eval_{step:07d}"
    ev.mkdir()
    metrics = {"psnr": psnr, "ssim": ssim, "lpips": lpips, "lpips_note": None if lpips else "no weights",
               "n_images": len(VIEWS), "height": RES, "width": RES, "seconds_per_image": 0.1, "step": step,
               "split": "test", "testskip": 1, "activation": activation,
               "per_image": [{"index": i, "psnr": psnr, "ssim": ssim} for i in VIEWS]}
    if lpips_net:
        metrics["lpips_net"] = lpips_net
    (ev / "metrics.json").write_text(json.dumps(metrics))
    for k in range(len(VIEWS)):
        imageio.imwrite(ev / f"{k:03d}.png", np.full((RES, RES, 3), 40 * k, np.uint8))
    return run


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    base = tmp_path_factory.mktemp("runs")
    return {key: fake_run(base, *key, *values) for key, values in RUNS.items()}


def compare(runs, out, *extra):
    run_script("compare.py", *runs, "--out", out, "--no_eval", "--max_views", "1", *extra)
    with open(out / "summary.csv") as f:
        rows = list(csv.DictReader(f))
    return ({r["name"]: r for r in rows if r["kind"] == "group"}, {r["name"]: r for r in rows if r["kind"] == "run"},
            (out / "report.md").read_text())


def num(cell):
    return None if cell == "" else float(cell)


def table_line(report, first_cell):
    return next(line for line in report.splitlines() if line.startswith(f"| {first_cell} |"))


def test_paired_differences_against_relu(runs, tmp_path):
    # relu s0 given twice (and as a path with a trailing slash): counted once
    groups, per_run, report = compare(list(runs.values()) + [str(runs["relu", 0]) + "/"], tmp_path / "cmp")
    relu, sin, cos = groups["demo_relu"], groups["demo_sin"], groups["demo_cos"]
    assert relu["vs_ref"] == "(reference)" and relu["n"] == "4" and relu["n_used"] == "4"
    assert num(relu["test_psnr"]) == pytest.approx((25.0 + 26.0 + 24.5 + 25.5) / 4, abs=1e-12)

    # sin: seed 3 is unfinished, so 3 pairs; within seed noise (p = 0.0742)
    assert sin["vs_ref"] == "demo_relu" and sin["test_psnr_vs_ref_n"] == "3"
    assert sin["test_psnr_vs_ref_seeds"] == "0,1,2"
    assert num(sin["test_psnr_vs_ref"]) == pytest.approx(1.0, abs=1e-12)
    assert num(sin["test_psnr_vs_ref_std"]) == pytest.approx(0.5, abs=1e-12)
    assert [float(d) for d in sin["test_psnr_vs_ref_diffs"].split(";")] == pytest.approx(SIN_D, abs=1e-12)
    assert num(sin["test_psnr_vs_ref_p"]) == pytest.approx(p_df2(SIN_D), rel=1e-9)
    assert p_df2(SIN_D) == pytest.approx(1 - 2 * math.sqrt(3) / math.sqrt(14), rel=1e-12)  # t = 2 sqrt(3)
    assert sin["test_psnr_vs_ref_verdict"] == "within seed noise"
    t975_df2 = 4.302652729911275  # Student t, 97.5 % quantile, df = 2 (tables)
    half = t975_df2 * 0.5 / math.sqrt(3)
    assert num(sin["test_psnr_vs_ref_ci_low"]) == pytest.approx(1.0 - half, rel=1e-9)
    assert num(sin["test_psnr_vs_ref_ci_high"]) == pytest.approx(1.0 + half, rel=1e-9)
    assert num(sin["test_ssim_vs_ref"]) == pytest.approx(np.mean(SIN_SSIM_D), abs=1e-12)
    assert num(sin["test_ssim_vs_ref_std"]) == pytest.approx(np.std(SIN_SSIM_D, ddof=1), abs=1e-12)
    assert num(sin["test_ssim_vs_ref_p"]) == pytest.approx(p_df2(SIN_SSIM_D), rel=1e-9)

    # cos: seed 3 diverged (left out); +3.0 ± 0.1 dB is beyond seed noise
    assert cos["test_psnr_vs_ref_n"] == "3"
    assert num(cos["test_psnr_vs_ref"]) == pytest.approx(3.0, abs=1e-12)
    assert num(cos["test_psnr_vs_ref_std"]) == pytest.approx(0.1, abs=1e-9)
    assert num(cos["test_psnr_vs_ref_p"]) == pytest.approx(p_df2(COS_D), rel=1e-6) and p_df2(COS_D) < 0.001
    assert cos["test_psnr_vs_ref_verdict"] == "higher than the reference, beyond seed noise"

    gauss, wire, finer = groups["demo_gauss"], groups["demo_wire"], groups["demo_finer"]
    assert gauss["test_psnr_vs_ref_n"] == "1" and num(gauss["test_psnr_vs_ref"]) == pytest.approx(-1.0)
    assert gauss["test_psnr_vs_ref_verdict"] == "one seed: no noise estimate" and gauss["test_psnr_vs_ref_std"] == ""
    assert wire["test_psnr_vs_ref_n"] == "0" and wire["test_psnr_vs_ref_verdict"] == "no shared seeds: not compared"
    assert finer["n_used"] == "0" and finer["test_psnr"] == ""  # its one run has no train_state.json
    assert finer["test_psnr_vs_ref_verdict"] == "no finished run: not compared (see training)"

    # report.md: the vs-reference table and its definition
    assert "## vs reference: demo_relu (paired by seed)" in report
    vs_ref = report.split("## vs reference")[1].split("## Per run")[0]
    line = table_line(vs_ref, "demo_sin")  # its first line: test PSNR
    assert "s0 +1.00; s1 +1.50; s2 +0.50" in line and "+1.00 dB ± 0.50 dB" in line and "within seed noise" in line
    assert f"{p_df2(SIN_D):.3g}" in line
    assert "one seed: no noise estimate" in table_line(vs_ref, "demo_gauss")
    assert "paired t-test" in report and "p ≥ 0.05" in report


def test_unfinished_runs_are_marked_and_left_out(runs, tmp_path):
    groups, per_run, report = compare(runs.values(), tmp_path / "cmp")
    assert per_run["demo_sin_s3"]["training"] == "unfinished (step 300/1000)"
    assert per_run["demo_cos_s3"]["training"] == "diverged at step 412 (last good checkpoint: step 400)"
    assert per_run["demo_finer_s0"]["training"] == "unfinished (no train_state.json)"
    assert per_run["demo_relu_s0"]["training"] == "finished"
    sin = groups["demo_sin"]
    assert sin["n"] == "4" and sin["n_used"] == "3" and sin["n_left_out"] == "1" and sin["seeds"] == "0,1,2,3"
    assert num(sin["test_psnr"]) == pytest.approx((26.0 + 27.5 + 25.0) / 3, abs=1e-12)
    assert num(sin["test_psnr_std"]) == pytest.approx(np.std([26.0, 27.5, 25.0], ddof=1), abs=1e-12)
    assert sin["training"] == "left out: demo_sin_s3: unfinished (step 300/1000)"
    # the per-run table says it, the group row says it, the notes say it
    assert "unfinished (step 300/1000)" in table_line(report, "demo_sin_s3")
    assert "diverged at step 412" in table_line(report, "demo_cos_s3")
    results = report.split("## Results")[1].split("## vs reference")[0]
    assert table_line(results, "demo_sin").startswith("| demo_sin | 3 (+1 left out) | sin |")
    assert "left out: demo_sin_s3" in table_line(results, "demo_sin")
    assert "**unfinished runs, left out of their settings' numbers**" in report


def test_include_unfinished_counts_them_and_marks_the_group(runs, tmp_path):
    groups, _, report = compare(runs.values(), tmp_path / "cmp", "--include_unfinished")
    sin = groups["demo_sin"]
    assert sin["n"] == "4" and sin["n_used"] == "4" and sin["n_left_out"] == "0"
    assert num(sin["test_psnr"]) == pytest.approx((26.0 + 27.5 + 25.0 + 12.0) / 4, abs=1e-12)
    assert sin["training"] == "includes unfinished demo_sin_s3: unfinished (step 300/1000)"
    diffs = SIN_D + [12.0 - 25.5]
    assert sin["test_psnr_vs_ref_n"] == "4" and num(sin["test_psnr_vs_ref"]) == pytest.approx(np.mean(diffs))
    assert groups["demo_cos"]["test_psnr_vs_ref_n"] == "4"  # the diverged run too
    assert groups["demo_finer"]["n_used"] == "1" and num(groups["demo_finer"]["test_psnr"]) == 30.0
    assert "includes unfinished demo_sin_s3" in report
    assert "**unfinished runs, included in their settings' numbers** (--include_unfinished)" in report


def test_reference_option_and_default_without_relu(runs, tmp_path):
    groups, _, report = compare(runs.values(), tmp_path / "a", "--reference", "demo_sin")
    assert groups["demo_sin"]["vs_ref"] == "(reference)" and groups["demo_relu"]["vs_ref"] == "demo_sin"
    assert num(groups["demo_relu"]["test_psnr_vs_ref"]) == pytest.approx(-1.0, abs=1e-12)
    assert "## vs reference: demo_sin" in report
    no_relu = [runs[k] for k in RUNS if k[0] in ("cos", "sin")]  # sin comes first: it is the reference
    groups, _, _ = compare(no_relu, tmp_path / "b")
    assert groups["demo_sin"]["vs_ref"] == "(reference)"
    # cos - sin per seed: (28.0 - 26.0, 29.1 - 27.5, 27.4 - 25.0) = (2.0, 1.6, 2.4), mean 2.0
    assert num(groups["demo_cos"]["test_psnr_vs_ref"]) == pytest.approx(2.0, abs=1e-12)
    proc = run_script("compare.py", *runs.values(), "--out", tmp_path / "c", "--no_eval", "--reference", "nope",
                      check=False)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and "--reference 'nope'" in proc.stderr
    assert not (tmp_path / "c").exists()


def test_different_test_views_are_not_paired(tmp_path):
    a = fake_run(tmp_path, "relu", 0, 25.0, 0.9, DONE)
    b = fake_run(tmp_path, "sin", 0, 26.0, 0.9, DONE)
    metrics_path = next(b.glob("eval_*")) / "metrics.json"
    metrics = json.loads(metrics_path.read_text())
    metrics["per_image"] = [{"index": i, "psnr": 26.0, "ssim": 0.9} for i in (3, 4, 5)]  # other views
    metrics_path.write_text(json.dumps(metrics))
    groups, _, report = compare([a, b], tmp_path / "cmp")
    assert groups["demo_sin"]["test_psnr_vs_ref_n"] == "0"
    assert "evaluated on different test views" in report


def test_lpips_of_different_backbones_is_never_averaged(tmp_path):
    a = fake_run(tmp_path, "relu", 0, 25.0, 0.9, DONE, lpips=0.1, lpips_net="vgg")
    b = fake_run(tmp_path, "relu", 1, 25.0, 0.9, DONE, lpips=0.2)  # before lpips_net: AlexNet
    groups, per_run, report = compare([a, b], tmp_path / "cmp")
    assert per_run["demo_relu_s0"]["lpips_net"] == "vgg" and per_run["demo_relu_s1"]["lpips_net"] == "alex"
    assert groups["demo_relu"]["test_lpips"] == "" and groups["demo_relu"]["lpips_net"] == "mixed: alex, vgg"
    assert "n/a (mixed: alex, vgg backbones)" in report
    assert "0.1000 (vgg)" in table_line(report, "demo_relu_s0")


def test_paired_statistics_hand_values():
    r = paired({0: 2.0, 1: 4.0}, {0: 1.0, 1: 1.0})  # diffs 1, 3: mean 2, std sqrt(2), t = 2, df = 1
    assert r.n == 2 and r.mean == 2.0 and r.std == pytest.approx(math.sqrt(2.0), abs=1e-12)
    assert r.p == pytest.approx(1.0 - 2.0 / math.pi * math.atan(2.0), rel=1e-9)  # 0.2952
    assert r.verdict == "within seed noise"
    t975_df1 = 12.706204736174698  # Student t, 97.5 % quantile, df = 1 (tables)
    assert r.ci == pytest.approx((2.0 - t975_df1, 2.0 + t975_df1), rel=1e-9)  # std / sqrt(2) = 1
    low = paired({0: 1.0, 1: 2.0, 2: 3.0}, {0: 4.0, 1: 5.1, 2: 5.9})  # diffs -3, -3.1, -2.9
    assert low.verdict == "lower than the reference, beyond seed noise"
    one = paired({5: 1.0, 6: 2.0}, {5: 0.25})
    assert (one.n, one.mean, one.std, one.p, one.verdict) == (1, 0.75, None, None, "one seed: no noise estimate")
    none = paired({1: 1.0}, {2: 1.0})
    assert (none.n, none.mean, none.verdict) == (0, None, "no shared seeds: not compared")
