"""The activation study (bench/activation_study.py, runs/study.py): the tables from known
numbers, and the smoke protocol end to end (train, evaluate, regions, compare.py, resume)."""
import json

import numpy as np
import pytest

from conftest import run_script
from runs.study import scene_tables, scored_splits


def fake(setting, seed, psnr, seconds=10.0, diverged=False):
    curve = [{"seconds": 5.0, "step": 50 + seed, "val_psnr": psnr - 1, "test_psnr": psnr - 2}]
    regions = {"hf_psnr": psnr / 2, "regions": {n: {"psnr": psnr + k, "ssim": 0.5, "hf_psnr": 3.0, "pixels": 9}
                                                 for k, n in enumerate(("floor", "sphere", "box", "background"))}}
    return {"scene": "demo", "setting": setting, "activation": setting, "seed": seed, "planned_steps": 100,
            "train_seconds": seconds, "time_marks": [5.0, 50.0], "curve": [] if diverged else curve,
            "diverged": diverged, "val_psnr": psnr - 1, "test_psnr": psnr, "test_ssim": 0.9, "regions": regions,
            "recipe_values": {"lrate": 1e-3, "first_omega0": 1.0, "omega0": 1.0, "siren_init": True, "i_embed": 0}}


def test_tables_show_mean_and_sample_std_over_seeds():
    results = [fake("relu", s, p) for s, p in ((0, 20.0), (1, 22.0), (2, 24.0))] + \
              [fake("sin", 0, 18.0), fake("sin", 1, 0.0, diverged=True)]
    text = scene_tables(results, "demo")
    relu = next(ln for ln in text.splitlines() if ln.startswith("| relu | lr 0.001, PE | 3/3"))
    assert "| 22.00 ± 2.00 |" in relu                      # test PSNR: mean 22, sample std 2
    assert "| 21.00 ± 2.00 |" in relu                      # val PSNR
    sin = next(ln for ln in text.splitlines() if ln.startswith("| sin |") and "1/2" in ln)
    assert "| 18.00 |" in sin                              # one run: no std
    timed = [ln for ln in text.splitlines() if ln.startswith("| relu |") and "[3/3" in ln]
    assert timed and "20.00 ± 2.00 [3/3, step 51 ± 1]" in timed[0]
    assert "n/a [0/3" in timed[0]                           # nobody reached 50 s
    assert "Regions" in text and "| floor: PSNR / SSIM / HF-PSNR |" in text
    assert "22.00 ± 2.00 / 0.500 ± 0.000 / 3.00 ± 0.00" in text  # floor of relu


@pytest.mark.slow
def test_smoke_protocol_end_to_end_and_resume(tmp_path):
    out = tmp_path / "study"
    proc = run_script("-m", "bench.activation_study", "--smoke", "--out", out, "--threads", "2")
    for name in ("demo_relu_s0", "demo_sin_s0"):
        result = json.loads((out / "results" / f"{name}.json").read_text())
        assert result["steps"] == 20 and not result["diverged"] and result["test_psnr"] > 5
        assert result["recipe"] == name.split("_")[1] and result["resolution"] == [32, 32]
        assert set(result["regions"]["regions"]) == {"floor", "sphere", "box", "background"}
        assert result["curve"] and result["curve"][0]["seconds"] == 0.5
        run = out / "runs" / name
        assert (run / "config.txt").exists() and (run / "eval_0000020" / "metrics.json").exists()
        assert f"recipe = {result['recipe']}" in (run / "config.txt").read_text()
    md = (out / "study.md").read_text()
    for text in ("### demo", "Equal steps", "Equal training time", "Regions", "compare_demo/report.md"):
        assert text in md, md
    assert len(json.loads((out / "study.json").read_text())["runs"]) == 2
    assert (out / "compare_demo" / "report.md").exists()
    # resume: finished runs are skipped; a run folder without results is trained again
    (out / "results" / "demo_sin_s0.json").unlink()
    proc = run_script("-m", "bench.activation_study", "--smoke", "--out", out, "--threads", "2", "--no_compare")
    assert "demo_relu_s0: done, skipped" in proc.stdout
    assert "demo_sin_s0: unfinished run folder, training again from scratch" in proc.stdout
    assert (out / "results" / "demo_sin_s0.json").exists()


def test_llff_val_views_equal_to_test_are_rendered_once():
    llff = {"train": np.array([1, 2, 3, 5]), "val": np.array([0, 4]), "test": np.array([0, 4])}
    val, test = scored_splits(llff)
    assert val.tolist() == [] and test.tolist() == [0, 4]
    blender = {"train": np.array([0]), "val": np.array([0, 25]), "test": np.array([0, 25, 50])}
    val, test = scored_splits(blender)
    assert val.tolist() == [0, 25] and test.tolist() == [0, 25, 50]
