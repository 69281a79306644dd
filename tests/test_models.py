"""The MLP: layout, skip connection, view-independence of density, the field wrapper."""
import pytest
import torch

from models.activations import ActivationConfig
from models.nerf import NeRF, build_fields, layer_width
from utils.config import build_parser, parse_args


def test_layout_skip_and_heads():
    net = NeRF(D=8, W=256, input_ch=63, input_ch_views=27, skips=[4], use_viewdirs=True)
    fan_in = [layer.linear.in_features for layer in net.pts_linears]
    assert fan_in == [63, 256, 256, 256, 256, 256 + 63, 256, 256]
    assert net.views_linear.linear.in_features == 256 + 27 and net.rgb_linear.out_features == 3
    rgb, sigma = net(torch.randn(7, 63), torch.randn(7, 27))
    assert rgb.shape == (7, 3) and sigma.shape == (7,)


def test_density_does_not_depend_on_direction():
    net = NeRF(D=4, W=64, input_ch=63, input_ch_views=27, skips=[], act=ActivationConfig("sin"))
    x = torch.randn(5, 63)
    _, s1 = net(x, torch.randn(5, 27))
    _, s2 = net(x, torch.randn(5, 27))
    assert torch.equal(s1, s2)


def test_no_viewdirs_single_head_and_trailing_skip_ignored():
    net = NeRF(D=4, W=32, input_ch=3, input_ch_views=0, skips=[4], use_viewdirs=False)
    rgb, sigma = net(torch.randn(3, 3))
    assert rgb.shape == (3, 3) and sigma.shape == (3,) and net.skips == ()


def test_field_encodes_and_chunks_identically():
    from utils.config import build_parser, parse_args
    # the parsed config (build_fields reads every field option); PyTorch's default density bias
    args = parse_args(build_parser(), [])
    vars(args).update(i_embed=0, multires=10, multires_views=4, use_viewdirs=True, activation="sin",
                      dir_activation="relu", first_omega0=30.0, omega0=30.0, siren_init=True,
                      netdepth=3, netwidth=32, netdepth_fine=2, netwidth_fine=16, skips=[1],
                      netchunk=7, N_importance=4, sigma_bias_init="default")
    coarse, fine = build_fields(args, torch.Generator().manual_seed(0))
    assert coarse.mlp.pts_linears[0].linear.in_features == 63
    assert coarse.mlp.views_linear.nonlinearity(torch.tensor(-1.0), 1.0) == 0  # relu dir branch
    pts, dirs = torch.randn(4, 5, 3), torch.nn.functional.normalize(torch.randn(4, 1, 3), dim=-1)
    rgb, sigma = coarse(pts, dirs)
    coarse.netchunk = 10 ** 6
    rgb2, sigma2 = coarse(pts, dirs)
    assert rgb.shape == (4, 5, 3) and sigma.shape == (4, 5)
    assert torch.allclose(rgb, rgb2, atol=1e-6) and torch.allclose(sigma, sigma2, atol=1e-6)
    assert fine.mlp.pts_linears[0].linear.out_features == 16


def _max_sigma_raw(sigma_bias_init, seed, use_viewdirs=True):
    """Largest raw density over points of the scene box for a fresh 4x128 ReLU NeRF."""
    g = torch.Generator().manual_seed(seed)
    net = NeRF(D=4, W=128, input_ch=63, input_ch_views=27 if use_viewdirs else 0, skips=[],
               use_viewdirs=use_viewdirs, generator=g, sigma_bias_init=sigma_bias_init)
    x = torch.rand(2048, 63, generator=torch.Generator().manual_seed(1)) * 3 - 1.5
    with torch.no_grad():
        return float(net(x, torch.randn(2048, 27 if use_viewdirs else 0))[1].max())


def test_relu_density_head_starts_alive():
    """With PyTorch's random head bias some ReLU networks have sigma_raw < 0 everywhere
    (relu density 0, no gradient, ever); the 0.1 bias keeps all of them alive."""
    seeds = range(12)
    assert any(_max_sigma_raw(None, s) <= 0 for s in seeds)
    assert all(_max_sigma_raw(0.1, s) > 0 for s in seeds)
    assert all(_max_sigma_raw(0.1, s, use_viewdirs=False) > 0 for s in seeds)


def test_sigma_bias_init_option():
    from utils.config import build_parser, parse_args
    args = parse_args(build_parser(), ["--N_importance", "4", "--netdepth", "2", "--netwidth", "16",
                                       "--netdepth_fine", "2", "--netwidth_fine", "16", "--use_viewdirs"])
    coarse, fine = build_fields(args, torch.Generator().manual_seed(0))
    assert coarse.mlp.alpha_linear.bias.item() == fine.mlp.alpha_linear.bias.item() == torch.tensor(0.1).item()
    args.sigma_bias_init = "default"
    coarse, _ = build_fields(args, torch.Generator().manual_seed(0))
    reference = NeRF(D=2, W=16, input_ch=63, input_ch_views=27, generator=torch.Generator().manual_seed(0),
                     sigma_bias_init=None)
    assert torch.equal(coarse.mlp.alpha_linear.bias, reference.alpha_linear.bias)


@pytest.mark.slow
def test_compiled_field_matches_eager():
    """--compile: same values and gradients as the eager field, for varying point counts
    (dynamic shapes, as the occupancy grid produces), and an unchanged state_dict."""
    from utils.config import build_parser, parse_args
    argv = ["--netdepth", "2", "--netwidth", "32", "--use_viewdirs", "--multires", "4", "--multires_views", "2"]
    eager, _ = build_fields(parse_args(build_parser(), argv), torch.Generator().manual_seed(0))
    compiled, _ = build_fields(parse_args(build_parser(), argv + ["--compile"]), torch.Generator().manual_seed(0))
    assert list(compiled.state_dict()) == list(eager.state_dict())
    for n in (37, 120):
        pts = torch.randn(n, 3, generator=torch.Generator().manual_seed(n))
        dirs = torch.nn.functional.normalize(torch.randn(n, 3), dim=-1)
        outs = []
        for field in (eager, compiled):
            field.zero_grad()
            rgb, sigma = field(pts, dirs)
            (rgb.square().sum() + sigma.sum()).backward()
            outs.append((rgb.detach(), sigma.detach(), field.mlp.pts_linears[0].linear.weight.grad.clone()))
        for a, b in zip(*outs):
            assert torch.allclose(a, b, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("act,dir_act", [("relu", "relu"), ("sin", "sin"), ("wire", "wire"), ("relu", "wire"),
                                         ("wire", "relu")])
def test_autocast_concatenations_equal_the_promoting_ones(monkeypatch, act, dir_act):
    """Under bf16 autocast the skip and view-branch concatenations cast the fp32 input to
    the features' dtype first: outputs and every gradient equal a concatenation promoted
    to fp32 and cast by the next layer, bit for bit (wire's packed layers compute in fp32,
    so their inputs keep fp32)."""
    import models.nerf as nerf
    g = torch.Generator().manual_seed(0)
    x, d = torch.randn(48, 63, generator=g), torch.randn(48, 27, generator=g)

    def run():
        net = NeRF(D=4, W=16, input_ch=63, input_ch_views=27, skips=[1], act=ActivationConfig(act),
                   dir_act=ActivationConfig(dir_act), generator=torch.Generator().manual_seed(1))
        with torch.autocast("cpu", dtype=torch.bfloat16):
            rgb, sigma = net(x, d)
        (rgb.float().square().sum() + sigma.float().sum()).backward()
        return [rgb, sigma] + [p.grad for p in net.parameters()]

    cast_first = run()
    monkeypatch.setattr(nerf, "_like", lambda t, h: t)  # plain torch.cat: fp32 promotion
    promoted = run()
    assert cast_first[0].dtype == promoted[0].dtype
    assert all(torch.equal(a, b) for a, b in zip(cast_first, promoted))


@pytest.mark.parametrize("width, complex_trunk, mode, expected", [
    (128, True, "matched", 90), (256, True, "matched", 181),   # int(w / sqrt(2)): 90.5, 181.02
    (128, True, "full", 128), (128, False, "matched", 128)])
def test_layer_width(width, complex_trunk, mode, expected):
    assert layer_width(width, complex_trunk, mode) == expected


def _real_parameter_count(field) -> int:
    return sum(p.numel() * (2 if p.is_complex() else 1) for p in field.parameters())


@pytest.mark.parametrize("argv, expected", [
    # relu, raw xyz, 4x128, one head: 3*128+128 + 3*(128*128+128) + (4*128+4)
    (["--activation", "relu", "--i_embed", "-1"], 50564),
    # wire's recipe (complex_width matched, 90 features): a real first layer 3*90+90, three
    # complex 90x90 layers 3*2*(90*90+90), a complex head 2*(4*90+4): about relu's count
    (["--activation", "wire"], 50228),
    # wire at netwidth complex features: twice the real parameters of each complex layer
    (["--activation", "wire", "--complex_width", "full"], 512 + 3 * 2 * (128 * 128 + 128) + 2 * (4 * 128 + 4)),
])
def test_wire_recipe_matches_a_real_nets_parameter_count(argv, expected):
    args = parse_args(build_parser(), ["--dataset_type", "demo", "--netdepth", "4", "--netwidth", "128"] + argv)
    coarse, fine = build_fields(args, torch.Generator().manual_seed(0))
    assert fine is None and _real_parameter_count(coarse) == expected


def test_wire_checkpoint_from_before_complex_width_is_refused_by_name():
    """An older wire checkpoint has no complex_width (it trained at 'full', the default);
    resuming it under wire's recipe ('matched') must name the option, not fail on shapes."""
    from runs.guards import config_differences
    from utils.config import parser_defaults
    args = parse_args(build_parser(), ["--dataset_type", "demo", "--activation", "wire"])
    saved = {k: v for k, v in vars(args).items() if k != "complex_width"}
    assert config_differences(saved, args, parser_defaults(), ()) == [
        "--complex_width: checkpoint 'full', now 'matched'"]
