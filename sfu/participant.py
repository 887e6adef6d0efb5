"""One connection in a lesson: who it is, what it publishes, what it receives."""

import random
from collections.abc import Callable
from typing import Any, Protocol

from aiortc import RTCPeerConnection

from parta_common.tokens import MediaClaims
from sfu.forwarding import PublishedStream, Slot
from sfu.sources import Source, StreamKey
from sfu.worker_pool import RemotePeer, RemoteSlot


class Connection(Protocol):
    """The signalling channel to one client (a WebSocket in production)."""

    def send(self, message: dict[str, Any]) -> None:
        """Queue ``message``; never blocks."""

    def close(self, code: int) -> None:
        """Flush what is queued, then close with ``code``."""


class Participant:
    def __init__(
        self, participant_id: str, claims: MediaClaims, connection: Connection, join_order: int
    ) -> None:
        self.id = participant_id
        self.claims = claims
        self.connection = connection
        self.join_order = join_order
        self.admitted = False
        self.gone = False
        # The peer connection: here (``pc``), or in a worker process (``remote``).
        self.pc: RTCPeerConnection | None = None
        self.remote: RemotePeer | None = None
        # Published streams by sending mid (kept while the transceiver lives) and the
        # mid each source is published on now.
        self.published: dict[str, PublishedStream] = {}
        self.active: dict[Source, str] = {}
        self.muted_self: dict[Source, bool] = {}
        self.audio_blocked = False
        self.screen_allowed = False
        self.slots: dict[str, Slot | RemoteSlot] = {}
        self.assignments: dict[str, StreamKey | None] = {}
        self.rtcp_ssrc = random.getrandbits(32)

    @property
    def moderator(self) -> bool:
        return self.claims.grants.moderate

    @property
    def user_id(self) -> str:
        return self.claims.user_id

    def stream(self, source: Source) -> PublishedStream | None:
        mid = self.active.get(source)
        return self.published.get(mid) if mid is not None else None

    def send(self, message: dict[str, Any]) -> None:
        if not self.gone:
            self.connection.send(message)

    def slot_mids(self, kind: str) -> list[str]:
        return [mid for mid, slot in self.slots.items() if slot.kind == kind]

    def describe(self, may_share_screen: Callable[["Participant"], bool]) -> dict[str, Any]:
        """The ``participant`` object of the protocol."""
        grants = self.claims.grants
        return {
            "id": self.id,
            "user_id": self.claims.user_id,
            "name": self.claims.display_name,
            "role": self.claims.role,
            "moderator": self.moderator,
            "grants": grants.to_claim(),
            "may_share_screen": may_share_screen(self),
            "sources": {
                str(source): {"muted": self.muted_self.get(source, False)} for source in self.active
            },
            "audio_blocked": self.audio_blocked,
        }
