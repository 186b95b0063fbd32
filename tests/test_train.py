"""The trainer: optimizer groups, training on digits, resume-exactness, divergence, run.json, the CLI."""

from __future__ import annotations

import argparse
import io
import json
import math
import random
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from actlab.activations import get_act
from actlab.config import OPTIMIZERS, RunConfig
from actlab.train import engine
from actlab.train.command import add_parser, config_from_args, default_out_dir
from actlab.train.engine import EPOCH_KEYS, train
from actlab.train.optim import build_optimizer, decay_split
from actlab.train.progress import Progress
from actlab.train.state import rng_state, set_rng_state


def _tiny_net(act: str = "smu") -> nn.Module:
    f = get_act(act)
    return nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), f(), nn.Flatten(), nn.Linear(4 * 8 * 8, 10), f()
    )


# ------------------------------------------------------------------------------------------------
# optimizer


def test_decay_only_on_conv_and_linear_weights():
    net = _tiny_net("smu")
    decay, no_decay = decay_split(net)
    names = {id(p): n for n, p in net.named_parameters()}
    assert sorted(names[id(p)] for p in decay) == ["0.weight", "4.weight"]
    assert {names[id(p)] for p in no_decay} == {
        n for n in names.values() if n not in ("0.weight", "4.weight")
    }
    assert any(n.startswith("2.") for n in names.values())  # SMU really has parameters
    groups = build_optimizer(RunConfig(wd=5e-4), net).param_groups
    assert [g["weight_decay"] for g in groups] == [5e-4, 0.0]


def test_wd_all_decays_everything_like_mxnet():
    net = _tiny_net("prelu")
    (group,) = build_optimizer(RunConfig(wd=1e-4, wd_all=True), net).param_groups
    assert len(group["params"]) == len(list(net.parameters())) and group["weight_decay"] == 1e-4


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_every_optimizer_builds_steps_and_saves(name, tmp_path):
    torch.manual_seed(0)
    net = _tiny_net("smu")
    opt = build_optimizer(RunConfig(optimizer=name, lr=1e-3, momentum=0.9), net)
    before = [p.detach().clone() for p in net.parameters()]
    for _ in range(7):  # past Ranger's k=6 lookahead sync
        opt.zero_grad()
        net(torch.randn(4, 1, 8, 8)).square().mean().backward()
        opt.step()
    assert any(not torch.equal(a, b) for a, b in zip(before, net.parameters(), strict=True))
    torch.save(opt.state_dict(), tmp_path / "opt.pt")
    state = torch.load(tmp_path / "opt.pt", weights_only=True)
    build_optimizer(RunConfig(optimizer=name, lr=1e-3), _tiny_net("smu")).load_state_dict(state)


def test_ranger_is_radam_plus_lookahead_recipe():
    opt = build_optimizer(RunConfig(optimizer="ranger", lr=4e-3, wd=1e-2), _tiny_net())
    g = opt.param_groups[0]
    assert (g["alpha"], g["k"], g["betas"], g["eps"]) == (0.5, 6, (0.95, 0.99), 1e-6)
    opt = build_optimizer(RunConfig(optimizer="ranger", betas=(0.9, 0.999), eps=1e-5), _tiny_net())
    assert opt.param_groups[0]["betas"] == (0.9, 0.999) and opt.param_groups[0]["eps"] == 1e-5


# ------------------------------------------------------------------------------------------------
# training on digits (simple_cnn, CPU, one thread: a few tenths of a second per epoch)

FAST = RunConfig(epochs=4, lr=0.05, threads=1)
TIMING = ("seconds", "images_per_s")


def _strip_timing(epochs: list[dict]) -> list[dict]:
    return [{k: v for k, v in m.items() if k not in TIMING} for m in epochs]


@pytest.fixture(scope="module")
def full_run(tmp_path_factory):
    """One uninterrupted 4-epoch run, with the metrics its on_epoch callback saw."""
    out = tmp_path_factory.mktemp("full")
    seen: list[dict] = []
    return train(FAST, out, on_epoch=seen.append, progress=False), seen


def test_short_training_beats_chance(full_run):
    result, _ = full_run
    assert result.status == "done" and result.error is None
    assert [m["epoch"] for m in result.epochs] == [0, 1, 2, 3]
    assert result.final_val_acc > 0.5  # chance is 0.1
    assert result.best_val_acc == max(m["val_acc"] for m in result.epochs)
    assert result.epochs[result.best_epoch]["val_acc"] == result.best_val_acc
    for m in result.epochs:
        assert set(m) == set(EPOCH_KEYS)
        assert all(0 <= m[k] <= 1 for k in ("train_acc", "val_acc", "val_top5"))
        assert m["val_top5"] >= m["val_acc"] and m["lr"] == pytest.approx(0.05) and m["images_per_s"] > 0


def test_run_json_and_checkpoint_contents(full_run):
    result, seen = full_run
    doc = json.loads((result.out_dir / "run.json").read_text())
    assert doc["status"] == "done" and doc["run_id"] == FAST.run_id()
    assert RunConfig.from_dict(doc["config"]) == FAST
    assert doc["epochs"] == result.epochs == seen  # on_epoch saw exactly what was recorded
    s = doc["summary"]
    assert (s["best_val_acc"], s["best_epoch"], s["final_val_acc"]) == (
        result.best_val_acc, result.best_epoch, result.final_val_acc)  # fmt: skip
    assert s["epochs_done"] == 4 and s["seconds"] > 0
    assert {"actlab", "torch", "device", "device_name", "threads", "hostname", "python", "git_commit"} <= set(
        doc["env"]
    )
    ckpt = torch.load(result.out_dir / "checkpoint.pt", weights_only=True)
    assert {"model", "optimizer", "scaler", "epoch", "history", "rng", "config", "run_id"} <= set(ckpt)
    assert ckpt["epoch"] == 4 and ckpt["history"] == result.epochs
    assert {"torch", "cuda", "numpy", "python"} == set(ckpt["rng"])


def test_same_config_twice_gives_identical_metrics(full_run, tmp_path):
    again = train(FAST, tmp_path, progress=False)
    assert _strip_timing(again.epochs) == _strip_timing(full_run[0].epochs)


def test_resume_reproduces_uninterrupted_run(full_run, tmp_path):
    def stop_after_epoch_1(m):
        if m["epoch"] == 1:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(FAST, tmp_path, on_epoch=stop_after_epoch_1, progress=False)
    assert json.loads((tmp_path / "run.json").read_text())["status"] == "interrupted"
    assert torch.load(tmp_path / "checkpoint.pt", weights_only=True)["epoch"] == 2
    seen: list[dict] = []
    resumed = train(FAST, tmp_path, resume=True, on_epoch=seen.append, progress=False)
    assert [m["epoch"] for m in seen] == [2, 3]  # only the missing epochs ran
    assert resumed.status == "done"
    assert _strip_timing(resumed.epochs) == _strip_timing(full_run[0].epochs)


def test_resume_of_a_finished_run_does_not_train(full_run, monkeypatch):
    result, _ = full_run
    monkeypatch.setattr(engine, "_run", lambda *a, **k: pytest.fail("trained again"))
    again = train(FAST, result.out_dir, resume=True, progress=False)
    assert again.status == "done" and again.epochs == result.epochs


def test_resume_refuses_a_different_run(full_run):
    with pytest.raises(ValueError, match="belongs to run"):
        train(FAST.replace(seed=5), full_run[0].out_dir, resume=True, progress=False)


def test_nan_loss_marks_run_diverged_at_that_epoch(tmp_path, monkeypatch):
    # lr explodes from epoch 2 on: epochs 0 and 1 train normally, epoch 2's loss is not finite
    monkeypatch.setattr(engine, "lr_at", lambda cfg, step, n: 1e6 if step >= 2 * n else cfg.lr)
    seen: list[dict] = []
    result = train(FAST, tmp_path, on_epoch=seen.append, progress=False)
    assert result.status == "diverged" and "epoch 2" in result.error
    assert [m["epoch"] for m in result.epochs] == [0, 1, 2] == [m["epoch"] for m in seen]
    assert result.epochs[2]["train_loss"] is None and result.epochs[2]["val_acc"] is None
    assert result.epochs[1]["val_acc"] is not None and result.best_epoch in (0, 1)
    doc = json.loads((tmp_path / "run.json").read_text())  # strict JSON: no NaN written
    assert doc["status"] == "diverged" and len(doc["epochs"]) == 3
    assert torch.load(tmp_path / "checkpoint.pt", weights_only=True)["epoch"] == 2  # last good epoch


def test_val_every_and_fp16_amp_ignored_on_cpu(tmp_path):
    cfg = RunConfig(epochs=3, val_every=2, threads=1, amp="fp16", device="cpu")
    with pytest.warns(UserWarning, match="ignored on cpu"):
        result = train(cfg, tmp_path, progress=False)
    assert [m["val_acc"] is not None for m in result.epochs] == [False, True, True]  # last one always


def test_bf16_amp_on_cpu_autocasts_into_the_c_kernels(tmp_path, monkeypatch):
    """amp=bf16 on the CPU trains under autocast: the activations see bfloat16 (convolutions' outputs) and
    actlab's C kernels serve them; the weights and the result stay float32."""
    from actlab.activations import cpu_kernels

    seen = []
    forward = cpu_kernels.forward
    monkeypatch.setattr(
        cpu_kernels, "forward", lambda name, x, *a: seen.append(x.dtype) or forward(name, x, *a)
    )
    cfg = RunConfig(epochs=1, threads=1, amp="bf16", device="cpu", act="smu")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "ignored" warning
        result = train(cfg, tmp_path, progress=False)
    assert seen and set(seen) == {torch.bfloat16}
    assert result.status == "done" and math.isfinite(result.epochs[0]["train_loss"])
    state = torch.load(tmp_path / "checkpoint.pt", weights_only=True)["model"]
    assert {t.dtype for t in state.values() if t.is_floating_point()} == {torch.float32}


@pytest.mark.parametrize(
    ("overrides", "match"),
    [({"act": "swoosh"}, "unknown activation"), ({"model": "resnet9000"}, "unknown model"),
     ({"dataset": "imagenet42"}, "unknown data set")],
)  # fmt: skip
def test_bad_names_fail_before_training(overrides, match, tmp_path):
    with pytest.raises(ValueError, match=match):
        train(RunConfig(**overrides), tmp_path, progress=False)
    assert not (tmp_path / "run.json").exists()


def test_rng_state_round_trip():
    state = rng_state()
    a = (torch.rand(3), np.random.rand(3), random.random())
    set_rng_state(state)
    b = (torch.rand(3), np.random.rand(3), random.random())
    assert torch.equal(a[0], b[0]) and (a[1] == b[1]).all() and a[2] == b[2]


# ------------------------------------------------------------------------------------------------
# the command


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="actlab")
    add_parser(parser.add_subparsers(dest="command"))
    return parser


def test_flags_map_to_config(monkeypatch):
    monkeypatch.delenv("ACTLAB_DATA", raising=False)
    args = _parser().parse_args(
        ["train", "--model", "mlp", "--act", "smu(alpha=0.25, mu=1e6)", "--batch-size", "64", "--lr", "0.2",
         "--lr-steps", "10,20,30", "--lr-factor", "0.5", "--momentum", "0.8", "--wd", "5e-4",
         "--epochs", "40",
         "--seed", "7", "--optimizer", "ranger", "--schedule", "flat_cos", "--flat-pct", "0.75",
         "--warmup-epochs", "1", "--label-smoothing", "0.1", "--amp", "bf16", "--channels-last",
         "--device", "cpu", "--model-kwargs", "depth=3,width=32,norm=bn", "--augment", "flip",
         "--betas", "0.95,0.99", "--wd-all"]
    )  # fmt: skip
    cfg = config_from_args(args)
    assert cfg == RunConfig(
        model="mlp", act="smu(alpha=0.25, mu=1e6)", batch_size=64, lr=0.2, lr_steps=(10, 20, 30),
        lr_factor=0.5, momentum=0.8, wd=5e-4, epochs=40, seed=7, optimizer="ranger", schedule="flat_cos",
        flat_pct=0.75,
        warmup_epochs=1.0, label_smoothing=0.1, amp="bf16", channels_last=True, device="cpu",
        model_kwargs={"depth": 3, "width": 32, "norm": "bn"}, augment="flip", betas=(0.95, 0.99), wd_all=True,
    )  # fmt: skip
    assert config_from_args(_parser().parse_args(["train"])) == RunConfig()  # no flags: RunConfig defaults
    monkeypatch.setenv("ACTLAB_DATA", "/data")
    assert config_from_args(_parser().parse_args(["train"])).data_dir == "/data"
    assert default_out_dir(cfg) == Path("runs/mlp-smu_alpha=0.25_mu=1e6-digits-s7")


def test_command_trains_and_reports(tmp_path, capsys):
    args = _parser().parse_args(
        ["train", "--epochs", "2", "--threads", "1", "--out", str(tmp_path), "--quiet"]
    )
    assert args.func(args) == 0
    assert "done: run" in capsys.readouterr().out
    assert json.loads((tmp_path / "run.json").read_text())["status"] == "done"


def test_command_returns_1_when_diverged(tmp_path, capsys):
    args = _parser().parse_args(
        ["train", "--epochs", "1", "--lr", "1e6", "--threads", "1", "--out", str(tmp_path)]
    )
    assert args.func(args) == 1
    assert "diverged" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("argv", "match"),
    [(["--act", "swoosh"], "unknown activation 'swoosh'"), (["--model", "nope"], "unknown model 'nope'"),
     (["--epochs", "0"], "RunConfig.epochs=0"), (["--dataset", "cifar10"], "cifar10"),
     (["--model-kwargs", "depth=3"], "has no keyword")],
)  # fmt: skip
def test_command_user_errors_return_2(argv, match, tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("ACTLAB_DATA", raising=False)
    args = _parser().parse_args(
        ["train", *argv, "--data-dir", str(tmp_path / "nodata"), "--out", str(tmp_path)]
    )
    assert args.func(args) == 2
    err = capsys.readouterr().err
    assert err.startswith("actlab: error: ") and match in err and "Traceback" not in err


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_status_line_on_tty_and_plain_lines_otherwise():
    m = {"epoch": 0, "train_loss": 1.0, "train_acc": 0.5, "val_loss": None, "val_acc": None, "val_top5": None,
         "lr": 0.1, "seconds": 1.0, "images_per_s": 100.0}  # fmt: skip
    tty, plain = _Tty(), io.StringIO()
    for stream in (tty, plain):
        p = Progress(True, epochs=2, stream=stream, interval=0.0)
        p.batch(0, 0, 3, lambda: 2.5)
        p.epoch(m)
    assert "\repoch 0/1  batch 1/3  loss 2.5000" in tty.getvalue() and "\r" not in plain.getvalue()
    assert plain.getvalue() == "epoch 0/1  train loss 1.0000 acc 0.5000  lr 0.1  1.0s  100 img/s\n"
    silent = io.StringIO()
    Progress(False, epochs=2, stream=silent).epoch(m)
    assert silent.getvalue() == ""


def test_real_model_groups_spare_activation_params():
    from actlab.models import get_model

    net = get_model("simple_cnn", 10, 1, act="smu")
    decay, no_decay = decay_split(net)
    act_params = {id(p) for m in net.modules() if type(m).__name__ == "SMU" for p in m.parameters()}
    assert act_params and act_params <= {id(p) for p in no_decay}
    assert all(p.ndim >= 2 for p in decay) and all(p.ndim == 1 or id(p) in act_params for p in no_decay)


def test_metrics_and_summary_fit_the_results_store(full_run, tmp_path):
    from actlab.results import ResultsStore

    result, seen = full_run
    with ResultsStore(tmp_path) as store:
        store.add_runs("s", [{"run_id": result.run_id, "config": result.config.to_dict()}])
        assert store.claim_next("s")["run_id"] == result.run_id
        for m in seen:
            store.record_epoch(result.run_id, m)
        store.finish(result.run_id, result.status, result.summary())
        row = store.get_run(result.run_id)
        assert (row["status"], row["best_val_acc"], row["best_epoch"]) == (
            "done",
            result.best_val_acc,
            result.best_epoch,
        )
        assert [e["val_acc"] for e in store.epochs(result.run_id)] == [m["val_acc"] for m in seen]
