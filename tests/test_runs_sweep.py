"""runs/sweep.py, the sweep's run logic, in-process: what the command line cannot show.

- ``run_jobs`` (the local launcher's scheduler): a slot never runs two jobs at once, every
  job runs once, and an exception raised by a job's work (an assert included) becomes that
  job's failed Result, its traceback printed, while the other jobs go on.
- ``Runner(in_worker=True)`` (what a Ray task runs train.py with): a subprocess killed by a
  signal raises ``ProcessKilled`` (Ray retries the task on it), and the subprocess starts
  with no blocked signals even when its parent's thread blocks SIGINT (Ray's workers do)."""
import signal
import sys
import threading
import time

import pytest

from runs import sweep


def jobs(n):
    return [sweep.Job(f"j{k}", "relu", k, "", [], None) for k in range(n)]


def test_one_job_per_slot_at_a_time_and_failures_are_visible(capsys):
    todo = jobs(6)
    seen, overlaps, lock, busy = [], [], threading.Lock(), set()

    def work(job, slot):
        with lock:
            if slot in busy:  # recorded, and checked after run_jobs: it must be empty
                overlaps.append((job.name, slot))
            busy.add(slot)
            seen.append((job.name, slot))
        time.sleep(0.05)
        with lock:
            busy.discard(slot)
        if job.name == "j3":
            raise RuntimeError("boom")
        assert job.name != "j4", "work's own check failed"  # a bug in the work: a failure, not a crash
        return sweep.Result(job.name, "trained", "done")

    results = sweep.run_jobs(todo, ["0", "1"], work, threading.Event())
    assert overlaps == []
    assert sorted(n for n, _ in seen) == [j.name for j in todo] and {s for _, s in seen} == {"0", "1"}
    assert results["j3"].failed and results["j3"].message == "RuntimeError: boom"
    assert results["j4"].failed and results["j4"].message == "AssertionError: work's own check failed"
    assert not any(results[f"j{k}"].failed for k in (0, 1, 2, 5))
    out, err = capsys.readouterr()
    assert "[j3] FAILED: RuntimeError: boom" in out and "[j4] FAILED: AssertionError" in out
    assert "Traceback" in err and "raise RuntimeError" in err and "assert job.name" in err
    assert sweep.gpu_slots("2,3", "auto") == ["2", "3"] and sweep.gpu_slots(None, "cpu") == [None]


def test_stopped_sweep_leaves_jobs_not_run():
    stop = threading.Event()

    def work(job, slot):
        stop.set()
        return sweep.Result(job.name, "trained", "done")

    results = sweep.run_jobs(jobs(3), [None], work, stop)
    assert results["j0"].train == "trained" and results["j1"].train == "not run" and results["j1"].failed


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="signal masks and PR_SET_PDEATHSIG are Linux")
def test_worker_runner_unblocks_signals_and_raises_when_killed(tmp_path):
    log = tmp_path / "sweep.log"
    masks = {}

    def in_blocking_thread():  # as in a Ray worker: SIGINT blocked in the thread that starts train.py
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
        for in_worker in (False, True):
            sweep.Runner(echo=False, in_worker=in_worker).run(
                ["grep", "SigBlk", "/proc/self/status"], str(log), None)
            masks[in_worker] = log.read_text().strip().splitlines()[-1].split()[-1]

    thread = threading.Thread(target=in_blocking_thread)
    thread.start()
    thread.join()
    assert int(masks[False], 16) & (1 << (signal.SIGINT - 1))  # inherited: the plain Runner keeps it
    assert int(masks[True], 16) == 0  # the worker's Runner: train.py sees Ctrl-C / cancellation

    killer = [sys.executable, "-c", "import os, signal; os.kill(os.getpid(), signal.SIGKILL)"]
    assert sweep.Runner(echo=False).run(killer, str(log), None) == -signal.SIGKILL
    with pytest.raises(sweep.ProcessKilled, match="killed by SIGKILL"):
        sweep.Runner(echo=False, in_worker=True).run(killer, str(log), None)
    assert "was killed by SIGKILL" in log.read_text()
