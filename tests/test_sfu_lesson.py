"""Real aiortc peers through the real SFU process (over loopback), with the codec guard.

The SFU runs as ``python -m tests.sfu_guard``: the moment anything in it creates a
decoder, an encoder or aiortc's decoder thread, it exits with code 70. Every test ends by
checking it is still alive.
"""

import asyncio
import functools
import itertools
import struct
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import av
import pytest
from aiortc.codecs.vpx import VpxPayloadDescriptor
from aiortc.rtp import RtpPacket

from parta_common.roles import Role
from parta_common.tokens import sign_viewer_link
from sfu.client import LessonClient, LessonRefused
from sfu.synthetic import ClipTrack, encode_opus_clip, encode_vp8_clip
from tests.sfu_support import SECRET, RunningSfu, running_sfu, token

LIMIT = 4
VP8 = encode_vp8_clip()
OPUS = encode_opus_clip()


@pytest.fixture(scope="module")
def sfu(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningSfu]:
    directory: Path = tmp_path_factory.mktemp("sfu")
    with running_sfu(directory, lesson={"participants": LIMIT}, join_timeout=2.0) as running:
        yield running
        assert running.alive(), running.log_text()


@pytest.fixture
def room(request: pytest.FixtureRequest) -> str:
    return f"!{request.node.name}:school.test"


@pytest.fixture
async def clients() -> AsyncIterator[list[LessonClient]]:
    made: list[LessonClient] = []
    yield made
    for client in made:
        await client.close()


async def poll(condition: Callable[[], bool], within: float = 15.0) -> None:
    deadline = time.monotonic() + within
    while True:
        if condition():
            return
        if time.monotonic() > deadline:
            raise TimeoutError("condition not met in time")
        await asyncio.sleep(0.05)


def shows(participant_id: str, source: str) -> Callable[[dict[str, Any]], bool]:
    """A ``slots`` message that assigns ``participant_id``'s ``source`` somewhere."""

    def predicate(m: dict[str, Any]) -> bool:
        wanted = {"participant_id": participant_id, "source": source}
        return m["type"] == "slots" and wanted in m["assignments"].values()

    return predicate


def hand_of(participant_id: str, m: dict[str, Any]) -> bool:
    return m["type"] == "hands" and participant_id in [h["participant_id"] for h in m["queue"]]


def at_least(track: ClipTrack, requests: int) -> bool:
    return track.keyframe_requests >= requests


def camera() -> ClipTrack:
    return ClipTrack("video", VP8, 30)


def microphone(level: int = 30) -> ClipTrack:
    return ClipTrack("audio", OPUS, 50, audio_level=level)


async def join(
    sfu: RunningSfu, room: str, clients: list[LessonClient], user: str, role: Role = Role.STUDENT
) -> LessonClient:
    client = LessonClient(sfu.url, room, token(user, role, room=room))
    clients.append(client)
    await client.connect()
    return client


async def test_media_reaches_every_subscriber_and_the_sfu_never_codes(
    sfu: RunningSfu, room: str, clients: list[LessonClient]
) -> None:
    teacher = await join(sfu, room, clients, "teacher", Role.TEACHER)
    await teacher.start_media({"camera": camera(), "microphone": microphone()})
    students = [await join(sfu, room, clients, f"student{i}") for i in range(3)]
    for student in students:
        await student.start_media({"camera": camera(), "microphone": microphone(level=120)})
    for student in students:
        await student.wait_for(
            lambda m: (
                m["type"] == "slots"
                and {"participant_id": teacher.id, "source": "camera"} in m["assignments"].values()
            )
        )
        video = student.tracks[str(student.slot_of(teacher.id, "camera"))]
        frame = await asyncio.wait_for(video.recv(), 10)
        assert isinstance(frame, av.VideoFrame)
        assert (frame.width, frame.height) == (320, 240)
        audio = student.tracks[str(student.slot_of(teacher.id, "microphone"))]
        assert isinstance(await asyncio.wait_for(audio.recv(), 10), av.AudioFrame)
    # The teacher sees every student (small lesson: everyone receives everything).
    for student in students:
        await teacher.wait_for(shows(student.id, "camera"))
        video = teacher.tracks[str(teacher.slot_of(student.id, "camera"))]
        assert isinstance(await asyncio.wait_for(video.recv(), 10), av.VideoFrame)
    metrics = sfu.metrics()
    assert metrics['parta_sfu_packets_forwarded_total{kind="video"}'] > 0
    assert metrics['parta_sfu_packets_forwarded_total{kind="audio"}'] > 0
    assert sfu.alive(), sfu.log_text()


async def test_a_joining_subscriber_gets_a_keyframe_requested(
    sfu: RunningSfu, room: str, clients: list[LessonClient]
) -> None:
    teacher = await join(sfu, room, clients, "teacher", Role.TEACHER)
    track = camera()
    await teacher.start_media({"camera": track})
    metrics = sfu.metrics()
    before = metrics['parta_sfu_keyframe_requests_total{reason="join"}']
    before_subscriber = metrics['parta_sfu_keyframe_requests_total{reason="subscriber"}']
    for i in range(2):
        student = await join(sfu, room, clients, f"late{i}")
        await student.start_media({})
        await poll(functools.partial(at_least, track, i + 1))
        video = await student.wait_for(
            lambda m: m["type"] == "slots" and any(m["assignments"].values())
        )
        mid = next(mid for mid, v in video["assignments"].items() if v and v["source"] == "camera")
        frame = await asyncio.wait_for(student.tracks[mid].recv(), 10)
        assert isinstance(frame, av.VideoFrame)
    # Each join asked; a join within the rate limit of the previous request goes out
    # when the interval has passed, unless a subscriber's own PLI got there first.
    after = sfu.metrics()
    assert after['parta_sfu_keyframe_requests_total{reason="join"}'] >= before + 1
    assert (
        after['parta_sfu_keyframe_requests_total{reason="join"}']
        + after['parta_sfu_keyframe_requests_total{reason="subscriber"}']
        >= before + before_subscriber + 2
    )
    assert sfu.alive(), sfu.log_text()


async def test_participant_over_the_limit_is_refused_but_the_teacher_gets_in(
    sfu: RunningSfu, room: str, clients: list[LessonClient]
) -> None:
    for i in range(LIMIT):
        await join(sfu, room, clients, f"s{i}")
    extra = LessonClient(sfu.url, room, token("extra", room=room))
    clients.append(extra)
    with pytest.raises(LessonRefused) as refused:
        await extra.connect()
    assert refused.value.code == "lesson_full"
    assert f"{LIMIT} участников" in refused.value.error["message"]
    assert f"{LIMIT} participants" in refused.value.error["message"]
    # The page picks its language from the catalogue id and parameters.
    assert refused.value.error["org.parta.message"] == {
        "id": "lesson_error.lesson_full",
        "params": {"detail": "", "limit": LIMIT},
    }
    assert await extra.wait_closed() == 4429
    teacher = await join(sfu, room, clients, "teacher", Role.TEACHER)
    assert teacher.joined is not None
    assert teacher.joined["lesson"]["count"] == LIMIT + 1


@pytest.mark.parametrize(
    ("make_token", "code", "close_code"),
    [
        (lambda room: token("u", room=room, now=time.time() - 3600), "unauthorized", 4401),
        (
            lambda room: token("u", room=room, secret="another-secret-0123456789abcdef-0123456789"),
            "unauthorized",
            4401,
        ),
        (lambda room: token("u", room="!elsewhere:school.test"), "wrong_room", 4401),
        (lambda room: sign_viewer_link(SECRET, "bc1", "link1", 600), "unauthorized", 4401),
        (lambda room: "not.a.jwt", "unauthorized", 4401),
    ],
    ids=["expired", "forged", "wrong-room", "viewer-link", "garbage"],
)
async def test_bad_tokens_are_refused(
    sfu: RunningSfu,
    room: str,
    clients: list[LessonClient],
    make_token: Callable[[str], str],
    code: str,
    close_code: int,
) -> None:
    client = LessonClient(sfu.url, room, make_token(room))
    clients.append(client)
    with pytest.raises(LessonRefused) as refused:
        await client.connect()
    assert refused.value.code == code
    assert " / " in refused.value.error["message"]  # Russian / English
    assert await client.wait_closed() == close_code


async def test_silence_after_connecting_times_out(sfu: RunningSfu, room: str) -> None:
    async with aiohttp.ClientSession() as session:
        ws_url = sfu.url.replace("http", "ws") + f"/lesson/{room}/ws"
        async with session.ws_connect(ws_url) as ws:
            message = await ws.receive_json(timeout=10)
            assert message["code"] == "join_timeout"
            await ws.receive(timeout=10)
            assert ws.close_code == 4408


async def test_hands_queue_in_order_and_the_teacher_lowers_them(
    sfu: RunningSfu, room: str, clients: list[LessonClient]
) -> None:
    teacher = await join(sfu, room, clients, "teacher", Role.TEACHER)
    a, b, c = [await join(sfu, room, clients, name) for name in ("anna", "boris", "vera")]
    for student in (b, a, c):
        await student.send({"type": "raise_hand"})
        await teacher.wait_for(functools.partial(hand_of, student.id))
    hands = teacher.last("hands")
    assert hands is not None
    assert [h["participant_id"] for h in hands["queue"]] == [b.id, a.id, c.id]
    raised = [h["raised_at"] for h in hands["queue"]]
    assert raised == sorted(raised)
    # A student may not lower someone else's hand.
    await a.send({"type": "lower_hand", "participant_id": b.id, "request_id": "r1"})
    error = await a.wait_for(lambda m: m["type"] == "error" and m.get("request_id") == "r1")
    assert error["code"] == "forbidden"
    await teacher.send({"type": "lower_hand", "participant_id": a.id})
    await teacher.wait_for(
        lambda m: m["type"] == "hands" and [h["participant_id"] for h in m["queue"]] == [b.id, c.id]
    )
    await b.send({"type": "lower_hand"})
    await teacher.wait_for(
        lambda m: m["type"] == "hands" and [h["participant_id"] for h in m["queue"]] == [c.id]
    )
    await teacher.send({"type": "lower_all_hands"})
    await c.wait_for(lambda m: m["type"] == "hands" and m["queue"] == [])


async def test_mute_is_enforced_by_dropping_audio(
    sfu: RunningSfu, room: str, clients: list[LessonClient]
) -> None:
    teacher = await join(sfu, room, clients, "teacher", Role.TEACHER)
    await teacher.start_media({}, decode=False)
    student = await join(sfu, room, clients, "talker")
    await student.start_media({"microphone": microphone(level=20)})
    await teacher.wait_for(
        lambda m: (
            m["type"] == "slots"
            and {"participant_id": student.id, "source": "microphone"} in m["assignments"].values()
        )
    )
    counter = teacher.counters[str(teacher.slot_of(student.id, "microphone"))]
    await poll(lambda: counter.packets > 10)
    mark = teacher.mark()
    await teacher.send({"type": "mute", "participant_id": student.id})
    update = await student.wait_for(
        lambda m: (
            m["type"] == "participant_updated"
            and m["participant"]["id"] == student.id
            and m["participant"]["audio_blocked"]
        )
    )
    assert update["participant"]["audio_blocked"] is True
    await teacher.wait_for(
        lambda m: (
            m["type"] == "slots"
            and {"participant_id": student.id, "source": "microphone"}
            not in m["assignments"].values()
        ),
        since=mark,
    )
    dropped = sfu.metrics()["parta_sfu_audio_dropped_blocked_total"]
    await poll(lambda: sfu.metrics()["parta_sfu_audio_dropped_blocked_total"] > dropped + 10)
    stopped_at = counter.packets
    await asyncio.sleep(0.5)  # let any packet already in flight arrive
    assert counter.packets - stopped_at <= 2
    # A student cannot mute anyone; mute_all spares the teacher.
    await student.send({"type": "mute_all", "request_id": "m"})
    assert (await student.wait_for(lambda m: m.get("request_id") == "m"))["code"] == "forbidden"
    mark = teacher.mark()
    await teacher.send({"type": "unmute", "participant_id": student.id})
    await teacher.wait_for(
        lambda m: (
            m["type"] == "slots"
            and {"participant_id": student.id, "source": "microphone"} in m["assignments"].values()
        ),
        since=mark,
    )
    mid = str(teacher.slot_of(student.id, "microphone"))
    resumed = teacher.counters[mid].packets
    await poll(lambda: teacher.counters[mid].packets > resumed + 10)
    assert sfu.alive(), sfu.log_text()


async def test_removed_participant_cannot_come_back(
    sfu: RunningSfu, room: str, clients: list[LessonClient]
) -> None:
    teacher = await join(sfu, room, clients, "teacher", Role.TEACHER)
    old_token = token("rowdy", room=room)
    student = LessonClient(sfu.url, room, old_token)
    clients.append(student)
    await student.connect()
    other = await join(sfu, room, clients, "other")
    await other.send({"type": "remove", "participant_id": student.id, "request_id": "x"})
    assert (await other.wait_for(lambda m: m.get("request_id") == "x"))["code"] == "forbidden"
    await teacher.send({"type": "remove", "participant_id": student.id})
    error = await student.wait_for(lambda m: m["type"] == "error")
    assert error["code"] == "removed"
    assert await student.wait_closed() == 4403
    left = await teacher.wait_for(lambda m: m["type"] == "participant_left")
    assert left == {"type": "participant_left", "participant_id": student.id, "reason": "removed"}
    for attempt in (old_token, token("rowdy", room=room)):
        again = LessonClient(sfu.url, room, attempt)
        clients.append(again)
        with pytest.raises(LessonRefused) as refused:
            await again.connect()
        assert refused.value.code == "banned"


async def test_a_teacher_lets_a_removed_student_back_in(
    sfu: RunningSfu, room: str, clients: list[LessonClient]
) -> None:
    """A removal by mistake is undone: the teacher sees whom they removed and readmits."""
    teacher = await join(sfu, room, clients, "teacher", Role.TEACHER)
    student = await join(sfu, room, clients, "oops")
    other = await join(sfu, room, clients, "other")
    await teacher.send({"type": "remove", "participant_id": student.id})
    assert await student.wait_closed() == 4403
    listed = await teacher.wait_for(lambda m: m["type"] == "removed_list" and m["removed"])
    [removed] = listed["removed"]
    user_id = removed["user_id"]
    # Only a moderator may, and only someone removed.
    await other.send({"type": "readmit", "user_id": user_id, "request_id": "r"})
    assert (await other.wait_for(lambda m: m.get("request_id") == "r"))["code"] == "forbidden"
    await teacher.send({"type": "readmit", "user_id": "@nobody:s", "request_id": "n"})
    assert (await teacher.wait_for(lambda m: m.get("request_id") == "n"))["code"] == "not_found"
    mark = teacher.mark()
    await teacher.send({"type": "readmit", "user_id": user_id})
    await teacher.wait_for(lambda m: m["type"] == "removed_list" and m["removed"] == [], since=mark)
    back = LessonClient(sfu.url, room, token("oops", room=room))
    clients.append(back)
    assert (await back.connect())["type"] == "joined"


async def test_waiting_room_lock_and_screen_share_permission(
    sfu: RunningSfu, room: str, clients: list[LessonClient]
) -> None:
    teacher = await join(sfu, room, clients, "teacher", Role.TEACHER)
    await teacher.send({"type": "set_lesson", "waiting_room": True})
    await teacher.wait_for(lambda m: m["type"] == "lesson_updated" and m["lesson"]["waiting_room"])
    waiting = LessonClient(sfu.url, room, token("waiter", room=room))
    denied = LessonClient(sfu.url, room, token("denied", room=room))
    clients.extend((waiting, denied))
    assert (await waiting.connect())["type"] == "waiting_for_admission"
    assert (await denied.connect())["type"] == "waiting_for_admission"
    queue = await teacher.wait_for(lambda m: m["type"] == "waiting_room" and len(m["queue"]) == 2)
    waiter_id, denied_id = (p["id"] for p in queue["queue"])
    await teacher.send({"type": "admit", "participant_id": waiter_id})
    joined = await waiting.wait_for(lambda m: m["type"] == "joined")
    assert joined["you"] == waiter_id
    await teacher.send({"type": "deny", "participant_id": denied_id})
    assert (await denied.wait_for(lambda m: m["type"] == "error"))["code"] == "denied"
    # Locked: nobody new gets in, but a teacher does.
    await teacher.send({"type": "set_lesson", "locked": True, "waiting_room": False})
    await teacher.wait_for(lambda m: m["type"] == "lesson_updated" and m["lesson"]["locked"])
    late = LessonClient(sfu.url, room, token("late", room=room))
    clients.append(late)
    with pytest.raises(LessonRefused) as refused:
        await late.connect()
    assert refused.value.code == "lesson_locked"
    # A student's screen is refused until the teacher allows it.
    await waiting.start_media({"screen": camera()}, video_slots=1, audio_slots=0)
    error = await waiting.wait_for(lambda m: m["type"] == "error" and m.get("source") == "screen")
    assert error["code"] == "forbidden"
    await teacher.send({"type": "allow_screen", "participant_id": waiter_id, "allowed": True})
    update = await waiting.wait_for(
        lambda m: (
            m["type"] == "participant_updated"
            and m["participant"]["id"] == waiter_id
            and m["participant"]["may_share_screen"]
        )
    )
    assert update["participant"]["may_share_screen"] is True


async def test_turning_the_waiting_room_off_lets_those_waiting_in(
    sfu: RunningSfu, room: str, clients: list[LessonClient]
) -> None:
    teacher = await join(sfu, room, clients, "teacher", Role.TEACHER)
    await teacher.send({"type": "set_lesson", "waiting_room": True})
    await teacher.wait_for(lambda m: m["type"] == "lesson_updated" and m["lesson"]["waiting_room"])
    waiting = [LessonClient(sfu.url, room, token(f"w{i}", room=room)) for i in range(LIMIT)]
    clients.extend(waiting)
    for client in waiting:
        assert (await client.connect())["type"] == "waiting_for_admission"
    await teacher.wait_for(lambda m: m["type"] == "waiting_room" and len(m["queue"]) == LIMIT)
    mark = teacher.mark()
    await teacher.send({"type": "set_lesson", "waiting_room": False})
    # The lesson holds LIMIT with the teacher: all but the last one get in, in order.
    for client in waiting[:-1]:
        assert (await client.wait_for(lambda m: m["type"] == "joined"))["lesson"][
            "waiting_room"
        ] is False
    queue = await teacher.wait_for(lambda m: m["type"] == "waiting_room", since=mark)
    assert [p["user_id"] for p in queue["queue"]] == ["@w3:school.test"]
    assert waiting[-1].joined is None
    assert sfu.alive(), sfu.log_text()


def vp8_size(payload: bytes) -> tuple[int, int] | None:
    """(width, height) from a packet that starts a VP8 keyframe, else None."""
    descriptor, frame = VpxPayloadDescriptor.parse(payload)
    if not descriptor.partition_start or len(frame) < 10 or frame[0] & 0x01:
        return None
    assert frame[3:6] == b"\x9d\x01\x2a"
    width, height = struct.unpack_from("<HH", frame, 6)
    return width & 0x3FFF, height & 0x3FFF


async def test_a_slot_switch_continues_vp8_picture_ids(
    sfu: RunningSfu, room: str, clients: list[LessonClient]
) -> None:
    """One video slot shows three cameras in turn; PictureIDs count on without a jump.

    Each camera's aiortc encoder numbers its pictures from a random start; the cameras
    have different sizes, so the keyframes show whose pictures the slot carries."""
    clips = {
        size: encode_vp8_clip(frames=20, width=size[0], height=size[1])
        for size in ((320, 240), (160, 120), (240, 176))
    }
    viewer = await join(sfu, room, clients, "viewer")
    await viewer.start_media({}, video_slots=1, audio_slots=0, decode=False)
    [counter] = viewer.counters.values()
    record: list[RtpPacket] = []
    counter.record = record

    def frames_after(mark: int, frames: int) -> Callable[[], bool]:
        return lambda: sum(p.marker for p in record[mark:]) >= frames

    first = await join(sfu, room, clients, "first")
    await first.start_media({"camera": ClipTrack("video", clips[320, 240], 30)}, 0, 0)
    await viewer.wait_for(shows(first.id, "camera"))
    await poll(frames_after(0, 15))
    second = await join(sfu, room, clients, "second")
    await second.start_media({"camera": ClipTrack("video", clips[160, 120], 30)}, 0, 0)
    # The slot keeps the first camera (join order) until it goes away.
    await first.close()
    await viewer.wait_for(shows(second.id, "camera"))
    await poll(lambda: any(vp8_size(p.payload) == (160, 120) for p in record))
    await poll(frames_after(len(record), 15))
    # A teacher's camera outranks a student's.
    teacher = await join(sfu, room, clients, "teacher", Role.TEACHER)
    await teacher.start_media({"camera": ClipTrack("video", clips[240, 176], 30)}, 0, 0)
    await viewer.wait_for(shows(teacher.id, "camera"))
    await poll(lambda: any(vp8_size(p.payload) == (240, 176) for p in record))
    await poll(frames_after(len(record), 15))

    # In sequence order (duplicates, e.g. NACK answers, once).
    by_seq: dict[int, RtpPacket] = {}
    base = record[0].sequence_number
    position = 0
    for packet in record:
        delta = (packet.sequence_number - base) % 65536
        position += delta - 65536 if delta >= 32768 else delta
        base = packet.sequence_number
        by_seq.setdefault(position, packet)
    ordered = sorted(by_seq.items())
    sizes = [size for _, p in ordered if (size := vp8_size(p.payload)) is not None]
    changes = [size for size, before in zip(sizes, [None, *sizes], strict=False) if size != before]
    assert changes == [(320, 240), (160, 120), (240, 176)], changes
    for (seq_a, a), (seq_b, b) in itertools.pairwise(ordered):
        id_a = VpxPayloadDescriptor.parse(a.payload)[0].picture_id
        id_b = VpxPayloadDescriptor.parse(b.payload)[0].picture_id
        assert id_a is not None and id_b is not None
        step = (id_b - id_a) % 32768
        if b.timestamp == a.timestamp:
            assert step == 0, (seq_a, id_a, seq_b, id_b)
        elif seq_b == seq_a + 1:
            assert step == 1, (seq_a, id_a, seq_b, id_b)
        else:  # packets lost on the way: at most one picture per missing packet
            assert 1 <= step <= seq_b - seq_a, (seq_a, id_a, seq_b, id_b)
    assert sfu.alive(), sfu.log_text()
