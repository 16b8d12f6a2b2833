"""Wake-ups for reminder and alert chains: APScheduler 3 with its jobs in the project's database.

The escalations table is the source of truth; a job only says "look at chain N at time T".
With PostgreSQL the jobs are a table of the project's database; with SQLite they live in a file of
their own beside it (:func:`jobs_url`): SQLite lets one transaction write at a time, and the job
store's writes (from its own threads) must neither wait behind the bot's transactions nor hold
them up, or a busy moment would make reminders late.
Jobs have deterministic ids (``escalation-N``), never expire when late
(``misfire_grace_time=None``) and collapse when several runs are overdue (``coalesce``).
A 911 chain's wake-up repeats every reminder period (an interval job): when a reminder sets the
next one on the same beat, the stored job already says so and is not written again. A one-off
wake-up (a date job) is deleted by the scheduler when it fires and would have to be stored anew
at every reminder: three statements more in the scheduler's threads, which share the
interpreter with the event loop answering people.
At start-up :meth:`Wakeups.reconcile` recreates missing jobs, removes obsolete ones, and runs
overdue ones at once. Daily jobs (the retention purge) are registered at each start under a
fixed id with :meth:`Wakeups.every_day`.

APScheduler 3's SQLAlchemy job store is synchronous. It runs in the scheduler's own thread
(a BackgroundScheduler) and our calls into it go through ``asyncio.to_thread``, so the event
loop never waits on the database's write lock (with SQLite, a blocked loop would keep the
transaction holding that lock from ever finishing). Jobs hand their work back to the loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import threading
from collections.abc import Callable, Coroutine, Iterable, Mapping
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy
from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.jobstores.base import JobLookupError
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.base import STATE_RUNNING
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.date import DateTrigger
from apscheduler.triggers.interval import IntervalTrigger

from bot.clock import Clock, SystemClock
from bot.escalation import BusyChains, reconciliation

log = logging.getLogger(__name__)

JOB_PREFIX = "escalation-"
WORKERS = 8  # wake-ups at work at once
# Seconds before the scheduler's thread tries its job store again after an error (APScheduler's
# default is 10): once the database is back, the wake-ups due meanwhile come within this time.
STORE_RETRY = 2.0
Handler = Callable[[int], Coroutine[Any, Any, None]]
Task = Callable[[], Coroutine[Any, Any, None]]

# APScheduler stores a job's function by its import path, so the job function below must be a
# module-level function; it hands the work to the handler the running program registered.
_handlers: dict[str, tuple[asyncio.AbstractEventLoop, Handler]] = {}
# The same for daily jobs, by scheduler key and job id.
_tasks: dict[tuple[str, str], tuple[asyncio.AbstractEventLoop, Task]] = {}


def wake(scheduler_key: str, escalation_id: int) -> None:
    """The stored job (in a scheduler thread): hand the work to the program's event loop.

    It does not wait for the work to finish: a chain's next wake-up, stored while this one is
    still at work, must not find this job "still running" and be skipped (APScheduler drops a
    date job's run when ``max_instances`` is reached). The escalator runs one wake-up per chain
    at a time itself.
    """
    registered = _handlers.get(scheduler_key)
    if registered is None:
        log.error("no handler for %s (escalation %s)", scheduler_key, escalation_id)
        return
    loop, handler = registered
    asyncio.run_coroutine_threadsafe(handler(escalation_id), loop)


class _HandOver(ThreadPoolExecutor):  # type: ignore[misc]
    """The job threads, noting a chain's wake-up at work from the moment its job is handed
    over to them.

    APScheduler hands a due job to its executor and then moves the stored job on (a one-off
    job is deleted, a repeating one comes next at its next beat), while the job's thread may
    not have run yet (a busy moment). A resync looking in between would take the chain for one
    whose wake-up was lost, and store it again.
    """

    def __init__(self, workers: int, at_work: BusyChains) -> None:
        super().__init__(workers)
        self._at_work = at_work

    def _do_submit_job(self, job: Any, run_times: list[datetime]) -> None:
        chain = [int(job.id[len(JOB_PREFIX) :])] if job.id.startswith(JOB_PREFIX) else []
        self._at_work.enter(chain)  # left when the wake-up ends (Wakeups._run)
        try:
            super()._do_submit_job(job, run_times)
        except BaseException:
            self._at_work.leave(chain)
            raise


class _Steady(BackgroundScheduler):  # type: ignore[misc]
    """A BackgroundScheduler whose thread outlives an error of its job store.

    APScheduler 3 catches an error reading the due jobs, but not one in what follows their
    hand-over: moving a repeating job on to its next run, deleting a one-off job, reading the
    next run time. An error there (the database restarting at that moment) ends the
    scheduler's thread, and no wake-up comes again until the program is restarted (reported
    upstream as agronholm/apscheduler#1083, open for APScheduler 3.11). Here that
    pass is given up and tried again after ``jobstore_retry_interval``: the jobs not moved on
    are still due and are handed over again, and a chain woken twice finds itself not due the
    second time (its row in the escalations table decides).
    """

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        # When the thread plans to look at the store next: None while a pass is under way or
        # before the first one, or when it waits for a job to be added (no job stored).
        self._plan = threading.Lock()
        self._planned: datetime | None = None
        self._quiet = threading.local()

    def _process_jobs(self) -> float | None:
        with self._plan:
            self._planned = None
        wait: float | None = None
        try:
            wait = super()._process_jobs()
        except Exception as error:
            log.warning(
                "wake-ups: the job store failed (%s: %s); trying again in %g s",
                type(error).__name__,
                str(error).splitlines()[0] if str(error) else "",
                self.jobstore_retry_interval,
            )
            wait = float(self.jobstore_retry_interval)
        finally:
            with self._plan:
                if wait is not None:
                    self._planned = datetime.now(UTC) + timedelta(seconds=wait)
        return wait

    def wakeup(self) -> None:
        if getattr(self._quiet, "adding", False):
            return  # add_job_at decides
        super().wakeup()

    def add_job_at(self, at: datetime, *args: Any, **kwargs: Any) -> Any:
        """``add_job`` for a job that comes first at ``at``, waking the thread only if it
        planned to look at the store later than that.

        APScheduler wakes its thread at every job added, for a pass over the store (two
        queries, and the due jobs read back) even when the new job comes long after the next
        one already planned: at the opening of many incidents at once, as many passes as
        incidents opened, in a thread sharing the interpreter with the people's replies.
        A pass under way may have read the store before this job was in it: then it is woken.
        """
        self._quiet.adding = True
        try:
            added = self.add_job(*args, **kwargs)
        finally:
            self._quiet.adding = False
        with self._plan:
            needed = self._planned is None or at < self._planned
        if needed and self.state == STATE_RUNNING:
            super().wakeup()
        return added


def run_task(scheduler_key: str, job: str) -> None:
    """A stored daily job (in a scheduler thread): run its task on the program's event loop."""
    registered = _tasks.get((scheduler_key, job))
    if registered is None:
        # Another command sharing the database (the console chat) does not run daily jobs.
        log.info("job %s is not run by this process", job)
        return
    loop, task = registered
    asyncio.run_coroutine_threadsafe(task(), loop).result()


def job_id(escalation_id: int) -> str:
    """The job id of an escalation."""
    return f"{JOB_PREFIX}{escalation_id}"


def sync_url(database_url: str) -> str:
    """The synchronous driver URL for APScheduler's job store."""
    for prefix, replacement in (
        ("sqlite+aiosqlite://", "sqlite://"),
        ("postgresql+asyncpg://", "postgresql+psycopg://"),
    ):
        if database_url.startswith(prefix):
            return replacement + database_url[len(prefix) :]
    return database_url


def jobs_url(database_url: str) -> str:
    """Where the job store keeps its jobs: the database itself, or for a SQLite file, a file
    beside it (``var/sexto.db`` -> ``var/sexto-jobs.db``). Losing that file loses nothing: the
    start-up reconciliation makes the jobs again from the escalations table."""
    url = sync_url(database_url)
    if not url.startswith("sqlite"):
        return url
    prefix, separator, database = url.partition("///")
    if not separator or database in ("", ":memory:") or database.startswith("file:"):
        return url
    path = Path(database)
    jobs = path.with_name(f"{path.stem}-jobs{path.suffix or '.db'}")
    return f"{prefix}///{jobs}"


def _wal(dbapi_connection: Any, _record: Any) -> None:
    """A SQLite jobs file in write-ahead mode: a commit appends to the log instead of
    rewriting a rollback journal (several file syncs) each time a wake-up is stored.

    Commits are not synced to disk one by one (``synchronous=NORMAL``; the log still is at
    each checkpoint, so the file cannot be corrupted): the jobs are a copy of the escalations
    table, and wake-ups a power cut takes back are made again by the start-up reconciliation.
    """
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.close()


def _jobs_engine(url: str) -> sqlalchemy.Engine:
    """The job store's (synchronous) engine; connections to a server are checked before use
    (it may have restarted), a SQLite file's are not (a round trip per job for nothing).

    On a server, each of the job store's statements commits on its own (autocommit): the
    store runs one statement per transaction, so a BEGIN and a COMMIT around it would be two
    round trips more for each job stored, moved on or removed, in threads that share the
    interpreter with the people's replies.
    """
    if url.startswith("sqlite"):
        engine = sqlalchemy.create_engine(url)
        sqlalchemy.event.listen(engine, "connect", _wal)
        return engine
    return sqlalchemy.create_engine(url, pool_pre_ping=True, isolation_level="AUTOCOMMIT")


class Wakeups:
    """Schedules, cancels and reconciles escalation jobs."""

    def __init__(
        self,
        database_url: str,
        handler: Handler,
        key: str = "default",
        clock: Clock | None = None,
    ) -> None:
        self.key = key
        self.clock: Clock = clock or SystemClock()
        self.handler = handler
        self.closing = False
        self.running: set[asyncio.Task[None]] = set()
        self._slots = asyncio.Semaphore(WORKERS)
        # Chains whose wake-up is at work: fired (in a scheduler thread, a one-off job is gone
        # from the store once it fires, a repeating one has moved on) and not finished.
        self._at_work = BusyChains()
        # Chains whose stored job repeats, with its first time and period, as this program
        # stored it; and per chain, the latest write of its job begun (see _begin_write).
        self._lock = threading.Lock()
        self._repeating: dict[int, tuple[datetime, timedelta]] = {}
        self._writes = itertools.count(1)
        self._latest: dict[int, int] = {}
        self.store = SQLAlchemyJobStore(engine=_jobs_engine(jobs_url(database_url)))
        self.scheduler = _Steady(
            jobstores={"default": self.store},
            executors={"default": _HandOver(WORKERS, self._at_work)},
            job_defaults={"misfire_grace_time": None, "coalesce": True, "max_instances": 1},
            jobstore_retry_interval=STORE_RETRY,
            timezone="UTC",
        )

    async def start(self) -> None:
        """Start firing jobs onto the running event loop."""
        self.closing = False
        self._slots = asyncio.Semaphore(WORKERS)
        _handlers[self.key] = (asyncio.get_running_loop(), self._fired)
        await asyncio.to_thread(self.scheduler.start)

    def _fired(self, escalation_id: int) -> Coroutine[Any, Any, None]:
        """A stored job fired (in a scheduler thread): the wake-up to run on the loop (noted at
        work since its job was handed over, see _HandOver)."""
        return self._run(escalation_id)

    def watch(self) -> contextlib.AbstractContextManager[set[int]]:
        """A set of the chains whose wake-up is at work when the block starts or starts within
        it (filled as they start): their stored job may be gone, and their own work stores
        the next one."""
        return self._at_work.watch()

    async def _run_now(self, escalation_id: int) -> None:
        try:
            await self.handler(escalation_id)
        except Exception:
            log.exception("wake-up of chain %s failed", escalation_id)
        finally:
            self._at_work.leave([escalation_id])

    async def _run(self, escalation_id: int) -> None:
        # At most WORKERS wake-ups at work at once, as when each held a job thread: a burst of
        # due chains must not crowd out the people's own messages.
        try:
            async with self._slots:
                await self._tracked(self.handler(escalation_id))
        except Exception:
            log.exception("wake-up of chain %s failed", escalation_id)
        finally:
            self._at_work.leave([escalation_id])

    async def _tracked(self, work: Coroutine[Any, Any, None]) -> None:
        """Run ``work`` as one of the jobs :meth:`shutdown` lets finish."""
        task = asyncio.current_task()
        if task is not None:
            self.running.add(task)
        try:
            await work
        finally:
            if task is not None:
                self.running.discard(task)

    async def every_day(
        self, job: str, at: time, zone: ZoneInfo, task: Task, grace: timedelta
    ) -> datetime:
        """Run ``task`` every day at ``at`` (in ``zone``) under the fixed id ``job``, once started.

        Registering again (at each start) replaces the stored job rather than adding one. Runs
        that are late by less than ``grace`` still happen, several collapse into one
        (``coalesce``); a run missed while the program was down is not made up here, so the
        caller decides at start-up whether one is owed. Returns the next run time.
        """
        _tasks[(self.key, job)] = (asyncio.get_running_loop(), lambda: self._tracked(task()))
        return await asyncio.to_thread(self._every_day, job, at, zone, grace)

    def _every_day(self, job: str, at: time, zone: ZoneInfo, grace: timedelta) -> datetime:
        if not self.scheduler.running:
            raise RuntimeError("start the scheduler before registering a daily job")
        added = self.scheduler.add_job(
            run_task,
            CronTrigger(hour=at.hour, minute=at.minute, timezone=zone),
            args=[self.key, job],
            id=job,
            replace_existing=True,
            coalesce=True,
            misfire_grace_time=max(int(grace.total_seconds()), 1),
            max_instances=1,
        )
        stored = self.scheduler.get_job(added.id)
        return stored.next_run_time  # type: ignore[no-any-return]

    async def shutdown(self) -> None:
        """Let running jobs finish, then stop; stored jobs stay for the next start.

        Wake-ups asked for while closing are not stored: the escalations table still has them,
        and the next start's reconciliation schedules them again.
        """
        self.closing = True
        if self.running:
            await asyncio.wait(list(self.running), timeout=30)
        if self.scheduler.running:
            await asyncio.to_thread(self.scheduler.shutdown, False)
        # The scheduler's thread may have opened a connection while shutting down.
        self.store.engine.dispose()
        _handlers.pop(self.key, None)
        for registered in [k for k in _tasks if k[0] == self.key]:
            _tasks.pop(registered, None)

    async def schedule(
        self, escalation_id: int, at: datetime, every: timedelta | None = None
    ) -> None:
        """Wake escalation ``escalation_id`` at ``at`` (replacing any earlier wake-up), and
        then every ``every`` until it is changed or cancelled, when given.

        A wake-up already due runs at once on the event loop, without a trip through the job
        store: the chain's row is what counts, and a restart runs an overdue chain anyway.
        A repeating wake-up whose stored job already comes at ``at`` is left as it is.
        """
        if at <= self.clock.now() and not self.closing:
            # A stored job left for this chain may still come: the chain finds itself not due.
            self._at_work.enter([escalation_id])
            task = asyncio.create_task(self._run_now(escalation_id))
            self.running.add(task)
            task.add_done_callback(self.running.discard)
            return
        if every is not None and self._repeats_at(escalation_id, at, every):
            return
        write = self._begin_write(escalation_id)
        await asyncio.to_thread(self._schedule, escalation_id, at, every, write)

    async def cancel(self, escalation_id: int) -> None:
        """Forget escalation ``escalation_id``'s wake-up, if any."""
        write = self._begin_write(escalation_id)
        await asyncio.to_thread(self._cancel, escalation_id, write)

    async def scheduled(self) -> dict[int, datetime]:
        """Every stored wake-up: escalation id to run time."""
        return await asyncio.to_thread(self._scheduled)

    async def reconcile(
        self, running: Iterable[tuple[int, datetime]], known: Mapping[int, datetime]
    ) -> tuple[int, int]:
        """Make the jobs match the running escalations, ``known`` being the jobs as read
        before the escalations were (see :func:`bot.escalation.reconciliation`); returns
        (created, removed)."""
        return await asyncio.to_thread(self._reconcile, list(running), known)

    def _begin_write(self, escalation_id: int) -> int:
        """A write of a chain's job begins: what was known of its stored job no longer holds
        (until this write, if it is still the latest, succeeds); returns the write's number."""
        with self._lock:
            self._repeating.pop(escalation_id, None)
            write = self._latest[escalation_id] = next(self._writes)
            return write

    def _end_write(
        self, escalation_id: int, write: int, repeating: tuple[datetime, timedelta] | None
    ) -> None:
        """A write of a chain's job succeeded: note what the stored job now does, unless a
        later write of the same chain has begun meanwhile."""
        with self._lock:
            if self._latest.get(escalation_id) != write:
                return
            del self._latest[escalation_id]
            if repeating is not None:
                self._repeating[escalation_id] = repeating

    def _repeats_at(self, escalation_id: int, at: datetime, every: timedelta) -> bool:
        """Whether the chain's stored job repeats every ``every`` and comes at ``at``."""
        with self._lock:
            start, period = self._repeating.get(escalation_id, (at, timedelta(0)))
        return period == every and at >= start and (at - start) % every == timedelta(0)

    def _schedule(
        self,
        escalation_id: int,
        at: datetime,
        every: timedelta | None = None,
        write: int | None = None,
    ) -> None:
        if self.closing:
            return
        if write is None:
            write = self._begin_write(escalation_id)
        trigger: BaseTrigger = (
            DateTrigger(run_date=at, timezone="UTC")
            if every is None
            else IntervalTrigger(seconds=every.total_seconds(), start_date=at, timezone="UTC")
        )
        # First at ``at`` even if that has passed by now (an interval trigger alone would wait
        # for its next beat).
        self.scheduler.add_job_at(
            at,
            wake,
            trigger,
            args=[self.key, escalation_id],
            id=job_id(escalation_id),
            replace_existing=True,
            next_run_time=at,
        )
        self._end_write(escalation_id, write, None if every is None else (at, every))

    def _cancel(self, escalation_id: int, write: int | None = None) -> None:
        if self.closing:
            return
        if write is None:
            write = self._begin_write(escalation_id)
        with contextlib.suppress(JobLookupError):
            self.scheduler.remove_job(job_id(escalation_id))
        self._end_write(escalation_id, write, None)

    def _scheduled(self) -> dict[int, datetime]:
        jobs = {}
        for job in self.scheduler.get_jobs():
            if job.id.startswith(JOB_PREFIX) and job.next_run_time is not None:
                jobs[int(job.id[len(JOB_PREFIX) :])] = job.next_run_time
        return jobs

    def _reconcile(
        self, running: list[tuple[int, datetime]], known: Mapping[int, datetime]
    ) -> tuple[int, int]:
        cancel, store = reconciliation(known, running)
        for escalation_id in cancel:
            self._cancel(escalation_id)
        for escalation_id, at in store.items():
            self._schedule(escalation_id, at)
        return len(store.keys() - known.keys()), len(cancel)
