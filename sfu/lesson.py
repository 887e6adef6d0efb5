"""A lesson: its participants, its classroom state, and the media between them.

Signalling messages arrive here already parsed (``sfu.signalling``); decisions come from
``sfu.classroom`` and ``sfu.selection``; packets move in ``sfu.forwarding``. This class
ties them together and tells everyone what changed.

Longer than 600 lines because this is the one object that holds a live lesson's state;
what can be decided apart from it already is (classroom, selection, forwarding).
"""

import asyncio
import functools
import logging
import math
import time
from collections.abc import Callable
from typing import Any

import attrs
from aiortc import RTCRtpTransceiver
from aiortc.rtcrtpparameters import RTCRtpReceiveParameters, RTCRtpSendParameters
from aiortc.rtp import RtpPacket

from parta_common.tokens import LEEWAY, MEDIA_TOKEN_TTL, MediaClaims
from sfu.aiortc_hooks import RtpWriter, hook_receiver, hook_sender, sender_ssrc
from sfu.attendance import AttendanceEvent, AttendanceKind, AttendanceSink, LeaveReason
from sfu.classroom import (
    Action,
    BanList,
    HandQueue,
    Outcome,
    decide_admission,
    decide_admit_from_waiting,
    may,
    may_publish,
    may_share_screen,
)
from sfu.config import SfuConfig
from sfu.errors import LessonError
from sfu.forwarding import PacketWriter, PublishedStream, Slot
from sfu.metrics import ForwardingStats
from sfu.participant import Connection, Participant
from sfu.peer import Answer, answer_offer, new_peer_connection
from sfu.selection import Candidate, assign, rank_audio, rank_video
from sfu.sources import Source, StreamKey
from sfu.worker_pool import RemotePeer, RemoteRtcpWriter, RemoteSlot, WorkerPool

logger = logging.getLogger(__name__)

PROTOCOL = 1
# How long a removed user stays banned after the lesson empties: any token issued
# before the removal has run out by then.
BAN_AFTER_LESSON = MEDIA_TOKEN_TTL + 2 * LEEWAY


@attrs.define
class LessonSettings:
    locked: bool = False
    waiting_room: bool = False
    students_may_share_screen: bool = False


class Lesson:
    def __init__(
        self,
        room_id: str,
        config: SfuConfig,
        bans: BanList,
        stats: ForwardingStats,
        attendance: AttendanceSink,
        clock: Callable[[], float] = time.time,
        workers: WorkerPool | None = None,
    ) -> None:
        self.room_id = room_id
        self.settings = LessonSettings()
        self.participants: dict[str, Participant] = {}
        self.waiting: dict[str, Participant] = {}
        # Removed from this lesson (user_id → name), whom a moderator may let back in.
        self.removed: dict[str, str] = {}
        self.hands = HandQueue()
        self._config = config
        self._bans = bans
        self._stats = stats
        self._attendance = attendance
        self._clock = clock
        self._workers = workers
        self._next_id = 1
        self._speakers: list[str] = []
        self._tasks: set[asyncio.Task[None]] = set()

    # -- joining and leaving ---------------------------------------------------------

    @property
    def empty(self) -> bool:
        return not self.participants and not self.waiting

    def join(self, claims: MediaClaims, connection: Connection) -> Participant:
        """Admit, seat in the waiting room, or raise a fatal :class:`LessonError`."""
        admission = decide_admission(
            moderator=claims.grants.moderate,
            banned=self._bans.is_banned(self.room_id, claims.user_id, self._clock()),
            locked=self.settings.locked,
            waiting_room=self.settings.waiting_room,
            count=len(self.participants),
            limit=self._config.lesson.participants,
        )
        if admission.outcome is Outcome.REFUSE:
            assert admission.code is not None
            raise LessonError(admission.code, limit=self._config.lesson.participants)
        participant = Participant(f"p{self._next_id}", claims, connection, self._next_id)
        self._next_id += 1
        if admission.outcome is Outcome.WAIT:
            self.waiting[participant.id] = participant
            participant.send({"type": "waiting_for_admission"})
            self._send_waiting_room()
        else:
            self._admit(participant)
        return participant

    def _admit(self, participant: Participant) -> None:
        self.waiting.pop(participant.id, None)
        participant.admitted = True
        self.participants[participant.id] = participant
        # The join is kept before anyone is told of it (see AttendanceSink).
        self._report(participant, AttendanceKind.JOINED, None)
        lesson = self._lesson_object()
        limits = self._config.lesson
        participant.send(
            {
                "type": "joined",
                "protocol": PROTOCOL,
                "you": participant.id,
                "participants": [self._describe(p) for p in self.participants.values()],
                "lesson": lesson,
                "hands": self._hands_list(),
                "slots": {
                    "video": limits.pinned_video + limits.last_n,
                    "audio": limits.pinned_audio + limits.loudest_n,
                },
                "ice_servers": [attrs.asdict(s) for s in self._config.ice_servers],
            }
        )
        if participant.moderator and self.waiting:
            self._send_waiting_room(only=participant)
        if participant.moderator and self.removed:
            self._send_removed(only=participant)
        if participant.moderator:
            self._send_restrictions(only=participant)
        elif participant.claims.restrictions:
            self._send_restrictions()
        self._broadcast(
            {"type": "participant_joined", "participant": self._describe(participant)},
            exclude=participant,
        )
        self._broadcast({"type": "lesson_updated", "lesson": lesson}, exclude=participant)
        logger.info(
            "%s joined lesson %s as %s (%s)",
            participant.user_id,
            self.room_id,
            participant.id,
            participant.claims.role,
        )

    async def leave(self, participant: Participant, reason: LeaveReason) -> None:
        if participant.gone:
            return
        participant.gone = True
        if self.waiting.pop(participant.id, None) is not None:
            self._send_waiting_room()
        if self.participants.pop(participant.id, None) is not None:
            if self.hands.lower(participant.id):
                self._send_hands()
            for stream in participant.published.values():
                stream.close()
            for slot in participant.slots.values():
                slot.close()
            self._reselect()
            self._broadcast(
                {"type": "participant_left", "participant_id": participant.id, "reason": reason}
            )
            self._broadcast({"type": "lesson_updated", "lesson": self._lesson_object()})
            self._report(participant, AttendanceKind.LEFT, reason)
            logger.info("%s left lesson %s (%s)", participant.user_id, self.room_id, reason)
        if participant.remote is not None:
            participant.remote.close()
        if participant.pc is not None:
            await participant.pc.close()
        if self.empty:
            self._bans.settle_room(self.room_id, self._clock() + BAN_AFTER_LESSON)

    async def close(self) -> None:
        for participant in [*self.participants.values(), *self.waiting.values()]:
            participant.connection.close(1001)
            await self.leave(participant, LeaveReason.SERVER_STOPPED)
        for task in list(self._tasks):
            task.cancel()

    # -- requests --------------------------------------------------------------------

    async def handle(self, participant: Participant, message: dict[str, Any]) -> None:
        """One request from ``participant`` (already shape-checked by signalling)."""
        kind = message["type"]
        if not participant.admitted:
            if kind == "leave":
                await self.leave(participant, LeaveReason.LEFT)
                return
            raise LessonError("forbidden", detail="waiting for admission")
        if kind == "offer":
            await self._offer(participant, message["sdp"], message["sources"], message)
        elif kind == "mute_self":
            self._mute_self(participant, Source(message["source"]), message["muted"])
        elif kind == "leave":
            participant.connection.close(1000)
            await self.leave(participant, LeaveReason.LEFT)
        else:
            await self._classroom(participant, Action(kind), message)

    async def _classroom(self, actor: Participant, action: Action, message: dict[str, Any]) -> None:
        target_id: str | None = message.get("participant_id")
        target = None
        if target_id is not None:
            pool = self.waiting if action in (Action.ADMIT, Action.DENY) else self.participants
            target = pool.get(target_id)
        if not may(
            action,
            actor_id=actor.id,
            actor_moderator=actor.moderator,
            target_id=target_id,
            target_moderator=target.moderator if target is not None else False,
        ):
            raise LessonError("forbidden", detail=str(action))
        if target_id is not None and target is None:
            raise LessonError("not_found", participant_id=target_id)
        now_ms = int(self._clock() * 1000)
        if action is Action.RAISE_HAND:
            if self.hands.raise_hand(actor.id, now_ms):
                self._send_hands()
        elif action is Action.LOWER_HAND:
            if self.hands.lower(target.id if target else actor.id):
                self._send_hands()
        elif action is Action.LOWER_ALL_HANDS:
            if self.hands.clear():
                self._send_hands()
        elif action in (Action.MUTE, Action.UNMUTE):
            assert target is not None
            self._block_audio(target, action is Action.MUTE)
        elif action is Action.MUTE_ALL:
            for p in list(self.participants.values()):
                if not p.moderator:
                    self._block_audio(p, True)
        elif action is Action.REMOVE:
            assert target is not None
            await self._remove(target)
        elif action is Action.ALLOW_SCREEN:
            assert target is not None
            target.screen_allowed = bool(message["allowed"])
            self._enforce_screen(target)
            self._broadcast_participant(target)
        elif action is Action.SET_LESSON:
            self._set_lesson(message)
        elif action is Action.ADMIT:
            assert target is not None
            refusal = decide_admit_from_waiting(
                locked=self.settings.locked,
                count=len(self.participants),
                limit=self._config.lesson.participants,
            )
            if refusal is not None:
                raise LessonError(refusal, limit=self._config.lesson.participants)
            self._admit(target)
            self._send_waiting_room()
        elif action is Action.READMIT:
            # A removal by mistake: the person may come back (with any valid token).
            user_id = str(message["user_id"])
            if self.removed.pop(user_id, None) is None:
                raise LessonError("not_found", user_id=user_id)
            self._bans.unban(self.room_id, user_id)
            self._send_removed()
            logger.info("%s may come back to lesson %s", user_id, self.room_id)
        elif action is Action.DENY:
            assert target is not None
            error = LessonError("denied")
            target.send(error.payload())
            target.connection.close(error.kind.close_code or 4403)
            await self.leave(target, LeaveReason.REMOVED)

    def _block_audio(self, target: Participant, blocked: bool) -> None:
        if target.audio_blocked == blocked:
            return
        target.audio_blocked = blocked
        for stream in target.published.values():
            if stream.kind == "audio":
                stream.blocked = blocked
                stream.loudness = 0.0
        self._reselect()
        self._broadcast_participant(target)

    async def _remove(self, target: Participant) -> None:
        self._bans.ban(self.room_id, target.user_id, math.inf)
        self.removed[target.user_id] = target.claims.display_name or target.user_id
        self._send_removed()
        error = LessonError("removed")
        for p in [*self.participants.values(), *self.waiting.values()]:
            if p.user_id == target.user_id:
                p.send(error.payload())
                p.connection.close(error.kind.close_code or 4403)
                await self.leave(p, LeaveReason.REMOVED)
        logger.info("%s was removed from lesson %s", target.user_id, self.room_id)

    def _set_lesson(self, message: dict[str, Any]) -> None:
        for name in ("locked", "waiting_room", "students_may_share_screen"):
            if name in message:
                setattr(self.settings, name, bool(message[name]))
        if self.waiting and not self.settings.waiting_room and not self.settings.locked:
            # Newcomers now walk in, so those already waiting do too (up to the limit).
            limit = self._config.lesson.participants
            for waiting in list(self.waiting.values()):
                if decide_admit_from_waiting(
                    locked=False, count=len(self.participants), limit=limit
                ):
                    break
                self._admit(waiting)
            self._send_waiting_room()
        for p in list(self.participants.values()):
            self._enforce_screen(p)
        self._broadcast({"type": "lesson_updated", "lesson": self._lesson_object()})
        for p in self.participants.values():
            self._broadcast_participant(p)

    def _may_share_screen(self, p: Participant) -> bool:
        return may_share_screen(
            p.claims.grants, self.settings.students_may_share_screen, p.screen_allowed
        )

    def _enforce_screen(self, p: Participant) -> None:
        if Source.SCREEN in p.active and not self._may_share_screen(p):
            mid = p.active.pop(Source.SCREEN)
            stream = p.published.get(mid)
            if stream is not None:
                stream.close()
            p.send({"type": "screen_share_stopped", "reason": "forbidden"})
            self._reselect()

    def _mute_self(self, p: Participant, source: Source, muted: bool) -> None:
        p.muted_self[source] = muted
        self._reselect()
        self._broadcast_participant(p)

    # -- media -----------------------------------------------------------------------

    async def _offer(
        self, p: Participant, sdp: str, sources: dict[str, str], message: dict[str, Any]
    ) -> None:
        permitted = frozenset(
            s for s in Source if may_publish(s, p.claims.grants, self._may_share_screen(p))
        )
        if p.pc is None and p.remote is None and self._workers is not None and not p.moderator:
            # Students' connections go to the least-loaded worker; moderators' stay here
            # (their streams go to everyone). None: no worker is up, so here too.
            p.remote = self._workers.place(
                functools.partial(self._remote_published, p), functools.partial(self._lost, p)
            )
            if p.remote is not None:
                logger.info(
                    "%s (%s) is served by worker %d", p.user_id, p.id, p.remote.worker.index
                )
        if p.remote is not None:
            answer = await self._offer_remote(p, p.remote, sdp, sources, permitted)
        else:
            answer = await self._offer_local(p, sdp, sources, permitted)
        if answer is None:
            return
        reply: dict[str, Any] = {"type": "answer", "sdp": answer.sdp}
        if "request_id" in message:
            reply["request_id"] = message["request_id"]
        p.send(reply)
        for source in answer.forbidden:
            p.send(LessonError("forbidden", detail=str(source), source=str(source)).payload())
        self._reselect(force_notify=p)
        self._broadcast_participant(p)

    async def _offer_local(
        self, p: Participant, sdp: str, sources: dict[str, str], permitted: frozenset[Source]
    ) -> Answer:
        if p.pc is None:
            p.pc = new_peer_connection(self._config.ice_servers)
        return await answer_offer(
            p.pc,
            sdp,
            sources,
            permitted,
            functools.partial(self._hook_publisher, p),
            functools.partial(self._hook_slot, p),
            functools.partial(self._now_publishing, p),
        )

    async def _offer_remote(
        self,
        p: Participant,
        remote: RemotePeer,
        sdp: str,
        sources: dict[str, str],
        permitted: frozenset[Source],
    ) -> Answer | None:
        result = await remote.offer(sdp, sources, permitted)
        if p.gone:
            return None
        for mid, kind in result["slots"]:
            if mid not in p.slots:
                p.slots[mid] = RemoteSlot(remote, mid, kind)
                p.assignments[mid] = None
        publishing = {Source(s): mid for s, mid in result["publishing"].items()}
        self._now_publishing(p, publishing)
        return Answer(result["sdp"], publishing, [Source(s) for s in result["forbidden"]])

    def _now_publishing(self, p: Participant, publishing: dict[Source, str]) -> None:
        for source, mid in list(p.active.items()):
            if publishing.get(source) != mid and mid in p.published:
                p.published[mid].close()
        p.active = publishing

    def _publish(
        self,
        p: Participant,
        mid: str,
        kind: str,
        parameters: RTCRtpReceiveParameters,
        writer: PacketWriter,
    ) -> Callable[[RtpPacket], None]:
        """A stream ``p`` started sending on ``mid``; what takes its packets."""
        stream = PublishedStream(
            kind,
            parameters,
            writer,
            p.rtcp_ssrc,
            self._stats,
            self._config.keyframe_request_interval,
        )
        stream.blocked = kind == "audio" and p.audio_blocked
        p.published[mid] = stream
        self._reselect()

        def on_rtp(packet: RtpPacket) -> None:
            stream = p.published.get(mid)
            if stream is None:
                return
            try:
                stream.on_rtp(packet)
            except Exception:
                # Never let one bad packet or slot end the publisher's transport.
                if not stream.failed:
                    logger.exception("forwarding %s's %s (%s) failed", p.user_id, mid, kind)
                stream.failed = True

        return on_rtp

    def _hook_publisher(
        self, p: Participant, transceiver: RTCRtpTransceiver, source: Source
    ) -> None:
        mid = transceiver.mid
        assert mid is not None
        receiver = transceiver.receiver
        route: list[Callable[[RtpPacket], None]] = []

        def on_start(parameters: RTCRtpReceiveParameters) -> None:
            route.append(
                self._publish(
                    p,
                    mid,
                    transceiver.kind,
                    parameters,
                    RtpWriter.shared(receiver.transport, self._stats),
                )
            )

        def on_rtp(packet: RtpPacket) -> None:
            if route:
                route[0](packet)

        hook_receiver(receiver, on_start, on_rtp)

    def _remote_published(
        self,
        p: Participant,
        mid: str,
        kind: str,
        parameters: RTCRtpReceiveParameters,
        remote: RemotePeer,
    ) -> Callable[[RtpPacket], None] | None:
        """A worker says ``p`` started sending on ``mid``."""
        if p.gone or p.remote is not remote:
            return None
        return self._publish(p, mid, kind, parameters, RemoteRtcpWriter(remote))

    def _lost(self, p: Participant) -> None:
        """``p``'s worker died: the page reconnects (and lands on a live worker)."""
        if p.gone:
            return
        error = LessonError("internal")
        p.send(error.payload())
        p.connection.close(error.kind.close_code or 4500)

    def _hook_slot(self, p: Participant, transceiver: RTCRtpTransceiver) -> None:
        mid = transceiver.mid
        assert mid is not None
        if mid in p.slots:
            return
        sender = transceiver.sender
        slot = Slot(mid, transceiver.kind, sender_ssrc(sender), self._stats)
        p.slots[mid] = slot
        p.assignments[mid] = None

        def on_start(parameters: RTCRtpSendParameters) -> None:
            slot.start(parameters, RtpWriter.shared(sender.transport, self._stats))

        hook_sender(sender, on_start, slot.on_rtcp)

    # -- selection -------------------------------------------------------------------

    def _candidates(self) -> list[Candidate]:
        result = []
        for p in self.participants.values():
            for source, mid in p.active.items():
                stream = p.published.get(mid)
                if stream is None or stream.closed:
                    continue
                result.append(
                    Candidate(
                        key=StreamKey(p.id, source),
                        moderator=p.moderator,
                        join_order=p.join_order,
                        last_spoke=_last_spoke(p),
                        loudness=stream.loudness,
                        blocked=stream.blocked,
                        muted=p.muted_self.get(source, False),
                    )
                )
        return result

    def _reselect(self, force_notify: Participant | None = None) -> None:
        """Recompute what every subscriber receives; tell those whose slots changed."""
        candidates = self._candidates()
        limits = self._config.lesson
        ranked = {
            "video": rank_video(candidates, limits.last_n),
            "audio": rank_audio(candidates, limits.loudest_n),
        }
        for p in self.participants.values():
            if not p.slots or not p.claims.grants.subscribe:
                continue
            changed = False
            for kind, keys in ranked.items():
                mids = p.slot_mids(kind)
                new = assign(keys, p.id, mids, p.assignments)
                for mid, key in new.items():
                    if p.assignments.get(mid) != key:
                        changed = True
                        p.assignments[mid] = key
                        p.slots[mid].assign(self._stream(key))
            if changed or p is force_notify:
                p.send({"type": "slots", "assignments": _assignments(p)})
        for p in self.participants.values():
            if p.remote is not None:
                p.remote.update_relays(p.published)

    def _stream(self, key: StreamKey | None) -> PublishedStream | None:
        if key is None:
            return None
        p = self.participants.get(key.participant_id)
        return p.stream(key.source) if p is not None else None

    def tick(self, reports: bool) -> None:
        """Periodic work: reselection, speakers; with ``reports``, SRs and REMBs."""
        self._reselect()
        speakers = sorted(
            (
                (stream.loudness, p.id)
                for p in self.participants.values()
                if (stream := p.stream(Source.MICROPHONE)) is not None and stream.speaking
            ),
            reverse=True,
        )
        ids = [pid for _, pid in speakers]
        if ids != self._speakers:
            self._speakers = ids
            self._broadcast({"type": "speakers", "participant_ids": ids})
        if reports:
            for p in self.participants.values():
                for slot in p.slots.values():
                    slot.sender_report()
                    slot.remind()
                for source, mid in p.active.items():
                    stream = p.published.get(mid)
                    if stream is not None:
                        bitrate = (
                            self._config.screen_bitrate
                            if source is Source.SCREEN
                            else self._config.camera_bitrate
                        )
                        stream.tick(bitrate)

    # -- telling people ----------------------------------------------------------------

    def _describe(self, p: Participant) -> dict[str, Any]:
        body = p.describe(self._may_share_screen)
        body["hand_raised"] = p.id in self.hands
        return body

    def _lesson_object(self) -> dict[str, Any]:
        return {
            "room_id": self.room_id,
            "locked": self.settings.locked,
            "waiting_room": self.settings.waiting_room,
            "students_may_share_screen": self.settings.students_may_share_screen,
            "limit": self._config.lesson.participants,
            "count": len(self.participants),
        }

    def _hands_list(self) -> list[dict[str, Any]]:
        return [{"participant_id": pid, "raised_at": at} for pid, at in self.hands]

    def _send_hands(self) -> None:
        self._broadcast({"type": "hands", "queue": self._hands_list()})
        for p in self.participants.values():
            p.send({"type": "participant_updated", "participant": self._describe(p)})

    def _send_waiting_room(self, only: Participant | None = None) -> None:
        queue = [self._describe(p) for p in self.waiting.values()]
        targets = [only] if only else [p for p in self.participants.values() if p.moderator]
        for p in targets:
            p.send({"type": "waiting_room", "queue": queue})

    def _send_removed(self, only: Participant | None = None) -> None:
        removed = [{"user_id": u, "name": n} for u, n in self.removed.items()]
        targets = [only] if only else [p for p in self.participants.values() if p.moderator]
        for p in targets:
            p.send({"type": "removed_list", "removed": removed})

    def _send_restrictions(self, only: Participant | None = None) -> None:
        """Why some students' camera and microphone are off (``no_video_consent``): for
        moderators only — a child's consent is not their classmates' business."""
        restricted = [
            {"participant_id": p.id, "reasons": list(p.claims.restrictions)}
            for p in self.participants.values()
            if p.claims.restrictions
        ]
        targets = [only] if only else [p for p in self.participants.values() if p.moderator]
        for p in targets:
            p.send({"type": "restrictions", "participants": restricted})

    def _broadcast_participant(self, p: Participant) -> None:
        self._broadcast({"type": "participant_updated", "participant": self._describe(p)})

    def _broadcast(self, message: dict[str, Any], exclude: Participant | None = None) -> None:
        for p in self.participants.values():
            if p is not exclude:
                p.send(message)

    def _report(self, p: Participant, kind: AttendanceKind, reason: LeaveReason | None) -> None:
        event = AttendanceEvent(
            kind=kind,
            room_id=self.room_id,
            user_id=p.user_id,
            display_name=p.claims.display_name,
            role=p.claims.role,
            participant_id=p.id,
            at=self._clock(),
            reason=reason,
        )
        # Kept now, before the person or anyone else hears of it; delivered in the background.
        try:
            kept = self._attendance.keep(event)
        except Exception:
            logger.exception("attendance report for %s not kept", event.user_id)
            return
        task = asyncio.get_running_loop().create_task(self._deliver(event, kept))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _deliver(self, event: AttendanceEvent, kept: int) -> None:
        try:
            await self._attendance.deliver(kept)
        except Exception:
            logger.exception("attendance report for %s failed", event.user_id)


def _last_spoke(p: Participant) -> float:
    stream = p.stream(Source.MICROPHONE)
    return stream.last_spoke if stream is not None else 0.0


def _assignments(p: Participant) -> dict[str, Any]:
    return {
        mid: None if key is None else {"participant_id": key.participant_id, "source": key.source}
        for mid, key in p.assignments.items()
    }
