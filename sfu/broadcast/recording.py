"""After the end: the kept segments become one MP4, remuxed, never re-encoded."""

from pathlib import Path
from typing import Any

import av

from .directory import VideoInfo


def _templates(segments: list[Path]) -> dict[str, tuple[Path, int]]:
    """For video and audio: a segment with packets of that kind, and its stream index.

    Segments from before the first picture carry audio only, and FFmpeg's probe can take
    their AAC for MP2 with no sample rate, which the MP4 muxer refuses; so the audio
    template comes from a segment that has video too when there is one, and only AAC
    serves as the audio template.
    """
    found: dict[str, tuple[Path, int]] = {}
    audio_only: tuple[Path, int] | None = None
    for path in segments:
        with av.open(str(path)) as segment:
            kinds: dict[str, int] = {}
            for packet in segment.demux():
                kind = packet.stream.type
                if kind == "audio" and packet.stream.codec_context.name != "aac":
                    continue
                if kind in ("video", "audio") and packet.size and kind not in kinds:
                    kinds[kind] = packet.stream.index
        if "video" in kinds and "video" not in found:
            found["video"] = (path, kinds["video"])
        if "audio" in kinds:
            if "video" in kinds and "audio" not in found:
                found["audio"] = (path, kinds["audio"])
            elif audio_only is None:
                audio_only = (path, kinds["audio"])
        if len(found) == 2:
            break
    if "audio" not in found and audio_only is not None:
        found["audio"] = audio_only
    return found


def remux_to_mp4(segments: list[Path], target: Path) -> VideoInfo:
    """Concatenate MPEG-TS segments into ``target`` (MP4, ``+faststart``), copying packets."""
    part = target.with_suffix(".part.mp4")
    out = av.open(str(part), "w", format="mp4", options={"movflags": "+faststart"})
    streams: dict[str, Any] = {}
    codecs: dict[str, str] = {}
    holders = []
    try:
        for kind, (path, index) in sorted(_templates(segments).items(), reverse=True):
            holder = av.open(str(path))
            holders.append(holder)
            template = holder.streams[index]
            codecs[kind] = template.codec_context.name
            streams[kind] = out.add_stream_from_template(template)
            streams[kind].time_base = template.time_base
        last_dts: dict[str, int] = {}
        for path in segments:
            with av.open(str(path)) as segment:
                for packet in segment.demux():
                    kind = packet.stream.type
                    if packet.dts is None or not packet.size or kind not in streams:
                        continue
                    if packet.stream.codec_context.name != codecs[kind]:
                        continue  # a misprobed stream (see _templates)
                    # Timestamps run on across segments (one relay clock); drop repeats.
                    dts = int(packet.dts * packet.time_base * 90_000)
                    if dts <= last_dts.get(kind, -(2**62)):
                        continue
                    last_dts[kind] = dts
                    packet.stream = streams[kind]
                    out.mux(packet)
    finally:
        out.close()
        for holder in holders:
            holder.close()
    part.replace(target)
    with av.open(str(target)) as done:
        duration = int((done.duration or 0) / 1000)
        video = done.streams.video
        width, height = (video[0].width, video[0].height) if video else (0, 0)
    return VideoInfo(duration, width, height, target.stat().st_size)
