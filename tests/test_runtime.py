"""utils/runtime.py: process-wide numeric settings."""
import pytest
import torch

from tests.conftest import run_script
from utils.runtime import configure_backend, cpu_has_fast_bf16


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


def test_train_configures_the_backend_before_any_thread_starts():
    """x86's flush-to-zero flag is per thread: intra-op threads started before
    configure_backend keep subnormals (measured: half of a 4M-element product was left
    unflushed on 2 threads when one parallel op ran first). In train.py's order (imports,
    flags, then configure_backend) every thread flushes 1e-20 * 1e-20, and a first
    parallel sin equals the one-thread sin bit for bit (without configure_backend's
    one-thread warm-up the second thread's half differed in 10 of 40 processes)."""
    if not torch.set_flush_denormal(False):
        pytest.skip("this CPU has no flush-to-zero flag")
    code = ("import torch, train\n"
            "from utils.config import build_parser, parse_args\n"
            "from utils.runtime import configure_backend, select_device\n"
            "args = parse_args(build_parser(), ['--dataset_type', 'demo'])\n"
            "configure_backend(select_device(args.device))\n"
            "torch.set_num_threads(2)\n"
            "z = torch.linspace(-512, 512, 15360)\n"
            "two = z.sin()\n"
            "x = torch.full((4_000_000,), 1e-20)\n"
            "print('unflushed', int(((x * x) != 0).sum()))\n"
            "torch.set_num_threads(1)\n"
            "print('sin differs', int((z.sin() != two).sum()))\n")
    proc = run_script("-c", code)
    assert proc.stdout.strip().splitlines()[-2:] == ["unflushed 0", "sin differs 0"], proc.stdout


def test_fit_image_configures_the_backend_before_any_tensor_work(tmp_path):
    """fit_image.py is an entry point too: without configure_backend its gauss and wire
    fits ran on subnormals (measured, same session: gauss 54.2 s against 21.5 s, wire
    176.8 against 37.8) and its sin/cos on the unwarmed vector math. The script runs in
    a subprocess with both functions replaced, to record their order."""
    code = ("import os, runpy, sys\n"
            "import utils.runtime, runs.image_fit\n"
            "calls = []\n"
            "utils.runtime.configure_backend = lambda device: calls.append('backend ' + device.type)\n"
            "def load_image(*args, **kwargs):\n"
            "    calls.append('load_image')\n"
            "    print(calls, flush=True)\n"
            "    os._exit(0)\n"
            "runs.image_fit.load_image = load_image\n"
            f"sys.argv = ['fit_image.py', '--out', {str(tmp_path / 'out')!r}]\n"
            "runpy.run_path('fit_image.py', run_name='__main__')\n")
    proc = run_script("-c", code)
    assert proc.stdout.strip().splitlines()[-1] == "['backend cpu', 'load_image']", proc.stdout


def test_amp_on_cpu_is_bf16_with_hardware_else_fp32_with_a_note(monkeypatch, capsys):
    from utils import runtime
    assert runtime.amp_dtype(torch.device("cpu"), False) is None
    monkeypatch.setattr(runtime, "cpu_has_fast_bf16", lambda: True)
    assert runtime.amp_dtype(torch.device("cpu"), True) == torch.bfloat16
    monkeypatch.setattr(runtime, "cpu_has_fast_bf16", lambda: False)
    assert runtime.amp_dtype(torch.device("cpu"), True) is None
    assert "note: --amp is off" in capsys.readouterr().out


def test_padded_chunks_give_the_unpadded_values_and_gradients():
    """RadianceField pads each chunk to a multiple of ROW_BUCKET rows and drops the padding:
    outputs and parameter gradients equal the MLP's on the unpadded points."""
    from models.activations import ActivationConfig
    from models.encoding import PositionalEncoding
    from models.nerf import ROW_BUCKET, NeRF, RadianceField
    gen = torch.Generator().manual_seed(0)
    embed_pts, embed_dirs = PositionalEncoding(3, 6), PositionalEncoding(3, 2)
    mlp = NeRF(3, 32, embed_pts.out_dim, embed_dirs.out_dim, act=ActivationConfig("relu"), generator=gen)
    field = RadianceField(mlp, embed_pts, embed_dirs, netchunk=2 * ROW_BUCKET)
    n = 3 * ROW_BUCKET - 57  # a full chunk, then a part chunk that gets 57 rows of padding
    pts, dirs = torch.randn(n, 3, generator=gen), torch.randn(n, 3, generator=gen)
    rgb, sigma = field(pts, dirs)
    (rgb.square().sum() + sigma.sum()).backward()
    grads = [p.grad.clone() for p in mlp.parameters()]
    mlp.zero_grad()
    rgb_ref, sigma_ref = mlp(embed_pts(pts), embed_dirs(dirs))
    (rgb_ref.square().sum() + sigma_ref.sum()).backward()
    assert rgb.shape == (n, 3) and sigma.shape == (n,)
    assert torch.allclose(rgb, rgb_ref, atol=1e-5) and torch.allclose(sigma, sigma_ref, atol=1e-5)
    for g, p in zip(grads, mlp.parameters()):
        assert torch.allclose(g, p.grad, atol=1e-4, rtol=1e-4)


@pytest.mark.skipif(not cpu_has_fast_bf16(), reason="this CPU has no bf16 matrix hardware (--amp falls back to fp32 here)")
def test_amp_training_on_cpu_runs_in_bf16_and_stays_finite(tmp_path):
    """A tiny --amp --random_bkgd run trains, checkpoints finite fp32 weights and evaluates."""
    from tests.conftest import run_script, tiny_args
    out = run_script("train.py", "--basedir", tmp_path, "--expname", "amp", *tiny_args(16, N_rand=64),
                     "--N_iters", "30", "--amp", "--random_bkgd", "--i_print", "10")
    assert "note: --amp is off" not in out.stdout
    ckpt = torch.load(tmp_path / "amp" / "ckpt_0000030.pt", weights_only=True)
    for name, value in ckpt["models"]["fine"].items():
        assert value.dtype == torch.float32 and torch.isfinite(value).all(), name
    run_script("eval.py", "--run", tmp_path / "amp", "--no_path")
