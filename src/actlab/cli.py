"""The ``actlab`` command: list, info and plot activations; train, compare, report and bench.

Each group of commands lives beside the code it drives and registers itself with ``add_parser``;
this module only assembles them and turns user errors into one clean line (exit code 2).
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path

# Modules that add commands with add_parser(subparsers)
COMMAND_MODULES = ("actlab.train.command", "actlab.experiments.command", "actlab.bench")


def _cmd_list(args: argparse.Namespace) -> int:
    from actlab.activations.registry import get_entry, list_acts

    rows = [(name, get_entry(name).formula, get_entry(name).paper) for name in list_acts()]
    if args.json:
        print(json.dumps([dict(zip(("name", "formula", "paper"), r, strict=True)) for r in rows], indent=2))
        return 0
    width = max(len(r[0]) for r in rows)
    for name, formula, paper in rows:
        print(f"{name:<{width}}  {formula}" + (f"  [{paper}]" if paper else ""))
    return 0


def _cmd_info(args: argparse.Namespace) -> int:
    from actlab.activations import act_info

    info = act_info(args.name)
    if args.json:
        print(json.dumps(info.to_dict(), indent=2))
        return 0
    low = "none on [-20, 20]" if info.minimum is None else f"{info.minimum:.6g} at x = {info.argmin:.6g}"
    lines = [
        ("name", info.name),
        ("formula", info.formula),
        ("paper", info.paper or "-"),
        ("defaults", ", ".join(f"{k}={v!r}" for k, v in info.defaults.items()) or "-"),
        ("learnable", ", ".join(info.learnable) or "-"),
        ("minimum", low),
        ("bounded", f"below: {info.bounded_below}, above: {info.bounded_above}"),
        ("monotonic", str(info.monotonic)),
        ("smooth (C1)", str(info.smooth)),
        ("f(0), f'(0)", f"{info.value_at_zero:.6g}, {info.slope_at_zero:.6g}"),
    ]
    for key, value in lines:
        print(f"{key:<12} {value}")
    return 0


def _cmd_plot(args: argparse.Namespace) -> int:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    lo, hi = args.range
    if not lo < hi:
        raise ValueError(f"--range needs LOW < HIGH, got {lo} {hi}")
    from actlab.activations import act_curve

    data = {spec: act_curve(spec, lo, hi) for spec in args.names}
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for spec, (x, y, dy) in data.items():
        ax.plot(x, dy if args.derivative else y, label=spec, lw=1.8)
    ax.axhline(0, color="gray", lw=0.6)
    ax.axvline(0, color="gray", lw=0.6)
    ax.grid(alpha=0.3)
    ax.set_xlabel("x")
    ax.set_ylabel("f'(x)" if args.derivative else "f(x)")
    ax.set_title(("Derivatives" if args.derivative else "Activations") + f" on [{lo:g}, {hi:g}]")
    ax.legend()
    out = Path(args.output)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=120, bbox_inches="tight")
    plt.close(fig)
    print(f"wrote {out}")
    return 0


def _add_activation_commands(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("list", help="list the registered activations", description="List every activation.")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=_cmd_list)

    p = sub.add_parser(
        "info",
        help="formula, paper, defaults and measured properties of one activation",
        description=("Show an activation's formula, paper, defaults and numerically measured properties."),
    )
    p.add_argument("name", help="a name or 'name(key=value, ...)', e.g. 'smu(alpha=0.25)'")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=_cmd_info)

    p = sub.add_parser(
        "plot",
        help="plot activation curves or their derivatives to a PNG",
        description="Plot activations (or with --derivative their derivatives) on one figure.",
    )
    p.add_argument("names", nargs="+", metavar="NAME", help="activation names or specs")
    p.add_argument("--derivative", action="store_true", help="plot f'(x) instead of f(x)")
    p.add_argument("--range", nargs=2, type=float, default=(-5.0, 5.0), metavar=("LOW", "HIGH"))
    p.add_argument("-o", "--output", required=True, metavar="FILE.png", help="where to write the figure")
    p.set_defaults(func=_cmd_plot)


def build_parser() -> argparse.ArgumentParser:
    """The full ``actlab`` argument parser."""
    parser = argparse.ArgumentParser(
        prog="actlab",
        description="Exact, fast smooth activations for PyTorch, and a lab that tests if they beat ReLU.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_activation_commands(sub)
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as err:
            if err.name is None or not name.startswith(err.name):  # a missing dependency is a real error
                raise
            continue
        module.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``actlab`` console script; returns the exit code."""
    from actlab.data import DataError

    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (ValueError, DataError) as err:
        print(f"actlab: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("actlab: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `actlab list | head`: the reader left, which is not an error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


def console_main() -> None:
    """The console script: start under the allocator preset that keeps freed memory for reuse (it must be
    in the environment before torch loads, so the process re-executes itself once), then ``main``."""
    from actlab.allocator import startup_env

    extra = startup_env()
    if extra and sys.argv[1:2] != ["bench"]:  # the bench chooses its allocator itself (--allocator)
        env = {**os.environ, **extra}
        os.execve(sys.executable, [sys.executable, "-m", "actlab.cli", *sys.argv[1:]], env)
    sys.exit(main())


if __name__ == "__main__":
    console_main()
