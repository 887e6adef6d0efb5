"""The poll routes (``PollsApi``; ``ContentApi`` serves them)."""

import io
import secrets
from typing import TYPE_CHECKING, Any

from synapse.module_api import SynapseRequest

from parta_common import events

from .. import query
from ..errors import bad_json, conflict, forbidden, not_found
from ..http import json_body, requester_id
from . import polls as counting
from . import store as db
from . import texts
from .rules import MANAGERS, STAFF
from .sanitize import SafeCsvWriter

if TYPE_CHECKING:
    pass

from .events import poll_notice_content, poll_start_content
from .handlers import (
    NEW_POLL_BODY,
    VOTE_BODY,
    ContentHandlers,
    _bad_param,
    _new,
)


class PollsApi(ContentHandlers):
    """Polls and quizzes: create, list, results, votes, end, scores, CSV."""

    async def _poll(self, poll_ref: str) -> dict[str, Any]:
        ref = poll_ref
        if ref.startswith("$"):
            poll = await self.store.run("content_poll", db.get_poll_txn, None, ref)
        else:
            poll = await self.store.run("content_poll", db.get_poll_txn, ref, None)
        if poll is None or poll["event_id"] is None:
            raise not_found(texts.NO_SUCH_POLL, id=ref)
        return poll

    async def _tally(self, poll: dict[str, Any]) -> counting.Tally:
        rows = await self.store.run("content_responses", db.responses_txn, poll["poll_id"])
        return counting.tally(
            [a["id"] for a in poll["answers"]],
            poll["max_selections"],
            (counting.Response(u, ts, tuple(a)) for u, ts, a in rows),
            poll["end_ts"],
        )

    async def create_poll(self, request: SynapseRequest, room: str) -> tuple[int, Any]:
        room_id = room
        user_id = await requester_id(self.api, request)
        role = await self._member(user_id, room_id)
        if role not in STAFF and not self.content.config.students_may_start_polls:
            raise forbidden(texts.POLL_START_NOT_ALLOWED)
        body = json_body(request, NEW_POLL_BODY)
        quiz = bool(body.get("quiz", False))
        anonymous = bool(body.get("anonymous", False))
        answers = [{"id": secrets.token_hex(4), "text": a["text"]} for a in body["answers"]]
        correct = [
            answers[i]["id"] for i, a in enumerate(body["answers"]) if a.get("correct", False)
        ]
        if quiz and not correct:
            raise bad_json(texts.QUIZ_NEEDS_CORRECT)
        if correct and not quiz:
            raise bad_json(texts.CORRECT_ONLY_IN_QUIZ)
        max_selections = int(body.get("max_selections", 1))
        if max_selections > len(answers):
            raise _bad_param("max_selections", "more than the number of answers")
        poll = {
            "poll_id": _new("pol_"),
            "room_id": room_id,
            "event_id": None,
            "sender": user_id,
            "question": body["question"],
            "answers": answers,
            "max_selections": max_selections,
            # Anonymous polls are undisclosed in Element: the room's own tally is empty.
            "disclosed": bool(body.get("disclosed", True)) and not anonymous,
            "anonymous": anonymous,
            "quiz": quiz,
            "correct": correct if quiz else None,
            "created_ts": self._now(),
        }
        await self.store.run("content_new_poll", db.insert_poll_txn, poll)
        try:
            event_id = await self._send(
                user_id, room_id, events.POLL_START, poll_start_content(poll)
            )
        except Exception:
            await self.store.run("content_drop_poll", db.delete_poll_txn, poll["poll_id"])
            raise
        await self.store.run(
            "content_poll_started", db.poll_started_txn, {**poll, "event_id": event_id}
        )
        lines = [f"{texts.POLL_NOTICE_TITLE.ru}: {poll['question']}"]
        lines += [f"{i}. {a['text']}" for i, a in enumerate(answers, 1)]
        if max_selections > 1:
            lines.append(texts.POLL_NOTICE_HINT_MANY.text("ru", max=max_selections))
        else:
            lines.append(texts.POLL_NOTICE_HINT.ru)
        if anonymous:
            lines.append(texts.POLL_NOTICE_ANONYMOUS.ru)
        notice_id = await self._send(
            user_id, room_id, "m.room.message", poll_notice_content(event_id, "\n".join(lines))
        )
        await self.store.run(
            "content_poll_notice", db.add_poll_notice_txn, notice_id, poll["poll_id"]
        )
        return 201, {"poll_id": poll["poll_id"], "event_id": event_id, "room_id": room_id}

    async def list_polls(self, request: SynapseRequest, room: str) -> tuple[int, Any]:
        room_id = room
        await self._member(await requester_id(self.api, request), room_id)
        limit = query.query_limit(request)
        rows = await self.store.run("content_polls", db.list_polls_txn, room_id, limit)
        return 200, {"polls": [_public_poll(p) for p in rows]}

    async def _results(self, poll: dict[str, Any], user_id: str) -> dict[str, Any]:
        role = await self.content.role_in_room(user_id, poll["room_id"])
        owner = poll["sender"] == user_id
        if role is None and not owner:
            raise forbidden(texts.NOT_A_MEMBER)
        privileged = owner or role in MANAGERS
        ended = poll["end_ts"] is not None
        tally = await self._tally(poll)
        show_counts = poll["disclosed"] or ended or privileged
        result = _public_poll(poll)
        result["answers"] = [
            {
                "id": a["id"],
                "text": a["text"],
                "votes": tally.counts[a["id"]] if show_counts else None,
            }
            for a in poll["answers"]
        ]
        result["voters"] = tally.voters if show_counts else None
        result["my_answers"] = list(tally.choices.get(user_id, ()))
        if poll["quiz"] and ended:
            correct = poll["correct"] or []
            for answer in result["answers"]:
                answer["correct"] = answer["id"] in correct
            if user_id in tally.choices:
                result["my_score"] = counting.score(tally.choices[user_id], correct)
        if privileged and not poll["anonymous"]:
            people = []
            for voter, chosen in sorted(tally.choices.items()):
                entry: dict[str, Any] = {"user_id": voter, "answers": list(chosen)}
                if poll["quiz"] and ended:
                    entry["score"] = counting.score(chosen, poll["correct"] or [])
                people.append(entry)
            result["by_person"] = people
        return result

    async def poll_results(self, request: SynapseRequest, poll_ref: str) -> tuple[int, Any]:
        user_id = await requester_id(self.api, request)
        return 200, await self._results(await self._poll(poll_ref), user_id)

    async def vote(self, request: SynapseRequest, poll_ref: str) -> tuple[int, Any]:
        user_id = await requester_id(self.api, request)
        poll = await self._poll(poll_ref)
        await self._member(user_id, poll["room_id"])
        body = json_body(request, VOTE_BODY)
        if poll["end_ts"] is not None:
            raise conflict(texts.POLL_ENDED)
        known = {a["id"] for a in poll["answers"]}
        for answer in body["answers"]:
            if answer not in known:
                raise bad_json(texts.BAD_ANSWER, answer=answer)
        if len(set(body["answers"])) > poll["max_selections"]:
            raise _bad_param("answers", f"at most {poll['max_selections']} answer(s)")
        now = self._now()
        if poll["anonymous"]:
            # No room event at all: the choice is only in the module's table.
            await self.store.run(
                "content_vote",
                db.add_response_txn,
                _new("api_"),
                poll["poll_id"],
                user_id,
                now,
                body["answers"],
            )
            return 200, {"poll_id": poll["poll_id"], "event_id": None}
        content = {
            events.POLL_RESPONSE: {"answers": body["answers"]},
            "m.relates_to": {"rel_type": "m.reference", "event_id": poll["event_id"]},
        }
        event_id = await self._send(user_id, poll["room_id"], events.POLL_RESPONSE, content)
        await self.store.run(
            "content_vote",
            db.add_response_txn,
            event_id,
            poll["poll_id"],
            user_id,
            now,
            body["answers"],
        )
        return 200, {"poll_id": poll["poll_id"], "event_id": event_id}

    async def end_poll(self, request: SynapseRequest, poll_ref: str) -> tuple[int, Any]:
        user_id = await requester_id(self.api, request)
        poll = await self._poll(poll_ref)
        role = await self._member(user_id, poll["room_id"])
        if poll["sender"] != user_id and role not in STAFF:
            raise forbidden(texts.POLL_END_NOT_ALLOWED)
        if poll["end_ts"] is not None:
            raise conflict(texts.POLL_ENDED)
        tally = await self._tally(poll)
        lines = [texts.POLL_ENDED_TEXT.format(), poll["question"]]
        lines += [f"{a['text']}: {tally.counts[a['id']]}" for a in poll["answers"]]
        if poll["quiz"]:
            names = [a["text"] for a in poll["answers"] if a["id"] in (poll["correct"] or [])]
            lines.append(texts.CORRECT_TEXT.format(answers=", ".join(names)))
        content = {
            events.POLL_END: {},
            events.TEXT_FALLBACK: "\n".join(lines),
            "body": "\n".join(lines),
            "m.relates_to": {"rel_type": "m.reference", "event_id": poll["event_id"]},
        }
        event_id = await self._send(user_id, poll["room_id"], events.POLL_END, content)
        await self.store.run(
            "content_poll_end", db.end_poll_txn, poll["poll_id"], self._now(), event_id
        )
        await self._send(
            user_id,
            poll["room_id"],
            "m.room.message",
            poll_notice_content(poll["event_id"], "\n".join(lines)),
        )
        return 200, await self._results(await self._poll(poll["poll_id"]), user_id)

    async def _privileged(self, poll: dict[str, Any], user_id: str) -> None:
        if poll["sender"] == user_id:
            return
        if await self.content.role_in_room(user_id, poll["room_id"]) not in MANAGERS:
            raise forbidden(texts.OWNER_ONLY)

    async def quiz_scores(self, request: SynapseRequest, poll_ref: str) -> tuple[int, Any]:
        user_id = await requester_id(self.api, request)
        poll = await self._poll(poll_ref)
        await self._privileged(poll, user_id)
        if not poll["quiz"] or poll["end_ts"] is None:
            raise conflict(texts.POLL_NOT_ENDED)
        if poll["anonymous"]:
            raise forbidden(texts.ANONYMOUS_NO_NAMES)
        tally = await self._tally(poll)
        correct = poll["correct"] or []
        # Scores by person: a read of personal data, recorded (docs/privacy.md).
        room = await self.content.roster.get_room(poll["room_id"])
        await self.content.roster.audit(
            user_id,
            "quiz_scores.read",
            room.school_id if room is not None else None,
            poll["poll_id"],
            {"room_id": poll["room_id"]},
        )
        scores = [
            {"user_id": u, "answers": list(c), "score": counting.score(c, correct)}
            for u, c in sorted(tally.choices.items())
        ]
        return 200, {
            "poll_id": poll["poll_id"],
            "correct": correct,
            "participants": len(scores),
            "correct_count": sum(s["score"] for s in scores),
            "scores": scores,
        }

    async def results_csv(self, request: SynapseRequest, poll_ref: str) -> None:
        user_id = await requester_id(self.api, request)
        poll = await self._poll(poll_ref)
        result = await self._results(poll, user_id)
        out = io.StringIO()
        writer = SafeCsvWriter(out)
        quiz_done = poll["quiz"] and poll["end_ts"] is not None
        writer.writerow(["answer_id", "answer", "votes", *(["correct"] if quiz_done else [])])
        for a in result["answers"]:
            row = [a["id"], a["text"], "" if a["votes"] is None else a["votes"]]
            writer.writerow(row + ([int(a["correct"])] if quiz_done else []))
        if "by_person" in result:
            texts_by_id = {a["id"]: a["text"] for a in poll["answers"]}
            writer.writerow([])
            writer.writerow(["user_id", "answers", *(["score"] if quiz_done else [])])
            for person in result["by_person"]:
                chosen = "; ".join(texts_by_id[a] for a in person["answers"])
                extra = [person["score"]] if quiz_done else []
                writer.writerow([person["user_id"], chosen, *extra])
        data = ("\ufeff" + out.getvalue()).encode("utf-8")
        request.setResponseCode(200)
        disposition = f'attachment; filename="{poll["poll_id"]}.csv"'.encode("ascii")
        request.setHeader(b"Content-Type", b"text/csv; charset=utf-8")  # type: ignore[no-untyped-call]
        request.setHeader(b"Content-Disposition", disposition)  # type: ignore[no-untyped-call]
        request.setHeader(b"Content-Length", str(len(data)).encode("ascii"))  # type: ignore[no-untyped-call]
        request.write(data)  # type: ignore[no-untyped-call]
        request.finish()


def _public_poll(poll: dict[str, Any]) -> dict[str, Any]:
    """What anyone in the room may know about a poll (never the correct answers)."""
    return {
        "poll_id": poll["poll_id"],
        "event_id": poll["event_id"],
        "room_id": poll["room_id"],
        "sender": poll["sender"],
        "question": poll["question"],
        "answers": [{"id": a["id"], "text": a["text"]} for a in poll["answers"]],
        "max_selections": poll["max_selections"],
        "disclosed": poll["disclosed"],
        "anonymous": poll["anonymous"],
        "quiz": poll["quiz"],
        "ended": poll["end_ts"] is not None,
        "end_ts": poll["end_ts"],
        "created_ts": poll["created_ts"],
    }
