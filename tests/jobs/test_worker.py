"""The durable jobs table and its worker, against the real database."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest

from tests.conftest import is_postgres
from tests.jobs.conftest import (
    FLAKY,
    FOLLOW_UP,
    PERIODIC_EVERY,
    RECORD,
    enqueue,
    expire_lease,
    hooks,
    job,
    jobs_of,
    make_due,
    ran,
)
from zanloop.config import Settings
from zanloop.db import Database
from zanloop.jobs import domain, repository, service
from zanloop.jobs.worker import Worker
from zanloop.kit.clock import utcnow


def _enqueue_then_fail(db: Database) -> None:
    with db.session() as session:
        service.enqueue(session, RECORD, {"n": 1})
        raise RuntimeError("the change failed")


def test_job_enqueued_in_a_rolled_back_transaction_never_exists(
    db: Database, worker: Worker
) -> None:
    service.wake_event().clear()

    with pytest.raises(RuntimeError, match="the change failed"):
        _enqueue_then_fail(db)

    assert jobs_of(db) == []
    assert worker.drain() == 0
    assert ran.items == []
    assert not service.wake_event().is_set()


def test_committed_job_runs_once_and_wakes_the_worker(db: Database, worker: Worker) -> None:
    service.wake_event().clear()

    job_id = enqueue(db, RECORD, {"n": 1})

    assert service.wake_event().is_set()
    assert worker.drain() == 1
    assert worker.drain() == 0
    assert ran.items == [1]
    done = job(db, job_id)
    assert done.status == domain.JobStatus.DONE
    assert done.attempts == 1
    assert done.finished_at is not None
    assert done.locked_until is None


def test_job_scheduled_for_later_waits(db: Database, worker: Worker) -> None:
    job_id = enqueue(db, RECORD, {"n": 1}, run_at=utcnow() + timedelta(hours=1))

    assert worker.drain() == 0
    make_due(db, job_id)
    assert worker.drain() == 1
    assert ran.items == [1]


def test_unique_key_enqueues_once(db: Database, worker: Worker) -> None:
    for n in range(3):
        with db.session() as session:
            service.enqueue(session, RECORD, {"n": n}, unique_key="once")

    worker.drain()

    assert ran.items == [0]


def test_unknown_kind_is_refused_at_enqueue(db: Database) -> None:
    with pytest.raises(KeyError, match=r"tests\.nobody"), db.session() as session:
        service.enqueue(session, "tests.nobody", {})


def test_failing_job_backs_off_then_dies_after_max_attempts(db: Database, worker: Worker) -> None:
    job_id = enqueue(db, FLAKY, {"failures": 99}, max_attempts=3)
    delays = []

    for attempt in (1, 2):
        before = utcnow()
        worker.drain()
        waiting = job(db, job_id)
        assert waiting.status == domain.JobStatus.QUEUED
        assert waiting.attempts == attempt
        assert f"boom on attempt {attempt}" in (waiting.last_error or "")
        assert waiting.locked_by is None
        delays.append((waiting.run_at - before).total_seconds())
        make_due(db, job_id)
    worker.drain()

    dead = job(db, job_id)
    assert dead.status == domain.JobStatus.DEAD
    assert dead.attempts == 3
    assert "boom on attempt 3" in (dead.last_error or "")
    assert dead.finished_at is not None
    assert ran.items == [1, 2, 3]
    assert 1.0 <= delays[0] <= 2.5
    assert 2.0 <= delays[1] <= 4.5
    assert worker.drain() == 0


def test_failing_job_that_recovers_is_done(db: Database, worker: Worker) -> None:
    job_id = enqueue(db, FLAKY, {"failures": 1}, max_attempts=3)

    worker.drain()
    make_due(db, job_id)
    worker.drain()

    assert ran.items == [1, 2]
    assert job(db, job_id).status == domain.JobStatus.DONE


def test_running_job_keeps_its_lease_until_it_expires(db: Database, worker: Worker) -> None:
    job_id = enqueue(db, RECORD, {"n": 7})
    with db.session() as session:
        [claimed] = repository.claim(session, "crashed-worker", utcnow(), 60, 10)
    assert claimed.id == job_id

    assert worker.drain() == 0
    expire_lease(db, job_id)
    assert worker.drain() == 1

    assert ran.items == [7]
    rerun = job(db, job_id)
    assert rerun.status == domain.JobStatus.DONE
    assert rerun.attempts == 2
    assert rerun.locked_by == worker.worker_id


def test_an_abandoned_job_with_no_attempts_left_is_buried_not_rerun(
    db: Database, worker: Worker
) -> None:
    job_id = enqueue(db, RECORD, {"n": 8}, max_attempts=1)
    with db.session() as session:
        repository.claim(session, "crashed-worker", utcnow(), 60, 10)
    expire_lease(db, job_id)

    assert worker.drain() == 0

    assert ran.items == []
    buried = job(db, job_id)
    assert buried.status == domain.JobStatus.DEAD
    assert buried.last_error is not None


def test_a_worker_that_lost_its_lease_cannot_finish(
    db: Database, settings: Settings, worker: Worker
) -> None:
    # Given a worker whose lease ends at once, and another worker that takes the job over
    # while the first is still running it.
    slow = Worker(db, settings.model_copy(update={"job_lease_seconds": 0}), http=worker.http)
    job_id = enqueue(db, FOLLOW_UP, {"n": "job"})
    hooks["during_first_attempt"] = worker.run_once

    slow.run_once()
    worker.drain()

    # The first worker's finish was refused and its writes rolled back; only the new
    # owner's attempt counts.
    assert slow.worker_id != worker.worker_id
    assert ran.items == ["job@attempt2"]
    done = job(db, job_id)
    assert done.status == domain.JobStatus.DONE
    assert done.locked_by == worker.worker_id
    assert done.attempts == 2


def test_finish_without_the_lease_is_refused(db: Database) -> None:
    job_id = enqueue(db, RECORD, {"n": 1})
    with db.session() as session:
        repository.claim(session, "owner", utcnow(), 60, 10)

    with db.session() as session:
        refused = repository.finish(session, job_id, "intruder", utcnow())
    with db.session() as session:
        accepted = repository.finish(session, job_id, "owner", utcnow())

    assert (refused, accepted) == (False, True)
    assert job(db, job_id).status == domain.JobStatus.DONE


def test_a_slow_batch_does_not_run_jobs_another_worker_took(
    db: Database, settings: Settings, worker: Worker
) -> None:
    # Given a worker that claims two jobs with one short lease, and another worker that takes
    # both over while the first job is still running.
    slow = Worker(db, settings.model_copy(update={"job_lease_seconds": 0}), http=worker.http)
    enqueue(db, FOLLOW_UP, {"n": "first"})
    enqueue(db, RECORD, {"n": "second"})
    hooks["during_first_attempt"] = worker.run_once

    slow.run_once()
    worker.drain()

    assert sorted(ran.items, key=str) == ["first@attempt2", "second"]
    assert {j.status for j in jobs_of(db)} == {domain.JobStatus.DONE}


def test_periodic_job_is_enqueued_once_per_slot(
    db: Database, settings: Settings, worker: Worker, periodic_kind: str
) -> None:
    schedulers = [Worker(db, settings, http=worker.http) for _ in range(4)]
    barrier = threading.Barrier(len(schedulers))

    def schedule(scheduler: Worker) -> None:
        barrier.wait()
        scheduler.schedule_periodic()

    with ThreadPoolExecutor(len(schedulers)) as pool:
        list(pool.map(schedule, schedulers))
    worker.drain()
    schedulers[0].schedule_periodic()
    worker.drain()

    [scheduled] = jobs_of(db, periodic_kind)
    slot = domain.periodic_slot(utcnow(), PERIODIC_EVERY)
    assert scheduled.unique_key == f"periodic:{periodic_kind}:{slot}"
    assert scheduled.status == domain.JobStatus.DONE
    assert ran.items == ["periodic"]


@pytest.mark.parametrize(("jobs", "threads"), [pytest.param(200, 4, id="200-jobs-4-workers")])
def test_concurrent_workers_run_each_job_exactly_once(
    db: Database, settings: Settings, worker: Worker, jobs: int, threads: int
) -> None:
    with db.session() as session:
        for n in range(jobs):
            service.enqueue(session, RECORD, {"n": n})
    small_batches = settings.model_copy(update={"worker_batch_size": 3})
    barrier = threading.Barrier(threads)

    def work() -> int:
        own = Worker(db, small_batches, http=worker.http)
        barrier.wait()
        return own.drain()

    with ThreadPoolExecutor(threads) as pool:
        counts = [future.result() for future in [pool.submit(work) for _ in range(threads)]]

    assert sorted(ran.items) == list(range(jobs))
    assert sum(counts) == jobs
    if is_postgres():
        # SQLite serialises writers, so there one worker may legitimately take everything.
        assert sum(1 for count in counts if count) > 1, "the workers did not share the work"
    finished = jobs_of(db, RECORD)
    assert {j.status for j in finished} == {domain.JobStatus.DONE}
    assert {j.attempts for j in finished} == {1}
