"""The private aiortc hooks, against the pinned aiortc: packets in and out, no codecs."""

import asyncio
import itertools
import threading
import time
from collections.abc import Callable

import aiortc
import aiortc.rtcrtpreceiver
import aiortc.rtcrtpsender
import av
import pytest
from aiortc import RTCPeerConnection, RTCRtpTransceiver
from aiortc.codecs.vpx import VpxPayloadDescriptor
from aiortc.rtcrtpparameters import (
    RTCRtpCodecParameters,
    RTCRtpReceiveParameters,
    RTCRtpSendParameters,
)
from aiortc.rtp import (
    RTCP_PSFB_APP,
    RTCP_PSFB_PLI,
    AnyRtcpPacket,
    RtcpPsfbPacket,
    RtpPacket,
    pack_remb_fci,
    unpack_remb_fci,
)

from sfu.aiortc_hooks import (
    AIORTC_VERSION,
    ReceivedRtp,
    RtpWriter,
    check_aiortc_version,
    hook_receiver,
    hook_sender,
    lenient_consent,
    offered_direction,
    pace_remb,
    read_in_bursts,
    run_now,
    sender_ssrc,
)
from sfu.batching import gso_available
from sfu.forwarding import PublishedStream, Slot
from sfu.metrics import ForwardingStats
from sfu.rtp import encode_rtp, seq_newer
from sfu.synthetic import ClipTrack, encode_vp8_clip

Calls = list[str]


def test_aiortc_is_the_pinned_version() -> None:
    assert aiortc.__version__ == AIORTC_VERSION
    check_aiortc_version()


@pytest.fixture
def codec_calls(monkeypatch: pytest.MonkeyPatch) -> Calls:
    """Record every decoder thread, decoder and encoder aiortc would create."""
    calls: Calls = []

    def recorder(name: str, original: Callable[..., object]) -> Callable[..., object]:
        def record(*args: object, **kwargs: object) -> object:
            calls.append(name)
            return original(*args, **kwargs)

        return record

    for module, name in (
        (aiortc.rtcrtpreceiver, "decoder_worker"),
        (aiortc.rtcrtpreceiver, "get_decoder"),
        (aiortc.rtcrtpsender, "get_encoder"),
    ):
        monkeypatch.setattr(module, name, recorder(name, getattr(module, name)))
    return calls


async def connect(
    offerer: RTCPeerConnection,
    answerer: RTCPeerConnection,
    hook: Callable[[RTCRtpTransceiver], None],
) -> None:
    await offerer.setLocalDescription(await offerer.createOffer())
    await answerer.setRemoteDescription(offerer.localDescription)
    for transceiver in answerer.getTransceivers():
        hook(transceiver)
    await answerer.setLocalDescription(await answerer.createAnswer())
    await offerer.setRemoteDescription(answerer.localDescription)


async def poll(condition: Callable[[], bool], within: float = 15.0) -> None:
    deadline = time.monotonic() + within
    while True:
        if condition():
            return
        if time.monotonic() > deadline:
            raise TimeoutError("condition not met in time")
        await asyncio.sleep(0.02)


async def test_hooked_receiver_gets_packets_and_never_decodes(codec_calls: Calls) -> None:
    publisher, sfu = RTCPeerConnection(), RTCPeerConnection()
    publisher.addTransceiver(ClipTrack("video", encode_vp8_clip(), 30), direction="sendonly")
    packets: list[RtpPacket] = []
    started: list[RTCRtpReceiveParameters] = []

    def hook(transceiver: RTCRtpTransceiver) -> None:
        assert offered_direction(transceiver) == "recvonly"
        hook_receiver(transceiver.receiver, started.append, packets.append)

    try:
        await connect(publisher, sfu, hook)
        await poll(lambda: len(packets) >= 20)
        assert next(c.mimeType for c in started[0].codecs) == "video/VP8"
        assert {p.ssrc for p in packets} == {publisher.getSenders()[0]._ssrc}
        # The publisher's sender packs (get_encoder); nothing on the SFU side decodes.
        assert "decoder_worker" not in codec_calls
        assert "get_decoder" not in codec_calls
        assert not [t for t in threading.enumerate() if t.name.endswith("-decoder")]
    finally:
        await publisher.close()
        await sfu.close()


async def test_hooked_sender_writes_packets_a_real_peer_decodes(codec_calls: Calls) -> None:
    subscriber, sfu = RTCPeerConnection(), RTCPeerConnection()
    subscriber.addTransceiver("video", direction="recvonly")
    stats = ForwardingStats()
    slots: list[Slot] = []
    rtcp: list[AnyRtcpPacket] = []

    def hook(transceiver: RTCRtpTransceiver) -> None:
        assert offered_direction(transceiver) == "sendonly"
        transceiver.direction = "sendonly"
        slot = Slot(str(transceiver.mid), "video", sender_ssrc(transceiver.sender), stats)
        slots.append(slot)
        sender = transceiver.sender

        def on_start(parameters: RTCRtpSendParameters) -> None:
            slot.start(parameters, RtpWriter(sender.transport))

        def on_rtcp(packet: AnyRtcpPacket) -> None:
            rtcp.append(packet)
            slot.on_rtcp(packet)

        hook_sender(sender, on_start, on_rtcp)

    try:
        await connect(subscriber, sfu, hook)
        [slot] = slots
        await poll(lambda: slot.ready)
        track = subscriber.getReceivers()[0].track
        frames = encode_vp8_clip(frames=10)
        stream = PublishedStream(
            "video",
            RTCRtpReceiveParameters(
                codecs=[
                    RTCRtpCodecParameters(mimeType="video/VP8", clockRate=90000, payloadType=96)
                ]
            ),
            _NoFeedback(),
            1,
            stats,
            0.5,
        )
        slot.assign(stream)

        async def feed() -> None:
            for index, frame in enumerate(frames):
                descriptor = VpxPayloadDescriptor(
                    partition_start=1, partition_id=0, picture_id=index
                )
                packet = RtpPacket(payload_type=96, sequence_number=index, timestamp=index * 3000)
                packet.payload = bytes(descriptor) + frame
                packet.marker = 1
                stream.on_rtp(packet)
                await asyncio.sleep(1 / 30)

        feeder = asyncio.create_task(feed())
        decoded = await asyncio.wait_for(track.recv(), 10)
        assert isinstance(decoded, av.VideoFrame)
        assert (decoded.width, decoded.height) == (320, 240)
        await feeder
        assert stats.packets_video == len(frames)
        # The SFU side created no encoder (the subscriber decodes; that is its job).
        assert "get_encoder" not in codec_calls
        assert vars(sfu.getTransceivers()[0].sender)["_RTCRtpSender__encoder"] is None
    finally:
        await subscriber.close()
        await sfu.close()


class _NoFeedback:
    def send_rtp(self, data: bytes) -> bool:
        return False

    def send_rtcp(self, data: bytes) -> bool:
        return False


async def test_lenient_consent_replaces_aioice_checks_before_connecting() -> None:
    pc = RTCPeerConnection()
    pc.addTransceiver("video", direction="recvonly")
    try:
        connection = pc.getTransceivers()[0].receiver.transport.transport._connection
        strict = connection.query_consent
        lenient_consent(pc)
        assert connection.query_consent is not strict
        assert vars(connection)["_parta_consent"] is True
    finally:
        await pc.close()


async def test_read_in_bursts_drains_a_backlog_in_one_turn() -> None:
    publisher, sfu = RTCPeerConnection(), RTCPeerConnection()
    publisher.addTransceiver(ClipTrack("video", encode_vp8_clip(), 30), direction="sendonly")
    packets: list[RtpPacket] = []

    def hook(transceiver: RTCRtpTransceiver) -> None:
        hook_receiver(transceiver.receiver, lambda parameters: None, packets.append)

    try:
        await connect(publisher, sfu, hook)
        read_in_bursts(sfu)
        # Once DTLS is up, media goes from the socket straight to the hooked receiver,
        # not through the DTLS transport's task (which would call _handle_rtp_data);
        # what arrived during the handshake waited in aiortc's queue.
        dtls = sfu.getTransceivers()[0].receiver.transport
        slow: list[bytes] = []
        handle_rtp_data = dtls._handle_rtp_data

        async def counting(data: bytes, arrival_time_ms: int) -> None:
            slow.append(data)
            await handle_rtp_data(data, arrival_time_ms)

        dtls._handle_rtp_data = counting  # type: ignore[method-assign]
        await poll(lambda: len(packets) >= 10)
        early = len(slow)
        await poll(lambda: len(packets) >= 40)
        assert len(slow) == early
        # After an SSRC's first packet, its packets take the short parse, intact.
        assert isinstance(packets[-1], ReceivedRtp)
        assert [p.ssrc for p in packets[-10:]] == [packets[-1].ssrc] * 10
        numbers = [p.sequence_number for p in packets[-10:]]
        assert all(seq_newer(b, a) for a, b in itertools.pairwise(numbers))
        assert all(p.payload and p.payload_type == packets[-1].payload_type for p in packets[-10:])
        connection = sfu.getTransceivers()[0].receiver.transport.transport._connection
        [pair] = connection._nominated.values()
        sock = pair.protocol.transport.get_extra_info("socket")
        # Ten datagrams wait in the socket (sent from the pair's remote address, so
        # ICE takes them as data); one turn of the loop reads them all, where
        # asyncio's own reader would take one.
        publishing = publisher.getTransceivers()[0].sender.transport.transport._connection
        [remote] = [
            p.transport
            for p in publishing._protocols
            # By port: the pair may name the publisher's socket by another of its addresses.
            if p.transport.get_extra_info("sockname")[1] == pair.remote_addr[1]
        ]
        for _ in range(10):
            remote.sendto(b"\x80" + bytes(30), sock.getsockname())
        selector = asyncio.get_running_loop()._selector  # type: ignore[attr-defined]
        reader = selector.get_key(sock.fileno()).data[0]
        queued = connection._queue.qsize()
        reader._run()
        assert connection._queue.qsize() - queued >= 10
        before = len(packets)
        await poll(lambda: len(packets) > before)  # and media goes on
    finally:
        await publisher.close()
        await sfu.close()


@pytest.mark.parametrize("gso", [True, False], ids=["gso", "one-by-one"])
async def test_writer_sends_a_turns_packets_together_and_the_peer_gets_each(gso: bool) -> None:
    """A frame's packets queued in one turn reach a real peer intact, in order, once each."""
    subscriber, sfu = RTCPeerConnection(), RTCPeerConnection()
    transceiver = subscriber.addTransceiver("video", direction="recvonly")
    received: list[RtpPacket] = []
    hook_receiver(transceiver.receiver, lambda parameters: None, received.append)
    stats = ForwardingStats()
    writers: list[RtpWriter] = []
    payload_types: list[int] = []

    def hook(transceiver: RTCRtpTransceiver) -> None:
        transceiver.direction = "sendonly"
        sender = transceiver.sender

        def on_start(parameters: RTCRtpSendParameters) -> None:
            payload_types.append(int(parameters.codecs[0].payloadType or 0))
            writers.append(RtpWriter.shared(sender.transport, stats))

        hook_sender(sender, on_start, lambda packet: None)

    try:
        await connect(subscriber, sfu, hook)
        await poll(lambda: bool(writers))
        [writer] = writers
        assert RtpWriter.shared(sfu.getTransceivers()[0].sender.transport) is writer
        writer.gso = gso and gso_available()
        ssrc = sender_ssrc(sfu.getTransceivers()[0].sender)
        # 40 packets of 1,100 bytes and a short last one, then a second frame: three
        # GSO runs (the kernel's 64-segment limit is not reached; sizes change twice).
        sizes = [1100] * 40 + [317] + [900] * 3
        sent = [
            encode_rtp(
                payload_types[0],
                1000 + i,
                90000 + (i // 41) * 3000,
                ssrc,
                i in (40, 43),
                bytes([i]) * n,
            )
            for i, n in enumerate(sizes)
        ]
        await poll(lambda: writer.send_rtp(sent[0]))  # the DTLS transport is up
        writer.flush()
        for data in sent[1:]:
            assert writer.send_rtp(data)
        await poll(lambda: len(received) >= len(sent))
        assert [p.sequence_number for p in received] == [1000 + i for i in range(len(sent))]
        assert [p.payload for p in received] == [bytes([i]) * n for i, n in enumerate(sizes)]
        assert [bool(p.marker) for p in received] == [i in (40, 43) for i in range(len(sizes))]
        assert stats.packets_unsent == 0
    finally:
        await subscriber.close()
        await sfu.close()


async def test_run_now_runs_on_this_stack_and_hands_a_suspension_to_a_task() -> None:
    steps: list[str] = []

    async def at_once() -> None:
        steps.append("at once")

    run_now(at_once())
    assert steps == ["at once"]  # before run_now returned, no loop turn

    loop = asyncio.get_running_loop()
    answer: asyncio.Future[str] = loop.create_future()
    failing: asyncio.Future[str] = loop.create_future()

    async def waits() -> None:
        steps.append("before")
        steps.append(await answer)
        await asyncio.sleep(0)
        try:
            await failing
        except KeyError as e:
            steps.append(f"raised {e}")

    run_now(waits())
    assert steps[-1] == "before"
    answer.set_result("after")
    await poll(lambda: steps[-1] == "after")
    failing.set_exception(KeyError("x"))
    await poll(lambda: steps[-1] == "raised 'x'")


async def test_remb_is_paced_as_libwebrtc_paces_it() -> None:
    """One REMB per 200 ms unless the estimate falls 3 % or more; other RTCP untouched."""
    pc = RTCPeerConnection()
    try:
        receiver = pc.addTransceiver("video", direction="recvonly").receiver
        sent: list[AnyRtcpPacket] = []

        async def record(packet: AnyRtcpPacket) -> None:
            sent.append(packet)

        receiver._send_rtcp = record  # type: ignore[method-assign]
        now = [100.0]
        pace_remb(receiver, clock=lambda: now[0])

        def remb(bitrate: int) -> RtcpPsfbPacket:
            fci = pack_remb_fci(bitrate, [5])
            return RtcpPsfbPacket(fmt=RTCP_PSFB_APP, ssrc=1, media_ssrc=0, fci=fci)

        await receiver._send_rtcp(remb(1_000_000))  # the first: sent
        await receiver._send_rtcp(remb(990_000))  # 1 % lower within 200 ms: held
        now[0] += 0.1
        await receiver._send_rtcp(remb(960_000))  # 4 % lower: sent at once
        await receiver._send_rtcp(remb(1_500_000))  # higher within 200 ms: held
        pli = RtcpPsfbPacket(fmt=RTCP_PSFB_PLI, ssrc=1, media_ssrc=5)
        await receiver._send_rtcp(pli)  # other RTCP: always
        now[0] += 0.2
        await receiver._send_rtcp(remb(2_000_000))  # the interval has passed: sent
        rembs = [
            unpack_remb_fci(p.fci)[0]
            for p in sent
            if isinstance(p, RtcpPsfbPacket) and p.fmt == RTCP_PSFB_APP
        ]
        assert rembs == [1_000_000, 960_000, 2_000_000]
        assert pli in sent
    finally:
        await pc.close()
