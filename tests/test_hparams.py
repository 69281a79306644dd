"""TensorBoard HParams: each run's session holds only the settings that apply to its
activation; the experiment declares every column and the metric tags val/psnr and
test/psnr; eval.py writes test/psnr and test/ssim into the run's events."""
import json

import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.plugins.hparams import plugin_data_pb2

from runs.summary import HPARAM_METRICS, hparams_columns, hparams_dict
from tests.conftest import run_script, tiny_args
from utils.config import build_parser, parse_args

PERIODIC_ONLY = {"first_omega0", "omega0", "siren_init"}


def settings(*argv):
    return parse_args(build_parser(), ["--dataset_type", "demo", *argv])


def test_complex_width_shows_for_a_complex_trunk_only():
    wire = hparams_dict(settings("--activation", "wire"), 100)
    assert wire["complex_width"] == "matched"  # wire's recipe
    assert "complex_width" not in hparams_dict(settings("--activation", "relu"), 100)
    assert hparams_columns(settings("--activation", "relu"), 100)["complex_width"] == ""  # declared for every run


def test_session_holds_only_the_settings_that_apply():
    relu = hparams_dict(settings("--activation", "relu", "--lrate", "1e-3", "--seed", "3"), 100)
    assert not PERIODIC_ONLY & relu.keys() and "gauss_scale" not in relu
    assert relu["activation"] == "relu" and relu["lrate"] == 1e-3 and relu["seed"] == 3
    assert relu["encoding"] == "pe10/4" and relu["n_params"] == 100
    sin = hparams_dict(settings("--activation", "sin", "--first_omega0", "20", "--omega0", "1", "--siren_init",
                                "False", "--i_embed", "-1"), 100)
    assert (sin["first_omega0"], sin["omega0"], sin["siren_init"], sin["encoding"]) == (20.0, 1.0, False, "none")
    gauss = hparams_dict(settings("--activation", "gauss", "--gauss_scale", "5"), 100)
    assert gauss["gauss_scale"] == 5.0 and not PERIODIC_ONLY & gauss.keys()


def test_recipe_only_when_the_run_has_one():
    args = settings("--activation", "sin")
    for no_recipe in (None, "none"):
        args.recipe = no_recipe
        assert "recipe" not in hparams_dict(args, 1)
    args.recipe = "siren_lego"
    assert hparams_dict(args, 1)["recipe"] == "siren_lego"
    del args.recipe  # a parser without --recipe
    assert "recipe" not in hparams_dict(args, 1)


def test_every_run_declares_every_column():
    columns = hparams_columns(settings("--activation", "relu"), 100)
    for key in ("activation", "recipe", "first_omega0", "omega0", "siren_init", "gauss_scale", "wire_s0",
                "encoding", "lrate", "seed", "n_params"):
        assert key in columns, key
    assert isinstance(columns["siren_init"], bool) and isinstance(columns["omega0"], float)


def hparams_data(run):
    acc = EventAccumulator(str(run), size_guidance={"scalars": 0})
    acc.Reload()
    content = acc.PluginTagToContent("hparams")
    parse = plugin_data_pb2.HParamsPluginData.FromString
    return (parse(content["_hparams_/experiment"]).experiment,
            parse(content["_hparams_/session_start_info"]).session_start_info, acc)


@pytest.mark.slow
def test_train_and_eval_give_hparams_with_val_and_test_psnr(tmp_path):
    run_script("train.py", "--basedir", tmp_path, "--expname", "h", "--N_iters", "10", "--activation", "relu",
               "--seed", "2", *tiny_args(16, i_img=10, i_weights=0, N_rand=64, N_samples=8, N_importance=0))
    run = tmp_path / "h"
    proc = run_script("eval.py", "--run", run, "--no_path")
    assert "test/psnr, test/ssim at step 10" in proc.stdout
    experiment, session, acc = hparams_data(run)
    assert [m.name.tag for m in experiment.metric_infos] == list(HPARAM_METRICS)
    assert {"val/psnr", "test/psnr"} <= {m.name.tag for m in experiment.metric_infos}
    assert {"omega0", "first_omega0", "siren_init"} <= {h.name for h in experiment.hparam_infos}  # columns
    values = dict(session.hparams)
    assert not PERIODIC_ONLY & values.keys()  # a relu run has no omega0 / SIREN-init values
    assert values["activation"].string_value == "relu" and values["seed"].number_value == 2
    assert values["lrate"].number_value == pytest.approx(5e-3) and values["encoding"].string_value == "pe10/4"
    metrics = json.loads((run / "eval_0000010" / "metrics.json").read_text())
    (test_psnr,), (test_ssim,) = acc.Scalars("test/psnr"), acc.Scalars("test/ssim")
    assert test_psnr.step == 10 and test_psnr.value == pytest.approx(metrics["psnr"], rel=1e-6)
    assert test_ssim.value == pytest.approx(metrics["ssim"], rel=1e-6)
    assert acc.Scalars("val/psnr")[-1].step == 10

    # a subset of the test views is not the run's test PSNR: nothing written
    proc = run_script("eval.py", "--run", run, "--no_path", "--testskip", "2", "--outdir", tmp_path / "sub")
    assert "test scalars not written (--testskip 2 scores a subset of the test views)" in proc.stdout
    assert len(hparams_data(run)[2].Scalars("test/psnr")) == 1
