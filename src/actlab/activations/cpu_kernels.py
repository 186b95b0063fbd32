"""Hand-written C kernels for activations on the CPU (float32; bfloat16 and float16 through float32), where
inductor's are compute-bound.

``csrc/kernels.c`` holds each activation's fast float32 forward and backward (the formulas of
``fused.FAST_FP32``; EIS's and PAU's reference forms) as one pass over memory with GCC's vector extensions: an
exp of ~10 vector ops instead of Sleef's, the parameter-gradient sums in the same pass, and a plain C call
instead of dynamo's guards and inductor's wrapper. It is compiled once per machine with the system C compiler
(``-O3 -march=native``, OpenMP where available), cached on disk (``ACTLAB_KERNEL_CACHE``, default
``~/.cache/actlab/kernels``), and loaded with ctypes. ``fused.c_call`` asks ``applies`` first; where a
kernel does not apply (another device or dtype, a strided input, per-channel parameters, PAU of other degrees,
no C compiler) the compiled inductor kernels run instead. ``ACTLAB_CPU_KERNELS=0`` or
``set_cpu_kernels(False)`` switch it off.
"""

from __future__ import annotations

import ctypes
import hashlib
import math
import os
import platform
import shlex
import shutil
import subprocess
import tempfile
import warnings
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

ENV_ENABLE = "ACTLAB_CPU_KERNELS"  # "0" turns the C kernels off
ENV_CACHE = "ACTLAB_KERNEL_CACHE"  # where the compiled library is kept
ENV_STREAM_FROM = "ACTLAB_STREAM_FROM"  # bytes a call must move to stream its output (default: the L3's size)
SOURCE = Path(__file__).with_name("csrc") / "kernels.c"
ABI = 7  # kernels.c's actlab_kernels_abi()
MAX_PARAMS = 10  # parameter values in, parameter-gradient sums out
# the dtypes the kernels read and write, as their last argument ``io`` names them; bfloat16 and float16 are
# computed in float32 block by block and rounded back as ``.to()`` rounds (kernels.c, "bfloat16 and float16
# tensors"); float16 where the build converts it (F16C or _Float16: ``actlab_has_f16``)
IO_KINDS = {torch.float32: 0, torch.bfloat16: 1, torch.float16: 2}
# the parameters' dtypes the kernels take (their values as float32), each with its largest finite value
_LARGEST = {dtype: torch.finfo(dtype).max for dtype in (torch.float32, torch.float64, *IO_KINDS)}

# kernel name → the number of values of each parameter (scalars, or PAU's two coefficient vectors);
# kernels.c's DEFINE_KERNEL lines say which probe their limits
KERNELS: dict[str, tuple[int, ...]] = {
    "silu": (),
    "hard_swish": (),
    "elu": (1, 1, 1),  # alpha, input scale, scale: buffers, no gradient sums
    "celu": (1, 1, 1),
    "selu": (1, 1, 1),
    "swish": (1,),
    "mish": (),
    "softplus": (1, 1),
    "gelu": (),
    "smu": (1, 1),
    "smooth_max_erf": (1, 1, 1),
    "smu1": (1, 1),
    "smooth_max_sqrt": (1, 1, 1),
    "logish": (1, 1),
    "tanhexp": (),
    "tanhsoft": (1, 1, 1, 1),
    "erfact": (1, 1),
    "serf": (),
    "pserf": (1, 1),
    "pau": (6, 4),  # degrees (5, 4), the default; other degrees take the compiled kernels
    "eis": (1, 1, 1, 1, 1),
}
BASE_FLAGS = ["-O3", "-std=gnu11", "-fPIC", "-shared", "-ffp-contract=fast", "-fno-math-errno"]
BASE_FLAGS += ["-fno-trapping-math"]
# GCC's pre-RA scheduler interleaves the two vectors of each loop step (kernels.c, NAME_fwd_pair).
# The first flag set that builds is used.
SCHEDULE_FLAGS = ["-fschedule-insns", "-fsched-pressure"]
OPTIONAL_FLAGS = (
    ["-march=native", "-fopenmp", *SCHEDULE_FLAGS],
    ["-march=native", "-fopenmp"],
    ["-march=native"],
    ["-fopenmp"],
    [],
)


@dataclass
class _State:
    enabled: bool = os.environ.get(ENV_ENABLE, "1").strip().lower() not in ("0", "false", "off", "no")
    library: ctypes.CDLL | None = None
    error: str | None = None  # why the library could not be built or loaded (then it is not retried)
    path: Path | None = None
    flags: tuple[str, ...] = ()
    functions: dict[str, tuple[Any, Any]] = field(default_factory=dict)  # name → (forward, backward)
    addresses: dict[str, tuple[int, int]] = field(default_factory=dict)  # name → their addresses
    dtypes: frozenset[torch.dtype] = frozenset()  # what the loaded library reads and writes


_STATE = _State()


def set_cpu_kernels(enabled: bool) -> None:
    """Switch the C kernels on or off (off: the compiled inductor kernels run instead)."""
    _STATE.enabled = bool(enabled)


@contextmanager
def switched(state: Any, enabled: bool) -> Iterator[None]:
    """``state.enabled`` set for the block, restored on exit (the ``use_*`` switches of the C paths)."""
    before = state.enabled
    state.enabled = bool(enabled)
    try:
        yield
    finally:
        state.enabled = before


def use_cpu_kernels(enabled: bool = True) -> AbstractContextManager[None]:
    """Temporarily switch the C kernels on or off; restores the setting on exit."""
    return switched(_STATE, enabled)


def cpu_kernels_enabled() -> bool:
    """Whether the C kernels are switched on (they may still be unavailable: see ``status``)."""
    return _STATE.enabled


def status() -> str:
    """One line: on/off, the library and its flags, or why it could not be built."""
    if not _STATE.enabled:
        return f"C kernels off ({ENV_ENABLE}=0 or set_cpu_kernels(False))"
    if _STATE.error:
        return f"C kernels unavailable: {_STATE.error}"
    if _STATE.library is None:
        return "C kernels not built yet"
    flags = " ".join(_STATE.flags) or "no optional flags"
    return f"C kernels {_STATE.path} ({flags}), streaming stores from {stream_from() / 2**20:g} MiB moved"


def stream_from(nbytes: int | None = None) -> int:
    """The bytes a call must move (forward 8, backward 12 per element) for its output to be written around
    the caches; ``nbytes`` sets it (0: always; -1: back to the default, the L3's size; ``ACTLAB_STREAM_FROM``
    sets it when the library loads). Loads the library."""
    return _loaded().actlab_stream_from(-2 if nbytes is None else nbytes)


def cache_dir() -> Path:
    """The folder for compiled libraries: ``ACTLAB_KERNEL_CACHE``, else ``$XDG_CACHE_HOME/actlab/kernels``
    (``~/.cache/actlab/kernels``); a temporary folder where that cannot be created."""
    if os.environ.get(ENV_CACHE):
        return Path(os.environ[ENV_CACHE])
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "actlab" / "kernels"
    try:
        base.mkdir(parents=True, exist_ok=True)
        return base
    except OSError:  # a read-only home: build where the process may write
        return Path(tempfile.gettempdir()) / f"actlab-kernels-{os.getuid() if hasattr(os, 'getuid') else 0}"


def compiler() -> str | None:
    """The C compiler: ``$CC``, else gcc, else cc, else None."""
    return os.environ.get("CC") or shutil.which("gcc") or shutil.which("cc")


def _fingerprint(cc: str, flags: list[str]) -> str:
    """What the binary depends on: source, compiler version, flags and this CPU's features."""
    try:
        version = subprocess.run(
            [*shlex.split(cc), "--version"], capture_output=True, text=True, timeout=30
        ).stdout
    except (OSError, subprocess.SubprocessError):
        version = ""
    cpuinfo = Path("/proc/cpuinfo")
    lines = cpuinfo.read_text().splitlines() if cpuinfo.exists() else []
    cpu = next((line for line in lines if line.startswith("flags")), "")
    parts = [SOURCE.read_bytes().decode(), cc, version, " ".join(flags), platform.machine(), cpu]
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:20]


def _compile(cc: str, flags: list[str], target: Path) -> None:
    """Compile into a temporary file beside ``target``, then rename: concurrent builds never see half."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(suffix=".so", dir=target.parent)
    os.close(fd)
    try:
        cmd = [*shlex.split(cc), *BASE_FLAGS, *flags, "-o", tmp, str(SOURCE)]  # CC may be "ccache gcc"
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)} failed: {done.stderr.strip()[:500]}")
        os.chmod(tmp, 0o755)  # mkstemp's 0600 would keep a shared cache folder's library from others
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _build() -> ctypes.CDLL:
    """The library for this machine: from the cache, or compiled with the first flags that work."""
    cc = compiler()
    if cc is None:
        raise RuntimeError("no C compiler found (set CC)")
    errors = []
    for flags in OPTIONAL_FLAGS:
        target = cache_dir() / f"kernels-{_fingerprint(cc, flags)}.so"
        try:
            if not target.exists():
                _compile(cc, flags, target)
            lib = ctypes.CDLL(str(target))
        except (OSError, RuntimeError, subprocess.SubprocessError) as err:
            errors.append(str(err).splitlines()[0][:300])
            continue
        _STATE.path, _STATE.flags = target, tuple(flags)
        return _declare(lib)
    raise RuntimeError("; ".join(errors))


def _declare(lib: ctypes.CDLL) -> ctypes.CDLL:
    if lib.actlab_kernels_abi() != ABI:
        raise RuntimeError(f"{lib._name} is not built from this version of kernels.c")
    ptr, i64, i32 = ctypes.c_void_p, ctypes.c_int64, ctypes.c_int
    for name in KERNELS:
        parts = ("fwd", "bwd", "limits", "substitutes")
        fwd, bwd, lims, subs = (getattr(lib, f"{name}_{part}") for part in parts)
        fwd.argtypes = [ptr, ptr, i64, ptr, i32, i32]  # x, y, n, params, threads, io
        bwd.argtypes = [
            ptr,
            ptr,
            ptr,
            i64,
            ptr,
            i32,
            ptr,
            i32,
            i32,
        ]  # g, x, grad_x, n, params, want, sums, threads, io
        lims.argtypes = subs.argtypes = [ptr, ptr]  # params, (f(-inf), f(+inf))
        fwd.restype = bwd.restype = lims.restype = None
        subs.restype = i32
    lib.actlab_stream_from.argtypes, lib.actlab_stream_from.restype = [i64], i64
    return lib


def library() -> ctypes.CDLL | None:
    """The loaded library, built on first use; None (warned once) where it cannot be built."""
    if _STATE.library is None and _STATE.error is None:
        threshold = _stream_from_env()  # a bad value raises before anything is built, on every call
        try:
            lib = _build()
            # looked up once: a call then skips two getattrs and an f-string
            _STATE.functions = {
                name: (getattr(lib, f"{name}_fwd"), getattr(lib, f"{name}_bwd")) for name in KERNELS
            }
            _STATE.library = lib
            _STATE.dtypes = frozenset(d for d in IO_KINDS if d is not torch.float16 or lib.actlab_has_f16())
        except Exception as err:  # no compiler, a compile error, an unloadable library...
            _STATE.error = f"{type(err).__name__}: {err}"[:600]
            warnings.warn(
                f"actlab: the C kernels could not be built, so the compiled inductor kernels run instead "
                f"(set {ENV_ENABLE}=0 to skip this): {_STATE.error}",
                RuntimeWarning,
                stacklevel=3,
            )
        else:
            if threshold is not None:
                lib.actlab_stream_from(threshold)
    return _STATE.library


def _stream_from_env() -> int | None:
    """``ACTLAB_STREAM_FROM`` as bytes, None where it is not set."""
    text = os.environ.get(ENV_STREAM_FROM, "").strip()
    if not text:
        return None
    if not text.isdigit():
        raise ValueError(
            f"{ENV_STREAM_FROM} must be a whole number of bytes >= 0 (0: stream every output; unset: the "
            f"L3's size), got {text!r}"
        )
    return int(text)


def reset() -> None:
    """Forget the loaded library and any build error (tests; after changing the cache folder or CC)."""
    _STATE.library, _STATE.error, _STATE.path, _STATE.flags = None, None, None, ()
    _STATE.dtypes = frozenset()
    _STATE.functions, _STATE.addresses = {}, {}


def applies(name: str, x: Tensor, params: tuple[Tensor, ...]) -> bool:
    """Whether a C kernel serves this call: float32, bfloat16 or float16 (where the build converts it) on the
    CPU, a dense input, parameters of the sizes in ``KERNELS`` (scalars; PAU of degrees (5, 4))."""
    if not _STATE.enabled or not x.is_cpu or x.dtype not in IO_KINDS:
        return False
    sizes = KERNELS.get(name)
    if sizes is None or len(params) != len(sizes):
        return False
    for p, size in zip(params, sizes, strict=True):  # one loop (lengths checked): this runs on every call
        if p.numel() != size or not p.is_cpu or p.dtype not in _LARGEST:
            return False  # not the kernel's parameters (per channel, other degrees...): compiled path
    if not (x.is_contiguous() or x.is_contiguous(memory_format=torch.channels_last)):
        return False
    return (_STATE.library is not None or library() is not None) and x.dtype in _STATE.dtypes


def _loaded() -> ctypes.CDLL:
    lib = library()
    if lib is None:
        raise RuntimeError(f"actlab's C kernels are not available: {status()}")
    return lib


def _functions(name: str) -> tuple[Any, Any]:
    """The kernel's (forward, backward) C functions, loading the library if needed."""
    found = _STATE.functions.get(name)
    if found is None:
        _loaded()
        found = _STATE.functions[name]
    return found


def function_addresses(name: str) -> tuple[int, int]:
    """The addresses of the kernel's C forward and backward (the C++ op calls them), loading the library."""
    found = _STATE.addresses.get(name)
    if found is None:
        fwd, bwd = _functions(name)
        found = _STATE.addresses[name] = (_address(fwd), _address(bwd))
    return found


def _address(function: Any) -> int:
    return ctypes.cast(function, ctypes.c_void_p).value or 0


def param_values(params: tuple[Tensor, ...]) -> ctypes.Array:
    """The parameters' values, flattened, as the kernels' float array (what a backward reuses)."""
    if not params:
        return _NO_VALUES  # the kernels only read it
    values = [v for p in params for v in ((p.item(),) if p.numel() == 1 else p.reshape(-1).tolist())]
    return _FloatArray(*values)


_FloatArray = ctypes.c_float * MAX_PARAMS
_SumArray = ctypes.c_double * MAX_PARAMS
_NO_VALUES = _FloatArray()


def _threads() -> int:
    return max(1, torch.get_num_threads())


def forward(name: str, x: Tensor, params: tuple[Tensor, ...], values: ctypes.Array | None = None) -> Tensor:
    """f(x), the ±inf limits included (``applies`` must hold: a dtype of the kernels', dense, on the CPU);
    ``values`` are ``param_values(params)`` where the caller has them."""
    y = torch.empty_like(x)
    values = param_values(params) if values is None else values
    _functions(name)[0](x.data_ptr(), y.data_ptr(), x.numel(), values, _threads(), IO_KINDS[x.dtype])
    return y


def backward(
    name: str,
    g: Tensor,
    x: Tensor,
    params: tuple[Tensor, ...],
    needs: tuple[bool, ...],
    values: ctypes.Array | None = None,
) -> tuple[Tensor | None, ...]:
    """Gradients for (x, *params) (``applies`` must hold); None where ``needs`` says not needed. At ±inf
    inputs they are the derivative's values at ±max, as in ``autograd.evaluate_backward``. ``values``:
    as in ``forward``."""
    bwd = _functions(name)[1]
    if g.dtype != x.dtype or g.shape != x.shape or g.stride() != x.stride():
        g = torch.empty_like(x).copy_(g)  # the same layout as x, element for element
    gx = torch.empty_like(x)
    sums = _SumArray()
    want = _wanted_sums(params, needs[1:]) if any(needs[1:]) else 0
    values = param_values(params) if values is None else values
    bwd(
        g.data_ptr(),
        x.data_ptr(),
        gx.data_ptr(),
        x.numel(),
        values,
        want,
        sums,
        _threads(),
        IO_KINDS[x.dtype],
    )
    if not want:  # the common case of fixed parameters (or none): no loop over them
        return (gx if needs[0] else None, *(None,) * len(params))
    out: list[Tensor | None] = [gx if needs[0] else None]
    offset = 0
    for p, need in zip(params, needs[1:], strict=True):
        out.append(_param_grad(sums[offset : offset + p.numel()], p) if need else None)
        offset += p.numel()
    return tuple(out)


def _wanted_sums(params: tuple[Tensor, ...], needs: tuple[bool, ...]) -> int:
    """The kernel's ``want`` mask: bit k for the gradient sum of parameter value k (values in order)."""
    mask, offset = 0, 0
    for p, need in zip(params, needs, strict=True):
        if need:
            mask |= ((1 << p.numel()) - 1) << offset
        offset += p.numel()
    return mask


def _param_grad(totals: list[float], p: Tensor) -> Tensor:
    """Double sums as the parameter's gradient: ±inf beyond the dtype's range, as a float32 sum would be."""
    limit = _LARGEST[p.dtype]  # applies() let no other dtype through
    values = [math.copysign(math.inf, t) if math.isfinite(t) and abs(t) > limit else t for t in totals]
    if p.dim() == 0:
        return torch.scalar_tensor(values[0], dtype=p.dtype)  # 1.3 µs; torch.tensor 3.9, a list 3× that
    return torch.tensor(values, dtype=p.dtype).reshape(p.shape)


def substitutes_limits(name: str, params: tuple[Tensor, ...]) -> bool:
    """Whether the C forward puts the probed limits at ±inf for these parameters (where the formula's own
    values there differ from them); elsewhere its loop skips that step."""
    out = (ctypes.c_float * 2)()
    return bool(getattr(_loaded(), f"{name}_substitutes")(param_values(params), out))


def probe_limits(name: str, params: tuple[Tensor, ...]) -> tuple[float, float]:
    """f(-inf) and f(+inf) as the C forward finds them (±max and ±max/2, the rule of ``autograd._limits``)."""
    out = (ctypes.c_float * 2)()
    getattr(_loaded(), f"{name}_limits")(param_values(params), out)
    return out[0], out[1]


__all__ = [
    "ENV_CACHE",
    "ENV_ENABLE",
    "KERNELS",
    "applies",
    "backward",
    "cache_dir",
    "compiler",
    "cpu_kernels_enabled",
    "forward",
    "function_addresses",
    "library",
    "param_values",
    "probe_limits",
    "reset",
    "set_cpu_kernels",
    "status",
    "substitutes_limits",
    "use_cpu_kernels",
]
