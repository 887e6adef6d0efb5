"""A few coroutines at a time inside Synapse (Twisted, with its log-context rules)."""

from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar, cast

from synapse.module_api import make_deferred_yieldable, run_in_background
from twisted.internet import defer

T = TypeVar("T")


async def gather_limited(jobs: Sequence[Callable[[], Awaitable[T]]], limit: int) -> list[T]:
    """Run ``jobs`` with at most ``limit`` in flight; results in order; the first
    failure is raised once all have stopped."""
    results: list[T | None] = [None] * len(jobs)
    queue = iter(enumerate(jobs))

    async def worker() -> None:
        for index, job in queue:
            results[index] = await job()

    workers = [run_in_background(worker) for _ in range(min(limit, len(jobs)))]
    try:
        await make_deferred_yieldable(defer.gatherResults(workers, consumeErrors=True))
    except defer.FirstError as e:
        e.subFailure.raiseException()
    return cast(list[T], results)
