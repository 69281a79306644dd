"""gauss, wire and finer: init statistics, real NeRF outputs, FINER's detached factor,
NeRF forward/backward per branch, the recipe configs and fit_image.py (runs/image_fit.py)."""
import glob
import math
import os
import subprocess
import sys

import pytest
import torch

from models.activations import (ACTIVATIONS, ActivationConfig, ActLinear, finer, gauss, packed_complex_linear,
                                wire_packed)
from models.nerf import FieldOptions, NeRF, build_field
from runs import image_fit
from tests.conftest import run_script
from utils.config import build_parser, parse_args

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NEW = ["gauss", "wire", "finer"]


def stack(name, depth=8, width=256, in_dim=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    act = ActivationConfig(name)  # documented defaults: omega0 30, s 10, wire 20/10, k 1
    return [ActLinear(in_dim if k == 0 else width, width, act, is_first=(k == 0), generator=g) for k in range(depth)]


def layer_stats(name):
    """Per layer: rms of the nonlinearity's argument, rms |output|; the final output."""
    x = torch.rand(4096, 3, generator=torch.Generator().manual_seed(1)) * 2 - 1
    args, outs, h = [], [], x
    with torch.no_grad():
        for layer in stack(name):
            z = layer.linear(h.to(torch.cfloat) if layer.complex_weights else h)
            arg = {"gauss": 10 * z, "wire": 10 * z, "finer": layer.omega0 * (z.abs() + 1) * z}[name]
            h = layer(h)
            assert torch.isfinite(torch.view_as_real(h) if h.is_complex() else h).all()
            args.append(arg.abs().square().mean().sqrt().item())
            outs.append(h.abs().square().mean().sqrt().item())
    return args, outs, h


def test_registry_has_one_entry_per_new_activation():
    assert set(NEW) <= set(ACTIVATIONS)
    assert ACTIVATIONS["wire"].complex_valued and not ACTIVATIONS["gauss"].complex_valued
    assert ACTIVATIONS["finer"].periodic and not ACTIVATIONS["gauss"].periodic


def test_gauss_init_reaches_its_fixed_point():
    """Default init: z = W h + b with Var(W) = 1/(3n), so Var(s z) ~ s^2 E[h^2] / 3, and for
    s z ~ N(0, v), E[h^2] = E[exp(-2 (s z)^2)] = 1/sqrt(1 + 4 v). The fixed point is
    v ~ 6.5: rms(s z) ~ 2.55, rms(h) ~ 0.44. Layer 0 (raw xyz) is off it; from layer 3 on the
    statistics must sit within 15% of it (neither dying to 0 nor saturating at 1)."""
    args, outs, h = layer_stats("gauss")
    assert all(abs(a - 2.55) / 2.55 < 0.15 for a in args[3:]), args
    assert all(abs(o - 0.44) / 0.44 < 0.15 for o in outs[3:]), outs
    assert (h >= 0).all() and (h <= 1).all()
    assert 0.3 < (h > 0.1).float().mean().item() < 0.7  # a healthy share of active units


def test_wire_init_stays_bounded_and_alive():
    """The authors' (PyTorch default) init, complex weights after layer 0: the statistics
    approach a fixed point in a damped two-layer oscillation (a wide |z| layer makes most
    wavelets small, so the next layer is bias-dominated and narrow, and back). Band, all
    hidden layers: rms(s0 |z|) in [1.5, 8], rms|h| in [0.2, 0.9]; the swing shrinks with depth.
    |h| <= exp(w^2 / (4 s0^2)) = e at w = 20, s0 = 10."""
    args, outs, h = layer_stats("wire")
    assert h.is_complex()
    assert all(1.5 < a < 8 for a in args[1:]), args
    assert all(0.2 < o < 0.9 for o in outs[1:]), outs
    assert abs(outs[7] - outs[6]) < abs(outs[2] - outs[1]), outs
    assert h.abs().max().item() <= math.e


def test_finer_init_keeps_siren_statistics():
    """SIREN weights: omega0 z ~ N(0, 1 + omega0^2/(3n)) (the weight term plus PyTorch's bias),
    rms 1.47 for n = 256, and FINER multiplies by |z| + 1 ~ 1.05, so the argument's rms must
    stay in [1.3, 1.9] in every hidden layer with a max/min below 1.25; outputs are
    arcsine-distributed (E[h^2] = 1/2). The first layer's bias ~ U(-1, 1) spreads its phases
    over many periods, so its output is arcsine already."""
    args, outs, h = layer_stats("finer")
    hidden = args[1:]
    assert all(1.3 < a < 1.9 for a in hidden), args
    assert max(hidden) / min(hidden) < 1.25, args
    assert all(abs(o * o - 0.5) < 0.04 for o in outs), outs


def test_finer_first_bias_scale_and_default():
    g = torch.Generator().manual_seed(0)
    wide = ActLinear(3, 512, ActivationConfig("finer", first_bias_scale=5.0), is_first=True, generator=g)
    assert wide.linear.bias.abs().max() <= 5.0 and wide.linear.bias.abs().max() > 4.5
    assert wide.linear.weight.abs().max() <= 1 / 3
    torch_default = ActLinear(3, 512, ActivationConfig("finer", first_bias_scale=0.0), is_first=True, generator=g)
    assert torch_default.linear.bias.abs().max() <= 1 / math.sqrt(3)
    hidden = ActLinear(64, 64, ActivationConfig("finer", first_bias_scale=5.0), is_first=False, generator=g)
    assert hidden.linear.bias.abs().max() <= 1 / 8  # the bias scale is for the first layer only


def test_finer_scale_factor_carries_no_gradient():
    z = torch.linspace(-2, 2, 101, dtype=torch.float64, requires_grad=True)
    w0 = 3.0
    (dz,) = torch.autograd.grad(finer(z, w0).sum(), z)
    zd = z.detach()
    expected = w0 * (zd.abs() + 1) * torch.cos(w0 * (zd.abs() + 1) * zd)
    assert torch.equal(dz, expected)
    # while the exact variant differentiates the factor too: w0 (2|z| + 1) cos(...)
    layer = ActLinear(1, 1, ActivationConfig("finer", first_omega0=w0), is_first=True)
    with torch.no_grad():
        layer.linear.weight.fill_(1.0)
        layer.linear.bias.zero_()
    x = torch.tensor([[0.7]], dtype=torch.float32, requires_grad=True)
    (g_exact,) = torch.autograd.grad(layer(x, exact=True).sum(), x)
    assert torch.allclose(layer(x, exact=True), layer(x))
    assert abs(g_exact.item() - w0 * 2.4 * math.cos(w0 * 1.7 * 0.7)) < 1e-4


def test_gauss_and_wire_values():
    z = torch.tensor([0.0, 0.05, -0.1])
    assert torch.allclose(ActLinear(1, 1, ActivationConfig("gauss", gauss_scale=10.0), True).nonlinearity(z, 30.0),
                          torch.exp(-(10 * z) ** 2))
    layer = ActLinear(1, 1, ActivationConfig("wire", wire_omega0=20.0, wire_s0=10.0), False)
    zc = torch.tensor([0.03 + 0.02j, -0.05 - 0.01j], dtype=torch.cfloat)
    expected = torch.exp(1j * 20 * zc - (10 * zc.abs()) ** 2)
    assert torch.allclose(layer.nonlinearity(zc, 30.0), expected, atol=1e-6)


def small_nerf(act, dir_act, use_viewdirs=True, skips=(1,)):
    return NeRF(D=3, W=32, input_ch=63, input_ch_views=27, skips=list(skips), use_viewdirs=use_viewdirs,
                act=ActivationConfig(act), dir_act=ActivationConfig(dir_act),
                generator=torch.Generator().manual_seed(0))


@pytest.mark.parametrize("act,dir_act,viewdirs", [("wire", "wire", True), ("wire", "relu", True),
                                                  ("relu", "wire", True), ("wire", "wire", False)])
def test_wire_nerf_outputs_are_real_and_all_parameters_learn(act, dir_act, viewdirs):
    net = small_nerf(act, dir_act, viewdirs)
    x, d = torch.randn(16, 63), torch.randn(16, 27)
    rgb, sigma = net(x, d)
    assert rgb.dtype == torch.float32 and sigma.dtype == torch.float32
    assert rgb.shape == (16, 3) and sigma.shape == (16,)
    (rgb.square().sum() + sigma.square().sum()).backward()
    for name, p in net.named_parameters():
        assert p.grad is not None and torch.isfinite(torch.view_as_real(p.grad) if p.grad.is_complex()
                                                     else p.grad).all(), name
        assert p.grad.abs().sum() > 0, name
    assert any(p.is_complex() for p in net.parameters())
    torch.optim.Adam(net.parameters(), lr=1e-3).step()  # Adam takes complex parameters


def test_wire_gradient_matches_finite_differences():
    """wire's hand-written gradient (models/activations.py, _WirePacked) and its second
    derivatives against central differences, float64, for complex and real arguments; the exponent sits both above and
    below EXP_FLOOR (s0 |z| = 20 gives -400: the modulus is floored, its gradient ~0)."""
    g = torch.Generator().manual_seed(0)
    re = (torch.randn(6, 5, generator=g, dtype=torch.float64) * 0.1).requires_grad_()
    im = (torch.randn(6, 5, generator=g, dtype=torch.float64) * 0.1).requires_grad_()
    with torch.no_grad():
        re[0, 0], im[0, 0] = 2.0, 0.0
    fn = lambda a, b: wire_packed(a, b, 1.0, 20.0, 10.0)
    assert torch.autograd.gradcheck(fn, (re, im))
    assert torch.autograd.gradcheck(lambda a: wire_packed(a, None, 1.0, 20.0, 10.0), (re,))
    # second derivatives too (fit_image.py's gradient and Laplacian maps differentiate twice)
    assert torch.autograd.gradgradcheck(fn, (re[1:3, :3].detach().requires_grad_(), im[1:3, :3].detach().requires_grad_()))
    z = torch.complex(re.detach(), im.detach())
    expected = torch.exp(1j * 20 * z - 100 * z.abs() ** 2)  # torch's complex exp, independently
    packed = fn(re, im).detach()
    assert torch.allclose(torch.complex(packed[:, :5], packed[:, 5:]), expected, atol=1e-12)


def test_wire_under_torch_compile_uses_the_same_values(monkeypatch):
    """Under torch.compile wire_packed runs plain ops (TorchDynamo cannot trace its
    autograd.Function): values and gradients equal to float32 rounding (the eager path
    writes in place, in another op order)."""
    g = torch.Generator().manual_seed(3)
    a, b = (torch.randn(64, 8, generator=g) * 0.2).requires_grad_(), (torch.randn(64, 8, generator=g) * 0.2).requires_grad_()
    weights = torch.randn(64, 16, generator=g)
    results = []
    for compiling in (False, True):
        monkeypatch.setattr(torch.compiler, "is_compiling", lambda: compiling)
        out = wire_packed(a, b, 1.0, 20.0, 10.0)
        results.append((out.detach(), *torch.autograd.grad((out * weights).sum(), [a, b])))
    assert torch.allclose(results[0][0], results[1][0], rtol=1e-6, atol=1e-7)
    for fused, plain in zip(results[0][1:], results[1][1:]):
        assert torch.allclose(fused, plain, rtol=1e-5, atol=1e-5 * plain.abs().max().item())


def test_gauss_gradient_by_hand_and_by_finite_differences():
    """gauss's hand-written gradient (models/activations.py, _Gauss): y = exp(-(s z)^2),
    dy/dz = -2 s^2 z y. At s = 10: z = 0.05 gives y = e^-0.25 = 0.778801, dy/dz = -7.78801;
    z = -0.1 gives e^-1 = 0.367879 and +7.35759. z = 2 is below the exponent's floor
    (-400 < -87.33): y = exp(-87.33) = 1.1832e-38, the gradient ~0. Then float64 central
    differences, first and second derivatives (fit_image.py differentiates twice)."""
    z = torch.tensor([0.0, 0.05, -0.1, 2.0], dtype=torch.float64, requires_grad=True)
    y = gauss(z, 1.0, gauss_scale=10.0)
    (dz,) = torch.autograd.grad(y.sum(), z)
    assert torch.allclose(y.detach(), torch.tensor([1.0, 0.778801, 0.367879, math.exp(-87.33)], dtype=torch.float64),
                          rtol=1e-5, atol=0)
    assert torch.allclose(dz, torch.tensor([0.0, -7.78801, 7.35759, 0.0], dtype=torch.float64), rtol=1e-5, atol=1e-30)
    g = torch.Generator().manual_seed(0)
    z = (torch.randn(12, 5, generator=g, dtype=torch.float64) * 0.15).requires_grad_()
    assert torch.autograd.gradcheck(lambda t: gauss(t, 1.0, 10.0), (z,))
    assert torch.autograd.gradgradcheck(lambda t: gauss(t, 1.0, 10.0), (z,))


def test_gauss_under_torch_compile_uses_the_same_values(monkeypatch):
    """Under torch.compile gauss runs plain ops (as wire_packed): bit-identical values and
    gradients equal to rounding, in float32 and bfloat16 (autocast's dtype)."""
    g = torch.Generator().manual_seed(4)
    for dtype in (torch.float32, torch.bfloat16):
        z = (torch.randn(64, 8, generator=g) * 0.3).to(dtype).requires_grad_()
        weights = torch.randn(64, 8, generator=g).to(dtype)
        results = []
        for compiling in (False, True):
            monkeypatch.setattr(torch.compiler, "is_compiling", lambda: compiling)
            out = gauss(z, 1.0, 10.0)
            results.append((out.detach(), *torch.autograd.grad((out * weights).sum(), [z])))
        assert results[0][0].dtype == dtype and torch.equal(results[0][0], results[1][0])
        tol = 1e-5 if dtype == torch.float32 else 2e-2
        assert torch.allclose(results[0][1].float(), results[1][1].float(), rtol=tol,
                              atol=tol * results[1][1].float().abs().max().item())


def complex_reference(net, x, d):
    """NeRF.forward written with complex tensors and PyTorch's complex matmuls (the
    implementation before the packed one): the independent value to test against."""
    h = x
    for i, layer in enumerate(net.pts_linears):
        h = layer.nonlinearity(layer.linear(h.to(layer.linear.weight.dtype) if layer.complex_weights else h),
                               layer.omega0)
        if i in net.skips:
            h = torch.cat([x.to(h.dtype) if h.is_complex() else x, h], dim=-1)
    real = lambda layer, t: layer(t.to(layer.weight.dtype) if layer.weight.is_complex() else t).real \
        if layer.weight.is_complex() else layer(t)
    if not net.use_viewdirs:
        out = real(net.output_linear, h)
        return out[..., :3], out[..., 3]
    sigma = real(net.alpha_linear, h)[..., 0]
    feature = net.feature_linear(h.to(net.feature_linear.weight.dtype) if h.is_complex() else h)
    if feature.is_complex() and not net.dir_complex:
        feature = feature.real
    v_in = torch.cat([feature, d.to(feature.dtype)], dim=-1)
    views = net.views_linear.linear(v_in.to(net.views_linear.linear.weight.dtype))
    h = net.views_linear.nonlinearity(views, net.views_linear.omega0)
    return real(net.rgb_linear, h), sigma


@pytest.mark.parametrize("act,dir_act,viewdirs", [("wire", "wire", True), ("wire", "relu", True),
                                                  ("relu", "wire", True), ("wire", "wire", False)])
def test_packed_wire_nerf_equals_complex_arithmetic(act, dir_act, viewdirs):
    """The packed forward (real [Re | Im] blocks) computes the complex network: outputs and
    every parameter's gradient equal the complex reference in float64 (to 1e-10 relative)."""
    net = small_nerf(act, dir_act, viewdirs)
    for p in net.parameters():
        p.data = p.data.to(torch.complex128 if p.is_complex() else torch.float64)
    g = torch.Generator().manual_seed(2)
    x, d = torch.randn(40, 63, generator=g, dtype=torch.float64) * 0.3, torch.randn(40, 27, generator=g,
                                                                                    dtype=torch.float64)
    outs = []
    for forward in (net, lambda a, b: complex_reference(net, a, b)):
        rgb, sigma = forward(x, d)
        grads = torch.autograd.grad(rgb.square().sum() + sigma.square().sum(), list(net.parameters()))
        outs.append((rgb, sigma, grads))
    (rgb, sigma, grads), (rgb_ref, sigma_ref, grads_ref) = outs
    assert rgb.dtype == torch.float64 and not rgb.is_complex()
    assert torch.allclose(rgb, rgb_ref, rtol=0, atol=1e-10) and torch.allclose(sigma, sigma_ref, rtol=0, atol=1e-10)
    for (name, _), a, b in zip(net.named_parameters(), grads, grads_ref):
        assert a.dtype == b.dtype and (a - b).abs().max() <= 1e-10 * b.abs().max(), name


def test_packed_complex_linear_follows_autocast():
    """A complex layer on packed [Re u | Im u] input: complex64 arithmetic's values in fp32;
    under autocast (``--amp``) the one real matmul runs in bf16, as a real layer's would."""
    g = torch.Generator().manual_seed(4)
    layer = torch.nn.Linear(6, 5, dtype=torch.cfloat)
    with torch.no_grad():  # the weights from the test's generator, not the global one
        layer.weight.copy_(torch.complex(torch.randn(5, 6, generator=g), torch.randn(5, 6, generator=g)) / 3)
        layer.bias.copy_(torch.complex(torch.randn(5, generator=g), torch.randn(5, generator=g)) / 3)
    u = torch.complex(torch.randn(8, 6, generator=g), torch.randn(8, 6, generator=g))
    x = torch.cat([u.real, u.imag], dim=-1)
    with torch.no_grad():
        z = layer(u)  # PyTorch's complex matmul, independently
        expected = torch.cat([z.real, z.imag], dim=-1)
        out = packed_complex_linear(x, layer, slice(0, 6))
        with torch.autocast("cpu", dtype=torch.bfloat16):
            out_bf16 = packed_complex_linear(x, layer, slice(0, 6))
            real_only = packed_complex_linear(x, layer, slice(0, 6), real_part_only=True)
    assert out.dtype == torch.float32 and torch.allclose(out, expected, atol=1e-5)
    assert out_bf16.dtype == torch.bfloat16 and real_only.shape == (8, 5)
    scale = expected.abs().max()
    assert (out_bf16.float() - expected).abs().max() <= 2e-2 * scale  # bf16: 8-bit mantissa
    assert (real_only.float() - z.real).abs().max() <= 2e-2 * scale


@pytest.mark.parametrize("flag", ["--activation", "--dir_activation"])
@pytest.mark.parametrize("name", NEW)
def test_nerf_forward_backward_with_each_new_activation(flag, name):
    args = parse_args(build_parser(), [flag, name, "--use_viewdirs", "--netdepth", "3", "--netwidth", "32",
                                       "--skips", "1", "--gauss_scale", "5", "--wire_s0", "4"])
    opts = FieldOptions.from_args(args)
    act, dir_act = opts.act, opts.dir_act
    assert (act if flag == "--activation" else dir_act).name == name
    assert act.gauss_scale == 5 and act.wire_s0 == 4 and dir_act.wire_s0 == 4
    field = build_field(opts, 3, 32, torch.Generator().manual_seed(0))
    pts, dirs = torch.rand(4, 5, 3) * 2 - 1, torch.nn.functional.normalize(torch.randn(4, 1, 3), dim=-1)
    rgb, sigma = field(pts, dirs)
    assert rgb.shape == (4, 5, 3) and sigma.shape == (4, 5)
    assert not rgb.is_complex() and torch.isfinite(rgb).all() and torch.isfinite(sigma).all()
    (rgb.sum() + sigma.sum()).backward()
    first = field.mlp.pts_linears[0].linear.weight
    assert first.grad is not None and first.grad.abs().sum() > 0


def test_old_configs_without_the_new_options_still_build(tmp_path):
    """A run's config.txt written before the activation parameters existed parses with their
    defaults (FieldOptions.from_args itself needs every option on the namespace)."""
    old = tmp_path / "config.txt"
    old.write_text("activation = finer\nfirst_omega0 = 30.0\nomega0 = 30.0\nsiren_init = True\n")
    opts = FieldOptions.from_args(parse_args(build_parser(), ["--config", str(old)]))
    assert opts.act == ActivationConfig("finer") and opts.dir_act == opts.act


@pytest.mark.parametrize("path", sorted(glob.glob(os.path.join(ROOT, "configs", "blender", "lego_*.txt"))))
def test_recipe_configs_parse(path):
    args = parse_args(build_parser(), ["--config", path])
    FieldOptions.from_args(args)


def test_recipe_settings():
    cfg = lambda n: parse_args(build_parser(), ["--config", os.path.join(ROOT, "configs", "blender", n)])
    siren, report = cfg("lego_siren.txt"), cfg("lego_report.txt")
    assert (siren.activation, siren.i_embed, siren.first_omega0, siren.siren_init) == ("sin", -1, 30.0, True)
    assert 1e-4 <= siren.lrate <= 2e-4 and 1 <= siren.omega0 <= 5
    assert (report.activation, report.first_omega0, report.omega0, report.siren_init, report.i_embed) == \
        ("sin", 1.0, 1.0, False, 0)
    assert [cfg(f"lego_{n}.txt").activation for n in NEW] == NEW


# ------------------------------------------------------------------ fit_image.py, runs/image_fit.py
def small_image(n=32):
    t = torch.linspace(-1, 1, n)
    yy, xx = torch.meshgrid(t, t, indexing="ij")
    img = 0.5 + 0.4 * torch.sin(6 * xx) * torch.cos(4 * yy) + 0.1 * (xx > 0.2).float() * (yy < 0)
    return img.clamp(0, 1)[..., None].numpy()


@pytest.mark.parametrize("name", list(image_fit.SETTINGS))
def test_fit_image_psnr_rises_with_steps(name):
    image = small_image()
    model = image_fit.build_model(name, 1, width=32, depth=2, seed=0)
    r = image_fit.fit(model, image, steps=40, lr=image_fit.SETTINGS[name].lr, log_steps=[0, 20, 40])
    p = r["psnr"]
    assert p[40] > p[20] > p[0], p
    assert p[40] > p[0] + 0.5, p
    grad, lap = image_fit.derivatives(model, image.shape[0])
    assert grad.shape == lap.shape == image.shape[:2]
    assert torch.isfinite(torch.from_numpy(grad)).all() and torch.isfinite(torch.from_numpy(lap)).all()


def test_relu_without_encoding_stays_below_siren_on_cameraman():
    """SIREN's qualitative claim (its Fig. 1): at equal steps a ReLU MLP on raw coordinates
    fits the cameraman far worse than a SIREN."""
    image = image_fit.load_image(None, 64)
    result = {}
    for name in ("relu", "sin"):
        model = image_fit.build_model(name, 1, width=64, depth=3, seed=0)
        result[name] = image_fit.fit(model, image, 100, image_fit.SETTINGS[name].lr, [100])["psnr"][100]
    assert result["relu"] + 3 < result["sin"], result


def test_fit_image_cli_writes_outputs_and_rejects_bad_input(tmp_path):
    import cv2
    import numpy as np
    out = tmp_path / "out"
    rgb = (np.random.default_rng(0).random((20, 24, 3)) * 255).astype(np.uint8)
    cv2.imwrite(str(tmp_path / "rgb.png"), rgb)
    rc = run_script("fit_image.py", "--image", tmp_path / "rgb.png", "--size", "16", "--steps", "4", "--log_every", "2",
                    "--width", "16", "--depth", "2", "--settings", "sin", "wire", "--out", out, check=False,
                    env={"OMP_NUM_THREADS": "1"}).returncode
    assert rc == 0
    figure = cv2.imread(str(out / "figure.png"))
    assert figure is not None and figure.shape[1] > 3 * 256  # ground truth + 2 settings
    for f in ("psnr.csv", "psnr.md", "figure.png"):
        assert (out / f).is_file() and (out / f).stat().st_size > 0
    header = (out / "psnr.csv").read_text().splitlines()[0]
    assert header == "setting,lr,step 0,step 2,step 4,seconds"
    env = dict(os.environ, OMP_NUM_THREADS="1")
    for bad, needle in ((["--image", str(tmp_path / "missing.png")], "not found"),
                        (["--settings", "tanh"], "unknown setting")):
        proc = subprocess.run([sys.executable, os.path.join(ROOT, "fit_image.py"), *bad, "--out", str(out)],
                              capture_output=True, text=True, cwd=ROOT, env=env)
        assert proc.returncode == 2
        assert proc.stderr.strip().count("\n") == 0 and needle in proc.stderr, proc.stderr


def test_fit_image_loads_rgb_and_gray_files(tmp_path):
    import cv2
    import numpy as np
    rgb = np.zeros((30, 40, 3), np.uint8)
    rgb[..., 2] = 255  # red in BGR
    cv2.imwrite(str(tmp_path / "rgb.png"), rgb)
    cv2.imwrite(str(tmp_path / "gray.png"), rgb[..., 0] + 128)
    img = image_fit.load_image(str(tmp_path / "rgb.png"), 8)
    assert img.shape == (8, 8, 3) and np.allclose(img[..., 0], 1) and np.allclose(img[..., 1:], 0)
    gray = image_fit.load_image(str(tmp_path / "gray.png"), 0)
    assert gray.shape == (30, 30, 1) and np.allclose(gray, 128 / 255)
