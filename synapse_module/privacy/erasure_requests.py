"""A person's request to erase their data (or a guardian's, for their child), and the
school's queue of them (152-FZ: a subject's request is answered within 10 working days,
with a record):

* ``POST /schools/{schoolId}/erasure_requests`` — the person for themself, a guardian
  for their child (:func:`.rules.may_request_erasure`: the consents' rule); stored and
  audited; a second request while one is waiting answers the waiting one;
* ``GET /schools/{schoolId}/erasure_requests`` — the school's administrators: every
  request, open first, each with its due date (:func:`.rules.erasure_request_due`);
  anyone else: the requests they made;
* ``POST …/erasure_requests/{requestId}/carry_out`` — an administrator starts the
  existing erasure (``Privacy.start_erasure``, the school's
  ``erasure_messages`` unless the body says otherwise) and the request follows it to
  ``done``; ``…/decline`` — with the reason the requester reads;
* ``GET /internal/erasure_requests/to_tell`` and ``POST
  /internal/erasure_requests/{requestId}/told`` — the school bot (calling as itself)
  tells each requester, once, when their request is done or declined.
"""

import datetime
import secrets
import time
import zoneinfo
from typing import TYPE_CHECKING, Any, Final

from synapse.module_api import SynapseRequest

from ..errors import conflict, forbidden, not_found
from ..http import json_body, requester_id
from ..requests import request_schemas
from . import store as db
from .rules import Relation, erasure_request_due, may_request_erasure, request_sort_key
from .texts import (
    ERASURE_REQUEST_ANSWERED,
    ERASURE_REQUEST_NOT_ALLOWED,
    ERASURE_REQUEST_NOT_FOUND,
    ONLY_THE_BOT,
)

if TYPE_CHECKING:
    from .. import PartaModule

_SCHEMAS: Final = request_schemas(__package__)
_NEW: Final = _SCHEMAS["ErasureRequestRequest"]
# The erasure's own body: what becomes of the messages (else the school's policy).
_CARRY_OUT: Final = _SCHEMAS["EraseRequest"]
_DECLINE: Final = _SCHEMAS["DeclineErasureRequest"]
# The bot takes up to this many answered requests a call (the oldest first).
TO_TELL_BATCH: Final = 50


def _now() -> int:
    return int(time.time() * 1000)


def request_json(row: dict[str, Any], today: datetime.date) -> dict[str, Any]:
    """One request as the API answers it; ``overdue`` while open after its due date."""
    due = datetime.date.fromisoformat(row["due_date"])
    return {
        "request_id": row["request_id"],
        "school_id": row["school_id"],
        # null once done (the erasure forgets whom it erased) or "erased".
        "user_id": row["user_id"] if row["status"] != "done" else None,
        "requested_by": row["requested_by"],
        "relation": row["relation"],
        "status": row["status"],
        "created_ts": row["created_ts"],
        "due_date": row["due_date"],
        "overdue": row["status"] == "open" and today > due,
        "erasure_id": row["erasure_id"],
        "decided_by": row["decided_by"],
        "decided_ts": row["decided_ts"],
        "reason": row["reason"],
        "finished_ts": row["finished_ts"],
        "language": row["language"],
    }


class ErasureRequests:
    ROUTES: Final = (
        ("POST", r"/schools/([^/]+)/erasure_requests", "post_request"),
        ("GET", r"/schools/([^/]+)/erasure_requests", "get_requests"),
        ("POST", r"/schools/([^/]+)/erasure_requests/([^/]+)/carry_out", "post_carry_out"),
        ("POST", r"/schools/([^/]+)/erasure_requests/([^/]+)/decline", "post_decline"),
        ("GET", r"/internal/erasure_requests/to_tell", "get_to_tell"),
        ("POST", r"/internal/erasure_requests/([^/]+)/told", "post_told"),
    )

    def __init__(self, module: "PartaModule"):
        # Privacy's erasure and clock through the module (``module.privacy``), read at
        # request time: Privacy builds this.
        self._module = module

    async def _today(self, school_id: str) -> datetime.date:
        """The school's local date by the module's clock (a test may set it)."""
        tz = zoneinfo.ZoneInfo(await self._module.roster.school_timezone(school_id))
        now = self._module.privacy.retention.now() / 1000
        return datetime.datetime.fromtimestamp(now, tz).date()

    async def _relation(self, actor: str, school_id: str, subject: str) -> Relation:
        """For a request, an administrator is a person like any other: for themself or
        their own child only."""
        if actor == subject:
            return "self"
        standing = (await self._module.roster.get_person(actor)).standing(school_id)
        if standing is not None and subject in standing.children:
            return "guardian"
        return "other"

    async def post_request(
        self, request: SynapseRequest, school_id: str
    ) -> tuple[int, dict[str, Any]]:
        actor, school = await self._module.roster._open(request, school_id, "any")
        body = json_body(request, _NEW)
        subject = str(body.get("user_id") or actor)
        relation = await self._relation(actor, school.school_id, subject)
        if relation == "other":
            raise forbidden(ERASURE_REQUEST_NOT_ALLOWED)
        is_student, grade = await self._module.privacy._subject(school, subject)
        policy = await self._module.roster.get_policy(school.school_id)
        if not may_request_erasure(relation, is_student, grade, policy.self_consent_grade):
            raise forbidden(ERASURE_REQUEST_NOT_ALLOWED)
        # The day it was made decides when it is due: both by the module's clock.
        today = await self._today(school.school_id)
        made, row = await self._module.store.run_read_committed(
            "parta_erasure_request_new",
            db.new_erasure_request_txn,
            self._module.privacy.retention.now(),
            f"erq_{secrets.token_hex(8)}",
            school.school_id,
            subject,
            actor,
            relation,
            str(body.get("language") or "ru"),
            erasure_request_due(today, self._module.config.privacy.days_off).isoformat(),
        )
        # "new": false — one was waiting already for the person: that one answers.
        return (201 if made else 200), {**request_json(row, today), "new": made}

    async def get_requests(
        self, request: SynapseRequest, school_id: str
    ) -> tuple[int, dict[str, Any]]:
        actor, school = await self._module.roster._open(request, school_id, "any")
        manager = await self._module.roster._may_manage(actor, school)
        store = self._module.store
        if manager:  # an administrator's read of who asked to be erased is recorded
            await store.run(
                "parta_erasure_requests_read",
                db.audit_read_txn,
                _now(),
                actor,
                "privacy.erasure_requests_read",
                school.school_id,
                school.school_id,
            )
        rows = await store.run(
            "parta_erasure_requests",
            db.erasure_requests_txn,
            school.school_id,
            None if manager else actor,
        )
        today = await self._today(school.school_id)
        return 200, {
            "school_id": school.school_id,
            "today": today.isoformat(),
            "requests": [request_json(r, today) for r in sorted(rows, key=request_sort_key)],
        }

    async def _waiting(self, school_id: str, request_id: str) -> dict[str, Any]:
        row = await self._module.store.run(
            "parta_erasure_request", db.erasure_request_txn, request_id
        )
        if row is None or row["school_id"] != school_id:
            raise not_found(ERASURE_REQUEST_NOT_FOUND, request_id=request_id[:80])
        return row

    async def post_carry_out(
        self, request: SynapseRequest, school_id: str, request_id: str
    ) -> tuple[int, dict[str, Any]]:
        """Start the school's erasure of the person and link it; asked again, the same
        erasure (it carries on, or answers done)."""
        actor, school = await self._module.roster._open(request, school_id, "manager")
        body = json_body(request, _CARRY_OUT)
        row = await self._waiting(school.school_id, request_id)
        if row["status"] == "declined":
            raise conflict(ERASURE_REQUEST_ANSWERED, request_id=request_id, status="declined")
        today = await self._today(school.school_id)
        unlinked = row["status"] == "in_progress" and row["erasure_id"] is None
        if row["status"] != "open" and not unlinked:
            return 200, request_json(row, today)
        messages = await self._module.privacy.messages_rule(school.school_id, body)
        # Claimed before the erasure starts, so a decline meanwhile is refused; claimed and
        # not linked (a crash, or another click a moment ago) is carried on: the erasure
        # of the same person and school is the same one.
        if not unlinked and not await self._module.store.run(
            "parta_erasure_request_claim", db.claim_erasure_request_txn, _now(), request_id, actor
        ):
            row = await self._waiting(school.school_id, request_id)
            if row["status"] == "declined":
                raise conflict(ERASURE_REQUEST_ANSWERED, request_id=request_id, status="declined")
        try:
            _status, journal = await self._module.privacy.start_erasure(
                school.school_id, row["user_id"], actor, messages, "school"
            )
        except Exception:
            await self._module.store.run(
                "parta_erasure_request_unclaim", db.unclaim_erasure_request_txn, request_id
            )
            raise
        await self._module.store.run(
            "parta_erasure_request_carry_out",
            db.carry_out_erasure_request_txn,
            _now(),
            request_id,
            actor,
            journal["erasure_id"],
        )
        return 202, request_json(await self._waiting(school.school_id, request_id), today)

    async def post_decline(
        self, request: SynapseRequest, school_id: str, request_id: str
    ) -> tuple[int, dict[str, Any]]:
        actor, school = await self._module.roster._open(request, school_id, "manager")
        body = json_body(request, _DECLINE)
        row = await self._waiting(school.school_id, request_id)
        reason = str(body["reason"]).strip()
        if row["status"] == "open":
            await self._module.store.run(
                "parta_erasure_request_decline",
                db.decline_erasure_request_txn,
                _now(),
                request_id,
                actor,
                reason,
            )
            row = await self._waiting(school.school_id, request_id)
        if row["status"] != "declined" or row["reason"] != reason:
            raise conflict(ERASURE_REQUEST_ANSWERED, request_id=request_id, status=row["status"])
        return 200, request_json(row, await self._today(school.school_id))

    # -- the bot tells the requester -------------------------------------------------

    async def _bot(self, request: SynapseRequest) -> None:
        caller = await requester_id(self._module.api, request)
        if not self._module.delegation.is_trusted_bot(caller):
            raise forbidden(ONLY_THE_BOT)

    async def get_to_tell(self, request: SynapseRequest) -> tuple[int, dict[str, Any]]:
        """Requests done or declined whose requester has not been told (the bot tells)."""
        await self._bot(request)
        rows = await self._module.store.run(
            "parta_erasure_requests_to_tell", db.erasure_requests_to_tell_txn, TO_TELL_BATCH
        )
        out = []
        for row in rows:
            school = await self._module.roster._school(row["school_id"])
            answer = request_json(row, datetime.date.min)
            answer["school_name"] = school.name
            out.append(answer)
        return 200, {"requests": out}

    async def post_told(
        self, request: SynapseRequest, request_id: str
    ) -> tuple[int, dict[str, Any]]:
        await self._bot(request)
        store = self._module.store
        if await store.run("parta_erasure_request", db.erasure_request_txn, request_id) is None:
            raise not_found(ERASURE_REQUEST_NOT_FOUND, request_id=request_id[:80])
        await store.run(
            "parta_erasure_request_told", db.erasure_request_told_txn, _now(), request_id
        )
        return 200, {"request_id": request_id, "told": True}
