"""Resolves ``X-Parta-On-Behalf-Of`` for :func:`synapse_module.http.requester_id`: the
person a trusted bot's request acts for, once :func:`.rules.command_refusal` believes it
(a 403 with the reason otherwise, audited)."""

import logging
import time
from collections import OrderedDict
from typing import TYPE_CHECKING

from synapse.module_api import ModuleApi, SynapseRequest

from parta_common.messages import Message

from ..errors import forbidden
from ..http import set_on_behalf_resolver
from .rules import COMMAND_HEADER, ON_BEHALF_HEADER, CommandEvent, command_refusal, is_trusted_bot
from .store import command_txn
from .texts import BOTH_HEADERS

if TYPE_CHECKING:
    from .. import PartaModule

logger = logging.getLogger(__name__)

# How many accepted commands are remembered so each is audited once per process.
_AUDITED = 4096


class Delegation:
    """The bot's delegated identity; installs itself as ``requester_id``'s resolver."""

    def __init__(self, module: "PartaModule") -> None:
        self._module = module
        self._api: ModuleApi = module.api
        self._window_ms = module.config.bot_command_window_seconds * 1000
        self._audited: OrderedDict[tuple[str, str, str], None] = OrderedDict()
        set_on_behalf_resolver(self._api, self.resolve)

    def is_trusted_bot(self, user_id: str) -> bool:
        return is_trusted_bot(user_id, self._api.server_name, self._module.config.trusted_bots)

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
            found = await self._api.run_db_interaction("parta_command", command_txn, command)
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
        details = {"command": command[:255], "reason": why.id}
        await self._module.roster.audit(caller, "on_behalf.refused", None, person[:255], details)
        logger.warning("refused %s acting for %s on %s: %s", caller, person, command, why.id)
        raise forbidden(why, command=command[:80], person=person[:80])

    async def _audit_once(self, caller: str, person: str, command: str) -> None:
        key = (caller, person, command)
        if key in self._audited:
            return
        self._audited[key] = None
        while len(self._audited) > _AUDITED:
            self._audited.popitem(last=False)
        await self._module.roster.audit(caller, "on_behalf", None, person, {"command": command})


def _header(request: SynapseRequest, name: bytes) -> str | None:
    value = request.requestHeaders.getRawHeaders(name)
    if not value:
        return None
    return value[0].decode("utf-8", errors="replace").strip() or None
