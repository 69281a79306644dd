"""The one summary of a run's settings: TensorBoard's HParams, metrics.json and compare.py.

Only the settings that apply are reported: omega0s and the SIREN-init switch for
periodic activations, each activation's own parameters (gauss_scale, wire_s0, ...) for
the activations that read them.
"""
from typing import Dict, List

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


def run_settings(args) -> Dict[str, object]:
    """What defines the activation setting of a run; None where a setting does not apply."""
    periodic = any(ACTIVATIONS[a].periodic for a in activations_used(args) if a in ACTIVATIONS)
    return {"activation": args.activation, "dir_activation": args.dir_activation or args.activation,
            "first_omega0": args.first_omega0 if periodic else None,
            "omega0": args.omega0 if periodic else None,
            "siren_init": args.siren_init if periodic else None,
            "act_params": activation_params(args), "encoding": encoding_label(args),
            "lrate": args.lrate, "netdepth": args.netdepth, "netwidth": args.netwidth,
            "netdepth_fine": args.netdepth_fine, "netwidth_fine": args.netwidth_fine,
            "N_samples": args.N_samples, "N_importance": args.N_importance, "seed": args.seed}


def hparams_dict(args, n_params: int) -> Dict[str, object]:
    """``run_settings`` flattened for TensorBoard's HParams (scalars and strings only)."""
    flat = {k: v for k, v in run_settings(args).items() if v is not None and k != "act_params"}
    flat.update(run_settings(args)["act_params"])
    flat["n_params"] = n_params
    return flat
