"""runs/layout.py: the run-folder contract (file names, train_state.json, checkpoint keys)."""
import json
import os

import pytest
import torch

from datasets import demo
from runs import layout
from runs.training import Trainer
from tests.conftest import GRID, tiny_args
from utils.checkpoint import load_checkpoint
from utils.config import build_parser, parse_args


@pytest.mark.parametrize("step", [0, 7, 150, 1234567, 12345678])
def test_checkpoint_names_round_trip(tmp_path, step):
    path = layout.checkpoint_path(str(tmp_path), step)
    assert os.path.dirname(path) == str(tmp_path)
    assert layout.checkpoint_step(path) == step


def test_checkpoint_step_rejects_other_names():
    for name in ("ckpt_latest.pt", "ckpt_0000010.pt.tmp", "model_0000010.pt", "ckpt_.pt", "ckpt_0000010.pth"):
        assert layout.checkpoint_step(name) is None, name


def test_latest_checkpoint_is_the_highest_step_not_the_last_name(tmp_path):
    run = str(tmp_path)
    assert layout.latest_checkpoint(run) is None and layout.checkpoints(run) == []
    for step in (5, 9999999, 10000000, 40):  # ckpt_10000000.pt sorts before ckpt_9999999.pt by name
        open(layout.checkpoint_path(run, step), "wb").close()
    for other in ("ckpt_latest.pt", ".tmp_ckpt_0000050.pt", "ckpt_0000060.pt.tmp"):
        open(os.path.join(run, other), "wb").close()
    assert max(n for n in os.listdir(run) if layout.checkpoint_step(n) is not None) == "ckpt_9999999.pt"
    assert layout.latest_checkpoint(run) == layout.checkpoint_path(run, 10000000)
    assert [s for s, _ in layout.checkpoints(run)] == [5, 40, 9999999, 10000000]


def test_eval_dirs_filter_by_split(tmp_path):
    run = str(tmp_path)
    made = {("test", 100): True, ("test", 20): True, ("val", 100): True, ("train", 50): True,
            ("test", 300): False}  # False: no metrics.json (an interrupted evaluation)
    for (split, step), with_metrics in made.items():
        folder = layout.eval_dir(run, step, split)
        os.makedirs(folder)
        if with_metrics:
            with open(layout.metrics_path(folder), "w") as f:
                json.dump({"psnr": 20.0, "split": split}, f)
    # an older metrics.json without "split": the folder name says which
    legacy = layout.eval_dir(run, 70, "val")
    os.makedirs(legacy)
    with open(layout.metrics_path(legacy), "w") as f:
        json.dump({"psnr": 20.0}, f)
    os.makedirs(os.path.join(run, "evaluation_notes"))

    assert os.path.basename(layout.eval_dir(run, 100)) == "eval_0000100"
    assert os.path.basename(layout.eval_dir(run, 100, "val")) == "eval_val_0000100"
    assert layout.eval_dirs(run) == [(20, layout.eval_dir(run, 20)), (100, layout.eval_dir(run, 100))]
    assert layout.eval_dirs(run, "test") == layout.eval_dirs(run)
    assert layout.eval_dirs(run, "val") == [(70, legacy), (100, layout.eval_dir(run, 100, "val"))]
    assert layout.eval_dirs(run, "train") == [(50, layout.eval_dir(run, 50, "train"))]


def test_train_state_round_trip(tmp_path):
    run = str(tmp_path)
    assert layout.read_train_state(run) == {}
    ckpt = layout.checkpoint_path(run, 150)
    layout.write_train_state(run, 150, 200, 12.5, 31048, ckpt)
    state = layout.read_train_state(run)
    assert tuple(sorted(state)) == tuple(sorted(layout.TRAIN_STATE_KEYS))
    assert state == {"step": 150, "N_iters": 200, "time_budget": 0.0, "finished": False, "train_seconds": 12.5,
                     "n_params": 31048, "checkpoint": os.path.basename(ckpt)}
    layout.write_train_state(run, 200, 200, 15.0, 31048, layout.checkpoint_path(run, 200))
    assert layout.read_train_state(run)["finished"] is True


def test_time_budget_finishes_a_run_before_n_iters(tmp_path):
    run = str(tmp_path)
    # 90 steps of 200, but 12.0 s of a 10.0-s budget: finished
    layout.write_train_state(run, 90, 200, 12.0, 31048, layout.checkpoint_path(run, 90), time_budget=10.0)
    state = layout.read_train_state(run)
    assert state["finished"] is True and state["time_budget"] == 10.0
    assert layout.state_done(state, 200)
    assert not layout.training_done(90, 200, 9.5, 10.0)   # under both limits
    assert layout.training_done(200, 200, 1.0, 10.0)      # N_iters still ends a budgeted run
    assert not layout.training_done(90, 200, 1e6, 0.0)    # budget 0: no time limit


@pytest.mark.parametrize("grid", [False, True], ids=["no_grid", "grid"])
def test_trainer_state_has_exactly_the_checkpoint_keys(tmp_path, grid):
    args = parse_args(build_parser(), tiny_args(16, netwidth=16, netwidth_fine=16, **(GRID if grid else {})))
    trainer = Trainer(args, torch.device("cpu"), demo.BBOX)
    state = trainer.state()
    assert len(state) == len(layout.CHECKPOINT_KEYS) and set(state) == set(layout.CHECKPOINT_KEYS)
    assert (state["occupancy"] is not None) == grid

    # Trainer.save writes them where layout says, with train_state.json beside them
    path = trainer.save(str(tmp_path))
    assert path == layout.checkpoint_path(str(tmp_path), 0) == layout.latest_checkpoint(str(tmp_path))
    assert set(load_checkpoint(path)) == set(layout.CHECKPOINT_KEYS)
    assert set(layout.read_train_state(str(tmp_path))) == set(layout.TRAIN_STATE_KEYS)
