"""The model zoo: every registered model × several activations, plus golden parameter counts and errors."""

from __future__ import annotations

import contextlib
import functools

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from actlab.activations import ActFactory, get_act
from actlab.models import get_model, list_models, register_model
from actlab.models.resnet import PadShortcut
from actlab.models.xresnet import SimpleSelfAttention

try:  # the compiled fused activation kernels are optional (actlab.activations.fused)
    from actlab.activations.fused import use_fused
except ImportError:  # pragma: no cover

    def use_fused(enabled: bool = True) -> contextlib.AbstractContextManager:
        return contextlib.nullcontext()


NUM_CLASSES = 5
ACTS = ["relu", "mish", "smu", "swish(learnable=True)"]

# Places each architecture has an activation, counted from the papers' layouts (not from the code).
EXPECTED_ACTS = {
    **{
        f"vgg{d}{bn}": convs + 2 for d, convs in ((11, 8), (13, 10), (16, 13), (19, 16)) for bn in ("", "_bn")
    },
    **{f"resnet{d}": 1 + 2 * 3 * (d - 2) // 6 for d in (20, 32, 44, 56, 110)},  # stem + 2 per block
    "preact_resnet18": 2 * 8 + 1,  # 2 per basic block + final BN-act
    "preact_resnet50": 3 * 16 + 1,  # 3 per bottleneck + final BN-act
    # stem + 3 per strided unit (3 of them) + 2 per other unit (3 + 7 + 3) + last conv
    **{f"shufflenet_v2_{w}": 1 + 3 * 3 + 2 * 13 + 1 for w in ("x0_5", "x1_0", "x1_5", "x2_0")},
    "squeezenet": 1 + 3 * 8 + 1,  # stem + 3 per fire module + the class conv
    "xresnet18": 3 + 2 * 8,  # 3 stem convs + 2 per basic block (one after the add)
    "xresnet34": 3 + 2 * 16,
    "xresnet50": 3 + 3 * 16,  # 3 per bottleneck
    "mlp": 2,  # default depth 2
    "mnist_depth": 2 + 12,  # both convs + default 12 dense blocks
    "simple_cnn": 3,
}
# Inputs: 16×16 keeps the matrix fast (every conv model takes it; 32×32 is tested below); mlp and
# mnist_depth are built for 32×32 and 28×28 by default.
INPUT_SIZE = {"mnist_depth": 28, "mlp": 32}
STRUCTURAL = (
    nn.Conv1d,
    nn.Conv2d,
    nn.Linear,
    nn.BatchNorm1d,
    nn.BatchNorm2d,
    nn.MaxPool2d,
    nn.AvgPool2d,
    nn.AdaptiveAvgPool2d,
    nn.Dropout,
    nn.Flatten,
    nn.Identity,
    PadShortcut,
)


@pytest.fixture(autouse=True, scope="module")
def _fast_cpu():
    """One thread (tiny batches; two xdist workers share the cores) and the eager activation ops: the
    compiled fused kernels cost seconds to compile per shape family and are tested in their own file."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    with use_fused(False):
        yield
    torch.set_num_threads(threads)


def _input(name: str, in_channels: int = 3) -> torch.Tensor:
    size = INPUT_SIZE.get(name, 16)
    return torch.randn(2, in_channels, size, size, generator=torch.Generator().manual_seed(1))


def _act_names(model: nn.Module, cls: type[nn.Module]) -> set[str]:
    return {name for name, m in model.named_modules() if type(m) is cls}


def _weights(model: nn.Module, act_cls: type[nn.Module]) -> dict[str, torch.Tensor]:
    """The state dict without the activations' own entries (conv, linear, BN: what must not depend on act)."""
    acts = _act_names(model, act_cls)
    return {k: v.clone() for k, v in model.state_dict().items() if k.rpartition(".")[0] not in acts}


@functools.cache
def _relu_weights(name: str) -> dict[str, torch.Tensor]:
    torch.manual_seed(0)
    return _weights(get_model(name, NUM_CLASSES, act="relu"), nn.ReLU)


def _first_weight(model: nn.Module) -> torch.Tensor:
    return next(p for p in model.parameters() if p.dim() >= 2)


def test_expected_table_covers_the_registry():
    assert sorted(EXPECTED_ACTS) == list_models()


@pytest.mark.parametrize("act", ACTS)
@pytest.mark.parametrize("name", list_models())
def test_model(name: str, act: str):
    act_cls = type(get_act(act)())
    torch.manual_seed(0)
    model = get_model(name, NUM_CLASSES, act=act)
    weights = _weights(model, act_cls)

    out = model(_input(name))
    assert out.shape == (2, NUM_CLASSES)
    loss = F.cross_entropy(out, torch.tensor([0, 1]))
    assert torch.isfinite(loss)
    loss.backward()
    grad = _first_weight(model).grad
    assert grad is not None and grad.abs().sum() > 0

    # the requested activation at every place, each its own module, and nothing else that activates
    acts = [m for m in model.modules() if type(m) is act_cls]
    assert len(acts) == EXPECTED_ACTS[name]
    leaves = [m for m in model.modules() if not list(m.children())]
    assert all(type(m) is act_cls or isinstance(m, STRUCTURAL) for m in leaves)
    if act_cls is not nn.ReLU:
        assert not any(isinstance(m, nn.ReLU) for m in model.modules())

    # learnable activations: one set of parameters per place, each reached by the gradient
    act_params = [p for m in acts for p in m.parameters()]
    assert len({id(p) for p in act_params}) == len(act_params)
    if act in ("smu", "swish(learnable=True)"):
        assert len(act_params) == len(acts)
        assert all(p.grad is not None for p in act_params)

    # same seed, different activation: identical conv/linear/BN initial weights
    reference = _relu_weights(name)
    assert weights.keys() == reference.keys()
    assert all(torch.equal(weights[k], reference[k]) for k in reference)


@pytest.mark.parametrize("name", list_models())
def test_one_input_channel(name: str):
    model = get_model(name, NUM_CLASSES, in_channels=1, act="mish")
    assert model(_input(name, in_channels=1)).shape == (2, NUM_CLASSES)


# ------------------------------------------------------------------------------------------------
# Golden parameter counts (classes in brackets): Gluon (seed-experiments.md §1.3), torchvision, He et al.


@pytest.mark.parametrize(
    ("name", "num_classes", "count"),
    [
        ("vgg16_bn", 10, 33_646_666),  # Gluon vgg16_bn on CIFAR-10 [derived in §1.3]
        ("vgg16", 10, 33_646_666 - 2 * 4224),  # the same less BN γ, β (4224 channels)
        ("resnet20", 10, 269_722),  # "0.27M" (He et al. Table 6), option A has no shortcut weights
        ("shufflenet_v2_x0_5", 1000, 1_366_792),  # torchvision: same kernels, only the stem stride differs
        ("shufflenet_v2_x1_0", 1000, 2_278_604),
        ("shufflenet_v2_x1_5", 1000, 3_503_624),
        ("shufflenet_v2_x2_0", 1000, 7_393_996),
        ("squeezenet", 1000, 1_235_496),  # torchvision squeezenet1_1
        (  # Keras layers: conv 5×5 ×2, 12 × (Dense(500) + BN γ β), Dense(10); flatten 50·10·10 at 28×28
            "mnist_depth",
            10,
            (3 * 20 * 25 + 20)
            + (20 * 50 * 25 + 50)
            + (5000 * 500 + 500)
            + 11 * (500 * 500 + 500)
            + 12 * 2 * 500
            + (500 * 10 + 10),
        ),
    ],
)
def test_parameter_count(name: str, num_classes: int, count: int):
    model = get_model(name, num_classes)
    assert sum(p.numel() for p in model.parameters()) == count


# ------------------------------------------------------------------------------------------------
# Architecture details


@pytest.mark.parametrize("size", [8, 28, 32, 64])
def test_vgg_any_input_size(size: int):
    model = get_model("vgg11_bn", NUM_CLASSES, in_channels=1, hidden=64)
    assert model(torch.randn(2, 1, size, size)).shape == (2, NUM_CLASSES)


def test_vgg_is_gluon_at_32():
    model = get_model("vgg16_bn", NUM_CLASSES)
    assert model.features(torch.randn(2, 3, 32, 32)).shape == (2, 512, 1, 1)  # the 1×1 pool is a no-op
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    assert all(m.bias is not None and not m.bias.any() for m in convs)
    assert all(abs(m.weight.std().item() - 0.01) < 1e-3 for m in model.modules() if isinstance(m, nn.Linear))


def test_resnet_shortcut_b_projects():
    a, b = get_model("resnet20", NUM_CLASSES), get_model("resnet20", NUM_CLASSES, shortcut="B")
    assert sum(isinstance(m, PadShortcut) for m in a.modules()) == 2
    extra = (16 * 32 + 2 * 32) + (32 * 64 + 2 * 64)  # two 1×1 conv-BN projections
    assert sum(p.numel() for p in b.parameters()) == sum(p.numel() for p in a.parameters()) + extra
    assert b(torch.randn(2, 3, 32, 32)).shape == (2, NUM_CLASSES)


def test_xresnet_zero_gamma_and_self_attention():
    model = get_model("xresnet50", NUM_CLASSES, act="mish", sa=True, sym=True)
    ends = [block.convs[-1].bn.weight for stage in model.stages for block in stage]
    assert len(ends) == 16 and all(not w.any() for w in ends)
    attention = [m for m in model.modules() if isinstance(m, SimpleSelfAttention)]
    assert len(attention) == 1 and model.stages[0][-1].sa is attention[0]
    assert attention[0].conv.weight.shape == (256, 256, 1) and attention[0].gamma.item() == 0
    model(torch.randn(2, 3, 32, 32)).sum().backward()
    assert attention[0].gamma.grad is not None
    assert sum(type(m).__name__ == "Mish" for m in model.modules()) == EXPECTED_ACTS["xresnet50"]


def test_self_attention_formula():
    torch.manual_seed(0)
    layer = SimpleSelfAttention(4, sym=True).eval()
    nn.init.constant_(layer.gamma, 0.5)
    x = torch.randn(2, 4, 3, 3)
    w = layer.conv.weight.squeeze(-1)
    w = (w + w.T) / 2
    flat = x.flatten(2)
    expected = 0.5 * (flat @ flat.transpose(1, 2)) @ (w @ flat) + flat
    torch.testing.assert_close(layer(x), expected.view_as(x))


def test_mlp_output_landscape_network():
    model = get_model("mlp", 1, in_channels=2, act="mish", width=(64, 32, 16), input_size=(), out_act=True)
    assert [m.out_features for m in model.modules() if isinstance(m, nn.Linear)] == [64, 32, 16, 1]
    assert sum(type(m).__name__ == "Mish" for m in model.modules()) == 4
    assert model(torch.randn(7, 2)).shape == (7, 1)


def test_mnist_depth_options():
    model = get_model("mnist_depth", 10, in_channels=1, num_dense=3, input_size=32, conv_act=False)
    assert model(torch.randn(2, 1, 32, 32)).shape == (2, 10)
    assert sum(isinstance(m, nn.ReLU) for m in model.modules()) == 3


def test_simple_cnn_on_digits():
    model = get_model("simple_cnn", 10, in_channels=1, width=8)
    assert model(torch.randn(4, 1, 8, 8)).shape == (4, 10)


@pytest.mark.parametrize(
    "act", [nn.Tanh, nn.Tanh(), lambda: nn.Tanh(), get_act("leaky_relu(negative_slope=0.2)")]
)
def test_act_forms(act):
    model = get_model("resnet20", NUM_CLASSES, act=act)
    expected = nn.LeakyReLU if isinstance(act, ActFactory) else nn.Tanh
    acts = [m for m in model.modules() if isinstance(m, expected)]
    assert len(acts) == EXPECTED_ACTS["resnet20"] and len({id(m) for m in acts}) == len(acts)


@pytest.mark.parametrize(
    ("module", "name"),
    [
        ("vgg", "vgg11"),
        ("resnet", "resnet20"),
        ("resnet", "preact_resnet18"),
        ("shufflenetv2", "shufflenet_v2_x0_5"),
        ("squeezenet", "squeezenet"),
        ("xresnet", "xresnet18"),
        ("mlp", "mlp"),
        ("mlp", "mnist_depth"),
        ("simple_cnn", "simple_cnn"),
    ],
)
def test_act_resolved_once(module: str, name: str, monkeypatch):
    calls = []

    def counting_get_act(spec):
        calls.append(spec)
        return get_act(spec)

    monkeypatch.setattr(f"actlab.models.{module}.get_act", counting_get_act)
    get_model(name, NUM_CLASSES, act="smu(alpha=0.25)")
    assert calls == ["smu(alpha=0.25)"]


# ------------------------------------------------------------------------------------------------
# Registry errors


def test_list_models_pattern():
    assert list_models("vgg*_bn") == ["vgg11_bn", "vgg13_bn", "vgg16_bn", "vgg19_bn"]


def test_unknown_model_names_close_matches():
    with pytest.raises(ValueError, match=r"'vgg16bn'.*vgg16_bn.*Known: .*xresnet50"):
        get_model("vgg16bn", 10)


def test_bad_keyword_names_valid_ones():
    with pytest.raises(ValueError, match=r"no keyword 'widht'.*valid keywords: width"):
        get_model("simple_cnn", 10, widht=8)
    with pytest.raises(ValueError, match="no keyword 'sa'"):
        get_model("resnet20", 10, sa=True)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"num_classes": 0}, "num_classes must be a positive integer, got 0"),
        ({"in_channels": -1}, "in_channels must be a positive integer, got -1"),
        ({"act": "relu7"}, "unknown activation 'relu7'"),
    ],
)
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        get_model(**{"name": "resnet20", "num_classes": 10, **kwargs})


@pytest.mark.parametrize(
    ("name", "kwargs", "match"),
    [
        ("resnet20", {"shortcut": "C"}, "shortcut must be 'A'"),
        ("vgg11", {"dropout": 1.0}, r"dropout must be in \[0, 1\), got 1.0"),
        ("mlp", {"depth": -1}, "depth must be a non-negative integer, got -1"),
        ("mlp", {"depth": 2, "width": (8, 8, 8)}, r"depth=2 but width lists 3 hidden layers: \(8, 8, 8\)"),
        ("mnist_depth", {"input_size": 8}, "input_size must be >= 10"),
    ],
)
def test_bad_architecture_values(name, kwargs, match):
    with pytest.raises(ValueError, match=match):
        get_model(name, 10, **kwargs)


def test_duplicate_registration_raises():
    def resnet20(num_classes: int, in_channels: int = 3, act="relu") -> nn.Module:
        return nn.Identity()

    with pytest.raises(ValueError, match="'resnet20' is already registered"):
        register_model(resnet20)


def test_builder_signature_is_checked():
    def broken(classes: int) -> nn.Module:
        return nn.Identity()

    with pytest.raises(ValueError, match="must take num_classes, in_channels, act"):
        register_model(broken, name="broken_builder")


def test_simple_cnn_trains_on_digits_in_seconds():
    datasets = pytest.importorskip("sklearn.datasets")
    digits = datasets.load_digits()
    x = torch.tensor(digits.images, dtype=torch.float32).unsqueeze(1) / 16.0  # (1797, 1, 8, 8)
    y = torch.tensor(digits.target)
    torch.manual_seed(0)
    model = get_model("simple_cnn", 10, in_channels=1, act="mish")
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    for _ in range(3):  # epochs over the first 1500 images, batch 64
        for idx in torch.randperm(1500).split(64):
            loss = F.cross_entropy(model(x[idx]), y[idx])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    with torch.no_grad():
        accuracy = (model.eval()(x[1500:]).argmax(1) == y[1500:]).float().mean().item()
    assert accuracy > 0.9
