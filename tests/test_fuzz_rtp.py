"""Property tests: the SFU's packet parsers on arbitrary bytes.

The SFU reads media from the network (sfu/aiortc_hooks.py's fast path parses RTP with
aiortc's ``RtpPacket.parse`` and catches ``ValueError``; RTCP goes aiortc's way, whose
``RtcpPacket.parse`` has the same contract) and then looks into payloads with sfu/rtp.py.
Whatever bytes arrive, the parsers raise nothing but their documented ``ValueError``
and the payload helpers raise nothing at all.
"""

import pytest
from aiortc.rtp import HeaderExtensionsMap, RtcpPacket, RtpPacket
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

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
