"""The school bot acting for a person: only on that person's own recent command.

The bot's application service owns only its own user (an exclusive namespace), so it
cannot become anybody through the homeserver. When it carries out a person's command it
calls this module as itself and names the person and the command::

    X-Parta-On-Behalf-Of: @ann:school.ru
    X-Parta-Command: $event_id_of_anns_message

:func:`command_refusal` decides whether that is believed: the caller is one of the
configured ``trusted_bots``, the event exists on this server, was sent by that person, in
a room the bot is joined to, and arrived less than ``bot_command_window_seconds`` ago.
Then the request runs with the person's rights, and only theirs; anything else is a 403
in Russian and English, written to the audit log.

Reading an event by id is not offered by ``synapse.module_api``; :func:`_command_txn`
reads Synapse's ``events`` table through ``run_db_interaction`` (the columns used have
been stable since Synapse 1.68) — the one place the module depends on Synapse's schema.
"""

import logging
import time
from collections import OrderedDict
from typing import TYPE_CHECKING

import attrs
from synapse.module_api import LoggingTransaction, ModuleApi, SynapseRequest

from parta_common.messages import Message

from .errors import forbidden
from .http import set_on_behalf_resolver
from .roster_store import audit_txn

if TYPE_CHECKING:
    from . import PartaModule

logger = logging.getLogger(__name__)

ON_BEHALF_HEADER = b"X-Parta-On-Behalf-Of"
COMMAND_HEADER = b"X-Parta-Command"

NOT_A_TRUSTED_BOT = Message(
    ru="Действовать от имени другого человека может только школьный бот.",
    en="Only the school bot may act on another person's behalf.",
)
BOTH_HEADERS = Message(
    ru="Запрос от имени человека должен называть и человека, и его команду.",
    en="A request on a person's behalf must name both the person and their command.",
)
NO_SUCH_COMMAND = Message(
    ru="Команда {command} не найдена на этом сервере.",
    en="The command {command} is not on this server.",
)
NOT_THEIR_COMMAND = Message(
    ru="Команду {command} написал не {person}.",
    en="The command {command} was not sent by {person}.",
)
BOT_NOT_IN_ROOM = Message(
    ru="Команда {command} написана не в комнате бота.",
    en="The command {command} was not sent in a room the bot is in.",
)
COMMAND_TOO_OLD = Message(
    ru="Команда {command} слишком старая; повторите её.",
    en="The command {command} is too old; send it again.",
)


@attrs.frozen
class CommandEvent:
    """What the module knows of the event a bot names as the person's command."""

    room_id: str
    sender: str
    received_ts: int
    rejected: bool


def command_refusal(
    *,
    trusted_bot: bool,
    person: str,
    command: CommandEvent | None,
    bot_joined: bool,
    now_ms: int,
    window_ms: int,
) -> Message | None:
    """Why a bot may not act for ``person`` on ``command`` now, or ``None`` if it may."""
    if not trusted_bot:
        return NOT_A_TRUSTED_BOT
    if command is None or command.rejected:
        return NO_SUCH_COMMAND
    if command.sender != person:
        return NOT_THEIR_COMMAND
    if not bot_joined:
        return BOT_NOT_IN_ROOM
    if not 0 <= now_ms - command.received_ts <= window_ms:
        return COMMAND_TOO_OLD
    return None


def _command_txn(txn: LoggingTransaction, event_id: str) -> CommandEvent | None:
    txn.execute(
        "SELECT room_id, sender, received_ts, rejection_reason, outlier FROM events"
        " WHERE event_id = ?",
        (event_id,),
    )
    row = txn.fetchone()
    if row is None or row[1] is None or row[2] is None:
        return None
    room_id, sender, received_ts, rejection, outlier = row
    return CommandEvent(str(room_id), str(sender), int(received_ts), bool(rejection or outlier))


# How many accepted commands are remembered so each is audited once per process.
_AUDITED = 4096


class OnBehalf:
    """Resolves ``X-Parta-On-Behalf-Of`` for :func:`synapse_module.http.requester_id`."""

    def __init__(self, module: "PartaModule") -> None:
        self._module = module
        self._api: ModuleApi = module.api
        self._window_ms = module.config.bot_command_window_seconds * 1000
        self._audited: OrderedDict[tuple[str, str, str], None] = OrderedDict()
        set_on_behalf_resolver(self._api, self.resolve)

    def is_trusted_bot(self, user_id: str) -> bool:
        localpart, _, server = user_id.removeprefix("@").partition(":")
        return server == self._api.server_name and localpart in self._module.config.trusted_bots

    async def resolve(self, caller: str, request: SynapseRequest) -> str:
        """The person a request is for: ``caller`` itself without the headers."""
        person = _header(request, ON_BEHALF_HEADER)
        command = _header(request, COMMAND_HEADER)
        if person is None and command is None:
            return caller
        if person is None or command is None:
            await self._refuse(caller, person or "", command or "", BOTH_HEADERS)
        assert person is not None and command is not None
        if person == caller:
            return caller
        found: CommandEvent | None = None
        joined = False
        trusted = self.is_trusted_bot(caller)
        if trusted and command.startswith("$") and len(command) <= 255:
            found = await self._api.run_db_interaction("parta_command", _command_txn, command)
            if found is not None and found.sender == person:
                joined = await self._joined(found.room_id, caller)
        refusal = command_refusal(
            trusted_bot=trusted,
            person=person,
            command=found,
            bot_joined=joined,
            now_ms=int(time.time() * 1000),
            window_ms=self._window_ms,
        )
        if refusal is not None:
            await self._refuse(caller, person, command, refusal)
        await self._audit_once(caller, person, command)
        return person

    async def _joined(self, room_id: str, user_id: str) -> bool:
        state = await self._api.get_room_state(room_id, [("m.room.member", user_id)])
        member = state.get(("m.room.member", user_id))
        return member is not None and member.content.get("membership") == "join"

    async def _refuse(self, caller: str, person: str, command: str, why: Message) -> None:
        ts = int(time.time() * 1000)
        details = {"command": command[:255], "reason": why.en}
        await self._module.store.run(
            "parta_on_behalf_refused",
            audit_txn,
            ts,
            caller,
            "on_behalf.refused",
            None,
            person[:255],
            details,
        )
        logger.warning("refused %s acting for %s on %s: %s", caller, person, command, why.en)
        raise forbidden(why, command=command[:80], person=person[:80])

    async def _audit_once(self, caller: str, person: str, command: str) -> None:
        key = (caller, person, command)
        if key in self._audited:
            return
        self._audited[key] = None
        while len(self._audited) > _AUDITED:
            self._audited.popitem(last=False)
        await self._module.store.run(
            "parta_on_behalf",
            audit_txn,
            int(time.time() * 1000),
            caller,
            "on_behalf",
            None,
            person,
            {"command": command},
        )


def _header(request: SynapseRequest, name: bytes) -> str | None:
    value = request.requestHeaders.getRawHeaders(name)
    if not value:
        return None
    return value[0].decode("utf-8", errors="replace").strip() or None
