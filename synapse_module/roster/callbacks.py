"""The callbacks that hold every Matrix client to what the roster says (spam checker,
event rules, user directory). ``PartaModule`` registers them; these only decide."""

import time
from typing import TYPE_CHECKING, Any, Final

from synapse.module_api import (
    NOT_SPAM,
    EventBase,
    StateMap,
    UserProfile,
)
from synapse.module_api.callbacks.ratelimit_callbacks import RatelimitOverride

from parta_common.messages import Message

from ..errors import forbidden
from . import growth, rules
from . import texts as msg
from .rules import Person, SchoolPolicy

if TYPE_CHECKING:
    pass

from .core import RosterCore, Verdict, refuse

# A private room a student makes or adds to holds this many people when the school
# forbids students' group chats (``rules.may_grow_private_room``).
LIMIT: Final = 2


class RosterCallbacks(RosterCore):
    async def get_ratelimit_override_for_user(
        self, user_id: str, limiter_name: str
    ) -> RatelimitOverride | None:
        if user_id == self.service:
            # (0 would mean "nothing allowed" for a module override, not "unlimited".)
            return RatelimitOverride(per_second=1e6, burst_count=1_000_000)
        return None

    async def on_create_room(
        self, requester: Any, config: dict[str, Any], is_requester_admin: bool
    ) -> None:
        """Every room created here (the module's and people's) carries the legacy
        ``creator`` key older clients need (``rules.creation_content_for_old_clients``)."""
        config.update(rules.creation_content_for_old_clients(config, requester.user.to_string()))

    # -- enforcement callbacks --------------------------------------------------

    async def user_may_create_room(self, user_id: str, room_config: dict[str, Any]) -> Verdict:
        if user_id == self.service or self._is_trusted_bot(user_id):
            return NOT_SPAM
        # An upgrade (`/upgrade`): the new room would replace a school room.
        predecessor = (room_config.get("creation_content") or {}).get("predecessor")
        if isinstance(predecessor, dict):
            old = await self.get_room(str(predecessor.get("room_id", "")))
            if old is not None:
                return refuse(rules.UPGRADE_SCHOOL_ROOM)
        person = await self.get_person(user_id)
        # Linking a new room into a school space through initial_state.
        for ev in room_config.get("initial_state", []) or []:
            if isinstance(ev, dict) and ev.get("type") == "m.space.parent":
                parent = await self.get_room(str(ev.get("state_key", "")))
                if parent is not None:
                    refusal = rules.may_link_into_school(person, parent.school_id)
                    if refusal:
                        return refuse(refusal)
        if not person.schools:
            return NOT_SPAM
        invitees = [i for i in room_config.get("invite", []) or [] if isinstance(i, str)]
        policies = await self._policies(person)
        if room_config.get("is_direct") and len(invitees) <= 1:
            for invitee in invitees:
                if self._is_trusted_bot(invitee):
                    continue
                target = await self.get_person(invitee)
                refusal = rules.may_contact(
                    person, target, {**policies, **await self._policies(target)}
                )
                if refusal:
                    return refuse(refusal)
            return NOT_SPAM
        refusal = rules.may_create_group_chat(person, policies)
        if refusal:
            return refuse(refusal)
        return NOT_SPAM

    async def user_may_invite(self, inviter: str, invitee: str, room_id: str) -> Verdict:
        if inviter == self.service:
            return NOT_SPAM
        room = await self.get_room(room_id)
        a = await self.get_person(inviter)
        b = await self.get_person(invitee)
        if room is not None:
            refusal = rules.may_invite_into(a, b, room)
            return refuse(refusal, invitee=invitee) if refusal else NOT_SPAM
        if not a.schools and not b.schools:
            return NOT_SPAM
        if self._is_trusted_bot(inviter) or self._is_trusted_bot(invitee):
            return NOT_SPAM
        refusal = rules.may_contact(a, b, await self._policies(a, b))
        if refusal is None:
            refusal = await self._may_grow(room_id, a, invitee)
        return refuse(refusal) if refusal else NOT_SPAM

    async def _may_grow(self, room_id: str, actor: Person, newcomer: str) -> Message | None:
        """One more person into a room the roster does not know: the group-chat ban
        counts who is joined or invited already, whatever order the invites came in, and
        (``growth.py``) who was let in a moment ago, so two invites at once cannot both
        pass."""
        state = await self.api.get_room_state(
            room_id, [("m.room.create", ""), ("m.room.member", None)]
        )
        create = state.get(("m.room.create", ""))
        creator = await self.get_person(create.sender) if create is not None else Person("")
        if not creator.schools and not actor.schools:
            return None
        policies = await self._policies(creator, actor)
        refusal = rules.may_grow_private_room(creator, actor, LIMIT, policies)
        if refusal is None:  # no limit for these people: nothing to count
            return None
        members = {
            key: str(ev.content.get("membership"))
            for (kind, key), ev in state.items()
            if kind == "m.room.member" and not self._is_trusted_bot(key)
        }
        present = await self.store.run_read_committed(
            "parta_room_growth",
            growth.claim_txn,
            room_id,
            newcomer,
            members,
            LIMIT,
            int(time.time() * 1000),
        )
        return rules.may_grow_private_room(creator, actor, present, policies)

    async def user_may_join_room(self, user_id: str, room_id: str, is_invited: bool) -> Verdict:
        if user_id == self.service:
            return NOT_SPAM
        room = await self.get_room(room_id)
        if room is None:
            if is_invited or self._is_trusted_bot(user_id):
                # Counted when the invite was made.
                return NOT_SPAM
            refusal = await self._may_grow(room_id, await self.get_person(user_id), user_id)
            return refuse(refusal) if refusal else NOT_SPAM
        refusal = rules.may_join(await self.get_person(user_id), room)
        return refuse(refusal) if refusal else NOT_SPAM

    async def check_username_for_spam(self, user_profile: UserProfile, requester_id: str) -> bool:
        """True hides the user from the searcher's user-directory results."""
        target = await self.get_person(user_profile["user_id"])
        if not target.is_student:
            return False
        return rules.hidden_from_search(target, await self.get_person(requester_id))

    async def check_event_allowed(
        self, event: EventBase, state_events: StateMap[EventBase]
    ) -> tuple[bool, dict[str, Any] | None]:
        if event.is_state() and not rules.may_send_structure_state(
            event.sender, event.type, self.service
        ):
            if not self.api.is_mine(event.sender):
                # Another server's event: refuse it without an error to a local user.
                return False, None
            raise forbidden(msg.STRUCTURE_STATE_FORBIDDEN, event_type=event.type)
        if event.sender == self.service:
            return True, None
        if not event.is_state():
            # Messages are the hot path: only when power levels would refuse it anyway
            # (read from the state in hand), look up whether to say why in Russian.
            if _lacks_power(event, state_events):
                school_room = await self.get_room(event.room_id)
                if school_room is not None:
                    raise forbidden(
                        msg.SEND_ARCHIVED if school_room.archived else msg.SEND_NEEDS_STAFF
                    )
            return True, None
        room = await self.get_room(event.room_id)
        mine = self.api.is_mine(event.sender)
        if room is None:
            if event.type == "m.space.parent" and mine:
                parent = await self.get_room(event.state_key or "")
                if parent is not None:
                    refusal = rules.may_link_into_school(
                        await self.get_person(event.sender), parent.school_id
                    )
                    if refusal:
                        raise forbidden(refusal)
            return True, None
        if not mine:
            # Another server's event in a school room: only servers the school allows.
            server = event.sender.split(":", 1)[1]
            school_policy = (
                await self.get_policy(room.school_id) if room.school_id else SchoolPolicy()
            )
            if rules.remote_allowed(server, school_policy) is not None:
                return False, None
            # An allowed server's people meet the same roster checks as local ones.
        if event.type == "m.room.tombstone":
            raise forbidden(rules.UPGRADE_SCHOOL_ROOM)
        if event.type in rules.MANAGED_STATE:
            raise forbidden(rules.STATE_MANAGED, event_type=event.type)
        if event.type == "m.room.member":
            membership = event.content.get("membership")
            target = event.state_key or ""
            if membership == "invite" and target != event.sender:
                refusal = rules.may_invite_into(
                    await self.get_person(event.sender), await self.get_person(target), room
                )
                if refusal:
                    raise forbidden(refusal, invitee=target)
            elif membership == "join" and target == event.sender:
                refusal = rules.may_join(await self.get_person(target), room)
                if refusal:
                    raise forbidden(refusal)
        return True, None


def _lacks_power(event: EventBase, state_events: StateMap[EventBase]) -> bool:
    """Whether the room's power levels will refuse this (non-state) event."""
    pl = state_events.get(("m.room.power_levels", ""))
    if pl is None:
        return False
    content = pl.content
    try:
        users = content.get("users", {})
        have = int(users.get(event.sender, content.get("users_default", 0)))
        need = int(content.get("events", {}).get(event.type, content.get("events_default", 0)))
    except (TypeError, ValueError, AttributeError):
        return False
    return have < need
