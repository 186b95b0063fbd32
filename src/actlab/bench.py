"""``actlab bench``: how fast and how lean each activation is, against the hardware and against torch.

For every activation and implementation (actlab's default op, the same op with fused kernels off,
the naive composition of autograd-tracked torch ops, the native torch op where one exists, and
``torch.compile`` of the naive form) it measures the forward and forward+backward median time
(``torch.utils.benchmark``), the achieved bandwidth and its ratio to a copy measured in the same run
(forward moves 2, forward+backward 5 elements' worth of bytes: 8 and 20 B/element in float32), and
the bytes saved for backward per element (``saved_tensors_hooks``). ``--model NAME`` times whole
training steps (forward, backward, optimizer step) with each activation, as a ratio to ReLU.

Run ``actlab bench --help``; ``python -m actlab.bench`` works the same without the CLI.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import os
import platform
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils import benchmark

from actlab.activations import cpu_kernels, fused, get_act
from actlab.activations import functional as AF
from actlab.activations.modules import KernelActivation
from actlab.allocator import ALLOCATOR_PRESETS, ALLOCATOR_VARS

# ==============================================================================================
# Configuration

DEFAULT_ACTS = (
    "relu", "silu", "swish(learnable=True)", "mish", "gelu", "smu", "smu1",
    "tanhsoft", "erfact", "serf", "tanhexp", "logish", "eis", "pau",
)  # fmt: skip
MODEL_ACTS = ("relu", "mish", "swish(learnable=True)", "smu", "smu1")
REPEATS = {"small": 0.02, "normal": 0.5, "large": 2.0}  # seconds of timing per measurement
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
MODEL_INPUTS = {"simple_cnn": (1, 8, 8), "vgg16_bn": (3, 32, 32), "cnn4": (3, 32, 32)}  # C, H, W


@dataclass(frozen=True)
class BenchConfig:
    """What to measure; every field has a CLI flag of the same name."""

    acts: tuple[str, ...] = DEFAULT_ACTS
    shape: tuple[int, ...] = (1 << 22,)  # elements of the activation input
    device: str = "cpu"
    dtype: str = "float32"
    repeats: str = "normal"  # small | normal | large: seconds of timing per number (REPEATS)
    impls: tuple[str, ...] = ("actlab", "eager", "naive", "native", "compiled")
    model: str | None = None
    batch: int = 128  # images per training step with --model
    threads: int = 0  # 0: torch's default
    timer: str = "wall"  # wall | process (CPU seconds of this process: robust on a shared machine)


# ==============================================================================================
# Implementations: actlab, eager, naive, native, compiled, and inductor (actlab's op without its C kernels)

ALL_IMPLS = (*BenchConfig.impls, "inductor")


def _p(m: nn.Module, name: str, x: Tensor) -> Tensor:
    return m._broadcast(getattr(m, name), x) if isinstance(m, KernelActivation) else getattr(m, name)


def _naive_pau(x: Tensor, m: nn.Module) -> Tensor:
    num, den = m.numerator, m.denominator
    p = num[-1] * torch.ones_like(x)
    for c in reversed(num[:-1]):
        p = p * x + c
    q = torch.zeros_like(x)
    for b in reversed(den):
        q = (q + b.abs()) * x.abs()
    return p / (1 + q)


def _naive_elu(x: Tensor, m: nn.Module) -> Tensor:
    alpha, input_scale, scale = (_p(m, n, x) for n in ("alpha", "input_scale", "scale"))
    return scale * torch.where(x > 0, x, alpha * (torch.exp(x * input_scale) - 1))


# The formulas as papers and reference implementations write them, with autograd-tracked torch ops.
NAIVE: dict[str, Callable[[Tensor, nn.Module], Tensor]] = {
    "swish": lambda x, m: x * torch.sigmoid(_p(m, "beta", x) * x),
    "silu": lambda x, m: x * torch.sigmoid(x),
    "mish": lambda x, m: x * torch.tanh(F.softplus(x)),
    "gelu": lambda x, m: 0.5 * x * (1 + torch.erf(x * AF.INV_SQRT_2)),
    "gelu_tanh": lambda x, m: 0.5 * x * (1 + torch.tanh(AF.SQRT_2_OVER_PI * (x + AF.GELU_TANH_C * x**3))),
    "hard_swish": lambda x, m: x * F.relu6(x + 3) / 6,
    "smu": lambda x, m: (
        ((1 + (a := _p(m, "alpha", x))) * x + (1 - a) * x * torch.erf(_p(m, "mu", x) * (1 - a) * x)) / 2
    ),
    "smu1": lambda x, m: (
        ((1 + (a := _p(m, "alpha", x))) * x + torch.sqrt(((1 - a) * x) ** 2 + _p(m, "mu", x) ** 2)) / 2
    ),
    "tanhsoft": lambda x, m: (
        torch.tanh(_p(m, "alpha", x) * x + _p(m, "beta", x) * torch.exp(_p(m, "gamma", x) * x))
        * torch.log(_p(m, "delta", x) + torch.exp(x))
    ),
    "eis": lambda x, m: (
        x
        * F.softplus(x) ** _p(m, "alpha", x)
        / (
            torch.sqrt(_p(m, "beta", x) + _p(m, "gamma", x) * x * x)
            + _p(m, "delta", x) * torch.exp(-_p(m, "theta", x) * x)
        )
    ),
    "erfact": lambda x, m: x * torch.erf(_p(m, "alpha", x) * torch.exp(_p(m, "beta", x) * x)),
    "pserf": lambda x, m: x * torch.erf(_p(m, "gamma", x) * F.softplus(_p(m, "delta", x) * x)),
    "serf": lambda x, m: x * torch.erf(F.softplus(x)),
    "tanhexp": lambda x, m: x * torch.tanh(torch.exp(x)),
    "logish": lambda x, m: _p(m, "alpha", x) * x * torch.log1p(torch.sigmoid(_p(m, "beta", x) * x)),
    "pau": _naive_pau,
    "softplus": lambda x, m: torch.log1p(torch.exp(_p(m, "beta", x) * x)) / _p(m, "beta", x),
    "prelu": lambda x, m: torch.clamp(x, min=0) + _p(m, "weight", x) * torch.clamp(x, max=0),
    **dict.fromkeys(("elu", "celu", "selu"), _naive_elu),
}

# torch's own fused op for the same function (same parameters), where there is one.
NATIVE: dict[str, Callable[[Tensor], Tensor]] = {
    "silu": F.silu,
    "mish": F.mish,
    "gelu": F.gelu,
    "gelu_tanh": lambda x: F.gelu(x, approximate="tanh"),
    "hard_swish": F.hardswish,
    "softplus": F.softplus,
    "elu": F.elu,
    "celu": F.celu,
    "selu": F.selu,
}
NATIVE_LEARNS_TOO = frozenset({"prelu"})  # native ops with the same learnable parameters as actlab's
NATIVE_MODULES: dict[str, Callable[[], nn.Module]] = {
    "silu": nn.SiLU,
    "mish": nn.Mish,
    "gelu": nn.GELU,
    "hard_swish": nn.Hardswish,
    "softplus": nn.Softplus,
    "prelu": nn.PReLU,
    "elu": nn.ELU,
    "celu": nn.CELU,
    "selu": nn.SELU,
}


def kernel_name(module: nn.Module) -> str | None:
    """The actlab kernel behind a module, None for torch's own modules."""
    return module.kernel_name if isinstance(module, KernelActivation) else None


def implementations(
    spec: str, impls: Sequence[str], device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32
) -> dict[str, Callable[[Tensor], Tensor]]:
    """Callables for each requested implementation of ``spec`` that exists (torch modules: 'native'),
    with their parameters on ``device``; torch's own learnable modules in ``dtype`` too (PReLU refuses a
    weight of another dtype than its input's; actlab's modules keep float32 parameters, as under autocast)."""
    module = get_act(spec)().to(device)
    name = kernel_name(module)
    if name is None:  # relu, elu, softplus...: torch's module is actlab's default
        return {"native": module} if "native" in impls or "actlab" in impls else {}
    naive = NAIVE.get(name, lambda x, m: m.kernel_name and _reference(m)(x))
    out: dict[str, Callable[[Tensor], Tensor]] = {}
    for impl in impls:
        if impl == "actlab":
            out[impl] = module
        elif impl == "eager":
            out[impl] = _without_fused(module)
        elif impl == "inductor":
            out[impl] = _without_c_kernels(module)
        elif impl == "naive":
            out[impl] = lambda x, m=module: naive(x, m)
        elif impl == "native" and name in NATIVE_LEARNS_TOO:
            out[impl] = NATIVE_MODULES[name]().to(device, dtype)  # its own learnable weight, as actlab's
        elif impl == "native" and name in NATIVE and _fixed(module):
            out[impl] = NATIVE[name]
        elif impl == "compiled":
            # its own code object: dynamo's cache and recompile limit are per code object
            out[impl] = torch.compile(fused.renamed(lambda x, m=module: naive(x, m), f"naive_{name}"))
    return out


def _fixed(module: nn.Module) -> bool:
    return not any(True for _ in module.parameters())


def _reference(m: KernelActivation) -> Callable[[Tensor], Tensor]:
    from actlab.activations.modules import KERNELS

    kernel = KERNELS[m.kernel_name]
    return lambda x: kernel.forward(x, *(m._broadcast(getattr(m, n), x) for n in m.param_names))


def _without_fused(module: nn.Module) -> Callable[[Tensor], Tensor]:
    def run(x: Tensor) -> Tensor:
        with fused.use_fused(False):
            return module(x)

    return run


def _without_c_kernels(module: nn.Module) -> Callable[[Tensor], Tensor]:
    """actlab's op with its C kernels off: the compiled inductor kernels (the default before them)."""

    def run(x: Tensor) -> Tensor:
        with cpu_kernels.use_cpu_kernels(False):
            return module(x)

    return run


# ==============================================================================================
# Measurements


@dataclass
class Row:
    """One activation × implementation: times in ms, bandwidth in GB/s, memory in bytes/element."""

    act: str
    impl: str
    fwd_ms: float = math.nan
    fwdbwd_ms: float = math.nan
    fwd_gbs: float = math.nan
    fwdbwd_gbs: float = math.nan
    fwd_roofline: float = math.nan  # achieved / copy bandwidth
    fwdbwd_roofline: float = math.nan
    saved_bytes_per_elem: float = math.nan
    first_call_s: float = math.nan  # includes compiling, for fused and compiled implementations
    silu_ms: float = math.nan  # native F.silu forward+backward, timed in passes alternating with this row's
    error: str = ""


TIMING_PASSES = 3  # medians per number; the smallest is reported


def _clock(device: str, timer: str = "wall") -> Callable[[], float]:
    """The timer's clock. On CUDA it waits for the device first: a bare host clock would time the launches
    alone (torch's Timer synchronizes only with its own default clock, which we replace)."""
    if str(device).startswith("cuda"):

        def synchronized() -> float:
            torch.cuda.synchronize()
            return time.perf_counter()

        return synchronized
    return time.process_time if timer == "process" else time.perf_counter


def _timer(fn: Callable[[], Any], cfg: BenchConfig) -> float:
    """Median seconds per call of ``fn``: the smallest of three medians, each over a third of the time budget,
    so that a burst of load on a shared machine (seconds long, here) does not become the result."""
    clock = _clock(cfg.device, cfg.timer)
    timer = benchmark.Timer(stmt="fn()", globals={"fn": fn}, num_threads=torch.get_num_threads(), timer=clock)
    budget = REPEATS[cfg.repeats] / TIMING_PASSES
    return min(timer.blocked_autorange(min_run_time=budget).median for _ in range(TIMING_PASSES))


def _paired_passes(
    fn: Callable[[], Any], ref: Callable[[], Any], cfg: BenchConfig
) -> tuple[list[float], list[float]]:
    """Median seconds per call of ``fn`` and of ``ref`` in each of TIMING_PASSES alternating passes."""
    clock = _clock(cfg.device, cfg.timer)
    timers = [
        benchmark.Timer(stmt="fn()", globals={"fn": f}, num_threads=torch.get_num_threads(), timer=clock)
        for f in (fn, ref)
    ]
    budget = REPEATS[cfg.repeats] / TIMING_PASSES
    medians: list[list[float]] = [[], []]
    for _ in range(TIMING_PASSES):
        for i in (1, 0):
            medians[i].append(timers[i].blocked_autorange(min_run_time=budget).median)
    return medians[0], medians[1]


def _paired_timer(fn: Callable[[], Any], ref: Callable[[], Any], cfg: BenchConfig) -> tuple[float, float]:
    """Median seconds per call of ``fn`` and of ``ref``, timed in alternating passes (the smallest of three
    medians each), so that both see the same drift of a shared machine and their ratio keeps steady."""
    fn_s, ref_s = _paired_passes(fn, ref, cfg)
    return min(fn_s), min(ref_s)


def copy_roofline(x: Tensor, cfg: BenchConfig) -> dict[str, float]:
    """Copy bandwidth (GB/s) into a preallocated tensor, and with a fresh output as activations do."""
    out = torch.empty_like(x)
    nbytes = 2 * x.numel() * x.element_size()
    into = _timer(lambda: out.copy_(x), cfg)
    fresh = _timer(lambda: x.clone(), cfg)
    return {"copy_gbs": nbytes / into / 1e9, "clone_gbs": nbytes / fresh / 1e9}


def saved_bytes_per_element(fn: Callable[[Tensor], Tensor], x: Tensor) -> float:
    """Bytes kept alive for backward per input element: distinct storages packed by autograd."""
    storages: dict[int, int] = {}

    def pack(t: Tensor) -> Tensor:
        s = t.untyped_storage()
        storages[s.data_ptr()] = s.nbytes()
        return t

    leaf = x.detach().requires_grad_()
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        fn(leaf * 1)  # a non-leaf input, as inside a network
    return sum(storages.values()) / x.numel()


def _fwd_bwd(fn: Callable[[Tensor], Tensor], x: Tensor, g: Tensor) -> Callable[[], Any]:
    params = [p for p in getattr(fn, "parameters", lambda: [])() if p.requires_grad]
    leaf = x.detach().requires_grad_()

    def step():
        y = fn(leaf)
        return torch.autograd.grad(y, [leaf, *params], g)  # no .grad accumulation pass

    return step


def measure(
    act: str,
    impl: str,
    fn: Callable[[Tensor], Tensor],
    x: Tensor,
    cfg: BenchConfig,
    reference: Callable[[], Any],
) -> Row:
    """Time one implementation, its forward+backward in passes alternating with ``reference`` (native F.silu's
    forward+backward, the ×silu column); errors are recorded on the row, not raised."""
    row = Row(act, impl)
    g = torch.randn_like(x)
    try:
        clock = _clock(x.device.type)  # wall time, after the device's work on CUDA
        start = clock()
        _fwd_bwd(fn, x, g)()
        with torch.no_grad():
            fn(x)
        row.first_call_s = clock() - start
        with torch.no_grad():
            row.fwd_ms = _timer(lambda: fn(x), cfg) * 1e3
        fwdbwd_s, silu_s = _paired_timer(_fwd_bwd(fn, x, g), reference, cfg)
        row.fwdbwd_ms, row.silu_ms = fwdbwd_s * 1e3, silu_s * 1e3
        row.saved_bytes_per_elem = saved_bytes_per_element(fn, x)
    except Exception as err:  # an implementation that cannot run here (e.g. no compiler)
        row.error = f"{type(err).__name__}: {err}".splitlines()[0][:200]
    return row


def _progress(line: str) -> None:
    """One line per measurement on stderr, so a long bench shows where it is (stdout holds the result)."""
    print(f"bench: {line}", file=sys.stderr, flush=True)


def add_bandwidth(row: Row, numel: int, elem_size: int, roof: dict[str, float]) -> None:
    """GB/s moved (forward 2, forward+backward 5 tensors of the input's size) and ratio to copy."""
    row.fwd_gbs = 2 * numel * elem_size / (row.fwd_ms * 1e-3) / 1e9
    row.fwdbwd_gbs = 5 * numel * elem_size / (row.fwdbwd_ms * 1e-3) / 1e9
    row.fwd_roofline = row.fwd_gbs / roof["copy_gbs"]
    row.fwdbwd_roofline = row.fwdbwd_gbs / roof["copy_gbs"]


def bench_activations(cfg: BenchConfig) -> tuple[dict[str, float], list[Row]]:
    """The roofline and one row per activation × implementation."""
    x = torch.randn(cfg.shape, device=cfg.device, dtype=DTYPES[cfg.dtype])
    roof = copy_roofline(x, cfg)
    rows = []
    # The ×silu reference is timed in passes alternating with each row's: on a shared machine the memory
    # bandwidth drifts between periods (40–50 and 90 GB/s here); one F.silu timing would skew every ratio.
    silu_step = _fwd_bwd(F.silu, x, torch.randn_like(x))
    for act in cfg.acts:
        for impl, fn in implementations(act, cfg.impls, cfg.device, DTYPES[cfg.dtype]).items():
            row = measure(act, impl, fn, x, cfg, silu_step)
            _progress(f"{act} {impl}: first call {row.first_call_s:.2f} s {row.error}".rstrip())
            if not row.error:
                add_bandwidth(row, x.numel(), x.element_size(), roof)
            rows.append(row)
    return roof, rows


# ==============================================================================================
# Training step of a model


class CNN4(nn.Module):
    """A 4-layer CNN (3 conv-BN-act, linear) for 32×32 inputs, used when ``actlab.models`` is absent."""

    def __init__(self, num_classes: int, in_channels: int, act: Any) -> None:
        super().__init__()
        make = get_act(act)
        chans = (in_channels, 32, 64, 128)
        layers: list[nn.Module] = []
        for cin, cout in itertools.pairwise(chans):
            layers += [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), make()]
            layers.append(nn.MaxPool2d(2))
        self.features = nn.Sequential(*layers)
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(128, num_classes))

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.features(x))  # (N, num_classes)


def build_model(name: str, act: Any, in_channels: int) -> nn.Module:
    """``actlab.models.get_model(name)``, or the bench's own CNN4 for ``name == "cnn4"``."""
    if name == "cnn4":
        return CNN4(10, in_channels, act)
    from actlab.models import get_model

    return get_model(name, num_classes=10, in_channels=in_channels, act=act)


@dataclass
class ModelRow:
    """Training-step time of a model with one activation implementation."""

    act: str
    impl: str
    step_ms: float = math.nan
    relu_ms: float = math.nan  # ReLU's step, timed in passes alternating with this row's
    ratio_to_relu: float = math.nan
    # the smallest and largest ratio of one pass to its neighbouring ReLU pass: the machine's noise, in which
    # ratio_to_relu (smallest step / smallest ReLU step) always lies
    ratio_range: tuple[float, float] = (math.nan, math.nan)
    error: str = ""


def _model_variants(act: str) -> dict[str, tuple[Any, bool]]:
    """impl → (activation spec or module class, fused on)."""
    module = get_act(act)()
    name = kernel_name(module)
    if name is None:
        return {"native": (act, True)}
    variants: dict[str, tuple[Any, bool]] = {"actlab": (act, True), "eager": (act, False)}
    if name in NATIVE_MODULES and (name in NATIVE_LEARNS_TOO or _fixed(module)):
        variants["native"] = (NATIVE_MODULES[name], True)
    return variants


def training_step(model: nn.Module, x: Tensor, y: Tensor, use: bool) -> Callable[[], None]:
    """One training step (forward, cross-entropy, backward, SGD step), fused kernels on or off; run once."""
    opt = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)

    def step() -> None:
        with fused.use_fused(use):
            opt.zero_grad(set_to_none=True)
            F.cross_entropy(model(x), y).backward()
            opt.step()

    step()  # compiles and allocates
    return step


def bench_model(cfg: BenchConfig) -> list[ModelRow]:
    """Training-step time with each activation, as a ratio to ReLU's, timed in passes alternating with it."""
    assert cfg.model is not None
    shape = MODEL_INPUTS.get(cfg.model, (3, 32, 32))
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(cfg.batch, *shape, generator=gen).to(cfg.device, DTYPES[cfg.dtype])
    y = torch.randint(0, 10, (cfg.batch,), generator=gen).to(cfg.device)

    def build(spec: Any) -> nn.Module:
        torch.manual_seed(0)
        return build_model(cfg.model, spec, shape[0]).to(cfg.device, DTYPES[cfg.dtype])

    relu_row = ModelRow("relu", "native")
    rows = [relu_row]
    try:
        relu_step = training_step(build("relu"), x, y, True)
        relu_row.step_ms = relu_row.relu_ms = _timer(relu_step, cfg) * 1e3
        relu_row.ratio_to_relu = 1.0
    except Exception as err:
        relu_row.error = _short(err)
        relu_step = None
    for act in (a for a in cfg.acts if a != "relu"):
        for impl, (spec, use) in _model_variants(act).items():
            if impl not in cfg.impls:  # --impls filters the model's rows too (relu's is the reference)
                continue
            row = ModelRow(act, impl)
            try:
                step = training_step(build(spec), x, y, use)
                if relu_step is None:
                    row.step_ms = _timer(step, cfg) * 1e3
                else:
                    steps, relus = _paired_passes(step, relu_step, cfg)
                    row.step_ms, row.relu_ms = min(steps) * 1e3, min(relus) * 1e3
                    row.ratio_to_relu = min(steps) / min(relus)
                    per_pass = [a / b for a, b in zip(steps, relus, strict=True)]
                    row.ratio_range = (min(per_pass), max(per_pass))
            except Exception as err:
                row.error = _short(err)
            rows.append(row)
    return rows


def _short(err: Exception) -> str:
    return f"{type(err).__name__}: {err}".splitlines()[0][:200]


# ==============================================================================================
# Environment, report, CLI


def allocator_setting() -> dict[str, str]:
    """The allocator-related environment this process started with, and the kernel's THP mode."""
    env = {k: os.environ[k] for k in ALLOCATOR_VARS if k in os.environ}
    try:
        with open("/sys/kernel/mm/transparent_hugepage/enabled") as fh:
            env["thp_kernel"] = fh.read().strip()
    except OSError:
        pass
    return env


def machine() -> dict[str, Any]:
    """Where the numbers come from."""
    info: dict[str, Any] = {
        "torch": torch.__version__,
        "python": platform.python_version(),
        "cpu": platform.processor() or platform.machine(),
        "cores": os.cpu_count(),
        "threads": torch.get_num_threads(),
        "loadavg": os.getloadavg() if hasattr(os, "getloadavg") else None,
        "allocator": allocator_setting(),
        "fused": fused.describe(),
    }
    try:
        with open("/proc/cpuinfo") as fh:
            info["cpu"] = next(ln.split(":", 1)[1].strip() for ln in fh if ln.startswith("model name"))
    except (OSError, StopIteration):
        pass
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name()
    return info


@dataclass
class BenchResult:
    """Everything ``actlab bench`` measured, as written by ``--json``."""

    config: dict[str, Any]
    machine: dict[str, Any]
    roofline: dict[str, float] = field(default_factory=dict)
    rows: list[Row] = field(default_factory=list)
    model_rows: list[ModelRow] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "config": self.config,
            "machine": self.machine,
            "roofline": self.roofline,
            "rows": [asdict(r) for r in self.rows],
            "model_rows": [asdict(r) for r in self.model_rows],
        }


def run(cfg: BenchConfig) -> BenchResult:
    """Measure what ``cfg`` asks for."""
    threads = torch.get_num_threads()
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    try:
        result = BenchResult(config=asdict(cfg), machine=machine())
        if cfg.model is None:
            result.roofline, result.rows = bench_activations(cfg)
        else:
            result.model_rows = bench_model(cfg)
    finally:
        torch.set_num_threads(threads)
    result.machine["fused"] = fused.describe()  # after the runs: includes compile failures
    return result


def _fmt(v: float, spec: str = ".2f") -> str:
    return "-" if v is None or (isinstance(v, float) and math.isnan(v)) else format(v, spec)


def _ratios(rows: list[Row]) -> dict[tuple[str, str], tuple[float, float]]:
    """(act, impl) → (fwd+bwd time / native silu's timed next to it, / the act's native op's). The second is
    the quotient of the two rows' ×silu: each was timed next to its own F.silu, so a drift of the machine's
    bandwidth between the rows cancels out."""
    vs_silu = {(r.act, r.impl): r.fwdbwd_ms / r.silu_ms for r in rows}
    native = {r.act: vs_silu[(r.act, r.impl)] for r in rows if r.impl == "native"}
    return {key: (ratio, ratio / native.get(key[0], math.nan)) for key, ratio in vs_silu.items()}


def format_table(result: BenchResult) -> str:
    """The human-readable report."""
    m, c = result.machine, result.config
    lines = [
        f"# actlab bench: torch {m['torch']}, {m['cpu']}, {m['cores']} cores, {m['threads']} threads, "
        f"load {_fmt(m['loadavg'][0]) if m.get('loadavg') else '-'}",
        f"# allocator: {m['allocator'] or 'glibc defaults'}; {m['fused']}",
        f"# shape {tuple(c['shape'])} {c['dtype']} on {c['device']}, repeats {c['repeats']}, "
        f"{c['timer']} time",
    ]
    if result.rows:
        r = result.roofline
        lines.append(f"# copy roofline {r['copy_gbs']:.1f} GB/s (into a fresh tensor {r['clone_gbs']:.1f})")
        lines.append(
            f"{'act':24s} {'impl':9s} {'fwd ms':>8s} {'GB/s':>6s} {'roof':>5s} {'f+b ms':>8s} {'GB/s':>6s} "
            f"{'roof':>5s} {'×silu':>6s} {'×nat':>5s} {'saved B/el':>10s} {'1st s':>6s}"
        )
        ratios = _ratios(result.rows)
        for row in result.rows:
            if row.error:
                lines.append(f"{row.act:24s} {row.impl:9s} error: {row.error}")
                continue
            vs_silu, vs_native = ratios[(row.act, row.impl)]
            lines.append(
                f"{row.act:24s} {row.impl:9s} {_fmt(row.fwd_ms):>8s} {_fmt(row.fwd_gbs, '.1f'):>6s} "
                f"{_fmt(row.fwd_roofline):>5s} {_fmt(row.fwdbwd_ms):>8s} {_fmt(row.fwdbwd_gbs, '.1f'):>6s} "
                f"{_fmt(row.fwdbwd_roofline):>5s} {_fmt(vs_silu):>6s} {_fmt(vs_native):>5s} "
                f"{_fmt(row.saved_bytes_per_elem, '.1f'):>10s} {_fmt(row.first_call_s, '.1f'):>6s}"
            )
    if result.model_rows:
        lines.append(f"# training step of {c['model']}, batch {c['batch']}")
        lines.append("# ×relu: against ReLU's step timed in passes alternating with the row's (relu ms);")
        lines.append(f"# passes: the range of the {TIMING_PASSES} passes' own ratios (the machine's noise)")
        lines.append(f"{'act':24s} {'impl':9s} {'step ms':>9s} {'relu ms':>9s} {'×relu':>6s} {'passes':>11s}")
        for row in result.model_rows:
            lo, hi = row.ratio_range
            spread = "-" if math.isnan(lo) else f"{lo:.2f}–{hi:.2f}"
            tail = (
                f"error: {row.error}"
                if row.error
                else f"{_fmt(row.step_ms):>9s} {_fmt(row.relu_ms):>9s} {_fmt(row.ratio_to_relu):>6s} "
                f"{spread:>11s}"
            )
            lines.append(f"{row.act:24s} {row.impl:9s} {tail}")
    return "\n".join(lines)


def _size(text: str) -> int:
    text = text.strip().replace("^", "**")
    base, _, power = text.partition("**")
    return int(base) ** int(power) if power else int(base)


def parse_shape(text: str) -> tuple[int, ...]:
    """'4096', '2^22' or '64,32,56,56' (also 'x'-separated) → a shape."""
    parts = [p for p in text.replace("x", ",").replace("×", ",").split(",") if p.strip()]
    try:
        shape = tuple(_size(p) for p in parts)
    except ValueError as err:
        raise argparse.ArgumentTypeError(f"bad shape {text!r}: write N, 2^k or N,C,H,W") from err
    if not shape or any(s <= 0 for s in shape):
        raise argparse.ArgumentTypeError(f"bad shape {text!r}: sizes must be positive")
    return shape


def add_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """The bench's flags on ``parser``."""
    parser.add_argument(
        "--acts",
        nargs="+",
        default=None,
        metavar="SPEC",
        help="activation specs (default: a representative set; 'all' for every one)",
    )
    parser.add_argument("--size", type=_size, default=None, help="elements, e.g. 4194304 or 2^24")
    parser.add_argument("--shape", type=parse_shape, default=None, help="shape, e.g. 128,64,32,32")
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument("--dtype", choices=tuple(DTYPES), default="float32")
    parser.add_argument(
        "--repeats",
        choices=tuple(REPEATS),
        default="normal",
        help="timing budget per number: small (tests), normal, large",
    )
    parser.add_argument(
        "--impls",
        nargs="+",
        default=None,
        choices=ALL_IMPLS,
        help="implementations to time (default: all but inductor)",
    )
    parser.add_argument(
        "--model", default=None, help="time training steps of this model (simple_cnn, vgg16_bn, cnn4, ...)"
    )
    parser.add_argument("--batch", type=int, default=128, help="images per training step with --model")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (default: torch's)")
    parser.add_argument(
        "--timer",
        choices=("wall", "process"),
        default="wall",
        help="wall clock, or this process's CPU time (steadier on a shared machine; use with --threads 1)",
    )
    parser.add_argument(
        "--allocator",
        choices=("asis", *ALLOCATOR_PRESETS),
        default="asis",
        help="re-run with an allocator preset (see docs/performance.md)",
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of the table")
    return parser


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register ``bench`` on the CLI's subparsers; the parser's ``func`` runs it."""
    parser = subparsers.add_parser(
        "bench",
        help="time activations (and training steps) on this machine",
        description=__doc__.splitlines()[0],
    )
    add_arguments(parser)
    parser.set_defaults(func=run_from_args)
    return parser


def config_from_args(args: argparse.Namespace) -> BenchConfig:
    """A ``BenchConfig`` from parsed flags."""
    from actlab.activations import list_acts

    default = MODEL_ACTS if args.model else DEFAULT_ACTS
    acts = tuple(args.acts or default)
    if acts == ("all",):
        acts = tuple(a for a in list_acts() if a not in ("identity", "rrelu"))
    shape = args.shape or ((args.size,) if args.size else BenchConfig.shape)
    impls = tuple(args.impls) if args.impls else BenchConfig.impls
    if args.device == "cuda" and args.timer == "process":
        raise SystemExit("actlab bench: --timer process counts host CPU time; use --timer wall on cuda")
    return BenchConfig(
        acts,
        shape,
        args.device,
        args.dtype,
        args.repeats,
        impls,
        args.model,
        args.batch,
        args.threads,
        args.timer,
    )


def _reexec_with(preset: str, argv: Sequence[str]) -> None:
    """Allocator variables only act before the allocator starts: run the bench again in a fresh process."""
    args = list(argv)
    if args[:1] == ["bench"]:  # called as `actlab bench ...`
        args = args[1:]
    if "--allocator" in args:
        i = args.index("--allocator")
        del args[i : i + 2]
    args = [a for a in args if not a.startswith("--allocator=")]
    env = {**os.environ, **ALLOCATOR_PRESETS[preset]}
    os.execve(sys.executable, [sys.executable, "-m", "actlab.bench", *args], env)


def run_from_args(args: argparse.Namespace, argv: Sequence[str] | None = None) -> int:
    """Run the bench for parsed flags; print the table or JSON. Returns the exit code."""
    preset = ALLOCATOR_PRESETS.get(args.allocator)
    if preset and any(os.environ.get(k) != v for k, v in preset.items()):
        _reexec_with(args.allocator, list(sys.argv[1:] if argv is None else argv))
    result = run(config_from_args(args))
    print(json.dumps(result.to_dict(), indent=1) if args.json else format_table(result))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m actlab.bench [flags]``."""
    parser = add_arguments(argparse.ArgumentParser(prog="actlab bench", description=__doc__))
    argv = list(sys.argv[1:] if argv is None else argv)
    return run_from_args(parser.parse_args(argv), argv)


if __name__ == "__main__":
    raise SystemExit(main())
