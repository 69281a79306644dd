"""Bad input through the real command line: one clear line on stderr, non-zero exit."""
import json

import numpy as np
import pytest

from tests.conftest import run_script


def run(*args):
    """(exit code, stderr) of ``python *args`` run from the repository root."""
    proc = run_script(*args, check=False, timeout=120)
    return proc.returncode, proc.stderr.strip()


def assert_one_line_error(code, err, *needles):
    assert code != 0
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])


@pytest.fixture
def tiny_blender(tmp_path):
    """A valid 2-view Blender scene: transforms JSONs and 8x8 RGBA PNGs."""
    import cv2
    scene = tmp_path / "scene"
    scene.mkdir()
    for split in ("train", "val", "test"):
        frames = []
        for k in range(2):
            name = f"{split}/r_{k}"
            (scene / split).mkdir(exist_ok=True)
            cv2.imwrite(str(scene / f"{name}.png"), np.full((8, 8, 4), 200, np.uint8))
            frames.append({"file_path": name, "transform_matrix": np.eye(4).tolist()})
        (scene / f"transforms_{split}.json").write_text(json.dumps({"camera_angle_x": 0.7, "frames": frames}))
    return scene


def train_args(datadir, tmp_path, *extra):
    return ["train.py", "--dataset_type", "blender", "--datadir", str(datadir), "--basedir", str(tmp_path / "logs"),
            "--N_iters", "1", "--netdepth", "2", "--netwidth", "16", "--N_samples", "4", *extra]


def test_missing_datadir(tmp_path):
    code, err = run(*train_args(tmp_path / "nowhere", tmp_path))
    assert_one_line_error(code, err, "nowhere", "does not exist")


def test_malformed_transforms_json(tiny_blender, tmp_path):
    (tiny_blender / "transforms_val.json").write_text('{"camera_angle_x": 0.7, "frames": [')
    code, err = run(*train_args(tiny_blender, tmp_path))
    assert_one_line_error(code, err, "transforms_val.json", "malformed JSON")


def test_transforms_without_frames(tiny_blender, tmp_path):
    (tiny_blender / "transforms_test.json").write_text('{"camera_angle_x": 0.7}')
    code, err = run(*train_args(tiny_blender, tmp_path))
    assert_one_line_error(code, err, "transforms_test.json", "frames")


def test_missing_image(tiny_blender, tmp_path):
    (tiny_blender / "train" / "r_1.png").unlink()
    code, err = run(*train_args(tiny_blender, tmp_path))
    assert_one_line_error(code, err, "r_1.png", "missing image")


def test_unknown_activation(tiny_blender, tmp_path):
    code, err = run(*train_args(tiny_blender, tmp_path, "--activation", "swish"))
    assert_one_line_error(code, err, "--activation", "swish", "relu")


def test_unknown_config_key(tmp_path):
    cfg = tmp_path / "bad.txt"
    cfg.write_text("expname = x\ndataset_type = demo\nN_sampels = 64\n")
    code, err = run("train.py", "--config", str(cfg))
    assert_one_line_error(code, err, str(cfg), "N_sampels")


def test_unknown_flag_and_missing_config():
    code, err = run("train.py", "--dataset_type", "demo", "--N_iters", "1", "--N_sample", "3")
    assert_one_line_error(code, err, "--N_sample")
    code, err = run("train.py", "--config", "configs/nope.txt")
    assert_one_line_error(code, err, "configs/nope.txt", "not found")


def test_eval_without_checkpoint(tmp_path):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "config.txt").write_text("dataset_type = demo\n")
    code, err = run("eval.py", "--run", str(run_dir))
    assert_one_line_error(code, err, "no checkpoint", str(run_dir))


def test_nerf_pytorch_config_file_parses(tmp_path):
    """A config written for nerf-pytorch (its lego/fern files) is accepted unchanged."""
    from utils.config import build_parser, parse_args
    text = ("expname = blender_paper_lego\nbasedir = ./logs\ndatadir = ./data/nerf_synthetic/lego\n"
            "dataset_type = blender\nno_batching = True\nuse_viewdirs = True\nwhite_bkgd = True\n"
            "lrate_decay = 500\nN_samples = 64\nN_importance = 128\nN_rand = 1024\nprecrop_iters = 500\n"
            "precrop_frac = 0.5\nhalf_res = True\n")
    path = tmp_path / "lego.txt"
    path.write_text(text)
    args = parse_args(build_parser(), ["--config", str(path)])
    assert args.no_batching and args.half_res and args.N_importance == 128 and args.lrate_decay == 500


def test_resolved_config_round_trips(tmp_path):
    from utils.config import build_parser, format_config, parse_args
    args = parse_args(build_parser(), ["--dataset_type", "demo", "--skips", "2", "3", "--siren_init", "False",
                                       "--white_bkgd", "--activation", "cos"])
    path = tmp_path / "config.txt"
    path.write_text(format_config(args))
    again = parse_args(build_parser(), ["--config", str(path)])
    assert vars(again) | {"config": None} == vars(args) | {"config": None}


@pytest.mark.parametrize("script", ["activation_study", "init_smoothness", "quality_at_budget", "recipe_search",
                                    "throughput"])
def test_bench_scripts_run_as_files_and_as_modules(script):
    """`python bench/X.py` (the form the issues quote) works as well as `python -m bench.X`."""
    as_file = run_script(f"bench/{script}.py", "--help", timeout=120)
    as_module = run_script("-m", f"bench.{script}", "--help", timeout=120)
    assert as_file.stdout.split("\n", 1)[1] == as_module.stdout.split("\n", 1)[1]
