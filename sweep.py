"""Train a grid of activations x seeds on one config, evaluate every run, compare them.

    python sweep.py --config configs/demo.txt --activations relu sin cos --seeds 0 1 2
    python sweep.py --config configs/blender/lego.txt --activations relu sin --seeds 0 1 \\
        --basedir logs/sweep_lego -- --N_iters 50000 --lrate 1e-3      # train.py overrides after --
    python sweep.py --config configs/demo.txt --activations relu sin --launcher ray   # on Ray
    python sweep.py --config configs/demo.txt --activations relu sin --tune --num_samples 8

Each run is ``<basedir>/<expname>_<activation>_s<seed>[_<overrides>]`` (``expname`` from the
config; the suffix is the sorted ``key=value`` list of the overrides after ``--`` that change
what a run learns, shortened with a hash when long; N_iters, logging cadence, device and
chunk sizes are left out, so a longer sweep continues the same runs). ``basedir`` defaults
to ``<config basedir>/sweep_<expname>``. Each run is ``train.py`` then ``eval.py --run`` in a
subprocess whose output goes to ``<run>/sweep.log``; at the end compare.py's report is
written to ``--out`` (default ``<basedir>/compare/``). The logic lives in runs/sweep.py.

Launchers (``--launcher``):
  local (default)  Several visible CUDA GPUs: one run per GPU at a time (CUDA_VISIBLE_DEVICES
                   set per subprocess; ``--gpus 0,2`` picks them). Otherwise runs go one
                   after another. Needs no Ray.
  ray              Each run is a Ray task (runs/cluster.py) asking for ``--cpus_per_run`` CPUs
                   and ``--gpus_per_run`` GPUs, on a local Ray instance (all CPUs of this
                   machine), or on the cluster at ``--address`` (``auto``: the one this node
                   joined with ``ray start``; every node must see the same paths). A task whose
                   worker or trainer was killed is retried (``--max_retries``) and resumes
                   from the run's last checkpoint. Needs ``pip install -r requirements-cluster.txt``.

Tuning (``--tune``, always on Ray; runs/tuning.py): per activation, ``--num_samples`` trials of
lrate (and omega0 for sin, cos, finer), log-uniform, trained in chunks of ``--tune_chunk``
steps and scored on val PSNR, ASHA stopping the weak ones; the winner is written to
``configs/recipes/<scene>/<activation>.txt`` (``--recipes_dir``). Trials go to
``<config basedir>/tune_<expname>/`` (``--basedir``). Test views are never rendered.

Resuming: run the same command again. Finished runs (train_state.json finished and
step >= N_iters) are skipped, unfinished ones continue from their newest checkpoint
(train.py resumes by itself), and runs with ``eval_<final step>/metrics.json`` are not
evaluated again. A run folder whose config.txt has other settings is refused, not
overwritten. Ctrl-C: the running trainings save a checkpoint and stop; rerun to go on.
Failed runs are listed at the end and the exit code is 1 (130 when interrupted; with
``--launcher ray``, 75 when runs were only interrupted, e.g. by a scheduler's SIGTERM).
"""
import argparse
import os
import signal
import subprocess
import sys
import threading
from typing import Dict, List

from runs import layout
from runs.sweep import Job, Result, Runner, gpu_slots, plan, process, run_jobs, say, script, train_status
from utils.errors import EXIT_INTERRUPTED, UserError, run_cli


def parse_cli(argv: List[str]):
    """(sweep options, train.py overrides after ``--``)."""
    own, overrides = (argv[:argv.index("--")], argv[argv.index("--") + 1:]) if "--" in argv else (argv, [])
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", required=True, help="train.py config file shared by all runs")
    p.add_argument("--activations", nargs="+", default=["relu"], help="hidden activations to sweep")
    p.add_argument("--seeds", nargs="+", type=int, default=[0], help="seeds to sweep")
    p.add_argument("--basedir", default=None, help="folder of the runs (default <config basedir>/sweep_<expname>, "
                                                   "tune_<expname> with --tune)")
    p.add_argument("--out", default=None, help="comparison folder (default <basedir>/compare)")
    p.add_argument("--gpus", default=None, help="local launcher: comma-separated CUDA device ids, one run per id "
                                                "at a time (default: all visible when there are several)")
    p.add_argument("--testskip", type=int, default=None, help="forwarded to eval.py (default: every test view)")
    p.add_argument("--no_eval", action="store_true", help="train only")
    p.add_argument("--no_compare", action="store_true", help="do not write the comparison")
    p.add_argument("--quiet", action="store_true", help="training output only in <run>/sweep.log")
    p.add_argument("--dry_run", action="store_true", help="print the runs and their state, run nothing")
    g = p.add_argument_group("Ray (--launcher ray and --tune; pip install -r requirements-cluster.txt)")
    g.add_argument("--launcher", choices=["local", "ray"], default="local",
                   help="local: subprocesses on this machine (default); ray: one Ray task per run")
    g.add_argument("--address", default=None,
                   help="Ray cluster to use (e.g. auto, or HEAD:6379); default: start a local instance")
    g.add_argument("--cpus_per_run", type=float, default=1.0, help="CPUs Ray reserves per run (default 1)")
    g.add_argument("--gpus_per_run", type=float, default=None,
                   help="GPUs Ray reserves per run (fractions share a GPU; default 1 if the cluster has GPUs, else 0)")
    g.add_argument("--max_retries", type=int, default=3,
                   help="times a run whose worker or trainer was killed is retried from its checkpoint (default 3)")
    g.add_argument("--tune", action="store_true", help="search lrate (and omega0) per activation on val PSNR "
                                                       "instead of training the grid")
    g.add_argument("--num_samples", type=int, default=8, help="--tune: trials per activation (default 8)")
    g.add_argument("--tune_chunk", type=int, default=None,
                   help="--tune: steps between val PSNR reports, a divisor of N_iters (default N_iters/4)")
    g.add_argument("--lr_range", nargs=2, type=float, default=None, metavar=("LOW", "HIGH"),
                   help="--tune: lrate search range (default 1e-5 1e-2)")
    g.add_argument("--omega_range", nargs=2, type=float, default=None, metavar=("LOW", "HIGH"),
                   help="--tune: omega0 search range, periodic activations (default 1 60)")
    g.add_argument("--recipes_dir", default=None, help="--tune: where recipes go (default configs/recipes)")
    opts = p.parse_args(own)
    if opts.launcher == "local" and not opts.tune and (opts.address or opts.gpus_per_run is not None):
        raise UserError("--address and --gpus_per_run need --launcher ray (or --tune)")
    if (opts.launcher == "ray" or opts.tune) and opts.gpus:
        raise UserError("--gpus is for the local launcher; with Ray use --gpus_per_run")
    if opts.max_retries < 0 or opts.num_samples < 1:
        raise UserError("--max_retries must be >= 0 and --num_samples >= 1")
    return opts, overrides


def print_plan(jobs: List[Job]) -> None:
    for job in jobs:
        status, step = train_status(job)
        say(f"{job.name:<40} {status:<8} step {step}/{job.args.N_iters}  {job.run_dir}")


def print_summary(jobs: List[Job], results: Dict[str, Result], interrupted_apart: bool = False) -> None:
    """One line per run (train / eval outcome, why it failed) and the totals; with
    ``interrupted_apart`` (the Ray launcher) interrupted runs are listed apart from failed ones."""
    width = max(len(j.name) for j in jobs)
    say(f"\n{'run':<{width}}  {'train':<11}  {'eval':<7}  note")
    for job in jobs:
        r = results[job.name]
        say(f"{job.name:<{width}}  {r.train:<11}  {r.eval:<7}  {r.message}")
    stopped = [j.name for j in jobs if interrupted_apart and results[j.name].train == "interrupted"]
    failed = [j.name for j in jobs if results[j.name].failed and j.name not in stopped]
    counts = {k: sum(results[j.name].train == k for j in jobs) for k in ("trained", "resumed", "skipped")}
    say(f"{len(jobs)} runs: " + ", ".join(f"{v} {k}" for k, v in counts.items())
        + (f"; interrupted ({len(stopped)}, rerun to resume): {', '.join(stopped)}" if stopped else "")
        + (f"; FAILED ({len(failed)}): {', '.join(failed)}" if failed else "; none failed"))


def write_comparison(jobs: List[Job], out: str) -> int:
    """compare.py's report (a subprocess, as train.py and eval.py are) over the runs that
    exist; they were evaluated above, so compare.py evaluates nothing."""
    runs = [j.run_dir for j in jobs if os.path.isfile(layout.config_path(j.run_dir))]
    if not runs:
        say("no run to compare")
        return 1
    rc = subprocess.run([sys.executable, script("compare.py"), *runs, "--out", out, "--no_eval"]).returncode
    if rc != 0:
        say(f"comparison failed: compare.py exit {rc}")
    return rc


def run_local(opts, basedir: str, jobs: List[Job], eval_args: List[str]):
    """The default launcher: subprocesses here, one per GPU slot. (results, stop event)"""
    slots = gpu_slots(opts.gpus, jobs[0].args.device)
    runner = Runner(echo=len(slots) == 1 and not opts.quiet)
    say(f"sweep: {len(jobs)} runs in {basedir}, "
        + (f"GPUs {', '.join(slots)}" if slots[0] else "one at a time"))
    in_main = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, lambda *_: runner.interrupt()) if in_main else None
    try:
        results = run_jobs(jobs, slots, lambda job, gpu: process(job, runner, gpu, opts.no_eval, eval_args),
                           runner.stop)
    finally:
        if in_main:
            signal.signal(signal.SIGTERM, previous)
    return results, runner.stop


def _raise_interrupt(*_):
    raise KeyboardInterrupt


def run_ray(opts, basedir: str, jobs: List[Job], eval_args: List[str]):
    """``--launcher ray``: one Ray task per run. (results, stop event)"""
    from runs import cluster
    cluster.init_ray(opts.address)
    cpus, gpus = cluster.run_resources(opts.cpus_per_run, opts.gpus_per_run, jobs[0].args.device)
    say(f"sweep: {len(jobs)} runs in {basedir} on Ray "
        f"({opts.address or 'local instance'}), {cpus:g} CPU / {gpus:g} GPU per run, "
        f"up to {opts.max_retries} retries (logs: <run>/sweep.log)")
    stop = threading.Event()
    in_main = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _raise_interrupt) if in_main else None  # like Ctrl-C
    try:
        results = cluster.run_jobs_ray(jobs, opts.no_eval, eval_args, cpus, gpus, opts.max_retries, stop)
    finally:
        if in_main:
            signal.signal(signal.SIGTERM, previous)
        cluster.shutdown_ray()  # before compare.py: a local instance's processes would share the CPUs
    return results, stop


def tune_main(opts, overrides: List[str]) -> int:
    """``--tune``: one Ray Tune experiment per activation, a recipe each."""
    from runs import cluster, tuning
    basedir, base, specs = tuning.plan_tuning(
        opts.config, opts.activations, opts.seeds, overrides, opts.basedir, opts.tune_chunk,
        opts.lr_range or tuning.LR_RANGE, opts.omega_range or tuning.OMEGA_RANGE)
    if opts.dry_run:
        for spec in specs:
            say(f"{spec.activation:<8} {opts.num_samples} trials  {tuning.describe_space(spec.space)}  "
                f"chunks of {spec.chunk} to {spec.n_iters}  {basedir}")
        return 0
    cluster.init_ray(opts.address)
    try:
        cpus, gpus = cluster.run_resources(opts.cpus_per_run, opts.gpus_per_run, base.device)
        return tuning.run_tuning(specs, base, basedir, opts.num_samples, cpus, gpus, opts.max_retries,
                                 opts.recipes_dir)
    finally:
        cluster.shutdown_ray()


def main(argv=None) -> int:
    """Plan, train and evaluate every run (skipping finished work), then compare; see the module doc."""
    opts, overrides = parse_cli(list(sys.argv[1:] if argv is None else argv))
    if opts.tune:
        return tune_main(opts, overrides)
    if opts.launcher == "ray":
        from runs import cluster
        cluster.require_ray()  # before any planning output: one line when Ray is missing
    basedir, jobs = plan(opts.config, opts.activations, opts.seeds, overrides, opts.basedir)
    if opts.dry_run:
        print_plan(jobs)
        return 0
    eval_args = ["--testskip", str(opts.testskip)] if opts.testskip else []
    launch = run_ray if opts.launcher == "ray" else run_local
    results, stop = launch(opts, basedir, jobs, eval_args)
    print_summary(jobs, results, interrupted_apart=opts.launcher == "ray")
    if stop.is_set():
        return 130
    code = 1 if any(r.failed for r in results.values()) else 0
    if opts.launcher == "ray" and code and all(r.train == "interrupted" for r in results.values() if r.failed):
        code = EXIT_INTERRUPTED  # only checkpointed-and-stopped runs: rerunning resumes them
    if not opts.no_compare:
        compared = write_comparison(jobs, opts.out or os.path.join(basedir, "compare"))
        code = max(1 if code == EXIT_INTERRUPTED else code, compared) if compared else code
    return code


if __name__ == "__main__":
    run_cli(main)
