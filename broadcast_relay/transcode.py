"""The one exception to "never decode video": a speaker whose browser only sends VP8.

HLS cannot carry VP8, so such a source is decoded and re-encoded to H.264 (libx264,
ultrafast, zero-latency) in its own thread: one transcode per VP8 speaker. The cost is
measured in ``bench/broadcast_relay.py`` and reported in ``docs/broadcasts.md``.
"""

import asyncio
import logging
import queue
import threading
from collections.abc import Callable
from fractions import Fraction
from typing import Any

import av

logger = logging.getLogger(__name__)


class Vp8Transcoder:
    def __init__(self, on_access_unit: Callable[[bytes, int], None]) -> None:
        self._loop = asyncio.get_running_loop()
        self._out = on_access_unit
        self._queue: queue.Queue[tuple[bytes, int] | None] = queue.Queue(maxsize=30)
        self._keyframe = threading.Event()
        self._keyframe.set()
        self._thread = threading.Thread(target=self._run, name="vp8-transcode", daemon=True)
        self._thread.start()

    def force_keyframe(self) -> None:
        self._keyframe.set()

    def submit(self, frame: bytes, rtp_ts: int) -> None:
        try:
            self._queue.put_nowait((frame, rtp_ts))
        except queue.Full:
            logger.warning("broadcast: VP8 transcoder is behind; a frame is dropped")
            self._keyframe.set()

    def close(self) -> None:
        self._queue.put(None)

    def _run(self) -> None:
        decoder = av.CodecContext.create("vp8", "r")
        encoder: Any = None
        while (item := self._queue.get()) is not None:
            data, rtp_ts = item
            try:
                frames = decoder.decode(av.Packet(data))
            except av.FFmpegError as e:
                logger.warning("broadcast: VP8 frame not decodable: %s", e)
                continue
            for frame in frames:
                if encoder is None or (encoder.width, encoder.height) != (
                    frame.width,
                    frame.height,
                ):
                    encoder = av.CodecContext.create("libx264", "w")
                    encoder.width, encoder.height = frame.width, frame.height
                    encoder.pix_fmt = "yuv420p"
                    encoder.time_base = Fraction(1, 90_000)
                    encoder.options = {"preset": "ultrafast", "tune": "zerolatency", "bf": "0"}
                    encoder.gop_size = 600
                    self._keyframe.set()
                frame.pts = rtp_ts
                frame.time_base = Fraction(1, 90_000)
                if self._keyframe.is_set():
                    self._keyframe.clear()
                    frame.pict_type = av.video.frame.PictureType.I
                for packet in encoder.encode(frame):
                    self._loop.call_soon_threadsafe(self._out, bytes(packet), rtp_ts)
