"""How the C allocator hands memory back: presets that must be in the environment before torch loads.

glibc maps every large tensor fresh and unmaps it on free, so each new activation tensor is page-faulted
and zeroed again: at 2^24 float32 elements a copy into a fresh tensor ran at 6.5 GB/s against 42–78 GB/s
into a reused one, and eager relu forward+backward took 40 ms instead of 8.5 ms (docs/performance.md).
Raising both thresholds makes glibc keep and reuse freed blocks; the cost is that the process's memory
does not shrink below its peak, which is what a training process does anyway.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

# Environment variables that decide how the C allocator behaves (read once, when it starts).
ALLOCATOR_VARS = (
    "MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "MALLOC_TOP_PAD_", "MALLOC_ARENA_MAX",
    "THP_MEM_ALLOC_ENABLE", "LD_PRELOAD",
)  # fmt: skip
_KEEP = "17179869184"  # 16 GiB: larger than any block, so glibc never maps or trims per tensor
# "reuse": glibc keeps freed blocks; "thp": PyTorch's CPU allocator asks for transparent huge pages.
ALLOCATOR_PRESETS: dict[str, dict[str, str]] = {
    "reuse": {"MALLOC_MMAP_THRESHOLD_": _KEEP, "MALLOC_TRIM_THRESHOLD_": _KEEP},
    "thp": {"THP_MEM_ALLOC_ENABLE": "1"},
    "reuse+thp": {
        "MALLOC_MMAP_THRESHOLD_": _KEEP,
        "MALLOC_TRIM_THRESHOLD_": _KEEP,
        "THP_MEM_ALLOC_ENABLE": "1",
    },
}
DEFAULT_PRESET = "reuse"
OPT_OUT = "ACTLAB_ALLOCATOR"  # "asis" keeps the environment as it is


def startup_env(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The variables to add before torch loads: the default preset, unless the user set any allocator
    variable or opted out with ACTLAB_ALLOCATOR=asis (empty: nothing to do)."""
    environ = os.environ if environ is None else environ
    if os.name != "posix" or environ.get(OPT_OUT, DEFAULT_PRESET) == "asis":
        return {}
    if any(k in environ for k in ALLOCATOR_VARS):
        return {}
    return dict(ALLOCATOR_PRESETS[environ.get(OPT_OUT, DEFAULT_PRESET)])
