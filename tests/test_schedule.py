"""The learning-rate schedules and the time budget (runs/training.py, train.py), against
hand-computed values."""
import json
import math
from types import SimpleNamespace

import pytest
import torch

from runs import layout
from runs.training import lr_factor, run_progress
from tests.conftest import run_script, tiny_args


def schedule_args(**overrides):
    base = dict(lrate_schedule="nerf", lrate_decay=5, lrate_final=0.1, N_iters=1000, time_budget=0.0)
    return SimpleNamespace(**{**base, **overrides})


@pytest.mark.parametrize("step, expected", [(0, 1.0), (5000, 0.1), (2500, 0.1 ** 0.5), (10000, 0.01)])
def test_nerf_schedule_decays_by_ten_every_lrate_decay_thousand_steps(step, expected):
    assert math.isclose(lr_factor(schedule_args())(step), expected, rel_tol=1e-12)


@pytest.mark.parametrize("step, expected", [(0, 1.0), (500, 0.1), (250, 0.01 ** 0.25), (1000, 0.01),
                                            (3000, 0.01)])  # past N_iters: held at the final value
def test_run_schedule_reaches_lrate_final_at_n_iters(step, expected):
    factor = lr_factor(schedule_args(lrate_schedule="run", lrate_final=0.01))
    assert math.isclose(factor(step), expected, rel_tol=1e-12)


def test_run_schedule_follows_the_clock_under_a_time_budget():
    clock = {"seconds": 0.0}
    factor = lr_factor(schedule_args(lrate_schedule="run", lrate_final=0.01, time_budget=10.0),
                       lambda: clock["seconds"])
    clock["seconds"] = 7.5   # 75% of the budget at step 100 (10% of N_iters): time is further
    assert math.isclose(factor(100), 0.01 ** 0.75, rel_tol=1e-12)
    clock["seconds"] = 1.0   # 10% of the budget at step 600 (60% of N_iters): steps are further
    assert math.isclose(factor(600), 0.01 ** 0.6, rel_tol=1e-12)


def test_run_progress_is_the_larger_fraction_and_stops_at_one():
    assert run_progress(10, 3.0, 100, 0.0) == 0.1          # no budget: steps only
    assert run_progress(10, 3.0, 100, 6.0) == 0.5
    assert run_progress(200, 3.0, 100, 6.0) == 1.0
    assert not layout.training_done(99, 100, 5.9, 6.0) and layout.training_done(99, 100, 6.0, 6.0)
    assert layout.training_done(100, 100, 0.0, 0.0) and not layout.training_done(99, 100, 1e9, 0.0)


def test_trainer_lr_follows_the_run_schedule(tmp_path):
    """Adam's lr after k steps of a real Trainer is lrate * lrate_final ** (k / N_iters)."""
    from datasets import load_scene
    from runs.training import setup_training, timed_step
    from utils.config import build_parser, parse_args
    args = parse_args(build_parser(), tiny_args(8, N_iters=20, lrate_schedule="run", lrate_final=0.05,
                                                netwidth=16, netwidth_fine=16, N_rand=16))
    trainer, _, batcher = setup_training(args, load_scene(args), torch.device("cpu"))
    opts = trainer.render_options(train=True)
    for _ in range(5):
        timed_step(trainer, batcher, opts)
    assert math.isclose(trainer.optimizer.param_groups[0]["lr"], 5e-3 * 0.05 ** (5 / 20), rel_tol=1e-9)


def test_train_stops_at_the_time_budget_and_counts_as_finished(tmp_path):
    run_script("train.py", "--basedir", tmp_path, "--expname", "timed", *tiny_args(8, netwidth=16, netwidth_fine=16),
               "--N_iters", "100000", "--time_budget", "1.5", "--lrate_schedule", "run", "--i_print", "1000")
    state = json.loads((tmp_path / "timed" / "train_state.json").read_text())
    assert state["finished"] and state["time_budget"] == 1.5
    assert 1.5 <= state["train_seconds"] and state["step"] < 100000
    assert layout.state_done(state, 100000)
