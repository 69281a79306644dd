"""Device selection, mixed precision, device sync and graceful stop requests."""
import contextlib
import signal
import threading

import torch

from utils.errors import UserError


def select_device(name: str = "auto") -> torch.device:
    """CUDA when available (``auto``), else CPU; an explicit ``--device`` is honoured or refused."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise UserError(f"--device '{name}' is not a device; expected auto, cpu, cuda or cuda:N") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UserError(f"--device {name} requested but CUDA is not available on this machine")
    return device


def cpu_has_fast_bf16() -> bool:
    """The CPU multiplies bf16 matrices in hardware (AVX512-BF16 or AMX), through oneDNN."""
    return bool(torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported())


def amp_dtype(device: torch.device, enabled: bool):
    """The autocast dtype of ``--amp``: on CUDA bf16 where supported, else fp16; on a CPU
    bf16 when it has bf16 matrix hardware (``cpu_has_fast_bf16``: emulated bf16 would be
    slower than fp32), else None with a note (the run stays fp32); None when off."""
    if not enabled:
        return None
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if device.type == "cpu" and cpu_has_fast_bf16():
        return torch.bfloat16
    print(f"note: --amp is off on this {device.type}: it has no bf16 matrix hardware (AVX512-BF16/AMX); "
          f"computing in float32", flush=True)
    return None


def autocast(device: torch.device, dtype):
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


# Above ATen's grain size (32768 elements): an elementwise op on this many runs on every
# intra-op thread, so the first one starts the thread pool.
_POOL_START_ELEMENTS = 1 << 17
# The elementwise functions that ATen hands to MKL's vector math library (VML) on x86 and
# this project uses (encoding, SIREN, gauss, wire, finer, compositing, metrics).
_VML_FUNCTIONS = (torch.sin, torch.cos, torch.exp, torch.expm1, torch.log, torch.log1p, torch.sqrt,
                  torch.tanh, torch.abs)


def configure_backend(device: torch.device) -> None:
    """Process-wide numeric settings for a run on ``device``; call it before any tensor op
    that runs on several threads (each entry point does).

    CPU: subnormal floats are flushed to zero. Activations that decay like exp(-z^2)
    (gauss, wire) leave ~4% of their outputs subnormal, and a 65536x128 @ 128x128 matmul
    over such input takes 71 ms instead of 18 ms on this project's CPU (x86 handles
    subnormals in microcode); flushed, it takes 18 ms, as relu's does. Values below
    1.2e-38 make no difference to a NeRF. The flag is per thread and only threads started
    after it inherit it, so the intra-op thread pool is started here, right after.

    Reproducibility: when MKL's vector math first ran on two threads at once, the second
    thread computed sin differently from the first for the rest of the process (all of its
    7680 elements of a 15360-element tensor, in 10 of 40 processes; with AVX-512 code,
    not with MKL_ENABLE_INSTRUCTIONS=AVX2), so two train.py runs with one seed differed
    from their first step in 9 of 80 processes. Calling each function once on one thread
    first (a 64-element tensor is below the parallel grain) gave 80 of 80 identical.
    tests/test_runtime.py checks both through train.py's order.
    CUDA: TF32 matmuls."""
    torch.set_flush_denormal(True)  # False (no effect) on CPUs without the flag
    one_thread_input = torch.zeros(64)
    for fn in _VML_FUNCTIONS:
        fn(one_thread_input)
    torch.zeros(_POOL_START_ELEMENTS).add_(1.0)
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True


def sync(device: torch.device) -> None:
    """Wait for queued GPU work, so wall-clock times are the work's (no-op on the CPU)."""
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)


class StopFlag:
    """The first SIGINT (Ctrl-C) or SIGTERM (what cluster schedulers send before a kill)
    asks the loop to checkpoint and stop after the current step; a second one stops at
    once. Only in the main thread (signal handlers can be set nowhere else)."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self):
        self.requested, self.signal_name = False, None
        self.previous = {}
        if threading.current_thread() is threading.main_thread():
            self.previous = {sig: signal.signal(sig, self._handle) for sig in self.SIGNALS}

    def _handle(self, signum, frame):
        if self.requested:  # second signal: stop now
            self.restore()
            raise KeyboardInterrupt
        self.requested, self.signal_name = True, signal.Signals(signum).name

    def restore(self):
        for sig, handler in self.previous.items():
            signal.signal(sig, handler)
        self.previous = {}
