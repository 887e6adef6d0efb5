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
    payload: bytes,
    extensions: bytes = b"",
) -> bytes:
    """An RTP packet; ``extensions`` is a ready one-byte-header block (see below)."""
    first = 0x90 if extensions else 0x80
    second = (0x80 if marker else 0) | payload_type
    header = RTP_HEADER.pack(first, second, sequence_number, timestamp, ssrc)
    return header + extensions + payload


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


class Vp8Pictures:
    """Rewrites VP8 PictureID and TL0PICIDX (RFC 7741 §4.2) of one outgoing stream.

    A slot's stream is made of several sources, one after the other, each numbering its
    pictures from its own random start. :meth:`switch` marks the next packet as the first
    (a keyframe) of a new source: from it on, that source's PictureID is offset to
    continue one after the last one sent, and its TL0PICIDX one after the last one sent
    (a keyframe is a base-layer picture). The first source keeps its numbers.

    PictureIDs are always written in the 15-bit form: a 7-bit one (which wraps at 128)
    is unwrapped against the source's previous one and written in two bytes, so such a
    packet grows by one byte. Everything else in the payload is copied as it is; a
    payload without these fields, or too short to hold what its flags announce, is
    returned unchanged. Retransmitted packets get the numbers they had the first time.
    """

    __slots__ = (
        "_last_in_pid",
        "_last_out_pid",
        "_last_out_tl0",
        "_new_pid",
        "_new_tl0",
        "_pid_offset",
        "_tl0_offset",
    )

    def __init__(self) -> None:
        self._pid_offset = 0
        self._tl0_offset = 0
        self._last_in_pid = 0
        self._last_out_pid = -1
        self._last_out_tl0 = -1
        self._new_pid = True
        self._new_tl0 = True

    def switch(self) -> None:
        """The next packet starts a new source."""
        self._new_pid = True
        self._new_tl0 = True

    def rewrite(self, payload: bytes) -> bytes:
        if len(payload) < 3 or not payload[0] & 0x80:  # no X: no extension fields
            return payload
        flags = payload[1]
        if not flags & 0xC0:  # neither I (PictureID) nor L (TL0PICIDX)
            return payload
        pos = 2
        picture = b""
        if flags & 0x80:
            high = payload[pos]
            if high & 0x80:
                if len(payload) < 4:
                    return payload
                value = ((high & 0x7F) << 8) | payload[3]
                pos = 4
            else:
                value = high
                pos = 3
                if not self._new_pid:  # unwrap 7 bits against the previous PictureID
                    delta = (value - self._last_in_pid) & 0x7F
                    value = (self._last_in_pid + delta - (128 if delta >= 64 else 0)) % (
                        PICTURE_ID_MOD
                    )
            if self._new_pid:
                self._new_pid = False
                self._last_in_pid = value
                if self._last_out_pid >= 0:
                    self._pid_offset = (self._last_out_pid + 1 - value) % PICTURE_ID_MOD
            elif (value - self._last_in_pid) % PICTURE_ID_MOD < PICTURE_ID_MOD // 2:
                self._last_in_pid = value
            out = (value + self._pid_offset) % PICTURE_ID_MOD
            if (
                self._last_out_pid < 0
                or (out - self._last_out_pid) % PICTURE_ID_MOD < PICTURE_ID_MOD // 2
            ):
                self._last_out_pid = out
            if pos == 4 and not self._pid_offset and not flags & 0x40:
                return payload  # the first source's 15-bit numbers, nothing else to change
            picture = bytes((0x80 | (out >> 8), out & 0xFF))
        tl0 = b""
        if flags & 0x40:
            if len(payload) <= pos:
                return payload
            value = payload[pos]
            pos += 1
            if self._new_tl0:
                self._new_tl0 = False
                if self._last_out_tl0 >= 0:
                    self._tl0_offset = (self._last_out_tl0 + 1 - value) % TL0PICIDX_MOD
            out = (value + self._tl0_offset) % TL0PICIDX_MOD
            if (
                self._last_out_tl0 < 0
                or (out - self._last_out_tl0) % TL0PICIDX_MOD < TL0PICIDX_MOD // 2
            ):
                self._last_out_tl0 = out
            tl0 = bytes((out,))
        return b"".join((payload[:2], picture, tl0, memoryview(payload)[pos:]))
