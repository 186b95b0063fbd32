"""The autograd op over the C kernels in C++ (``csrc/c_op.cpp``), where one can be built.

``fused.c_call`` sends each call that needs a gradient and that a C kernel serves to ``apply``: the same op as
``fused``'s Python ``CFusedFunction`` (the input and parameters saved, the C forward, the C backward with the
parameter sums asked for; a double backward by the eager ops), with no Python in either direction. In a
training step a Python ``autograd.Function`` costs ~30 µs a call, its code cold in the caches after the
convolutions: 3–4 % of simple_cnn's step for three activations (docs/performance.md, session of 2026-12-06).

Built once per machine and torch version with ``torch.utils.cpp_extension`` (a C++ compiler and ninja; ~35 s)
into the C kernels' cache folder, and loaded on first use. Where it cannot be built, a warning says why once
and the Python op serves. ``ACTLAB_CPP_OP=0`` or ``set_cpp_op(False)`` switch it off.
"""

from __future__ import annotations

import hashlib
import os
import warnings
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType

import torch
from torch import Tensor

from . import cpu_kernels

try:
    import fcntl
except ImportError:  # not POSIX: torch's own lock file alone
    fcntl = None  # type: ignore[assignment]

ENV_ENABLE = "ACTLAB_CPP_OP"  # "0" turns the C++ op off (the Python op serves)
SOURCE = Path(__file__).with_name("csrc") / "c_op.cpp"


@dataclass
class _State:
    enabled: bool = os.environ.get(ENV_ENABLE, "1").strip().lower() not in ("0", "false", "off", "no")
    extension: ModuleType | None = None
    error: str | None = None  # why it could not be built (then it is not retried)
    # the kernel's C forward and backward (their addresses: a library built again has others) → its slot
    slots: dict[tuple[int, int], int] = field(default_factory=dict)


_STATE = _State()


def set_cpp_op(enabled: bool) -> None:
    """Switch the C++ op on or off (off: the Python ``autograd.Function`` over the same C kernels)."""
    _STATE.enabled = bool(enabled)


def use_cpp_op(enabled: bool = True) -> AbstractContextManager[None]:
    """Temporarily switch the C++ op on or off; restores the setting on exit."""
    return cpu_kernels.switched(_STATE, enabled)


def status() -> str:
    """One line: on/off, loaded, or why it could not be built."""
    if not _STATE.enabled:
        return f"C++ op off ({ENV_ENABLE}=0 or set_cpp_op(False))"
    if _STATE.error:
        return f"C++ op unavailable: {_STATE.error}"
    return "C++ op loaded" if _STATE.extension is not None else "C++ op not built yet"


def _build() -> ModuleType:
    from torch.utils import cpp_extension  # imported here: ~0.3 s, and only where the op is used

    tag = hashlib.sha256(SOURCE.read_bytes() + torch.__version__.encode()).hexdigest()[:16]
    folder = cpu_kernels.cache_dir() / f"c_op-{tag}"
    folder.mkdir(parents=True, exist_ok=True)
    with _one_build_at_a_time(folder):
        # torch's own lock file: one here now was left by a build killed mid-way (we hold the lock every
        # builder takes first), and torch would wait for it forever
        (folder / "lock").unlink(missing_ok=True)
        return cpp_extension.load(
            name=f"actlab_c_op_{tag}",
            sources=[str(SOURCE)],
            build_directory=str(folder),
            extra_cflags=["-O2"],
            verbose=False,
        )


@contextmanager
def _one_build_at_a_time(folder: Path) -> Iterator[None]:
    """An exclusive lock on the build folder across processes, which the system frees if its holder dies."""
    with open(folder / "actlab-build.lock", "w") as handle:
        if fcntl is not None:
            fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def extension() -> ModuleType | None:
    """The loaded extension, built on first use; None (warned once) where it cannot be built."""
    if _STATE.extension is None and _STATE.error is None:
        try:
            _STATE.extension = _build()
        except Exception as err:  # no C++ compiler or ninja, headers missing, a compile error...
            lines = str(err).strip().splitlines() or [""]  # a build error's first and last lines say most
            _STATE.error = f"{type(err).__name__}: {' … '.join(dict.fromkeys([lines[0], lines[-1]]))}"[:600]
            warnings.warn(
                f"actlab: the C++ autograd op could not be built, so a Python autograd.Function calls the C "
                f"kernels instead (slower per call, same results): {_STATE.error}",
                RuntimeWarning,
                stacklevel=3,
            )
    return _STATE.extension


def apply(name: str, x: Tensor, params: tuple[Tensor, ...], eager_backward: Callable) -> Tensor | None:
    """``name``'s C kernels on ``x`` as an autograd op in C++ (``cpu_kernels.applies`` must hold); None where
    the op is off or could not be built. ``eager_backward(g, x, params, needs)`` serves a double backward."""
    if not _STATE.enabled:
        return None
    addresses = cpu_kernels.function_addresses(name)
    slot = _STATE.slots.get(addresses)
    if slot is None:
        ext = extension()
        if ext is None:
            return None
        slot = _STATE.slots[addresses] = ext.register_kernel(*addresses, eager_backward)
    return _STATE.extension.apply(x, list(params), slot)


__all__ = ["ENV_ENABLE", "apply", "extension", "set_cpp_op", "status", "use_cpp_op"]
