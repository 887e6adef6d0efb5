"""The module's REST API, called for the person the bot acts for.

The bot's application service owns only the bot's own user: it cannot act as anyone
through the homeserver. It calls the module as itself and names the person and the
command it carries out (their message, :data:`COMMAND`)::

    X-Parta-On-Behalf-Of: @person:server
    X-Parta-Command: $event_id

and the module believes it only for that person's own recent message in a room of the
bot's (synapse_module/delegation/); its rules (may this teacher invite into that
class?) then apply once, in the module. The roster CLI instead calls with the person's
own access token (``acts_for_others=False``).
"""

import contextlib
import contextvars
import json
import logging
import re
import time
import urllib.parse
from collections.abc import Iterator
from typing import Any

import aiohttp

from parta_common import catalogue
from parta_common.messages import Message

logger = logging.getLogger(__name__)

BASE_PATH = "/_synapse/client/parta/v1"
# Path segments that are IDs or codes, for grouping timings by endpoint.
_ID = re.compile(r"(?<=/)(sch_|cls_|unit_|%40|@)[^/]*|(?<=/invites/)[^/]+")

ON_BEHALF_HEADER = "X-Parta-On-Behalf-Of"
COMMAND_HEADER = "X-Parta-Command"

# The event id of the command the bot is carrying out now (set per task: a command's
# handler and the tasks it starts see it, another command's do not).
COMMAND: contextvars.ContextVar[str | None] = contextvars.ContextVar("parta_command", default=None)


@contextlib.contextmanager
def carrying_out(event_id: str | None) -> Iterator[None]:
    """Calls made inside act on the command ``event_id`` (a person's message)."""
    token = COMMAND.set(event_id)
    try:
        yield
    finally:
        COMMAND.reset(token)


_UNREACHABLE = Message("bot.unreachable")


class ApiError(Exception):
    """The module refused or failed.

    ``error`` is its text ("русский / English" for a person); ``message``, when the module
    sent one, the catalogue id and parameters, so the bot shows one language itself.
    """

    def __init__(
        self, status: int, errcode: str, error: str, message: dict[str, object] | None = None
    ):
        self.status = status
        self.errcode = errcode
        self.error = error
        self.message = message
        super().__init__(f"{status} {errcode}: {error}")

    @classmethod
    def of(cls, status: int, errcode: str, message: Message, **params: object) -> "ApiError":
        """A refusal the bot makes itself, from the catalogue."""
        return cls(status, errcode, message.format(**params), message.reference(**params))

    def text(self, language: str) -> str:
        """The reason in ``language``; the whole ``error`` when it names no catalogue text."""
        return catalogue.from_reference(self.message, language) or self.error


class ModuleClient:
    """Typed calls to the module API; ``as_user`` is the person the bot acts for.

    With ``acts_for_others`` (the bot's own token) each call names ``as_user`` and the
    command in :data:`COMMAND`; without (a person's own token) ``as_user`` is only
    who the caller is, and the token speaks for itself.
    """

    def __init__(
        self,
        session: aiohttp.ClientSession,
        homeserver_url: str,
        token: str,
        acts_for_others: bool = True,
    ):
        self._session = session
        self._base = homeserver_url.rstrip("/")
        self._token = token
        self._acts_for_others = acts_for_others
        # (method, path with IDs replaced by {id}) → [calls, seconds]: where time goes.
        self.timings: dict[str, list[float]] = {}

    async def request(
        self,
        method: str,
        path: str,
        as_user: str | None,
        body: Any = None,
        query: dict[str, str] | None = None,
        base: str = BASE_PATH,
    ) -> Any:
        """``as_user`` ``None``: the caller itself (the bot's own calls)."""
        params = dict(query or {})
        url = f"{self._base}{base}{path}"
        headers = {"Authorization": f"Bearer {self._token}"}
        if self._acts_for_others and as_user is not None:
            headers[ON_BEHALF_HEADER] = as_user
            command = COMMAND.get()
            if command is not None:
                headers[COMMAND_HEADER] = command
        started = time.monotonic()
        try:
            return await self._request(method, url, params, body, headers)
        finally:
            key = f"{method} {_ID.sub('{id}', path)}"
            entry = self.timings.setdefault(key, [0, 0.0])
            entry[0] += 1
            entry[1] += time.monotonic() - started

    async def _request(
        self,
        method: str,
        url: str,
        params: dict[str, str],
        body: Any,
        headers: dict[str, str],
    ) -> Any:
        path = url
        try:
            async with self._session.request(
                method, url, params=params, json=body, headers=headers
            ) as resp:
                raw = await resp.read()
                if resp.status < 400 and resp.content_type == "application/zip":
                    return raw  # an archive (a person's data export)
                try:
                    data = json.loads(raw) if raw else None
                except ValueError:
                    data = None
                if resp.status >= 400:
                    if isinstance(data, dict):
                        raise ApiError(
                            resp.status,
                            str(data.get("errcode", "M_UNKNOWN")),
                            str(data.get("error", "")),
                            data.get(catalogue.FIELD),
                        )
                    raise ApiError.of(resp.status, "M_UNKNOWN", _UNREACHABLE)
                return data
        except aiohttp.ClientError as e:
            logger.warning("module API %s %s failed: %s", method, path, e)
            raise ApiError.of(502, "M_UNKNOWN", _UNREACHABLE) from e

    # -- who am I --------------------------------------------------------------

    async def whoami(self) -> str:
        """The user behind the token."""
        data = await self.request("GET", "/account/whoami", None, base="/_matrix/client/v3")
        return str(data["user_id"])

    async def me(self, as_user: str) -> dict[str, Any]:
        data: dict[str, Any] = await self.request("GET", "/me", as_user)
        return data

    async def my_homework(self, as_user: str) -> dict[str, Any]:
        """``GET /me/homework``: the person's homework and, per child, a parent's."""
        data: dict[str, Any] = await self.request("GET", "/me/homework", as_user)
        return data

    async def class_homework(self, as_user: str, school_id: str, class_id: str) -> list[Any]:
        """``GET /schools/{id}/classes/{cid}/homework``: the class's, earliest due first."""
        path = f"/schools/{_q(school_id)}/classes/{_q(class_id)}/homework"
        return _list(await self.request("GET", path, as_user), "homework")

    # -- schools and classes ----------------------------------------------------

    async def schools(self, as_user: str) -> list[dict[str, Any]]:
        data = await self.request("GET", "/schools", as_user)
        return _list(data, "schools")

    async def school(self, as_user: str, school_id: str) -> dict[str, Any]:
        data: dict[str, Any] = await self.request("GET", f"/schools/{_q(school_id)}", as_user)
        return data

    async def school_by_external_id(self, as_user: str, external_id: str) -> dict[str, Any] | None:
        try:
            data: dict[str, Any] = await self.request(
                "GET", f"/schools/by_external_id/{_q(external_id)}", as_user
            )
        except ApiError as e:
            if e.status == 404 and e.errcode == "M_NOT_FOUND":
                return None
            raise
        return data

    async def create_school(self, as_user: str, body: dict[str, Any]) -> dict[str, Any]:
        data: dict[str, Any] = await self.request("POST", "/schools", as_user, body)
        return data

    async def classes(self, as_user: str, school_id: str) -> list[dict[str, Any]]:
        data = await self.request("GET", f"/schools/{_q(school_id)}/classes", as_user)
        return _list(data, "classes")

    async def create_class(
        self, as_user: str, school_id: str, body: dict[str, Any]
    ) -> dict[str, Any]:
        data: dict[str, Any] = await self.request(
            "POST", f"/schools/{_q(school_id)}/classes", as_user, body
        )
        return data

    # -- members and invites ----------------------------------------------------

    async def members(
        self, as_user: str, school_id: str, class_id: str | None = None
    ) -> list[dict[str, Any]]:
        query = {"class_id": class_id} if class_id else None
        data = await self.request("GET", f"/schools/{_q(school_id)}/members", as_user, query=query)
        return _list(data, "members")

    async def put_member(
        self, as_user: str, school_id: str, user_id: str, body: dict[str, Any]
    ) -> dict[str, Any]:
        data: dict[str, Any] = await self.request(
            "PUT", f"/schools/{_q(school_id)}/members/{_q(user_id)}", as_user, body
        )
        return data

    async def put_members(
        self, as_user: str, school_id: str, members: list[dict[str, Any]]
    ) -> list[dict[str, Any]]:
        """The module's batch: all checked before anything is written."""
        data = await self.request(
            "POST", f"/schools/{_q(school_id)}/members/batch", as_user, {"members": members}
        )
        return _list(data, "members")

    async def new_sign_in_code(self, as_user: str, school_id: str, user_id: str) -> dict[str, Any]:
        data: dict[str, Any] = await self.request(
            "POST", f"/schools/{_q(school_id)}/members/{_q(user_id)}/sign_in_code", as_user
        )
        return data

    async def set_display_name(
        self, as_user: str, school_id: str, user_id: str, display_name: str
    ) -> None:
        """The roster's new name for an account it imported."""
        await self.request(
            "PUT",
            f"/schools/{_q(school_id)}/members/{_q(user_id)}/display_name",
            as_user,
            {"display_name": display_name},
        )

    async def export_person(self, as_user: str, school_id: str, user_id: str) -> bytes:
        """The zip of everything about ``user_id`` in the school (docs/privacy.md)."""
        path = f"/schools/{_q(school_id)}/members/{_q(user_id)}/export"
        data: bytes = await self.request("POST", path, as_user)
        return data

    async def consents(self, as_user: str, school_id: str, user_id: str) -> dict[str, Any]:
        """``GET …/consents``: the person's consents in the school by purpose (absent:
        never recorded)."""
        path = f"/schools/{_q(school_id)}/members/{_q(user_id)}/consents"
        data = await self.request("GET", path, as_user)
        consents: dict[str, Any] = data.get("consents") or {}
        return consents

    async def put_consent(
        self, as_user: str, school_id: str, user_id: str, purpose: str, granted: bool
    ) -> dict[str, Any]:
        """``PUT …/consents``: grant or withdraw one purpose, recorded as ``as_user``'s
        own (the module's ``how``: account)."""
        path = f"/schools/{_q(school_id)}/members/{_q(user_id)}/consents"
        body = {"consents": {purpose: granted}}
        data = await self.request("PUT", path, as_user, body)
        consents: dict[str, Any] = data.get("consents") or {}
        return consents

    async def remove_member(self, as_user: str, school_id: str, user_id: str) -> None:
        await self.request("DELETE", f"/schools/{_q(school_id)}/members/{_q(user_id)}", as_user)

    async def create_invite(
        self, as_user: str, school_id: str, body: dict[str, Any]
    ) -> dict[str, Any]:
        data: dict[str, Any] = await self.request(
            "POST", f"/schools/{_q(school_id)}/invites", as_user, body
        )
        return data

    async def redeem_invite(self, as_user: str, code: str) -> dict[str, Any]:
        data: dict[str, Any] = await self.request("POST", f"/invites/{_q(code)}/redeem", as_user)
        return data

    async def invite_info(self, as_user: str, code: str) -> dict[str, Any]:
        data: dict[str, Any] = await self.request("GET", f"/invites/{_q(code)}", as_user)
        return data

    async def register_with_invite(
        self, as_user: str, code: str, username: str, password: str, display_name: str
    ) -> dict[str, Any]:
        body = {"username": username, "password": password, "display_name": display_name}
        data: dict[str, Any] = await self.request(
            "POST", f"/invites/{_q(code)}/register", as_user, body
        )
        return data

    # -- lessons (the module's media section; 404 while lessons are off) ---------

    async def create_lesson(
        self, as_user: str, room_id: str, title: str, start_ms: int | None
    ) -> dict[str, Any]:
        body: dict[str, Any] = {"title": title}
        if start_ms is not None:
            body["start"] = start_ms
        data: dict[str, Any] = await self.request(
            "POST", f"/rooms/{_q(room_id)}/lessons", as_user, body
        )
        return data

    async def lessons(self, as_user: str, room_id: str) -> list[dict[str, Any]]:
        data = await self.request("GET", f"/rooms/{_q(room_id)}/lessons", as_user)
        return _list(data, "lessons")

    async def attendance(self, as_user: str, room_id: str, lesson_id: str) -> dict[str, Any]:
        data: dict[str, Any] = await self.request(
            "GET", f"/rooms/{_q(room_id)}/lessons/{_q(lesson_id)}/attendance", as_user
        )
        return data

    # -- polls and broadcasts ----------------------------------------------------

    async def create_poll(self, as_user: str, room_id: str, body: dict[str, Any]) -> dict[str, Any]:
        data: dict[str, Any] = await self.request(
            "POST", f"/rooms/{_q(room_id)}/polls", as_user, body
        )
        return data

    async def polls(self, as_user: str, room_id: str) -> list[dict[str, Any]]:
        return _list(await self.request("GET", f"/rooms/{_q(room_id)}/polls", as_user), "polls")

    async def poll(self, as_user: str, poll_id: str) -> dict[str, Any]:
        data: dict[str, Any] = await self.request("GET", f"/polls/{_q(poll_id)}", as_user)
        return data

    async def create_broadcast(
        self, as_user: str, room_id: str, body: dict[str, Any]
    ) -> dict[str, Any]:
        data: dict[str, Any] = await self.request(
            "POST", f"/rooms/{_q(room_id)}/broadcasts", as_user, body
        )
        return data

    # -- posts sent later as their author (announcements, reminders) ---------------

    async def create_post(self, as_user: str, room_id: str, body: str, schedule_id: str) -> str:
        """Record a post ``as_user`` asked for; the module's ``post_id``."""
        data = await self.request(
            "POST",
            "/scheduled_posts",
            as_user,
            {"room_id": room_id, "body": body, "schedule_id": schedule_id},
        )
        return str(data["post_id"])

    async def send_post(self, post_id: str) -> str:
        """Have the module send the post as its author (once); the event id."""
        data = await self.request("POST", f"/scheduled_posts/{_q(post_id)}/send", None)
        return str(data["event_id"])

    # -- reminders to confirm reading (the bot as itself) --------------------------

    async def confirmations_due(self) -> list[dict[str, Any]]:
        """Requests whose reminder is due, each with whom to remind."""
        return _list(await self.request("GET", "/internal/confirmations/due", None), "due")

    async def confirmations_reminded(
        self, event_id: str, people: list[dict[str, str]]
    ) -> list[dict[str, str]]:
        """Record that the bot reminds ``people`` of a request; those recorded now."""
        data = await self.request(
            "POST",
            "/internal/confirmations/reminded",
            None,
            {"event_id": event_id, "people": people},
        )
        return [{"user_id": p["user_id"], "child_id": p["child_id"]} for p in data["reminded"]]

    async def request_erasure(
        self, as_user: str, school_id: str, user_id: str, language: str
    ) -> dict[str, Any]:
        """``POST …/erasure_requests``: ask the school to erase ``user_id`` (the person
        themself, or their child); the waiting one when there is one (``new`` false)."""
        body = {"user_id": user_id, "language": language}
        data: dict[str, Any] = await self.request(
            "POST", f"/schools/{_q(school_id)}/erasure_requests", as_user, body
        )
        return data

    async def erasure_requests(self, as_user: str, school_id: str) -> list[dict[str, Any]]:
        """The school's requests to erase that ``as_user`` may see (their own; an
        administrator: all)."""
        path = f"/schools/{_q(school_id)}/erasure_requests"
        return _list(await self.request("GET", path, as_user), "requests")

    async def erasure_requests_to_tell(self) -> list[dict[str, Any]]:
        """Requests done or declined whose requester the bot has not told yet."""
        return _list(
            await self.request("GET", "/internal/erasure_requests/to_tell", None), "requests"
        )

    async def erasure_request_told(self, request_id: str) -> None:
        await self.request("POST", f"/internal/erasure_requests/{_q(request_id)}/told", None, {})

    async def logout(self, access_token: str) -> None:
        """End a session the bot opened to check a password."""
        url = f"{self._base}/_matrix/client/v3/logout"
        headers = {"Authorization": f"Bearer {access_token}"}
        async with self._session.post(url, headers=headers, json={}):
            pass

    async def version(self) -> dict[str, Any]:
        async with self._session.get(f"{self._base}{BASE_PATH}/version") as resp:
            data: dict[str, Any] = await resp.json()
            return data


def _q(part: str) -> str:
    return urllib.parse.quote(part, safe="")


def _list(data: Any, key: str) -> list[dict[str, Any]]:
    """Lists come either bare or wrapped as ``{key: [...]}``."""
    if isinstance(data, dict):
        data = data.get(key, [])
    if not isinstance(data, list):
        return []
    return [item for item in data if isinstance(item, dict)]
