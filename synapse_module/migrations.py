"""The one registry of the module's migrations: every schema area, in the order they run.

Each feature with tables keeps its numbered, described steps beside its SQL, in
``synapse_module/<feature>/schema.py`` (``STEPS``); the background jobs' one table is in
``jobs.py``. ``parta_schema`` keeps each area's version under the area's name, so the
names below never change (a database made before the features had packages, when the
steps lived in ``synapse_module/schema/<area>.py``, carries the same names and versions).
A new area is a new line; areas that depend on another's tables come after it.
"""

from collections.abc import Sequence
from typing import Final

from . import jobs, service_tokens
from .broadcasts import schema as broadcasts
from .confirmations import schema as confirmations
from .content import schema as content
from .homework import schema as homework
from .imports import schema as imports
from .lessons import schema as lessons
from .privacy import schema as privacy
from .quiet_hours import schema as quiet_hours
from .reports import schema as reports
from .roster import schema as roster
from .scheduled_posts import schema as scheduled_posts
from .statistics import schema as statistics
from .store import Step

# area name -> its steps, in the order the areas are migrated.
AREAS: Final[dict[str, Sequence[Step]]] = {
    "roster": roster.STEPS,
    "lessons": lessons.STEPS,
    "broadcasts": broadcasts.STEPS,
    "content": content.STEPS,
    "scheduled_posts": scheduled_posts.STEPS,
    "jobs": jobs.STEPS,
    "reports": reports.STEPS,
    "homework": homework.STEPS,
    "confirmations": confirmations.STEPS,
    "quiet_hours": quiet_hours.STEPS,
    # After roster: its first step chains the roster's audit table.
    "privacy": privacy.STEPS,
    "service_tokens": service_tokens.STEPS,
    # Reads Synapse's events and user_ips, and its own tables only.
    "statistics": statistics.STEPS,
    # The console's roster imports (issue 11).
    "imports": imports.STEPS,
}
