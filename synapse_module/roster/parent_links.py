"""Parent links a student's own invitation makes: they wait for the school.

A student may hand a code to their parents (``POST /me/parent_invite``). Whoever redeems
it is not a parent yet: the link waits until the child's homeroom teacher or a school
administrator confirms it (``POST /schools/{id}/parent_links/{link}/confirm``) or refuses
it. Only then does the person get the parent role and join the parents chat. Invitations
a school's staff make for a parent take effect at once: the school vouches for them.
Who may decide is ``rules.may_decide_parent_link``.
"""

import time
from typing import TYPE_CHECKING, Any, Final

import attrs
from synapse.module_api import LoggingTransaction, SynapseRequest
from synapse.module_api.errors import Codes

from parta_common.messages import Message
from parta_common.roles import Role

from ..errors import conflict, forbidden, matrix_error, not_found
from ..http import requester_id
from ..store import rows_as_dicts
from . import rules
from . import store as db
from . import texts as msg

if TYPE_CHECKING:
    from .members import MembersApi

LINK_UNKNOWN: Final = Message("roster.link_unknown")
LINK_DECIDED: Final = Message("roster.link_decided")
BAD_STATUS: Final = Message("roster.bad_status")
STATUSES: Final = ("pending", "confirmed", "refused")


@attrs.frozen
class ParentLink:
    link_id: str
    school_id: str
    child_user_id: str
    parent_user_id: str
    code: str
    status: str
    created_ts: int
    decided_by: str | None = None
    decided_ts: int | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "link_id": self.link_id,
            "school_id": self.school_id,
            "child_user_id": self.child_user_id,
            "parent_user_id": self.parent_user_id,
            "status": self.status,
            "created_at": self.created_ts,
            "decided_by": self.decided_by,
            "decided_at": self.decided_ts,
        }


def _now_ms() -> int:
    return int(time.time() * 1000)


# -- store ------------------------------------------------------------------------------


def open_parent_invites_txn(txn: LoggingTransaction, school_id: str, child: str, now: int) -> int:
    """How many of a student's own parent invitations can still be used."""
    txn.execute(
        "SELECT COUNT(*) FROM parta_invites WHERE school_id = ? AND created_by = ?"
        " AND child_user_id = ? AND role = ? AND revoked = ? AND expires_ts > ?"
        " AND uses < max_uses",
        (school_id, child, child, Role.PARENT.value, False, now),
    )
    row = txn.fetchone()
    return int(row[0]) if row else 0


def request_link_txn(
    txn: LoggingTransaction, school_id: str, child: str, parent: str, code: str, now: int
) -> ParentLink:
    """The pending link for this child and this person (one, however often they redeem)."""
    txn.execute(
        "SELECT * FROM parta_parent_links WHERE school_id = ? AND child_user_id = ?"
        " AND parent_user_id = ? AND status = ?",
        (school_id, child, parent, "pending"),
    )
    rows = rows_as_dicts(txn)
    if rows:
        return ParentLink(**rows[0])
    link = ParentLink(db.new_id("pl"), school_id, child, parent, code, "pending", now)
    txn.execute(
        "INSERT INTO parta_parent_links (link_id, school_id, child_user_id, parent_user_id,"
        " code, status, created_ts) VALUES (?, ?, ?, ?, ?, ?, ?)",
        (link.link_id, school_id, child, parent, code, link.status, now),
    )
    db.audit_txn(txn, now, parent, "parent_link.request", school_id, child, {})
    return link


def get_link_txn(txn: LoggingTransaction, link_id: str) -> ParentLink | None:
    txn.execute("SELECT * FROM parta_parent_links WHERE link_id = ?", (link_id,))
    rows = rows_as_dicts(txn)
    return ParentLink(**rows[0]) if rows else None


def list_links_txn(txn: LoggingTransaction, school_id: str, status: str) -> list[ParentLink]:
    txn.execute(
        "SELECT * FROM parta_parent_links WHERE school_id = ? AND status = ?"
        " ORDER BY created_ts, link_id",
        (school_id, status),
    )
    return [ParentLink(**r) for r in rows_as_dicts(txn)]


def decide_link_txn(
    txn: LoggingTransaction, link_id: str, status: str, actor: str, now: int
) -> bool:
    """Pending → ``status``; False when someone decided it first."""
    txn.execute(
        "UPDATE parta_parent_links SET status = ?, decided_by = ?, decided_ts = ?"
        " WHERE link_id = ? AND status = ?",
        (status, actor, now, link_id, "pending"),
    )
    if txn.rowcount != 1:
        return False
    db.audit_txn(txn, now, actor, f"parent_link.{status}", None, link_id, {})
    return True


# -- REST -------------------------------------------------------------------------------

_LINKS: Final = "/schools/([^/]+)/parent_links"


class ParentLinks:
    ROUTES: Final = (
        ("GET", _LINKS, "get_links"),
        ("POST", rf"{_LINKS}/([^/]+)/confirm", "post_confirm"),
        ("POST", rf"{_LINKS}/([^/]+)/refuse", "post_refuse"),
    )

    def __init__(self, roster: "MembersApi"):
        self._roster = roster

    async def _decider(self, user_id: str, school_id: str) -> tuple[bool, rules.Standing | None]:
        """Whether ``user_id`` manages the school, and their standing in it (403 if
        neither a manager nor staff)."""
        school = await self._roster.school(school_id)
        manager = await self._roster.may_manage(user_id, school)
        standing = (await self._roster.get_person(user_id)).standing(school_id)
        if not manager and (standing is None or not standing.is_staff):
            raise forbidden(msg.NOT_SCHOOL_STAFF)
        return manager, standing

    async def _may_decide(
        self, manager: bool, standing: rules.Standing | None, link: ParentLink
    ) -> bool:
        if manager:
            return True
        child = (await self._roster.get_person(link.child_user_id)).standing(link.school_id)
        return rules.may_decide_parent_link(standing, child) is None

    async def get_links(
        self, request: SynapseRequest, school_id: str
    ) -> tuple[int, dict[str, Any]]:
        user_id = await requester_id(self._roster.api, request)
        manager, standing = await self._decider(user_id, school_id)
        status = request.args.get(b"status", [b"pending"])[0].decode("utf-8", "replace")
        if status not in STATUSES:
            raise matrix_error(400, Codes.INVALID_PARAM, BAD_STATUS, status=status)
        links = await self._roster.store.run(
            "parta_parent_links", list_links_txn, school_id, status
        )
        mine = [link for link in links if await self._may_decide(manager, standing, link)]
        return 200, {"parent_links": [link.to_json() for link in mine]}

    async def _decide(
        self, request: SynapseRequest, school_id: str, link_id: str, status: str
    ) -> tuple[int, dict[str, Any]]:
        user_id = await requester_id(self._roster.api, request)
        manager, standing = await self._decider(user_id, school_id)
        link = await self._roster.store.run("parta_parent_link", get_link_txn, link_id)
        if link is None or link.school_id != school_id:
            raise not_found(LINK_UNKNOWN, link_id=link_id)
        if not await self._may_decide(manager, standing, link):
            raise forbidden(rules.PARENT_LINK_NOT_YOURS)
        if link.status != "pending":
            raise conflict(LINK_DECIDED, status=link.status)
        if status == "confirmed":
            child = (await self._roster.get_person(link.child_user_id)).standing(school_id)
            if child is None or Role.STUDENT not in child.roles:
                raise matrix_error(
                    409, Codes.FORBIDDEN, msg.CHILD_NOT_STUDENT, user_id=link.child_user_id
                )
        now = _now_ms()
        if not await self._roster.store.run(
            "parta_decide_parent_link", decide_link_txn, link_id, status, user_id, now
        ):
            raise conflict(LINK_DECIDED, status="—")
        if status == "confirmed":
            await self._roster.add_parent(
                school_id, link.parent_user_id, link.child_user_id, user_id
            )
        decided = attrs.evolve(link, status=status, decided_by=user_id, decided_ts=now)
        return 200, decided.to_json()

    async def post_confirm(
        self, request: SynapseRequest, school_id: str, link_id: str
    ) -> tuple[int, dict[str, Any]]:
        return await self._decide(request, school_id, link_id, "confirmed")

    async def post_refuse(
        self, request: SynapseRequest, school_id: str, link_id: str
    ) -> tuple[int, dict[str, Any]]:
        return await self._decide(request, school_id, link_id, "refused")
