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
    rtp_payload,
    seq_newer,
    unwrap_rtx,
    vp8_picture_numbers,
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


def vp8_short(picture_id: int, tl0: int | None = None) -> bytes:
    """A VP8 payload with a 7-bit PictureID (M bit clear), which aiortc does not write."""
    assert picture_id < 128
    if tl0 is None:
        return bytes((0x90, 0x80, picture_id)) + BODY
    return bytes((0x90, 0xC0, picture_id, tl0)) + BODY


def parsed(payload: bytes | bytearray) -> tuple[VpxPayloadDescriptor, bytes]:
    descriptor, rest = VpxPayloadDescriptor.parse(bytes(payload))
    return descriptor, rest


def after(previous: bytes) -> Vp8Pictures:
    pictures = Vp8Pictures.continuing(previous)
    assert pictures is not None
    return pictures


def ids(pictures: Vp8Pictures, payloads: list[bytes]) -> list[int | None]:
    out = []
    for payload in payloads:
        descriptor, rest = parsed(pictures.rewrite(payload))
        assert rest == BODY
        out.append(descriptor.picture_id)
    return out


def test_vp8_picture_numbers_are_read_from_the_descriptor() -> None:
    assert vp8_picture_numbers(vp8(1234)) == (1234, None)
    assert vp8_picture_numbers(vp8(5, tl0=200, tid=(1, 0))) == (5, 200)
    assert vp8_picture_numbers(vp8_short(77, tl0=3)) == (77, 3)
    assert vp8_picture_numbers(bytes((0x90, 0x40, 9)) + BODY) == (None, 9)
    for payload in (b"", b"\x10\x00\x9d", b"\x90\x00\x00", b"\x90\x80\x81", b"\x90\xc0\x01"):
        assert vp8_picture_numbers(payload) == (None, None)
    # The slot reads them from the last packet it sent: the payload after the header.
    for extensions in (b"", one_byte_extensions([(3, b"7"), (5, b"\x2a")])):
        packet = encode_rtp(96, 1, 2, 3, True, vp8(42), extensions)
        assert rtp_payload(packet) == vp8(42)


def test_vp8_nothing_to_continue_from_means_no_renumbering() -> None:
    assert Vp8Pictures.continuing(b"\x10\x00\x9d\x01\x2a") is None  # no X bit
    assert Vp8Pictures.continuing(bytes((0x90, 0x20, 0x40)) + BODY) is None  # only TID
    # Payloads without the fields, or cut short, pass unchanged.
    pictures = after(vp8(10, tl0=1))
    for payload in (b"", b"\x10\x00\x9d\x01", b"\x90\x00\x00\x00", b"\x90\x40\x81"[:3]):
        assert pictures.rewrite(payload) == payload


def test_vp8_picture_id_continues_after_the_last_one_sent() -> None:
    pictures = after(vp8(101))
    # The new source starts far away; its pictures continue from 102, frame by frame.
    assert ids(pictures, [vp8(30000), vp8(30000, start=False), vp8(30001)]) == [102, 102, 103]
    # A retransmission gets the number it had; the keyframe still reads as one.
    assert ids(pictures, [vp8(30000, start=False)]) == [102]
    assert is_vp8_keyframe_start(bytes(pictures.rewrite(vp8(30002))))
    # The next switch continues from what was sent (103, 104 were the last).
    assert ids(after(bytes(pictures.rewrite(vp8(30002)))), [vp8(7), vp8(8)]) == [105, 106]


def test_vp8_picture_id_wraps_at_15_bits() -> None:
    assert ids(after(vp8(32767)), [vp8(5), vp8(6)]) == [0, 1]
    assert ids(after(vp8(32766)), [vp8(5), vp8(6), vp8(7)]) == [32767, 0, 1]
    # The new source's own wrap carries through.
    assert ids(after(vp8(100)), [vp8(32766), vp8(32767), vp8(0), vp8(1)]) == [101, 102, 103, 104]


def test_vp8_seven_bit_picture_ids_are_unwrapped_and_written_in_15_bits() -> None:
    pictures = after(vp8(126))
    out = pictures.rewrite(vp8_short(120))
    assert len(out) == len(vp8_short(120)) + 1
    assert out[2] & 0x80  # the M bit: two bytes now
    assert parsed(out)[0].picture_id == 127
    # 120, 121, 127, then the 7-bit counter wraps to 0, 1: one 15-bit sequence.
    assert ids(pictures, [vp8_short(121), vp8_short(127), vp8_short(0), vp8_short(1)]) == [
        128,
        134,
        135,
        136,
    ]
    # A 7-bit number last sent is continued in 15 bits.
    assert ids(after(vp8_short(90)), [vp8(20000), vp8(20001)]) == [91, 92]


def test_vp8_tl0picidx_continues_and_the_rest_is_kept() -> None:
    pictures = after(vp8(12, tl0=255, tid=(0, 1)))
    second = [
        vp8(500, tl0=40, tid=(0, 1), keyidx=3),
        vp8(501, tl0=40, tid=(1, 0)),
        vp8(502, tl0=41),
    ]
    out = [parsed(pictures.rewrite(p))[0] for p in second]
    # TL0PICIDX goes on from 255 with a wrap to 0 (the keyframe is a base-layer picture).
    assert [(d.picture_id, d.tl0picidx) for d in out] == [(13, 0), (14, 0), (15, 1)]
    assert [d.tid for d in out] == [(0, 1), (1, 0), None]
    assert out[0].keyidx == 3
    # A 7-bit PictureID with TL0PICIDX: both renumbered, the PictureID in two bytes.
    descriptor, rest = parsed(after(vp8(15, tl0=1)).rewrite(vp8_short(5, tl0=9)))
    assert (descriptor.picture_id, descriptor.tl0picidx, rest) == (16, 2, BODY)
    # TL0PICIDX alone (no PictureID) is renumbered too; a PictureID nobody sent before
    # is left as it is.
    alone = bytes((0x90, 0x40, 7)) + BODY
    assert after(alone).rewrite(bytes((0x90, 0x40, 90)) + BODY) == bytes((0x90, 0x40, 8)) + BODY
    assert parsed(after(alone).rewrite(vp8(300, tl0=90)))[0].picture_id == 300
    # TL0PICIDX the previous source did not send is left alone.
    assert parsed(after(vp8(1)).rewrite(vp8(300, tl0=90)))[0].tl0picidx == 90
