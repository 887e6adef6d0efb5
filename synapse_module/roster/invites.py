"""Invitation codes: create, list, revoke, redeem, register with one."""

import secrets
from typing import TYPE_CHECKING, Any, Final

import attrs
from synapse.module_api import (
    SynapseRequest,
)
from synapse.module_api.errors import Codes

from parta_common.messages import Message
from parta_common.roles import Role

from ..errors import forbidden, matrix_error, not_found
from ..http import json_body, requester_id
from . import rules
from . import store as db
from . import texts as msg
from .parent_links import request_link_txn
from .rules import Standing

if TYPE_CHECKING:
    pass

from .core import (
    CODE_ALPHABET,
    bad,
    format_code,
    hash_password,
    normalize_code,
    now_ms,
    standing_json,
)
from .members import MembersApi
from .requests import CREATE_INVITE_SCHEMA, REGISTER_SCHEMA

_INVITE_REFUSALS: Final[dict[str, tuple[int, Message]]] = {
    "unknown": (404, msg.INVITE_UNKNOWN),
    "expired": (403, msg.INVITE_EXPIRED),
    "revoked": (403, msg.INVITE_REVOKED),
    "used_up": (403, msg.INVITE_USED_UP),
}


# Spent invitation codes are kept this long, then the background job deletes them.
KEEP_SPENT_INVITES_DAYS: Final = 30


class InvitesApi(MembersApi):
    # -- invitations ------------------------------------------------------------

    async def post_invite(
        self, request: SynapseRequest, school_id: str
    ) -> tuple[int, dict[str, Any]]:
        user_id, school, body = await self._open_body(request, school_id, CREATE_INVITE_SCHEMA)
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
                raise bad(msg.CLASS_ARCHIVED, class_id=class_id)
        if role is Role.STUDENT and class_id is None:
            raise bad(msg.ROLE_NEEDS_CLASS)
        if class_id is not None and role not in (Role.STUDENT, Role.TEACHER):
            raise bad(msg.CLASSES_NEED_ROLE)
        if role is Role.PARENT:
            if child is None:
                raise bad(msg.PARENT_NEEDS_CHILD)
            cs = (await self.get_person(child)).standing(school_id)
            if cs is None or Role.STUDENT not in cs.roles:
                raise bad(msg.CHILD_NOT_STUDENT, user_id=child)
        elif child is not None:
            raise bad(msg.PARENT_NEEDS_CHILD)
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
        now = now_ms()
        invite = db.Invite(
            code="".join(secrets.choice(CODE_ALPHABET) for _ in range(8)),
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
        user_id, school = await self._open(request, school_id)
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
        user_id, school = await self._open(request, school_id)
        invite = await self.store.run("parta_get_invite", db.get_invite_txn, normalize_code(code))
        if invite is None or invite.school_id != school_id:
            raise not_found(msg.INVITE_UNKNOWN)
        if invite.created_by != user_id and not await self._may_manage(user_id, school):
            raise forbidden(msg.NOT_SCHOOL_ADMIN)
        await self.store.run(
            "parta_revoke_invite", db.revoke_invite_txn, invite.code, user_id, now_ms()
        )
        return 200, self._invite_json(attrs.evolve(invite, revoked=True))

    async def _usable_invite(self, code: str) -> db.Invite:
        invite = await self.store.run("parta_get_invite", db.get_invite_txn, normalize_code(code))
        if invite is None:
            raise not_found(msg.INVITE_UNKNOWN)
        reason = None
        if invite.revoked:
            reason = "revoked"
        elif invite.expires_ts <= now_ms():
            reason = "expired"
        elif invite.uses >= invite.max_uses:
            reason = "used_up"
        if reason is not None:
            status, message = _INVITE_REFUSALS[reason]
            raise matrix_error(status, Codes.FORBIDDEN, message)
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
            raise bad(msg.INVITE_OWN_CHILD)
        reason = await self.store.run(
            "parta_claim_invite", db.claim_invite_txn, code, user_id, now_ms()
        )
        if reason is not None:
            status, message = _INVITE_REFUSALS[reason]
            raise matrix_error(status, Codes.FORBIDDEN, message)
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
            if rules.parent_link_waits(invite.created_by, invite.child_user_id, user_id, current):
                link = await self.store.run(
                    "parta_request_parent_link",
                    request_link_txn,
                    school.school_id,
                    invite.child_user_id,
                    user_id,
                    code,
                    now_ms(),
                )
                return {
                    "school_id": school.school_id,
                    "school_name": school.name,
                    **standing_json(user_id, current or Standing(school.school_id)),
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
            **standing_json(user_id, standing),
        }

    async def post_register(self, request: SynapseRequest, code: str) -> tuple[int, dict[str, Any]]:
        body = json_body(request, REGISTER_SCHEMA)
        if not self.config.registration_with_invite:
            raise forbidden(msg.REGISTRATION_CLOSED)
        if len(body["password"]) < 8:
            raise matrix_error(400, Codes.WEAK_PASSWORD, msg.PASSWORD_WEAK)
        normalized = normalize_code(code)
        await self._usable_invite(normalized)
        localpart = body["username"]
        await self.api.check_username(localpart)  # 400 M_USER_IN_USE / M_INVALID_USERNAME
        password_hash = await self.api.defer_to_thread(hash_password, body["password"])
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

    async def purge_spent_invites(self) -> str:
        """The ``expired_invites`` background job (synapse_module/jobs.py)."""
        before = now_ms() - KEEP_SPENT_INVITES_DAYS * 86400 * 1000
        deleted = await self.store.run("parta_purge_invites", db.purge_spent_invites_txn, before)
        return f"deleted {deleted}"
