"""Activation registry: each hidden nonlinearity brings its own initialisation.

An entry maps a name to ``(nonlinearity, first-layer init, hidden init)``. Layers
compute ``nonlinearity(W x + b, omega0)``; omega0 is per layer (``first_omega0`` for
the first layer of a branch, ``omega0`` for the others) and ignored by non-periodic
activations. Adding an activation is one ``register(...)`` call; an activation with
parameters of its own names the ``ActivationConfig`` fields it reads in ``params``
(passed by keyword to the nonlinearity) and ``init_params`` (passed to its inits).

SIREN (Sitzmann et al. 2020), with n the fan-in:
  first layer  W ~ U(-1/n, 1/n)
  hidden       W ~ U(-sqrt(6/n)/omega0, +sqrt(6/n)/omega0)
  biases keep PyTorch's default init U(-1/sqrt(n), 1/sqrt(n)).
A layer computes sin(omega0 (W h + b)). The weight term omega0 W h has variance 2 E[h^2]
(~1) for any omega0, but the bias term omega0 b does not cancel: the hidden
pre-activation std is sqrt(2 E[h^2] + omega0^2 / (3 n)), ~1.5 rad for 256-wide layers
and ~1.8 for 128-wide ones at omega0 30, ~0.9 at omega0 1. So phases cover about one
period (not many), the initial function depends on the hidden omega0, and cos units
start with a mean offset E[cos z] ~ 0.2-0.35 that sin units lack
(tests/test_siren_claims.py checks each against hand-written matrix code). Under Adam a
weight moves ~lr per step whatever its gradient's scale, so the effective weight
omega0 W moves ~omega0 lr: a small hidden omega0 means small hidden-layer steps.
With ``siren_init=False`` every layer keeps PyTorch's default ``nn.Linear`` init, so
``first_omega0=1, omega0=1, siren_init=False`` is exactly ``torch.sin(linear(x))``:
the setting of the course report that swapped ReLU for sin/cos in nerf_pl (the presets
``report-sin`` / ``report-cos`` below, which also keep PyTorch's density-head bias and
run without the occupancy grid, as nerf_pl did).

Recipes: every activation carries ``recipe``, the train.py options it trains with
(lrate, omega0s, init, encoding, its own parameters), and ``recipe_source``, where the
values come from; ``PRESETS`` are named (activation, recipe) pairs. ``--activation X``
applies X's recipe to every option not set explicitly (utils/config.py,
``apply_recipe``). Adding an activation is still one ``register(...)`` call, its recipe
included.

Beyond SIREN (defaults are ``ActivationConfig``'s):
  gauss  exp(-(s z)^2), s = ``gauss_scale`` = 10 (Ramasinghe & Lucey 2022). PyTorch's
         default Linear init everywhere: the paper's point is that the Gaussian, unlike
         sin, needs no special init, and the reference code (theirs, and the WIRE and
         FINER baselines, which also use s = 10 or 30) keeps ``nn.Linear``'s default.
         Evaluated with a hand-written gradient and its exponent floored at EXP_FLOOR
         (``_Gauss``; README, "Speed notes": exp's slow path and autograd's separate ops).
  wire   complex Gabor wavelet exp(j w z - |s0 z|^2), w = ``wire_omega0`` = 20 and
         s0 = ``wire_s0`` = 10 for every layer (Saragadam et al. 2023; the values of the
         authors' image-fitting scripts, 2-3 layers; the recipe uses 5 and 5: the
         frequency compounds over layers, and at 20 and 10 a 4-layer trunk starts as white
         noise); ``first_omega0``/``omega0`` are not used. The
         first layer has real weights (real input, complex output); later layers have
         complex weights (``nn.Linear(dtype=torch.cfloat)``, which autograd and Adam
         handle on CPU and CUDA). Init: PyTorch's default for every layer, as the
         authors' code does (for a complex Linear, real and imaginary parts are each
         drawn from the default real range). Under autocast the nonlinearity computes
         in float32/complex64. The model turns complex features real at its heads.
         ``NeRF`` evaluates it without complex tensors: features as real [Re | Im]
         blocks, weights as real block matrices of their parts
         (``packed_complex_linear``), the nonlinearity with a hand-written gradient
         (``wire_packed``); the same function, 1.5x the training rays/s on CPU.
  finer  sin(omega0 (|z| + 1) z) with the (|z| + 1) factor detached, as in the
         authors' code (Liu et al. 2024). SIREN init for the weights, and the first
         layer's bias ~ U(-k, k) with k = ``first_bias_scale`` = 1: FINER widens the
         first bias range to select higher-frequency parts of the variable-period
         sine; k = 1 is our default, within the range the paper explores, not a
         tuned value. ``first_bias_scale = 0`` keeps PyTorch's default bias, which is
         what the authors' image-fitting script does when the option is unset.
         ``siren_init=False`` gives PyTorch's default init everywhere, bias included.
         Because of the detached factor, autograd derivatives of a FINER network are
         not the derivatives of the function it computes; ``ActLinear(x, exact=True)``
         evaluates the same values with every factor differentiable.
"""
import functools
import math
from dataclasses import dataclass, field
from typing import Callable, Dict, Optional, Tuple, Union

import torch
import torch.nn.functional as F
from torch import nn

Init = Callable[[nn.Linear, float, Optional[torch.Generator]], None]
# A recipe: train.py option -> value (lrate, omega0s, siren_init, encoding, ...), applied by
# utils/config.py for every option the user did not set explicitly.
Recipe = Dict[str, Union[float, int, bool, str]]


def default_linear_init(layer: nn.Linear, omega0: float, generator=None) -> None:
    """PyTorch's own ``nn.Linear.reset_parameters`` (kaiming_uniform a=sqrt(5)), drawn
    from ``generator`` in the same order, so a generator seeded like the global RNG
    gives bit-identical weights."""
    nn.init.kaiming_uniform_(layer.weight, a=math.sqrt(5), generator=generator)
    if layer.bias is not None:
        bound = 1.0 / math.sqrt(layer.in_features) if layer.in_features > 0 else 0.0
        nn.init.uniform_(layer.bias, -bound, bound, generator=generator)


def siren_first_init(layer: nn.Linear, omega0: float, generator=None) -> None:
    default_linear_init(layer, omega0, generator)  # bias: PyTorch default
    n = layer.in_features
    with torch.no_grad():
        layer.weight.uniform_(-1.0 / n, 1.0 / n, generator=generator)


def siren_hidden_init(layer: nn.Linear, omega0: float, generator=None) -> None:
    default_linear_init(layer, omega0, generator)
    bound = math.sqrt(6.0 / layer.in_features) / omega0
    with torch.no_grad():
        layer.weight.uniform_(-bound, bound, generator=generator)


def finer_first_init(layer: nn.Linear, omega0: float, generator=None, first_bias_scale: float = 1.0) -> None:
    """SIREN first-layer weights; bias ~ U(-k, k) (k <= 0: PyTorch's default bias)."""
    siren_first_init(layer, omega0, generator)
    if first_bias_scale > 0 and layer.bias is not None:
        with torch.no_grad():
            layer.bias.uniform_(-first_bias_scale, first_bias_scale, generator=generator)


def finer_hidden_init(layer: nn.Linear, omega0: float, generator=None, first_bias_scale: float = 1.0) -> None:
    """SIREN hidden init; ``first_bias_scale`` concerns the first layer only."""
    siren_hidden_init(layer, omega0, generator)


# On CPU, exp of an argument whose result underflows float32's smallest normal number
# (1.18e-38, below -87.34) takes MKL's slow path: 50-60x the time of other arguments
# (16384x128: 19 ms against 0.35 on this project's 2-core CPU). wire's and gauss's
# exponents, -s0^2 |z|^2 and -(s z)^2, often go that low, so they are clamped at
# EXP_FLOOR: such a value becomes 1.18e-38 instead of 0 (or a subnormal, which the CPU
# runtime flushes to 0 anyway).
EXP_FLOOR = -87.33


def _gauss_values(z: torch.Tensor, s: float) -> torch.Tensor:
    """exp(max(-s^2 z^2, EXP_FLOOR)), in z's dtype (in place after the first op)."""
    return z.square().mul_(-s * s).clamp_min_(EXP_FLOOR).exp_()


class _Gauss(torch.autograd.Function):
    """``gauss``'s values with a hand-written gradient: y = exp(-(s z)^2),
    dl/dz = -2 s^2 z y dl/dy (where the exponent is floored, y = 1.18e-38 and the true
    derivative is below 1e-35 either way). Autograd through the separate ops (scale,
    square, negate, exp) took 3.0-9.9 ms against 1.2-1.5 for fwd+bwd of a 6144x128
    float32 tensor (2 threads, subnormals flushed; the larger |z|, the more of exp's slow
    path), 1.5-2.0 against 1.2 in bf16: gauss ran at ~65% of relu's rays/s on lego100."""

    @staticmethod
    def forward(ctx, z, s: float):
        y = _gauss_values(z, s)
        ctx.save_for_backward(z, y)
        ctx.s = s
        return y

    @staticmethod
    def backward(ctx, grad):
        z, y = ctx.saved_tensors
        return (z * y).mul_(grad).mul_(-2.0 * ctx.s * ctx.s), None


def gauss(z: torch.Tensor, omega0: float, gauss_scale: float = 10.0) -> torch.Tensor:
    """exp(-(s z)^2) with s = ``gauss_scale``; the exponent floored at EXP_FLOOR (above)."""
    if torch.compiler.is_compiling():  # as wire_packed: inductor fuses the plain ops
        return _gauss_values(z, float(gauss_scale))
    return _Gauss.apply(z, float(gauss_scale))


def _wire_values(a: torch.Tensor, b: Optional[torch.Tensor], w: float, s0: float) -> torch.Tensor:
    """[m cos wa | m sin wa] with m = exp(max(-s0^2 (a^2 + b^2) - w b, EXP_FLOOR)), in plain
    differentiable ops (the torch.compile path; ``_wire_values_inplace`` in eager mode)."""
    sq = a.square() if b is None else a.square() + b.square()
    log_mod = sq.mul(-s0 * s0) if b is None else sq.mul(-s0 * s0).sub(b, alpha=w)
    modulus, phase = log_mod.clamp_min(EXP_FLOOR).exp(), a * w
    return torch.cat([modulus * torch.cos(phase), modulus * torch.sin(phase)], dim=-1)


def _wire_values_inplace(a: torch.Tensor, b: Optional[torch.Tensor], w: float, s0: float) -> torch.Tensor:
    """``_wire_values`` with two new tensors (the modulus, and the output, whose real half
    holds the phase first); not differentiable. Separate ops allocate six, and each fresh
    multi-MB tensor faults its pages in: forward + backward (``_WirePacked``) of a 7680x90
    complex input took 5.5-6.3 ms against 3.5-3.6, 2 threads (README, "Speed notes")."""
    log_mod = a.square() if b is None else torch.addcmul(a.square(), b, b)
    log_mod.mul_(-s0 * s0)
    if b is not None:
        log_mod.sub_(b, alpha=w)
    modulus = log_mod.clamp_min_(EXP_FLOOR).exp_()
    lead, width = a.shape[:-1], a.shape[-1]
    out = torch.empty(*lead, 2 * width, dtype=a.dtype, device=a.device)
    re, im = out[..., :width], out[..., width:]
    torch.mul(a, w, out=re)
    torch.sin(re, out=im)
    re.cos_()
    out.view(*lead, 2, width).mul_(modulus.unsqueeze(-2))
    return out


class _WirePacked(torch.autograd.Function):
    """``wire_packed``'s values with a hand-written gradient (autograd through the separate
    elementwise ops: 300 against 256 ms for a 4x128 MLP's step on 16384 points, 2 threads).

    out = m (cos wa, sin wa), m = exp(L), L = -w b - s0^2 (a^2 + b^2) (b = 0 for a real
    input). For incoming gradients (gr, gi) on (Re out, Im out), with
    P = gr Re out + gi Im out and Q = gi Re out - gr Im out:
        dl/da = -2 s0^2 a P + w Q,   dl/db = -(w + 2 s0^2 b) P."""

    @staticmethod
    def forward(ctx, a, b, w: float, s0: float):
        out = _wire_values_inplace(a, b, w, s0)
        ctx.save_for_backward(a, b, out)
        ctx.w, ctx.s0 = w, s0
        return out

    @staticmethod
    def backward(ctx, grad):
        a, b, out = ctx.saved_tensors
        w, k = ctx.w, -2.0 * ctx.s0 * ctx.s0
        out_re, out_im = out.chunk(2, dim=-1)
        g_re, g_im = grad.chunk(2, dim=-1)
        p = (g_re * out_re).addcmul_(g_im, out_im)  # in place: fresh tensors fault pages in
        q = (g_im * out_re).addcmul_(g_re, out_im, value=-1.0)
        grad_b = None if b is None else b.mul(k).sub_(w).mul_(p)
        grad_a = q.mul_(w).addcmul_(a, p, value=k)
        return grad_a, grad_b, None, None


def wire_packed(re: torch.Tensor, im: Optional[torch.Tensor], omega0: float = 1.0,
                wire_omega0: float = 20.0, wire_s0: float = 10.0) -> torch.Tensor:
    """wire of z = re + j im (``im`` None: real z) in real arithmetic: (..., W) parts ->
    (..., 2W) = [Re out | Im out], float32 (or float64) whatever the input precision.

    With z = a + jb, exp(j w z - s0^2 |z|^2) = exp(-w b - s0^2 (a^2 + b^2)) exp(j w a). The
    modulus is at most exp(w^2 / (4 s0^2)) (e^1 at the defaults), so the output stays bounded."""
    a = re.float() if re.dtype in (torch.float16, torch.bfloat16) else re
    b = None if im is None else im.to(a.dtype)
    if torch.compiler.is_compiling():  # TorchDynamo cannot trace the Function (torch 2.13); inductor fuses these
        return _wire_values(a, b, float(wire_omega0), float(wire_s0))
    return _WirePacked.apply(a, b, float(wire_omega0), float(wire_s0))


def wire(z: torch.Tensor, omega0: float, wire_omega0: float = 20.0, wire_s0: float = 10.0) -> torch.Tensor:
    """exp(j w z - s0^2 |z|^2) for real or complex z; always complex64/128 (``wire_packed``)."""
    re, im = (z.real, z.imag) if z.is_complex() else (z, None)
    out_re, out_im = wire_packed(re, im, omega0, wire_omega0, wire_s0).chunk(2, dim=-1)
    return torch.complex(out_re, out_im)


def packed_complex_linear(x: torch.Tensor, layer: nn.Linear, imag_cols: slice,
                          real_part_only: bool = False) -> torch.Tensor:
    """A complex ``layer`` (W = A + jB, bias c) on a packed input, as one real matmul.

    x: (..., in + k) = [Re u | Im u[imag_cols]], the imaginary parts of the k inputs in
    ``imag_cols`` (the others are real). With B' = B[:, imag_cols], A' = A[:, imag_cols]:
        Re(W u + c) = A Re u - B' Im u' + Re c,   Im(W u + c) = B Re u + A' Im u' + Im c.
    -> (..., 2 out) = [Re | Im], or (..., out) = Re with ``real_part_only``. In the weights'
    precision; under autocast (``--amp``) in its dtype, as a real layer (PyTorch's complex
    matmuls ignore autocast; this real one need not: with bf16 on this CPU it took wire's
    lego100 training from 1.30e4 to 1.67e4 rays/s, README "Speed notes")."""
    A, B = layer.weight.real, layer.weight.imag
    rows, bias = [torch.cat([A, -B[:, imag_cols]], dim=1)], [layer.bias.real]
    if not real_part_only:
        rows.append(torch.cat([B, A[:, imag_cols]], dim=1))
        bias.append(layer.bias.imag)
    weight, bias = torch.cat(rows), torch.cat(bias)
    if torch.is_autocast_enabled(x.device.type):
        return F.linear(x, weight, bias)
    return F.linear(x.to(A.dtype), weight, bias)


def finer(z: torch.Tensor, omega0: float) -> torch.Tensor:
    """sin(omega0 (|z| + 1) z); the (|z| + 1) factor carries no gradient."""
    return torch.sin(omega0 * (z.detach().abs() + 1) * z)


def finer_exact(z: torch.Tensor, omega0: float) -> torch.Tensor:
    """The same values as ``finer`` with the factor differentiable (true derivatives)."""
    return torch.sin(omega0 * (z.abs() + 1) * z)


@dataclass(frozen=True)
class ActivationSpec:
    name: str
    nonlinearity: Callable[..., torch.Tensor]  # (z, omega0, **params) -> activation
    first_init: Init
    hidden_init: Init
    periodic: bool = False  # uses omega0 and honours --siren_init
    doc: str = ""
    params: Tuple[str, ...] = ()       # ActivationConfig fields passed to the nonlinearity
    init_params: Tuple[str, ...] = ()  # ActivationConfig fields passed to both inits
    complex_valued: bool = False       # complex outputs; layers after the first have complex weights
    # complex_valued only: (re, im or None, omega0, **params) -> (..., 2W) [Re | Im] of the
    # same values as ``nonlinearity``, in real arithmetic (``ActLinear.forward_packed``)
    packed_nonlinearity: Optional[Callable[..., torch.Tensor]] = None
    # Same values as ``nonlinearity`` but differentiable in every factor; None: already so.
    exact_nonlinearity: Optional[Callable[..., torch.Tensor]] = None
    # The activation's recipe (train.py options) and where its values come from.
    recipe: Recipe = field(default_factory=dict)
    recipe_source: str = ""


ACTIVATIONS: Dict[str, ActivationSpec] = {}


def register(spec: ActivationSpec) -> ActivationSpec:
    ACTIVATIONS[spec.name] = spec
    return spec


# Recipes. The values come from a search on the demo scene's *val* views (README,
# "Recipes"; bench/results/recipe_search_demo.md has the commands, the grid and every
# candidate's val PSNR): stage 1 trains every candidate 200 steps (bench/recipe_search.py);
# stage 2 retrains the leading relu, sin and cos candidates 1000 steps. Positional encoding
# is 10/4 frequencies where on.
PE = {"i_embed": 0, "multires": 10, "multires_views": 4}
RAW = {"i_embed": -1}
SEARCHED = "from bench/results/recipe_search_demo.md (demo, seed 0, val views): "

# relu: from bench/results/recipe_search_demo.md: val PSNR 26.74 at lr 2e-3 (1000 steps; 17.29 at 200)
register(ActivationSpec(
    "relu", lambda z, w0: torch.relu(z), default_linear_init, default_linear_init,
    doc="max(0, z); NeRF's default, PyTorch default init as in nerf-pytorch.",
    recipe={"lrate": 2e-3, **PE},
    recipe_source=SEARCHED + "val PSNR 26.74 at lr 2e-3 after 1000 steps (stage 2), 17.29 after 200"))
# sin and cos: PE with first omega0 5 (stage 3: bench/results/recipe_search_demo.md and
# recipe_search_lego100.md). Under the SIREN init the first layer's pre-activations on PE
# have std ~0.09 rad at omega0 1 (cos flat there, sin nearly linear) and ~0.45 at 5
# (tests/test_siren_claims.py); stages 1-2 had tried only 1 and 30.
STAGE3 = ("stage 3, val views, seed 0: demo 27.01 (sin) / 26.88 (cos) after 1000 steps against 24.98 / 24.33 "
          "for the stage-2 recipes; lego100 26.47 / 26.27 after 600 s against 26.02 / 24.95 "
          "(bench/results/recipe_search_demo.md, recipe_search_lego100.md)")
# cos also trains on a white background: on lego100-cpu with random backgrounds
# (lego_cpu.txt) it reached 22.28 dB val after 600 s, on white 27.60; sin 27.17 against
# 27.15, so sin keeps the scene's choice (bench/results/recipe_search_lego100.md).
PERIODIC_PE = {"lrate": 2e-3, "first_omega0": 5.0, "omega0": 1.0, "siren_init": True, **PE}
register(ActivationSpec(
    "sin", lambda z, w0: torch.sin(z if w0 == 1 else w0 * z), siren_first_init, siren_hidden_init,
    periodic=True, doc="sin(omega0 z), SIREN (Sitzmann et al. 2020).",
    recipe=dict(PERIODIC_PE), recipe_source=STAGE3))
register(ActivationSpec(
    "cos", lambda z, w0: torch.cos(z if w0 == 1 else w0 * z), siren_first_init, siren_hidden_init,
    periodic=True, doc="cos(omega0 z) = sin(omega0 z + pi/2): SIREN with shifted biases.",
    recipe={**PERIODIC_PE, "random_bkgd": False},
    recipe_source=STAGE3 + "; white background: lego100 val 27.60 against 22.28 on random ones (600 s)"))
# gauss: PE with s = 3 (lego100 probes, 2026-12-07; bench/results/recipe_search_lego100.md
# and recipe_search_demo.md). The stage-1 recipe (raw xyz, s = 10) trailed relu by ~1 dB
# at 600 s on lego100; on PE, s = 10 trains poorly (18.04 dB val after a 200-s run).
register(ActivationSpec(
    "gauss", gauss, default_linear_init, default_linear_init, params=("gauss_scale",),
    doc="exp(-(s z)^2), Gaussian (Ramasinghe & Lucey 2022); PyTorch default init.",
    recipe={"lrate": 2e-3, "gauss_scale": 3.0, **PE},
    recipe_source=("lego100 600-s probe, val views, seed 0: 30.78 against 29.46 for raw xyz with s = 10 "
                   "(bench/results/recipe_search_lego100.md); demo after 1000 steps, val views: 26.31 against "
                   "21.76 (bench/results/recipe_search_demo.md)")))
# wire: w = 5, s0 = 5 on raw xyz (stage 5, 2026-12-07: bench/results/recipe_search_demo.md and
# recipe_search_lego100.md). The authors' image values (w 20, s0 10, for 2-3-layer nets) make a
# 4x128 trunk white noise at init (bench/init_smoothness.py) and train to the background.
register(ActivationSpec(
    "wire", wire, default_linear_init, default_linear_init, params=("wire_omega0", "wire_s0"),
    complex_valued=True, packed_nonlinearity=wire_packed,
    doc="exp(j w z - |s0 z|^2), complex Gabor wavelet, WIRE (Saragadam et al. 2023); "
        "complex weights after the first layer, PyTorch default init.",
    recipe={"lrate": 2e-3, "wire_omega0": 5.0, "wire_s0": 5.0, "complex_width": "matched", **RAW},
    recipe_source=("stage 5, val views, seed 0, 4x128 trunk: demo 19.09 after 200 steps against 11.33 for w 20, "
                   "s0 10 (bench/results/recipe_search_demo.md); lego100 23.36 after 200 s against 21.59 for "
                   "w 3, s0 3 (recipe_search_lego100.md); complex_width 'matched' as WIRE's reference code "
                   "(int(width / sqrt(2)) complex features), not searched")))
# finer: lr 1.5e-3 (stage 5, 2026-12-07: bench/results/recipe_search_demo.md and
# recipe_search_lego100.md): between the demo's 1e-3 and lego100's 2e-3, it beats 1e-3 on both.
register(ActivationSpec(
    "finer", finer, finer_first_init, finer_hidden_init, periodic=True,
    init_params=("first_bias_scale",), exact_nonlinearity=finer_exact,
    doc="sin(omega0 (|z|+1) z), (|z|+1) detached, FINER (Liu et al. 2024); SIREN init, "
        "first bias ~ U(-k, k).",
    recipe={"lrate": 1.5e-3, "first_omega0": 1.0, "omega0": 1.0, "siren_init": True, "first_bias_scale": 1.0, **PE},
    recipe_source=("stage 5, val views, seed 0: demo 25.06 after 1000 steps against 24.59 at lr 1e-3 and 15.28 "
                   "at 2e-3 (bench/results/recipe_search_demo.md); lego100 29.63 after 600 s against 28.61 at "
                   "1e-3 a session earlier (recipe_search_lego100.md)")))


def get_activation(name: str) -> ActivationSpec:
    if name not in ACTIVATIONS:
        raise ValueError(f"unknown activation '{name}'; expected one of {sorted(ACTIVATIONS)}")
    return ACTIVATIONS[name]


@dataclass(frozen=True)
class Preset:
    """A named setting: an activation and a recipe of its own (``--activation NAME`` or
    ``--recipe NAME``; the run records ``activation`` and ``recipe = NAME``)."""
    name: str
    activation: str
    recipe: Recipe
    source: str = ""


PRESETS: Dict[str, Preset] = {}


def register_preset(preset: Preset) -> Preset:
    if preset.name in ACTIVATIONS:
        raise ValueError(f"preset '{preset.name}' would hide the activation of the same name")
    get_activation(preset.activation)
    PRESETS[preset.name] = preset
    return preset


# The course report's setting: nerf_pl (kwea123/nerf_pl) with its nn.ReLU swapped for
# sin/cos and nothing else changed. Exactly ``fn(linear(x))`` on PyTorch's default Linear
# init (siren_init False, omega0 1 in every layer), NeRF's positional encoding kept,
# nerf_pl's lr 5e-4, PyTorch's default density-head bias (nerf_pl's sigma head is a
# plain nn.Linear: ``sigma_bias_init default``), no occupancy grid (nerf_pl has none) and
# nerf_pl's fixed white background (no random backgrounds).
# Not reproduced (scene-protocol options, not part of the preset): nerf_pl's step LR
# schedule, its raw-noise and sample-count options.
REPORT = {"lrate": 5e-4, "first_omega0": 1.0, "omega0": 1.0, "siren_init": False, **PE,
          "sigma_bias_init": "default", "occ_grid": False, "random_bkgd": False}
for _fn in ("sin", "cos"):
    register_preset(Preset(f"report-{_fn}", _fn, dict(REPORT),
                           source="the course report's setting (nerf_pl with ReLU -> " + _fn + "); not searched"))


def recipe_names() -> Tuple[str, ...]:
    """Every name ``--recipe`` takes: the activations, the presets and ``none``."""
    return tuple(ACTIVATIONS) + tuple(PRESETS) + ("none",)


def resolve_setting(name: str) -> Tuple[str, str]:
    """``--activation NAME`` -> (activation, recipe name): a preset gives its activation and
    itself, an activation itself twice. ValueError for an unknown name."""
    if name in PRESETS:
        return PRESETS[name].activation, name
    get_activation(name)
    return name, name


def recipe_of(name: str) -> Recipe:
    """The options of recipe ``name`` (an activation's, a preset's; ``none``: {})."""
    if name == "none":
        return {}
    if name in PRESETS:
        return dict(PRESETS[name].recipe)
    return dict(get_activation(name).recipe)


def recipe_activation(name: str) -> Optional[str]:
    """The activation a recipe belongs to (None for ``none``)."""
    if name == "none":
        return None
    return PRESETS[name].activation if name in PRESETS else get_activation(name).name


@dataclass(frozen=True)
class ActivationConfig:
    """Which activation a branch uses and its per-layer frequency settings."""
    name: str = "relu"
    first_omega0: float = 30.0
    omega0: float = 30.0
    siren_init: bool = True
    gauss_scale: float = 10.0       # gauss: s in exp(-(s z)^2)
    wire_omega0: float = 20.0       # wire: frequency w of every layer
    wire_s0: float = 10.0           # wire: Gaussian scale s0 of every layer
    first_bias_scale: float = 1.0   # finer: first-layer bias ~ U(-k, k); <= 0: PyTorch default

    @property
    def spec(self) -> ActivationSpec:
        return get_activation(self.name)


class ActLinear(nn.Module):
    """``nonlinearity(W x + b)`` with the activation's own init for its position.

    For a complex-valued activation (wire) every layer but the first has complex
    weights; a real input to such a layer is cast to complex."""

    def __init__(self, in_features: int, out_features: int, act: ActivationConfig,
                 is_first: bool, generator: Optional[torch.Generator] = None):
        super().__init__()
        spec = self.spec = act.spec
        self.complex_weights = spec.complex_valued and not is_first
        self.linear = nn.Linear(in_features, out_features,
                                dtype=torch.cfloat if self.complex_weights else None)
        params = {k: getattr(act, k) for k in spec.params}
        self.nonlinearity = functools.partial(spec.nonlinearity, **params) if params else spec.nonlinearity
        exact = spec.exact_nonlinearity or spec.nonlinearity
        self.exact_nonlinearity = functools.partial(exact, **params) if params else exact
        self.params = params
        self.omega0 = act.first_omega0 if is_first else act.omega0
        use_own_init = act.siren_init or not spec.periodic
        init = (spec.first_init if is_first else spec.hidden_init) if use_own_init else default_linear_init
        init_kwargs = {k: getattr(act, k) for k in spec.init_params} if use_own_init else {}
        init(self.linear, self.omega0, generator, **init_kwargs)

    def forward(self, x: torch.Tensor, exact: bool = False) -> torch.Tensor:
        """``exact=True``: every factor of the activation differentiable, for derivatives
        of the represented function (differs from training only for finer)."""
        if self.complex_weights and not x.is_complex():
            x = x.to(self.linear.weight.dtype)
        fn = self.exact_nonlinearity if exact else self.nonlinearity
        return fn(self.linear(x), self.omega0)

    def forward_packed(self, x: torch.Tensor, imag_cols: slice) -> torch.Tensor:
        """``forward`` of a complex-valued activation without complex tensors: x holds the
        real parts of all inputs, then the imaginary parts of the inputs in ``imag_cols``
        (``packed_complex_linear``); -> (..., 2 out) = [Re | Im] of ``forward``'s output.
        The same function as complex arithmetic, in real matmuls and elementwise ops."""
        if self.complex_weights:
            re, im = packed_complex_linear(x, self.linear, imag_cols).chunk(2, dim=-1)
        else:  # the first layer: real weights, real input
            re, im = self.linear(x), None
        fn = self.spec.packed_nonlinearity
        return fn(re, im, self.omega0, **self.params)

    def extra_repr(self) -> str:
        extra = "".join(f", {k}={v}" for k, v in self.params.items())
        return f"omega0={self.omega0}{extra}"
