"""What lessons send into rooms: the ``org.parta.lesson`` state, the Element widget
that opens the lesson page, and the "lesson started" notice."""

import logging
import urllib.parse
from typing import TYPE_CHECKING, Any

from synapse.module_api import ModuleApi

from parta_common import events

from ..config import MediaConfig

if TYPE_CHECKING:
    from .. import PartaModule

from .rules import ENDED, LIVE, WIDGET, Lesson
from .texts import LESSON_STARTED_NOTICE, WIDGET_NAME

logger = logging.getLogger(__name__)


class LessonEvents:
    """The lesson state, widget and notice; ``Lessons`` sends them as the acting teacher."""

    _api: ModuleApi
    _config: MediaConfig
    _module: "PartaModule"

    # -- URLs and events ------------------------------------------------------------

    def page_url(self, room_id: str, lesson_id: str) -> str:
        """The lesson page on the SFU (``/lesson/{room_id}``, see docs/sfu-protocol.md)."""
        query = urllib.parse.urlencode({"lesson": lesson_id, "hs": self._api.public_baseurl})
        base = self._config.sfu_public_url.rstrip("/")
        return f"{base}/lesson/{urllib.parse.quote(room_id, safe='')}?{query}"

    def lesson_json(self, lesson: Lesson) -> dict[str, Any]:
        """A lesson as the API answers it: with the lesson page's link (as in its state)."""
        return {**lesson.to_json(), "url": self.page_url(lesson.room_id, lesson.lesson_id)}

    def widget_url(self, lesson_id: str) -> str:
        """The widget URL: Element fills in (and URL-encodes) the ``$…`` variables."""
        query = urllib.parse.urlencode({"lesson": lesson_id, "hs": self._api.public_baseurl})
        base = self._config.sfu_public_url.rstrip("/")
        return (
            f"{base}/lesson/$matrix_room_id?{query}&embed=widget&user=$matrix_user_id"
            "&name=$matrix_display_name&lang=$org.matrix.msc2873.client_language"
        )

    def lesson_content(self, lesson: Lesson) -> dict[str, Any]:
        content: dict[str, Any] = {
            "lesson_id": lesson.lesson_id,
            "title": lesson.title,
            "status": lesson.status,
            "start": lesson.scheduled_start,
            "widget_id": lesson.widget_id,
            "url": self.page_url(lesson.room_id, lesson.lesson_id),
        }
        if lesson.started_at is not None:
            content["started_at"] = lesson.started_at
        if lesson.ended_at is not None:
            content["ended_at"] = lesson.ended_at
        return content

    def widget_content(self, lesson: Lesson) -> dict[str, Any]:
        return {
            "type": "m.custom",
            "url": self.widget_url(lesson.lesson_id),
            "name": WIDGET_NAME.text("ru", title=lesson.title),
            "id": lesson.widget_id,
            "creatorUserId": lesson.created_by,
            "waitForIframeLoad": True,
            "data": {"title": lesson.title, "lesson_id": lesson.lesson_id},
        }

    async def _send_state(
        self, room_id: str, sender: str, event_type: str, state_key: str, content: dict[str, Any]
    ) -> None:
        await self._api.create_and_send_event_into_room(
            {
                "type": event_type,
                "room_id": room_id,
                "sender": sender,
                "state_key": state_key,
                "content": content,
            }
        )

    async def _publish(
        self, lesson: Lesson, sender: str, actor: str, announce: bool = False
    ) -> None:
        """Send the lesson's state, and add (live) or remove (ended) its widget
        (``sender``: who sends them; ``actor``: the teacher who acted)."""
        await self._send_state(
            lesson.room_id, sender, events.LESSON, lesson.lesson_id, self.lesson_content(lesson)
        )
        if lesson.status == LIVE:
            await self._send_state(
                lesson.room_id,
                sender,
                WIDGET,
                lesson.widget_id,
                self.widget_content(lesson),
            )
            if announce:
                await self._announce(lesson, sender, actor)
        elif lesson.status == ENDED:
            await self._send_state(lesson.room_id, sender, WIDGET, lesson.widget_id, {})

    async def _announce(self, lesson: Lesson, sender: str, actor: str) -> None:
        """The "lesson started" notice — unless the school's quiet hours hold the
        teacher who started it (``actor``; in school rooms the service account sends,
        which quiet hours let through, so the notice rang every pupil at night; in a
        teacher's own room it was held for 08:00, refusing the whole start). A notice at
        08:00 of a lesson held at night is no notice: the lesson starts silently (its
        state and widget notify nobody; whoever opens the room sees it live)."""
        until = await self._module.quiet_hours.quiet_until(actor, lesson.room_id)
        if until is not None:
            logger.info(
                "Lesson %s started in quiet hours (until %s): no notice",
                lesson.lesson_id,
                until.isoformat(),
            )
            return
        url = self.page_url(lesson.room_id, lesson.lesson_id)
        body = LESSON_STARTED_NOTICE.ru.format(title=lesson.title, url=url)
        await self._api.create_and_send_event_into_room(
            {
                "type": "m.room.message",
                "room_id": lesson.room_id,
                "sender": sender,
                "content": {
                    "msgtype": "m.text",
                    "body": body,
                    events.LESSON: {"lesson_id": lesson.lesson_id},
                },
            }
        )
