"""The report: files, embedded figures, Markdown links, JSON stats, CSV/JSON rows, headless-browser check."""

from __future__ import annotations

import csv
import io
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from actlab.analysis.report import results_rows, to_csv, to_json, write_report
from actlab.results import ResultsStore

SRC = str(Path(__file__).resolve().parents[1] / "src")
ACTS = {"relu": 0.900, "mish": 0.910, "swish": 0.905, "gelu": 0.899}
EPOCHS = 4


def _build(root: Path, models=("vgg11",)) -> Path:
    """A store filled through the public API: acts x 5 seeds x 4 epochs, one diverged and one failed run."""
    rng = np.random.default_rng(0)
    env = {"actlab": "0.1.0", "torch": "2.5.1", "device": "cpu", "git": "abc1234", "hostname": "box"}
    with ResultsStore(root) as st:
        st.add_sweep("s1", {"acts": list(ACTS), "seeds": list(range(5))})
        for model in models:
            rows = [
                {
                    "run_id": f"{model}-{act}-{seed}",
                    "config": {
                        "model": model,
                        "dataset": "cifar10",
                        "act": act,
                        "seed": seed,
                        "lr": 0.05,
                        "epochs": EPOCHS,
                        "optimizer": "sgd",
                        "schedule": "flat_cos",
                        "batch_size": 512,
                    },
                }
                for act in ACTS
                for seed in range(5)
            ]
            st.add_runs("s1", rows)
        while (run := st.claim_next("s1", "test:1")) is not None:
            rid, act, seed = run["run_id"], run["act"], run["seed"]
            top = ACTS[act] + 0.002 * rng.standard_normal() + 0.001 * seed
            if rid.endswith("gelu-4"):
                st.record_epoch(rid, {"epoch": 0, "train_loss": float("nan"), "seconds": 1.0})
                st.finish(rid, "diverged", {"error": "loss is nan at epoch 0", "seconds": 1.0, "env": env})
                continue
            if rid.endswith("swish-3"):
                st.finish(rid, "failed", {"error": "CUDA out of memory", "env": env})
                continue
            for ep in range(EPOCHS):
                f = (ep + 1) / EPOCHS
                st.record_epoch(
                    rid,
                    {
                        "epoch": ep,
                        "train_loss": 2 - f,
                        "val_loss": 2.1 - f,
                        "train_acc": top * f,
                        "val_acc": top * f,
                        "seconds": 2.0 + 0.1 * len(act),
                        "lr": 0.05,
                    },
                )
            st.finish(
                rid,
                "done",
                {
                    "best_val_acc": top,
                    "best_epoch": EPOCHS - 1,
                    "final_val_acc": top,
                    "seconds": 9.0,
                    "env": env,
                },
            )
    return root


def _curves():
    x = np.linspace(-4, 4, 81)
    return {"relu": (x, np.maximum(x, 0), (x > 0) * 1.0), "identity": (x, x, np.ones_like(x))}


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    root = _build(tmp_path_factory.mktemp("sweep"))
    stats = write_report(root, act_curves=_curves())
    return root, stats


def test_report_files_and_html(report):
    root, stats = report
    page = (root / "report.html").read_text()
    n_figs = 3 + 1  # curves, final accuracy, speed for one group + activation curves
    assert page.count('<img src="data:image/png;base64,') == n_figs == len(stats["files"]["figures"])
    assert '<table class="results">' in page and "mish" in page and "Δ vs relu" in page
    assert "http://" not in page and "https://" not in page  # self-contained
    for word in (
        "diverged",
        "loss is nan",
        "CUDA out of memory",
        "sgd",
        "flat_cos",
        "2.5.1",
        "abc1234",
        "cpu",
    ):
        assert word in page, word
    assert "nuisance" in page and "mish vs relu: " in page


def test_report_markdown_links(report):
    root, _ = report
    md = (root / "report.md").read_text()
    links = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", md)
    assert len(links) == 4
    for link in links:
        assert (root / link).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "| activation | n |" in md and "Δ vs relu" in md


def test_report_stats_json(report):
    root, stats = report
    text = json.dumps(stats, allow_nan=False)
    assert json.loads((root / "stats.json").read_text()) == json.loads(text)
    (g,) = stats["groups"]
    acts = {a["act"]: a for a in g["acts"]}
    assert acts["relu"]["n"] == 5 and acts["gelu"]["n"] == 4 and acts["gelu"]["n_diverged"] == 1
    assert acts["swish"]["n_failed"] == 1
    assert {c["act"] for c in g["comparisons"]} == {"mish", "swish", "gelu"}
    assert all(c["sentence"].startswith(f"{c['act']} vs relu: ") for c in g["comparisons"])


def test_results_rows_csv_json(report):
    root, _ = report
    rows = results_rows(root)
    assert len(rows) == 20
    need = {
        "run_id",
        "model",
        "dataset",
        "act",
        "seed",
        "status",
        "best_val_acc",
        "best_epoch",
        "final_val_acc",
        "seconds",
    }
    assert need <= set(rows[0])
    parsed = list(csv.DictReader(io.StringIO(to_csv(rows))))
    assert len(parsed) == 20 and parsed[0]["run_id"] == rows[0]["run_id"]
    assert json.loads(to_json(rows)) == json.loads(json.dumps(rows))
    diverged = next(r for r in rows if r["status"] == "diverged")
    assert diverged["best_val_acc"] is None and diverged["n_epochs"] == 1


def test_two_models_give_ranks(tmp_path):
    stats = write_report(
        _build(tmp_path, models=("vgg11", "resnet18")), tmp_path / "out", metric="final_val_acc"
    )
    assert len(stats["groups"]) == 2 and set(stats["across"]["mean_rank"]) == set(ACTS)
    page = (tmp_path / "out" / "report.html").read_text()
    assert page.count("data:image/png;base64,") == 6 and "Across models and data sets" in page


def test_no_torch_imported():
    code = "import actlab.analysis.report, actlab.results, sys; assert 'torch' not in sys.modules"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [SRC, os.environ.get("PYTHONPATH")]))}
    subprocess.run([sys.executable, "-c", code], check=True, env=env)


def _chromium() -> str:
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if exe is None:
        if os.environ.get("CI"):  # .ci/run installs it: a missing browser there is a failure, not a skip
            pytest.fail("chromium not found under CI: .ci/run should have installed it")
        pytest.skip("chromium not found: apt-get install chromium")
    return exe


def test_report_renders_in_headless_chromium(report, tmp_path):
    exe = _chromium()
    root, stats = report
    flags = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={tmp_path / 'profile'}",
    ]
    url = (root / "report.html").as_uri()
    dom = subprocess.run(
        [exe, *flags, "--virtual-time-budget=5000", "--dump-dom", url],
        capture_output=True,
        text=True,
        timeout=120,
    ).stdout
    assert 'data-images-loaded="all"' in dom, dom[:500]
    assert f'data-image-count="{len(stats["files"]["figures"])}"' in dom
    assert '<table class="results">' in dom and "mish" in dom
    shot = tmp_path / "shot.png"
    subprocess.run(
        [exe, *flags, f"--screenshot={shot}", "--window-size=1366,900", url], capture_output=True, timeout=120
    )
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 10_000


def test_empty_and_pending_stores_still_report(tmp_path):
    ResultsStore(tmp_path / "empty").close()
    assert write_report(tmp_path / "empty")["groups"] == []
    with ResultsStore(tmp_path / "one") as st:
        st.add_runs(
            "s", [{"run_id": "a", "config": {"model": "m", "dataset": "d", "act": "mish", "seed": 0}}]
        )
    stats = write_report(tmp_path / "one")
    assert "no runs" in stats["groups"][0]["notes"][-1] and (tmp_path / "one" / "report.html").exists()


def test_plot_helpers(tmp_path):
    from actlab.analysis import plots

    runs = [{"run_id": f"r{i}", "act": "relu", "status": "done", "best_val_acc": 0.9} for i in range(3)]
    epochs = [
        {"run_id": f"r{i}", "epoch": e, "val_acc": 0.5 + 0.1 * e + 0.01 * i}
        for i in range(3)
        for e in range(3)
    ]
    png = plots.training_curves(runs, epochs, band="minmax", path=tmp_path / "c.png")
    assert png[:4] == b"\x89PNG" and (tmp_path / "c.png").read_bytes() == png
    with pytest.raises(ValueError, match="band"):
        plots.training_curves(runs, epochs, band="iqr")
    assert plots.act_colors(["b", "a"]) == plots.act_colors(["a", "b", "a"])
