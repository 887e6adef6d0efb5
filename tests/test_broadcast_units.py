"""The broadcast relay's pure pieces, against real bytes."""

import asyncio
import io
from pathlib import Path

import av
import pytest
from aiortc import RTCPeerConnection, RTCRtpReceiver

from broadcast_relay import h264
from broadcast_relay.config import BroadcastConfig
from broadcast_relay.hls import Segment, render_playlist
from broadcast_relay.mixer import adts_header
from broadcast_relay.tap import FrameTap, TapError, tap_receiver
from parta_common.config import ConfigProblem, load_yaml
from tests.broadcast_support import H264Track, h264_only

CONFIG = Path(__file__).resolve().parent.parent / "config" / "broadcast.example.yaml"


def encoded_frames(count: int) -> list[bytes]:
    track = H264Track(luma=100, gop=5)
    out = []
    for i in range(count):
        frame = av.VideoFrame(320, 240, "yuv420p")
        frame.pts = i
        frame.time_base = track.encoder.time_base
        out += [bytes(p) for p in track.encoder.encode(frame)]
    return out


def test_keyframes_are_found_in_real_h264() -> None:
    frames = encoded_frames(10)
    assert h264.nal_types(frames[0])[:2] == [h264.NAL_SPS, h264.NAL_PPS] or h264.NAL_SPS in (
        h264.nal_types(frames[0])
    )
    keys = [h264.is_self_contained_keyframe(f) for f in frames]
    assert keys == [True, False, False, False, False, True, False, False, False, False]
    assert all(
        h264.NAL_IDR not in h264.nal_types(f) for f, k in zip(frames, keys, strict=True) if not k
    )


def test_an_idr_without_parameter_sets_gets_the_last_ones() -> None:
    frames = encoded_frames(6)
    sets = h264.ParameterSets()
    sets.complete(frames[0])
    bare = b"".join(
        b"\x00\x00\x00\x01" + u for u in h264.nal_units(frames[5]) if u[0] & 0x1F == h264.NAL_IDR
    )
    completed, key = sets.complete(bare)
    assert key
    assert h264.is_self_contained_keyframe(completed)
    # A decoder starts at the completed keyframe.
    decoder = av.CodecContext.create("h264", "r")
    assert len(decoder.decode(av.Packet(completed))) + len(decoder.decode(None)) == 1


def test_four_and_three_byte_start_codes() -> None:
    unit = b"\x00\x00\x00\x01\x67\xaa\x00\x00\x01\x68\xbb\x00\x00\x00\x01\x65\xcc"
    assert list(h264.nal_units(unit)) == [b"\x67\xaa", b"\x68\xbb", b"\x65\xcc"]


def test_playlist_lists_window_with_discontinuity_and_end() -> None:
    segs = [
        Segment(7, "seg-000007.ts", 1.0, False, 1_700_000_000.0),
        Segment(8, "seg-000008.ts", 1.43, True, 1_700_000_001.0),
    ]
    text = render_playlist(segs, 1.0, 2, ended=True)
    lines = text.splitlines()
    assert lines[:2] == ["#EXTM3U", "#EXT-X-VERSION:3"]
    assert "#EXT-X-TARGETDURATION:2" in lines
    assert "#EXT-X-MEDIA-SEQUENCE:7" in lines
    assert "#EXT-X-DISCONTINUITY-SEQUENCE:2" in lines
    assert lines.index("#EXT-X-DISCONTINUITY") == lines.index("seg-000008.ts") - 3
    assert "#EXT-X-PROGRAM-DATE-TIME:2023-11-14T22:13:20.000Z" in lines
    assert lines[-1] == "#EXT-X-ENDLIST"


def test_adts_header_is_what_ffmpeg_reads() -> None:
    enc = av.CodecContext.create("aac", "w")
    enc.sample_rate, enc.layout, enc.format = 48_000, "mono", "fltp"
    payloads = []
    for i in range(6):
        frame = av.AudioFrame(format="fltp", layout="mono", samples=1024)
        frame.planes[0].update(bytes(4096))
        frame.sample_rate = 48_000
        frame.pts = i * 1024
        payloads += [bytes(p) for p in enc.encode(frame)]
    stream = b"".join(adts_header(len(p)) + p for p in payloads)
    with av.open(io.BytesIO(stream), "r", format="aac") as container:
        audio = container.streams.audio[0]
        assert (audio.sample_rate, audio.codec_context.channels) == (48_000, 1)
        assert len([p for p in container.demux(audio) if p.size]) >= len(payloads)


def test_example_config_loads_and_bad_values_name_the_key(tmp_path: Path) -> None:
    config = load_yaml(BroadcastConfig, CONFIG, "broadcast")
    assert config.segment_seconds == 1.0
    bad = tmp_path / "bad.yaml"
    bad.write_text("token_secret: short\n")
    with pytest.raises(ConfigProblem, match="token_secret"):
        load_yaml(BroadcastConfig, bad)
    bad.write_text("token_secret: long-enough-secret-0123456789abcdef\nsegment_secs: 2\n")
    with pytest.raises(ConfigProblem, match="segment_secs"):
        load_yaml(BroadcastConfig, bad)


async def test_tap_takes_frames_below_a_real_receiver() -> None:
    """The hook against aiortc 1.16's real receiver: Annex-B frames, no decoder thread work."""
    sender, receiver = RTCPeerConnection(), RTCPeerConnection()
    got: list[tuple[str, bytes, int]] = []
    taps: list[FrameTap] = []

    @receiver.on("track")
    def on_track(track: object) -> None:
        rtp_receiver = next(
            t.receiver for t in receiver.getTransceivers() if t.receiver.track is track
        )
        taps.append(tap_receiver(rtp_receiver, lambda c, d, ts: got.append((c, d, ts))))

    track = H264Track(luma=50, fps=30)
    transceiver = sender.addTransceiver(track, direction="sendonly")
    transceiver.setCodecPreferences(h264_only())
    await sender.setLocalDescription(await sender.createOffer())
    await receiver.setRemoteDescription(sender.localDescription)
    await receiver.setLocalDescription(await receiver.createAnswer())
    await sender.setRemoteDescription(receiver.localDescription)
    try:
        for _ in range(200):
            if len(got) >= 10:
                break
            await asyncio.sleep(0.05)
        assert len(got) >= 10
        codec, data, _ts = got[0]
        assert codec == "H264"
        assert h264.is_self_contained_keyframe(data)
        assert [ts for _, _, ts in got] == sorted(ts for _, _, ts in got)
        assert taps[0].frames == len(got)
        # The receiver's decoder thread found nothing to decode and ended.
        rtp_receiver = receiver.getTransceivers()[0].receiver
        thread = getattr(rtp_receiver, "_RTCRtpReceiver__decoder_thread")  # noqa: B009
        assert thread is not None
        assert not thread.is_alive()
        # A receiver already decoding cannot be tapped.
        with pytest.raises(TapError):
            tap_receiver(rtp_receiver, lambda c, d, ts: None)
    finally:
        await sender.close()
        await receiver.close()


def test_tap_refuses_an_unknown_receiver_shape() -> None:
    class NotAReceiver:
        pass

    with pytest.raises(TapError):
        tap_receiver(NotAReceiver(), lambda c, d, ts: None)  # type: ignore[arg-type]
    assert RTCRtpReceiver is not None


def test_the_sfu_mounts_broadcasts_with_its_own_secret(tmp_path: Path) -> None:
    from broadcast_relay import SERVICE_KEY
    from sfu.app import build_app
    from sfu.config import SfuConfig

    secret = "the-sfu-secret-0123456789abcdef-0123"
    plain = build_app(SfuConfig(token_secret=secret))
    assert SERVICE_KEY not in plain
    app = build_app(
        SfuConfig(token_secret=secret, broadcast=BroadcastConfig(data_dir=str(tmp_path)))
    )
    assert app[SERVICE_KEY].config.token_secret == secret
    paths = {r.resource.canonical for r in app.router.routes() if r.resource is not None}
    assert {"/whip/{broadcast_id}", "/watch/{link}/index.m3u8"} <= paths


def test_the_relay_is_a_package_of_its_own() -> None:
    """It runs alone (``python -m broadcast_relay``); of the SFU it uses only aiortc_hooks."""
    import ast

    package = Path(__file__).resolve().parent.parent / "broadcast_relay"
    from_sfu: set[str] = set()
    for source in package.glob("*.py"):
        for node in ast.walk(ast.parse(source.read_text("utf-8"))):
            names = (
                [node.module or ""]
                if isinstance(node, ast.ImportFrom) and node.level == 0
                else [alias.name for alias in node.names]
                if isinstance(node, ast.Import)
                else []
            )
            from_sfu |= {name for name in names if name == "sfu" or name.startswith("sfu.")}
    assert from_sfu == {"sfu.aiortc_hooks"}


def test_the_relay_command_refuses_a_config_without_a_secret(tmp_path: Path) -> None:
    import subprocess
    import sys

    config = tmp_path / "broadcast.yaml"
    config.write_text(f"data_dir: {str(tmp_path)!r}\n")
    run = subprocess.run(
        [sys.executable, "-m", "broadcast_relay", "-c", str(config)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert run.returncode == 2, run.stderr
    assert "token_secret is required" in run.stderr


def test_recording_remuxes_segments_that_start_with_audio_only(tmp_path: Path) -> None:
    from broadcast_relay.hls import HlsWriter
    from broadcast_relay.mixer import AacEncoder
    from broadcast_relay.recording import remux_to_mp4

    encoder = AacEncoder()
    writer = HlsWriter(tmp_path, encoder.stream, 1.0, 6, keep_segments=True)
    frames = encoded_frames(30)  # 15 fps, a keyframe every 5 frames
    tick = 0
    writer.cut(0, 0.0)
    for second in range(3):
        for i in range(50):  # one second of 20 ms audio ticks
            for packet in encoder.encode(b"\x10\x00" * 960, tick * 960):
                writer.write_audio(packet)
            tick += 1
            if second > 0 and i % 5 == 0:  # video from the second second on
                n = (second - 1) * 10 + i // 5
                pts = tick * 1800
                if h264.is_self_contained_keyframe(frames[n]) and writer.elapsed(pts) >= 0.6:
                    writer.cut(pts, pts / 90_000)
                writer.write_video(frames[n], pts)
    writer.finish(tick * 1800)
    segments = [tmp_path / s.name for s in writer.all_segments]
    assert len(segments) >= 2
    # The audio-only second before the first picture is held back from the playlist: a
    # player starting on it would set up no video pipeline.
    with av.open(str(segments[0])) as first:
        assert any(p.stream.type == "video" and p.size for p in first.demux())
    # The end can leave a last segment the writer opened and never filled: left out,
    # not the whole recording lost.
    empty = tmp_path / f"{segments[-1].stem}-empty.ts"
    empty.write_bytes(b"")
    info = remux_to_mp4([*segments, empty], tmp_path / "recording.mp4")
    assert (info.width, info.height) == (320, 240)
    with av.open(str(tmp_path / "recording.mp4")) as mp4:
        assert sorted(s.type for s in mp4.streams) == ["audio", "video"]
        assert sum(1 for _ in mp4.decode(video=0)) == 20
