"""Members of a school: roles, classes, children; batches; bringing people into their rooms."""

from collections.abc import Awaitable, Callable, Iterable
from typing import TYPE_CHECKING, Any

from synapse.module_api import (
    SynapseRequest,
)
from synapse.module_api.errors import Codes, SynapseError

from parta_common.roles import Role

from ..concurrency import gather_limited
from ..errors import forbidden, matrix_error, not_found
from ..http import check_json
from ..query import query_string
from . import rules
from . import store as db
from . import texts as msg
from .rules import JOIN_STAGE, OPEN_KINDS, Person, SchoolRoom, Standing

if TYPE_CHECKING:
    pass

from .core import (
    ACCOUNTS_AT_ONCE,
    BATCH_CONCURRENCY,
    ROOMS_AT_ONCE,
    SIGN_IN_CODE_LIFETIME_MS,
    RosterCore,
    bad,
    code_hash,
    now_ms,
    standing_json,
)
from .requests import BATCH_MEMBERS_SCHEMA, PUT_MEMBER_SCHEMA, USER_ID_SCHEMA


class MembersApi(RosterCore):
    async def add_parent(self, school_id: str, parent: str, child: str, actor: str) -> Standing:
        """Make ``parent`` a parent of ``child`` (a confirmed parent link)."""
        return await self._update_member(
            await self._school(school_id),
            parent,
            actor,
            add_roles={Role.PARENT},
            add_children={child},
        )

    # -- members ----------------------------------------------------------------

    async def get_members(
        self, request: SynapseRequest, school_id: str
    ) -> tuple[int, dict[str, Any]]:
        user_id, school = await self._open(request, school_id)
        standing = await self._require_member_or_manager(user_id, school)
        if not await self._may_manage(user_id, school) and (
            standing is None or not standing.is_staff
        ):
            raise forbidden(msg.NOT_SCHOOL_STAFF)
        role = self.query_role(request)
        class_id = query_string(request, "class_id")
        if await self._may_manage(user_id, school):
            # An administrator's read of personal data is recorded (docs/privacy.md).
            details = {
                k: v for k, v in (("role", role and role.value), ("class_id", class_id)) if v
            }
            await self.audit(user_id, "members.read", school_id, school_id, details)
        found = await self.members_of_school(school_id, role, class_id)
        ids = [uid for uid, _ in found]
        waiting = await self.store.run("parta_not_signed_in", db.not_signed_in_txn, ids)
        names = await self.display_names(ids)
        out = [
            {
                **standing_json(uid, s),
                "display_name": names.get(uid, uid),
                **({"signed_in": False} if uid in waiting else {}),
            }
            for uid, s in found
        ]
        return 200, {"members": out}

    async def put_member(
        self, request: SynapseRequest, school_id: str, target: str
    ) -> tuple[int, dict[str, Any]]:
        user_id, school, body = await self._open_body(request, school_id, PUT_MEMBER_SCHEMA)
        await self._require_user(target)
        roles = {Role(r) for r in body["roles"]}
        class_ids = set(body.get("classes", []))
        children = set(body.get("children", []))
        homeroom_of = set(body.get("homeroom_of", []))
        if not await self._may_manage(user_id, school):
            # A teacher: only their own students, only within their own classes.
            refusal = rules.teacher_may_put_member(
                (await self.get_person(user_id)).standing(school_id),
                await self.get_person(target),
                school_id,
                frozenset(roles),
                frozenset(class_ids),
                other=bool(children or homeroom_of),
            )
            if refusal is None and await self.api.is_user_admin(target):
                refusal = rules.TEACHER_CHANGES_OWN_STUDENTS
            if refusal is not None:
                raise forbidden(refusal)
        classes = await self._validate_member(school, roles, class_ids, children, homeroom_of)
        async with self.standing_locks.hold((school_id, target)):
            standing = await self._put_member(
                school, target, roles, classes, children, homeroom_of, user_id
            )
        return 200, standing_json(target, standing)

    async def post_members_batch(
        self, request: SynapseRequest, school_id: str
    ) -> tuple[int, dict[str, Any]]:
        """Many people at once (an enrolment, a roster sync): all checked first, written in
        one transaction, then Matrix brought in step for each."""
        user_id, school, body = await self._open_body(
            request, school_id, BATCH_MEMBERS_SCHEMA, "manager"
        )
        return 200, {"members": await self.members_batch(user_id, school, body["members"])}

    async def members_batch(
        self, user_id: str, school: db.School, entries: list[dict[str, Any]]
    ) -> list[dict[str, Any]]:
        """A batch of members from a manager of the school (``POST .../members/batch``
        and the roster import: one path, one set of checks)."""
        school_id = school.school_id
        targets = [e["user_id"] for e in entries]
        if len(set(targets)) != len(targets):
            raise bad(msg.BATCH_DUPLICATE)
        all_classes = {
            c.class_id: c
            for c in await self.store.run(
                "parta_list_classes", db.list_classes_txn, school_id, None, True
            )
        }
        batch_students = frozenset(e["user_id"] for e in entries if "student" in e["roles"])
        plan: list[tuple[str, set[Role], dict[str, Role], set[str], set[str]]] = []
        new_accounts: list[tuple[str, str, str]] = []  # (user_id, display name, code hash)
        recorded, existing = await self.store.run(
            "parta_import_accounts",
            db.import_accounts_txn,
            [e["user_id"] for e in entries if "account" in e],
        )
        for index, entry in enumerate(entries):
            try:
                account = entry.get("account")
                if account is None:
                    await self._require_user(entry["user_id"])
                elif await self._account_to_make(
                    entry["user_id"],
                    account["sign_in_code"],
                    recorded.get(entry["user_id"]),
                    entry["user_id"] in existing,
                ):
                    new_accounts.append(
                        (
                            entry["user_id"],
                            account["display_name"],
                            code_hash(account["sign_in_code"]),
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
        # Everything is checked: make the accounts (the codes first, in one transaction,
        # so a batch sent again after a crash finds its own half-made accounts), then
        # the roster.
        made_ts = now_ms()
        taken = await self.store.run(
            "parta_put_sign_ins",
            db.put_sign_in_codes_txn,
            [(uid, h) for uid, _, h in new_accounts],
            user_id,
            made_ts,
            made_ts + SIGN_IN_CODE_LIFETIME_MS,
        )
        if taken:
            raise matrix_error(409, Codes.USER_IN_USE, msg.USERNAME_TAKEN, user_id=taken[0])
        await gather_limited(
            [self._make_account(uid, name) for uid, name, _ in new_accounts],
            ACCOUNTS_AT_ONCE,
        )
        # One change of a person at a time (``standing_locks``), rooms included.
        async with self.standing_locks.hold_all((school_id, t) for t in targets):
            before = await self.store.run("parta_people", db.get_people_txn, targets)
            await self.store.run(
                "parta_put_members", _put_members_txn, school_id, plan, user_id, now_ms()
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
            for target in targets:
                if before[target].reads_units != after[target].reads_units:
                    await self._sync_unit_rooms(before[target], after[target])
        made = {uid for uid, _, _ in new_accounts}
        return [
            {
                **standing_json(t, after[t].standing(school_id) or Standing(school_id)),
                **({"account_created": True} if t in made else {}),
                **({"signed_in": False} if t in waiting else {}),
            }
            for t in targets
        ]

    async def _account_to_make(
        self, user_id: str, code: str, recorded: str | None, exists: bool
    ) -> bool:
        """Whether an import's new person needs their account made (False: it is there,
        made by an earlier try of the same import). 409 if the name is someone else's.
        ``recorded``: the code hash the roster has for them; ``exists``: Synapse has the
        account (both read for the whole batch at once)."""
        check_json(user_id, USER_ID_SCHEMA)
        if not self.api.is_mine(user_id):
            raise not_found(msg.USER_NOT_FOUND, user_id=user_id)
        if recorded is not None and recorded == code_hash(code):
            return not exists
        if exists or recorded is not None:
            raise matrix_error(409, Codes.USER_IN_USE, msg.USERNAME_TAKEN, user_id=user_id)
        # 400 M_INVALID_USERNAME for a name Synapse would not take.
        await self.api.check_username(user_id[1:].split(":", 1)[0])
        return True

    def _make_account(self, user_id: str, display_name: str) -> Callable[[], Awaitable[None]]:
        async def make() -> None:
            try:
                await self.api.register_user(user_id[1:].split(":", 1)[0], display_name)
            except SynapseError as e:
                # Made meanwhile by the same import sent again: its code is recorded.
                if e.errcode != Codes.USER_IN_USE:
                    raise

        return make

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
                raise bad(msg.CLASS_NOT_FOUND, class_id=class_id)
            if cls.archived:
                raise bad(msg.CLASS_ARCHIVED, class_id=class_id)
        if homeroom_of and not roles & {Role.TEACHER, Role.ADMINISTRATOR}:
            raise bad(msg.CLASSES_NEED_ROLE)
        if Role.STUDENT in roles:
            if Role.TEACHER in roles:
                # One person, both learning and teaching in one school: ambiguous classes.
                raise bad(msg.CLASSES_NEED_ROLE)
            if len(class_ids) != 1:
                raise bad(msg.ROLE_NEEDS_CLASS)
            return {next(iter(class_ids)): Role.STUDENT}
        if class_ids and Role.TEACHER not in roles:
            raise bad(msg.CLASSES_NEED_ROLE)
        if Role.PARENT in roles and not children:
            raise bad(msg.PARENT_NEEDS_CHILD)
        if children and Role.PARENT not in roles:
            raise bad(msg.PARENT_NEEDS_CHILD)
        if children - batch_students:
            people = await self.store.run(
                "parta_people", db.get_people_txn, children - batch_students
            )
            for child in children - batch_students:
                s = people[child].standing(school.school_id)
                if s is None or Role.STUDENT not in s.roles:
                    raise bad(msg.CHILD_NOT_STUDENT, user_id=child)
        return dict.fromkeys(class_ids, Role.TEACHER)

    async def delete_member(
        self, request: SynapseRequest, school_id: str, target: str
    ) -> tuple[int, dict[str, Any]]:
        user_id, _school = await self._open(request, school_id, "manager")
        await self.remove_member(user_id, school_id, target)
        return 200, {"user_id": target, "removed": True}

    async def remove_member(self, user_id: str, school_id: str, target: str) -> None:
        """Take someone out of a school (``DELETE .../members/{user}``, the import's
        leavers); the caller has checked ``user_id`` manages the school."""
        if not await self.remove_from_school(school_id, target, user_id):
            # Never answer "removed" for someone who was not there (a mistyped ID).
            raise not_found(msg.NOT_A_MEMBER, user_id=target)

    async def remove_from_school(self, school_id: str, target: str, actor: str) -> bool:
        """Take ``target`` out of the school's roster and rooms (power levels re-derived);
        ``False`` when they were not in it (the erasure's roster step, run again). Under
        ``standing_locks``: a PUT at that moment found the rooms not left yet."""
        async with self.standing_locks.hold((school_id, target)):
            return await self._remove_from_school(school_id, target, actor)

    async def _remove_from_school(self, school_id: str, target: str, actor: str) -> bool:
        before = await self.get_person(target)
        if before.standing(school_id) is None:
            return False
        parents = await self.store.run("parta_parents_of", db.parents_of_txn, school_id, target)
        await self.store.run(
            "parta_remove_member", db.remove_member_txn, school_id, target, actor, now_ms()
        )
        await self._forget([target, *parents])
        after = await self.get_person(target)
        await self._reconcile(school_id, before, after)
        if before.reads_units != after.reads_units:
            await self._sync_unit_rooms(before, after)
        for parent in parents:
            # Their child left: they may no longer belong in the class's parents chat.
            now = await self.get_person(parent)
            await self._reconcile(school_id, now, now, full=True)
        return True

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
        async with self.standing_locks.hold((school.school_id, target)):
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
            now_ms(),
        )
        await self._forget([target])
        after = await self.get_person(target)
        await self._reconcile(school.school_id, before, after)
        if before.reads_units != after.reads_units:
            await self._sync_unit_rooms(before, after)
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
        first_sign_in: bool = False,
    ) -> bool:
        """Bring Matrix in step with the roster for one person in one school.

        Returns whether the person's staff standing was or is involved (power levels
        depend on it); with ``sync_power`` they are brought in step here too. Someone an
        import made an account for, who has not signed in yet (``signed_in`` False, read
        when None), joins only the school-wide rooms now, in the background
        (``open_rooms_at_import``), and leaves them when they leave the school; their
        first sign-in (``on_user_login``, ``first_sign_in``) joins the rest.
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
            await self._open_rooms_before_sign_in(school_id, before, after, full, rooms)
            staff = bool(b and b.is_staff) or bool(a and a.is_staff)
            if staff and sync_power:
                await self._sync_power_levels(school_id, rooms)
            return staff
        expected = rules.expected_rooms(after, rooms)
        had = set() if full else set(rules.expected_rooms(before, rooms))
        # Spaces first: restricted rooms need the space membership to join. The rooms of
        # one stage are joined together: each membership event is a chain of a few dozen
        # database transactions, and rooms do not wait for each other in Synapse.
        jobs: dict[int, list[Callable[[], Awaitable[bool]]]] = {}
        for room in rooms:
            if room.room_id in expected:
                # A first sign-in finds the school-wide rooms joined at the import: those
                # are read first, so that a join already made sends nothing.
                absent = not full and room.room_id not in had
                if first_sign_in and room.kind in OPEN_KINDS:
                    absent = False
                jobs.setdefault(JOIN_STAGE.get(room.kind, 2), []).append(
                    self._joining(room, after.user_id, absent)
                )
            elif not room.archived:
                was_in = full or (b is not None and rules.belongs_in(b, room))
                now_in = a is not None and rules.belongs_in(a, room)
                if was_in and not now_in:
                    jobs.setdefault(3, []).append(self._leaving(room, after.user_id))
        for stage in sorted(jobs):
            await gather_limited(jobs[stage], ROOMS_AT_ONCE)
        # Power levels change only when someone's staff standing changed.
        staff = bool(b and b.is_staff) or bool(a and a.is_staff)
        if staff and sync_power:
            await self._sync_power_levels(school_id, rooms)
        return staff

    async def _open_rooms_before_sign_in(
        self,
        school_id: str,
        before: Person,
        after: Person,
        full: bool,
        rooms: list[SchoolRoom],
    ) -> None:
        """The school-wide rooms (``OPEN_KINDS``) of someone who has not signed in yet:
        left now when the roster no longer puts them there (removed, erased); queued to
        be joined in the background when it newly does (an import, a batch) and
        ``open_rooms_at_import`` is on. Their class's rooms wait for the first sign-in."""
        b = before.standing(school_id)
        a = after.standing(school_id)
        expected = rules.expected_rooms(after, rooms)
        had = set() if full else set(rules.expected_rooms(before, rooms))
        leaving: list[Callable[[], Awaitable[bool]]] = []
        joining = False
        for room in rooms:
            if room.kind not in OPEN_KINDS or room.archived:
                continue
            if room.room_id in expected:
                joining = joining or room.room_id not in had
            elif (full or (b is not None and rules.belongs_in(b, room))) and not (
                a is not None and rules.belongs_in(a, room)
            ):
                leaving.append(self._leaving(room, after.user_id))
        await gather_limited(leaving, ROOMS_AT_ONCE)
        if joining and self.config.open_rooms_at_import:
            self.open_room_joins.add(after.user_id)

    async def _join_open_rooms(self, user_id: str) -> None:
        """Join someone not signed in yet to the school-wide rooms of their schools
        (``open_room_joins``, spaces first). Best effort, no journal: what a restart
        loses, their first sign-in joins; each room's membership is read first, so a
        room already joined (a batch sent again) sends nothing."""
        if not await self.store.run("parta_not_signed_in", db.not_signed_in_txn, [user_id]):
            return  # signed in meanwhile: the first sign-in joins their rooms
        person = await self.get_person(user_id)
        for school_id in sorted(person.schools):
            rooms = await self.store.run("parta_school_rooms_full", db.school_rooms_txn, school_id)
            expected = rules.expected_rooms(person, rooms)
            jobs: dict[int, list[Callable[[], Awaitable[bool]]]] = {}
            for room in rooms:
                if room.kind in OPEN_KINDS and room.room_id in expected:
                    jobs.setdefault(JOIN_STAGE.get(room.kind, 2), []).append(
                        self._joining(room, user_id, False)
                    )
            for stage in sorted(jobs):
                await gather_limited(jobs[stage], ROOMS_AT_ONCE)

    def _joining(
        self, room: SchoolRoom, user_id: str, probably_absent: bool
    ) -> Callable[[], Awaitable[bool]]:
        def join() -> Awaitable[bool]:
            return self.structure.ensure_joined(
                room.room_id, room.kind, user_id, probably_absent=probably_absent
            )

        return join

    def _leaving(self, room: SchoolRoom, user_id: str) -> Callable[[], Awaitable[bool]]:
        return lambda: self.structure.ensure_left(room.room_id, user_id)

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
                power = rules.power_in(people[uid].standing(school_id), room)
                if power:
                    users[uid] = power
            await self.structure.set_power_levels(room, users)


def _put_members_txn(
    txn: Any,
    school_id: str,
    plan: list[tuple[str, set[Role], dict[str, Role], set[str], set[str]]],
    actor: str,
    ts: int,
) -> None:
    for target, roles, classes, children, homeroom_of in plan:
        db.put_member_txn(txn, school_id, target, roles, classes, children, homeroom_of, actor, ts)
