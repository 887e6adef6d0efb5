"""The broadcast's sound: every speaker's decoded Opus mixed into one AAC track.

Audio is the only thing the relay decodes (aiortc's receiver does it; Opus is cheap).
Each speaker's frames are resampled to 48 kHz mono, buffered briefly against jitter and
summed with saturation every 20 ms. The loudness of each speaker over the last second
or so also tells the relay who is talking.
"""

import warnings
from fractions import Fraction
from typing import Any, Final

import av

with warnings.catch_warnings():
    # audioop's C mixing is what we want on Python 3.11; it leaves the stdlib in 3.13.
    warnings.simplefilter("ignore", DeprecationWarning)
    import audioop

MixKey = tuple[str, int]  # (WHIP session, track)

RATE: Final = 48_000
TICK_SAMPLES: Final = 960  # 20 ms
TICK_BYTES: Final = TICK_SAMPLES * 2
# Start mixing a speaker once this much is buffered, and never hold more than the cap.
PRIME_BYTES: Final = 3 * TICK_BYTES
MAX_BYTES: Final = 15 * TICK_BYTES
SILENCE: Final = b"\x00" * TICK_BYTES
# Smoothing of the loudness estimate per tick (about a one-second memory).
LEVEL_ALPHA: Final = 0.05


class MixInput:
    def __init__(self) -> None:
        self.buffer = bytearray()
        self.primed = False
        self.level = 0.0  # smoothed RMS of the speaker's signal (0..32767)
        self._resampler = av.AudioResampler(format="s16", layout="mono", rate=RATE)

    def push(self, frame: Any) -> None:
        for out in self._resampler.resample(frame):
            self.buffer += bytes(out.planes[0])[: out.samples * 2]
        if len(self.buffer) > MAX_BYTES:
            del self.buffer[: len(self.buffer) - MAX_BYTES]

    def take(self) -> bytes:
        if not self.primed:
            if len(self.buffer) < PRIME_BYTES:
                self.level *= 1 - LEVEL_ALPHA
                return SILENCE
            self.primed = True
        if len(self.buffer) < TICK_BYTES:
            self.primed = False  # ran dry: re-prime before mixing again
            chunk = bytes(self.buffer) + SILENCE[len(self.buffer) :]
            self.buffer.clear()
        else:
            chunk = bytes(self.buffer[:TICK_BYTES])
            del self.buffer[:TICK_BYTES]
        self.level += LEVEL_ALPHA * (audioop.rms(chunk, 2) - self.level)
        return chunk


class AudioMixer:
    def __init__(self) -> None:
        self.inputs: dict[MixKey, MixInput] = {}

    def add(self, key: MixKey) -> MixInput:
        return self.inputs.setdefault(key, MixInput())

    def remove(self, key: MixKey) -> None:
        self.inputs.pop(key, None)

    def mix(self) -> bytes:
        """The next 20 ms of the mix (s16 mono, 48 kHz)."""
        out = SILENCE
        for mix_input in self.inputs.values():
            out = audioop.add(out, mix_input.take(), 2)
        return out

    def level(self, key: MixKey) -> float:
        mix_input = self.inputs.get(key)
        return mix_input.level if mix_input else 0.0


class AacEncoder:
    """AAC-LC, 48 kHz mono; its stream is the template for every segment's audio."""

    def __init__(self, bit_rate: int = 96_000) -> None:
        import io

        self._holder = av.open(io.BytesIO(), "w", format="mpegts")
        self.stream = self._holder.add_stream("aac", rate=RATE, layout="mono")
        self.stream.bit_rate = bit_rate
        self.stream.time_base = Fraction(1, RATE)
        self.context = self.stream.codec_context
        # The "fast" coder costs a seventh of the default two-loop search (measured in
        # bench/broadcast_relay.py) at a quality fine for speech and school concerts.
        self.context.options = {"aac_coder": "fast"}
        self.context.open()

    def encode(self, pcm: bytes, pts: int) -> list[Any]:
        frame = av.AudioFrame(format="s16", layout="mono", samples=len(pcm) // 2)
        frame.planes[0].update(pcm)
        frame.sample_rate = RATE
        frame.pts = pts
        frame.time_base = Fraction(1, RATE)
        return [adts(packet) for packet in self.context.encode(frame)]


def adts_header(payload_size: int) -> bytes:
    """The 7-byte ADTS header of one AAC-LC frame, 48 kHz mono (ISO 14496-3, 1.A.2)."""
    length = payload_size + 7
    profile, rate_index, channels = 1, 3, 1  # LC (object type 2, minus one), 48 kHz, mono
    return bytes(
        [
            0xFF,
            0xF1,
            (profile << 6) | (rate_index << 2) | (channels >> 2),
            ((channels & 3) << 6) | (length >> 11),
            (length >> 3) & 0xFF,
            ((length & 7) << 5) | 0x1F,
            0xFC,
        ]
    )


def adts(packet: Any) -> Any:
    """MPEG-TS carries AAC as ADTS; PyAV's muxer passes a copied stream's packets as they are."""
    data = bytes(packet)
    framed = av.Packet(adts_header(len(data)) + data)
    framed.pts, framed.dts, framed.time_base = packet.pts, packet.dts, packet.time_base
    return framed
