"""Occupancy grid and empty-space skipping: exactness, conservativeness, checkpoints, benches."""
import json
import math

import numpy as np
import pytest
import torch

from datasets import demo
from datasets.batching import CameraViews
from datasets import load_scene
from models import build_fields
from tests.conftest import GRID as GRID_OPTIONS, ROOT, cli_args, run_script, tiny_args
from tests.test_render import slab_field
from utils.checkpoint import load_checkpoint
from utils.config import build_parser, parse_args
from utils.errors import UserError
from runs.evaluation import render_image
from runs.training import Trainer, load_trained
from utils.metrics import psnr
from rendering.occupancy import OccupancyGrid, build_grid
from rendering.renderer import RayBundle, RenderOptions, alive_samples, render_rays

TINY = tiny_args(16, netwidth=32, netwidth_fine=32, i_print=50, i_img=0, i_weights=0, n_frames=None)
GRID = cli_args(GRID_OPTIONS)


def args_of(extra=()):
    return parse_args(build_parser(), TINY + list(extra))


def camera_rays(n=64, seed=0):
    """Rays from a camera at (0, 0.5, 4) towards the origin region, near 2, far 6."""
    g = torch.Generator().manual_seed(seed)
    d = torch.cat([torch.rand(n, 2, generator=g) * 0.6 - 0.3, -torch.ones(n, 1)], -1)
    o = torch.tensor([0.0, 0.5, 4.0]).expand(n, 3)
    return RayBundle(o, d, d / d.norm(dim=-1, keepdim=True), torch.full((n,), 2.0), torch.full((n,), 6.0))


class Counting:
    """A field wrapper counting the points it is evaluated at."""

    def __init__(self, field):
        self.field, self.n = field, 0

    def __call__(self, pts, dirs):
        self.n += pts.shape[:-1].numel()
        return self.field(pts, dirs)


# ---------------------------------------------------------------- (1) exactness
@pytest.mark.parametrize("activation", ["relu", "softplus"])
@pytest.mark.parametrize("n_importance", [0, 16])
def test_all_occupied_grid_equals_plain_renderer(activation, n_importance):
    """A grid that marks every sample occupied changes nothing (training noise and
    perturbation included: the same random draws happen in the same order)."""
    args = args_of(["--sigma_activation", activation, "--N_importance", str(n_importance)])
    coarse, fine = build_fields(args, torch.Generator().manual_seed(0))
    grid = OccupancyGrid([[-10.0] * 3, [10.0] * 3], resolution=4)  # fresh: all occupied
    rays = camera_rays()
    plain = RenderOptions(16, n_importance, perturb=True, raw_noise_std=1.0, white_bkgd=True,
                          sigma_activation=activation)
    gridded = RenderOptions(**{**plain.__dict__, "occupancy": grid})
    with torch.no_grad():
        a = render_rays(rays, coarse, fine, plain, torch.Generator().manual_seed(1))
        b = render_rays(rays, coarse, fine, gridded, torch.Generator().manual_seed(1))
    assert a.keys() == b.keys()
    for key in a:
        assert torch.allclose(a[key], b[key], atol=1e-5, rtol=0), key


def test_correct_grid_is_exact_and_skips_samples():
    """A slab of density 1e3 between z = -3.5 and -3 (empty elsewhere, relu): a grid fitted
    to it renders exactly as without a grid while the MLP sees far fewer samples; early
    termination (stop_T 1e-4) drops at most ~stop_T of light."""
    field, rays = slab_field(), camera_rays()
    rays = RayBundle(torch.zeros_like(rays.origins), rays.directions, rays.viewdirs, rays.near, rays.far)
    # cell edges at z = -6.5 + 0.25 k: the slab fills whole cells, so the fitted grid is exact
    grid = OccupancyGrid([[-1.0, -1.0, -6.5], [1.0, 1.0, -1.5]], resolution=20, warmup=0)
    grid.update(lambda p: torch.relu(field(p, p)[1]), torch.Generator().manual_seed(0), all_cells=True)
    assert 0 < grid.occupied_fraction() <= 2 / 20 + 1e-6
    plain = RenderOptions(N_samples=32, N_importance=32)
    outs, counts = {}, {}
    for name, extra in (("plain", {}), ("grid", {"occupancy": grid}), ("stop", {"occupancy": grid, "stop_T": 1e-4})):
        c, f = Counting(field), Counting(field)
        outs[name] = render_rays(rays, c, f, RenderOptions(**{**plain.__dict__, **extra}))
        counts[name] = (c.n, f.n)
    for key in ("rgb", "depth", "acc", "rgb_coarse", "depth_coarse"):
        assert torch.allclose(outs["grid"][key], outs["plain"][key], atol=1e-5, rtol=0), key
        assert torch.allclose(outs["stop"][key], outs["plain"][key], atol=1e-4 * 6, rtol=0), key  # depth <= 6 T
    # the slab is 1/8 of [near, far]: ~4 of 32 coarse samples per ray are in it
    assert counts["grid"][0] <= 6 * len(rays) < 32 * len(rays) == counts["plain"][0]
    # fine samples crowd into the slab (all evaluated); behind its front, rays stop
    assert counts["stop"][1] < counts["grid"][1] < 0.7 * counts["plain"][1]


def test_low_precision_field_reaches_the_compositor_exactly():
    """A bf16 field's outputs are composited as their exact fp32 values, skipped samples as
    EMPTY_SIGMA_RAW: the render equals that of the same values handed over in fp32."""
    field, rays = slab_field(colour=(0.3, 0.55, 0.7), density=37.0), camera_rays()
    grid = OccupancyGrid([[-1.0, -1.0, -6.5], [1.0, 1.0, -1.5]], resolution=20, warmup=0)
    grid.update(lambda p: torch.relu(field(p, p)[1]), torch.Generator().manual_seed(0), all_cells=True)
    bf16 = lambda p, d: tuple(o.bfloat16() for o in field(p, d))
    fp32 = lambda p, d: tuple(o.bfloat16().float() for o in field(p, d))
    opts = RenderOptions(N_samples=16, N_importance=16, occupancy=grid)
    low, high = (render_rays(rays, f, f, opts) for f in (bf16, fp32))
    assert low["rgb"].dtype == torch.float32
    assert all(torch.equal(low[k], high[k]) for k in high)


def test_fine_pass_queries_the_grid_for_new_samples_only():
    """Coarse samples keep the cells the coarse pass looked up: per ray the grid sees
    N_samples + N_importance points, not N_samples + (N_samples + N_importance). The fine
    MLP still gets exactly the union's samples in occupied cells: those of a plain render
    (the slab's grid is exact, so the fine samples land where they do without it) that
    the grid marks occupied, looked up here one by one."""
    field, rays = slab_field(), camera_rays()
    rays = RayBundle(torch.zeros_like(rays.origins), rays.directions, rays.viewdirs, rays.near, rays.far)
    grid = OccupancyGrid([[-1.0, -1.0, -6.5], [1.0, 1.0, -1.5]], resolution=20, warmup=0)
    grid.update(lambda p: torch.relu(field(p, p)[1]), torch.Generator().manual_seed(0), all_cells=True)
    queried, seen = [], {}

    class CountingGrid:
        def query(self, pts):
            queried.append(pts.shape[:-1].numel())
            return grid.query(pts)

    def recording(name):
        def fine(pts, dirs):
            seen[name] = pts.reshape(-1, 3)
            return field(pts, dirs)
        return fine

    opts = RenderOptions(N_samples=16, N_importance=8)
    render_rays(rays, field, recording("plain"), opts)
    render_rays(rays, field, recording("grid"), RenderOptions(**{**opts.__dict__, "occupancy": CountingGrid()}))
    assert queried == [16 * len(rays), 8 * len(rays)]
    expected = seen["plain"][torch.tensor([bool(grid.query(p[None])[0]) for p in seen["plain"]])]
    assert 0 < len(expected) < len(seen["plain"])
    assert torch.equal(seen["grid"], expected)


def test_alive_samples_by_hand():
    """Coarse t = 0, 1, 2, 3 with weights .5, .5, 0, 0: T in front of them is 1, .5, 0, 0."""
    t_coarse = torch.tensor([[0.0, 1.0, 2.0, 3.0]])
    w = torch.tensor([[0.5, 0.5, 0.0, 0.0]])
    t = torch.tensor([[0.0, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0]])
    alive = alive_samples(t, t_coarse, w, 0.1)
    assert alive.tolist() == [[True, True, True, True, False, False, False]]
    assert alive_samples(t, t_coarse, w, 0.6).tolist() == [[True, True, False, False, False, False, False]]


def test_query_indexing_by_hand():
    """res 2 over [0, 1]^3: cell (i, j, k) = (1, 0, 1) is flat index (1*2 + 0)*2 + 1 = 5."""
    grid = OccupancyGrid([[0.0] * 3, [1.0] * 3], resolution=2)
    grid.binary = torch.zeros(8, dtype=torch.bool)
    grid.binary[5] = True
    pts = torch.tensor([[0.75, 0.25, 0.75], [0.25, 0.25, 0.75], [0.75, 0.75, 0.75], [1.0, 0.0, 1.0],
                        [1.5, 0.25, 0.75], [0.75, 0.25, -0.01], [float("nan"), 0.2, 0.7]])
    assert grid.query(pts).tolist() == [True, False, False, True, False, False, False]
    assert grid.query(pts.reshape(7, 1, 3)).shape == (7, 1)


def test_cell_index_at_resolution_64_by_hand():
    """bbox [-2, 2]^3, 64 cells of 1/16: a point n/64 (exact in fp32) lies in cell
    (n + 128) // 4, the top face in the last cell; outside or NaN is not inside. The
    points themselves are left unchanged (cell_index works in place on a copy)."""
    grid = OccupancyGrid([[-2.0] * 3, [2.0] * 3], resolution=64)
    n = torch.tensor([[-128, 0, 127], [-1, 1, 128], [-129, 5, 6], [7, 200, 8], [100, -3, -128], [4, 4, 4]])
    pts = n.float() / 64
    pts[5, 1] = float("nan")
    before = pts.clone()
    flat, inside = grid.cell_index(pts)
    assert torch.equal(pts.nan_to_num(9.0), before.nan_to_num(9.0))
    assert inside.tolist() == [True, True, False, False, True, False]
    ijk = ((n + 128) // 4).clamp(0, 63)
    expected = (ijk[:, 0] * 64 + ijk[:, 1]) * 64 + ijk[:, 2]
    assert flat[inside].tolist() == expected[inside].tolist()
    assert expected[0].item() == 0 * 4096 + 32 * 64 + 63 and expected[1].item() == 31 * 4096 + 32 * 64 + 63


def test_threshold_is_alpha_over_one_cell():
    grid = OccupancyGrid([[0.0] * 3, [2.0] * 3], resolution=10, occ_thresh=0.01)
    cell = 0.2
    assert math.isclose(1 - math.exp(-grid.density_thresh * cell), 0.01, rel_tol=1e-6)


# ---------------------------------------------------------------- (2) conservative on known geometry
def test_grid_never_marks_demo_geometry_empty():
    """Density 1e3 within one cell diagonal of the demo scene's surfaces/solids: every cell
    holding a surface point is then dense at any point inside it, so after a full update
    (and after later partial ones) all surface points must query True, while points two
    diagonals away from everything query False."""
    grid = OccupancyGrid(demo.BBOX, resolution=48, warmup=1)
    diag = float(grid.cell.norm())

    def density(p):
        return torch.from_numpy(demo.occupied(p.numpy().astype(np.float64), margin=diag) * 1e3).float()
    g = torch.Generator().manual_seed(0)
    rng = np.random.default_rng(0)
    for _ in range(4):  # one warm-up (all cells) + three partial updates
        grid.update(density, g)
    assert 0.005 < grid.occupied_fraction() < 0.3

    n = 4000
    dirs = rng.normal(size=(n, 3))
    dirs /= np.linalg.norm(dirs, axis=1, keepdims=True)
    sphere = demo.SPHERE_CENTER + dirs * demo.SPHERE_RADIUS * rng.uniform(0, 1, (n, 1)) ** (1 / 3)
    sphere_surface = demo.SPHERE_CENTER + dirs * demo.SPHERE_RADIUS
    box = demo.BOX_CENTER + demo.BOX_HALF * rng.uniform(-1, 1, (n, 3))
    face = rng.integers(0, 3, n)
    box_surface = box.copy()
    signs = rng.choice([-1.0, 1.0], (n, 3))
    box_surface[np.arange(n), face] = (demo.BOX_CENTER + demo.BOX_HALF * signs)[np.arange(n), face]
    floor = np.stack([rng.uniform(-1, 1, n) * demo.FLOOR_HALF, rng.uniform(-1, 1, n) * demo.FLOOR_HALF,
                      np.full(n, demo.FLOOR_Z)], -1)
    for name, pts in (("sphere", sphere), ("sphere surface", sphere_surface), ("box", box),
                      ("box surface", box_surface), ("floor", floor)):
        assert bool(grid.query(torch.from_numpy(pts).float()).all()), name

    lo, hi = demo.BBOX
    cand = rng.uniform(lo, hi, (20000, 3))
    far = cand[~demo.occupied(cand, margin=2 * diag)]
    assert len(far) > 1000 and not bool(grid.query(torch.from_numpy(far).float()).any())


# ---------------------------------------------------------------- (3, 4) a briefly trained model
@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    base = tmp_path_factory.mktemp("occ")
    argv = ["--basedir", str(base), "--expname", "g", "--N_iters", "150"] + TINY + GRID
    run_script("train.py", *argv)
    return argv, base / "g" / "ckpt_0000150.pt"


def test_trained_grid_render_agrees_with_bbox_only_render(trained):
    """The trained grid (plus early termination) against an all-occupied grid over the
    same box (the box itself is part of the model: outside it the networks were never
    trained, so a render evaluating them there is not the same model). Cells the grid
    skips have coarse density below an opacity of 1% per cell; the fine network can
    disagree somewhat there, so we ask for a close, not exact, match: PSNR > 35 dB between
    the two renders (about 1.8% RMS), while the grid skips a real part of the box."""
    argv, ckpt = trained
    args = parse_args(build_parser(), argv)
    device = torch.device("cpu")
    scene = load_scene(args)
    trained = load_trained(args, str(ckpt), device, scene.bbox)
    coarse, fine, grid, step = trained.coarse, trained.fine, trained.grid, trained.step
    rays = CameraViews(scene, args.white_bkgd, device)
    assert step == 150 and grid.updates == 30 and grid.occupied_fraction() < 0.9
    full = OccupancyGrid(scene.bbox, resolution=1)
    opts_grid = RenderOptions.from_args(args, False, grid)
    opts_full = RenderOptions(**{**opts_grid.__dict__, "occupancy": full, "stop_T": 0.0})
    assert opts_grid.stop_T == 1e-4
    for idx in scene.splits["test"][:3]:
        a = render_image(rays, rays.poses[idx], coarse, fine, opts_grid, 4096)
        b = render_image(rays, rays.poses[idx], coarse, fine, opts_full, 4096)
        assert psnr(a["rgb"], b["rgb"]) > 35, idx


def test_checkpoint_round_trip(trained, tmp_path):
    argv, ckpt = trained
    state = load_checkpoint(str(ckpt))  # weights_only=True
    occ = state["occupancy"]
    assert all(isinstance(v, torch.Tensor) for v in occ.values())
    args = parse_args(build_parser(), argv)
    t = Trainer(args, torch.device("cpu"), demo.BBOX)
    assert bool(t.grid.binary.all())  # fresh
    t.load(str(ckpt))
    assert torch.equal(t.grid.density, occ["density"]) and torch.equal(t.grid.binary, occ["binary"])
    assert t.grid.updates == int(occ["updates"]) == 30

    path = tmp_path / "grid.pt"
    torch.save(t.grid.state_dict(), path)
    other = OccupancyGrid(demo.BBOX, resolution=24)
    other.load_state_dict(torch.load(path, weights_only=True))
    pts = torch.rand(1000, 3) * 3 - 1.5
    assert torch.equal(other.query(pts), t.grid.query(pts))
    with pytest.raises(UserError, match="24\\^3"):
        OccupancyGrid(demo.BBOX, resolution=8).load_state_dict(occ)


def test_eval_uses_the_checkpoint_grid(trained, tmp_path):
    argv, ckpt = trained
    run_script("eval.py", "--run", ckpt.parent, "--no_path", "--outdir", tmp_path / "ev")
    metrics = json.loads((tmp_path / "ev" / "metrics.json").read_text())
    grid = OccupancyGrid(demo.BBOX, resolution=24)
    grid.load_state_dict(load_checkpoint(str(ckpt))["occupancy"])
    assert metrics["occupied_fraction"] == grid.occupied_fraction() < 0.9
    assert metrics["psnr"] > 12


def test_grid_needs_a_bounding_box_and_valid_options():
    with pytest.raises(UserError, match="bounding box"):
        build_grid(args_of(["--occ_grid"]), None, "cpu")
    assert build_grid(args_of(), None, "cpu") is None
    for bad in (["--occ_thresh", "1.5"], ["--occ_res", "0"], ["--occ_decay", "0"], ["--occ_stop_T", "-1"]):
        with pytest.raises(UserError):
            args_of(bad)


# ---------------------------------------------------------------- (5) bench scripts
def test_throughput_bench_writes_json(tmp_path):
    out = tmp_path / "t.json"
    run_script("-m", "bench.throughput", *TINY, *GRID, "--N_rand", "64", "--steps", "2", "--warmup", "1",
               "--peak_n", "128", "--render_res", "8", "--render_views", "2", "--render_passes", "3", "--threads", "1",
               "--json", out)
    result = json.loads(out.read_text())
    for key in ("rays_per_sec", "mlp_samples_per_sec", "render_seconds_per_image", "peak_memory_mb",
                "mlp_gflops", "matmul_peak_gflops", "mlp_pct_of_peak", "samples_per_ray", "config"):
        assert key in result, key
    assert result["rays_per_sec"] > 0 and result["mlp_gflops"] > 0 and 0 < result["samples_per_ray"] <= 32
    assert result["config"]["occ_grid"] is True and result["steps"] == 2
    passes = result["render_seconds_per_pass"]
    assert result["render_views"] == 2 and len(passes) == 3 and result["render_seconds_per_image"] == sorted(passes)[1]


def test_quality_at_budget_runs_on_demo(tmp_path):
    out = tmp_path / "q.json"
    run_script("-m", "bench.quality_at_budget", "--config", ROOT / "configs" / "demo.txt", *TINY, *GRID,
               "--budget", "1.5", "--eval_every", "0.5", "--threads", "1", "--json", out)
    result = json.loads(out.read_text())
    assert set(result) >= {"final_psnr", "curve", "steps", "config"}
    assert result["steps"] > 0 and len(result["curve"]) >= 2
    assert result["curve"][-1][1] == result["final_psnr"] and result["curve"][-1][0] >= 1.5
    assert result["config"]["time_budget"] == 1.5  # the budget is the run's --time_budget
    assert result["split"] == "test" and result["n_views"] == 8  # the config's scene: the demo's 8 test views


def test_quality_at_budget_tunes_on_every_val_view(tmp_path):
    """--split val test scores all val views (testskip 1; the demo has 4) and the same test
    views as --split test (the config's --testskip 2: every other one)."""
    out = tmp_path / "q.json"
    run_script("-m", "bench.quality_at_budget", "--config", ROOT / "configs" / "demo.txt", *TINY, *GRID,
               "--testskip", "2", "--budget", "0.5", "--eval_every", "1", "--threads", "1", "--split", "val", "test",
               "--json", out)
    result = json.loads(out.read_text())
    assert result["split"] == "val" and result["n_views"] == 4 and result["config"]["testskip"] == 1
    assert result["final_psnr"] == result["splits"]["val"]["final_psnr"]
    assert result["splits"]["test"]["n_views"] == 4  # 8 test views, every 2nd, as without val


# ---------------------------------------------------------------- warm-up and the empty-grid guard
def test_grid_skips_nothing_during_warmup_nor_with_zero_density():
    """During warm-up every cell stays occupied whatever the density; afterwards cells
    are thresholded, except that an all-zero density (a network with no geometry yet)
    keeps the grid full instead of emptying it for good."""
    grid = OccupancyGrid([[-1.0] * 3, [1.0] * 3], resolution=8, warmup=3)
    blob = lambda p: (p.norm(dim=-1) < 0.5).float() * 100.0  # noqa: E731
    for _ in range(2):
        grid.update(blob)
        assert grid.occupied_fraction() == 1.0
    grid.update(blob)  # third update: warm-up over
    assert 0.0 < grid.occupied_fraction() < 0.2
    assert bool(grid.query(torch.zeros(1, 3))) and not bool(grid.query(torch.full((1, 3), 0.9)))

    dead = OccupancyGrid([[-1.0] * 3, [1.0] * 3], resolution=8, warmup=0)
    dead.update(lambda p: torch.zeros(p.shape[0]))
    assert dead.occupied_fraction() == 1.0


def test_warmup_samples_apply_only_while_the_grid_warms_up():
    """--occ_warmup_samples n: the training render takes n samples per ray during the
    warm-up's updates, N_samples afterwards; 0 (or no grid) leaves the options alone."""
    from types import SimpleNamespace
    from runs.training import warmup_options
    grid = OccupancyGrid([[-1.0] * 3, [1.0] * 3], resolution=4, warmup=2)
    opts = RenderOptions(N_samples=128, occupancy=grid)
    trainer = lambda n, g=grid: SimpleNamespace(args=SimpleNamespace(occ_warmup_samples=n), grid=g)  # noqa: E731
    assert warmup_options(trainer(32), opts).N_samples == 32
    assert warmup_options(trainer(0), opts) is opts and warmup_options(trainer(32, None), opts) is opts
    for _ in range(2):
        grid.update(lambda p: torch.ones(p.shape[0]))
    assert warmup_options(trainer(32), opts) is opts  # warm-up over


def test_warmup_forgets_a_transient_and_later_updates_hold_it():
    """Warm-up updates replace the density, later ones keep max(0.95 * old, new). Cells
    of side 0.25 and occ_thresh 0.5: threshold -ln(0.5) / 0.25 = 2.77 per world unit."""
    grid = OccupancyGrid([[-1.0] * 3, [1.0] * 3], resolution=8, occ_thresh=0.5, decay=0.95, warmup=2)
    assert abs(grid.density_thresh - math.log(2.0) / 0.25) < 1e-6
    spike = lambda p: torch.full((p.shape[0],), 100.0)  # noqa: E731
    blob = lambda p: (p.norm(dim=-1) < 0.5).float() * 100.0  # noqa: E731
    grid.update(spike)
    grid.update(blob)  # the last warm-up update: the blob alone, not max(95, blob)
    corner = 0  # cell [-1, -0.75]^3: outside the blob
    assert grid.density[corner] == 0.0 and 0.0 < grid.occupied_fraction() < 0.2
    grid.update(spike, all_cells=True)  # after warm-up the spike holds: 100, then 0.95 * 100
    grid.update(blob, all_cells=True)
    assert abs(float(grid.density[corner]) - 95.0) < 1e-4 and grid.occupied_fraction() == 1.0


def test_occ_grid_flag_takes_true_false():
    assert args_of(["--occ_grid"]).occ_grid is True
    assert args_of(["--occ_grid", "False"]).occ_grid is False
    assert args_of(["--occ_grid", "true"]).occ_grid is True
    assert args_of().occ_grid is False


def test_build_from_trained_thresholds_at_once():
    """eval.py's grid for a checkpoint without one: one full update, no warm-up."""
    grid = OccupancyGrid([[-1.0] * 3, [1.0] * 3], resolution=8, warmup=16)
    grid.build_from_trained(lambda p: (p.norm(dim=-1) < 0.5).float() * 100.0)
    assert 0.0 < grid.occupied_fraction() < 0.2 and grid.updates == 16


def test_quality_at_budget_thins_test_views_only_when_val_is_scored():
    """val loads every view (testskip 1) and the test views keep the config's stride (lego_cpu's
    25); a test-only run scores the test views as loaded, so a user's own --testskip is honoured."""
    from types import SimpleNamespace
    from bench.quality_at_budget import views_to_score
    scene = SimpleNamespace(splits={"train": np.arange(3), "val": np.arange(3, 11), "test": np.arange(11, 211)})
    both = views_to_score(scene, ["val", "test"], test_stride=25)
    assert list(both) == ["val", "test"] and both["val"].tolist() == list(range(3, 11))
    assert both["test"].tolist() == list(range(11, 211, 25))
    assert len(views_to_score(scene, ["test"], test_stride=1)["test"]) == 200


def test_quality_at_budget_decays_a_run_schedule_over_the_budget_not_the_configs_n_iters():
    """demo.txt trains 1000 steps; under a 300-s budget the lr of --lrate_schedule run
    (lrate_final 0.1) is 0.1 ** (150 / 300) = 0.3162 at 150 s, whatever the step. Without
    budget_only, step 2000 would be past N_iters and the lr at its floor, 0.1."""
    from bench.quality_at_budget import budget_only
    from runs.training import lr_factor
    args = parse_args(build_parser(), ["--config", str(ROOT / "configs" / "demo.txt"), "--lrate_schedule", "run",
                                       "--time_budget", "300"])
    assert args.N_iters == 1000 and lr_factor(args, lambda: 150.0)(2000) == pytest.approx(0.1)
    factor = lr_factor(budget_only(args), lambda: 150.0)
    assert factor(2000) == pytest.approx(0.31623, abs=1e-5)
    assert factor(10 ** 6) == pytest.approx(0.31623, abs=1e-5)  # still set by the clock


def test_quality_at_budget_refuses_to_tune_on_llff_test_views(tmp_path):
    """LLFF's val views are its test views: --split val is a one-line error naming the scene."""
    from tests.test_bad_input import llff_scene
    scene = llff_scene(tmp_path / "llff")
    proc = run_script("-m", "bench.quality_at_budget", "--config", ROOT / "configs" / "llff" / "fern.txt",
                      "--datadir", scene, "--budget", "1", "--split", "val", check=False)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines()[-1].startswith("error: ") and "--split test" in proc.stderr
