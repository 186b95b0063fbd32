"""`actlab compare / results / report`: real (tiny) training, kill -9 and Ctrl-C resume, concurrent
commands, worker processes, output formats and user errors."""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from actlab.experiments import command
from actlab.experiments.command import main, split_list
from actlab.experiments.sweep import LOG_NAME

# tiny trials: a 8-channel simple_cnn on digits, a fraction of a second per epoch on one CPU core
TINY = ["--model-kwargs", "width=8", "--device", "cpu", "--batch-size", "128", "--lr", "0.05"]
# no torch.compile of activation kernels: compiling costs seconds per activation, these trials far less
ENV = {**os.environ, "PYTHONUNBUFFERED": "1", "ACTLAB_FUSED": "0"}


@pytest.fixture(autouse=True, scope="module")
def _eager_activations():
    from actlab.activations.fused import use_fused

    with use_fused(False):
        yield


def _compare(out: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "actlab.experiments.command", "compare", *TINY, "--out", str(out),
            "--no-report", *extra]  # fmt: skip


def _like_a_terminal() -> None:
    """Give the child the Ctrl-C a shell gives it: a test runner's worker may have SIGINT ignored or
    blocked, and both are inherited, so the child would never see the test's SIGINT."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})


def _start(cmd: list[str], log: Path) -> subprocess.Popen:
    """Start a command at low priority: on a loaded machine the polling test must not miss its states."""
    return subprocess.Popen(
        ["nice", "-n", "10", *cmd],
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
        env=ENV,
        preexec_fn=_like_a_terminal,
    )


def _wait_for(pred, proc: subprocess.Popen, timeout: float = 90.0) -> None:
    """Poll `pred()` until true; fail if the process ends first or time runs out."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return
        assert proc.poll() is None, f"command ended (rc {proc.returncode}) before the awaited state"
        time.sleep(0.05)
    proc.kill()
    pytest.fail("timed out waiting for the sweep to reach the awaited state")


def _runs(out: Path) -> list[dict]:
    """Every run row with its recorded epochs, read-only (polling must not take the write lock)."""
    db = out / "actlab.db"
    if not db.exists():
        return []
    with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30)) as c:
        c.row_factory = sqlite3.Row
        try:
            runs = [dict(r) for r in c.execute("SELECT * FROM runs ORDER BY rowid")]
            epochs = c.execute("SELECT run_id, epoch FROM epochs ORDER BY run_id, epoch").fetchall()
        except sqlite3.OperationalError:  # the schema is being created
            return []
    return [{**r, "epochs": [e for rid, e in epochs if rid == r["run_id"]]} for r in runs]


def _mid_trial(out: Path, index: int):
    """True once trial `index` has recorded an epoch (so it has a checkpoint) and has not finished."""

    def pred() -> bool:
        runs = _runs(out)
        return len(runs) > index and runs[index]["status"] == "running" and len(runs[index]["epochs"]) >= 1

    return pred


def _log_text(out: Path, run_id: str) -> str:
    return (out / "runs" / run_id / LOG_NAME).read_text()


# ----------------------------------------------------------------------------------------------------------
# interruption, concurrency, workers (subprocesses)


@pytest.mark.slow
def test_kill_9_and_ctrl_c_then_rerun_completes_without_rerunning(tmp_path):
    out, log = tmp_path / "sweep", tmp_path / "log.txt"
    # 8 epochs: from the moment the test sees trial 3 mid-way, the command has ~14 epochs left (seconds),
    # so a stall of the test under load does not let it finish before the Ctrl-C (with 4 it once did)
    cmd = _compare(out, "--acts", "relu,elu,swish", "--seeds", "1", "--epochs", "8")
    p = _start(cmd, log)  # 1: kill -9 during the second trial, after the first finished
    _wait_for(lambda: [r["status"] for r in _runs(out)][:1] == ["done"] and _mid_trial(out, 1)(), p)
    p.send_signal(signal.SIGKILL)
    p.wait(timeout=30)
    first = _runs(out)
    assert (
        first[0]["status"] == "done" and first[1]["status"] == "running" and first[2]["status"] == "pending"
    )

    p = _start(cmd, log)  # 2: Ctrl-C during the third trial (pending ones are claimed first)
    _wait_for(_mid_trial(out, 2), p)
    p.send_signal(signal.SIGINT)
    assert p.wait(timeout=60) == 130
    second = _runs(out)
    assert [r["status"] for r in second] == ["done", "running", "running"]
    assert (out / "runs" / second[2]["run_id"] / "checkpoint.pt").exists()

    p = _start(cmd, log)  # 3: completes both interrupted trials from their checkpoints
    assert p.wait(timeout=120) == 0, log.read_text()[-3000:]
    final = _runs(out)
    assert [r["status"] for r in final] == ["done"] * 3
    assert [r["attempts"] for r in final] == [1, 2, 2]
    assert final[0]["finished"] == first[0]["finished"]  # the completed trial was not touched
    assert all(r["epochs"] == list(range(8)) for r in final)  # each epoch once
    for r, before in ((final[1], first[1]), (final[2], second[2])):
        text = _log_text(out, r["run_id"])
        assert text.count("fresh start") == 1 and text.count(": resume") == 1, text
        resumed_at = int(text.strip().splitlines()[-2].rsplit(" ", 1)[1])  # "first epoch run K"
        # continued from the last checkpoint (a kill between checkpoint and store write: one epoch later)
        assert resumed_at in (len(before["epochs"]), len(before["epochs"]) + 1) and resumed_at > 0, text
        run_json = json.loads((out / "runs" / r["run_id"] / "run.json").read_text())
        assert run_json["status"] == "done" and len(run_json["epochs"]) == 8
    assert "rerun the same command to resume" in log.read_text()


@pytest.mark.slow
def test_two_commands_on_one_folder_run_each_trial_once(tmp_path):
    out = tmp_path / "sweep"
    cmd = _compare(out, "--acts", "relu,elu", "--seeds", "2", "--epochs", "2")
    procs = [_start(cmd, tmp_path / f"log{i}.txt") for i in range(2)]
    assert [p.wait(timeout=120) for p in procs] == [0, 0]
    runs = _runs(out)
    assert len(runs) == 4 and {r["status"] for r in runs} == {"done"}
    assert [r["attempts"] for r in runs] == [1] * 4
    assert all(_log_text(out, r["run_id"]).count(" by ") == 1 for r in runs)  # claimed once
    assert all(r["epochs"] == [0, 1] for r in runs)


@pytest.mark.slow
def test_workers_run_trials_in_child_processes_and_a_killed_worker_is_replaced(tmp_path):
    out, log = tmp_path / "sweep", tmp_path / "log.txt"
    p = _start(_compare(out, "--acts", "relu,elu", "--seeds", "2", "--epochs", "3", "--workers", "2"), log)

    def victim() -> dict | None:
        return next((r for r in _runs(out) if r["status"] == "running" and r["epochs"]), None)

    _wait_for(lambda: victim() is not None, p)
    killed = victim()
    os.kill(int(killed["worker"].rsplit(":", 1)[1]), signal.SIGKILL)  # one worker, not the command
    assert p.wait(timeout=150) == 0, log.read_text()[-3000:]
    runs = _runs(out)
    assert len(runs) == 4 and {r["status"] for r in runs} == {"done"}
    assert all(r["epochs"] == [0, 1, 2] for r in runs)
    assert sorted(r["attempts"] for r in runs) == [1, 1, 1, 2]
    assert next(r for r in runs if r["run_id"] == killed["run_id"])["attempts"] == 2
    assert all(not r["worker"].endswith(f":{p.pid}") for r in runs)  # trained by the spawned workers
    text = log.read_text()
    assert "exit code -9; starting another" in text and "[4/4 trials" in text


# ----------------------------------------------------------------------------------------------------------
# in-process: results, report, default, errors


@pytest.fixture(scope="module")
def small_sweep(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("cmp") / "sweep"
    argv = ["compare", *TINY, "--acts", "relu,elu", "--seeds", "2", "--epochs", "2", "--out", str(out)]
    assert main([*argv, "--quiet"]) == 0
    return out


def test_compare_writes_the_report(small_sweep, capsys):
    assert (small_sweep / "report.html").stat().st_size > 10_000 and (small_sweep / "report.md").exists()
    assert json.loads((small_sweep / "stats.json").read_text())["baseline"] == "relu"
    assert main(["compare", *TINY, "--acts", "relu,elu", "--seeds", "2", "--epochs", "2",
                 "--out", str(small_sweep), "--quiet"]) == 0  # fmt: skip
    text = capsys.readouterr().out
    assert "4 trials" in text and "4 already closed, 0 run now" in text and "elu vs relu: " in text


def test_results_formats(small_sweep, capsys):
    assert main(["results", str(small_sweep), "--csv"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    need = {"run_id", "model", "dataset", "act", "seed", "status", "best_val_acc", "best_epoch",
            "final_val_acc", "seconds"}  # fmt: skip
    assert len(rows) == 4 and need <= set(rows[0]) and {r["status"] for r in rows} == {"done"}
    assert main(["results", str(small_sweep), "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert len(rows) == 4 and need <= set(rows[0]) and 0 < rows[0]["best_val_acc"] <= 1
    assert main(["results", str(small_sweep)]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].split()[:3] == ["run_id", "act", "model"] and len(table) == 6 and "%" in table[2]


def test_report_json(small_sweep, tmp_path, capsys):
    assert (
        main(["report", str(small_sweep), "--json", "--metric", "final_val_acc", "--out", str(tmp_path)]) == 0
    )
    stats = json.loads(capsys.readouterr().out)
    assert stats["metric"] == "final_val_acc" and stats["groups"][0]["comparisons"][0]["act"] == "elu"
    assert (tmp_path / "report.html").exists() and (tmp_path / "report.md").exists()
    assert main(["report", str(small_sweep), "--baseline", "elu"]) == 0
    assert "relu vs elu: " in capsys.readouterr().out


def test_compare_without_arguments_runs_the_default(tmp_path, monkeypatch, capsys):
    tiny = {**command.DEFAULT_SWEEP, "acts": ["relu", "gelu"], "seeds": 2}
    tiny["base"] = {**tiny["base"], "epochs": 1, "model_kwargs": {"width": 8}}
    monkeypatch.setattr(command, "DEFAULT_SWEEP", tiny)
    monkeypatch.chdir(tmp_path)
    assert main(["compare", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert f"report: {command.DEFAULT_OUT}/report.html" in out and "gelu vs relu: " in out
    assert len(_runs(tmp_path / command.DEFAULT_OUT)) == 4
    assert main(["compare", "--quiet", "--no-report", "--seeds", "1"]) == 0  # changed → its own folder
    spec, is_default = command.spec_from_args(_parse(["--seeds", "1"]))
    assert not is_default and (tmp_path / f"{command.DEFAULT_OUT}-{spec.sweep_id()}" / "actlab.db").exists()


def _parse(argv: list[str]):
    import argparse

    p = argparse.ArgumentParser()
    command.add_compare_arguments(p)
    return p.parse_args(argv)


def test_flags_override_the_default_and_the_config_file(tmp_path):
    spec, is_default = command.spec_from_args(_parse([]))
    assert is_default and spec.acts == tuple(command.DEFAULT_SWEEP["acts"]) and spec.seeds == (0, 1, 2, 3, 4)
    spec, is_default = command.spec_from_args(
        _parse(["--acts", "relu,smu(alpha=0.25, mu=1e6)", "--seeds", "3,7", "--lrs", "0.1,0.01",
                "--model", "simple_cnn,mlp", "--epochs", "3", "--threads", "1"])
    )  # fmt: skip
    assert not is_default and spec.acts == ("relu", "smu(alpha=0.25, mu=1000000.0)")
    assert spec.seeds == (3, 7) and spec.lrs == (0.1, 0.01) and spec.models == ("simple_cnn", "mlp")
    assert spec.base.epochs == 3 and spec.base.threads == 1 and spec.base.dataset == "digits"
    path = tmp_path / "s.toml"
    path.write_text('[sweep]\nacts = ["relu", "mish"]\nseeds = [1]\n[train]\nepochs = 2\nlr = 0.2\n')
    spec, _ = command.spec_from_args(_parse(["--config", str(path), "--epochs", "4", "--seed", "9"]))
    assert (
        spec.acts == ("relu", "mish") and spec.seeds == (9,) and spec.base.epochs == 4 and spec.base.lr == 0.2
    )
    assert command.spec_from_args(_parse(["--act", "mish"]))[0].acts == ("mish",)
    assert split_list("relu, smu(alpha=0.25, mu=1e6),,gelu") == ["relu", "smu(alpha=0.25, mu=1e6)", "gelu"]


@pytest.mark.parametrize(
    ("argv", "match"),
    [
        (["compare", "--acts", "relu,nosuch", "--out", "{tmp}/x"], "nosuch"),
        (["compare", "--seeds", "0", "--out", "{tmp}/x"], "seeds"),
        (["compare", "--workers", "0", "--out", "{tmp}/x"], "workers"),
        (["compare", "--config", "{tmp}/missing.toml"], "not found"),
        (["compare", "--acts", "relu", "--act", "elu", "--out", "{tmp}/x"], "not both"),
        (["compare", "--dataset", "cifar10", "--data-dir", "{tmp}/nodata", "--out", "{tmp}/x"], "cifar"),
        (["compare", "--epochs", "0", "--out", "{tmp}/x"], "epochs"),
        (["results", "{tmp}/nothing"], "no results store"),
        (["report", "{tmp}/nothing"], "no results store"),
    ],
)
def test_user_errors_exit_2_without_traceback(tmp_path, capsys, argv, match):
    assert main([a.replace("{tmp}", str(tmp_path)) for a in argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith("actlab: error: ") and match in err.lower() and "Traceback" not in err
    assert not (tmp_path / "nothing").exists() and not (tmp_path / "x" / "actlab.db").exists()
