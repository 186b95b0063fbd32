"""CUDA-only checks: activations (the fused Triton path too) agree with the CPU, AMP and channels_last
training runs, the data stays on the device, the bench runs. Skipped where there is no CUDA device."""

from __future__ import annotations

import json

import pytest
import torch

from actlab import bench
from actlab.activations import fused, get_act
from actlab.config import RunConfig
from actlab.data import DeviceLoader, load_dataset
from actlab.train.engine import train

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")

SPECS = [
    "silu",
    "swish(learnable=True)",  # a scalar parameter: its gradient summed by rows (fused.by_rows)
    "swish(learnable=True, num_parameters=16)",
    "mish",
    "gelu",
    "smu",
    "smu1",
    "tanhsoft",
    "pau",
    "softplus",
    "prelu(num_parameters=16)",
    "selu",
]


@pytest.mark.parametrize("fast", [False, True], ids=["eager", "fused"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("spec", SPECS)
def test_cuda_matches_cpu(spec, dtype, fast):
    torch.manual_seed(0)
    x = (torch.randn(8, 16, 32, 32) * 4).to(dtype)
    x[0, 0, 0, :4] = torch.tensor([float("inf"), float("-inf"), 3e38, -3e38]).to(dtype)
    cpu_act = get_act(spec)()
    cuda_act = get_act(spec)().cuda()
    # A finite upstream gradient: with y² as the loss, y = ±inf sends inf·0 = nan into the parameter sums.
    weight = torch.randn(x.shape)
    xc, xg = x.clone().requires_grad_(), x.cuda().requires_grad_()
    with fused.use_fused(False):
        yc = cpu_act(xc)
        yc.float().backward(weight)
    with fused.use_fused(fast):
        yg = cuda_act(xg)
        yg.float().backward(weight.cuda())
    tol = 1e-5 if dtype == torch.float32 else 1e-2
    torch.testing.assert_close(yg.cpu().float(), yc.float(), rtol=tol, atol=tol)
    torch.testing.assert_close(xg.grad.cpu().float(), xc.grad.float(), rtol=tol, atol=tol)
    for pc, pg in zip(cpu_act.parameters(), cuda_act.parameters(), strict=True):
        torch.testing.assert_close(pg.grad.cpu(), pc.grad, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("layout", ["channels_last", "rows_of_16", "transposed"])
@pytest.mark.parametrize("spec", ["silu", "swish(learnable=True)"])
def test_fused_views_keep_each_layout(spec, layout):
    """x enters the Triton kernels as rows of 1024 or 16 (``fused.aligned_row``), or as it is; y and grad_x
    come back in x's layout either way."""
    x = torch.randn(8, 16, 32, 32, device="cuda") * 4
    if layout == "channels_last":
        x = x.contiguous(memory_format=torch.channels_last)
    elif layout == "rows_of_16":
        x = x.flatten()[:4000].clone()  # 4000 = 250·16
    else:
        x = x.transpose(2, 3)
    act = get_act(spec)().cuda()
    results = []
    for on in (True, False):
        leaf = x.clone().requires_grad_()
        with fused.use_fused(on, min_numel=0):
            y = act(leaf)
            y.backward(torch.ones_like(y))
        results.append((y.detach(), leaf.grad, *(p.grad.clone() for p in act.parameters())))
        assert y.stride() == x.stride() and leaf.grad.stride() == x.stride()
        act.zero_grad()
    torch.testing.assert_close(results[0], results[1], rtol=1e-5, atol=1e-5)


def test_triton_kernels_are_exact_in_the_tails():
    """Triton must contract the FMA that recovers t²'s rounding error (``fused._square_rounding_error``)."""
    from test_fused import check_compiled_tails

    check_compiled_tails("cuda")


def test_loader_keeps_data_on_the_device():
    data = load_dataset("digits")
    xb, yb = next(
        iter(DeviceLoader(data, "train", 64, device="cuda", train=True, seed=0, channels_last=True))
    )
    assert xb.is_cuda and yb.is_cuda and xb.shape == (64, 1, 8, 8)


@pytest.mark.parametrize("amp", ["bf16", "fp16"])
def test_training_with_amp_and_channels_last(tmp_path, amp):
    cfg = RunConfig(act="smu", epochs=2, device="cuda", amp=amp, channels_last=True, lr=0.05)
    result = train(cfg, tmp_path / amp, progress=False)
    assert result.status == "done" and result.best_val_acc > 0.3
    run = json.loads((tmp_path / amp / "run.json").read_text())
    assert run["env"]["device"].startswith("cuda") and run["config"]["amp"] == amp


def test_bench_runs_on_cuda(capsys):
    argv = ["--size", "65536", "--repeats", "small", "--device", "cuda", "--acts", "mish", "smu", "--json"]
    assert bench.main(argv) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["rows"] and all(not r["error"] for r in out["rows"])
