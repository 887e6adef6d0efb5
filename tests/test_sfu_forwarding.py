"""The forwarding core on real RTP/RTCP bytes, with a recording writer and a fake clock."""

import itertools

from aiortc.rtcrtpparameters import (
    RTCRtcpParameters,
    RTCRtpCodecParameters,
    RTCRtpDecodingParameters,
    RTCRtpHeaderExtensionParameters,
    RTCRtpReceiveParameters,
    RTCRtpSendParameters,
)
from aiortc.rtp import (
    RTCP_PSFB_PLI,
    RTCP_RTPFB_NACK,
    HeaderExtensionsMap,
    RtcpPacket,
    RtcpPsfbPacket,
    RtcpRtpfbPacket,
    RtcpSrPacket,
    RtpPacket,
)

from sfu.forwarding import URI_AUDIO_LEVEL, URI_MID, PublishedStream, Slot
from sfu.metrics import ForwardingStats

VP8_KEY = bytes([0x10, 0x00, 0x9D, 0x01, 0x2A])  # S=1, PID=0; P bit clear: keyframe
VP8_DELTA = bytes([0x10, 0x01, 0x00])  # P bit set
PUBLISHER_SSRC = 0x11111111
PUBLISHER_RTX_SSRC = 0x22222222


class RecordingWriter:
    def __init__(self) -> None:
        self.rtp: list[bytes] = []
        self.rtcp: list[bytes] = []

    def send_rtp(self, data: bytes) -> bool:
        self.rtp.append(data)
        return True

    def send_rtcp(self, data: bytes) -> bool:
        self.rtcp.append(data)
        return True

    def packets(self, ext: HeaderExtensionsMap | None = None) -> list[RtpPacket]:
        return [RtpPacket.parse(d, ext or HeaderExtensionsMap()) for d in self.rtp]

    def plis(self) -> list[RtcpPsfbPacket]:
        found = []
        for data in self.rtcp:
            for packet in RtcpPacket.parse(data):
                if isinstance(packet, RtcpPsfbPacket) and packet.fmt == RTCP_PSFB_PLI:
                    found.append(packet)
        return found


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def receive_parameters(kind: str, pt: int, rtx_pt: int | None = None) -> RTCRtpReceiveParameters:
    if kind == "video":
        codecs = [RTCRtpCodecParameters(mimeType="video/VP8", clockRate=90000, payloadType=pt)]
        if rtx_pt is not None:
            codecs.append(
                RTCRtpCodecParameters(
                    mimeType="video/rtx",
                    clockRate=90000,
                    payloadType=rtx_pt,
                    parameters={"apt": pt},
                )
            )
    else:
        codecs = [
            RTCRtpCodecParameters(
                mimeType="audio/opus", clockRate=48000, channels=2, payloadType=pt
            )
        ]
    return RTCRtpReceiveParameters(
        codecs=codecs, encodings=[RTCRtpDecodingParameters(ssrc=PUBLISHER_SSRC, payloadType=pt)]
    )


def send_parameters(kind: str, pt: int) -> RTCRtpSendParameters:
    mime = "video/VP8" if kind == "video" else "audio/opus"
    rate = 90000 if kind == "video" else 48000
    return RTCRtpSendParameters(
        codecs=[RTCRtpCodecParameters(mimeType=mime, clockRate=rate, payloadType=pt)],
        headerExtensions=[
            RTCRtpHeaderExtensionParameters(id=4, uri=URI_MID),
            RTCRtpHeaderExtensionParameters(id=9, uri=URI_AUDIO_LEVEL),
        ],
        muxId="3",
        rtcp=RTCRtcpParameters(cname="x"),
    )


def subscriber_ext() -> HeaderExtensionsMap:
    ext = HeaderExtensionsMap()
    ext.configure(send_parameters("audio", 0))
    return ext


def rtp(
    seq: int, ts: int, payload: bytes, pt: int = 96, marker: bool = True, ssrc: int = PUBLISHER_SSRC
) -> RtpPacket:
    packet = RtpPacket(
        payload_type=pt, sequence_number=seq, timestamp=ts, ssrc=ssrc, marker=int(marker)
    )
    packet.payload = payload
    return packet


def make(
    kind: str, clock: FakeClock, stats: ForwardingStats
) -> tuple[PublishedStream, RecordingWriter]:
    writer = RecordingWriter()
    stream = PublishedStream(
        kind,
        receive_parameters(kind, 96 if kind == "video" else 111, 97),
        writer,
        0xABC,
        stats,
        0.5,
        clock,
    )
    return stream, writer


def test_video_slot_waits_for_a_keyframe_asks_for_one_and_rewrites_headers() -> None:
    clock, stats = FakeClock(), ForwardingStats()
    stream, publisher = make("video", clock, stats)
    out = RecordingWriter()
    slot = Slot("3", "video", 0x5107, stats, clock)
    slot.start(send_parameters("video", 120), out)
    slot.assign(stream)
    # Asking for a keyframe goes to the publisher's media SSRC, from our RTCP SSRC.
    [pli] = publisher.plis()
    assert (pli.media_ssrc, pli.ssrc) == (PUBLISHER_SSRC, 0xABC)
    stream.on_rtp(rtp(100, 9000, VP8_DELTA))
    assert out.rtp == []  # not decodable yet
    stream.on_rtp(rtp(101, 12000, VP8_KEY, marker=False))
    stream.on_rtp(rtp(102, 12000, VP8_DELTA[:1] + b"\x00more"))
    stream.on_rtp(rtp(103, 15000, VP8_DELTA))
    packets = out.packets(subscriber_ext())
    assert [p.payload for p in packets] == [VP8_KEY, VP8_DELTA[:1] + b"\x00more", VP8_DELTA]
    assert {p.ssrc for p in packets} == {0x5107}
    assert {p.payload_type for p in packets} == {120}
    assert [p.marker for p in packets] == [0, 1, 1]
    seqs = [p.sequence_number for p in packets]
    assert seqs == [seqs[0], (seqs[0] + 1) % 65536, (seqs[0] + 2) % 65536]
    assert packets[2].timestamp - packets[0].timestamp == 3000
    assert {p.extensions.mid for p in packets} == {"3"}
    assert stats.packets_video == 3
    assert stats.keyframe_requests_join == 1


def test_switching_source_keeps_one_continuous_stream() -> None:
    clock, stats = FakeClock(), ForwardingStats()
    first, _ = make("video", clock, stats)
    second, second_publisher = make("video", clock, stats)
    out = RecordingWriter()
    slot = Slot("3", "video", 0x5107, stats, clock)
    slot.start(send_parameters("video", 120), out)
    slot.assign(first)
    first.on_rtp(rtp(500, 1000, VP8_KEY))
    first.on_rtp(rtp(501, 4000, VP8_DELTA))
    clock.now += 0.5
    slot.assign(second)
    assert len(second_publisher.plis()) == 1
    first.on_rtp(rtp(502, 7000, VP8_DELTA))  # still shown until the new keyframe
    second.on_rtp(rtp(30000, 777, VP8_DELTA))  # not a keyframe: wait
    second.on_rtp(rtp(30001, 3777, VP8_KEY))
    first.on_rtp(rtp(503, 10000, VP8_DELTA))  # the old source no longer reaches the slot
    second.on_rtp(rtp(30002, 6777, VP8_DELTA))
    packets = out.packets()
    seqs = [p.sequence_number for p in packets]
    assert len(packets) == 5
    assert all((b - a) % 65536 == 1 for a, b in itertools.pairwise(seqs))
    stamps = [p.timestamp for p in packets]
    assert stamps[3] - stamps[2] == 3000  # the switch advances the clock by one frame
    assert stamps[4] - stamps[3] == 3000
    assert first.consumers == []
    assert second.consumers == [slot]


def vp8_with_picture_id(picture_id: int, key: bool) -> bytes:
    """X and I bits, a 15-bit PictureID, then a key or delta frame's first byte."""
    return bytes((0x90, 0x80, 0x80 | picture_id >> 8, picture_id & 0xFF)) + (
        VP8_KEY[1:] if key else b"\x01\x00"
    )


def test_switching_source_continues_vp8_picture_ids() -> None:
    clock, stats = FakeClock(), ForwardingStats()
    first, _ = make("video", clock, stats)
    second, _ = make("video", clock, stats)
    out = RecordingWriter()
    slot = Slot("3", "video", 0x5107, stats, clock)
    slot.start(send_parameters("video", 120), out)
    slot.assign(first)
    first.on_rtp(rtp(500, 1000, vp8_with_picture_id(32766, key=True)))
    first.on_rtp(rtp(501, 4000, vp8_with_picture_id(32767, key=False)))
    slot.assign(second)
    second.on_rtp(rtp(9000, 50, vp8_with_picture_id(1200, key=True), marker=False))
    second.on_rtp(rtp(9001, 50, vp8_with_picture_id(1200, key=False)))
    second.on_rtp(rtp(9002, 3050, vp8_with_picture_id(1201, key=False)))
    pictures = [((p.payload[2] & 0x7F) << 8) | p.payload[3] for p in out.packets()]
    assert pictures == [32766, 32767, 0, 0, 1]
    assert [p.payload[4:] for p in out.packets()][2] == VP8_KEY[1:]


def test_nack_is_answered_from_the_buffer_and_pli_is_rate_limited() -> None:
    clock, stats = FakeClock(), ForwardingStats()
    stream, publisher = make("video", clock, stats)
    out = RecordingWriter()
    slot = Slot("3", "video", 0x5107, stats, clock)
    slot.start(send_parameters("video", 120), out)
    slot.assign(stream)
    for i in range(5):
        stream.on_rtp(rtp(10 + i, 3000 * i, VP8_KEY if i == 0 else VP8_DELTA))
    sent = out.packets()
    lost = [
        sent[1].sequence_number,
        sent[3].sequence_number,
        (sent[4].sequence_number + 900) % 65536,
    ]
    slot.on_rtcp(RtcpRtpfbPacket(fmt=RTCP_RTPFB_NACK, ssrc=1, media_ssrc=0x5107, lost=lost))
    assert out.rtp[5:] == [out.rtp[1], out.rtp[3]]
    assert (stats.nacks_answered, stats.nacks_missed) == (2, 1)
    # The subscriber's PLIs reach the publisher at most once per interval.
    before = len(publisher.plis())
    clock.now += 1.0
    for _ in range(5):
        slot.on_rtcp(RtcpPsfbPacket(fmt=RTCP_PSFB_PLI, ssrc=1, media_ssrc=0x5107))
    assert len(publisher.plis()) == before + 1
    assert stats.keyframe_requests_limited == 4
    # ... and the suppressed one goes out at the next tick after the interval.
    clock.now += 1.0
    stream.tick(bitrate=1_000_000)
    assert len(publisher.plis()) == before + 2


def test_rtx_retransmissions_are_unwrapped_padding_dropped() -> None:
    clock, stats = FakeClock(), ForwardingStats()
    stream, _ = make("video", clock, stats)
    out = RecordingWriter()
    slot = Slot("3", "video", 0x5107, stats, clock)
    slot.start(send_parameters("video", 120), out)
    slot.assign(stream)
    stream.on_rtp(rtp(10, 0, VP8_KEY))
    stream.on_rtp(rtp(12, 3000, VP8_DELTA))
    stream.on_rtp(rtp(1, 0, b"\x00\x0b" + VP8_DELTA, pt=97, ssrc=PUBLISHER_RTX_SSRC))
    stream.on_rtp(rtp(2, 0, b"\x00\x00", pt=97, ssrc=PUBLISHER_RTX_SSRC))  # padding
    packets = out.packets()
    assert len(packets) == 3
    assert packets[2].sequence_number == (packets[0].sequence_number + 1) % 65536
    assert packets[2].payload_type == 120
    assert packets[2].ssrc == 0x5107


def test_blocked_audio_is_dropped_and_levels_are_forwarded() -> None:
    clock, stats = FakeClock(), ForwardingStats()
    stream, _ = make("audio", clock, stats)
    out = RecordingWriter()
    slot = Slot("3", "audio", 0xA0D10, stats, clock)
    slot.start(send_parameters("audio", 109), out)
    slot.assign(stream)
    for i in range(40):
        packet = rtp(i, 960 * i, b"opus", pt=111)
        packet.extensions.audio_level = (True, 20)
        stream.on_rtp(packet)
    assert stream.speaking
    assert stream.last_spoke == clock.now
    forwarded = out.packets(subscriber_ext())
    assert len(forwarded) == 40
    assert forwarded[-1].extensions.audio_level == (False, 20)
    assert forwarded[-1].payload_type == 109
    stream.blocked = True
    stream.on_rtp(rtp(40, 960 * 40, b"opus", pt=111))
    assert len(out.rtp) == 40
    assert stats.packets_dropped_blocked == 1
    slot.sender_report()
    [report] = RtcpPacket.parse(out.rtcp[-1])
    assert isinstance(report, RtcpSrPacket)
    assert report.ssrc == 0xA0D10
    assert report.sender_info.packet_count == 40
    assert report.sender_info.rtp_timestamp == forwarded[-1].timestamp


def test_a_slot_still_waiting_for_a_keyframe_asks_again() -> None:
    clock, stats = FakeClock(), ForwardingStats()
    stream, publisher = make("video", clock, stats)
    out = RecordingWriter()
    slot = Slot("3", "video", 0x5107, stats, clock)
    slot.start(send_parameters("video", 120), out)
    slot.assign(stream)
    assert len(publisher.plis()) == 1
    # The keyframe's first packet never arrives; a second later the slot asks again.
    stream.on_rtp(rtp(11, 3000, VP8_DELTA))
    clock.now += 1.0
    slot.remind()
    assert len(publisher.plis()) == 2
    stream.on_rtp(rtp(12, 6000, VP8_KEY))
    clock.now += 1.0
    slot.remind()  # showing the stream now: nothing to ask for
    assert len(publisher.plis()) == 2
    assert len(out.rtp) == 1
