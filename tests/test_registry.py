"""Finding activations by name, spec strings, factories, user registration, and swapping them in."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import actlab
from actlab.activations import SMU, Swish, get_act, list_acts, parse_spec, register_act, swap_acts
from actlab.activations.registry import _REGISTRY, _key

ISSUE_NAMES = {
    "relu", "leaky_relu", "prelu", "rrelu", "elu", "celu", "selu", "softplus", "gelu", "hard_swish",
    "identity", "swish", "silu", "mish", "smu", "smu1", "smu_v1", "smu1_v1", "smooth_max", "tanhsoft",
    "eis", "erfact", "pserf", "serf", "tanhexp", "logish", "pau",
}  # fmt: skip


def test_every_required_name_is_registered():
    assert set(actlab.list_acts()) >= ISSUE_NAMES


def test_spec_strings_set_keywords():
    smu = get_act("smu(alpha=0.25, mu=1e6)")()
    assert isinstance(smu, SMU) and smu.alpha.item() == 0.25 and smu.mu.item() == 1e6
    swish = get_act("swish(beta=1.5, learnable=True)")()
    assert isinstance(swish.beta, nn.Parameter) and swish.beta.item() == 1.5
    assert get_act("SMU")().mu.item() == 2.5  # Keras-style activation='SMU'
    assert isinstance(get_act("LeakyReLU")(), nn.LeakyReLU)
    assert get_act("smu_v1")().alpha.item() == 0.25
    assert get_act("smu1_v1")().mu.item() == pytest.approx(4.352665993287951e-9)
    assert get_act("smu1")().mu.item() == pytest.approx(4.332461424154261e-9)


def test_factories_build_fresh_modules_each_call():
    for spec in ("smu", SMU, Swish(learnable=True), lambda: SMU(mu=3.0)):
        factory = get_act(spec)
        a, b = factory(), factory()
        assert a is not b
        params_a, params_b = list(a.parameters()), list(b.parameters())
        assert all(p is not q for p, q in zip(params_a, params_b, strict=True))


def test_factory_spec_round_trips():
    factory = get_act("smu(alpha=0.25)")
    assert factory.spec == "smu(alpha=0.25)"
    assert get_act(factory.spec)().alpha.item() == 0.25


def test_unknown_name_lists_closest_matches():
    with pytest.raises(ValueError, match=r"unknown activation 'mishh'.*Did you mean mish"):
        get_act("mishh")


def test_bad_keyword_lists_valid_ones():
    with pytest.raises(
        ValueError, match=r"no keyword 'beat'.*valid keywords: beta, learnable, num_parameters"
    ):
        get_act("swish(beat=2)")


@pytest.mark.parametrize(
    "spec, message",
    [
        ("gelu(approximate='fast')", "approximate must be 'none' or 'tanh'"),
        ("smooth_max(form='cube')", "form must be 'erf' or 'sqrt'"),
        ("swish(num_parameters=4)", "needs learnable=True"),
        ("eis(beta=0.0, delta=0.0)", "beta \\+ delta > 0"),
        ("tanhsoft(gamma=-1.0)", "gamma > 0"),
        ("smu(1, 2)", "keywords only"),
        ("smu(alpha=x)", "literals"),
        ("smu(", "cannot parse"),
    ],
)
def test_bad_values_raise_value_error(spec, message):
    with pytest.raises(ValueError, match=message):
        get_act(spec)


def test_parse_spec():
    assert parse_spec("smu(alpha=0.25, mu=1e6)") == ("smu", {"alpha": 0.25, "mu": 1e6})
    assert parse_spec("  mish ") == ("mish", {})


def test_bad_spec_type():
    with pytest.raises(TypeError, match="act must be"):
        get_act(3)


def test_register_act_user_activation():
    class Square(nn.Module):
        def __init__(self, scale: float = 1.0) -> None:
            super().__init__()
            self.scale = scale

        def forward(self, x):
            return self.scale * x * x

    try:
        register_act("test_square", Square, formula="s·x²")
        assert "test_square" in list_acts()
        assert get_act("test_square(scale=2.0)")()(torch.tensor(3.0)).item() == 18.0
        with pytest.raises(ValueError, match="already registered"):
            register_act("test_square", Square)
    finally:
        _REGISTRY.pop(_key("test_square"), None)


def test_register_act_as_decorator():
    try:

        @register_act("test_cube")
        class Cube(nn.Module):
            def forward(self, x):
                return x**3

        assert isinstance(get_act("test_cube")(), Cube)
    finally:
        _REGISTRY.pop(_key("test_cube"), None)


# ------------------------------------------------------------------------------------------------
# swap_acts


class Nested(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(inplace=True))
        self.blocks = nn.ModuleList(
            [nn.Sequential(nn.Conv2d(4, 4, 3, padding=1), nn.ReLU()) for _ in range(2)]
        )
        self.head = nn.Linear(4, 3)
        self.gate = nn.GELU()

    def forward(self, x):
        x = self.stem(x)
        for block in self.blocks:
            x = block(x)
        x = F.relu(x) + x.relu()  # functional ReLUs too
        return self.head(self.gate(x).mean((2, 3)))


def test_swap_acts_replaces_modules_and_functional_calls():
    model = Nested()
    x = torch.randn(2, 1, 8, 8)
    count = swap_acts(model, "smu")
    assert count == 5  # 3 modules + F.relu + Tensor.relu
    smus = [m for m in model.modules() if isinstance(m, SMU)]
    assert len(smus) == 5 and len({id(m.mu) for m in smus}) == 5
    assert not any(isinstance(m, nn.ReLU) for m in model.modules())
    assert isinstance(model.gate, nn.GELU)  # not in replace=
    y = model(x)
    y.sum().backward()
    assert all(m.mu.grad is not None for m in smus)  # the swapped-in modules are really used
    names = {n for n, _ in model.named_parameters()}
    assert any(n.startswith("swapped_act_") for n in names)  # and the optimizer sees their parameters


def test_swap_acts_other_types_and_errors():
    model = Nested()
    assert swap_acts(model, "mish", replace=(nn.GELU,)) == 1
    with pytest.raises(ValueError, match="found no GELU"):
        swap_acts(model, "mish", replace=(nn.GELU,))
    with pytest.raises(ValueError, match="unknown activation"):
        swap_acts(Nested(), "nope")


def test_swap_acts_untraceable_model_still_swaps_modules():
    class Branchy(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.act = nn.ReLU()

        def forward(self, x):
            if x.sum() > 0:  # data-dependent: torch.fx cannot trace this
                return self.act(x)
            return F.relu(-x)

    model = Branchy()
    assert swap_acts(model, "mish") == 1
    assert model(torch.ones(3)).shape == (3,)
