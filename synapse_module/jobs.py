"""Background jobs the module runs itself (no bot involved), on one process only.

When Synapse runs as a main process plus workers, every process loads the module; a
clean-up loop started by each would run once per process. The config names the one
process that runs them (``background_worker``: ``main`` or a worker's ``worker_name``);
:func:`runs_background_jobs` is that decision, and every job is registered through
:class:`BackgroundJobs`, which starts nothing on any other process. Each run is a row in
``parta_job_runs`` (job, process, start, end, result), so an operator sees where and
when they ran.

Each feature hands its jobs in (a name and a coroutine function returning a one-line
result); the job's SQL stays in that feature's store. Jobs today: ``expired_invites``
(roster: invitation codes that expired, or were revoked and made, more than 30 days ago
are deleted — a code names the school and, for a parent's code, the child), ``audit_seal``
(privacy: chains audit entries not chained yet), ``statistics`` (the daily rows per
school, docs/statistics.md), ``erasures`` (privacy: erasures a crash cut short carry on
from their journal), ``recordings_backfill`` (broadcasts: recordings posted before they
were tracked, found once in Synapse's events), ``retention`` (privacy: schools' retention
rules, then the audit log's front).
"""

import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Final

from synapse.module_api import LoggingTransaction, ModuleApi

from .store import Step, Store

logger = logging.getLogger(__name__)

# The schema area ``jobs`` (synapse_module/migrations.py): one row per run.
STEPS = [
    Step(
        1,
        "background job runs",
        [
            """
            CREATE TABLE IF NOT EXISTS parta_job_runs (
                job TEXT NOT NULL,
                instance TEXT NOT NULL,
                started_ts BIGINT NOT NULL,
                finished_ts BIGINT,
                result TEXT
            )
            """,
            "CREATE INDEX IF NOT EXISTS parta_job_runs_job ON parta_job_runs (job, started_ts)",
        ],
    ),
]

MAIN: Final = "main"
# How often the jobs run (the first run is at start-up).
INTERVAL_SECONDS: Final = 3600


def runs_background_jobs(worker_name: str | None, background_worker: str) -> bool:
    """Whether the process called ``worker_name`` (None: the main process) runs the
    module's background jobs, when the config names ``background_worker``."""
    return (worker_name if worker_name is not None else MAIN) == background_worker


def instance_name(worker_name: str | None) -> str:
    return worker_name if worker_name is not None else MAIN


def _start_run_txn(txn: LoggingTransaction, job: str, instance: str, now: int) -> None:
    txn.execute(
        "INSERT INTO parta_job_runs (job, instance, started_ts) VALUES (?, ?, ?)",
        (job, instance, now),
    )


def _finish_run_txn(
    txn: LoggingTransaction, job: str, instance: str, started: int, now: int, result: str
) -> None:
    txn.execute(
        "UPDATE parta_job_runs SET finished_ts = ?, result = ?"
        " WHERE job = ? AND instance = ? AND started_ts = ?",
        (now, result, job, instance, started),
    )


class BackgroundJobs:
    """Runs the module's jobs every :data:`INTERVAL_SECONDS` on the named process only."""

    def __init__(
        self,
        api: ModuleApi,
        store: Store,
        background_worker: str,
        jobs: Sequence[tuple[str, Callable[[], Awaitable[str]]]],
    ):
        self.api = api
        self.store = store
        self.instance = instance_name(api.worker_name)
        self.active = runs_background_jobs(api.worker_name, background_worker)
        self._jobs = list(jobs)
        if self.active:
            self.api.delayed_background_call(0, self.run_all, desc="parta_jobs_first")
            self.api.looping_background_call(
                self.run_all, INTERVAL_SECONDS * 1000, desc="parta_jobs"
            )
            logger.info("Parta's background jobs run on this process (%s)", self.instance)

    async def run_all(self) -> None:
        for name, job in self._jobs:
            started = int(time.time() * 1000)
            await self.store.run("parta_job_start", _start_run_txn, name, self.instance, started)
            try:
                result = await job()
            except Exception as e:  # one failing job must not stop the others
                logger.exception("Parta job %s failed", name)
                result = f"failed: {type(e).__name__}"
            await self.store.run(
                "parta_job_finish",
                _finish_run_txn,
                name,
                self.instance,
                started,
                int(time.time() * 1000),
                result,
            )
