"""The running bot: the application service, its database, the scheduler, /health."""

import asyncio
import logging

import aiohttp
from aiohttp import web
from mautrix.appservice import AppService
from mautrix.appservice.state_store import ASStateStore
from mautrix.client.state_store import MemoryStateStore
from mautrix.util.async_db import Database

from bridge.answered import AnsweredEvents
from bridge.api import ModuleClient
from bridge.bot import SchoolBot
from bridge.config import BridgeConfig
from bridge.db import create_database
from bridge.erasure_requests import ErasureConversation, ErasureNews
from bridge.registration import APPSERVICE_ID, Registration
from bridge.reminders import ConfirmationReminders
from bridge.roster_bot import RosterConversation
from bridge.schedule import Scheduler

logger = logging.getLogger(__name__)


class MemoryASStateStore(ASStateStore, MemoryStateStore):
    """Room state the bot needs lives in Synapse; a process-local cache is enough."""

    def __init__(self) -> None:
        ASStateStore.__init__(self)
        MemoryStateStore.__init__(self)


class EveryTransaction(set[str]):
    """What mautrix keeps as "transactions already handled": here, none.

    mautrix skips a transaction whose ID it has seen. Synapse on SQLite numbers its
    application-service transactions from 1 again after every restart (its counter is
    the highest ID still in its table, and handled ones are deleted), so the bot, still
    running, took the new transactions for old ones and dropped them: after a homeserver
    restart it did not join new direct chats or hear commands until it was restarted too.
    Every transaction is handled instead; what arrives twice does no harm, because every
    command is taken up once (``answered.py``) and joining a room again changes nothing.
    """

    def __contains__(self, item: object) -> bool:
        return False

    def add(self, element: str) -> None:
        pass


class BridgeApp:
    def __init__(self, config: BridgeConfig, registration: Registration):
        self.config = config
        self.registration = registration
        self.db: Database = create_database(config.database)
        self.appservice = AppService(
            server=config.homeserver.url,
            domain=config.homeserver.domain,
            as_token=registration.as_token,
            hs_token=registration.hs_token,
            bot_localpart=config.appservice.bot_localpart,
            id=APPSERVICE_ID,
            log=logging.getLogger("bridge.appservice"),
            state_store=MemoryASStateStore(),
        )
        self.appservice.transactions = EveryTransaction()
        self.appservice.app.router.add_get("/health", self._health)
        # The module client needs the HTTP session, made in start().
        self._session: aiohttp.ClientSession | None = None
        self.module: ModuleClient | None = None
        self.scheduler: Scheduler | None = None
        self.bot: SchoolBot | None = None
        self.roster: RosterConversation | None = None
        self._catch_up: asyncio.Task[None] | None = None

    async def _health(self, _: web.Request) -> web.Response:
        ok = self.appservice.ready
        return web.json_response({"ok": ok}, status=200 if ok else 503)

    async def start(self) -> None:
        await self.db.start()
        await self.appservice.start(self.config.appservice.host, self.config.appservice.port)
        self._session = aiohttp.ClientSession()
        self.module = ModuleClient(
            self._session, self.config.homeserver.url, self.registration.as_token
        )
        self.scheduler = Scheduler(self.db, self.config, self.module)
        intent = self.appservice.intent
        answered = AnsweredEvents(self.db)
        await answered.prune()
        self.bot = SchoolBot(
            intent, self.module, self.scheduler, self.config.quiet_hours.timezone, answered
        )
        self.roster = RosterConversation(self.db, self.module, self.bot)
        reminders = ConfirmationReminders(self.db, self.module, intent)
        self.scheduler.also.append(reminders.run_due)
        # Requests to erase: «удалить …» and «да»; the school's answer told on the tick.
        ErasureConversation(self.db, self.module, self.bot)
        self.scheduler.also.append(ErasureNews(self.db, self.module, intent).run_due)
        self.appservice.matrix_event_handler(self.bot.handle_event)
        await self._ensure_profile()
        await self.bot.load_joined_rooms()
        await self.roster.resume()
        self.scheduler.start()
        self.appservice.ready = True
        logger.info("bot %s ready on port %d", intent.mxid, self.config.appservice.port)
        # What arrived while the bot was down (Synapse's own redelivery may be minutes away).
        self._catch_up = asyncio.create_task(self.bot.catch_up_all())

    async def _ensure_profile(self) -> None:
        intent = self.appservice.intent
        for attempt in range(30):
            try:
                await intent.ensure_registered()
                await intent.set_displayname(self.config.appservice.bot_displayname)
                return
            except aiohttp.ClientConnectionError:
                # Synapse not up yet: make run starts it first, but be patient.
                await asyncio.sleep(min(1 + attempt, 5))
        raise RuntimeError(f"homeserver at {self.config.homeserver.url} does not answer")

    async def stop(self) -> None:
        self.appservice.ready = False
        if self._catch_up is not None:
            self._catch_up.cancel()
        if self.scheduler:
            await self.scheduler.stop()
        if self.roster:
            await self.roster.stop()
        await self.appservice.stop()
        if self._session:
            await self._session.close()
        await self.db.stop()
