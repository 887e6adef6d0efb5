"""Schools: create, read, change; the school's own rooms."""

import logging
import zoneinfo
from typing import TYPE_CHECKING, Any, cast

import attrs
from synapse.module_api import (
    CachedFunction,
    SynapseRequest,
)
from synapse.module_api.errors import Codes

from parta_common import events
from parta_common.roles import Role

from ..errors import conflict, matrix_error, not_found
from ..http import json_body, requester_id
from . import rules
from . import store as db
from . import texts as msg
from .events import (
    ROOM_NAMES,
    room_kind_state,
    school_state,
)
from .rules import RoomKind, SchoolPolicy

if TYPE_CHECKING:
    pass

from .core import bad, now_ms
from .members import MembersApi
from .requests import CREATE_SCHOOL_SCHEMA, PATCH_SCHOOL_SCHEMA

logger = logging.getLogger(__name__)


class SchoolsApi(MembersApi):
    # -- schools ----------------------------------------------------------------

    def _check_timezone(self, tz: str) -> None:
        try:
            zoneinfo.ZoneInfo(tz)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise bad(msg.BAD_TIMEZONE, tz=tz) from None

    def _check_policy(self, raw: dict[str, Any] | None, base: SchoolPolicy) -> SchoolPolicy:
        if raw is None:
            return base
        merged = {**base.to_json(), **raw}
        new = SchoolPolicy.from_json(merged)
        reason = rules.check_policy(new, self.config.policy)
        if reason is not None:
            raise matrix_error(403, Codes.FORBIDDEN, msg.POLICY_REFUSED, reason=reason)
        return new

    def _school_content(self, school: db.School) -> dict[str, Any]:
        return {
            "school_id": school.school_id,
            "name": school.name,
            "short_name": school.short_name,
            "address": school.address,
            "timezone": school.timezone,
            "logo_mxc": school.logo_mxc,
        }

    async def post_school(self, request: SynapseRequest) -> tuple[int, dict[str, Any]]:
        user_id = await requester_id(self.api, request)
        body = json_body(request, CREATE_SCHOOL_SCHEMA)
        unit_id = body.get("unit_id")
        unit: dict[str, Any] | None = None
        place: rules.UnitPlace | None = None
        if unit_id is not None:
            unit, place = await self._unit_place(unit_id)
        # Schools outside every unit: the operator only.
        await self._require_unit(user_id, place, rules.UnitAction.MANAGE_SCHOOLS)
        timezone = body.get("timezone", self.config.default_timezone)
        self._check_timezone(timezone)
        school_policy = self._check_policy(body.get("policy"), self.config.policy.default)
        external_id = body.get("external_id")
        if external_id is not None:
            taken = await self.store.run(
                "parta_school_by_ext", db.get_school_by_external_txn, external_id
            )
            if taken is not None:
                raise conflict(msg.EXTERNAL_ID_TAKEN, external_id=external_id)
        admins = list(dict.fromkeys(body.get("administrators", [])))
        for admin in admins:
            await self._require_user(admin)

        school = db.School(
            school_id=db.new_id("sch"),
            name=body["name"],
            short_name=body.get("short_name"),
            address=body.get("address"),
            contacts=body.get("contacts", {}),
            logo_mxc=body.get("logo_mxc"),
            timezone=timezone,
            unit_id=unit_id,
            external_id=external_id,
            policy=school_policy,
            created_ts=now_ms(),
        )
        # Rooms first (they take a while); the roster row last, so a failure half-way
        # leaves no school that points at missing rooms.
        rooms = await self._create_school_rooms(school, dict.fromkeys(admins, 100))
        await self.store.run("parta_insert_school", db.insert_school_txn, school, rooms, user_id)
        if unit is not None and unit["space_room_id"]:
            await self.structure.link_child(unit["space_room_id"], rooms[RoomKind.SCHOOL_SPACE])
        await self._forget(room_ids=rooms.values())
        for admin in admins:
            await self._put_member(school, admin, {Role.ADMINISTRATOR}, {}, set(), set(), user_id)
        return 201, await self._school_json(school)

    async def _create_school_rooms(
        self, school: db.School, users: dict[str, int]
    ) -> dict[RoomKind, str]:
        sid = school.school_id
        space = await self.structure.create_space(
            RoomKind.SCHOOL_SPACE,
            school.name,
            school.address or "",
            [
                school_state(self._school_content(school)),
                room_kind_state(RoomKind.SCHOOL_SPACE, sid, None),
                self._acl_state(school.policy),
            ],
            users,
            school.logo_mxc,
        )
        rooms = {RoomKind.SCHOOL_SPACE: space}
        for kind in (RoomKind.ANNOUNCEMENTS, RoomKind.STAFF, RoomKind.DOCUMENTS, RoomKind.ARTICLES):
            rooms[kind] = await self.structure.create_child_room(
                kind,
                ROOM_NAMES[kind],
                space,
                [room_kind_state(kind, sid, None), self._acl_state(school.policy)],
                users,
                allow=[] if kind is RoomKind.STAFF else [space],
            )
        return rooms

    async def _open_school_wide_rooms(self) -> int:
        """Schools made before their school-wide rooms were open (``rules.OPEN_KINDS``):
        the service account opens them now (join rule public, guests forbidden), once —
        a room already open is only read. Returns how many rooms it changed."""
        rooms = await self.store.run(
            "parta_open_kinds_rooms", db.school_rooms_of_kinds_txn, rules.OPEN_KINDS
        )
        opened = 0
        for room in rooms:
            if await self.structure.open_room(room.room_id):
                opened += 1
        if opened:
            logger.info("Opened %d school-wide rooms of older schools (join rule public)", opened)
        return opened

    def _acl_state(self, school_policy: SchoolPolicy) -> dict[str, Any]:
        """Server ACL of a school room: this server and the servers the school allows, so
        other servers' events are refused by every server in the room, not only here."""
        return {
            "type": "m.room.server_acl",
            "state_key": "",
            "content": rules.acl_content(
                self.api.server_name, school_policy.federation_allowed_servers
            ),
        }

    async def _school_json(self, school: db.School) -> dict[str, Any]:
        rooms = await self.store.run("parta_school_rooms", db.rooms_of_school_txn, school.school_id)
        return {
            "school_id": school.school_id,
            "name": school.name,
            "short_name": school.short_name,
            "address": school.address,
            "contacts": school.contacts,
            "logo_mxc": school.logo_mxc,
            "timezone": school.timezone,
            "unit_id": school.unit_id,
            "external_id": school.external_id,
            "policy": school.policy.to_json(),
            # What the operator lets schools choose (the console offers only these).
            "policy_limits": {
                "allowed_dm_policies": list(self.config.policy.allowed_dm_policies),
                "allow_student_group_chats": self.config.policy.allow_student_group_chats,
            },
            "rooms": rooms,
            "created_ts": school.created_ts,
        }

    async def _school_json_for(self, user_id: str, school: db.School) -> dict[str, Any]:
        """One school as its reader sees it: with ``may_manage``, whether they pass the
        check the managers' routes make (PATCH among them) — the module's one rule, so a
        page need not guess it from who the reader is (the console's «Правила школы»)."""
        answer = await self._school_json(school)
        answer["may_manage"] = await self._may_manage(user_id, school)
        return answer

    async def get_schools(self, request: SynapseRequest) -> tuple[int, dict[str, Any]]:
        user_id = await requester_id(self.api, request)
        ids: list[str] | None = None
        if not await self._is_operator(user_id):
            person = await self.get_person(user_id)
            # A coordinator's: the schools of every unit in their subtree too.
            units = await self.store.run(
                "parta_units_under", db.units_under_txn, person.coordinates
            )
            below = await self.store.run(
                "parta_schools_in_units", db.school_ids_in_units_txn, units
            )
            ids = sorted(set(person.schools) | set(below))
        schools = await self.store.run("parta_list_schools", db.list_schools_txn, ids)
        return 200, {"schools": [await self._school_json(s) for s in schools]}

    async def get_school(
        self, request: SynapseRequest, school_id: str
    ) -> tuple[int, dict[str, Any]]:
        user_id, school = await self._open(request, school_id, "member")
        return 200, await self._school_json_for(user_id, school)

    async def get_school_by_external_id(
        self, request: SynapseRequest, external_id: str
    ) -> tuple[int, dict[str, Any]]:
        user_id = await requester_id(self.api, request)
        school = await self.store.run(
            "parta_school_by_ext", db.get_school_by_external_txn, external_id
        )
        if school is None:
            raise not_found(msg.SCHOOL_NOT_FOUND, school_id=external_id)
        await self._require_member_or_manager(user_id, school)
        return 200, await self._school_json_for(user_id, school)

    async def patch_school(
        self, request: SynapseRequest, school_id: str
    ) -> tuple[int, dict[str, Any]]:
        user_id, school, body = await self._open_body(
            request, school_id, PATCH_SCHOOL_SCHEMA, "manager"
        )
        if "timezone" in body:
            self._check_timezone(body["timezone"])
        new_policy = self._check_policy(body.get("policy"), school.policy)
        updated = attrs.evolve(
            school,
            name=body.get("name", school.name),
            short_name=body.get("short_name", school.short_name),
            address=body.get("address", school.address),
            contacts=body.get("contacts", school.contacts),
            logo_mxc=body.get("logo_mxc", school.logo_mxc),
            timezone=body.get("timezone", school.timezone),
            policy=new_policy,
        )
        await self.store.run_read_committed(
            "parta_update_school",
            db.update_school_txn,
            updated,
            frozenset(body),
            user_id,
            now_ms(),
        )
        await self.api.invalidate_cache(
            cast(CachedFunction[Any], self._school_policies), (school_id,)
        )
        if new_policy != school.policy:
            for hook in self.policy_changed_hooks:
                await hook(school.school_id, school.policy, new_policy)
        if new_policy.federation_allowed_servers != school.policy.federation_allowed_servers:
            acl = self._acl_state(new_policy)
            for room in await self.store.run(
                "parta_school_rooms_full", db.school_rooms_txn, school_id
            ):
                await self.structure.send_state(room.room_id, acl["type"], "", acl["content"])
        rooms = await self.store.run("parta_school_rooms", db.rooms_of_school_txn, school_id)
        space = rooms.get(RoomKind.SCHOOL_SPACE.value)
        if space:
            await self.structure.send_state(space, events.SCHOOL, "", self._school_content(updated))
            if updated.name != school.name:
                await self.structure.send_state(space, "m.room.name", "", {"name": updated.name})
            if updated.logo_mxc and updated.logo_mxc != school.logo_mxc:
                await self.structure.send_state(
                    space, "m.room.avatar", "", {"url": updated.logo_mxc}
                )
        return 200, await self._school_json(updated)
