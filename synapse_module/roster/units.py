"""Regions and municipalities (units) and their coordinators."""

from typing import TYPE_CHECKING, Any

from synapse.module_api import (
    SynapseRequest,
)

from parta_common import events

from ..errors import forbidden, not_found
from ..http import json_body, requester_id
from . import store as db
from . import texts as msg
from .events import (
    room_kind_state,
)
from .rules import RoomKind

if TYPE_CHECKING:
    pass

from .core import RosterCore, now_ms
from .requests import UNIT_SCHEMA


class UnitsApi(RosterCore):
    # -- units ------------------------------------------------------------------

    async def post_unit(self, request: SynapseRequest) -> tuple[int, dict[str, Any]]:
        user_id = await requester_id(self.api, request)
        body = json_body(request, UNIT_SCHEMA)
        if not await self._is_operator(user_id):
            raise forbidden(msg.NOT_OPERATOR)
        parent_id = body.get("parent_id")
        parent = None
        if parent_id is not None:
            parent = await self.store.run("parta_get_unit", db.get_unit_txn, parent_id)
            if parent is None:
                raise not_found(msg.UNIT_NOT_FOUND, unit_id=parent_id)
        unit_id = db.new_id("unit")
        room_id = await self.structure.create_space(
            RoomKind.UNIT_SPACE,
            body["name"],
            "",
            [
                {
                    "type": events.UNIT,
                    "state_key": "",
                    "content": {"kind": body["kind"], "name": body["name"], "unit_id": unit_id},
                },
                room_kind_state(RoomKind.UNIT_SPACE, None, None),
            ],
            {},
        )
        if parent is not None and parent["space_room_id"]:
            await self.structure.link_child(parent["space_room_id"], room_id)
        await self.store.run(
            "parta_insert_unit",
            db.insert_unit_txn,
            unit_id,
            body["kind"],
            body["name"],
            parent_id,
            room_id,
            now_ms(),
            user_id,
        )
        return 201, {
            "unit_id": unit_id,
            "kind": body["kind"],
            "name": body["name"],
            "parent_id": parent_id,
            "space_room_id": room_id,
        }

    async def put_coordinator(
        self, request: SynapseRequest, unit_id: str, target: str
    ) -> tuple[int, dict[str, Any]]:
        user_id = await requester_id(self.api, request)
        if not await self._is_operator(user_id):
            raise forbidden(msg.NOT_OPERATOR)
        unit = await self.store.run("parta_get_unit", db.get_unit_txn, unit_id)
        if unit is None:
            raise not_found(msg.UNIT_NOT_FOUND, unit_id=unit_id)
        await self._require_user(target)
        await self.store.run(
            "parta_add_coordinator", db.add_coordinator_txn, unit_id, target, user_id, now_ms()
        )
        await self._forget([target])
        if unit["space_room_id"]:
            await self.structure.ensure_joined(unit["space_room_id"], RoomKind.UNIT_SPACE, target)
        return 200, {"unit_id": unit_id, "user_id": target}
