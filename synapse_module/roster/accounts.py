"""People appointed by name, who have no account yet (issue 11): a coordinator of a unit
(``POST /units/{unitId}/coordinators``) or a school's administrator or teacher (``POST
/schools/{schoolId}/members``). The module makes the account as the roster import makes
its new people's — no password, a sign-in code recorded first (the person signs in with
it as the password until they set their own, 90 days at most) — appoints them, and
answers the code once, for the console's printed card.

Everything that may refuse (who asks, the unit or school, the name, the roles and
classes) is checked before the account is made, so a refusal leaves nothing behind.
"""

import secrets
from typing import Any, Final

from synapse.module_api import SynapseRequest
from synapse.module_api.errors import Codes, SynapseError

from parta_common.person_names import PersonName, login_stem, person_name
from parta_common.roles import Role
from parta_common.roster_plan import sign_in_code

from ..errors import matrix_error
from ..http import json_body, requester_id
from . import store as db
from . import texts as msg
from .core import SIGN_IN_CODE_LIFETIME_MS, bad, code_hash, now_ms, standing_json
from .members import MembersApi
from .requests import NEW_COORDINATOR_SCHEMA, NEW_MEMBER_SCHEMA
from .rules import UnitAction
from .units import UnitsApi

# Account names tried for one person: the name itself, then with a random suffix.
NAME_ATTEMPTS: Final = 20
# The roles a school's manager may give someone made by name (pupils and parents come
# with the import or an invitation, which know their class and children).
STAFF_ROLES: Final = frozenset({Role.ADMINISTRATOR, Role.TEACHER})


class AccountsApi(UnitsApi, MembersApi):
    async def post_coordinator(
        self, request: SynapseRequest, unit_id: str
    ) -> tuple[int, dict[str, Any]]:
        user_id = await requester_id(self.api, request)
        body = json_body(request, NEW_COORDINATOR_SCHEMA)
        unit, place = await self._unit_place(unit_id)
        await self._require_unit(user_id, place, UnitAction.APPOINT)
        name = _name(body)
        target, code, expires = await self._new_account(user_id, name, None, unit_id)
        await self._appoint(user_id, unit, target)
        return 201, {
            "unit_id": unit_id,
            "user_id": target,
            "display_name": name.display_name,
            "code": code,
            "expires_at": expires,
        }

    async def post_member(
        self, request: SynapseRequest, school_id: str
    ) -> tuple[int, dict[str, Any]]:
        user_id, school, body = await self._open_body(
            request, school_id, NEW_MEMBER_SCHEMA, "manager"
        )
        name = _name(body)
        roles = {Role(r) for r in body["roles"]}
        if not roles <= STAFF_ROLES:
            raise bad(msg.NEW_ACCOUNT_STAFF_ONLY)
        homeroom_of = set(body.get("homeroom_of", []))
        classes = await self._validate_member(
            school, roles, set(body.get("classes", [])), set(), homeroom_of
        )
        target, code, expires = await self._new_account(user_id, name, school_id, None)
        standing = await self._put_member(
            school, target, roles, classes, set(), homeroom_of, user_id
        )
        return 201, {
            **standing_json(target, standing),
            "display_name": name.display_name,
            "signed_in": False,
            "code": code,
            "expires_at": expires,
        }

    async def _new_account(
        self, actor: str, name: PersonName, school_id: str | None, unit_id: str | None
    ) -> tuple[str, str, int]:
        """Make an account for ``name`` under a free account name: (user ID, sign-in
        code, when the code expires). The code is recorded first, as the import's are:
        a name another request takes meanwhile is given up and the next one tried."""
        stem = login_stem(name)
        for attempt in range(NAME_ATTEMPTS):
            localpart = stem if attempt == 0 else f"{stem}-{secrets.token_hex(2)}"
            user_id = f"@{localpart}:{self.api.server_name}"
            if await self._account_exists(user_id):
                continue
            try:
                await self.api.check_username(localpart)
            except SynapseError:
                continue  # taken (in another case), or reserved for a bridge
            code = sign_in_code()
            hashed = code_hash(code)
            made = now_ms()
            expires = made + SIGN_IN_CODE_LIFETIME_MS
            recorded = await self.store.run(
                "parta_put_sign_in",
                db.put_sign_in_code_txn,
                user_id,
                hashed,
                actor,
                made,
                expires,
            )
            if not recorded:
                continue  # an import's or another request's new person
            try:
                await self.api.register_user(localpart, name.display_name)
            except SynapseError as e:
                await self.store.run(
                    "parta_forget_sign_in", db.forget_sign_in_code_txn, user_id, hashed
                )
                if e.errcode == Codes.USER_IN_USE:
                    continue
                raise
            details: dict[str, Any] = {"display_name": name.display_name}
            if unit_id is not None:
                details["unit_id"] = unit_id
            await self.audit(actor, "account.created", school_id, user_id, details)
            return user_id, code, expires
        raise matrix_error(409, Codes.USER_IN_USE, msg.NO_FREE_LOGIN, name=stem)


def _name(body: dict[str, Any]) -> PersonName:
    name = person_name(body["family_name"], body["given_name"], body.get("middle_name", ""))
    if name is None:
        raise bad(msg.PERSON_NAME_NEEDED)
    return name
