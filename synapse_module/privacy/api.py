"""Privacy's routes: the audit log's check and export; consents and their enforcement.

* ``GET /audit/verify`` — the server operator: is the hash chain whole, and if not, the
  first broken entry (the same report as ``python -m synapse_module.privacy.verify``);
* ``GET /schools/{schoolId}/audit?format=json|csv`` — the school's administrators, its
  unit's coordinators and the operator: every entry about the school, for an inspector.
  The export is itself a read of personal data, so it is audited first;
* ``GET|PUT /schools/{schoolId}/members/{userId}/consents`` — a person's consents by
  purpose (who may: :func:`rules.may_record_consent`, from the school's
  ``policy.self_consent_grade``); every change and every administrator's read is
  audited. The school's enforced ``communication`` and ``photos`` are held in its rooms
  by :mod:`.callbacks`. Media tokens and broadcast speakers ask
  :meth:`Privacy.lesson_grants` / :meth:`Privacy.check_broadcast_speaker`;
* ``POST /schools/{schoolId}/members/{userId}/export`` — a zip of everything Parta and
  Synapse hold about the person in the school (:mod:`.export`): the school's
  administrators, the person's guardian, the person. Audited before it is made;
* ``POST /schools/{schoolId}/members/{userId}/erase`` and ``GET
  /schools/{schoolId}/erasures/{erasureId}`` — the school's administrators erase a person
  (:mod:`.erasure`: journalled steps, resumable; the account only when no school holds
  them any more), and follow it;
* ``POST /users/{userId}/erase`` — the server operator erases the whole account: every
  school's erasure at once, the account with the last.
"""

import secrets
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final

import attrs
from synapse.module_api import SynapseRequest

from parta_common.roles import Role
from parta_common.tokens import Grants

from .. import audit
from ..errors import bad_json, forbidden, not_found
from ..http import json_body, requester_id, send_file
from ..query import encode_cursor, query_choice, query_cursor, query_limit, query_string
from ..requests import request_schemas
from . import export
from . import store as db
from .callbacks import ConsentsInRooms
from .erasure import Erasure
from .erasure_requests import ErasureRequests
from .retention import Retention
from .rules import (
    CONSENT_LIST_MAX,
    CONSENT_LIST_PAGE,
    PURPOSES,
    Relation,
    consent_counts,
    consent_via,
    entries_csv,
    entry_json,
    lesson_grants,
    may_export,
    may_read_consents,
    may_record_consent,
    may_speak_in_broadcast,
    relation_to,
    retention_refusal,
    verify_report,
)
from .texts import (
    CONSENT_NOT_ALLOWED,
    CONSENT_READ_NOT_ALLOWED,
    DOCUMENT_NUMBER_REQUIRED,
    ERASE_ACCOUNT_OPERATOR_ONLY,
    ERASE_NO_SCHOOL,
    ERASURE_NOT_FOUND,
    EXPORT_NOT_ALLOWED,
    NO_BROADCAST_CONSENT,
    NOT_IN_SCHOOL,
    RETENTION_OUT_OF_RANGE,
    VERIFY_OPERATOR_ONLY,
)

if TYPE_CHECKING:
    from .. import PartaModule

REQUEST_SCHEMAS: Final = request_schemas(__package__)
_PUT_CONSENTS: Final = REQUEST_SCHEMAS["PutConsentsRequest"]
_ERASE: Final = REQUEST_SCHEMAS["EraseRequest"]
_PUT_RETENTION: Final = REQUEST_SCHEMAS["PutRetentionRequest"]


def _now() -> int:
    return int(time.time() * 1000)


def _erasure_json(journal: dict[str, Any]) -> dict[str, Any]:
    return {
        "erasure_id": journal["erasure_id"],
        "school_id": journal["school_id"],
        "status": "done" if journal["finished_ts"] is not None else "running",
        "messages": journal["messages"],
        # "account": the whole account was asked for (the operator), else the school's part.
        "asked": journal["asked"] or "school",
        "steps_done": journal["done"],
        # null until decided; "school": the account stays (another school holds them).
        "scope": journal["scope"],
        "started_ts": journal["started_ts"],
        "finished_ts": journal["finished_ts"],
    }


class Privacy:
    ROUTES: Final = (
        ("GET", r"/audit/verify", "get_audit_verify"),
        ("GET", r"/schools/([^/]+)/audit", "get_school_audit"),
        ("GET", r"/schools/([^/]+)/consents", "get_school_consents"),
        ("GET", r"/schools/([^/]+)/members/([^/]+)/consents", "get_consents"),
        ("PUT", r"/schools/([^/]+)/members/([^/]+)/consents", "put_consents"),
        ("POST", r"/schools/([^/]+)/members/([^/]+)/export", "post_export"),
        ("POST", r"/schools/([^/]+)/members/([^/]+)/erase", "post_erase"),
        ("GET", r"/schools/([^/]+)/erasures/([^/]+)", "get_erasure"),
        ("POST", r"/users/([^/]+)/erase", "post_erase_account"),
        ("GET", r"/schools/([^/]+)/retention", "get_retention"),
        ("PUT", r"/schools/([^/]+)/retention", "put_retention"),
        ("POST", r"/schools/([^/]+)/retention/apply", "post_retention_apply"),
    )

    def __init__(self, module: "PartaModule"):
        self._module = module
        self._api = module.api
        # Chain each entry right after the transaction that wrote it commits.
        audit.on_append(self._seal_soon)
        self.erasure = Erasure(module)
        # A person's (or their guardian's) request to erase, and the school's queue.
        self.requests = ErasureRequests(module)
        self.retention = Retention(module)
        # The school's enforced consents in its rooms (the event rules' "consents").
        self.consents_in_rooms = ConsentsInRooms(module)
        module.roster.policy_changed_hooks.append(self.consents_in_rooms.policy_changed)
        # A class archived at the end of the year: its rooms keep the school's rules.
        module.roster.class_archived_hooks.append(self.retention.class_archived)

    def _seal_soon(self) -> None:
        self._api.run_as_background_process("parta_audit_seal", self.seal)

    async def seal(self) -> str:
        """Chain the entries not chained yet (also the background job ``audit_seal``)."""
        sealed = await self._module.store.run_read_committed("parta_audit_seal", audit.seal_txn)
        return f"chained {sealed}"

    async def get_audit_verify(self, request: SynapseRequest) -> tuple[int, dict[str, Any]]:
        user_id = await requester_id(self._api, request)
        if not await self._module.roster._is_operator(user_id):
            raise forbidden(VERIFY_OPERATOR_ONLY)
        await self.seal()
        entries, head, pending, anchor = await self._module.store.run(
            "parta_audit_chain", audit.chain_txn
        )
        return 200, verify_report(entries, head, pending, anchor)

    async def get_school_audit(
        self, request: SynapseRequest, school_id: str
    ) -> tuple[int, dict[str, Any]] | None:
        fmt = query_choice(request, "format", ("json", "csv"), "json")
        user_id, school = await self._module.roster._open(request, school_id, "manager")

        def record_txn(txn: Any) -> None:
            # The read is recorded before it is made.
            audit.append_txn(
                txn,
                int(time.time() * 1000),
                user_id,
                "audit.export",
                school.school_id,
                school.school_id,
                {"format": fmt},
            )

        await self._module.store.run("parta_audit_export", record_txn)
        await self.seal()  # the export shows every entry chained, its own record too
        entries = await self._module.store.run(
            "parta_school_audit", audit.school_entries_txn, school.school_id
        )
        if fmt == "json":
            anchor = await self._module.store.run("parta_audit_anchor", audit.anchor_txn)
            return 200, {
                "school_id": school.school_id,
                "entries": [entry_json(e) for e in entries],
                # Entries up to the anchor were removed by retention (null: none).
                "anchor": anchor.json() if anchor else None,
            }
        data = entries_csv(entries).encode("utf-8")
        send_file(request, data, "text/csv; charset=utf-8", f"audit-{school.school_id}.csv")
        return None

    # -- consents ---------------------------------------------------------------

    async def _relations(self, actor: str, school: Any) -> Callable[[str], Relation]:
        """What ``actor`` is to each person of the school (:func:`rules.relation_to`)."""
        roster = self._module.roster
        manager = await roster._may_manage(actor, school)
        standing = (await roster.get_person(actor)).standing(school.school_id)
        children = standing.children if standing is not None else frozenset()
        return lambda subject: relation_to(manager, actor, children, subject)

    async def _relation(self, actor: str, school: Any, subject: str) -> Relation:
        return (await self._relations(actor, school))(subject)

    async def _subject(self, school: Any, user_id: str) -> tuple[bool, int | None]:
        """Whether ``user_id`` is a student of the school, and their grade (404 if not in it)."""
        roster = self._module.roster
        standing = (await roster.get_person(user_id)).standing(school.school_id)
        if standing is None or not standing.roles:
            raise not_found(NOT_IN_SCHOOL, user_id=user_id)
        grades = [(await roster._class(school.school_id, c)).grade for c in standing.learns_in]
        return Role.STUDENT in standing.roles, max(grades, default=None)

    async def get_school_consents(
        self, request: SynapseRequest, school_id: str
    ) -> tuple[int, dict[str, Any]]:
        """Many people's consents in one read (a class's, for the paper forms in
        September): the members the members list's filter keeps (``class_id``, ``role``,
        ``user_id``) whose consents the actor may read — the per-member rule, person by
        person — with the counts per purpose over all of them; one page of people at a
        time. A manager's read is audited once, naming the class."""
        actor, school = await self._module.roster._open(request, school_id, "any")
        roster = self._module.roster
        role = roster.query_role(request)
        class_id = query_string(request, "class_id")
        only = query_string(request, "user_id")
        limit = query_limit(request, CONSENT_LIST_PAGE, CONSENT_LIST_MAX)
        after = query_cursor(request, numeric=False)
        await roster._require_member_or_manager(actor, school)  # 403 from outside
        relation = await self._relations(actor, school)
        if class_id is not None:
            await roster.school_class(school.school_id, class_id)  # 404 when not the school's
        found = [
            (uid, standing)
            for uid, standing in await roster.members_of_school(school.school_id, role, class_id)
            if (only is None or uid == only) and may_read_consents(relation(uid))
        ]
        manager = relation(actor) == "manager"
        if manager:  # an administrator's read of personal data: one entry for the read
            details = {
                k: v
                for k, v in (
                    ("class_id", class_id),
                    ("role", role and role.value),
                    ("user_id", only),
                    ("people", len(found)),
                )
                if v is not None
            }
            await self._module.store.run(
                "parta_consents_read",
                db.audit_read_txn,
                _now(),
                actor,
                "consents.read",
                school.school_id,
                class_id or school.school_id,
                details,
            )
        ids = [uid for uid, _ in found]
        consents = await self._module.store.run(
            "parta_consents_of", db.consents_of_txn, school.school_id, ids
        )
        start = 0
        if after is not None:
            start = next((i for i, uid in enumerate(ids) if uid > after[1]), len(ids))
        page = found[start : start + limit]
        names = await roster.display_names([uid for uid, _ in page])
        more = start + limit < len(found)
        return 200, {
            "school_id": school.school_id,
            "class_id": class_id,
            "purposes": list(PURPOSES),
            "counts": consent_counts(consents.get(uid, {}) for uid in ids),
            "total": len(found),
            "members": [
                {
                    "user_id": uid,
                    "display_name": names.get(uid, uid),
                    "roles": sorted(r.value for r in standing.roles),
                    "learns_in": sorted(standing.learns_in),
                    "consents": consents.get(uid, {}),
                }
                for uid, standing in page
            ],
            "next_batch": encode_cursor(page[-1][0], page[-1][0]) if more else None,
        }

    async def get_consents(
        self, request: SynapseRequest, school_id: str, user_id: str
    ) -> tuple[int, dict[str, Any]]:
        actor, school = await self._module.roster._open(request, school_id, "any")
        relation = await self._relation(actor, school, user_id)
        if not may_read_consents(relation):
            raise forbidden(CONSENT_READ_NOT_ALLOWED)
        await self._subject(school, user_id)
        if relation == "manager":  # an administrator's read of personal data is recorded
            await self._module.store.run(
                "parta_consent_read",
                db.audit_read_txn,
                _now(),
                actor,
                "consent.read",
                school.school_id,
                user_id,
            )
        consents = await self._module.store.run(
            "parta_consents", db.consents_txn, school.school_id, user_id
        )
        return 200, {"school_id": school.school_id, "user_id": user_id, "consents": consents}

    async def put_consents(
        self, request: SynapseRequest, school_id: str, user_id: str
    ) -> tuple[int, dict[str, Any]]:
        actor, school = await self._module.roster._open(request, school_id, "any")
        body = json_body(request, _PUT_CONSENTS)
        relation = await self._relation(actor, school, user_id)
        is_student, grade = await self._subject(school, user_id)
        policy = await self._module.roster.get_policy(school.school_id)
        if not may_record_consent(relation, is_student, grade, policy.self_consent_grade):
            raise forbidden(CONSENT_NOT_ALLOWED)
        via = consent_via(relation)
        document = body.get("document_number")
        if via == "paper" and not document:
            raise bad_json(DOCUMENT_NUMBER_REQUIRED)
        consents = await self._module.store.run(
            "parta_put_consents",
            db.put_consents_txn,
            _now(),
            actor,
            school.school_id,
            user_id,
            dict(body["consents"]),
            via,
            document if via == "paper" else None,
        )
        # In force at once, on every worker; an avatar shown or hidden as photos says.
        await self.consents_in_rooms.forget(school.school_id, user_id)
        if "photos" in body["consents"]:
            await self.consents_in_rooms.show_avatar_as_consented(school.school_id, user_id)
        return 200, {"school_id": school.school_id, "user_id": user_id, "consents": consents}

    # -- export -----------------------------------------------------------------------

    async def post_export(self, request: SynapseRequest, school_id: str, user_id: str) -> None:
        actor, school = await self._module.roster._open(request, school_id, "any")
        relation = await self._relation(actor, school, user_id)
        if not may_export(relation):
            raise forbidden(EXPORT_NOT_ALLOWED)
        await self._subject(school, user_id)
        data = await self.person_data(actor, relation, school.school_id, user_id)
        media_store = self._module.config.privacy.media_store_path
        archive, _files = await self._api.defer_to_thread(export.archive_bytes, data, media_store)
        name = f"parta-{school.school_id}-{user_id.lstrip('@').split(':')[0]}.zip"
        send_file(request, archive, "application/zip", name)

    async def person_data(
        self, actor: str, relation: Relation, school_id: str, user_id: str
    ) -> dict[str, Any]:
        """Everything about ``user_id`` in the school (``data.json``); the read is
        recorded first (``privacy.export``), so the export lists its own entry."""
        now = _now()
        await self._module.store.run(
            "parta_export_audit",
            db.audit_read_txn,
            now,
            actor,
            "privacy.export",
            school_id,
            user_id,
            {"relation": relation},
        )
        await self.seal()
        rooms = [r.room_id for r in await self._module.roster.rooms_of_school(school_id)]
        store = self._module.store
        sections: dict[str, Any] = await store.run(
            "parta_export_rows", db.person_rows_txn, school_id, user_id, rooms
        )
        sections["poll_answers"] = export.with_quiz_scores(sections["poll_answers"])
        sections["consents"] = await store.run(
            "parta_export_consents", db.consents_txn, school_id, user_id
        )
        sections["messages"] = await store.run(
            "parta_export_messages", db.messages_txn, user_id, rooms
        )
        sections["files"] = await store.run("parta_export_files", db.uploads_txn, user_id)
        return export.document(
            user_id, school_id, actor, now, await self._profile(user_id), sections
        )

    async def _profile(self, user_id: str) -> dict[str, Any]:
        if not self._api.is_mine(user_id):
            return {"user_id": user_id}
        info = await self._api.get_userinfo_by_id(user_id)
        profile = await self._api.get_profile_for_user(user_id.split(":")[0].lstrip("@"))
        threepids = await self._api.get_threepids_for_user(user_id)
        return {
            "user_id": user_id,
            "display_name": profile.display_name,
            "avatar_url": profile.avatar_url,
            "created_ts": info.creation_ts * 1000 if info else None,
            "deactivated": bool(info and info.is_deactivated),
            "contacts": [{"medium": t["medium"], "address": t["address"]} for t in threepids],
        }

    # -- erasure ----------------------------------------------------------------------

    async def post_erase(
        self, request: SynapseRequest, school_id: str, user_id: str
    ) -> tuple[int, dict[str, Any]]:
        actor, school = await self._module.roster._open(request, school_id, "manager")
        body = json_body(request, _ERASE)
        messages = await self.messages_rule(school.school_id, body)
        status, journal = await self.start_erasure(
            school.school_id, user_id, actor, messages, "school"
        )
        return status, _erasure_json(journal)

    async def messages_rule(self, school_id: str, body: dict[str, Any]) -> str:
        """What becomes of the messages: as the request says, else the school's policy
        (``erasure_messages``, ``redact`` unless the school chose otherwise)."""
        if "messages" in body:
            return str(body["messages"])
        return (await self._module.roster.get_policy(school_id)).erasure_messages

    async def post_erase_account(
        self, request: SynapseRequest, user_id: str
    ) -> tuple[int, dict[str, Any]]:
        """The operator erases the whole account: every school's part at once; the account
        goes with the last school's, whatever units they coordinate."""
        actor = await requester_id(self._api, request)
        if not await self._module.roster._is_operator(actor):
            raise forbidden(ERASE_ACCOUNT_OPERATOR_ONLY)
        body = json_body(request, _ERASE)
        person = await self._module.roster.get_person(user_id)
        if not person.schools:
            raise not_found(ERASE_NO_SCHOOL, user_id=user_id)
        # Each school's part as the request says, else as that school's policy says.
        answers = [
            await self.start_erasure(
                school_id, user_id, actor, await self.messages_rule(school_id, body), "account"
            )
            for school_id in sorted(person.schools)
        ]
        status = 202 if any(s == 202 for s, _ in answers) else 200
        return status, {"user_id": user_id, "erasures": [_erasure_json(j) for _, j in answers]}

    async def start_erasure(
        self, school_id: str, user_id: str, actor: str, messages: str, asked: str
    ) -> tuple[int, dict[str, Any]]:
        """Start (or carry on) the school's erasure of ``user_id``: 202 and the journal
        while it runs, 200 when it was done already."""
        store = self._module.store
        latest = await store.run("parta_erasure_latest", db.latest_erasure_txn, school_id, user_id)
        person = await self._module.roster.get_person(user_id)
        if latest is not None and latest["finished_ts"] is None:
            erasure_id = latest["erasure_id"]  # cut short: carry on from its journal
        elif person.standing(school_id) is not None or await self._was_member(
            school_id, user_id, latest["finished_ts"] if latest is not None else 0
        ):
            # In another school too: this school's part now; the account goes with the
            # last school that erases them (erasure.py, the scope). A former member (out
            # of the roster, or moved to another school) has only the school's part left
            # here: their messages in its rooms and its rows (the roster step finds no
            # one to remove).
            erasure_id = f"era_{secrets.token_hex(8)}"
            await store.run(
                "parta_erasure_new",
                db.new_erasure_txn,
                _now(),
                erasure_id,
                school_id,
                user_id,
                actor,
                messages,
                asked,
            )
        elif latest is not None:
            return 200, latest  # erased already: nothing to do twice
        else:
            raise not_found(NOT_IN_SCHOOL, user_id=user_id)
        self._api.run_as_background_process("parta_erasure", self.erasure.run, erasure_id)
        journal = await store.run("parta_erasure", db.erasure_txn, erasure_id)
        assert journal is not None
        return 202, journal

    async def _was_member(self, school_id: str, user_id: str, since: int) -> bool:
        """A former member the school still holds data about (``store.was_member_txn``);
        never Parta's own account or a trusted bot, which are in every school's rooms."""
        if user_id == self._module.roster.service or self._module.delegation.is_trusted_bot(
            user_id
        ):
            return False
        rooms = [r.room_id for r in await self._module.roster.rooms_of_school(school_id)]
        return bool(
            await self._module.store.run(
                "parta_erasure_was_member", db.was_member_txn, school_id, user_id, rooms, since
            )
        )

    async def resume_erasures(self) -> str:
        """The background job ``erasures``: every unfinished erasure carries on."""
        unfinished = await self._module.store.run(
            "parta_erasures_unfinished", db.unfinished_erasures_txn
        )
        for erasure_id in unfinished:
            self._api.run_as_background_process("parta_erasure", self.erasure.run, erasure_id)
        return f"resumed {len(unfinished)}"

    async def get_erasure(
        self, request: SynapseRequest, school_id: str, erasure_id: str
    ) -> tuple[int, dict[str, Any]]:
        _actor, school = await self._module.roster._open(request, school_id, "manager")
        journal = await self._module.store.run("parta_erasure", db.erasure_txn, erasure_id)
        if journal is None or journal["school_id"] != school.school_id:
            raise not_found(ERASURE_NOT_FOUND, erasure_id=erasure_id)
        return 200, _erasure_json(journal)

    # -- retention --------------------------------------------------------------------

    async def _retention_json(self, school_id: str) -> dict[str, Any]:
        rules = await self._module.store.run("parta_retention", db.retention_txn, school_id)
        limits = self._module.config.privacy.retention_limits
        return {"school_id": school_id, "rules": rules, "limits": attrs.asdict(limits)}

    async def get_retention(
        self, request: SynapseRequest, school_id: str
    ) -> tuple[int, dict[str, Any]]:
        _actor, school = await self._module.roster._open(request, school_id, "manager")
        return 200, await self._retention_json(school.school_id)

    async def put_retention(
        self, request: SynapseRequest, school_id: str
    ) -> tuple[int, dict[str, Any]]:
        actor, school = await self._module.roster._open(request, school_id, "manager")
        rules: dict[str, int | None] = dict(json_body(request, _PUT_RETENTION)["rules"])
        limits = self._module.config.privacy.retention_limits
        for kind, days in rules.items():
            allowed = retention_refusal(kind, days, limits) if days is not None else None
            if allowed is not None:
                raise bad_json(
                    RETENTION_OUT_OF_RANGE, kind=kind, days=days, min=allowed[0], max=allowed[1]
                )
        await self._module.store.run(
            "parta_put_retention", db.put_retention_txn, _now(), actor, school.school_id, rules
        )
        return 200, await self._retention_json(school.school_id)

    async def post_retention_apply(
        self, request: SynapseRequest, school_id: str
    ) -> tuple[int, dict[str, Any]]:
        """Apply the school's rules now (what the job does hourly), then trim the audit
        log's front as far as every school's rule lets it go. Audited."""
        actor, school = await self._module.roster._open(request, school_id, "manager")
        retention = self.retention
        now = retention.now()
        changed = await retention.apply(school.school_id, now, actor)
        trimmed = await retention.trim_audit(now, actor)
        return 200, {"school_id": school.school_id, **changed, "audit_removed": trimmed}

    # -- enforcement (media tokens, broadcasts) -------------------------------------

    async def _has(self, room_id: str, user_id: str, purpose: str) -> tuple[bool, bool]:
        """(is this a school's room, has the person consented there to ``purpose``)."""
        room = await self._module.room_roles.school_room(room_id)
        if room is None or room.school_id is None:
            return False, False
        granted = await self._module.store.run(
            "parta_has_consent", db.has_consent_txn, room.school_id, user_id, purpose
        )
        return True, granted

    async def lesson_grants(
        self, role: Role | None, user_id: str, room_id: str, grants: Grants
    ) -> tuple[Grants, str | None]:
        """The grants of a lesson's media token after consent (rules.lesson_grants)."""
        if role is not Role.STUDENT:
            return grants, None
        in_school, consented = await self._has(room_id, user_id, "video_lessons")
        return lesson_grants(role, grants, in_school, consented)

    async def check_broadcast_speaker(self, manager: bool, user_id: str, room_id: str) -> None:
        if manager:
            return
        in_school, consented = await self._has(room_id, user_id, "broadcasts")
        if not may_speak_in_broadcast(manager, in_school, consented):
            raise forbidden(NO_BROADCAST_CONSENT)
