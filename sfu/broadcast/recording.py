"""After the end: the kept segments become one MP4, remuxed, never re-encoded."""

from pathlib import Path
from typing import Any

import av


def remux_to_mp4(segments: list[Path], target: Path) -> None:
    """Concatenate MPEG-TS segments into ``target`` (MP4, ``+faststart``), copying packets."""
    part = target.with_suffix(".part.mp4")
    out = av.open(str(part), "w", format="mp4", options={"movflags": "+faststart"})
    streams: dict[str, Any] = {}
    last_dts: dict[str, int] = {}
    try:
        for path in segments:
            with av.open(str(path)) as segment:
                for packet in segment.demux():
                    kind = packet.stream.type
                    if packet.dts is None or kind not in ("video", "audio"):
                        continue
                    if kind not in streams:
                        streams[kind] = out.add_stream_from_template(packet.stream)
                    stream = streams[kind]
                    # Timestamps run on across segments (one relay clock); drop repeats.
                    dts = int(packet.dts * packet.time_base * 90_000)
                    if dts <= last_dts.get(kind, -(2**62)):
                        continue
                    last_dts[kind] = dts
                    packet.stream = stream
                    out.mux(packet)
    finally:
        out.close()
    part.replace(target)
