"""Sweeps as run logic: the plan of a grid, one job's train + eval, and the local launcher.

sweep.py (the script) parses the command line and prints; this module decides and runs:

- **The plan.** ``plan`` turns a config, activations, seeds and train.py overrides into
  ``Job``s: run ``<basedir>/<expname>_<activation>_s<seed>[_<overrides>]`` with its own
  train.py arguments, parsed (and so checked) before anything runs. ``override_slug``
  names the overrides that change what a run learns (``runs.report.NON_SETTING`` are left
  out, so a longer sweep continues the same runs).
- **One job** (``process``): under the run's sweep lock (``layout.sweep_lock_path``),
  ``train_job`` skips a finished run, resumes an unfinished one (train.py resumes by
  itself) or trains a new one, and ``eval_job`` evaluates the final step unless
  ``eval_<step>/metrics.json`` exists; both run as subprocesses whose output is appended
  to ``<run>/sweep.log``. The same function runs on the local launcher and inside a Ray
  task (runs/cluster.py): it is idempotent, so running it again continues the work.
- **The local launcher** (``run_jobs``): one worker thread per slot (one per GPU, or a
  single slot: runs one after another). A job's exception is its failure: a failed
  ``Result`` with the exception's first line, and the traceback on stderr.
"""
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
import traceback
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, Tuple

from runs import layout
from runs.report import NON_SETTING, load_config
from utils.config import build_parser, parse_args
from utils.errors import EXIT_INTERRUPTED, UserError, first_line
from utils.locking import try_lock

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # the repository: train.py, eval.py
SET_BY_SWEEP = {"activation", "seed", "expname", "basedir", "config"}
PRINT_LOCK = threading.Lock()


def say(*parts) -> None:
    with PRINT_LOCK:
        print(*parts, flush=True)


def script(name: str) -> str:
    """Path of one of the repository's scripts (train.py, eval.py, compare.py)."""
    return os.path.join(ROOT, name)


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
    if layout.state_done(state, job.args.N_iters):
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
class ProcessKilled(Exception):
    """A train.py / eval.py subprocess died from a signal it does not handle (kill -9, the
    OOM killer): its run is intact up to its last checkpoint, so the job may be run again
    (Ray retries it: runs/cluster.py). Raised only by a ``Runner(in_worker=True)``."""


def _load_prctl():
    """libc's prctl on Linux (None elsewhere), loaded before any fork."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        import ctypes
        return ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None


_PRCTL = _load_prctl()
PR_SET_PDEATHSIG = 1


def _worker_child_setup():
    """preexec_fn of a Ray worker's subprocesses (train.py, eval.py), run in the child:
    - unblock every signal: a Ray worker's thread blocks SIGINT, and a blocked mask survives
      exec, so train.py would never see the SIGINT that asks it to checkpoint and stop;
    - SIGTERM when the thread that started it dies (Linux PR_SET_PDEATHSIG), so a killed
      worker leaves no orphan trainer holding the run: train.py checkpoints and exits 75."""
    signal.pthread_sigmask(signal.SIG_SETMASK, [])
    if _PRCTL is not None:
        parent = os.getppid()
        _PRCTL(PR_SET_PDEATHSIG, int(signal.SIGTERM))
        if os.getppid() != parent:  # the parent died before prctl
            os.kill(os.getpid(), signal.SIGTERM)


class Runner:
    """Subprocesses with their output teed into a log (and the console when ``echo``).

    ``in_worker`` (Ray tasks; off in the local launcher): a subprocess killed by a signal
    raises ``ProcessKilled`` instead of returning its (negative) exit code, and subprocesses
    start with ``_worker_child_setup`` (signals unblocked, SIGTERM when the worker dies)."""

    def __init__(self, echo: bool, in_worker: bool = False):
        self.echo, self.stop, self.in_worker = echo, threading.Event(), in_worker
        self.procs: Dict[int, subprocess.Popen] = {}

    def run(self, cmd: List[str], log_path: str, gpu: Optional[str]) -> int:
        """Run ``cmd`` (on CUDA device ``gpu`` if given; ``""``: no GPU), appending its output
        to ``log_path``; exit code."""
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        if gpu is not None:
            env["CUDA_VISIBLE_DEVICES"] = gpu
        decoder = codecs.getincrementaldecoder("utf-8")("replace")
        preexec = _worker_child_setup if self.in_worker else None
        with open(log_path, "ab") as log:
            log.write(f"\n$ {'CUDA_VISIBLE_DEVICES=' + gpu + ' ' if gpu else ''}"
                      f"{' '.join(shlex.quote(c) for c in cmd)}\n".encode())
            proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env,
                                    preexec_fn=preexec)
            self.procs[proc.pid] = proc
            try:
                while chunk := proc.stdout.read1(65536):
                    log.write(chunk)
                    log.flush()
                    if self.echo:
                        with PRINT_LOCK:
                            sys.stdout.write(decoder.decode(chunk))
                            sys.stdout.flush()
                rc = proc.wait()
            except KeyboardInterrupt:  # a cancelled Ray task (never in the local launcher's threads)
                proc.send_signal(signal.SIGINT)  # checkpoint and stop, as Ctrl-C does
                for chunk in iter(lambda: proc.stdout.read1(65536), b""):
                    log.write(chunk)
                proc.wait()
                raise
            finally:
                self.procs.pop(proc.pid, None)
        if rc < 0 and self.in_worker and not self.stop.is_set():
            name = os.path.basename(cmd[1]) if len(cmd) > 1 else cmd[0]
            what = f"{name} (PID {proc.pid}) was killed by {signal_name(-rc)}"
            with open(log_path, "a") as log:
                log.write(f"\n# {what}\n")
            raise ProcessKilled(f"{what}; see {log_path}")
        return rc

    def interrupt(self) -> None:
        """Stop starting jobs and ask the running trainings to checkpoint and exit (SIGINT)."""
        self.stop.set()
        for proc in list(self.procs.values()):
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)


def signal_name(signum: int) -> str:
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"


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
    rc = runner.run([sys.executable, script("train.py"), *job.train_argv], log, gpu)
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
    rc = runner.run([sys.executable, script("eval.py"), "--run", job.run_dir, *eval_args], log, gpu)
    res.eval = "done" if rc == 0 and os.path.isfile(out) else "failed"
    if res.eval == "failed":
        res.message = f"eval.py exit {rc}: {log_tail(log)}"


def process(job: Job, runner: Runner, gpu: Optional[str], no_eval: bool, eval_args: List[str]) -> Result:
    """Train (or resume / skip) and evaluate one run; never raises for a failed subprocess
    (except ``ProcessKilled`` from a ``Runner(in_worker=True)``)."""
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


# ---------------------------------------------------------------- the local launcher
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


def job_failure(job: Job, err: BaseException) -> Result:
    """The failed Result of a job whose ``work`` raised: the exception's type and first line
    in the summary, its traceback on stderr (a bug in the work itself must not pass unseen)."""
    res = Result(job.name, "failed", message=f"{type(err).__name__}: {first_line(err)}")
    with PRINT_LOCK:
        print(f"[{job.name}] FAILED: {res.message}", flush=True)
        sys.stderr.write(f"[{job.name}] " + "".join(traceback.format_exception(err)))
        sys.stderr.flush()
    return res


def run_jobs(jobs: List[Job], slots: List[Optional[str]], work: Callable[[Job, Optional[str]], Result],
             stop: threading.Event) -> Dict[str, Result]:
    """One worker thread per slot takes jobs in order; a job's exception is its failure
    (``job_failure``); jobs never started are "not run" (failed)."""
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
                    results[job.name] = job_failure(job, err)
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
