"""The trainer: optimizer groups, training on digits, resume-exactness, divergence, run.json, the CLI."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from actlab.activations import get_act
from actlab.config import OPTIMIZERS, RunConfig
from actlab.train.optim import build_optimizer, decay_split


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
