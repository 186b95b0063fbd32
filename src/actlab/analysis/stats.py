"""Seed statistics: does activation X beat the baseline, by how much, and how sure are we?

Everything scipy has comes from `scipy.stats` (bootstrap, t-tests, Mann-Whitney, Wilcoxon, rankdata); only
Holm's step-down and Cohen's d are written out. Accuracies are fractions; sentences speak in points (x100).
Small samples never crash: a statistic that cannot be computed is NaN (None in JSON) with a `reason`.
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import stats

METRICS = ("best_val_acc", "final_val_acc")
NAN = float("nan")
LR_CAVEAT = (
    "lr is a nuisance hyper-parameter (tuning_playbook): at one shared lr the comparison favours whichever "
    "activation that lr suits; tune lr per activation or read the result as 'at this lr'."
)


@dataclass
class ActStats:
    """One activation on one model x dataset (at its chosen lr)."""

    model: str
    dataset: str
    act: str
    lr: float | None
    n: int
    mean: float = NAN
    std: float = NAN
    ci_low: float = NAN
    ci_high: float = NAN
    best: float = NAN
    best_epoch: int | None = None
    best_seed: int | None = None
    median_epoch_seconds: float = NAN
    n_diverged: int = 0
    n_failed: int = 0
    n_unfinished: int = 0
    seeds: list = field(default_factory=list)
    values: list = field(default_factory=list)
    reason: str | None = None


@dataclass
class Comparison:
    """`act` minus `baseline` on one model x dataset; `p_holm` is Holm-corrected within that group."""

    model: str
    dataset: str
    act: str
    baseline: str
    n_act: int
    n_base: int
    n_pairs: int
    paired: bool = False
    diff: float = NAN
    ci_low: float = NAN
    ci_high: float = NAN
    cohens_d: float = NAN
    welch_p: float = NAN
    mannwhitney_p: float = NAN
    paired_t_p: float = NAN
    wilcoxon_p: float = NAN
    decided_by: str | None = None
    p_raw: float = NAN
    p_holm: float = NAN
    verdict: str = "not tested"
    reason: str | None = None
    sentence: str = ""


# ----------------------------------------------------------------------------------------------------------
# building blocks


def _quiet(fn, *args, **kwargs) -> float:
    """p-value of a scipy test, NaN when the test is undefined (too few or constant values)."""
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        try:
            return float(fn(*args, **kwargs).pvalue)
        except ValueError:
            return NAN


def bootstrap_ci(
    data: Sequence[np.ndarray], statistic, *, seed: int = 0, n_resamples: int = 9999, level: float = 0.95
) -> tuple[float, float]:
    """Seeded BCa bootstrap CI of `statistic(*data, axis)` (percentile if BCa is undefined); NaN if n < 2."""
    data = [np.asarray(d, float) for d in data]
    if min(len(d) for d in data) < 2:
        return NAN, NAN
    if all(np.ptp(d) == 0 for d in data):  # constant samples: every resample gives the same value
        v = float(statistic(*data, axis=-1))
        return v, v
    for method in ("BCa", "percentile"):
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            res = stats.bootstrap(
                data,
                statistic,
                n_resamples=n_resamples,
                confidence_level=level,
                method=method,
                vectorized=True,
                rng=np.random.default_rng(seed),
            )
        lo, hi = (float(x) for x in res.confidence_interval)
        if math.isfinite(lo) and math.isfinite(hi):
            return lo, hi
    return NAN, NAN


def _mean(x, axis=-1):
    return np.mean(x, axis=axis)


def mean_ci(x: Sequence[float], *, seed: int = 0, n_resamples: int = 9999) -> tuple[float, float]:
    """95 % bootstrap CI of the mean."""
    return bootstrap_ci((np.asarray(x, float),), _mean, seed=seed, n_resamples=n_resamples)


def t_ci(test, a, b, **kwargs) -> tuple[float, float]:
    """95 % CI of the mean difference from the t-test that decides (``ttest_rel`` or Welch's
    ``ttest_ind``), so the interval excludes 0 exactly when that test's unadjusted p < 0.05.
    (A bootstrap interval of 5 seed pairs runs narrower than the test and can disagree with it.)"""
    try:
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ci = test(a, b, **kwargs).confidence_interval(0.95)
        return float(ci.low), float(ci.high)
    except (ValueError, ZeroDivisionError):
        return math.nan, math.nan


def cohens_d(a: Sequence[float], b: Sequence[float]) -> float:
    """(mean a - mean b) / pooled sd (ddof=1). 0 for identical constant samples, NaN if undefined."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    na, nb = len(a), len(b)
    if na < 2 or nb < 2:
        return NAN
    diff = a.mean() - b.mean()
    pooled = math.sqrt(((na - 1) * a.var(ddof=1) + (nb - 1) * b.var(ddof=1)) / (na + nb - 2))
    if pooled == 0:
        return 0.0 if diff == 0 else NAN
    return float(diff / pooled)


def holm(pvalues: Sequence[float]) -> list[float]:
    """Holm-Bonferroni step-down adjusted p-values; NaNs stay NaN and do not count as tests."""
    p = np.asarray(pvalues, float)
    out = np.full(p.shape, NAN)
    idx = np.flatnonzero(np.isfinite(p))
    order = idx[np.argsort(p[idx], kind="stable")]
    m = len(order)
    adjusted = np.maximum.accumulate((m - np.arange(m)) * p[order]) if m else []
    out[order] = np.minimum(adjusted, 1.0)
    return out.tolist()


# ----------------------------------------------------------------------------------------------------------
# from run rows to statistics


def _value(row: Mapping[str, Any], metric: str) -> float | None:
    v = row.get(metric)
    if row.get("status", "done") != "done" or v is None or not math.isfinite(float(v)):
        return None
    return float(v)


def run_epoch_seconds(row: Mapping[str, Any]) -> float | None:
    """A run's median seconds per epoch from `epoch_seconds` (list) or `sec_per_epoch`."""
    secs = [s for s in row.get("epoch_seconds") or () if s is not None]
    if secs:
        return float(np.median(secs))
    s = row.get("sec_per_epoch")
    return None if s is None else float(s)


def summarize_act(
    rows: Sequence[Mapping], metric: str = "best_val_acc", *, seed: int = 0, n_resamples: int = 9999
) -> ActStats:
    """Statistics of one activation's runs (one model x dataset x act, ideally one lr)."""
    r0 = rows[0]
    lrs = {r.get("lr") for r in rows}
    ok = [r for r in rows if _value(r, metric) is not None]
    st = ActStats(
        r0.get("model"), r0.get("dataset"), r0.get("act"), lrs.pop() if len(lrs) == 1 else None, len(ok)
    )
    statuses = [r.get("status") for r in rows]
    st.n_diverged, st.n_failed = statuses.count("diverged"), statuses.count("failed")
    st.n_unfinished = statuses.count("pending") + statuses.count("running")
    st.seeds, st.values = [r.get("seed") for r in ok], [_value(r, metric) for r in ok]
    secs = [s for s in map(run_epoch_seconds, rows) if s is not None]
    st.median_epoch_seconds = float(np.median(secs)) if secs else NAN
    if not ok:
        st.reason = "no completed run"
        return st
    x = np.asarray(st.values)
    st.mean = float(x.mean())
    top = ok[int(np.argmax(x))]
    st.best, st.best_epoch, st.best_seed = float(x.max()), top.get("best_epoch"), top.get("seed")
    if st.n < 2:
        st.reason = "n < 2: no spread or CI"
        return st
    st.std = float(x.std(ddof=1))
    st.ci_low, st.ci_high = mean_ci(x, seed=seed, n_resamples=n_resamples)
    return st


def compare(a: ActStats, b: ActStats, *, seed: int = 0, n_resamples: int = 9999) -> Comparison:
    """Tests of `a` against baseline `b` (uncorrected; `analyze` adds Holm and the verdict)."""
    x, y = np.asarray(a.values, float), np.asarray(b.values, float)
    bseed = dict(zip(b.seeds, b.values, strict=True))
    pairs = [(v, bseed[s]) for s, v in zip(a.seeds, a.values, strict=True) if s is not None and s in bseed]
    c = Comparison(a.model, a.dataset, a.act, b.act, len(x), len(y), len(pairs))
    c.cohens_d = cohens_d(x, y)
    if len(x) >= 2 and len(y) >= 2:
        c.welch_p = _quiet(stats.ttest_ind, x, y, equal_var=False)
        c.mannwhitney_p = _quiet(stats.mannwhitneyu, x, y, alternative="two-sided")
    if len(pairs) >= 2:
        px, py = np.asarray(pairs).T
        c.paired, c.diff = True, float(np.mean(px - py))
        c.paired_t_p = _quiet(stats.ttest_rel, px, py)
        c.wilcoxon_p = _quiet(stats.wilcoxon, px - py)
        c.ci_low, c.ci_high = t_ci(stats.ttest_rel, px, py)
        c.decided_by, c.p_raw = "paired t-test", c.paired_t_p
    elif len(x) and len(y):
        c.diff = float(x.mean() - y.mean())
        if len(x) >= 2 and len(y) >= 2:
            c.ci_low, c.ci_high = t_ci(stats.ttest_ind, x, y, equal_var=False)
            c.decided_by, c.p_raw = "Welch t-test", c.welch_p
    if c.decided_by is None:
        c.reason = f"too few runs to test (n = {len(x)} vs {len(y)}, {len(pairs)} pairs)"
    elif not math.isfinite(c.p_raw):
        c.reason = f"{c.decided_by} undefined (zero variance)"
    return c


def sentence(c: Comparison) -> str:
    """Plain words, e.g. 'mish vs relu: +0.80 points [0.30, 1.30], p = 0.004 after Holm (paired t-test,
    n = 5 pairs): significant (better)'."""
    head = f"{c.act} vs {c.baseline}: "
    if not math.isfinite(c.diff):
        return head + f"not tested ({c.reason})"
    ci = f"[{100 * c.ci_low:.2f}, {100 * c.ci_high:.2f}]" if math.isfinite(c.ci_low) else "[CI n/a]"
    head += f"{100 * c.diff:+.2f} points {ci}"
    if not math.isfinite(c.p_holm):
        return head + f", not tested ({c.reason})"
    p = "p < 0.001" if c.p_holm < 0.001 else f"p = {c.p_holm:.3g}"
    n = f"n = {c.n_pairs} pairs" if c.paired else f"n = {c.n_act} vs {c.n_base} runs"
    word = {"significantly better": "significant (better)", "significantly worse": "significant (worse)"}
    return head + f", {p} after Holm ({c.decided_by}, {n}): {word.get(c.verdict, 'not significant')}"


def _fmt_lr(lr: float | None) -> str:
    return "?" if lr is None else f"{lr:g}"


def select_lr(rows: Sequence[Mapping], metric: str) -> tuple[list[Mapping], str | None]:
    """Keep the lr with the best mean metric when one activation's runs used several; say so."""
    by_lr: dict[Any, list] = defaultdict(list)
    for r in rows:
        by_lr[r.get("lr")].append(r)
    if len(by_lr) == 1:
        return list(rows), None

    def score(lr):
        v = [x for x in (_value(r, metric) for r in by_lr[lr]) if x is not None]
        return np.mean(v) if v else -np.inf

    best = max(by_lr, key=score)
    tried = ", ".join(map(_fmt_lr, sorted(by_lr, key=lambda v: (v is None, v or 0))))
    note = (
        f"{rows[0].get('act')}: lrs {tried} tried; using lr = {_fmt_lr(best)} (best mean {metric}); "
        "picking lr on the same validation metric flatters every activation slightly"
    )
    return by_lr[best], note


def _group(rows, metric, baseline, alpha, seed, n_resamples) -> dict:
    by_act: dict[str, list] = defaultdict(list)
    for r in rows:
        by_act[r.get("act")].append(r)
    notes, acts = [], {}
    for act, act_rows in by_act.items():
        chosen, note = select_lr(act_rows, metric)
        notes += [note] if note else []
        acts[act] = summarize_act(chosen, metric, seed=seed, n_resamples=n_resamples)
    lrs = {s.lr for s in acts.values()}
    if len(acts) > 1 and len(lrs) == 1:
        notes.append(f"all activations share lr = {_fmt_lr(next(iter(lrs)))}: {LR_CAVEAT}")
    elif len(lrs) > 1:
        notes.append("lr per activation: " + ", ".join(f"{a} {_fmt_lr(s.lr)}" for a, s in acts.items()))
    comps = []
    if baseline in acts:
        comps = [
            compare(s, acts[baseline], seed=seed, n_resamples=n_resamples)
            for a, s in acts.items()
            if a != baseline
        ]
        for c, p in zip(comps, holm([c.p_raw for c in comps]), strict=True):
            c.p_holm = p
            if math.isfinite(p) and p < alpha:
                c.verdict = "significantly better" if c.diff > 0 else "significantly worse"
            elif math.isfinite(p) or (c.diff == 0 and c.ci_low == c.ci_high == 0):  # identical values
                c.verdict = "no significant difference"
            c.sentence = sentence(c)
    else:
        notes.append(f"baseline {baseline!r} has no runs here: no comparisons")
    r0 = rows[0]
    return {
        "model": r0.get("model"),
        "dataset": r0.get("dataset"),
        "acts": list(acts.values()),
        "comparisons": comps,
        "notes": notes,
    }


def across(groups: Sequence[Mapping], baseline: str = "relu") -> dict:
    """Mean rank per activation over model x dataset groups (1 = best, ties averaged) and win/tie/loss
    against the baseline (tie: the CI of the difference covers 0)."""
    ranks: dict[str, list] = defaultdict(list)
    wtl: dict[str, dict] = {}
    for g in groups:
        present = [s for s in g["acts"] if math.isfinite(s.mean)]
        # rounded so that float noise does not break ties; rank 1 = highest mean
        for s, r in zip(present, stats.rankdata([-round(s.mean, 12) for s in present]), strict=True):
            ranks[s.act].append(float(r))
        for c in g["comparisons"]:
            k = wtl.setdefault(c.act, {"win": 0, "tie": 0, "loss": 0, "undetermined": 0})
            if not (math.isfinite(c.ci_low) and math.isfinite(c.ci_high)):
                k["undetermined"] += 1
            else:
                k["win" if c.ci_low > 0 else "loss" if c.ci_high < 0 else "tie"] += 1
    mean_rank = {a: {"mean_rank": float(np.mean(r)), "n_groups": len(r)} for a, r in ranks.items()}
    order = sorted(mean_rank.items(), key=lambda kv: kv[1]["mean_rank"])
    return {"baseline": baseline, "mean_rank": dict(order), "win_tie_loss": wtl}


def analyze(
    rows: Iterable[Mapping[str, Any]],
    *,
    baseline: str = "relu",
    metric: str = "best_val_acc",
    alpha: float = 0.05,
    seed: int = 0,
    n_resamples: int = 9999,
) -> dict:
    """Full analysis of run rows, grouped by model x dataset; returns a JSON-serialisable dict.

    Args:
        rows: dicts with model, dataset, act, seed, lr, status, the metric, best_epoch and optionally
            `epoch_seconds` (list) or `sec_per_epoch`.
        baseline: the activation every other one is compared with.
        metric: `best_val_acc` or `final_val_acc` (fractions).
        alpha: significance level applied to the Holm-corrected p-value.
        seed: seed of the bootstrap generator (results are reproducible).
    """
    if metric not in METRICS:
        raise ValueError(f"metric={metric!r}; valid: {METRICS}")
    by_group: dict[tuple, list] = defaultdict(list)
    for r in rows:
        by_group[(r.get("model"), r.get("dataset"))].append(r)
    groups = [
        _group(g, metric, baseline, alpha, seed, n_resamples) for _, g in sorted(by_group.items(), key=str)
    ]
    out = {
        "metric": metric,
        "baseline": baseline,
        "alpha": alpha,
        "unit": "fraction (x100 = points)",
        "groups": groups,
        "across": across(groups, baseline),
    }
    return jsonable(out)


def jsonable(obj: Any) -> Any:
    """Dataclasses to dicts, numpy scalars to Python, NaN/inf to None: strict-JSON ready."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        obj = dataclasses.asdict(obj)
    if isinstance(obj, Mapping):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [jsonable(v) for v in obj]
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj
