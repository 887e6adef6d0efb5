"""The module's own tables in Synapse's database, and their migrations.

Each feature area (roster, lessons, broadcasts, documents, …) keeps its own numbered,
described steps in its package's ``schema.py`` as ``STEPS``, all listed in order in
``migrations.py`` (the one registry); the version of each area is kept in
``parta_schema``, so areas evolve independently. Steps run in order, each in its own
transaction, on the main process only; workers wait until the schema is there. A
database whose area is newer than the code is refused, never "repaired".

SQL is written once for both SQLite and PostgreSQL: ``?`` placeholders (Synapse rewrites
them), TEXT / BIGINT / BOOLEAN columns, JSON as TEXT, ``INSERT … ON CONFLICT``.
"""

import logging
import sqlite3
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Concatenate, Generic, ParamSpec, TypeVar

import attrs
from synapse.module_api import LoggingTransaction, ModuleApi

logger = logging.getLogger(__name__)

P = ParamSpec("P")
# synapse.storage.engines.IsolationLevel.READ_COMMITTED (not in the module API's exports).
_READ_COMMITTED = 1
R = TypeVar("R")


@attrs.frozen
class Step:
    """One migration step: its number, what it does, and the statements."""

    version: int
    description: str
    statements: Sequence[str]


class SchemaTooNew(Exception):
    pass


def _check_steps(area: str, steps: Sequence[Step]) -> None:
    for expected, step in enumerate(steps, start=1):
        if step.version != expected:
            raise ValueError(f"schema area {area}: step {step.version} should be {expected}")


def _migrate_txn(txn: LoggingTransaction, areas: dict[str, Sequence[Step]]) -> list[str]:
    txn.execute(
        "CREATE TABLE IF NOT EXISTS parta_schema ( area TEXT PRIMARY KEY, version INTEGER NOT NULL)"
    )
    done = []
    for area, steps in areas.items():
        txn.execute("SELECT version FROM parta_schema WHERE area = ?", (area,))
        row = txn.fetchone()
        current = int(row[0]) if row else 0
        if current > len(steps):
            raise SchemaTooNew(
                f"Parta schema area {area!r} is at version {current}, newer than this "
                f"code knows ({len(steps)}); run the newer Parta or restore a backup"
            )
        for step in steps[current:]:
            for statement in step.statements:
                txn.execute(statement)
            done.append(f"{area} {step.version}: {step.description}")
        if len(steps) > current:
            txn.execute(
                "INSERT INTO parta_schema (area, version) VALUES (?, ?)"
                " ON CONFLICT (area) DO UPDATE SET version = excluded.version",
                (area, len(steps)),
            )
    return done


def _versions_txn(txn: LoggingTransaction) -> dict[str, int]:
    try:
        txn.execute("SELECT area, version FROM parta_schema")
    except Exception:  # the table does not exist yet on a fresh database
        return {}
    return {str(a): int(v) for a, v in txn.fetchall()}


def _sqlite_synchronous_txn(txn: LoggingTransaction, level: str) -> bool:
    """Set SQLite's ``synchronous`` on Synapse's connection; False on PostgreSQL.

    SQLite refuses the change inside a transaction; Synapse's interaction has not begun
    one before its first statement, and Python's driver begins one only for DML.
    """
    if not isinstance(txn.txn, sqlite3.Cursor):
        return False
    txn.execute(f"PRAGMA synchronous = {'NORMAL' if level == 'normal' else 'FULL'}")
    return True


class Store:
    """Runs the migrations once, then database interactions once the schema is there.

    ``sqlite_synchronous`` ("normal" or "full"): on SQLite (``make run``: one process,
    one connection), how hard each commit waits for the disk. Synapse leaves SQLite at
    FULL: in WAL mode that is an fsync on every commit, and a membership event is a few
    dozen commits, so a school's first morning waited on the disk, not the CPU. NORMAL
    in WAL mode keeps the database consistent after a crash and loses at most the last
    commits on a power cut (not on a crash of Synapse); PostgreSQL is untouched.
    """

    def __init__(
        self,
        api: ModuleApi,
        areas: dict[str, Sequence[Step]],
        sqlite_synchronous: str = "full",
    ):
        for area, steps in areas.items():
            _check_steps(area, steps)
        self._api = api
        self._areas = dict(areas)
        self._sqlite_synchronous = sqlite_synchronous
        self._ready = False
        self._failure: Exception | None = None
        if api.worker_name is None:
            api.delayed_background_call(0, self._migrate, desc="parta_migrate")

    async def _migrate(self) -> None:
        try:
            if await self._api.run_db_interaction(
                "parta_sqlite_synchronous", _sqlite_synchronous_txn, self._sqlite_synchronous
            ):
                logger.info("SQLite: synchronous = %s", self._sqlite_synchronous)
            done = await self._api.run_db_interaction("parta_migrate", _migrate_txn, self._areas)
        except Exception as e:
            logger.critical("Parta could not migrate its tables: %s", e)
            self._failure = e
            return
        for line in done:
            logger.info("Parta schema: applied %s", line)
        self._ready = True

    async def ready(self) -> None:
        """Wait until the tables are there (at most five minutes after start-up)."""
        for _ in range(6000):
            if self._ready:
                return
            if self._failure is not None:
                raise RuntimeError("Parta's tables are not usable") from self._failure
            if self._api.worker_name is not None:
                versions = await self._api.run_db_interaction("parta_versions", _versions_txn)
                if all(versions.get(a, 0) >= len(s) for a, s in self._areas.items()):
                    self._ready = True
                    return
            await self._api.sleep(0.05)
        raise RuntimeError("Parta's tables did not become ready")

    async def run(
        self,
        desc: str,
        func: Callable[Concatenate[LoggingTransaction, P], R],
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> R:
        await self.ready()
        result: R = await self._api.run_db_interaction(desc, func, *args, **kwargs)
        return result

    async def run_read_committed(
        self,
        desc: str,
        func: Callable[Concatenate[LoggingTransaction, P], R],
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> R:
        """:meth:`run` at READ COMMITTED (PostgreSQL; SQLite has one writer anyway): for a
        transaction that first locks a row and must then see what the one holding it
        before committed (the audit chain's head), instead of failing to serialize."""
        await self.ready()
        # Synapse's runInteraction takes isolation_level; the module API passes it on.
        run: Any = self._api.run_db_interaction
        result: R = await run(desc, func, *args, isolation_level=_READ_COMMITTED, **kwargs)
        return result


def rows_as_dicts(txn: LoggingTransaction) -> list[dict[str, Any]]:
    names = [d[0] for d in txn.description or ()]
    return [dict(zip(names, row, strict=True)) for row in txn.fetchall()]


K = TypeVar("K")
V = TypeVar("V")


class InvalidatedCache(Generic[K, V]):
    """A bounded memo of an async lookup, invalidated on every Synapse worker.

    Registered with ``ModuleApi.register_cached_function`` (it has the ``invalidate``,
    ``invalidate_all``, ``__name__`` and ``__module__`` that Synapse's replication of
    cache invalidations uses) and invalidated through ``ModuleApi.invalidate_cache``.
    A load that races an invalidation does not store its (possibly stale) result.
    """

    def __init__(self, name: str, load: Callable[[K], Awaitable[V]], max_entries: int = 10000):
        self.__name__ = name
        self.__module__ = __name__
        self._load = load
        self._max = max_entries
        self._entries: OrderedDict[K, V] = OrderedDict()
        self._generation = 0

    async def get(self, key: K) -> V:
        if key in self._entries:
            self._entries.move_to_end(key)
            return self._entries[key]
        generation = self._generation
        value = await self._load(key)
        if generation == self._generation:
            self._entries[key] = value
            while len(self._entries) > self._max:
                self._entries.popitem(last=False)
        return value

    def invalidate(self, keys: tuple[K, ...]) -> None:
        self._generation += 1
        self._entries.pop(keys[0], None)

    def invalidate_all(self) -> None:
        self._generation += 1
        self._entries.clear()
