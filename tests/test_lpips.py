"""LPIPS from local files only (utils.metrics.LPIPS, eval.py --lpips_net/--lpips_weights).

The files ``lpips.LPIPS(net=...)`` reads (lpips 0.1.4 + torchvision): its linear layers
``<lpips package>/weights/v0.1/<net>.pth`` (in the wheel) and torchvision's ImageNet
backbone ``$TORCH_HOME/hub/checkpoints/vgg16-397923af.pth`` (alex:
``alexnet-owt-7be5be79.pth``), downloaded by torchvision when absent. We never let
torchvision load it: the model is built untrained and both files are loaded by us.

The real package is not installed here (pip would replace torch), so these tests use a
fake ``lpips`` package with the real constructor signature and module names (``net.slice<k>.<i>``
holding torchvision's ``features.<i>``, ``lin<k>.model.1.weight``); it refuses to build a
pretrained backbone, as that is where the real one downloads."""
import json
import sys
import textwrap

import numpy as np
import pytest
import torch

import utils.metrics as metrics_module
from tests.conftest import run_script, tiny_args
from utils.metrics import LPIPS

FAKE_LPIPS = textwrap.dedent('''
    """Fake lpips: the real LPIPS(...) signature and parameter names, a 2-slice 1x1-conv backbone."""
    import torch
    import torch.nn as nn

    BUILT = []

    class NetLinLayer(nn.Module):
        def __init__(self, chn_in):
            super().__init__()
            self.model = nn.Sequential(nn.Dropout(), nn.Conv2d(chn_in, 1, 1, bias=False))

    class Backbone(nn.Module):
        def __init__(self):
            super().__init__()
            self.slice1, self.slice2 = nn.Sequential(), nn.Sequential()
            self.slice1.add_module("0", nn.Conv2d(3, 2, 1))
            self.slice1.add_module("1", nn.ReLU())
            self.slice2.add_module("2", nn.Conv2d(2, 2, 1))
            self.slice2.add_module("3", nn.ReLU())

    class LPIPS(nn.Module):
        def __init__(self, pretrained=True, net="alex", version="0.1", lpips=True, spatial=False, pnet_rand=False,
                     pnet_tune=False, use_dropout=True, model_path=None, eval_mode=True, verbose=True):
            super().__init__()
            if not pnet_rand:
                raise RuntimeError("torchvision would download the pretrained backbone here")
            if pretrained:
                raise RuntimeError("lpips would load its linear layers non-strictly here")
            BUILT.append(net)
            self.net = Backbone()
            self.lin0, self.lin1 = NetLinLayer(2), NetLinLayer(2)
            self.lins = nn.ModuleList([self.lin0, self.lin1])
            if eval_mode:
                self.eval()

        def forward(self, in0, in1):
            total, f0, f1 = 0.0, in0, in1
            for piece, lin in ((self.net.slice1, self.lin0), (self.net.slice2, self.lin1)):
                f0, f1 = piece(f0), piece(f1)
                total = total + lin.model((f0 - f1) ** 2).mean()
            return total
''')
BACKBONE = {"features.0.weight": torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])[:, :, None, None],
            "features.0.bias": torch.zeros(2),
            "features.2.weight": torch.eye(2)[:, :, None, None], "features.2.bias": torch.zeros(2),
            "classifier.0.weight": torch.zeros(3, 3)}  # torchvision's head: not used by LPIPS
LINEAR = {"lin0.model.1.weight": torch.tensor([0.5, 0.25])[None, :, None, None],
          "lin1.model.1.weight": torch.tensor([1.0, 1.0])[None, :, None, None]}


@pytest.fixture
def fake_lpips(tmp_path, monkeypatch):
    """The fake package on sys.path (with its linear weights) and an empty TORCH_HOME."""
    pkg = tmp_path / "site" / "lpips"
    (pkg / "weights" / "v0.1").mkdir(parents=True)
    (pkg / "__init__.py").write_text(FAKE_LPIPS)
    for net in ("vgg", "alex"):
        torch.save(LINEAR, pkg / "weights" / "v0.1" / f"{net}.pth")
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    original = sys.modules.pop("lpips", None)
    yield tmp_path
    sys.modules.pop("lpips", None)  # the fake must not outlive the test
    if original is not None:
        sys.modules["lpips"] = original


def hub_file(root, name="vgg16-397923af.pth"):
    path = root / "torch_home" / "hub" / "checkpoints" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def test_missing_backbone_is_detected_before_anything_is_built(fake_lpips):
    lp = LPIPS(torch.device("cpu"))
    expected = str(hub_file(fake_lpips))
    assert lp.model is None and lp.net == "vgg"
    assert expected in lp.reason and "vgg16-397923af.pth" in lp.reason
    assert "https://download.pytorch.org/models/vgg16-397923af.pth" in lp.reason
    assert "nothing is downloaded" in lp.reason and "--lpips_weights" in lp.reason
    import lpips
    assert lpips.BUILT == []  # never constructed: no chance to download
    alex = LPIPS(torch.device("cpu"), "alex")
    assert "alexnet-owt-7be5be79.pth" in alex.reason


def test_package_absent(monkeypatch):
    real = metrics_module.importlib.util.find_spec
    monkeypatch.setattr(metrics_module.importlib.util, "find_spec",
                        lambda name, *a: None if name == "lpips" else real(name, *a))
    lp = LPIPS(torch.device("cpu"), "vgg")
    assert lp.model is None and "'lpips' package is not installed" in lp.reason and "vgg16-397923af.pth" in lp.reason


def test_present_weights_are_loaded_strictly(fake_lpips):
    torch.save(BACKBONE, hub_file(fake_lpips))
    lp = LPIPS(torch.device("cpu"))
    assert lp.reason is None and lp.files["backbone"] == str(hub_file(fake_lpips))
    assert torch.equal(lp.model.net.slice1[0].weight, BACKBONE["features.0.weight"])
    assert torch.equal(lp.model.net.slice2[0].weight, BACKBONE["features.2.weight"])
    assert torch.equal(lp.model.lin0.model[1].weight, LINEAR["lin0.model.1.weight"])
    # by hand: a = 1 -> +1, b = 0.5 -> 0 after x*2-1; slice 1 keeps channels R, G: features (1, 1)
    # vs (0, 0), squared difference (1, 1), lin0 (0.5, 0.25) -> 0.75; slice 2 (identity) again
    # (1, 1), lin1 (1, 1) -> 2; LPIPS = 0.75 + 2 = 2.75
    a, b = np.ones((4, 5, 3)), np.full((4, 5, 3), 0.5)
    assert lp(a, b) == pytest.approx(2.75, abs=1e-6) and lp(a, a) == 0.0


def test_lpips_weights_file_and_wrong_files(fake_lpips):
    own = fake_lpips / "my_alexnet.pth"
    torch.save(BACKBONE, own)
    lp = LPIPS(torch.device("cpu"), "alex", str(own))
    assert lp.reason is None and lp.net == "alex" and lp.files["backbone"] == str(own)
    partial = {k: v for k, v in BACKBONE.items() if k != "features.2.weight"}
    torch.save(partial, own)
    lp = LPIPS(torch.device("cpu"), "alex", str(own))
    assert lp.model is None and "failed to load" in lp.reason and "slice2.2.weight" in lp.reason


@pytest.mark.slow
def test_eval_records_lpips_or_why_not(tmp_path, fake_lpips):
    run_script("train.py", "--basedir", tmp_path, "--expname", "l", "--N_iters", "5",
               *tiny_args(16, i_weights=0, N_rand=64, N_samples=8, N_importance=0))
    run = tmp_path / "l"
    empty_home = {"TORCH_HOME": str(tmp_path / "empty_home")}

    # absent (whether or not an lpips package is installed: no weights in this TORCH_HOME)
    run_script("eval.py", "--run", run, "--no_path", "--outdir", tmp_path / "absent", env=empty_home)
    m = json.loads((tmp_path / "absent" / "metrics.json").read_text())
    assert m["lpips"] is None and m["lpips_net"] == "vgg" and m["lpips_weights"] is None
    assert str(tmp_path / "empty_home" / "hub" / "checkpoints" / "vgg16-397923af.pth") in m["lpips_note"]

    # present: the fake package and its backbone file, through eval.py
    torch.save(BACKBONE, hub_file(fake_lpips))
    env = {"PYTHONPATH": str(fake_lpips / "site"), "TORCH_HOME": str(fake_lpips / "torch_home")}
    run_script("eval.py", "--run", run, "--no_path", "--outdir", tmp_path / "present", env=env)
    m = json.loads((tmp_path / "present" / "metrics.json").read_text())
    assert m["lpips_net"] == "vgg" and m["lpips_note"] is None and np.isfinite(m["lpips"])
    assert m["lpips_weights"] == str(hub_file(fake_lpips))
    assert m["lpips"] == pytest.approx(np.mean([e["lpips"] for e in m["per_image"]]), rel=1e-12)

    proc = run_script("eval.py", "--run", run, "--no_path", "--lpips_weights", tmp_path / "nope.pth", check=False)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and "nope.pth" in proc.stderr
