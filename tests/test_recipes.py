"""Activation recipes and presets: what --activation applies, the precedence, the printed
line, the resolved config, and the warnings for settings known to fail."""

import pytest

import utils.config as config
from conftest import ROOT, run_script
from models.activations import ACTIVATIONS, PRESETS, recipe_of
from utils.config import build_parser, format_config, parse_args
from utils.errors import UserError

DEMO = str(ROOT / "configs" / "demo.txt")
RECIPE_KEYS = ("lrate", "i_embed")  # every recipe names at least these


def parse(*argv, capsys=None):
    config._SAID.clear()  # the recipe line and warnings are said once per process
    args = parse_args(build_parser(), [str(a) for a in argv])
    out = capsys.readouterr().out if capsys is not None else ""
    return args, out


def expected(recipe: str, key: str):
    """A recipe value as the parser stores it."""
    action = next(a for a in build_parser()._actions if a.dest == key)
    return action.type(str(recipe_of(recipe)[key]))


@pytest.mark.parametrize("name", sorted(ACTIVATIONS) + sorted(PRESETS))
def test_every_activation_and_preset_has_a_parseable_recipe(name):
    recipe = recipe_of(name)
    assert set(RECIPE_KEYS) <= set(recipe), name
    dests = {a.dest for a in build_parser()._actions}
    assert set(recipe) <= dests, set(recipe) - dests
    args, _ = parse("--activation", name)
    for key in recipe:
        assert getattr(args, key) == expected(name, key), key
    if ACTIVATIONS[args.activation].periodic:
        assert {"first_omega0", "omega0", "siren_init"} <= set(recipe)
    assert args.recipe == name
    assert args.activation == (PRESETS[name].activation if name in PRESETS else name)


def test_activation_alone_applies_its_recipe_over_the_config_file_and_prints_it(capsys):
    args, out = parse("--config", DEMO, "--activation", "sin", capsys=capsys)
    for key in recipe_of("sin"):
        assert getattr(args, key) == expected("sin", key)
    lines = [ln for ln in out.splitlines() if ln.startswith("recipe sin: ")]
    assert len(lines) == 1 and f"lrate={recipe_of('sin')['lrate']:g}" in lines[0], out
    assert "omega0=" in lines[0] and "i_embed=" in lines[0]


def test_command_line_beats_the_recipe_and_is_listed_as_kept(capsys):
    args, out = parse("--config", DEMO, "--activation", "sin", "--lrate", "3e-4", "--omega0=7", capsys=capsys)
    assert args.lrate == 3e-4 and args.omega0 == 7.0
    assert args.first_omega0 == expected("sin", "first_omega0")
    assert "kept: lrate, omega0" in out and "lrate=" not in out.split("(")[0]


def test_config_file_naming_the_activation_is_explicit(tmp_path):
    """command line > that file > recipe > defaults"""
    path = tmp_path / "sin_recipe.txt"
    path.write_text("activation = sin\nlrate = 7e-4\nomega0 = 3\n")
    args, _ = parse("--config", path)
    assert (args.lrate, args.omega0) == (7e-4, 3.0)                       # the file wins over the recipe
    assert args.first_omega0 == expected("sin", "first_omega0")           # the recipe fills the rest
    args, _ = parse("--config", path, "--lrate", "1e-4")
    assert (args.lrate, args.omega0) == (1e-4, 3.0)                       # the command line wins over both
    # the same file under another activation is a plain config file: the recipe wins
    args, _ = parse("--config", path, "--activation", "cos")
    assert args.activation == "cos" and args.lrate == expected("cos", "lrate") and \
        args.omega0 == expected("cos", "omega0")


def test_config_file_without_an_activation_ranks_below_the_recipe(tmp_path):
    path = tmp_path / "scene.txt"
    path.write_text("dataset_type = demo\nlrate = 7e-4\n")
    args, _ = parse("--config", path, "--activation", "finer")
    assert args.lrate == expected("finer", "lrate")
    args, _ = parse("--config", path, "--activation", "finer", "--recipe", "none")
    assert args.lrate == 7e-4 and args.recipe == "none" and args.activation == "finer"


def test_recipe_none_applies_nothing(capsys):
    args, out = parse("--activation", "sin", "--recipe", "none", capsys=capsys)
    defaults = config.parser_defaults()
    for key in ("lrate", "first_omega0", "omega0", "siren_init", "i_embed"):
        assert getattr(args, key) == defaults[key]
    assert not [ln for ln in out.splitlines() if ln.startswith("recipe ")], out


@pytest.mark.parametrize("preset,fn", [("report-sin", "sin"), ("report-cos", "cos")])
def test_report_preset_is_exactly_the_report_setting(preset, fn):
    args, _ = parse("--config", ROOT / "configs" / "blender" / "lego.txt", "--activation", preset)
    assert (args.activation, args.recipe) == (fn, preset)
    assert (args.first_omega0, args.omega0, args.siren_init) == (1.0, 1.0, False)
    assert (args.i_embed, args.multires, args.multires_views) == (0, 10, 4)
    assert args.sigma_bias_init == "default" and args.occ_grid is False  # lego.txt's grid is turned off
    assert args.lrate == 5e-4  # nerf_pl's


def test_lego_report_config_is_the_preset():
    args, _ = parse("--config", ROOT / "configs" / "blender" / "lego_report.txt")
    preset, _ = parse("--config", ROOT / "configs" / "blender" / "lego.txt", "--activation", "report-sin")
    for key in list(recipe_of("report-sin")) + ["activation", "recipe"]:
        assert getattr(args, key) == getattr(preset, key), key


def test_recipe_of_a_preset_alone_picks_its_activation_and_mismatches_are_errors():
    args, _ = parse("--recipe", "report-cos")
    assert (args.activation, args.recipe) == ("cos", "report-cos")
    with pytest.raises(UserError, match="recipe of activation 'sin'"):
        parse("--activation", "relu", "--recipe", "report-sin")
    with pytest.raises(UserError, match="unknown"):
        parse("--recipe", "siren")
    with pytest.raises(UserError, match="unknown"):
        parse("--activation", "report-tanh")


@pytest.mark.parametrize("setting", ["sin", "report-cos", "finer", "relu"])
def test_resolved_config_rereads_identically_and_applies_nothing(setting, tmp_path, capsys):
    args, _ = parse("--config", DEMO, "--activation", setting, "--lrate", "2e-4", capsys=capsys)
    path = tmp_path / "config.txt"
    path.write_text(format_config(args))
    assert f"recipe = {setting}" in path.read_text()
    again, out = parse("--config", path, capsys=capsys)
    assert vars(again) == {**vars(args), "config": str(path)}
    assert not [ln for ln in out.splitlines() if ln.startswith("recipe ")], out
    # eval.py-style overrides of non-recipe keys keep it that way
    again, out = parse("--config", path, "--testskip", "2", capsys=capsys)
    assert again.lrate == 2e-4 and not [ln for ln in out.splitlines() if ln.startswith("recipe ")]


# ---------------------------------------------------------------- warnings
PITFALL = ("sin", "--first_omega0", "30", "--i_embed", "0", "--lrate", "1e-3", "--recipe", "none")


@pytest.mark.parametrize("act", ["sin", "cos", "finer"])
def test_periodic_activation_with_large_omega0_on_pe_at_high_lr_warns(act, capsys):
    _, out = parse("--activation", act, *PITFALL[1:], capsys=capsys)
    warnings = [ln for ln in out.splitlines() if ln.startswith("warning: ")]
    assert len(warnings) == 1, out
    assert "positional encoding" in warnings[0] and "alias" in warnings[0] and "--i_embed -1" in warnings[0]
    assert "first_omega0 1 to 5 on PE" in warnings[0]
    assert f"--recipe {act}" in warnings[0]


@pytest.mark.parametrize("argv, depth, w", [
    (["--config", DEMO, "--wire_omega0", "20", "--wire_s0", "10"], 4, 20),  # the authors' image values
    (["--wire_omega0", "10"], 8, 10),
    ([], 8, 5),                                                              # the recipe, at 8 layers
])
def test_wire_where_its_init_is_white_noise_warns(argv, depth, w, capsys):
    args, out = parse("--activation", "wire", *argv, capsys=capsys)
    assert args.netdepth == depth
    warnings = [ln for ln in out.splitlines() if ln.startswith("warning: ")]
    assert len(warnings) == 1, out
    assert f"wire with wire_omega0 {w} in a trunk of {depth} layers starts as white noise" in warnings[0]
    assert "bench/init_smoothness.py" in warnings[0]
    assert "--recipe wire: lrate 0.002, w 5, s0 5, raw xyz" in warnings[0]
    assert "--wire_omega0 3 --wire_s0 3" in warnings[0]


@pytest.mark.parametrize("argv", [
    ["--activation", "sin"],                                             # the recipe
    ["--config", DEMO, "--activation", "wire"],                          # the recipe at 4 layers
    ["--activation", "wire", "--wire_omega0", "3", "--wire_s0", "3"],    # 8 layers
    ["--config", DEMO, "--activation", "wire", "--wire_omega0", "10"],   # 4 layers: 0.34-0.57 at d = 0.01
    ["--activation", "wire", "--wire_omega0", "20", "--wire_s0", "10", "--netdepth", "3"],  # shallow
    ["--activation", "report-sin"],                                      # omega0 1
    ["--activation", "sin", "--recipe", "none", "--i_embed", "-1", "--lrate", "1e-3"],  # raw xyz
    ["--activation", "sin", "--recipe", "none", "--lrate", "2e-4"],      # low lr
    ["--activation", "sin", "--recipe", "none", "--first_omega0", "5", "--lrate", "1e-3"],
    ["--activation", "relu", "--lrate", "1e-3"],                         # not periodic
    ["--activation", "gauss", "--i_embed", "0", "--lrate", "1e-3"],
])
def test_no_warning_outside_the_known_failure(argv, capsys):
    args, out = parse(*argv, capsys=capsys)
    assert "warning" not in out, out


def test_train_warns_and_records_the_recipe_end_to_end(tmp_path):
    from conftest import tiny_args
    base = tmp_path / "logs"
    proc = run_script("train.py", *tiny_args(), "--N_iters", "2", "--basedir", base, "--expname", "w",
                      "--activation", "sin", "--recipe", "none", "--first_omega0", "30", "--i_embed", "0")
    assert proc.stdout.count("warning: sin with first_omega0 30 on positional encoding") == 1, proc.stdout
    text = (base / "w" / "config.txt").read_text()
    assert "recipe = none" in text and "activation = sin" in text
    proc = run_script("train.py", *tiny_args(), "--N_iters", "2", "--basedir", base, "--expname", "r",
                      "--activation", "report-cos")
    assert "recipe report-cos: " in proc.stdout and "warning" not in proc.stdout
    text = (base / "r" / "config.txt").read_text()
    assert "recipe = report-cos" in text and "activation = cos" in text and "sigma_bias_init = default" in text
    # eval reads config.txt: same values, nothing re-applied, the checkpoint's config matches
    proc = run_script("eval.py", "--run", base / "r", "--no_path")
    assert not [ln for ln in proc.stdout.splitlines() if ln.startswith("recipe ")], proc.stdout


def test_help_documents_the_precedence():
    out = run_script("train.py", "--help").stdout
    flat = " ".join(out.split())
    assert "command line > recipe > config file > defaults" in flat
    assert "command line > that file > recipe > defaults" in flat
    assert "report-sin" in flat
