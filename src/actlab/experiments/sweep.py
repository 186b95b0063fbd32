"""Sweeps run against the results store: `run_sweep(spec, DIR)` trains every trial of a `SweepSpec`
(see `spec.py`) with every result in `DIR/actlab.db` and every checkpoint in `DIR/runs/<run_id>/`. Run ids
are `cfg.run_id()` (a hash of the config) and the sweep id a hash of the spec, so rerunning the same
command skips finished trials, retries failed ones and resumes an interrupted one from its last checkpoint.
"""

from __future__ import annotations

import contextlib
import json
import os
import pickle
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from actlab.config import RunConfig
from actlab.experiments.spec import SweepSpec, expand
from actlab.results import FINAL_STATUSES, STATUSES, ResultsStore, default_worker
from actlab.train.engine import train
from actlab.train.state import CHECKPOINT_NAME

LOG_NAME = "sweep.log"  # per-run log of attempts (claim, resume point, end) in DIR/runs/<run_id>/
HEARTBEAT_S = 60.0  # seconds between liveness marks while a trial runs (the store's stale limit is 900 s)
Event = dict[str, Any]


# ----------------------------------------------------------------------------------------------------------
# progress: trials done/total, ETA, the running trial's epoch


def _duration(s: float) -> str:
    s = round(s)
    return f"{s // 3600}h{s % 3600 // 60:02d}m" if s >= 3600 else f"{s // 60}m{s % 60:02d}s"


def trial_label(cfg: RunConfig) -> str:
    return f"{cfg.act} {cfg.model}/{cfg.dataset} seed {cfg.seed} lr {cfg.lr:g}"


class SweepProgress:
    """Turns worker events into a status line on a TTY, or one line per event otherwise (stderr)."""

    def __init__(
        self, total: int, done: int, epochs_left: int, enabled: bool = True, stream: TextIO | None = None
    ):
        self.stream = stream or sys.stderr
        self.enabled = enabled
        self.tty = enabled and hasattr(self.stream, "isatty") and self.stream.isatty()
        self.total, self.done, self.epochs_left = total, done, epochs_left
        self.start, self.epochs_run = time.perf_counter(), 0
        self.running: dict[str, dict[str, Any]] = {}

    def eta(self) -> str:
        if not self.epochs_run:
            return "?"
        per_epoch = (time.perf_counter() - self.start) / self.epochs_run
        return _duration(per_epoch * max(0, self.epochs_left))

    def handle(self, ev: Event) -> None:
        kind, run_id = ev["kind"], ev["run_id"]
        if kind == "start":
            self.running[run_id] = {"label": ev["label"], "epochs": ev["epochs"], "next": None}
            self._show(f"start {ev['label']}" + (" (resuming from its checkpoint)" if ev["resume"] else ""))
        elif kind == "epoch":
            r = self.running.setdefault(run_id, {"label": run_id, "epochs": ev["epochs"], "next": None})
            skipped = ev["epoch"] if r["next"] is None else 0  # epochs a resume did not need to redo
            r["next"] = ev["epoch"] + 1
            self.epochs_run += 1
            self.epochs_left -= 1 + skipped
            acc = "" if ev.get("val_acc") is None else f", val acc {100 * ev['val_acc']:.2f}%"
            self._show(f"{r['label']}: epoch {ev['epoch'] + 1}/{ev['epochs']}{acc}", transient=True)
        elif kind == "end":
            r = self.running.pop(run_id, {"label": run_id, "epochs": 0, "next": 0})
            self.epochs_left -= max(0, r["epochs"] - (r["next"] or 0))
            self.done += ev["status"] != "lost"
            self._show(f"{ev['status']} {r['label']}{ev.get('note', '')}")

    def line(self, text: str) -> None:
        if self.enabled:
            self.stream.write(("\r\x1b[K" if self.tty else "") + text + "\n")
            self.stream.flush()

    def _show(self, text: str, transient: bool = False) -> None:
        if not self.enabled:
            return
        head = f"[{self.done}/{self.total} trials, ETA {self.eta()}]"
        if self.tty:
            if not transient:
                self.stream.write(f"\r\x1b[K{head} {text}\n")
            running = "; ".join(
                f"{r['label']} epoch {r['next'] or 0}/{r['epochs']}" for r in self.running.values()
            )
            self.stream.write(f"\r\x1b[K{head} {running}")
        else:
            self.stream.write(f"{head} {text}\n")
        self.stream.flush()

    def close(self) -> None:
        if self.tty:
            self.stream.write("\r\x1b[K")
            self.stream.flush()


# ----------------------------------------------------------------------------------------------------------
# one worker: claim, train, record, repeat


class ClaimLost(Exception):
    """Another worker took this trial over (ours looked dead); stop without recording anything."""


def _log(run_dir: Path, text: str) -> None:
    with open(run_dir / LOG_NAME, "a") as f:
        f.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')} {text}\n")


@contextlib.contextmanager
def _heartbeat(db_path: Path, run_id: str, worker: str, every: float = HEARTBEAT_S):
    """Mark the trial alive every `every` seconds from a thread with its own connection, so that an
    epoch longer than the store's stale limit is not taken for a dead worker."""
    stop = threading.Event()

    def beat() -> None:
        with ResultsStore(db_path) as st:
            while not stop.wait(every):
                st.heartbeat(run_id, worker)

    t = threading.Thread(target=beat, name=f"heartbeat-{run_id}", daemon=True)
    t.start()
    try:
        yield
    finally:
        stop.set()
        t.join(timeout=5)


def _summary(result: Any) -> dict[str, Any]:
    keep = ("best_val_acc", "best_epoch", "final_val_acc", "seconds", "env", "error")
    return {k: v for k, v in result.summary().items() if k in keep}


def run_trial(
    st: ResultsStore,
    run: Mapping[str, Any],
    cfg: RunConfig,
    train_fn: Callable[..., Any],
    emit: Callable[[Event], None],
    worker: str,
    parent_pid: int | None = None,
) -> str:
    """Train one claimed trial in `DIR/runs/<run_id>/` (resuming from its checkpoint if there is one)
    and close it in the store; returns its status ("lost" if another worker took it over)."""
    run_id = run["run_id"]
    run_dir = st.run_dir(run_id)
    resume = (run_dir / CHECKPOINT_NAME).exists()
    _log(run_dir, f"attempt {run['attempts']} by {worker}: " + ("resume" if resume else "fresh start"))
    label = trial_label(cfg)
    emit({"kind": "start", "run_id": run_id, "label": label, "epochs": cfg.epochs, "resume": resume})
    first: list[int] = []

    def on_epoch(m: dict[str, Any]) -> None:
        if parent_pid is not None and os.getppid() != parent_pid:
            raise SystemExit(f"worker {worker}: the sweep command is gone; stopping")
        if not st.heartbeat(run_id, worker):
            raise ClaimLost(f"{run_id} was re-claimed by another worker")
        st.record_epoch(run_id, m)
        if not first:
            first.append(m["epoch"])
            _log(run_dir, f"attempt {run['attempts']}: first epoch run {m['epoch']}")
        emit({"kind": "epoch", "run_id": run_id, "epoch": m["epoch"], "epochs": cfg.epochs,
              "val_acc": m.get("val_acc")})  # fmt: skip

    try:
        with _heartbeat(st.db_path, run_id, worker):
            result = train_fn(cfg, run_dir, resume=True, on_epoch=on_epoch, progress=False)
    except ClaimLost as err:
        _log(run_dir, f"attempt {run['attempts']}: {err}")
        emit({"kind": "end", "run_id": run_id, "status": "lost"})
        return "lost"
    except Exception as err:
        error = f"{type(err).__name__}: {err}"
        (run_dir / "error.txt").write_text(traceback.format_exc())
        st.finish(run_id, "failed", {"error": error})
        _log(run_dir, f"attempt {run['attempts']}: failed: {error}")
        emit({"kind": "end", "run_id": run_id, "status": "failed", "note": f": {error}"})
        return "failed"
    for m in result.epochs:  # idempotent; covers epochs a kill hid from on_epoch (run.json done, row not)
        st.record_epoch(run_id, m)
    status = result.status if result.status in FINAL_STATUSES else "failed"
    summary = _summary(result)
    if status != result.status:
        summary["error"] = f"trainer returned status {result.status!r}"
    st.finish(run_id, status, summary)
    _log(run_dir, f"attempt {run['attempts']}: {status}")
    best = summary.get("best_val_acc")
    note = "" if best is None else f": best val acc {100 * best:.2f}% (epoch {summary.get('best_epoch')})"
    emit({"kind": "end", "run_id": run_id, "status": status, "note": note})
    return status


def work(
    out_dir: str | os.PathLike,
    sweep_id: str,
    configs: Mapping[str, Mapping[str, Any]],
    train_fn: Callable[..., Any] = train,
    emit: Callable[[Event], None] = lambda ev: None,
    parent_pid: int | None = None,
) -> int:
    """Claim and run trials of `sweep_id` until none is left; returns how many this worker closed.

    `configs` maps run id → `RunConfig.to_dict()` from this invocation (so device and threads follow
    the current command); a claimed run not in it is rebuilt from its stored config."""
    worker, n = default_worker(), 0
    with ResultsStore(out_dir) as st:
        while (run := st.claim_next(sweep_id, worker)) is not None:
            d = configs.get(run["run_id"]) or json.loads(run["config_json"])
            status = run_trial(st, run, RunConfig.from_dict(d), train_fn, emit, worker, parent_pid)
            n += status != "lost"
            if parent_pid is not None and os.getppid() != parent_pid:
                break
    return n


def _worker_main(out_dir, sweep_id, configs, train_fn, parent_pid, threads, events) -> None:
    """Entry point of a spawned worker process; `events` is the write end of its own pipe."""
    import torch

    def send(ev: Event) -> None:
        with contextlib.suppress(BrokenPipeError):  # the command is gone: the store has the results
            events.send(ev)

    torch.set_num_threads(threads)
    with contextlib.suppress(KeyboardInterrupt):
        work(out_dir, sweep_id, configs, train_fn, send, parent_pid)


class WorkerProcesses:
    """Spawned processes that report events, each through its own pipe. A process killed mid-message
    (kill -9) can only garble its own pipe: a shared `multiprocessing.Queue` would keep the dead one's
    lock taken, and every other worker would hang on its next event."""

    def __init__(self, target: Callable[..., None], args: tuple) -> None:
        import multiprocessing as mp

        self._ctx = mp.get_context("spawn")
        self._target, self._args = target, args
        self._pipes: list[Any] = []

    def spawn(self, name: str) -> Any:
        """Start `target(*args, write_end)` in a new process."""
        reader, writer = self._ctx.Pipe(duplex=False)
        proc = self._ctx.Process(target=self._target, args=(*self._args, writer), name=name)
        proc.start()
        writer.close()  # the child holds its own copy: this pipe reads EOF once the child is gone
        self._pipes.append(reader)
        return proc

    def events(self, timeout: float, limit: int = 1000) -> Iterable[Event]:
        """The events that arrive within `timeout` seconds, then those already waiting, up to `limit`
        (so that a chatty worker cannot keep the caller from its other duties)."""
        from multiprocessing.connection import wait

        while self._pipes and limit > 0 and (ready := wait(self._pipes, timeout)):
            for pipe in ready:
                try:
                    yield pipe.recv()
                except (EOFError, OSError, pickle.UnpicklingError):  # ended, or killed mid-message
                    self._pipes.remove(pipe)
                    pipe.close()
                limit -= 1
            timeout = 0

    def close(self) -> None:
        """Close the read ends that are still open."""
        for pipe in self._pipes:
            pipe.close()
        self._pipes.clear()


# ----------------------------------------------------------------------------------------------------------
# the sweep


@dataclass
class SweepResult:
    """What `run_sweep` did: run counts per status of the spec's trials after it (a trial that an earlier
    sweep in the same folder registered first stays that sweep's: only its workers claim it), how many
    trials were closed before, and how many it closed."""

    sweep_id: str
    out_dir: Path
    counts: dict[str, int]
    skipped: int  # trials already closed before this call
    ran: int  # trials closed by this call
    seconds: float


def preflight(cfgs: Sequence[RunConfig]) -> None:
    """Fail before anything is registered: unknown names, missing CUDA, missing data (downloaded here,
    once, when `download` is set, rather than by several workers at once)."""
    from actlab.data import load_dataset
    from actlab.train.engine import check_names, resolve_device

    seen: set[tuple] = set()
    for cfg in cfgs:
        for key, check in (
            (("names", cfg.act, cfg.model, cfg.dataset), lambda c: check_names(c)),
            (("device", cfg.device), resolve_device),
            (("data", cfg.dataset, cfg.data_dir, cfg.download, cfg.image_size),
             lambda c: load_dataset(c.dataset, c.data_dir, download=c.download, image_size=c.image_size)),
        ):  # fmt: skip
            if key not in seen:
                seen.add(key)
                check(cfg)


def cpu_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def run_sweep(
    spec: SweepSpec,
    out_dir: str | os.PathLike,
    *,
    workers: int = 1,
    train_fn: Callable[..., Any] = train,
    progress: bool = True,
    check: bool = True,
) -> SweepResult:
    """Register the sweep's trials in `out_dir/actlab.db` (existing ones are kept) and run what is left.

    Args:
        spec: the grid.
        out_dir: results folder; trials train in `out_dir/runs/<run_id>/`.
        workers: 1 = in this process; N > 1 = N spawned processes with `cores // N` torch threads each.
        train_fn: `train(cfg, out_dir, *, resume, on_epoch, progress)` returning a result with `status`,
            `epochs` and `summary()` (the trainer's `RunResult`); a module-level function when workers > 1.
        progress: report on stderr.
        check: run `preflight` first (names, device, data).

    A trial that diverges or raises is recorded (status diverged / failed) and the sweep goes on; the next
    call retries failed trials (from their last checkpoint) but not diverged ones, which are results.
    Ctrl-C raises KeyboardInterrupt after the workers stopped; the interrupted trial stays `running`
    with its checkpoint and the next call on the same folder resumes it.
    """
    if workers < 1:
        raise ValueError(f"workers={workers}: must be >= 1")
    start = time.perf_counter()
    cfgs = expand(spec)
    if check:
        preflight(cfgs)
    configs = {c.run_id(): c.to_dict() for c in cfgs}
    sweep_id = spec.sweep_id()
    with ResultsStore(out_dir) as st:
        st.add_sweep(sweep_id, spec.to_dict())
        rows = [{"run_id": rid, "config": d} for rid, d in configs.items()]
        st.add_runs(sweep_id, rows)
        retried = st.retry_failed(configs)  # a trial that raised gets another go; diverged ones stay
        runs = [r for r in st.runs() if r["run_id"] in configs]  # some may belong to an earlier sweep
    closed = {r["run_id"] for r in runs if r["status"] in FINAL_STATUSES}
    epochs_left = sum(d["epochs"] for rid, d in configs.items() if rid not in closed)
    prog = SweepProgress(len(runs), len(closed), epochs_left, enabled=progress)
    again = f", {retried} failed before and retried" if retried else ""
    prog.line(f"sweep {sweep_id}: {len(runs)} trials, {len(closed)} already closed{again} → {out_dir}")
    try:
        if workers == 1:
            ran = work(out_dir, sweep_id, configs, train_fn, prog.handle)
        else:
            ran = _run_pool(out_dir, sweep_id, configs, train_fn, prog, workers)
    finally:
        prog.close()
    with ResultsStore(out_dir) as st:
        counts = _counts(r["status"] for r in st.runs() if r["run_id"] in configs)
    return SweepResult(sweep_id, Path(out_dir), counts, len(closed), ran, time.perf_counter() - start)


def _counts(statuses: Iterable[str]) -> dict[str, int]:
    out = dict.fromkeys(STATUSES, 0)
    for s in statuses:
        out[s] += 1
    out["total"] = sum(out.values())
    return out


def _run_pool(out_dir, sweep_id, configs, train_fn, prog: SweepProgress, workers: int) -> int:
    """N spawned workers claiming from the store; their events feed `prog`. A worker that dies (kill -9,
    crash) is replaced, and its replacement resumes the orphaned trial. Ctrl-C stops them all."""
    import signal

    threads = max(1, cpu_cores() // workers)
    args = (str(out_dir), sweep_id, dict(configs), train_fn, os.getpid(), threads)
    pool = WorkerProcesses(_worker_main, args)
    procs = [pool.spawn(f"actlab-worker-{i}") for i in range(workers)]
    ran, restarts = 0, 0

    def drain(timeout: float) -> int:
        nonlocal ran
        seen = 0
        for ev in pool.events(timeout):
            prog.handle(ev)
            ran += ev["kind"] == "end" and ev["status"] != "lost"
            seen += 1
        return seen

    try:
        while True:
            drain(0.5)
            for i, p in enumerate(procs):  # is_alive() also reaps, so a dead worker's pid reads as dead
                if not p.is_alive() and p.exitcode != 0 and restarts < 2 * workers:
                    prog.line(f"worker {p.pid} ended with exit code {p.exitcode}; starting another")
                    restarts += 1
                    procs[i] = pool.spawn(f"actlab-worker-{workers + restarts}")
            if not any(p.is_alive() for p in procs):
                break
        while drain(0.5):  # what the last ones sent before they ended
            pass
    except KeyboardInterrupt:
        for p in procs:  # they may not have seen the Ctrl-C (e.g. `kill -INT` of this process alone)
            if p.is_alive() and p.pid is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(p.pid, signal.SIGINT)
        for p in procs:
            p.join(timeout=30)
            if p.is_alive():
                p.terminate()
        raise
    finally:
        for p in procs:
            p.join(timeout=5)
        pool.close()
    return ran
