"""Sign-in codes from a roster import, the password check that accepts them, what
happens when a person signs in, and the roster's renames of the accounts it imported."""

import hmac
import logging
import secrets
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import bcrypt
from synapse.module_api import (
    SynapseRequest,
    UserID,
)

from parta_common.messages import Message

from ..errors import conflict, forbidden, not_found
from ..http import requester_id
from . import store as db
from . import texts as msg
from .rules import (
    Person,
    UnitAction,
    may_rename_account,
    may_replace_sign_in_code,
    unit_refusal,
)

if TYPE_CHECKING:
    pass

from .core import CODE_ALPHABET, SIGN_IN_CODE_LIFETIME_MS, code_hash, now_ms
from .members import MembersApi
from .requests import DISPLAY_NAME_SCHEMA

logger = logging.getLogger(__name__)


class SignInApi(MembersApi):
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
        user_id, _school = await self._open(request, school_id, "manager")
        if (await self.get_person(target)).standing(school_id) is None:
            raise not_found(msg.NOT_A_MEMBER, user_id=target)
        code, expires = await self._replace_sign_in_code(user_id, target, school_id, {})
        return 200, {"user_id": target, "code": code, "expires_at": expires}

    async def post_coordinator_sign_in_code(
        self, request: SynapseRequest, unit_id: str, target: str
    ) -> tuple[int, dict[str, Any]]:
        """A new sign-in code for a coordinator appointed by name who lost theirs (and has
        not set a password of their own); the old code stops working. Whoever may appoint
        the unit's coordinators may: the operator, a coordinator of a unit above it."""
        user_id = await requester_id(self.api, request)
        _unit, place = await self._unit_place(unit_id)
        await self._require_unit(user_id, place, UnitAction.APPOINT)
        if unit_id not in (await self.get_person(target)).coordinates:
            raise not_found(msg.NOT_COORDINATOR, user_id=target, unit_id=unit_id)
        code, expires = await self._replace_sign_in_code(
            user_id, target, None, {"unit_id": unit_id}
        )
        return 200, {"unit_id": unit_id, "user_id": target, "code": code, "expires_at": expires}

    async def _replace_sign_in_code(
        self, actor: str, target: str, school_id: str | None, details: dict[str, Any]
    ) -> tuple[str, int]:
        """A new code for an account made with one (by an import or by name) whose owner
        has set no password yet: (code, when it expires); audited as ``new_sign_in_code``
        (403 unless ``actor`` may hand over the whole account,
        :func:`rules.may_replace_sign_in_code`; 409 for an account without a code, or
        with a password of its own)."""
        await self._require_whole_account(actor, await self.get_person(target))
        if await self.store.run("parta_get_sign_in", db.get_sign_in_code_txn, target) is None:
            raise conflict(msg.CODE_NOT_IMPORTED)
        if await self.store.run("parta_own_password", db.own_password_txn, target):
            raise conflict(msg.CODE_HAS_PASSWORD)
        raw = "".join(secrets.choice(CODE_ALPHABET) for _ in range(12))
        code = f"{raw[:4]}-{raw[4:8]}-{raw[8:]}"
        now = now_ms()
        expires = now + SIGN_IN_CODE_LIFETIME_MS
        await self.store.run(
            "parta_new_sign_in",
            db.replace_sign_in_code_txn,
            target,
            code_hash(code),
            actor,
            school_id,
            now,
            expires,
            details,
        )
        return code, expires

    async def _require_whole_account(
        self,
        actor: str,
        target: Person,
        rule: Callable[[Person, list[str], list[str]], Message | None] = (may_replace_sign_in_code),
    ) -> None:
        """403 unless ``actor`` manages every school ``target`` is in and may appoint
        them in every unit they coordinate (``rule`` says it, with its own words)."""
        manages = [
            s for s in target.schools if await self._may_manage(actor, await self._school(s))
        ]
        is_operator = await self._is_operator(actor)
        coordinates = (await self.get_person(actor)).coordinates
        appoints = []
        for unit_id in sorted(target.coordinates):
            _unit, place = await self._unit_place(unit_id)
            if unit_refusal(is_operator, coordinates, place, UnitAction.APPOINT) is None:
                appoints.append(unit_id)
        refusal = rule(target, manages, appoints)
        if refusal is not None:
            raise forbidden(refusal)

    async def put_display_name(
        self, request: SynapseRequest, school_id: str, target: str
    ) -> tuple[int, dict[str, Any]]:
        """The roster's new name for an account it imported (a changed surname): set on
        the account, and Synapse carries it into the person's rooms."""
        user_id, _school, body = await self._open_body(
            request, school_id, DISPLAY_NAME_SCHEMA, "manager"
        )
        await self.rename_member(user_id, school_id, target, body["display_name"])
        return 200, {"user_id": target, "display_name": body["display_name"]}

    async def rename_member(
        self, user_id: str, school_id: str, target: str, display_name: str
    ) -> None:
        """A manager sets an imported account's name (the route, the import's renames):
        one who manages all of the person (:func:`rules.may_rename_account`), else 403."""
        person = await self.get_person(target)
        if person.standing(school_id) is None:
            raise not_found(msg.NOT_A_MEMBER, user_id=target)
        if await self.store.run("parta_get_sign_in", db.get_sign_in_code_txn, target) is None:
            raise conflict(msg.CODE_NOT_IMPORTED)
        await self._require_whole_account(user_id, person, may_rename_account)
        await self.api.set_displayname(UserID.from_string(target), display_name)
        await self.store.run(
            "parta_audit_rename",
            db.audit_txn,
            now_ms(),
            user_id,
            "member.display_name",
            school_id,
            target,
            {"display_name": display_name},
        )

    async def _check_sign_in_code(self, user_id: str, code: str) -> tuple[str, None] | None:
        """A roster import's sign-in code, in place of a password until the person sets
        their own (or it expires)."""
        recorded = await self.store.run("parta_get_sign_in", db.get_sign_in_code_txn, user_id)
        if recorded is None or recorded[1] <= now_ms():
            return None
        if not hmac.compare_digest(recorded[0], code_hash(code)):
            return None
        if await self.store.run("parta_own_password", db.own_password_txn, user_id):
            return None
        return (user_id, None)

    async def on_user_login(
        self, user_id: str, auth_provider_type: str | None, auth_provider_id: str | None
    ) -> None:
        """The first sign-in of an imported account: its school rooms are joined now.

        By default in the background (see ``first_sign_in``): the login answers at once
        and the person's client sees the rooms arrive, spaces first, within seconds.
        """
        if not await self.store.run("parta_start_sign_in", db.start_sign_in_txn, user_id, now_ms()):
            return
        if self.config.first_sign_in_joins == "background":
            self.first_sign_ins.add(user_id)
            return
        try:
            await self._join_first_sign_in(user_id)
        except Exception:
            # Signing in must work even if a room is unreachable; the next sign-in
            # (or the next start-up) tries again.
            logger.exception("Could not join %s to their school rooms", user_id)

    async def _join_first_sign_in(self, user_id: str) -> None:
        """Join a person's rooms in every school, then mark them signed in. A roster
        change that came meanwhile (it skipped them, as not signed in) is applied after."""
        if not await self.store.run("parta_not_signed_in", db.not_signed_in_txn, [user_id]):
            return
        person = await self.get_person(user_id)
        empty = Person(user_id=user_id)
        for school_id in sorted(person.schools):
            await self._reconcile(
                school_id, empty, person, signed_in=True, sync_power=False, first_sign_in=True
            )
        await self.store.run("parta_signed_in", db.mark_signed_in_txn, user_id, now_ms())
        now = await self.get_person(user_id)
        if now != person:
            for school_id in sorted(set(person.schools) | set(now.schools)):
                await self._reconcile(school_id, person, now, signed_in=True)

    async def _resume_first_sign_ins(self) -> None:
        """Rooms of first sign-ins that a restart interrupted: join them now."""
        unfinished = await self.store.run("parta_unfinished_sign_ins", db.unfinished_sign_ins_txn)
        if unfinished:
            logger.info("Resuming the room joins of %d first sign-ins", len(unfinished))
        for user_id in unfinished:
            self.first_sign_ins.add(user_id)
