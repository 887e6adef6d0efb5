"""Take encoded video frames from an aiortc receiver before its decoder sees them.

aiortc 1.16's ``RTCRtpReceiver`` re-assembles each frame in its jitter buffer and puts
``(codec, JitterFrame)`` on a private ``queue.Queue`` that its decoder thread reads. We
replace that queue, per receiver and before ``receive()`` starts the thread, with a
:class:`FrameTap`: the frame goes to our callback on the event loop and the decoder
thread is told to stop at once, so no video decoder is ever created. The hook relies on
private aiortc API: aiortc is pinned (``aiortc==1.16.0``) and ``tests/test_broadcast_tap.py``
checks the hook against the real receiver.
"""

import logging
from collections.abc import Callable
from typing import Any, Final

from aiortc import RTCRtpReceiver

logger = logging.getLogger(__name__)

# (codec name such as "H264" or "VP8", frame bytes, RTP timestamp at 90 kHz)
FrameSink = Callable[[str, bytes, int], None]

_QUEUE_ATTRIBUTE: Final = "_RTCRtpReceiver__decoder_queue"
_THREAD_ATTRIBUTE: Final = "_RTCRtpReceiver__decoder_thread"


class TapError(RuntimeError):
    """The aiortc receiver does not look like the version the tap was written for."""


class FrameTap:
    """Stands in for the receiver's decoder queue."""

    def __init__(self, sink: FrameSink) -> None:
        self._sink = sink
        self._stop_sent = False
        self.frames = 0

    # Called by the receiver on the event loop with each complete frame.
    def put(self, item: Any) -> None:
        if item is None:  # the receiver stops
            return
        codec, frame = item
        self.frames += 1
        try:
            self._sink(str(codec.name), bytes(frame.data), int(frame.timestamp))
        except Exception:
            logger.exception("broadcast: a video frame could not be taken")

    # Called by the receiver's decoder thread: end it at once, nothing to decode.
    def get(self, *args: Any, **kwargs: Any) -> None:
        return None


def tap_receiver(receiver: RTCRtpReceiver, sink: FrameSink) -> FrameTap:
    """Divert ``receiver``'s encoded frames to ``sink``; call before the receiver starts."""
    if not hasattr(receiver, _QUEUE_ATTRIBUTE) or not hasattr(receiver, _THREAD_ATTRIBUTE):
        raise TapError("aiortc's RTCRtpReceiver changed: the broadcast frame tap needs 1.16.0")
    if getattr(receiver, _THREAD_ATTRIBUTE) is not None:
        raise TapError("the receiver already started decoding")
    tap = FrameTap(sink)
    setattr(receiver, _QUEUE_ATTRIBUTE, tap)
    return tap
