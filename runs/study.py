"""The activation study protocol (bench/activation_study.py): every recipe x 3 seeds x
{demo, lego100, fern}, at equal steps and at equal training time, with region metrics.

**Settings.** ``relu sin cos gauss wire finer report-sin report-cos``: each trained as
``--activation NAME`` on the scene protocol (runs/protocol.py), so each brings its own
recipe (models/activations.py; the report presets also turn the occupancy grid off and
keep PyTorch's density-head bias, as nerf_pl). Seeds 0, 1, 2.

**One run** (``<out>/runs/<scene>_<setting>_s<seed>/``, a run folder as train.py writes
it: config.txt, TensorBoard events, the final checkpoint and train_state.json, and
``eval_<step>/`` with NNN.png, NNN_depth.png and metrics.json as eval.py writes them):
train ``steps`` steps in-process with ``runs.training.timed_step``; each time the
training time passes a mark in ``time_marks`` (seconds), render the val views (demo,
lego100; LLFF has none) and the test views (untimed, 8-bit) and record their mean PSNR:
the **equal-time** curve. At the last step: test PSNR/SSIM (**equal steps**), val PSNR,
and the region metrics of runs/regions.py on the saved 8-bit test renders (demo: PSNR,
SSIM and Laplacian HF-PSNR per region floor / sphere / box / background, and HF-PSNR
of the whole image; lego100, fern: HF-PSNR of the whole image). The run's numbers go
to ``<out>/results/<run>.json``. A time mark a run never reaches (it finished its steps
first) is recorded as missing, and the tables say how many runs reached each mark.

**Resume.** A run whose results JSON exists is skipped; a run folder without one (the
study was killed during it) is deleted and trained again from scratch (a run is
minutes long; its time marks need one uninterrupted clock).

**Report.** ``<out>/study.json`` (every run's results), ``<out>/study.md`` (per scene:
equal steps, equal time, and on demo the regions; mean ± sample std over seeds, n), and
``<out>/compare_<scene>/`` from ``compare.py`` over the scene's run folders (run as a
subprocess: report.md, summary.csv, PSNR curves, side-by-side views).

**Sizing the default protocol** (about 2 hours on this project's 2-core CPU, run alone).
demo 300 steps, time marks at 20 and 40 s; lego100 250 steps (all inside the grid's
256-step warm-up), a mark at 60 s; fern 100 steps, a mark at 25 s. The marks sit below
relu's training time for its steps (55 / 83 / 40 s on 2026-12-07), so every run should
reach them. A training step's cost relative to relu's: sin/cos 1.3, gauss 1.2-1.5,
finer 1.4, wire 2.5 (1144 against 2873 training rays/s with the demo nets, 2026-12-07;
the report presets as sin/cos). The previous sizing (marks at 10/20/40, 15/30/60 and
10/25 s, each scoring the val views too, and wire at netwidth complex features) took
2 h 39 min at the 2026-12-07 pace: 108 min of training and 51 min of evaluation and
bookkeeping, wire 50 min of it. Three changes cut it; only the first changes training, and only wire's:
- wire trains at ``--complex_width matched`` (its recipe; 90 complex features for
  netwidth 128, as WIRE's reference code): 1.48x the training rays/s (773 -> 1144), a
  demo test render (bench/throughput.py) 5.25 -> 3.08 s;
- the time marks score the test views only (the equal-time table reports test PSNR);
- one mark fewer on demo and fern, two fewer on lego100 (a 100x100 mark costs 8 renders
  of ~0.8 s for each of the 24 runs).
Estimated at the 2026-12-07 pace: 97 min of training, ~25 min of evaluation; measured
the same day: 97.6 and 26 min (2 h 04 min in all). ``--full`` (for a GPU) uses the
paper's nets (8x256, 64+128; fern 64+64), lego at 200x200, and 20000/20000/10000 steps
with time marks at 5, 10 and 20 minutes. README "The study protocol" has the measured
cost of each sitting.
"""
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import Dict, List, Sequence, Tuple

import numpy as np

from runs import layout
from runs.evaluation import evaluate_views, write_metrics
from runs.protocol import ROOT, SCENES, load_scene_cached, mean_psnr, resolve_args, train_steps, weights_finite
from runs.regions import demo_region_masks, image_metrics, mean_over_views
from runs.report import fmt_number, mean_std
from runs.summary import run_settings
from runs.training import setup_training
from utils.config import save_config
from utils.errors import Diverged
from utils.io import atomic_write_json, atomic_write_text, read_image, read_json
from utils.tables import markdown_table

SETTINGS = ("relu", "sin", "cos", "gauss", "wire", "finer", "report-sin", "report-cos")
SEEDS = (0, 1, 2)


@dataclass(frozen=True)
class ScenePlan:
    scene: str
    steps: int
    time_marks: Tuple[float, ...]   # training seconds at which val/test PSNR are recorded
    overrides: Tuple[str, ...] = ()  # extra train.py flags (the smoke test's smaller images)


DEFAULT_PLAN = (ScenePlan("demo", 300, (20.0, 40.0)),
                ScenePlan("lego100", 250, (60.0,)),
                ScenePlan("fern", 100, (25.0,)))
FULL_PLAN = (ScenePlan("demo", 20000, (300.0, 600.0, 1200.0)),
             ScenePlan("lego100", 20000, (300.0, 600.0, 1200.0)),
             ScenePlan("fern", 10000, (300.0, 600.0, 1200.0)))
SMOKE_PLAN = (ScenePlan("demo", 20, (0.5,), ("--demo_res", "32", "--N_rand", "128")),)  # a pipeline check
SMOKE_SETTINGS, SMOKE_SEEDS = ("relu", "sin"), (0,)


def run_name(scene: str, setting: str, seed: int) -> str:
    return f"{scene}_{setting}_s{seed}"


def result_path(out: str, name: str) -> str:
    return os.path.join(out, "results", name + ".json")


def _view_images(outdir: str, n: int) -> List[np.ndarray]:
    """The 8-bit renders evaluate_views saved (NNN.png), as floats: what was scored."""
    return [read_image(os.path.join(outdir, f"{k:03d}.png")) for k in range(n)]


def region_metrics(scene_name: str, scene, views, indices, outdir: str) -> Dict:
    """runs/regions.py metrics of the saved test renders, averaged over the views."""
    preds = _view_images(outdir, len(indices))
    per_view = []
    for pred, idx in zip(preds, indices):
        gt = views.images[int(idx)].cpu().numpy()
        masks = None
        if scene_name == "demo":
            masks = demo_region_masks(np.asarray(scene.poses[int(idx)], np.float64), scene.H, scene.W,
                                      float(scene.K[0][0]))
        per_view.append(image_metrics(pred, gt, masks))
    return mean_over_views(per_view)


def scored_splits(splits: Dict[str, np.ndarray]) -> Tuple[np.ndarray, np.ndarray]:
    """(val, test) view indices to render; val is empty when it repeats the test views
    (LLFF's val = test, as nerf-pytorch), so those are rendered once and scored as test."""
    val, test = splits["val"], splits["test"]
    return (val[:0] if np.array_equal(val, test) else val), test


def run_one(out: str, plan: ScenePlan, setting: str, seed: int, device, full: bool = False,
            log=print) -> Dict:
    """Train and evaluate one (scene, setting, seed); returns (and writes) its results."""
    name = run_name(plan.scene, setting, seed)
    base = os.path.join(out, "runs")
    run_dir = os.path.join(base, name)
    if os.path.isdir(run_dir):
        log(f"{name}: unfinished run folder, training again from scratch")
        shutil.rmtree(run_dir)
    os.makedirs(run_dir)
    proto = SCENES[plan.scene]
    args = resolve_args(proto, ["--activation", setting],
                        ["--seed", str(seed), "--N_iters", str(plan.steps), "--expname", name, "--basedir", base,
                         "--i_testset", "0", "--i_video", "0", "--i_weights", "0", "--i_img", "0",
                         *plan.overrides], full)
    scene = load_scene_cached(args)
    val, test = scored_splits(scene.splits)
    trainer, views, batcher = setup_training(args, scene, device)
    save_config(args, layout.config_path(run_dir))
    from torch.utils.tensorboard import SummaryWriter
    writer = SummaryWriter(run_dir)
    curve: List[Dict] = []

    def at_mark(seconds: float) -> None:
        # Test views only: the equal-time table reports them; val (tuning) is scored at the end.
        record = {"seconds": seconds, "step": trainer.step, "test_psnr": mean_psnr(trainer, views, test)}
        curve.append(record)
        writer.add_scalar("train/seconds", trainer.train_seconds, trainer.step)
        log(f"  {name} [{seconds:g} s, step {trainer.step}] test PSNR {record['test_psnr']:.2f}")

    wall = time.perf_counter()
    finite = train_steps(trainer, batcher, plan.steps, plan.time_marks, at_mark,
                         progress_every=max(1, plan.steps // 4), label=name) and weights_finite(trainer)
    result = {"name": name, "scene": plan.scene, "setting": setting, "activation": args.activation,
              "recipe": args.recipe, "seed": seed, "steps": trainer.step, "planned_steps": plan.steps,
              "train_seconds": trainer.train_seconds, "n_params": trainer.n_params, "time_marks": list(plan.time_marks),
              "overrides": list(plan.overrides), "resolution": [scene.H, scene.W],
              "curve": curve, "diverged": not finite, "full": full, "run_dir": os.path.relpath(run_dir, out),
              "settings": run_settings(args), "recipe_values": {k: getattr(args, k) for k in (
                  "lrate", "first_omega0", "omega0", "siren_init", "i_embed", "sigma_bias_init", "occ_grid")}}
    if finite:
        try:
            ckpt = trainer.save(run_dir)
        except Diverged:
            finite, result["diverged"] = False, True
    if finite:
        outdir = layout.eval_dir(run_dir, trainer.step)
        metrics = evaluate_views(views, test, trainer.coarse, trainer.fine, trainer.render_options(train=False),
                                 args.chunk, outdir, amp=trainer.amp)
        metrics.update({"lpips_note": "not computed by the study", "step": trainer.step, **run_settings(args),
                        "split": "test", "testskip": args.testskip, "checkpoint": os.path.abspath(ckpt),
                        "expname": args.expname, "dataset": args.dataset_type, "device": str(device),
                        "occupied_fraction": trainer.grid.occupied_fraction() if trainer.grid is not None else None})
        write_metrics(layout.metrics_path(outdir), metrics)
        final_val = mean_psnr(trainer, views, val)
        if final_val is not None:
            writer.add_scalar("val/psnr", final_val, trainer.step)
        result.update({"val_psnr": final_val, "test_psnr": metrics["psnr"], "test_ssim": metrics["ssim"],
                       "regions": region_metrics(plan.scene, scene, views, test, outdir)})
    writer.close()
    result["wall_seconds"] = time.perf_counter() - wall
    atomic_write_json(result_path(out, name), result)
    return result


# ---------------------------------------------------------------- tables
def _cell(values, digits=2) -> str:
    mean, std, n = mean_std(values)
    return fmt_number(mean, std, digits) + (f" (n={n})" if n and n < len(values) else "")


def _by_setting(results: List[Dict], scene: str) -> List[Tuple[str, List[Dict]]]:
    rows = [(s, [r for r in results if r["scene"] == scene and r["setting"] == s]) for s in SETTINGS]
    return [(s, rs) for s, rs in rows if rs]


def _recipe_text(r: Dict) -> str:
    v = r["recipe_values"]
    text = f"lr {v['lrate']:g}, " + ("PE" if v["i_embed"] == 0 else "raw xyz")
    if r["activation"] in ("sin", "cos", "finer"):
        text += f", w0 {v['first_omega0']:g}/{v['omega0']:g}" + ("" if v["siren_init"] else ", default init")
    return text


def _mark_value(r: Dict, seconds: float, key: str):
    return next((c[key] for c in r["curve"] if c["seconds"] == seconds), None)


def scene_tables(results: List[Dict], scene: str) -> str:
    groups = _by_setting(results, scene)
    if not groups:
        return ""
    ok = lambda rs: [r for r in rs if not r["diverged"]]
    steps = sorted({r["planned_steps"] for _, rs in groups for r in rs})
    parts = [f"### {scene}\n", f"**Equal steps** ({', '.join(map(str, steps))} steps; test views, 8-bit renders; "
             f"mean ± std over seeds):\n"]
    rows = []
    for setting, rs in groups:
        good = ok(rs)
        rows.append([setting, _recipe_text(rs[0]), f"{len(good)}/{len(rs)}",
                     _cell([r["train_seconds"] for r in good], 0), _cell([r.get("val_psnr") for r in good]),
                     _cell([r.get("test_psnr") for r in good]), _cell([r.get("test_ssim") for r in good], 4),
                     _cell([r["regions"]["hf_psnr"] for r in good])])
    parts.append(markdown_table(["setting", "recipe", "runs ok", "train s", "val PSNR", "test PSNR", "test SSIM",
                                 "test HF-PSNR"], rows))
    marks = sorted({m for _, rs in groups for r in rs for m in r["time_marks"]})
    if marks:
        parts.append("\n\n**Equal training time** (test PSNR when training time first passed the mark; "
                     "'k/n' counts the runs that reached it):\n")
        rows = []
        for setting, rs in groups:
            row = [setting]
            for m in marks:
                values = [_mark_value(r, m, "test_psnr") for r in rs]
                reached = sum(v is not None for v in values)
                steps_at = [_mark_value(r, m, "step") for r in rs]
                step_text = _cell(steps_at, 0)
                row.append(f"{_cell(values)} [{reached}/{len(rs)}, step {step_text}]")
            rows.append(row)
        parts.append(markdown_table(["setting"] + [f"{m:g} s" for m in marks], rows))
    if scene == "demo":
        names = [n for n in ("floor", "sphere", "box") if any("regions" in r.get("regions", {}) for _, rs in groups
                                                              for r in ok(rs))]
        if names:
            parts.append("\n\n**Regions** (demo test views; exact masks from the analytic scene; PSNR / SSIM / "
                         "HF-PSNR of the Laplacian, mean ± std over seeds):\n")
            rows = []
            for setting, rs in groups:
                good = ok(rs)
                row = [setting]
                for n in names:
                    reg = [r["regions"]["regions"][n] for r in good]
                    row.append(f"{_cell([x['psnr'] for x in reg])} / {_cell([x['ssim'] for x in reg], 3)} / "
                               f"{_cell([x['hf_psnr'] for x in reg])}")
                rows.append(row)
            parts.append(markdown_table(["setting"] + [f"{n}: PSNR / SSIM / HF-PSNR" for n in names], rows))
    return "".join(parts) + "\n"


def write_report(out: str, results: List[Dict], command: str, compare_dirs: Dict[str, str]) -> str:
    scenes = [s for s in SCENES if any(r["scene"] == s for r in results)]
    text = [f"# Activation study\n\nCommand: `{command}`\n\n{len(results)} runs. Each setting trains with its own "
            f"recipe (`--activation NAME`); times are training seconds on the machine that ran the study.\n\n"]
    for scene in scenes:
        text.append(scene_tables(results, scene))
        if scene in compare_dirs:
            text.append(f"\ncompare.py report: `{compare_dirs[scene]}/report.md`\n")
        text.append("\n")
    md = "".join(text)
    atomic_write_text(os.path.join(out, "study.md"), md)
    atomic_write_json(os.path.join(out, "study.json"), {"command": command, "runs": results})
    return md


def run_compare(out: str, results: List[Dict], log=print) -> Dict[str, str]:
    """compare.py (a subprocess) over each scene's evaluated run folders -> {scene: folder}."""
    done = {}
    for scene in SCENES:
        dirs = [os.path.join(out, r["run_dir"]) for r in results if r["scene"] == scene and not r["diverged"]]
        if not dirs:
            continue
        dest = os.path.join(out, f"compare_{scene}")
        proc = subprocess.run([sys.executable, os.path.join(ROOT, "compare.py"), *dirs, "--out", dest, "--no_eval",
                               "--max_views", "4"], cwd=ROOT, capture_output=True, text=True)
        if proc.returncode != 0:
            log(f"compare.py failed on {scene} (exit {proc.returncode}): {proc.stderr.strip()[-500:]}")
            continue
        done[scene] = os.path.relpath(dest, out)
    return done


def run_study(out: str, plans: Sequence[ScenePlan], settings: Sequence[str], seeds: Sequence[int], device,
              command: str, full: bool = False, compare: bool = True, log=print) -> List[Dict]:
    os.makedirs(os.path.join(out, "results"), exist_ok=True)
    results = []
    for plan in plans:
        reason = SCENES[plan.scene].missing()
        if reason:
            log(f"skipping {plan.scene}: {reason}")
            continue
        for seed in seeds:
            for setting in settings:
                name = run_name(plan.scene, setting, seed)
                path = result_path(out, name)
                if os.path.exists(path):
                    log(f"{name}: done, skipped")
                    results.append(read_json(path))
                    continue
                log(f"{name}: training {plan.steps} steps")
                r = run_one(out, plan, setting, seed, device, full, log)
                psnr = "diverged" if r["diverged"] else f"test PSNR {r['test_psnr']:.2f}"
                log(f"{name}: {psnr} ({r['train_seconds']:.0f} s training, {r['wall_seconds']:.0f} s wall)")
                results.append(r)
    compare_dirs = run_compare(out, results, log) if compare else {}
    write_report(out, results, command, compare_dirs)
    log(f"wrote {os.path.join(out, 'study.md')} and study.json")
    return results
