"""HLS output: MPEG-TS segments muxed by PyAV without encoding, and the live playlist.

Each segment is its own small MPEG-TS file that starts with a self-contained keyframe,
so any viewer (and any CDN edge) can start with any segment. Video packets are the
speakers' H.264 access units as they arrived; audio packets come from the AAC encoder
of the mix. Streams are added from templates, so PyAV never opens a codec here.
"""

import hashlib
import io
import logging
import math
import os
import secrets
import time
from collections.abc import Iterable
from datetime import UTC, datetime
from fractions import Fraction
from pathlib import Path
from typing import Any, Final

import attrs
import av

from .clock import RATE

logger = logging.getLogger(__name__)

TIME_BASE: Final = Fraction(1, RATE)
PLAYLIST: Final = "index.m3u8"


@attrs.frozen
class Segment:
    sequence: int
    name: str
    duration: float
    discontinuity: bool
    # Wall-clock time of the segment's first frame (EXT-X-PROGRAM-DATE-TIME).
    started_at: float


def segment_name(run: str, sequence: int) -> str:
    """``seg-<run>-<sequence>.ts``: a relay that restarts mid-broadcast starts a new run, so a
    name a CDN cached as immutable is never reused for other bytes."""
    return f"seg-{run}-{sequence:06d}.ts"


def render_playlist(
    segments: Iterable[Segment],
    target_duration: float,
    discontinuity_sequence: int,
    ended: bool,
) -> str:
    """A live media playlist (RFC 8216) over ``segments``; closed when ``ended``."""
    segs = list(segments)
    longest = max([target_duration, *(s.duration for s in segs)])
    lines = [
        "#EXTM3U",
        "#EXT-X-VERSION:3",
        f"#EXT-X-TARGETDURATION:{max(1, math.ceil(longest - 0.05))}",
        f"#EXT-X-MEDIA-SEQUENCE:{segs[0].sequence if segs else 0}",
        f"#EXT-X-DISCONTINUITY-SEQUENCE:{discontinuity_sequence}",
        "#EXT-X-INDEPENDENT-SEGMENTS",
    ]
    for seg in segs:
        if seg.discontinuity:
            lines.append("#EXT-X-DISCONTINUITY")
        stamp = datetime.fromtimestamp(seg.started_at, UTC).isoformat(timespec="milliseconds")
        lines.append(f"#EXT-X-PROGRAM-DATE-TIME:{stamp.replace('+00:00', 'Z')}")
        lines.append(f"#EXTINF:{seg.duration:.3f},")
        lines.append(seg.name)
    if ended:
        lines.append("#EXT-X-ENDLIST")
    return "\n".join(lines) + "\n"


def _video_template() -> Any:
    """An H.264 stream description to copy into each segment (the codec is never opened)."""
    holder = av.open(io.BytesIO(), "w", format="mpegts")
    stream = holder.add_stream("h264")
    stream.width = 1280
    stream.height = 720
    stream.time_base = TIME_BASE
    return holder, stream


# How many audio-only segments may be held back waiting for the first picture.
LEADING_AUDIO_ONLY_SEGMENTS = 5


class HlsWriter:
    """Writes segments into ``directory`` and keeps the playlist text in memory."""

    def __init__(
        self,
        directory: Path,
        audio_template: Any,
        segment_seconds: float,
        playlist_segments: int,
        keep_segments: bool,
    ) -> None:
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)
        self.run = secrets.token_hex(3)
        self._video_holder, self._video_template = _video_template()
        self._audio_template = audio_template
        self.segment_seconds = segment_seconds
        self.playlist_segments = playlist_segments
        self.keep_segments = keep_segments
        self.segments: list[Segment] = []
        self.all_segments: list[Segment] = []
        self._sequence = 0
        self._discontinuity_sequence = 0
        self._container: Any = None
        self._video: Any = None
        self._audio: Any = None
        self._start_pts = 0
        self._started_at = 0.0
        self._discontinuity = False
        self._last_video_dts = -1
        self._last_audio_dts = -1
        self.ended = False
        self.playlist = ""
        self.playlist_etag = ""
        self.playlist_modified = time.time()
        self.video_packets = 0
        self.audio_packets = 0
        self._segment_packets = 0
        self._segment_video = 0
        self._published_video = False
        self._skipped_leading = 0

    @property
    def open(self) -> bool:
        return self._container is not None

    def elapsed(self, pts: int) -> float:
        """Seconds since the open segment started (0 when none is open)."""
        return (pts - self._start_pts) / RATE if self._container is not None else 0.0

    def cut(self, pts: int, wall: float, discontinuity: bool = False) -> None:
        """Close the open segment at ``pts`` and open the next one starting there."""
        self._close_segment(pts)
        self._sequence += 1
        path = self.directory / (segment_name(self.run, self._sequence) + ".part")
        self._container = av.open(str(path), "w", format="mpegts")
        self._video = self._container.add_stream_from_template(self._video_template)
        self._audio = self._container.add_stream_from_template(self._audio_template)
        self._video.time_base = TIME_BASE
        self._start_pts = pts
        self._started_at = wall
        self._discontinuity = discontinuity and bool(self.segments)
        self._segment_packets = 0
        self._segment_video = 0

    def write_video(self, access_unit: bytes, pts: int) -> None:
        if self._container is None:
            return
        pts = max(pts, self._last_video_dts + 1)
        packet = av.Packet(access_unit)
        packet.pts = packet.dts = pts
        packet.time_base = TIME_BASE
        packet.stream = self._video
        self._container.mux(packet)
        self._last_video_dts = pts
        self.video_packets += 1
        self._segment_packets += 1
        self._segment_video += 1

    def write_audio(self, packet: Any) -> None:
        if self._container is None:
            return
        dts = int(packet.dts * packet.time_base * RATE) if packet.dts is not None else None
        if dts is not None and dts <= self._last_audio_dts:
            return
        packet.stream = self._audio
        self._container.mux(packet)
        if dts is not None:
            self._last_audio_dts = dts
        self.audio_packets += 1
        self._segment_packets += 1

    def finish(self, pts: int) -> None:
        """Close the last segment and end the playlist (EXT-X-ENDLIST)."""
        self._close_segment(pts)
        self.ended = True
        self._publish()

    def _close_segment(self, pts: int) -> None:
        if self._container is None:
            return
        self._container.close()
        self._container = None
        name = segment_name(self.run, self._sequence)
        part = self.directory / (name + ".part")
        duration = max(0.001, (pts - self._start_pts) / RATE)
        leading_audio_only = (
            self._segment_video == 0
            and not self._published_video
            and self._skipped_leading < LEADING_AUDIO_ONLY_SEGMENTS
        )
        if self._segment_packets == 0 or leading_audio_only:
            # Until the first picture (a few seconds at most), audio-only segments are
            # not published: a player that starts on one sets up no video pipeline and
            # then fails when the picture arrives. A broadcast with no video at all is
            # published audio-only after that wait.
            self._skipped_leading += self._segment_packets > 0
            part.unlink(missing_ok=True)
            return
        self._published_video |= self._segment_video > 0
        os.replace(part, self.directory / name)
        seg = Segment(self._sequence, name, duration, self._discontinuity, self._started_at)
        self.segments.append(seg)
        self.all_segments.append(seg)
        while len(self.segments) > self.playlist_segments:
            gone = self.segments.pop(0)
            if gone.discontinuity:
                self._discontinuity_sequence += 1
        self._prune()
        self._publish()

    def _prune(self) -> None:
        if self.keep_segments:
            return
        # Keep a few segments past the window for players and caches that lag behind.
        keep = {s.sequence for s in self.all_segments[-(self.playlist_segments + 4) :]}
        for seg in [s for s in self.all_segments if s.sequence not in keep]:
            (self.directory / seg.name).unlink(missing_ok=True)
        self.all_segments = [s for s in self.all_segments if s.sequence in keep]

    def _publish(self) -> None:
        self.playlist = render_playlist(
            self.segments, self.segment_seconds, self._discontinuity_sequence, self.ended
        )
        self.playlist_etag = '"' + hashlib.sha1(self.playlist.encode()).hexdigest()[:16] + '"'
        self.playlist_modified = time.time()

    def close(self) -> None:
        if self._container is not None:
            self._container.close()
            self._container = None
