"""Roster sync: make the module's schools match OneRoster files, changing only the difference.

    python -m bridge.roster_sync -c bridge.yaml (--login var/operator.txt | --token-file F)
        [--dry-run] [--codes sign-in.csv] path/to/oneroster.zip|dir

The CLI acts with the person's own rights: it signs in with their name and password
(``--login``, a file of two lines as ``make run`` writes ``var/operator.txt``; the session
is ended afterwards) or uses their access token (``--token-file``). The bot's own import
(a ZIP sent in a direct chat) acts for the person on their «да» instead.

The plan compares what the files say with what the module holds now (schools and
classes found by ``external_id`` = the OneRoster ``sourcedId``; people through the
bot's ``roster_person`` table): schools and classes to create, accounts to create,
memberships to set (new people, moves between classes, new roles or children) and
leavers to remove. Applying the same files again finds nothing to do.

Accounts are claimed in ``roster_person`` (with their sign-in code) before they are
registered, so an import stopped half-way and started again neither duplicates nor
loses anyone.

Longer than 600 lines because reading the files, planning and applying the plan are
one resumable flow whose steps share the claims above; the planning is pure.
"""

import argparse
import asyncio
import contextlib
import csv
import io
import logging
import re
import secrets
import sys
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiohttp
import attrs
from mautrix.util.async_db import Database

from bridge.api import ApiError, ModuleClient
from bridge.config import BridgeConfig, load
from bridge.db import create_database
from parta_common import catalogue
from parta_common.catalogue import LANGUAGES
from parta_common.messages import Message
from parta_common.oneroster import Membership, Person, Roster, RosterErrors, read_path
from parta_common.roles import Role
from parta_common.roster_plan import (
    MemberChange,
    SchoolPlan,
    batch_entry,
    card_classes,
    changes,
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

logger = logging.getLogger(__name__)

# Parallel requests while applying: Synapse serialises per room anyway; a few keep it busy.
CONCURRENCY = 4
# People per batch request (the module takes up to 1,000).
BATCH = 250
_TAKEN_INDEX = re.compile(r"members/(\d+) ")

Progress = Callable[[str, int, int], None]


@attrs.frozen
class Plan:
    schools: tuple[SchoolPlan, ...]
    roster: Roster

    @property
    def empty(self) -> bool:
        return all(s.empty for s in self.schools)

    def describe(self, language: str | None = None) -> str:
        """The plan in ``language``; in each language, one after the other, for ``None``."""
        if language is None:
            return in_every_language(self.describe)
        if self.empty:
            return _say(language, "nothing")
        lines = []
        for s in self.schools:
            lines.append(
                _say(language, "school" if s.school_id is not None else "new_school", name=s.name)
            )
            moves, new, other = s.moves, s.new_members, s.other_changes

            def count(what: str, n: int) -> None:
                lines.append("  " + _say(language, what, count=n))

            count("create_classes", len(s.create_classes))
            count("create_accounts", len(s.create_accounts))
            count("add_members", len(new))
            count("move_members", len(moves))
            for c in moves[:20]:
                assert c.before is not None
                lines.append(
                    f"    {c.display_name}: {self._titles(c.before.classes)} → "
                    f"{self._titles(c.after.classes)}"
                )
            count("other_changes", other)
            count("remove_members", len(s.remove_members))
            for _, name in s.remove_members[:20]:
                lines.append(f"    {name}")
            if s.renames:
                count("renames", len(s.renames))
                for _, _, before, now in s.renames[:20]:
                    lines.append(f"    {before} → {now}")
        return "\n".join(lines)

    def _titles(self, classes: frozenset[str]) -> str:
        names = sorted(self.roster.classes[c].title for c in classes if c in self.roster.classes)
        return ", ".join(names) or "—"


@attrs.frozen
class SignIn:
    display_name: str
    role: str
    classes: str
    user_id: str
    code: str


@attrs.define
class Result:
    created_schools: int = 0
    created_classes: int = 0
    created_accounts: int = 0
    set_members: int = 0
    removed: int = 0
    renamed: int = 0
    rename_refused: int = 0  # also somewhere the importer does not manage (docs/roles.md)
    sign_ins: list[SignIn] = attrs.Factory(list)
    seconds: float = 0.0
    timings: dict[str, float] = attrs.Factory(dict)

    def describe(self, language: str | None = None) -> str:
        """What was done, in ``language`` (each language, one line each, for ``None``)."""
        if language is None:
            return "\n".join(self.describe(lang) for lang in LANGUAGES)
        done = _say(
            language,
            "done",
            seconds=f"{self.seconds:.1f}",
            schools=self.created_schools,
            classes=self.created_classes,
            accounts=self.created_accounts,
            members=self.set_members,
            removed=self.removed,
            renamed=self.renamed,
        )
        if not self.rename_refused:
            return done
        return f"{done} {_say(language, 'rename_refused', count=self.rename_refused)}"


def _say(language: str, what: str, **params: object) -> str:
    return catalogue.text(f"roster_plan.{what}", language, **params)


def in_every_language(render: Callable[[str], str]) -> str:
    """A text for a reader whose language is not known: each language, a blank line between."""
    return "\n\n".join(render(lang) for lang in LANGUAGES)


def username_for_id(user_id: str) -> str:
    return user_id[1:].split(":", 1)[0]


class RosterSync:
    """Plans and applies a roster as ``actor`` (the operator or a school administrator)."""

    def __init__(self, db: Database, module: ModuleClient, actor: str, domain: str):
        self.db = db
        self.module = module
        self.actor = actor
        self.domain = domain

    async def known_people(self) -> dict[str, str]:
        rows = await self.db.fetch(
            "SELECT source_id, user_id FROM roster_person WHERE state='created'"
        )
        return {r["source_id"]: r["user_id"] for r in rows}

    async def claimed_people(self) -> dict[str, str]:
        """source_id → user_id of everyone the bot has named, made or not yet."""
        rows = await self.db.fetch("SELECT source_id, user_id FROM roster_person")
        return {r["source_id"]: r["user_id"] for r in rows}

    async def _states(self) -> dict[str, str]:
        rows = await self.db.fetch("SELECT source_id, state FROM roster_person")
        return {r["source_id"]: r["state"] for r in rows}

    async def plan(self, roster: Roster) -> Plan:
        known = await self.known_people()
        names = {
            r["source_id"]: r["display_name"]
            for r in await self.db.fetch("SELECT source_id, display_name FROM roster_person")
        }
        by_user = {u: s for s, u in known.items()}
        schools = []
        for org in roster.schools.values():
            existing = await self.module.school_by_external_id(self.actor, org.source_id)
            school_id = str(existing["school_id"]) if existing else None
            class_ids: dict[str, str] = {}
            current: dict[str, Membership] = {}
            if school_id:
                class_ids = await self._class_ids(school_id)
                current = await self._current(school_id, class_ids, by_user)
            schools.append(
                plan_school(roster, org.source_id, school_id, class_ids, known, names, current)
            )
        return Plan(tuple(schools), roster)

    async def _class_ids(self, school_id: str) -> dict[str, str]:
        """OneRoster class sourcedId → the module's class_id, for classes it imported."""
        return {
            str(cls["external_id"]): str(cls["class_id"])
            for cls in await self.module.classes(self.actor, school_id)
            if cls.get("external_id")
        }

    async def _current(
        self, school_id: str, class_ids: dict[str, str], by_user: dict[str, str]
    ) -> dict[str, Membership]:
        """What the module holds for the people the bot imported, in OneRoster IDs."""
        ext_of = {v: k for k, v in class_ids.items()}
        current = {}
        for m in await self.module.members(self.actor, school_id):
            sid = by_user.get(m["user_id"])
            if sid is None:
                continue  # someone who joined by other means: not the roster's to change
            current[sid] = Membership(
                roles=frozenset(Role(r) for r in m.get("roles", [])),
                classes=frozenset(ext_of.get(c, c) for c in m.get("classes", [])),
                children=frozenset(by_user.get(c, c) for c in m.get("children", [])),
                homeroom_of=frozenset(ext_of.get(c, c) for c in m.get("homeroom_of", [])),
            )
        return current

    async def _member_changes(
        self,
        roster: Roster,
        wanted: dict[str, Membership],
        school_id: str,
        class_ids: dict[str, str],
        known: dict[str, str],
    ) -> list[MemberChange]:
        by_user = {u: s for s, u in known.items()}
        return changes(roster, wanted, await self._current(school_id, class_ids, by_user))

    async def apply(self, plan: Plan, import_id: str, progress: Progress | None = None) -> Result:
        started = time.monotonic()
        result = Result()
        roster = plan.roster
        report = progress or (lambda stage, done, total: None)
        for s in plan.schools:
            await self._apply_school(s, roster, import_id, report, result)
        result.sign_ins = await self.sign_ins(import_id, roster)
        result.seconds = time.monotonic() - started
        return result

    async def _apply_school(
        self, s: SchoolPlan, roster: Roster, import_id: str, report: Progress, result: Result
    ) -> None:
        t0 = time.monotonic()
        wanted = roster.memberships(s.source_id)
        school_id = s.school_id
        if school_id is None:
            org = roster.schools[s.source_id]
            created = await self.module.create_school(
                self.actor, {"name": org.name, "external_id": org.source_id}
            )
            school_id = str(created["school_id"])
            result.created_schools += 1
        class_ids = dict(s.class_ids)
        year = roster.school_year or school_year()

        async def create_class(cid: str) -> None:
            cls = roster.classes[cid]
            created = await self.module.create_class(self.actor, school_id, class_body(cls, year))
            class_ids[cid] = str(created["class_id"])
            result.created_classes += 1

        # Each class is its own rooms, so a few are made at once.
        await self._run_all(
            [create_class(cid) for cid in s.create_classes],
            lambda done: report(_both("stage_classes"), done, len(s.create_classes)),
        )
        _add(result.timings, "school and classes", time.monotonic() - t0)

        t0 = time.monotonic()
        # People in waves — staff, students, parents (a parent's children must be
        # students by then) — each in batches the module checks whole before writing.
        # New people's accounts are claimed here (with their sign-in code) before the
        # module makes them, so a restart finds the same names and codes again.
        ids = await self.claimed_people()
        changes = await self._member_changes(roster, wanted, school_id, class_ids, ids)
        states = await self._states()
        # Claimed before a restart, and the module took them but the bot did not hear
        # it: sent again (the module knows the code and makes nothing twice).
        changes = with_resends(
            roster, s.source_id, changes, [sid for sid, st in states.items() if st == "claimed"]
        )
        for change in changes:
            if change.source_id not in ids:
                person = roster.people[change.source_id]
                user_id, _code = await self._claim(person, username_for(person), import_id)
                ids[change.source_id] = user_id
        _add(result.timings, "claims", time.monotonic() - t0)

        t0 = time.monotonic()
        made = {sid for sid, state in states.items() if state == "created"}
        waves: list[list[MemberChange]] = [[], [], []]
        for change in changes:
            waves[wave(change.after)].append(change)
        done = 0
        for people in waves:
            for start in range(0, len(people), BATCH):
                chunk = people[start : start + BATCH]
                await self._put_batch(chunk, school_id, class_ids, ids, made, result)
                done += len(chunk)
                report(_both("stage_members"), done, len(changes))
        _add(result.timings, "members", time.monotonic() - t0)

        t0 = time.monotonic()
        for source_id, user_id, _old, new in s.renames:
            # The module sets it on the imported account; Synapse carries the new name
            # into the person's rooms.
            try:
                await self.module.set_display_name(self.actor, school_id, user_id, new)
            except ApiError as e:
                if e.status != 403:
                    raise
                # Also somewhere the importer does not manage: the name is the whole
                # account's. Left as it is; the next sync asks again.
                result.rename_refused += 1
                continue
            await self.db.execute(
                "UPDATE roster_person SET display_name=$1 WHERE source_id=$2", new, source_id
            )
            result.renamed += 1
        _add(result.timings, "renames", time.monotonic() - t0)

        t0 = time.monotonic()
        for user_id, _name in s.remove_members:
            await self.module.remove_member(self.actor, school_id, user_id)
            result.removed += 1
        _add(result.timings, "leavers", time.monotonic() - t0)

    async def _run_all(self, jobs: list[Any], tick: Callable[[int], None]) -> None:
        semaphore = asyncio.Semaphore(CONCURRENCY)
        done = 0

        async def run(job: Any) -> None:
            nonlocal done
            async with semaphore:
                await job
            done += 1
            tick(done)

        tasks = [asyncio.ensure_future(run(job)) for job in jobs]
        try:
            await asyncio.gather(*tasks)
        finally:
            for t in tasks:
                t.cancel()

    async def _claim(self, person: Person, username: str, import_id: str) -> tuple[str, str]:
        """Record the account (and its code) before registering it."""
        code = sign_in_code()
        user_id = f"@{username}:{self.domain}"
        taken = await self.db.fetchval("SELECT 1 FROM roster_person WHERE user_id=$1", user_id)
        while taken:
            user_id = f"@{username}-{secrets.token_hex(2)}:{self.domain}"
            taken = await self.db.fetchval("SELECT 1 FROM roster_person WHERE user_id=$1", user_id)
        await self.db.execute(
            "INSERT INTO roster_person"
            " (source_id, user_id, state, sign_in_code, import_id, display_name)"
            " VALUES ($1, $2, 'claimed', $3, $4, $5)",
            person.source_id,
            user_id,
            code,
            import_id,
            person.display_name,
        )
        return user_id, code

    async def _put_batch(
        self,
        chunk: list[MemberChange],
        school_id: str,
        class_ids: dict[str, str],
        ids: dict[str, str],
        created: set[str],
        result: Result,
    ) -> None:
        """One batch; a new person whose name turns out taken gets another and it is
        sent again."""
        for _attempt in range(5):
            codes = {
                r["source_id"]: r["sign_in_code"]
                for r in await self.db.fetch(
                    "SELECT source_id, sign_in_code FROM roster_person WHERE state='claimed'"
                )
            }
            entries = [
                batch_entry(
                    change,
                    ids,
                    class_ids,
                    None
                    if change.source_id in created
                    else {
                        "display_name": change.display_name,
                        "sign_in_code": codes[change.source_id],
                    },
                )
                for change in chunk
            ]
            try:
                answer = await self.module.put_members(self.actor, school_id, entries)
            except ApiError as e:
                taken = _TAKEN_INDEX.match(e.error)
                if e.errcode != "M_USER_IN_USE" or taken is None:
                    raise
                change = chunk[int(taken.group(1))]
                if change.source_id in created:
                    raise
                # Someone else has this name: take another one.
                base = username_for_id(ids[change.source_id])
                user_id = f"@{base}-{secrets.token_hex(2)}:{self.domain}"
                await self.db.execute(
                    "UPDATE roster_person SET user_id=$1 WHERE source_id=$2",
                    user_id,
                    change.source_id,
                )
                ids[change.source_id] = user_id
                continue
            new = [c.source_id for c in chunk if c.source_id not in created]
            for sid in new:
                await self.db.execute(
                    "UPDATE roster_person SET state='created' WHERE source_id=$1", sid
                )
                created.add(sid)
            result.created_accounts += sum(1 for m in answer if m.get("account_created"))
            result.set_members += len(chunk)
            return
        raise ApiError(409, "M_USER_IN_USE", "no free user names for this batch")

    async def sign_ins(self, import_id: str, roster: Roster) -> list[SignIn]:
        rows = await self.db.fetch(
            "SELECT source_id, user_id, sign_in_code FROM roster_person"
            " WHERE import_id=$1 AND state='created' ORDER BY user_id",
            import_id,
        )
        titles_of = class_titles(roster)
        children = children_of(roster)
        out = []
        for r in rows:
            person = roster.people.get(r["source_id"])
            if person is None:
                continue
            out.append(
                SignIn(
                    person.display_name,
                    _role_name(person.role),
                    card_classes(person.source_id, titles_of, children),
                    r["user_id"],
                    r["sign_in_code"],
                )
            )
        out.sort(key=lambda s: (s.classes, s.role, s.display_name))
        return out


# The sign-in codes table is printed for the school: in Russian, the school's language.
CODES_LANGUAGE = "ru"


def _role_name(role: Role) -> str:
    message_id = f"bot.role.{role.value}"
    return catalogue.text(message_id, CODES_LANGUAGE) if catalogue.has(message_id) else role.value


def _both(what: str, **params: object) -> str:
    return Message(f"roster_plan.{what}").format(**params)


def _add(timings: dict[str, float], key: str, seconds: float) -> None:
    timings[key] = timings.get(key, 0.0) + seconds


def sign_in_csv(sign_ins: list[SignIn], homeserver_url: str) -> bytes:
    """A printable table for the school: UTF-8 with BOM (Excel opens it right), «;»."""
    out = io.StringIO()
    writer = csv.writer(out, delimiter=";", lineterminator="\r\n")
    writer.writerow(
        [
            catalogue.text(f"roster_codes.{column}", CODES_LANGUAGE)
            for column in ("name", "role", "class", "login", "code", "server")
        ]
    )
    for s in sign_ins:
        writer.writerow([s.display_name, s.role, s.classes, s.user_id, s.code, homeserver_url])
    return ("\ufeff" + out.getvalue()).encode("utf-8")


def import_id_for(files_digest: str) -> str:
    return f"imp-{files_digest[:16]}"


class ProgressBar:
    """A one-line progress bar on stderr."""

    def __init__(self) -> None:
        self._last = ""

    def __call__(self, stage: str, done: int, total: int) -> None:
        width = 30
        filled = width * done // total if total else width
        line = f"\r{stage:28} [{'#' * filled}{'.' * (width - filled)}] {done}/{total}"
        if line != self._last:
            sys.stderr.write(line)
            if done >= total:
                sys.stderr.write("\n")
            sys.stderr.flush()
            self._last = line


async def _cli(args: argparse.Namespace) -> int:
    import hashlib

    from parta_common.oneroster import load_files

    try:
        files = load_files(args.path)
        roster = read_path(args.path)
    except RosterErrors as e:
        print(Message("roster_cli.rejected").format())
        for problem in e.problems:
            print(f"  {problem}")
        return 1
    config = load(args.config)
    db = create_database(config.database)
    await db.start()
    try:
        async with aiohttp.ClientSession() as session, signed_in(session, config, args) as token:
            module = ModuleClient(session, config.homeserver.url, token, acts_for_others=False)
            actor = await module.whoami()
            sync = RosterSync(db, module, actor, config.homeserver.domain)
            plan = await sync.plan(roster)
            print(plan.describe())
            if args.dry_run or plan.empty:
                return 0
            digest = hashlib.sha256(b"".join(files[k] for k in sorted(files))).hexdigest()
            result = await sync.apply(plan, import_id_for(digest), ProgressBar())
            print(result.describe())
            for stage, seconds in result.timings.items():
                print(f"  {stage}: {seconds:.1f} s")
            print(Message("roster_cli.requests").format())
            for key, (calls, seconds) in sorted(module.timings.items(), key=lambda kv: -kv[1][1])[
                :8
            ]:
                print(f"  {key}: {int(calls)}, {seconds:.1f} s, {1000 * seconds / calls:.0f} ms")
            if result.sign_ins:
                out = args.codes or Path(f"sign-in-{digest[:8]}.csv")
                out.write_bytes(sign_in_csv(result.sign_ins, config.homeserver.url))
                print(Message("roster_cli.codes").format(path=out, count=len(result.sign_ins)))
    except ApiError as e:
        print(
            "\n".join(
                catalogue.text("roster_cli.refused", lang, reason=e.text(lang))
                for lang in LANGUAGES
            ),
            file=sys.stderr,
        )
        return 1
    finally:
        await db.stop()
    return 0


_NO_TOKEN = Message("roster_cli.no_token")
_BAD_LOGIN = Message("roster_cli.bad_login")


@contextlib.asynccontextmanager
async def signed_in(
    session: aiohttp.ClientSession, config: BridgeConfig, args: argparse.Namespace
) -> AsyncIterator[str]:
    """The access token the CLI acts with: the file's, or a session opened (and ended)
    with the name and password in ``--login``."""
    if args.token_file is not None:
        lines = args.token_file.read_text(encoding="utf-8").split()
        if not lines:
            raise ApiError.of(400, "M_MISSING_TOKEN", _NO_TOKEN, path=str(args.token_file))
        yield lines[0]
        return
    lines = args.login.read_text(encoding="utf-8").splitlines()
    if len(lines) < 2 or not lines[0].strip() or not lines[1]:
        raise ApiError.of(400, "M_INVALID_PARAM", _BAD_LOGIN, path=str(args.login))
    login = {
        "type": "m.login.password",
        "identifier": {"type": "m.id.user", "user": lines[0].strip()},
        "password": lines[1],
        "initial_device_display_name": "Parta roster sync",
    }
    url = f"{config.homeserver.url.rstrip('/')}/_matrix/client/v3/login"
    async with session.post(url, json=login) as resp:
        data = await resp.json(content_type=None)
        if resp.status != 200 or not isinstance(data, dict):
            error = data.get("error", "") if isinstance(data, dict) else ""
            raise ApiError(resp.status, "M_FORBIDDEN", str(error))
    token = str(data["access_token"])
    try:
        yield token
    finally:
        module = ModuleClient(session, config.homeserver.url, token, acts_for_others=False)
        await module.logout(token)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bridge.roster_sync", description="Import a OneRoster 1.1 CSV roster"
    )
    parser.add_argument("path", type=Path, help="a ZIP file or a directory of CSV files")
    parser.add_argument("-c", "--config", type=Path, default=Path("bridge.yaml"))
    who = parser.add_mutually_exclusive_group(required=True)
    who.add_argument(
        "--login",
        type=Path,
        help="a file with the name and the password of the person the import acts as, "
        "one per line (var/operator.txt)",
    )
    who.add_argument(
        "--token-file", type=Path, help="a file with that person's access token instead"
    )
    parser.add_argument("--dry-run", action="store_true", help="print the plan, change nothing")
    parser.add_argument("--codes", type=Path, help="where to write the sign-in codes CSV")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    return asyncio.run(_cli(args))


if __name__ == "__main__":
    sys.exit(main())
