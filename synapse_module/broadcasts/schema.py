"""Tables of the broadcasts area: broadcasts and their viewer links."""

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
]
