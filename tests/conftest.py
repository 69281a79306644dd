import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DATA = ROOT.parent / "shared" / "data"
LEGO = DATA / "nerf_synthetic" / "lego"
FERN = DATA / "nerf_llff_data" / "fern"


def require(path: Path):
    """Skip (with the reason) when a real scene is absent from ../shared/data."""
    if not path.exists():
        pytest.skip(f"real data not found at {path} (see README, 'Datasets')")
    return path


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: end-to-end training runs (a few per suite)")
    os.environ.setdefault("PYTHONHASHSEED", "0")
