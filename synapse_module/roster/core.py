"""The roster's core: cached look-ups (which school room is this, who is this person
here) and the permission checks every route shares. The interface other features use."""

import hashlib
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import TYPE_CHECKING, Any, Final, Literal, cast

import bcrypt
from synapse.module_api import CachedFunction, ModuleApi, SynapseRequest
from synapse.module_api.errors import Codes, SynapseError

from parta_common.messages import Message
from parta_common.roles import Role

from ..concurrency import KeyedLock
from ..errors import forbidden, matrix_error, not_found
from ..http import check_json, json_body, requester_id
from ..query import query_string
from ..store import InvalidatedCache
from . import rules
from . import store as db
from . import texts as msg
from .events import Structure
from .requests import USER_ID_SCHEMA
from .rules import Person, SchoolPolicy, SchoolRoom, Standing

# A school as other features receive it through the roster's interface.
School = db.School

if TYPE_CHECKING:
    from .. import PartaModule
    from .first_sign_in import FirstSignInQueue

logger = logging.getLogger(__name__)

# How many people a batch brings into their rooms at once.
BATCH_CONCURRENCY: Final = 4
# How many accounts an import makes at once (each a few transactions in Synapse).
ACCOUNTS_AT_ONCE: Final = 8
# How many people's first sign-ins have their rooms joined at once, and how many rooms
# of one person at once (each join is a chain of transactions: more in flight keeps
# Synapse's database connection and its event persister busy instead of waiting). 20
# people joined 61 pupils' rooms 12 % sooner than 8, but on SQLite's one connection the
# logins of a morning wait behind them: 8.
FIRST_SIGN_IN_CONCURRENCY: Final = 8
# How many people an import brings into its school-wide rooms at once (in the
# background, before anyone signs in; ``open_rooms_at_import``).
OPEN_ROOMS_CONCURRENCY: Final = 4
ROOMS_AT_ONCE: Final = 4
# How long a roster import's sign-in code works (it stops earlier, once the person has
# set a password of their own).
SIGN_IN_CODE_LIFETIME_MS: Final = 90 * 86400 * 1000

# Invitation codes: no 0/O, 1/I/L; 8 characters ≈ 40 bits, shown as XXXX-XXXX.
CODE_ALPHABET: Final = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"


def normalize_code(code: str) -> str:
    return "".join(c for c in code.upper() if c.isalnum())


def format_code(code: str) -> str:
    return f"{code[:4]}-{code[4:]}" if len(code) == 8 else code


def now_ms() -> int:
    return int(time.time() * 1000)


def class_title(grade: int, letter: str) -> str:
    return f"{grade}{letter.upper()}"


def bad(message: Message, **kwargs: object) -> SynapseError:
    return matrix_error(400, Codes.INVALID_PARAM, message, **kwargs)


# Who may use a school's route (see RosterCore._open).
Access = Literal["manager", "member", "any"]
# (actor, school_id, class_id, the class's room IDs) after a class is archived.
ClassArchivedHook = Callable[[str, str, str, list[str]], Awaitable[None]]
# Called after a school's policy changed (school, the policy before, the policy now).
PolicyChangedHook = Callable[[str, SchoolPolicy, SchoolPolicy], Awaitable[None]]
Verdict = Literal["NOT_SPAM"] | tuple[Codes, dict[str, Any]]


def refuse(message: Message, **kwargs: object) -> tuple[Codes, dict[str, Any]]:
    """A spam-checker refusal whose ``error`` says why, in Russian and English."""
    return Codes.FORBIDDEN, {"error": message.format(**kwargs), **message.fields(**kwargs)}


class RosterCore:
    """What every part of the roster shares, and what other features may ask:
    :meth:`get_room` (which school room is this), :meth:`get_person` (who is this person
    here), :meth:`role_in_room`, :meth:`school`, :meth:`may_manage`, :meth:`audit`."""

    # People whose first sign-in's rooms are being joined (made by ``Roster``).
    first_sign_ins: "FirstSignInQueue"
    # People brought into a school before signing in, whose school-wide rooms are being
    # joined (``open_rooms_at_import``; made by ``Roster``).
    open_room_joins: "FirstSignInQueue"

    def __init__(self, module: "PartaModule"):
        self.module = module
        self.api: ModuleApi = module.api
        self.config = module.config
        self.store = module.store
        self.service = module.service_user_id
        # Needed by Synapse's @cached on methods.
        self.server_name = self.api.server_name
        self.structure = Structure(self.api, self.service)
        # Called after a class is archived (actor, school, class, its rooms): privacy's
        # retention puts the school's rules into the archived rooms.
        self.class_archived_hooks: list[ClassArchivedHook] = []
        # Called after a school's policy changed: privacy shows or hides students'
        # avatars in its rooms when ``photos`` starts or stops being enforced.
        self.policy_changed_hooks: list[PolicyChangedHook] = []
        # (school, person) whose standing is being changed right now, from the read of
        # what they were to their rooms brought in step (``MembersApi._update_member``,
        # ``put_member``, ``members_batch``, ``remove_from_school``): two at once lost
        # one's change (two parent links confirmed together kept one child), hit the
        # roles' unique key (PostgreSQL), or left Matrix out of step with the roster (a
        # removal and a re-adding: in 7А, out of its chat). In this process: the REST
        # API runs on main, and so do the imports and erasures it starts (an erasure
        # resumed at start-up runs where the background tasks do).
        self.standing_locks = KeyedLock()

        api = self.api
        self._rooms = InvalidatedCache("parta_rooms", self._load_room, 100000)
        self._people = InvalidatedCache("parta_people", self._load_person, 50000)
        self._school_policies = InvalidatedCache("parta_policies", self._load_policy, 10000)
        for cache in (self._rooms, self._people, self._school_policies):
            api.register_cached_function(cast(CachedFunction[Any], cache))
        if api.worker_name is None:
            api.delayed_background_call(0, self._ensure_service_account, desc="parta_service")

    # -- start-up ---------------------------------------------------------------

    async def _ensure_service_account(self) -> None:
        if not await self._account_exists(self.service):
            await self.api.register_user(
                self.config.service_localpart, self.config.service_displayname
            )
            logger.info("Created Parta's service account %s", self.service)

    # -- cached lookups ---------------------------------------------------------

    async def _load_room(self, room_id: str) -> SchoolRoom | None:
        return await self.store.run("parta_get_room", db.get_room_txn, room_id)

    async def _load_person(self, user_id: str) -> Person:
        return await self.store.run("parta_get_person", db.get_person_txn, user_id)

    async def _load_policy(self, school_id: str) -> SchoolPolicy:
        school = await self.store.run("parta_get_school", db.get_school_txn, school_id)
        return school.policy if school else SchoolPolicy()

    async def get_room(self, room_id: str) -> SchoolRoom | None:
        """The school room ``room_id`` is, or None for any other room."""
        return await self._rooms.get(room_id)

    async def get_person(self, user_id: str) -> Person:
        """Everything the roster says about ``user_id``, in every school."""
        return await self._people.get(user_id)

    async def get_policy(self, school_id: str) -> SchoolPolicy:
        return await self._school_policies.get(school_id)

    async def school_timezone(self, school_id: str) -> str:
        """The school's IANA time zone (the server's default if it has none)."""
        school = await self.store.run("parta_get_school", db.get_school_txn, school_id)
        return school.timezone if school and school.timezone else self.config.default_timezone

    async def _policies(self, *people: Person) -> dict[str, SchoolPolicy]:
        ids = {s for p in people for s in p.schools}
        return {s: await self.get_policy(s) for s in ids}

    # -- the interface other features use (never the roster's tables) -------------

    async def rooms_of_school(self, school_id: str) -> list[SchoolRoom]:
        """Every room the roster made for a school (its own rooms and its classes')."""
        return await self.store.run("parta_school_room_list", db.school_rooms_txn, school_id)

    async def made_by_parta(self, user_id: str) -> bool:
        """Whether Parta made the account for the schools (:func:`store.made_by_parta_txn`):
        a school's erasure takes only such an account (:func:`privacy.rules.scope_of`)."""
        return await self.store.run("parta_made_by_parta", db.made_by_parta_txn, user_id)

    async def school_wide_rooms(self, school_id: str) -> dict[str, str]:
        """A school's own rooms (not its classes'), room kind → room ID."""
        return await self.store.run("parta_school_rooms", db.rooms_of_school_txn, school_id)

    async def students_of_class(self, class_id: str) -> list[str]:
        """The students of a class, sorted."""
        members = await self.store.run("parta_lesson_class_members", db.class_members_txn, class_id)
        return sorted(u for u, role in members if role == Role.STUDENT.value)

    async def school_people(self, school_ids: Iterable[str]) -> list[tuple[str, str, str, bool]]:
        """Everyone on these schools' rosters: (school, role, user, has taken up their
        account). Statistics count from it (issue 11)."""
        return await self.store.run("parta_school_people", db.school_people_txn, school_ids)

    async def rooms_of_schools(self, school_ids: Iterable[str]) -> list[SchoolRoom]:
        """Every room the roster made for these schools, archived class rooms included."""
        return await self.store.run("parta_rooms_of_schools", db.rooms_of_schools_txn, school_ids)

    async def all_schools(self) -> list[db.School]:
        return await self.store.run("parta_list_schools", db.list_schools_txn, None)

    async def unit_to_read(
        self, user_id: str, unit_id: str
    ) -> tuple[dict[str, Any], list[db.School]]:
        """A unit ``user_id`` may read (404, 403 by ``rules.unit_refusal``) and every
        school in it and the units below it."""
        unit, place = await self._unit_place(unit_id)
        await self._require_unit(user_id, place, rules.UnitAction.READ)
        units = await self.store.run("parta_units_under", db.units_under_txn, [unit_id])
        ids = await self.store.run("parta_schools_in_units", db.school_ids_in_units_txn, units)
        return unit, await self.store.run("parta_list_schools", db.list_schools_txn, ids)

    async def _forget(self, user_ids: Iterable[str] = (), room_ids: Iterable[str] = ()) -> None:
        for user_id in set(user_ids):
            await self.api.invalidate_cache(cast(CachedFunction[Any], self._people), (user_id,))
        for room_id in set(room_ids):
            await self.api.invalidate_cache(cast(CachedFunction[Any], self._rooms), (room_id,))

    async def role_in_room(self, user_id: str, room_id: str) -> Role | None:
        """The role that counts for ``user_id`` in a school room (None outside school
        rooms or when the roster does not put them there). Other features ask this."""
        room = await self.get_room(room_id)
        if room is None or room.school_id is None:
            return None
        standing = (await self.get_person(user_id)).standing(room.school_id)
        if standing is None or not rules.belongs_in(standing, room):
            return None
        power = rules.power_in(standing, room) or 0
        if power >= 100:
            return Role.ADMINISTRATOR
        if power >= 50:
            return Role.TEACHER
        if Role.STUDENT in standing.roles and (
            room.kind not in rules.CLASS_KINDS or room.class_id in standing.learns_in
        ):
            return Role.STUDENT
        if Role.PARENT in standing.roles:
            return Role.PARENT
        if Role.TEACHER in standing.roles:
            return Role.TEACHER
        return Role.STUDENT if Role.STUDENT in standing.roles else None

    # -- permissions ------------------------------------------------------------

    async def _is_operator(self, user_id: str) -> bool:
        return user_id == self.service or await self.api.is_user_admin(user_id)

    async def _may_manage(self, user_id: str, school: db.School) -> bool:
        """The operator, the school's administrators, and coordinators of its unit."""
        if await self._is_operator(user_id):
            return True
        person = await self.get_person(user_id)
        standing = person.standing(school.school_id)
        if standing is not None and standing.is_admin:
            return True
        if school.unit_id and person.coordinates:
            found = await self.store.run("parta_unit_place", db.unit_place_txn, school.unit_id)
            if found is None:
                return False
            place = rules.UnitPlace(school.unit_id, found[0]["kind"], found[1])
            action = rules.UnitAction.MANAGE_SCHOOLS
            return rules.unit_refusal(False, person.coordinates, place, action) is None
        return False

    # -- units (regions, municipalities) ---------------------------------------

    async def _unit_place(self, unit_id: str) -> tuple[dict[str, Any], rules.UnitPlace]:
        """A unit's row and where it stands (404 when there is none)."""
        found = await self.store.run("parta_unit_place", db.unit_place_txn, unit_id)
        if found is None:
            raise not_found(msg.UNIT_NOT_FOUND, unit_id=unit_id)
        unit, chain = found
        return unit, rules.UnitPlace(unit_id, unit["kind"], chain)

    async def _require_unit(
        self,
        user_id: str,
        place: rules.UnitPlace | None,
        action: rules.UnitAction,
        new_kind: rules.UnitKind | None = None,
    ) -> None:
        """403 unless ``rules.unit_refusal`` lets ``user_id`` do ``action`` at ``place``."""
        refusal = rules.unit_refusal(
            await self._is_operator(user_id),
            (await self.get_person(user_id)).coordinates,
            place,
            action,
            new_kind,
        )
        if refusal is not None:
            raise forbidden(refusal, unit_id=place.unit_id if place else "")

    async def _sync_unit_rooms(self, before: Person, after: Person) -> None:
        """Bring one person's memberships of units' rooms (coordinators' spaces and
        announcement rooms) in step with what they coordinate and administer."""
        units = before.coordinates | before.reads_units | after.coordinates | after.reads_units
        if not units:
            return
        rooms = await self.store.run("parta_unit_rooms", db.unit_rooms_txn, units)
        want = rules.expected_unit_rooms(after, rooms)
        had = rules.expected_unit_rooms(before, rooms)
        # The space first: the announcement room lies inside it.
        order = {rules.RoomKind.UNIT_SPACE: 0}
        for room in sorted(rooms, key=lambda r: order.get(r.kind, 1)):
            if room.room_id in want:
                await self.structure.ensure_joined(room.room_id, room.kind, after.user_id)
            elif room.room_id in had:
                await self.structure.ensure_left(room.room_id, after.user_id)

    async def _sync_unit_power(self, unit_id: str) -> None:
        """Power levels in a unit's rooms: its coordinators post (100)."""
        coordinators = await self.store.run(
            "parta_unit_coordinators", db.unit_coordinators_txn, unit_id
        )
        for room in await self.store.run("parta_unit_rooms", db.unit_rooms_txn, [unit_id]):
            await self.structure.set_power_levels(room, dict.fromkeys(coordinators, 100))

    async def _school(self, school_id: str) -> db.School:
        school = await self.store.run("parta_get_school", db.get_school_txn, school_id)
        if school is None:
            raise not_found(msg.SCHOOL_NOT_FOUND, school_id=school_id)
        return school

    async def _class(self, school_id: str, class_id: str) -> db.SchoolClass:
        cls = await self.store.run("parta_get_class", db.get_class_txn, class_id)
        if cls is None or cls.school_id != school_id:
            raise not_found(msg.CLASS_NOT_FOUND, class_id=class_id)
        return cls

    async def school(self, school_id: str) -> db.School:
        """The school (404 when there is none)."""
        return await self._school(school_id)

    async def school_class(self, school_id: str, class_id: str) -> db.SchoolClass:
        """A class of the school (404 when there is none)."""
        return await self._class(school_id, class_id)

    async def administrators(self, school_id: str) -> list[str]:
        """The school's administrators, sorted."""
        return await self.store.run(
            "parta_school_admins", db.school_user_ids_txn, school_id, [Role.ADMINISTRATOR]
        )

    async def may_manage(self, user_id: str, school: db.School) -> bool:
        return await self._may_manage(user_id, school)

    async def require_manager(self, user_id: str, school: db.School) -> None:
        """403 unless ``user_id`` manages the school (the same check as the routes')."""
        await self._require_manager(user_id, school)

    async def classes_of_school(self, school_id: str) -> list[db.SchoolClass]:
        """Every class of the school, archived ones too."""
        return await self.store.run(
            "parta_list_classes", db.list_classes_txn, school_id, None, True
        )

    async def standings(self, user_ids: Iterable[str], school_id: str) -> dict[str, Standing]:
        """What each of these people is in the school (absent: nothing)."""
        people = await self.store.run("parta_people", db.get_people_txn, list(user_ids))
        out = {}
        for uid, person in people.items():
            standing = person.standing(school_id)
            if standing is not None:
                out[uid] = standing
        return out

    async def members_of_school(
        self, school_id: str, role: Role | None = None, class_id: str | None = None
    ) -> list[tuple[str, Standing]]:
        """The school's members that the members lists' filter keeps
        (:func:`rules.member_matches`), sorted by user ID, with their standing."""
        ids = await self.store.run("parta_school_users", db.school_user_ids_txn, school_id, None)
        people = await self.store.run("parta_people", db.get_people_txn, ids)
        out = []
        for uid in ids:
            standing = people[uid].standing(school_id)
            if standing is not None and rules.member_matches(standing, role, class_id):
                out.append((uid, standing))
        return out

    async def display_names(self, user_ids: Iterable[str]) -> dict[str, str]:
        """Synapse's profile names of local people (absent: none set)."""
        return await self.store.run("parta_display_names", db.display_names_txn, user_ids)

    def query_role(self, request: SynapseRequest) -> Role | None:
        """The ``role`` filter of a member list (400 naming an unknown role)."""
        role = query_string(request, "role")
        if role is not None and role not in {r.value for r in Role}:
            raise bad(msg.UNKNOWN_ROLE, r=role)
        return None if role is None else Role(role)

    async def account_exists(self, user_id: str) -> bool:
        return await self._account_exists(user_id)

    async def audit(
        self,
        actor: str,
        action: str,
        school_id: str | None,
        target: str | None,
        details: dict[str, Any],
    ) -> None:
        """Append to the audit log (``parta_audit``) for another part of the module (the
        bot's delegated requests): it writes there through the roster."""
        await self.store.run(
            "parta_audit", db.audit_txn, now_ms(), actor, action, school_id, target, details
        )

    async def _open(
        self, request: SynapseRequest, school_id: str, access: Access = "any"
    ) -> tuple[str, db.School]:
        """How a school's route opens: who asks (401), which school (404), and whether
        they may (403: ``manager`` — its administrators or coordinators or the operator;
        ``member`` — also anyone the school's roster names; ``any`` — the route decides)."""
        user_id = await requester_id(self.api, request)
        school = await self._school(school_id)
        await self._check_access(user_id, school, access)
        return user_id, school

    async def _open_body(
        self,
        request: SynapseRequest,
        school_id: str,
        schema: dict[str, Any],
        access: Access = "any",
    ) -> tuple[str, db.School, dict[str, Any]]:
        """:meth:`_open` for a route with a JSON body, checked against ``schema`` (400)
        before the school is looked up."""
        user_id = await requester_id(self.api, request)
        body = json_body(request, schema)
        school = await self._school(school_id)
        await self._check_access(user_id, school, access)
        return user_id, school, body

    async def _check_access(self, user_id: str, school: db.School, access: Access) -> None:
        if access == "manager":
            await self._require_manager(user_id, school)
        elif access == "member":
            await self._require_member_or_manager(user_id, school)

    async def _require_manager(self, user_id: str, school: db.School) -> None:
        if not await self._may_manage(user_id, school):
            raise forbidden(msg.NOT_SCHOOL_ADMIN)

    async def _require_member_or_manager(self, user_id: str, school: db.School) -> Standing | None:
        standing = (await self.get_person(user_id)).standing(school.school_id)
        if standing is None and not await self._may_manage(user_id, school):
            raise forbidden(msg.NOT_IN_SCHOOL)
        return standing

    async def _require_user(self, user_id: str) -> None:
        """A person who may go on a roster (a school's member or administrator, a unit's
        coordinator): an account of this server, not Parta's own nor the school bot's
        (they run the rooms; a school's erasure of them would redact what they sent)."""
        check_json(user_id, USER_ID_SCHEMA)
        if user_id == self.service or self._is_trusted_bot(user_id):
            raise bad(msg.SERVICE_ACCOUNT_NOT_A_PERSON, user_id=user_id)
        if not self.api.is_mine(user_id) or await self.api.check_user_exists(user_id) is None:
            raise not_found(msg.USER_NOT_FOUND, user_id=user_id)

    async def _account_exists(self, user_id: str) -> bool:
        """Whether the account is there, asked quietly: ``check_user_exists`` goes through
        Synapse's login lookup, which logs "Attempted to login as … but they do not exist"
        for every new person of an import. (A name differing only in case is still
        refused: ``check_username`` and ``register_user`` compare case-insensitively.)"""
        return await self.api.get_userinfo_by_id(user_id) is not None

    def _is_trusted_bot(self, user_id: str) -> bool:
        return self.api.is_mine(user_id) and (
            user_id.removeprefix("@").split(":", 1)[0] in self.config.trusted_bots
        )


def code_hash(code: str) -> str:
    """Sign-in codes are random (60 bits), so a fast hash is enough, as for tokens."""
    # UTF-8: whatever a person types as a password is hashed, Cyrillic included.
    return hashlib.sha256(normalize_code(code).encode("utf-8")).hexdigest()


def hash_password(password: str) -> str:
    return bcrypt.hashpw(password.encode("utf-8"), bcrypt.gensalt(rounds=10)).decode("ascii")


def standing_json(user_id: str, s: Standing) -> dict[str, Any]:
    return {
        "user_id": user_id,
        "roles": sorted(r.value for r in s.roles),
        "classes": sorted(s.teaches | s.learns_in),
        "teaches": sorted(s.teaches),
        "learns_in": sorted(s.learns_in),
        "homeroom_of": sorted(s.homeroom_of),
        "children": sorted(s.children),
    }
