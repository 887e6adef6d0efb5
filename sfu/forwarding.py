"""Selective forwarding at packet level: published streams in, subscriber slots out.

A :class:`PublishedStream` is one source (camera, microphone, screen) of one participant
as its RTP arrives after SRTP. A :class:`Slot` is one receive transceiver of one
subscriber; it carries at most one published stream at a time and rewrites what it
forwards into its own continuous RTP stream: its SSRC, the payload type and header
extension ids the subscriber negotiated, and sequence numbers and timestamps offset so
that a change of source looks like one stream to the subscriber (for VP8 also the
PictureID and TL0PICIDX in the payload descriptor, ``sfu.rtp.Vp8Pictures``). Video
switches wait for a keyframe of the new source, which the slot requests. Nothing is
decoded.

The slot keeps the last packets it sent, to answer the subscriber's NACKs, and writes
sender reports. Keyframe requests (PLI) go to the publisher's media SSRC, never its RTX
SSRC, and at most once per ``keyframe_interval`` per stream.
"""

import logging
import random
import time
from collections.abc import Callable
from typing import Final, Protocol

import attrs
from aiortc.clock import current_ntp_time
from aiortc.rtcrtpparameters import (
    RTCRtpCodecParameters,
    RTCRtpReceiveParameters,
    RTCRtpSendParameters,
)
from aiortc.rtp import (
    RTCP_PSFB_APP,
    RTCP_PSFB_FIR,
    RTCP_PSFB_PLI,
    RTCP_RTPFB_NACK,
    AnyRtcpPacket,
    RtcpPsfbPacket,
    RtcpRtpfbPacket,
    RtcpSenderInfo,
    RtcpSrPacket,
    RtpPacket,
    pack_remb_fci,
)

from sfu.metrics import ForwardingStats
from sfu.rtp import (
    SEQ_MOD,
    TS_MOD,
    Vp8Pictures,
    encode_rtp,
    is_h264_keyframe_start,
    is_vp8_keyframe_start,
    one_byte_extensions,
    rtp_payload,
    unwrap_rtx,
)

logger = logging.getLogger(__name__)

HISTORY_SIZE: Final = 512
URI_MID: Final = "urn:ietf:params:rtp-hdrext:sdes:mid"
URI_AUDIO_LEVEL: Final = "urn:ietf:params:rtp-hdrext:ssrc-audio-level"
# Audio loudness: exponential average of (127 - level in -dBov), per packet (50/s).
LOUDNESS_ALPHA: Final = 0.1
SPEAKING_LOUDNESS: Final = 70.0
# Seconds a source switch advances the RTP clock at least: a video frame, an audio packet.
MIN_SWITCH_GAP: Final = {"video": 1 / 30, "audio": 0.02}

Clock = Callable[[], float]
# What tells a keyframe's first packet, by (lower-case) codec: sfu.rtp.is_keyframe_start.
_KEYFRAME_START: Final[dict[str, Callable[[bytes], bool]]] = {
    "video/vp8": is_vp8_keyframe_start,
    "video/h264": is_h264_keyframe_start,
}


class Consumer(Protocol):
    """What a published stream fans out to: a :class:`Slot`, or a feed to a worker."""

    def forward(
        self,
        stream: "PublishedStream",
        codec: "Codec",
        seq: int,
        timestamp: int,
        marker: bool,
        payload: bytes,
        audio_level: int | None,
        keyframe: bool,
    ) -> None: ...

    def assign(self, stream: "PublishedStream | None") -> None: ...


class PacketWriter(Protocol):
    """Sends ready RTP / RTCP bytes to one peer (``sfu.aiortc_hooks.RtpWriter``)."""

    def send_rtp(self, data: bytes) -> bool: ...

    def send_rtcp(self, data: bytes) -> bool: ...


@attrs.frozen
class Codec:
    payload_type: int
    mime_type: str
    clock_rate: int
    # Parameters that must match between publisher and subscriber (H.264 profile, mode).
    key: tuple[str, ...]

    @classmethod
    def from_parameters(cls, codec: RTCRtpCodecParameters) -> "Codec":
        mime = codec.mimeType.lower()
        key: tuple[str, ...] = (mime,)
        if mime == "video/h264":
            key = (mime, str(codec.parameters.get("packetization-mode", "0")))
        return cls(codec.payloadType or 0, mime, codec.clockRate, key)


def _is_rtx(codec: RTCRtpCodecParameters) -> bool:
    return bool(codec.mimeType.lower().endswith("/rtx"))


class PublishedStream:
    """One source of one participant: the RTP it sends, fanned out to slots."""

    def __init__(
        self,
        kind: str,
        parameters: RTCRtpReceiveParameters,
        writer: PacketWriter,
        rtcp_ssrc: int,
        stats: ForwardingStats,
        keyframe_interval: float,
        clock: Clock = time.monotonic,
    ) -> None:
        self.kind = kind
        self.codecs: dict[int, Codec] = {}
        self.rtx_payload_types: dict[int, int] = {}
        for codec in parameters.codecs:
            if codec.payloadType is None:
                continue
            if _is_rtx(codec):
                apt = codec.parameters.get("apt")
                if apt is not None:
                    self.rtx_payload_types[codec.payloadType] = int(apt)
            else:
                self.codecs[codec.payloadType] = Codec.from_parameters(codec)
        self.ssrc: int | None = None
        for encoding in parameters.encodings:
            self.ssrc = encoding.ssrc
            break
        self.consumers: list[Consumer] = []
        self.blocked = False
        self.loudness = 0.0
        self.last_spoke = 0.0
        self.packets_in = 0
        self._writer = writer
        self._rtcp_ssrc = rtcp_ssrc
        self._stats = stats
        self._keyframe_interval = keyframe_interval
        self._clock = clock
        self._last_keyframe_request = -1e9
        self._keyframe_wanted = False
        self._wanted_reason = "subscriber"
        self.closed = False
        # Set once forwarding raised; logged once, forwarding goes on.
        self.failed = False

    def on_rtp(self, packet: RtpPacket) -> None:
        codec = self.codecs.get(packet.payload_type)
        if codec is not None:
            payload = packet.payload
            seq = packet.sequence_number
            if not payload:
                return
            self.ssrc = packet.ssrc
        else:
            apt = self.rtx_payload_types.get(packet.payload_type)
            original = unwrap_rtx(packet.payload) if apt is not None else None
            if apt is None or original is None or apt not in self.codecs:
                return
            seq, payload = original
            codec = self.codecs[apt]
        self.packets_in += 1
        audio_level: int | None = None
        if self.kind == "audio":
            if self.blocked:
                self._stats.packets_dropped_blocked += 1
                return
            level = packet.extensions.audio_level
            if level is not None:
                audio_level = level[1]
                self.loudness += LOUDNESS_ALPHA * ((127 - audio_level) - self.loudness)
                if self.loudness >= SPEAKING_LOUDNESS:
                    self.last_spoke = self._clock()
            keyframe = False
        else:
            starts_keyframe = _KEYFRAME_START.get(codec.mime_type)
            keyframe = starts_keyframe is not None and starts_keyframe(payload)
            if keyframe:
                self._keyframe_wanted = False
        # A slot may leave ``consumers`` while forwarding (a switch at a keyframe).
        for slot in self.consumers.copy():
            slot.forward(
                self,
                codec,
                seq,
                packet.timestamp,
                bool(packet.marker),
                payload,
                audio_level,
                keyframe,
            )

    @property
    def speaking(self) -> bool:
        return self.loudness >= SPEAKING_LOUDNESS

    def request_keyframe(self, reason: str) -> bool:
        """Send a PLI to the publisher unless one went out less than the interval ago."""
        if self.kind != "video":
            return False
        if self.ssrc is None:
            self._want_keyframe(reason)
            return False
        now = self._clock()
        if now - self._last_keyframe_request < self._keyframe_interval:
            self._want_keyframe(reason)
            self._stats.keyframe_requests_limited += 1
            return False
        self._last_keyframe_request = now
        self._keyframe_wanted = False
        pli = RtcpPsfbPacket(fmt=RTCP_PSFB_PLI, ssrc=self._rtcp_ssrc, media_ssrc=self.ssrc)
        if reason == "join":
            self._stats.keyframe_requests_join += 1
        else:
            self._stats.keyframe_requests_subscriber += 1
        return self._writer.send_rtcp(bytes(pli))

    def _want_keyframe(self, reason: str) -> None:
        """Remember a request the rate limit held back (a join outranks a subscriber's)."""
        if not self._keyframe_wanted or reason == "join":
            self._wanted_reason = reason
        self._keyframe_wanted = True

    def tick(self, bitrate: int) -> None:
        """Periodic duties: a request suppressed by the rate limit, the REMB cap."""
        if self._keyframe_wanted and self.consumers:
            self.request_keyframe(self._wanted_reason)
        if self.kind == "video" and self.ssrc is not None:
            remb = RtcpPsfbPacket(
                fmt=RTCP_PSFB_APP,
                ssrc=self._rtcp_ssrc,
                media_ssrc=0,
                fci=pack_remb_fci(bitrate, [self.ssrc]),
            )
            self._writer.send_rtcp(bytes(remb))

    def close(self) -> None:
        self.closed = True
        for slot in tuple(self.consumers):
            slot.assign(None)


class Slot:
    """One receive transceiver of one subscriber."""

    def __init__(
        self,
        mid: str,
        kind: str,
        ssrc: int,
        stats: ForwardingStats,
        clock: Clock = time.monotonic,
    ) -> None:
        self.mid = mid
        self.kind = kind
        self.ssrc = ssrc
        self.source: PublishedStream | None = None
        self.pending: PublishedStream | None = None
        self.ready = False
        self._writer: PacketWriter | None = None
        self._stats = stats
        self._clock = clock
        self._payload_types: dict[tuple[str, ...], int] = {}
        # The last codec forwarded and its payload type here (one lookup per codec).
        self._codec: Codec | None = None
        self._payload_type = 0
        self._video = kind == "video"
        self._mid_id = 0
        self._audio_level_id = 0
        self._fixed_elements: list[tuple[int, bytes]] = []
        self._fixed_extensions = b""
        self._history: list[tuple[int, bytes] | None] = [None] * HISTORY_SIZE
        self._resync = True
        self._seq_offset = 0
        self._ts_offset = 0
        self._first_seq = 0
        self._last_seq = random.randrange(SEQ_MOD // 2)
        self._last_ts = random.randrange(TS_MOD)
        self._last_time: float | None = None
        self._clock_rate = 90000 if kind == "video" else 48000
        self._vp8: Vp8Pictures | None = None
        self.packets_sent = 0
        self.octets_sent = 0

    def start(self, parameters: RTCRtpSendParameters, writer: PacketWriter) -> None:
        """The subscriber's transport is up: learn its payload types and extension ids."""
        self._writer = writer
        self._codec = None
        for codec in parameters.codecs:
            if codec.payloadType is not None and not _is_rtx(codec):
                self._payload_types.setdefault(Codec.from_parameters(codec).key, codec.payloadType)
        for ext in parameters.headerExtensions:
            if ext.uri == URI_MID and 1 <= ext.id <= 14:
                self._mid_id = ext.id
            elif ext.uri == URI_AUDIO_LEVEL and 1 <= ext.id <= 14:
                self._audio_level_id = ext.id
        if self._mid_id:
            self._fixed_elements = [(self._mid_id, self.mid.encode())]
        self._fixed_extensions = one_byte_extensions(self._fixed_elements)
        self.ready = True
        if self.pending is not None:
            self.pending.request_keyframe("join")

    def assign(self, stream: "PublishedStream | None") -> None:
        """Carry ``stream`` from now on (video: from its next keyframe), or nothing."""
        if stream is not None and (
            stream is self.pending or (stream is self.source and self.pending is None)
        ):
            return
        if self.pending is not None:
            self._detach(self.pending)
            self.pending = None
        if stream is None or stream is self.source:
            if stream is None and self.source is not None:
                self._detach(self.source)
                self.source = None
            return
        stream.consumers.append(self)
        if self.kind == "audio":
            if self.source is not None:
                self._detach(self.source)
            self.source = stream
            self._resync = True
        else:
            self.pending = stream
            if self.ready:
                stream.request_keyframe("join")

    def _detach(self, stream: PublishedStream) -> None:
        if self in stream.consumers:
            stream.consumers.remove(self)

    def forward(
        self,
        stream: PublishedStream,
        codec: Codec,
        seq: int,
        timestamp: int,
        marker: bool,
        payload: bytes,
        audio_level: int | None,
        keyframe: bool,
    ) -> None:
        if stream is self.pending:
            if not keyframe:
                return
            if self.source is not None:
                self._detach(self.source)
            self.source = stream
            self.pending = None
            self._resync = True
        elif stream is not self.source:
            return
        writer = self._writer
        if writer is None or not self.ready:
            return
        if codec is self._codec:
            payload_type = self._payload_type
        else:
            found = self._payload_types.get(codec.key)
            if found is None:
                return
            self._codec, self._payload_type = codec, payload_type = codec, found
        if self._resync:
            self._resync = False
            self._seq_offset = (self._last_seq + 1 - seq) % SEQ_MOD
            # The new source starts one frame (or the pause, if longer) after the last
            # packet of the old one, so the subscriber never sees two frames at one time.
            elapsed = MIN_SWITCH_GAP[self.kind]
            if self._last_time is not None:
                elapsed = max(elapsed, self._clock() - self._last_time)
            gap = int(elapsed * self._clock_rate)
            self._ts_offset = (self._last_ts + gap - timestamp) % TS_MOD
            self._first_seq = seq
            self._clock_rate = codec.clock_rate
            # VP8 picture numbers go on from those of the last packet sent, if any.
            self._vp8 = None
            last = self._history[self._last_seq % HISTORY_SIZE]
            if last is not None and last[0] == self._last_seq and codec.mime_type == "video/vp8":
                self._vp8 = Vp8Pictures.continuing(rtp_payload(last[1]))
        elif (seq - self._first_seq) % SEQ_MOD >= 0x8000:
            return  # older than the switch point: would collide with the previous source
        out_seq = (seq + self._seq_offset) % SEQ_MOD
        out_ts = (timestamp + self._ts_offset) % TS_MOD
        body: bytes | bytearray = payload
        if self._vp8 is not None and codec.mime_type == "video/vp8":
            body = self._vp8.rewrite(payload)
        if audio_level is not None and self._audio_level_id:
            extensions = one_byte_extensions(
                [*self._fixed_elements, (self._audio_level_id, bytes((audio_level & 0x7F,)))]
            )
        else:
            extensions = self._fixed_extensions
        data = encode_rtp(payload_type, out_seq, out_ts, self.ssrc, marker, body, extensions)
        self._history[out_seq % HISTORY_SIZE] = (out_seq, data)
        if 0 < (out_seq - self._last_seq) % SEQ_MOD < 0x8000:  # seq_newer, inline
            self._last_seq = out_seq
            self._last_ts = out_ts
            self._last_time = self._clock()
        if writer.send_rtp(data):
            self.packets_sent += 1
            self.octets_sent += len(body)
            if self._video:
                self._stats.packets_video += 1
                self._stats.bytes_video += len(data)
            else:
                self._stats.packets_audio += 1
                self._stats.bytes_audio += len(data)
        else:
            self._stats.packets_unsent += 1

    def on_rtcp(self, packet: AnyRtcpPacket) -> None:
        """The subscriber's feedback about this slot."""
        writer = self._writer
        if writer is None:
            return
        if isinstance(packet, RtcpRtpfbPacket) and packet.fmt == RTCP_RTPFB_NACK:
            for seq in packet.lost:
                entry = self._history[seq % HISTORY_SIZE]
                if entry is not None and entry[0] == seq and writer.send_rtp(entry[1]):
                    self._stats.nacks_answered += 1
                else:
                    self._stats.nacks_missed += 1
        elif isinstance(packet, RtcpPsfbPacket) and packet.fmt in (RTCP_PSFB_PLI, RTCP_PSFB_FIR):
            stream = self.pending or self.source
            if stream is not None:
                stream.request_keyframe("subscriber")

    def remind(self) -> None:
        """Still waiting for a new source's keyframe: ask again (its first may be lost)."""
        if self.pending is not None and self.ready:
            self.pending.request_keyframe("join")

    def sender_report(self) -> None:
        """An RTCP SR tying this slot's RTP clock to wall-clock time (for A/V sync)."""
        writer = self._writer
        if writer is None or self._last_time is None or self.source is None:
            return
        elapsed = self._clock() - self._last_time
        rtp_now = (self._last_ts + int(elapsed * self._clock_rate)) % TS_MOD
        report = RtcpSrPacket(
            ssrc=self.ssrc,
            sender_info=RtcpSenderInfo(
                ntp_timestamp=current_ntp_time(),
                rtp_timestamp=rtp_now,
                packet_count=self.packets_sent & 0xFFFFFFFF,
                octet_count=self.octets_sent & 0xFFFFFFFF,
            ),
        )
        if writer.send_rtcp(bytes(report)):
            self._stats.sender_reports += 1

    def close(self) -> None:
        self.assign(None)
        self.ready = False
