"""The NeRF MLP (Mildenhall et al. 2020, fig. 7) with a pluggable hidden activation.

The MLP maps *encoded* points and directions to raw ``(rgb, sigma)``; it never sees
rays. ``RadianceField`` adds the encodings and ``--netchunk`` batching and is the
callable the renderer takes: ``field(pts (..., 3), dirs (..., 3)) -> (rgb_raw (..., 3),
sigma_raw (...))``. Output activations (sigmoid for rgb, ReLU/softplus for sigma)
belong to the renderer, after the training noise on sigma.
"""
import math
from dataclasses import dataclass
from typing import Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import nn

from models.activations import ActivationConfig, ActLinear, default_linear_init, packed_complex_linear
from models.encoding import PositionalEncoding


def _head(in_features: int, out_features: int, generator, complex_input: bool = False) -> nn.Linear:
    """Linear head; complex weights when it reads complex features (wire), in which case
    the caller takes the real part of its output (as WIRE's own final layer does)."""
    layer = nn.Linear(in_features, out_features, dtype=torch.cfloat if complex_input else None)
    default_linear_init(layer, 1.0, generator)
    return layer


def real_output(layer: nn.Linear, h: torch.Tensor, imag: slice) -> torch.Tensor:
    """Re(layer(h)) for a packed input ``h`` (a complex layer), else layer(h)."""
    if layer.weight.is_complex():
        return packed_complex_linear(h, layer, imag, real_part_only=True)
    return layer(h)


def _like(x: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
    """``x`` in ``h``'s dtype, to be concatenated with ``h`` before a *real* layer. Under
    autocast h is bf16/fp16 and that layer casts its whole input to it anyway, so the
    result is bit-identical, without a mixed-dtype cat (promoted to fp32, then cast back
    by the layer): 8 lego100 renders took 0.174 against 0.188 s per view, in-process A/B
    on 2 cores. A packed (complex-valued) trunk's features are fp32 (``wire_packed``), so
    there x keeps its dtype."""
    return x.to(h.dtype)


def run_trunk(layers: Sequence[ActLinear], x: torch.Tensor, skips: Sequence[int] = (),
              exact: bool = False) -> Tuple[torch.Tensor, slice]:
    """x (N, in) through ``layers``, with x re-injected after each layer index in ``skips``
    -> (features, the columns of them that are imaginary parts). A complex-valued
    activation's features travel packed, as real [Re | Im] (``ActLinear.forward_packed``);
    a skip gives [x, Re h, Im h]. ``exact`` as in ``ActLinear.forward`` (real features)."""
    packed = layers[0].spec.complex_valued
    h, imag = x, slice(0, 0)
    for i, layer in enumerate(layers):
        if packed:
            h = layer.forward_packed(h, imag)
            imag = slice(0, h.shape[-1] // 2)
        else:
            h = layer(h, exact=exact)
        if i in skips:
            h = torch.cat([x if packed else _like(x, h), h], dim=-1)
            imag = slice(imag.start + x.shape[-1], imag.stop + x.shape[-1])  # empty stays empty
    return h, imag


class NeRF(nn.Module):
    """D x W trunk with the input re-injected after each layer in ``skips``.

    The density head's bias starts at ``sigma_bias_init`` (None: PyTorch's U(-1/sqrt(W),
    1/sqrt(W))). With PyTorch's draw and a ReLU trunk, |w.h| is below ~0.09 at init, so
    the bias decides the sign: about 1 network in 5 (4 of 20, both 4x128 and 8x256) has
    sigma_raw < 0 at every point, and under ReLU density it never gets a gradient (its
    renders stay background for good). 0.1 starts every network as a thin, live fog.

    With ``use_viewdirs``: sigma = head(trunk); rgb = head(act(W_v [feature(trunk), dirs])),
    so density does not depend on the view direction. Without it, one linear head
    gives all four outputs.

    Complex-valued activations (wire): the trunk's features are complex; the skip
    concatenates the (real) input cast to complex; heads reading complex features
    have complex weights and the real part of their output is kept, so rgb and sigma
    are always real. The feature vector goes to a real-valued direction branch as its
    real part (Re(W h) with complex W mixes both parts of h), to a wire branch as is.
    The parameters are complex tensors (init, Adam and checkpoints see complex weights),
    but the forward pass holds complex features as real [Re | Im] blocks and multiplies
    them by real block matrices of the weights' parts: the same function as complex
    arithmetic (tests/test_activations_extra.py), 1.5x the training rays/s on CPU.
    """

    def __init__(self, D: int = 8, W: int = 256, input_ch: int = 63, input_ch_views: int = 27,
                 skips: Sequence[int] = (4,), use_viewdirs: bool = True,
                 act: ActivationConfig = ActivationConfig(),
                 dir_act: Optional[ActivationConfig] = None,
                 generator: Optional[torch.Generator] = None,
                 sigma_bias_init: Optional[float] = 0.1):
        super().__init__()
        dir_act = dir_act or act
        # As in nerf-pytorch, a skip after the last layer (e.g. [4] with D=4) is a no-op.
        self.skips = tuple(s for s in skips if s < D - 1)
        self.use_viewdirs = use_viewdirs
        self.trunk_complex = trunk_complex = act.spec.complex_valued
        self.dir_complex = dir_act.spec.complex_valued
        layers = []
        for i in range(D):
            fan_in = input_ch if i == 0 else W + (input_ch if (i - 1) in self.skips else 0)
            layers.append(ActLinear(fan_in, W, act, is_first=(i == 0), generator=generator))
        self.pts_linears = nn.ModuleList(layers)
        if use_viewdirs:
            self.feature_linear = _head(W, W, generator, trunk_complex)
            self.alpha_linear = _head(W, 1, generator, trunk_complex)
            self.views_linear = ActLinear(W + input_ch_views, W // 2, dir_act, is_first=False,
                                          generator=generator)
            self.rgb_linear = _head(W // 2, 3, generator, self.dir_complex)
        else:
            self.output_linear = _head(W, 4, generator, trunk_complex)
        if sigma_bias_init is not None:
            with torch.no_grad():
                sigma_head = self.alpha_linear if use_viewdirs else self.output_linear
                sigma_head.bias[-1] = sigma_bias_init

    def forward(self, x: torch.Tensor, d: Optional[torch.Tensor] = None
                ) -> Tuple[torch.Tensor, torch.Tensor]:
        """x: (N, input_ch), d: (N, input_ch_views) -> rgb_raw (N, 3), sigma_raw (N,).

        Complex features travel packed, as real (N, 2W) = [Re | Im] (``forward_packed``,
        ``packed_complex_linear``); ``imag`` names the columns of a packed input that have
        an imaginary part."""
        h, imag = run_trunk(self.pts_linears, x, self.skips)
        if not self.use_viewdirs:
            out = real_output(self.output_linear, h, imag)
            return out[..., :3], out[..., 3]
        sigma = real_output(self.alpha_linear, h, imag)[..., 0]
        if self.trunk_complex and self.dir_complex:
            feature = packed_complex_linear(h, self.feature_linear, imag)
            re, im = feature.chunk(2, dim=-1)
            h, imag = torch.cat([re, d, im], dim=-1), slice(0, re.shape[-1])
        else:  # a real direction branch reads the real part of a complex feature
            feature = real_output(self.feature_linear, h, imag)
            h, imag = torch.cat([feature, d if self.dir_complex else _like(d, feature)], dim=-1), slice(0, 0)
        if self.dir_complex:
            h = self.views_linear.forward_packed(h, imag)
            return real_output(self.rgb_linear, h, slice(0, h.shape[-1] // 2)), sigma
        return self.rgb_linear(self.views_linear(h)), sigma

    def flops_per_sample(self) -> int:
        """Forward multiply-adds x 2 from the layer shapes (used by bench/throughput.py);
        a complex multiply-add counts as 4 real ones."""
        return sum(2 * m.in_features * m.out_features * (4 if m.weight.is_complex() else 1)
                   for m in self.modules() if isinstance(m, nn.Linear))


# The MLP sees batches whose row count is a multiple of this: the number of samples in
# occupied space changes every step, and oneDNN compiles a new bf16 kernel for each new
# matrix shape (~1 ms, measured on this project's 2-core CPU: 1172 against 118 us per
# 3000x128x128 linear); padded to multiples of 256 there are at most netchunk / 256 shapes.
ROW_BUCKET = 256


class RadianceField(nn.Module):
    """Encodes world points/directions and evaluates the MLP in ``netchunk`` pieces (each
    padded to a multiple of ``ROW_BUCKET`` rows)."""

    def __init__(self, mlp: NeRF, embed_pts: PositionalEncoding,
                 embed_dirs: Optional[PositionalEncoding], netchunk: int = 1024 * 64):
        super().__init__()
        self.mlp, self.embed_pts, self.embed_dirs = mlp, embed_pts, embed_dirs
        self.netchunk = netchunk

    def evaluate(self, pts: torch.Tensor, dirs: Optional[torch.Tensor]) -> Tuple[torch.Tensor, torch.Tensor]:
        """One chunk: pts (N, 3), dirs (N, 3) or None -> rgb_raw (N, 3), sigma_raw (N,).
        ``compile_chunks()`` replaces it with a torch.compile'd copy (encoding and MLP fused)."""
        return self.mlp(self.embed_pts(pts), self.embed_dirs(dirs) if dirs is not None else None)

    def compile_chunks(self) -> None:
        """``--compile``: torch.compile the per-chunk evaluation. dynamic=True because the
        number of points varies from step to step (occupancy grid, last chunk); the
        parameters and the state_dict are untouched, so checkpoints do not change."""
        self.evaluate = torch.compile(self.evaluate, dynamic=True)

    def forward(self, pts: torch.Tensor, dirs: Optional[torch.Tensor] = None
                ) -> Tuple[torch.Tensor, torch.Tensor]:
        """pts: (..., 3), dirs: (..., 3) unit view directions -> ((..., 3), (...))."""
        lead = pts.shape[:-1]
        flat_pts = pts.reshape(-1, 3)
        flat_dirs = dirs.expand(*lead, 3).reshape(-1, 3) if self.embed_dirs is not None else None
        rgbs, sigmas = [], []
        for start in range(0, flat_pts.shape[0], self.netchunk):
            sl = slice(start, start + self.netchunk)
            chunk_pts, chunk_dirs = flat_pts[sl], flat_dirs[sl] if flat_dirs is not None else None
            n = chunk_pts.shape[0]
            pad = -n % ROW_BUCKET
            if pad:  # padded rows are evaluated and dropped: their outputs get no gradient
                chunk_pts = F.pad(chunk_pts, (0, 0, 0, pad))
                chunk_dirs = F.pad(chunk_dirs, (0, 0, 0, pad)) if chunk_dirs is not None else None
            rgb, sigma = self.evaluate(chunk_pts, chunk_dirs)
            rgbs.append(rgb[:n])
            sigmas.append(sigma[:n])
        rgb = rgbs[0] if len(rgbs) == 1 else torch.cat(rgbs)
        sigma = sigmas[0] if len(sigmas) == 1 else torch.cat(sigmas)
        return rgb.reshape(*lead, 3), sigma.reshape(lead)


@dataclass
class FieldOptions:
    """What ``build_fields`` reads from the config (one field per option of the same name)."""
    netdepth: int
    netwidth: int
    netdepth_fine: int
    netwidth_fine: int
    N_importance: int               # 0: no fine network
    skips: Tuple[int, ...]
    use_viewdirs: bool
    i_embed: int                    # 0: positional encoding, -1: raw xyz
    multires: int
    multires_views: int
    act: ActivationConfig           # trunk (--activation and its parameters)
    dir_act: ActivationConfig       # view-direction branch (--dir_activation)
    sigma_bias_init: Optional[float]  # None: PyTorch's random bias ('default')
    netchunk: int                   # 0: by device (resolve_netchunk)
    compile: bool
    complex_width: str = "full"     # complex trunk: 'full' netwidth features, 'matched' netwidth / sqrt(2)

    @classmethod
    def from_args(cls, args) -> "FieldOptions":
        params = {k: getattr(args, k) for k in ("gauss_scale", "wire_omega0", "wire_s0", "first_bias_scale")}
        act = ActivationConfig(args.activation, args.first_omega0, args.omega0, args.siren_init, **params)
        dir_act = ActivationConfig(args.dir_activation or args.activation, args.first_omega0, args.omega0,
                                   args.siren_init, **params)
        bias = None if str(args.sigma_bias_init).lower() == "default" else float(args.sigma_bias_init)
        return cls(args.netdepth, args.netwidth, args.netdepth_fine, args.netwidth_fine, args.N_importance,
                   tuple(args.skips), args.use_viewdirs, args.i_embed, args.multires, args.multires_views,
                   act, dir_act, bias, args.netchunk, args.compile, args.complex_width)


def resolve_netchunk(netchunk: int, device: torch.device) -> int:
    """``--netchunk 0`` (default) picks by device: 65536 points on CUDA; 4096 on CPU, where
    chunks that stay in cache run ~2x faster than 32 MB+ tensors (measured on 2 cores)."""
    if netchunk > 0:
        return netchunk
    return 65536 if torch.device(device).type == "cuda" else 4096


def layer_width(width: int, complex_trunk: bool, complex_width: str = "full") -> int:
    """Features per layer for ``--netwidth width``. A complex feature is two real numbers,
    so ``matched`` gives a complex trunk int(width / sqrt(2)) features (WIRE's reference
    code does the same), about a real net's parameter count: 128 -> 90, 256 -> 181."""
    if complex_trunk and complex_width == "matched":
        return max(1, int(width / math.sqrt(2)))
    return width


def build_field(opts: FieldOptions, depth: int, width: int, generator: torch.Generator,
                device="cpu") -> RadianceField:
    width = layer_width(width, opts.act.spec.complex_valued, opts.complex_width)
    use_pe = opts.i_embed != -1
    embed_pts = PositionalEncoding(3, opts.multires, enabled=use_pe)
    embed_dirs = PositionalEncoding(3, opts.multires_views, enabled=use_pe) if opts.use_viewdirs else None
    mlp = NeRF(depth, width, embed_pts.out_dim, embed_dirs.out_dim if embed_dirs else 0,
               skips=opts.skips, use_viewdirs=opts.use_viewdirs, act=opts.act, dir_act=opts.dir_act,
               generator=generator, sigma_bias_init=opts.sigma_bias_init)
    field = RadianceField(mlp, embed_pts, embed_dirs, resolve_netchunk(opts.netchunk, device)).to(device)
    if opts.compile:
        field.compile_chunks()
    return field


def build_fields(args, generator: torch.Generator, device="cpu"):
    """Separate coarse and fine fields on ``device`` (fine is None when N_importance == 0)
    from the parsed config. Weights are drawn on the CPU from ``generator``, so a seed
    gives the same init anywhere."""
    opts = FieldOptions.from_args(args)
    coarse = build_field(opts, opts.netdepth, opts.netwidth, generator, device)
    fine = (build_field(opts, opts.netdepth_fine, opts.netwidth_fine, generator, device)
            if opts.N_importance > 0 else None)
    return coarse, fine
