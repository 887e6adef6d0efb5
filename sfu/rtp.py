"""RTP wire helpers for forwarding: header writing, keyframe detection, RTX unwrapping,
VP8 picture numbering.

The forwarder never decodes media. It only looks at the codec's payload descriptor to
tell where a keyframe starts (VP8: RFC 7741; H.264: RFC 6184) so a subscriber switching
to another source starts on a decodable picture, and rewrites VP8's PictureID and
TL0PICIDX so that the pictures of several sources number as one stream.
"""

import struct
from typing import Final

RTP_HEADER: Final = struct.Struct("!BBHII")
ONE_BYTE_PROFILE: Final = 0xBEDE
SEQ_MOD: Final = 1 << 16
TS_MOD: Final = 1 << 32
PICTURE_ID_MOD: Final = 1 << 15
TL0PICIDX_MOD: Final = 1 << 8

_H264_KEY_NALS: Final = frozenset((5, 7))  # IDR slice, SPS


def encode_rtp(
    payload_type: int,
    sequence_number: int,
    timestamp: int,
    ssrc: int,
    marker: bool,
    payload: bytes | bytearray,
    extensions: bytes = b"",
) -> bytes:
    """An RTP packet; ``extensions`` is a ready one-byte-header block (see below)."""
    first = 0x90 if extensions else 0x80
    second = (0x80 if marker else 0) | payload_type
    header = RTP_HEADER.pack(first, second, sequence_number, timestamp, ssrc)
    return b"".join((header, extensions, payload))


def one_byte_extensions(elements: list[tuple[int, bytes]]) -> bytes:
    """An RFC 8285 one-byte-header extension block (ids 1..14, values 1..16 bytes)."""
    if not elements:
        return b""
    body = bytearray()
    for ext_id, value in elements:
        if not 1 <= ext_id <= 14 or not 1 <= len(value) <= 16:
            raise ValueError(f"extension {ext_id} with {len(value)} bytes cannot be one-byte")
        body.append((ext_id << 4) | (len(value) - 1))
        body += value
    body += b"\x00" * (-len(body) % 4)
    return struct.pack("!HH", ONE_BYTE_PROFILE, len(body) // 4) + bytes(body)


def is_vp8_keyframe_start(payload: bytes) -> bool:
    """The packet starts a VP8 keyframe (first packet of partition 0, P bit clear)."""
    if not payload:
        return False
    first = payload[0]
    if not first & 0x10 or first & 0x07:  # S bit, partition index 0
        return False
    offset = 1
    if first & 0x80:  # X: extension byte follows
        if len(payload) < 2:
            return False
        ext = payload[1]
        offset = 2
        if ext & 0x80:  # I: picture id, 7 or 15 bits
            if len(payload) <= offset:
                return False
            offset += 2 if payload[offset] & 0x80 else 1
        if ext & 0x40:  # L: TL0PICIDX
            offset += 1
        if ext & 0x30:  # T or K: TID/Y/KEYIDX
            offset += 1
    return len(payload) > offset and not payload[offset] & 0x01


def is_h264_keyframe_start(payload: bytes) -> bool:
    """The packet carries an SPS or the start of an IDR slice."""
    if not payload:
        return False
    nal_type = payload[0] & 0x1F
    if nal_type in _H264_KEY_NALS:
        return True
    if nal_type == 24:  # STAP-A: 16-bit size, NAL unit, ...
        offset = 1
        while offset + 2 < len(payload):
            size = (payload[offset] << 8) | payload[offset + 1]
            if payload[offset + 2] & 0x1F in _H264_KEY_NALS:
                return True
            offset += 2 + size
        return False
    if nal_type == 28:  # FU-A: start bit and the fragmented NAL's type
        return len(payload) > 1 and bool(payload[1] & 0x80) and payload[1] & 0x1F in _H264_KEY_NALS
    return False


def is_keyframe_start(mime_type: str, payload: bytes) -> bool:
    mime = mime_type.lower()
    if mime == "video/vp8":
        return is_vp8_keyframe_start(payload)
    if mime == "video/h264":
        return is_h264_keyframe_start(payload)
    return False


def unwrap_rtx(payload: bytes) -> tuple[int, bytes] | None:
    """An RTX payload (RFC 4588) → (original sequence number, original payload).

    ``None`` for padding-only probes, which carry no original packet."""
    if len(payload) <= 2:
        return None
    return (payload[0] << 8) | payload[1], payload[2:]


def seq_newer(a: int, b: int) -> bool:
    """Sequence number ``a`` comes after ``b`` (modulo 2^16)."""
    return a != b and ((a - b) % SEQ_MOD) < 0x8000


def rtp_payload(packet: bytes) -> bytes:
    """The payload of an RTP packet (after CSRCs and the header extension block)."""
    offset = 12 + 4 * (packet[0] & 0x0F)
    if packet[0] & 0x10 and len(packet) >= offset + 4:
        offset += 4 + 4 * ((packet[offset + 2] << 8) | packet[offset + 3])
    return packet[offset:]


def vp8_picture_numbers(payload: bytes) -> tuple[int | None, int | None]:
    """(PictureID, TL0PICIDX) of a VP8 payload descriptor, each None when absent."""
    if len(payload) < 3 or not payload[0] & 0x80:
        return None, None
    flags = payload[1]
    pos = 2
    picture_id = None
    if flags & 0x80:
        if payload[2] & 0x80:
            if len(payload) < 4:
                return None, None
            picture_id = ((payload[2] & 0x7F) << 8) | payload[3]
            pos = 4
        else:
            picture_id = payload[2]
            pos = 3
    tl0picidx = None
    if flags & 0x40:
        if len(payload) <= pos:
            return None, None
        tl0picidx = payload[pos]
    return picture_id, tl0picidx


class Vp8Pictures:
    """Renumbers VP8 PictureID and TL0PICIDX (RFC 7741 §4.2) of a source that follows
    another one in the same outgoing stream, so the numbers go on without a jump.

    Every source numbers its pictures from its own random start. A slot that switches
    to a new source (on a keyframe) makes one of these with :meth:`continuing` from the
    last packet it sent: the new source's first PictureID becomes one more than the last
    one sent, its first TL0PICIDX one more than the last one sent (a keyframe is a
    base-layer picture), and every later packet of the source gets the same offsets. A
    slot's first source needs none and is forwarded untouched.

    A 7-bit PictureID (it wraps at 128) is unwrapped against the source's newest one and
    written in the 15-bit form, so such a packet grows by one byte. Nothing else in the
    payload changes; a payload too short for what its flags announce is returned as it
    is. A retransmitted packet gets the numbers it had the first time.
    """

    __slots__ = ("_pid_last", "_pid_newest", "_pid_offset", "_tl0_last", "_tl0_offset")

    def __init__(self, last_picture_id: int | None, last_tl0picidx: int | None) -> None:
        # The numbers last sent (None: do not touch that field), then, once the new
        # source's first number is seen, the offset its numbers get (-1 until then).
        self._pid_last = last_picture_id
        self._pid_offset = -1
        self._pid_newest = 0  # the source's newest PictureID, for unwrapping 7-bit ones
        self._tl0_last = last_tl0picidx
        self._tl0_offset = -1

    @classmethod
    def continuing(cls, previous: bytes) -> "Vp8Pictures | None":
        """Numbers that go on from ``previous`` (the last payload sent), if it had any."""
        picture_id, tl0picidx = vp8_picture_numbers(previous)
        if picture_id is None and tl0picidx is None:
            return None
        return cls(picture_id, tl0picidx)

    def rewrite(self, payload: bytes) -> bytes | bytearray:
        if len(payload) < 4 or not payload[0] & 0x80:  # no X: no extension fields
            return payload
        flags = payload[1]
        pos = 2
        pid_out = -1
        if flags & 0x80 and self._pid_last is not None:  # I: PictureID
            high = payload[2]
            if high & 0x80:
                value = ((high & 0x7F) << 8) | payload[3]
                pos = 4
            else:
                value = high
                pos = 3
            offset = self._pid_offset
            if offset < 0:
                offset = self._pid_offset = (self._pid_last + 1 - value) & 0x7FFF
            elif pos == 3:
                delta = (value - self._pid_newest) & 0x7F
                value = (self._pid_newest + delta - (128 if delta >= 64 else 0)) & 0x7FFF
            self._pid_newest = value
            pid_out = (value + offset) & 0x7FFF
            if pos == 4 and not flags & 0x40:  # what browsers send: 15 bits, no TL0PICIDX
                data = bytearray(payload)
                data[2] = 0x80 | pid_out >> 8
                data[3] = pid_out & 0xFF
                return data
        elif flags & 0x80:
            pos = 4 if payload[2] & 0x80 else 3
        tl0_out = -1
        if flags & 0x40 and self._tl0_last is not None:  # L: TL0PICIDX
            if len(payload) <= pos:
                return payload
            value = payload[pos]
            offset = self._tl0_offset
            if offset < 0:
                offset = self._tl0_offset = (self._tl0_last + 1 - value) & 0xFF
            tl0_out = (value + offset) & 0xFF
        if pid_out < 0 and tl0_out < 0:
            return payload
        if pid_out >= 0 and pos == 3:  # a 7-bit PictureID: the 15-bit form in its place
            data = bytearray(payload[:2])
            data += bytes((0x80 | pid_out >> 8, pid_out & 0xFF))
            rest = 3
            if tl0_out >= 0:
                data.append(tl0_out)
                rest = 4
            data += memoryview(payload)[rest:]
            return data
        data = bytearray(payload)
        if pid_out >= 0:
            data[2] = 0x80 | pid_out >> 8
            data[3] = pid_out & 0xFF
        if tl0_out >= 0:
            data[pos] = tl0_out
        return data
