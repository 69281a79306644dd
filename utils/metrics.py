"""Image metrics on [0, 1] images (H, W, 3).

SSIM is scikit-image's maintained implementation with the standard settings of Wang
et al. 2004: 11x11 Gaussian window, sigma 1.5, K1 0.01, K2 0.03, data range 1, per
channel and averaged. LPIPS needs the ``lpips`` package *and* its backbone weights on
disk; nothing is ever downloaded, so without them LPIPS is unavailable (None).
"""
import math
import os
from typing import Optional

import numpy as np
import torch


def mse_to_psnr(mse: float) -> float:
    """PSNR = -10 log10(MSE) for images in [0, 1]."""
    return float("inf") if mse <= 0 else -10.0 * math.log10(mse)


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    return mse_to_psnr(float(np.mean((np.asarray(a, np.float64) - np.asarray(b, np.float64)) ** 2)))


def ssim(a: np.ndarray, b: np.ndarray) -> float:
    from skimage.metrics import structural_similarity
    return float(structural_similarity(
        np.asarray(a, np.float64), np.asarray(b, np.float64), channel_axis=-1, data_range=1.0,
        gaussian_weights=True, sigma=1.5, use_sample_covariance=False, K1=0.01, K2=0.03))


class LPIPS:
    """LPIPS (AlexNet) when available locally; ``reason`` says why when it is not."""

    def __init__(self, device: torch.device):
        self.model, self.reason = None, None
        try:
            import lpips  # noqa: F401
        except ImportError:
            self.reason = "the 'lpips' package is not installed (pip install lpips)"
            return
        weights = os.path.join(torch.hub.get_dir(), "checkpoints", "alexnet-owt-7be5be79.pth")
        if not os.path.isfile(weights):
            self.reason = f"AlexNet weights not found at {weights}; they are never downloaded at run time"
            return
        try:
            import lpips
            self.model = lpips.LPIPS(net="alex", verbose=False).to(device).eval()
            self.device = device
        except Exception as err:  # a broken local install must not stop evaluation
            self.reason = f"lpips failed to load: {err}"

    def __call__(self, a: np.ndarray, b: np.ndarray) -> Optional[float]:
        if self.model is None:
            return None
        to_t = lambda x: torch.from_numpy(np.asarray(x, np.float32)).permute(2, 0, 1)[None].to(self.device) * 2 - 1
        with torch.no_grad():
            return float(self.model(to_t(a), to_t(b)).item())
