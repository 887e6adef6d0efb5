"""Classes: create, list, archive."""

from typing import TYPE_CHECKING, Any

from synapse.module_api import (
    SynapseRequest,
)

from parta_common.roles import Role

from ..errors import conflict
from ..query import query_string
from . import store as db
from . import texts as msg
from .events import (
    ROOM_NAMES,
    class_state,
    room_kind_state,
)
from .rules import RoomKind

if TYPE_CHECKING:
    pass

from .core import bad, class_title, now_ms
from .requests import CREATE_CLASS_SCHEMA
from .schools import SchoolsApi


class ClassesApi(SchoolsApi):
    # -- classes ----------------------------------------------------------------

    async def post_class(
        self, request: SynapseRequest, school_id: str
    ) -> tuple[int, dict[str, Any]]:
        user_id, school, body = await self._open_body(
            request, school_id, CREATE_CLASS_SCHEMA, "manager"
        )
        return 201, await self.create_class(user_id, school, body)

    async def create_class(
        self, user_id: str, school: db.School, body: dict[str, Any]
    ) -> dict[str, Any]:
        """A class and its rooms, for a manager of the school (``POST .../classes`` and
        the roster import: one path)."""
        school_id = school.school_id
        letter = body["letter"].strip().upper()
        title = body.get("title") or class_title(body["grade"], letter)
        # Every year's classes: a title is unique within its year, an external id
        # within the school (the table's constraint), checked before any room exists.
        existing = await self.store.run(
            "parta_list_classes", db.list_classes_txn, school_id, None, True
        )
        for other in existing:
            if (other.year, other.grade, other.letter) == (body["year"], body["grade"], letter):
                raise conflict(msg.CLASS_EXISTS, title=title, year=body["year"])
            if body.get("external_id") and other.external_id == body["external_id"]:
                raise conflict(msg.EXTERNAL_ID_TAKEN, external_id=body["external_id"])
        homeroom = body.get("homeroom")
        if homeroom is not None:
            standing = (await self.get_person(homeroom)).standing(school_id)
            if standing is None or not standing.is_staff:
                raise bad(msg.NOT_SCHOOL_STAFF)
        cls = db.SchoolClass(
            class_id=db.new_id("cls"),
            school_id=school_id,
            grade=body["grade"],
            letter=letter,
            year=body["year"],
            title=title,
            homeroom_user_id=None,
            external_id=body.get("external_id"),
            archived=False,
            created_ts=now_ms(),
        )
        school_rooms = await self.store.run("parta_school_rooms", db.rooms_of_school_txn, school_id)
        admins = await self.store.run(
            "parta_school_users", db.school_user_ids_txn, school_id, [Role.ADMINISTRATOR]
        )
        users = dict.fromkeys(admins, 100)
        content = {
            "class_id": cls.class_id,
            "school_id": school_id,
            "grade": cls.grade,
            "letter": cls.letter,
            "year": cls.year,
            "title": cls.title,
        }
        staff_room = school_rooms.get(RoomKind.STAFF.value)
        staff = [staff_room] if staff_room else []
        school_space = school_rooms.get(RoomKind.SCHOOL_SPACE.value)
        # Members of the school space may join (the module decides who really may): a
        # student's first sign-in joins it without an invitation first, one event less.
        space = await self.structure.create_space(
            RoomKind.CLASS_SPACE,
            f"{title}, {cls.year}",
            school.name,
            [
                class_state(content),
                room_kind_state(RoomKind.CLASS_SPACE, school_id, cls.class_id),
                self._acl_state(school.policy),
            ],
            users,
            allow=staff + ([school_space] if school_space else []),
        )
        rooms = {RoomKind.CLASS_SPACE: space}
        for kind in (RoomKind.CLASS_CHAT, RoomKind.PARENTS_CHAT):
            rooms[kind] = await self.structure.create_child_room(
                kind,
                ROOM_NAMES[kind].format(title=title),
                space,
                [
                    class_state(content),
                    room_kind_state(kind, school_id, cls.class_id),
                    self._acl_state(school.policy),
                ],
                users,
                allow=([space] if kind is RoomKind.CLASS_CHAT else []) + staff,
            )
        if school_space:
            await self.structure.link_child(school_space, space, order=f"{cls.grade:02d}{letter}")
        await self.store.run("parta_insert_class", db.insert_class_txn, cls, rooms, user_id)
        await self._forget(room_ids=rooms.values())
        if homeroom is not None:
            await self._update_member(school, homeroom, user_id, add_homeroom={cls.class_id})
        return await self._class_json(cls)

    async def _class_json(self, cls: db.SchoolClass) -> dict[str, Any]:
        fresh = await self.store.run("parta_get_class", db.get_class_txn, cls.class_id)
        cls = fresh or cls
        members = await self.store.run("parta_class_members", db.class_members_txn, cls.class_id)
        rooms = await self.store.run("parta_class_rooms", db.rooms_of_class_txn, cls.class_id)
        return {
            "class_id": cls.class_id,
            "school_id": cls.school_id,
            "grade": cls.grade,
            "letter": cls.letter,
            "year": cls.year,
            "title": cls.title,
            "homeroom": cls.homeroom_user_id,
            "external_id": cls.external_id,
            "archived": cls.archived,
            "teachers": [u for u, r in members if r == Role.TEACHER.value],
            "student_count": sum(1 for _, r in members if r == Role.STUDENT.value),
            "rooms": rooms,
        }

    async def get_classes(
        self, request: SynapseRequest, school_id: str
    ) -> tuple[int, dict[str, Any]]:
        _user_id, _school = await self._open(request, school_id, "member")
        year = query_string(request, "year")
        include_archived = query_string(request, "include_archived") in ("true", "1")
        classes = await self.store.run(
            "parta_list_classes", db.list_classes_txn, school_id, year, include_archived
        )
        return 200, {"classes": [await self._class_json(c) for c in classes]}

    async def get_class(
        self, request: SynapseRequest, school_id: str, class_id: str
    ) -> tuple[int, dict[str, Any]]:
        _user_id, _school = await self._open(request, school_id, "member")
        return 200, await self._class_json(await self._class(school_id, class_id))

    async def post_archive(
        self, request: SynapseRequest, school_id: str, class_id: str
    ) -> tuple[int, dict[str, Any]]:
        user_id, _school = await self._open(request, school_id, "manager")
        cls = await self._class(school_id, class_id)
        if not cls.archived:
            await self.store.run(
                "parta_archive_class", db.archive_class_txn, school_id, class_id, user_id, now_ms()
            )
        rooms = await self.store.run("parta_class_rooms", db.rooms_of_class_txn, class_id)
        await self._forget(room_ids=rooms.values())
        for room_id in rooms.values():
            room = await self.get_room(room_id)
            if room is not None:
                await self.structure.set_power_levels(room, {})
        for hook in self.class_archived_hooks:  # the school's retention rules
            await hook(user_id, school_id, class_id, list(rooms.values()))
        return 200, await self._class_json(cls)
