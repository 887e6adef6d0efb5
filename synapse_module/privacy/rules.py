"""Pure decisions of privacy: is the audit chain whole and where it first breaks; who
records and reads consents; what a missing consent changes in lessons, broadcasts and,
where the school enforces them, a school's rooms (``communication``, ``photos``)."""

import datetime
import functools
import io
import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Final, Literal

import attrs
import holidays

from parta_common import events
from parta_common.messages import Message
from parta_common.roles import Role
from parta_common.tokens import Grants

from ..audit import GENESIS, TRIM_ACTION, Anchor, Entry
from ..content.sanitize import SafeCsvWriter
from .texts import NO_COMMUNICATION_CONSENT, NO_PHOTOS_CONSENT


@attrs.frozen
class Break:
    """The first broken place of the chain: the entry number, its id when it exists, why."""

    seq: int
    audit_id: str | None
    reason: str  # "edited" | "missing" | "relinked" | "truncated" | "anchor"

    def describe(self) -> str:
        where = f"entry #{self.seq}" + (f" ({self.audit_id})" if self.audit_id else "")
        return {
            "edited": f"{where} was changed after it was written",
            "missing": f"{where} was removed",
            "relinked": f"{where} does not follow the entry before it",
            "truncated": f"entries from #{self.seq} on were removed",
            "anchor": (
                f"the chain's anchor (entries up to #{self.seq} removed by retention) is not"
                f" the one its {TRIM_ACTION} entry {self.audit_id} recorded"
            ),
        }[self.reason]


def _records_anchor(entry: Entry, anchor: Anchor) -> bool:
    """Whether ``entry`` is the ``audit.trim`` entry that set ``anchor``."""
    if entry.action != TRIM_ACTION or entry.audit_id != anchor.audit_id:
        return False
    details = json.loads(entry.details)
    return bool(
        details.get("through_seq") == anchor.seq and details.get("through_hash") == anchor.hash
    )


def first_break(
    entries: Sequence[Entry], head: tuple[int, str], anchor: Anchor | None = None
) -> Break | None:
    """Walk the chain in order of ``seq`` from the anchor (the start when ``None``);
    ``None`` when it is whole up to ``head`` and the anchor is the one its ``audit.trim``
    entry recorded."""
    expected_seq, prev_hash = (anchor.seq + 1, anchor.hash) if anchor else (1, GENESIS)
    kept = [e for e in entries if anchor is None or e.seq > anchor.seq]
    for entry in kept:
        if entry.seq != expected_seq:
            # A gap: the entry numbered ``expected_seq`` is gone.
            return Break(expected_seq, None, "missing")
        if entry.prev_hash != prev_hash:
            return Break(entry.seq, entry.audit_id, "relinked")
        if entry.expected_hash() != entry.hash:
            return Break(entry.seq, entry.audit_id, "edited")
        expected_seq, prev_hash = entry.seq + 1, entry.hash
    head_seq, head_hash = head
    if head_seq >= expected_seq:
        return Break(expected_seq, None, "truncated")
    if head_seq != expected_seq - 1 or head_hash != prev_hash:
        # The head names fewer entries than there are, or another last hash.
        return Break(expected_seq - 1, kept[-1].audit_id if kept else None, "relinked")
    if anchor is not None and not any(_records_anchor(e, anchor) for e in kept):
        # Moved forward by hand (more entries gone than the trim removed), or its
        # record is gone: either way the front of the chain cannot be trusted.
        return Break(anchor.seq, anchor.audit_id, "anchor")
    return None


def verify_report(
    entries: Sequence[Entry], head: tuple[int, str], pending: int, anchor: Anchor | None = None
) -> dict[str, Any]:
    """What ``verify`` answers (the CLI prints it, ``GET /audit/verify`` returns it)."""
    broken = first_break(entries, head, anchor)
    report: dict[str, Any] = {
        "ok": broken is None,
        "entries": len([e for e in entries if anchor is None or e.seq > anchor.seq]),
        # Written and not chained yet (a moment's work after each write; the background
        # job chains whatever is left, e.g. entries older than the chain).
        "not_chained_yet": pending,
        # Where the kept chain starts: the last entry retention removed (null: #1).
        "anchor": anchor.json() if anchor else None,
    }
    if broken is not None:
        report["first_broken"] = {
            "seq": broken.seq,
            "audit_id": broken.audit_id,
            "reason": broken.reason,
            "description": broken.describe(),
        }
    return report


def entry_json(entry: Entry) -> dict[str, Any]:
    """One entry as an inspector's export shows it."""
    return {
        "seq": entry.seq,
        "audit_id": entry.audit_id,
        "ts": entry.ts,
        "actor": entry.actor,
        "action": entry.action,
        "school_id": entry.school_id,
        "target": entry.target,
        "details": json.loads(entry.details),
        "prev_hash": entry.prev_hash,
        "hash": entry.hash,
    }


CSV_COLUMNS = ("seq", "audit_id", "ts", "actor", "action", "school_id", "target", "details")


def entries_csv(entries: Sequence[Entry]) -> str:
    """The export as CSV (a BOM so spreadsheets read UTF-8; text cells made safe)."""
    out = io.StringIO()
    writer = SafeCsvWriter(out)
    writer.writerow([*CSV_COLUMNS, "prev_hash", "hash"])
    for e in entries:
        where = [e.school_id or "", e.target or ""]
        writer.writerow(
            [e.seq, e.audit_id, e.ts, e.actor, e.action, *where, e.details, e.prev_hash, e.hash]
        )
    return "\ufeff" + out.getvalue()


# -- consents ------------------------------------------------------------------------

PURPOSES = ("communication", "video_lessons", "broadcasts", "photos")
# The grade from which a student records their own consent (about 14 years old) unless
# the school sets another (its ``policy.self_consent_grade``, 1–11); ``None`` in
# :func:`may_record_consent`: never (guardians only), which no school's policy chooses.
DEFAULT_SELF_CONSENT_GRADE: Final = 8
# The consents a school may choose to enforce in its rooms (``policy.consent_enforced``);
# ``video_lessons`` and ``broadcasts`` are enforced always.
EnforceableConsent = Literal["communication", "photos"]
ENFORCEABLE_CONSENTS: Final[tuple[EnforceableConsent, ...]] = ("communication", "photos")

Relation = Literal["manager", "guardian", "self", "other"]


def may_record_consent(
    relation: Relation, subject_is_student: bool, grade: int | None, self_from_grade: int | None
) -> bool:
    """Who records a person's consent: the school's managers (on paper), a guardian of the
    child (with their account), the person themself when an adult (not a student) or a
    student from the school's grade on."""
    if relation in ("manager", "guardian"):
        return True
    if relation == "self":
        if not subject_is_student:
            return True
        return self_from_grade is not None and grade is not None and grade >= self_from_grade
    return False


def relation_to(
    manager: bool, actor: str, actor_children: frozenset[str], subject: str
) -> Relation:
    """What ``actor`` is to ``subject`` for consents, the export and a child's homework
    (``homework.rules.child_classes``): one who manages the school, the subject themself,
    their guardian (a parent link in the school: ``actor_children``, that school's
    roster's), or other."""
    if manager:
        return "manager"
    if actor == subject:
        return "self"
    if subject in actor_children:
        return "guardian"
    return "other"


def may_read_consents(relation: Relation) -> bool:
    return relation != "other"


# A school's consents list (GET /schools/{id}/consents): members a page, by default and
# at most (a class with its parents and teachers is well under the default).
CONSENT_LIST_PAGE: Final = 200
CONSENT_LIST_MAX: Final = 1000
ConsentState = Literal["granted", "withdrawn", "none"]


def consent_state(record: dict[str, Any] | None) -> ConsentState:
    """A purpose's state: granted, withdrawn, or never recorded (no consent)."""
    if record is None:
        return "none"
    return "granted" if record["granted"] else "withdrawn"


def consent_counts(
    consents_by_person: Iterable[dict[str, dict[str, Any]]],
) -> dict[str, dict[ConsentState, int]]:
    """Per purpose, how many people have it granted, withdrawn, or never recorded."""
    counts: dict[str, dict[ConsentState, int]] = {
        p: {"granted": 0, "withdrawn": 0, "none": 0} for p in PURPOSES
    }
    for consents in consents_by_person:
        for purpose in PURPOSES:
            counts[purpose][consent_state(consents.get(purpose))] += 1
    return counts


def may_export(relation: Relation) -> bool:
    """A person's data goes to the school's managers, their guardian, themselves."""
    return relation in ("manager", "guardian", "self")


def consent_via(relation: Relation) -> Literal["paper", "account"]:
    """A manager records a paper form (its number required); others use their account."""
    return "paper" if relation == "manager" else "account"


NO_VIDEO_CONSENT = "no_video_consent"


def lesson_grants(
    role: Role | None, grants: Grants, in_school_room: bool, video_consent: bool
) -> tuple[Grants, str | None]:
    """A student in a school's room without consent to video lessons joins with camera
    and microphone not publishable; the reason goes to the teacher's panel."""
    if role is Role.STUDENT and in_school_room and not video_consent:
        off = attrs.evolve(grants, publish_camera=False, publish_microphone=False)
        return off, NO_VIDEO_CONSENT
    return grants, None


def may_speak_in_broadcast(manager: bool, in_school_room: bool, broadcasts_consent: bool) -> bool:
    """A student speaker (not one who runs broadcasts) needs consent to broadcasts."""
    return manager or not in_school_room or broadcasts_consent


# -- consents a school enforces in its rooms (policy.consent_enforced) ---------------

# What a student without consent to ``communication`` does not post in a school's room:
# messages of every msgtype (text, files, hand-ins, edits), stickers, reactions (a
# reaction under one's name is a short message), polls they would start, and encrypted
# events (their content cannot be told apart). Still allowed: votes in polls and quizzes
# (answering the school's question is school work, not a message to the room),
# redactions of one's own events, leaving, receipts and typing (no room events).
COMMUNICATION_EVENTS: Final = frozenset(
    {"m.room.message", "m.sticker", "m.reaction", "m.room.encrypted", *events.POLL_STARTS}
)
# Without ``photos``: pictures and videos, however sent (a file whose declared type is a
# picture or a video too), and stickers (pictures of their own choosing).
PICTURE_MSGTYPES: Final = frozenset({"m.image", "m.video"})


def _is_picture(content: Mapping[str, Any]) -> bool:
    msgtype = content.get("msgtype")
    if msgtype in PICTURE_MSGTYPES:
        return True
    info = content.get("info")
    mimetype = info.get("mimetype") if isinstance(info, Mapping) else None
    return (
        msgtype == "m.file"
        and isinstance(mimetype, str)
        and mimetype.lower().startswith(("image/", "video/"))
    )


def consent_refusal(
    event_type: str, content: Mapping[str, Any], missing: frozenset[str]
) -> Message | None:
    """Why a student lacking the enforced consents ``missing`` may not send this event in
    a school's room, or ``None``. (Member events: :func:`member_content_without_avatar`.)"""
    if "communication" in missing and event_type in COMMUNICATION_EVENTS:
        return NO_COMMUNICATION_CONSENT
    if "photos" in missing:
        if event_type == "m.sticker":
            return NO_PHOTOS_CONSENT
        if event_type == "m.room.message":
            edited = content.get("m.new_content")
            if _is_picture(content) or (isinstance(edited, Mapping) and _is_picture(edited)):
                return NO_PHOTOS_CONSENT
    return None


def member_content_without_avatar(
    content: Mapping[str, Any], missing: frozenset[str]
) -> dict[str, Any] | None:
    """A student's member event in a school's room without ``photos``: the same content
    with no ``avatar_url`` (their picture stays on their profile, not shown here), or
    ``None`` when nothing is to change."""
    if "photos" not in missing or not content.get("avatar_url"):
        return None
    return {k: v for k, v in content.items() if k != "avatar_url"}


# -- a person's request to erase (152-FZ: answered within 10 working days) ----------

# Working days a school has to answer (carry out or decline) a request to erase.
ANSWER_WITHIN_WORKING_DAYS: Final = 10
RequestStatus = Literal["open", "in_progress", "done", "declined"]
# The order the school's list shows them: waiting for the school first.
REQUEST_STATUS_ORDER: Final[tuple[RequestStatus, ...]] = (
    "open",
    "in_progress",
    "declined",
    "done",
)


@functools.cache
def _russia(year: int) -> holidays.HolidayBase:
    """Russia's production calendar for a year (the ``holidays`` package): public
    holidays, the days off moved by the government's decree, and the Saturdays it made
    working days."""
    return holidays.country_holidays("RU", years=year)


def working_days_after(
    start: datetime.date, days: int, days_off: frozenset[datetime.date] = frozenset()
) -> datetime.date:
    """The date ``days`` working days after ``start`` (the day of ``start`` itself does
    not count) by Russia's calendar: Saturdays, Sundays, public holidays and transferred
    days off skipped, a Saturday made a working day counted; ``days_off``: more days off
    the calendar lacks (a region's own, ``privacy.extra_days_off``)."""
    day = start
    left = days
    while left > 0:
        day += datetime.timedelta(days=1)
        if day not in days_off and _russia(day.year).is_working_day(day):
            left -= 1
    return day


def erasure_request_due(
    created: datetime.date, days_off: frozenset[datetime.date] = frozenset()
) -> datetime.date:
    """When the school must have answered a request made on ``created`` (its local date)."""
    return working_days_after(created, ANSWER_WITHIN_WORKING_DAYS, days_off)


def puts_in_school(action: str, details: str) -> bool:
    """Whether a roster entry of the audit log (``member.put``, ``account.created``) put
    its target in the school: an account made for it, or a roster change with a role (a
    removal is a ``member.put`` with none)."""
    if action == "account.created":
        return True
    try:
        roles = json.loads(details).get("roles")
    except (ValueError, AttributeError):
        return False
    return isinstance(roles, list) and bool(roles)


def may_request_erasure(
    relation: Relation, subject_is_student: bool, grade: int | None, self_from_grade: int | None
) -> bool:
    """Who asks a school to erase a person: the same rule as recording their consent
    (:func:`may_record_consent`) — a guardian for their child, the person themself when
    not a student or a student from the school's grade on — but only for oneself or
    one's child: an administrator erases directly and files no request."""
    return relation in ("self", "guardian") and may_record_consent(
        relation, subject_is_student, grade, self_from_grade
    )


def request_sort_key(row: Mapping[str, Any]) -> tuple[int, int]:
    """Open ones first (then in progress, declined, done), the oldest first within each."""
    return (REQUEST_STATUS_ORDER.index(row["status"]), int(row["created_ts"]))


# -- erasure ------------------------------------------------------------------------

# The steps of an erasure, in order; the journal (parta_erasures.done) records each.
# First what the school holds (every erasure): out of its roster, their messages in its
# rooms, its rows about them. Then the journal's ``scope`` is decided once: ``account``
# when no school holds the person any more (nor a unit they coordinate), else ``school``
# and the erasure ends there — the account and the other schools' data stay.
SCHOOL_STEPS: tuple[str, ...] = ("roster", "messages", "school_rows")
# Only with scope ``account``: their uploads, every row of Parta's about them, the account.
ACCOUNT_STEPS: tuple[str, ...] = ("media", "module_rows", "account")
ERASURE_STEPS: tuple[str, ...] = SCHOOL_STEPS + ACCOUNT_STEPS
# What becomes of the person's messages in the school's rooms: redacted, or kept (the
# account anonymised). A request says it, else the school's policy (``erasure_messages``).
MessagesRule = Literal["redact", "keep_anonymised"]
MESSAGES_RULES: tuple[MessagesRule, ...] = ("redact", "keep_anonymised")
Scope = Literal["school", "account"]
# What stands where an erased person's ID was, in rows others still need (a poll a
# teacher started, a consent a parent recorded for another child).
ERASED: str = "erased"

# Rows that are the person's own: deleted. (table, column naming the person)
ERASE_ROWS: tuple[tuple[str, str], ...] = (
    ("parta_school_roles", "user_id"),
    ("parta_class_members", "user_id"),
    ("parta_guardians", "parent_user_id"),
    ("parta_guardians", "child_user_id"),
    ("parta_consents", "user_id"),
    ("parta_confirmations", "user_id"),
    ("parta_confirmations", "child_id"),
    ("parta_confirm_reminders", "user_id"),
    ("parta_confirm_reminders", "child_id"),
    ("content_article_views", "user_id"),
    ("content_poll_responses", "user_id"),
    ("content_poll_ballots", "user_id"),
    ("parta_handins", "student"),
    ("parta_room_sessions", "user_id"),
    ("parta_notice_rooms", "user_id"),
    ("parta_unit_coordinators", "user_id"),
    ("parta_invite_uses", "user_id"),
    ("parta_invites", "child_user_id"),
    ("parta_passwords", "user_id"),
    ("parta_sign_in_codes", "user_id"),
    ("parta_parent_links", "child_user_id"),
    ("parta_parent_links", "parent_user_id"),
    ("parta_scheduled_posts", "author"),
    ("content_documents", "sender"),
    ("parta_stats_seen", "user_id"),
    ("parta_held_messages", "sender"),
    ("parta_room_growth", "user_id"),
    ("parta_import_people", "user_id"),
)
# Rows others still need: the person's ID replaced by ERASED (NULL for a homeroom).
MARK_ROWS: tuple[tuple[str, str], ...] = (
    ("parta_consents", "recorded_by"),
    ("parta_confirm_requests", "sender"),
    ("content_room_settings", "changed_by"),
    ("content_articles", "author"),
    ("content_article_revisions", "editor"),
    ("content_polls", "sender"),
    ("parta_homework", "sender"),
    ("parta_lessons", "created_by"),
    ("parta_broadcasts", "created_by"),
    ("parta_viewer_links", "created_by"),
    ("parta_invites", "created_by"),
    ("parta_sign_in_codes", "created_by"),
    ("parta_parent_links", "decided_by"),
    ("parta_scheduled_posts", "created_by"),
    ("parta_erasures", "requested_by"),
    ("parta_erasure_requests", "user_id"),
    ("parta_erasure_requests", "decided_by"),
    ("parta_imports", "actor"),
    ("parta_retention", "set_by"),
)

# Rows of the account, not of a school: they go with the account (scope ``account``).
ACCOUNT_ROWS: frozenset[str] = frozenset(
    {
        "parta_notice_rooms",
        "parta_unit_coordinators",
        "parta_passwords",
        "parta_sign_in_codes",
        "parta_stats_seen",
    }
)


def steps_left(done: Sequence[str], scope: str | None = None) -> list[str]:
    """The erasure's steps not journalled as done yet, in order: the school's, then (once
    the scope is ``account``) the account's."""
    steps = SCHOOL_STEPS + (ACCOUNT_STEPS if scope == "account" else ())
    return [step for step in steps if step not in done]


def scope_of(
    held_by_schools: bool, coordinates_units: bool, runs_server: bool, made_by_parta: bool
) -> Scope:
    """The one rule of what an erasure takes. The account goes only when it is the
    schools' to take and nothing holds the person any more: no school has them on its
    roster and they coordinate no unit. The schools' to take: Parta made it for them
    (``made_by_parta``: an import's or a sign-in code's account, one the invitation page
    registered) — an account the person made on the server themself, or another party
    made, is not a school's, and a school that enrolled it erases only its own part; nor
    is one that runs the server (an operator's, Parta's own: ``runs_server``). The
    operator's erasure of the whole account asks with ``made_by_parta`` true and
    ``coordinates_units`` false: the account is the operator's to take."""
    if held_by_schools or coordinates_units or runs_server or not made_by_parta:
        return "school"
    return "account"


# -- retention ----------------------------------------------------------------------

# Kinds a school sets a rule for: rooms (through m.room.retention) and the module's data.
RETENTION_ROOM_KINDS: tuple[str, ...] = ("class_chat", "parents_chat", "announcements", "staff")
RETENTION_DATA_KINDS: tuple[str, ...] = ("attendance", "recordings", "audit")
DAY_MS = 86_400_000


def retention_refusal(kind: str, days: int, limits: Any) -> tuple[int, int] | None:
    """``None`` when ``days`` is within the operator's limits for ``kind``, else the
    allowed range (``limits``: config.RetentionLimits)."""
    longest = int(getattr(limits, kind))
    if limits.min_days <= days <= longest:
        return None
    return int(limits.min_days), longest


def retention_content(days: int) -> dict[str, int]:
    """The ``m.room.retention`` state for a room kept ``days`` days."""
    return {"max_lifetime": days * DAY_MS}


def retention_cutoff(now_ms: int, days: int) -> int:
    """Rows that ended before this are older than the rule."""
    return now_ms - days * DAY_MS


def audit_trim_point(
    entries: Sequence[Entry],
    after: tuple[int, str],
    cutoffs: Mapping[str, int],
    default_cutoff: int,
) -> Entry | None:
    """The last entry of the chain's front that may go (``None``: none), walking from
    ``after`` (the anchor's ``(seq, hash)``, or ``(0, GENESIS)``).

    One chain runs across schools, so only a front can go: an entry goes when it is
    older than its school's rule (``cutoffs``: school → the time before which its
    entries go) or, an entry of no school or of a school without a rule, than the
    operator's limit (``default_cutoff``) — and so is every entry before it. The walk
    stops at the first entry to keep, and at the first that is not whole (changed,
    missing, re-linked): a trim never removes the evidence of a break.
    """
    expected_seq, prev_hash = after[0] + 1, after[1]
    last: Entry | None = None
    for entry in entries:
        if (
            entry.seq != expected_seq
            or entry.prev_hash != prev_hash
            or entry.expected_hash() != entry.hash
        ):
            break
        school = entry.school_id
        if entry.ts >= (cutoffs.get(school, default_cutoff) if school else default_cutoff):
            break
        last = entry
        expected_seq, prev_hash = entry.seq + 1, entry.hash
    return last
