"""Just enough H.264 (Annex B) to cut HLS segments and switch speakers without decoding.

aiortc's H.264 depacketizer yields each access unit as Annex B: NAL units preceded by
``00 00 00 01`` start codes. A segment or a speaker switch may start only at an IDR
access unit that carries its own SPS and PPS, so the viewer's decoder can start there.
"""

from collections.abc import Iterator
from typing import Final

NAL_IDR: Final = 5
NAL_SEI: Final = 6
NAL_SPS: Final = 7
NAL_PPS: Final = 8
NAL_AUD: Final = 9


def nal_units(access_unit: bytes) -> Iterator[bytes]:
    """The NAL units of an Annex B access unit (3- or 4-byte start codes), without them."""
    n = len(access_unit)
    i = access_unit.find(b"\x00\x00\x01")
    while 0 <= i < n:
        start = i + 3
        nxt = access_unit.find(b"\x00\x00\x01", start)
        end = n if nxt < 0 else nxt
        # A 4-byte start code leaves its leading zero at the end of the previous unit.
        unit = access_unit[start:end]
        if nxt >= 0 and unit.endswith(b"\x00"):
            unit = unit[:-1]
        if unit:
            yield unit
        i = nxt


def nal_types(access_unit: bytes) -> list[int]:
    return [unit[0] & 0x1F for unit in nal_units(access_unit)]


def is_keyframe(access_unit: bytes) -> bool:
    """An IDR picture: a decoder can start here (with the SPS/PPS it carries or follows)."""
    return NAL_IDR in nal_types(access_unit)


def is_self_contained_keyframe(access_unit: bytes) -> bool:
    """An IDR carrying SPS and PPS: a segment or a switch to another speaker may start here."""
    types = set(nal_types(access_unit))
    return {NAL_IDR, NAL_SPS, NAL_PPS} <= types


def with_parameter_sets(access_unit: bytes, sps: bytes | None, pps: bytes | None) -> bytes:
    """Prefix an IDR that lacks SPS/PPS with the last ones the speaker sent."""
    types = set(nal_types(access_unit))
    prefix = b""
    if NAL_SPS not in types and sps:
        prefix += b"\x00\x00\x00\x01" + sps
    if NAL_PPS not in types and pps:
        prefix += b"\x00\x00\x00\x01" + pps
    return prefix + access_unit


class ParameterSets:
    """Remembers a speaker's latest SPS and PPS (some encoders send them only once)."""

    def __init__(self) -> None:
        self.sps: bytes | None = None
        self.pps: bytes | None = None

    def complete(self, access_unit: bytes) -> tuple[bytes, bool]:
        """``(access unit, is keyframe)``, an IDR given the SPS/PPS it lacks when known."""
        keyframe = False
        for unit in nal_units(access_unit):
            kind = unit[0] & 0x1F
            if kind == NAL_SPS:
                self.sps = unit
            elif kind == NAL_PPS:
                self.pps = unit
            elif kind == NAL_IDR:
                keyframe = True
        if keyframe:
            access_unit = with_parameter_sets(access_unit, self.sps, self.pps)
            keyframe = self.sps is not None and self.pps is not None
        return access_unit, keyframe
