"""One broadcast: speakers in, one HLS stream out.

Video is never decoded: each speaker's H.264 access units (taken below aiortc's decoder,
see :mod:`.tap`) are re-timed onto the relay clock and muxed as they are. The picture
follows the screen share, else the loudest speaker; a switch waits for a self-contained
keyframe from the new speaker (asked for with a PLI), and every segment starts at one
(asked for shortly before each boundary). Audio from every speaker is mixed into AAC.
A speaker whose browser only offers VP8 costs one VP8→H.264 transcode (:mod:`.transcode`).
"""

import asyncio
import contextlib
import logging
import secrets
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, Final

from aiortc import MediaStreamTrack, RTCPeerConnection, RTCRtpReceiver
from aiortc.mediastreams import MediaStreamError

from . import h264
from .clock import RATE, RelayClock
from .config import BroadcastConfig
from .directory import BroadcastInfo
from .hls import HlsWriter
from .mixer import TICK_SAMPLES, AacEncoder, AudioMixer
from .tap import tap_receiver

logger = logging.getLogger(__name__)

# A source whose last frame is older than this is "video off".
STALE_TICKS: Final = int(1.5 * RATE)
# At most one keyframe request per source this often.
PLI_INTERVAL: Final = 0.3
# A new loudest speaker must stay loudest this many decisions (every 240 ms) to win.
SWITCH_DECISIONS: Final = 3
# ... and be this much louder than the one on screen.
SWITCH_RATIO: Final = 2.0
SPEECH_LEVEL: Final = 300.0


class VideoSource:
    """One incoming video track (a camera or a screen) of one speaker."""

    def __init__(self, speaker: "Speaker", receiver: RTCRtpReceiver, screen: bool) -> None:
        self.speaker = speaker
        self.receiver = receiver
        self.screen = screen
        self.params = h264.ParameterSets()
        self.last_frame_at = -STALE_TICKS
        self.frames = 0
        self.keyframes = 0
        self.keyframe_requests = 0
        self._offset: int | None = None
        self._last_pli = 0.0
        self.transcoder: Any = None

    def live(self, now: int) -> bool:
        return now - self.last_frame_at < STALE_TICKS

    def pts(self, rtp_ts: int, now: int) -> int:
        """Map the speaker's RTP clock onto the relay clock; re-anchor after a pause."""
        if self._offset is None or abs(rtp_ts + self._offset - now) > RATE // 2:
            self._offset = now - rtp_ts
        return rtp_ts + self._offset

    def request_keyframe(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last_pli < PLI_INTERVAL:
            return
        self._last_pli = now
        if self.transcoder is not None:
            self.transcoder.force_keyframe()
        ssrc = media_ssrc(self.receiver)
        if ssrc is None:
            return
        self.keyframe_requests += 1
        task = asyncio.ensure_future(self.receiver._send_rtcp_pli(ssrc))
        task.add_done_callback(_log_failure)


def media_ssrc(receiver: RTCRtpReceiver) -> int | None:
    """The SSRC of the media (not the RTX retransmissions) most recently seen."""
    active: dict[int, Any] = getattr(receiver, "_RTCRtpReceiver__active_ssrc", {})
    rtx: dict[int, int] = getattr(receiver, "_RTCRtpReceiver__rtx_ssrc", {})
    media = [(seen, ssrc) for ssrc, seen in active.items() if ssrc not in rtx]
    return max(media)[1] if media else None


def _log_failure(task: "asyncio.Future[Any]") -> None:
    if not task.cancelled() and task.exception() is not None:
        logger.warning("broadcast: keyframe request failed: %s", task.exception())


class Speaker:
    """One WHIP session: a person's camera/microphone, or their screen."""

    def __init__(
        self, session_id: str, user_id: str, name: str, pc: RTCPeerConnection, screen: bool
    ) -> None:
        self.session_id = session_id
        self.user_id = user_id
        self.name = name
        self.pc = pc
        self.screen = screen
        self.sources: list[VideoSource] = []
        self.tasks: list[asyncio.Task[None]] = []


class Broadcast:
    def __init__(
        self,
        info: BroadcastInfo,
        config: BroadcastConfig,
        on_ended: Callable[["Broadcast"], Awaitable[None]] | None = None,
        on_live: Callable[["Broadcast"], Awaitable[None]] | None = None,
    ) -> None:
        self.info = info
        self.id = info.broadcast_id
        self.config = config
        self.directory = Path(config.data_dir) / info.broadcast_id
        self.clock = RelayClock()
        self.mixer = AudioMixer()
        self.encoder = AacEncoder()
        self.writer = HlsWriter(
            self.directory,
            self.encoder.stream,
            config.segment_seconds,
            config.playlist_segments,
            keep_segments=info.recording,
        )
        self.speakers: dict[str, Speaker] = {}
        self.current: VideoSource | None = None
        self.pending: VideoSource | None = None
        self._candidate: VideoSource | None = None
        self._candidate_count = 0
        self.switches = 0
        self.viewers: dict[str, float] = {}
        self.ended = False
        self._on_ended = on_ended
        self._on_live = on_live
        self._live_reported = False
        self._tasks: set[asyncio.Task[None]] = set()
        self._asked_this_segment = False
        self._mix_task = asyncio.ensure_future(self._mix_loop())

    # -- status -------------------------------------------------------------

    @property
    def status(self) -> str:
        if self.ended:
            return "ended"
        return "live" if self.writer.segments else "waiting"

    def saw_viewer(self, viewer_id: str) -> int:
        now = time.monotonic()
        self.viewers[viewer_id] = now
        horizon = now - self.config.viewer_window_seconds
        if len(self.viewers) > 64 and next(iter(self.viewers.values())) < horizon:
            self.viewers = {v: t for v, t in self.viewers.items() if t >= horizon}
        return sum(1 for t in self.viewers.values() if t >= horizon)

    # -- speakers -----------------------------------------------------------

    def new_session_id(self) -> str:
        return secrets.token_urlsafe(12)

    def attach(self, speaker: Speaker) -> None:
        """Wire a speaker's peer connection in; call before its remote description is set."""
        self.speakers[speaker.session_id] = speaker

        @speaker.pc.on("track")
        def on_track(track: MediaStreamTrack) -> None:
            receiver = next(
                t.receiver for t in speaker.pc.getTransceivers() if t.receiver.track is track
            )
            if track.kind == "video":
                # A second video track of one session is a screen share.
                screen = speaker.screen or bool(speaker.sources)
                source = VideoSource(speaker, receiver, screen)
                speaker.sources.append(source)
                tap_receiver(
                    receiver, lambda codec, data, ts: self.on_video(source, codec, data, ts)
                )
            elif track.kind == "audio":
                key = (speaker.session_id, id(track))
                speaker.tasks.append(asyncio.ensure_future(self._read_audio(key, track)))

    async def _read_audio(self, key: tuple[str, int], track: MediaStreamTrack) -> None:
        mix_input = self.mixer.add(key)
        try:
            while True:
                frame = await track.recv()
                mix_input.push(frame)
        except MediaStreamError:
            pass
        finally:
            self.mixer.remove(key)

    async def detach(self, session_id: str) -> bool:
        speaker = self.speakers.pop(session_id, None)
        if speaker is None:
            return False
        for source in speaker.sources:
            if self.current is source:
                self.current = None
            if self.pending is source:
                self.pending = None
            if source.transcoder is not None:
                source.transcoder.close()
        for task in speaker.tasks:
            task.cancel()
        await speaker.pc.close()
        return True

    def level(self, source: VideoSource) -> float:
        return max(
            (
                lvl.level
                for key, lvl in self.mixer.inputs.items()
                if key[0] == source.speaker.session_id
            ),
            default=0.0,
        )

    # -- video --------------------------------------------------------------

    def on_video(self, source: VideoSource, codec: str, data: bytes, rtp_ts: int) -> None:
        if self.ended:
            return
        if codec == "H264":
            self.on_h264(source, data, rtp_ts)
        elif codec == "VP8":
            if source.transcoder is None:
                from .transcode import Vp8Transcoder

                source.transcoder = Vp8Transcoder(
                    lambda au, ts: self.on_h264(source, au, ts, transcoded=True)
                )
            source.transcoder.submit(data, rtp_ts)

    def on_h264(
        self, source: VideoSource, data: bytes, rtp_ts: int, transcoded: bool = False
    ) -> None:
        if self.ended:
            return
        now = self.clock.now()
        source.last_frame_at = now
        source.frames += 1
        pts = source.pts(rtp_ts, now)
        data, key = source.params.complete(data)
        if key:
            source.keyframes += 1
        seg = self.config.segment_seconds
        if self.current is None and self.pending is None:
            self._choose()
        if source is self.pending:
            if not key:
                source.request_keyframe()
                return
            # The switch: the new speaker's keyframe opens a new segment.
            self.current, self.pending = source, None
            self.switches += 1
            self.writer.cut(pts, self.clock.wall(pts), discontinuity=True)
            self._asked_this_segment = False
            self.writer.write_video(data, pts)
            return
        if source is not self.current:
            return
        if not self.writer.open:
            if not key:
                source.request_keyframe()
                return
            self.writer.cut(pts, self.clock.wall(pts))
            self._asked_this_segment = False
        elapsed = self.writer.elapsed(pts)
        if key and elapsed >= 0.6 * seg:
            self.writer.cut(pts, self.clock.wall(pts))
            self._asked_this_segment = False
        elif elapsed >= seg - 0.2 and (not self._asked_this_segment or elapsed >= 2 * seg):
            # Ask for the keyframe that will start the next segment.
            source.request_keyframe(force=not self._asked_this_segment)
            self._asked_this_segment = True
        self.writer.write_video(data, pts)

    def _choose(self) -> None:
        """Pick the picture: the newest screen share, else the loudest speaker with video."""
        now = self.clock.now()
        live = [s for sp in self.speakers.values() for s in sp.sources if s.live(now)]
        if self.current is not None and not self.current.live(now):
            self.current = None
        screens = [s for s in live if s.screen]
        target: VideoSource | None
        if screens:
            target = screens[-1]
        elif not live:
            target = None
        else:
            loudest = max(live, key=self.level)
            target = loudest
            if self.current is not None and self.current in live and not self.current.screen:
                louder = self.level(loudest) > max(
                    SWITCH_RATIO * self.level(self.current), SPEECH_LEVEL
                )
                if loudest is not self.current and not louder:
                    target = self.current
        if target is not None and target is not self.current and self.current is not None:
            # Debounce voice-driven switches (a screen share wins at once).
            if target is not self._candidate:
                self._candidate, self._candidate_count = target, 0
            self._candidate_count += 1
            if not target.screen and self._candidate_count < SWITCH_DECISIONS:
                target = self.current
        if target is self.current:
            self.pending = None
            return
        if target is None:
            self.pending = None
            return
        if self.pending is not target:
            self.pending = target
            target.request_keyframe(force=True)
        else:
            target.request_keyframe()

    # -- audio and the clock --------------------------------------------------

    async def _mix_loop(self) -> None:
        loop = asyncio.get_running_loop()
        tick = 0
        start = loop.time()
        start_pts = self.clock.now() * 48_000 // RATE
        while not self.ended:
            delay = start + tick * 0.02 - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            elif delay < -1.0:  # fell far behind: skip ahead rather than burst
                skipped = int(-delay / 0.02)
                tick += skipped
            try:
                self._tick(tick, start_pts)
            except Exception:
                logger.exception("broadcast %s: audio tick failed", self.id)
            tick += 1

    def _tick(self, tick: int, start_pts: int) -> None:
        if not self._live_reported and self.writer.segments and self._on_live is not None:
            self._live_reported = True
            task = asyncio.ensure_future(self._on_live(self))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        pcm = self.mixer.mix()
        for packet in self.encoder.encode(pcm, start_pts + tick * TICK_SAMPLES):
            self.writer.write_audio(packet)
        if tick % 12 == 0:
            self._choose()
        if self.current is None and self.pending is None:
            # No picture: cut audio-only segments on time.
            now = self.clock.now()
            if not self.writer.open or self.writer.elapsed(now) >= self.config.segment_seconds:
                self.writer.cut(now, self.clock.wall(now))

    # -- the end --------------------------------------------------------------

    async def end(self) -> None:
        if self.ended:
            return
        self.ended = True
        self._mix_task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._mix_task
        for session_id in list(self.speakers):
            await self.detach(session_id)
        self.writer.finish(self.clock.now())
        logger.info(
            "broadcast %s ended: %d segments, %d switches",
            self.id,
            len(self.writer.all_segments),
            self.switches,
        )
        if self._on_ended is not None:
            await self._on_ended(self)
