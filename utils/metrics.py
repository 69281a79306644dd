"""Image metrics on [0, 1] images (H, W, 3).

SSIM is scikit-image's maintained implementation with the standard settings of Wang
et al. 2004: 11x11 Gaussian window, sigma 1.5, K1 0.01, K2 0.03, data range 1, per
channel and averaged. LPIPS needs the ``lpips`` package *and* its weights on disk
(``LPIPS``); nothing is ever downloaded, so without them LPIPS is unavailable (None).
"""
import importlib.util
import math
import os
import re
from typing import Dict, Optional

import numpy as np
import torch


def mse_to_psnr(mse: float) -> float:
    """PSNR = -10 log10(MSE) for images in [0, 1]."""
    return float("inf") if mse <= 0 else -10.0 * math.log10(mse)


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    return mse_to_psnr(float(np.mean((np.asarray(a, np.float64) - np.asarray(b, np.float64)) ** 2)))


SSIM_WINDOW = 11  # the Gaussian window (sigma 1.5, truncated at 3.5 sigma) spans 11 pixels


def ssim(a: np.ndarray, b: np.ndarray) -> Optional[float]:
    """SSIM of (H, W, 3) images in [0, 1] with the settings of the NeRF papers; None
    (unavailable) for images smaller than the 11-pixel window."""
    from skimage.metrics import structural_similarity
    if min(np.shape(a)[:2]) < SSIM_WINDOW:
        return None
    return float(structural_similarity(
        np.asarray(a, np.float64), np.asarray(b, np.float64), channel_axis=-1, data_range=1.0,
        gaussian_weights=True, sigma=1.5, use_sample_covariance=False, K1=0.01, K2=0.03))


# LPIPS backbones: the torchvision checkpoint ``lpips.LPIPS(net=...)`` would load (through
# torchvision's ``pretrained=True``, from ``<torch hub dir>/checkpoints/<file>``, downloading it
# when absent) and where torchvision would download it from.
LPIPS_BACKBONES = {
    "vgg": ("vgg16-397923af.pth", "https://download.pytorch.org/models/vgg16-397923af.pth"),
    "alex": ("alexnet-owt-7be5be79.pth", "https://download.pytorch.org/models/alexnet-owt-7be5be79.pth"),
}
LPIPS_VERSION = "0.1"  # the lpips package's default (v0.0 had a normalisation bug)
DEFAULT_LPIPS_NET = "vgg"  # the NeRF paper's LPIPS tables use VGG


def lpips_backbone_file(net: str, weights: Optional[str] = None) -> str:
    """The backbone checkpoint LPIPS(``net``) reads: ``weights`` (--lpips_weights) if given,
    else torchvision's file name in the local torch hub cache (``$TORCH_HOME/hub/checkpoints``)."""
    return weights or os.path.join(torch.hub.get_dir(), "checkpoints", LPIPS_BACKBONES[net][0])


def lpips_linear_file(package_dir: str, net: str) -> str:
    """The LPIPS linear-layer weights that ship inside the lpips package (``weights/v0.1/<net>.pth``)."""
    return os.path.join(package_dir, "weights", f"v{LPIPS_VERSION}", f"{net}.pth")


def backbone_state(model_net: torch.nn.Module, checkpoint: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    """torchvision's ``features.<i>.<param>`` keys -> the lpips network's ``slice<k>.<i>.<param>``
    (lpips splits torchvision's ``features`` into slices, keeping each layer's index as its name)."""
    mapped = {}
    for key in model_net.state_dict():
        _, index, param = key.split(".", 2)
        source = f"features.{index}.{param}"
        if source in checkpoint:
            mapped[key] = checkpoint[source]
    return mapped


def build_lpips(net: str, linear: str, backbone: str) -> torch.nn.Module:
    """lpips.LPIPS(net) with untrained parts (nothing read, nothing downloaded), then its
    linear layers from ``linear`` and its backbone from ``backbone``, strictly: every
    parameter must be in the files with its shape (lpips' own loader is not strict)."""
    import lpips
    model = lpips.LPIPS(net=net, version=LPIPS_VERSION, pretrained=False, pnet_rand=True, verbose=False)
    lin_state = torch.load(linear, map_location="cpu", weights_only=True)
    need = [k for k in model.state_dict() if re.match(r"lin\d+\.", k)]
    lacking = [k for k in need if k not in lin_state]
    if not need or lacking:
        raise ValueError(f"{linear} lacks the linear layers {lacking or '(none in the model)'}")
    model.load_state_dict({k: lin_state[k] for k in need}, strict=False)  # the rest: the backbone, below
    checkpoint = torch.load(backbone, map_location="cpu", weights_only=True)
    model.net.load_state_dict(backbone_state(model.net, checkpoint), strict=True)
    return model


class LPIPS:
    """LPIPS with backbone ``net`` ('vgg' or 'alex'), from local files only; ``reason`` says
    why it is unavailable (``model`` None).

    It needs the ``lpips`` package, its linear-layer weights (``lpips/weights/v0.1/<net>.pth``,
    inside the package) and the torchvision backbone checkpoint (``lpips_backbone_file``).
    Both files are checked *before* anything is built; then ``build_lpips`` builds the model
    untrained (torchvision is never asked for pretrained weights, so it cannot download)
    and loads both files. ``files`` names the files used."""

    def __init__(self, device: torch.device, net: str = DEFAULT_LPIPS_NET, weights: Optional[str] = None):
        if net not in LPIPS_BACKBONES:
            raise ValueError(f"LPIPS net must be one of {sorted(LPIPS_BACKBONES)}, got {net!r}")
        self.model, self.reason, self.net, self.device, self.files = None, None, net, device, {}
        backbone = lpips_backbone_file(net, weights)
        name, url = LPIPS_BACKBONES[net]
        where = (f"{backbone} (--lpips_weights)" if weights else
                 f"{backbone} (torch hub cache: $TORCH_HOME/hub/checkpoints; or pass --lpips_weights FILE)")
        get_backbone = f"the {net} backbone {name} (torchvision's file, from {url}) at {where}"
        spec = importlib.util.find_spec("lpips")
        if spec is None or not spec.origin:
            self.reason = (f"the 'lpips' package is not installed (pip install --no-deps lpips, "
                           f"plus the torchvision matching your torch); LPIPS ({net}) also needs {get_backbone}")
            return
        linear = lpips_linear_file(os.path.dirname(spec.origin), net)
        missing = []
        if not os.path.isfile(linear):
            missing.append(f"the LPIPS v{LPIPS_VERSION} linear layers {linear} "
                           "(part of the lpips package: reinstall it)")
        if not os.path.isfile(backbone):
            missing.append(get_backbone)
        if missing:
            self.reason = "LPIPS (" + net + ") needs " + " and ".join(missing) + "; nothing is downloaded at run time"
            return
        try:
            self.model = build_lpips(net, linear, backbone).to(device).eval()
        except Exception as err:  # a broken install or a wrong file must not stop evaluation
            self.reason = f"LPIPS ({net}) failed to load from {linear} and {backbone}: {err}".replace("\n", " ")
            return
        self.files = {"linear": linear, "backbone": os.path.abspath(backbone)}

    def __call__(self, a: np.ndarray, b: np.ndarray) -> Optional[float]:
        if self.model is None:
            return None
        to_t = lambda x: torch.from_numpy(np.asarray(x, np.float32)).permute(2, 0, 1)[None].to(self.device) * 2 - 1
        with torch.no_grad():
            return float(self.model(to_t(a), to_t(b)).item())
