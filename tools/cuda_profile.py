"""Which kernels one forward+backward launches, and how long each takes (torch.profiler), per activation.

Usage: python tools/cuda_profile.py [--device cuda] [--numel N] SPEC...  (run by tools/cuda_check.sh profile)
"""

from __future__ import annotations

import argparse

import torch
from torch.profiler import ProfilerActivity, profile

from actlab.activations import get_act
from actlab.bench import _fwd_bwd  # one forward+backward, as the bench times it


def main() -> None:
    """Print each activation's kernels, by total device (or CPU) time, for a few profiled steps."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("specs", nargs="+")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--numel", type=int, default=1 << 26)
    args = parser.parse_args()
    cuda = args.device.startswith("cuda")
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])
    x = torch.randn(args.numel, device=args.device)
    g = torch.randn_like(x)
    for spec in args.specs:
        step = _fwd_bwd(get_act(spec)().to(args.device), x, g)
        for _ in range(3):  # compile and warm up
            step()
        if cuda:
            torch.cuda.synchronize()
        with profile(activities=activities) as prof:
            for _ in range(5):
                step()
            if cuda:
                torch.cuda.synchronize()
        sort = "self_cuda_time_total" if cuda else "self_cpu_time_total"
        print(f"== {spec}: 5 steps of {args.numel} elements")
        print(prof.key_averages().table(sort_by=sort, row_limit=12, max_name_column_width=70))


if __name__ == "__main__":
    main()
