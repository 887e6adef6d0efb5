"""Regions and municipalities (units) and their coordinators.

The operator creates a region and appoints its coordinators; a regional coordinator
creates municipalities in it and appoints theirs; a municipal coordinator creates schools
in the municipality (``POST /schools`` with ``unit_id``) and appoints their
administrators. Who may do what where is one decision, ``rules.unit_refusal``.

Each unit has its coordinators' space and an announcement room in it: the unit's
coordinators post (power 100), the coordinators of units below and the administrators of
schools below read (``rules.unit_room_power``); memberships follow every appointment and
removal (``RosterCore._sync_unit_rooms``).
"""

from typing import Any

from synapse.module_api import SynapseRequest

from parta_common import events

from ..errors import not_found
from ..http import json_body, requester_id
from . import rules
from . import store as db
from . import texts as msg
from .core import RosterCore, now_ms
from .events import ROOM_NAMES, room_kind_state
from .requests import UNIT_SCHEMA
from .rules import RoomKind, UnitAction


def unit_json(unit: dict[str, Any]) -> dict[str, Any]:
    rooms = unit.get("rooms", {})
    return {
        "unit_id": unit["unit_id"],
        "kind": unit["kind"],
        "name": unit["name"],
        "parent_id": unit["parent_id"],
        "space_room_id": unit["space_room_id"],
        "announcements_room_id": rooms.get(RoomKind.UNIT_ANNOUNCEMENTS.value),
        "coordinators": unit.get("coordinators", []),
        "schools": unit.get("schools", []),
    }


class UnitsApi(RosterCore):
    async def post_unit(self, request: SynapseRequest) -> tuple[int, dict[str, Any]]:
        user_id = await requester_id(self.api, request)
        body = json_body(request, UNIT_SCHEMA)
        parent_id = body.get("parent_id")
        parent: dict[str, Any] | None = None
        place: rules.UnitPlace | None = None
        if parent_id is not None:
            parent, place = await self._unit_place(parent_id)
        await self._require_unit(user_id, place, UnitAction.CREATE_UNIT, body["kind"])
        unit_id = db.new_id("unit")
        rooms = await self._create_unit_rooms(unit_id, body["kind"], body["name"])
        if parent is not None and parent["space_room_id"]:
            await self.structure.link_child(parent["space_room_id"], rooms[RoomKind.UNIT_SPACE])
        await self.store.run(
            "parta_insert_unit",
            db.insert_unit_txn,
            unit_id,
            body["kind"],
            body["name"],
            parent_id,
            rooms,
            now_ms(),
            user_id,
        )
        await self._forget(room_ids=rooms.values())
        return 201, await self._unit_json(unit_id)

    async def _create_unit_rooms(self, unit_id: str, kind: str, name: str) -> dict[RoomKind, str]:
        space = await self.structure.create_space(
            RoomKind.UNIT_SPACE,
            name,
            "",
            [
                {
                    "type": events.UNIT,
                    "state_key": "",
                    "content": {"kind": kind, "name": name, "unit_id": unit_id},
                },
                room_kind_state(RoomKind.UNIT_SPACE, None, None),
            ],
            {},
        )
        return {RoomKind.UNIT_SPACE: space, **await self._create_announcements(space)}

    async def _create_announcements(self, space: str) -> dict[RoomKind, str]:
        kind = RoomKind.UNIT_ANNOUNCEMENTS
        room = await self.structure.create_child_room(
            kind, ROOM_NAMES[kind], space, [room_kind_state(kind, None, None)], {}, allow=[]
        )
        return {kind: room}

    async def _ensure_unit_announcements(self, unit: dict[str, Any]) -> None:
        """Units made before announcement rooms existed get theirs on first use."""
        rooms = await self.store.run("parta_unit_rooms", db.unit_rooms_txn, [unit["unit_id"]])
        if not unit["space_room_id"] or any(r.kind is RoomKind.UNIT_ANNOUNCEMENTS for r in rooms):
            return
        made = await self._create_announcements(unit["space_room_id"])
        await self.store.run(
            "parta_insert_unit_rooms", db.insert_unit_rooms_txn, unit["unit_id"], made
        )
        await self._forget(room_ids=made.values())

    async def _unit_json(self, unit_id: str) -> dict[str, Any]:
        [unit] = await self.store.run("parta_list_units", db.list_units_txn, [unit_id])
        return unit_json(unit)

    async def get_units(self, request: SynapseRequest) -> tuple[int, dict[str, Any]]:
        """The caller's subtree: every unit for the operator, the units a coordinator
        coordinates and those below them, none for anyone else."""
        user_id = await requester_id(self.api, request)
        ids: set[str] | None = None
        if not await self._is_operator(user_id):
            coordinates = (await self.get_person(user_id)).coordinates
            ids = await self.store.run("parta_units_under", db.units_under_txn, coordinates)
        units = await self.store.run("parta_list_units", db.list_units_txn, ids)
        return 200, {"units": [unit_json(u) for u in units]}

    async def get_unit(self, request: SynapseRequest, unit_id: str) -> tuple[int, dict[str, Any]]:
        user_id = await requester_id(self.api, request)
        _unit, place = await self._unit_place(unit_id)
        await self._require_unit(user_id, place, UnitAction.READ)
        return 200, await self._unit_json(unit_id)

    async def put_coordinator(
        self, request: SynapseRequest, unit_id: str, target: str
    ) -> tuple[int, dict[str, Any]]:
        user_id = await requester_id(self.api, request)
        unit, place = await self._unit_place(unit_id)
        await self._require_unit(user_id, place, UnitAction.APPOINT)
        await self._require_user(target)
        await self._appoint(user_id, unit, target)
        return 200, {"unit_id": unit_id, "user_id": target}

    async def _appoint(self, user_id: str, unit: dict[str, Any], target: str) -> None:
        """Make ``target`` a coordinator of ``unit`` (checked by the caller): the row and
        its audit entry, power in the unit's rooms, the rooms joined."""
        unit_id = unit["unit_id"]
        await self._ensure_unit_announcements(unit)
        before = await self.get_person(target)
        await self.store.run(
            "parta_add_coordinator", db.add_coordinator_txn, unit_id, target, user_id, now_ms()
        )
        await self._forget([target])
        await self._sync_unit_power(unit_id)
        await self._sync_unit_rooms(before, await self.get_person(target))

    async def delete_coordinator(
        self, request: SynapseRequest, unit_id: str, target: str
    ) -> tuple[int, dict[str, Any]]:
        user_id = await requester_id(self.api, request)
        _unit, place = await self._unit_place(unit_id)
        await self._require_unit(user_id, place, UnitAction.APPOINT)
        before = await self.get_person(target)
        removed = await self.store.run(
            "parta_remove_coordinator",
            db.remove_coordinator_txn,
            unit_id,
            target,
            user_id,
            now_ms(),
        )
        if not removed:
            raise not_found(msg.NOT_COORDINATOR, user_id=target, unit_id=unit_id)
        await self._forget([target])
        await self._sync_unit_power(unit_id)
        await self._sync_unit_rooms(before, await self.get_person(target))
        return 200, {"unit_id": unit_id, "user_id": target, "removed": True}
