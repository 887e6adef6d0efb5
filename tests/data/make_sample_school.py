"""A realistic Russian school as OneRoster 1.1 CSV, the same every time (fixed seed).

    python -m tests.data.make_sample_school OUT_DIR [--students 550] [--seed 7]

Grades 1–11 with letters А, Б, В… (about 25 students a class), a director and deputies,
subject teachers (each class has a homeroom teacher), one or two guardians per student
(siblings share them), all with Russian names and patronymics. User names are
``given.family`` in Latin letters, transliterated as the module names a person typed by
name (``parta_common.person_names.latin``): «Юлия Яковлева» → ``iuliia.iakovleva``.
"""

import argparse
import csv
import io
import random
import sys
import zipfile
from pathlib import Path

from parta_common.person_names import latin

MALE = [
    "Александр",
    "Дмитрий",
    "Максим",
    "Сергей",
    "Андрей",
    "Алексей",
    "Артём",
    "Илья",
    "Кирилл",
    "Михаил",
    "Никита",
    "Матвей",
    "Роман",
    "Егор",
    "Арсений",
    "Иван",
    "Денис",
    "Евгений",
    "Даниил",
    "Тимофей",
    "Владислав",
    "Игорь",
    "Владимир",
    "Павел",
    "Руслан",
    "Марк",
    "Константин",
    "Тимур",
    "Олег",
    "Ярослав",
    "Антон",
    "Николай",
    "Глеб",
]
FEMALE = [
    "Анастасия",
    "Мария",
    "Анна",
    "Виктория",
    "Екатерина",
    "Наталья",
    "Марина",
    "Полина",
    "София",
    "Дарья",
    "Алиса",
    "Ксения",
    "Александра",
    "Елена",
    "Ольга",
    "Татьяна",
    "Ирина",
    "Юлия",
    "Вероника",
    "Арина",
    "Варвара",
    "Валерия",
    "Ева",
    "Милана",
    "Кира",
    "Светлана",
    "Людмила",
    "Надежда",
    "Василиса",
]
SURNAMES = [
    "Иванов",
    "Смирнов",
    "Кузнецов",
    "Попов",
    "Васильев",
    "Петров",
    "Соколов",
    "Михайлов",
    "Новиков",
    "Фёдоров",
    "Морозов",
    "Волков",
    "Алексеев",
    "Лебедев",
    "Семёнов",
    "Егоров",
    "Павлов",
    "Козлов",
    "Степанов",
    "Николаев",
    "Орлов",
    "Андреев",
    "Макаров",
    "Никитин",
    "Захаров",
    "Зайцев",
    "Соловьёв",
    "Борисов",
    "Яковлев",
    "Григорьев",
    "Романов",
    "Воробьёв",
    "Сергеев",
    "Кузьмин",
    "Фролов",
    "Александров",
    "Дмитриев",
    "Королёв",
    "Гусев",
    "Киселёв",
    "Ильин",
    "Максимов",
    "Поляков",
    "Сорокин",
    "Виноградов",
    "Ковалёв",
    "Белов",
    "Медведев",
    "Антонов",
    "Тарасов",
    "Жуков",
    "Баранов",
    "Филиппов",
    "Комаров",
    "Давыдов",
    "Беляев",
    "Герасимов",
    "Богданов",
    "Осипов",
    "Сидоров",
    "Матвеев",
    "Титов",
    "Марков",
    "Миронов",
    "Крылов",
    "Куликов",
    "Карпов",
]
SUBJECTS = (
    "математика",
    "русский язык",
    "литература",
    "физика",
    "химия",
    "биология",
    "история",
    "география",
    "английский язык",
    "информатика",
    "физкультура",
    "музыка",
)
LETTERS = "АБВГДЕЖЗИКЛМНОП"


def patronymic(father: str, female: bool) -> str:
    irregular = {"Илья": ("Ильич", "Ильинична"), "Никита": ("Никитич", "Никитична")}
    if father in irregular:
        return irregular[father][female]
    special = {"Павел": "Павлов", "Лев": "Львов"}
    if father in special:
        stem = special[father]
    elif father.endswith(("й", "ь")):
        stem = father[:-1] + "ев"
    else:
        stem = father + "ов"
    return stem + ("на" if female else "ич")


def female_surname(surname: str) -> str:
    return surname + "а"


class Person:
    def __init__(self, rng: random.Random, female: bool | None = None, surname: str | None = None):
        self.female = rng.random() < 0.5 if female is None else female
        self.given = rng.choice(FEMALE if self.female else MALE)
        base = surname or rng.choice(SURNAMES)
        self.surname_base = base
        self.family = female_surname(base) if self.female else base
        self.middle = patronymic(rng.choice(MALE), self.female)


def make_school(
    students: int = 550,
    seed: int = 7,
    school_id: str = "sch-1",
    prefix: str = "",
    grades: range = range(1, 12),
) -> dict[str, str]:
    """The CSV files (name → text) of one school with about ``students`` students.

    ``prefix`` goes in front of every sourcedId and user name, so several schools can
    live on one server.
    """
    rng = random.Random(seed)
    per_class = 25
    n_classes = max(len(grades), -(-students // per_class))
    letters_per_grade = -(-n_classes // len(grades))
    usernames: set[str] = set()

    def username(p: Person) -> str:
        base = f"{prefix}{latin(p.given)}.{latin(p.family)}"
        name, n = base, 1
        while name in usernames:
            n += 1
            name = f"{base}{n}"
        usernames.add(name)
        return name

    orgs = [
        [
            "sourcedId",
            "status",
            "dateLastModified",
            "name",
            "type",
            "identifier",
            "parentSourcedId",
        ],
        [f"{prefix}dist-1", "", "", "Управление образования г. Энска", "district", "", ""],
        [
            school_id,
            "",
            "",
            "МБОУ «Средняя общеобразовательная школа № 7»",
            "school",
            "7701007",
            f"{prefix}dist-1",
        ],
    ]
    sessions = [
        [
            "sourcedId",
            "status",
            "dateLastModified",
            "title",
            "type",
            "startDate",
            "endDate",
            "parentSourcedId",
            "schoolYear",
        ],
        [
            f"{prefix}ay-2026",
            "",
            "",
            "2026/27",
            "schoolYear",
            "2026-09-01",
            "2027-05-31",
            "",
            "2027",
        ],
    ]
    users_header = [
        "sourcedId",
        "status",
        "dateLastModified",
        "enabledUser",
        "orgSourcedIds",
        "role",
        "username",
        "userIds",
        "givenName",
        "familyName",
        "middleName",
        "identifier",
        "email",
        "sms",
        "phone",
        "agentSourcedIds",
        "grades",
        "password",
    ]
    users: list[list[str]] = [users_header]
    classes = [
        [
            "sourcedId",
            "status",
            "dateLastModified",
            "title",
            "grades",
            "courseSourcedId",
            "classCode",
            "classType",
            "location",
            "schoolSourcedId",
            "termSourcedIds",
            "subjects",
            "subjectCodes",
            "periods",
        ]
    ]
    enrollments = [
        [
            "sourcedId",
            "status",
            "dateLastModified",
            "classSourcedId",
            "schoolSourcedId",
            "userSourcedId",
            "role",
            "primary",
            "beginDate",
            "endDate",
        ]
    ]

    def add_user(uid: str, p: Person, role: str, agents: list[str] = (), grade: str = "") -> None:  # type: ignore[assignment]
        users.append(
            [
                uid,
                "",
                "",
                "true",
                school_id,
                role,
                username(p),
                "",
                p.given,
                p.family,
                p.middle,
                "",
                "",
                "",
                "",
                ",".join(agents),
                grade,
                "",
            ]
        )

    staff = [(f"{prefix}adm-{i}", "administrator") for i in (1, 2, 3)]
    for uid, role in staff:
        add_user(uid, Person(rng), role)
    class_ids: list[tuple[str, int, str]] = []
    made = 0
    for grade in grades:
        for li in range(letters_per_grade):
            if made >= n_classes:
                break
            cid = f"{prefix}cls-{grade}{latin(LETTERS[li])}"
            class_ids.append((cid, grade, LETTERS[li]))
            classes.append(
                [
                    cid,
                    "",
                    "",
                    f"{grade}{LETTERS[li]}",
                    f"{grade:02d}",
                    "",
                    f"{grade}{LETTERS[li]}",
                    "homeroom",
                    "",
                    school_id,
                    f"{prefix}ay-2026",
                    "",
                    "",
                    "",
                ]
            )
            made += 1
    n_teachers = max(len(class_ids), 12) + len(class_ids) // 3
    teachers = [f"{prefix}tch-{i + 1}" for i in range(n_teachers)]
    for uid in teachers:
        add_user(uid, Person(rng, female=rng.random() < 0.8), "teacher")
    enr = 0

    def enroll(cid: str, uid: str, role: str, primary: bool) -> None:
        nonlocal enr
        enr += 1
        enrollments.append(
            [
                f"{prefix}enr-{enr}",
                "",
                "",
                cid,
                school_id,
                uid,
                role,
                "true" if primary else "false",
                "2026-09-01",
                "",
            ]
        )

    for i, (cid, _grade, _letter) in enumerate(class_ids):
        enroll(cid, teachers[i], "teacher", True)
        for t in rng.sample(teachers, 3):
            if t != teachers[i]:
                enroll(cid, t, "teacher", False)
    # Scheduled (subject) classes exist in real exports; Parta ignores them.
    for i, subject in enumerate(SUBJECTS[:4]):
        classes.append(
            [
                f"{prefix}sub-{i}",
                "",
                "",
                subject,
                "",
                "",
                "",
                "scheduled",
                "",
                school_id,
                f"{prefix}ay-2026",
                subject,
                "",
                "",
            ]
        )

    guardians_of_family: list[tuple[str, list[str]]] = []
    for k in range(students):
        cid, grade, _letter = class_ids[k % len(class_ids)]
        sid = k + 1
        uid = f"{prefix}stu-{sid}"
        if guardians_of_family and rng.random() < 0.12:
            # A sibling: same family, same guardians.
            surname, guardian_ids = rng.choice(guardians_of_family)
            child = Person(rng, surname=surname)
        else:
            child = Person(rng)
            guardian_ids = []
            mother = Person(rng, female=True, surname=child.surname_base)
            gid = f"{prefix}par-{sid}-m"
            add_user(gid, mother, "parent", [uid])
            guardian_ids.append(gid)
            if rng.random() < 0.55:
                father = Person(rng, female=False, surname=child.surname_base)
                gid = f"{prefix}par-{sid}-f"
                add_user(gid, father, "guardian", [uid])
                guardian_ids.append(gid)
            guardians_of_family.append((child.surname_base, guardian_ids))
        add_user(uid, child, "student", guardian_ids, f"{grade:02d}")
        enroll(cid, uid, "student", False)
    return {
        "orgs.csv": _csv(orgs),
        "academicSessions.csv": _csv(sessions),
        "classes.csv": _csv(classes),
        "users.csv": _csv(users),
        "enrollments.csv": _csv(enrollments),
    }


def _csv(rows: list[list[str]]) -> str:
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(rows)
    return out.getvalue()


def write_dir(files: dict[str, str], out: Path) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (out / name).write_text(text, encoding="utf-8")
    return out


def to_zip(files: dict[str, str]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name, text in files.items():
            z.writestr(name, text.encode("utf-8"))
    return buf.getvalue()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--students", type=int, default=550)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--zip", action="store_true", help="write OUT as a ZIP file")
    args = parser.parse_args(argv)
    files = make_school(args.students, args.seed)
    if args.zip:
        args.out.write_bytes(to_zip(files))
    else:
        write_dir(files, args.out)
    print(f"wrote {args.out}: {args.students} students")
    return 0


if __name__ == "__main__":
    sys.exit(main())
