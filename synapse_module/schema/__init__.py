"""Schema areas: one module per feature, each with its ``STEPS`` (see ``store.py``)."""

from collections.abc import Sequence

from synapse_module.store import Step

from . import (
    broadcasts,
    confirmations,
    content,
    homework,
    imports,
    jobs,
    lessons,
    privacy,
    reports,
    roster,
    scheduled_posts,
)

# area name -> its steps; every feature adds its own line.
AREAS: dict[str, Sequence[Step]] = {
    "roster": roster.STEPS,
    "lessons": lessons.STEPS,
    "broadcasts": broadcasts.STEPS,
    "content": content.STEPS,
    "scheduled_posts": scheduled_posts.STEPS,
    "jobs": jobs.STEPS,
    "reports": reports.STEPS,
    "homework": homework.STEPS,
    "confirmations": confirmations.STEPS,
    # after roster: it chains roster's audit table
    "privacy": privacy.STEPS,
    "imports": imports.STEPS,
}
