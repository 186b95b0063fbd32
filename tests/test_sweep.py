"""Sweeps: expansion, pairing, TOML specs, and the runner's bookkeeping (with a fake trainer)."""

from __future__ import annotations

import collections
import io
import multiprocessing
import os
import signal
import sqlite3
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import torch

from actlab.config import RunConfig
from actlab.experiments import sweep as sw
from actlab.experiments.spec import SweepSpec, expand, load_spec
from actlab.experiments.sweep import SweepProgress, run_sweep
from actlab.results import ResultsStore

EXAMPLE = Path(sw.__file__).with_name("example_sweep.toml")


# ----------------------------------------------------------------------------------------------------------
# a fake trainer: behaviour of the runner, not of training


@dataclass
class FakeResult:
    status: str
    epochs: list[dict] = field(default_factory=list)
    error: str | None = None

    def summary(self) -> dict:
        best = max(self.epochs, key=lambda m: m["val_acc"] or 0) if self.epochs else None
        return {
            "best_val_acc": best and best["val_acc"],
            "best_epoch": best and best["epoch"],
            "final_val_acc": self.epochs[-1]["val_acc"] if self.epochs else None,
            "seconds": 0.01 * len(self.epochs),
            "env": {"torch": torch.__version__},
            "error": self.error,
        }


class FakeTrain:
    """Records its calls; `diverge` / `fail` pick trials by activation name."""

    def __init__(self, diverge: str = "", fail: str = "", hook=None):
        self.calls: list[tuple[str, bool]] = []
        self.diverge, self.fail, self.hook = diverge, fail, hook

    def __call__(self, cfg, out_dir, *, resume, on_epoch, progress):
        self.calls.append((cfg.act, resume))
        if cfg.act == self.fail:
            raise RuntimeError(f"boom in {cfg.act}")
        result = FakeResult("running")
        for e in range(cfg.epochs):
            bad = cfg.act == self.diverge and e == 1
            m = {k: None for k in ("train_loss", "train_acc", "val_loss", "val_acc", "val_top5", "lr")}
            acc = None if bad else 0.5 + 0.01 * e + 0.001 * cfg.seed
            m.update(epoch=e, val_acc=acc, train_loss=None if bad else 1.0, seconds=0.01, images_per_s=1.0)
            result.epochs.append(m)
            if self.hook:
                self.hook(cfg, e)
            on_epoch(dict(m))
            if bad:
                result.status, result.error = "diverged", f"non-finite loss at epoch {e}"
                return result
        result.status = "done"
        return result


def _spec(**kw) -> SweepSpec:
    base = RunConfig(epochs=3, device="cpu")
    return SweepSpec(**{"acts": ("relu", "elu"), "seeds": 2, "base": base, **kw})


# ----------------------------------------------------------------------------------------------------------
# the spec


def test_expand_is_seed_major_and_paired():
    spec = _spec(acts=("relu", "SMU", "smu(alpha=0.25, mu=1e6)"), seeds=3)
    assert spec.acts == ("relu", "smu", "smu(alpha=0.25, mu=1000000.0)")  # canonical spellings
    cfgs = expand(spec)
    assert [(c.seed, c.act) for c in cfgs[:4]] == [(0, "relu"), (0, "smu"), (0, spec.acts[2]), (1, "relu")]
    assert len(cfgs) == 9 and len({c.run_id() for c in cfgs}) == 9
    seeds_by_act = {a: sorted(c.seed for c in cfgs if c.act == a) for a in spec.acts}
    assert all(s == [0, 1, 2] for s in seeds_by_act.values())  # every activation, the same seeds
    assert {c.epochs for c in cfgs} == {3} and {c.lr for c in cfgs} == {spec.base.lr}


def test_explicit_seeds_lr_grids_models_datasets():
    spec = _spec(seeds=[3, 7], lrs=[0.1, 0.05], act_lrs={"elu": [0.2]}, models=["simple_cnn", "mlp"])
    cfgs = expand(spec)
    assert spec.seeds == (3, 7) and spec.lrs_for("relu") == (0.1, 0.05) and spec.lrs_for("elu") == (0.2,)
    assert len(cfgs) == 2 * 2 * (2 + 1)
    assert {(c.model, c.dataset) for c in cfgs} == {("simple_cnn", "digits"), ("mlp", "digits")}


@pytest.mark.parametrize(
    ("kw", "match"),
    [
        ({"acts": ()}, "at least one"),
        ({"acts": "relu"}, "list"),
        ({"acts": ("relu", "RELU")}, "duplicate"),
        ({"seeds": 0}, ">= 1"),
        ({"seeds": [1, -2]}, "integers >= 0"),
        ({"lrs": [0.1, -1]}, "> 0"),
        ({"act_lrs": {"gelu": [0.1]}}, "not in acts"),
        ({"acts": ("nosuch",)}, "nosuch"),
    ],
)
def test_spec_rejects_bad_values(kw, match):
    with pytest.raises(ValueError, match=match):
        _spec(**kw)


def test_sweep_id_is_stable_and_ignores_where_it_runs():
    a = _spec()
    assert a.sweep_id() == _spec().sweep_id() == SweepSpec.from_dict(a.to_dict()).sweep_id()
    assert a.sweep_id() == _spec(base=a.base.replace(threads=1, device="auto")).sweep_id()
    assert a.sweep_id() != _spec(base=a.base.replace(epochs=4)).sweep_id()
    assert a.sweep_id() != _spec(seeds=3).sweep_id()


def test_example_toml_loads(tmp_path):
    spec = load_spec(EXAMPLE)
    assert spec.acts[:3] == ("relu", "swish", "mish") and spec.seeds == (0, 1, 2, 3, 4)
    assert spec.lrs_for("relu") == (0.1, 0.2) and spec.lrs_for("mish") == (0.1, 0.05)
    assert spec.base.epochs == 6 and spec.base.schedule == "cosine"
    assert len(expand(spec)) == 4 * 5 * 2


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("[sweep]\nseeds = 2\n", "needs `acts`"),
        ('[sweep]\nacts = ["relu"]\n[trian]\nepochs = 1\n', "unknown table"),
        ('[sweep]\nacts = ["relu"]\ncolour = 1\n', "unknown sweep field"),
        ('[sweep]\nacts = ["relu"]\n[train]\nepochs = "many"\n', "epochs"),
        ("[sweep\n", "invalid TOML"),
    ],
)
def test_toml_errors_name_the_problem(tmp_path, text, match):
    path = tmp_path / "s.toml"
    path.write_text(text)
    with pytest.raises(ValueError, match=match):
        load_spec(path)
    with pytest.raises(ValueError, match="not found"):
        load_spec(tmp_path / "missing.toml")


def test_paired_seeds_give_the_same_non_activation_weights_and_data_order():
    """The trainer's own set-up (seed, data, model) for two configs that differ only in the activation."""
    from actlab.train.engine import _setup

    def setup(act, seed=3):
        model, train_loader, _ = _setup(RunConfig(act=act, seed=seed, device="cpu"), torch.device("cpu"))
        train_loader.set_epoch(0)
        x, y = next(iter(train_loader))
        keep = (torch.nn.Conv2d, torch.nn.Linear, torch.nn.BatchNorm2d)
        weights = {f"{n}.{p}": t for n, m in model.named_modules() if isinstance(m, keep)
                   for p, t in m.state_dict().items()}  # fmt: skip
        return weights, x, y

    w0, x0, y0 = setup("relu")
    for act in ("smu", "swish"):
        w, x, y = setup(act)
        assert w.keys() == w0.keys() and len(w) > 6
        assert all(torch.equal(w[k], w0[k]) for k in w0), act
        assert torch.equal(x, x0) and torch.equal(y, y0)
    w4, _, _ = setup("relu", seed=4)
    assert not torch.equal(w4[next(iter(w0))], w0[next(iter(w0))])  # ...and the seed does change them


# ----------------------------------------------------------------------------------------------------------
# the runner


def test_rerun_skips_closed_trials(tmp_path):
    fake = FakeTrain()
    r1 = run_sweep(_spec(), tmp_path, train_fn=fake, progress=False)
    assert r1.counts["done"] == 4 and r1.ran == 4 and r1.skipped == 0 and len(fake.calls) == 4
    r2 = run_sweep(_spec(), tmp_path, train_fn=fake, progress=False)
    assert len(fake.calls) == 4 and r2.ran == 0 and r2.skipped == 4 and r2.sweep_id == r1.sweep_id
    bigger = run_sweep(_spec(seeds=3), tmp_path, train_fn=fake, progress=False)  # a new sweep, same folder
    assert bigger.ran == 2 and bigger.skipped == 4 and bigger.counts["done"] == 6 and len(fake.calls) == 6
    with ResultsStore(tmp_path) as st:
        runs = st.runs(r1.sweep_id)
        assert [r["attempts"] for r in runs] == [1] * 4
        assert all(len(st.epochs(r["run_id"])) == 3 for r in runs)
        assert runs[0]["best_val_acc"] == pytest.approx(0.52) and runs[0]["final_val_acc"] == pytest.approx(
            0.52
        )
        assert '"torch"' in runs[0]["env_json"]
    assert all(resume for _, resume in fake.calls)  # the trainer resumes whenever it finds a checkpoint


def test_diverged_and_failed_trials_are_recorded_and_the_sweep_goes_on(tmp_path):
    fake = FakeTrain(diverge="elu", fail="gelu")
    result = run_sweep(_spec(acts=("relu", "elu", "gelu")), tmp_path, train_fn=fake, progress=False)
    assert result.counts == {**result.counts, "done": 2, "diverged": 2, "failed": 2, "total": 6}
    with ResultsStore(tmp_path) as st:
        by_act = {}
        for r in st.runs():
            by_act.setdefault(r["act"], []).append(r)
        assert {r["status"] for r in by_act["elu"]} == {"diverged"}
        assert by_act["elu"][0]["error"] == "non-finite loss at epoch 1"
        assert [e["epoch"] for e in st.epochs(by_act["elu"][0]["run_id"])] == [0, 1]
        failed = by_act["gelu"][0]
        assert failed["status"] == "failed" and failed["error"] == "RuntimeError: boom in gelu"
        assert "Traceback" in (st.run_dir(failed["run_id"]) / "error.txt").read_text()
    assert len(fake.calls) == 6
    run_sweep(_spec(acts=("relu", "elu", "gelu")), tmp_path, train_fn=fake, progress=False)
    assert len(fake.calls) == 8  # done and diverged trials are results; the 2 failed ones are retried
    assert [act for act, _ in fake.calls[6:]] == ["gelu", "gelu"]
    fixed = FakeTrain()
    result = run_sweep(_spec(acts=("relu", "elu", "gelu")), tmp_path, train_fn=fixed, progress=False)
    assert len(fixed.calls) == 2 and result.counts["failed"] == 0 and result.counts["done"] == 4


def test_a_trial_taken_over_by_another_worker_is_left_to_it(tmp_path):
    def steal(cfg, epoch):  # another worker re-claims the trial (ours looked dead) during epoch 1
        if cfg.act == "elu" and cfg.seed == 0 and epoch == 1:
            with sqlite3.connect(tmp_path / "actlab.db") as c:
                c.execute("UPDATE runs SET worker = 'elsewhere:1' WHERE act = 'elu' AND seed = 0")

    result = run_sweep(_spec(), tmp_path, train_fn=FakeTrain(hook=steal), progress=False)
    assert result.ran == 3 and result.counts["running"] == 1 and result.counts["done"] == 3
    with ResultsStore(tmp_path) as st:
        stolen = next(r for r in st.runs() if r["status"] == "running")
        assert stolen["worker"] == "elsewhere:1" and len(st.epochs(stolen["run_id"])) == 1
        assert "re-claimed" in (st.run_dir(stolen["run_id"]) / sw.LOG_NAME).read_text()


def _chatter(events) -> None:
    """A worker process that only talks: events as fast as its pipe takes them, forever or 20 000."""
    name = multiprocessing.current_process().name
    for i in range(2**62 if name == "endless" else 20_000):
        events.send({"who": name, "i": i})


@pytest.mark.slow
def test_a_worker_killed_mid_message_does_not_hold_up_the_others():
    # one multiprocessing.Queue for all workers hung here in most rounds: the killed one kept its lock
    pool = sw.WorkerProcesses(_chatter, ())
    heard: collections.Counter = collections.Counter()
    procs: list = []

    def listen(done) -> None:
        end = time.monotonic() + 30
        while not done() and time.monotonic() < end:
            heard.update(ev["who"] for ev in pool.events(0.1))

    try:
        for _ in range(3):
            heard.clear()
            endless, short = pool.spawn("endless"), pool.spawn("short")
            procs += [endless, short]
            listen(lambda: heard["endless"] > 100)
            os.kill(endless.pid, signal.SIGKILL)
            listen(lambda p=short: not p.is_alive() and heard["short"] == 20_000)
            assert heard["short"] == 20_000 and short.exitcode == 0, heard
            endless.join(timeout=10)
            assert endless.exitcode == -signal.SIGKILL
    finally:
        for p in procs:
            p.kill()
        pool.close()


def test_progress_lines_without_a_tty(tmp_path):
    out = io.StringIO()
    prog = SweepProgress(total=2, done=0, epochs_left=4, stream=out)
    prog.handle({"kind": "start", "run_id": "a", "label": "relu seed 0", "epochs": 2, "resume": False})
    prog.handle({"kind": "epoch", "run_id": "a", "epoch": 0, "epochs": 2, "val_acc": 0.5})
    prog.handle({"kind": "epoch", "run_id": "a", "epoch": 1, "epochs": 2, "val_acc": 0.75})
    prog.handle({"kind": "end", "run_id": "a", "status": "done", "note": ": best 75%"})
    prog.handle({"kind": "start", "run_id": "b", "label": "elu seed 0", "epochs": 2, "resume": True})
    prog.handle({"kind": "epoch", "run_id": "b", "epoch": 1, "epochs": 2, "val_acc": None})
    lines = out.getvalue().splitlines()
    assert lines[0] == "[0/2 trials, ETA ?] start relu seed 0"
    assert lines[2].startswith("[0/2 trials, ETA ") and lines[2].endswith(
        "relu seed 0: epoch 2/2, val acc 75.00%"
    )
    assert lines[3].startswith("[1/2 trials") and lines[3].endswith("done relu seed 0: best 75%")
    assert lines[4].endswith("start elu seed 0 (resuming from its checkpoint)")
    assert prog.epochs_left == 0 and "ETA 0m00s" in lines[5]
