"""Tables of the roster: who is what in which school and class. Never in room state:
it holds minors' personal data and must not federate or be readable by every member."""

from synapse_module.store import Step

STEPS = [
    Step(
        1,
        "units, schools, classes, rooms, members, guardians, invites, audit",
        [
            """CREATE TABLE parta_units (
                unit_id TEXT PRIMARY KEY,
                kind TEXT NOT NULL,
                name TEXT NOT NULL,
                parent_id TEXT,
                space_room_id TEXT,
                created_ts BIGINT NOT NULL
            )""",
            """CREATE TABLE parta_unit_coordinators (
                unit_id TEXT NOT NULL,
                user_id TEXT NOT NULL,
                PRIMARY KEY (unit_id, user_id)
            )""",
            """CREATE TABLE parta_schools (
                school_id TEXT PRIMARY KEY,
                name TEXT NOT NULL,
                short_name TEXT,
                address TEXT,
                contacts TEXT NOT NULL,
                logo_mxc TEXT,
                timezone TEXT NOT NULL,
                unit_id TEXT,
                external_id TEXT UNIQUE,
                policy TEXT NOT NULL,
                created_ts BIGINT NOT NULL
            )""",
            """CREATE TABLE parta_classes (
                class_id TEXT PRIMARY KEY,
                school_id TEXT NOT NULL,
                grade INTEGER NOT NULL,
                letter TEXT NOT NULL,
                year TEXT NOT NULL,
                title TEXT NOT NULL,
                homeroom_user_id TEXT,
                external_id TEXT,
                archived BOOLEAN NOT NULL,
                created_ts BIGINT NOT NULL,
                UNIQUE (school_id, grade, letter, year)
            )""",
            "CREATE UNIQUE INDEX parta_classes_external ON parta_classes (school_id, external_id)",
            """CREATE TABLE parta_rooms (
                room_id TEXT PRIMARY KEY,
                school_id TEXT,
                class_id TEXT,
                unit_id TEXT,
                kind TEXT NOT NULL
            )""",
            "CREATE INDEX parta_rooms_school ON parta_rooms (school_id, kind)",
            "CREATE INDEX parta_rooms_class ON parta_rooms (class_id)",
            """CREATE TABLE parta_school_roles (
                school_id TEXT NOT NULL,
                user_id TEXT NOT NULL,
                role TEXT NOT NULL,
                PRIMARY KEY (school_id, user_id, role)
            )""",
            "CREATE INDEX parta_school_roles_user ON parta_school_roles (user_id)",
            """CREATE TABLE parta_class_members (
                class_id TEXT NOT NULL,
                user_id TEXT NOT NULL,
                role TEXT NOT NULL,
                PRIMARY KEY (class_id, user_id, role)
            )""",
            "CREATE INDEX parta_class_members_user ON parta_class_members (user_id)",
            """CREATE TABLE parta_guardians (
                school_id TEXT NOT NULL,
                parent_user_id TEXT NOT NULL,
                child_user_id TEXT NOT NULL,
                PRIMARY KEY (school_id, parent_user_id, child_user_id)
            )""",
            "CREATE INDEX parta_guardians_child ON parta_guardians (child_user_id)",
            """CREATE TABLE parta_invites (
                code TEXT PRIMARY KEY,
                school_id TEXT NOT NULL,
                role TEXT NOT NULL,
                class_id TEXT,
                child_user_id TEXT,
                created_by TEXT NOT NULL,
                created_ts BIGINT NOT NULL,
                expires_ts BIGINT NOT NULL,
                max_uses INTEGER NOT NULL,
                uses INTEGER NOT NULL,
                revoked BOOLEAN NOT NULL
            )""",
            "CREATE INDEX parta_invites_school ON parta_invites (school_id)",
            """CREATE TABLE parta_invite_uses (
                code TEXT NOT NULL,
                user_id TEXT NOT NULL,
                ts BIGINT NOT NULL,
                PRIMARY KEY (code, user_id)
            )""",
            """CREATE TABLE parta_passwords (
                user_id TEXT PRIMARY KEY,
                password_hash TEXT NOT NULL
            )""",
            """CREATE TABLE parta_audit (
                audit_id TEXT PRIMARY KEY,
                ts BIGINT NOT NULL,
                actor TEXT NOT NULL,
                action TEXT NOT NULL,
                school_id TEXT,
                target TEXT,
                details TEXT NOT NULL
            )""",
            "CREATE INDEX parta_audit_school ON parta_audit (school_id, ts)",
        ],
    ),
    Step(
        2,
        "accounts made by a roster import: sign-in codes, and who has not signed in yet",
        [
            """CREATE TABLE parta_sign_in_codes (
                user_id TEXT PRIMARY KEY,
                code_hash TEXT NOT NULL,
                created_by TEXT NOT NULL,
                created_ts BIGINT NOT NULL,
                expires_ts BIGINT NOT NULL,
                signed_in_ts BIGINT
            )""",
        ],
    ),
    Step(
        3,
        "parent links a student's own code made, waiting for the school's confirmation",
        [
            """CREATE TABLE parta_parent_links (
                link_id TEXT PRIMARY KEY,
                school_id TEXT NOT NULL,
                child_user_id TEXT NOT NULL,
                parent_user_id TEXT NOT NULL,
                code TEXT NOT NULL,
                status TEXT NOT NULL,
                created_ts BIGINT NOT NULL,
                decided_by TEXT,
                decided_ts BIGINT
            )""",
            "CREATE INDEX parta_parent_links_school ON parta_parent_links (school_id, status)",
        ],
    ),
    Step(
        4,
        "first sign-ins whose rooms are still being joined (resumed at start-up)",
        ["ALTER TABLE parta_sign_in_codes ADD COLUMN first_sign_in_ts BIGINT"],
    ),
    Step(
        5,
        "people just let into a private room, counted by the two-person limit until its state"
        " has them",
        [
            """CREATE TABLE parta_room_growth (
                room_id TEXT NOT NULL,
                user_id TEXT NOT NULL,
                claimed_ts BIGINT NOT NULL,
                PRIMARY KEY (room_id, user_id)
            )""",
        ],
    ),
]
