"""In-process executor: N worker threads claiming jobs from the store (the embedded default)."""

from __future__ import annotations

import logging
import os
import secrets
import socket
import threading

from sqlalchemy import select

from vidmill.core.states import ACTIVE_JOB
from vidmill.pipeline import JobContext, run_job
from vidmill.store.models import Job

log = logging.getLogger("vidmill.executor")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class LocalExecutor:
    def __init__(self, ctx: JobContext, workers: int = 1):
        self.ctx = ctx
        self.workers = workers
        self.host = socket.gethostname()
        self.instance = f"{self.host}:{os.getpid()}:{secrets.token_hex(4)}"
        self.wake = threading.Condition()
        self._pending_wake = False
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._running: dict[int, tuple[str, threading.Event]] = {}
        self._lock = threading.Lock()
        self._dead: set[str] = set()

    def start(self) -> None:
        self._dead = self._dead_owners()
        if self._dead:
            log.info("recovering jobs of %d stopped worker(s)", len(self._dead))
        for i in range(self.workers):
            t = threading.Thread(target=self._loop, args=(i,), name=f"vidmill-worker-{i}", daemon=True)
            t.start()
            self._threads.append(t)

    def alive(self) -> bool:
        """True while every worker thread runs (what /healthz reports as the engine being usable)."""
        return bool(self._threads) and all(t.is_alive() for t in self._threads)

    def submit(self) -> None:
        with self.wake:
            self._pending_wake = True
            self.wake.notify_all()

    def stop(self) -> None:
        with self._lock:
            self._stop.set()
            running = list(self._running.items())
        for _job_id, (_owner, cancel) in running:
            cancel.set()
        self.submit()
        for t in self._threads:
            t.join(timeout=20)
        for job_id, (owner, _cancel) in running:
            self.ctx.jobs.release(job_id, owner)

    # -- internals ------------------------------------------------------------------------
    def _dead_owners(self) -> set[str]:
        """Owners on this host whose process is gone (a killed server): their jobs need no lease wait."""
        with self.ctx.jobs.db.tx() as s:
            owners = s.scalars(
                select(Job.lease_owner).where(Job.status.in_([a.value for a in ACTIVE_JOB])).distinct()
            ).all()
        dead = set()
        for owner in owners:
            parts = (owner or "").split(":")
            if len(parts) >= 3 and parts[0] == self.host and parts[1].isdigit():
                pid = int(parts[1])
                if not _pid_alive(pid) or pid == os.getpid():
                    dead.add(owner)
        return dead

    def _loop(self, n: int) -> None:
        owner = f"{self.instance}:w{n}"
        while not self._stop.is_set():
            try:
                claimed = self.ctx.jobs.claim(owner, dead_owners=self._dead)
            except Exception:
                log.exception("claim failed")
                claimed = None
            if claimed is None:
                with self.wake:
                    if not self._pending_wake:
                        self.wake.wait(timeout=self.ctx.settings.poll_interval)
                    self._pending_wake = False
                continue
            cancel = threading.Event()
            with self._lock:
                stopping = self._stop.is_set()  # stop() began while we were claiming: hand it back
                if not stopping:
                    self._running[claimed.job_id] = (owner, cancel)
            if stopping:
                self.ctx.jobs.release(claimed.job_id, owner)
                break
            try:
                run_job(self.ctx, claimed, cancel)
            except Exception:  # run_job never raises on purpose; a worker thread must survive regardless
                log.exception("job %s escaped its own error handling", claimed.job_id)
                self._stop.wait(1.0)
            finally:
                with self._lock:
                    self._running.pop(claimed.job_id, None)
