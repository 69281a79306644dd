"""One config path: configargparse with nerf-pytorch's option names and file format.

A nerf-pytorch config file (``key = value`` lines) runs unchanged; unknown keys in a
config file are an error naming the file and the key. The resolved config is written
to ``<basedir>/<expname>/config.txt`` in the same format, so it can be re-read.
"""
import argparse
import math
import os
from typing import Callable, List, Optional

import configargparse

from models.activations import (ACTIVATIONS, PRESETS, recipe_activation, recipe_names, recipe_of,
                                resolve_setting)
from utils.errors import UserError
from utils.io import atomic_write_text


def str2bool(value) -> bool:
    if isinstance(value, bool):
        return value
    lowered = str(value).strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise configargparse.ArgumentTypeError(f"expected a boolean (True/False), got '{value}'")


def _number_or_default(value) -> str:
    if str(value).strip().lower() == "default":
        return "default"
    try:
        return str(float(value))
    except ValueError:
        raise configargparse.ArgumentTypeError(f"expected a number or 'default', got '{value}'") from None


def add_common_options(p: configargparse.ArgumentParser) -> None:
    """Everything a scene/model/render config may contain (train.py and eval.py share it)."""
    p.add_argument("--config", is_config_file=True, help="config file path")
    p.add_argument("--expname", type=str, default="exp", help="experiment name")
    p.add_argument("--basedir", type=str, default="./logs", help="where runs are stored")
    p.add_argument("--datadir", type=str, default="", help="input data directory")
    g = p.add_argument_group("model")
    g.add_argument("--netdepth", type=int, default=8, help="layers in the coarse network")
    g.add_argument("--netwidth", type=int, default=256, help="channels per layer (coarse)")
    g.add_argument("--netdepth_fine", type=int, default=8, help="layers in the fine network")
    g.add_argument("--netwidth_fine", type=int, default=256, help="channels per layer (fine)")
    g.add_argument("--skips", type=int, nargs="*", default=[4], help="layers after which the input is re-injected")
    g.add_argument("--use_viewdirs", action="store_true", help="use full 5D input instead of 3D")
    g.add_argument("--i_embed", type=int, default=0, help="0: positional encoding, -1: none (raw xyz)")
    g.add_argument("--multires", type=int, default=10, help="log2 of max frequency for xyz encoding")
    g.add_argument("--multires_views", type=int, default=4, help="log2 of max frequency for direction encoding")
    g.add_argument("--activation", type=str, default="relu",
                   help=f"hidden activation: {sorted(ACTIVATIONS)}, or a preset {sorted(PRESETS)} (an activation "
                        f"with a recipe of its own, e.g. report-sin = sin with the course report's setting). "
                        f"Applies the activation's recipe (see --recipe)")
    g.add_argument("--recipe", type=str, default=None,
                   help="the recipe applied (lrate, omega0s, init, encoding, ... of models/activations.py): "
                        "default the activation's own (a preset's for a preset), 'none' for no recipe. "
                        "Precedence: command line > recipe > config file > defaults; but a config file that "
                        "names the activation (and so the same recipe) counts as explicit: command line > "
                        "that file > recipe > defaults. The run's config.txt records the values in effect")
    g.add_argument("--dir_activation", type=str, default=None, help="direction-branch activation (default: --activation)")
    g.add_argument("--first_omega0", type=float, default=30.0, help="omega0 of the first layer (periodic activations)")
    g.add_argument("--omega0", type=float, default=30.0, help="omega0 of hidden layers (periodic activations)")
    g.add_argument("--siren_init", type=str2bool, default=True, help="SIREN init for periodic activations (True/False)")
    g.add_argument("--gauss_scale", type=float, default=10.0, help="gauss: s in exp(-(s z)^2)")
    g.add_argument("--wire_omega0", type=float, default=20.0, help="wire: frequency omega of every layer")
    g.add_argument("--wire_s0", type=float, default=10.0, help="wire: Gaussian scale s0 of every layer")
    g.add_argument("--complex_width", type=str, default="full", choices=["full", "matched"],
                   help="complex-valued trunk (wire): 'full' keeps netwidth complex features per layer (2x the real "
                        "parameters, ~4x the multiply-adds of a real net); 'matched' uses int(netwidth / sqrt(2)), "
                        "as WIRE's reference code, for about a real net's parameter count (wire's recipe)")
    g.add_argument("--first_bias_scale", type=float, default=1.0,
                   help="finer: first-layer bias ~ U(-k, k); 0: PyTorch's default bias")
    g.add_argument("--sigma_bias_init", type=_number_or_default, default="0.1",
                   help="initial bias of the density head; 'default': PyTorch's U(-1/sqrt(W), 1/sqrt(W)), "
                        "which leaves ~1 ReLU network in 5 with zero density (and zero gradient) everywhere")
    g.add_argument("--sigma_activation", type=str, default="relu", choices=["relu", "softplus"], help="density activation")
    g = p.add_argument_group("rendering")
    g.add_argument("--N_samples", type=int, default=64, help="coarse samples per ray")
    g.add_argument("--N_importance", type=int, default=0, help="additional fine samples per ray")
    g.add_argument("--perturb", type=float, default=1.0, help="1: stratified jitter in training, 0: none")
    g.add_argument("--raw_noise_std", type=float, default=0.0, help="std of noise added to raw sigma in training")
    g.add_argument("--lindisp", action="store_true", help="sample linearly in disparity rather than depth")
    g.add_argument("--chunk", type=int, default=1024 * 32, help="rays rendered in parallel")
    g.add_argument("--netchunk", type=int, default=0,
                   help="points sent through the network in parallel (0: 65536 on CUDA, 4096 on CPU)")
    g.add_argument("--render_factor", type=int, default=0, help="downsample factor for path videos (0 or 1: full)")
    g.add_argument("--n_frames", type=int, default=40, help="frames of the 360-degree orbit (bounded scenes)")
    g.add_argument("--occ_grid", type=str2bool, nargs="?", const=True, default=False,
                   help="skip empty space with an occupancy grid over the scene box, and stop rays early "
                        "(bounded scenes only: blender, demo); '--occ_grid False' turns a config's grid off")
    g.add_argument("--occ_res", type=int, default=128, help="occupancy grid cells per axis")
    g.add_argument("--occ_thresh", type=float, default=0.01,
                   help="a cell is empty when its density's opacity over one cell side is below this")
    g.add_argument("--occ_update_every", type=int, default=16, help="training steps between grid updates")
    g.add_argument("--occ_warmup", type=int, default=16,
                   help="the first N grid updates evaluate every cell and skip nothing; later ones a random "
                        "quarter + the occupied")
    g.add_argument("--occ_decay", type=float, default=0.95, help="grid density decay per update (max(decay*old, new))")
    g.add_argument("--occ_warmup_samples", type=int, default=0,
                   help="samples per ray of the training render while the grid warms up (nothing is skipped "
                        "then); 0: N_samples")
    g.add_argument("--occ_stop_T", type=float, default=1e-4,
                   help="with --occ_grid: fine samples behind coarse transmittance below this are skipped (0: off)")
    g = p.add_argument_group("dataset")
    g.add_argument("--dataset_type", type=str, default="blender", help="blender, llff, colmap or demo")
    g.add_argument("--testskip", type=int, default=1, help="load 1/N of val/test images")
    g.add_argument("--white_bkgd", action="store_true", help="composite RGBA onto white (Blender)")
    g.add_argument("--random_bkgd", type=str2bool, nargs="?", const=True, default=False,
                   help="train on random backgrounds (RGBA scenes): each training ray's target and render are "
                        "composited onto one random colour, so empty space must be transparent; renders for "
                        "evaluation use --white_bkgd")
    g.add_argument("--half_res", action="store_true", help="load Blender images at half resolution")
    g.add_argument("--downscale", type=int, default=1, help="resize Blender and LLFF images by 1/N (INTER_AREA; on LLFF, after --factor, and N must divide the size)")
    g.add_argument("--demo_res", type=int, default=64, help="image size of the built-in demo scene")
    g.add_argument("--factor", type=int, default=8, help="LLFF: use images_N (downsample factor)")
    g.add_argument("--llffhold", type=int, default=8, help="LLFF: every Nth image is a test view")
    g.add_argument("--no_ndc", action="store_true", help="LLFF: do not use normalised device coordinates")
    g.add_argument("--spherify", action="store_true", help="LLFF: 360-degree inward-facing capture")
    g.add_argument("--device", type=str, default="auto", help="auto, cpu, cuda or cuda:N")
    g.add_argument("--amp", type=str2bool, nargs="?", const=True, default=False,
                   help="mixed precision: bf16 autocast on CUDA (fp16 without bf16) and on CPUs with bf16 matrix "
                        "hardware (AMX/AVX512-BF16; float32 with a note elsewhere); '--amp False' turns a config's off")
    g.add_argument("--compile", action="store_true",
                   help="torch.compile the encoding + MLP (dynamic shapes); the first steps pay the compile time")
    g.add_argument("--seed", type=int, default=0, help="random seed")


def add_train_options(p: configargparse.ArgumentParser) -> None:
    g = p.add_argument_group("training")
    g.add_argument("--N_rand", type=int, default=32 * 32 * 4, help="rays per gradient step")
    g.add_argument("--lrate", type=float, default=5e-4, help="learning rate")
    g.add_argument("--lrate_decay", type=int, default=250, help="lr decays by 0.1 every lrate_decay*1000 steps")
    g.add_argument("--lrate_schedule", type=str, default="nerf", choices=["nerf", "run"],
                   help="nerf: lr decays by 0.1 every lrate_decay*1000 steps (the paper's); run: lr decays "
                        "exponentially to lrate * lrate_final over the run (--N_iters steps or --time_budget "
                        "seconds, whichever comes first)")
    g.add_argument("--lrate_final", type=float, default=0.1,
                   help="--lrate_schedule run: the lr at the end of the run, as a fraction of --lrate")
    g.add_argument("--N_iters", type=int, default=200000, help="training steps")
    g.add_argument("--time_budget", type=float, default=0.0,
                   help="stop after this many seconds of training (the step clock; evaluation and saving "
                        "excluded), or at --N_iters if sooner; 0: no time limit")
    g.add_argument("--no_batching", action="store_true", help="each batch from one random image")
    g.add_argument("--precrop_iters", type=int, default=0, help="steps trained on central crops")
    g.add_argument("--precrop_frac", type=float, default=0.5, help="fraction of the image in the crop")
    g.add_argument("--no_reload", action="store_true", help="do not resume from a checkpoint")
    g.add_argument("--ft_path", type=str, default=None, help="checkpoint to initialise the networks from")
    g.add_argument("--i_print", type=int, default=100, help="steps between console/TensorBoard logs")
    g.add_argument("--i_img", type=int, default=500, help="steps between validation images")
    g.add_argument("--i_weights", type=int, default=10000, help="steps between checkpoints")
    g.add_argument("--i_testset", type=int, default=50000, help="steps between test-set renders")
    g.add_argument("--i_video", type=int, default=50000, help="steps between render-path videos")


RECIPE_HELP = (
    "Recipes: each activation brings a recipe (models/activations.py): --activation X applies X's values for "
    "every option not set explicitly, and prints them ('recipe X: lrate=..., ...'). Precedence: command line > "
    "recipe > config file > defaults, except that a config file naming the activation (a recipe file written for "
    "it, or a run's config.txt) counts as explicit: command line > that file > recipe > defaults. --recipe none "
    "applies nothing.")


def _raise_user_error(message: str):
    raise UserError(message)


def build_parser(description: str = "") -> configargparse.ArgumentParser:
    """The one parser of every script. Training keys are accepted everywhere, because
    eval.py and the bench scripts read a run's saved config, which holds them."""
    # allow_abbrev=False: a typo such as --N_sample must be an error, not --N_samples
    p = configargparse.ArgumentParser(description=description, allow_abbrev=False, epilog=RECIPE_HELP,
                                      config_file_parser_class=configargparse.DefaultConfigFileParser)
    p.error = _raise_user_error  # a bad value is one line, not a usage block
    add_common_options(p)
    add_train_options(p)
    return p


def parser_defaults() -> dict:
    """Every option's default value, by name."""
    parser = build_parser()
    return {a.dest: a.default for a in parser._actions if a.dest != "help"}


def cli_flags(options: dict) -> List[str]:
    """{option: value} -> train.py command-line flags. A store_true option gives its bare
    flag when true (nothing when false); a list gives several values; None is left out."""
    actions = {a.dest: a for a in build_parser()._actions}
    argv: List[str] = []
    for key, value in options.items():
        action = actions.get(key)
        if action is None:
            raise ValueError(f"unknown option '{key}'")
        if value is None:
            continue
        if isinstance(action, argparse._StoreTrueAction):
            argv += [f"--{key}"] if value else []
        elif isinstance(value, (list, tuple)):
            argv += [f"--{key}"] + [str(v) for v in value]
        else:
            argv += [f"--{key}", str(value)]
    return argv


def has_flag(argv: List[str], flag: str) -> bool:
    """True when ``--flag`` or ``--flag=value`` is on the command line."""
    return any(a == flag or a.startswith(flag + "=") for a in argv)


def parse_script_args(own: argparse.ArgumentParser, argv: Optional[List[str]], doc: str,
                      complete: Optional[Callable[[argparse.Namespace, List[str]], List[str]]] = None):
    """(the script's own flags, the config) for scripts that add flags to train.py's options
    (eval.py, bench/). ``--help`` prints the doc, the script's flags, then a pointer to
    train.py's options. ``complete(own, rest)`` may amend the config arguments (add a default
    ``--config``, protocol flags) before they are parsed."""
    import sys
    argv = list(sys.argv[1:] if argv is None else argv)
    if any(a in ("-h", "--help") for a in argv):
        print(doc)
        own.print_help()
        print("\nplus any train.py option (python train.py --help)")
        sys.exit(0)
    try:
        ours, rest = own.parse_known_args(argv)
    except SystemExit:
        raise UserError("invalid command-line arguments (see the message above)") from None
    if complete is not None:
        rest = complete(ours, rest)
    return ours, parse_args(build_parser(description=doc), rest)


def _config_items(parser, path: str) -> dict:
    """The ``key = value`` items of a config file (values as written)."""
    if not os.path.isfile(path):
        raise UserError(f"config file '{path}' not found (--config)")
    with open(path) as f:
        try:
            items = parser._config_file_parser.parse(f)
        except configargparse.ConfigFileParserException as err:
            raise UserError(f"{path}: cannot parse config ({err})") from None
    return dict(items)


def _config_keys(parser, path: str) -> List[str]:
    return list(_config_items(parser, path).keys())


def _config_path(argv: List[str]) -> Optional[str]:
    """The value of the last-given ``--config`` (None when absent)."""
    for k, tok in enumerate(argv):
        if tok == "--config" and k + 1 < len(argv):
            return argv[k + 1]
        if tok.startswith("--config="):
            return tok.split("=", 1)[1]
    return None


def parse_args(parser: configargparse.ArgumentParser, argv: Optional[List[str]] = None):
    """Parse argv (+ config file), rejecting unknown config keys and flags with one line;
    then apply the activation's recipe (``apply_recipe``) and validate."""
    import sys
    argv = list(sys.argv[1:] if argv is None else argv)
    known = {a.dest for a in parser._actions} | {s.lstrip("-") for a in parser._actions for s in a.option_strings}
    path = _config_path(argv)
    items = {}
    if path is not None:
        items = _config_items(parser, path)
        unknown = [k for k in items if k not in known]
        if unknown:
            raise UserError(f"{path}: unknown config key(s) {', '.join(unknown)}")
    try:
        args, extra = parser.parse_known_args(argv)
    except SystemExit as exc:
        if exc.code == 0:  # --help
            raise
        raise UserError("invalid command-line arguments (see the message above)") from None
    if extra:
        raise UserError(f"unknown argument(s) {' '.join(extra)}")
    if hasattr(args, "recipe"):
        applied, kept = apply_recipe(parser, args, argv, items)
        if applied:
            say_once(recipe_line(args.recipe, applied, kept))
    validate(args)
    if hasattr(args, "recipe"):
        for message in setting_warnings(args):
            say_once(f"warning: {message}")
    return args


# ---------------------------------------------------------------- recipes
_SAID = set()


def say_once(line: str) -> None:
    """Print ``line`` unless this process printed it already (parse_args runs per script
    and per run read: the same recipe line or warning is said once)."""
    if line not in _SAID:
        _SAID.add(line)
        print(line, flush=True)


def _format_value(value) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def recipe_line(recipe: str, applied: dict, kept: List[str]) -> str:
    """``recipe sin: lrate=0.001, ... (kept: lrate)`` (the values applied, the keys set explicitly)."""
    values = ", ".join(f"{k}={_format_value(v)}" for k, v in applied.items())
    return f"recipe {recipe}: {values}" + (f" (set explicitly, kept: {', '.join(kept)})" if kept else "")


def explicit_dests(parser, argv: List[str]) -> set:
    """The options given on the command line (``--flag`` or ``--flag=value``)."""
    return {a.dest for a in parser._actions if any(has_flag(argv, s) for s in a.option_strings)}


def _setting(name: str, flag: str) -> tuple:
    try:
        return resolve_setting(name)
    except ValueError:
        raise UserError(f"{flag} '{name}' is unknown; expected one of {sorted(ACTIVATIONS)} "
                        f"or a preset {sorted(PRESETS)}") from None


def choose_recipe(args, cl: set, items: dict) -> tuple:
    """(activation, recipe name, whether the config file counts as explicit).

    The recipe: ``--recipe`` on the command line; else the command line's ``--activation``
    (a preset names itself); else the config file's ``recipe``, or the recipe its
    ``activation`` names; else the default activation's. A config file counts as explicit
    (its keys outrank the recipe) when it names an activation or recipe that comes to the
    same recipe: a recipe file written for that activation, or a run's config.txt."""
    activation, implied = _setting(str(args.activation).strip(), "--activation")
    file_act, file_recipe = items.get("activation"), items.get("recipe")
    if "recipe" in cl:
        recipe = str(args.recipe).strip()
    elif "activation" in cl:
        recipe = implied
    elif file_recipe is not None:
        recipe = str(file_recipe).strip()
    else:
        recipe = implied  # the file's activation (args.activation came from it) or the default
    if recipe.lower() == "none":
        recipe = "none"
    if recipe not in recipe_names():
        raise UserError(f"--recipe '{recipe}' is unknown; expected one of {list(recipe_names())}")
    owner = recipe_activation(recipe)
    if owner is not None and owner != activation:
        if "activation" in cl or file_act is not None:
            raise UserError(f"--recipe {recipe} is a recipe of activation '{owner}', not of --activation "
                            f"'{args.activation}'; use --activation {owner}, or --recipe {activation} or none")
        activation = owner  # --recipe report-sin alone picks its activation
    file_recipe_name = None
    if file_recipe is not None:
        file_recipe_name = str(file_recipe).strip()
        file_recipe_name = "none" if file_recipe_name.lower() == "none" else file_recipe_name
    elif file_act is not None:
        file_recipe_name = _setting(str(file_act).strip(), "activation (config file)")[1]
    return activation, recipe, file_recipe_name is not None and file_recipe_name == recipe


def apply_recipe(parser, args, argv: List[str], items: dict) -> tuple:
    """Resolve ``--activation``/``--recipe`` on ``args`` and set the recipe's values for every
    option not set explicitly. Precedence: command line > recipe > config file > defaults;
    a config file naming the same recipe (``choose_recipe``) counts as explicit: command
    line > that file > recipe > defaults. Returns ({option: value applied}, [explicit
    options the recipe also names, kept])."""
    cl = explicit_dests(parser, argv)
    activation, recipe, file_explicit = choose_recipe(args, cl, items)
    explicit = cl | (set(items) if file_explicit else set())
    actions = {a.dest: a for a in parser._actions}
    applied, kept = {}, []
    for key, value in recipe_of(recipe).items():
        if key in explicit:
            kept.append(key)
            continue
        action = actions[key]
        parsed = action.type(str(value)) if action.type is not None else value
        setattr(args, key, parsed)
        applied[key] = parsed
    args.activation, args.recipe = activation, recipe
    return applied, kept


def describe_recipe(name: str) -> str:
    """A recipe in words: ``lrate 0.001, omega0 1/1, PE`` (lrate, omega0s or the activation's
    own scales, encoding)."""
    r = recipe_of(name)
    parts = [f"lrate {r['lrate']:g}"] if "lrate" in r else []
    if "first_omega0" in r:
        parts.append(f"omega0 {r['first_omega0']:g}/{r.get('omega0', r['first_omega0']):g}")
    if "wire_omega0" in r:
        parts.append(f"w {r['wire_omega0']:g}, s0 {r.get('wire_s0', 10.0):g}")
    if "gauss_scale" in r:
        parts.append(f"s {r['gauss_scale']:g}")
    if "i_embed" in r:
        parts.append("raw xyz" if int(r["i_embed"]) == -1 else "PE")
    return ", ".join(parts)


# Settings known to fail: (test on the parsed config, why and what to use instead).
KNOWN_FAILURES = (
    (lambda a: ACTIVATIONS[a.activation].periodic and a.first_omega0 >= 10 and a.i_embed == 0 and a.lrate > 2e-4,
     lambda a: (f"{a.activation} with first_omega0 {a.first_omega0:g} on positional encoding (i_embed 0) at lrate "
                f"{a.lrate:g} is known to fail: omega0 multiplies PE frequencies up to 2^{a.multires - 1} and the "
                f"network aliases (demo: sin omega0 30 on PE at lr 1e-3 trains to noise, 11.99 dB against relu "
                f"25.60); use raw xyz (--i_embed -1) or first_omega0 1 to 5 on PE, e.g. the {a.activation} recipe "
                f"(--recipe {a.activation}: {describe_recipe(a.activation)})")),
    (lambda a: a.activation == "wire" and wire_starts_as_noise(a.wire_omega0, a.netdepth),
     lambda a: (f"wire with wire_omega0 {a.wire_omega0:g} in a trunk of {a.netdepth} layers starts as white noise: "
                f"the frequency compounds over layers, and last-layer features of points 0.01 apart are nearly "
                f"uncorrelated at init (bench/init_smoothness.py: w 20 s0 10 at 4x128 0.04, trained to the "
                f"background, 11.33 dB demo val; w 5 s0 5 at 8x256 0.08, not trained; relu 0.43-0.52). "
                f"4 layers: the wire recipe (--recipe wire: {describe_recipe('wire')}); 8 layers: "
                f"--wire_omega0 3 --wire_s0 3 keeps 0.92 (not trained here)")),
)


def wire_starts_as_noise(wire_omega0: float, netdepth: int) -> bool:
    """Where wire's init was measured to be white noise at the scale of NeRF's samples
    (bench/init_smoothness.py; README, "Known pitfalls"): w >= 20 at 4+ layers (0.04 at d = 0.01;
    trained, it fails), w >= 5 at 8+ (0.08). w 10 at 4 layers keeps 0.34-0.57, relu on PE 0.43."""
    return (wire_omega0 >= 20 and netdepth >= 4) or (wire_omega0 >= 5 and netdepth >= 8)


def setting_warnings(args) -> List[str]:
    """One line per known-failing setting in ``args`` (README, "Known pitfalls")."""
    return [message(args) for test, message in KNOWN_FAILURES if args.activation in ACTIVATIONS and test(args)]


# ---------------------------------------------------------------- validation at parse time
# Integer options and their smallest allowed value, with what the limit means.
INT_MINIMUMS = (
    (("netdepth", "netwidth", "N_samples", "chunk", "N_rand", "N_iters", "downscale", "i_print",
      "lrate_decay", "demo_res", "n_frames", "factor", "occ_res", "occ_update_every"), 1, ""),
    (("N_importance", "multires", "multires_views", "precrop_iters", "occ_warmup"), 0, ""),
    (("i_img", "i_weights", "i_testset", "i_video"), 0, " (0: off)"),
    (("occ_warmup_samples",), 0, " (0: N_samples)"),
    (("netchunk",), 0, " (0: automatic)"),
    (("testskip",), 0, " (0 or 1: every view)"),
    (("render_factor",), 0, " (0 or 1: full size)"),
)
# Float options: (test, what the message says is expected). NaN and +-inf are always rejected.
_POSITIVE, _NON_NEGATIVE, _ANY = (lambda v: v > 0, "> 0"), (lambda v: v >= 0, ">= 0"), (lambda v: True, "")
_OPEN_CLOSED, _CLOSED_OPEN = (lambda v: 0 < v <= 1, "in (0, 1]"), (lambda v: 0 <= v < 1, "in [0, 1)")
FLOAT_RANGES = {
    "lrate": _POSITIVE, "first_omega0": _POSITIVE, "omega0": _POSITIVE, "gauss_scale": _NON_NEGATIVE,
    "wire_omega0": _ANY, "wire_s0": _NON_NEGATIVE, "first_bias_scale": _NON_NEGATIVE,
    "perturb": _NON_NEGATIVE, "raw_noise_std": _NON_NEGATIVE, "precrop_frac": _OPEN_CLOSED,
    "occ_thresh": _CLOSED_OPEN, "occ_stop_T": _CLOSED_OPEN, "occ_decay": _OPEN_CLOSED,
    "lrate_final": _OPEN_CLOSED, "time_budget": _NON_NEGATIVE,
}


def check_float(flag: str, value: float, rule=_ANY) -> None:
    """One-line UserError unless ``value`` is finite and passes ``rule`` ((test, expected))."""
    test, expected = rule
    if not (math.isfinite(value) and test(value)):
        raise UserError(f"--{flag} must be a finite number{' ' + expected if expected else ''}, got {value}")


def check_output_folder(path: str, flag: str) -> None:
    """An output folder must be a folder or creatable: neither it nor a parent an existing file."""
    probe = os.path.abspath(path)
    while not os.path.exists(probe) and os.path.dirname(probe) != probe:
        probe = os.path.dirname(probe)
    if not os.path.isdir(probe):
        what = "is an existing file" if probe == os.path.abspath(path) else f"is inside the file '{probe}'"
        raise UserError(f"{flag} '{path}' {what}; expected a folder")


def _check_activations(args) -> None:
    for flag in ("activation", "dir_activation"):
        name = getattr(args, flag)
        if name is not None and name not in ACTIVATIONS:
            raise UserError(f"--{flag} '{name}' is unknown; expected one of {sorted(ACTIVATIONS)}")


def _check_ints(args) -> None:
    for flags, lowest, meaning in INT_MINIMUMS:
        for flag in flags:
            if getattr(args, flag) < lowest:
                raise UserError(f"--{flag} must be >= {lowest}{meaning}, got {getattr(args, flag)}")
    if args.i_embed not in (0, -1):
        raise UserError(f"--i_embed must be 0 (positional encoding) or -1 (none), got {args.i_embed}")


def _check_floats(args) -> None:
    for flag, rule in FLOAT_RANGES.items():
        check_float(flag, getattr(args, flag), rule)
    if str(args.sigma_bias_init) != "default" and not math.isfinite(float(args.sigma_bias_init)):
        raise UserError(f"--sigma_bias_init must be a finite number or 'default', got {args.sigma_bias_init}")


def validate(args) -> None:
    """Reject values that cannot work, at parse time (before a script creates anything):
    one line naming the flag, what it expects and what it got."""
    _check_activations(args)
    _check_ints(args)
    _check_floats(args)
    if args.N_importance > 0 and (args.netdepth_fine < 1 or args.netwidth_fine < 1):
        raise UserError("--netdepth_fine and --netwidth_fine must be >= 1 when --N_importance > 0")
    if any(s < 0 for s in args.skips):
        raise UserError(f"--skips {args.skips} must be non-negative layer indices")


def format_config(args) -> str:
    """``key = value`` lines, readable by --config (None values are omitted)."""
    lines = []
    for key, value in sorted(vars(args).items()):
        if key in ("config", "run", "ckpt", "outdir") or value is None:
            continue
        if isinstance(value, (list, tuple)):
            value = "[" + ", ".join(str(v) for v in value) + "]"
        lines.append(f"{key} = {value}")
    return "\n".join(lines) + "\n"


def save_config(args, path: str) -> None:
    atomic_write_text(path, format_config(args))
