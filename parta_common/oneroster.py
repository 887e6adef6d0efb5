"""OneRoster 1.1 CSV (bulk): read, check, and turn into what each school should be.

Files: ``orgs.csv``, ``classes.csv``, ``users.csv``, ``enrollments.csv`` (required),
``academicSessions.csv`` and ``demographics.csv`` (optional, demographics unused), from a
directory or a ZIP. Every problem is reported with its file and line; one problem means
nothing is imported.

Parta's classes are the *homeroom* classes (``classType=homeroom``): grade from
``grades``, letter from the title («7А»). Teachers enrolled in a homeroom class teach it;
the ``primary`` teacher is its homeroom teacher. Guardians are users with role
``parent``/``guardian`` linked through ``agentSourcedIds`` (either direction).
"""

import csv
import io
import re
import zipfile
import zlib
from collections.abc import Iterable, Mapping
from pathlib import Path

import attrs

from bridge.commands import CLASS_LETTER
from parta_common.messages import Message
from parta_common.roles import Role

REQUIRED_FILES = ("orgs.csv", "classes.csv", "users.csv", "enrollments.csv")
OPTIONAL_FILES = ("academicSessions.csv", "demographics.csv", "manifest.csv")

_COLUMNS: dict[str, tuple[str, ...]] = {
    "orgs.csv": ("sourcedId", "name", "type"),
    "classes.csv": ("sourcedId", "title", "classType", "schoolSourcedId"),
    "users.csv": ("sourcedId", "enabledUser", "orgSourcedIds", "role", "givenName", "familyName"),
    "enrollments.csv": ("sourcedId", "classSourcedId", "schoolSourcedId", "userSourcedId", "role"),
    "academicSessions.csv": ("sourcedId", "title", "type", "startDate", "endDate"),
}

USER_ROLES: dict[str, Role | None] = {
    "administrator": Role.ADMINISTRATOR,
    "teacher": Role.TEACHER,
    "aide": Role.TEACHER,
    "student": Role.STUDENT,
    "parent": Role.PARENT,
    "guardian": Role.PARENT,
    "relative": Role.PARENT,
    "proctor": None,
}
_CLASS_TITLE = re.compile(rf"(1[01]|[1-9])\s*[-«\"]?\s*({CLASS_LETTER})")


@attrs.frozen
class Problem:
    """What is wrong where («users.csv:5»): a catalogue text (``roster_file.*``)."""

    where: str
    message: Message
    params: dict[str, object] = attrs.field(factory=dict)

    def text(self, language: str) -> str:
        return f"{self.where}: {self.message.text(language, **self.params)}"

    def __str__(self) -> str:
        """Both languages, for a reader whose language is not known."""
        return f"{self.where}: {self.message.format(**self.params)}"


def _problem(where: str, message_id: str, **params: object) -> Problem:
    return Problem(where, Message(f"roster_file.{message_id}"), params)


class RosterErrors(ValueError):
    """The files cannot be imported; ``found`` says what is wrong where, ``problems`` the
    same in both languages («file:line: что не так / what is wrong»)."""

    def __init__(self, found: list[Problem]):
        self.found = found
        self.problems = [str(p) for p in found]
        super().__init__("\n".join(self.problems))


@attrs.frozen
class Org:
    source_id: str
    name: str
    type: str
    identifier: str = ""


@attrs.frozen
class HomeroomClass:
    source_id: str
    school_id: str
    title: str
    grade: int
    letter: str


@attrs.frozen
class Person:
    source_id: str
    role: Role
    given_name: str
    family_name: str
    middle_name: str
    username: str
    org_ids: tuple[str, ...]
    agent_ids: tuple[str, ...]

    @property
    def display_name(self) -> str:
        return " ".join(p for p in (self.family_name, self.given_name, self.middle_name) if p)


@attrs.frozen
class Enrollment:
    class_id: str
    school_id: str
    user_id: str
    role: str
    primary: bool


@attrs.frozen
class Membership:
    """What one person should be in one school (OneRoster IDs, not Matrix ones)."""

    roles: frozenset[Role]
    classes: frozenset[str]
    children: frozenset[str]
    homeroom_of: frozenset[str]


@attrs.frozen
class Roster:
    schools: dict[str, Org]
    classes: dict[str, HomeroomClass]
    people: dict[str, Person]
    enrollments: tuple[Enrollment, ...]
    school_year: str | None

    def memberships(self, school_id: str) -> dict[str, Membership]:
        """Everyone in ``school_id`` and what they should be there."""
        roles: dict[str, set[Role]] = {}
        classes: dict[str, set[str]] = {}
        homeroom: dict[str, set[str]] = {}
        for person in self.people.values():
            if school_id in person.org_ids and person.role in (Role.ADMINISTRATOR, Role.TEACHER):
                roles.setdefault(person.source_id, set()).add(person.role)
        for e in self.enrollments:
            cls = self.classes.get(e.class_id)
            if cls is None or cls.school_id != school_id:
                continue
            person = self.people[e.user_id]
            role = Role.STUDENT if e.role == "student" else Role.TEACHER
            if person.role == Role.ADMINISTRATOR and role == Role.TEACHER:
                roles.setdefault(person.source_id, set()).add(Role.TEACHER)
            roles.setdefault(person.source_id, set()).add(role)
            classes.setdefault(person.source_id, set()).add(e.class_id)
            if role == Role.TEACHER and e.primary:
                homeroom.setdefault(person.source_id, set()).add(e.class_id)
        students = {pid for pid, r in roles.items() if Role.STUDENT in r}
        children: dict[str, set[str]] = {}
        for person in self.people.values():
            if person.role == Role.PARENT:
                for agent in person.agent_ids:
                    if agent in students:
                        children.setdefault(person.source_id, set()).add(agent)
            elif person.source_id in students:
                for agent in person.agent_ids:
                    other = self.people.get(agent)
                    if other is not None and other.role == Role.PARENT:
                        children.setdefault(agent, set()).add(person.source_id)
        for parent in children:
            roles.setdefault(parent, set()).add(Role.PARENT)
        return {
            pid: Membership(
                roles=frozenset(r),
                classes=frozenset(classes.get(pid, ())),
                children=frozenset(children.get(pid, ())),
                homeroom_of=frozenset(homeroom.get(pid, ())),
            )
            for pid, r in roles.items()
        }


def read_files(files: Mapping[str, bytes]) -> Roster:
    """Parse and check the CSV files (name → bytes); :class:`RosterErrors` on any problem."""
    problems: list[Problem] = []
    for name in REQUIRED_FILES:
        if name not in files:
            problems.append(_problem(name, "missing_file"))
    if problems:
        raise RosterErrors(problems)
    parsed = {name: _rows(name, files[name], problems) for name in files if name in _COLUMNS}
    if any(rows is None for rows in parsed.values()):
        # A file without its columns: checking rows would only repeat the same problem.
        raise RosterErrors(problems)
    tables = {name: rows for name, rows in parsed.items() if rows is not None}

    schools: dict[str, Org] = {}
    seen: dict[str, set[str]] = {}

    def unique(name: str, line: int, source_id: str) -> bool:
        ids = seen.setdefault(name, set())
        if not source_id:
            problems.append(_problem(f"{name}:{line}", "empty_id"))
            return False
        if source_id in ids:
            problems.append(_problem(f"{name}:{line}", "repeated_id", source_id=source_id))
            return False
        ids.add(source_id)
        return True

    for line, row in tables["orgs.csv"]:
        if _deleted(row) or not unique("orgs.csv", line, row["sourcedId"]):
            continue
        if row["type"] == "school":
            if not row["name"]:
                problems.append(_problem(f"orgs.csv:{line}", "school_no_name"))
            schools[row["sourcedId"]] = Org(
                row["sourcedId"], row["name"], row["type"], row.get("identifier", "")
            )

    classes: dict[str, HomeroomClass] = {}
    other_classes: set[str] = set()
    for line, row in tables["classes.csv"]:
        if _deleted(row) or not unique("classes.csv", line, row["sourcedId"]):
            continue
        if row["schoolSourcedId"] not in schools:
            problems.append(
                _problem(f"classes.csv:{line}", "school_not_found", school=row["schoolSourcedId"])
            )
            continue
        if row["classType"] not in ("homeroom", "scheduled"):
            problems.append(
                _problem(f"classes.csv:{line}", "bad_class_type", class_type=row["classType"])
            )
            continue
        if row["classType"] != "homeroom":
            other_classes.add(row["sourcedId"])
            continue
        grade, letter = _grade_letter(row)
        if grade is None or letter is None:
            problems.append(_problem(f"classes.csv:{line}", "bad_class_title", title=row["title"]))
            continue
        classes[row["sourcedId"]] = HomeroomClass(
            row["sourcedId"], row["schoolSourcedId"], row["title"], grade, letter
        )

    people: dict[str, Person] = {}
    agents_at: dict[str, int] = {}
    gone: set[str] = set()  # deleted or disabled: references to them are not errors
    for line, row in tables["users.csv"]:
        if not unique("users.csv", line, row["sourcedId"]):
            continue
        if _deleted(row) or row["enabledUser"].lower() == "false":
            gone.add(row["sourcedId"])
            continue
        role_name = row["role"].strip().lower()
        if role_name not in USER_ROLES:
            problems.append(
                _problem(
                    f"users.csv:{line}",
                    "bad_user_role",
                    role=row["role"],
                    roles=", ".join(USER_ROLES),
                )
            )
            continue
        role = USER_ROLES[role_name]
        if role is None:
            continue
        if not row["givenName"] or not row["familyName"]:
            problems.append(_problem(f"users.csv:{line}", "no_name"))
            continue
        orgs = _ids(row["orgSourcedIds"])
        unknown_orgs = [o for o in orgs if o not in schools and o not in seen.get("orgs.csv", ())]
        if unknown_orgs:
            problems.append(_problem(f"users.csv:{line}", "org_not_found", org=unknown_orgs[0]))
            continue
        people[row["sourcedId"]] = Person(
            source_id=row["sourcedId"],
            role=role,
            given_name=row["givenName"].strip(),
            family_name=row["familyName"].strip(),
            middle_name=row.get("middleName", "").strip(),
            username=row.get("username", "").strip(),
            org_ids=tuple(orgs),
            agent_ids=tuple(_ids(row.get("agentSourcedIds", ""))),
        )
        agents_at[row["sourcedId"]] = line
    for pid, person in people.items():
        for agent in person.agent_ids:
            if agent not in people and agent not in gone:
                problems.append(
                    _problem(f"users.csv:{agents_at[pid]}", "agent_not_found", agent=agent)
                )

    enrollments: list[Enrollment] = []
    for line, row in tables["enrollments.csv"]:
        if _deleted(row) or not unique("enrollments.csv", line, row["sourcedId"]):
            continue
        if row["classSourcedId"] in other_classes:
            continue
        if row["classSourcedId"] not in classes:
            problems.append(
                _problem(
                    f"enrollments.csv:{line}", "class_not_found", class_id=row["classSourcedId"]
                )
            )
            continue
        if row["userSourcedId"] in gone:
            continue
        if row["userSourcedId"] not in people:
            problems.append(
                _problem(f"enrollments.csv:{line}", "user_not_found", user=row["userSourcedId"])
            )
            continue
        kind = row["role"].strip().lower()
        if kind not in ("student", "teacher", "aide", "administrator", "proctor"):
            problems.append(
                _problem(f"enrollments.csv:{line}", "bad_enrollment_role", role=row["role"])
            )
            continue
        if kind == "proctor":
            continue
        enrollments.append(
            Enrollment(
                class_id=row["classSourcedId"],
                school_id=classes[row["classSourcedId"]].school_id,
                user_id=row["userSourcedId"],
                role="student" if kind == "student" else "teacher",
                primary=row.get("primary", "").lower() == "true",
            )
        )

    year = _school_year(tables.get("academicSessions.csv", []))
    if problems:
        raise RosterErrors(problems)
    return Roster(schools, classes, people, tuple(enrollments), year)


def read_path(path: Path) -> Roster:
    """Read a directory of CSV files or a ZIP of them."""
    return read_files(load_files(path))


def load_files(path: Path) -> dict[str, bytes]:
    if path.is_dir():
        return {
            p.name: p.read_bytes()
            for p in path.iterdir()
            if p.name in REQUIRED_FILES + OPTIONAL_FILES
        }
    return zip_files(path.read_bytes())


# What a ZIP may unpack to: a 2,000-pupil school's files are ~1 MB.
MAX_UNPACKED = 200 * 1024 * 1024


def zip_files(data: bytes) -> dict[str, bytes]:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as z:
            files = {}
            wanted = [
                info
                for info in z.infolist()
                if info.filename.rsplit("/", 1)[-1] in REQUIRED_FILES + OPTIONAL_FILES
            ]
            if sum(info.file_size for info in wanted) > MAX_UNPACKED:
                raise RosterErrors([_problem("ZIP", "too_big", megabytes=MAX_UNPACKED // 2**20)])
            for info in wanted:
                name = info.filename.rsplit("/", 1)[-1]
                if name in REQUIRED_FILES + OPTIONAL_FILES:
                    files[name] = z.read(info)
            return files
    except (
        zipfile.BadZipFile,
        zipfile.LargeZipFile,
        NotImplementedError,
        EOFError,
        RuntimeError,
        zlib.error,
    ):
        raise RosterErrors([_problem("ZIP", "not_zip")]) from None


def _rows(
    name: str, data: bytes, problems: list[Problem]
) -> list[tuple[int, dict[str, str]]] | None:
    """The rows with their line numbers; ``None`` when the file itself is unusable."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = data[: e.start].count(b"\n") + 1
        problems.append(_problem(f"{name}:{line}", "not_utf8"))
        return None
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = [h.strip() for h in next(reader)]
    except StopIteration:
        problems.append(_problem(f"{name}:1", "empty_file"))
        return None
    missing = [c for c in _COLUMNS[name] if c not in header]
    if missing:
        problems.append(_problem(f"{name}:1", "missing_columns", columns=", ".join(missing)))
        return None
    rows: list[tuple[int, dict[str, str]]] = []
    try:
        for values in reader:
            line = reader.line_num
            if not any(v.strip() for v in values):
                continue
            if len(values) != len(header):
                problems.append(
                    _problem(
                        f"{name}:{line}", "value_count", values=len(values), expected=len(header)
                    )
                )
                continue
            rows.append((line, {h: v.strip() for h, v in zip(header, values, strict=True)}))
    except csv.Error as e:
        problems.append(_problem(f"{name}:{reader.line_num}", "bad_csv", detail=str(e)))
    return rows


def _deleted(row: Mapping[str, str]) -> bool:
    return row.get("status", "").lower() == "tobedeleted"


def _ids(value: str) -> list[str]:
    return [v.strip() for v in value.split(",") if v.strip()]


def _grade_letter(row: Mapping[str, str]) -> tuple[int | None, str | None]:
    for text in (row.get("title", ""), row.get("classCode", "")):
        m = _CLASS_TITLE.search(text)
        if m:
            return int(m.group(1)), m.group(2).upper()
    return None, None


def _school_year(rows: Iterable[tuple[int, dict[str, str]]]) -> str | None:
    for _, row in rows:
        if row.get("type") == "schoolYear" and len(row.get("startDate", "")) >= 4:
            start = int(row["startDate"][:4])
            return f"{start}/{(start + 1) % 100:02d}"
    return None
