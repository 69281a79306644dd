"""Tune each activation's learning rate (and omega0 when periodic) on val PSNR with Ray Tune.

    sweep.py --tune --config configs/demo.txt --activations relu sin --num_samples 8

Per activation, one Ray Tune experiment: ``num_samples`` trials draw ``lrate`` (and, for
periodic activations, ``omega0``) log-uniformly from the search space; ASHA stops the weak
ones early. A trial is a function trainable that runs train.py in chunks of steps, in its
own run folder ``<basedir>/<expname>_<activation>_<trial id>``: train to N_iters =
``chunk``, read the val PSNR train.py logged (the ``val/psnr`` scalar, through
``runs.report.read_scalars``), report it to Tune, train on to ``2 chunk`` (train.py resumes
by itself), and so on up to the config's N_iters. Only val views are rendered: the trials
run with ``--i_testset 0 --i_video 0``, and no test view is ever read.

- **The metric.** ``val_psnr`` of a chunk is the mean of the ``val/psnr`` values logged in
  it (``--i_img`` divides the chunk, so each chunk ends on one; train.py renders one val
  view per log, in turn, so every trial is scored on the same views at the same step).
- **The winner** is the best ``val_psnr`` among the trials that trained to the end (ASHA
  stopped the others at an earlier rung); diverged trials (train.py exit 3) report 0 dB and
  stop; trials that fail are listed and never win. The winning values (rounded to 4
  significant digits before training, so the recipe is exactly what ran) go to
  ``configs/recipes/<scene>/<activation>.txt`` as ``key = value`` lines, with a header
  saying how they were found.
- **Retries and resume.** A trial is idempotent (its run folder is named by its trial id,
  chunks already trained are not trained again), so Tune's ``max_failures`` retries a trial
  whose worker or trainer died from its last checkpoint.
"""
import csv
import datetime
import math
import os
import sys
from dataclasses import dataclass
from typing import Dict, List, Optional, Tuple

from models.activations import ACTIVATIONS
from runs import layout
from runs.report import read_scalars
from runs.sweep import ROOT, Runner, log_tail, override_pairs, say, script
from utils.config import build_parser, parse_args
from utils.errors import EXIT_DIVERGED, UserError

METRIC = "val_psnr"
LR_RANGE = (1e-5, 1e-2)      # lrate ~ log-uniform: NeRF's 5e-4, SIREN's 1e-4, the demo's 1e-3 inside
OMEGA_RANGE = (1.0, 60.0)    # omega0 ~ log-uniform: the report setting's 1 to twice SIREN's 30
ASHA = {"grace_period": 1, "reduction_factor": 2}  # rungs in chunks: stop the worse half at each
SET_BY_TUNER = ("lrate", "omega0", "i_img", "i_weights", "i_testset", "i_video")


@dataclass
class TuneSpec:
    """What every trial of one activation shares (shipped to the Ray workers)."""
    cwd: str                                   # the driver's working directory (relative paths)
    config: str
    overrides: List[str]
    activation: str
    seed: int
    basedir: str                               # the trials' run folders go here
    expname: str
    n_iters: int
    chunk: int                                 # steps between reports
    i_img: int                                 # val/psnr cadence (divides chunk)
    space: Dict[str, Tuple[float, float]]      # option -> (low, high), sampled log-uniformly
    cpu_only: bool = True                      # no GPU assigned: hide them from train.py


def search_space(activation: str, lr_range=LR_RANGE, omega_range=OMEGA_RANGE) -> Dict[str, Tuple[float, float]]:
    """lrate always; omega0 for periodic activations (sin, cos, finer)."""
    space = {"lrate": tuple(map(float, lr_range))}
    if ACTIVATIONS[activation].periodic:
        space["omega0"] = tuple(map(float, omega_range))
    for key, (lo, hi) in space.items():
        if not 0 < lo < hi:
            raise UserError(f"the {key} range must be 0 < low < high, got {lo:g} {hi:g}")
    return space


def describe_space(space: Dict[str, Tuple[float, float]]) -> str:
    return "; ".join(f"{key} ~ log-uniform [{lo:g}, {hi:g}]" for key, (lo, hi) in space.items())


def round_value(value: float, low: float, high: float, digits: int = 4) -> float:
    """``value`` to ``digits`` significant digits, kept inside [low, high]."""
    rounded = float(f"{value:.{digits}g}")
    return min(max(rounded, low), high)


def chunk_ends(n_iters: int, chunk: int) -> List[int]:
    return list(range(chunk, n_iters + 1, chunk))


def trial_argv(spec: TuneSpec, name: str, values: Dict[str, float], n_iters: int) -> List[str]:
    """train.py's arguments for one trial trained to ``n_iters``."""
    argv = ["--config", spec.config, *spec.overrides, "--expname", name, "--basedir", spec.basedir,
            "--activation", spec.activation, "--seed", str(spec.seed)]
    for key, value in values.items():
        argv += [f"--{key}", repr(value)]
    return argv + ["--N_iters", str(n_iters), "--i_img", str(spec.i_img), "--i_weights", str(spec.chunk),
                   "--i_testset", "0", "--i_video", "0"]


def chunk_val_psnr(run_dir: str, after: int, upto: int) -> Optional[float]:
    """Mean of the val/psnr values logged at steps in (after, upto]; None when there are none."""
    points = [v for step, v in read_scalars(run_dir).get("val/psnr", []) if after < step <= upto]
    return sum(points) / len(points) if points else None


def trial(config: Dict, spec: TuneSpec) -> None:
    """The function trainable: train.py chunk by chunk in the trial's run folder, reporting
    ``val_psnr`` after each; continues a folder left by an earlier attempt of this trial."""
    from ray import tune
    os.chdir(spec.cwd)  # Tune starts trainables in their trial folder
    values = {key: round_value(config[key], lo, hi) for key, (lo, hi) in spec.space.items()}
    name = f"{spec.expname}_{spec.activation}_{tune.get_context().get_trial_id()}"
    run_dir = os.path.join(spec.basedir, name)
    os.makedirs(run_dir, exist_ok=True)
    log = os.path.join(run_dir, "sweep.log")
    runner = Runner(echo=False, in_worker=True)
    previous = 0
    for end in chunk_ends(spec.n_iters, spec.chunk):
        if int(layout.read_train_state(run_dir).get("step", 0)) < end:
            rc = runner.run([sys.executable, script("train.py"), *trial_argv(spec, name, values, end)], log,
                            "" if spec.cpu_only else None)
            if rc == EXIT_DIVERGED:
                tune.report({METRIC: 0.0, "step": previous, "diverged": 1, **values})
                return
            if rc != 0:
                raise RuntimeError(f"train.py exit {rc} in {run_dir}: {log_tail(log)}")
        psnr = chunk_val_psnr(run_dir, previous, end)
        if psnr is None:
            raise RuntimeError(f"no val/psnr logged in steps {previous + 1}-{end} of {run_dir}")
        tune.report({METRIC: psnr, "step": end, "diverged": 0, **values})
        previous = end


def _trial_dirname(trial_obj) -> str:
    return trial_obj.trial_id


@dataclass
class TrialRow:
    trial_id: str
    values: Dict[str, float]
    step: int
    val_psnr: Optional[float]
    status: str  # finished | stopped early | diverged | failed


def trial_rows(results, spec: TuneSpec) -> List[TrialRow]:
    rows = []
    for res in results:
        m = res.metrics or {}
        trial_id = m.get("trial_id") or os.path.basename(str(res.path))
        values = {k: m[k] for k in spec.space if k in m}
        if res.error is not None:
            rows.append(TrialRow(trial_id, values, int(m.get("step", 0)), m.get(METRIC), "failed"))
        elif m.get("diverged"):
            rows.append(TrialRow(trial_id, values, int(m.get("step", 0)), None, "diverged"))
        else:
            step = int(m.get("step", 0))
            rows.append(TrialRow(trial_id, values, step, m.get(METRIC),
                                 "finished" if step >= spec.n_iters else "stopped early"))
    return rows


def best_row(rows: List[TrialRow]) -> Optional[TrialRow]:
    """The best val PSNR among the trials that trained furthest (the full budget when any did)."""
    ok = [r for r in rows if r.status in ("finished", "stopped early") and r.val_psnr is not None
          and math.isfinite(r.val_psnr)]
    if not ok:
        return None
    furthest = max(r.step for r in ok)
    return max((r for r in ok if r.step == furthest), key=lambda r: r.val_psnr)


def tune_activation(spec: TuneSpec, num_samples: int, cpus: float, gpus: float, max_failures: int,
                    storage: str) -> Tuple[List[TrialRow], bool]:
    """Run one activation's experiment; (rows, complete). ``complete`` is False when Tune
    was interrupted (Ctrl-C) before every trial ended."""
    from ray import tune
    from ray.tune.schedulers import ASHAScheduler
    from ray.tune.search import BasicVariantGenerator
    max_t = len(chunk_ends(spec.n_iters, spec.chunk))
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")  # the new console output prints a banner even at verbose 0
    tuner = tune.Tuner(
        tune.with_resources(tune.with_parameters(trial, spec=spec), {"cpu": cpus, "gpu": gpus}),
        param_space={key: tune.loguniform(lo, hi) for key, (lo, hi) in spec.space.items()},
        tune_config=tune.TuneConfig(
            metric=METRIC, mode="max", num_samples=num_samples,
            scheduler=ASHAScheduler(time_attr="training_iteration", max_t=max_t, **ASHA),
            search_alg=BasicVariantGenerator(random_state=spec.seed),
            trial_dirname_creator=_trial_dirname),
        run_config=tune.RunConfig(name=spec.activation, storage_path=os.path.abspath(storage), verbose=0,
                                  failure_config=tune.FailureConfig(max_failures=max_failures)))
    results = tuner.fit()
    complete = results.num_terminated + results.num_errors == len(results)
    return trial_rows(results, spec), complete


def scene_name(args) -> str:
    """The scene a recipe is for: ``demo``, or the data folder's name (lego, fern, ...)."""
    if args.dataset_type == "demo":
        return "demo"
    return os.path.basename(os.path.normpath(args.datadir)) or args.expname


def recipe_path(recipes_dir: str, scene: str, activation: str) -> str:
    return os.path.join(recipes_dir, scene, f"{activation}.txt")


def recipe_text(spec: TuneSpec, best: TrialRow, rows: List[TrialRow], num_samples: int, scene: str) -> str:
    """The config fragment: a header saying how it was found, then ``key = value`` lines."""
    import ray
    max_t = len(chunk_ends(spec.n_iters, spec.chunk))
    use = " ".join(f"--{k} {v!r}" for k, v in best.values.items())
    finished = sum(r.status == "finished" for r in rows)
    lines = [
        f"# Recipe: {spec.activation} on {scene}, found by `sweep.py --tune` (Ray Tune {ray.__version__}) "
        f"on {datetime.date.today().isoformat()}.",
        f"# Search space: {describe_space(spec.space)}; random search, seed {spec.seed}.",
        f"# Scheduler: ASHA on training_iteration = chunks of {spec.chunk} steps, max_t {max_t} "
        f"({spec.n_iters} steps), grace_period {ASHA['grace_period']}, reduction_factor {ASHA['reduction_factor']}.",
        f"# Samples: {num_samples} trials ({finished} trained to the end). Metric: val PSNR (train.py's val/psnr "
        f"scalar, mean over each chunk's val renders), maximised; test views never used.",
        f"# Base: --config {spec.config}" + (f" {' '.join(spec.overrides)}" if spec.overrides else "")
        + f", seed {spec.seed}.",
        f"# Winner: trial {best.trial_id}, val PSNR {best.val_psnr:.2f} dB at step {best.step}.",
        f"# Use: python train.py --config {spec.config} "
        + "".join(f"{tok} " for tok in spec.overrides) + f"--activation {spec.activation} {use}",
        f"activation = {spec.activation}",
    ]
    lines += [f"{key} = {value!r}" for key, value in best.values.items()]
    return "\n".join(lines) + "\n"


def write_recipe(path: str, text: str) -> None:
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    with open(path, "w") as f:
        f.write(text)


def write_trials_csv(path: str, rows: List[TrialRow], space) -> None:
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["trial", *space, "step", METRIC, "status"])
        for r in rows:
            writer.writerow([r.trial_id, *[r.values.get(k, "") for k in space], r.step,
                             "" if r.val_psnr is None else f"{r.val_psnr:.4f}", r.status])


def default_chunk(n_iters: int) -> int:
    """A quarter of the budget: ASHA gets 4 rungs."""
    if n_iters % 4:
        raise UserError(f"N_iters {n_iters} is not a multiple of 4: give --tune_chunk, a divisor of N_iters")
    return n_iters // 4


def plan_tuning(config: str, activations: List[str], seeds: List[int], overrides: List[str],
                basedir: Optional[str], chunk: Optional[int], lr_range,
                omega_range) -> Tuple[str, object, List[TuneSpec]]:
    """(basedir, the base args, one TuneSpec per activation), every trial's arguments checked."""
    pairs = override_pairs(overrides)
    clash = [k for k, _ in pairs if k in SET_BY_TUNER]
    if clash:
        raise UserError(f"--{clash[0]} is set by --tune (the search space and the chunked training)")
    if len(seeds) != 1:
        raise UserError(f"--tune searches with one seed, got --seeds {' '.join(map(str, seeds))}")
    base = parse_args(build_parser(), ["--config", config] + overrides)
    basedir = basedir or os.path.join(base.basedir, f"tune_{base.expname}")
    chunk = chunk or default_chunk(base.N_iters)
    if chunk <= 0 or base.N_iters % chunk:
        raise UserError(f"--tune_chunk {chunk} must divide N_iters {base.N_iters}")
    i_img = base.i_img if 0 < base.i_img <= chunk and chunk % base.i_img == 0 else chunk
    specs = []
    for act in dict.fromkeys(activations):
        if act not in ACTIVATIONS:
            raise UserError(f"unknown activation '{act}' (choose from {', '.join(sorted(ACTIVATIONS))})")
        space = search_space(act, lr_range, omega_range)
        spec = TuneSpec(os.getcwd(), config, list(overrides), act, seeds[0], basedir, base.expname, base.N_iters,
                        chunk, i_img, space)
        middle = {k: math.sqrt(lo * hi) for k, (lo, hi) in space.items()}
        parse_args(build_parser(), trial_argv(spec, "check", middle, chunk))  # bad options fail here
        specs.append(spec)
    return basedir, base, specs


def run_tuning(specs: List[TuneSpec], base, basedir: str, num_samples: int, cpus: float, gpus: float,
               max_failures: int, recipes_dir: Optional[str]) -> int:
    """Every activation's experiment, its table printed, its recipe written; exit code."""
    scene = scene_name(base)
    recipes_dir = recipes_dir or os.path.join(ROOT, "configs", "recipes")
    code = 0
    for spec in specs:
        spec.cpu_only = gpus == 0
        say(f"tune {spec.activation}: {num_samples} trials, {describe_space(spec.space)}, ASHA over "
            f"{len(chunk_ends(spec.n_iters, spec.chunk))} chunks of {spec.chunk} steps (runs in {basedir})")
        rows, complete = tune_activation(spec, num_samples, cpus, gpus, max_failures,
                                         os.path.join(basedir, "ray_tune"))
        for r in sorted(rows, key=lambda r: (-r.step, -(r.val_psnr or 0.0))):
            vals = " ".join(f"{k} {v:g}" for k, v in r.values.items())
            psnr = "-" if r.val_psnr is None else f"{r.val_psnr:.2f} dB"
            say(f"  {r.trial_id:<14} {vals:<28} step {r.step:<7} val PSNR {psnr:<9} {r.status}")
        write_trials_csv(os.path.join(basedir, f"trials_{spec.activation}.csv"), rows, spec.space)
        if not complete:
            say(f"tune {spec.activation}: interrupted; no recipe written")
            return 130
        best = best_row(rows)
        if best is None:
            say(f"tune {spec.activation}: FAILED: no trial reported a val PSNR (see <run>/sweep.log in {basedir})")
            code = 1
            continue
        path = recipe_path(recipes_dir, scene, spec.activation)
        write_recipe(path, recipe_text(spec, best, rows, num_samples, scene))
        say(f"tune {spec.activation}: best " + " ".join(f"{k} {v:g}" for k, v in best.values.items())
            + f", val PSNR {best.val_psnr:.2f} dB at step {best.step} -> {path}")
    return code
