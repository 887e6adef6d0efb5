"""After the end: the kept segments become one MP4, remuxed, never re-encoded.

A relay killed mid-broadcast and restarted starts a new run (``seg-<run>-<n>.ts``) with
its clock at 0 again: the segments the killed run left on disk come first in the
recording, and each later run's timestamps are shifted to follow on.
"""

import logging
from fractions import Fraction
from pathlib import Path
from typing import Any

import av

from .directory import VideoInfo

logger = logging.getLogger(__name__)


def _templates(segments: list[Path]) -> dict[str, tuple[Path, int]]:
    """For video and audio: the first segment with packets of that kind, and its stream index."""
    found: dict[str, tuple[Path, int]] = {}
    for path in segments:
        with av.open(str(path)) as segment:
            for packet in segment.demux():
                kind = packet.stream.type
                if kind not in ("video", "audio") or not packet.size or kind in found:
                    continue
                # The MP4 header needs what the demuxer learnt: a picture size, a rate.
                # (A short audio-only segment can be misread as MP2: want AAC.)
                ctx: Any = packet.stream.codec_context
                known = ctx.width > 0 if kind == "video" else ctx.name == "aac"
                if known:
                    found[kind] = (path, packet.stream.index)
        if len(found) == 2:
            break
    return found


# The gap put between two runs in the recording (90 kHz: 1/30 s).
RUN_GAP = 3000


def _run_of(path: Path) -> str:
    """The run of a segment named ``seg-<run>-<sequence>.ts`` ("" for other names)."""
    parts = path.name.split("-")
    return parts[1] if len(parts) == 3 and parts[0] == "seg" else ""


def earlier_runs(directory: Path, current_run: str) -> list[Path]:
    """Complete segments of this broadcast left by a killed relay (other runs), oldest first."""
    runs: dict[str, list[Path]] = {}
    for path in directory.glob("seg-*.ts"):
        if (run := _run_of(path)) and run != current_run:
            runs.setdefault(run, []).append(path)
    ordered = sorted(runs.values(), key=lambda paths: min(p.stat().st_mtime for p in paths))
    return [path for paths in ordered for path in sorted(paths)]


def _readable(segments: list[Path]) -> list[Path]:
    """The segments the demuxer can open. A segment the end cut short (opened by the
    writer, nothing in it yet) is left out with a warning: one empty file must not cost
    the school the whole recording (seen in CI: ``EOFError`` on the last segment)."""
    kept = []
    for path in segments:
        try:
            if path.stat().st_size == 0:
                raise ValueError("empty")
            with av.open(str(path)):
                pass
        except (OSError, ValueError, av.FFmpegError) as e:
            logger.warning("recording: segment %s left out (%s)", path.name, e)
            continue
        kept.append(path)
    return kept


def remux_to_mp4(segments: list[Path], target: Path) -> VideoInfo:
    """Concatenate MPEG-TS segments into ``target`` (MP4, ``+faststart``), copying packets;
    segments that cannot be read are left out (:func:`_readable`)."""
    segments = _readable(segments)
    part = target.with_suffix(".part.mp4")
    out = av.open(str(part), "w", format="mp4", options={"movflags": "+faststart"})
    streams: dict[str, Any] = {}
    holders = []
    try:
        for kind, (path, index) in sorted(_templates(segments).items(), reverse=True):
            holder = av.open(str(path))
            holders.append(holder)
            template = holder.streams[index]
            streams[kind] = out.add_stream_from_template(template)
            streams[kind].time_base = template.time_base
        last_dts: dict[str, int] = {}
        run: str | None = None
        shift: int | None = 0
        for path in segments:
            if _run_of(path) != run:
                # A new run's clock started again: shift it to follow the last packet.
                shift = 0 if run is None else None
                run = _run_of(path)
            with av.open(str(path)) as segment:
                for packet in segment.demux():
                    kind = packet.stream.type
                    if packet.dts is None or not packet.size or kind not in streams:
                        continue
                    if kind == "audio" and packet.stream.codec_context.name != "aac":
                        continue  # a misread audio-only segment (see _templates)
                    # Timestamps run on across segments (one relay clock); drop repeats.
                    dts = int(packet.dts * packet.time_base * 90_000)
                    if shift is None:
                        shift = max(last_dts.values(), default=0) + RUN_GAP - dts
                    if shift:
                        moved = int(Fraction(shift, 90_000) / packet.time_base)
                        packet.dts += moved
                        if packet.pts is not None:
                            packet.pts += moved
                        dts += shift
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
