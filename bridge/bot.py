"""The school bot: reads commands in a DM or when mentioned, acts for the person.

Every action goes through the module API, naming the person who wrote and their message
(the command, :func:`bridge.api.carrying_out`); the module decides, the bot relays its
answer (or its refusal) in plain words. The bot cannot act as anyone through the
homeserver: its application service owns only its own user.

Longer than 600 lines because every command is a short handler over the same API
client, kept beside the command table it answers; the texts move to the catalogue.
"""

import datetime
import logging
import time
import zoneinfo
from collections.abc import Awaitable, Callable, Iterable
from typing import TYPE_CHECKING, Any

import attrs
from mautrix.api import Method, Path
from mautrix.appservice import IntentAPI
from mautrix.errors import MatrixRequestError
from mautrix.types import (
    Event,
    EventID,
    EventType,
    FileInfo,
    InReplyTo,
    MediaMessageEventContent,
    Membership,
    MessageEvent,
    MessageType,
    RelatesTo,
    RoomID,
    StateEvent,
    TextMessageEventContent,
    UserID,
)

from bridge.answered import ANSWERS_FIELD, CATCH_UP_EVENTS, AnsweredEvents, to_catch_up
from bridge.api import ApiError, ModuleClient, carrying_out
from bridge.commands import (
    BOT_NAMES,
    CONSENT_PURPOSES,
    HOMEWORK_LIST,
    MYSELF_WORDS,
    ClassName,
    Command,
    CommandError,
    name_key,
    parse,
)
from bridge.schedule import Scheduler, deliver_at
from parta_common import catalogue
from parta_common.catalogue import LANGUAGES
from parta_common.messages import Message
from parta_common.roster_plan import school_year

if TYPE_CHECKING:
    from bridge.erasure_requests import ErasureConversation

logger = logging.getLogger(__name__)

NAME_THE_CLASS = Message("bot.name_the_class")
NO_SCHOOL = Message("bot.no_school")
SEVERAL_SCHOOLS = Message("bot.several_schools")
NO_SUCH_CLASS = Message("bot.no_such_class")
NO_SUCH_ROOM = Message("bot.no_such_room")
HOMEWORK_NOT_LISTED = Message("bot.homework_not_listed")
REFUSED_FORBIDDEN = Message("bot.refused_forbidden")
REFUSED_NOT_FOUND = Message("bot.refused_not_found")
REFUSED_INVALID = Message("bot.refused_invalid")
REFUSED_FAILED = Message("bot.refused_failed")

HELP = Message("bot.help")
NOT_UNDERSTOOD = Message("bot.not_understood")
CONSENT_NO_SUCH_CHILD = Message("bot.consent_no_such_child")
CONSENT_WHICH_CHILD = Message("bot.consent_which_child")
CONSENT_NOBODY = Message("bot.consent_nobody")
WENT_WRONG = Message("bot.went_wrong")


def say(language: str, message_id: str, **params: object) -> str:
    """A catalogue text in the language of the command (docs/i18n.md)."""
    return catalogue.text(message_id, language, **params)


@attrs.frozen
class Place:
    """Where the bot posted: a room kind, with the class for a class's chats."""

    kind: str  # this_room, announcements, class_chat, parents_chat
    class_name: str = ""

    def to(self, language: str) -> str:
        """«в чат класса 7А» / «to the class chat of 7A»."""
        return say(language, f"bot.to.{self.kind}", class_name=self.class_name)

    def at(self, language: str) -> str:
        """«в чате класса 7А» / «in the class chat of 7A»."""
        return say(language, f"bot.at.{self.kind}", class_name=self.class_name)


def role_names(language: str, roles: Iterable[str]) -> str:
    return ", ".join(
        say(language, f"bot.role.{role}") if catalogue.has(f"bot.role.{role}") else role
        for role in roles
    )


# Called with (event, zip bytes, file name) for a ZIP an administrator sent.
ZipHandler = Callable[[MessageEvent, bytes, str], Awaitable[str]]
# Called with (room_id, user_id, yes, language) when someone answers a pending import plan.
ConfirmHandler = Callable[[RoomID, UserID, bool, str], Awaitable[str | None]]


class SchoolBot:
    def __init__(
        self,
        intent: IntentAPI,
        module: ModuleClient,
        scheduler: Scheduler,
        quiet_timezone: str = "Europe/Moscow",
        answered: AnsweredEvents | None = None,
    ):
        self.intent = intent
        # Without a store (a bot in a unit test) every event is taken up once per push.
        self.answered = answered
        self.module = module
        self.scheduler = scheduler
        self.tz = zoneinfo.ZoneInfo(quiet_timezone)
        self.on_zip: ZipHandler | None = None
        self.on_confirm: ConfirmHandler | None = None
        # Requests to erase (bridge/erasure_requests.py); its «да» is asked first.
        self.erasure: ErasureConversation | None = None
        self._member_counts: dict[RoomID, int] = {}
        # Rooms the bot is in; Synapse pushes only their events (and invitations), and
        # anything else is dropped at once.
        self._joined: set[RoomID] = set()

    async def load_joined_rooms(self) -> None:
        data = await self.intent.api.request(Method.GET, Path.v3.joined_rooms)
        self._joined = {RoomID(r) for r in data.get("joined_rooms", [])}

    async def catch_up_all(self) -> None:
        """After a start: answer what arrived in the bot's rooms while it was down."""
        for room_id in sorted(self._joined):
            await self.catch_up(room_id)
        logger.info("caught up with %d rooms", len(self._joined))

    async def catch_up(self, room_id: RoomID) -> None:
        """Answer the room's commands after the bot's last word that it has not answered
        (sent before it joined, or while it was down); the store keeps it to once."""
        try:
            page = await self.intent.api.request(
                Method.GET,
                Path.v3.rooms[room_id].messages,
                query_params={"dir": "b", "limit": str(CATCH_UP_EVENTS)},
            )
            events = [Event.deserialize(raw) for raw in page.get("chunk", [])]
        except Exception:
            logger.exception("reading the history of %s failed", room_id)
            return
        for event in to_catch_up(events, self.mxid, int(time.time() * 1000)):
            event.room_id = room_id
            await self.handle_event(event)

    @property
    def mxid(self) -> UserID:
        return self.intent.mxid

    # -- events ------------------------------------------------------------------

    async def handle_event(self, event: Any) -> None:
        if isinstance(event, StateEvent) and event.type == EventType.ROOM_MEMBER:
            await self._on_member(event)
        elif isinstance(event, MessageEvent) and event.type == EventType.ROOM_MESSAGE:
            if event.sender == self.mxid or event.room_id not in self._joined:
                return
            try:
                await self._on_message(event)
            except Exception:
                logger.exception("handling %s failed", event.event_id)
                await self.reply(event.room_id, WENT_WRONG.format())

    async def _on_member(self, event: StateEvent) -> None:
        if event.room_id not in self._joined and event.state_key != self.mxid:
            return
        self._member_counts.pop(event.room_id, None)
        membership = getattr(event.content, "membership", None)
        if event.state_key != self.mxid:
            return
        if membership == Membership.INVITE:
            await self.intent.join_room(event.room_id)
            self._joined.add(event.room_id)
            logger.info("joined %s (invited by %s)", event.room_id, event.sender)
            # Element sends the first message with the invitation, before the bot is in.
            await self.catch_up(event.room_id)
        elif membership == Membership.JOIN:
            self._joined.add(event.room_id)
        elif membership in (Membership.LEAVE, Membership.BAN):
            self._joined.discard(event.room_id)

    async def _is_direct(self, room_id: RoomID) -> bool:
        if room_id not in self._member_counts:
            data = await self.intent.api.request(Method.GET, Path.v3.rooms[room_id].joined_members)
            self._member_counts[room_id] = len(data.get("joined", {}))
        return self._member_counts[room_id] <= 2

    async def _on_message(self, event: MessageEvent) -> None:
        content = event.content
        direct = await self._is_direct(event.room_id)
        if isinstance(content, MediaMessageEventContent) and content.msgtype == MessageType.FILE:
            name = content.body or "roster.zip"
            mimetype = content.info.mimetype if content.info else None
            if direct and (name.lower().endswith(".zip") or mimetype == "application/zip"):
                if self.on_zip is None or not content.url or not await self._take_up(event):
                    return
                data = await self.intent.download_media(content.url)
                with carrying_out(event.event_id):
                    plan = await self.on_zip(event, data, name)
                await self.reply(event.room_id, plan, event.event_id)
            return
        if not isinstance(content, TextMessageEventContent):
            return
        text: str | None = content.body or ""
        if not direct:
            text = self._strip_mention(content.body or "", content)
        if text is not None and await self._take_up(event):
            await self.answer(event.room_id, event.sender, text, direct, event.event_id)

    async def _take_up(self, event: MessageEvent) -> bool:
        """Whether this is the first time the bot takes up ``event`` (then it answers)."""
        if self.answered is None:
            return True
        return await self.answered.claim(event.event_id, event.room_id)

    def _strip_mention(self, text: str, content: TextMessageEventContent) -> str | None:
        """The command after a mention of the bot, or ``None`` when not addressed."""
        mentions = getattr(content, "mentions", None)
        mentioned = bool(mentions and self.mxid in (mentions.user_ids or []))
        localpart = self.mxid[1:].split(":", 1)[0]
        for prefix in (self.mxid, localpart, *BOT_NAMES):
            if text.lower().startswith(prefix.lower()):
                return text[len(prefix) :].lstrip(" :,")
        return text if mentioned else None

    async def answer(
        self,
        room_id: RoomID,
        sender: UserID,
        text: str,
        direct: bool,
        answers: EventID | None = None,
    ) -> None:
        try:
            command = parse(text, tz=self.tz)
        except CommandError as e:
            await self.reply(room_id, e.text(), answers)
            return
        if command is None:
            if direct:  # no command, no language to go by: both
                await self.reply(room_id, NOT_UNDERSTOOD.format(), answers)
            return
        try:
            with carrying_out(answers):
                reply = await self.run(command, room_id, sender)
        except ApiError as e:
            reply = refusal(e, command.language)
        if reply:
            await self.reply(room_id, reply, answers)

    async def send_file(self, room_id: RoomID, data: bytes, name: str, mime_type: str) -> None:
        """Upload ``data`` and post it as a file message."""
        mxc = await self.intent.upload_media(data, mime_type=mime_type, filename=name)
        info = FileInfo(mimetype=mime_type, size=len(data))
        content = MediaMessageEventContent(msgtype=MessageType.FILE, body=name, url=mxc, info=info)
        await self.intent.send_message(room_id, content)

    async def reply(self, room_id: RoomID, text: str, answers: EventID | None = None) -> None:
        """A notice; ``answers`` names the message it answers (a reply to it)."""
        content = TextMessageEventContent(msgtype=MessageType.NOTICE, body=text)
        if answers is not None:
            content.relates_to = RelatesTo(in_reply_to=InReplyTo(event_id=answers))
            content[ANSWERS_FIELD] = answers
        await self.intent.send_message(room_id, content)

    # -- commands ----------------------------------------------------------------

    async def run(self, command: Command, room_id: RoomID, sender: UserID) -> str | None:
        handler = getattr(self, f"cmd_{command.name}")
        result: str | None = await handler(command, room_id, sender)
        return result

    async def cmd_help(self, command: Command, room_id: RoomID, sender: UserID) -> str:
        return HELP.text(command.language)

    async def cmd_confirm(self, command: Command, room_id: RoomID, sender: UserID) -> str | None:
        return await self._answer_yes_no(room_id, sender, True, command.language)

    async def cmd_reject(self, command: Command, room_id: RoomID, sender: UserID) -> str | None:
        return await self._answer_yes_no(room_id, sender, False, command.language)

    async def _answer_yes_no(
        self, room_id: RoomID, sender: UserID, yes: bool, language: str
    ) -> str | None:
        """«да» / «нет»: to a request to erase waiting in this chat, else to a roster
        import's plan."""
        if self.erasure is not None:
            answer = await self.erasure.on_confirm(room_id, sender, yes, language)
            if answer is not None:
                return answer
        if self.on_confirm is None:
            return None
        return await self.on_confirm(room_id, sender, yes, language)

    async def cmd_erase(self, command: Command, room_id: RoomID, sender: UserID) -> str | None:
        """«удалить мои данные» / «удалить данные <имя>» (bridge/erasure_requests.py)."""
        if self.erasure is None:
            return None
        return await self.erasure.ask(command, room_id, sender)

    async def cmd_my_requests(
        self, command: Command, room_id: RoomID, sender: UserID
    ) -> str | None:
        """«мои запросы»: the person's requests to erase and their state."""
        if self.erasure is None:
            return None
        return await self.erasure.list_requests(command, room_id, sender)

    async def cmd_my_schools(self, command: Command, room_id: RoomID, sender: UserID) -> str:
        me = await self.module.me(sender)
        schools = me.get("schools") or []
        lang = command.language
        if not schools:
            return say(lang, "bot.no_schools_yet")
        lines = [say(lang, "bot.your_schools")]
        for school in schools:
            roles = role_names(lang, school.get("roles", []))
            line = f"• {school.get('name', school.get('school_id'))}: {roles}"
            if school.get("classes"):
                titles = {
                    str(c.get("class_id")): _class_title(c)
                    for c in await self.module.classes(sender, school["school_id"])
                }
                names = sorted(titles.get(c, c) for c in school["classes"])
                line += say(lang, "bot.school_classes", names=", ".join(names))
            if school.get("children"):
                line += say(lang, "bot.school_children", names=", ".join(school["children"]))
            lines.append(line)
        return "\n".join(lines)

    async def cmd_create_class(self, command: Command, room_id: RoomID, sender: UserID) -> str:
        school = await self._school(sender, room_id)
        assert command.class_name is not None
        body: dict[str, Any] = {
            "grade": command.class_name.grade,
            "letter": command.class_name.letter,
            "year": command.args[0] if command.args else school_year(),
        }
        created = await self.module.create_class(sender, school["school_id"], body)
        return say(command.language, "bot.class_created", title=_class_title(created))

    async def cmd_invite(self, command: Command, room_id: RoomID, sender: UserID) -> str:
        school = await self._school(sender, room_id)
        assert command.role is not None
        body: dict[str, Any] = {"role": command.role.value}
        if command.class_name is not None:
            body["class_id"] = await self._class_id(sender, school, command.class_name)
        invite = await self.module.create_invite(sender, school["school_id"], body)
        lang = command.language
        role = role_names(lang, [command.role.value])
        if command.class_name:
            role = say(lang, "bot.invite_role_in_class", role=role, class_name=command.class_name)
        return say(
            lang,
            "bot.invite_created",
            role=role,
            code=invite.get("code"),
            link=invite.get("link"),
            expires=_local_time(invite.get("expires_at"), self.tz),
            uses=invite.get("max_uses"),
        )

    async def cmd_members(self, command: Command, room_id: RoomID, sender: UserID) -> str:
        school = await self._school(sender, room_id)
        class_id = None
        if command.class_name is not None:
            class_id = await self._class_id(sender, school, command.class_name)
        members = await self.module.members(sender, school["school_id"], class_id)
        lang = command.language
        if not members:
            return say(lang, "bot.nobody")
        by_role: dict[str, list[str]] = {}
        for member in members:
            name = member.get("display_name") or member["user_id"]
            for role in member.get("roles", []):
                by_role.setdefault(role, []).append(f"{name} ({member['user_id']})")
        lines = [say(lang, "bot.members", count=len(members))]
        for role in ("administrator", "teacher", "student", "parent", "coordinator"):
            if role in by_role:
                names = sorted(by_role[role])
                shown = names[:50]
                more = say(lang, "bot.and_more", count=len(names) - 50) if len(names) > 50 else ""
                title = role_names(lang, [role])
                lines.append(f"{title} ({len(names)}): " + ", ".join(shown) + more)
        return "\n".join(lines)

    async def cmd_link_parent(self, command: Command, room_id: RoomID, sender: UserID) -> str:
        school = await self._school(sender, room_id)
        parent, child = command.users
        members = {m["user_id"]: m for m in await self.module.members(sender, school["school_id"])}
        current = members.get(parent, {})
        roles = sorted({*current.get("roles", []), "parent"})
        children = sorted({*current.get("children", []), child})
        await self.module.put_member(
            sender,
            school["school_id"],
            parent,
            {"roles": roles, "classes": current.get("classes", []), "children": children},
        )
        return say(command.language, "bot.parent_linked", parent=parent, child=child)

    async def cmd_export(self, command: Command, room_id: RoomID, sender: UserID) -> str:
        """«выгрузить данные @логин»: the archive of everything about that person, as a
        file in this direct chat only (a child's data is not for a group room)."""
        lang = command.language
        if not await self._is_direct(room_id):
            return say(lang, "bot.export_direct_only")
        person = command.users[0]
        if ":" not in person:
            person = f"{person}:{self.mxid.split(':', 1)[1]}"
        school = await self._school(sender, room_id)
        data = await self.module.export_person(sender, school["school_id"], person)
        name = f"parta-{person[1:].split(':', 1)[0]}.zip"
        await self.send_file(room_id, data, name, "application/zip")
        return say(lang, "bot.export_ready", user_id=person)

    async def cmd_consents(self, command: Command, room_id: RoomID, sender: UserID) -> str:
        """«согласия»: per school, each of the sender's children (and the sender, where
        they record their own) and each purpose: given, not given or withdrawn, as the
        module keeps them (``GET …/consents`` as the sender); in a direct chat only."""
        lang = command.language
        if not await self._is_direct(room_id):
            return say(lang, "bot.consents_direct_only")
        lines: list[str] = []
        example = ""
        for school, people in await self._consent_subjects(sender):
            if not people:
                continue
            lines.append(say(lang, "bot.consents_school", school=school.get("name", "")))
            for user_id, name in people:
                consents = await self.module.consents(sender, school["school_id"], user_id)
                states = "; ".join(
                    say(
                        lang,
                        "bot.consent_state",
                        purpose=say(lang, f"bot.consent_purpose.{purpose}"),
                        state=say(lang, f"bot.consent_state.{_consent_state(consents, purpose)}"),
                    )
                    for purpose in CONSENT_PURPOSE_ORDER
                )
                who = say(lang, "bot.consent_you") if user_id == sender else name
                lines.append(f"• {who}: {states}")
                if user_id != sender and not example:
                    example = " " + name.split(" ")[0]
        if not lines:
            return say(lang, "bot.consent_nobody")
        lines.append(say(lang, "bot.consents_how", example=example))
        return "\n".join(lines)

    async def cmd_consent(self, command: Command, room_id: RoomID, sender: UserID) -> str:
        """«согласие дать|отозвать <цель> [имя]»: the module's PUT as the sender (recorded
        with their account), for the child named (or the only child; with no children,
        or «я», the sender themself) in each school of theirs the child is in. Who may
        record it is the module's rule; its refusal is relayed in plain words. In a
        direct chat only: a child's consents are not for a class chat."""
        lang = command.language
        if not await self._is_direct(room_id):
            return say(lang, "bot.consents_direct_only")
        purpose, action = command.args
        granted = action == "grant"
        subjects = await self._consent_subjects(sender, everyone=True)
        children = {
            user_id: name
            for school, people in subjects
            for user_id, name in people
            if user_id != sender and user_id in school.get("children", [])
        }
        wanted = command.text.strip()
        target: str
        if wanted.lower() in MYSELF_WORDS or (not wanted and not children):
            target, name = str(sender), say(lang, "bot.consent_you_for")
        else:
            target, name = self._pick_child(children, wanted)
        schools = [s for s, people in subjects if any(u == target for u, _ in people)]
        if not schools:
            raise ApiError.of(403, "M_FORBIDDEN", CONSENT_NOBODY)
        for school in schools:
            await self.module.put_consent(sender, school["school_id"], target, purpose, granted)
        undo = "withdraw" if granted else "give"
        return say(
            lang,
            f"bot.consent_{'given' if granted else 'withdrawn'}",
            purpose=say(lang, f"bot.consent_purpose.{purpose}"),
            who=name,
            schools=", ".join(str(s.get("name", "")) for s in schools),
            change=say(
                lang,
                f"bot.consent_change.{undo}",
                purpose=say(lang, f"bot.consent_purpose.{purpose}"),
                name=f" {wanted}" if wanted else "",
            ),
        )

    async def _consent_subjects(
        self, sender: UserID, everyone: bool = False
    ) -> list[tuple[dict[str, Any], list[tuple[str, str]]]]:
        """Per school of the sender: (user ID, name) of their children and, where they
        record their own consent (not a student, or a student from the school's
        ``policy.self_consent_grade``), themself first. ``everyone``: the sender in
        every school (recording, the module decides)."""
        me = await self.module.me(sender)
        out: list[tuple[dict[str, Any], list[tuple[str, str]]]] = []
        for school in me.get("schools") or []:
            people: list[tuple[str, str]] = []
            if everyone or await self._records_own(sender, school):
                people.append((sender, sender))
            for child in school.get("children", []):
                people.append((child, await self._display_name(child)))
            out.append((school, people))
        return out

    async def _records_own(self, sender: UserID, school: dict[str, Any]) -> bool:
        roles = set(school.get("roles", []))
        if roles - {"student"}:
            return True
        if not school.get("classes"):
            return False
        info = await self.module.school(sender, school["school_id"])
        from_grade = (info.get("policy") or {}).get("self_consent_grade")
        grades = [
            int(c.get("grade", 0))
            for c in await self.module.classes(sender, school["school_id"])
            if c.get("class_id") in school["classes"]
        ]
        return from_grade is not None and max(grades, default=0) >= int(from_grade)

    async def _display_name(self, user_id: str) -> str:
        """The person's display name, or their ID when they have none (or it is hidden)."""
        try:
            name = await self.intent.get_displayname(UserID(user_id))
        except MatrixRequestError:  # a name is a nicety; the ID will do
            logger.debug("no display name for %s", user_id)
            return user_id
        return name or user_id

    @staticmethod
    def _pick_child(children: dict[str, str], wanted: str) -> tuple[str, str]:
        """The child ``wanted`` names (given name, full name, login or ID); the only
        child when nothing is named. Refusals list the children to choose from."""
        names = ", ".join(sorted(children.values()))
        if not wanted:
            if len(children) == 1:
                return next(iter(children.items()))
            raise ApiError.of(400, "M_INVALID_PARAM", CONSENT_WHICH_CHILD, names=names)
        key = name_key(wanted)
        found = {
            user_id: name
            for user_id, name in children.items()
            if key in (name_key(name), name_key(user_id), name_key(user_id[1:].split(":")[0]))
            or (" " not in key and key in name_key(name).split(" "))
        }
        if len(found) == 1:
            return next(iter(found.items()))
        if not found:
            raise ApiError.of(
                404, "M_NOT_FOUND", CONSENT_NO_SUCH_CHILD, name=wanted, names=names or "—"
            )
        several = ", ".join(sorted(found.values()))
        raise ApiError.of(400, "M_INVALID_PARAM", CONSENT_WHICH_CHILD, names=several)

    async def cmd_announce(self, command: Command, room_id: RoomID, sender: UserID) -> str:
        school = await self._school(sender, room_id)
        target, label = await self._target_room(sender, school, command)
        return await self._post(command, school, target, label, sender, "announcement")

    async def cmd_homework(self, command: Command, room_id: RoomID, sender: UserID) -> str:
        if command.args == (HOMEWORK_LIST,):
            return await self._homework_list(command, sender)
        school = await self._school(sender, room_id)
        target, label = await self._target_room(sender, school, command)
        assert command.when is not None
        hours = self.scheduler.reminder_hours
        remind = command.when - datetime.timedelta(hours=hours)
        now = datetime.datetime.now(datetime.UTC)
        if remind < now:
            remind = now
        due_text = command.when.astimezone(self.tz).strftime("%d.%m %H:%M")
        listed = await self._homework_due(command, school, sender)
        reminder = Command(
            "homework",
            text=say(command.language, "bot.homework_reminder", due=due_text, text=listed),
            class_name=command.class_name,
            when=remind,
            language=command.language,
        )
        return await self._post(reminder, school, target, label, sender, "homework")

    async def _homework_due(self, command: Command, school: dict[str, Any], sender: UserID) -> str:
        """What the reminder says: the class's assignments due that day as the module
        lists them (``GET …/classes/{cid}/homework``), those of the subject the command
        names if it names one; none listed is a refusal (post the assignment first)."""
        assert command.when is not None and command.class_name is not None
        class_id = await self._class_id(sender, school, command.class_name)
        day = command.when.astimezone(self.tz).date().isoformat()
        subject = command.text.casefold()
        items = [
            item
            for item in await self.module.class_homework(sender, school["school_id"], class_id)
            if item.get("due") == day
            and str(item.get("subject", "")).casefold().startswith(subject)
        ]
        if not items:
            raise ApiError.of(
                404, "M_NOT_FOUND", HOMEWORK_NOT_LISTED, name=str(command.class_name), due=day
            )
        return "; ".join(f"{item['subject']} — {item['text']}" for item in items)

    async def _homework_list(self, command: Command, sender: UserID) -> str:
        """«дз»: the homework of the sender's classes and of each child, earliest due
        first, as the module lists it (``GET /me/homework``)."""
        lang = command.language
        mine = await self.module.my_homework(sender)
        groups = [("", mine.get("homework") or [])]
        groups += [(str(c["user_id"]), c.get("homework") or []) for c in mine.get("children", [])]
        lines: list[str] = []
        for child, items in groups:
            if child:
                lines.append(say(lang, "bot.homework_child", child=child))
            elif not items:
                continue
            for item in items or ():
                lines.append(
                    say(
                        lang,
                        "bot.homework_item",
                        due=item["due"],
                        subject=item["subject"],
                        text=item["text"],
                    )
                )
            if not items:
                lines.append(say(lang, "bot.homework_none_for_child"))
        if not lines:
            return say(lang, "bot.homework_none")
        return "\n".join([say(lang, "bot.homework_title"), *lines])

    async def _post(
        self,
        command: Command,
        school: dict[str, Any],
        target: str,
        place: Place,
        sender: UserID,
        kind: str,
    ) -> str:
        lang = command.language
        if command.when is None:
            now = await self.scheduler.schedule(
                target,
                command.text,
                datetime.datetime.now(datetime.UTC),
                sender,
                school.get("school_id"),
                kind,
                wake=False,
            )
            error = await self.scheduler.send_now(now)
            if error:
                return say(lang, "bot.not_posted", to=place.to(lang), error=error)
            return say(lang, "bot.posted", to=place.to(lang))
        message = await self.scheduler.schedule(
            target, command.text, command.when, sender, school.get("school_id"), kind
        )
        quiet = self.scheduler.quiet_hours(school.get("school_id"))
        goes = deliver_at(command.when, quiet).astimezone(self.tz)
        scheduled = "bot.scheduled_post" if goes == command.when else "bot.scheduled_post_quiet"
        return say(lang, scheduled, id=message.id, to=place.to(lang), when=f"{goes:%d.%m.%Y %H:%M}")

    async def _lesson_room(
        self, sender: UserID, room_id: RoomID, command: Command
    ) -> tuple[str, Place]:
        if command.class_name is None:
            if await self._is_direct(room_id):
                raise ApiError.of(400, "M_INVALID_PARAM", NAME_THE_CLASS)
            return room_id, Place("this_room")
        school = await self._school(sender, room_id)
        return await self._target_room(sender, school, command)

    async def cmd_lesson(self, command: Command, room_id: RoomID, sender: UserID) -> str:
        target, place = await self._lesson_room(sender, room_id, command)
        lang = command.language
        start = int(command.when.timestamp() * 1000) if command.when else None
        lesson = await self.module.create_lesson(sender, target, command.text, start)
        title = lesson.get("title")
        if lesson.get("status") == "live":
            link = say(lang, "bot.lesson_link", url=lesson["url"]) if lesson.get("url") else ""
            return say(lang, "bot.lesson_started", title=title, at=place.at(lang)) + link
        when = _local_time(lesson.get("start"), self.tz)
        return say(lang, "bot.lesson_scheduled", title=title, when=when, at=place.at(lang))

    async def cmd_attendance(self, command: Command, room_id: RoomID, sender: UserID) -> str:
        target, place = await self._lesson_room(sender, room_id, command)
        lang = command.language
        held = [
            lesson
            for lesson in await self.module.lessons(sender, target)
            if lesson.get("started_at") is not None
        ]
        if not held:
            return say(lang, "bot.no_lessons_held", at=place.at(lang)).capitalize()
        last = max(held, key=lambda lesson: lesson["started_at"])
        report = await self.module.attendance(sender, target, str(last["lesson_id"]))
        present = report.get("present", [])
        absent = report.get("absent", [])
        lines = [
            say(
                lang,
                "bot.attendance",
                title=last.get("title"),
                when=_local_time(last["started_at"], self.tz),
                present=len(present),
                absent=len(absent),
            )
        ]
        for p in present:
            name = p.get("display_name") or p["user_id"]
            lines.append(
                say(lang, "bot.attendance_minutes", name=name, minutes=p.get("minutes", 0))
            )
        for a in absent:
            lines.append(f"✗ {a.get('display_name') or a['user_id']}")
        return "\n".join(lines)

    async def _content_room(
        self, sender: UserID, room_id: RoomID, command: Command
    ) -> tuple[str, Place]:
        """The class chat named, this room when written in a room, else announcements."""
        if command.class_name is None and not await self._is_direct(room_id):
            return room_id, Place("this_room")
        school = await self._school(sender, room_id)
        return await self._target_room(sender, school, command)

    async def cmd_poll(self, command: Command, room_id: RoomID, sender: UserID) -> str:
        target, place = await self._content_room(sender, room_id, command)
        body: dict[str, Any] = {
            "question": command.text,
            "answers": [
                {"text": a, **({"correct": i in command.correct} if command.name == "quiz" else {})}
                for i, a in enumerate(command.answers)
            ],
        }
        if command.name == "quiz":
            body["quiz"] = True
        await self.module.create_poll(sender, target, body)
        posted = "bot.quiz_posted" if command.name == "quiz" else "bot.poll_posted"
        lang = command.language
        return say(lang, posted, question=command.text, at=place.at(lang))

    async def cmd_quiz(self, command: Command, room_id: RoomID, sender: UserID) -> str:
        return await self.cmd_poll(command, room_id, sender)

    async def cmd_results(self, command: Command, room_id: RoomID, sender: UserID) -> str:
        target, place = await self._content_room(sender, room_id, command)
        lang = command.language
        polls = await self.module.polls(sender, target)
        if not polls:
            return say(lang, "bot.no_polls", at=place.at(lang)).capitalize()
        result = await self.module.poll(sender, str(polls[0]["poll_id"]))
        question = result.get("question", polls[0].get("question", ""))
        lines = [say(lang, "bot.poll_voters", question=question, voters=result.get("voters", 0))]
        for answer in result.get("answers", []):
            mark = " ✓" if answer.get("correct") else ""
            lines.append(f"• {answer.get('text')}: {answer.get('votes', 0)}{mark}")
        return "\n".join(lines)

    async def cmd_broadcast(self, command: Command, room_id: RoomID, sender: UserID) -> str:
        target, place = await self._content_room(sender, room_id, command)
        broadcast = await self.module.create_broadcast(
            sender, target, {"title": command.text, "speakers": [sender], "public": True}
        )
        link = broadcast.get("viewer_link") or ""
        lang = command.language
        return say(lang, "bot.broadcast_created", title=command.text, at=place.at(lang), link=link)

    async def cmd_scheduled(self, command: Command, room_id: RoomID, sender: UserID) -> str:
        pending = await self.scheduler.pending_for(sender)
        if not pending:
            return say(command.language, "bot.nothing_scheduled")
        lines = [say(command.language, "bot.scheduled_list")]
        for m in pending:
            when = datetime.datetime.fromtimestamp(m.due_at / 1000, self.tz)
            lines.append(f"• №{m.id} {when:%d.%m %H:%M}: {m.body[:60]}")
        return "\n".join(lines)

    async def cmd_cancel(self, command: Command, room_id: RoomID, sender: UserID) -> str:
        if await self.scheduler.cancel(command.args[0].lstrip("№#"), sender):
            return say(command.language, "bot.cancelled")
        return say(command.language, "bot.no_such_scheduled")

    async def cmd_new_code(self, command: Command, room_id: RoomID, sender: UserID) -> str:
        school = await self._school(sender, room_id)
        [user_id] = command.users
        result = await self.module.new_sign_in_code(sender, school["school_id"], user_id)
        return say(
            command.language,
            "bot.new_sign_in_code",
            user_id=user_id,
            code=result.get("code"),
            expires=_local_time(result.get("expires_at"), self.tz),
        )

    async def cmd_code(self, command: Command, room_id: RoomID, sender: UserID) -> str:
        code = command.args[0]
        result = await self.module.redeem_invite(sender, code)
        lang = command.language
        school = result.get("school_name", "")
        if result.get("pending"):
            return say(lang, "bot.code_pending", school=school)
        roles = role_names(lang, result.get("roles", []))
        return say(lang, "bot.code_joined", school=school, roles=roles)

    # -- helpers -----------------------------------------------------------------

    async def _school(self, sender: UserID, room_id: RoomID) -> dict[str, Any]:
        """The school this command is about: the room's school, or the person's only one."""
        me = await self.module.me(sender)
        schools: list[dict[str, Any]] = me.get("schools") or []
        for school in schools:
            if room_id in _room_ids(school):
                return school
        if len(schools) == 1:
            return schools[0]
        if not schools:
            raise ApiError.of(403, "M_FORBIDDEN", NO_SCHOOL)
        names = ", ".join(str(s.get("name")) for s in schools)
        raise ApiError.of(400, "M_INVALID_PARAM", SEVERAL_SCHOOLS, names=names)

    async def _class_id(self, sender: UserID, school: dict[str, Any], name: ClassName) -> str:
        for cls in await self.module.classes(sender, school["school_id"]):
            if int(cls.get("grade", 0)) == name.grade and str(cls.get("letter", "")) == name.letter:
                return str(cls["class_id"])
        raise ApiError.of(404, "M_NOT_FOUND", NO_SUCH_CLASS, name=str(name))

    async def _target_room(
        self, sender: UserID, school: dict[str, Any], command: Command
    ) -> tuple[str, Place]:
        if command.class_name is None:
            return _room(school, "announcements"), Place("announcements")
        class_id = await self._class_id(sender, school, command.class_name)
        cls = next(
            c
            for c in await self.module.classes(sender, school["school_id"])
            if c.get("class_id") == class_id
        )
        if command.parents_chat:
            return _room(cls, "parents_chat"), Place("parents_chat", str(command.class_name))
        return _room(cls, "class_chat"), Place("class_chat", str(command.class_name))


def refusal(error: ApiError, language: str | None = None) -> str:
    """A module refusal in plain words: what was refused and why, in ``language`` (both
    when it is not known)."""
    kind = {
        403: REFUSED_FORBIDDEN,
        404: REFUSED_NOT_FOUND,
        400: REFUSED_INVALID,
        409: REFUSED_INVALID,
    }
    message = kind.get(error.status, REFUSED_FAILED)
    languages = LANGUAGES if language is None else (language,)
    return "\n".join(message.text(lang, reason=error.text(lang)) for lang in languages)


# The purposes in the order people read them (docs/privacy.md).
CONSENT_PURPOSE_ORDER = tuple(dict.fromkeys(CONSENT_PURPOSES.values()))


def _consent_state(consents: dict[str, Any], purpose: str) -> str:
    """given, withdrawn (granted once or withdrawn on record) or none (never recorded)."""
    record = consents.get(purpose)
    if record is None:
        return "none"
    return "given" if record.get("granted") else "withdrawn"


def _class_title(cls: Any) -> str:
    if isinstance(cls, str):
        return cls
    if isinstance(cls, dict):
        if cls.get("title"):
            return str(cls["title"])
        return f"{cls.get('grade', '')}{cls.get('letter', '')}"
    return str(cls)


def _rooms(thing: dict[str, Any]) -> dict[str, str]:
    rooms = thing.get("rooms")
    if isinstance(rooms, dict):
        return {str(k): str(v) for k, v in rooms.items() if isinstance(v, str)}
    return {}


def _room_ids(school: dict[str, Any]) -> set[str]:
    ids = set(_rooms(school).values())
    for cls in school.get("classes", []):
        if isinstance(cls, dict):
            ids |= set(_rooms(cls).values())
    return ids


def _room(thing: dict[str, Any], kind: str) -> str:
    rooms = _rooms(thing)
    if kind in rooms:
        return rooms[kind]
    raise ApiError.of(404, "M_NOT_FOUND", NO_SUCH_ROOM, kind=kind)


def _local_time(value: Any, tz: zoneinfo.ZoneInfo) -> str:
    if isinstance(value, int | float):
        seconds = value / 1000 if value > 10**11 else value
        return f"{datetime.datetime.fromtimestamp(seconds, tz):%d.%m.%Y %H:%M}"
    return str(value)
