"""The job worker: in-process inside ``serve`` or as separate ``zanloop worker`` processes."""

from __future__ import annotations

import os
import socket
import threading
import traceback
from datetime import timedelta

import httpx2 as httpx
import structlog

from zanloop.config import Settings
from zanloop.db import Database
from zanloop.jobs import domain, repository, service
from zanloop.jobs.service import JobContext
from zanloop.kit.clock import utcnow
from zanloop.kit.ids import new_token
from zanloop.ops import metrics

log = structlog.get_logger(__name__)


class Worker:
    def __init__(self, db: Database, settings: Settings, http: httpx.Client | None = None) -> None:
        self.db = db
        self.settings = settings
        self.http = http or httpx.Client(timeout=settings.webhook_timeout_seconds)
        # Unique per instance: leases tell workers apart by this id, and several workers may
        # be built in one thread (or one thread's ident reused after it ends).
        self.worker_id = f"{socket.gethostname()}:{os.getpid()}:{new_token(6)}"
        service.load_handlers()

    def schedule_periodic(self) -> None:
        now = utcnow()
        with self.db.session() as session:
            for periodic in service.periodic_jobs():
                slot = domain.periodic_slot(now, periodic.every_seconds)
                service.enqueue(
                    session, periodic.kind, {}, unique_key=f"periodic:{periodic.kind}:{slot}"
                )

    def run_once(self) -> int:
        """Claim one batch of due jobs and run them; returns how many ran."""
        with self.db.session() as session:
            jobs = repository.claim(
                session,
                self.worker_id,
                utcnow(),
                self.settings.job_lease_seconds,
                self.settings.worker_batch_size,
            )
            claimed = [(j.id, j.kind, dict(j.payload), j.attempts, j.max_attempts) for j in jobs]
        for job_id, kind, payload, attempt, max_attempts in claimed:
            # The batch shares one lease; renew it per job so a slow job early in the batch
            # does not let another worker take (and run) the later ones while we also do.
            if self._renew(job_id):
                self._run(job_id, kind, payload, attempt, max_attempts)
        return len(claimed)

    def _renew(self, job_id: int) -> bool:
        until = utcnow() + timedelta(seconds=self.settings.job_lease_seconds)
        with self.db.session() as session:
            return repository.renew(session, job_id, self.worker_id, until)

    def _run(
        self, job_id: int, kind: str, payload: dict[str, object], attempt: int, max_attempts: int
    ) -> None:
        handler = service.get_handler(kind)
        context = JobContext(settings=self.settings, http=self.http, db=self.db, attempt=attempt)
        try:
            if handler is None:
                raise LookupError(f"no handler for job kind {kind!r}")
            with self.db.session() as session:
                handler(context, session, payload)
                if not repository.finish(session, job_id, self.worker_id, utcnow()):
                    raise RuntimeError("lease lost; another worker owns this job now")
            metrics.JOBS.labels(kind=kind, outcome="done").inc()
        except Exception as exc:  # a failed job is retried, never allowed to stop the worker
            now = utcnow()
            retry_at = None if attempt >= max_attempts else domain.next_run(now, attempt)
            error = "".join(traceback.format_exception_only(exc)).strip()
            log.warning("job failed", job_id=job_id, kind=kind, attempt=attempt, error=error)
            with self.db.session() as session:
                repository.fail(session, job_id, self.worker_id, error, retry_at, now)
            metrics.JOBS.labels(kind=kind, outcome="retry" if retry_at else "dead").inc()

    def drain(self, max_rounds: int = 1000) -> int:
        """Run until nothing is due (tests and the demo use this)."""
        total = 0
        for _ in range(max_rounds):
            ran = self.run_once()
            total += ran
            if not ran:
                break
        return total

    def run_forever(self, stop: threading.Event) -> None:
        wake = service.wake_event()
        last_schedule = utcnow() - timedelta(days=1)
        log.info("worker started", worker_id=self.worker_id)
        while not stop.is_set():
            try:
                if utcnow() - last_schedule > timedelta(seconds=1):
                    self.schedule_periodic()
                    last_schedule = utcnow()
                if self.run_once():
                    continue
            except Exception:  # the database may be briefly unavailable; keep polling
                log.exception("worker loop error")
            wake.wait(self.settings.worker_poll_seconds)
            wake.clear()
        log.info("worker stopped", worker_id=self.worker_id)


def start_in_thread(db: Database, settings: Settings) -> tuple[threading.Thread, threading.Event]:
    stop = threading.Event()
    worker = Worker(db, settings)
    thread = threading.Thread(
        target=worker.run_forever, args=(stop,), name="zanloop-worker", daemon=True
    )
    thread.start()
    return thread, stop
