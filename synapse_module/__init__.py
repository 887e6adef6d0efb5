"""Parta's Synapse module: the school model and its rules inside the homeserver.

Load it with::

    modules:
      - module: synapse_module.PartaModule
        config: {}   # see config/module.example.yaml
"""

import logging
import re
from importlib import resources
from typing import Any

import yaml
from synapse.module_api import ModuleApi, SynapseRequest

from parta_common import __version__ as common_version
from parta_common.config import ConfigProblem

from . import pipeline
from .broadcasts.api import Broadcasts
from .config import PartaConfig, raise_as_synapse_config_error
from .config import parse_config as _parse_config
from .confirmations.api import Confirmations
from .content.api import ContentApi
from .content.callbacks import Content
from .delegation.api import Delegation
from .homework.api import Homework
from .http import BASE_PATH, ApiResource, StaticBundle, StaticPage, route_pattern
from .imports.api import Imports
from .jobs import BackgroundJobs
from .lessons.api import Lessons
from .media_tokens.api import MediaTokens
from .migrations import AREAS
from .privacy.api import Privacy
from .privacy.erasure_requests import ErasureRequests
from .quiet_hours.api import QuietHoursFeature
from .reports.api import Reports
from .room_roles import RoomRoles
from .roster.api import Roster
from .roster.parent_links import ParentLinks
from .scheduled_posts.api import ScheduledPosts
from .statistics.api import Statistics
from .store import Store

logger = logging.getLogger(__name__)

CONSOLE_PATH = "/_synapse/client/parta/console"

__version__ = common_version
__all__ = ["PartaConfig", "PartaModule", "__version__"]


def _load_openapi() -> dict[str, Any]:
    text = resources.files(__package__).joinpath("openapi.yaml").read_text(encoding="utf-8")
    doc = yaml.safe_load(text)
    assert isinstance(doc, dict)
    return doc


def served_openapi() -> dict[str, Any]:
    """openapi.yaml with the request schemas the module validates with filled in under
    ``components/schemas`` (each feature's ``REQUEST_SCHEMAS``): the one description."""
    from .broadcasts import api as broadcasts
    from .confirmations import api as confirmations
    from .content import handlers as content_api
    from .homework import api as homework
    from .imports import api as imports
    from .lessons import api as lessons
    from .media_tokens import api as media_tokens
    from .privacy import api as privacy
    from .quiet_hours import api as quiet_hours
    from .reports import api as reports
    from .roster import requests as roster
    from .scheduled_posts import api as scheduled_posts
    from .statistics import api as statistics

    doc = _load_openapi()
    schemas = doc["components"]["schemas"]
    for feature in (
        roster,
        lessons,
        media_tokens,
        broadcasts,
        content_api,
        scheduled_posts,
        reports,
        homework,
        confirmations,
        quiet_hours,
        privacy,
        statistics,
        imports,
    ):
        for name, schema in feature.REQUEST_SCHEMAS.items():
            assert schemas.get(name, schema) is schema, name
            schemas[name] = schema
    return doc


class PartaModule:
    """Registers Parta's callbacks and REST API; holds no logic of its own.

    Each feature is a package (``api``, ``rules``, ``store``, ``events``, ``requests.json``;
    see docs/architecture.md). Their routes are registered here on :attr:`resource`
    (:meth:`route_owners`), and the Synapse callbacks once each, dispatched to the
    features in the order of ``pipeline.CALLBACK_ORDER``.
    """

    def __init__(self, config: PartaConfig, api: ModuleApi):
        self.config = config
        self.api = api
        self.service_user_id = f"@{config.service_localpart}:{api.server_name}"
        self._openapi = served_openapi()
        self.store = Store(api, AREAS, config.sqlite_synchronous)

        self.resource = ApiResource()
        # The school bot acting for a person, only on their own recent command.
        self.delegation = Delegation(self)
        self.roster = Roster(self)
        # Video lessons (issue 5): roles from the roster in school rooms.
        self.room_roles = RoomRoles(api, self.roster, self.service_user_id)
        self.media_tokens = MediaTokens(self, api, config.media, self.room_roles)
        self.lessons = Lessons(self, api, config.media, self.room_roles, config.default_timezone)
        self.broadcasts = Broadcasts(self, api, config.media, config.broadcasts, self.room_roles)
        # Documents, articles, polls (issue 4): roles from the roster in school rooms.
        self.content = Content(self)
        self.content_api = ContentApi(self.content)
        # What the bot posts later as its author (announcements, reminders), once.
        self.scheduled_posts = ScheduledPosts(self)
        # Reports reach the school (issue 13): Synapse's reports, forwarded.
        self.reports = Reports(self, api)
        # Homework (issue 13): assignments and hand-ins in class chats.
        self.homework = Homework(self)
        # Read confirmations (issue 13): who has confirmed an announcement.
        self.confirmations = Confirmations(self)
        # Quiet hours (issue 13): staff messages to students and parents wait for morning.
        self.quiet_hours = QuietHoursFeature(self)
        # Privacy (issue 12): the audit log's check and export.
        self.privacy = Privacy(self)
        # Statistics (issue 11): daily rows per school, JSON and XLSX per unit or school.
        self.statistics = Statistics(self)
        # Roster imports through the API (issue 11): the console's OneRoster import.
        self.imports = Imports(self)
        # Every route, registered here once, in this order (a route's pattern is tried
        # in the order registered).
        for owner in self.route_owners():
            for method, pattern, handler in owner.ROUTES:
                self.resource.route(method, pattern, getattr(owner, handler))
        # Every Synapse callback, registered once; the order is pipeline.CALLBACK_ORDER.
        pipeline.register(api, self.features(), indexes_here=self.content.indexer)
        # Clean-up loops, on the one process `background_worker` names (docs/deploy.md).
        self.jobs = BackgroundJobs(
            api,
            self.store,
            config.background_worker,
            [
                ("expired_invites", self.roster.purge_spent_invites),
                ("audit_seal", self.privacy.seal),
                ("statistics", self.statistics.snapshot),
                # Erasures a crash cut short carry on (at start-up, then hourly).
                ("erasures", self.privacy.resume_erasures),
                # Recordings posted before they were tracked: tracked, once (before the
                # retention job, so its first run sees them).
                ("recordings_backfill", self.broadcasts.backfill_recordings),
                # Schools' retention rules (idempotent: a rule met already changes nothing).
                ("retention", self.privacy.retention.apply_all),
            ],
        )
        api.register_web_resource(BASE_PATH, self.resource)
        # The page an invitation link opens: join with a new or an existing account.
        api.register_web_resource(
            "/_synapse/client/parta/join", StaticPage("join.html", {"texts.js": "join_texts.js"})
        )
        # The console: where administrators and coordinators work in a browser
        # (docs/console.md); a static bundle that calls only the API above.
        api.register_web_resource(CONSOLE_PATH, StaticBundle("console", CONSOLE_PATH))

    ROUTES = (
        ("GET", "/version", "get_version"),
        ("GET", "/openapi.json", "get_openapi"),
    )

    def route_owners(self) -> tuple[Any, ...]:
        """Who serves the REST API, in the order their routes are registered."""
        return (
            self,
            self.roster,
            self.roster.parent_links,
            self.media_tokens,
            self.lessons,
            self.broadcasts,
            self.content_api,
            self.scheduled_posts,
            self.reports,
            self.homework,
            self.confirmations,
            self.quiet_hours,
            self.privacy,
            self.privacy.requests,
            self.statistics,
            self.imports,
        )

    def features(self) -> dict[str, object]:
        """The features by the names :data:`pipeline.CALLBACK_ORDER` uses."""
        return {
            "roster": self.roster,
            "consents": self.privacy.consents_in_rooms,
            "broadcasts": self.broadcasts,
            "content": self.content,
            "homework": self.homework,
            "confirmations": self.confirmations,
            "quiet_hours": self.quiet_hours,
        }

    @classmethod
    def routes_for_docs(cls) -> list[tuple[str, re.Pattern[str], type, str]]:
        """Every route this module and its features serve, with the class and name of its
        handler, for the docs test."""
        return [
            (method, route_pattern(pattern), owner, handler)
            for owner in (
                cls,
                Roster,
                ParentLinks,
                MediaTokens,
                Lessons,
                Broadcasts,
                ContentApi,
                ScheduledPosts,
                Reports,
                Homework,
                Confirmations,
                QuietHoursFeature,
                Privacy,
                ErasureRequests,
                Statistics,
                Imports,
            )
            for method, pattern, handler in owner.ROUTES
        ]

    @staticmethod
    def parse_config(config: dict[str, Any] | None) -> PartaConfig:
        try:
            return _parse_config(config)
        except ConfigProblem as problem:
            raise_as_synapse_config_error(problem)
            raise  # unreachable: the line above always raises

    # -- REST -----------------------------------------------------------------

    async def get_version(self, request: SynapseRequest) -> tuple[int, dict[str, Any]]:
        return 200, {"name": "parta", "version": __version__}

    async def get_openapi(self, request: SynapseRequest) -> tuple[int, dict[str, Any]]:
        return 200, self._openapi
