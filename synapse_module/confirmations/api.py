"""Read confirmations: who has and who has not confirmed a message, per class, as JSON
or CSV. Requests and confirmations are Matrix events (``callbacks.py``).

The school bot reminds, once, those who have not confirmed: it asks which requests are
due (``GET /internal/confirmations/due``: the school's ``confirmation_reminder_hours``
after the request, by the module's clock) and records whom it reminds before it writes
to them (``POST /internal/confirmations/reminded``); a request's round is then done, and
a person recorded is never reminded of it again, across restarts of either side."""

import io
import time
from typing import TYPE_CHECKING, Any, Final

from synapse.module_api import SynapseRequest

from ..clock import Clock, clock_from_environment
from ..content.sanitize import SafeCsvWriter
from ..errors import forbidden, not_found
from ..http import json_body, requester_id, send_file
from ..media_tokens.rules import room_id_from_path
from ..query import query_choice
from ..requests import request_schemas
from . import rules, texts
from .callbacks import ConfirmationCallbacks
from .store import (
    confirmed_txn,
    mark_reminders_done_txn,
    record_reminders_txn,
    reminded_txn,
    unreminded_requests_txn,
)

if TYPE_CHECKING:
    from .. import PartaModule

# The request schemas, in requests.json beside this module.
REQUEST_SCHEMAS: Final = request_schemas(__package__)


CONFIRM_SCHEMA: Final = REQUEST_SCHEMAS["Confirm"]
REMINDED_SCHEMA: Final = REQUEST_SCHEMAS["ConfirmationsReminded"]
# Requests looked at per call of the due route (the oldest first).
DUE_BATCH: Final = 50


class Confirmations(ConfirmationCallbacks):
    ROUTES: Final = (
        ("GET", r"/rooms/([^/]+)/confirmations/([^/]+)", "get_confirmations"),
        ("POST", r"/rooms/([^/]+)/confirmations/([^/]+)", "post_confirmation"),
        ("GET", r"/internal/confirmations/due", "get_due"),
        ("POST", r"/internal/confirmations/reminded", "post_reminded"),
    )

    def __init__(self, module: "PartaModule", clock: Clock | None = None):
        super().__init__(module)
        self.clock: Clock = clock or clock_from_environment()

    async def _bot(self, request: SynapseRequest) -> str:
        """The school bot, calling as itself: only it sends reminders."""
        caller = await requester_id(self._module.api, request)
        if not self._module.delegation.is_trusted_bot(caller):
            raise forbidden(texts.ONLY_THE_BOT)
        return caller

    async def get_due(self, request: SynapseRequest) -> tuple[int, dict[str, Any]]:
        """Requests whose reminder is due, each with whom to remind: expected, not
        confirmed, not reminded. A request of a school that sets no reminder is done."""
        bot = await self._bot(request)
        now = self.clock.now_ms()
        store = self._module.store
        asked_before = now - rules.MS_PER_HOUR  # the shortest delay a school may set
        due: list[dict[str, Any]] = []
        for asked in await store.run(
            "parta_confirm_unreminded", unreminded_requests_txn, asked_before, DUE_BATCH
        ):
            policy = await self._module.roster.get_policy(asked["school_id"])
            state = rules.reminder_state(asked["ts"], policy.confirmation_reminder_hours, now)
            if state == "never":
                await store.run(
                    "parta_confirm_reminders_done", mark_reminders_done_txn, asked["event_id"]
                )
            if state != "due":
                continue
            expected = await self._expected(asked)
            expected.pop(bot, None)
            confirmed = await store.run("parta_confirmed", confirmed_txn, asked["event_id"])
            reminded = await store.run("parta_confirm_reminded", reminded_txn, asked["event_id"])
            people = rules.to_remind(expected, confirmed, reminded)
            due.append(
                {
                    "event_id": asked["event_id"],
                    "room_id": asked["room_id"],
                    "school_id": asked["school_id"],
                    "language": asked["language"],
                    "people": [{"user_id": u, "child_id": c} for u, c in people],
                }
            )
        return 200, {"due": due}

    async def post_reminded(self, request: SynapseRequest) -> tuple[int, dict[str, Any]]:
        """The bot is about to remind ``people`` of a request: recorded once; the answer
        lists those recorded now, the only ones the bot writes to."""
        await self._bot(request)
        body = json_body(request, REMINDED_SCHEMA)
        event_id = body["event_id"]
        store = self._module.store
        if await self.request(event_id) is None:
            raise not_found(texts.NOT_FOUND, event_id=event_id[:80])
        people = [(p["user_id"], p.get("child_id", "")) for p in body["people"]]
        new = await store.run_read_committed(
            "parta_confirm_remind",
            record_reminders_txn,
            event_id,
            people,
            int(time.time() * 1000),
        )
        return 200, {
            "event_id": event_id,
            "reminded": [{"user_id": u, "child_id": c} for u, c in new],
        }

    async def get_confirmations(
        self, request: SynapseRequest, raw_room_id: str, event_id: str
    ) -> tuple[int, dict[str, Any]] | None:
        user_id = await requester_id(self._module.api, request)
        room_id = room_id_from_path(raw_room_id)
        fmt = query_choice(request, "format", ("json", "csv"), "json")
        english = query_choice(request, "lang", ("ru", "en"), "ru") == "en"
        store = self._module.store
        asked = await self.request(event_id)
        if asked is None or asked["room_id"] != room_id:
            raise not_found(texts.NOT_FOUND, event_id=event_id[:80])
        roster = self._module.roster
        school_id = asked["school_id"]
        me = await roster.get_person(user_id)
        refusal = rules.who_sees_refusal(me.standing(school_id), user_id, asked["sender"])
        if refusal is not None:
            raise forbidden(refusal)
        expected = await self._expected(asked)
        confirmed = await store.run("parta_confirmed", confirmed_txn, event_id)
        result = {"event_id": event_id, **rules.status(expected, confirmed)}
        if fmt == "json":
            return 200, result
        language = "en" if english else "ru"
        out = io.StringIO()
        out.write("\ufeff")  # Excel reads UTF-8 with a BOM
        writer = SafeCsvWriter(out, delimiter=";", lineterminator="\r\n")
        writer.writerow(texts.CSV_HEADER.text(language).split(";"))
        yes, no = texts.YES.text(language), texts.NO.text(language)
        for group in result["classes"]:
            for who in group["confirmed"]:
                writer.writerow([group["class_id"], who, yes])
            for who in group["not_confirmed"]:
                writer.writerow([group["class_id"], who, no])
        send_file(
            request, out.getvalue().encode("utf-8"), "text/csv; charset=utf-8", "confirmations.csv"
        )
        return None

    async def post_confirmation(
        self, request: SynapseRequest, raw_room_id: str, event_id: str
    ) -> tuple[int, dict[str, Any]]:
        """Confirm without a reaction or reply (the bot's command, the console, a client
        that cannot react); for a request per child, ``children`` picks whom for."""
        user_id = await requester_id(self._module.api, request)
        room_id = room_id_from_path(raw_room_id)
        body = json_body(request, CONFIRM_SCHEMA)
        asked = await self.request(event_id)
        if asked is None or asked["room_id"] != room_id:
            raise not_found(texts.NOT_FOUND, event_id=event_id[:80])
        if user_id == asked["sender"]:
            raise forbidden(texts.OWN_REQUEST)
        state = await self._module.api.get_room_state(room_id, [("m.room.member", user_id)])
        member = state.get(("m.room.member", user_id))
        if member is None or member.content.get("membership") != "join":
            raise forbidden(texts.NOT_A_MEMBER)
        children = await self.confirms_for(asked, user_id)
        wanted = body.get("children")
        if wanted is not None and children != [""]:
            for child_id in wanted:
                if child_id not in children:
                    raise forbidden(texts.NOT_YOUR_CHILD, child_id=child_id[:255])
            children = sorted(set(wanted)) or children
        await self.record(asked, user_id, children, int(time.time() * 1000))
        confirmed = await self._module.store.run("parta_confirmed", confirmed_txn, event_id)
        mine = sorted(w for w in confirmed if w == user_id or w.startswith(f"{user_id}/@"))
        return 200, {"event_id": event_id, "confirmed": mine}

    async def _expected(self, asked: dict[str, Any]) -> dict[str, list[str]]:
        """The room's joined members now (the sender and the service account aside), with
        the classes each counts under; for a request per child, parents once per child."""
        school_id = asked["school_id"]
        state = await self._module.api.get_room_state(asked["room_id"])
        members = [
            key
            for (kind, key), event in state.items()
            if kind == "m.room.member"
            and event.content.get("membership") == "join"
            and key not in (asked["sender"], self._module.service_user_id)
        ]
        room = await self._module.roster.get_room(asked["room_id"])
        room_class = room.class_id if room else None
        expected: dict[str, list[str]] = {}
        for user_id in members:
            standing = (await self._module.roster.get_person(user_id)).standing(school_id)
            children = await self.children_classes(standing) if asked["per_child"] else {}
            expected.update(
                rules.expected_entries(user_id, standing, asked["per_child"], children, room_class)
            )
        return expected
