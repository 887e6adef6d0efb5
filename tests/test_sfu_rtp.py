"""RTP wire helpers against aiortc's own parser and packetizer (real bytes)."""

import fractions

import av
import pytest
from aiortc.codecs.vpx import Vp8Encoder
from aiortc.rtcrtpparameters import RTCRtpHeaderExtensionParameters, RTCRtpParameters
from aiortc.rtp import HeaderExtensionsMap, RtpPacket

from sfu.rtp import (
    encode_rtp,
    is_h264_keyframe_start,
    is_keyframe_start,
    is_vp8_keyframe_start,
    one_byte_extensions,
    seq_newer,
    unwrap_rtx,
)
from sfu.synthetic import encode_vp8_clip, read_stamp, stamp

MID = "urn:ietf:params:rtp-hdrext:sdes:mid"
LEVEL = "urn:ietf:params:rtp-hdrext:ssrc-audio-level"


def extensions_map(mid_id: int, level_id: int) -> HeaderExtensionsMap:
    ext = HeaderExtensionsMap()
    ext.configure(
        RTCRtpParameters(
            headerExtensions=[
                RTCRtpHeaderExtensionParameters(id=mid_id, uri=MID),
                RTCRtpHeaderExtensionParameters(id=level_id, uri=LEVEL),
            ]
        )
    )
    return ext


def test_encode_rtp_round_trips_through_aiortc() -> None:
    block = one_byte_extensions([(3, b"7"), (5, bytes((42,)))])
    data = encode_rtp(111, 65535, 0xFFFFFFFF, 0x1234ABCD, True, b"opus-bytes", block)
    packet = RtpPacket.parse(data, extensions_map(3, 5))
    assert (packet.payload_type, packet.sequence_number, packet.timestamp, packet.ssrc) == (
        111,
        65535,
        0xFFFFFFFF,
        0x1234ABCD,
    )
    assert packet.marker == 1
    assert packet.payload == b"opus-bytes"
    assert packet.extensions.mid == "7"
    assert packet.extensions.audio_level == (False, 42)
    # And our bytes equal aiortc's serialization of the same packet.
    assert packet.serialize(extensions_map(3, 5)) == data


def test_encode_rtp_without_extensions() -> None:
    data = encode_rtp(96, 1, 2, 3, False, b"x")
    assert data[0] == 0x80
    packet = RtpPacket.parse(data)
    assert (packet.payload_type, packet.sequence_number, packet.marker) == (96, 1, 0)


def test_one_byte_extensions_refuses_what_does_not_fit() -> None:
    with pytest.raises(ValueError, match="one-byte"):
        one_byte_extensions([(15, b"x")])
    with pytest.raises(ValueError, match="one-byte"):
        one_byte_extensions([(1, b"x" * 17)])
    assert one_byte_extensions([]) == b""


def test_vp8_keyframe_start_on_aiortc_packetized_frames() -> None:
    frames = encode_vp8_clip(frames=3, width=640, height=480, noise=True)
    encoder = Vp8Encoder()
    for index, frame in enumerate(frames):
        packet = av.Packet(frame)
        packet.pts = index
        packet.time_base = fractions.Fraction(1, 30)
        payloads, _ = encoder.pack(packet)
        if index == 0:
            assert len(payloads) > 1, "the keyframe should need several packets"
        starts = [is_vp8_keyframe_start(p) for p in payloads]
        assert starts == [index == 0] + [False] * (len(payloads) - 1)
        assert is_keyframe_start("video/VP8", payloads[0]) is (index == 0)


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        (bytes([0x65, 0x88]), True),  # IDR slice
        (bytes([0x67, 0x42]), True),  # SPS
        (bytes([0x41, 0x9A]), False),  # non-IDR slice
        (bytes([0x78, 0x00, 0x02, 0x67, 0x42, 0x00, 0x02, 0x68, 0xCE]), True),  # STAP-A SPS+PPS
        (bytes([0x78, 0x00, 0x02, 0x68, 0xCE]), False),  # STAP-A PPS only
        (bytes([0x7C, 0x85, 0x00]), True),  # FU-A start of IDR
        (bytes([0x7C, 0x05, 0x00]), False),  # FU-A continuation of IDR
        (bytes([0x7C, 0x81, 0x00]), False),  # FU-A start of a non-IDR slice
        (b"", False),
    ],
)
def test_h264_keyframe_start(payload: bytes, expected: bool) -> None:
    assert is_h264_keyframe_start(payload) is expected
    assert is_keyframe_start("video/H264", payload) is expected


def test_rtx_unwrap_and_sequence_order() -> None:
    assert unwrap_rtx(b"\x12\x34payload") == (0x1234, b"payload")
    assert unwrap_rtx(b"\x00\x01") is None  # padding probe
    assert seq_newer(1, 65535)
    assert not seq_newer(65535, 1)
    assert not seq_newer(5, 5)


def test_stamp_round_trip() -> None:
    assert read_stamp(stamp(b"frame", 12.5)) == 12.5
    assert read_stamp(b"frame without a stamp") is None
