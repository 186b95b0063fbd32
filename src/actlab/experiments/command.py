"""`actlab compare`, `actlab results`, `actlab report`: run a sweep of activations, list it, report on it.

`actlab compare` with no arguments runs the embedded default (`DEFAULT_SWEEP`): 8 activations × 5 paired
seeds of `simple_cnn` (width 12) on the bundled digits set, 6 epochs each, 40 trials. On 2 CPU cores
(torch 2.13, eager) it took 43-51 s wall with the default one worker, 38 s with `--workers 2` (identical
numbers: one torch thread per trial), report included; mean best val acc 96 %, mish +0.8 points over relu
(Holm p = 0.01), elu -1.7. Any flag changes that default; `--config sweep.toml` replaces it (format:
`actlab.experiments.sweep`). Rerunning the same command skips finished trials and resumes an interrupted
one from its checkpoint.

Exit codes: 0 done, 1 some trials failed, 2 user error (message on stderr, no traceback), 130 Ctrl-C.
Until `actlab.cli` wires these commands: `python -m actlab.experiments.command compare ...`.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from actlab.results import DB_NAME

if TYPE_CHECKING:
    from actlab.experiments.spec import SweepSpec

# The embedded default comparison (what `make demo` runs); seeds are a count: 0..4 for every activation.
# Sized so that every activation tensor stays below actlab's fused-kernel threshold (2^15 elements:
# 32 images × 12 channels × 8 × 8 = 24576), so nothing is compiled: on a fresh machine compiling eight
# activations' kernels would cost minutes, far more than these trials. Timing: see the module docstring.
DEFAULT_SWEEP: dict[str, Any] = {
    "acts": ["relu", "leaky_relu", "elu", "gelu", "swish", "mish", "smu", "smu1"],
    "seeds": 5,
    "base": {
        "model": "simple_cnn",
        "dataset": "digits",  # 1437 train / 360 val 8×8 images, bundled
        "epochs": 6,
        "batch_size": 32,  # images per step: 45 steps per epoch
        "lr": 0.05,  # peak lr of the cosine schedule
        "schedule": "cosine",
        "wd": 5e-4,
        "model_kwargs": {"width": 12},  # channels of the first two convs (the third has 24)
        "device": "cpu",  # too small for a GPU to help
        "threads": 1,  # the same numbers whatever --workers and the core count (CPU sums depend on it)
    },
}
DEFAULT_OUT = "actlab-compare"
METRICS = ("best_val_acc", "final_val_acc")


def split_list(text: str) -> list[str]:
    """`"relu,smu(alpha=0.25, mu=1e6)"` → `["relu", "smu(alpha=0.25, mu=1e6)"]`: commas inside
    parentheses do not split."""
    items, depth, cur = [], 0, ""
    for ch in text:
        depth += (ch == "(") - (ch == ")")
        if ch == "," and depth == 0:
            items.append(cur)
            cur = ""
        else:
            cur += ch
    items.append(cur)
    return [s.strip() for s in items if s.strip()]


def _acts(text: str) -> list[str]:
    out = split_list(text)
    if not out:
        raise argparse.ArgumentTypeError("expected activation names separated by commas")
    return out


def _seeds(text: str) -> int | list[int]:
    """`"5"` → 5 (seeds 0..4); `"0,3,7"` → [0, 3, 7]; `"7,"` → [7]."""
    try:
        if "," not in text:
            return int(text)
        return [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a count or comma-separated seeds, got {text!r}") from None


def _lrs(text: str) -> list[float]:
    try:
        return [float(s) for s in text.split(",") if s.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated learning rates, got {text!r}") from None


def _error(err: BaseException) -> int:
    print(f"actlab: error: {err}", file=sys.stderr)
    return 2


# ----------------------------------------------------------------------------------------------------------
# actlab compare


def default_spec() -> SweepSpec:
    from actlab.experiments.spec import SweepSpec

    return SweepSpec.from_dict(DEFAULT_SWEEP)


def spec_from_args(args: argparse.Namespace) -> tuple[SweepSpec, bool]:
    """The sweep the flags ask for: `--config` file or the embedded default, with every given flag
    applied on top. Returns (spec, whether it is the untouched embedded default)."""
    from actlab.experiments.spec import load_spec
    from actlab.train.command import config_from_args

    spec = load_spec(args.config) if args.config else default_spec()
    over: dict[str, Any] = {}
    if args.act and args.acts:
        raise ValueError("give --acts (a list) or --act, not both")
    if args.acts or args.act:
        over["acts"] = tuple(args.acts or [args.act])
    if args.seed is not None and args.seeds is not None:
        raise ValueError("give --seeds (a count or a list) or --seed, not both")
    if args.seeds is not None or args.seed is not None:
        over["seeds"] = args.seeds if args.seeds is not None else (args.seed,)
    if args.lrs:
        over.update(lrs=tuple(args.lrs), act_lrs=())
    elif args.lr is not None:
        over.update(lrs=(), act_lrs=())
    for name in ("model", "dataset"):  # comma lists: a grid over models / data sets
        if getattr(args, name):
            over[name + "s"] = tuple(split_list(getattr(args, name)))
            setattr(args, name, None)
    base = config_from_args(args, base=spec.base)
    if base != spec.base:
        over["base"] = base
    spec = spec.replace(**over) if over else spec
    return spec, not args.config and spec.sweep_id() == default_spec().sweep_id()


def act_curves(acts: Sequence[str], lo: float = -5.0, hi: float = 5.0, n: int = 501) -> dict[str, tuple]:
    """`{act: (x, f(x), f'(x))}` as float64 NumPy arrays, f' by autograd, for the report's figure.
    Activations that cannot be built or evaluated on a 1-D tensor are left out."""
    from actlab.activations import act_curve

    out = {}
    for act in acts:
        try:
            out[act] = act_curve(act, lo, hi, n)
        except Exception:  # a custom or shape-bound activation: the figure goes without it
            continue
    return out


def _conclusions(stats: Mapping[str, Any]) -> list[str]:
    """The report's plain-words lines: one per activation and model × data set, then the notes."""
    lines = []
    for g in stats["groups"]:
        lines.append(f"{g['model']} on {g['dataset']} ({stats['metric']}):")
        lines += [f"  {c['sentence']}" for c in g["comparisons"]]
        lines += [f"  note: {n}" for n in g["notes"]]
    return lines


def _store_acts(out: Path) -> list[str]:
    from actlab.results import ResultsStore

    with ResultsStore(out) as st:
        return list(dict.fromkeys(r["act"] for r in st.runs()))


def run_compare(args: argparse.Namespace) -> int:
    """Run `actlab compare`: sweep, then report; see the module docstring for exit codes."""
    from actlab.analysis.report import write_report
    from actlab.data import DataError
    from actlab.experiments.spec import canonical_act
    from actlab.experiments.sweep import run_sweep

    try:
        if args.workers < 1:
            raise ValueError(f"--workers {args.workers}: must be >= 1")
        spec, is_default = spec_from_args(args)
        out = Path(args.out or (DEFAULT_OUT if is_default else f"{DEFAULT_OUT}-{spec.sweep_id()}"))
        baseline = canonical_act(args.baseline)
        if baseline not in spec.acts:
            print(f"actlab: warning: baseline {baseline!r} is not among the activations", file=sys.stderr)
        result = run_sweep(spec, out, workers=args.workers, progress=not args.quiet)
    except (ValueError, DataError) as err:
        return _error(err)
    except KeyboardInterrupt:
        print("\ninterrupted: rerun the same command to resume", file=sys.stderr)
        return 130
    c = result.counts
    print(
        f"{c['total']} trials in {out}: {c['done']} done, {c['diverged']} diverged, {c['failed']} failed "
        f"({result.skipped} already closed, {result.ran} run now, {result.seconds:.0f} s)"
    )
    if len(_sweep_ids(out)) > 1:
        print(f"note: {out} holds runs of other sweeps too; the report covers all of them", file=sys.stderr)
    if not args.no_report:
        stats = write_report(
            out, baseline=baseline, metric=args.metric, act_curves=act_curves(_store_acts(out))
        )
        print(f"report: {stats['files']['html']} (and report.md)")
        print("\n".join(_conclusions(stats)))
    return 1 if c["failed"] else 0


def _sweep_ids(out: Path) -> list[str]:
    from actlab.results import ResultsStore

    with ResultsStore(out) as st:
        return [s["sweep_id"] for s in st.sweeps()]


# ----------------------------------------------------------------------------------------------------------
# actlab results / actlab report


def _existing_store(path: str) -> Path:
    """DIR holding an actlab.db (or the .db itself); ValueError otherwise, rather than creating one."""
    p = Path(path)
    db = p if p.suffix == ".db" else p / DB_NAME
    if not db.is_file():
        raise ValueError(f"no results store at {db} (run `actlab compare --out {p}` first)")
    return db


TABLE_COLUMNS = ("run_id", "act", "model", "dataset", "seed", "lr", "status", "best_val_acc", "best_epoch",
                 "final_val_acc", "seconds")  # fmt: skip


def _cell(key: str, v: Any) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "–"
    if key.endswith("_acc"):
        return f"{100 * v:.2f}%"
    if key == "seconds":
        return f"{v:.1f}"
    return f"{v:g}" if isinstance(v, float) else str(v)


def format_table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str] = TABLE_COLUMNS) -> str:
    """A plain-text table, numbers right-aligned, accuracies in percent."""
    cells = [list(columns)] + [[_cell(k, r.get(k)) for k in columns] for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(columns))]
    numeric = [all(isinstance(r.get(k), int | float) or r.get(k) is None for r in rows) for k in columns]
    lines = [
        "  ".join(c.rjust(w) if num else c.ljust(w) for c, w, num in zip(row, widths, numeric, strict=True))
        for row in cells
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(line.rstrip() for line in lines)


def run_results(args: argparse.Namespace) -> int:
    """Run `actlab results DIR`: one row per run as a table, CSV or JSON on stdout."""
    from actlab.analysis.report import results_rows, to_csv, to_json

    try:
        rows = results_rows(_existing_store(args.dir))
    except ValueError as err:
        return _error(err)
    if args.csv:
        sys.stdout.write(to_csv(rows))
    elif args.json:
        print(to_json(rows))
    else:
        print(format_table(rows) if rows else "no runs")
    return 0


def run_report(args: argparse.Namespace) -> int:
    """Run `actlab report DIR`: write report.html/report.md; `--json` prints the statistics."""
    from actlab.analysis.report import write_report
    from actlab.analysis.stats import jsonable

    try:
        db = _existing_store(args.dir)
        curves = act_curves(_store_acts(db))
        stats = write_report(db, args.out, baseline=args.baseline, metric=args.metric, act_curves=curves)
    except ValueError as err:
        return _error(err)
    if args.json:
        print(json.dumps(jsonable(stats), indent=2, allow_nan=False))
    else:
        print(f"report: {stats['files']['html']} (and report.md)")
        print("\n".join(_conclusions(stats)))
    return 0


# ----------------------------------------------------------------------------------------------------------
# argparse


def add_compare_arguments(p: argparse.ArgumentParser) -> None:
    from actlab.train.command import add_train_arguments

    a = p.add_argument
    a("--acts", type=_acts, help="activations, comma-separated, e.g. relu,swish,'smu(alpha=0.25, mu=1e6)'")
    a("--seeds", type=_seeds, help="number of paired seeds (5 = seeds 0..4) or a list, e.g. 0,3,7")
    a("--lrs", type=_lrs, help="lr grid for every activation, e.g. 0.1,0.05 (report keeps each one's best)")
    a("--config", help="sweep TOML file (acts, models, datasets, seeds, lrs, [train]); flags override it")
    a("--out", help=f"results folder (default: {DEFAULT_OUT}, or {DEFAULT_OUT}-<sweep id> when changed)")
    a("--workers", type=int, default=1, help="local worker processes; torch threads are split (default: 1)")
    a("--baseline", default="relu", help="activation the others are compared with (default: relu)")
    a("--metric", choices=METRICS, default="best_val_acc", help="compared metric (default: best_val_acc)")
    a("--no-report", action="store_true", help="run the sweep only")
    a("--quiet", action="store_true", help="no progress output")
    g = p.add_argument_group("training flags (--model and --dataset also take comma-separated lists)")
    add_train_arguments(g)


def add_parser(subparsers: Any) -> dict[str, argparse.ArgumentParser]:
    """Register `compare`, `results` and `report` on an `add_subparsers()` object."""
    fmt = argparse.RawDescriptionHelpFormatter
    compare = subparsers.add_parser("compare", help="compare activations over paired seeds, then report",
                                    description=__doc__, formatter_class=fmt)  # fmt: skip
    add_compare_arguments(compare)
    compare.set_defaults(func=run_compare)

    results = subparsers.add_parser("results", help="one row per run of a results folder")
    results.add_argument("dir", help="results folder (holds actlab.db)")
    fmt_group = results.add_mutually_exclusive_group()
    fmt_group.add_argument("--csv", action="store_true", help="CSV on stdout")
    fmt_group.add_argument("--json", action="store_true", help="JSON on stdout")
    results.set_defaults(func=run_results)

    report = subparsers.add_parser("report", help="write DIR/report.html and report.md with the statistics")
    report.add_argument("dir", help="results folder (holds actlab.db)")
    report.add_argument("--baseline", default="relu", help="activation the others are compared with")
    report.add_argument("--metric", choices=METRICS, default="best_val_acc", help="compared metric")
    report.add_argument("--out", help="where to write the report (default: DIR)")
    report.add_argument("--json", action="store_true", help="print the statistics as JSON")
    report.set_defaults(func=run_report)
    return {"compare": compare, "results": results, "report": report}


def main(argv: Sequence[str] | None = None) -> int:
    """Stand-alone entry: `python -m actlab.experiments.command {compare,results,report} ...`."""
    parser = argparse.ArgumentParser(prog="actlab", description="actlab comparison lab")
    add_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    func: Callable[[argparse.Namespace], int] = args.func
    return func(args)


if __name__ == "__main__":
    sys.exit(main())
