"""Last-N video and loudest-N audio, and stable slot assignment."""

from sfu.selection import Candidate, assign, rank_audio, rank_video
from sfu.sources import Source, StreamKey


def cam(
    pid: str, order: int, moderator: bool = False, spoke: float = 0.0, muted: bool = False
) -> Candidate:
    return Candidate(StreamKey(pid, Source.CAMERA), moderator, order, last_spoke=spoke, muted=muted)


def mic(
    pid: str, order: int, loud: float, moderator: bool = False, blocked: bool = False
) -> Candidate:
    return Candidate(
        StreamKey(pid, Source.MICROPHONE), moderator, order, loudness=loud, blocked=blocked
    )


def screen(pid: str, order: int) -> Candidate:
    return Candidate(StreamKey(pid, Source.SCREEN), False, order)


def keys(*pairs: str) -> list[StreamKey]:
    out = []
    for pair in pairs:
        pid, source = pair.split(":")
        out.append(StreamKey(pid, Source(source)))
    return out


def test_video_order_screen_teacher_recent_speakers_then_join_order() -> None:
    candidates = [
        cam("s1", 2),
        cam("s2", 3, spoke=10.0),
        cam("s3", 4, spoke=30.0),
        cam("s4", 5, spoke=20.0),
        cam("t", 1, moderator=True),
        screen("s5", 6),
        cam("s6", 7, muted=True),
    ]
    ranked = rank_video(candidates, last_n=2)
    assert ranked == keys(
        "s5:screen", "t:camera", "s3:camera", "s4:camera", "s1:camera", "s2:camera"
    )


def test_audio_teacher_then_loudest_n_never_blocked() -> None:
    candidates = [
        mic("t", 1, 0.0, moderator=True),
        mic("s1", 2, 40.0),
        mic("s2", 3, 90.0),
        mic("s3", 4, 95.0, blocked=True),
        mic("s4", 5, 80.0),
    ]
    assert rank_audio(candidates, loudest_n=2) == keys(
        "t:microphone", "s2:microphone", "s4:microphone"
    )


def test_assignment_skips_self_and_keeps_slots_stable() -> None:
    ranked = keys("t:camera", "a:camera", "b:camera", "c:camera")
    first = assign(ranked, "a", ["0", "1", "2"], {})
    assert first == dict(
        zip(["0", "1", "2"], keys("t:camera", "b:camera", "c:camera"), strict=True)
    )
    # b stops being selected, d comes in: d takes b's slot, others stay put.
    ranked = keys("t:camera", "d:camera", "c:camera")
    second = assign(ranked, "a", ["0", "1", "2"], first)
    assert second == {
        "0": StreamKey("t", Source.CAMERA),
        "1": StreamKey("d", Source.CAMERA),
        "2": StreamKey("c", Source.CAMERA),
    }
    # Fewer streams than slots: the rest carry nothing.
    assert assign(keys("t:camera"), "a", ["0", "1"], second) == {
        "0": StreamKey("t", Source.CAMERA),
        "1": None,
    }
