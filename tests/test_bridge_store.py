"""The bot's database and the scheduler's delivery rules on a real SQLite database.

Sending is a recording function here (the real sending is tested against Synapse in
``test_bridge_bot.py``); what is tested is which rows go out when, and only once.
"""

import asyncio
import contextlib
import datetime
import os
import secrets
import zoneinfo
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from mautrix.util.async_db import Database
from mautrix.util.async_db.errors import UnsupportedDatabaseVersion

from bridge.config import BridgeConfig, QuietHoursConfig
from bridge.db import create_database
from bridge.schedule import Scheduler, txn_id_for
from tests.harness import create_database as create_pg_database
from tests.harness import drop_database, postgres_answers

MSK = zoneinfo.ZoneInfo("Europe/Moscow")


# The same SQL runs on both; PostgreSQL joins in wherever the harness has one.
BACKENDS = ["sqlite", *(["postgres"] if postgres_answers() else [])]


@contextlib.contextmanager
def database_url(backend: str, tmp_path: Path) -> Iterator[str]:
    if backend == "sqlite":
        yield f"sqlite:{tmp_path / 'bot.db'}"
        return
    name = f"parta_bot_store_{os.getpid()}_{secrets.token_hex(3)}"
    pg = create_pg_database(name)
    auth = pg.user + (f":{pg.password}" if pg.password else "")
    try:
        yield f"postgresql://{auth}@{pg.host}:{pg.port}/{pg.database}"
    finally:
        drop_database(name)


@pytest.fixture(params=BACKENDS)
def url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    with database_url(request.param, tmp_path) as value:
        yield value


@pytest.fixture
async def db(url: str) -> AsyncIterator[Database]:
    database = create_database(url)
    await database.start()
    yield database
    await database.stop()


class Recorder:
    """A typed fake of the module's scheduled posts (bridge.schedule.Posts): these tests
    are about the bot's table; the module's side runs against Synapse in
    tests/test_bridge_bot.py."""

    def __init__(self) -> None:
        self.posts: dict[str, tuple[str, str, str, str]] = {}
        self.sent: list[tuple[str, str, str, str]] = []

    async def create_post(self, as_user: str, room_id: str, body: str, schedule_id: str) -> str:
        post_id = f"post_{len(self.posts)}"
        self.posts[post_id] = (room_id, as_user, body, schedule_id)
        return post_id

    async def send_post(self, post_id: str) -> str:
        await asyncio.sleep(0.01)  # let a competing loop run in between
        self.sent.append(self.posts[post_id])
        return f"$event{len(self.sent)}"


def at(hour: int, minute: int = 0, day: int = 1) -> datetime.datetime:
    return datetime.datetime(2026, 12, day, hour, minute, tzinfo=MSK)


async def test_quiet_hours_hold_messages_until_the_morning(db: Database) -> None:
    config = BridgeConfig(quiet_hours=QuietHoursConfig())  # 21:00–08:00 Moscow
    sent = Recorder()
    scheduler = Scheduler(db, config, sent)
    evening = await scheduler.schedule("!r", "Завтра без формы", at(22), "@a:s")
    assert await scheduler.run_due(at(23)) == 0
    assert await scheduler.run_due(at(7, 59, day=2)) == 0
    assert await scheduler.run_due(at(8, 0, day=2)) == 1
    assert sent.sent == [("!r", "@a:s", "Завтра без формы", txn_id_for(evening.id))]
    # Sent once: later ticks find nothing.
    assert await scheduler.run_due(at(9, 0, day=2)) == 0
    stored = await scheduler.get(evening.id)
    assert stored is not None
    assert stored.state == "sent"
    assert stored.event_id == "$event1"


async def test_per_school_quiet_hours(db: Database) -> None:
    config = BridgeConfig(
        school_quiet_hours={"sch_late": QuietHoursConfig(start="23:00", end="07:00")}
    )
    sent = Recorder()
    scheduler = Scheduler(db, config, sent)
    await scheduler.schedule("!a", "обычная школа", at(21, 30), "@a:s", "sch_default")
    await scheduler.schedule("!b", "поздняя школа", at(21, 30), "@a:s", "sch_late")
    assert await scheduler.run_due(at(21, 45)) == 1
    assert [s[2] for s in sent.sent] == ["поздняя школа"]


async def test_two_loops_never_send_the_same_row(db: Database) -> None:
    sent = Recorder()
    config = BridgeConfig(quiet_hours=QuietHoursConfig(start="00:00", end="00:00"))
    first, second = Scheduler(db, config, sent), Scheduler(db, config, sent)
    for i in range(10):
        await first.schedule("!r", f"сообщение {i}", at(12), "@a:s")
    results = await asyncio.gather(first.run_due(at(12, 1)), second.run_due(at(12, 1)))
    assert sum(results) == 10
    assert sorted(s[2] for s in sent.sent) == sorted(f"сообщение {i}" for i in range(10))


async def test_cancel_only_own_pending(db: Database) -> None:
    scheduler = Scheduler(db, BridgeConfig(), Recorder())
    message = await scheduler.schedule("!r", "x", at(12), "@a:s")
    assert not await scheduler.cancel(message.id, "@someone-else:s")
    assert [m.id for m in await scheduler.pending_for("@a:s")] == [message.id]
    assert await scheduler.cancel(message.id, "@a:s")
    assert await scheduler.pending_for("@a:s") == []


async def test_a_newer_database_is_refused(url: str) -> None:
    database = create_database(url)
    await database.start()
    await database.execute("UPDATE version SET version=99")
    await database.stop()
    again = create_database(url)
    with pytest.raises(UnsupportedDatabaseVersion):
        await again.start()
    await again.stop()
