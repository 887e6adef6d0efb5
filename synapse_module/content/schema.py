"""Tables for documents, articles and polls (issue 4).

Every listing the API offers is served by an index that starts with ``room_id`` and
ends with the sort key, so a page costs the same whether a school has 1,000 or 100,000
documents. A quiz's correct answers live only here (``content_polls.correct``).
"""

from synapse_module.store import Step

STEPS = [
    Step(
        1,
        "documents, tags, uploaded media, room switches, articles, polls, votes",
        [
            """CREATE TABLE content_documents (
                doc_id TEXT PRIMARY KEY,
                room_id TEXT NOT NULL,
                sender TEXT NOT NULL,
                ts BIGINT NOT NULL,
                kind TEXT NOT NULL,
                msgtype TEXT NOT NULL,
                title TEXT NOT NULL,
                title_key TEXT NOT NULL,
                description TEXT NOT NULL,
                search_text TEXT NOT NULL,
                section TEXT,
                tags TEXT NOT NULL,
                size BIGINT NOT NULL,
                mimetype TEXT NOT NULL,
                url TEXT NOT NULL,
                filename TEXT NOT NULL
            )""",
            "CREATE INDEX content_documents_ts ON content_documents (room_id, ts, doc_id)",
            "CREATE INDEX content_documents_title"
            " ON content_documents (room_id, title_key, doc_id)",
            "CREATE INDEX content_documents_size ON content_documents (room_id, size, doc_id)",
            "CREATE INDEX content_documents_kind ON content_documents (room_id, kind, ts, doc_id)",
            "CREATE INDEX content_documents_sender"
            " ON content_documents (room_id, sender, ts, doc_id)",
            """CREATE TABLE content_document_tags (
                doc_id TEXT NOT NULL,
                room_id TEXT NOT NULL,
                tag TEXT NOT NULL,
                ts BIGINT NOT NULL,
                PRIMARY KEY (doc_id, tag)
            )""",
            "CREATE INDEX content_document_tags_tag"
            " ON content_document_tags (room_id, tag, ts, doc_id)",
            """CREATE TABLE content_media (
                media_id TEXT PRIMARY KEY,
                kind TEXT NOT NULL,
                mimetype TEXT NOT NULL,
                size BIGINT NOT NULL,
                ts BIGINT NOT NULL
            )""",
            """CREATE TABLE content_room_settings (
                room_id TEXT PRIMARY KEY,
                handin_open BOOLEAN NOT NULL,
                changed_by TEXT NOT NULL,
                changed_ts BIGINT NOT NULL
            )""",
            """CREATE TABLE content_articles (
                article_id TEXT PRIMARY KEY,
                room_id TEXT NOT NULL,
                author TEXT NOT NULL,
                status TEXT NOT NULL,
                title TEXT NOT NULL,
                topic TEXT,
                cover TEXT,
                html TEXT NOT NULL,
                body TEXT NOT NULL,
                event_id TEXT UNIQUE,
                created_ts BIGINT NOT NULL,
                published_ts BIGINT,
                updated_ts BIGINT NOT NULL,
                revisions INTEGER NOT NULL,
                views BIGINT NOT NULL
            )""",
            "CREATE INDEX content_articles_date"
            " ON content_articles (room_id, status, published_ts, article_id)",
            "CREATE INDEX content_articles_topic"
            " ON content_articles (room_id, status, topic, published_ts, article_id)",
            "CREATE INDEX content_articles_views"
            " ON content_articles (room_id, status, views, article_id)",
            """CREATE TABLE content_article_revisions (
                article_id TEXT NOT NULL,
                revision INTEGER NOT NULL,
                event_id TEXT,
                editor TEXT NOT NULL,
                ts BIGINT NOT NULL,
                title TEXT NOT NULL,
                topic TEXT,
                cover TEXT,
                html TEXT NOT NULL,
                PRIMARY KEY (article_id, revision)
            )""",
            """CREATE TABLE content_article_views (
                article_id TEXT NOT NULL,
                user_id TEXT NOT NULL,
                ts BIGINT NOT NULL,
                PRIMARY KEY (article_id, user_id)
            )""",
            """CREATE TABLE content_polls (
                poll_id TEXT PRIMARY KEY,
                room_id TEXT NOT NULL,
                event_id TEXT UNIQUE,
                sender TEXT NOT NULL,
                question TEXT NOT NULL,
                answers TEXT NOT NULL,
                max_selections INTEGER NOT NULL,
                disclosed BOOLEAN NOT NULL,
                anonymous BOOLEAN NOT NULL,
                quiz BOOLEAN NOT NULL,
                correct TEXT,
                created_ts BIGINT NOT NULL,
                end_ts BIGINT,
                end_event_id TEXT
            )""",
            "CREATE INDEX content_polls_room ON content_polls (room_id, created_ts)",
            """CREATE TABLE content_poll_responses (
                response_id TEXT PRIMARY KEY,
                poll_id TEXT NOT NULL,
                user_id TEXT NOT NULL,
                ts BIGINT NOT NULL,
                answers TEXT NOT NULL
            )""",
            "CREATE INDEX content_poll_responses_poll"
            " ON content_poll_responses (poll_id, user_id, ts)",
            """CREATE TABLE content_poll_ballots (
                ballot_id TEXT PRIMARY KEY,
                poll_id TEXT NOT NULL,
                user_id TEXT NOT NULL,
                answers TEXT NOT NULL,
                ts BIGINT NOT NULL
            )""",
        ],
    ),
    Step(
        2,
        "poll notices: the text companion of an API poll, which people answer by reply",
        [
            """CREATE TABLE content_poll_notices (
                event_id TEXT PRIMARY KEY,
                poll_id TEXT NOT NULL
            )""",
        ],
    ),
]
