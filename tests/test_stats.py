"""Known-answer tests of the seed statistics: scipy called directly, hand computations, degenerate input."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from scipy import stats as ss

from actlab.analysis import stats as S

A = [0.912, 0.915, 0.918, 0.914, 0.916]  # "mish", seeds 0..4
B = [0.901, 0.899, 0.907, 0.896, 0.904, 0.900]  # "relu", seeds 1..6


def _rows(act, values, seeds=None, model="m", dataset="d", lr=0.1, status="done", **extra):
    seeds = range(len(values)) if seeds is None else seeds
    return [
        {"model": model, "dataset": dataset, "act": act, "seed": s, "lr": lr, "status": status,
         "best_val_acc": v, "final_val_acc": v, "best_epoch": 2, **extra}
        for s, v in zip(seeds, values, strict=True)
    ]  # fmt: skip


def _boot(data, stat, method="BCa"):
    res = ss.bootstrap(
        data, stat, n_resamples=9999, method=method, rng=np.random.default_rng(0), vectorized=True
    )
    return tuple(float(x) for x in res.confidence_interval)


def test_act_summary_matches_numpy_and_scipy():
    st = S.summarize_act(_rows("mish", A, epoch_seconds=[2.0, 3.0, 10.0]))
    assert st.n == 5 and st.mean == pytest.approx(np.mean(A)) and st.std == pytest.approx(np.std(A, ddof=1))
    assert (st.ci_low, st.ci_high) == pytest.approx(_boot((np.array(A),), np.mean))
    assert st.ci_low < st.mean < st.ci_high
    assert (st.best, st.best_seed, st.best_epoch) == (0.918, 2, 2) and st.median_epoch_seconds == 3.0


def test_comparison_matches_scipy_directly():
    rows = _rows("mish", A) + _rows("relu", B, seeds=range(1, 7))
    out = S.analyze(rows, baseline="relu")
    (c,) = out["groups"][0]["comparisons"]
    pa, pb = np.array(A[1:]), np.array(B[:4])  # the seeds 1..4 present for both
    assert c["n_pairs"] == 4 and c["paired"] and c["decided_by"] == "paired t-test"
    assert c["welch_p"] == pytest.approx(ss.ttest_ind(A, B, equal_var=False).pvalue)
    assert c["mannwhitney_p"] == pytest.approx(ss.mannwhitneyu(A, B, alternative="two-sided").pvalue)
    assert c["paired_t_p"] == pytest.approx(ss.ttest_rel(pa, pb).pvalue)
    assert c["wilcoxon_p"] == pytest.approx(ss.wilcoxon(pa - pb).pvalue)
    assert c["diff"] == pytest.approx(np.mean(pa - pb))
    ci = ss.ttest_rel(pa, pb).confidence_interval(0.95)  # the deciding test's own interval
    assert (c["ci_low"], c["ci_high"]) == pytest.approx((ci.low, ci.high))
    assert (c["ci_low"] > 0) == (c["p_raw"] < 0.05)
    assert c["p_holm"] == c["p_raw"] == c["paired_t_p"]  # one comparison: Holm changes nothing
    assert c["verdict"] == "significantly better"
    assert c["sentence"].startswith(f"mish vs relu: +{100 * np.mean(pa - pb):.2f} points [")
    assert "after Holm (paired t-test, n = 4 pairs): significant (better)" in c["sentence"]


def test_unpaired_falls_back_to_welch():
    rows = _rows("mish", A) + _rows("relu", B, seeds=range(10, 16))
    (c,) = S.analyze(rows)["groups"][0]["comparisons"]
    assert not c["paired"] and c["n_pairs"] == 0 and c["decided_by"] == "Welch t-test"
    assert c["p_raw"] == pytest.approx(ss.ttest_ind(A, B, equal_var=False).pvalue)
    assert c["diff"] == pytest.approx(np.mean(A) - np.mean(B))
    ci = ss.ttest_ind(A, B, equal_var=False).confidence_interval(0.95)
    assert (c["ci_low"], c["ci_high"]) == pytest.approx((ci.low, ci.high))
    assert "(Welch t-test, n = 5 vs 6 runs)" in c["sentence"]


def test_holm_hand_computed():
    # sorted 0.005, 0.01, 0.03, 0.04 -> x4, x3, x2, x1 = 0.02, 0.03, 0.06, 0.04 -> running max -> 0.06
    assert S.holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    got = S.holm([0.01, math.nan, 0.04])  # NaN is not a test: m = 2
    assert got[0] == pytest.approx(0.02) and math.isnan(got[1]) and got[2] == pytest.approx(0.04)
    assert S.holm([0.6, 0.7]) == [1.0, 1.0] and S.holm([]) == []


def test_holm_applied_across_activations():
    rng = np.random.default_rng(1)
    base = 0.9 + 0.002 * rng.standard_normal(5)
    rows = _rows("relu", base) + [
        r
        for k, act in enumerate(["a", "b", "c"])
        for r in _rows(act, base + 0.001 * (k + 1) + 0.002 * rng.random(5))
    ]
    comps = S.analyze(rows)["groups"][0]["comparisons"]
    assert [c["p_holm"] for c in comps] == pytest.approx(S.holm([c["paired_t_p"] for c in comps]))


def test_cohens_d_hand_computed():
    # a: mean 4, var 4; b: mean 2.5, var 5/3; pooled sd = sqrt((2*4 + 3*5/3) / 5) = sqrt(2.6)
    assert S.cohens_d([2, 4, 6], [1, 2, 3, 4]) == pytest.approx(1.5 / math.sqrt(2.6))
    assert S.cohens_d([1, 1], [1, 1]) == 0.0 and math.isnan(S.cohens_d([1, 1], [2, 2]))
    assert math.isnan(S.cohens_d([1], [1, 2]))


# Section 3.4 of seed-experiments.md: Mish repo, SqueezeNet/CIFAR-10, 23 runs each (mean %, sd, P, Cohen's d).
MISH = (87.48, 0.3967)
MISH_TABLE = [("Swish-1", 87.32, 0.414, 0.1973, 0.386), ("E-Swish", 87.49, 0.411, 0.9075, 0.034),
              ("GELU", 87.37, 0.472, 0.4003, 0.250), ("ReLU", 86.66, 0.584, 1e-4, 1.646),
              ("ELU", 86.41, 0.3371, 1e-4, 2.918), ("SELU", 83.91, 0.5995, 1e-4, 7.021)]  # fmt: skip


def _exact(mean, sd, n=23, seed=0):
    z = np.random.default_rng(seed).standard_normal(n)
    return mean + sd * (z - z.mean()) / z.std(ddof=1)


@pytest.mark.parametrize("name,mean,sd,p,d", MISH_TABLE)
def test_reproduces_mish_significance_table(name, mean, sd, p, d):
    """Welch p and Cohen's d of samples with the published mean/sd agree with the table within the rounding of
    its means (+-0.005 points each, so the difference is known to +-0.01)."""
    ds, ps = [], []
    for shift in (-0.01, 0.0, 0.01):
        x, y = _exact(*MISH), _exact(mean + shift, sd, seed=1)
        ds.append(abs(S.cohens_d(x, y)))
        ps.append(ss.ttest_ind(x, y, equal_var=False).pvalue)
    assert min(ds) - 1e-3 <= d <= max(ds) + 1e-3, name
    assert (max(ps) < p) if p == 1e-4 else (min(ps) <= p <= max(ps)), name


def test_mean_rank_and_win_tie_loss():
    e = np.array([-0.001, 0.001, 0.0, -0.0005, 0.0005])  # small, zero-mean
    big = np.array([-0.05, 0.05, -0.03, 0.03, 0.0])  # large, zero-mean
    rows = (
        _rows("relu", 0.90 + 0 * e, model="g1") + _rows("mish", 0.92 + e, model="g1")
        + _rows("swish", 0.92 + big, model="g1")
        + _rows("relu", 0.95 + e, model="g2") + _rows("mish", 0.93 + e[::-1], model="g2")
        + _rows("swish", 0.94 + big, model="g2")
    )  # fmt: skip
    acr = S.analyze(rows)["across"]
    # g1: mish = swish = .92 > relu -> 1.5, 1.5, 3; g2: relu .95 > swish .94 > mish .93 -> 1, 2, 3
    assert {a: r["mean_rank"] for a, r in acr["mean_rank"].items()} == {
        "mish": 2.25,
        "swish": 1.75,
        "relu": 2.0,
    }
    assert list(acr["mean_rank"]) == ["swish", "relu", "mish"]
    assert acr["win_tie_loss"]["mish"] == {"win": 1, "tie": 0, "loss": 1, "undetermined": 0}
    assert acr["win_tie_loss"]["swish"] == {"win": 0, "tie": 2, "loss": 0, "undetermined": 0}


def test_lr_selection_and_shared_lr_caveat():
    rows = _rows("relu", [0.90, 0.91], lr=0.1) + _rows("mish", [0.91, 0.92], lr=0.1)
    (note,) = S.analyze(rows)["groups"][0]["notes"]
    assert "share lr = 0.1" in note and "nuisance" in note
    rows += _rows("mish", [0.95, 0.96], lr=0.05) + _rows("mish", [0.5, 0.6], lr=0.5)
    g = S.analyze(rows)["groups"][0]
    mish = next(a for a in g["acts"] if a["act"] == "mish")
    assert mish["lr"] == 0.05 and mish["values"] == [0.95, 0.96]
    assert any("lrs 0.05, 0.1, 0.5 tried; using lr = 0.05" in n for n in g["notes"])
    assert any(n.startswith("lr per activation") for n in g["notes"])


def test_degenerate_inputs_never_crash():
    rows = (
        _rows("relu", [0.9]) + _rows("mish", [0.91])  # n = 1
        + _rows("gelu", [0.9], status="diverged") + _rows("elu", [None, 0.9], status="failed")
    )  # fmt: skip
    out = S.analyze(rows, metric="final_val_acc")
    json.dumps(out, allow_nan=False)
    acts = {a["act"]: a for a in out["groups"][0]["acts"]}
    assert acts["mish"]["n"] == 1 and acts["mish"]["std"] is None and "n < 2" in acts["mish"]["reason"]
    assert acts["gelu"]["n"] == 0 and acts["gelu"]["n_diverged"] == 1 and acts["gelu"]["reason"]
    assert acts["elu"]["n_failed"] == 2 and acts["elu"]["mean"] is None
    for c in out["groups"][0]["comparisons"]:
        assert c["verdict"] == "not tested" and c["p_holm"] is None and "not tested" in c["sentence"]
    # identical values in both: no division by zero, no difference
    out = S.analyze(_rows("relu", [0.9] * 4) + _rows("mish", [0.9] * 4))
    (c,) = out["groups"][0]["comparisons"]
    assert c["diff"] == 0 and c["cohens_d"] == 0 and c["ci_low"] == c["ci_high"] == 0
    assert c["verdict"] == "no significant difference"
    assert S.analyze([]) == {**S.analyze([]), "groups": []}
    assert "no runs" in S.analyze(_rows("mish", A))["groups"][0]["notes"][-1]
    with pytest.raises(ValueError, match="metric"):
        S.analyze(rows, metric="val_loss")
    assert S.mean_ci([]) == S.mean_ci([1.0]) and math.isnan(S.mean_ci([1.0])[0])
