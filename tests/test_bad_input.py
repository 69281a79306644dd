"""Bad input through the real command line, one table row per case (CASES).

Each case runs ``python <script> ...`` from the repository root on files built in tmp_path
and must: exit non-zero; end stderr with one ``error: ...`` line that names the file or flag
(the row's needles); print no other line on stderr but tqdm bars, and no traceback; and, for
train.py, leave no run folder behind (every case fails while parsing flags or loading data,
before the run folder is made). Most flag errors are checked in-process (FLAG_CASES: the
message of the one line; each case through the command line would cost a Python start),
as are the limits of every option; and compare.py's handling of one run given twice
(de-duplicated with a note).
"""
import json
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import cv2
import numpy as np
import pytest

from tests.conftest import ROOT

SPLITS = ("train", "val", "test")


def run(argv, timeout=300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *map(str, argv)], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout)


def error_lines(stderr: str):
    """stderr's non-empty lines but tqdm progress bars (they hold '|' or '%')."""
    return [line for line in stderr.splitlines() if line.strip() and "|" not in line and "%" not in line]


# ---------------------------------------------------------------- tiny scenes in tmp_path
def write_png(path: Path, h: int, w: int, channels: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), np.full((h, w, channels), 200, np.uint8))


def blender_scene(root: Path, size: int = 8) -> Path:
    """A valid Blender scene: 2 RGBA ``size`` x ``size`` views per split."""
    for split in SPLITS:
        frames = []
        for k in range(2):
            write_png(root / split / f"r_{k}.png", size, size, 4)
            frames.append({"file_path": f"{split}/r_{k}", "transform_matrix": np.eye(4).tolist()})
        (root / f"transforms_{split}.json").write_text(json.dumps({"camera_angle_x": 0.69, "frames": frames}))
    return root


def llff_scene(root: Path) -> Path:
    """A valid LLFF scene: poses_bounds.npy (3 views of 48x64, focal 50) + images_8/ at 6x8."""
    rows = []
    for k in range(3):
        m = np.zeros((3, 5))
        m[:, 0], m[:, 1], m[:, 2], m[:, 3], m[:, 4] = [0, -1, 0], [1, 0, 0], [0, 0, 1], [0.1 * k, 0, 0], [48, 64, 50]
        rows.append(np.concatenate([m.ravel(), [2.0, 10.0]]))
    root.mkdir(parents=True)
    np.save(root / "poses_bounds.npy", np.array(rows))
    for k in range(3):
        write_png(root / "images_8" / f"img{k:03d}.png", 6, 8, 3)
    return root


def set_field(split: str, key: str, value):
    def change(scene: Path):
        path = scene / f"transforms_{split}.json"
        path.write_text(json.dumps({**json.loads(path.read_text()), key: value}))
    return change


def put_image(name: str, h: int, w: int, channels: int):
    return lambda scene: write_png(scene / name, h, w, channels)


def put_bytes(name: str, data: bytes):
    return lambda scene: (scene / name).write_bytes(data)


def put_npy(array: np.ndarray):
    return lambda scene: np.save(scene / "poses_bounds.npy", array)


# ---------------------------------------------------------------- command lines
def train(tmp: Path, *flags):
    """train.py on the 8x8 demo scene with a tiny net, into tmp/logs/run; ``flags`` override."""
    return ["train.py", "--dataset_type", "demo", "--demo_res", "8", "--basedir", tmp / "logs", "--expname", "run",
            "--N_iters", "1", "--netdepth", "2", "--netwidth", "16", "--N_samples", "4", "--N_rand", "16",
            "--i_weights", "0", "--i_testset", "0", "--i_video", "0", "--i_img", "0", *flags]


def blender(change=None, *flags, size=8):
    def build(tmp: Path):
        scene = blender_scene(tmp / "blender", size)
        if change is not None:
            change(scene)
        return train(tmp, "--dataset_type", "blender", "--datadir", scene, *flags)
    return build


def llff(change, *flags):
    def build(tmp: Path):
        scene = llff_scene(tmp / "llff")
        change(scene)
        return train(tmp, "--dataset_type", "llff", "--datadir", scene, *flags)
    return build


def flags(*values):
    return lambda tmp: train(tmp, *values)


def a_run(tmp: Path) -> Path:
    """A run folder holding only config.txt (enough for argument checks)."""
    run_dir = tmp / "logs" / "r_s0"
    run_dir.mkdir(parents=True)
    (run_dir / "config.txt").write_text("dataset_type = demo\nexpname = r_s0\n")
    return run_dir


def a_file(tmp: Path) -> Path:
    path = tmp / "taken.txt"
    path.write_text("not a folder\n")
    return path


# (id, argv builder (tmp_path -> argv), substrings of the error line)
CASES = [
    # data: Blender
    ("json_not_utf8", blender(put_bytes("transforms_train.json", b"\x89PNG\r\n\x1a\n\xff\xfe\x00")),
     ("transforms_train.json", "UTF-8")),
    ("angle_string", blender(set_field("train", "camera_angle_x", "abc")),
     ("transforms_train.json", "camera_angle_x", "(0, pi)", "'abc'")),
    ("angle_zero", blender(set_field("val", "camera_angle_x", 0)), ("transforms_val.json", "camera_angle_x")),
    ("angle_negative", blender(set_field("train", "camera_angle_x", -0.5)), ("transforms_train.json", "-0.5")),
    ("angle_pi", blender(set_field("test", "camera_angle_x", 3.1416)), ("transforms_test.json", "camera_angle_x")),
    ("smaller_than_downscale", blender(None, "--downscale", "8", size=4), ("r_0.png", "4x4", "--downscale 8")),
    ("rgb_among_rgba", blender(put_image("val/r_1.png", 8, 8, 3)), ("val/r_1.png", "3 channels", "4 channels")),
    ("odd_size", blender(put_image("test/r_0.png", 6, 8, 4)), ("test/r_0.png", "8x6", "5 of 6")),
    # data: LLFF
    ("npy_empty", llff(put_bytes("poses_bounds.npy", b"")), ("poses_bounds.npy", "empty")),
    ("npy_strings", llff(put_npy(np.array([["a"] * 17] * 3))), ("poses_bounds.npy", "numeric", "<U1")),
    ("llff_odd_size", llff(put_image("images_8/img001.png", 6, 10, 3)), ("images_8", "img001.png")),
    ("random_bkgd_on_rgb", llff(lambda scene: None, "--random_bkgd"), ("--random_bkgd", "alpha", "RGB")),
    # flags, through the command line (the other flag cases: FLAG_CASES, in-process)
    ("lrate_nan", flags("--lrate", "nan"), ("--lrate must be a finite number > 0, got nan",)),
    ("omega0_nan", flags("--activation", "sin", "--omega0", "nan"), ("--omega0", "nan")),
    ("lrate_schedule_unknown", flags("--lrate_schedule", "cosine"), ("--lrate_schedule", "cosine")),
    # output folders that are files
    ("eval_outdir_is_file", lambda tmp: ["eval.py", "--run", a_run(tmp), "--outdir", a_file(tmp)],
     ("--outdir", "taken.txt", "existing file")),
    ("compare_out_is_file", lambda tmp: ["compare.py", a_run(tmp), "--no_eval", "--out", a_file(tmp)],
     ("--out", "taken.txt", "existing file")),
    ("fit_image_lr_nan", lambda tmp: ["fit_image.py", "--lr", "nan", "--out", tmp / "fit"], ("--lr", "nan")),
]


JOBS = 2  # cases run two at a time: each is mostly Python importing torch


@pytest.fixture(scope="module")
def outcomes(request, tmp_path_factory):
    """{case id: (its tmp folder, argv, CompletedProcess)} for the selected CASES: the files
    are built one case after another, then the commands run JOBS at a time."""
    wanted = {item.callspec.id for item in request.session.items
              if getattr(item, "originalname", None) == "test_one_line_error"}
    built = []
    for case_id, build, _ in CASES:
        if case_id in wanted:
            tmp = tmp_path_factory.mktemp(case_id)
            built.append((case_id, tmp, build(tmp)))
    with ThreadPoolExecutor(JOBS) as pool:
        procs = pool.map(lambda case: run(case[2]), built)
        return {case_id: (tmp, argv, proc) for (case_id, tmp, argv), proc in zip(built, procs)}


@pytest.mark.parametrize("case_id, needles", [(c[0], c[2]) for c in CASES], ids=[c[0] for c in CASES])
def test_one_line_error(outcomes, case_id, needles):
    tmp, argv, proc = outcomes[case_id]
    assert proc.returncode != 0, proc.stdout[-2000:]
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    lines = error_lines(proc.stderr)
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr[-3000:]
    assert proc.stderr.strip().splitlines()[-1].startswith("error: "), proc.stderr[-3000:]
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    if argv[0] == "train.py":
        assert not (tmp / "logs" / "run").exists(), "a failed train.py left a run folder"
    if argv[0] == "fit_image.py":
        assert not (tmp / "fit").exists()


# ---------------------------------------------------------------- every flag limit, in-process
# (id, argv, substrings of the error): the message train.py prints as its one error line
# (the command-line path of the same errors: the flag rows of CASES).
FLAG_CASES = [
    ("lrate_0", ("--lrate", "0"), ("--lrate", "> 0")),
    ("lrate_negative", ("--lrate", "-1"), ("--lrate", "-1")),
    ("lrate_decay_0", ("--lrate_decay", "0"), ("--lrate_decay", ">= 1")),
    ("lrate_decay_negative", ("--lrate_decay", "-5"), ("--lrate_decay", "-5")),
    ("i_print_0", ("--i_print", "0"), ("--i_print", ">= 1")),
    ("i_img_negative", ("--i_img", "-1"), ("--i_img", "0: off")),
    ("multires_negative", ("--multires", "-1"), ("--multires ",)),
    ("multires_views_negative", ("--multires_views", "-1"), ("--multires_views",)),
    ("demo_res_0", ("--demo_res", "0"), ("--demo_res",)),
    ("n_frames_0", ("--n_frames", "0"), ("--n_frames",)),
    ("first_omega0_inf", ("--first_omega0", "inf"), ("--first_omega0", "inf")),
    ("N_importance_negative", ("--N_importance", "-1"), ("--N_importance",)),
    ("testskip_negative", ("--testskip", "-1"), ("--testskip",)),
    ("factor_0", ("--factor", "0"), ("--factor",)),
    ("render_factor_negative", ("--render_factor", "-1"), ("--render_factor",)),
    ("chunk_0", ("--chunk", "0"), ("--chunk",)),
    ("sigma_bias_init_nan", ("--sigma_bias_init", "nan"), ("--sigma_bias_init",)),
    ("lrate_final_0", ("--lrate_schedule", "run", "--lrate_final", "0"), ("--lrate_final", "(0, 1]")),
    ("time_budget_negative", ("--time_budget", "-1"), ("--time_budget", ">= 0")),
]


def parse(*argv):
    from utils.config import build_parser, parse_args
    return parse_args(build_parser(), list(argv))


@pytest.mark.parametrize("argv, needles", [c[1:] for c in FLAG_CASES], ids=[c[0] for c in FLAG_CASES])
def test_flag_error_names_the_flag(argv, needles):
    from utils.errors import UserError
    with pytest.raises(UserError) as err:
        parse(*argv)
    assert "\n" not in str(err.value)
    for needle in needles:
        assert needle in str(err.value), (needle, str(err.value))


def float_flags():
    from utils.config import FLOAT_RANGES
    return sorted(FLOAT_RANGES) + ["sigma_bias_init"]


@pytest.mark.parametrize("value", ["nan", "inf", "-inf"])
@pytest.mark.parametrize("flag", float_flags())
def test_float_flags_reject_non_finite(flag, value):
    from utils.errors import UserError
    with pytest.raises(UserError) as err:
        parse(f"--{flag}={value}")  # "=": argparse reads a lone "-inf" as a flag
    assert str(err.value).startswith(f"--{flag} must be a finite number")


def int_limits():
    from utils.config import INT_MINIMUMS
    return [(flag, lowest) for flags_, lowest, _ in INT_MINIMUMS for flag in flags_]


@pytest.mark.parametrize("flag, lowest", int_limits())
def test_int_flags_reject_below_limit(flag, lowest):
    from utils.errors import UserError
    with pytest.raises(UserError) as err:
        parse(f"--{flag}", str(lowest - 1))
    assert str(err.value).startswith(f"--{flag} must be >= {lowest}")
    parse(f"--{flag}", str(lowest))  # the limit itself is allowed


@pytest.mark.parametrize("argv", [
    ("--llffhold", "0"), ("--llffhold", "-1"),  # documented: hold out nothing
    ("--i_img", "0", "--i_weights", "0", "--i_testset", "0", "--i_video", "0"),  # 0: off
    ("--testskip", "0"), ("--render_factor", "0"), ("--netchunk", "0"), ("--N_importance", "0"),
    ("--multires", "0"), ("--i_embed", "-1"), ("--sigma_bias_init", "default"), ("--wire_omega0", "-3"),
    ("--first_bias_scale", "0"), ("--perturb", "0"), ("--raw_noise_std", "0"), ("--occ_stop_T", "0"),
])
def test_meaningful_edge_values_are_accepted(argv):
    parse(*argv)


# ---------------------------------------------------------------- compare.py: one run given twice
def test_compare_counts_a_run_once_however_spelled(tmp_path):
    """The same run as 'a', 'a/', 'x/../a' and a symlink counts once: compare.py de-duplicates
    (by real path) and prints a note for each repeat, rather than refusing."""
    run_dir = a_run(tmp_path)
    (tmp_path / "link").symlink_to(run_dir, target_is_directory=True)
    spellings = [run_dir, f"{run_dir}/", run_dir.parent / ".." / "logs" / "r_s0", tmp_path / "link"]
    out = tmp_path / "cmp"
    proc = run(["compare.py", *spellings, "--no_eval", "--out", out])
    assert proc.returncode == 0, proc.stderr[-3000:]
    notes = [line for line in proc.stdout.splitlines() if "is the same run as" in line]
    assert len(notes) == 3 and all("counted once" in n for n in notes), proc.stdout
    rows = (out / "summary.csv").read_text().splitlines()[1:]
    assert [r.split(",")[0] for r in rows] == ["run", "group"]
    assert rows[1].split(",")[3] == "1"  # the group's n
