"""utils/runtime.py: process-wide numeric settings."""
import pytest
import torch

from utils.runtime import configure_backend


def test_cpu_runs_flush_subnormals_to_zero():
    """exp(-90) = 8.2e-40 is subnormal in float32 (below 1.18e-38): flushed to 0 once the
    backend is configured, so gauss/wire layers do not fall onto the slow subnormal path."""
    if not torch.set_flush_denormal(False):
        pytest.skip("this CPU has no flush-to-zero flag")
    try:
        assert torch.exp(torch.tensor([-90.0])).item() == pytest.approx(8.194e-40, rel=1e-3)
        configure_backend(torch.device("cpu"))
        assert torch.exp(torch.tensor([-90.0])).item() == 0.0
        assert torch.exp(torch.tensor([-80.0])).item() == pytest.approx(1.8049e-35, rel=1e-3)  # normal: kept
    finally:
        torch.set_flush_denormal(False)
