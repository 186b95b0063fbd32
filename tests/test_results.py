"""The SQLite results store: schema, idempotence, concurrent claims, crash safety, atomic writes."""

from __future__ import annotations

import json
import math
import multiprocessing as mp
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from actlab.results import ResultsStore, atomic_write_json, atomic_write_text

SRC = str(Path(__file__).resolve().parents[1] / "src")
ENV = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [SRC, os.environ.get("PYTHONPATH")]))}


def _rows(n: int, sweep: str = "s1", act: str = "relu") -> list[dict]:
    return [
        {
            "run_id": f"{sweep}-{act}-{i}",
            "config": {"model": "mlp", "dataset": "mnist", "act": act, "seed": i, "lr": 0.1},
        }
        for i in range(n)
    ]


def _dead_pid() -> int:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def test_schema_round_trip(tmp_path):
    with ResultsStore(tmp_path) as st:
        assert st.db_path == tmp_path / "actlab.db"
        assert st.add_sweep("s1", {"acts": ["relu"], "seeds": [0, 1]})
        assert st.add_runs("s1", _rows(2)) == 2
        run = st.claim_next("s1", "w:1")
        assert run["status"] == "running" and run["act"] == "relu" and run["seed"] == 0 and run["lr"] == 0.1
        assert json.loads(run["config_json"])["model"] == "mlp"
        st.record_epoch(run["run_id"], {"epoch": 0, "train_loss": 1.5, "val_acc": 0.5, "seconds": 2.0})
        st.finish(
            run["run_id"],
            "done",
            {
                "best_val_acc": 0.9,
                "best_epoch": 3,
                "final_val_acc": 0.88,
                "seconds": 12.5,
                "env": {"torch": "2.5", "device": "cpu"},
            },
        )
        assert (st.run_dir(run["run_id"])).is_dir()
    with ResultsStore(tmp_path / "actlab.db") as st:  # reopen by file path
        (r,) = st.runs(status="done")
        assert r["best_val_acc"] == 0.9 and r["best_epoch"] == 3 and r["seconds"] == 12.5
        assert (
            json.loads(r["env_json"]) == {"device": "cpu", "torch": "2.5"} and r["finished"] >= r["started"]
        )
        (e,) = st.epochs(r["run_id"])
        assert e["epoch"] == 0 and e["val_acc"] == 0.5 and e["train_acc"] is None
        assert st.counts("s1") == {
            "pending": 1,
            "running": 0,
            "done": 1,
            "diverged": 0,
            "failed": 0,
            "total": 2,
        }
        assert st.sweeps()[0]["sweep_id"] == "s1"


def test_validation_errors(tmp_path):
    with ResultsStore(tmp_path) as st:
        st.add_runs("s", _rows(1, "s"))
        with pytest.raises(ValueError, match="percent"):
            st.record_epoch("s-relu-0", {"epoch": 0, "val_acc": 93.0})
        with pytest.raises(ValueError, match="bogus"):
            st.record_epoch("s-relu-0", {"epoch": 0, "bogus": 1})
        with pytest.raises(ValueError, match="status"):
            st.finish("s-relu-0", "great")
        with pytest.raises(ValueError, match="nope"):
            st.finish("nope", "done")
        with pytest.raises(sqlite3.IntegrityError):  # the CHECK constraint guards direct writes too
            st._conn.execute("UPDATE runs SET status = 'weird'")


def test_idempotent_add_and_record(tmp_path):
    with ResultsStore(tmp_path) as st:
        assert st.add_sweep("s1") and not st.add_sweep("s1")
        assert st.add_runs("s1", _rows(3)) == 3
        st.finish("s1-relu-0", "done", {"best_val_acc": 0.5})
        assert st.add_runs("s1", _rows(4)) == 1  # re-adding leaves existing rows (and their status) alone
        assert st.get_run("s1-relu-0")["status"] == "done"
        for acc in (0.1, 0.2):  # a resumed run re-records the same epoch
            st.record_epoch("s1-relu-1", {"epoch": 0, "val_acc": acc})
        assert [e["val_acc"] for e in st.epochs("s1-relu-1")] == [0.2]
        assert st.counts("s1")["total"] == 4


def _claim_all(db: str, barrier, out) -> None:
    barrier.wait()
    with ResultsStore(db) as st:
        got = []
        while (run := st.claim_next("s1")) is not None:
            got.append(run["run_id"])
    out.put(got)


def test_two_processes_never_double_claim(tmp_path):
    with ResultsStore(tmp_path) as st:
        st.add_runs("s1", _rows(60))
        st.add_runs("other", _rows(5, "other"))
    ctx = mp.get_context("fork")
    barrier, out = ctx.Barrier(4), ctx.Queue()
    procs = [ctx.Process(target=_claim_all, args=(str(tmp_path), barrier, out)) for _ in range(4)]
    for p in procs:
        p.start()
    claimed = [out.get(timeout=60) for _ in procs]
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    flat = [r for got in claimed for r in got]
    assert len(flat) == len(set(flat)) == 60 and all(r.startswith("s1-") for r in flat)
    with ResultsStore(tmp_path) as st:
        assert st.counts("s1")["running"] == 60 and st.counts("other")["pending"] == 5


def _claim_one_and_die(db: str) -> None:
    with ResultsStore(db) as st:
        st.claim_next("s1")
    os._exit(0)  # a worker killed mid-trial: no finish()


def test_dead_worker_is_reclaimed(tmp_path):
    with ResultsStore(tmp_path) as st:
        st.add_runs("s1", _rows(1))
    p = mp.get_context("fork").Process(target=_claim_one_and_die, args=(str(tmp_path),))
    p.start()
    p.join()
    with ResultsStore(tmp_path) as st:
        (orphan,) = st.runs("s1", status="running")
        assert orphan["worker"] == f"{socket.gethostname()}:{p.pid}"
        again = st.claim_next("s1", "me:1")
        assert again["run_id"] == orphan["run_id"] and again["worker"] == "me:1" and again["attempts"] == 2
        assert not st.heartbeat(orphan["run_id"], orphan["worker"])  # the old owner learns it lost the trial
        assert st.heartbeat(orphan["run_id"], "me:1")
        assert st.claim_next("s1", "other:2") is None  # alive owner with a fresh heartbeat: not taken


def test_stale_heartbeat_and_live_pid(tmp_path):
    host = socket.gethostname()
    with ResultsStore(tmp_path, stale_after=60) as st:
        st.add_runs("s1", _rows(3))
        st.claim_next("s1", f"{host}:{os.getpid()}")  # alive, here
        st.claim_next("s1", "elsewhere:123")  # another host, fresh heartbeat
        st.claim_next("s1", f"{host}:{_dead_pid()}")  # dead pid here
        assert st.claim_next("s1", "w")["run_id"] == "s1-relu-2"
        assert st.claim_next("s1", "w2") is None
        st._conn.execute("UPDATE runs SET heartbeat = ? WHERE run_id = 's1-relu-1'", (time.time() - 120,))
        assert st.claim_next("s1", "w3")["run_id"] == "s1-relu-1"


WRITER = textwrap.dedent(
    """
    import sys
    from actlab.results import ResultsStore
    st = ResultsStore(sys.argv[1])
    i = 0
    while True:
        rows = [{"run_id": f"r{i}-{k}", "config": {"act": "relu", "seed": k}} for k in range(10)]
        st.add_runs("s", rows)
        for k in range(10):
            st.record_epoch(f"r{i}-{k}", {"epoch": 0, "val_acc": 0.5, "train_loss": 1.0})
            st.finish(f"r{i}-{k}", "done", {"best_val_acc": 0.5, "best_epoch": 0, "seconds": 1.0})
        if i == 0:
            print("ready", flush=True)
        i += 1
    """
)


def test_kill_9_mid_write_leaves_consistent_db(tmp_path):
    for _ in range(3):
        proc = subprocess.Popen(
            [sys.executable, "-c", WRITER, str(tmp_path)], env=ENV, stdout=subprocess.PIPE
        )
        assert proc.stdout.readline().strip() == b"ready"
        time.sleep(0.3)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    con = sqlite3.connect(tmp_path / "actlab.db")
    assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    con.close()
    with ResultsStore(tmp_path) as st:
        runs = st.runs()
        assert len(runs) % 10 == 0 and len(runs) >= 30  # add_runs batches are all-or-nothing
        done = [r for r in runs if r["status"] == "done"]
        assert all(r["best_val_acc"] == 0.5 and r["seconds"] == 1.0 and r["finished"] for r in done)
        assert all(r["status"] in ("pending", "done") for r in runs)
        assert all(e["val_acc"] == 0.5 and e["train_loss"] == 1.0 for e in st.epochs())
        st.add_runs("s", [{"run_id": "after", "config": {}}])  # still writable


def test_atomic_write_roundtrip_and_failure(tmp_path, monkeypatch):
    target = tmp_path / "sub" / "x.json"
    atomic_write_json(target, {"a": 1})
    assert json.loads(target.read_text()) == {"a": 1}
    with pytest.raises(ValueError):
        atomic_write_json(target, {"a": math.nan})  # strict JSON
    monkeypatch.setattr(os, "fsync", lambda fd: (_ for _ in ()).throw(OSError("disk full")))
    with pytest.raises(OSError, match="disk full"):
        atomic_write_text(target, "partial?")
    assert json.loads(target.read_text()) == {"a": 1} and os.listdir(target.parent) == ["x.json"]


ATOMIC_LOOP = textwrap.dedent(
    """
    import sys
    from actlab.results import atomic_write_text
    print("ready", flush=True)
    i = 0
    while True:
        atomic_write_text(sys.argv[1], "AB"[i % 2] * 4_000_000)
        i += 1
    """
)


def test_atomic_write_survives_kill_9(tmp_path):
    target = tmp_path / "big.txt"
    atomic_write_text(target, "A" * 4_000_000)
    proc = subprocess.Popen([sys.executable, "-c", ATOMIC_LOOP, str(target)], env=ENV, stdout=subprocess.PIPE)
    assert proc.stdout.readline().strip() == b"ready"
    for _ in range(20):
        time.sleep(0.05)
        text = target.read_text()
        assert len(text) == 4_000_000 and text in ("A" * 4_000_000, "B" * 4_000_000)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    text = target.read_text()
    assert len(text) == 4_000_000 and len(set(text)) == 1
