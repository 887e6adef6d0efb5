"""Roster imports through the API (the console's OneRoster import).

* ``POST /schools/{schoolId}/imports`` — the files (base64); checks them and answers the
  plan (who is added, moved, changed, removed), changing nothing;
* ``POST /schools/{schoolId}/imports/{importId}/apply`` — runs the plan as a background
  job (202); applying a failed import again resumes it;
* ``GET /schools/{schoolId}/imports/{importId}`` — state, progress, result;
* ``GET /schools/{schoolId}/imports/{importId}/sign_ins`` — the new accounts' sign-in
  codes, for the printed cards.

The plan is ``parta_common.roster_plan`` (the bot's planner); applying calls the roster's
own handlers of ``POST .../classes``, ``POST .../members/batch``, ``DELETE
.../members/{userId}`` and ``PUT .../display_name`` — the same checks, the same audit.
Only the managers of the school (its administrators, its coordinators, the operator) may.
"""

import secrets
import time
from typing import TYPE_CHECKING, Any, Final

import attrs
from synapse.module_api import SynapseRequest
from synapse.module_api.errors import Codes, SynapseError

from parta_common.oneroster import Membership, Roster, RosterErrors
from parta_common.roster_plan import (
    MemberChange,
    SchoolPlan,
    batch_entry,
    card_classes,
    children_of,
    class_body,
    class_titles,
    plan_school,
    school_year,
    sign_in_code,
    username_for,
    wave,
    with_resends,
)

from ..errors import (
    bad_json,
    conflict,
    disk_full,
    disk_full_error,
    matrix_error,
    not_found,
    unique_violation,
)
from ..http import EMPTY_BODY, json_body, requester_id
from ..requests import request_schemas
from . import rules
from . import store as db
from .texts import (
    ANOTHER_RUNNING,
    FILES_REJECTED,
    IMPORT_NOT_FOUND,
    INTERRUPTED,
    NO_FREE_NAME,
    NOT_STARTABLE,
)

if TYPE_CHECKING:
    from .. import PartaModule
    from ..roster.api import Roster as RosterFeature
    from ..roster.core import School

REQUEST_SCHEMAS: Final = request_schemas(__package__)
_CREATE: Final = REQUEST_SCHEMAS["CreateImportRequest"]
# People per batch (the module takes up to 1,000; the bot sends 250 too).
BATCH: Final = 250
# Marking a failed import on a full disk: tried every 5 s for an hour.
FINISH_ATTEMPTS: Final = 720
FINISH_RETRY_SECONDS: Final = 5.0


def _now() -> int:
    return int(time.time() * 1000)


class Imports:
    ROUTES: Final = (
        ("POST", r"/schools/([^/]+)/imports", "post_import"),
        ("GET", r"/schools/([^/]+)/imports/([^/]+)", "get_import"),
        ("POST", r"/schools/([^/]+)/imports/([^/]+)/apply", "post_apply"),
        ("GET", r"/schools/([^/]+)/imports/([^/]+)/sign_ins", "get_sign_ins"),
    )

    def __init__(self, module: "PartaModule"):
        self._module = module
        self._api = module.api
        self._roster: RosterFeature = module.roster
        # Imports that failed while their failure could not be written (a full disk):
        # answered as failed meanwhile, written at the latest when applied again.
        self._failing: dict[str, dict[str, Any]] = {}
        if self._api.should_run_background_tasks():
            self._api.delayed_background_call(
                0, self._fail_interrupted, desc="parta_imports_interrupted"
            )

    async def _fail_interrupted(self) -> None:
        error = SynapseError(
            409, INTERRUPTED.format(), Codes.UNKNOWN, additional_fields=INTERRUPTED.fields()
        ).error_dict(None)
        await self._module.store.run("parta_imports_interrupted", db.interrupted_txn, error)

    # -- routes -------------------------------------------------------------------

    async def _open(self, request: SynapseRequest, school_id: str) -> tuple[str, "School"]:
        user_id = await requester_id(self._api, request)
        school = await self._roster.school(school_id)
        await self._roster.require_manager(user_id, school)
        return user_id, school

    async def _import(self, school_id: str, import_id: str) -> db.Import:
        imp = await self._stored(school_id, import_id)
        error = self._failing.get(import_id)
        if error is not None and imp.state == "running":
            return attrs.evolve(imp, state="failed", error=error)
        return imp

    async def _stored(self, school_id: str, import_id: str) -> db.Import:
        imp = await self._module.store.run("parta_get_import", db.get_import_txn, import_id)
        if imp is None or imp.school_id != school_id:
            raise not_found(IMPORT_NOT_FOUND, import_id=import_id)
        return imp

    async def post_import(
        self, request: SynapseRequest, school_id: str
    ) -> tuple[int, dict[str, Any]]:
        user_id = await requester_id(self._api, request)
        body = json_body(request, _CREATE)
        school = await self._roster.school(school_id)
        await self._roster.require_manager(user_id, school)
        roster, org_id = self._read(body["files"], school)
        plan = await self._plan(roster, org_id, school_id)
        imp = db.Import(
            import_id=f"imp_{secrets.token_hex(8)}",
            school_id=school_id,
            actor=user_id,
            created_ts=_now(),
            state="planned",
            files=body["files"],
            plan=rules.plan_json(plan, roster),
            stage="planned",
            done=0,
            total=rules.total_steps(plan),
            result=None,
            error=None,
        )
        await self._module.store.run("parta_insert_import", db.insert_import_txn, imp)
        await self._roster.audit(
            user_id, "import.plan", school_id, imp.import_id, {"total": imp.total}
        )
        return 201, _import_json(imp)

    async def get_import(
        self, request: SynapseRequest, school_id: str, import_id: str
    ) -> tuple[int, dict[str, Any]]:
        await self._open(request, school_id)
        return 200, _import_json(await self._import(school_id, import_id))

    async def post_apply(
        self, request: SynapseRequest, school_id: str, import_id: str
    ) -> tuple[int, dict[str, Any]]:
        user_id = await requester_id(self._api, request)
        json_body(request, EMPTY_BODY)
        school = await self._roster.school(school_id)
        await self._roster.require_manager(user_id, school)
        imp = await self._import(school_id, import_id)
        if imp.plan.get("empty"):
            await self._module.store.run(
                "parta_import_finish", db.finish_txn, import_id, "done", _EMPTY_RESULT, None
            )
            return 200, _import_json(await self._import(school_id, import_id))
        if (error := self._failing.pop(import_id, None)) is not None:
            await self._module.store.run(
                "parta_import_finish", db.finish_txn, import_id, "failed", None, error
            )
        started = await self._start(school_id, import_id, user_id)
        if not started:
            raise conflict(NOT_STARTABLE, import_id=import_id, state=imp.state)
        self._api.run_as_background_process(
            "parta_import_apply", self._run, school, import_id, user_id
        )
        return 202, _import_json(await self._import(school_id, import_id))

    async def _start(self, school_id: str, import_id: str, actor: str) -> bool:
        """Mark the import running (False: it runs or is done already); 409 while another
        import of the school runs: two plans made from the same roster, applied at once,
        both created every class and person (one at a time: ``parta_imports_running``,
        a unique index, holds it on every process)."""
        running = await self._module.store.run("parta_imports_running", db.running_txn, school_id)
        if running is None or running == import_id:
            try:
                return await self._module.store.run(
                    "parta_import_start", db.start_txn, import_id, actor
                )
            except Exception as e:
                if not unique_violation(e):
                    raise
            running = await self._module.store.run(
                "parta_imports_running", db.running_txn, school_id
            )
        raise conflict(ANOTHER_RUNNING, import_id=running or "—")

    async def get_sign_ins(
        self, request: SynapseRequest, school_id: str, import_id: str
    ) -> tuple[int, dict[str, Any]]:
        user_id, _school = await self._open(request, school_id)
        imp = await self._import(school_id, import_id)
        roster = rules.read_roster(rules_files(imp.files))
        people = await self._module.store.run("parta_import_people", db.people_txn, school_id)
        titles_of = class_titles(roster)
        children = children_of(roster)
        cards = []
        for p in people.values():
            person = roster.people.get(p.source_id)
            if p.import_id != import_id or p.state != "created" or person is None:
                continue
            cards.append(
                {
                    "display_name": p.display_name,
                    "role": person.role.value,
                    "classes": card_classes(p.source_id, titles_of, children),
                    "user_id": p.user_id,
                    "code": p.sign_in_code,
                }
            )
        cards.sort(key=lambda c: (c["classes"], c["role"], c["display_name"]))
        # Codes are first passwords: who read them is in the audit log.
        await self._roster.audit(
            user_id, "import.sign_ins", school_id, import_id, {"count": len(cards)}
        )
        return 200, {"import_id": import_id, "sign_ins": cards}

    # -- planning -----------------------------------------------------------------

    def _read(self, sent: dict[str, str], school: "School") -> tuple[Roster, str]:
        try:
            files = rules.decode_files(sent)
            if isinstance(files, tuple):
                raise bad_json(files[0], **files[1])
            roster = rules.read_roster(files)
        except RosterErrors as e:
            raise matrix_error(
                400, Codes.BAD_JSON, FILES_REJECTED, problems=rules.problems_text(e)
            ) from None
        org = rules.pick_org(roster, school.external_id)
        if isinstance(org, tuple):
            raise bad_json(org[0], **org[1])
        return roster, org

    async def _state(
        self, roster: Roster, school_id: str
    ) -> tuple[dict[str, str], dict[str, db.ImportedPerson], dict[str, Membership]]:
        """What the module holds now, in OneRoster IDs: imported classes, people, and
        what those people are in the school."""
        class_ids = {
            c.external_id: c.class_id
            for c in await self._roster.classes_of_school(school_id)
            if c.external_id
        }
        ext_of = {v: k for k, v in class_ids.items()}
        people = await self._module.store.run("parta_import_people", db.people_txn, school_id)
        made = {sid: p.user_id for sid, p in people.items() if p.state == "created"}
        by_user = {u: s for s, u in made.items()}
        standings = await self._roster.standings(made.values(), school_id)
        current = {
            by_user[uid]: Membership(
                roles=frozenset(s.roles),
                classes=frozenset(ext_of.get(c, c) for c in s.teaches | s.learns_in),
                children=frozenset(by_user.get(c, c) for c in s.children),
                homeroom_of=frozenset(ext_of.get(c, c) for c in s.homeroom_of),
            )
            for uid, s in standings.items()
        }
        return class_ids, people, current

    async def _plan(self, roster: Roster, org_id: str, school_id: str) -> SchoolPlan:
        class_ids, people, current = await self._state(roster, school_id)
        made = {sid: p.user_id for sid, p in people.items() if p.state == "created"}
        names = {sid: p.display_name for sid, p in people.items() if p.state == "created"}
        return plan_school(roster, org_id, school_id, class_ids, made, names, current)

    # -- applying -----------------------------------------------------------------

    async def _run(self, school: "School", import_id: str, actor: str) -> None:
        try:
            result = await self._apply(school, import_id, actor)
        except SynapseError as e:
            await self._module.store.run(
                "parta_import_finish", db.finish_txn, import_id, "failed", None, e.error_dict(None)
            )
            return
        except Exception as e:
            if not disk_full(e):
                await self._finish_failed(
                    import_id, {"errcode": Codes.UNKNOWN, "error": "internal error"}
                )
                raise
            # Stopped with nothing half-done (each step is its own transaction, rolled back):
            # applied again once there is space, only what is left is done.
            await self._finish_failed(import_id, disk_full_error().error_dict(None))
            return
        await self._module.store.run(
            "parta_import_finish", db.finish_txn, import_id, "done", result, None
        )

    async def _finish_failed(self, import_id: str, error: dict[str, Any]) -> None:
        """Mark the import failed; on a full disk that write may fail too, so it is tried
        again until it lands (else the import stayed "running" and could not be resumed)."""
        self._failing[import_id] = error
        for attempt in range(FINISH_ATTEMPTS):
            if import_id not in self._failing:
                return  # written by an apply meanwhile
            try:
                await self._module.store.run(
                    "parta_import_finish", db.finish_txn, import_id, "failed", None, error
                )
                self._failing.pop(import_id, None)
                return
            except Exception as e:
                if not disk_full(e) or attempt == FINISH_ATTEMPTS - 1:
                    raise
                await self._api.sleep(FINISH_RETRY_SECONDS)

    async def _progress(self, import_id: str, stage: str, done: int, total: int) -> None:
        await self._module.store.run(
            "parta_import_progress", db.progress_txn, import_id, stage, done, total
        )

    async def _apply(self, school: "School", import_id: str, actor: str) -> dict[str, Any]:
        """The plan made again from the same files against the roster as it is now (so
        applying twice, or after a crash, does only what is left), then applied."""
        await self._roster.require_manager(actor, school)
        school_id = school.school_id
        imp = await self._import(school_id, import_id)
        roster, org_id = self._read(imp.files, school)
        plan = await self._plan(roster, org_id, school_id)
        total = rules.total_steps(plan)
        result = dict.fromkeys(
            (
                "created_classes",
                "created_accounts",
                "set_members",
                "removed",
                "renamed",
                "rename_refused",
            ),
            0,
        )
        done = 0
        await self._progress(import_id, "classes", done, total)
        class_ids = dict(plan.class_ids)
        year = roster.school_year or school_year()
        for cid in plan.create_classes:
            cls = roster.classes[cid]
            created = await self._roster.create_class(actor, school, class_body(cls, year))
            class_ids[cid] = str(created["class_id"])
            result["created_classes"] += 1
            done += 1
            await self._progress(import_id, "classes", done, total)

        people = await self._module.store.run("parta_import_people", db.people_txn, school_id)
        changes = with_resends(
            roster,
            org_id,
            plan.set_members,
            [sid for sid, p in people.items() if p.state == "claimed"],
        )
        for change in changes:
            if change.source_id not in people:
                person = roster.people[change.source_id]
                people[change.source_id] = await self._claim(
                    school_id, import_id, change, username_for(person)
                )
        waves: list[list[MemberChange]] = [[], [], []]
        for change in changes:
            waves[wave(change.after)].append(change)
        for group in waves:
            for start in range(0, len(group), BATCH):
                chunk = group[start : start + BATCH]
                answer = await self._batch(school, actor, chunk, people, class_ids)
                result["created_accounts"] += sum(1 for m in answer if m.get("account_created"))
                result["set_members"] += len(chunk)
                done += len(chunk)
                await self._progress(import_id, "members", done, total)

        for sid, user_id, _before, now in plan.renames:
            try:
                await self._roster.rename_member(actor, school_id, user_id, now)
            except SynapseError as e:
                if e.code != 403:
                    raise
                # Also in a school or unit the importer does not manage: the name is the
                # whole account's (rules.may_rename_account). Left as it is, counted; the
                # next import asks again.
                result["rename_refused"] += 1
            else:
                await self._module.store.run(
                    "parta_import_rename", db.rename_txn, school_id, sid, now
                )
                result["renamed"] += 1
            done += 1
            await self._progress(import_id, "renames", done, total)
        for user_id, _name in plan.remove_members:
            await self._roster.remove_member(actor, school_id, user_id)
            result["removed"] += 1
            done += 1
            await self._progress(import_id, "leavers", done, total)
        await self._progress(import_id, "done", total, total)
        return result

    async def _claim(
        self, school_id: str, import_id: str, change: MemberChange, stem: str
    ) -> db.ImportedPerson:
        """A free account name for a new person, recorded with their code first."""
        domain = self._api.server_name
        for attempt in range(20):
            name = stem if attempt == 0 else f"{stem}-{secrets.token_hex(2)}"
            user_id = f"@{name}:{domain}"
            taken = await self._module.store.run(
                "parta_import_name_taken", db.user_id_taken_txn, user_id
            )
            if taken or await self._roster.account_exists(user_id):
                continue
            person = db.ImportedPerson(
                change.source_id, user_id, change.display_name, "claimed", sign_in_code(), import_id
            )
            try:
                await self._module.store.run("parta_import_claim", db.claim_txn, school_id, person)
            except Exception as e:
                # Another school's import claimed the same name at the same moment (a
                # district imports its schools together): the next free one, as above.
                if not unique_violation(e):
                    raise
                continue
            return person
        raise matrix_error(409, Codes.USER_IN_USE, NO_FREE_NAME, name=stem)

    async def _batch(
        self,
        school: "School",
        actor: str,
        chunk: list[MemberChange],
        people: dict[str, db.ImportedPerson],
        class_ids: dict[str, str],
    ) -> list[dict[str, Any]]:
        ids = {sid: p.user_id for sid, p in people.items()}
        entries = [
            batch_entry(
                c,
                ids,
                class_ids,
                {
                    "display_name": people[c.source_id].display_name,
                    "sign_in_code": people[c.source_id].sign_in_code,
                }
                if people[c.source_id].state == "claimed"
                else None,
            )
            for c in chunk
        ]
        answer = await self._roster.members_batch(actor, school, entries)
        await self._module.store.run(
            "parta_import_created",
            db.mark_created_txn,
            school.school_id,
            [c.source_id for c in chunk if people[c.source_id].state == "claimed"],
        )
        for c in chunk:
            p = people[c.source_id]
            if p.state == "claimed":
                people[c.source_id] = db.ImportedPerson(
                    p.source_id, p.user_id, p.display_name, "created", p.sign_in_code, p.import_id
                )
        return answer


_EMPTY_RESULT: Final = dict.fromkeys(
    (
        "created_classes",
        "created_accounts",
        "set_members",
        "removed",
        "renamed",
        "rename_refused",
    ),
    0,
)


def rules_files(sent: dict[str, str]) -> dict[str, bytes]:
    files = rules.decode_files(sent)
    assert not isinstance(files, tuple)  # they were read when the import was made
    return files


def _import_json(imp: db.Import) -> dict[str, Any]:
    return {
        "import_id": imp.import_id,
        "school_id": imp.school_id,
        "state": imp.state,
        "created_ts": imp.created_ts,
        "plan": imp.plan,
        "progress": {
            "stage": imp.stage,
            "done": imp.done,
            "total": imp.total,
            "percent": 100
            if imp.state == "done"
            else (100 * imp.done // imp.total if imp.total else 0),
        },
        **({"result": imp.result} if imp.result is not None else {}),
        **({"error": imp.error} if imp.error is not None else {}),
    }


def _percent(imp: db.Import) -> int:
    if imp.state == "done":
        return 100
    return 100 * imp.done // imp.total if imp.total else 0
