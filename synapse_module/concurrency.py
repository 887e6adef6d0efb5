"""A few coroutines at a time inside Synapse (Twisted, with its log-context rules), and
one at a time per key."""

import contextlib
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Hashable, Iterable, Sequence
from typing import TypeVar, cast

from synapse.logging.context import PreserveLoggingContext
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


class KeyedLock:
    """One holder per key at a time in this process; the others wait their turn, in
    the order they came (Synapse's ``Linearizer`` pattern, without its clock): for a
    read-then-write of one thing that two requests may do at the same moment."""

    def __init__(self) -> None:
        self._queues: dict[Hashable, deque[defer.Deferred[None]]] = {}

    @contextlib.asynccontextmanager
    async def hold(self, key: Hashable) -> AsyncIterator[None]:
        queue = self._queues.get(key)
        if queue is None:
            self._queues[key] = deque()
        else:
            turn: defer.Deferred[None] = defer.Deferred()
            queue.append(turn)
            await make_deferred_yieldable(turn)
        try:
            yield
        finally:
            queue = self._queues[key]
            while queue and queue[0].called:
                queue.popleft()  # a waiter cancelled meanwhile
            if queue:
                # The next holder runs in its own log context from here.
                with PreserveLoggingContext():
                    queue.popleft().callback(None)
            else:
                del self._queues[key]

    @contextlib.asynccontextmanager
    async def hold_all(self, keys: Iterable[Hashable]) -> AsyncIterator[None]:
        """:meth:`hold` of every key, taken in one order (two holders of overlapping
        keys never wait for each other)."""
        async with contextlib.AsyncExitStack() as stack:
            for key in sorted(set(keys), key=repr):
                await stack.enter_async_context(self.hold(key))
            yield

    def __contains__(self, key: Hashable) -> bool:
        return key in self._queues
