"""The running bot: the application service, its database, the scheduler, /health."""

import asyncio
import json
import logging

import aiohttp
from aiohttp import web
from mautrix.api import Method, Path
from mautrix.appservice import AppService, AppServiceAPI
from mautrix.appservice.state_store import ASStateStore
from mautrix.client import ClientAPI
from mautrix.client.state_store import MemoryStateStore
from mautrix.errors import MForbidden
from mautrix.types import EventType, MessageType, RoomID, TextMessageEventContent, UserID
from mautrix.util.async_db import Database

from bridge.answered import AnsweredEvents
from bridge.api import ModuleClient
from bridge.bot import SchoolBot
from bridge.config import BridgeConfig
from bridge.db import create_database
from bridge.registration import APPSERVICE_ID, Registration
from bridge.roster_bot import RosterConversation
from bridge.schedule import Scheduler
from parta_common import events

logger = logging.getLogger(__name__)


class MemoryASStateStore(ASStateStore, MemoryStateStore):
    """Room state the bot needs lives in Synapse; a process-local cache is enough."""

    def __init__(self) -> None:
        ASStateStore.__init__(self)
        MemoryStateStore.__init__(self)


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
        self.appservice.app.router.add_get("/health", self._health)
        self.scheduler = Scheduler(self.db, config, self.send_as, self.find_sent)
        self._session: aiohttp.ClientSession | None = None
        self.module: ModuleClient | None = None
        self.bot: SchoolBot | None = None
        self.roster: RosterConversation | None = None
        self._catch_up: asyncio.Task[None] | None = None

    async def _health(self, _: web.Request) -> web.Response:
        ok = self.appservice.ready
        return web.json_response({"ok": ok}, status=200 if ok else 503)

    async def send_as(self, room_id: str, user_id: str, body: str, txn_id: str) -> str:
        return await send_as(self.appservice.intent.api, room_id, user_id, body, txn_id)

    async def find_sent(self, room_id: str, user_id: str, txn_id: str) -> str | None:
        return await find_sent(self.appservice.intent.api, room_id, user_id, txn_id)

    async def start(self) -> None:
        await self.db.start()
        await self.appservice.start(self.config.appservice.host, self.config.appservice.port)
        self._session = aiohttp.ClientSession()
        self.module = ModuleClient(
            self._session, self.config.homeserver.url, self.registration.as_token
        )
        intent = self.appservice.intent
        answered = AnsweredEvents(self.db)
        await answered.prune()
        self.bot = SchoolBot(
            intent, self.module, self.scheduler, self.config.quiet_hours.timezone, answered
        )
        self.roster = RosterConversation(self.db, self.module, self.bot)
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
        await self.scheduler.stop()
        if self.roster:
            await self.roster.stop()
        await self.appservice.stop()
        if self._session:
            await self._session.close()
        await self.db.stop()


async def send_as(api: AppServiceAPI, room_id: str, user_id: str, body: str, txn_id: str) -> str:
    """Send a text message as ``user_id`` (the AS assertion) with a fixed txn id.

    The homeserver remembers an application service's transaction ids (per request
    path) for a while, but only in memory: after a restart of the homeserver it sends
    again. So the content also carries the txn id (``org.parta.schedule_id``), and the
    scheduler looks for it in the room (:func:`find_sent`) before every send.
    """
    client = ClientAPI(UserID(user_id), api=api.user(UserID(user_id)))
    content = TextMessageEventContent(msgtype=MessageType.TEXT, body=body)
    content[events.SCHEDULE_ID] = txn_id
    try:
        event_id = await client.send_message_event(
            RoomID(room_id), EventType.ROOM_MESSAGE, content, txn_id=txn_id
        )
    except MForbidden as e:
        if "not in room" not in str(e.message):
            raise
        # A school room the person belongs to but never opened: join as them
        # (the homeserver and the module decide whether they may), then post.
        await client.join_room(RoomID(room_id), max_retries=0)
        event_id = await client.send_message_event(
            RoomID(room_id), EventType.ROOM_MESSAGE, content, txn_id=txn_id
        )
    return str(event_id)


# How far back a retry looks for its own message (the sender's messages only).
FIND_SENT_LIMIT = 100


async def find_sent(api: AppServiceAPI, room_id: str, user_id: str, txn_id: str) -> str | None:
    """The event id of ``user_id``'s message carrying ``txn_id`` among their latest
    messages in the room, or ``None`` (also when they cannot read the room)."""
    client = ClientAPI(UserID(user_id), api=api.user(UserID(user_id)))
    only_theirs = {"senders": [user_id], "types": [str(EventType.ROOM_MESSAGE)]}
    try:
        page = await client.api.request(
            Method.GET,
            Path.v3.rooms[room_id].messages,
            query_params={
                "dir": "b",
                "limit": str(FIND_SENT_LIMIT),
                "filter": json.dumps(only_theirs),
            },
        )
    except MForbidden:
        return None
    for event in page.get("chunk", []):
        content = event.get("content")
        if isinstance(content, dict) and content.get(events.SCHEDULE_ID) == txn_id:
            return str(event["event_id"])
    return None
