"""Train a grid of activations x seeds on one config, evaluate every run, compare them.

    python sweep.py --config configs/demo.txt --activations relu sin cos --seeds 0 1 2
    python sweep.py --config configs/blender/lego.txt --activations relu sin --seeds 0 1 \\
        --basedir logs/sweep_lego -- --N_iters 50000 --lrate 1e-3      # train.py overrides after --

Each run is ``<basedir>/<expname>_<activation>_s<seed>[_<overrides>]`` (``expname`` from the
config; the suffix is the sorted ``key=value`` list of the overrides after ``--`` that change
what a run learns, shortened with a hash when long; N_iters, logging cadence, device and
chunk sizes are left out, so a longer sweep continues the same runs). ``basedir`` defaults
to ``<config basedir>/sweep_<expname>``. Each run is ``train.py`` then ``eval.py --run`` in a
subprocess whose output goes to ``<run>/sweep.log``; at the end compare.py's report is
written to ``--out`` (default ``<basedir>/compare/``).

Several visible CUDA GPUs: one run per GPU at a time (CUDA_VISIBLE_DEVICES set per
subprocess; ``--gpus 0,2`` picks them). Otherwise runs go one after another.

Resuming: run the same command again. Finished runs (train_state.json finished and
step >= N_iters) are skipped, unfinished ones continue from their newest checkpoint
(train.py resumes by itself), and runs with ``eval_<final step>/metrics.json`` are not
evaluated again. A run folder whose config.txt has other settings is refused, not
overwritten. Ctrl-C: the running trainings save a checkpoint and stop; rerun to go on.
Failed runs are listed at the end and the exit code is 1 (130 when interrupted).
"""
import argparse
import codecs
import hashlib
import os
import queue
import re
import shlex
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, Tuple

from runs import layout
from runs.report import NON_SETTING, load_config
from utils.config import build_parser, parse_args
from utils.errors import EXIT_INTERRUPTED, UserError, run_cli
from utils.locking import try_lock

ROOT = os.path.dirname(os.path.abspath(__file__))
SET_BY_SWEEP = {"activation", "seed", "expname", "basedir", "config"}
PRINT_LOCK = threading.Lock()


def say(*parts) -> None:
    with PRINT_LOCK:
        print(*parts, flush=True)


@dataclass
class Job:
    name: str
    activation: str
    seed: int
    run_dir: str
    train_argv: List[str]   # train.py arguments (without the script)
    args: object            # the parsed argparse.Namespace of train_argv


@dataclass
class Result:
    name: str
    train: str = "not run"  # trained | resumed | skipped | failed | interrupted | not run
    eval: str = "-"         # done | skipped | failed | off | -
    message: str = ""

    @property
    def failed(self) -> bool:
        return self.train in ("failed", "interrupted", "not run") or self.eval == "failed"


# ---------------------------------------------------------------- the plan
def override_pairs(tokens: List[str]) -> List[Tuple[str, List[str]]]:
    """``--key v1 v2 --flag --k=v`` -> [(key, [v1, v2]), (flag, []), (k, [v])]."""
    pairs: List[Tuple[str, List[str]]] = []
    for tok in tokens:
        if tok.startswith("--"):
            key, eq, value = tok[2:].partition("=")
            pairs.append((key, [value] if eq else []))
        elif pairs:
            pairs[-1][1].append(tok)
        else:
            raise UserError(f"override '{tok}' is not a --flag (train.py options go after --, e.g. -- --lrate 1e-3)")
    clash = sorted({k for k, _ in pairs} & SET_BY_SWEEP)
    if clash:
        raise UserError(f"--{clash[0]} is set by the sweep (use --config / --activations / --seeds / --basedir)")
    return pairs


def override_slug(pairs: List[Tuple[str, List[str]]], max_len: int = 48) -> str:
    """Sorted ``key=value`` of the overrides that change what is learned, file-name safe."""
    parts = [key if not values else f"{key}={'-'.join(values)}" for key, values in sorted(pairs)
             if key not in NON_SETTING]
    slug = re.sub(r"[^A-Za-z0-9._=+-]", "-", "_".join(parts))
    if len(slug) > max_len:
        slug = slug[:max_len - 9] + "-" + hashlib.sha1(slug.encode()).hexdigest()[:8]
    return slug


def plan(config: str, activations: List[str], seeds: List[int], overrides: List[str],
         basedir: Optional[str] = None) -> Tuple[str, List[Job]]:
    """(basedir, jobs) for the grid; every job's arguments are parsed (and so checked) here."""
    suffix = override_slug(override_pairs(overrides))
    base = parse_args(build_parser(), ["--config", config] + overrides)
    basedir = basedir or os.path.join(base.basedir, f"sweep_{base.expname}")
    jobs = []
    for act in dict.fromkeys(activations):
        for seed in dict.fromkeys(seeds):
            name = f"{base.expname}_{act}_s{seed}" + (f"_{suffix}" if suffix else "")
            argv = ["--config", config, *overrides, "--expname", name, "--basedir", basedir,
                    "--activation", act, "--seed", str(seed)]
            jobs.append(Job(name, act, seed, os.path.join(basedir, name), argv, parse_args(build_parser(), argv)))
    return basedir, jobs


def train_status(job: Job) -> Tuple[str, int]:
    """('finished' | 'partial' | 'new', step reached so far)."""
    state = layout.read_train_state(job.run_dir)
    step = int(state.get("step", 0))
    if state.get("finished") and step >= job.args.N_iters:
        return "finished", step
    found = layout.checkpoints(job.run_dir)
    return ("partial", found[-1][0]) if found else ("new", 0)


def settings_mismatch(job: Job) -> List[str]:
    """Settings in which an existing run folder differs from this job (empty when none/new)."""
    if not os.path.isfile(layout.config_path(job.run_dir)):
        return []
    saved, wanted = vars(load_config(job.run_dir)), vars(job.args)
    return [f"{k} (run: {saved.get(k)!r}, sweep: {wanted.get(k)!r})" for k in sorted(set(saved) | set(wanted))
            if k not in NON_SETTING and saved.get(k) != wanted.get(k)]


# ---------------------------------------------------------------- running one job
class Runner:
    """Subprocesses with their output teed into a log (and the console when ``echo``)."""

    def __init__(self, echo: bool):
        self.echo, self.stop = echo, threading.Event()
        self.procs: Dict[int, subprocess.Popen] = {}

    def run(self, cmd: List[str], log_path: str, gpu: Optional[str]) -> int:
        """Run ``cmd`` (on CUDA device ``gpu`` if given), appending its output to ``log_path``; exit code."""
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        if gpu is not None:
            env["CUDA_VISIBLE_DEVICES"] = gpu
        decoder = codecs.getincrementaldecoder("utf-8")("replace")
        with open(log_path, "ab") as log:
            log.write(f"\n$ {'CUDA_VISIBLE_DEVICES=' + gpu + ' ' if gpu else ''}"
                      f"{' '.join(shlex.quote(c) for c in cmd)}\n".encode())
            proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env)
            self.procs[proc.pid] = proc
            try:
                while chunk := proc.stdout.read1(65536):
                    log.write(chunk)
                    log.flush()
                    if self.echo:
                        with PRINT_LOCK:
                            sys.stdout.write(decoder.decode(chunk))
                            sys.stdout.flush()
                return proc.wait()
            finally:
                self.procs.pop(proc.pid, None)

    def interrupt(self) -> None:
        """Stop starting jobs and ask the running trainings to checkpoint and exit (SIGINT)."""
        self.stop.set()
        for proc in list(self.procs.values()):
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)


def log_tail(path: str, lines: int = 3) -> str:
    try:
        with open(path, errors="replace") as f:
            text = [ln.strip() for ln in re.split(r"[\r\n]", f.read()) if ln.strip()]
    except OSError:
        return ""
    errors = [ln for ln in text if ln.startswith(("error:", "Traceback")) or "Error" in ln]
    return " | ".join((errors or text)[-lines:])


def train_job(job: Job, runner: Runner, gpu: Optional[str], res: Result) -> None:
    """Train (or resume, or skip) one run; fills ``res.train`` / ``res.message``."""
    mismatch = settings_mismatch(job)
    if mismatch:
        res.train, res.message = "failed", (f"{job.run_dir} exists with other settings: {'; '.join(mismatch)} "
                                            "(use another --basedir, or delete the run)")
        return
    status, step = train_status(job)
    if status == "finished":
        res.train = "skipped"
        say(f"[{job.name}] finished at step {step}: skipped")
        return
    if runner.stop.is_set():
        return
    log = os.path.join(job.run_dir, "sweep.log")
    say(f"[{job.name}] " + (f"resuming from step {step}" if status == "partial" else "training")
        + f" to {job.args.N_iters}" + (f" on GPU {gpu}" if gpu else "") + f" (log: {log})")
    rc = runner.run([sys.executable, os.path.join(ROOT, "train.py"), *job.train_argv], log, gpu)
    rc = 0 if rc == EXIT_INTERRUPTED else rc  # checkpointed and stopped: reported as interrupted below
    done, _ = train_status(job)
    if rc != 0:
        res.train, res.message = "failed", f"train.py exit {rc}: {log_tail(log)}"
    elif done != "finished":
        res.train, res.message = "interrupted", "stopped before N_iters; rerun the sweep to resume"
    else:
        res.train = "resumed" if status == "partial" else "trained"


def eval_job(job: Job, runner: Runner, gpu: Optional[str], res: Result, eval_args: List[str]) -> None:
    """Evaluate the run's final checkpoint unless eval_<step>/metrics.json already exists."""
    state = layout.read_train_state(job.run_dir)
    out = layout.metrics_path(layout.eval_dir(job.run_dir, int(state.get("step", 0))))
    if os.path.isfile(out):
        res.eval = "skipped"
        return
    if runner.stop.is_set():
        return
    log = os.path.join(job.run_dir, "sweep.log")
    say(f"[{job.name}] evaluating step {state.get('step')}")
    rc = runner.run([sys.executable, os.path.join(ROOT, "eval.py"), "--run", job.run_dir, *eval_args], log, gpu)
    res.eval = "done" if rc == 0 and os.path.isfile(out) else "failed"
    if res.eval == "failed":
        res.message = f"eval.py exit {rc}: {log_tail(log)}"


def process(job: Job, runner: Runner, gpu: Optional[str], no_eval: bool, eval_args: List[str]) -> Result:
    """Train (or resume / skip) and evaluate one run; never raises for a failed subprocess."""
    res = Result(job.name)
    os.makedirs(job.run_dir, exist_ok=True)
    with try_lock(layout.sweep_lock_path(job.run_dir)) as holder:
        if holder is not None:
            res.train, res.message = "failed", f"another sweep ({holder}) is working on {job.run_dir}"
        else:
            train_job(job, runner, gpu, res)
        if res.train in ("trained", "resumed", "skipped"):
            if no_eval:
                res.eval = "off"
            else:
                eval_job(job, runner, gpu, res, eval_args)
    if res.failed and res.message:
        say(f"[{job.name}] FAILED: {res.message}")
    return res


# ---------------------------------------------------------------- scheduling
def visible_gpus() -> List[str]:
    """Ids to put in CUDA_VISIBLE_DEVICES, one per visible CUDA device."""
    import torch
    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    env = os.environ.get("CUDA_VISIBLE_DEVICES")
    ids = [g.strip() for g in env.split(",") if g.strip()] if env else [str(k) for k in range(count)]
    return ids[:count]


def gpu_slots(gpus: Optional[str], device: str) -> List[Optional[str]]:
    """One slot per GPU when several are visible (or given by --gpus), else [None]: sequential."""
    if gpus:
        return [g.strip() for g in gpus.split(",") if g.strip()] or [None]
    if device == "cpu" or device.startswith("cuda:"):
        return [None]  # explicit device: leave the visible devices alone
    ids = visible_gpus()
    return ids if len(ids) > 1 else [None]


def run_jobs(jobs: List[Job], slots: List[Optional[str]], work: Callable[[Job, Optional[str]], Result],
             stop: threading.Event) -> Dict[str, Result]:
    """One worker thread per slot takes jobs in order; a job's exception is its failure."""
    todo: "queue.Queue[Job]" = queue.Queue()
    for job in jobs:
        todo.put(job)
    results: Dict[str, Result] = {}
    finished = []  # one entry per worker that returned (list.append is atomic)

    def worker(slot):
        """Take jobs until none is left or the sweep is stopped."""
        try:
            while not stop.is_set():
                try:
                    job = todo.get_nowait()
                except queue.Empty:
                    return
                try:
                    results[job.name] = work(job, slot)
                except Exception as err:  # noqa: BLE001 - reported in the summary, the sweep goes on
                    results[job.name] = Result(job.name, "failed", message=f"{type(err).__name__}: {err}")
                    say(f"[{job.name}] FAILED: {results[job.name].message}")
        finally:
            finished.append(slot)

    for slot in slots:
        threading.Thread(target=worker, args=(slot,), daemon=True).start()
    wait_all(finished, len(slots), stop)
    return {job.name: results.get(job.name, Result(job.name)) for job in jobs}


def wait_all(finished: list, workers: int, stop: threading.Event) -> None:
    """Wait until all ``workers`` appended to ``finished``; Ctrl-C sets ``stop`` (the trainings get
    the SIGINT themselves and checkpoint). Polling, not Thread.join: a join interrupted by
    Ctrl-C can make a running thread look finished (CPython < 3.13)."""
    while len(finished) < workers:
        try:
            time.sleep(0.2)
        except KeyboardInterrupt:
            if not stop.is_set():
                say("interrupted: waiting for the running jobs to checkpoint; rerun the same command to resume")
            stop.set()


# ---------------------------------------------------------------- command line
def parse_cli(argv: List[str]):
    """(sweep options, train.py overrides after ``--``)."""
    own, overrides = (argv[:argv.index("--")], argv[argv.index("--") + 1:]) if "--" in argv else (argv, [])
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", required=True, help="train.py config file shared by all runs")
    p.add_argument("--activations", nargs="+", default=["relu"], help="hidden activations to sweep")
    p.add_argument("--seeds", nargs="+", type=int, default=[0], help="seeds to sweep")
    p.add_argument("--basedir", default=None, help="folder of the runs (default <config basedir>/sweep_<expname>)")
    p.add_argument("--out", default=None, help="comparison folder (default <basedir>/compare)")
    p.add_argument("--gpus", default=None, help="comma-separated CUDA device ids, one run per id at a time "
                                                "(default: all visible when there are several)")
    p.add_argument("--testskip", type=int, default=None, help="forwarded to eval.py (default: every test view)")
    p.add_argument("--no_eval", action="store_true", help="train only")
    p.add_argument("--no_compare", action="store_true", help="do not write the comparison")
    p.add_argument("--quiet", action="store_true", help="training output only in <run>/sweep.log")
    p.add_argument("--dry_run", action="store_true", help="print the runs and their state, run nothing")
    return p.parse_args(own), overrides


def print_plan(jobs: List[Job]) -> None:
    for job in jobs:
        status, step = train_status(job)
        say(f"{job.name:<40} {status:<8} step {step}/{job.args.N_iters}  {job.run_dir}")


def print_summary(jobs: List[Job], results: Dict[str, Result]) -> None:
    """One line per run (train / eval outcome, why it failed) and the totals."""
    width = max(len(j.name) for j in jobs)
    say(f"\n{'run':<{width}}  {'train':<11}  {'eval':<7}  note")
    for job in jobs:
        r = results[job.name]
        say(f"{job.name:<{width}}  {r.train:<11}  {r.eval:<7}  {r.message}")
    failed = [j.name for j in jobs if results[j.name].failed]
    counts = {k: sum(results[j.name].train == k for j in jobs) for k in ("trained", "resumed", "skipped")}
    say(f"{len(jobs)} runs: " + ", ".join(f"{v} {k}" for k, v in counts.items())
        + (f"; FAILED ({len(failed)}): {', '.join(failed)}" if failed else "; none failed"))


def write_comparison(jobs: List[Job], out: str) -> int:
    """compare.py's report (a subprocess, as train.py and eval.py are) over the runs that
    exist; they were evaluated above, so compare.py evaluates nothing."""
    runs = [j.run_dir for j in jobs if os.path.isfile(layout.config_path(j.run_dir))]
    if not runs:
        say("no run to compare")
        return 1
    rc = subprocess.run([sys.executable, os.path.join(ROOT, "compare.py"), *runs, "--out", out, "--no_eval"]).returncode
    if rc != 0:
        say(f"comparison failed: compare.py exit {rc}")
    return rc


def main(argv=None) -> int:
    """Plan, train and evaluate every run (skipping finished work), then compare; see the module doc."""
    opts, overrides = parse_cli(list(sys.argv[1:] if argv is None else argv))
    basedir, jobs = plan(opts.config, opts.activations, opts.seeds, overrides, opts.basedir)
    if opts.dry_run:
        print_plan(jobs)
        return 0
    slots = gpu_slots(opts.gpus, jobs[0].args.device)
    runner = Runner(echo=len(slots) == 1 and not opts.quiet)
    eval_args = ["--testskip", str(opts.testskip)] if opts.testskip else []
    say(f"sweep: {len(jobs)} runs in {basedir}, " + (f"GPUs {', '.join(slots)}" if slots[0] else "one at a time"))
    in_main = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, lambda *_: runner.interrupt()) if in_main else None
    try:
        results = run_jobs(jobs, slots, lambda job, gpu: process(job, runner, gpu, opts.no_eval, eval_args),
                           runner.stop)
    finally:
        if in_main:
            signal.signal(signal.SIGTERM, previous)
    print_summary(jobs, results)
    if runner.stop.is_set():
        return 130
    code = 1 if any(r.failed for r in results.values()) else 0
    if not opts.no_compare:
        code = max(code, write_comparison(jobs, opts.out or os.path.join(basedir, "compare")))
    return code


if __name__ == "__main__":
    run_cli(main)
