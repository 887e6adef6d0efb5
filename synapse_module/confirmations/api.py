"""Read confirmations: who has and who has not confirmed a message, per class, as JSON
or CSV. Requests and confirmations are Matrix events (``callbacks.py``)."""

import io
import time
from typing import TYPE_CHECKING, Any, Final

from synapse.module_api import SynapseRequest

from ..content.sanitize import SafeCsvWriter
from ..errors import forbidden, not_found
from ..http import json_body, requester_id, send_file
from ..media_tokens.rules import room_id_from_path
from ..query import query_choice
from ..requests import request_schemas
from . import rules, texts
from .callbacks import ConfirmationCallbacks
from .store import confirmed_txn, get_request_txn

if TYPE_CHECKING:
    from .. import PartaModule

# The request schemas, in requests.json beside this module.
REQUEST_SCHEMAS: Final = request_schemas(__package__)


CONFIRM_SCHEMA: Final = REQUEST_SCHEMAS["Confirm"]


class Confirmations(ConfirmationCallbacks):
    ROUTES: Final = (
        ("GET", r"/rooms/([^/]+)/confirmations/([^/]+)", "get_confirmations"),
        ("POST", r"/rooms/([^/]+)/confirmations/([^/]+)", "post_confirmation"),
    )

    def __init__(self, module: "PartaModule"):
        super().__init__(module)

    async def get_confirmations(
        self, request: SynapseRequest, raw_room_id: str, event_id: str
    ) -> tuple[int, dict[str, Any]] | None:
        user_id = await requester_id(self._module.api, request)
        room_id = room_id_from_path(raw_room_id)
        fmt = query_choice(request, "format", ("json", "csv"), "json")
        english = query_choice(request, "lang", ("ru", "en"), "ru") == "en"
        store = self._module.store
        asked = await store.run("parta_confirm_get", get_request_txn, event_id)
        if asked is None or asked["room_id"] != room_id:
            raise not_found(texts.NOT_FOUND, event_id=event_id[:80])
        roster = self._module.roster
        school_id = asked["school_id"]
        me = await roster.get_person(user_id)
        if not rules.may_see(me.standing(school_id), user_id, asked["sender"]):
            raise forbidden(texts.WHO_SEES)
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
        asked = await self._module.store.run("parta_confirm_get", get_request_txn, event_id)
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
