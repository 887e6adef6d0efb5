"""One participant's peer connection: answering its offer, in whichever process holds it.

The main process (single-process mode, moderators) and the workers answer offers the
same way: each transceiver the page offers is either a published source (hooked as a
receiver, nothing decoded), a receive slot (hooked as a sender, nothing encoded), or
inactive.
"""

from collections.abc import Callable, Collection, Mapping
from typing import Any

import attrs
from aiortc import (
    RTCBundlePolicy,
    RTCConfiguration,
    RTCIceServer,
    RTCPeerConnection,
    RTCRtpTransceiver,
    RTCSessionDescription,
)
from aiortc.exceptions import InvalidAccessError, InvalidStateError, OperationError

from sfu.aiortc_hooks import lenient_consent, offered_direction, read_in_bursts
from sfu.config import IceServer
from sfu.errors import LessonError
from sfu.sources import Source

_SDP_ERRORS = (ValueError, InvalidAccessError, InvalidStateError, OperationError)


def new_peer_connection(ice_servers: Collection[IceServer]) -> RTCPeerConnection:
    servers = [
        RTCIceServer(urls=list(s.urls), username=s.username, credential=s.credential)
        for s in ice_servers
    ]
    # max-bundle: aiortc's "balanced" answerer leaves the second and later m-lines of
    # a kind on a transport it then discards.
    return RTCPeerConnection(
        RTCConfiguration(iceServers=servers or None, bundlePolicy=RTCBundlePolicy.MAX_BUNDLE)
    )


def ice_servers_from(raw: list[dict[str, Any]]) -> tuple[IceServer, ...]:
    return tuple(
        IceServer(urls=tuple(s["urls"]), username=s.get("username"), credential=s.get("credential"))
        for s in raw
    )


@attrs.frozen
class Answer:
    sdp: str
    # The mid each source is published on now.
    publishing: dict[Source, str]
    # Sources the offer asked to publish and may not (or not on that transceiver).
    forbidden: list[Source]


async def answer_offer(
    pc: RTCPeerConnection,
    sdp: str,
    sources: Mapping[str, str],
    permitted: Collection[Source],
    hook_publisher: Callable[[RTCRtpTransceiver, Source], None],
    hook_slot: Callable[[RTCRtpTransceiver], None],
    before_answer: Callable[[dict[Source, str]], None] | None = None,
) -> Answer:
    """Apply the offer, hook its transceivers, answer; :class:`LessonError` ``bad_sdp``."""
    try:
        await pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="offer"))
    except _SDP_ERRORS as e:
        raise LessonError("bad_sdp", detail=str(e) or type(e).__name__) from None
    # No await from here until createAnswer: aiortc starts transceivers in a task that
    # must find them hooked.
    lenient_consent(pc)
    forbidden: list[Source] = []
    publishing: dict[Source, str] = {}
    for transceiver in pc.getTransceivers():
        mid = transceiver.mid
        if mid is None:
            continue
        if mid in sources:
            source = Source(sources[mid])
            if source.kind != transceiver.kind or source not in permitted or source in publishing:
                transceiver.direction = "inactive"
                forbidden.append(source)
                continue
            transceiver.direction = "recvonly"
            publishing[source] = mid
            hook_publisher(transceiver, source)
        elif offered_direction(transceiver) == "sendonly":
            transceiver.direction = "sendonly"
            hook_slot(transceiver)
        else:
            transceiver.direction = "inactive"
    if before_answer is not None:
        before_answer(publishing)
    try:
        answer = await pc.createAnswer()
        await pc.setLocalDescription(answer)
    except _SDP_ERRORS as e:
        raise LessonError("bad_sdp", detail=str(e) or type(e).__name__) from None
    read_in_bursts(pc)  # its sockets exist once the answer's candidates are gathered
    return Answer(pc.localDescription.sdp, publishing, forbidden)
