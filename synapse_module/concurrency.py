"""A few coroutines at a time inside Synapse (Twisted, with its log-context rules)."""

from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar, cast

from synapse.module_api import make_deferred_yieldable, run_in_background
from twisted.internet import defer
from twisted.python.failure import Failure

T = TypeVar("T")


async def gather_limited(jobs: Sequence[Callable[[], Awaitable[T]]], limit: int) -> list[T]:
    """Run ``jobs`` with at most ``limit`` in flight; results in order; the first
    failure is raised once every worker has stopped (a worker stops at its first
    failure, the others finish the queue), so nothing is still running behind a raise."""
    results: list[T | None] = [None] * len(jobs)
    queue = iter(enumerate(jobs))

    async def worker() -> None:
        for index, job in queue:
            results[index] = await job()

    workers = [run_in_background(worker) for _ in range(min(limit, len(jobs)))]
    everyone = defer.DeferredList(cast(list[defer.Deferred[object]], workers), consumeErrors=True)
    outcomes = await make_deferred_yieldable(everyone)
    for ok, outcome in outcomes:
        if not ok:
            assert isinstance(outcome, Failure)
            outcome.raiseException()
    return cast(list[T], results)
