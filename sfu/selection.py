"""Which published streams each subscriber receives, in which slot (pure logic).

Video: every screen share, then moderators' cameras, then the cameras of the most
recent speakers (last-N), then other cameras by join order. Audio: moderators'
microphones, then the loudest others (loudest-N); blocked microphones never. A
subscriber never receives itself, and a stream keeps its slot while it stays selected,
so tiles do not jump around.
"""

from collections.abc import Mapping, Sequence

import attrs

from sfu.sources import Source, StreamKey


@attrs.frozen
class Candidate:
    """What selection needs to know about one published stream."""

    key: StreamKey
    moderator: bool
    join_order: int
    # When the publisher last spoke (monotonic seconds), 0 if never.
    last_spoke: float = 0.0
    loudness: float = 0.0
    blocked: bool = False
    muted: bool = False


def rank_video(candidates: Sequence[Candidate], last_n: int) -> list[StreamKey]:
    """Video streams by priority, for all subscribers alike."""
    videos = [c for c in candidates if c.key.source.kind == "video" and not c.muted]
    screens = sorted((c for c in videos if c.key.source is Source.SCREEN), key=_by_join)
    cameras = [c for c in videos if c.key.source is Source.CAMERA]
    moderators = sorted((c for c in cameras if c.moderator), key=_by_join)
    others = [c for c in cameras if not c.moderator]
    speakers = sorted((c for c in others if c.last_spoke > 0), key=lambda c: -c.last_spoke)
    recent = speakers[:last_n]
    rest = sorted((c for c in others if c not in recent), key=_by_join)
    return [c.key for c in (*screens, *moderators, *recent, *rest)]


def rank_audio(candidates: Sequence[Candidate], loudest_n: int) -> list[StreamKey]:
    """Audio streams by priority; only moderators and the loudest N others."""
    audios = [c for c in candidates if c.key.source.kind == "audio" and not c.blocked]
    moderators = sorted((c for c in audios if c.moderator), key=_by_join)
    others = sorted(
        (c for c in audios if not c.moderator and not c.muted),
        key=lambda c: (-c.loudness, c.join_order),
    )
    return [c.key for c in (*moderators, *others[:loudest_n])]


def assign(
    ranked: Sequence[StreamKey],
    subscriber: str,
    slots: Sequence[str],
    previous: Mapping[str, StreamKey | None],
) -> dict[str, StreamKey | None]:
    """Fill ``slots`` (mids) for ``subscriber`` from ``ranked``, keeping stable slots."""
    wanted = [k for k in ranked if k.participant_id != subscriber][: len(slots)]
    wanted_set = set(wanted)
    result: dict[str, StreamKey | None] = {}
    placed: set[StreamKey] = set()
    for mid in slots:
        key = previous.get(mid)
        if key is not None and key in wanted_set and key not in placed:
            result[mid] = key
            placed.add(key)
        else:
            result[mid] = None
    queue = [k for k in wanted if k not in placed]
    for mid in slots:
        if result[mid] is None and queue:
            result[mid] = queue.pop(0)
    return result


def _by_join(c: Candidate) -> int:
    return c.join_order
