"""Training and rendering throughput of one config on this machine.

    python -m bench.throughput --config configs/blender/lego_cpu.txt --steps 20 --warmup 5 \\
        --threads 2 --json throughput.json [any train.py option]

Runs train.py's own training step (``runs.training.timed_step``) in-process, on a
fresh model or on ``--ft_path CKPT`` (with ``--occ_grid`` the grid of an untrained model
is still nearly full: start from a trained checkpoint for representative numbers).
Prints and writes (``--json``):

- rays_per_sec: N_rand / median step time (steps after ``--warmup``; the median hides the
  occupancy-grid update that one step in --occ_update_every pays: ``*_mean`` include it);
- mlp_samples_per_sec: median of (samples the coarse and fine MLPs evaluated in the
  training render) / step time; grid-update samples are counted apart (grid_samples_per_step);
- render_seconds_per_image: seconds per test view rendered at ``--render_res`` pixels wide,
  as eval.py renders it (no grad, grid on if --occ_grid): the first ``--render_views``
  views (default 1), median over ``--render_passes`` passes (default 1) after one untimed
  pass; one view is noisy (0.15-0.18 s for the same code), 8 views x 3 passes steadier;
- peak_memory_mb: CUDA max allocated during the timed steps, or on CPU the process's
  max RSS (ru_maxrss, which includes the loaded dataset);
- mlp_gflops: achieved MLP GFLOP/s = FLOPs / step time, median over steps, with
  FLOPs = 3 * sum(samples x NeRF.flops_per_sample()) for the training render (forward
  1x + backward 2x: gradients w.r.t. a layer's input and w.r.t. its weights are each one
  matmul of the forward's size) + 1 * grid samples x coarse flops_per_sample (forward
  only). flops_per_sample counts Linear layers only (encoding, activations excluded);
- matmul_peak_gflops: a large square torch.mm on the same device, in the run's matmul dtype:
  fp32 (TF32 where train.py enables it on CUDA), or the ``--amp`` dtype (bf16/fp16 on CUDA,
  bf16 on a CPU with bf16 hardware); mlp_pct_of_peak = 100 * mlp_gflops / matmul_peak_gflops.
"""
import argparse
import os
import resource
import statistics
import sys
import time
from typing import Tuple

import torch

if __package__ in (None, ""):  # run as `python bench/throughput.py`: import from the repository root
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench.common import add_threads_and_json, resolve_args, run_facts, set_threads, write_json
from datasets import load_scene
from rendering.rays import scale_intrinsics
from runs.evaluation import render_image
from runs.training import Trainer, setup_training, timed_step
from utils.errors import UserError, run_cli
from utils.runtime import configure_backend, select_device, sync


def bench_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(add_help=False, allow_abbrev=False, description="bench/throughput.py options")
    p.add_argument("--steps", type=int, default=20, help="timed training steps")
    p.add_argument("--warmup", type=int, default=5, help="untimed training steps first")
    p.add_argument("--render_res", type=int, default=100, help="width of the timed render (0: skip)")
    p.add_argument("--render_views", type=int, default=1, help="timed views: the first N test views")
    p.add_argument("--render_passes", type=int, default=1, help="timed passes over them (median reported)")
    p.add_argument("--peak_n", type=int, default=0, help="matmul size for the peak (0: 2048 CPU, 8192 CUDA)")
    add_threads_and_json(p)
    return p


class SampleCounter:
    """Counts the points each radiance field is called on (forward hooks)."""

    def __init__(self, fields: dict):
        self.counts = {name: 0 for name in fields}
        for name, field in fields.items():
            field.register_forward_hook(self._hook(name))

    def _hook(self, name):
        def hook(module, inputs, output):
            self.counts[name] += inputs[0].shape[:-1].numel()
        return hook

    def snapshot(self) -> dict:
        return dict(self.counts)


def matmul_peak_gflops(device: torch.device, dtype: torch.dtype, n: int, reps: int = 3) -> float:
    """GFLOP/s of an n x n x n torch.mm (2 n^3 FLOPs), best of ``reps`` after a warm-up."""
    a = torch.randn(n, n, device=device).to(dtype)
    b = torch.randn(n, n, device=device).to(dtype)
    torch.mm(a, b)
    sync(device)
    best = float("inf")
    for _ in range(reps):
        start = time.perf_counter()
        torch.mm(a, b)
        sync(device)
        best = min(best, time.perf_counter() - start)
    return 2 * n ** 3 / best / 1e9


def timed_steps(trainer: Trainer, batcher, counter: SampleCounter, n_warmup: int, n_steps: int):
    """Per-step records {seconds, coarse, fine, grid} of ``n_steps`` steps after ``n_warmup``."""
    opts = trainer.render_options(train=True)
    records = []
    for k in range(n_warmup + n_steps):
        before = counter.snapshot()
        step = timed_step(trainer, batcher, opts)
        seconds, grid = step.seconds, step.grid_points
        after = counter.snapshot()
        if k >= n_warmup:
            records.append({"seconds": seconds, "grid": grid,
                            "coarse": after["coarse"] - before["coarse"] - grid,  # the grid calls coarse
                            "fine": after.get("fine", 0) - before.get("fine", 0)})
    return records


def render_seconds(trainer: Trainer, views, scene, res: int, n_views: int = 1, passes: int = 1) -> Tuple[float, list]:
    """Seconds per view to render the first ``n_views`` test (else val/train) views ``res``
    pixels wide: the median over ``passes`` timed passes (after one untimed pass) of a
    pass's time / n_views; also every pass's figure."""
    split = next(s for s in ("test", "val", "train") if len(scene.splits[s]))
    poses = [views.poses[int(i)] for i in scene.splits[split][:n_views]]
    K = scale_intrinsics(views.K, views.W / res)
    H = max(1, round(views.H * res / views.W))
    opts = trainer.render_options(train=False)
    per_view = []
    for _ in range(passes + 1):
        sync(trainer.device)
        start = time.perf_counter()
        for c2w in poses:
            render_image(views, c2w, trainer.coarse, trainer.fine, opts, trainer.args.chunk, K, H, res, trainer.amp)
        sync(trainer.device)
        per_view.append((time.perf_counter() - start) / len(poses))
    return statistics.median(per_view[1:]), per_view[1:]


def peak_memory_mb(device: torch.device):
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2 ** 20, "cuda_max_allocated"
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "cpu_max_rss"


def summarize(records, trainer: Trainer, peak: float) -> dict:
    flops_per_sample = {"coarse": trainer.coarse.mlp.flops_per_sample(),
                        "fine": trainer.fine.mlp.flops_per_sample() if trainer.fine is not None else 0}
    flops = [3 * (r["coarse"] * flops_per_sample["coarse"] + r["fine"] * flops_per_sample["fine"])
             + r["grid"] * flops_per_sample["coarse"] for r in records]
    secs = [r["seconds"] for r in records]
    samples = [r["coarse"] + r["fine"] for r in records]
    median_s, total_s = statistics.median(secs), sum(secs)
    gflops = statistics.median(f / s for f, s in zip(flops, secs)) / 1e9
    return {"rays_per_sec": trainer.args.N_rand / median_s,
            "mlp_samples_per_sec": statistics.median(n / s for n, s in zip(samples, secs)),
            "mlp_gflops": gflops, "matmul_peak_gflops": peak, "mlp_pct_of_peak": 100.0 * gflops / peak,
            "step_seconds_median": median_s, "step_seconds_mean": total_s / len(secs),
            "rays_per_sec_mean": trainer.args.N_rand * len(secs) / total_s,
            "mlp_gflops_mean": sum(flops) / total_s / 1e9,
            "samples_per_step": statistics.median(samples),
            "samples_per_ray": statistics.median(samples) / trainer.args.N_rand,
            "grid_samples_per_step": sum(r["grid"] for r in records) / len(records),
            "flops_per_sample": flops_per_sample, "flops_factor_train": 3}


def main(argv=None) -> int:
    bench, args = resolve_args(bench_parser(), argv, __doc__)
    if bench.steps < 1 or bench.warmup < 0 or bench.render_res < 0:
        raise UserError("--steps must be >= 1, --warmup and --render_res >= 0")
    if bench.render_views < 1 or bench.render_passes < 1:
        raise UserError("--render_views and --render_passes must be >= 1")
    set_threads(bench.threads)
    device = select_device(args.device)
    configure_backend(device)
    scene = load_scene(args)
    trainer, views, batcher = setup_training(args, scene, device)
    if args.ft_path:
        trainer.load(args.ft_path)
    fields = {"coarse": trainer.coarse, **({"fine": trainer.fine} if trainer.fine is not None else {})}
    counter = SampleCounter(fields)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    records = timed_steps(trainer, batcher, counter, bench.warmup, bench.steps)
    memory, memory_kind = peak_memory_mb(device)
    render_s, render_passes = (render_seconds(trainer, views, scene, bench.render_res, bench.render_views,
                                              bench.render_passes) if bench.render_res > 0 else (None, []))
    dtype = trainer.amp if trainer.amp is not None else torch.float32
    peak_n = bench.peak_n or (8192 if device.type == "cuda" else 2048)
    result = summarize(records, trainer, matmul_peak_gflops(device, dtype, peak_n))
    result.update({"render_seconds_per_image": render_s, "render_res": bench.render_res,
                   "render_views": bench.render_views, "render_seconds_per_pass": render_passes,
                   "peak_memory_mb": memory, "peak_memory_kind": memory_kind,
                   "matmul_dtype": str(dtype).replace("torch.", ""), "matmul_n": peak_n,
                   "steps": bench.steps, "warmup": bench.warmup, "N_rand": args.N_rand,
                   **run_facts(args, trainer, device)})
    for key in ("rays_per_sec", "mlp_samples_per_sec", "samples_per_ray", "mlp_gflops", "matmul_peak_gflops",
                "mlp_pct_of_peak", "render_seconds_per_image", "peak_memory_mb", "rays_per_sec_mean"):
        value = result[key]
        print(f"{key:<26} {value:.4g}" if isinstance(value, float) else f"{key:<26} {value}")
    write_json(bench.json, result)
    return 0


if __name__ == "__main__":
    run_cli(main)
