"""1:1 calls in chats: TURN credentials from Synapse, media through Debian's coturn.

Element's one-to-one calls are ``m.call.*`` events in a DM, with TURN credentials from
``GET /_matrix/client/v3/voip/turnServer``. The school's rules on who may call whom are
the DM rules: no DM, no call.
"""

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiortc import (
    RTCConfiguration,
    RTCDataChannel,
    RTCIceServer,
    RTCIceTransportPolicy,
    RTCPeerConnection,
)
from nio import RoomCreateError, RoomCreateResponse, RoomMessagesResponse, RoomSendResponse

from devtools.homeserver import Turn
from tests.harness import RunningHomeserver, User, free_port, running_homeserver
from tests.roster_helpers import School, build_school
from tests.turn_support import running_coturn


@pytest.fixture(scope="module")
def turn_hs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RunningHomeserver, str]]:
    """A Synapse that hands out credentials for a coturn on loopback, and that coturn's URI."""
    directory: Path = tmp_path_factory.mktemp("calls")
    secret_file = directory / "secrets" / "turn-secret.txt"
    port = free_port()
    uri = f"turn:127.0.0.1:{port}?transport=udp"
    turn = Turn(uris=(uri,), secret_file=secret_file, user_lifetime="10m")
    with (
        running_coturn(directory / "coturn", port, secret_file),
        running_homeserver(directory / "synapse", turn=turn) as hs,
    ):
        yield hs, uri


@pytest.fixture(scope="module")
def school(turn_hs: tuple[RunningHomeserver, str]) -> School:
    hs, _ = turn_hs
    return build_school(hs, hs.register("operator", admin=True))


def turn_credentials(hs: RunningHomeserver, user: User) -> dict[str, Any]:
    answer: dict[str, Any] = hs.request(
        "GET", "/_matrix/client/v3/voip/turnServer", token=user.access_token
    )
    return answer


def relay_only(creds: dict[str, Any]) -> RTCConfiguration:
    return RTCConfiguration(
        iceServers=[
            RTCIceServer(
                urls=creds["uris"], username=creds["username"], credential=creds["password"]
            )
        ],
        iceTransportPolicy=RTCIceTransportPolicy.RELAY,
    )


def selected_pair_types(pc: RTCPeerConnection) -> tuple[str, str]:
    """The (local, remote) candidate types of the pair ICE nominated."""
    assert pc.sctp is not None
    connection = pc.sctp.transport.transport.iceGatherer._connection
    (pair,) = connection._nominated.values()
    return pair.local_candidate.type, pair.remote_candidate.type


async def test_synapse_hands_out_turn_credentials(turn_hs: tuple[RunningHomeserver, str]) -> None:
    hs, uri = turn_hs
    user = hs.register("caller")
    creds = turn_credentials(hs, user)
    assert creds["uris"] == [uri]
    # coturn's TURN REST API form: "<expiry>:<user>", HMAC password, the configured lifetime.
    expiry, _, who = creds["username"].partition(":")
    assert who == user.user_id and expiry.isdigit()
    assert creds["ttl"] == 600
    assert creds["password"]


async def test_a_call_relays_through_coturn(turn_hs: tuple[RunningHomeserver, str]) -> None:
    hs, _ = turn_hs
    caller, callee = hs.register("caller"), hs.register("callee")
    a = RTCPeerConnection(relay_only(turn_credentials(hs, caller)))
    b = RTCPeerConnection(relay_only(turn_credentials(hs, callee)))
    received: asyncio.Queue[str] = asyncio.Queue()

    @b.on("datachannel")
    def on_channel(channel: RTCDataChannel) -> None:
        @channel.on("message")
        def on_message(message: str) -> None:
            received.put_nowait(message)

    try:
        channel = a.createDataChannel("call")
        opened = asyncio.Event()
        channel.on("open", opened.set)
        await a.setLocalDescription(await a.createOffer())
        assert a.localDescription is not None
        # Only relay candidates were gathered: the offer carries nothing else.
        candidates = [
            line for line in a.localDescription.sdp.splitlines() if line.startswith("a=candidate")
        ]
        assert candidates and all(" typ relay" in line for line in candidates), candidates
        await b.setRemoteDescription(a.localDescription)
        await b.setLocalDescription(await b.createAnswer())
        assert b.localDescription is not None
        await a.setRemoteDescription(b.localDescription)
        await asyncio.wait_for(opened.wait(), 30)
        channel.send("Алло, это урок?")
        assert await asyncio.wait_for(received.get(), 30) == "Алло, это урок?"
        assert selected_pair_types(a) == ("relay", "relay")
        assert selected_pair_types(b) == ("relay", "relay")
    finally:
        await a.close()
        await b.close()


async def test_wrong_turn_password_gets_no_relay(turn_hs: tuple[RunningHomeserver, str]) -> None:
    """coturn checks the secret: credentials not from this Synapse allocate nothing."""
    hs, _ = turn_hs
    creds = dict(turn_credentials(hs, hs.register("caller")), password="forged")
    pc = RTCPeerConnection(relay_only(creds))
    try:
        pc.createDataChannel("call")
        await pc.setLocalDescription(await pc.createOffer())
        assert pc.localDescription is not None
        assert "typ relay" not in pc.localDescription.sdp
    finally:
        await pc.close()


async def test_who_may_call_whom_follows_the_dm_rules(
    turn_hs: tuple[RunningHomeserver, str], school: School
) -> None:
    hs, _ = turn_hs
    student = school.students[1]
    stranger = hs.register("stranger")
    invite = {
        "call_id": "c1",
        "version": "1",
        "party_id": "p1",
        "lifetime": 60000,
        "offer": {"type": "offer", "sdp": "v=0\r\n"},
    }
    async with hs.client(student) as c:
        # A call needs a DM; with a stranger there is none to ring in.
        refused = await c.room_create(is_direct=True, invite=[stranger.user_id])
        assert isinstance(refused, RoomCreateError), refused
        assert " / " in refused.message
        dm = await c.room_create(is_direct=True, invite=[school.teacher.user_id])
        assert isinstance(dm, RoomCreateResponse), dm
    async with hs.client(school.teacher) as t:
        await t.join(dm.room_id)
    async with hs.client(student) as c:
        sent = await c.room_send(dm.room_id, "m.call.invite", invite)
        assert isinstance(sent, RoomSendResponse), sent
    async with hs.client(school.teacher) as t:
        messages = await t.room_messages(dm.room_id, start="", limit=20)
        assert isinstance(messages, RoomMessagesResponse), messages
        rung = [e for e in messages.chunk if e.source.get("type") == "m.call.invite"]
        assert rung and rung[0].source["content"]["call_id"] == "c1"
