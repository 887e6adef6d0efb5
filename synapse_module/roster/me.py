"""What a person sees of themselves: ``/me`` and the parent-invite a student hands out."""

from typing import TYPE_CHECKING, Any

from synapse.module_api import (
    SynapseRequest,
)

from parta_common.roles import Role

from ..errors import forbidden
from ..http import json_body, requester_id
from . import rules
from . import store as db
from . import texts as msg
from .parent_links import open_parent_invites_txn

if TYPE_CHECKING:
    pass

from .core import now_ms, standing_json
from .invites import InvitesApi
from .requests import PARENT_INVITE_SCHEMA


class MeApi(InvitesApi):
    async def post_parent_invite(self, request: SynapseRequest) -> tuple[int, dict[str, Any]]:
        user_id = await requester_id(self.api, request)
        body = json_body(request, PARENT_INVITE_SCHEMA)
        school = await self._school(body["school_id"])
        standing = (await self.get_person(user_id)).standing(school.school_id)
        if standing is None or Role.STUDENT not in standing.roles:
            raise forbidden(msg.NOT_A_STUDENT)
        limit = self.config.parent_invites_per_student
        open_now = await self.store.run(
            "parta_open_parent_invites",
            open_parent_invites_txn,
            school.school_id,
            user_id,
            now_ms(),
        )
        if open_now >= limit:
            raise forbidden(rules.PARENT_INVITES_OPEN, limit=limit)
        # Two guardians may use the code, within two weeks; the school confirms each.
        invite = await self._create_invite(
            school.school_id, Role.PARENT, None, user_id, user_id, 2, 14 * 86400
        )
        return 201, self._invite_json(invite)

    async def get_me(self, request: SynapseRequest) -> tuple[int, dict[str, Any]]:
        user_id = await requester_id(self.api, request)
        person = await self.get_person(user_id)
        schools = []
        for school_id, standing in sorted(person.schools.items()):
            school = await self.store.run("parta_get_school", db.get_school_txn, school_id)
            if school is None:
                continue
            all_rooms = await self.store.run(
                "parta_school_rooms_full", db.school_rooms_txn, school_id
            )
            schools.append(
                {
                    "school_id": school_id,
                    "name": school.name,
                    **standing_json(user_id, standing),
                    "rooms": await self.store.run(
                        "parta_school_rooms", db.rooms_of_school_txn, school_id
                    ),
                    "class_rooms": [
                        {"class_id": r.class_id, "kind": r.kind.value, "room_id": r.room_id}
                        for r in rules.class_rooms_of(person, all_rooms)
                    ],
                }
            )
        return 200, {
            "user_id": user_id,
            "operator": await self._is_operator(user_id),
            "coordinates": sorted(person.coordinates),
            "schools": schools,
            # First sign-in: the school's rooms are still being joined (seconds).
            **({"rooms_pending": True} if await self._rooms_pending(user_id) else {}),
        }

    async def _rooms_pending(self, user_id: str) -> bool:
        if user_id in self.first_sign_ins:
            return True
        return bool(await self.store.run("parta_not_signed_in", db.not_signed_in_txn, [user_id]))
