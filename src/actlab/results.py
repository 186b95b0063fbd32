"""The results store: one SQLite file (stdlib `sqlite3`, WAL) of sweeps, runs and per-epoch metrics.

Layout: `DIR/actlab.db`, artifacts in `DIR/runs/<run_id>/`. Every write is one `BEGIN IMMEDIATE`
transaction and the connection waits (`busy_timeout`) instead of failing, so several worker processes can
share one store; a `kill -9` at any point leaves the last committed state. No torch here: `analysis` and
the CLI read this module on machines without a GPU stack.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import socket
import sqlite3
import tempfile
import time
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

DB_NAME = "actlab.db"
STATUSES = ("pending", "running", "done", "diverged", "failed")
FINAL_STATUSES = ("done", "diverged", "failed")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS sweeps (
    sweep_id TEXT PRIMARY KEY, created REAL, spec_json TEXT);
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY, sweep_id TEXT, config_json TEXT, model TEXT, dataset TEXT, act TEXT,
    seed INTEGER, lr REAL,
    status TEXT NOT NULL DEFAULT 'pending'
        CHECK(status IN ('pending','running','done','diverged','failed')),
    best_val_acc REAL, best_epoch INTEGER, final_val_acc REAL, seconds REAL, env_json TEXT, error TEXT,
    started REAL, finished REAL, worker TEXT, heartbeat REAL, attempts INTEGER NOT NULL DEFAULT 0);
CREATE INDEX IF NOT EXISTS runs_sweep_status ON runs(sweep_id, status);
CREATE TABLE IF NOT EXISTS epochs (
    run_id TEXT, epoch INTEGER, train_loss REAL, train_acc REAL, val_loss REAL, val_acc REAL,
    val_top5 REAL, lr REAL, seconds REAL, images_per_s REAL, PRIMARY KEY(run_id, epoch));
"""
_RUN_FIELDS = ("model", "dataset", "act", "seed", "lr")
# per-epoch metrics besides the epoch number; accuracies are fractions in [0, 1]
EPOCH_FIELDS = (
    "train_loss",
    "train_acc",
    "val_loss",
    "val_acc",
    "val_top5",
    "lr",
    "seconds",
    "images_per_s",
)
_SUMMARY_FIELDS = ("best_val_acc", "best_epoch", "final_val_acc", "seconds", "env_json", "error")
_ACC_FIELDS = ("train_acc", "val_acc", "val_top5", "best_val_acc", "final_val_acc")


# ----------------------------------------------------------------------------------------------------------
# atomic file writes (imported by other modules: checkpoints, configs, reports)


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write `data` to `path` so readers see the old file or the whole new one, never a partial one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    with contextlib.suppress(OSError):  # make the rename itself durable; not possible on every filesystem
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    return path


def atomic_write_text(path: str | os.PathLike, text: str, encoding: str = "utf-8") -> Path:
    """Atomically write `text` (temp file in the same folder, fsync, `os.replace`)."""
    return atomic_write_bytes(path, text.encode(encoding))


def atomic_write_json(path: str | os.PathLike, obj: Any, indent: int | None = 2) -> Path:
    """Atomically write `obj` as strict JSON (NaN/inf are refused rather than written as invalid JSON)."""
    return atomic_write_text(path, json.dumps(obj, indent=indent, sort_keys=True, allow_nan=False) + "\n")


# ----------------------------------------------------------------------------------------------------------
# worker identity and liveness


def default_worker() -> str:
    """This process as a worker id, `host:pid`."""
    return f"{socket.gethostname()}:{os.getpid()}"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def _worker_dead(worker: str | None, heartbeat: float | None, now: float, stale_after: float) -> bool:
    """A running trial is orphaned if its worker is a dead pid on this host or its heartbeat is stale."""
    if heartbeat is None or now - heartbeat > stale_after:
        return True
    host, _, pid = (worker or "").rpartition(":")
    return host == socket.gethostname() and pid.isdigit() and not _pid_alive(int(pid))


def _check_acc(name: str, value: Any) -> None:
    if value is None or name not in _ACC_FIELDS:
        return
    v = float(value)
    if not math.isnan(v) and not 0.0 <= v <= 1.0:
        raise ValueError(f"{name}={value!r}: accuracies are fractions in [0, 1], not percent")


# ----------------------------------------------------------------------------------------------------------
# the store


class ResultsStore:
    """SQLite store of sweeps, runs and epochs at `DIR/actlab.db` (`path` is DIR or the .db file).

    Args:
        path: results folder (created if missing) or the path of the database file itself.
        stale_after: seconds without heartbeat after which a `running` trial may be claimed again.
        timeout: seconds a write waits for another process's lock before raising.
    """

    def __init__(self, path: str | os.PathLike, *, stale_after: float = 900.0, timeout: float = 60.0):
        path = Path(path)
        self.db_path = path if path.suffix == ".db" else path / DB_NAME
        self.root = self.db_path.parent
        self.root.mkdir(parents=True, exist_ok=True)
        self.stale_after = stale_after
        self._conn = sqlite3.connect(self.db_path, timeout=timeout, isolation_level=None)
        self._conn.row_factory = sqlite3.Row
        self._conn.execute(f"PRAGMA busy_timeout = {int(timeout * 1000)}")
        self._conn.execute("PRAGMA journal_mode = WAL")
        self._conn.execute("PRAGMA synchronous = NORMAL")  # WAL + NORMAL: safe against process kills
        with self._tx() as c:
            for stmt in filter(str.strip, _SCHEMA.split(";")):
                c.execute(stmt)

    # -- plumbing
    def __enter__(self) -> ResultsStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._conn.close()

    @contextlib.contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        """One write transaction; takes the write lock up front so read-then-write cannot race."""
        self._conn.execute("BEGIN IMMEDIATE")
        try:
            yield self._conn
        except BaseException:
            self._conn.execute("ROLLBACK")
            raise
        self._conn.execute("COMMIT")

    def run_dir(self, run_id: str) -> Path:
        """Artifact folder of one run, `DIR/runs/<run_id>/` (created)."""
        d = self.root / "runs" / run_id
        d.mkdir(parents=True, exist_ok=True)
        return d

    # -- writes
    def add_sweep(self, sweep_id: str, spec: Mapping[str, Any] | None = None) -> bool:
        """Register a sweep; returns False if it already existed (its spec is kept)."""
        with self._tx() as c:
            cur = c.execute(
                "INSERT OR IGNORE INTO sweeps VALUES (?, ?, ?)",
                (sweep_id, time.time(), json.dumps(dict(spec or {}), sort_keys=True)),
            )
        return cur.rowcount == 1

    def add_runs(self, sweep_id: str, rows: Iterable[Mapping[str, Any]]) -> int:
        """Add pending runs; each row has `run_id`, `config` (dict) and optionally model/dataset/act/seed/lr
        (read from `config` when absent). Existing run ids are left untouched. Returns how many were new."""
        values = []
        for row in rows:
            if "run_id" not in row:
                raise ValueError(f"run row without run_id: {dict(row)!r}")
            config = dict(row.get("config") or {})
            fields = [row.get(k, config.get(k)) for k in _RUN_FIELDS]
            values.append((row["run_id"], sweep_id, json.dumps(config, sort_keys=True), *fields))
        with self._tx() as c:
            before = c.total_changes
            c.executemany(
                "INSERT OR IGNORE INTO runs (run_id, sweep_id, config_json, model, dataset, act, seed, lr) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                values,
            )
            return c.total_changes - before

    def claim_next(self, sweep_id: str | None, worker: str | None = None) -> dict[str, Any] | None:
        """Atomically take one trial: a pending one first, else a `running` one whose worker is dead.
        Returns the claimed run row (status now `running`), or None when nothing is left to do."""
        worker = worker or default_worker()
        where, args = ("sweep_id = ? AND ", [sweep_id]) if sweep_id is not None else ("", [])
        now = time.time()
        with self._tx() as c:
            row = c.execute(
                f"SELECT run_id FROM runs WHERE {where}status = 'pending' ORDER BY rowid LIMIT 1", args
            ).fetchone()
            if row is None:
                running = c.execute(
                    f"SELECT run_id, worker, heartbeat FROM runs WHERE {where}status = 'running' "
                    "ORDER BY rowid",
                    args,
                ).fetchall()
                row = next(
                    (r for r in running if _worker_dead(r["worker"], r["heartbeat"], now, self.stale_after)),
                    None,
                )
            if row is None:
                return None
            c.execute(
                "UPDATE runs SET status = 'running', worker = ?, started = ?, heartbeat = ?, "
                "finished = NULL, error = NULL, attempts = attempts + 1 WHERE run_id = ?",
                (worker, now, now, row["run_id"]),
            )
            return dict(c.execute("SELECT * FROM runs WHERE run_id = ?", (row["run_id"],)).fetchone())

    def retry_failed(self, run_ids: Iterable[str]) -> int:
        """Put failed runs among `run_ids` back to pending (a crash is not a result; divergence is).
        Returns how many."""
        ids = list(run_ids)
        with self._tx() as c:
            cur = c.executemany(
                "UPDATE runs SET status = 'pending', worker = NULL, error = NULL, finished = NULL "
                "WHERE run_id = ? AND status = 'failed'",
                [(rid,) for rid in ids],
            )
        return cur.rowcount

    def heartbeat(self, run_id: str, worker: str | None = None) -> bool:
        """Mark the trial alive; False if `worker` no longer owns it (someone else re-claimed it)."""
        with self._tx() as c:
            cur = c.execute(
                "UPDATE runs SET heartbeat = ? WHERE run_id = ? AND worker = ? AND status = 'running'",
                (time.time(), run_id, worker or default_worker()),
            )
        return cur.rowcount == 1

    def record_epoch(self, run_id: str, metrics: Mapping[str, Any]) -> None:
        """Store one epoch's metrics (`epoch` required; accuracies as fractions); replaces on resume."""
        if "epoch" not in metrics:
            raise ValueError(f"record_epoch({run_id!r}): metrics need an 'epoch' key, got {sorted(metrics)}")
        unknown = set(metrics) - {"epoch", *EPOCH_FIELDS}
        if unknown:
            raise ValueError(f"record_epoch: unknown metric(s) {sorted(unknown)}; valid: {EPOCH_FIELDS}")
        for k, v in metrics.items():
            _check_acc(k, v)
        with self._tx() as c:
            c.execute(
                f"INSERT OR REPLACE INTO epochs (run_id, epoch, {', '.join(EPOCH_FIELDS)}) "
                f"VALUES (?, ?{', ?' * len(EPOCH_FIELDS)})",
                (run_id, int(metrics["epoch"]), *(metrics.get(k) for k in EPOCH_FIELDS)),
            )
            c.execute(
                "UPDATE runs SET heartbeat = ? WHERE run_id = ? AND status = 'running'", (time.time(), run_id)
            )

    def finish(self, run_id: str, status: str, summary: Mapping[str, Any] | None = None) -> None:
        """Close a trial as done/diverged/failed with its summary (best_val_acc, best_epoch, final_val_acc,
        seconds, error, and `env` as a dict or `env_json` as a string)."""
        if status not in FINAL_STATUSES:
            raise ValueError(f"finish: status={status!r}; valid: {FINAL_STATUSES}")
        summary = dict(summary or {})
        if "env" in summary:
            summary["env_json"] = json.dumps(summary.pop("env"), sort_keys=True, default=str)
        unknown = set(summary) - set(_SUMMARY_FIELDS)
        if unknown:
            raise ValueError(f"finish: unknown summary key(s) {sorted(unknown)}; valid: {_SUMMARY_FIELDS}")
        for k, v in summary.items():
            _check_acc(k, v)
        sets = "".join(f", {k} = ?" for k in summary)
        with self._tx() as c:
            cur = c.execute(
                f"UPDATE runs SET status = ?, finished = ?{sets} WHERE run_id = ?",
                (status, time.time(), *summary.values(), run_id),
            )
            if cur.rowcount != 1:
                raise ValueError(f"finish: unknown run_id {run_id!r}")

    # -- reads
    def sweeps(self) -> list[dict[str, Any]]:
        return [dict(r) for r in self._conn.execute("SELECT * FROM sweeps ORDER BY created")]

    def runs(self, sweep_id: str | None = None, status: str | None = None) -> list[dict[str, Any]]:
        """Run rows (dicts with every column), in insertion order, optionally filtered."""
        q, args = "SELECT * FROM runs WHERE 1", []
        for col, val in (("sweep_id", sweep_id), ("status", status)):
            if val is not None:
                q, args = q + f" AND {col} = ?", [*args, val]
        return [dict(r) for r in self._conn.execute(q + " ORDER BY rowid", args)]

    def get_run(self, run_id: str) -> dict[str, Any] | None:
        row = self._conn.execute("SELECT * FROM runs WHERE run_id = ?", (run_id,)).fetchone()
        return None if row is None else dict(row)

    def epochs(self, run_id: str | None = None) -> list[dict[str, Any]]:
        """Epoch rows ordered by run and epoch, for one run or all."""
        q, args = ("WHERE run_id = ?", [run_id]) if run_id is not None else ("", [])
        return [dict(r) for r in self._conn.execute(f"SELECT * FROM epochs {q} ORDER BY run_id, epoch", args)]

    def counts(self, sweep_id: str | None = None) -> dict[str, int]:
        """Number of runs per status (every status present) plus `total`."""
        q, args = ("WHERE sweep_id = ?", [sweep_id]) if sweep_id is not None else ("", [])
        out = dict.fromkeys(STATUSES, 0)
        out.update(
            self._conn.execute(f"SELECT status, COUNT(*) FROM runs {q} GROUP BY status", args).fetchall()
        )
        out["total"] = sum(out[s] for s in STATUSES)
        return out
