"""Schools, classes and the roster: the REST API, and the callbacks that hold every
Matrix client to what the roster says.

Decisions live in ``policy`` (pure), SQL in ``roster_store``, Matrix rooms in
``structure``; this class wires them to Synapse.
"""

import hashlib
import hmac
import logging
import secrets
import time
import zoneinfo
from collections.abc import Awaitable, Callable, Iterable
from typing import TYPE_CHECKING, Any, Final, Literal, cast

import attrs
import bcrypt
from synapse.module_api import (
    NOT_SPAM,
    CachedFunction,
    EventBase,
    ModuleApi,
    StateMap,
    SynapseRequest,
    UserID,
    UserProfile,
)
from synapse.module_api.callbacks.ratelimit_callbacks import RatelimitOverride
from synapse.module_api.errors import Codes, SynapseError

from parta_common import events
from parta_common import messages as msg
from parta_common.messages import Message
from parta_common.roles import Role

from . import policy
from . import roster_store as db
from .concurrency import gather_limited
from .errors import conflict, forbidden, not_found
from .http import check_json, json_body, requester_id
from .parent_links import ParentLinks, open_parent_invites_txn, request_link_txn
from .policy import Person, RoomKind, SchoolPolicy, SchoolRoom, Standing
from .query import query_string
from .store import InvalidatedCache
from .structure import (
    ROOM_NAMES,
    Structure,
    class_state,
    room_kind_state,
    school_state,
)

if TYPE_CHECKING:
    from . import PartaModule

logger = logging.getLogger(__name__)

# How many people a batch brings into their rooms at once.
BATCH_CONCURRENCY: Final = 4
# How long a roster import's sign-in code works (it stops earlier, once the person has
# set a password of their own).
SIGN_IN_CODE_LIFETIME_MS: Final = 90 * 86400 * 1000

# Invitation codes: no 0/O, 1/I/L; 8 characters ≈ 40 bits, shown as XXXX-XXXX.
_CODE_ALPHABET: Final = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"

_ID = {"type": "string", "minLength": 1, "maxLength": 255}
_USER_ID = {"type": "string", "pattern": "^@[^:]+:.+$", "maxLength": 255}
_TEXT = {"type": "string", "maxLength": 500}
_POLICY_SCHEMA: Final = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "dm_policy": {"enum": list(policy.DM_POLICIES)},
        "students_may_create_group_chats": {"type": "boolean"},
        "federation_allowed_servers": {"type": "array", "items": _ID, "maxItems": 100},
    },
}
_SCHOOL_FIELDS: Final = {
    "name": {"type": "string", "minLength": 1, "maxLength": 255},
    "short_name": _TEXT,
    "address": _TEXT,
    "contacts": {
        "type": "object",
        "additionalProperties": {"type": "string", "maxLength": 255},
        "maxProperties": 20,
    },
    "logo_mxc": {"type": "string", "pattern": "^mxc://[^/]+/[^/]+$"},
    "timezone": {"type": "string", "minLength": 1, "maxLength": 64},
    "policy": _POLICY_SCHEMA,
}
CREATE_SCHOOL_SCHEMA: Final = {
    "type": "object",
    "additionalProperties": False,
    "required": ["name"],
    "properties": {
        **_SCHOOL_FIELDS,
        "unit_id": _ID,
        "external_id": _ID,
        "administrators": {"type": "array", "items": _USER_ID, "maxItems": 50},
    },
}
PATCH_SCHOOL_SCHEMA: Final = {
    "type": "object",
    "additionalProperties": False,
    "minProperties": 1,
    "properties": _SCHOOL_FIELDS,
}
CREATE_CLASS_SCHEMA: Final = {
    "type": "object",
    "additionalProperties": False,
    "required": ["grade", "letter", "year"],
    "properties": {
        "grade": {"type": "integer", "minimum": 1, "maximum": 11},
        "letter": {"type": "string", "minLength": 1, "maxLength": 8},
        "year": {"type": "string", "pattern": "^[0-9]{4}/[0-9]{2}$"},
        "homeroom": _USER_ID,
        "title": {"type": "string", "minLength": 1, "maxLength": 64},
        "external_id": _ID,
    },
}
PUT_MEMBER_SCHEMA: Final[dict[str, Any]] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["roles"],
    "properties": {
        "roles": {
            "type": "array",
            "items": {"enum": [r.value for r in Role if r is not Role.COORDINATOR]},
            "uniqueItems": True,
        },
        "classes": {"type": "array", "items": _ID, "uniqueItems": True, "maxItems": 60},
        "children": {"type": "array", "items": _USER_ID, "uniqueItems": True, "maxItems": 20},
        "homeroom_of": {"type": "array", "items": _ID, "uniqueItems": True, "maxItems": 10},
    },
}
BATCH_MEMBERS_SCHEMA: Final = {
    "type": "object",
    "additionalProperties": False,
    "required": ["members"],
    "properties": {
        "members": {
            "type": "array",
            "minItems": 1,
            "maxItems": 1000,
            "items": {
                **PUT_MEMBER_SCHEMA,
                "required": ["user_id", "roles"],
                "properties": {
                    **PUT_MEMBER_SCHEMA["properties"],
                    "user_id": _USER_ID,
                    # A roster import's new person: the module makes the account, which
                    # the person signs in to with this code; their rooms are joined when
                    # they first sign in.
                    "account": {
                        "type": "object",
                        "additionalProperties": False,
                        "required": ["display_name", "sign_in_code"],
                        "properties": {
                            "display_name": {"type": "string", "minLength": 1, "maxLength": 256},
                            "sign_in_code": {
                                "type": "string",
                                "pattern": "^[A-Za-z0-9-]{8,64}$",
                            },
                        },
                    },
                },
            },
        }
    },
}
CREATE_INVITE_SCHEMA: Final = {
    "type": "object",
    "additionalProperties": False,
    "required": ["role"],
    "properties": {
        "role": {"enum": ["administrator", "teacher", "student", "parent"]},
        "class_id": _ID,
        "child_user_id": _USER_ID,
        "max_uses": {"type": "integer", "minimum": 1, "maximum": 1000},
        "expires_in": {"type": "integer", "minimum": 1, "maximum": 366 * 86400},
    },
}
REGISTER_SCHEMA: Final = {
    "type": "object",
    "additionalProperties": False,
    "required": ["username", "password"],
    "properties": {
        "username": {"type": "string", "pattern": "^[a-z0-9._=\\-/]{1,64}$"},
        "password": {"type": "string", "maxLength": 512},
        "display_name": {"type": "string", "minLength": 1, "maxLength": 100},
    },
}
DISPLAY_NAME_SCHEMA: Final = {
    "type": "object",
    "additionalProperties": False,
    "required": ["display_name"],
    "properties": {"display_name": {"type": "string", "minLength": 1, "maxLength": 256}},
}
UNIT_SCHEMA: Final = {
    "type": "object",
    "additionalProperties": False,
    "required": ["kind", "name"],
    "properties": {
        "kind": {"enum": ["region", "municipality"]},
        "name": {"type": "string", "minLength": 1, "maxLength": 255},
        "parent_id": _ID,
    },
}
PARENT_INVITE_SCHEMA: Final = {
    "type": "object",
    "additionalProperties": False,
    "required": ["school_id"],
    "properties": {"school_id": _ID},
}

# The request schemas, published in the OpenAPI document under these names.
REQUEST_SCHEMAS: Final = {
    "CreateSchool": CREATE_SCHOOL_SCHEMA,
    "PatchSchool": PATCH_SCHOOL_SCHEMA,
    "CreateClass": CREATE_CLASS_SCHEMA,
    "PutMember": PUT_MEMBER_SCHEMA,
    "BatchMembers": BATCH_MEMBERS_SCHEMA,
    "CreateInvite": CREATE_INVITE_SCHEMA,
    "Register": REGISTER_SCHEMA,
    "CreateUnit": UNIT_SCHEMA,
    "ParentInvite": PARENT_INVITE_SCHEMA,
    "DisplayName": DISPLAY_NAME_SCHEMA,
}

_INVITE_REFUSALS: Final[dict[str, tuple[int, Message]]] = {
    "unknown": (404, msg.INVITE_UNKNOWN),
    "expired": (403, msg.INVITE_EXPIRED),
    "revoked": (403, msg.INVITE_REVOKED),
    "used_up": (403, msg.INVITE_USED_UP),
}


def normalize_code(code: str) -> str:
    return "".join(c for c in code.upper() if c.isalnum())


def format_code(code: str) -> str:
    return f"{code[:4]}-{code[4:]}" if len(code) == 8 else code


def _now_ms() -> int:
    return int(time.time() * 1000)


def class_title(grade: int, letter: str) -> str:
    return f"{grade}{letter.upper()}"


def _bad(message: Message, **kwargs: object) -> SynapseError:
    return SynapseError(400, message.format(**kwargs), Codes.INVALID_PARAM)


Verdict = Literal["NOT_SPAM"] | tuple[Codes, dict[str, Any]]


def _refuse(message: Message, **kwargs: object) -> tuple[Codes, dict[str, Any]]:
    """A spam-checker refusal whose ``error`` says why, in Russian and English."""
    return Codes.FORBIDDEN, {"error": message.format(**kwargs)}


class Roster:
    """The school model: API under ``/schools``, ``/units``, ``/invites``, ``/me``."""

    # (method, path pattern under BASE_PATH, handler name)
    ROUTES: Final = (
        ("GET", "/me", "get_me"),
        ("POST", "/me/parent_invite", "post_parent_invite"),
        ("POST", "/units", "post_unit"),
        ("PUT", "/units/([^/]+)/coordinators/([^/]+)", "put_coordinator"),
        ("POST", "/schools", "post_school"),
        ("GET", "/schools", "get_schools"),
        ("GET", "/schools/by_external_id/([^/]+)", "get_school_by_external_id"),
        ("GET", "/schools/([^/]+)", "get_school"),
        ("PATCH", "/schools/([^/]+)", "patch_school"),
        ("POST", "/schools/([^/]+)/classes", "post_class"),
        ("GET", "/schools/([^/]+)/classes", "get_classes"),
        ("GET", "/schools/([^/]+)/classes/([^/]+)", "get_class"),
        ("POST", "/schools/([^/]+)/classes/([^/]+)/archive", "post_archive"),
        ("GET", "/schools/([^/]+)/members", "get_members"),
        ("POST", "/schools/([^/]+)/members/batch", "post_members_batch"),
        ("PUT", "/schools/([^/]+)/members/([^/]+)", "put_member"),
        ("DELETE", "/schools/([^/]+)/members/([^/]+)", "delete_member"),
        ("POST", "/schools/([^/]+)/members/([^/]+)/sign_in_code", "post_sign_in_code"),
        ("PUT", "/schools/([^/]+)/members/([^/]+)/display_name", "put_display_name"),
        ("POST", "/schools/([^/]+)/invites", "post_invite"),
        ("GET", "/schools/([^/]+)/invites", "get_invites"),
        ("DELETE", "/schools/([^/]+)/invites/([^/]+)", "delete_invite"),
        ("GET", "/invites/([^/]+)", "get_invite"),
        ("POST", "/invites/([^/]+)/redeem", "post_redeem"),
        ("POST", "/invites/([^/]+)/register", "post_register"),
    )

    def __init__(self, module: "PartaModule"):
        self.module = module
        self.api: ModuleApi = module.api
        self.config = module.config
        self.store = module.store
        self.service = module.service_user_id
        # Needed by Synapse's @cached on methods.
        self.server_name = self.api.server_name
        self.structure = Structure(self.api, self.service)

        api = self.api
        self._rooms = InvalidatedCache("parta_rooms", self._load_room, 100000)
        self._people = InvalidatedCache("parta_people", self._load_person, 50000)
        self._school_policies = InvalidatedCache("parta_policies", self._load_policy, 10000)
        for cache in (self._rooms, self._people, self._school_policies):
            api.register_cached_function(cast(CachedFunction[Any], cache))
        api.register_spam_checker_callbacks(
            user_may_create_room=self.user_may_create_room,
            user_may_invite=self.user_may_invite,
            user_may_join_room=self.user_may_join_room,
            check_username_for_spam=self.check_username_for_spam,
        )
        api.register_third_party_rules_callbacks(check_event_allowed=self.check_event_allowed)
        api.register_ratelimit_callbacks(
            get_ratelimit_override_for_user=self.ratelimit_override,
        )
        api.register_password_auth_provider_callbacks(
            auth_checkers={("m.login.password", ("password",)): self.check_password},
        )
        api.register_account_validity_callbacks(on_user_login=self.on_user_login)
        if api.worker_name is None:
            api.delayed_background_call(0, self._ensure_service_account, desc="parta_service")

        for method, pattern, handler in self.ROUTES:
            module.resource.route(method, pattern, getattr(self, handler))
        # Parent links from a student's own code wait for the school (issue 17).
        self.parent_links = ParentLinks(self)
        for method, pattern, handler in ParentLinks.ROUTES:
            module.resource.route(method, pattern, getattr(self.parent_links, handler))

    # -- start-up ---------------------------------------------------------------

    async def _ensure_service_account(self) -> None:
        if not await self._account_exists(self.service):
            await self.api.register_user(
                self.config.service_localpart, self.config.service_displayname
            )
            logger.info("Created Parta's service account %s", self.service)

    async def ratelimit_override(self, user_id: str, limiter_name: str) -> RatelimitOverride | None:
        if user_id == self.service:
            # (0 would mean "nothing allowed" for a module override, not "unlimited".)
            return RatelimitOverride(per_second=1e6, burst_count=1_000_000)
        return None

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

    async def _policies(self, *people: Person) -> dict[str, SchoolPolicy]:
        ids = {s for p in people for s in p.schools}
        return {s: await self.get_policy(s) for s in ids}

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
        if standing is None or not policy.belongs_in(standing, room):
            return None
        power = policy.power_in(standing, room) or 0
        if power >= 100:
            return Role.ADMINISTRATOR
        if power >= 50:
            return Role.TEACHER
        if Role.STUDENT in standing.roles and (
            room.kind not in policy.CLASS_KINDS or room.class_id in standing.learns_in
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
            covered = await self.store.run(
                "parta_units_under", db.units_under_txn, person.coordinates
            )
            return school.unit_id in covered
        return False

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

    async def may_manage(self, user_id: str, school: db.School) -> bool:
        return await self._may_manage(user_id, school)

    async def add_parent(self, school_id: str, parent: str, child: str, actor: str) -> Standing:
        """Make ``parent`` a parent of ``child`` (a confirmed parent link)."""
        return await self._update_member(
            await self._school(school_id),
            parent,
            actor,
            add_roles={Role.PARENT},
            add_children={child},
        )

    async def _require_manager(self, user_id: str, school: db.School) -> None:
        if not await self._may_manage(user_id, school):
            raise forbidden(msg.NOT_SCHOOL_ADMIN)

    async def _require_member_or_manager(self, user_id: str, school: db.School) -> Standing | None:
        standing = (await self.get_person(user_id)).standing(school.school_id)
        if standing is None and not await self._may_manage(user_id, school):
            raise forbidden(msg.NOT_IN_SCHOOL)
        return standing

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
            _now_ms(),
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
            "parta_add_coordinator", db.add_coordinator_txn, unit_id, target, user_id, _now_ms()
        )
        await self._forget([target])
        if unit["space_room_id"]:
            await self.structure.ensure_joined(unit["space_room_id"], RoomKind.UNIT_SPACE, target)
        return 200, {"unit_id": unit_id, "user_id": target}

    async def _require_user(self, user_id: str) -> None:
        check_json(user_id, _USER_ID)
        if not self.api.is_mine(user_id) or await self.api.check_user_exists(user_id) is None:
            raise not_found(msg.USER_NOT_FOUND, user_id=user_id)

    # -- schools ----------------------------------------------------------------

    def _check_timezone(self, tz: str) -> None:
        try:
            zoneinfo.ZoneInfo(tz)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise _bad(msg.BAD_TIMEZONE, tz=tz) from None

    def _check_policy(self, raw: dict[str, Any] | None, base: SchoolPolicy) -> SchoolPolicy:
        if raw is None:
            return base
        merged = {**base.to_json(), **raw}
        new = SchoolPolicy.from_json(merged)
        reason = policy.check_policy(new, self.config.policy)
        if reason is not None:
            raise SynapseError(403, msg.POLICY_REFUSED.format(reason=reason), Codes.FORBIDDEN)
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
        if not await self._is_operator(user_id):
            person = await self.get_person(user_id)
            covered = await self.store.run(
                "parta_units_under", db.units_under_txn, person.coordinates
            )
            if unit_id is None or unit_id not in covered:
                raise forbidden(msg.NOT_OPERATOR)
        unit = None
        if unit_id is not None:
            unit = await self.store.run("parta_get_unit", db.get_unit_txn, unit_id)
            if unit is None:
                raise not_found(msg.UNIT_NOT_FOUND, unit_id=unit_id)
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
            created_ts=_now_ms(),
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

    def _acl_state(self, school_policy: SchoolPolicy) -> dict[str, Any]:
        """Server ACL of a school room: this server and the servers the school allows, so
        other servers' events are refused by every server in the room, not only here."""
        return {
            "type": "m.room.server_acl",
            "state_key": "",
            "content": {
                "allow": [self.api.server_name, *school_policy.federation_allowed_servers],
                "deny": [],
                "allow_ip_literals": False,
            },
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
            "rooms": rooms,
            "created_ts": school.created_ts,
        }

    async def get_schools(self, request: SynapseRequest) -> tuple[int, dict[str, Any]]:
        user_id = await requester_id(self.api, request)
        ids: list[str] | None = None
        if not await self._is_operator(user_id):
            ids = sorted((await self.get_person(user_id)).schools)
        schools = await self.store.run("parta_list_schools", db.list_schools_txn, ids)
        return 200, {"schools": [await self._school_json(s) for s in schools]}

    async def get_school(
        self, request: SynapseRequest, school_id: str
    ) -> tuple[int, dict[str, Any]]:
        user_id = await requester_id(self.api, request)
        school = await self._school(school_id)
        await self._require_member_or_manager(user_id, school)
        return 200, await self._school_json(school)

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
        return 200, await self._school_json(school)

    async def patch_school(
        self, request: SynapseRequest, school_id: str
    ) -> tuple[int, dict[str, Any]]:
        user_id = await requester_id(self.api, request)
        body = json_body(request, PATCH_SCHOOL_SCHEMA)
        school = await self._school(school_id)
        await self._require_manager(user_id, school)
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
        await self.store.run(
            "parta_update_school", db.update_school_txn, updated, user_id, _now_ms()
        )
        await self.api.invalidate_cache(
            cast(CachedFunction[Any], self._school_policies), (school_id,)
        )
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

    # -- classes ----------------------------------------------------------------

    async def post_class(
        self, request: SynapseRequest, school_id: str
    ) -> tuple[int, dict[str, Any]]:
        user_id = await requester_id(self.api, request)
        body = json_body(request, CREATE_CLASS_SCHEMA)
        school = await self._school(school_id)
        await self._require_manager(user_id, school)
        letter = body["letter"].strip().upper()
        title = body.get("title") or class_title(body["grade"], letter)
        existing = await self.store.run(
            "parta_list_classes", db.list_classes_txn, school_id, body["year"], True
        )
        for other in existing:
            if (other.grade, other.letter) == (body["grade"], letter):
                raise conflict(msg.CLASS_EXISTS, title=title, year=body["year"])
            if body.get("external_id") and other.external_id == body["external_id"]:
                raise conflict(msg.EXTERNAL_ID_TAKEN, external_id=body["external_id"])
        homeroom = body.get("homeroom")
        if homeroom is not None:
            standing = (await self.get_person(homeroom)).standing(school_id)
            if standing is None or not standing.is_staff:
                raise _bad(msg.NOT_SCHOOL_STAFF)
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
            created_ts=_now_ms(),
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
            allow=staff,
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
        school_space = school_rooms.get(RoomKind.SCHOOL_SPACE.value)
        if school_space:
            await self.structure.link_child(school_space, space, order=f"{cls.grade:02d}{letter}")
        await self.store.run("parta_insert_class", db.insert_class_txn, cls, rooms, user_id)
        await self._forget(room_ids=rooms.values())
        if homeroom is not None:
            await self._update_member(school, homeroom, user_id, add_homeroom={cls.class_id})
        return 201, await self._class_json(cls)

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
        user_id = await requester_id(self.api, request)
        school = await self._school(school_id)
        await self._require_member_or_manager(user_id, school)
        year = _query(request, "year")
        include_archived = _query(request, "include_archived") in ("true", "1")
        classes = await self.store.run(
            "parta_list_classes", db.list_classes_txn, school_id, year, include_archived
        )
        return 200, {"classes": [await self._class_json(c) for c in classes]}

    async def get_class(
        self, request: SynapseRequest, school_id: str, class_id: str
    ) -> tuple[int, dict[str, Any]]:
        user_id = await requester_id(self.api, request)
        school = await self._school(school_id)
        await self._require_member_or_manager(user_id, school)
        return 200, await self._class_json(await self._class(school_id, class_id))

    async def post_archive(
        self, request: SynapseRequest, school_id: str, class_id: str
    ) -> tuple[int, dict[str, Any]]:
        user_id = await requester_id(self.api, request)
        school = await self._school(school_id)
        await self._require_manager(user_id, school)
        cls = await self._class(school_id, class_id)
        if not cls.archived:
            await self.store.run(
                "parta_archive_class", db.archive_class_txn, school_id, class_id, user_id, _now_ms()
            )
        rooms = await self.store.run("parta_class_rooms", db.rooms_of_class_txn, class_id)
        await self._forget(room_ids=rooms.values())
        for room_id in rooms.values():
            room = await self.get_room(room_id)
            if room is not None:
                await self.structure.set_power_levels(room, {})
        return 200, await self._class_json(cls)

    # -- members ----------------------------------------------------------------

    async def get_members(
        self, request: SynapseRequest, school_id: str
    ) -> tuple[int, dict[str, Any]]:
        user_id = await requester_id(self.api, request)
        school = await self._school(school_id)
        standing = await self._require_member_or_manager(user_id, school)
        if not await self._may_manage(user_id, school) and (
            standing is None or not standing.is_staff
        ):
            raise forbidden(msg.NOT_SCHOOL_STAFF)
        role = _query(request, "role")
        class_id = _query(request, "class_id")
        if role is not None and role not in {r.value for r in Role}:
            raise _bad(msg.Message(ru="Неизвестная роль: {r}", en="Unknown role: {r}"), r=role)
        ids = await self.store.run("parta_school_users", db.school_user_ids_txn, school_id, None)
        people = await self.store.run("parta_people", db.get_people_txn, ids)
        waiting = await self.store.run("parta_not_signed_in", db.not_signed_in_txn, ids)
        out = []
        for uid in ids:
            s = people[uid].standing(school_id)
            if s is None:
                continue
            if role is not None and Role(role) not in s.roles:
                continue
            if class_id is not None and class_id not in (
                s.teaches | s.learns_in | s.homeroom_of | s.children_classes
            ):
                continue
            out.append(
                {**_standing_json(uid, s), **({"signed_in": False} if uid in waiting else {})}
            )
        return 200, {"members": out}

    async def put_member(
        self, request: SynapseRequest, school_id: str, target: str
    ) -> tuple[int, dict[str, Any]]:
        user_id = await requester_id(self.api, request)
        body = json_body(request, PUT_MEMBER_SCHEMA)
        school = await self._school(school_id)
        await self._require_user(target)
        roles = {Role(r) for r in body["roles"]}
        class_ids = set(body.get("classes", []))
        children = set(body.get("children", []))
        homeroom_of = set(body.get("homeroom_of", []))
        if not await self._may_manage(user_id, school):
            # A teacher: only their own students, only within their own classes.
            refusal = policy.teacher_may_put_member(
                (await self.get_person(user_id)).standing(school_id),
                await self.get_person(target),
                school_id,
                frozenset(roles),
                frozenset(class_ids),
                other=bool(children or homeroom_of),
            )
            if refusal is None and await self.api.is_user_admin(target):
                refusal = policy.TEACHER_CHANGES_OWN_STUDENTS
            if refusal is not None:
                raise forbidden(refusal)
        classes = await self._validate_member(school, roles, class_ids, children, homeroom_of)
        standing = await self._put_member(
            school, target, roles, classes, children, homeroom_of, user_id
        )
        return 200, _standing_json(target, standing)

    async def post_members_batch(
        self, request: SynapseRequest, school_id: str
    ) -> tuple[int, dict[str, Any]]:
        """Many people at once (an enrolment, a roster sync): all checked first, written in
        one transaction, then Matrix brought in step for each."""
        user_id = await requester_id(self.api, request)
        body = json_body(request, BATCH_MEMBERS_SCHEMA)
        school = await self._school(school_id)
        await self._require_manager(user_id, school)
        entries = body["members"]
        targets = [e["user_id"] for e in entries]
        if len(set(targets)) != len(targets):
            raise _bad(msg.BATCH_DUPLICATE)
        all_classes = {
            c.class_id: c
            for c in await self.store.run(
                "parta_list_classes", db.list_classes_txn, school_id, None, True
            )
        }
        batch_students = frozenset(e["user_id"] for e in entries if "student" in e["roles"])
        plan: list[tuple[str, set[Role], dict[str, Role], set[str], set[str]]] = []
        new_accounts: list[tuple[str, str, str]] = []  # (user_id, display name, code hash)
        for index, entry in enumerate(entries):
            try:
                account = entry.get("account")
                if account is None:
                    await self._require_user(entry["user_id"])
                elif await self._account_to_make(entry["user_id"], account["sign_in_code"]):
                    new_accounts.append(
                        (
                            entry["user_id"],
                            account["display_name"],
                            _code_hash(account["sign_in_code"]),
                        )
                    )
                roles = {Role(r) for r in entry["roles"]}
                children = set(entry.get("children", []))
                homeroom_of = set(entry.get("homeroom_of", []))
                classes = await self._validate_member(
                    school,
                    roles,
                    set(entry.get("classes", [])),
                    children,
                    homeroom_of,
                    all_classes,
                    batch_students,
                )
            except SynapseError as e:
                raise SynapseError(
                    e.code, f"members/{index} ({entry['user_id']}): {e.msg}", e.errcode
                ) from None
            plan.append((entry["user_id"], roles, classes, children, homeroom_of))
        # Everything is checked: make the accounts (the code first, so a batch sent
        # again after a crash finds its own half-made accounts), then the roster.
        await gather_limited(
            [self._make_account(uid, user_id, name, h) for uid, name, h in new_accounts],
            BATCH_CONCURRENCY,
        )
        before = await self.store.run("parta_people", db.get_people_txn, targets)
        await self.store.run(
            "parta_put_members", _put_members_txn, school_id, plan, user_id, _now_ms()
        )
        await self._forget(targets)
        after = await self.store.run("parta_people", db.get_people_txn, targets)
        rooms = await self.store.run("parta_school_rooms_full", db.school_rooms_txn, school_id)
        moved: set[str] = set()
        for target in targets:
            b = before[target].standing(school_id)
            a = after[target].standing(school_id)
            if b is not None and (a is None or a.learns_in != b.learns_in):
                moved.add(target)

        waiting = await self.store.run("parta_not_signed_in", db.not_signed_in_txn, targets)

        # A few people at a time: Synapse persists events of different rooms in parallel.
        def reconcile(target: str) -> Callable[[], Awaitable[bool]]:
            return lambda: self._reconcile(
                school_id,
                before[target],
                after[target],
                rooms=rooms,
                sync_power=False,
                signed_in=target not in waiting,
            )

        results = await gather_limited([reconcile(t) for t in targets], BATCH_CONCURRENCY)
        staff_changed = any(results)
        for child in sorted(moved):
            for parent in await self.store.run(
                "parta_parents_of", db.parents_of_txn, school_id, child
            ):
                await self._forget([parent])
                now = await self.get_person(parent)
                await self._reconcile(school_id, now, now, full=True, rooms=rooms)
        if staff_changed:
            await self._sync_power_levels(school_id, rooms)
        made = {user_id for user_id, _, _ in new_accounts}
        return 200, {
            "members": [
                {
                    **_standing_json(t, after[t].standing(school_id) or Standing(school_id)),
                    **({"account_created": True} if t in made else {}),
                    **({"signed_in": False} if t in waiting else {}),
                }
                for t in targets
            ]
        }

    async def _account_to_make(self, user_id: str, code: str) -> bool:
        """Whether an import's new person needs their account made (False: it is there,
        made by an earlier try of the same import). 409 if the name is someone else's."""
        check_json(user_id, _USER_ID)
        if not self.api.is_mine(user_id):
            raise not_found(msg.USER_NOT_FOUND, user_id=user_id)
        recorded = await self.store.run("parta_get_sign_in", db.get_sign_in_code_txn, user_id)
        exists = await self._account_exists(user_id)
        if recorded is not None and recorded[0] == _code_hash(code):
            return not exists
        if exists or recorded is not None:
            raise SynapseError(409, msg.USERNAME_TAKEN.format(user_id=user_id), Codes.USER_IN_USE)
        # 400 M_INVALID_USERNAME for a name Synapse would not take.
        await self.api.check_username(user_id[1:].split(":", 1)[0])
        return True

    def _make_account(
        self, user_id: str, actor: str, display_name: str, code_hash: str
    ) -> Callable[[], Awaitable[None]]:
        async def make() -> None:
            now = _now_ms()
            ours = await self.store.run(
                "parta_put_sign_in",
                db.put_sign_in_code_txn,
                user_id,
                code_hash,
                actor,
                now,
                now + SIGN_IN_CODE_LIFETIME_MS,
            )
            if not ours:
                raise SynapseError(
                    409, msg.USERNAME_TAKEN.format(user_id=user_id), Codes.USER_IN_USE
                )
            if not await self._account_exists(user_id):
                await self.api.register_user(user_id[1:].split(":", 1)[0], display_name)

        return make

    async def _account_exists(self, user_id: str) -> bool:
        """Whether the account is there, asked quietly: ``check_user_exists`` goes through
        Synapse's login lookup, which logs "Attempted to login as … but they do not exist"
        for every new person of an import. (A name differing only in case is still
        refused: ``check_username`` and ``register_user`` compare case-insensitively.)"""
        return await self.api.get_userinfo_by_id(user_id) is not None

    async def _validate_member(
        self,
        school: db.School,
        roles: set[Role],
        class_ids: set[str],
        children: set[str],
        homeroom_of: set[str],
        all_classes: dict[str, db.SchoolClass] | None = None,
        batch_students: frozenset[str] = frozenset(),
    ) -> dict[str, Role]:
        """Classes → role in that class; 400 with the reason when the body is wrong.

        ``batch_students``: people a batch makes students, who may be others' children.
        """
        if all_classes is None:
            all_classes = {
                c.class_id: c
                for c in await self.store.run(
                    "parta_list_classes", db.list_classes_txn, school.school_id, None, True
                )
            }
        for class_id in class_ids | homeroom_of:
            cls = all_classes.get(class_id)
            if cls is None:
                raise _bad(msg.CLASS_NOT_FOUND, class_id=class_id)
            if cls.archived:
                raise _bad(msg.CLASS_ARCHIVED, class_id=class_id)
        if homeroom_of and not roles & {Role.TEACHER, Role.ADMINISTRATOR}:
            raise _bad(msg.CLASSES_NEED_ROLE)
        if Role.STUDENT in roles:
            if Role.TEACHER in roles:
                # One person, both learning and teaching in one school: ambiguous classes.
                raise _bad(msg.CLASSES_NEED_ROLE)
            if len(class_ids) != 1:
                raise _bad(msg.ROLE_NEEDS_CLASS)
            return {next(iter(class_ids)): Role.STUDENT}
        if class_ids and Role.TEACHER not in roles:
            raise _bad(msg.CLASSES_NEED_ROLE)
        if Role.PARENT in roles and not children:
            raise _bad(msg.PARENT_NEEDS_CHILD)
        if children and Role.PARENT not in roles:
            raise _bad(msg.PARENT_NEEDS_CHILD)
        if children - batch_students:
            people = await self.store.run(
                "parta_people", db.get_people_txn, children - batch_students
            )
            for child in children - batch_students:
                s = people[child].standing(school.school_id)
                if s is None or Role.STUDENT not in s.roles:
                    raise _bad(msg.CHILD_NOT_STUDENT, user_id=child)
        return dict.fromkeys(class_ids, Role.TEACHER)

    async def delete_member(
        self, request: SynapseRequest, school_id: str, target: str
    ) -> tuple[int, dict[str, Any]]:
        user_id = await requester_id(self.api, request)
        school = await self._school(school_id)
        await self._require_manager(user_id, school)
        before = await self.get_person(target)
        if before.standing(school_id) is None:
            # Never answer "removed" for someone who was not there (a mistyped ID).
            raise not_found(msg.NOT_A_MEMBER, user_id=target)
        parents = await self.store.run("parta_parents_of", db.parents_of_txn, school_id, target)
        await self.store.run(
            "parta_remove_member", db.remove_member_txn, school_id, target, user_id, _now_ms()
        )
        await self._forget([target, *parents])
        await self._reconcile(school_id, before, await self.get_person(target))
        for parent in parents:
            # Their child left: they may no longer belong in the class's parents chat.
            now = await self.get_person(parent)
            await self._reconcile(school_id, now, now, full=True)
        return 200, {"user_id": target, "removed": True}

    async def _update_member(
        self,
        school: db.School,
        target: str,
        actor: str,
        add_roles: Iterable[Role] = (),
        add_classes: dict[str, Role] | None = None,
        add_children: Iterable[str] = (),
        add_homeroom: Iterable[str] = (),
        replace_student_class: bool = False,
    ) -> Standing:
        """Add to what ``target`` already is in this school (invites, homerooms)."""
        current = (await self.get_person(target)).standing(school.school_id) or Standing(
            school.school_id
        )
        classes: dict[str, Role] = dict.fromkeys(current.teaches, Role.TEACHER)
        if not replace_student_class:
            classes.update(dict.fromkeys(current.learns_in, Role.STUDENT))
        classes.update(add_classes or {})
        return await self._put_member(
            school,
            target,
            set(current.roles) | set(add_roles),
            classes,
            set(current.children) | set(add_children),
            set(current.homeroom_of) | set(add_homeroom),
            actor,
        )

    async def _put_member(
        self,
        school: db.School,
        target: str,
        roles: set[Role],
        classes: dict[str, Role],
        children: set[str],
        homeroom_of: set[str],
        actor: str,
    ) -> Standing:
        before = await self.get_person(target)
        await self.store.run(
            "parta_put_member",
            db.put_member_txn,
            school.school_id,
            target,
            roles,
            classes,
            children,
            homeroom_of,
            actor,
            _now_ms(),
        )
        await self._forget([target])
        after = await self.get_person(target)
        await self._reconcile(school.school_id, before, after)
        # A student who moved class takes their parents' parents chat along.
        b = before.standing(school.school_id)
        a = after.standing(school.school_id)
        if (b.learns_in if b else frozenset()) != (a.learns_in if a else frozenset()):
            parents = await self.store.run(
                "parta_parents_of", db.parents_of_txn, school.school_id, target
            )
            for parent in parents:
                p_before = await self.get_person(parent)
                await self._forget([parent])
                await self._reconcile(
                    school.school_id, p_before, await self.get_person(parent), full=True
                )
        return a or Standing(school.school_id)

    async def _reconcile(
        self,
        school_id: str,
        before: Person,
        after: Person,
        full: bool = False,
        rooms: list[SchoolRoom] | None = None,
        sync_power: bool = True,
        signed_in: bool | None = None,
    ) -> bool:
        """Bring Matrix in step with the roster for one person in one school.

        Returns whether the person's staff standing was or is involved (power levels
        depend on it); with ``sync_power`` they are brought in step here too. Someone an
        import made an account for, who has not signed in yet (``signed_in`` False, read
        when None), joins no rooms now: their first sign-in does that (``on_user_login``).
        """
        if rooms is None:
            rooms = await self.store.run("parta_school_rooms_full", db.school_rooms_txn, school_id)
        b = before.standing(school_id)
        a = after.standing(school_id)
        if signed_in is None:
            signed_in = not await self.store.run(
                "parta_not_signed_in", db.not_signed_in_txn, [after.user_id]
            )
        if not signed_in:
            staff = bool(b and b.is_staff) or bool(a and a.is_staff)
            if staff and sync_power:
                await self._sync_power_levels(school_id, rooms)
            return staff
        expected = policy.expected_rooms(after, rooms)
        had = set() if full else set(policy.expected_rooms(before, rooms))
        # Spaces first: restricted rooms need the space membership to join.
        order = {RoomKind.SCHOOL_SPACE: 0, RoomKind.CLASS_SPACE: 1}
        for room in sorted(rooms, key=lambda r: order.get(r.kind, 2)):
            if room.room_id in expected:
                await self.structure.ensure_joined(
                    room.room_id,
                    room.kind,
                    after.user_id,
                    probably_absent=not full and room.room_id not in had,
                )
            elif room.archived:
                continue
            else:
                was_in = full or (b is not None and policy.belongs_in(b, room))
                now_in = a is not None and policy.belongs_in(a, room)
                if was_in and not now_in:
                    await self.structure.ensure_left(room.room_id, after.user_id)
        # Power levels change only when someone's staff standing changed.
        staff = bool(b and b.is_staff) or bool(a and a.is_staff)
        if staff and sync_power:
            await self._sync_power_levels(school_id, rooms)
        return staff

    async def _sync_power_levels(self, school_id: str, rooms: list[SchoolRoom]) -> None:
        staff = await self.store.run(
            "parta_school_users",
            db.school_user_ids_txn,
            school_id,
            [Role.ADMINISTRATOR, Role.TEACHER],
        )
        people = await self.store.run("parta_people", db.get_people_txn, staff)
        for room in rooms:
            if room.archived:
                continue
            users: dict[str, int] = {}
            for uid in staff:
                power = policy.power_in(people[uid].standing(school_id), room)
                if power:
                    users[uid] = power
            await self.structure.set_power_levels(room, users)

    # -- invitations ------------------------------------------------------------

    async def post_invite(
        self, request: SynapseRequest, school_id: str
    ) -> tuple[int, dict[str, Any]]:
        user_id = await requester_id(self.api, request)
        body = json_body(request, CREATE_INVITE_SCHEMA)
        school = await self._school(school_id)
        role = Role(body["role"])
        class_id = body.get("class_id")
        child = body.get("child_user_id")
        if not await self._may_manage(user_id, school):
            me = (await self.get_person(user_id)).standing(school_id)
            own = (me.teaches | me.homeroom_of) if me else frozenset()
            if (
                me is None
                or Role.TEACHER not in me.roles
                or role is not Role.STUDENT
                or (class_id not in own)
            ):
                raise forbidden(msg.TEACHER_OWN_CLASSES)
        if class_id is not None:
            cls = await self._class(school_id, class_id)
            if cls.archived:
                raise _bad(msg.CLASS_ARCHIVED, class_id=class_id)
        if role is Role.STUDENT and class_id is None:
            raise _bad(msg.ROLE_NEEDS_CLASS)
        if class_id is not None and role not in (Role.STUDENT, Role.TEACHER):
            raise _bad(msg.CLASSES_NEED_ROLE)
        if role is Role.PARENT:
            if child is None:
                raise _bad(msg.PARENT_NEEDS_CHILD)
            cs = (await self.get_person(child)).standing(school_id)
            if cs is None or Role.STUDENT not in cs.roles:
                raise _bad(msg.CHILD_NOT_STUDENT, user_id=child)
        elif child is not None:
            raise _bad(msg.PARENT_NEEDS_CHILD)
        invite = await self._create_invite(
            school_id,
            role,
            class_id,
            child,
            user_id,
            body.get("max_uses", 1),
            body.get("expires_in", self.config.invite_default_ttl_days * 86400),
        )
        return 201, self._invite_json(invite)

    async def _create_invite(
        self,
        school_id: str,
        role: Role,
        class_id: str | None,
        child: str | None,
        actor: str,
        max_uses: int,
        expires_in: int,
    ) -> db.Invite:
        now = _now_ms()
        invite = db.Invite(
            code="".join(secrets.choice(_CODE_ALPHABET) for _ in range(8)),
            school_id=school_id,
            role=role,
            class_id=class_id,
            child_user_id=child,
            created_by=actor,
            created_ts=now,
            expires_ts=now + expires_in * 1000,
            max_uses=max_uses,
            uses=0,
            revoked=False,
        )
        await self.store.run("parta_insert_invite", db.insert_invite_txn, invite)
        return invite

    def _invite_json(self, invite: db.Invite) -> dict[str, Any]:
        base = (self.config.invite_link_base or self.api.public_baseurl).rstrip("/")
        code = format_code(invite.code)
        return {
            "code": code,
            "link": f"{base}/_synapse/client/parta/join/{code}",
            "school_id": invite.school_id,
            "role": invite.role.value,
            "class_id": invite.class_id,
            "child_user_id": invite.child_user_id,
            "created_by": invite.created_by,
            "expires_at": invite.expires_ts,
            "max_uses": invite.max_uses,
            "uses": invite.uses,
            "revoked": invite.revoked,
        }

    async def get_invites(
        self, request: SynapseRequest, school_id: str
    ) -> tuple[int, dict[str, Any]]:
        user_id = await requester_id(self.api, request)
        school = await self._school(school_id)
        created_by: str | None = None
        if not await self._may_manage(user_id, school):
            standing = (await self.get_person(user_id)).standing(school_id)
            if standing is None or not standing.is_staff:
                raise forbidden(msg.NOT_SCHOOL_STAFF)
            created_by = user_id
        invites = await self.store.run(
            "parta_list_invites", db.list_invites_txn, school_id, created_by
        )
        return 200, {"invites": [self._invite_json(i) for i in invites]}

    async def delete_invite(
        self, request: SynapseRequest, school_id: str, code: str
    ) -> tuple[int, dict[str, Any]]:
        user_id = await requester_id(self.api, request)
        school = await self._school(school_id)
        invite = await self.store.run("parta_get_invite", db.get_invite_txn, normalize_code(code))
        if invite is None or invite.school_id != school_id:
            raise not_found(msg.INVITE_UNKNOWN)
        if invite.created_by != user_id and not await self._may_manage(user_id, school):
            raise forbidden(msg.NOT_SCHOOL_ADMIN)
        await self.store.run(
            "parta_revoke_invite", db.revoke_invite_txn, invite.code, user_id, _now_ms()
        )
        return 200, self._invite_json(attrs.evolve(invite, revoked=True))

    async def _usable_invite(self, code: str) -> db.Invite:
        invite = await self.store.run("parta_get_invite", db.get_invite_txn, normalize_code(code))
        if invite is None:
            raise not_found(msg.INVITE_UNKNOWN)
        reason = None
        if invite.revoked:
            reason = "revoked"
        elif invite.expires_ts <= _now_ms():
            reason = "expired"
        elif invite.uses >= invite.max_uses:
            reason = "used_up"
        if reason is not None:
            status, message = _INVITE_REFUSALS[reason]
            raise SynapseError(status, message.format(), Codes.FORBIDDEN)
        return invite

    async def get_invite(self, request: SynapseRequest, code: str) -> tuple[int, dict[str, Any]]:
        invite = await self._usable_invite(code)
        school = await self._school(invite.school_id)
        cls = None
        if invite.class_id:
            cls = await self.store.run("parta_get_class", db.get_class_txn, invite.class_id)
        return 200, {
            "school": {"school_id": school.school_id, "name": school.name},
            "role": invite.role.value,
            "class": {"class_id": cls.class_id, "title": cls.title, "year": cls.year}
            if cls
            else None,
            "expires_at": invite.expires_ts,
            "registration": self.config.registration_with_invite,
        }

    async def post_redeem(self, request: SynapseRequest, code: str) -> tuple[int, dict[str, Any]]:
        user_id = await requester_id(self.api, request)
        joined = await self._redeem(normalize_code(code), user_id)
        return (202 if joined.get("pending") else 200), joined

    async def _redeem(self, code: str, user_id: str) -> dict[str, Any]:
        invite = await self._usable_invite(code)
        if invite.child_user_id == user_id:
            raise _bad(msg.INVITE_OWN_CHILD)
        reason = await self.store.run(
            "parta_claim_invite", db.claim_invite_txn, code, user_id, _now_ms()
        )
        if reason is not None:
            status, message = _INVITE_REFUSALS[reason]
            raise SynapseError(status, message.format(), Codes.FORBIDDEN)
        school = await self._school(invite.school_id)
        role = invite.role
        if role is Role.STUDENT and invite.class_id:
            standing = await self._update_member(
                school,
                user_id,
                invite.created_by,
                add_roles={Role.STUDENT},
                add_classes={invite.class_id: Role.STUDENT},
                replace_student_class=True,
            )
        elif role is Role.TEACHER:
            standing = await self._update_member(
                school,
                user_id,
                invite.created_by,
                add_roles={Role.TEACHER},
                add_classes={invite.class_id: Role.TEACHER} if invite.class_id else {},
            )
        elif role is Role.PARENT and invite.child_user_id:
            current = (await self.get_person(user_id)).standing(school.school_id)
            if policy.parent_link_waits(invite.created_by, invite.child_user_id, user_id, current):
                link = await self.store.run(
                    "parta_request_parent_link",
                    request_link_txn,
                    school.school_id,
                    invite.child_user_id,
                    user_id,
                    code,
                    _now_ms(),
                )
                return {
                    "school_id": school.school_id,
                    "school_name": school.name,
                    **_standing_json(user_id, current or Standing(school.school_id)),
                    "pending": True,
                    "parent_link": link.to_json(),
                }
            standing = await self._update_member(
                school,
                user_id,
                invite.created_by,
                add_roles={Role.PARENT},
                add_children={invite.child_user_id},
            )
        else:
            standing = await self._update_member(
                school, user_id, invite.created_by, add_roles={role}
            )
        return {
            "school_id": school.school_id,
            "school_name": school.name,
            **_standing_json(user_id, standing),
        }

    async def post_register(self, request: SynapseRequest, code: str) -> tuple[int, dict[str, Any]]:
        body = json_body(request, REGISTER_SCHEMA)
        if not self.config.registration_with_invite:
            raise forbidden(msg.REGISTRATION_CLOSED)
        if len(body["password"]) < 8:
            raise SynapseError(400, msg.PASSWORD_WEAK.format(), Codes.WEAK_PASSWORD)
        normalized = normalize_code(code)
        await self._usable_invite(normalized)
        localpart = body["username"]
        await self.api.check_username(localpart)  # 400 M_USER_IN_USE / M_INVALID_USERNAME
        password_hash = await self.api.defer_to_thread(_hash_password, body["password"])
        user_id = await self.api.register_user(localpart, body.get("display_name"))
        await self.store.run("parta_set_password", db.set_password_txn, user_id, password_hash)
        # The account exists now; if the code ran out meanwhile, the person keeps an
        # account without a school and is told why.
        joined = await self._redeem(normalized, user_id)
        device_id, access_token, _, _ = await self.api.register_device(user_id)
        return 200, {
            "user_id": user_id,
            "access_token": access_token,
            "device_id": device_id,
            "home_server": self.api.server_name,
            **{k: v for k, v in joined.items() if k != "user_id"},
        }

    async def check_password(
        self, username: str, login_type: str, login_dict: dict[str, Any]
    ) -> tuple[str, None] | None:
        """Passwords of accounts made with an invitation code (Synapse has none for them)."""
        password = login_dict.get("password")
        if not isinstance(password, str):
            return None
        user_id = username if username.startswith("@") else f"@{username}:{self.api.server_name}"
        user_id = user_id.lower()
        stored = await self.store.run("parta_get_password", db.get_password_txn, user_id)
        if stored is None:
            return await self._check_sign_in_code(user_id, password)
        ok = await self.api.defer_to_thread(
            bcrypt.checkpw, password.encode("utf-8"), stored.encode("ascii")
        )
        return (user_id.lower(), None) if ok else None

    async def post_sign_in_code(
        self, request: SynapseRequest, school_id: str, target: str
    ) -> tuple[int, dict[str, Any]]:
        """A new sign-in code for an imported account whose owner lost theirs (and has
        not set a password of their own); the old code stops working."""
        user_id = await requester_id(self.api, request)
        school = await self._school(school_id)
        await self._require_manager(user_id, school)
        if (await self.get_person(target)).standing(school_id) is None:
            raise not_found(msg.NOT_A_MEMBER, user_id=target)
        if await self.store.run("parta_get_sign_in", db.get_sign_in_code_txn, target) is None:
            raise conflict(msg.CODE_NOT_IMPORTED)
        if await self.store.run("parta_own_password", db.own_password_txn, target):
            raise conflict(msg.CODE_HAS_PASSWORD)
        raw = "".join(secrets.choice(_CODE_ALPHABET) for _ in range(12))
        code = f"{raw[:4]}-{raw[4:8]}-{raw[8:]}"
        now = _now_ms()
        expires = now + SIGN_IN_CODE_LIFETIME_MS
        await self.store.run(
            "parta_new_sign_in",
            db.replace_sign_in_code_txn,
            target,
            _code_hash(code),
            user_id,
            school_id,
            now,
            expires,
        )
        return 200, {"user_id": target, "code": code, "expires_at": expires}

    async def put_display_name(
        self, request: SynapseRequest, school_id: str, target: str
    ) -> tuple[int, dict[str, Any]]:
        """The roster's new name for an account it imported (a changed surname): set on
        the account, and Synapse carries it into the person's rooms."""
        user_id = await requester_id(self.api, request)
        body = json_body(request, DISPLAY_NAME_SCHEMA)
        school = await self._school(school_id)
        await self._require_manager(user_id, school)
        if (await self.get_person(target)).standing(school_id) is None:
            raise not_found(msg.NOT_A_MEMBER, user_id=target)
        if await self.store.run("parta_get_sign_in", db.get_sign_in_code_txn, target) is None:
            raise SynapseError(409, msg.CODE_NOT_IMPORTED.format(), Codes.UNKNOWN)
        await self.api.set_displayname(UserID.from_string(target), body["display_name"])
        await self.store.run(
            "parta_audit_rename",
            db.audit_txn,
            _now_ms(),
            user_id,
            "member.display_name",
            school_id,
            target,
            {"display_name": body["display_name"]},
        )
        return 200, {"user_id": target, "display_name": body["display_name"]}

    async def _check_sign_in_code(self, user_id: str, code: str) -> tuple[str, None] | None:
        """A roster import's sign-in code, in place of a password until the person sets
        their own (or it expires)."""
        recorded = await self.store.run("parta_get_sign_in", db.get_sign_in_code_txn, user_id)
        if recorded is None or recorded[1] <= _now_ms():
            return None
        if not hmac.compare_digest(recorded[0], _code_hash(code)):
            return None
        if await self.store.run("parta_own_password", db.own_password_txn, user_id):
            return None
        return (user_id, None)

    async def on_user_login(
        self, user_id: str, auth_provider_type: str | None, auth_provider_id: str | None
    ) -> None:
        """The first sign-in of an imported account: join the person's school rooms now
        (before the login answers, so their first sync shows the school)."""
        waiting = await self.store.run("parta_not_signed_in", db.not_signed_in_txn, [user_id])
        if not waiting:
            return
        person = await self.get_person(user_id)
        empty = Person(user_id=user_id)
        for school_id in sorted(person.schools):
            try:
                await self._reconcile(school_id, empty, person, signed_in=True, sync_power=False)
            except Exception:
                # Signing in must work even if a room is unreachable; the next sign-in
                # tries again.
                logger.exception("Could not join %s to school %s's rooms", user_id, school_id)
                return
        await self.store.run("parta_signed_in", db.mark_signed_in_txn, user_id, _now_ms())

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
            _now_ms(),
        )
        if open_now >= limit:
            raise forbidden(policy.PARENT_INVITES_OPEN, limit=limit)
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
                    **_standing_json(user_id, standing),
                    "rooms": await self.store.run(
                        "parta_school_rooms", db.rooms_of_school_txn, school_id
                    ),
                    "class_rooms": [
                        {"class_id": r.class_id, "kind": r.kind.value, "room_id": r.room_id}
                        for r in policy.class_rooms_of(person, all_rooms)
                    ],
                }
            )
        return 200, {
            "user_id": user_id,
            "operator": await self._is_operator(user_id),
            "coordinates": sorted(person.coordinates),
            "schools": schools,
        }

    # -- enforcement callbacks --------------------------------------------------

    def _is_trusted_bot(self, user_id: str) -> bool:
        return self.api.is_mine(user_id) and (
            user_id.removeprefix("@").split(":", 1)[0] in self.config.trusted_bots
        )

    async def user_may_create_room(self, user_id: str, room_config: dict[str, Any]) -> Verdict:
        if user_id == self.service or self._is_trusted_bot(user_id):
            return NOT_SPAM
        # An upgrade (`/upgrade`): the new room would replace a school room.
        predecessor = (room_config.get("creation_content") or {}).get("predecessor")
        if isinstance(predecessor, dict):
            old = await self.get_room(str(predecessor.get("room_id", "")))
            if old is not None:
                return _refuse(policy.UPGRADE_SCHOOL_ROOM)
        person = await self.get_person(user_id)
        # Linking a new room into a school space through initial_state.
        for ev in room_config.get("initial_state", []) or []:
            if isinstance(ev, dict) and ev.get("type") == "m.space.parent":
                parent = await self.get_room(str(ev.get("state_key", "")))
                if parent is not None:
                    refusal = policy.may_link_into_school(person, parent.school_id)
                    if refusal:
                        return _refuse(refusal)
        if not person.schools:
            return NOT_SPAM
        invitees = [i for i in room_config.get("invite", []) or [] if isinstance(i, str)]
        policies = await self._policies(person)
        if room_config.get("is_direct") and len(invitees) <= 1:
            for invitee in invitees:
                if self._is_trusted_bot(invitee):
                    continue
                target = await self.get_person(invitee)
                refusal = policy.may_contact(
                    person, target, {**policies, **await self._policies(target)}
                )
                if refusal:
                    return _refuse(refusal)
            return NOT_SPAM
        refusal = policy.may_create_group_chat(person, policies)
        if refusal:
            return _refuse(refusal)
        return NOT_SPAM

    async def user_may_invite(self, inviter: str, invitee: str, room_id: str) -> Verdict:
        if inviter == self.service:
            return NOT_SPAM
        room = await self.get_room(room_id)
        a = await self.get_person(inviter)
        b = await self.get_person(invitee)
        if room is not None:
            refusal = policy.may_invite_into(a, b, room)
            return _refuse(refusal, invitee=invitee) if refusal else NOT_SPAM
        if not a.schools and not b.schools:
            return NOT_SPAM
        if self._is_trusted_bot(inviter) or self._is_trusted_bot(invitee):
            return NOT_SPAM
        refusal = policy.may_contact(a, b, await self._policies(a, b))
        if refusal is None:
            refusal = await self._may_grow(room_id, a, invitee)
        return _refuse(refusal) if refusal else NOT_SPAM

    async def _may_grow(self, room_id: str, actor: Person, newcomer: str) -> Message | None:
        """One more person into a room the roster does not know: the group-chat ban
        counts who is joined or invited already, whatever order the invites came in."""
        state = await self.api.get_room_state(
            room_id, [("m.room.create", ""), ("m.room.member", None)]
        )
        create = state.get(("m.room.create", ""))
        creator = await self.get_person(create.sender) if create is not None else Person("")
        if not creator.schools and not actor.schools:
            return None
        present = sum(
            1
            for (kind, key), ev in state.items()
            if kind == "m.room.member"
            and key != newcomer
            and not self._is_trusted_bot(key)
            and ev.content.get("membership") in ("join", "invite")
        )
        return policy.may_grow_private_room(
            creator, actor, present, await self._policies(creator, actor)
        )

    async def user_may_join_room(self, user_id: str, room_id: str, is_invited: bool) -> Verdict:
        if user_id == self.service:
            return NOT_SPAM
        room = await self.get_room(room_id)
        if room is None:
            if is_invited or self._is_trusted_bot(user_id):
                # Counted when the invite was made.
                return NOT_SPAM
            refusal = await self._may_grow(room_id, await self.get_person(user_id), user_id)
            return _refuse(refusal) if refusal else NOT_SPAM
        refusal = policy.may_join(await self.get_person(user_id), room)
        return _refuse(refusal) if refusal else NOT_SPAM

    async def check_username_for_spam(self, user_profile: UserProfile, requester_id: str) -> bool:
        """True hides the user from the searcher's user-directory results."""
        target = await self.get_person(user_profile["user_id"])
        if not target.is_student:
            return False
        return policy.hidden_from_search(target, await self.get_person(requester_id))

    async def check_event_allowed(
        self, event: EventBase, state_events: StateMap[EventBase]
    ) -> tuple[bool, dict[str, Any] | None]:
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
                    refusal = policy.may_link_into_school(
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
            if policy.remote_allowed(server, school_policy) is not None:
                return False, None
            # An allowed server's people meet the same roster checks as local ones.
        if event.type == "m.room.tombstone":
            raise forbidden(policy.UPGRADE_SCHOOL_ROOM)
        if event.type in policy.MANAGED_STATE:
            raise forbidden(policy.STATE_MANAGED, event_type=event.type)
        if event.type == "m.room.member":
            membership = event.content.get("membership")
            target = event.state_key or ""
            if membership == "invite" and target != event.sender:
                refusal = policy.may_invite_into(
                    await self.get_person(event.sender), await self.get_person(target), room
                )
                if refusal:
                    raise forbidden(refusal, invitee=target)
            elif membership == "join" and target == event.sender:
                refusal = policy.may_join(await self.get_person(target), room)
                if refusal:
                    raise forbidden(refusal)
        return True, None


def _put_members_txn(
    txn: Any,
    school_id: str,
    plan: list[tuple[str, set[Role], dict[str, Role], set[str], set[str]]],
    actor: str,
    ts: int,
) -> None:
    for target, roles, classes, children, homeroom_of in plan:
        db.put_member_txn(txn, school_id, target, roles, classes, children, homeroom_of, actor, ts)


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


def _code_hash(code: str) -> str:
    """Sign-in codes are random (60 bits), so a fast hash is enough, as for tokens."""
    # UTF-8: whatever a person types as a password is hashed, Cyrillic included.
    return hashlib.sha256(normalize_code(code).encode("utf-8")).hexdigest()


def _hash_password(password: str) -> str:
    return bcrypt.hashpw(password.encode("utf-8"), bcrypt.gensalt(rounds=10)).decode("ascii")


def _standing_json(user_id: str, s: Standing) -> dict[str, Any]:
    return {
        "user_id": user_id,
        "roles": sorted(r.value for r in s.roles),
        "classes": sorted(s.teaches | s.learns_in),
        "teaches": sorted(s.teaches),
        "learns_in": sorted(s.learns_in),
        "homeroom_of": sorted(s.homeroom_of),
        "children": sorted(s.children),
    }


def _query(request: SynapseRequest, name: str) -> str | None:
    return query_string(request, name)
