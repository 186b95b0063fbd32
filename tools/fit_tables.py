"""Fit the piecewise polynomials that the C kernels (kernels.c) evaluate instead of a formula.

A fixed smooth function of one variable (no parameters inside it) can be tabulated: on 32 intervals of width
W a polynomial of degree 5 or 6 in t = x - centre is exact to float32 rounding, and the kernel picks each
lane's coefficients with one vector permute (AVX-512) or a gather. Tabulated here:

* Serf's g(x) = erf(softplus(x)) and its derivative d = g + x·g' (the formula takes two exponentials, a
  log-sum and an erf polynomial per direction). Their nearest complex singularities, where 1 + e^x = 0, lie
  pi from the real axis.
* ErfAct's h(u) = erf(e^u): x·erf(alpha·e^(beta·x)) = sign(alpha)·x·h(beta·x + ln|alpha|) for any parameters,
  so one table serves the forward of tensors too small for the tables kernels.c fits at run time (for
  Pserf's gamma and ErfAct's alpha: "Tables fitted at run time" there), which also give ErfAct's backward.

Outside each table's range the kernels use closed forms or the formula (see kernels.c).

Run: python tools/fit_tables.py [--check] to rewrite the tables' block in kernels.c (between its BEGIN and
END markers: the kernel cache is keyed by kernels.c's text, so the tables live in it). Reference values come
from mpmath at 40 digits; each fit is least squares reweighted towards minimax (Lawson) for relative error,
with |f| floored near a root (Serf's d at x ~ -1.2, where no float32 form of it keeps relative precision).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import mpmath
import numpy as np

N = 32  # intervals per table: two AVX-512 registers of coefficients, one vpermt2ps each
KERNELS = Path(__file__).resolve().parents[1] / "src/actlab/activations/csrc/kernels.c"
BEGIN, END = "/* BEGIN fitted tables", "/* END fitted tables */"
mpmath.mp.dps = 40


def serf_g(x: float) -> float:
    """erf(softplus(x)) to double precision."""
    return float(mpmath.erf(mpmath.log1p(mpmath.exp(mpmath.mpf(x)))))


def serf_d(x: float) -> float:
    """Serf's derivative erf(sp) + x·(2/sqrt(pi))·exp(-sp²)·sigmoid(x) to double precision."""
    x = mpmath.mpf(x)
    sp = mpmath.log1p(mpmath.exp(x))
    gauss = 2 / mpmath.sqrt(mpmath.pi) * mpmath.exp(-sp * sp)
    return float(mpmath.erf(sp) + x * gauss / (1 + mpmath.exp(-x)))


def erf_exp(u: float) -> float:
    """erf(e^u) to double precision."""
    return float(mpmath.erf(mpmath.exp(mpmath.mpf(u))))


@dataclass(frozen=True)
class Table:
    """One tabulated function: its C name, reference, start x0, interval width w (x0 + w/2 and w dyadic, so
    each centre is exact in float32), degree, and the floor of |f| in the relative error."""

    name: str
    ref: Callable[[float], float]
    x0: float
    w: float
    deg: int
    floor: float = 0.0


TABLES = [
    Table("SERF_G", serf_g, -9.5, 0.4375, 5),  # degree 5 is already at float32's rounding (7e-8)
    Table("SERF_D", serf_d, -9.5, 0.4375, 6, floor=0.05),
    Table("ERFACT_H", erf_exp, -10.5, 0.375, 6),
]


def fit(f, a: float, b: float, deg: int, floor: float, points: int = 400, rounds: int = 60) -> np.ndarray:
    """Coefficients (constant first) of p(t), t = x - (a + b)/2, minimising max |p - f| / max(|f|, floor)."""
    c = (a + b) / 2
    k = np.arange(points)
    x = c + (b - a) / 2 * np.cos(np.pi * (k + 0.5) / points)
    y = np.array([f(v) for v in x])
    scale = np.maximum(np.abs(y), floor)
    vander = np.vander(x - c, deg + 1, increasing=True)
    weights = np.ones(points)
    for _ in range(rounds):  # Lawson: weights grow where the error is largest
        sw = np.sqrt(weights) / scale
        coef = np.linalg.lstsq(vander * sw[:, None], y * sw, rcond=None)[0]
        err = np.abs(vander @ coef - y) / scale
        weights *= err / err.max() + 1e-12
        weights /= weights.sum()
    return coef


def coefficients(table: Table) -> np.ndarray:
    """float32 coefficients, shape (deg + 1, N): row k is t^k's coefficient in each interval."""
    a = table.x0 + table.w * np.arange(N)
    fits = [fit(table.ref, lo, lo + table.w, table.deg, table.floor) for lo in a]
    return np.array(fits).T.astype(np.float32)


def worst(table: Table, coef: np.ndarray, per_interval: int = 300) -> float:
    """Largest relative error (|f| floored) of the float32 coefficients, evaluated in double."""
    out = 0.0
    for i in range(N):
        a = table.x0 + i * table.w
        x = np.linspace(a, a + table.w, per_interval)
        p = np.polyval(coef[::-1, i].astype(np.float64), x - (a + table.w / 2))
        y = np.array([table.ref(v) for v in x])
        out = max(out, float(np.max(np.abs(p - y) / np.maximum(np.abs(y), table.floor))))
    return out


def c_table(table: Table, coef: np.ndarray) -> str:
    """The table's macros and coefficient array in C."""
    rows = ",\n".join("    {" + ", ".join(f"{v!r}f" for v in row.tolist()) + "}" for row in coef)
    n = table.name
    return (
        f"#define {n}_X0 {table.x0}f\n#define {n}_W {table.w}f\n#define {n}_DEG {table.deg}\n"
        f"static const float {n}[{len(coef)}][{N}] __attribute__((aligned(64))) = {{\n{rows}\n}};\n"
    )


def c_block(coefs: list[np.ndarray]) -> str:
    """The tables' block of kernels.c, markers included."""
    head = (
        f"{BEGIN}: generated by tools/fit_tables.py, do not edit. Polynomials in t = x - centre on\n"
        f"   {N} intervals of width NAME_W from NAME_X0; row k holds t^k's coefficients. */\n"
    )
    return head + "".join(c_table(t, c) for t, c in zip(TABLES, coefs, strict=True)) + END


def write_into(path: Path, block: str) -> None:
    """Replace the text from BEGIN to END in ``path`` with ``block``."""
    text = path.read_text()
    start, stop = text.index(BEGIN), text.index(END) + len(END)
    path.write_text(text[:start] + block + text[stop:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="print the fits' errors to stderr")
    args = parser.parse_args()
    coefs = [coefficients(t) for t in TABLES]
    if args.check:
        for table, coef in zip(TABLES, coefs, strict=True):
            print(f"{table.name}: {worst(table, coef):.2e}", file=sys.stderr)
    write_into(KERNELS, c_block(coefs))


if __name__ == "__main__":
    main()
