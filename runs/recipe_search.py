"""Choosing each activation's recipe on **val** views (bench/recipe_search.py).

For every activation, a small grid of candidates (learning rate; omega0s for the periodic
ones; positional encoding on/off where it matters) is trained in-process on a scene
protocol (runs/protocol.py: ``demo``, ``lego100``) for ``steps`` steps from seed 0, and
scored by the mean PSNR of the scene's **val** split rendered at the end (8-bit, as
eval.py scores). Test views are never loaded into a score. Every candidate sets every
recipe key explicitly and runs with ``--recipe none``, so no recipe leaks into the search
that chooses recipes.

Results: ``<out>/candidates/<scene>__<candidate>__<steps>.json`` as each candidate
finishes (a candidate already there is skipped: the search resumes, and several processes
may share one ``--out`` with disjoint ``--activations``), then ``<out>/recipe_search.json``
(every candidate) and ``<out>/recipe_search.md`` (the table, the winner of each
activation and run length in bold) from every candidate file in the folder.
``candidates(..., names)`` restricts a run to named candidates: a second, longer stage on
the leaders of a first one (``--candidates`` in bench/recipe_search.py).
"""
import os
import time
from dataclasses import dataclass
from typing import Dict, List, Optional

import torch

from runs.protocol import SCENES, load_scene_cached, mean_psnr, resolve_args, train_steps, weights_finite
from runs.training import setup_training
from utils.config import cli_flags
from utils.io import atomic_write_json, atomic_write_text, read_json
from utils.tables import markdown_table

PE = {"i_embed": 0, "multires": 10, "multires_views": 4}
RAW = {"i_embed": -1}


@dataclass(frozen=True)
class Candidate:
    activation: str
    options: Dict[str, object]    # every recipe key this activation reads

    @property
    def name(self) -> str:
        o = self.options
        parts = [self.activation, "pe" if o.get("i_embed", 0) == 0 else "raw", f"lr{o['lrate']:g}"]
        if "first_omega0" in o:
            parts.append(f"w{o['first_omega0']:g}-{o['omega0']:g}")
        for key in ("gauss_scale", "wire_omega0", "wire_s0"):
            if key in o:
                parts.append(f"{key}{o[key]:g}")
        if o.get("complex_width", "full") != "full":  # bench/results' searches ran at 'full'
            parts.append(f"width-{o['complex_width']}")
        return "_".join(parts)

    def argv(self) -> List[str]:
        return ["--activation", self.activation, "--recipe", "none"] + cli_flags(self.options)


def _siren(first, hidden, lr, enc, **extra):
    return {"lrate": lr, "first_omega0": first, "omega0": hidden, "siren_init": True, **enc, **extra}


# The grid: a handful of candidates per activation, chosen around the papers' values and
# the known pitfalls (README, "Known pitfalls"): periodic nets on raw xyz with omega0 30
# at SIREN's low lr, or omega0 ~1 on positional encoding. first_omega0 5 on PE (added
# after the first searches) lifts the SIREN first layer's pre-activations from ~0.09 rad,
# where cos is flat, to ~0.45 rad. gauss on PE at s = 3 was added after the lego100
# probes (bench/results/recipe_search_lego100.md: on PE, s = 10 reached 18.04 dB val in a
# 200-s run, s = 3 27.51). wire at w = 20, s0 = 10 (the authors' image scripts, 2-3 layers)
# starts as white noise in the 4x128 trunk searched here: last-layer features of points
# 0.01 apart correlate 0.04 at init (w 5, s0 5: 0.97; relu on PE 0.43; bench/init_smoothness.py,
# bench/results/recipe_search_demo.md "Stage 5"), so smaller pairs were added. The lr
# ranges were extended upwards (one step at a time) while the winner sat at the top of its
# range, as far as the CPU allowed: relu, sin and cos still win at the top
# (bench/results/recipe_search_demo.md).
GRID: Dict[str, List[Dict[str, object]]] = {
    "relu": [{"lrate": lr, **PE} for lr in (5e-4, 1e-3, 2e-3)],
    "sin": [_siren(1, 1, lr, PE) for lr in (5e-4, 1e-3, 2e-3)] + [_siren(5, 1, 2e-3, PE)] +
           [_siren(30, 30, lr, RAW) for lr in (1e-4, 2e-4, 4e-4)],
    "cos": [_siren(1, 1, 1e-3, PE)] + [_siren(5, 1, lr, PE) for lr in (1e-3, 2e-3)] +
           [_siren(30, 30, lr, RAW) for lr in (1e-4, 2e-4, 4e-4)],
    "gauss": [{"lrate": lr, "gauss_scale": 10.0, **RAW} for lr in (5e-4, 2e-3, 4e-3)] +
             [{"lrate": 2e-3, "gauss_scale": 3.0, **PE}],
    "wire": [{"lrate": lr, "wire_omega0": 20.0, "wire_s0": 10.0, "complex_width": "matched", **RAW}
             for lr in (5e-4, 2e-3)] +
            [{"lrate": 2e-3, "wire_omega0": w, "wire_s0": s0, "complex_width": "matched", **enc}
             for w, s0, enc in ((5, 5, RAW), (3, 3, RAW), (2, 2, RAW), (2, 2, PE), (1, 1, PE))],
    "finer": [_siren(30, 1, 2e-4, RAW, first_bias_scale=1.0)] +
             [_siren(1, 1, lr, PE, first_bias_scale=1.0) for lr in (1e-3, 1.5e-3, 2e-3)],
}


def candidates(activations: List[str], names: Optional[List[str]] = None) -> List[Candidate]:
    """The grid's candidates of ``activations`` (only those named in ``names``, if given)."""
    found = [Candidate(a, opts) for a in activations for opts in GRID[a]]
    return [c for c in found if names is None or c.name in names]


def candidate_path(out: str, scene: str, cand: Candidate, steps: int) -> str:
    return os.path.join(out, "candidates", f"{scene}__{cand.name}__{steps}.json")


def run_candidate(scene_name: str, cand: Candidate, steps: int, seed: int, device) -> Dict:
    """Train one candidate from scratch and score it on the scene's val split."""
    scene_proto = SCENES[scene_name]
    args = resolve_args(scene_proto, cand.argv(), ["--seed", str(seed), "--N_iters", str(steps),
                                                   "--expname", f"search_{scene_name}_{cand.name}"])
    scene = load_scene_cached(args)
    val = scene.splits["val"]
    trainer, views, batcher = setup_training(args, scene, device)
    wall = time.perf_counter()
    finite = train_steps(trainer, batcher, steps, progress_every=max(1, steps // 3), label=cand.name)
    finite = finite and weights_finite(trainer)
    val_psnr = mean_psnr(trainer, views, val) if finite else None
    return {"scene": scene_name, "candidate": cand.name, "activation": cand.activation, "options": cand.options,
            "steps": trainer.step, "seed": seed, "val_psnr": val_psnr, "diverged": not finite,
            "n_val_views": int(len(val)), "train_seconds": trainer.train_seconds,
            "wall_seconds": time.perf_counter() - wall, "threads": torch.get_num_threads(),
            "argv": cand.argv()}


def collect(out: str) -> List[Dict]:
    folder = os.path.join(out, "candidates")
    if not os.path.isdir(folder):
        return []
    return [read_json(os.path.join(folder, f)) for f in sorted(os.listdir(folder)) if f.endswith(".json")]


def winners(results: List[Dict]) -> Dict[tuple, Dict]:
    """(scene, activation, steps) -> the candidate with the best val PSNR (diverged ones
    never win): runs of different lengths are separate contests."""
    best: Dict[tuple, Dict] = {}
    for r in results:
        if r["val_psnr"] is None:
            continue
        key = (r["scene"], r["activation"], r["steps"])
        if key not in best or r["val_psnr"] > best[key]["val_psnr"]:
            best[key] = r
    return best


def _describe(options: Dict[str, object]) -> str:
    return ", ".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}" for k, v in options.items())


def markdown(results: List[Dict], command: str) -> str:
    best = winners(results)
    order = {a: i for i, a in enumerate(GRID)}
    rows = []
    for r in sorted(results, key=lambda r: (r["scene"], r["steps"], order.get(r["activation"], 99), r["candidate"])):
        won = best.get((r["scene"], r["activation"], r["steps"])) is r
        psnr = "diverged" if r["val_psnr"] is None else f"{r['val_psnr']:.2f}"
        rows.append([r["scene"], r["activation"], _describe(r["options"]), str(r["steps"]),
                     f"**{psnr}**" if won else psnr, f"{r['train_seconds']:.0f}"])
    table = markdown_table(["scene", "activation", "candidate", "steps", "val PSNR", "train s"], rows)
    return (f"Command: `{command}`\n\nSeed 0; val PSNR = mean over the scene's val views rendered at the "
            f"end (8-bit); the best candidate per activation and run length is in bold.\n\n{table}\n")


def write_summary(out: str, command: str) -> List[Dict]:
    results = collect(out)
    atomic_write_json(os.path.join(out, "recipe_search.json"), {"command": command, "candidates": results,
                      "winners": {f"{s}/{a}/{n}": r["candidate"] for (s, a, n), r in winners(results).items()}})
    atomic_write_text(os.path.join(out, "recipe_search.md"), markdown(results, command))
    return results


def search(out: str, scenes: List[str], activations: List[str], steps: int, seed: int, device,
           command: str, names: Optional[List[str]] = None) -> List[Dict]:
    os.makedirs(os.path.join(out, "candidates"), exist_ok=True)
    for scene_name in scenes:
        reason = SCENES[scene_name].missing()
        if reason:
            print(f"skipping {scene_name}: {reason}", flush=True)
            continue
        for cand in candidates(activations, names):
            path = candidate_path(out, scene_name, cand, steps)
            if os.path.exists(path) and (read_json(path) or {}).get("steps") == steps:
                print(f"{scene_name} {cand.name}: done, skipped", flush=True)
                continue
            print(f"{scene_name} {cand.name}: training {steps} steps", flush=True)
            result = run_candidate(scene_name, cand, steps, seed, device)
            atomic_write_json(path, result)
            psnr = "diverged" if result["val_psnr"] is None else f"{result['val_psnr']:.2f} dB"
            print(f"{scene_name} {cand.name}: val PSNR {psnr} ({result['train_seconds']:.0f} s)", flush=True)
    results = write_summary(out, command)
    for (scene_name, activation, n), r in sorted(winners(results).items()):
        if activation in activations and n == steps:
            print(f"winner {scene_name} {activation}: {r['candidate']} val PSNR {r['val_psnr']:.2f} after {n} steps "
                  f"({_describe(r['options'])})")
    return results
