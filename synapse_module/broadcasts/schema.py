"""Tables of the broadcasts area: broadcasts, their viewer links, their recordings."""

from synapse_module.store import Step

STEPS = [
    Step(
        1,
        "broadcasts and viewer links",
        [
            """CREATE TABLE parta_broadcasts (
                broadcast_id TEXT PRIMARY KEY,
                room_id TEXT NOT NULL,
                title TEXT NOT NULL,
                speakers TEXT NOT NULL,
                starts_at BIGINT,
                ends_at BIGINT,
                public BOOLEAN NOT NULL,
                recording BOOLEAN NOT NULL,
                status TEXT NOT NULL,
                created_by TEXT NOT NULL,
                created_at BIGINT NOT NULL
            )""",
            "CREATE INDEX parta_broadcasts_room ON parta_broadcasts (room_id)",
            """CREATE TABLE parta_viewer_links (
                link_id TEXT PRIMARY KEY,
                broadcast_id TEXT NOT NULL,
                created_by TEXT NOT NULL,
                created_at BIGINT NOT NULL,
                expires_at BIGINT NOT NULL,
                revoked_at BIGINT
            )""",
            "CREATE INDEX parta_viewer_links_broadcast ON parta_viewer_links (broadcast_id)",
        ],
    ),
    Step(
        2,
        "broadcasts by creation time (statistics: the broadcasts of a day)",
        ["CREATE INDEX parta_broadcasts_created ON parta_broadcasts (created_at)"],
    ),
    Step(
        3,
        "recordings posted: which event and media, of which school, when (retention)",
        [
            """CREATE TABLE parta_broadcast_recordings (
                event_id TEXT PRIMARY KEY,
                broadcast_id TEXT NOT NULL,
                room_id TEXT NOT NULL,
                school_id TEXT,
                media_id TEXT NOT NULL,
                posted_ts BIGINT NOT NULL
            )""",
            "CREATE INDEX parta_broadcast_recordings_school"
            " ON parta_broadcast_recordings (school_id, posted_ts)",
        ],
    ),
    Step(
        4,
        "recordings posted before step 3: how far the one-time backfill has read"
        " Synapse's events, and when it was done (the job recordings_backfill)",
        [
            """CREATE TABLE parta_broadcast_backfill (
                id INTEGER PRIMARY KEY,
                scanned_to BIGINT NOT NULL,
                done_ts BIGINT
            )""",
            "INSERT INTO parta_broadcast_backfill (id, scanned_to) VALUES (1, 0)",
        ],
    ),
]
