"""bench/recipe_search.py: candidates are scored on val views only, every candidate is
written, the winner printed, and a second call resumes."""
import json

import pytest

import runs.recipe_search as rs
from conftest import run_script


def test_candidates_set_every_recipe_key_and_apply_no_recipe():
    from models.activations import ACTIVATIONS, recipe_of
    from utils.config import build_parser
    defaults = build_parser()
    for cand in rs.candidates(list(rs.GRID)):
        assert cand.argv()[:4] == ["--activation", cand.activation, "--recipe", "none"]
        # a recipe key the candidate leaves out must be one whose recipe value is the default
        # it trains with under --recipe none (cos's random_bkgd False)
        left_out = set(recipe_of(cand.activation)) - set(cand.options) - {"multires", "multires_views"}
        assert all(recipe_of(cand.activation)[k] == defaults.get_default(k) for k in left_out), (cand.name, left_out)
        assert cand.activation in ACTIVATIONS
    names = [c.name for c in rs.candidates(list(rs.GRID))]
    assert len(names) == len(set(names))
    picked = rs.candidates(list(rs.GRID), ["sin_pe_lr0.002_w1-1", "cos_raw_lr0.0002_w30-30"])
    assert [c.name for c in picked] == ["sin_pe_lr0.002_w1-1", "cos_raw_lr0.0002_w30-30"]


def test_longer_runs_are_a_separate_contest():
    r = lambda name, act, steps, psnr: {"scene": "demo", "candidate": name, "activation": act, "steps": steps,
                                        "val_psnr": psnr, "options": {"lrate": 1e-3}, "train_seconds": 1.0}
    results = [r("a", "sin", 200, 20.0), r("b", "sin", 200, 18.0), r("b", "sin", 1000, 25.0),
               r("a", "sin", 1000, 24.0), r("c", "sin", 200, None)]
    best = rs.winners(results)
    assert best[("demo", "sin", 200)]["candidate"] == "a" and best[("demo", "sin", 1000)]["candidate"] == "b"
    md = rs.markdown(results, "cmd")
    assert md.count("**") == 4 and "diverged" in md


@pytest.mark.slow
def test_search_scores_val_views_only(monkeypatch, tmp_path):
    seen = []
    real = rs.mean_psnr

    def spy(trainer, views, indices):
        seen.append(list(indices))
        return real(trainer, views, indices)
    monkeypatch.setattr(rs, "mean_psnr", spy)
    cand = rs.Candidate("relu", {"lrate": 1e-3, "i_embed": 0, "multires": 10, "multires_views": 4})
    result = rs.run_candidate("demo", cand, 1, 0, "cpu")
    scene = rs.load_scene_cached(rs.resolve_args(rs.SCENES["demo"], cand.argv()))
    assert seen == [list(scene.splits["val"])] and result["n_val_views"] == 4 and result["val_psnr"] > 0


@pytest.mark.slow
def test_search_writes_every_candidate_and_resumes(tmp_path):
    out = tmp_path / "search"
    proc = run_script("-m", "bench.recipe_search", "--steps", "2", "--activations", "gauss", "--out", out,
                      "--threads", "2")
    data = json.loads((out / "recipe_search.json").read_text())
    assert len(data["candidates"]) == len(rs.GRID["gauss"])
    assert all(c["steps"] == 2 and c["n_val_views"] == 4 for c in data["candidates"])
    assert "winner demo gauss: " in proc.stdout and data["winners"]["demo/gauss/2"]
    md = (out / "recipe_search.md").read_text()
    assert md.count("**") == 2 and "python -m bench.recipe_search --steps 2" in md
    proc = run_script("-m", "bench.recipe_search", "--steps", "2", "--activations", "gauss", "--out", out)
    assert proc.stdout.count("done, skipped") == len(rs.GRID["gauss"])
