"""Requests to erase, through the bot (docs/privacy.md, "A person asks to be erased").

«удалить мои данные» / «удалить данные Маша» asks first; «да» files the request through
the module as the person (``POST /schools/{id}/erasure_requests``, the «да» is the
command the module checks), one per school the person (or the child) is in; «мои
запросы» lists the person's requests. The school answers in its console; the bot learns
of the answer the way it learns when a reminder is due — it asks the module on the
scheduler's tick (``GET /internal/erasure_requests/to_tell``) — and tells the requester
in their direct chat with it, then tells the module (``…/told``): the message carries
``org.parta.erasure_request_id`` and goes with a transaction id of its own, so a restart
between sending and ``told`` answers with the same event, not a second message.
"""

import datetime
import hashlib
import json
import logging
import time
from typing import Any, Final

from mautrix.api import Method, Path
from mautrix.appservice import IntentAPI
from mautrix.types import RoomID, UserID
from mautrix.util.async_db import Database

from bridge.api import ApiError, ModuleClient
from bridge.bot import NO_SCHOOL, SchoolBot, refusal
from bridge.commands import MYSELF_WORDS, Command
from bridge.reminders import direct_room
from parta_common import catalogue

logger = logging.getLogger(__name__)

# In the message that tells the answer: which request it is.
REQUEST_FIELD: Final = "org.parta.erasure_request_id"
# A «да» later than this after the question files nothing.
ASK_VALID_MS: Final = 30 * 60 * 1000


def _say(language: str, what: str, **params: object) -> str:
    return catalogue.text(f"bot.erase.{what}", language, **params)


def local_date(iso: str) -> str:
    """``2026-12-21`` as people write it: 21.12.2026."""
    return datetime.date.fromisoformat(iso).strftime("%d.%m.%Y")


def _created(ms: Any) -> str:
    return datetime.datetime.fromtimestamp(int(ms) / 1000, datetime.UTC).strftime("%d.%m.%Y")


def news_content(request: dict[str, Any]) -> dict[str, Any]:
    """What the requester reads when the school has answered."""
    language = str(request.get("language") or "ru")
    language = language if language in catalogue.LANGUAGES else "ru"
    params = {
        "school": request.get("school_name", ""),
        "request_id": request["request_id"],
        "date": _created(request["created_ts"]),
    }
    if request["status"] == "declined":
        body = _say(language, "told_declined", reason=request.get("reason") or "", **params)
    else:
        body = _say(language, "told_done", **params)
    return {"msgtype": "m.text", "body": body, REQUEST_FIELD: request["request_id"]}


class ErasureConversation:
    def __init__(self, db: Database, module: ModuleClient, bot: SchoolBot):
        self.db = db
        self.module = module
        self.bot = bot
        bot.erasure = self

    async def ask(self, command: Command, room_id: RoomID, sender: UserID) -> str:
        """«удалить мои данные» / «удалить данные <имя>»: who and where, then «да»?"""
        lang = command.language
        if not await self.bot._is_direct(room_id):
            return _say(lang, "direct_only")
        me = await self.module.me(sender)
        schools: list[dict[str, Any]] = me.get("schools") or []
        wanted = command.text.strip()
        if command.args == ("self",) or wanted.lower() in MYSELF_WORDS:
            subject, who = str(sender), ""
            chosen = schools
        else:
            children = {
                child: await self.bot._display_name(child)
                for school in schools
                for child in school.get("children", [])
            }
            subject, who = self.bot._pick_child(children, wanted)
            chosen = [s for s in schools if subject in s.get("children", [])]
        if not chosen:
            raise ApiError.of(403, "M_FORBIDDEN", NO_SCHOOL)
        await self.db.execute(
            "INSERT INTO erasure_ask (room_id, user_id, subject, schools, asked_at)"
            " VALUES ($1, $2, $3, $4, $5) ON CONFLICT (room_id, user_id) DO UPDATE SET"
            " subject=excluded.subject, schools=excluded.schools, asked_at=excluded.asked_at",
            room_id,
            sender,
            subject,
            json.dumps([[s["school_id"], s.get("name", "")] for s in chosen]),
            int(time.time() * 1000),
        )
        names = ", ".join(f"«{s.get('name', '')}»" for s in chosen)
        if subject == sender:
            return _say(lang, "confirm_self", schools=names)
        return _say(lang, "confirm_child", who=who, schools=names)

    async def on_confirm(
        self, room_id: RoomID, sender: UserID, yes: bool, language: str
    ) -> str | None:
        """«да» files the request waiting in this chat (``None``: none waits)."""
        row = await self.db.fetchrow(
            "SELECT subject, schools, asked_at FROM erasure_ask WHERE room_id=$1 AND user_id=$2",
            room_id,
            sender,
        )
        if row is None or int(row["asked_at"]) < int(time.time() * 1000) - ASK_VALID_MS:
            return None
        await self.db.execute(
            "DELETE FROM erasure_ask WHERE room_id=$1 AND user_id=$2", room_id, sender
        )
        if not yes:
            return _say(language, "cancelled")
        # The answer (when the school answers) comes to this chat.
        await self.db.execute(
            "INSERT INTO direct_room (user_id, room_id) VALUES ($1, $2) ON CONFLICT DO NOTHING",
            sender,
            room_id,
        )
        lines = []
        filed_any = False
        for school_id, name in json.loads(row["schools"]):
            try:
                filed = await self.module.request_erasure(
                    sender, school_id, row["subject"], language
                )
            except ApiError as e:
                lines.append(f"«{name}»: {refusal(e, language)}")
                continue
            params = {
                "school": name,
                "request_id": filed["request_id"],
                "due": local_date(filed["due_date"]),
                "date": _created(filed["created_ts"]),
                "status": _say(
                    language,
                    f"status.{filed['status']}",
                    due=local_date(filed["due_date"]),
                    reason=filed.get("reason") or "",
                ),
            }
            lines.append(_say(language, "filed" if filed.get("new") else "waiting", **params))
            filed_any = True
        if filed_any:
            lines.append(_say(language, "next"))
        return "\n".join(lines)

    async def list_requests(self, command: Command, room_id: RoomID, sender: UserID) -> str:
        """«мои запросы»: the person's requests to erase, with their state."""
        lang = command.language
        me = await self.module.me(sender)
        lines: list[str] = []
        for school in me.get("schools") or []:
            for request in await self.module.erasure_requests(sender, school["school_id"]):
                if request.get("requested_by") != sender:
                    continue  # an administrator sees the school's; these are theirs
                subject = request.get("user_id")
                if subject == sender:
                    who = _say(lang, "yours")
                elif subject:
                    who = await self.bot._display_name(subject)
                else:
                    who = _say(lang, "erased")
                status = request["status"]
                state = _say(
                    lang,
                    f"status.{status}",
                    due=local_date(request["due_date"]),
                    reason=request.get("reason") or "",
                )
                lines.append(
                    _say(
                        lang,
                        "line",
                        request_id=request["request_id"],
                        date=_created(request["created_ts"]),
                        school=school.get("name", ""),
                        who=who,
                        state=state,
                    )
                )
        return "\n".join(lines) if lines else _say(lang, "none")


class ErasureNews:
    """Tells each requester, once, that the school carried out or declined their
    request (the scheduler's tick, as reminders)."""

    def __init__(self, db: Database, module: ModuleClient, intent: IntentAPI):
        self._db = db
        self._module = module
        self._intent = intent

    async def run_due(self) -> int:
        told = 0
        for request in await self._module.erasure_requests_to_tell():
            try:
                room_id = await direct_room(self._db, self._intent, UserID(request["requested_by"]))
                txn_id = (
                    "parta-erasure-"
                    + hashlib.sha256(request["request_id"].encode()).hexdigest()[:32]
                )
                await self._intent.api.request(
                    Method.PUT,
                    Path.v3.rooms[room_id].send["m.room.message"][txn_id],
                    news_content(request),
                )
                await self._module.erasure_request_told(request["request_id"])
            except Exception as e:  # the next tick tries again (the same transaction id)
                logger.warning("erasure request %s not told: %s", request["request_id"], e)
                continue
            told += 1
        return told
