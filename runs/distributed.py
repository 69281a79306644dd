"""Data-parallel training with torch.distributed, launched by torchrun.

    torchrun --standalone --nproc_per_node=N train.py --config ...        # one machine
    torchrun --nnodes=M --nproc_per_node=N --rdzv_backend=c10d \\
        --rdzv_endpoint=HOST:29500 train.py --config ...                  # M machines

How one run is split (so that an N-process run equals the 1-process run with the same
seed and global ``--N_rand``, up to floating-point reduction order):

- every rank keeps the same generator and draws the *whole* batch (pixel indices and the
  renderer's ``RayNoise``) exactly as one process would, then renders only its slice
  ``[rank * N_rand / N, (rank + 1) * N_rand / N)``;
- each rank's loss is the mean over its slice; gradients are summed over ranks with one
  all-reduce per step and divided by N, i.e. the gradient of the global mean (slices are
  equal). The same all-reduce carries the losses (for logging and the NaN check) and the
  ranks' stop requests (SIGINT/SIGTERM on any rank stops all after the same step);
- weights start identical (same seed) and stay identical (same averaged gradients), the
  occupancy grid is updated by every rank with the same generator and then broadcast from
  rank 0, so every rank skips the same samples;
- rank 0 alone writes the run folder (config, TensorBoard, checkpoints, train state,
  renders) and holds its lock; every rank resumes from the same checkpoint.

Backends: gloo on the CPU, NCCL on CUDA (``cuda:LOCAL_RANK``).
"""
import os
from dataclasses import dataclass
from typing import List

import torch

from utils.errors import UserError


@dataclass
class DistInfo:
    """Where this process sits in the job (a 1-process run: rank 0 of 1)."""
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def shard(self, n: int) -> slice:
        """This rank's slice of a batch of ``n`` items (n divisible by world_size)."""
        size = n // self.world_size
        return slice(self.rank * size, (self.rank + 1) * size)


def launched_info() -> DistInfo:
    """RANK / WORLD_SIZE / LOCAL_RANK from torchrun's environment (1 process without it)."""
    env = os.environ
    if int(env.get("WORLD_SIZE", "1")) <= 1:
        return DistInfo()
    return DistInfo(int(env["RANK"]), int(env["WORLD_SIZE"]), int(env.get("LOCAL_RANK", "0")))


def device_for(info: DistInfo, requested: str) -> str:
    """The --device of this rank: with several processes, CUDA ranks take cuda:LOCAL_RANK."""
    if not info.enabled:
        return requested
    if requested.startswith("cuda:"):
        raise UserError(f"--device {requested}: under torchrun each process takes cuda:LOCAL_RANK; "
                        f"use --device auto or cuda")
    if requested in ("auto", "cuda") and torch.cuda.is_available():
        return f"cuda:{info.local_rank}"
    return requested if requested != "auto" else "cpu"


def init(info: DistInfo, device: torch.device, n_rand: int) -> None:
    """Join the process group (gloo on CPU, NCCL on CUDA); check that the batch splits evenly."""
    if not info.enabled:
        return
    if n_rand < info.world_size or n_rand % info.world_size:
        raise UserError(f"--N_rand {n_rand} must be a multiple of the {info.world_size} processes "
                        f"(each renders N_rand / world_size rays)")
    import torch.distributed as dist
    if device.type == "cuda":
        torch.cuda.set_device(device)
    dist.init_process_group("nccl" if device.type == "cuda" else "gloo")


def shutdown(info: DistInfo) -> None:
    if info.enabled:
        import torch.distributed as dist
        if dist.is_initialized():
            dist.destroy_process_group()


def all_reduce_step(params: List[torch.nn.Parameter], extras: torch.Tensor, world_size: int) -> torch.Tensor:
    """Average the gradients over ranks (a missing gradient counts as zero) and sum
    ``extras`` (1-D) over ranks, in one all-reduce; returns the summed extras."""
    import torch.distributed as dist
    grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in params]
    flat = torch.cat([g.reshape(-1).float() for g in grads] + [extras.float().to(params[0].device)])
    dist.all_reduce(flat)
    offset = 0
    for p, g in zip(params, grads):
        n = g.numel()
        p.grad = (flat[offset:offset + n] / world_size).view_as(g).to(g.dtype)
        offset += n
    return flat[offset:]


def broadcast_grid(grid) -> None:
    """Make rank 0's occupancy grid everyone's (bool cells travel as uint8 for gloo)."""
    import torch.distributed as dist
    dist.broadcast(grid.density, src=0)
    cells = grid.binary.to(torch.uint8)
    dist.broadcast(cells, src=0)
    grid.binary = cells.bool()
