"""One config path: configargparse with nerf-pytorch's option names and file format.

A nerf-pytorch config file (``key = value`` lines) runs unchanged; unknown keys in a
config file are an error naming the file and the key. The resolved config is written
to ``<basedir>/<expname>/config.txt`` in the same format, so it can be re-read.
"""
import argparse
import os
from typing import Callable, List, Optional

import configargparse

from models.activations import ACTIVATIONS
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
    g.add_argument("--activation", type=str, default="relu", help=f"hidden activation: {sorted(ACTIVATIONS)}")
    g.add_argument("--dir_activation", type=str, default=None, help="direction-branch activation (default: --activation)")
    g.add_argument("--first_omega0", type=float, default=30.0, help="omega0 of the first layer (periodic activations)")
    g.add_argument("--omega0", type=float, default=30.0, help="omega0 of hidden layers (periodic activations)")
    g.add_argument("--siren_init", type=str2bool, default=True, help="SIREN init for periodic activations (True/False)")
    g.add_argument("--gauss_scale", type=float, default=10.0, help="gauss: s in exp(-(s z)^2)")
    g.add_argument("--wire_omega0", type=float, default=20.0, help="wire: frequency omega of every layer")
    g.add_argument("--wire_s0", type=float, default=10.0, help="wire: Gaussian scale s0 of every layer")
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
    g.add_argument("--occ_stop_T", type=float, default=1e-4,
                   help="with --occ_grid: fine samples behind coarse transmittance below this are skipped (0: off)")
    g = p.add_argument_group("dataset")
    g.add_argument("--dataset_type", type=str, default="blender", help="blender, llff or demo")
    g.add_argument("--testskip", type=int, default=1, help="load 1/N of val/test images")
    g.add_argument("--white_bkgd", action="store_true", help="composite RGBA onto white (Blender)")
    g.add_argument("--half_res", action="store_true", help="load Blender images at half resolution")
    g.add_argument("--downscale", type=int, default=1, help="resize Blender images by 1/N (INTER_AREA)")
    g.add_argument("--demo_res", type=int, default=64, help="image size of the built-in demo scene")
    g.add_argument("--factor", type=int, default=8, help="LLFF: use images_N (downsample factor)")
    g.add_argument("--llffhold", type=int, default=8, help="LLFF: every Nth image is a test view")
    g.add_argument("--no_ndc", action="store_true", help="LLFF: do not use normalised device coordinates")
    g.add_argument("--spherify", action="store_true", help="LLFF: 360-degree inward-facing capture")
    g.add_argument("--device", type=str, default="auto", help="auto, cpu, cuda or cuda:N")
    g.add_argument("--amp", action="store_true", help="mixed precision on CUDA (bf16 if supported, else fp16)")
    g.add_argument("--compile", action="store_true",
                   help="torch.compile the encoding + MLP (dynamic shapes); the first steps pay the compile time")
    g.add_argument("--seed", type=int, default=0, help="random seed")


def add_train_options(p: configargparse.ArgumentParser) -> None:
    g = p.add_argument_group("training")
    g.add_argument("--N_rand", type=int, default=32 * 32 * 4, help="rays per gradient step")
    g.add_argument("--lrate", type=float, default=5e-4, help="learning rate")
    g.add_argument("--lrate_decay", type=int, default=250, help="lr decays by 0.1 every lrate_decay*1000 steps")
    g.add_argument("--N_iters", type=int, default=200000, help="training steps")
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


def build_parser(description: str = "") -> configargparse.ArgumentParser:
    """The one parser of every script. Training keys are accepted everywhere, because
    eval.py and the bench scripts read a run's saved config, which holds them."""
    # allow_abbrev=False: a typo such as --N_sample must be an error, not --N_samples
    p = configargparse.ArgumentParser(description=description, allow_abbrev=False,
                                      config_file_parser_class=configargparse.DefaultConfigFileParser)
    add_common_options(p)
    add_train_options(p)
    return p


def parser_defaults() -> dict:
    """Every option's default value, by name."""
    parser = build_parser()
    return {a.dest: a.default for a in parser._actions if a.dest != "help"}


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


def _config_keys(parser, path: str) -> List[str]:
    if not os.path.isfile(path):
        raise UserError(f"config file '{path}' not found (--config)")
    with open(path) as f:
        try:
            items = parser._config_file_parser.parse(f)
        except configargparse.ConfigFileParserException as err:
            raise UserError(f"{path}: cannot parse config ({err})") from None
    return list(items.keys())


def _config_path(argv: List[str]) -> Optional[str]:
    """The value of the last-given ``--config`` (None when absent)."""
    for k, tok in enumerate(argv):
        if tok == "--config" and k + 1 < len(argv):
            return argv[k + 1]
        if tok.startswith("--config="):
            return tok.split("=", 1)[1]
    return None


def parse_args(parser: configargparse.ArgumentParser, argv: Optional[List[str]] = None):
    """Parse argv (+ config file), rejecting unknown config keys and flags with one line."""
    import sys
    argv = list(sys.argv[1:] if argv is None else argv)
    known = {a.dest for a in parser._actions} | {s.lstrip("-") for a in parser._actions for s in a.option_strings}
    path = _config_path(argv)
    if path is not None:
        unknown = [k for k in _config_keys(parser, path) if k not in known]
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
    validate(args)
    return args


def validate(args) -> None:
    for flag in ("activation", "dir_activation"):
        name = getattr(args, flag)
        if name is not None and name not in ACTIVATIONS:
            raise UserError(f"--{flag} '{name}' is unknown; expected one of {sorted(ACTIVATIONS)}")
    for flag in ("gauss_scale", "wire_s0", "first_bias_scale"):
        if getattr(args, flag) < 0:
            raise UserError(f"--{flag} must be >= 0, got {getattr(args, flag)}")
    if args.netchunk < 0:
        raise UserError(f"--netchunk must be >= 0 (0: automatic), got {args.netchunk}")
    positive = ["netdepth", "netwidth", "N_samples", "chunk", "N_rand", "N_iters", "downscale"]
    for flag in positive:
        if getattr(args, flag) < 1:
            raise UserError(f"--{flag} must be >= 1, got {getattr(args, flag)}")
    if args.N_importance > 0 and (args.netdepth_fine < 1 or args.netwidth_fine < 1):
        raise UserError("--netdepth_fine and --netwidth_fine must be >= 1 when --N_importance > 0")
    if not 0 < args.precrop_frac <= 1:
        raise UserError(f"--precrop_frac must be in (0, 1], got {args.precrop_frac}")
    if args.occ_res < 1 or args.occ_update_every < 1 or args.occ_warmup < 0:
        raise UserError(f"--occ_res and --occ_update_every must be >= 1 and --occ_warmup >= 0, "
                        f"got {args.occ_res}, {args.occ_update_every}, {args.occ_warmup}")
    for flag, value in (("occ_thresh", args.occ_thresh), ("occ_stop_T", args.occ_stop_T)):
        if not 0 <= value < 1:
            raise UserError(f"--{flag} must be in [0, 1), got {value}")
    if not 0 < args.occ_decay <= 1:
        raise UserError(f"--occ_decay must be in (0, 1], got {args.occ_decay}")
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
