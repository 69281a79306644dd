"""Sweep jobs as Ray tasks: on a local Ray instance, or on a cluster given by its address.

Ray is optional (``requirements-cluster.txt``); nothing here imports it at module level,
and ``require_ray`` turns its absence into a one-line error.

- **One job, one task.** ``sweep_task`` runs ``runs.sweep.process``, the local launcher's
  own job (train.py then eval.py as subprocesses, output appended to ``<run>/sweep.log``,
  finished runs skipped, unfinished ones resumed, the run's sweep lock held), from the
  driver's working directory, so relative paths in configs and options mean what they
  mean to the driver. Every node must see the same paths (a shared filesystem: the run
  folders, the repository and the Python environment), as in a SLURM allocation.
- **Retries.** The task is idempotent: running it again continues the run from its last
  checkpoint. So a task whose worker died (Ray's system-failure retries) or whose train.py
  / eval.py was killed by a signal (``ProcessKilled``, listed in ``retry_exceptions``) is
  retried, ``max_retries`` times. The subprocesses get SIGTERM when their worker dies
  (``Runner(in_worker=True)``), and a retry first waits for a trainer left behind to
  let go of the run (``wait_for_trainer``).
- **Exit codes.** train.py's exit 75 (checkpointed and stopped, e.g. a SIGTERM from a
  scheduler) is the run's ``interrupted`` state, not a failure and not retried; exit 2 (bad
  input) and 3 (diverged) are failures, not retried: they would fail again.
- **Ctrl-C / SIGTERM** on the driver cancels the tasks: a running task's trainer gets
  SIGINT, checkpoints and exits 75; rerun the same command to go on.
"""
import logging
import os
import socket
import threading
import time
from typing import Dict, List, Optional, Tuple

from runs import layout
from runs.sweep import Job, ProcessKilled, Result, Runner, process, say
from utils.errors import UserError, first_line
from utils.locking import try_lock

INSTALL_HINT = "pip install -r requirements-cluster.txt"
TRAINER_WAIT_S = 600.0  # how long a retry waits for a trainer left by a killed worker


def require_ray():
    """The ``ray`` module, or a one-line error saying how to install it."""
    try:
        import ray
    except ImportError:
        raise UserError(f"--launcher ray needs Ray, which is not installed: {INSTALL_HINT}") from None
    return ray


def init_ray(address: Optional[str] = None) -> None:
    """Connect to the cluster at ``address`` (``auto``: the one this node belongs to), or
    start a local instance with every CPU of this machine; no dashboard, warnings only."""
    ray = require_ray()
    if ray.is_initialized():
        return
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # no prompt, no phoning home
    # Ray >= 2.5x turns token authentication on for a new local instance (good) and says so
    # with a warning on every start (noise): keep the authentication, drop the warning.
    logging.getLogger("ray._private.authentication.authentication_token_setup").setLevel(logging.ERROR)
    quiet = {"logging_level": logging.WARNING, "log_to_driver": False}
    try:
        if address:
            ray.init(address=address, **quiet)
        else:
            # "local": a new instance even when this machine already runs one (ray start,
            # or a stale /tmp/ray/ray_current_cluster), which plain ray.init() would join
            ray.init(address="local", num_cpus=os.cpu_count(), include_dashboard=False, **quiet)
    except ConnectionError as err:
        raise UserError(f"cannot connect to the Ray cluster at '{address}' ({first_line(err)}); "
                        "start one with `ray start --head`, or leave out --address for a local instance") from None


def shutdown_ray() -> None:
    """Stop the local instance (or leave the cluster): its processes stop using the CPUs."""
    ray = require_ray()
    if ray.is_initialized():
        ray.shutdown()


def run_resources(cpus_per_run: float, gpus_per_run: Optional[float], device: str) -> Tuple[float, float]:
    """(CPUs, GPUs) each run asks Ray for; GPUs default to 1 when the cluster has any and
    the runs may use them (``--device`` is not cpu), else 0."""
    if cpus_per_run <= 0:
        raise UserError(f"--cpus_per_run must be positive, got {cpus_per_run}")
    if gpus_per_run is None:
        has_gpus = require_ray().cluster_resources().get("GPU", 0) > 0
        gpus_per_run = 1.0 if has_gpus and device != "cpu" else 0.0
    if gpus_per_run < 0:
        raise UserError(f"--gpus_per_run must be >= 0, got {gpus_per_run}")
    return cpus_per_run, gpus_per_run


def wait_for_trainer(run_dir: str, log_path: str, timeout: float = TRAINER_WAIT_S) -> None:
    """Wait until no train.py holds the run's lock: a retry may find the trainer its killed
    predecessor started still checkpointing (it got SIGTERM when its worker died)."""
    os.makedirs(run_dir, exist_ok=True)
    deadline, noted = time.monotonic() + timeout, False
    while True:
        with try_lock(layout.lock_path(run_dir)) as holder:
            if holder is None:
                return
        if not noted:
            with open(log_path, "a") as log:
                log.write(f"# waiting for the trainer left in this run ({holder}) to stop\n")
            noted = True
        if time.monotonic() > deadline:
            return  # train.py will refuse with the holder's PID: a failure the summary shows
        time.sleep(0.5)


def sweep_task(job: Job, cwd: str, no_eval: bool, eval_args: List[str], cpu_only: bool) -> Result:
    """One job inside a Ray worker: what the local launcher does for it, retry-safe."""
    import ray
    os.chdir(cwd)
    os.makedirs(job.run_dir, exist_ok=True)
    log = os.path.join(job.run_dir, "sweep.log")
    with open(log, "a") as f:
        f.write(f"\n# ray task {ray.get_runtime_context().get_task_id()} on {socket.gethostname()} "
                f"(worker PID {os.getpid()})\n")
    wait_for_trainer(job.run_dir, log)
    runner = Runner(echo=False, in_worker=True)
    # Ray sets CUDA_VISIBLE_DEVICES for the GPUs it assigns; with none assigned, hide them
    # all so that --device auto trains on the CPU instead of on another task's GPU.
    return process(job, runner, "" if cpu_only else None, no_eval, eval_args)


def task_failure(job: Job, err: Exception, max_retries: int) -> Result:
    """The Result of a task that raised (after its retries): the cause's type and first line."""
    from ray.exceptions import RayTaskError, TaskCancelledError, WorkerCrashedError
    if isinstance(err, TaskCancelledError):
        return Result(job.name, "interrupted", message="cancelled; rerun the sweep to resume")
    if isinstance(err, RayTaskError) and getattr(err, "cause", None) is not None:
        cause = err.cause
        why = f"{type(cause).__name__}: {first_line(cause)}"
        if isinstance(cause, ProcessKilled):
            why += f" (after {max_retries} retries)"
        return Result(job.name, "failed", message=why)
    if isinstance(err, WorkerCrashedError):
        return Result(job.name, "failed", message=f"its Ray worker died {max_retries + 1} times (retries exhausted)")
    return Result(job.name, "failed", message=f"{type(err).__name__}: {first_line(err)}")


def run_jobs_ray(jobs: List[Job], no_eval: bool, eval_args: List[str], cpus_per_run: float,
                 gpus_per_run: float, max_retries: int, stop: threading.Event) -> Dict[str, Result]:
    """Submit one task per job, collect the Results as they finish. KeyboardInterrupt (Ctrl-C,
    or SIGTERM turned into one by the caller) sets ``stop`` and cancels the tasks; a second
    one stops waiting."""
    ray = require_ray()
    task = ray.remote(num_cpus=cpus_per_run, num_gpus=gpus_per_run, max_retries=max_retries,
                      retry_exceptions=[ProcessKilled])(sweep_task)
    cwd = os.getcwd()
    refs = {task.remote(job, cwd, no_eval, eval_args, gpus_per_run == 0): job for job in jobs}
    results: Dict[str, Result] = {}
    pending = list(refs)
    while pending:
        try:
            done, pending = ray.wait(pending, num_returns=1, timeout=0.5)
        except KeyboardInterrupt:
            if stop.is_set():
                say("interrupted again: not waiting for the tasks any more")
                break
            say("interrupted: the running trainings checkpoint and stop; rerun the same command to resume")
            stop.set()
            for ref in pending:
                ray.cancel(ref)
            continue
        for ref in done:
            job = refs[ref]
            try:
                res = ray.get(ref)
            except Exception as err:  # noqa: BLE001 - a task's exception is its run's failure
                res = task_failure(job, err, max_retries)
            results[job.name] = res
            say(f"[{job.name}] {'FAILED: ' if res.train == 'failed' or res.eval == 'failed' else ''}"
                f"train {res.train}, eval {res.eval}" + (f": {res.message}" if res.message else ""))
    return {job.name: results.get(job.name, Result(job.name)) for job in jobs}
