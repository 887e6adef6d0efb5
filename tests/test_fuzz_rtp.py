"""Property tests: the SFU's packet parsers on arbitrary bytes.

The SFU reads media from the network (sfu/aiortc_hooks.py's fast path parses an SSRC's
first packet with aiortc's ``RtpPacket.parse`` and catches ``ValueError``, the SSRC's
later ones with its own ``parse_received``; RTCP goes aiortc's way, whose
``RtcpPacket.parse`` has the same contract) and then looks into payloads with sfu/rtp.py.
Whatever bytes arrive, the parsers raise nothing but their documented ``ValueError``
(``parse_received``: nothing, None for what it refuses), ``parse_received`` reads every
packet aiortc reads as aiortc does, and the payload helpers raise nothing at all.
"""

import struct

import pytest
from aiortc.rtcrtpparameters import RTCRtpHeaderExtensionParameters, RTCRtpParameters
from aiortc.rtp import HeaderExtensionsMap, RtcpPacket, RtpPacket
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sfu.aiortc_hooks import parse_received
from sfu.rtp import (
    Vp8Pictures,
    encode_rtp,
    is_h264_keyframe_start,
    is_keyframe_start,
    is_vp8_keyframe_start,
    rtp_payload,
    unwrap_rtx,
    vp8_picture_numbers,
)

# CI profile: a few hundred inputs per property; devtools/fuzz_rtp.py runs many more.
PROFILE = settings(max_examples=400, deadline=None, suppress_health_check=list(HealthCheck))

# Arbitrary bytes, and bytes that look like RTP (version 2, so the parsers go deep).
any_bytes = st.binary(max_size=1500)
rtp_like = st.builds(
    lambda first, rest: bytes((0x80 | (first & 0x3F),)) + rest,
    st.integers(0, 255),
    st.binary(max_size=200),
)
rtcp_like = st.builds(
    lambda first, kind, rest: bytes((0x80 | (first & 0x3F), kind)) + rest,
    st.integers(0, 255),
    st.sampled_from([192, 200, 201, 202, 203, 204, 205, 206, 207]),
    st.binary(max_size=200),
)


@PROFILE
@given(data=st.one_of(any_bytes, rtp_like))
def test_rtp_parse_raises_only_value_error(data: bytes) -> None:
    try:
        packet = RtpPacket.parse(data, HeaderExtensionsMap())
    except ValueError:
        return
    assert packet.version == 2
    # What the forwarder does with a parsed packet's bytes and payload.
    rtp_payload(data)
    for mime in ("video/VP8", "video/H264", "audio/opus"):
        is_keyframe_start(mime, packet.payload)


@PROFILE
@given(data=st.one_of(any_bytes, rtcp_like))
def test_rtcp_parse_raises_only_value_error(data: bytes) -> None:
    try:
        packets = RtcpPacket.parse(data)
    except ValueError:
        return
    assert isinstance(packets, list)


@PROFILE
@given(payload=any_bytes)
def test_payload_helpers_never_raise(payload: bytes) -> None:
    is_vp8_keyframe_start(payload)
    is_h264_keyframe_start(payload)
    unwrap_rtx(payload)
    picture_id, tl0 = vp8_picture_numbers(payload)
    assert picture_id is None or 0 <= picture_id < 1 << 15
    assert tl0 is None or 0 <= tl0 < 256


@PROFILE
@given(
    packet=st.one_of(any_bytes.filter(lambda b: len(b) >= 12), rtp_like),
)
def test_rtp_payload_never_raises_on_a_header(packet: bytes) -> None:
    """Anything of RTP's minimum size (the fast path drops shorter datagrams)."""
    payload = rtp_payload(packet)
    assert len(payload) <= len(packet)


@PROFILE
@given(
    previous=any_bytes,
    payloads=st.lists(any_bytes, max_size=20),
    last_pid=st.none() | st.integers(0, (1 << 15) - 1),
    last_tl0=st.none() | st.integers(0, 255),
)
def test_vp8_renumbering_never_raises(
    previous: bytes, payloads: list[bytes], last_pid: int | None, last_tl0: int | None
) -> None:
    Vp8Pictures.continuing(previous)
    pictures = Vp8Pictures(last_pid, last_tl0)
    for payload in payloads:
        out = pictures.rewrite(payload)
        # The numbers are rewritten in place or grow by one byte (7-bit → 15-bit).
        assert len(payload) <= len(out) <= len(payload) + 1
        encode_rtp(96, 1, 2, 3, False, out)


@pytest.mark.parametrize("data", [b"", b"\x80", b"\x90" + b"\x00" * 11, b"\x8f" + b"\x00" * 11])
def test_short_and_lying_headers_are_refused(data: bytes) -> None:
    """The edges hypothesis found worth pinning: empty, truncated, CSRC count past the end."""
    with pytest.raises(ValueError, match="RTP"):
        RtpPacket.parse(data, HeaderExtensionsMap())


AUDIO_LEVEL_ID = 3
ABS_SEND_TIME_ID = 5


def _extensions_map() -> HeaderExtensionsMap:
    extensions = HeaderExtensionsMap()
    extensions.configure(
        RTCRtpParameters(
            headerExtensions=[
                RTCRtpHeaderExtensionParameters(
                    AUDIO_LEVEL_ID, "urn:ietf:params:rtp-hdrext:ssrc-audio-level"
                ),
                RTCRtpHeaderExtensionParameters(
                    ABS_SEND_TIME_ID,
                    "http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time",
                ),
            ]
        )
    )
    return extensions


# RTP with an extension block of a few elements (ids around the audio level's), as
# browsers send it, and with random flags, CSRC counts and padding around it.
extension_element = st.tuples(st.integers(0, 15), st.binary(min_size=1, max_size=4))
with_extensions = st.builds(
    lambda first, second, elements, two_bytes, rest: _with_block(
        first, second, elements, two_bytes, rest
    ),
    st.integers(0, 255),
    st.integers(0, 255),
    st.lists(extension_element, max_size=4),
    st.booleans(),
    st.binary(max_size=40),
)


def _with_block(
    first: int, second: int, elements: list[tuple[int, bytes]], two_bytes: bool, rest: bytes
) -> bytes:
    block = bytearray()
    for ext_id, value in elements:
        if two_bytes:
            block += bytes((ext_id, len(value))) + value
        else:
            block += bytes(((ext_id << 4) | (len(value) - 1),)) + value
    block += bytes(-len(block) % 4)
    profile = 0x1000 if two_bytes else 0xBEDE
    header = bytes((0x90 | (first & 0x2F), second)) + bytes(10)
    return header + struct.pack("!HH", profile, len(block) // 4) + bytes(block) + rest


@PROFILE
@given(data=st.one_of(rtp_like.filter(lambda b: len(b) >= 12), with_extensions))
def test_the_fast_parse_reads_what_aiortc_reads(data: bytes) -> None:
    """Where aiortc parses a packet, ``parse_received`` gives the same fields, audio
    level and send time; it never raises (it may keep a packet aiortc refuses for a
    malformed extension block)."""
    mine = parse_received(memoryview(data), AUDIO_LEVEL_ID, ABS_SEND_TIME_ID)
    try:
        theirs = RtpPacket.parse(data, _extensions_map())
    except (ValueError, struct.error):
        return
    assert mine is not None
    fields = ("marker", "payload_type", "sequence_number", "timestamp", "ssrc", "payload")
    assert [getattr(mine, f) for f in fields] == [getattr(theirs, f) for f in fields]
    assert mine.padding_size == theirs.padding_size
    assert mine.extensions.audio_level == theirs.extensions.audio_level
    assert mine.extensions.abs_send_time == theirs.extensions.abs_send_time


def test_the_fast_parse_reads_a_browsers_audio_level() -> None:
    """Chrome's audio: mid (id 4) and audio level (id 3, voice, -42 dBov) in one block."""
    block = bytes((0x40, ord("1"), 0x30, 0x80 | 42))
    header = bytes((0x90, 0x80 | 111)) + struct.pack("!HII", 7, 960, 0xABCD)
    data = header + struct.pack("!HH", 0xBEDE, 1) + block + b"opus"
    packet = parse_received(memoryview(data), AUDIO_LEVEL_ID)
    assert packet is not None
    assert (packet.marker, packet.payload_type, packet.sequence_number) == (1, 111, 7)
    assert (packet.timestamp, packet.ssrc, packet.payload) == (960, 0xABCD, b"opus")
    assert packet.extensions.audio_level == (True, 42)
    unwanted = parse_received(memoryview(data), 0)
    assert unwanted is not None
    assert unwanted.extensions.audio_level is None
    # An extension block longer than the packet, or padding past the payload: refused.
    assert parse_received(memoryview(data[:16]), AUDIO_LEVEL_ID) is None
    padded = bytes((data[0] | 0x20,)) + data[1:-1] + bytes((200,))
    assert parse_received(memoryview(padded), AUDIO_LEVEL_ID) is None
