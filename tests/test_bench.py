"""``actlab bench`` runs in a tiny configuration; its timings are not asserted (targets live in the bench)."""

from __future__ import annotations

import argparse
import itertools
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from actlab import bench
from actlab.activations import fused

TINY = ["--size", "4096", "--repeats", "small", "--threads", "1"]


def _json(capsys, argv: list[str]) -> dict:
    assert bench.main([*argv, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_activation_bench_json(capsys):
    impls = ["actlab", "inductor", "eager", "naive", "native"]
    out = _json(capsys, [*TINY, "--acts", "relu", "silu", "smu", "--impls", *impls])
    rows = {(r["act"], r["impl"]): r for r in out["rows"]}
    assert set(rows) == {
        ("relu", "native"),
        ("silu", "actlab"),
        ("silu", "inductor"),
        ("silu", "eager"),
        ("silu", "naive"),
        ("silu", "native"),
        ("smu", "actlab"),
        ("smu", "inductor"),
        ("smu", "eager"),
        ("smu", "naive"),
    }
    assert "C kernels" in out["machine"]["fused"]  # which path 'actlab' took is in the report
    assert all(not r["error"] and r["fwd_ms"] > 0 and r["fwdbwd_ms"] > 0 for r in rows.values())
    # the ×silu reference, timed in passes alternating with each row
    assert all(r["silu_ms"] > 0 for r in rows.values())
    # memory is deterministic: actlab keeps the input only; naive SMU keeps several intermediates
    assert rows[("smu", "actlab")]["saved_bytes_per_elem"] == pytest.approx(4.0, abs=0.1)
    assert rows[("smu", "naive")]["saved_bytes_per_elem"] >= 12
    assert out["roofline"]["copy_gbs"] > 0
    assert "allocator" in out["machine"] and out["config"]["shape"] == [4096]


def test_compiled_naive_and_table(capsys):
    assert bench.main([*TINY, "--acts", "mish", "--impls", "naive", "compiled", "--shape", "4,32,32"]) == 0
    text = capsys.readouterr().out
    assert "copy roofline" in text and "allocator" in text
    lines = [ln for ln in text.splitlines() if ln.startswith("mish")]
    assert [ln.split()[1] for ln in lines] == ["naive", "compiled"]
    assert "error" not in text


def test_model_bench_ratios_to_relu(capsys):
    with fused.use_fused(True, min_numel=1 << 30):  # eager ops: no compiling for a 4-D shape here
        out = _json(capsys, [*TINY, "--model", "cnn4", "--batch", "2", "--acts", "mish", "smu"])
    rows = {(r["act"], r["impl"]): r for r in out["model_rows"]}
    assert {
        ("relu", "native"),
        ("mish", "actlab"),
        ("mish", "eager"),
        ("mish", "native"),
        ("smu", "actlab"),
    } <= set(rows)
    assert rows[("relu", "native")]["ratio_to_relu"] == 1.0
    assert all(not r["error"] and math.isfinite(r["ratio_to_relu"]) for r in rows.values())
    for row in rows.values():  # each ratio is against the ReLU step timed next to that row
        assert row["relu_ms"] > 0 and row["ratio_to_relu"] == pytest.approx(row["step_ms"] / row["relu_ms"])
        if row["act"] != "relu":  # the passes' own ratios bracket the reported one
            lo, hi = row["ratio_range"]
            assert lo <= row["ratio_to_relu"] * (1 + 1e-9) and row["ratio_to_relu"] <= hi * (1 + 1e-9)


def test_paired_timer_alternates_its_passes():
    calls: list[str] = []
    fn_s, ref_s = bench._paired_timer(
        lambda: calls.append("fn"), lambda: calls.append("ref"), bench.BenchConfig(repeats="small")
    )
    assert fn_s > 0 and ref_s > 0
    switches = sum(a != b for a, b in itertools.pairwise(calls))
    assert calls[0] == "ref" and switches == 2 * bench.TIMING_PASSES - 1  # ref, fn, ref, fn, ref, fn


def test_cuda_timings_wait_for_the_device(monkeypatch):
    """On CUDA the clock synchronizes first (a bare host clock times the launches alone); CPU clocks don't."""
    waits: list[int] = []
    monkeypatch.setattr(torch.cuda, "synchronize", lambda *a: waits.append(1))
    before = bench._clock("cuda")()
    assert waits == [1] and bench._clock("cuda", "wall")() >= before
    bench._clock("cpu")()
    bench._clock("cpu", "process")()
    assert waits == [1, 1]


def test_process_timer_is_refused_on_cuda():
    with pytest.raises(SystemExit, match="--timer wall on cuda"):
        bench.main(["--device", "cuda", "--timer", "process"])


def test_progress_goes_to_stderr(capsys):
    assert bench.main([*TINY, "--acts", "silu", "--impls", "actlab", "--json"]) == 0
    out, err = capsys.readouterr()
    assert json.loads(out)["rows"] and "bench: silu actlab: first call" in err


def test_model_bench_takes_only_the_implementations_asked_for(capsys):
    argv = [*TINY, "--model", "cnn4", "--batch", "2", "--acts", "relu", "mish", "--impls", "actlab"]
    out = _json(capsys, argv)
    assert [(r["act"], r["impl"]) for r in out["model_rows"]] == [("relu", "native"), ("mish", "actlab")]


def test_model_bench_with_a_registered_model(capsys):
    pytest.importorskip("actlab.models")
    out = _json(
        capsys, [*TINY, "--model", "simple_cnn", "--batch", "2", "--acts", "relu", "swish(learnable=True)"]
    )
    assert [r["act"] for r in out["model_rows"]] == ["relu", "swish(learnable=True)", "swish(learnable=True)"]
    assert all(not r["error"] for r in out["model_rows"]), out["model_rows"]


def test_parse_shape():
    assert bench.parse_shape("4096") == (4096,)
    assert bench.parse_shape("2^22") == (1 << 22,)
    assert bench.parse_shape("2**10") == (1024,)
    assert bench.parse_shape("8,3,32x32") == (8, 3, 32, 32)
    for bad in ("", "0", "a,b", "-4"):
        with pytest.raises(argparse.ArgumentTypeError):
            bench.parse_shape(bad)


def test_add_parser_registers_the_subcommand():
    parser = argparse.ArgumentParser(prog="actlab")
    sub = parser.add_subparsers(dest="command")
    bench.add_parser(sub)
    args = parser.parse_args(["bench", "--acts", "mish", "--size", "2^12", "--dtype", "bfloat16", "--json"])
    assert args.func is bench.run_from_args
    cfg = bench.config_from_args(args)
    assert cfg.acts == ("mish",) and cfg.shape == (4096,) and cfg.dtype == "bfloat16"
    model_cfg = bench.config_from_args(parser.parse_args(["bench", "--model", "simple_cnn"]))
    assert model_cfg.acts == bench.MODEL_ACTS


def test_bfloat16_bench_runs(capsys):
    """bfloat16 rows, torch's PReLU among them (its weight in the input's dtype: it refuses float32's)."""
    argv = [
        *TINY,
        "--dtype",
        "bfloat16",
        "--acts",
        "swish(learnable=True)",
        "prelu",
        "--impls",
        "actlab",
        "native",
    ]
    rows = _json(capsys, argv)["rows"]
    assert [(r["act"], r["impl"]) for r in rows] == [
        ("swish(learnable=True)", "actlab"),
        ("prelu", "actlab"),
        ("prelu", "native"),
    ]
    for row in rows:
        assert not row["error"] and row["saved_bytes_per_elem"] == pytest.approx(2.0, abs=0.1), row


def test_allocator_setting_reports_the_environment(monkeypatch):
    monkeypatch.setenv("MALLOC_MMAP_THRESHOLD_", "123")
    assert bench.allocator_setting()["MALLOC_MMAP_THRESHOLD_"] == "123"
    assert torch.get_num_threads() >= 1


def test_allocator_preset_reruns_the_bench_with_its_environment(monkeypatch):
    calls = []
    monkeypatch.setattr(bench.os, "execve", lambda exe, argv, env: calls.append((argv, env)))
    monkeypatch.delenv("THP_MEM_ALLOC_ENABLE", raising=False)
    bench._reexec_with("thp", ["bench", "--acts", "mish", "--allocator", "thp", "--json"])
    ((argv, env),) = calls
    assert argv[1:] == ["-m", "actlab.bench", "--acts", "mish", "--json"]
    assert env["THP_MEM_ALLOC_ENABLE"] == "1"


def test_ratio_to_the_native_op_cancels_a_drift_of_the_machine_between_rows():
    # the machine got 20 % slower between the two rows: F.silu next to each says so
    rows = [
        bench.Row("mish", "actlab", fwdbwd_ms=12.0, silu_ms=12.0),
        bench.Row("mish", "native", fwdbwd_ms=10.0, silu_ms=10.0),
        bench.Row("smu", "actlab", fwdbwd_ms=15.0, silu_ms=10.0),
    ]
    ratios = bench._ratios(rows)
    assert ratios[("mish", "actlab")] == (1.0, 1.0)  # not 12/10
    assert ratios[("mish", "native")] == (1.0, 1.0)
    vs_silu, vs_native = ratios[("smu", "actlab")]
    assert vs_silu == 1.5 and math.isnan(vs_native)  # no native SMU


def test_device_scripts_run_here(tmp_path):
    """tools/cuda_profile.py and tools/cuda_check.sh (made for a lent GPU) run on the CPU as a dry run."""
    root = Path(__file__).resolve().parents[1]
    env = {**os.environ, "DEVICE": "cpu", "SHAPE": "4096", "OUT": str(tmp_path)}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    prof = subprocess.run(
        [sys.executable, "tools/cuda_profile.py", "--device", "cpu", "--numel", "4096", "silu"],
        cwd=root, env=env, capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert "== silu: 5 steps of 4096 elements" in prof.stdout
    check = subprocess.run(
        ["bash", "tools/cuda_check.sh", "bf16"], cwd=root, env=env, capture_output=True, text=True, check=True
    )
    assert "== bench bf16 rc=0" in check.stdout and "mish" in check.stdout, check.stdout
    assert json.loads((tmp_path / "bf16.json").read_text())["config"]["dtype"] == "bfloat16"
