"""RTP wire helpers against aiortc's own parser and packetizer (real bytes)."""

import fractions

import av
import pytest
from aiortc.codecs.vpx import Vp8Encoder, VpxPayloadDescriptor
from aiortc.rtcrtpparameters import RTCRtpHeaderExtensionParameters, RTCRtpParameters
from aiortc.rtp import HeaderExtensionsMap, RtpPacket

from sfu.rtp import (
    Vp8Pictures,
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


# -- VP8 picture numbering across a switch of source ---------------------------------

BODY = b"\x50\x42\x00\x9d\x01\x2a" + bytes(range(40))  # a keyframe's start, kept as is


def vp8(
    picture_id: int | None,
    tl0: int | None = None,
    tid: tuple[int, int] | None = None,
    keyidx: int | None = None,
    start: bool = True,
) -> bytes:
    """A VP8 payload whose descriptor aiortc writes (PictureID in 15 bits)."""
    descriptor = VpxPayloadDescriptor(
        partition_start=int(start),
        partition_id=0,
        picture_id=picture_id,
        tl0picidx=tl0,
        tid=tid,
        keyidx=keyidx,
    )
    return bytes(descriptor) + BODY


def vp8_short(picture_id: int) -> bytes:
    """A VP8 payload with a 7-bit PictureID (M bit clear), as aiortc cannot write it."""
    assert picture_id < 128
    return bytes((0x90, 0x80, picture_id)) + BODY


def parsed(payload: bytes) -> tuple[VpxPayloadDescriptor, bytes]:
    descriptor, rest = VpxPayloadDescriptor.parse(payload)
    return descriptor, rest


def ids(pictures: Vp8Pictures, payloads: list[bytes]) -> list[int | None]:
    out = []
    for payload in payloads:
        descriptor, rest = parsed(pictures.rewrite(payload))
        assert rest == BODY
        out.append(descriptor.picture_id)
    return out


def test_vp8_first_source_keeps_its_numbers_and_bytes() -> None:
    pictures = Vp8Pictures()
    packet = vp8(1234)
    assert pictures.rewrite(packet) is packet  # nothing to change: no copy
    assert ids(pictures, [vp8(1234), vp8(1235), vp8(1235, start=False)]) == [1234, 1235, 1235]
    # Payloads without the fields, or cut short, pass unchanged.
    for payload in (b"", b"\x10", b"\x10\x00\x9d", b"\x90\x00\x00", b"\x90\x80", b"\x90\x80\x81"):
        assert pictures.rewrite(payload) == payload


def test_vp8_picture_id_continues_across_switches_in_15_bits() -> None:
    pictures = Vp8Pictures()
    assert ids(pictures, [vp8(100), vp8(101), vp8(101, start=False)]) == [100, 101, 101]
    pictures.switch()
    # The new source starts far away; its pictures continue from 102, frame by frame.
    assert ids(pictures, [vp8(30000), vp8(30000, start=False), vp8(30001)]) == [102, 102, 103]
    pictures.switch()
    assert ids(pictures, [vp8(7), vp8(8)]) == [104, 105]
    # A retransmission gets the number it had.
    assert ids(pictures, [vp8(7, start=False)]) == [104]
    assert is_vp8_keyframe_start(pictures.rewrite(vp8(9)))


def test_vp8_picture_id_wraps_at_15_bits() -> None:
    pictures = Vp8Pictures()
    assert ids(pictures, [vp8(32766), vp8(32767), vp8(0), vp8(1)]) == [32766, 32767, 0, 1]
    pictures.switch()
    assert ids(pictures, [vp8(32767), vp8(0)]) == [2, 3]
    pictures = Vp8Pictures()
    assert ids(pictures, [vp8(32766)]) == [32766]
    pictures.switch()
    assert ids(pictures, [vp8(5), vp8(6), vp8(7)]) == [32767, 0, 1]


def test_vp8_seven_bit_picture_ids_are_unwrapped_and_written_in_15_bits() -> None:
    pictures = Vp8Pictures()
    out = pictures.rewrite(vp8_short(126))
    assert len(out) == len(vp8_short(126)) + 1
    assert out[2] & 0x80  # the M bit: two bytes now
    # 126, 127, then the 7-bit counter wraps to 0, 1: one 15-bit sequence.
    assert ids(pictures, [vp8_short(127), vp8_short(0), vp8_short(1)]) == [127, 128, 129]
    assert ids(pictures, [vp8_short(0)]) == [128]  # a late packet of an earlier picture
    pictures.switch()
    assert ids(pictures, [vp8(20000), vp8(20001)]) == [130, 131]
    pictures.switch()
    assert ids(pictures, [vp8_short(90), vp8_short(91)]) == [132, 133]


def test_vp8_tl0picidx_continues_and_the_rest_is_kept() -> None:
    pictures = Vp8Pictures()
    first = [vp8(10, tl0=254, tid=(0, 1), keyidx=3), vp8(11, tl0=254, tid=(1, 0)), vp8(12, tl0=255)]
    out = [parsed(pictures.rewrite(p))[0] for p in first]
    assert [(d.picture_id, d.tl0picidx) for d in out] == [(10, 254), (11, 254), (12, 255)]
    assert (out[0].tid, out[0].keyidx, out[1].tid) == ((0, 1), 3, (1, 0))
    pictures.switch()
    second = [vp8(500, tl0=40, tid=(0, 1)), vp8(501, tl0=40, tid=(1, 0)), vp8(502, tl0=41)]
    out = [parsed(pictures.rewrite(p))[0] for p in second]
    # TL0PICIDX goes on from 255 with a wrap to 0 (the keyframe is a base-layer picture).
    assert [(d.picture_id, d.tl0picidx) for d in out] == [(13, 0), (14, 0), (15, 1)]
    assert [d.tid for d in out] == [(0, 1), (1, 0), None]
    # TL0PICIDX alone (no PictureID) is rewritten too.
    pictures.switch()
    alone = bytes((0x90, 0x40, 7)) + BODY
    assert pictures.rewrite(alone) == bytes((0x90, 0x40, 2)) + BODY
