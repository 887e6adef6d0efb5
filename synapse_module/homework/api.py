"""Homework: lists per class, per student and per child, and the hand-ins of one
assignment. Assignments are Matrix events (``callbacks.py`` checks and indexes them)."""

from typing import TYPE_CHECKING, Any, Final

from synapse.module_api import SynapseRequest

from ..errors import forbidden, not_found
from ..http import requester_id
from ..requests import request_schemas
from . import rules, texts
from .callbacks import HomeworkCallbacks
from .store import get_homework_txn, handins_txn, homework_of_classes_txn

if TYPE_CHECKING:
    from .. import PartaModule

# The request schemas, in requests.json beside this module (none: every route is a GET).
REQUEST_SCHEMAS: Final = request_schemas(__package__)

_CLASS: Final = r"/schools/([^/]+)/classes/([^/]+)"


class Homework(HomeworkCallbacks):
    """Homework lists and hand-ins; the Synapse callbacks are in the base class."""

    ROUTES: Final = (
        ("GET", rf"{_CLASS}/homework", "get_class_homework"),
        ("GET", rf"{_CLASS}/homework/([^/]+)/handins", "get_handins"),
        ("GET", r"/me/homework", "get_my_homework"),
    )

    def __init__(self, module: "PartaModule"):
        super().__init__(module)

    async def _open_class(
        self, request: SynapseRequest, school_id: str, class_id: str
    ) -> tuple[str, Any]:
        """The requester and their standing in the school, once the class exists."""
        user_id = await requester_id(self._module.api, request)
        roster = self._module.roster
        await roster.school_class(school_id, class_id)
        person = await roster.get_person(user_id)
        return user_id, person.standing(school_id)

    async def _of_classes(self, class_ids: list[str]) -> list[dict[str, Any]]:
        return await self._module.store.run(
            "parta_homework_list", homework_of_classes_txn, class_ids
        )

    async def get_class_homework(
        self, request: SynapseRequest, school_id: str, class_id: str
    ) -> tuple[int, dict[str, Any]]:
        _, standing = await self._open_class(request, school_id, class_id)
        if not rules.may_read(standing, class_id):
            raise forbidden(texts.NOT_YOURS)
        return 200, {"homework": await self._of_classes([class_id])}

    async def get_handins(
        self, request: SynapseRequest, school_id: str, class_id: str, event_id: str
    ) -> tuple[int, dict[str, Any]]:
        _, standing = await self._open_class(request, school_id, class_id)
        if not rules.may_see_handins(standing, class_id):
            raise forbidden(texts.HANDINS_STAFF)
        homework = await self._module.store.run("parta_homework_get", get_homework_txn, event_id)
        if homework is None or homework["class_id"] != class_id:
            raise not_found(texts.NOT_FOUND, event_id=event_id[:80])
        handins = await self._module.store.run("parta_handins", handins_txn, event_id)
        return 200, {"homework": homework, "handins": handins}

    async def get_my_homework(self, request: SynapseRequest) -> tuple[int, dict[str, Any]]:
        """A student's homework (their classes) and, for a parent, each child's: from the
        schools that name them the child's parent only (:func:`rules.child_classes`)."""
        user_id = await requester_id(self._module.api, request)
        roster = self._module.roster
        person = await roster.get_person(user_id)
        own = sorted({c for s in person.schools.values() for c in s.learns_in})
        children: list[dict[str, Any]] = []
        for child_id in sorted({c for s in person.schools.values() for c in s.children}):
            classes = rules.child_classes(person, await roster.get_person(child_id))
            children.append({"user_id": child_id, "homework": await self._of_classes(classes)})
        return 200, {"homework": await self._of_classes(own), "children": children}
