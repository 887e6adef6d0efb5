"""The SFU with two worker processes (``workers: 2``), real aiortc peers over loopback.

Teachers' connections stay in the main process; students' go to the least-loaded
worker. Everything runs under the codec guard (``python -m tests.sfu_guard``), which
the workers are started with too: a decoder or encoder in any of the processes ends it.
"""

import asyncio
import functools
import os
import signal
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import av
import pytest

from parta_common.roles import Role
from sfu.client import LessonClient
from sfu.synthetic import ClipTrack, encode_opus_clip, encode_vp8_clip
from tests.sfu_support import RunningSfu, running_sfu, token
from tests.test_sfu_lesson import poll, shows

VP8 = encode_vp8_clip()
VP8_LARGE = encode_vp8_clip(width=640, height=480)
OPUS = encode_opus_clip()
WORKERS = 2


def asked_since(track: ClipTrack, requests: int) -> bool:
    return track.keyframe_requests > requests


def workers_of(sfu: RunningSfu) -> list[dict[str, Any]]:
    workers: list[dict[str, Any]] = sfu.health()["workers"]
    return workers


def guarded_and_alive(sfu: RunningSfu, pids: list[int]) -> None:
    """The main process and the original workers live, and workers run under the guard."""
    assert sfu.alive(), sfu.log_text()
    workers = workers_of(sfu)
    assert [w["pid"] for w in workers] == pids, sfu.log_text()
    assert all(w["alive"] for w in workers)
    for pid in pids:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        assert b"tests.sfu_guard" in cmdline and b"--worker" in cmdline


@pytest.fixture(scope="module")
def sfu(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningSfu]:
    directory: Path = tmp_path_factory.mktemp("sfu-workers")
    with running_sfu(directory, workers=WORKERS, lesson={"participants": 20}) as running:
        yield running
        assert running.alive(), running.log_text()
        assert "CODEC GUARD" not in running.log_text()


@pytest.fixture
def pids(sfu: RunningSfu) -> list[int]:
    workers = workers_of(sfu)
    assert len(workers) == WORKERS
    return [w["pid"] for w in workers]


@pytest.fixture
def room(request: pytest.FixtureRequest) -> str:
    return f"!{request.node.name}:school.test"


@pytest.fixture
async def clients(sfu: RunningSfu) -> AsyncIterator[list[LessonClient]]:
    # Placement is by load: start from empty workers.
    await poll(lambda: all(w["participants"] == 0 for w in workers_of(sfu)))
    made: list[LessonClient] = []
    yield made
    for client in made:
        await client.close()


def camera(clip: list[bytes] = VP8) -> ClipTrack:
    return ClipTrack("video", clip, 30)


def microphone(level: int = 30) -> ClipTrack:
    return ClipTrack("audio", OPUS, 50, audio_level=level)


async def join(
    sfu: RunningSfu, room: str, clients: list[LessonClient], user: str, role: Role = Role.STUDENT
) -> LessonClient:
    client = LessonClient(sfu.url, room, token(user, role, room=room))
    clients.append(client)
    await client.connect()
    return client


async def frame_of(client: LessonClient, participant_id: str, source: str) -> Any:
    await client.wait_for(shows(participant_id, source))
    track = client.tracks[str(client.slot_of(participant_id, source))]
    return await asyncio.wait_for(track.recv(), 10)


async def test_media_reaches_subscribers_on_both_workers(
    sfu: RunningSfu, room: str, clients: list[LessonClient], pids: list[int]
) -> None:
    teacher = await join(sfu, room, clients, "teacher", Role.TEACHER)
    await teacher.start_media({"camera": camera(), "microphone": microphone()})
    students = [await join(sfu, room, clients, f"student{i}") for i in range(2)]
    # Each student publishes too: a stream from one worker to the other and to the
    # teacher in the main process.
    for student in students:
        await student.start_media({"camera": camera(VP8_LARGE), "microphone": microphone(120)})
    assert sorted(w["participants"] for w in workers_of(sfu)) == [1, 1]
    for student in students:
        frame = await frame_of(student, teacher.id, "camera")
        assert isinstance(frame, av.VideoFrame)
        assert (frame.width, frame.height) == (320, 240)
        assert isinstance(await frame_of(student, teacher.id, "microphone"), av.AudioFrame)
    first, second = students
    frame = await frame_of(second, first.id, "camera")
    assert (frame.width, frame.height) == (640, 480)
    frame = await frame_of(first, second.id, "camera")
    assert (frame.width, frame.height) == (640, 480)
    for student in students:
        assert isinstance(await frame_of(teacher, student.id, "camera"), av.VideoFrame)
    metrics = sfu.metrics()
    assert metrics['parta_sfu_packets_forwarded_total{kind="video"}'] > 0
    assert metrics['parta_sfu_packets_relayed_total{direction="to_workers"}'] > 0
    assert metrics['parta_sfu_packets_relayed_total{direction="to_main"}'] > 0
    assert metrics['parta_sfu_worker_up{worker="0"}'] == 1
    assert metrics['parta_sfu_worker_up{worker="1"}'] == 1
    guarded_and_alive(sfu, pids)


async def test_a_subscriber_joining_a_worker_gets_a_keyframe(
    sfu: RunningSfu, room: str, clients: list[LessonClient], pids: list[int]
) -> None:
    teacher = await join(sfu, room, clients, "teacher", Role.TEACHER)
    track = camera()
    await teacher.start_media({"camera": track})
    for i in range(WORKERS):
        requests = track.keyframe_requests
        student = await join(sfu, room, clients, f"late{i}")
        await student.start_media({})
        # The join's PLI travels worker → main → the teacher's encoder (rate-limited
        # in the main process; a held-back request goes out after the interval).
        await poll(functools.partial(asked_since, track, requests))
        assert isinstance(await frame_of(student, teacher.id, "camera"), av.VideoFrame)
    assert sorted(w["participants"] for w in workers_of(sfu)) == [1, 1]
    guarded_and_alive(sfu, pids)


async def test_a_selection_change_reaches_the_worker(
    sfu: RunningSfu, room: str, clients: list[LessonClient], pids: list[int]
) -> None:
    teacher = await join(sfu, room, clients, "teacher", Role.TEACHER)
    await teacher.start_media({"camera": camera()})
    speaker = await join(sfu, room, clients, "speaker")
    await speaker.start_media({"camera": camera(VP8_LARGE)}, video_slots=0, audio_slots=0)
    # One video slot: it shows the teacher's camera (moderators outrank students).
    listener = await join(sfu, room, clients, "listener")
    await listener.start_media({}, video_slots=1, audio_slots=0)
    [mid] = [m for m, t in listener.tracks.items() if t.kind == "video"]
    frame = await frame_of(listener, teacher.id, "camera")
    assert (frame.width, frame.height) == (320, 240)
    # The teacher turns the camera off: the slot switches to the student's camera,
    # which comes from another process and starts on a keyframe.
    mark = listener.mark()
    await teacher.send({"type": "mute_self", "source": "camera", "muted": True})
    await listener.wait_for(shows(speaker.id, "camera"), since=mark)
    assert listener.slot_of(speaker.id, "camera") == mid
    track = listener.tracks[mid]
    async with asyncio.timeout(20):
        while True:
            frame = await track.recv()
            assert isinstance(frame, av.VideoFrame)
            if (frame.width, frame.height) == (640, 480):
                break
    guarded_and_alive(sfu, pids)


async def test_mute_and_removal_are_enforced_for_worker_participants(
    sfu: RunningSfu, room: str, clients: list[LessonClient], pids: list[int]
) -> None:
    teacher = await join(sfu, room, clients, "teacher", Role.TEACHER)
    await teacher.start_media({}, decode=False)
    talker = await join(sfu, room, clients, "talker")
    await talker.start_media({"microphone": microphone(level=20)}, video_slots=0, audio_slots=0)
    listener = await join(sfu, room, clients, "listener")
    await listener.start_media({}, video_slots=0, decode=False)
    assert sorted(w["participants"] for w in workers_of(sfu)) == [1, 1]
    await listener.wait_for(shows(talker.id, "microphone"))
    await teacher.wait_for(shows(talker.id, "microphone"))
    heard = listener.counters[str(listener.slot_of(talker.id, "microphone"))]
    await poll(lambda: heard.packets > 10)
    mark = listener.mark()
    await teacher.send({"type": "mute", "participant_id": talker.id})
    await listener.wait_for(
        lambda m: (
            m["type"] == "slots"
            and {"participant_id": talker.id, "source": "microphone"}
            not in m["assignments"].values()
        ),
        since=mark,
    )
    dropped = sfu.metrics()["parta_sfu_audio_dropped_blocked_total"]
    await poll(lambda: sfu.metrics()["parta_sfu_audio_dropped_blocked_total"] > dropped + 10)
    stopped_at = heard.packets
    await asyncio.sleep(0.5)  # let any packet already in flight arrive
    assert heard.packets - stopped_at <= 2
    # Removal: the student's connection ends and its worker lets go of it.
    await teacher.send({"type": "remove", "participant_id": talker.id})
    assert (await talker.wait_for(lambda m: m["type"] == "error"))["code"] == "removed"
    assert await talker.wait_closed() == 4403
    await poll(lambda: sorted(w["participants"] for w in workers_of(sfu)) == [0, 1])
    again = LessonClient(sfu.url, room, token("talker", room=room))
    clients.append(again)
    with pytest.raises(Exception, match="banned"):
        await again.connect()
    guarded_and_alive(sfu, pids)


async def test_a_bad_offer_to_a_worker_is_refused_clearly(
    sfu: RunningSfu, room: str, clients: list[LessonClient], pids: list[int]
) -> None:
    student = await join(sfu, room, clients, "student")
    sdp = (
        "v=0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\nc=IN IP4 0.0.0.0\r\na=mid:0\r\n"
        "a=sendrecv\r\na=rtpmap:96 VP8/90000\r\n"
    )
    await student.send({"type": "offer", "sdp": sdp, "sources": {}, "request_id": "o"})
    error = await student.wait_for(lambda m: m.get("request_id") == "o")
    assert error["code"] == "bad_sdp"
    assert "ICE username fragment" in error["message"]
    assert "Не удалось установить медиасоединение" in error["message"]
    # The connection is placed on a worker (and stays there for a good offer later).
    assert sorted(w["participants"] for w in workers_of(sfu)) == [0, 1]
    guarded_and_alive(sfu, pids)


async def test_a_dying_worker_is_noticed_and_replaced(tmp_path: Path) -> None:
    made: list[LessonClient] = []
    room = "!dying:school.test"
    with running_sfu(tmp_path, workers=WORKERS) as sfu:
        try:
            teacher = await join(sfu, room, made, "teacher", Role.TEACHER)
            await teacher.start_media({"camera": camera()})
            students = [await join(sfu, room, made, f"s{i}") for i in range(2)]
            for student in students:
                await student.start_media({}, audio_slots=0, decode=False)
            for student in students:
                await student.wait_for(shows(teacher.id, "camera"))
            counters = [s.counters[str(s.slot_of(teacher.id, "camera"))] for s in students]
            await poll(lambda: all(c.frames > 5 for c in counters))
            victim = workers_of(sfu)[1]
            os.kill(victim["pid"], signal.SIGKILL)
            # Exactly one student was on that worker: it is told and disconnected.
            await poll(lambda: any(s.closed_with is not None for s in students))
            lost = [s for s in students if s.closed_with is not None]
            [survivor] = [s for s in students if s.closed_with is None]
            assert len(lost) == 1
            assert lost[0].closed_with == 4500
            assert lost[0].last("error") is not None
            assert lost[0].last("error")["code"] == "internal"  # type: ignore[index]
            # The other one goes on receiving; the main process serves on.
            counter = survivor.counters[str(survivor.slot_of(teacher.id, "camera"))]
            frames = counter.frames
            await poll(lambda: counter.frames > frames + 10)
            assert "exited with code -9" in sfu.log_text()
            await poll(
                lambda: (
                    all(w["alive"] for w in workers_of(sfu))
                    and workers_of(sfu)[1]["pid"] != victim["pid"]
                )
            )
            assert sfu.metrics()["parta_sfu_worker_restarts_total"] == 1
            # Someone joining now is served (by either worker).
            late = await join(sfu, room, made, "late")
            await late.start_media({}, audio_slots=0)
            assert isinstance(await frame_of(late, teacher.id, "camera"), av.VideoFrame)
            assert sfu.alive(), sfu.log_text()
        finally:
            for client in made:
                await client.close()
