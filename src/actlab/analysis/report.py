"""The sweep report: `report.html` (self-contained, figures as base64 PNG) and `report.md` (PNGs beside it).

Also the flat run table behind `actlab results DIR --csv|--json`. Reads the results store only; no torch.
"""

from __future__ import annotations

import base64
import csv
import html
import io
import json
import os
import re
import statistics
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from actlab.analysis import plots
from actlab.analysis.stats import analyze, jsonable
from actlab.results import ResultsStore, atomic_write_json, atomic_write_text

ROW_FIELDS = (
    "run_id",
    "sweep_id",
    "model",
    "dataset",
    "act",
    "seed",
    "lr",
    "status",
    "best_val_acc",
    "best_epoch",
    "final_val_acc",
    "seconds",
    "n_epochs",
    "sec_per_epoch",
    "worker",
    "error",
)
CSS = """
body{font:15px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;max-width:1320px;margin:1.5em auto;
padding:0 1em;color:#1d2330}
h1{font-size:1.6em}h2{margin-top:1.8em;border-bottom:1px solid #ccd;padding-bottom:.2em}
.scroll{overflow-x:auto}table{border-collapse:collapse;margin:.6em 0;font-size:.84em}
th,td{border:1px solid #d5d9e2;padding:.2em .45em;text-align:right}
td{white-space:nowrap}
th{background:#eef1f6}td:first-child,th:first-child{text-align:left}
tr.bad td{background:#fff1f0}.better{color:#0a7a28;font-weight:600}.worse{color:#b3261e;font-weight:600}
.note{background:#fff8e1;border-left:4px solid #f0b400;padding:.4em .8em;margin:.6em 0}
figure{margin:1em 0}figure img{max-width:100%;height:auto;border:1px solid #e3e6ec}
figcaption{font-size:.85em;color:#555}code{background:#f3f4f7;padding:0 .2em}
"""
ONLOAD = """<script>
window.addEventListener("load", function () {
  var imgs = Array.prototype.slice.call(document.images);
  var ok = imgs.every(function (i) { return i.complete && i.naturalWidth > 0; });
  document.body.setAttribute("data-images-loaded", ok ? "all" : "missing");
  document.body.setAttribute("data-image-count", String(imgs.length));
});
</script>"""


# ----------------------------------------------------------------------------------------------------------
# the flat run table


def _load(db_path: str | os.PathLike) -> tuple[list[dict], list[dict], list[dict], Path]:
    with ResultsStore(db_path) as st:
        return st.runs(), st.epochs(), st.sweeps(), st.root


def _flat(runs: Sequence[Mapping], epochs: Sequence[Mapping]) -> list[dict]:
    secs: dict[str, list] = {}
    for e in epochs:
        secs.setdefault(e["run_id"], []).append(e["seconds"])
    out = []
    for r in runs:
        s = [x for x in secs.get(r["run_id"], []) if x is not None]
        row = {k: r.get(k) for k in ROW_FIELDS}
        row["n_epochs"] = len(secs.get(r["run_id"], []))
        row["sec_per_epoch"] = statistics.median(s) if s else None
        out.append(row)
    return out


def results_rows(db_path: str | os.PathLike) -> list[dict[str, Any]]:
    """One flat dict per run: ids, model/dataset/act/seed/lr, status, accuracies, timing, error."""
    runs, epochs, _, _ = _load(db_path)
    return _flat(runs, epochs)


def to_csv(rows: Sequence[Mapping[str, Any]]) -> str:
    """Rows as CSV text (columns in first-seen order)."""
    fields = list(dict.fromkeys(k for r in rows for k in r)) or list(ROW_FIELDS)
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=fields, lineterminator="\n")
    w.writeheader()
    w.writerows(rows)
    return buf.getvalue()


def to_json(rows: Sequence[Mapping[str, Any]]) -> str:
    """Rows as strict JSON (NaN becomes null)."""
    return json.dumps(jsonable(list(rows)), indent=2, allow_nan=False)


# ----------------------------------------------------------------------------------------------------------
# formatting


def _pts(v: float | None, sign: bool = False) -> str:
    return "–" if v is None else f"{100 * v:+.2f}" if sign else f"{100 * v:.2f}"


def _p(v: float | None) -> str:
    return "–" if v is None else "< 0.001" if v < 0.001 else f"{v:.3g}"


def _num(v: Any, fmt: str = ".3g") -> str:
    return "–" if v is None else format(v, fmt) if isinstance(v, int | float) else str(v)


def _setup(runs: Sequence[Mapping], sweeps: Sequence[Mapping]) -> tuple[list[list[str]], list[list[str]]]:
    """(fixed config rows, varying config + environment rows) from config_json/env_json."""
    values: dict[str, set] = {}
    for r in runs:
        for k, v in json.loads(r.get("config_json") or "{}").items():
            values.setdefault(k, set()).add(json.dumps(v, sort_keys=True))
    fixed = [[k, json.loads(next(iter(v))).__str__()] for k, v in sorted(values.items()) if len(v) == 1]
    varying = [
        [k, ", ".join(sorted(map(str, (json.loads(x) for x in v))))]
        for k, v in sorted(values.items())
        if len(v) > 1
    ]
    env: dict[str, set] = {}
    for r in runs:
        for k, v in json.loads(r.get("env_json") or "{}").items():
            env.setdefault(k, set()).add(str(v))
    rows = [[f"varies: {k}", v] for k, v in varying] + [
        [f"env: {k}", ", ".join(sorted(v))] for k, v in sorted(env.items())
    ]
    rows += [[f"sweep {s['sweep_id']}", _sweep_summary(s.get("spec_json"))] for s in sweeps]
    return fixed, rows


def _sweep_summary(spec_json: str | None) -> str:
    """The sweep's grid in one short line (its base config is the table above, not repeated here)."""
    spec = json.loads(spec_json or "{}")
    parts = [
        f"{key}: {', '.join(map(str, value)) if isinstance(value, list) else value}"
        for key, value in spec.items()
        if key != "base" and value not in (None, [], {})
    ]
    return "; ".join(parts) or "-"


def _group_table(g: Mapping, baseline: str) -> tuple[list[str], list[list[str]], list[bool]]:
    heads = [
        "activation",
        "n",
        "mean ± sd (%)",
        "95 % CI (%)",
        "best (epoch)",
        f"Δ vs {baseline} (pts)",
        "95 % CI of Δ",
        "p (Holm)",
        "test",
        "Cohen's d",
        "diverged",
        "failed",
        "s/epoch",
        "lr",
        "verdict",
    ]
    comps = {c["act"]: c for c in g["comparisons"]}
    rows, bad = [], []
    for a in g["acts"]:
        c = comps.get(a["act"], {})
        ci = f"[{_pts(a['ci_low'])}, {_pts(a['ci_high'])}]" if a["ci_low"] is not None else "–"
        dci = f"[{_pts(c['ci_low'])}, {_pts(c['ci_high'])}]" if c.get("ci_low") is not None else "–"
        best = f"{_pts(a['best'])} ({_num(a['best_epoch'])})" if a["best"] is not None else "–"
        sd = f" ± {_pts(a['std'])}" if a["std"] is not None else ""
        verdict = "baseline" if a["act"] == baseline else c.get("verdict", "–")
        rows.append(
            [
                a["act"],
                str(a["n"]),
                f"{_pts(a['mean'])}{sd}",
                ci,
                best,
                _pts(c.get("diff"), True),
                dci,
                _p(c.get("p_holm")),
                c.get("decided_by") or "–",
                _num(c.get("cohens_d"), ".2f"),
                str(a["n_diverged"]),
                str(a["n_failed"]),
                _num(a["median_epoch_seconds"], ".2f"),
                _num(a["lr"], "g"),
                verdict,
            ]
        )
        bad.append(bool(a["n_diverged"] or a["n_failed"]))
    return heads, rows, bad


def _slug(*parts: Any) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", "-".join(map(str, parts))).strip("-").lower()


# ----------------------------------------------------------------------------------------------------------
# rendering


def _html_table(
    heads: Sequence[str], rows: Sequence[Sequence[str]], bad: Sequence[bool] = (), cls: str = ""
) -> str:
    e = html.escape
    th = "".join(f"<th>{e(h)}</th>" for h in heads)
    trs = []
    for i, r in enumerate(rows):
        tds = "".join(
            f'<td class="{_vclass(c)}">{e(c)}</td>' if _vclass(c) else f"<td>{e(c)}</td>" for c in r
        )
        trs.append(f'<tr class="bad">{tds}</tr>' if i < len(bad) and bad[i] else f"<tr>{tds}</tr>")
    table = f'<table class="{cls}"><thead><tr>{th}</tr></thead><tbody>{"".join(trs)}</tbody></table>'
    return f'<div class="scroll">{table}</div>'


def _vclass(cell: str) -> str:
    return {"significantly better": "better", "significantly worse": "worse"}.get(cell, "")


def _md_table(heads: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    esc = lambda s: str(s).replace("|", "\\|").replace("\n", " ")  # noqa: E731
    lines = ["| " + " | ".join(map(esc, heads)) + " |", "|" + "---|" * len(heads)]
    return "\n".join(lines + ["| " + " | ".join(map(esc, r)) + " |" for r in rows])


def _intro(stats: Mapping, runs, sweeps) -> list[tuple]:
    fixed, varying = _setup(runs, sweeps)
    text = (
        f"Metric: {stats['metric']} (percent of the validation set; points = percentage points). "
        f"{len(runs)} runs. Verdicts use alpha = {stats['alpha']} on Holm-corrected p-values. "
        "The 95 % CI of each activation's mean is a seeded bootstrap interval (BCa); the 95 % CI of "
        "Δ is the deciding t-test's own interval (paired over seeds, else Welch), before the Holm "
        "correction: a Δ whose CI excludes 0 can still be non-significant once corrected for the "
        "number of activations compared."
    )
    return [
        ("h", 1, f"actlab report: activations vs {stats['baseline']}"),
        ("p", text),
        ("h", 2, "Setup"),
        ("table", ["config (same for every run)", "value"], fixed, []),
        ("table", ["varies / environment / sweep", "value"], varying, []),
    ]


def _group_blocks(g: Mapping, stats: Mapping, runs, epochs, flat, colors) -> list[tuple]:
    """Table, notes, conclusions and figures of one model × data set."""
    key = (g["model"], g["dataset"])
    title, slug = f"{g['model']} / {g['dataset']}", _slug(*key)
    sub = [r for r in runs if (r.get("model"), r.get("dataset")) == key]
    sub_flat = [r for r in flat if (r.get("model"), r.get("dataset")) == key]
    metric = stats["metric"]
    out = [("h", 2, f"Results: {title}"), ("table", *_group_table(g, stats["baseline"]))]
    out += [("note", n) for n in g["notes"]]
    out += [("h", 3, "Conclusions"), ("list", [c["sentence"] for c in g["comparisons"]] or ["no comparison"])]
    figures = [
        (
            "curves",
            plots.training_curves(sub, epochs, title=title, colors=colors),
            "Training and validation accuracy/loss per epoch, mean over seeds ± 1 sd (completed runs).",
        ),
        (
            "final",
            plots.final_accuracy(sub, metric=metric, title=title, colors=colors),
            f"{metric} per activation: box over seeds, every seed drawn as a point.",
        ),
        (
            "speed",
            plots.epoch_seconds(sub_flat, title=title, colors=colors),
            "Seconds per epoch: median over runs (bar) and each run (points).",
        ),
    ]
    return out + [("fig", f"{slug}-{name}", png, caption) for name, png, caption in figures]


def _across_blocks(stats: Mapping) -> list[tuple]:
    acr = stats["across"]
    rows = [
        [a, f"{v['mean_rank']:.2f}", str(v["n_groups"])]
        + [str(acr["win_tie_loss"].get(a, {}).get(k, "–")) for k in ("win", "tie", "loss")]
        for a, v in acr["mean_rank"].items()
    ]
    return [
        ("h", 2, "Across models and data sets"),
        ("table", ["activation", "mean rank (1 = best)", "groups", "wins", "ties", "losses"], rows, []),
        ("p", f"Win/tie/loss against {stats['baseline']}: tie when the 95 % CI of the difference covers 0."),
    ]


def _runs_table(flat, metric: str) -> list[tuple]:
    heads = ["run_id", "act", "seed", "lr", "status", metric, "best_epoch", "epochs", "s/epoch", "error"]
    rows = [
        [
            r["run_id"][:12],
            str(r["act"]),
            _num(r["seed"]),
            _num(r["lr"], "g"),
            r["status"],
            _pts(r[metric]),
            _num(r["best_epoch"]),
            str(r["n_epochs"]),
            _num(r["sec_per_epoch"], ".2f"),
            (r["error"] or "")[:80],
        ]
        for r in flat
    ]
    bad = [r["status"] in ("diverged", "failed") for r in flat]
    return [("h", 2, "Every run (diverged and failed runs included)"), ("table", heads, rows, bad)]


def _sections(stats: Mapping, runs, epochs, flat, sweeps, act_curves) -> list[tuple]:
    """The report as a list of blocks: ("h", level, text), ("p"|"note", text), ("table", heads, rows, bad),
    ("fig", name, png, caption), ("list", items). Both renderers walk the same list."""
    colors = plots.act_colors([r["act"] for r in runs] + list(act_curves or ()))
    out = _intro(stats, runs, sweeps)
    for g in stats["groups"]:
        out += _group_blocks(g, stats, runs, epochs, flat, colors)
    if len(stats["groups"]) > 1:
        out += _across_blocks(stats)
    if act_curves:
        curves = plots.activation_curves(act_curves, colors=colors)
        out += [
            ("h", 2, "Activation functions"),
            ("fig", "activations", curves, "f(x) and f'(x) of each activation."),
        ]
    return out + _runs_table(flat, stats["metric"])


def _render_html(blocks: Sequence[tuple]) -> str:
    e, parts = html.escape, []
    for b in blocks:
        if b[0] == "h":
            parts.append(f"<h{b[1]}>{e(b[2])}</h{b[1]}>")
        elif b[0] in ("p", "note"):
            parts.append(f'<p class="{b[0]}">{e(b[1])}</p>')
        elif b[0] == "table":
            parts.append(_html_table(*b[1:4], cls="results" if "activation" in b[1][0] else ""))
        elif b[0] == "list":
            parts.append("<ul>" + "".join(f"<li>{e(i)}</li>" for i in b[1]) + "</ul>")
        elif b[0] == "fig":
            src = "data:image/png;base64," + base64.b64encode(b[2]).decode()
            parts.append(
                f'<figure><img src="{src}" alt="{e(b[1])}"><figcaption>{e(b[3])}</figcaption></figure>'
            )
    body = "\n".join(parts)
    return (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>actlab report</title><style>{CSS}</style></head>\n<body>\n{body}\n{ONLOAD}\n</body></html>\n"
    )


def _render_md(blocks: Sequence[tuple], out_dir: Path) -> tuple[str, list[str]]:
    parts, files = [], []
    for b in blocks:
        if b[0] == "h":
            parts.append("#" * b[1] + " " + b[2])
        elif b[0] == "p":
            parts.append(b[1])
        elif b[0] == "note":
            parts.append("> **Note:** " + b[1])
        elif b[0] == "table":
            parts.append(_md_table(b[1], b[2]))
        elif b[0] == "list":
            parts.append("\n".join(f"- {i}" for i in b[1]))
        elif b[0] == "fig":
            name = f"{b[1]}.png"
            plots.atomic_write_bytes(out_dir / name, b[2])
            files.append(name)
            parts.append(f"![{b[1]}]({name})\n\n*{b[3]}*")
    return "\n\n".join(parts) + "\n", files


def write_report(
    db_path: str | os.PathLike,
    out_dir: str | os.PathLike | None = None,
    *,
    baseline: str = "relu",
    metric: str = "best_val_acc",
    act_curves: Mapping[str, tuple] | None = None,
) -> dict:
    """Write `report.html`, `report.md` (+ PNGs) and `stats.json`; return the statistics dict.

    Args:
        db_path: results folder (or its actlab.db).
        out_dir: where to write; defaults to the results folder.
        baseline: activation the others are compared with.
        metric: `best_val_acc` or `final_val_acc`.
        act_curves: optional `{name: (x, y, dy)}` arrays for the activation figure (computed by the caller).
    """
    runs, epochs, sweeps, root = _load(db_path)
    out = Path(out_dir) if out_dir is not None else root
    out.mkdir(parents=True, exist_ok=True)
    flat = _flat(runs, epochs)
    stats = analyze(flat, baseline=baseline, metric=metric)
    blocks = _sections(stats, runs, epochs, flat, sweeps, act_curves)
    atomic_write_text(out / "report.html", _render_html(blocks))
    md, figures = _render_md(blocks, out)
    atomic_write_text(out / "report.md", md)
    stats["files"] = {
        "html": str(out / "report.html"),
        "md": str(out / "report.md"),
        "stats": str(out / "stats.json"),
        "figures": [str(out / f) for f in figures],
    }
    atomic_write_json(out / "stats.json", stats)
    return stats
