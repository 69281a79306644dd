"""The one summary of a run's settings: TensorBoard's HParams, metrics.json and compare.py.

Only the settings that apply are reported: omega0s and the SIREN-init switch for
periodic activations, each activation's own parameters (gauss_scale, wire_s0, ...) for
the activations that read them, the recipe only when the run has one.

TensorBoard's HParams tab takes its columns from *one* run's experiment summary (the
first it finds), so every run declares every column any run can have
(``hparams_columns``) while its session holds only the values that apply to it
(``hparams_dict``): a relu run's omega0 cells stay empty instead of a sin run's omega0
column disappearing. The metric columns are ``HPARAM_METRICS``: final val PSNR
(train.py) and test PSNR/SSIM (eval.py writes them into the run's events).
"""
from typing import Dict, List, Tuple

from models.activations import ACTIVATIONS


def activations_used(args) -> List[str]:
    """[trunk activation] or [trunk, direction branch] when they differ."""
    return list(dict.fromkeys([args.activation, args.dir_activation or args.activation]))


def activation_params(args) -> Dict[str, float]:
    """The activation-specific options the used activations read, e.g. {"gauss_scale": 10.0}."""
    keys = []
    for name in activations_used(args):
        spec = ACTIVATIONS.get(name)
        keys += list(getattr(spec, "params", ())) + list(getattr(spec, "init_params", ()))
    return {k: float(getattr(args, k)) for k in dict.fromkeys(keys) if hasattr(args, k)}


def encoding_label(args) -> str:
    return "none" if args.i_embed == -1 else f"pe{args.multires}/{args.multires_views}"


def schedule_label(args) -> str:
    """``nerf x0.1/250k`` (the paper's: 0.1x per lrate_decay thousand steps) or ``run ->0.1``
    (down to lrate_final over the run)."""
    if args.lrate_schedule == "run":
        return f"run ->{args.lrate_final:g}"
    return f"nerf x0.1/{args.lrate_decay}k"


def run_settings(args) -> Dict[str, object]:
    """What defines the activation setting of a run; None where a setting does not apply
    (``recipe`` is present only when the run has one: not None or 'none')."""
    periodic = any(ACTIVATIONS[a].periodic for a in activations_used(args) if a in ACTIVATIONS)
    complex_trunk = args.activation in ACTIVATIONS and ACTIVATIONS[args.activation].complex_valued
    recipe = {"recipe": args.recipe} if getattr(args, "recipe", None) not in (None, "", "none") else {}
    return {"activation": args.activation, "dir_activation": args.dir_activation or args.activation, **recipe,
            "first_omega0": args.first_omega0 if periodic else None,
            "omega0": args.omega0 if periodic else None,
            "siren_init": args.siren_init if periodic else None,
            "complex_width": args.complex_width if complex_trunk else None,
            "act_params": activation_params(args), "encoding": encoding_label(args),
            "lrate": args.lrate, "lrate_schedule": schedule_label(args),
            "random_bkgd": bool(args.random_bkgd), "netdepth": args.netdepth, "netwidth": args.netwidth,
            "netdepth_fine": args.netdepth_fine, "netwidth_fine": args.netwidth_fine,
            "N_samples": args.N_samples, "N_importance": args.N_importance, "seed": args.seed}


# The HParams metric columns: the last value of each scalar tag in the run's events.
HPARAM_METRICS = ("val/psnr", "test/psnr", "test/ssim", "train/psnr")


def hparams_dict(args, n_params: int) -> Dict[str, object]:
    """``run_settings`` flattened for TensorBoard's HParams (scalars and strings only):
    the values of this run's session, only the settings that apply to it."""
    flat = {k: v for k, v in run_settings(args).items() if v is not None and k != "act_params"}
    flat.update(run_settings(args)["act_params"])
    flat["n_params"] = n_params
    return flat


def hparams_columns(args, n_params: int) -> Dict[str, object]:
    """Every HParams column any run can have (TensorBoard shows them sorted by name), each
    with a value of its type: this run's where it has one, else a placeholder (only the
    types go into the experiment summary)."""
    own = hparams_dict(args, n_params)
    every_param = dict.fromkeys(k for spec in ACTIVATIONS.values()
                                for k in tuple(spec.params) + tuple(spec.init_params))
    placeholders = {"activation": "", "dir_activation": "", "recipe": "", "first_omega0": 0.0, "omega0": 0.0,
                    "siren_init": False, "complex_width": "", **{k: 0.0 for k in every_param}}
    columns = {k: own.get(k, v) for k, v in placeholders.items()}
    columns.update({k: v for k, v in own.items() if k not in columns})
    return columns


def hparams_summaries(args, n_params: int) -> Tuple:
    """(experiment, session start, session end) HParams summaries of a run: the experiment
    lists ``hparams_columns`` and ``HPARAM_METRICS``, the session ``hparams_dict``."""
    from torch.utils.tensorboard.summary import hparams
    metrics = {tag: 0.0 for tag in HPARAM_METRICS}  # values unused: TensorBoard reads the scalars
    experiment = hparams(hparams_columns(args, n_params), metrics)[0]
    _, session_start, session_end = hparams(hparams_dict(args, n_params), metrics)
    return experiment, session_start, session_end
