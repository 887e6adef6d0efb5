"""The consents a school enforces in its rooms (its ``policy.consent_enforced``), held
by the module's event rules: a student without ``communication`` reads the school's
rooms and does not post in them; a student without ``photos`` posts no pictures there
and their member events there carry no avatar (the decisions: :mod:`.rules`).

Only students (their role in that room, :meth:`RosterCore.role_in_room`) in the rooms
the roster made for a school; staff, parents and every other room are never asked about.
``video_lessons`` and ``broadcasts`` are not here: the media token and the broadcast
speaker check enforce them (:class:`.api.Privacy`).

Consents are read for every message a student sends in a school that enforces them,
so each person's are cached per school (:class:`InvalidatedCache`) and forgotten on
every worker when they change (:meth:`forget`: a recorded consent, an erasure).
"""

import logging
from typing import TYPE_CHECKING, Any, Final, cast

from synapse.module_api import CachedFunction, EventBase, StateMap

from parta_common.roles import Role

from ..errors import forbidden
from ..roster.rules import SchoolPolicy
from ..store import InvalidatedCache
from . import store as db
from .rules import COMMUNICATION_EVENTS, consent_refusal, member_content_without_avatar

if TYPE_CHECKING:
    from .. import PartaModule

logger = logging.getLogger(__name__)

# The events the rule looks at; every other passes without a look-up.
_WATCHED: Final = COMMUNICATION_EVENTS | {"m.room.member"}


def _key(school_id: str, user_id: str) -> str:
    # One string: the key travels to other workers as JSON (a tuple would not come back).
    return f"{school_id}\n{user_id}"


class ConsentsInRooms:
    def __init__(self, module: "PartaModule"):
        self._module = module
        self._api = module.api
        self._granted = InvalidatedCache("parta_consents_granted", self._load, 50000)
        self._api.register_cached_function(cast(CachedFunction[Any], self._granted))

    async def _load(self, key: str) -> frozenset[str]:
        school_id, user_id = key.split("\n", 1)
        consents = await self._module.store.run(
            "parta_consents_granted", db.consents_txn, school_id, user_id
        )
        return frozenset(p for p, c in consents.items() if c["granted"])

    async def forget(self, school_id: str, user_id: str) -> None:
        """After a person's consents in a school change: every worker reads them again."""
        await self._api.invalidate_cache(
            cast(CachedFunction[Any], self._granted), (_key(school_id, user_id),)
        )

    async def missing(self, room_id: str, user_id: str) -> tuple[str, int, frozenset[str]] | None:
        """For a student in a school's room whose school enforces consents: (the school,
        its self-consent grade, the enforced consents the student lacks); else ``None``."""
        roster = self._module.roster
        room = await roster.get_room(room_id)
        if room is None or room.school_id is None:
            return None
        policy = await roster.get_policy(room.school_id)
        if not policy.consent_enforced:
            return None
        if await roster.role_in_room(user_id, room_id) is not Role.STUDENT:
            return None
        granted = await self._granted.get(_key(room.school_id, user_id))
        lacking = frozenset(policy.consent_enforced) - granted
        return room.school_id, policy.self_consent_grade, lacking

    async def check_event_allowed(
        self, event: EventBase, state_events: StateMap[EventBase]
    ) -> tuple[bool, dict[str, Any] | None]:
        if event.type not in _WATCHED or event.sender == self._module.service_user_id:
            return True, None
        if event.type == "m.room.member" and (
            event.state_key != event.sender
            or event.content.get("membership") != "join"
            or not event.content.get("avatar_url")
        ):
            return True, None  # only one's own member event showing an avatar
        found = await self.missing(event.room_id, event.sender)
        if found is None or not found[2]:
            return True, None
        school_id, grade, lacking = found
        mine = self._api.is_mine(event.sender)
        if event.type == "m.room.member":
            content = member_content_without_avatar(event.content, lacking)
            if content is None or not mine:
                # Another server's event cannot be rewritten here: it keeps its avatar.
                return True, None
            replaced = event.get_dict()  # plain JSON, unlike event.content
            replaced["content"] = content
            return True, replaced
        refusal = consent_refusal(event.type, event.content, lacking)
        if refusal is None:
            return True, None
        if not mine:
            return False, None
        raise forbidden(refusal, grade=grade, school_id=school_id, user_id=event.sender)

    async def policy_changed(self, school_id: str, before: SchoolPolicy, now: SchoolPolicy) -> None:
        """The school starts or stops enforcing ``photos``: its students' avatars in its
        rooms are hidden or shown again, in the background (a member event per student
        and room where it changes)."""
        if ("photos" in before.consent_enforced) == ("photos" in now.consent_enforced):
            return
        self._api.run_as_background_process(
            "parta_consent_avatars", self._show_avatars_of_school, school_id
        )

    async def _show_avatars_of_school(self, school_id: str) -> None:
        people = await self._module.roster.school_people([school_id])
        students = sorted(
            {u for _s, role, u, joined in people if role == Role.STUDENT.value and joined}
        )
        for user_id in students:
            await self.show_avatar_as_consented(school_id, user_id)
        logger.info("Avatars of %d students of %s as their consents say", len(students), school_id)

    async def show_avatar_as_consented(self, school_id: str, user_id: str) -> None:
        """After ``photos`` is granted or withdrawn: the student's member events in the
        school's rooms they are in are sent again where the avatar they show is not what
        the consent says (with the profile's avatar; the rule above takes it out while
        ``photos`` is missing), so the change shows at once, not at their next profile
        change."""
        if not self._api.is_mine(user_id):
            return
        profile = await self._api.get_profile_for_user(user_id.split(":")[0].lstrip("@"))
        for room in await self._module.roster.rooms_of_school(school_id):
            if room.archived:
                continue
            state = await self._api.get_room_state(room.room_id, [("m.room.member", user_id)])
            member = state.get(("m.room.member", user_id))
            if member is None or member.content.get("membership") != "join":
                continue
            found = await self.missing(room.room_id, user_id)
            hidden = found is not None and "photos" in found[2]
            shown = None if hidden else profile.avatar_url
            if member.content.get("avatar_url") == shown:
                continue
            content: dict[str, Any] = {"avatar_url": profile.avatar_url}
            if isinstance(member.content.get("displayname"), str):
                content["displayname"] = member.content["displayname"]
            await self._api.update_room_membership(user_id, user_id, room.room_id, "join", content)
