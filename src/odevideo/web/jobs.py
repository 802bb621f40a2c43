"""The page's job queue: a bounded number of workers and a bounded queue, jobs that time out, results that
expire.

    submit(work) --queue full?--> Busy (503, with a message)
                 --else--> a job, queued -> running -> done | failed
    get(id) --> the job as the page polls it; results older than ``keep_s`` (or beyond the last ``max_kept``)
                are deleted with their files

A job that has waited or run longer than ``timeout_s`` is answered as failed ("timed out"); if its work is
still running, it finishes in its worker and its result is thrown away. Nothing is ever silently lost: every
job ends done, failed (with a message) or expired (a result that was kept ``keep_s`` and then deleted), and
``get`` says which.
"""

from __future__ import annotations

import shutil
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from odevideo.errors import OdevideoError


class Busy(OdevideoError):
    """The queue is full: answered 503 with a message."""

    status = 503


class Gone(OdevideoError):
    """No such job, or its result was deleted."""

    status = 404


@dataclass(frozen=True)
class QueueLimits:
    """How much work the server takes on at once.

    Attributes:
        workers: jobs that run at the same time (each uses every core torch is given).
        queue: jobs that may wait for a worker; one more is refused with 503.
        timeout_s: a job not finished this long after it was submitted fails ("timed out").
        keep_s: a finished job's result (its files) is deleted this long after it finished.
        max_kept: at most this many finished results are kept; the oldest go first.
    """

    workers: int = 1
    queue: int = 8
    timeout_s: float = 60.0
    keep_s: float = 600.0
    max_kept: int = 32

    def __post_init__(self) -> None:
        for name in ("workers", "max_kept"):
            if getattr(self, name) < 1:
                raise OdevideoError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.queue < 0:
            raise OdevideoError(f"queue must be >= 0, got {self.queue}")
        for name in ("timeout_s", "keep_s"):
            if not getattr(self, name) > 0:
                raise OdevideoError(f"{name} must be > 0, got {getattr(self, name)}")


@dataclass
class Job:
    """One request's work and what became of it. ``result`` is what ``work`` returned; ``error`` and
    ``error_status`` say why it failed."""

    id: str
    folder: Path | None  # the job's files, deleted with it
    submitted: float
    status: str = "queued"  # queued | running | done | failed
    finished: float | None = None
    result: Any = None
    error: str | None = None
    error_status: int = 400

    @property
    def over(self) -> bool:
        return self.status in ("done", "failed")


class JobQueue:
    """Run jobs on ``limits.workers`` threads with at most ``limits.queue`` waiting (see the module docstring).

    ``work(job)`` runs in a worker and returns the job's result; an :class:`OdevideoError` it raises fails the
    job with its message (and its ``status``), anything else with a short message, logged by ``on_error``.
    """

    def __init__(self, limits: QueueLimits, on_error: Callable[[BaseException], None]) -> None:
        self.limits, self.on_error = limits, on_error
        self.pool = ThreadPoolExecutor(limits.workers, thread_name_prefix="odevideo-job")
        self.lock = threading.Lock()
        self.jobs: OrderedDict[str, Job] = OrderedDict()
        self.pending = 0  # queued or running
        self.small_work = threading.BoundedSemaphore(limits.workers)
        self.counts = {"submitted": 0, "refused": 0, "done": 0, "failed": 0, "timed_out": 0, "expired": 0}

    # ---------------------------------------------------------------- submit
    def submit(self, work: Callable[[Job], Any], folder: Path | None = None) -> Job:
        """Queue ``work``; ``Busy`` when ``workers + queue`` jobs are already queued or running."""
        capacity = self.limits.workers + self.limits.queue
        with self.lock:
            self._sweep()
            if self.pending >= capacity:
                self.counts["refused"] += 1
                raise Busy(f"the server is busy: {self.pending} jobs are running or waiting, the most it takes; "
                           "try again in a few seconds")
            job = Job(id=uuid.uuid4().hex, folder=folder, submitted=time.monotonic())
            self.jobs[job.id] = job
            self.pending += 1
            self.counts["submitted"] += 1
        try:
            self.pool.submit(self._run, job, work)
        except RuntimeError:  # the pool is shut down: the server is stopping
            with self.lock:
                self.pending -= 1
                del self.jobs[job.id]
            raise Busy("the server is stopping; try again when it is back") from None
        return replace(job)

    def run_now(self, work: Callable[[], Any]) -> Any:
        """Run small work the page waits on (one frame) in the caller's thread, at most ``workers`` at once
        beside the jobs; ``Busy`` if no slot frees within a second. It is not a job: it keeps no result."""
        if not self.small_work.acquire(timeout=1.0):
            raise Busy("the server is busy drawing other frames; try again in a moment")
        try:
            return work()
        finally:
            self.small_work.release()

    def _run(self, job: Job, work: Callable[[Job], Any]) -> None:
        try:
            with self.lock:
                if self._timed_out(job):
                    return
                job.status = "running"
            try:
                result = work(job)
            except OdevideoError as exc:
                self._finish(job, error=str(exc), status=getattr(exc, "status", 400))
            except BaseException as exc:  # noqa: BLE001 (any failure ends the job with a message)
                self.on_error(exc)
                self._finish(job, error=f"the server could not do that ({type(exc).__name__}); see its log",
                             status=500)
            else:
                self._finish(job, result=result)
        finally:
            with self.lock:
                self.pending -= 1

    def _finish(self, job: Job, *, result: Any = None, error: str | None = None, status: int = 400) -> None:
        with self.lock:
            if job.over:  # timed out while it ran: its result is thrown away
                _remove(job.folder)
                return
            job.finished = time.monotonic()
            if error is None:
                job.result, job.status = result, "done"
                self.counts["done"] += 1
            else:
                job.status, job.error, job.error_status = "failed", error, status
                self.counts["failed"] += 1
                _remove(job.folder)

    # ---------------------------------------------------------------- poll
    def get(self, key: str) -> Job:
        """A copy of the job ``key`` as it stands (timed out if it is past its time), taken under the lock, so
        that its status and result agree; ``Gone`` if there is none."""
        with self.lock:
            self._sweep()
            job = self.jobs.get(key)
            if job is None:
                raise Gone("that result is gone (the server keeps results for a while, and the last few); "
                           "generate again")
            self._timed_out(job)
            return replace(job)

    def position(self, job: Job) -> int:
        """Jobs queued before ``job`` (0: it runs next, or runs)."""
        with self.lock:
            return sum(1 for j in self.jobs.values() if j.status == "queued" and j.submitted < job.submitted)

    def _timed_out(self, job: Job) -> bool:
        """Fail ``job`` if it is past its time (the lock held); -> whether it is over."""
        if not job.over and time.monotonic() - job.submitted > self.limits.timeout_s:
            job.status, job.finished = "failed", time.monotonic()
            job.error, job.error_status = (f"the job timed out: it was not done {self.limits.timeout_s:g} s after "
                                           "it was sent (the server is busy); try again", 504)
            self.counts["timed_out"] += 1
        return job.over

    def _sweep(self) -> None:
        """Delete results past ``keep_s`` and beyond the newest ``max_kept`` (the lock held)."""
        now = time.monotonic()
        finished = [j for j in self.jobs.values() if j.over]
        extra = len(finished) - self.limits.max_kept
        for i, job in enumerate(finished):
            if i < extra or now - (job.finished or now) > self.limits.keep_s:
                del self.jobs[job.id]
                _remove(job.folder)
                self.counts["expired"] += 1

    def close(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)


def _remove(folder: Path | None) -> None:
    if folder is not None:
        shutil.rmtree(folder, ignore_errors=True)
